//! [`AdminHandle`]: in-process operator control of a running gateway, the
//! same actions the `tether.admin.v1.AdminService` offers over gRPC.
//!
//! Guarantees: a handle acts on exactly the state its gateway serves (an
//! event published here is the one the streams deliver); it is cheap to
//! clone and usable from any task; it keeps working after the gateway shut
//! down (its streams are gone, so publishing reaches nobody live).

use std::sync::Arc;

use tether_proto::gateway::invalidation_event::Payload;
use tether_proto::gateway::{Decision as WireVerdict, PolicyInvalidated};

use super::desk::{DeskError, PendingApproval, Review};
use super::hub::SubscriberInfo;
use super::lifecycle::{AgentCommandReport, Command, RegisteredAgent, RegistryError};
use super::ops::{AgentKey, OpRecord, OpSignal, SignalError};
use super::state::Shared;

/// What a pause, resume, terminate or halt did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignalReport {
    /// The op id signalled (`*` or `agent:{id}` for halts).
    pub op_id: String,
    /// The `OpControlMessage.sequence` it was sent with.
    pub sequence: u64,
    /// Open op-control streams it was sent to.
    pub subscribers: usize,
}

/// The gateway's overall state (the `Status` RPC, which carries every
/// field but `invalidation_streams_opened`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GatewayStatus {
    /// Version of this tether build.
    pub version: String,
    /// When the gateway started, in milliseconds since the Unix epoch.
    pub started_at_unix_ms: u64,
    /// Invalidation subscribers known (connected or not).
    pub invalidation_subscribers: usize,
    /// Invalidation streams open now.
    pub invalidation_streams: usize,
    /// `Subscribe` streams accepted since the gateway started (a client
    /// reconnecting in a loop shows here).
    pub invalidation_streams_opened: u64,
    /// Op-control streams open now.
    pub op_control_streams: usize,
    /// Approval requests waiting for a verdict.
    pub pending_approvals: usize,
    /// Last op-control sequence sent; 0 if none.
    pub op_control_sequence: u64,
    /// Ops the gateway holds op-control state for.
    pub ops_tracked: usize,
    /// Whether the fleet-wide halt (`*`) was sent.
    pub halted_all: bool,
    /// Agents registered through `AgentLifecycleService` now.
    pub registered_agents: usize,
    /// Agent `ControlStream`s open now.
    pub agent_control_streams: usize,
}

/// Why an admin action failed.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// The op-control signal was refused (empty id, or terminated op).
    #[error(transparent)]
    Op(#[from] SignalError),
    /// No pending approval with this id (to take the team from).
    #[error("no pending approval {0}")]
    UnknownApproval(String),
    /// An argument is missing or malformed.
    #[error("{0}")]
    Invalid(String),
    /// The lifecycle holds as many agents as it may (see
    /// [`GatewayBuilder::max_agents`](crate::GatewayBuilder::max_agents)).
    #[error("too many agents ({0}); cannot hold one more")]
    TooManyAgents(usize),
}

/// In-process control of one running gateway. Cheap to clone.
#[derive(Clone)]
pub struct AdminHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for AdminHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminHandle")
            .field("started_at_unix_ms", &self.shared.started_at_unix_ms)
            .finish_non_exhaustive()
    }
}

