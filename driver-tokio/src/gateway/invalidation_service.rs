//! `assembly.gateway.v1.InvalidationService/Subscribe`: the invalidation
//! stream, backed by the [`InvalidationHub`](super::hub::InvalidationHub).
//!
//! Guarantees:
//! - credentials are checked before anything is read (`UNAUTHENTICATED`);
//!   the subscriber's team is its token's team, `""` when anonymous;
//! - the first client message must carry a non-empty `assembly_id` (at most
//!   the configured length) and `initial`, within the handshake timeout,
//!   else the call fails with `INVALID_ARGUMENT` (`DEADLINE_EXCEEDED` for a
//!   silent client) before any event is sent;
//! - the response carries this gateway lifetime's epoch in the
//!   `x-tether-gateway-epoch` header ([`crate::GATEWAY_EPOCH_HEADER`]), the
//!   same for every stream of one lifetime and different after a restart;
//! - events are the hub's replay after `last_seq_seen`, then live events,
//!   each as `InvalidationEvent{seq, payload}`;
//! - an `assembly_id` already subscribed from another team is
//!   `PERMISSION_DENIED`; past the subscriber or stream bound,
//!   `RESOURCE_EXHAUSTED`;
//! - later client messages ack events (`hub.ack_all`: the acks already
//!   received are read together and applied in order under one hub lock);
//!   other kinds are ignored. Acks are read by their own task, so they are
//!   taken while events are being sent and while the client's receive
//!   window is full: a client that waits for room to send an ack never
//!   deadlocks against a gateway waiting for room to send an event;
//! - when the hub closes the subscriber's channel (it fell behind, or a
//!   newer stream of the same `assembly_id` replaced this one) the response
//!   ends with `UNAVAILABLE`, after every event already queued, so the
//!   client resubscribes; on gateway shutdown it ends with `UNAVAILABLE` at
//!   once;
//! - when the client ends or drops its side, the stream ends and the hub
//!   marks the subscriber disconnected (a drop guard, so no path is missed).

use std::pin::Pin;
use std::sync::Arc;

use futures::{FutureExt, Stream};
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

/// The response stream of `Subscribe`.
pub(crate) type EventStream = Pin<Box<dyn Stream<Item = Result<InvalidationEvent, Status>> + Send>>;

/// The `InvalidationService` of one gateway.
pub(crate) struct InvalidationSvc {
    shared: Arc<Shared>,
}

impl InvalidationSvc {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        InvalidationSvc { shared }
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

struct Open {
    lease: HubLease,
    events: mpsc::Receiver<(u64, Payload)>,
    /// Fires when the client ended or dropped its side.
    client_ended: oneshot::Receiver<()>,
    _acks: AckReader,
    done: bool,
}

/// The task reading one stream's acks; stopped when the stream goes.
struct AckReader(JoinHandle<()>);

impl Drop for AckReader {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Read the client's acks until it ends its side: every ack already
/// received is read in one go and handed to the hub under one lock
/// ([`InvalidationHub::ack_all`](super::hub::InvalidationHub::ack_all)).
async fn read_acks(
    shared: Arc<Shared>,
    assembly_id: String,
    mut inbound: Streaming<SubscribeRequest>,
    ended: oneshot::Sender<()>,
) {
    let mut acks = Vec::new();
    loop {
        let mut message = inbound.message().await;
        acks.clear();
        let client_ended = loop {
            match message {
                Ok(Some(m)) => {
                    if let Some(Kind::Ack(ack)) = m.kind {
                        acks.push(ack.seq);
                    }
                }
                Ok(None) | Err(_) => break true,
            }
            // `Streaming::message` is cancel-safe: polling it once and
            // dropping it loses nothing.
            match inbound.message().now_or_never() {
                Some(next) => message = next,
                None => break false,
            }
        };
        if !acks.is_empty() {
            shared.hub.ack_all(&assembly_id, &acks);
        }
        if client_ended {
            let _ = ended.send(());
            return;
        }
    }
}

#[tonic::async_trait]
impl InvalidationService for InvalidationSvc {
    type SubscribeStream = EventStream;

