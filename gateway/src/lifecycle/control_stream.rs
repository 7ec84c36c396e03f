//! `ControlStream`: the per-agent server stream of `ControlCommand`s, fed
//! by the [registry](super::registry).
//!
//! Guarantees:
//! - commands are delivered once each, in the order the operator sent
//!   them, and commands queued before the gateway ended the stream are
//!   delivered before the end;
//! - the stream stays open while nothing is sent; it has no client messages
//!   after the request, so only the gateway or the client's cancellation
//!   ends it;
//! - a stream replaced by a newer one of the agent, one whose credential
//!   was revoked by a re-registration, one that fell behind, and every
//!   stream at gateway shutdown end with `UNAVAILABLE` (so clients
//!   reconnect); a deregistration ends it cleanly;
//! - however the stream ends, its registration is removed when it is
//!   dropped (a replacing stream's is kept).

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tether_proto::agent::ControlCommand;
use tonic::Status;

use super::registry::{StreamEnd, StreamSide};
use crate::credentials::describe;
use crate::ops::AgentKey;
use crate::state::Shared;

/// The response stream of `ControlStream`.
pub(crate) type ControlStream = Pin<Box<dyn Stream<Item = Result<ControlCommand, Status>> + Send>>;

/// Unregisters the stream from the registry when dropped.
struct Guard {
    shared: Arc<Shared>,
    agent: AgentKey,
    id: u64,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.shared
            .lifecycle
            .agents
            .close_stream(&self.agent, self.id);
        tracing::debug!(agent = %describe(&self.agent), stream = self.id, "control stream closed");
    }
}

struct Open {
    guard: Guard,
    side: StreamSide,
    done: bool,
}

/// The stream of `agent`, from its registry side.
pub(crate) fn stream(shared: Arc<Shared>, agent: AgentKey, side: StreamSide) -> ControlStream {
    tracing::debug!(agent = %describe(&agent), stream = side.id, "control stream opened");
    let open = Open {
        guard: Guard {
            shared,
            agent,
            id: side.id,
        },
        side,
        done: false,
    };
    Box::pin(futures::stream::unfold(open, next_command))
}

async fn next_command(mut open: Open) -> Option<(Result<ControlCommand, Status>, Open)> {
    if open.done {
        return None;
    }
    let shared = open.guard.shared.clone();
    let item = tokio::select! {
        biased;
        () = shared.shutdown.triggered() => Some(Err(Status::unavailable("gateway is shutting down"))),
        command = open.side.commands.recv() => match command {
            Some(command) => return Some((Ok(command), open)),
            // Every sender is gone, so the end was sent (or the registry
            // dropped it, a clean end): it resolves at once.
            None => ending((&mut open.side.end).await),
        },
        end = &mut open.side.end => ending(end),
    };
    let item = item?;
    open.done = true;
    Some((item, open))
}

/// The last item of a stream the gateway ended: `None` for a clean end.
fn ending(
    end: Result<StreamEnd, tokio::sync::oneshot::error::RecvError>,
) -> Option<Result<ControlCommand, Status>> {
    match end {
        Ok(StreamEnd::Unavailable(why)) => Some(Err(Status::unavailable(why))),
        Ok(StreamEnd::Clean) | Err(_) => None,
    }
}
