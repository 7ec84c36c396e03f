//! A gateway that stops reading acks: the client neither drops acks nor
//! hangs; it reports the stream broken after `keepalive_timeout` and
//! resubscribes. The gateway here is a bare tonic `InvalidationService` on
//! 127.0.0.1 that reads the first message and then only sends. The client
//! acks every event (`with_acks(1, ..)`) so that its acks outgrow the
//! outbox and the HTTP/2 window within one stream; with cumulative acks at
//! the defaults the same stall is only reached after 64 times the events.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::Stream;
use tether_proto::gateway::invalidation_event::Payload;
use tether_proto::gateway::invalidation_service_server::{
    InvalidationService, InvalidationServiceServer,
};
use tether_proto::gateway::{InvalidationEvent, PolicyInvalidated, SubscribeRequest};
use tether_tests::{bounded, client_config};
use tether_tokio::client::Tether;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status, Streaming};

/// Events per stream: far more acks than the client's buffer plus the
/// HTTP/2 window can hold.
const EVENTS: u64 = 200_000;

#[derive(Clone, Default)]
struct DeafGateway {
    subscribes: Arc<AtomicU64>,
    /// The request streams, kept open and never read again.
    unread: Arc<Mutex<Vec<Streaming<SubscribeRequest>>>>,
}

type Events = Pin<Box<dyn Stream<Item = Result<InvalidationEvent, Status>> + Send>>;

#[tonic::async_trait]
impl InvalidationService for DeafGateway {
    type SubscribeStream = Events;

    async fn subscribe(
        &self,
        request: Request<Streaming<SubscribeRequest>>,
    ) -> Result<Response<Events>, Status> {
        let mut inbound = request.into_inner();
        let _first = inbound.message().await?;
        self.subscribes.fetch_add(1, Ordering::SeqCst);
        self.unread.lock().unwrap().push(inbound);
        let events = (1..=EVENTS).map(|seq| {
            Ok(InvalidationEvent {
                seq,
                payload: Some(Payload::PolicyInvalidated(PolicyInvalidated {
                    agent_id: String::new(),
                    policy_version: seq,
                })),
            })
        });
        Ok(Response::new(Box::pin(futures::stream::iter(events))))
    }
}

#[tokio::test]
async fn a_gateway_that_reads_no_acks_gets_a_resubscribe_not_a_hang() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let gw = DeafGateway::default();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(InvalidationServiceServer::new(gw.clone()))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    // One ack per event, so the acks fill the outbox and the HTTP/2 window
    // (cumulative acks, one per 64 events, would need 64 times the events).
    let mut config =
        client_config(&format!("http://{addr}")).with_acks(1, Duration::from_millis(20));
    config.keepalive_timeout = Duration::from_millis(300);
    let tether = Tether::connect(config).expect("valid config");
    let mut status = tether.watch_status();
    let at_stall = bounded(
        "the stalled ack stream reported",
        status.wait_for(|s| {
            s.invalidation
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("read no ack"))
        }),
    )
    .await
    .expect("status open")
    .invalidation
    .clone();
    let err = at_stall.last_error.unwrap_or_default();
    assert!(err.contains("resubscribing"), "{err}");
    // The first stream stopped applying once its acks could not be sent:
    // it neither dropped acks to run through every event nor hung.
    assert!(
        at_stall.events_applied < EVENTS,
        "applied {} of {EVENTS} before the stall was reported",
        at_stall.events_applied
    );
    bounded("a resubscribe", async {
        while gw.subscribes.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    tether.shutdown(Duration::from_secs(1)).await;
    server.abort();
}