    async fn subscribe(
        &self,
        request: Request<Streaming<SubscribeRequest>>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let shared = &self.shared;
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
        let last_seq_seen = match first.kind {
            Some(Kind::Initial(init)) => init.last_seq_seen,
            _ => {
                return Err(Status::invalid_argument(
                    "the first SubscribeRequest must carry `initial`",
                ))
            }
        };
        let assembly_id = first.assembly_id;
        if assembly_id.is_empty() {
            return Err(Status::invalid_argument("assembly_id is empty"));
        }
        if assembly_id.len() > shared.limits.max_id_len {
            return Err(Status::invalid_argument(format!(
                "assembly_id is longer than {} bytes",
                shared.limits.max_id_len
            )));
        }
        let slot = shared
            .invalidation_streams
            .try_acquire(shared.limits.max_invalidation_streams)
            .ok_or_else(|| {
                Status::resource_exhausted(format!(
                    "too many invalidation streams ({})",
                    shared.limits.max_invalidation_streams
                ))
            })?;
        let hub_stream = shared
            .hub
            .subscribe(&assembly_id, caller.team(), last_seq_seen)
            .map_err(|e| match e {
                SubscribeError::Full(_) => Status::resource_exhausted(e.to_string()),
                SubscribeError::OtherTeam(_) => Status::permission_denied(e.to_string()),
            })?;
        tracing::debug!(%assembly_id, team = caller.team(), last_seq_seen, "invalidation stream opened");
        let (ended_tx, client_ended) = oneshot::channel();
        let acks = AckReader(tokio::spawn(read_acks(
            shared.clone(),
            assembly_id.clone(),
            inbound,
            ended_tx,
        )));
        let open = Open {
            lease: HubLease {
                shared: shared.clone(),
                assembly_id,
                stream_id: hub_stream.stream_id,
                _slot: slot,
            },
            events: hub_stream.events,
            client_ended,
            _acks: acks,
            done: false,
        };
        let mut response: Response<Self::SubscribeStream> =
            Response::new(Box::pin(futures::stream::unfold(open, next_event)));
        response.metadata_mut().insert(
            crate::GATEWAY_EPOCH_HEADER,
            MetadataValue::from(shared.epoch),
        );
        Ok(response)
    }
}

/// The next item of an open stream: an event, or the stream's end.
///
/// An event already queued is returned at once, without setting up the
/// wait below (shutdown still goes first). Acks are read by the stream's
/// own task ([`read_acks`]).
async fn next_event(mut open: Open) -> Option<(Result<InvalidationEvent, Status>, Open)> {
    if open.done {
        return None;
    }
    let shared = open.lease.shared.clone();
    if !shared.shutdown.is_triggered() {
        if let Ok((seq, payload)) = open.events.try_recv() {
            return Some((
                Ok(InvalidationEvent {
                    seq,
                    payload: Some(payload),
                }),
                open,
            ));
        }
    }
    tokio::select! {
        biased;
        () = shared.shutdown.triggered() => {
            open.done = true;
            Some((Err(Status::unavailable("gateway is shutting down")), open))
        }
        event = open.events.recv() => {
            match event {
                Some((seq, payload)) => Some((
                    Ok(InvalidationEvent { seq, payload: Some(payload) }),
                    open,
                )),
                None => {
                    open.done = true;
                    Some((
                        Err(Status::unavailable(
                            "the gateway closed this invalidation stream (the subscriber fell \
                             behind, or a newer stream replaced it); resubscribe from the last \
                             applied seq",
                        )),
                        open,
                    ))
                }
            }
        }
        // The client ended or dropped its side (or its ack reader
        // stopped): end ours; the lease marks the subscriber
        // disconnected.
        _ = &mut open.client_ended => None,
    }
}
