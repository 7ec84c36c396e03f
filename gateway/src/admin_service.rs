//! `tether.admin.v1.AdminService` over gRPC, backed by the same
//! [`AdminHandle`] as in-process control.
//!
//! Guarantees (per the RPC comments of `tether/admin/v1/admin.proto`):
//! - an empty `team_id` means every team; an empty `agent_id` in
//!   `PublishInvalidation` means every agent;
//! - `PublishApprovalResolved` with no team takes the team of the pending
//!   approval, `NOT_FOUND` when there is none; an unspecified or unknown
//!   decision is `INVALID_ARGUMENT`;
//! - pause, resume and terminate need a non-empty op id and, except for the
//!   reserved `*` and `agent:{id}`, the agent it belongs to
//!   (`INVALID_ARGUMENT`); pausing or resuming a terminated op is
//!   `FAILED_PRECONDITION` (terminate is final);
//! - `Halt` with no scope, `all: false` or an agent with no `agent_id` is
//!   `INVALID_ARGUMENT`, so a forgotten field never halts the fleet;
//! - the agent commands (`SuspendAgent`, `ResumeAgent`, `KillAgent`,
//!   `NotifyPolicyUpdate`) need an agent id with org, team and agent
//!   (`INVALID_ARGUMENT` otherwise) and answer whether the command reached
//!   an open `ControlStream`; a suspend past the agent bound is
//!   `RESOURCE_EXHAUSTED`;
//! - with an admin token configured, every call must carry it in
//!   `x-tether-admin-token` (`UNAUTHENTICATED` otherwise; see
//!   [`credentials`](super::credentials)).

use tether_proto::admin::admin_service_server::AdminService;
use tether_proto::admin::halt_request::Scope;
use tether_proto::admin::{
    AgentCommandResponse, AgentInfo, HaltRequest, HaltResponse, KillAgentRequest,
    ListAgentsRequest, ListAgentsResponse, ListSubscribersRequest, ListSubscribersResponse,
    NotifyPolicyUpdateRequest, PauseOpRequest, PauseOpResponse, PublishApprovalResolvedRequest,
    PublishApprovalResolvedResponse, PublishInvalidationRequest, PublishInvalidationResponse,
    ResumeAgentRequest, ResumeOpRequest, ResumeOpResponse, StatusRequest, StatusResponse,
    SubscriberInfo as WireSubscriber, SuspendAgentRequest, TerminateOpRequest, TerminateOpResponse,
};
use tether_proto::common::AgentId;
use tether_proto::gateway::Decision as WireVerdict;
use tonic::{Request, Response, Status};

use super::admin::{AdminError, AdminHandle, SignalReport};
use super::credentials::{agent_id, agent_key};
use super::lifecycle::AgentCommandReport;
use super::ops::{AgentKey, SignalError};

/// The `AdminService` of one gateway.
pub(crate) struct AdminSvc {
    admin: AdminHandle,
}

impl AdminSvc {
    pub(crate) fn new(admin: AdminHandle) -> Self {
        AdminSvc { admin }
    }
}

fn status(e: AdminError) -> Status {
    match &e {
        AdminError::Op(SignalError::Terminated(_)) => Status::failed_precondition(e.to_string()),
        AdminError::Op(_) | AdminError::Invalid(_) => Status::invalid_argument(e.to_string()),
        AdminError::UnknownApproval(_) => Status::not_found(e.to_string()),
        AdminError::TooManyAgents(_) => Status::resource_exhausted(e.to_string()),
    }
}

