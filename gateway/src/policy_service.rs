//! `assembly.policy.v1.PolicyService`: glue from the generated tonic trait
//! to [`check`](super::check) and [`op_stream`](super::op_stream), which
//! state the guarantees.

use std::sync::Arc;

use tether_proto::policy::policy_service_server::PolicyService;
use tether_proto::policy::{
    BatchCheckRequest, BatchCheckResponse, CheckActionRequest, CheckActionResponse,
    OpControlSubscribeRequest,
};
use tonic::{Request, Response, Status};

use super::check::{batch_check, check_action};
use super::op_stream::{self, OpStream};
use super::state::Shared;

/// The `PolicyService` of one gateway.
pub(crate) struct PolicySvc {
    shared: Arc<Shared>,
}

impl PolicySvc {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        PolicySvc { shared }
    }
}

#[tonic::async_trait]
impl PolicyService for PolicySvc {
    async fn check_action(
        &self,
        request: Request<CheckActionRequest>,
    ) -> Result<Response<CheckActionResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        check_action(&self.shared, &metadata, message)
            .await
            .map(Response::new)
    }

    async fn batch_check(
        &self,
        request: Request<BatchCheckRequest>,
    ) -> Result<Response<BatchCheckResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        let responses = batch_check(&self.shared, &metadata, message.requests).await?;
        Ok(Response::new(BatchCheckResponse { responses }))
    }

    type OpControlStreamStream = OpStream;

    async fn op_control_stream(
        &self,
        request: Request<OpControlSubscribeRequest>,
    ) -> Result<Response<Self::OpControlStreamStream>, Status> {
        let (metadata, _, message) = request.into_parts();
        op_stream::open(self.shared.clone(), &metadata, message).map(Response::new)
    }
}
