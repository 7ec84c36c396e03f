//! A stream open that gets no answer is bounded: against a gateway that
//! accepts the op-control stream and never sends response headers, each
//! attempt ends at the open timeout, counts as a failure for the backoff
//! (the client keeps retrying), and `status()` names it. Real tonic on
//! 127.0.0.1.

use std::time::Duration;

use tether_proto::policy::policy_service_server::{PolicyService, PolicyServiceServer};
use tether_proto::policy::{
    BatchCheckRequest, BatchCheckResponse, CheckActionRequest, CheckActionResponse,
    OpControlMessage, OpControlSubscribeRequest,
};
use tether_tests::{bounded, client_config};
use tether_tokio::client::{KillSwitchDown, Tether};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

/// Accepts `OpControlStream` and never answers it.
struct Silent;

#[tonic::async_trait]
impl PolicyService for Silent {
    async fn check_action(
        &self,
        _req: Request<CheckActionRequest>,
    ) -> Result<Response<CheckActionResponse>, Status> {
        Err(Status::unimplemented("silent"))
    }

    async fn batch_check(
        &self,
        _req: Request<BatchCheckRequest>,
    ) -> Result<Response<BatchCheckResponse>, Status> {
        Err(Status::unimplemented("silent"))
    }

    type OpControlStreamStream = tokio_stream::Pending<Result<OpControlMessage, Status>>;

    async fn op_control_stream(
        &self,
        _req: Request<OpControlSubscribeRequest>,
    ) -> Result<Response<Self::OpControlStreamStream>, Status> {
        // No response headers, ever.
        std::future::pending().await
    }
}

#[tokio::test]
async fn an_unanswered_op_control_open_is_retried_and_named() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(PolicyServiceServer::new(Silent))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let open_timeout = Duration::from_millis(300);
    let tether = Tether::connect(client_config(&url).with_open_timeout(open_timeout)).unwrap();

    // Several attempts, each ended by the open timeout: the backoff goes on.
    let mut st = tether.watch_status();
    bounded(
        "three op-control attempts",
        st.wait_for(|s| s.op_control.reconnects >= 2),
    )
    .await
    .unwrap();
    let status = tether.status();
    assert!(!status.op_control.connected);
    assert!(
        status
            .op_control
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("no answer")),
        "{:?}",
        status.op_control.last_error
    );
    assert!(!status.kill_switch.reachable);
    let why = status.kill_switch.unreachable.clone();
    assert!(
        matches!(
            why,
            Some(KillSwitchDown::OpenUnanswered { waited }) if waited == open_timeout
        ) || matches!(why, Some(KillSwitchDown::Opening)),
        "{why:?}"
    );
    tether.shutdown(Duration::from_secs(1)).await;
    server.abort();
}

/// Accepts `Subscribe` and never answers it.
struct SilentInvalidation;

#[tonic::async_trait]
impl tether_proto::gateway::invalidation_service_server::InvalidationService
    for SilentInvalidation
{
    type SubscribeStream =
        tokio_stream::Pending<Result<tether_proto::gateway::InvalidationEvent, Status>>;

    async fn subscribe(
        &self,
        _req: Request<tonic::Streaming<tether_proto::gateway::SubscribeRequest>>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn an_unanswered_subscribe_open_is_retried_and_named() {
    use tether_proto::gateway::invalidation_service_server::InvalidationServiceServer;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(PolicyServiceServer::new(Silent))
            .add_service(InvalidationServiceServer::new(SilentInvalidation))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let tether =
        Tether::connect(client_config(&url).with_open_timeout(Duration::from_millis(300))).unwrap();
    let mut st = tether.watch_status();
    bounded(
        "three Subscribe attempts",
        st.wait_for(|s| s.invalidation.reconnects >= 2),
    )
    .await
    .unwrap();
    let status = tether.status().invalidation;
    assert!(!status.connected);
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("no answer")),
        "{:?}",
        status.last_error
    );
    tether.shutdown(Duration::from_secs(1)).await;
    server.abort();
}