fn team(team_id: &str) -> Option<&str> {
    (!team_id.is_empty()).then_some(team_id)
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The agent of an op signal. Ordinary op ids need one (refused here
/// rather than signalled for the empty agent); the reserved ids need none.
fn op_agent(op_id: &str, agent: Option<&AgentId>) -> Result<AgentKey, Status> {
    let reserved = op_id == "*" || op_id.starts_with("agent:");
    match agent {
        Some(a) => Ok(agent_key(a)),
        None if reserved || op_id.is_empty() => Ok(AgentKey::default()),
        None => Err(Status::invalid_argument(format!(
            "op {op_id} needs agent_id (only `*` and `agent:{{id}}` do not)"
        ))),
    }
}

/// The agent of an agent command: org, team and agent id all given.
fn command_agent(agent: Option<&AgentId>) -> Result<AgentKey, Status> {
    match agent {
        Some(a) if !a.org_id.is_empty() && !a.team_id.is_empty() && !a.agent_id.is_empty() => {
            Ok(agent_key(a))
        }
        _ => Err(Status::invalid_argument(
            "agent_id with org_id, team_id and agent_id is required",
        )),
    }
}

fn command_response(
    report: Result<AgentCommandReport, AdminError>,
) -> Result<Response<AgentCommandResponse>, Status> {
    let r = report.map_err(status)?;
    Ok(Response::new(AgentCommandResponse {
        delivered: r.delivered,
        suspended: r.suspended,
    }))
}

#[tonic::async_trait]
impl AdminService for AdminSvc {
    async fn suspend_agent(
        &self,
        request: Request<SuspendAgentRequest>,
    ) -> Result<Response<AgentCommandResponse>, Status> {
        let r = request.into_inner();
        let agent = command_agent(r.agent_id.as_ref())?;
        command_response(self.admin.suspend_agent(&agent, &r.reason))
    }

    async fn resume_agent(
        &self,
        request: Request<ResumeAgentRequest>,
    ) -> Result<Response<AgentCommandResponse>, Status> {
        let r = request.into_inner();
        let agent = command_agent(r.agent_id.as_ref())?;
        command_response(self.admin.resume_agent(&agent, &r.note))
    }

    async fn kill_agent(
        &self,
        request: Request<KillAgentRequest>,
    ) -> Result<Response<AgentCommandResponse>, Status> {
        let r = request.into_inner();
        let agent = command_agent(r.agent_id.as_ref())?;
        command_response(self.admin.kill_agent(&agent, &r.reason))
    }

    async fn notify_policy_update(
        &self,
        request: Request<NotifyPolicyUpdateRequest>,
    ) -> Result<Response<AgentCommandResponse>, Status> {
        let r = request.into_inner();
        let agent = command_agent(r.agent_id.as_ref())?;
        command_response(self.admin.notify_policy_update(&agent, &r.policy_id))
    }

    async fn list_agents(
        &self,
        request: Request<ListAgentsRequest>,
    ) -> Result<Response<ListAgentsResponse>, Status> {
        let r = request.into_inner();
        let agents = self
            .admin
            .agents()
            .into_iter()
            .filter(|a| r.team_id.is_empty() || a.agent.team_id == r.team_id)
            .map(|a| AgentInfo {
                agent_id: Some(agent_id(&a.agent)),
                registered: a.registered,
                suspended: a.suspended,
                control_stream: a.control_stream,
            })
            .collect();
        Ok(Response::new(ListAgentsResponse { agents }))
    }

    async fn publish_invalidation(
        &self,
        request: Request<PublishInvalidationRequest>,
    ) -> Result<Response<PublishInvalidationResponse>, Status> {
        let r = request.into_inner();
        let n = self
            .admin
            .publish_invalidation(&r.agent_id, r.policy_version, team(&r.team_id));
        Ok(Response::new(PublishInvalidationResponse {
            subscribers: count(n),
        }))
    }

    async fn publish_approval_resolved(
        &self,
        request: Request<PublishApprovalResolvedRequest>,
    ) -> Result<Response<PublishApprovalResolvedResponse>, Status> {
        let r = request.into_inner();
        let decision = match WireVerdict::try_from(r.decision) {
            Ok(WireVerdict::Unspecified) | Err(_) => {
                return Err(Status::invalid_argument(
                    "decision must be APPROVED, DENIED or PENDING",
                ))
            }
            Ok(d) => d,
        };
        let n = self
            .admin
            .publish_approval_resolved(&r.request_id, decision, team(&r.team_id))
            .map_err(status)?;
        Ok(Response::new(PublishApprovalResolvedResponse {
            subscribers: count(n),
        }))
    }

    async fn pause_op(
        &self,
        request: Request<PauseOpRequest>,
    ) -> Result<Response<PauseOpResponse>, Status> {
        let r = request.into_inner();
        let s = self
            .admin
            .pause(&r.op_id, op_agent(&r.op_id, r.agent_id.as_ref())?)
            .map_err(status)?;
        Ok(Response::new(PauseOpResponse {
            sequence: s.sequence,
            subscribers: count(s.subscribers),
        }))
    }

    async fn resume_op(
        &self,
        request: Request<ResumeOpRequest>,
    ) -> Result<Response<ResumeOpResponse>, Status> {
        let r = request.into_inner();
        let s = self
            .admin
            .resume(&r.op_id, op_agent(&r.op_id, r.agent_id.as_ref())?)
            .map_err(status)?;
        Ok(Response::new(ResumeOpResponse {
            sequence: s.sequence,
            subscribers: count(s.subscribers),
        }))
    }

    async fn terminate_op(
        &self,
        request: Request<TerminateOpRequest>,
    ) -> Result<Response<TerminateOpResponse>, Status> {
        let r = request.into_inner();
        let s = self
            .admin
            .terminate(&r.op_id, op_agent(&r.op_id, r.agent_id.as_ref())?)
            .map_err(status)?;
        Ok(Response::new(TerminateOpResponse {
            sequence: s.sequence,
            subscribers: count(s.subscribers),
        }))
    }

    async fn halt(&self, request: Request<HaltRequest>) -> Result<Response<HaltResponse>, Status> {
        let report: SignalReport = match request.into_inner().scope {
            None => return Err(Status::invalid_argument("halt needs a scope: agent or all")),
            Some(Scope::All(false)) => {
                return Err(Status::invalid_argument(
                    "halt all must be true to halt the fleet",
                ))
            }
            Some(Scope::All(true)) => self.admin.halt_all(),
            Some(Scope::Agent(agent)) => self.admin.halt_agent(&agent_key(&agent)),
        }
        .map_err(status)?;
        Ok(Response::new(HaltResponse {
            op_id: report.op_id,
            sequence: report.sequence,
            subscribers: count(report.subscribers),
        }))
    }

    async fn list_subscribers(
        &self,
        request: Request<ListSubscribersRequest>,
    ) -> Result<Response<ListSubscribersResponse>, Status> {
        let r = request.into_inner();
        let ring_capacity = count(self.admin.ring_capacity());
        let subscribers = self
            .admin
            .list_subscribers(team(&r.team_id))
            .into_iter()
            .map(|s| WireSubscriber {
                assembly_id: s.assembly_id,
                team_id: s.team_id,
                last_seq_sent: s.last_seq,
                last_acked_seq: s.acked_seq,
                lag: s.lag,
                ring_size: u32::try_from(s.ring_len).unwrap_or(u32::MAX),
                ring_capacity,
                connected: s.connected,
            })
            .collect();
        Ok(Response::new(ListSubscribersResponse { subscribers }))
    }

    async fn status(
        &self,
        _request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let s = self.admin.status();
        Ok(Response::new(StatusResponse {
            version: s.version,
            started_at_unix_ms: s.started_at_unix_ms,
            invalidation_subscribers: count(s.invalidation_subscribers),
            invalidation_streams: count(s.invalidation_streams),
            op_control_streams: count(s.op_control_streams),
            pending_approvals: count(s.pending_approvals),
            op_control_sequence: s.op_control_sequence,
            ops_tracked: count(s.ops_tracked),
            halted_all: s.halted_all,
            registered_agents: count(s.registered_agents),
            agent_control_streams: count(s.agent_control_streams),
        }))
    }
}
