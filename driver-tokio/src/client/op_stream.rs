//! The op-control stream task: one task owns the core `Backoff` machine and
//! the server stream, and feeds every signal to the `OpControl` machine
//! behind [`Ops`](super::ops::Ops).
//!
//! Guarantees: no decision logic here: reconnect timing is the backoff's,
//! and what a signal means (duplicates, terminate absorbing, outage policy)
//! is the op-control machine's; the machine learns of every stream up and
//! down so its outage clock is right, and the kill switch's reachability in
//! the status is published from that same machine state, with the reason
//! (opening, stream lost, open refused, credential refused, shut down); the
//! task ends on shutdown.
//!
//! A draining gateway (an HTTP/2 GOAWAY on the stream's connection, noticed
//! by [`super::goaway`]) is reported to the backoff
//! (`Backoff::on_peer_draining`: a reopen at once, or `base` after the
//! stream opened, no failure counted) and the channel is built afresh, so
//! the reopen lands on a new connection, and through it on the gateway's
//! replacement. The swap is make-before-break: the old stream stays open
//! and read until the new one is open, and its already-received signals are
//! applied before it is dropped, so the `OpControl` machine never sees the
//! stream down and no outage clock starts; only a failed reopen reports the
//! stream down (the swap then ends in an ordinary outage). Under TLS, where
//! no GOAWAY can be seen, a new connection of the checks channel made after
//! the stream opened counts as the same event (see [`super::goaway`]).

use std::sync::Arc;

use futures::FutureExt;
use tether_core::backoff::{Backoff, BackoffAction};
use tether_core::op_control::SignalOutcome;
use tether_core::Machine;
use tether_proto::common::AgentId;
use tether_proto::policy::policy_service_client::PolicyServiceClient;
use tether_proto::policy::{OpControlMessage, OpControlSubscribeRequest};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::Instrument;

use super::goaway::DrainWatch;
use super::invalidation::describe;
use super::shared::Shared;
use super::status::{set_connected, KillSwitchDown};
use crate::metrics_names as m;

const STREAM: &str = "op_control";

