//! `assembly.gateway.v1.InvalidationService/Subscribe`: the invalidation
//! stream, backed by the [`InvalidationHub`](super::hub::InvalidationHub),
//! served by the tonic service generated from the proto.
//!
//! Guarantees:
//! - credentials are checked before anything is read (`UNAUTHENTICATED`);
//!   the subscriber's team is its token's team, `""` when anonymous;
//! - the first client message must carry a non-empty `assembly_id` (at most
//!   the configured length) and `initial`, within the handshake timeout,
//!   else the call fails with `INVALID_ARGUMENT` (`DEADLINE_EXCEEDED` for a
//!   silent client) before any event is sent; a first message that does not
//!   decode fails with the status tonic's prost codec gives (`INTERNAL`);
//! - the response carries this gateway lifetime's epoch in the
//!   `x-tether-gateway-epoch` header ([`tether_proto::GATEWAY_EPOCH_HEADER`]),
//!   the same for every stream of one lifetime and different after a
//!   restart;
//! - events are the hub's replay after `last_seq_seen`, then live events,
//!   each as `InvalidationEvent{seq, payload}`;
//! - an `assembly_id` already subscribed from another team is
//!   `PERMISSION_DENIED`; past the subscriber or stream bound,
//!   `RESOURCE_EXHAUSTED`, to that caller only;
//! - later client messages are cumulative acks (WIRE.md): each trims the
//!   subscriber's ring up to its `seq`. Other kinds are ignored, and so is
//!   an ack naming another `assembly_id` (one without an id counts as this
//!   stream's). Acks are read by their own task, so they are taken while
//!   events are being sent and while the client's receive window is full;
//! - **the client's half-close ends nothing but its acks**: when the
//!   client's side ends cleanly, acks stop being read and the event stream
//!   stays open, as the Agent Assembly gateway keeps it (its runtime sends
//!   one `SubscribeRequest` and half-closes). The stream ends only when the
//!   gateway ends it (below) or the client cancels or drops it;
//! - a client message that does not decode ends the stream with the status
//!   tonic's prost codec gives (`INTERNAL`);
//! - when the hub closes the subscriber's channel (it fell behind, or a
//!   newer stream of the same `assembly_id` replaced this one, or an
//!   operator closed it with `close_subscription`) the response
//!   ends with `UNAVAILABLE`, after every event already queued, so the
//!   client resubscribes; on gateway shutdown it ends with `UNAVAILABLE` at
//!   once;
//! - however the stream ends, the hub marks the subscriber disconnected and
//!   the stream's slot is freed (drop guards, so no path is missed).

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::{Future, Stream};
use tether_proto::gateway::invalidation_event::Payload;
use tether_proto::gateway::invalidation_service_server::InvalidationService;
use tether_proto::gateway::subscribe_request::Kind;
use tether_proto::gateway::{InvalidationEvent, SubscribeRequest};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use super::credentials::authenticate;
use super::hub::SubscribeError;
use super::state::{GaugeSlot, Shared};

/// The `InvalidationService` of one gateway.
pub(crate) struct InvalidationSvc {
    shared: Arc<Shared>,
}

impl InvalidationSvc {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        InvalidationSvc { shared }
    }
}

#[tonic::async_trait]
impl InvalidationService for InvalidationSvc {
    type SubscribeStream = Events;

    async fn subscribe(
        &self,
        request: Request<Streaming<SubscribeRequest>>,
    ) -> Result<Response<Events>, Status> {
        subscribe(self.shared.clone(), request).await
    }
}

/// Marks the subscriber's stream disconnected when dropped.
struct HubLease {
    shared: Arc<Shared>,
    assembly_id: String,
    stream_id: u64,
    _slot: GaugeSlot,
}

impl Drop for HubLease {
    fn drop(&mut self) {
        self.shared
            .hub
            .disconnect(&self.assembly_id, self.stream_id);
        tracing::debug!(assembly_id = %self.assembly_id, stream_id = self.stream_id, "invalidation stream closed");
    }
}

/// The task reading one stream's acks; stopped when the stream goes.
struct AckReader(JoinHandle<()>);

