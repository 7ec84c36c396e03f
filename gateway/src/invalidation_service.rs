//! `assembly.gateway.v1.InvalidationService/Subscribe`: the invalidation
//! stream, backed by the [`InvalidationHub`](super::hub::InvalidationHub).
//!
//! The service is written by hand rather than generated, so that it can use
//! its own codec ([`SubscribeServerCodec`]): acks are read without a
//! `SubscribeRequest` (and its `assembly_id` copy) each, and events are
//! written from their payload encoded once at publish.
//!
//! Guarantees:
//! - credentials are checked before anything is read (`UNAUTHENTICATED`);
//!   the subscriber's team is its token's team, `""` when anonymous;
//! - the first client message must carry a non-empty `assembly_id` (at most
//!   the configured length) and `initial`, within the handshake timeout,
//!   else the call fails with `INVALID_ARGUMENT` (`DEADLINE_EXCEEDED` for a
//!   silent client) before any event is sent;
//! - the response carries this gateway lifetime's epoch in the
//!   `x-tether-gateway-epoch` header ([`tether_proto::GATEWAY_EPOCH_HEADER`]), the
//!   same for every stream of one lifetime and different after a restart;
//! - events are the hub's replay after `last_seq_seen`, then live events,
//!   each as `InvalidationEvent{seq, payload}`;
//! - an `assembly_id` already subscribed from another team is
//!   `PERMISSION_DENIED`; past the subscriber or stream bound,
//!   `RESOURCE_EXHAUSTED`;
//! - later client messages ack events (`hub.ack_all`: the acks already
//!   received are read together and applied in order under one hub lock);
//!   other kinds are ignored, and so is an ack naming another
//!   `assembly_id` (one without an id counts as this stream's);
//! - a malformed client message ends the response with `INVALID_ARGUMENT`
//!   (the codec of [`super::subscribe_codec`], which decodes as prost does
//!   without allocating per ack). Acks are read by their own task, so they are
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

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tonic::body::Body;
use tonic::codegen::{http, Body as HttpBody, BoxFuture, Service, StdError};
use tonic::metadata::MetadataValue;
use tonic::server::{Grpc, NamedService, StreamingService};
use tonic::{Request, Response, Status, Streaming};

use super::credentials::authenticate;
use super::hub::SubscribeError;
use super::state::{GaugeSlot, Shared};
use super::subscribe_codec::{
    EncodedPayload, IdMatch, Incoming, OutEvent, RequestKind, SubscribeServerCodec,
};

/// `/package.Service/Method` of the one method served here.
const SUBSCRIBE_PATH: &str = "/assembly.gateway.v1.InvalidationService/Subscribe";

/// The `InvalidationService` of one gateway, as a tower service that
/// `tonic`'s router serves under [`SubscribeServer::NAME`].
#[derive(Clone)]
pub(crate) struct SubscribeServer {
    shared: Arc<Shared>,
}

impl SubscribeServer {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        SubscribeServer { shared }
    }
}

impl NamedService for SubscribeServer {
    const NAME: &'static str = tether_proto::gateway::invalidation_service_server::SERVICE_NAME;
}

impl<B> Service<http::Request<B>> for SubscribeServer
where
    B: HttpBody + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != SUBSCRIBE_PATH {
            return Box::pin(async move { Ok(Status::unimplemented("").into_http()) });
        }
        let method = SubscribeMethod(self.shared.clone());
        Box::pin(async move {
            let mut grpc = Grpc::new(SubscribeServerCodec);
            Ok(grpc.streaming(method, req).await)
        })
    }
}

/// The `Subscribe` method, for [`Grpc::streaming`].
struct SubscribeMethod(Arc<Shared>);

impl StreamingService<Incoming> for SubscribeMethod {
    type Response = OutEvent;
    type ResponseStream = Events;
    type Future = BoxFuture<Response<Events>, Status>;

