//! A `PolicyService` that answers `CheckAction` with a script: for tests of
//! what the client makes of a gateway's answers that tether's reference
//! gateway never gives (a rule-less DENY, REDACT) or that need a transport
//! it does not serve (mutual TLS). Its op-control stream stays open and
//! silent; `BatchCheck` is not served. It counts the calls it answered.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tether_proto::policy::policy_service_server::{PolicyService, PolicyServiceServer};
use tether_proto::policy::{
    BatchCheckRequest, BatchCheckResponse, CheckActionRequest, CheckActionResponse,
    OpControlMessage, OpControlSubscribeRequest,
};
use tonic::{Request, Response, Status};

/// Answers each `CheckAction` with `script(request)`.
pub struct ScriptedPolicy<F> {
    script: F,
    calls: Arc<AtomicUsize>,
}

impl<F> ScriptedPolicy<F>
where
    F: Fn(CheckActionRequest) -> CheckActionResponse + Send + Sync + 'static,
{
    /// The service, and a counter of the `CheckAction` calls it answered.
    pub fn new(script: F) -> (PolicyServiceServer<Self>, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let svc = ScriptedPolicy {
            script,
            calls: calls.clone(),
        };
        (PolicyServiceServer::new(svc), calls)
    }
}

#[tonic::async_trait]
impl<F> PolicyService for ScriptedPolicy<F>
where
    F: Fn(CheckActionRequest) -> CheckActionResponse + Send + Sync + 'static,
{
    async fn check_action(
        &self,
        req: Request<CheckActionRequest>,
    ) -> Result<Response<CheckActionResponse>, Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(Response::new((self.script)(req.into_inner())))
    }

    async fn batch_check(
        &self,
        _req: Request<BatchCheckRequest>,
    ) -> Result<Response<BatchCheckResponse>, Status> {
        Err(Status::unimplemented(
            "the scripted policy serves CheckAction only",
        ))
    }

    type OpControlStreamStream = tokio_stream::Pending<Result<OpControlMessage, Status>>;

    async fn op_control_stream(
        &self,
        _req: Request<OpControlSubscribeRequest>,
    ) -> Result<Response<Self::OpControlStreamStream>, Status> {
        Ok(Response::new(tokio_stream::pending()))
    }
}