impl AdminHandle {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        AdminHandle { shared }
    }

    /// Queue `PolicyInvalidated{agent_id, policy_version}` for the
    /// subscribers of `team_id` (every team when `None`); returns how many.
    /// An empty `agent_id` means every agent. The agents it names that the
    /// lifecycle holds answer their next heartbeat with `policy_updated`.
    pub fn publish_invalidation(
        &self,
        agent_id: &str,
        policy_version: u64,
        team_id: Option<&str>,
    ) -> usize {
        self.shared
            .lifecycle
            .agents
            .flag_policy_update(agent_id, team_id);
        self.shared.hub.publish(
            team_id,
            Arc::new(Payload::PolicyInvalidated(PolicyInvalidated {
                agent_id: agent_id.to_owned(),
                policy_version,
            })),
        )
    }

    /// Queue `ApprovalResolved{request_id, decision}` for the subscribers of
    /// `team_id`, or, when `None`, of the team of the pending approval
    /// `request_id` ([`AdminError::UnknownApproval`] when there is none).
    /// Only publishes: the approval, if pending, stays pending.
    pub fn publish_approval_resolved(
        &self,
        request_id: &str,
        decision: WireVerdict,
        team_id: Option<&str>,
    ) -> Result<usize, AdminError> {
        if request_id.is_empty() {
            return Err(AdminError::Invalid("request_id is empty".into()));
        }
        let team = match team_id {
            Some(t) => t.to_owned(),
            None => self
                .shared
                .desk
                .get(request_id)
                .map(|p| p.team_id)
                .ok_or_else(|| AdminError::UnknownApproval(request_id.to_owned()))?,
        };
        Ok(self.shared.publish_verdict(&team, request_id, decision))
    }

    fn signal(
        &self,
        op_id: &str,
        agent: Option<AgentKey>,
        signal: OpSignal,
    ) -> Result<SignalReport, AdminError> {
        let (record, subscribers) = self.shared.signal(op_id, agent, signal)?;
        Ok(report(record, subscribers))
    }

    /// Pause `op_id` of `agent` (ignored for `*` and `agent:{id}`).
    pub fn pause(&self, op_id: &str, agent: AgentKey) -> Result<SignalReport, AdminError> {
        self.signal(op_id, Some(agent), OpSignal::Pause)
    }

    /// Resume `op_id` of `agent`; refused once it was terminated.
    pub fn resume(&self, op_id: &str, agent: AgentKey) -> Result<SignalReport, AdminError> {
        self.signal(op_id, Some(agent), OpSignal::Resume)
    }

    /// Terminate `op_id` of `agent` for good.
    pub fn terminate(&self, op_id: &str, agent: AgentKey) -> Result<SignalReport, AdminError> {
        self.signal(op_id, Some(agent), OpSignal::Terminate)
    }

    /// Terminate every op of `agent` (op id `agent:{agent_id}`).
    pub fn halt_agent(&self, agent: &AgentKey) -> Result<SignalReport, AdminError> {
        if agent.agent_id.is_empty() {
            return Err(AdminError::Invalid("agent_id is empty".into()));
        }
        self.signal(
            &format!("agent:{}", agent.agent_id),
            None,
            OpSignal::Terminate,
        )
    }

    /// Terminate every op of every agent (op id `*`).
    pub fn halt_all(&self) -> Result<SignalReport, AdminError> {
        self.signal("*", None, OpSignal::Terminate)
    }

    /// End every open op-control stream of `agent` with `UNAVAILABLE` (its
    /// client reconnects and gets a fresh snapshot): after a credential
    /// change, or to move an agent to another gateway. Returns how many
    /// streams were asked to end.
    pub fn close_op_streams(&self, agent: &AgentKey) -> usize {
        self.shared.op_streams.close_agent(agent)
    }

    fn command(
        &self,
        agent: &AgentKey,
        command: Command,
    ) -> Result<AgentCommandReport, AdminError> {
        if agent.agent_id.is_empty() {
            return Err(AdminError::Invalid("agent_id is empty".into()));
        }
        tracing::info!(agent = %super::credentials::describe(agent), ?command, "agent command");
        self.shared
            .lifecycle
            .agents
            .command(agent, command)
            .map_err(|e| match e {
                RegistryError::Full(n) => AdminError::TooManyAgents(n),
                RegistryError::AlreadyRegistered(a) => AdminError::Invalid(a),
            })
    }

    /// Suspend `agent`: a `SuspendCommand{reason}` on its open
    /// `ControlStream` (if one is open; it is not queued otherwise), and
    /// its heartbeats answer `should_suspend: true` until
    /// [`resume_agent`](Self::resume_agent). The level outlives a
    /// deregistration, and a control stream opened while it holds starts
    /// with a `SuspendCommand`.
    pub fn suspend_agent(
        &self,
        agent: &AgentKey,
        reason: &str,
    ) -> Result<AgentCommandReport, AdminError> {
        self.command(agent, Command::Suspend(reason.to_owned()))
    }

    /// Resume `agent`: a `ResumeCommand{note}` on its open `ControlStream`
    /// (if any), and its heartbeats answer `should_suspend: false`.
    pub fn resume_agent(
        &self,
        agent: &AgentKey,
        note: &str,
    ) -> Result<AgentCommandReport, AdminError> {
        self.command(agent, Command::Resume(note.to_owned()))
    }

    /// Kill `agent`: a `KillCommand{reason}` on its open `ControlStream`
    /// (if any; not queued otherwise). The suspend level is unchanged and
    /// the agent's token stays valid; combine with
    /// [`halt_agent`](Self::halt_agent) to also fail its ops' checks.
    pub fn kill_agent(
        &self,
        agent: &AgentKey,
        reason: &str,
    ) -> Result<AgentCommandReport, AdminError> {
        self.command(agent, Command::Kill(reason.to_owned()))
    }

    /// Tell `agent` its policy changed to `policy_id`: a
    /// `PolicyUpdateCommand{new_policy_id}` (no policy bytes) on its open
    /// `ControlStream` (if any), and its next heartbeat answers
    /// `policy_updated: true` if the lifecycle holds it.
    pub fn notify_policy_update(
        &self,
        agent: &AgentKey,
        policy_id: &str,
    ) -> Result<AgentCommandReport, AdminError> {
        self.command(agent, Command::PolicyUpdate(policy_id.to_owned()))
    }

    /// The agents the lifecycle holds (registered, with an open control
    /// stream, or suspended), sorted by org, team and agent id.
    pub fn agents(&self) -> Vec<RegisteredAgent> {
        self.shared.lifecycle.agents.list()
    }

    /// End the open invalidation stream of `assembly_id` with `UNAVAILABLE`
    /// after the events already queued for it; its replay ring is kept, so
    /// the client's resubscribe loses nothing. Returns whether one was open.
    pub fn close_subscription(&self, assembly_id: &str) -> bool {
        self.shared.hub.close(assembly_id)
    }

    /// The invalidation subscribers of `team_id` (every team when `None`).
    pub fn list_subscribers(&self, team_id: Option<&str>) -> Vec<SubscriberInfo> {
        let mut subs = self.shared.hub.subscribers();
        if let Some(team) = team_id {
            subs.retain(|s| s.team_id == team);
        }
        subs
    }

    /// Capacity of each subscriber's replay ring.
    pub fn ring_capacity(&self) -> usize {
        self.shared.hub.ring_capacity()
    }

    /// The gateway's overall state.
    pub fn status(&self) -> GatewayStatus {
        let s = &self.shared;
        GatewayStatus {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at_unix_ms: s.started_at_unix_ms,
            invalidation_subscribers: s.hub.len(),
            invalidation_streams: s.invalidation_streams.get(),
            invalidation_streams_opened: s
                .invalidation_streams_opened
                .load(std::sync::atomic::Ordering::Relaxed),
            op_control_streams: s.op_streams.len(),
            pending_approvals: s.desk.len(),
            op_control_sequence: s.ops.last_sequence(),
            ops_tracked: s.ops.len(),
            halted_all: s
                .ops
                .get("*")
                .is_some_and(|r| r.signal == OpSignal::Terminate),
            registered_agents: s.lifecycle.agents.registered(),
            agent_control_streams: s.lifecycle.agents.streams(),
        }
    }

    /// Every op's latest signal, in sequence order.
    pub fn ops(&self) -> Vec<OpRecord> {
        self.shared.ops.all()
    }

    /// Approval requests waiting for a verdict, oldest first.
    pub fn pending(&self) -> Vec<PendingApproval> {
        self.shared.desk.list()
    }

    /// Decide a pending approval, as a reviewer's `Decide` does: held
    /// CheckAction calls are released and `ApprovalResolved` goes to the
    /// approval's team.
    pub fn decide(&self, request_id: &str, verdict: Review) -> Result<PendingApproval, DeskError> {
        self.shared.decide(request_id, verdict)
    }

    /// Forget every agent token, as a restarted gateway does: later calls
    /// with those tokens are `UNAUTHENTICATED` (when tokens are required).
    pub fn forget_tokens(&self) {
        self.shared.tokens.clear();
    }

    /// Accept `token` for `agent` from now on.
    pub fn add_token(&self, token: &str, agent: AgentKey) {
        self.shared.tokens.insert(token.to_owned(), agent);
    }
}

fn report(record: OpRecord, subscribers: usize) -> SignalReport {
    SignalReport {
        op_id: record.op_id,
        sequence: record.sequence,
        subscribers,
    }
}
