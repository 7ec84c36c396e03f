//! `OpControlStream`: the kill switch, backed by the
//! [`OpBoard`](super::ops::OpBoard).
//!
//! Guarantees:
//! - with credentials required, a missing or unknown token is
//!   `UNAUTHENTICATED` and a request for another agent's org/team/agent
//!   triple is `PERMISSION_DENIED`; a request naming no agent subscribes as
//!   the token's agent, and on an open gateway is `INVALID_ARGUMENT`;
//! - the stream first sends the current state of every op covering the
//!   agent (paused, resumed or terminated, `*` and `agent:{id}` included),
//!   in sequence order, then live signals covering it, with nothing lost in
//!   between;
//! - every message carries `op_id`, `signal` and the gateway-wide
//!   `sequence`;
//! - a subscriber that falls behind the live channel has its stream ended
//!   with `UNAVAILABLE` (never silently skipped), so it reconnects and gets
//!   a fresh snapshot; gateway shutdown ends it with `UNAVAILABLE` too;
//! - open streams are counted and bounded (`RESOURCE_EXHAUSTED` past it);
//! - an operator's `close_op_streams` ends the agent's open streams with
//!   `UNAVAILABLE`, so its client reconnects and gets a fresh snapshot.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tether_proto::policy::{OpControlMessage, OpControlSignal, OpControlSubscribeRequest};
use tokio::sync::broadcast;
use tonic::metadata::MetadataMap;
use tonic::Status;

use super::credentials::{authenticate, describe};
use super::ops::{AgentKey, OpRecord, OpSignal};
use super::state::{OpStreamSlot, Shared};

/// The response stream of `OpControlStream`.
pub(crate) type OpStream = Pin<Box<dyn Stream<Item = Result<OpControlMessage, Status>> + Send>>;

struct Open {
    shared: Arc<Shared>,
    agent: AgentKey,
    snapshot: VecDeque<OpRecord>,
    live: broadcast::Receiver<OpRecord>,
    done: bool,
    slot: OpStreamSlot,
}

/// Open an op-control stream for the request's agent.
pub(crate) fn open(
    shared: Arc<Shared>,
    metadata: &MetadataMap,
    request: OpControlSubscribeRequest,
) -> Result<OpStream, Status> {
    let caller = authenticate(&shared.tokens, metadata, None)?;
    let agent = caller
        .acting_as(request.agent_id.as_ref())?
        .ok_or_else(|| Status::invalid_argument("agent_id is required"))?;
    let slot = shared
        .op_streams
        .register(agent.clone(), shared.limits.max_op_streams)
        .ok_or_else(|| {
            Status::resource_exhausted(format!(
                "too many op-control streams ({})",
                shared.limits.max_op_streams
            ))
        })?;
    let (snapshot, live) = shared.ops.subscribe(&agent);
    tracing::debug!(agent = %describe(&agent), snapshot = snapshot.len(), "op-control stream opened");
    let open = Open {
        shared,
        agent,
        snapshot: snapshot.into(),
        live,
        done: false,
        slot,
    };
    Ok(Box::pin(futures::stream::unfold(open, next_message)))
}

async fn next_message(mut open: Open) -> Option<(Result<OpControlMessage, Status>, Open)> {
    if open.done {
        return None;
    }
    if open.shared.shutdown.is_triggered() {
        open.done = true;
        return Some((Err(Status::unavailable("gateway is shutting down")), open));
    }
    if let Some(record) = open.snapshot.pop_front() {
        return Some((Ok(message(&record)), open));
    }
    let shared = open.shared.clone();
    let close = open.slot.close.clone();
    loop {
        tokio::select! {
            biased;
            () = shared.shutdown.triggered() => {
                open.done = true;
                return Some((Err(Status::unavailable("gateway is shutting down")), open));
            }
            () = close.notified() => {
                open.done = true;
                return Some((Err(Status::unavailable("an operator closed this stream; reconnect")), open));
            }
            record = open.live.recv() => match record {
                Ok(record) if record.covers(&open.agent) => return Some((Ok(message(&record)), open)),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    open.done = true;
                    tracing::debug!(agent = %describe(&open.agent), missed, "op-control subscriber lagged");
                    return Some((
                        Err(Status::unavailable(format!(
                            "op-control stream fell {missed} signals behind; reconnect for a fresh snapshot"
                        ))),
                        open,
                    ));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            },
        }
    }
}

fn message(record: &OpRecord) -> OpControlMessage {
    let signal = match record.signal {
        OpSignal::Pause => OpControlSignal::Pause,
        OpSignal::Resume => OpControlSignal::Resume,
        OpSignal::Terminate => OpControlSignal::Terminate,
    };
    OpControlMessage {
        op_id: record.op_id.clone(),
        signal: signal as i32,
        sequence: record.sequence,
    }
}