pub(crate) async fn run(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let clock = shared.clock;
    let mut cfg = shared.config.backoff.clone();
    cfg.seed = shared.seed ^ 0x0c0c_0c0c;
    let mut backoff = Backoff::new(cfg);
    backoff.start(clock.now());
    let mut stream: Option<tonic::Streaming<OpControlMessage>> = None;
    // The credential the open stream was opened with.
    let mut stream_token: Option<String> = None;
    let mut span = tracing::Span::none();
    let mut chan = shared.channels.op_control.clone();
    // Under TLS: the checks' connections counted when the stream opened.
    let mut checks_seen = checks_connections(&shared);
    let mut moves = MoveSignals::new();
    loop {
        while let Some(BackoffAction::Connect { attempt }) = backoff.poll_action() {
            // Only a swap away from a draining gateway connects with a
            // stream still open: it stays open until the new one is.
            let old = stream.take();
            if attempt > 1 {
                metrics::counter!(m::RECONNECTS, "stream" => STREAM).increment(1);
                shared.status.update(|s| s.op_control.reconnects += 1);
            }
            span = tracing::info_span!("op_control_stream", agent = %shared.agent_id(), attempt);
            shared.ops.on_stream_attempt(KillSwitchDown::Opening);
            let waited = shared.config.open_timeout;
            let opened = tokio::select! {
                r = tokio::time::timeout(waited, open(&shared, &chan.channel)).instrument(span.clone()) => {
                    r.unwrap_or(Err(Unanswered(waited)))
                }
                _ = shutdown.changed() => return,
            };
            match opened {
                Ok((s, token)) => {
                    if let Some(mut old) = old {
                        // Signals the old gateway already sent are applied
                        // before its stream goes.
                        while let Some(Some(Ok(msg))) =
                            old.message().now_or_never().map(Result::transpose)
                        {
                            on_signal(&shared, &span, &msg);
                        }
                        span.in_scope(|| tracing::info!("moved off the draining gateway"));
                    }
                    stream = Some(s);
                    stream_token = token;
                    checks_seen = checks_connections(&shared);
                    backoff.on_connected(clock.now());
                    shared.ops.on_stream_up();
                    shared.status.update(|s| {
                        set_connected(&mut s.op_control, true);
                        s.op_control.last_error = None;
                    });
                    metrics::gauge!(m::CONNECTED, "stream" => STREAM).set(1.0);
                    span.in_scope(|| tracing::info!("subscribed"));
                }
                Err(failed) => {
                    let (e, why) = match failed {
                        OpenFailed::Status(status) => (describe(&status), refused(&status)),
                        OpenFailed::Unanswered(waited) => (
                            format!("no answer to the open within {waited:?}"),
                            KillSwitchDown::OpenUnanswered { waited },
                        ),
                    };
                    span.in_scope(|| tracing::warn!(error = %e, "subscribe failed"));
                    backoff.on_disconnected(clock.now());
                    if old.is_some() {
                        // The swap failed: from here it is an outage.
                        down(
                            &shared,
                            KillSwitchDown::StreamLost {
                                error: format!(
                                    "the gateway is draining and the reopen failed: {e}"
                                ),
                            },
                        );
                    }
                    shared.ops.on_stream_attempt(why);
                    shared.status.update(|s| s.op_control.last_error = Some(e));
                }
            }
        }
        let deadline = backoff.poll_timeout().map(|d| clock.instant(d.at));
        moves.arm(&shared, chan.watch.as_ref(), checks_seen, stream.is_some());
        tokio::select! {
            msg = next(&mut stream) => match msg {
                Some(Ok(msg)) => {
                    backoff.on_message(clock.now());
                    on_signal(&shared, &span, &msg);
                }
                Some(Err(status)) => {
                    span.in_scope(|| tracing::warn!(%status, "stream failed"));
                    shared.refresh_if_refused(&status, stream_token.as_deref()).await;
                    stream = None;
                    backoff.on_disconnected(clock.now());
                    let error = describe(&status);
                    down(&shared, KillSwitchDown::StreamLost { error: error.clone() });
                    shared.status.update(|s| s.op_control.last_error = Some(error));
                }
                None => {
                    span.in_scope(|| tracing::info!("stream ended by the gateway"));
                    stream = None;
                    backoff.on_disconnected(clock.now());
                    down(&shared, KillSwitchDown::StreamLost { error: "the gateway ended the stream".into() });
                }
            },
            _ = sleep_until(deadline) => backoff.handle_timeout(clock.now()),
            _ = &mut moves.drained => {
                moves.reset();
                // The gateway behind the stream's connection is draining:
                // the next stream goes on a new connection.
                chan = shared.channels.fresh_stream();
                if backoff.on_peer_draining(clock.now()) {
                    span.in_scope(|| tracing::info!("the gateway is draining: moving the stream"));
                    metrics::counter!(m::STREAM_SWAPS, "stream" => STREAM, "reason" => "peer_draining").increment(1);
                    shared.status.update(|s| s.op_control.drain_swaps += 1);
                }
            }
            // Under TLS: the checks moved to a new connection since the
            // stream opened (the old one was told to go away, or broke).
            _ = &mut moves.renewed => {
                moves.reset();
                checks_seen = checks_connections(&shared);
                chan = shared.channels.fresh_stream();
                if backoff.on_peer_draining(clock.now()) {
                    span.in_scope(|| tracing::info!("the checks moved to a new connection: moving the stream"));
                    metrics::counter!(m::STREAM_SWAPS, "stream" => STREAM, "reason" => "checks_renewed").increment(1);
                    shared.status.update(|s| s.op_control.drain_swaps += 1);
                }
            }
            _ = shutdown.changed() => {
                down(&shared, KillSwitchDown::ShutDown);
                return;
            }
        }
    }
}

/// Apply one signal through the op-control machine.
fn on_signal(shared: &Shared, span: &tracing::Span, msg: &OpControlMessage) {
    let out = shared.ops.on_signal(&msg.op_id, msg.signal, msg.sequence);
    span.in_scope(|| tracing::info!(op_id = %msg.op_id, signal = msg.signal, sequence = msg.sequence, outcome = ?out, "signal"));
    metrics::counter!(m::OP_SIGNALS, "signal" => signal_label(msg.signal)).increment(1);
    shared.status.update(|s| {
        let st = &mut s.op_control;
        st.last_seq = msg.sequence;
        match out {
            SignalOutcome::Duplicate => st.duplicates += 1,
            _ => st.events_applied += 1,
        }
    });
}

/// Resolves once the watched connection is draining, if `armed` (a stream
/// is open on it) and it is watched; never otherwise.
async fn drained(watch: Option<DrainWatch>, armed: bool) {
    match watch {
        Some(w) if armed => w.draining().await,
        _ => std::future::pending().await,
    }
}