    fn call(&mut self, request: Request<Streaming<Incoming>>) -> Self::Future {
        let shared = self.0.clone();
        Box::pin(async move { subscribe(shared, request).await })
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

/// How the client's side ended: `Some` with the error to end the response
/// with (a malformed message), `None` when it just ended or went away.
type ClientEnd = Option<Status>;

/// Read the client's acks until it ends its side: every ack already
/// received is read in one go and handed to the hub under one lock
/// ([`InvalidationHub::ack_all`](super::hub::InvalidationHub::ack_all)).
async fn read_acks(
    shared: Arc<Shared>,
    assembly_id: String,
    mut inbound: Streaming<Incoming>,
    ended: oneshot::Sender<ClientEnd>,
) {
    let mut acks = Vec::new();
    let mut foreign = 0u64;
    loop {
        let mut message = inbound.message().await;
        acks.clear();
        let end = loop {
            match message {
                Ok(Some(Incoming::Later { id, kind })) => {
                    if let RequestKind::Ack(seq) = kind {
                        match id {
                            IdMatch::Same | IdMatch::Empty => acks.push(seq),
                            IdMatch::Other => foreign += 1,
                        }
                    }
                }
                // The decoder yields `First` only once, for the message
                // `subscribe` read.
                Ok(Some(Incoming::First { .. })) => {}
                Ok(None) => break Some(None),
                Err(status) if status.code() == tonic::Code::InvalidArgument => {
                    break Some(Some(status))
                }
                Err(_) => break Some(None),
            }
            // `Streaming::message` is cancel-safe: polling it once and
            // dropping it loses nothing.
            match futures::FutureExt::now_or_never(inbound.message()) {
                Some(next) => message = next,
                None => break None,
            }
        };
        if !acks.is_empty() {
            shared.hub.ack_all(&assembly_id, &acks);
        }
        if let Some(end) = end {
            if foreign > 0 {
                tracing::debug!(%assembly_id, foreign, "ignored acks naming another assembly_id");
            }
            let _ = ended.send(end);
            return;
        }
    }
}

async fn subscribe(
    shared: Arc<Shared>,
    request: Request<Streaming<Incoming>>,
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
    let (assembly_id, last_seq_seen) = match first {
        Incoming::First {
            assembly_id,
            kind: RequestKind::Initial(last_seq_seen),
        } => (assembly_id, last_seq_seen),
        _ => {
            return Err(Status::invalid_argument(
                "the first SubscribeRequest must carry `initial`",
            ))
        }
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
    let shutdown = {
        let shared = shared.clone();
        Box::pin(async move { shared.shutdown.triggered().await })
    };
    let events = Events {
        lease: HubLease {
            shared: shared.clone(),
            assembly_id,
            stream_id: hub_stream.stream_id,
            _slot: slot,
        },
        events: hub_stream.events,
        client_ended,
        shutdown,
        _acks: acks,
        done: false,
    };
    let mut response = Response::new(events);
    response.metadata_mut().insert(
        tether_proto::GATEWAY_EPOCH_HEADER,
        MetadataValue::from(shared.epoch),
    );
    Ok(response)
}

/// The response stream of one `Subscribe`: the hub's events, then the
/// stream's end.
///
/// Polled in this order: shutdown (ends with `UNAVAILABLE` at once), then
/// an event (queued ones first, without setting up any wait), then the
/// end of the hub's channel (`UNAVAILABLE` after every queued event), then
/// the client's end (the stream ends; with `INVALID_ARGUMENT` if the client
/// sent a malformed message). Acks are read by the stream's own task
/// ([`read_acks`]).
pub(crate) struct Events {
    lease: HubLease,
    events: mpsc::Receiver<(u64, EncodedPayload)>,
    /// Fires when the client ended or dropped its side.
    client_ended: oneshot::Receiver<ClientEnd>,
    shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
    _acks: AckReader,
    done: bool,
}

impl Events {
    fn shut_down(&mut self) -> Poll<Option<Result<OutEvent, Status>>> {
        self.done = true;
        Poll::Ready(Some(Err(Status::unavailable("gateway is shutting down"))))
    }
}

impl Stream for Events {
    type Item = Result<OutEvent, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if this.lease.shared.shutdown.is_triggered() {
            return this.shut_down();
        }
        match this.events.poll_recv(cx) {
            Poll::Ready(Some((seq, payload))) => {
                return Poll::Ready(Some(Ok(OutEvent { seq, payload })))
            }
            Poll::Ready(None) => {
                this.done = true;
                return Poll::Ready(Some(Err(Status::unavailable(
                    "the gateway closed this invalidation stream (the subscriber fell \
                     behind, or a newer stream replaced it); resubscribe from the last \
                     applied seq",
                ))));
            }
            Poll::Pending => {}
        }
        // Nothing queued: now wait for shutdown too.
        if this.shutdown.as_mut().poll(cx).is_ready() {
            return this.shut_down();
        }
        // The client ended or dropped its side (or its ack reader
        // stopped): end ours; the lease marks the subscriber disconnected.
        match Pin::new(&mut this.client_ended).poll(cx) {
            Poll::Ready(end) => {
                this.done = true;
                Poll::Ready(end.ok().flatten().map(Err))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
