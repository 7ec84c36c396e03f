//! The invalidation stream task: one task owns the core `Subscription`
//! machine and the tonic bidi stream, feeds events in, and executes the
//! machine's actions (connect, apply, ack, invalidate all, close).
//!
//! Guarantees: the task holds no decision logic: duplicate, gap and restart
//! handling, reconnect timing and when to ack are the machine's; every
//! applied event reaches the policy cache, the approval waiters and the
//! registered sinks in sequence order; every `Ack` the machine emits is
//! written, after the events it covers were applied, on the stream they came
//! from; the task ends on shutdown.
//!
//! Batching: each wake-up takes every event the stream already holds (up to
//! [`MAX_BATCH`], and no more than the machine's action queue has room for)
//! and feeds them to the machine one by one, in order; the machine alone
//! decides what is applied. The `Apply`/`Ack` actions that follow are run as
//! one batch: one policy-cache lock for all of its invalidations, then the
//! sinks and approval waiters event by event in sequence order (so a sink
//! still sees each event after the built-in cache), then the batch's acks,
//! in order. Any other action (`Connect`, `InvalidateAll`, `CloseStream`)
//! first runs the batch gathered before it, so actions keep their order and
//! acks go to the stream their events came from.
//!
//! Acks are cumulative (WIRE.md: the gateway trims its replay buffer up to
//! and including the acked `seq`, and the resume point is the next
//! `initial.last_seq_seen`, which no ack moves), so the machine emits one ack
//! for the newest applied event instead of one per event
//! (`SUB_ACK_CUMULATIVE_BOUNDED`): once `ack_every` applied events of the
//! stream are unacked (`TetherConfig::ack_every`, default 64), or when its
//! `AckDue` deadline passes, `ack_delay` after the first unacked one
//! (`TetherConfig::ack_delay`, default 20 ms). The task sleeps until the
//! machine's `poll_timeout`, whichever deadline it is (the resubscribe or
//! the ack), calls `handle_timeout`, and writes the `Ack` that yields like
//! any other. An ack still pending when the stream ends is dropped by the
//! machine (there is no stream to send it on); the next stream's first ack
//! covers it. `ack_every = 1` acks every applied event.
//!
//! Acks reach tonic through an [`AckOutbox`] (one lock and one wake-up per
//! batch) and are encoded straight from their sequence number by
//! [`SubscribeCodec`], with no message built per ack; the bytes on the wire
//! are prost's.
//!
//! No ack is dropped: when the outbox (`ACK_BUFFER` acks) is full the
//! task waits for room before it reads more events, which is HTTP/2
//! backpressure the gateway sees. If no room comes within the configured
//! `keepalive_timeout`, the gateway has stopped reading acks: the stream is
//! reported broken to the machine, which resubscribes from the last applied
//! sequence (the resubscribe itself tells the gateway how far the client
//! got).
//!
//! A draining gateway (an HTTP/2 GOAWAY on the stream's connection, noticed
//! by [`super::goaway`]) is reported to the machine
//! (`Subscription::on_peer_draining`, `SUB_DRAIN_FOLLOWED`), which closes the
//! stream and resubscribes from `last_seq_seen` at once (or `base` after the
//! stream opened), counting no failure; the channel is built afresh first,
//! so the resubscribe lands on a new connection, and through it on the
//! gateway's replacement. Nothing is lost: the replacement replays from
//! `last_seq_seen`, or, being a new lifetime that announces its epoch,
//! from its oldest held event (`SUB_RESTART_LOSES_NOTHING_HELD`). Under
//! TLS, where no GOAWAY can be seen, a new connection of the checks channel
//! made after the stream opened counts as the same event.

use std::sync::Arc;

use futures::FutureExt;
use tether_core::approval::ReviewerDecision;
use tether_core::subscription::{
    InvalidateReason, Subscription, SubscriptionAction, SubscriptionConfig,
};
use tether_core::Machine;
use tether_proto::gateway::invalidation_event::Payload;
use tether_proto::gateway::{subscribe_request, SubscribeInitial, SubscribeRequest};
use tokio::sync::watch;
use tokio::time::Instant;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::GrpcMethod;
use tracing::Instrument;

use super::ack_codec::{SubscribeCodec, SERVICE, SUBSCRIBE_PATH};
use super::ack_outbox::{ack_outbox, AckOutbox};