impl Drop for AckReader {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Read the client's acks until its side ends. A clean end (half-close)
/// only stops the reading; an error is handed to the event stream through
/// `failed`, which ends the response with it.
async fn read_acks(
    shared: Arc<Shared>,
    assembly_id: String,
    mut inbound: Streaming<SubscribeRequest>,
    failed: oneshot::Sender<Status>,
) {
    let mut foreign = 0u64;
    loop {
        match inbound.message().await {
            Ok(Some(request)) => {
                let Some(Kind::Ack(ack)) = request.kind else {
                    continue;
                };
                if request.assembly_id.is_empty() || request.assembly_id == assembly_id {
                    shared.hub.ack(&assembly_id, ack.seq);
                } else {
                    foreign += 1;
                }
            }
            Ok(None) => {
                tracing::debug!(%assembly_id, "client half-closed its invalidation stream; acks end, events continue");
                break;
            }
            Err(status) => {
                // A message that did not decode, or the client went away
                // (then nobody reads the response anyway).
                let _ = failed.send(status);
                break;
            }
        }
    }
    if foreign > 0 {
        tracing::debug!(%assembly_id, foreign, "ignored acks naming another assembly_id");
    }
}

async fn subscribe(
    shared: Arc<Shared>,
    request: Request<Streaming<SubscribeRequest>>,
) -> Result<Response<Events>, Status> {
    let caller = authenticate(&shared.tokens, request.metadata(), None)?;
    let mut inbound = request.into_inner();
    let first = tokio::select! {
        first = tokio::time::timeout(shared.limits.handshake_timeout, inbound.message()) => first,
        () = shared.shutdown.triggered() => return Err(Status::unavailable("gateway is shutting down")),
    };
    let first = match first {
        Err(_) => {
            return Err(Status::deadline_exceeded(format!(
                "no first SubscribeRequest within {:?}",
                shared.limits.handshake_timeout
            )))
        }
        Ok(Err(status)) => return Err(status),
        Ok(Ok(None)) => {
            return Err(Status::invalid_argument(
                "the stream ended before its first SubscribeRequest",
            ))
        }
        Ok(Ok(Some(first))) => first,
    };
    let SubscribeRequest {
        assembly_id,
        kind: Some(Kind::Initial(initial)),
    } = first
    else {
        return Err(Status::invalid_argument(
            "the first SubscribeRequest must carry `initial`",
        ));
    };
    if assembly_id.is_empty() {
        return Err(Status::invalid_argument("assembly_id is empty"));
    }
    if assembly_id.len() > shared.limits.max_id_len {
        return Err(Status::invalid_argument(format!(
            "assembly_id is longer than {} bytes",
            shared.limits.max_id_len
        )));
    }
    let max_streams = shared.limits.max_invalidation_streams;
    let slot = shared
        .invalidation_streams
        .try_acquire(max_streams)
        .ok_or_else(|| {
            Status::resource_exhausted(format!(
                "too many invalidation streams ({max_streams}); raise GatewayBuilder::max_streams"
            ))
        })?;
    let last_seq_seen = initial.last_seq_seen;
    let hub_stream = shared
        .hub
        .subscribe(&assembly_id, caller.team(), last_seq_seen)
        .map_err(|e| match e {
            SubscribeError::Full(_) => {
                Status::resource_exhausted(format!("{e}; raise GatewayBuilder::max_subscribers"))
            }
            SubscribeError::OtherTeam(_) => Status::permission_denied(e.to_string()),
        })?;
    shared
        .invalidation_streams_opened
        .fetch_add(1, Ordering::Relaxed);
    tracing::debug!(%assembly_id, team = caller.team(), last_seq_seen, "invalidation stream opened");
    let (failed_tx, client_failed) = oneshot::channel();
    let acks = AckReader(tokio::spawn(read_acks(
        shared.clone(),
        assembly_id.clone(),
        inbound,
        failed_tx,
    )));
    let shutdown = {
        let shared = shared.clone();
        Box::pin(async move { shared.shutdown.triggered().await })
    };
    let epoch = MetadataValue::from(shared.epoch);
    let events = Events {
        lease: HubLease {
            shared,
            assembly_id,
            stream_id: hub_stream.stream_id,
            _slot: slot,
        },
        events: hub_stream.events,
        client_failed: Some(client_failed),
        shutdown,
        _acks: acks,
        done: false,
    };
    let mut response = Response::new(events);
    response
        .metadata_mut()
        .insert(tether_proto::GATEWAY_EPOCH_HEADER, epoch);
    Ok(response)
}

/// The response stream of one `Subscribe`: the hub's events, then the
/// stream's end.
///
/// Polled in this order: shutdown (ends with `UNAVAILABLE` at once), then
/// an event (queued ones first), then the end of the hub's channel
/// (`UNAVAILABLE` after every queued event), then a failed client message
/// (ends with its status). The client's clean half-close is not among
/// them: it ends nothing here.
pub(crate) struct Events {
    lease: HubLease,
    events: mpsc::Receiver<(u64, Arc<Payload>)>,
    /// Fires with the error that ended the client's side; dropped without
    /// firing when it ended cleanly.
    client_failed: Option<oneshot::Receiver<Status>>,
    shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
    _acks: AckReader,
    done: bool,
}

impl Events {
    fn end(&mut self, status: Status) -> Poll<Option<Result<InvalidationEvent, Status>>> {
        self.done = true;
        Poll::Ready(Some(Err(status)))
    }
}

impl Stream for Events {
    type Item = Result<InvalidationEvent, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if this.lease.shared.shutdown.is_triggered() {
            return this.end(Status::unavailable("gateway is shutting down"));
        }
        match this.events.poll_recv(cx) {
            Poll::Ready(Some((seq, payload))) => {
                return Poll::Ready(Some(Ok(InvalidationEvent {
                    seq,
                    payload: Some(Payload::clone(&payload)),
                })))
            }
            Poll::Ready(None) => {
                return this.end(Status::unavailable(
                    "the gateway closed this invalidation stream (the subscriber fell \
                     behind, a newer stream replaced it, or an operator closed it); \
                     resubscribe from the last applied seq",
                ))
            }
            Poll::Pending => {}
        }
        if this.shutdown.as_mut().poll(cx).is_ready() {
            return this.end(Status::unavailable("gateway is shutting down"));
        }
        // Only a failed client side ends the stream; a clean half-close
        // drops the sender, which is not an end.
        if let Some(failed) = &mut this.client_failed {
            match Pin::new(failed).poll(cx) {
                Poll::Ready(Ok(status)) => return this.end(status),
                Poll::Ready(Err(_)) => this.client_failed = None,
                Poll::Pending => {}
            }
        }
        Poll::Pending
    }
}
