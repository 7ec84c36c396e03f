//! `assembly.approval.v1.ApprovalService`: the reviewer's side, backed by
//! the [`ApprovalDesk`](super::desk::ApprovalDesk).
//!
//! Guarantees:
//! - `ListPending` lists every request still waiting, with its team;
//! - `Decide` with `APPROVED` or `REJECTED` records the verdict once,
//!   releases every CheckAction held on it, and queues
//!   `ApprovalResolved{request_id, APPROVED | DENIED}` for the subscribers of
//!   the approval's team only; an unknown, expired or already decided id
//!   answers `success: false` with an `error_message`; an unspecified or
//!   unknown decision is `INVALID_ARGUMENT`;
//! - `WatchApprovals` streams approvals filed after it opened; a watcher
//!   that falls behind has its stream ended with `UNAVAILABLE` (call
//!   `ListPending`, then watch again); gateway shutdown ends it too; open
//!   watch streams are bounded.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tether_proto::approval::approval_service_server::ApprovalService;
use tether_proto::approval::{
    ApprovalDecisionType, ApprovalEvent, DecideRequest, DecideResponse, ListPendingRequest,
    ListPendingResponse, PendingApproval as WirePending, WatchApprovalsRequest,
};
use tokio::sync::broadcast;
use tonic::{Request, Response, Status};

use super::desk::{PendingApproval, Review};
use super::state::{GaugeSlot, Shared};

/// The response stream of `WatchApprovals`.
pub(crate) type ApprovalStream = Pin<Box<dyn Stream<Item = Result<ApprovalEvent, Status>> + Send>>;

/// The `ApprovalService` of one gateway.
pub(crate) struct ApprovalSvc {
    shared: Arc<Shared>,
}

impl ApprovalSvc {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        ApprovalSvc { shared }
    }
}

struct Watch {
    shared: Arc<Shared>,
    rx: broadcast::Receiver<PendingApproval>,
    done: bool,
    _slot: GaugeSlot,
}

#[tonic::async_trait]
impl ApprovalService for ApprovalSvc {
    async fn list_pending(
        &self,
        _request: Request<ListPendingRequest>,
    ) -> Result<Response<ListPendingResponse>, Status> {
        let requests = self.shared.desk.list().iter().map(wire_pending).collect();
        Ok(Response::new(ListPendingResponse { requests }))
    }

    async fn decide(
        &self,
        request: Request<DecideRequest>,
    ) -> Result<Response<DecideResponse>, Status> {
        let req = request.into_inner();
        let verdict = match ApprovalDecisionType::try_from(req.decision) {
            Ok(ApprovalDecisionType::Approved) => Review::Approved,
            Ok(ApprovalDecisionType::Rejected) => Review::Denied,
            Ok(ApprovalDecisionType::DecisionUnspecified) | Err(_) => {
                return Err(Status::invalid_argument(
                    "decision must be APPROVED or REJECTED",
                ))
            }
        };
        let response = match self.shared.decide(&req.request_id, verdict) {
            Ok(approval) => {
                tracing::info!(
                    approval = %approval.request_id,
                    ?verdict,
                    decided_by = %req.decided_by,
                    "approval decided"
                );
                DecideResponse {
                    success: true,
                    error_message: String::new(),
                }
            }
            Err(e) => DecideResponse {
                success: false,
                error_message: e.to_string(),
            },
        };
        Ok(Response::new(response))
    }

    type WatchApprovalsStream = ApprovalStream;

    async fn watch_approvals(
        &self,
        _request: Request<WatchApprovalsRequest>,
    ) -> Result<Response<Self::WatchApprovalsStream>, Status> {
        let shared = &self.shared;
        let max = shared.limits.max_watch_streams;
        let slot = shared.watch_streams.try_acquire(max).ok_or_else(|| {
            Status::resource_exhausted(format!("too many approval watchers ({max})"))
        })?;
        let watch = Watch {
            shared: shared.clone(),
            rx: shared.desk.watch(),
            done: false,
            _slot: slot,
        };
        Ok(Response::new(Box::pin(futures::stream::unfold(
            watch, next_event,
        ))))
    }
}

async fn next_event(mut w: Watch) -> Option<(Result<ApprovalEvent, Status>, Watch)> {
    if w.done {
        return None;
    }
    let shared = w.shared.clone();
    let item = tokio::select! {
        biased;
        () = shared.shutdown.triggered() => Err(Status::unavailable("gateway is shutting down")),
        next = w.rx.recv() => match next {
            Ok(p) => Ok(ApprovalEvent {
                request_id: p.request_id,
                agent_id: p.agent.agent_id,
                action: p.action,
                condition_triggered: p.condition,
                submitted_at: p.submitted_at,
                timeout_secs: p.timeout_secs,
            }),
            Err(broadcast::error::RecvError::Lagged(missed)) => Err(Status::unavailable(format!(
                "approval watcher fell {missed} approvals behind; ListPending, then watch again"
            ))),
            Err(broadcast::error::RecvError::Closed) => return None,
        },
    };
    w.done = item.is_err();
    Some((item, w))
}

fn wire_pending(p: &PendingApproval) -> WirePending {
    WirePending {
        request_id: p.request_id.clone(),
        agent_id: p.agent.agent_id.clone(),
        action: p.action.clone(),
        condition_triggered: p.condition.clone(),
        submitted_at: p.submitted_at,
        timeout_secs: p.timeout_secs,
        team_id: p.team_id.clone(),
        routing_status: "pending".to_owned(),
    }
}