use super::op_stream::{checks_connections, MoveSignals};
use super::shared::Shared;
use super::sink::{InvalidateAllReason, InvalidationSink, PolicyChange};
use super::status::set_connected;
use crate::metrics_names as m;

const STREAM: &str = "invalidation";
/// Acks buffered toward the gateway; when full, the task waits for room
/// (see the module docs).
const ACK_BUFFER: usize = 1024;
/// Events taken from the stream per wake-up at most.
const MAX_BATCH: usize = 256;
/// Actions one event can queue in the subscription machine
/// (`InvalidateAll`, `Apply`, `Ack`).
const ACTIONS_PER_EVENT: usize = 3;

type Event = tether_proto::gateway::InvalidationEvent;

/// Applied events and their acks, gathered from the machine's actions and
/// run together (see the module docs). Reused across wake-ups.
#[derive(Default)]
struct Batch {
    applied: Vec<(u64, Option<Payload>)>,
    acks: Vec<u64>,
}

struct Conn {
    /// The credential the stream was opened with.
    token: Option<String>,
    acks: AckOutbox,
    events: tonic::Streaming<tether_proto::gateway::InvalidationEvent>,
    /// The gateway's lifetime epoch, when it announced one.
    epoch: Option<u64>,
}

pub(crate) async fn run(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let clock = shared.clock;
    let mut backoff = shared.config.backoff.clone();
    backoff.seed = shared.seed ^ 0x1a1a_1a1a;
    let mut sub: Subscription<Option<Payload>> = Subscription::new(
        SubscriptionConfig::default()
            .with_backoff(backoff)
            .with_ack_every(shared.config.ack_every)
            .with_ack_delay(shared.config.ack_delay),
    );
    sub.start(clock.now());
    let mut conn: Option<Conn> = None;
    let mut received_at = Instant::now();
    let mut attempt_span = tracing::Span::none();
    let mut batch = Batch::default();
    let mut chan = shared.channels.invalidation.clone();
    // Under TLS: the checks' connections counted when the stream opened.
    let mut checks_seen = checks_connections(&shared);
    let mut moves = MoveSignals::new();
    loop {
        while let Some(action) = sub.poll_action() {
            let action = match action {
                SubscriptionAction::Apply { seq, event } => {
                    batch.applied.push((seq, event));
                    continue;
                }
                SubscriptionAction::Ack { seq } => {
                    batch.acks.push(seq);
                    continue;
                }
                other => other,
            };
            if let Err(stalled) = run_batch(&shared, conn.as_ref(), &mut batch, received_at).await {
                ack_stalled(&shared, &mut sub, &mut conn, &attempt_span, stalled);
            }
            match action {
                SubscriptionAction::Connect { last_seq_seen } => {
                    conn = None;
                    // Every connect after the first is a reconnect (the
                    // machine counts it as this action is polled).
                    if sub.stats().reconnects > 0 {
                        metrics::counter!(m::RECONNECTS, "stream" => STREAM).increment(1);
                    }
                    attempt_span = tracing::info_span!(
                        "invalidation_stream",
                        assembly_id = %shared.config.assembly_id,
                        from_seq = last_seq_seen
                    );
                    // Bounded: a gateway that accepts the stream and never
                    // answers costs one open timeout, then the backoff goes on.
                    let waited = shared.config.open_timeout;
                    let bounded_open =
                        tokio::time::timeout(waited, open(&shared, &chan.channel, last_seq_seen));
                    let opened = tokio::select! {
                        r = bounded_open.instrument(attempt_span.clone()) => r.unwrap_or_else(|_| {
                            Err(format!("no answer to the open within {waited:?}"))
                        }),
                        _ = shutdown.changed() => return,
                    };
                    match opened {
                        Ok(c) => {
                            let epoch = c.epoch;
                            conn = Some(c);
                            checks_seen = checks_connections(&shared);
                            let now = clock.now();
                            sub.on_connected(now);
                            if let Some(epoch) = epoch {
                                sub.on_gateway_epoch(now, epoch);
                            }
                            shared.cache.with(|c, now| c.on_stream_up(now));
                            shared.status.update(|s| {
                                set_connected(&mut s.invalidation, true);
                                s.invalidation.last_error = None;
                            });
                            metrics::gauge!(m::CONNECTED, "stream" => STREAM).set(1.0);
                            attempt_span.in_scope(|| tracing::info!("subscribed"));
                        }
                        Err(e) => {
                            attempt_span
                                .in_scope(|| tracing::warn!(error = %e, "subscribe failed"));
                            sub.on_disconnected(clock.now());
                            shared
                                .status
                                .update(|s| s.invalidation.last_error = Some(e));
                        }
                    }
                }
                SubscriptionAction::Apply { .. } | SubscriptionAction::Ack { .. } => {
                    unreachable!("gathered into the batch above")
                }
                SubscriptionAction::InvalidateAll { reason } => {
                    let reason = match reason {
                        InvalidateReason::Restart => {
                            metrics::counter!(m::RESTARTS).increment(1);
                            InvalidateAllReason::GatewayRestart
                        }
                        InvalidateReason::UnreplayableGap => {
                            metrics::counter!(m::UNREPLAYABLE_GAPS).increment(1);
                            InvalidateAllReason::UnreplayableGap
                        }
                    };
                    attempt_span
                        .in_scope(|| tracing::warn!(?reason, "invalidating every cached decision"));
                    shared.cache.with(|c, now| c.invalidate_all(now));
                    for sink in shared.sinks() {
                        sink.invalidate_all(reason).await;
                    }
                }
                SubscriptionAction::CloseStream { reason } => {
                    attempt_span
                        .in_scope(|| tracing::info!(?reason, "closing stream to resubscribe"));
                    conn = None;
                    stream_down(&shared);
                }
            }
        }
        if let Err(stalled) = run_batch(&shared, conn.as_ref(), &mut batch, received_at).await {
            ack_stalled(&shared, &mut sub, &mut conn, &attempt_span, stalled);
            continue;
        }
        let stats = sub.stats();
        let last_seq = sub.last_seq_seen();
        shared.status.update_if(|s| {
            let st = &mut s.invalidation;
            let fresh = (
                last_seq,
                stats.reconnects,
                stats.applied,
                stats.duplicates,
                stats.gaps,
                stats.restarts,
                stats.unreplayable_gaps,
                stats.drain_swaps,
            );
            let old = (
                st.last_seq,
                st.reconnects,
                st.events_applied,
                st.duplicates,
                st.gaps,
                st.restarts,
                st.unreplayable_gaps,
                st.drain_swaps,
            );
            if fresh == old {
                return false;
            }
            st.last_seq = last_seq;
            st.reconnects = stats.reconnects;
            st.events_applied = stats.applied;
            st.duplicates = stats.duplicates;
            st.gaps = stats.gaps;
            st.restarts = stats.restarts;
            st.unreplayable_gaps = stats.unreplayable_gaps;
            st.drain_swaps = stats.drain_swaps;
            true
        });
        let deadline = sub.poll_timeout().map(|d| clock.instant(d.at));
        moves.arm(&shared, chan.watch.as_ref(), checks_seen, conn.is_some());
        tokio::select! {
            msg = next_event(&mut conn) => {
                received_at = Instant::now();
                let before = sub.stats();
                let now = clock.now();
                let mut msg = msg;
                let mut taken = 0;
                loop {
                    match msg {
                        Some(Ok(ev)) => {
                            tracing::debug!(seq = ev.seq, "event received");
                            sub.on_event(now, ev.seq, ev.payload);
                            taken += 1;
                        }
                        Some(Err(status)) => {
                            attempt_span.in_scope(|| tracing::warn!(%status, "stream failed"));
                            let token = conn.as_ref().and_then(|c| c.token.clone());
                            shared.refresh_if_refused(&status, token.as_deref()).await;
                            conn = None;
                            sub.on_disconnected(clock.now());
                            stream_down(&shared);
                            shared.status.update(|s| s.invalidation.last_error = Some(status.to_string()));
                            break;
                        }
                        None => {
                            attempt_span.in_scope(|| tracing::info!("stream ended by the gateway"));
                            conn = None;
                            sub.on_disconnected(clock.now());
                            stream_down(&shared);
                            break;
                        }
                    }
                    // Take the next event only if it is already here, the
                    // machine still has the stream open (a gap closes it: what
                    // follows is not for this stream) and its queue has room.
                    let room = sub.queued_actions().saturating_add(ACTIONS_PER_EVENT)
                        <= sub.config().max_queued_actions;
                    if taken >= MAX_BATCH || !room || !sub.is_connected() {
                        break;
                    }
                    match ready_event(&mut conn) {
                        Some(next) => msg = next,
                        None => break,
                    }
                }
                let after = sub.stats();
                if after.duplicates > before.duplicates {
                    metrics::counter!(m::DUPLICATES, "stream" => STREAM)
                        .increment(after.duplicates - before.duplicates);
                }
                if after.gaps > before.gaps {
                    metrics::counter!(m::GAPS).increment(after.gaps - before.gaps);
                }
            }
            // The resubscribe deadline or the ack deadline (`AckDue`): the
            // loop then drains what `handle_timeout` emitted and writes it.
            _ = sleep_until(deadline) => {
                sub.handle_timeout(clock.now());
            }
            // The gateway behind the stream's connection is draining: the
            // next stream goes on a new connection; the machine decides
            // when (its `CloseStream { PeerDraining }` and `Connect` follow).
            _ = &mut moves.drained => {
                moves.reset();
                chan = shared.channels.fresh_stream();
                if sub.on_peer_draining(clock.now()) {
                    attempt_span.in_scope(|| tracing::info!("the gateway is draining: moving the stream"));
                    metrics::counter!(m::STREAM_SWAPS, "stream" => STREAM, "reason" => "peer_draining").increment(1);
                }
            }
            // Under TLS: the checks moved to a new connection since the
            // stream opened (the old one was told to go away, or broke).
            _ = &mut moves.renewed => {
                moves.reset();
                checks_seen = checks_connections(&shared);
                chan = shared.channels.fresh_stream();
                if sub.on_peer_draining(clock.now()) {
                    attempt_span.in_scope(|| tracing::info!("the checks moved to a new connection: moving the stream"));
                    metrics::counter!(m::STREAM_SWAPS, "stream" => STREAM, "reason" => "checks_renewed").increment(1);
                }
            }
            _ = shutdown.changed() => {
                sub.stop();
                stream_down(&shared);
                return;
            }
        }
    }
}