/// Resolves once the checks channel made a new connection after `seen`
/// (see [`DrainWatch::renewed_after`]), if `armed` and counted (TLS); never
/// otherwise.
async fn checks_renewed(watch: Option<DrainWatch>, seen: u64, armed: bool) {
    match watch {
        Some(w) if armed => w.renewed_after(seen).await,
        _ => std::future::pending().await,
    }
}

/// A boxed future that says a stream should move.
type MoveFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// The two ways a stream task learns that its stream should move (its
/// connection's peer is draining; under TLS, the checks moved to a new
/// connection), as futures built once per stream and channel, not once per
/// message: a stream task's loop turns once per message, and building them
/// there costs every event two watch subscriptions.
pub(crate) struct MoveSignals {
    /// What the futures were built for: (armed, checks seen); `None` to
    /// rebuild.
    key: Option<(bool, u64)>,
    /// Resolves once the stream's connection is draining.
    pub(crate) drained: MoveFuture,
    /// Resolves once the checks made a new connection.
    pub(crate) renewed: MoveFuture,
}

impl MoveSignals {
    pub(crate) fn new() -> Self {
        MoveSignals {
            key: None,
            drained: Box::pin(std::future::pending()),
            renewed: Box::pin(std::future::pending()),
        }
    }

    /// Build the futures afresh for the stream's channel `watch`, if the
    /// stream's state or the checks count changed since they were built
    /// (or [`MoveSignals::reset`] was called).
    pub(crate) fn arm(
        &mut self,
        shared: &Shared,
        watch: Option<&DrainWatch>,
        seen: u64,
        armed: bool,
    ) {
        if self.key == Some((armed, seen)) {
            return;
        }
        self.key = Some((armed, seen));
        self.drained = Box::pin(drained(watch.cloned(), armed));
        self.renewed = Box::pin(checks_renewed(
            shared.channels.checks_watch.clone(),
            seen,
            armed,
        ));
    }

    /// One of them fired, or the channel changed: build them again.
    pub(crate) fn reset(&mut self) {
        self.key = None;
    }
}

/// The checks channel's connections so far (0 when not counted).
pub(crate) fn checks_connections(shared: &Shared) -> u64 {
    shared
        .channels
        .checks_watch
        .as_ref()
        .map_or(0, DrainWatch::connections)
}

fn down(shared: &Shared, why: KillSwitchDown) {
    shared.ops.on_stream_down(why);
    shared
        .status
        .update(|s| set_connected(&mut s.op_control, false));
    metrics::gauge!(m::CONNECTED, "stream" => STREAM).set(0.0);
}

fn signal_label(signal: i32) -> &'static str {
    match signal {
        1 => "pause",
        2 => "resume",
        3 => "terminate",
        _ => "unspecified",
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn next(
    stream: &mut Option<tonic::Streaming<OpControlMessage>>,
) -> Option<Result<OpControlMessage, tonic::Status>> {
    match stream {
        Some(s) => s.message().await.transpose(),
        None => std::future::pending().await,
    }
}

/// Why an open failed.
enum OpenFailed {
    /// The gateway answered with an error.
    Status(tonic::Status),
    /// No answer within the open timeout.
    Unanswered(std::time::Duration),
}
use OpenFailed::Unanswered;

/// Why an open the gateway answered with `status` failed.
fn refused(status: &tonic::Status) -> KillSwitchDown {
    match status.code() {
        tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => {
            KillSwitchDown::CredentialRefused {
                message: status.message().to_owned(),
            }
        }
        code => KillSwitchDown::OpenRefused {
            code,
            message: status.message().to_owned(),
        },
    }
}

async fn open(
    shared: &Shared,
    channel: &tonic::transport::Channel,
) -> Result<(tonic::Streaming<OpControlMessage>, Option<String>), OpenFailed> {
    let a = &shared.agent();
    let mut req = tonic::Request::new(OpControlSubscribeRequest {
        agent_id: Some(AgentId {
            org_id: a.org_id.clone(),
            team_id: a.team_id.clone(),
            agent_id: a.agent_id.clone(),
        }),
    });
    let token = shared.authorize(&mut req).await;
    let mut client = PolicyServiceClient::new(channel.clone());
    match client.op_control_stream(req).await {
        Ok(resp) => Ok((resp.into_inner(), token)),
        Err(status) => {
            shared.refresh_if_refused(&status, token.as_deref()).await;
            Err(OpenFailed::Status(status))
        }
    }
}
