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

use std::sync::Arc;

use tether_core::backoff::{Backoff, BackoffAction};
use tether_core::op_control::SignalOutcome;
use tether_core::Machine;
use tether_proto::common::AgentId;
use tether_proto::policy::policy_service_client::PolicyServiceClient;
use tether_proto::policy::{OpControlMessage, OpControlSubscribeRequest};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::Instrument;

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
    loop {
        while let Some(BackoffAction::Connect { attempt }) = backoff.poll_action() {
            stream = None;
            if attempt > 1 {
                metrics::counter!(m::RECONNECTS, "stream" => STREAM).increment(1);
                shared.status.update(|s| s.op_control.reconnects += 1);
            }
            span = tracing::info_span!("op_control_stream", agent = %shared.agent_id(), attempt);
            shared.ops.on_stream_attempt(KillSwitchDown::Opening);
            let waited = shared.config.open_timeout;
            let opened = tokio::select! {
                r = tokio::time::timeout(waited, open(&shared)).instrument(span.clone()) => {
                    r.unwrap_or(Err(Unanswered(waited)))
                }
                _ = shutdown.changed() => return,
            };
            match opened {
                Ok((s, token)) => {
                    stream = Some(s);
                    stream_token = token;
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
                    shared.ops.on_stream_attempt(why);
                    shared.status.update(|s| s.op_control.last_error = Some(e));
                }
            }
        }
        let deadline = backoff.poll_timeout().map(|d| clock.instant(d.at));
        tokio::select! {
            msg = next(&mut stream) => match msg {
                Some(Ok(msg)) => {
                    backoff.on_message(clock.now());
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
            _ = shutdown.changed() => {
                down(&shared, KillSwitchDown::ShutDown);
                return;
            }
        }
    }
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
    let mut client = PolicyServiceClient::new(shared.channels.op_control.clone());
    match client.op_control_stream(req).await {
        Ok(resp) => Ok((resp.into_inner(), token)),
        Err(status) => {
            shared.refresh_if_refused(&status, token.as_deref()).await;
            Err(OpenFailed::Status(status))
        }
    }
}