/// The gateway stopped reading acks: report the stream broken, so the
/// machine reconnects with its usual backoff.
fn ack_stalled(
    shared: &Shared,
    sub: &mut Subscription<Option<Payload>>,
    conn: &mut Option<Conn>,
    span: &tracing::Span,
    stalled: AckStalled,
) {
    span.in_scope(|| tracing::warn!(%stalled, "stream failed"));
    *conn = None;
    sub.on_disconnected(shared.clock.now());
    stream_down(shared);
    shared
        .status
        .update(|s| s.invalidation.last_error = Some(stalled.to_string()));
}

fn stream_down(shared: &Shared) {
    shared.cache.with(|c, now| c.on_stream_down(now));
    shared
        .status
        .update(|s| set_connected(&mut s.invalidation, false));
    metrics::gauge!(m::CONNECTED, "stream" => STREAM).set(0.0);
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn next_event(conn: &mut Option<Conn>) -> Option<Result<Event, tonic::Status>> {
    match conn {
        Some(c) => c.events.message().await.transpose(),
        None => std::future::pending().await,
    }
}

/// The stream's next message if it is already here (`None`: nothing ready,
/// or no stream). `Streaming::message` is cancel-safe, so polling it once and
/// dropping it loses nothing.
fn ready_event(conn: &mut Option<Conn>) -> Option<Option<Result<Event, tonic::Status>>> {
    let c = conn.as_mut()?;
    c.events.message().now_or_never().map(Result::transpose)
}

async fn open(
    shared: &Shared,
    channel: &tonic::transport::Channel,
    last_seq_seen: u64,
) -> Result<Conn, String> {
    let assembly_id = &shared.config.assembly_id;
    let (acks, body) = ack_outbox(
        ACK_BUFFER,
        SubscribeRequest {
            assembly_id: assembly_id.clone(),
            kind: Some(subscribe_request::Kind::Initial(SubscribeInitial {
                last_seq_seen,
            })),
        },
    );
    let mut req = tonic::Request::new(body);
    req.extensions_mut()
        .insert(GrpcMethod::new(SERVICE, "Subscribe"));
    let token = shared.authorize(&mut req).await;
    // The generated client's `subscribe`, with the codec that writes acks
    // without building a message each.
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    if let Err(e) = grpc.ready().await {
        return Err(format!("channel not ready: {e}"));
    }
    let path = PathAndQuery::from_static(SUBSCRIBE_PATH);
    match grpc
        .streaming(req, path, SubscribeCodec::new(assembly_id))
        .await
    {
        Ok(resp) => {
            let epoch = resp
                .metadata()
                .get(crate::GATEWAY_EPOCH_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            Ok(Conn {
                token,
                acks,
                events: resp.into_inner(),
                epoch,
            })
        }
        Err(status) => {
            shared.refresh_if_refused(&status, token.as_deref()).await;
            Err(describe(&status))
        }
    }
}

/// One line for a failed call.
pub(crate) fn describe(status: &tonic::Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

/// Run the gathered `Apply`/`Ack` actions (see the module docs): the policy
/// cache under one lock, then sinks and approval waiters in sequence order,
/// then the machine's acks on `conn`, the stream they came from.
async fn run_batch(
    shared: &Shared,
    conn: Option<&Conn>,
    batch: &mut Batch,
    received_at: Instant,
) -> Result<(), AckStalled> {
    if batch.applied.is_empty() && batch.acks.is_empty() {
        return Ok(());
    }
    let applied = batch.applied.len();
    let invalidates = batch
        .applied
        .iter()
        .any(|(_, e)| matches!(e, Some(Payload::PolicyInvalidated(_))));
    if invalidates {
        shared.cache.with(|c, now| {
            for (_, event) in &batch.applied {
                if let Some(Payload::PolicyInvalidated(p)) = event {
                    let agent = (!p.agent_id.is_empty()).then_some(p.agent_id.as_str());
                    c.on_invalidate(now, agent, p.policy_version);
                }
            }
        });
    }
    let sinks = if invalidates {
        shared.sinks()
    } else {
        Vec::new()
    };
    for (seq, event) in batch.applied.drain(..) {
        apply(shared, &sinks, seq, event).await;
    }
    if applied > 0 {
        metrics::counter!(m::EVENTS_APPLIED, "stream" => STREAM).increment(applied as u64);
        metrics::histogram!(m::PUSH_TO_APPLY_SECONDS)
            .record_many(received_at.elapsed().as_secs_f64(), applied);
    }
    let Some(c) = conn else {
        // The stream is gone: its acks go with it (the resubscribe names
        // the last applied sequence).
        batch.acks.clear();
        return Ok(());
    };
    let mut left = &batch.acks[..];
    let outcome = loop {
        match c.acks.push(left) {
            Ok(taken) => left = &left[taken..],
            // The request body is gone: the stream is failing and its end
            // is read next.
            Err(_) => break Ok(()),
        }
        if left.is_empty() {
            break Ok(());
        }
        let wait = shared.config.keepalive_timeout;
        if tokio::time::timeout(wait, c.acks.room()).await.is_err() {
            // The acks left are forgotten with the stream.
            break Err(AckStalled(wait));
        }
    };
    batch.acks.clear();
    outcome
}

/// The gateway left the outgoing acks unread for this long.
#[derive(Debug)]
struct AckStalled(std::time::Duration);

impl std::fmt::Display for AckStalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the gateway read no ack for {:?}: resubscribing from the last applied event",
            self.0
        )
    }
}

/// Hand one applied event, already in the policy cache, to the sinks or the
/// approval waiters.
async fn apply(
    shared: &Shared,
    sinks: &[Arc<dyn InvalidationSink>],
    seq: u64,
    event: Option<Payload>,
) {
    match event {
        Some(Payload::PolicyInvalidated(p)) => {
            let change = PolicyChange {
                agent_id: (!p.agent_id.is_empty()).then_some(p.agent_id),
                policy_version: p.policy_version,
                seq,
            };
            for sink in sinks {
                sink.on_policy_change(&change).await;
            }
        }
        Some(Payload::ApprovalResolved(a)) => {
            tracing::debug!(seq, request_id = %a.request_id, decision = a.decision, "approval resolved");
            shared
                .approvals
                .on_verdict(&a.request_id, ReviewerDecision::from_wire(a.decision));
        }
        None => tracing::debug!(seq, "event without a payload"),
    }
}
