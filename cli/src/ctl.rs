//! `tether ctl`: operator commands against a gateway, over
//! `tether.admin.v1.AdminService` and the reviewer's
//! `assembly.approval.v1.ApprovalService`. The agent commands
//! (`suspend-agent`, `resume-agent`, `kill-agent`, `policy-update`) reach
//! agents registered through `AgentLifecycleService` on their
//! `ControlStream`.

use std::path::PathBuf;

use tether_proto::admin::admin_service_client::AdminServiceClient;
use tether_proto::admin::{
    halt_request, AgentCommandResponse, HaltRequest, KillAgentRequest, ListAgentsRequest,
    ListSubscribersRequest, NotifyPolicyUpdateRequest, PauseOpRequest, PublishInvalidationRequest,
    ResumeAgentRequest, ResumeOpRequest, StatusRequest, SuspendAgentRequest, TerminateOpRequest,
};
use tether_proto::approval::approval_service_client::ApprovalServiceClient;
use tether_proto::approval::{ApprovalDecisionType, DecideRequest, ListPendingRequest};
use tether_proto::common::AgentId;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::common::{self, CliError};

/// The metadata key of the operator token.
const ADMIN_HEADER: &str = "x-tether-admin-token";

/// Arguments of `tether ctl`.
#[derive(Debug, clap::Args)]
pub(crate) struct CtlArgs {
    /// Gateway URL (`https://` for TLS).
    #[arg(long, global = true, value_name = "URL", default_value = common::DEFAULT_GATEWAY)]
    gateway: String,

    /// Operator token, sent as `x-tether-admin-token` (needed when the
    /// gateway was started with --admin-token).
    #[arg(long, global = true, value_name = "TOKEN")]
    admin_token: Option<String>,

    /// PEM CA certificate to trust for an `https://` gateway (default: the
    /// system's web roots).
    #[arg(long, global = true, value_name = "FILE")]
    ca_cert: Option<PathBuf>,

    #[command(subcommand)]
    command: CtlCommand,
}

/// The agent an op belongs to.
#[derive(Debug, clap::Args)]
struct OpTarget {
    /// The op, as `TRACE:SPAN` (`*` and `agent:AGENT` are accepted too).
    op_id: String,
    /// Organisation of the agent that runs the op.
    #[arg(long, value_name = "ORG")]
    org: String,
    /// Team of the agent that runs the op.
    #[arg(long, value_name = "TEAM")]
    team: String,
    /// Id of the agent that runs the op.
    #[arg(long, value_name = "AGENT")]
    agent: String,
}

/// A reviewer's verdict.
#[derive(Debug, clap::Args)]
struct Review {
    /// The approval request id (see `tether ctl pending`).
    id: String,
    /// Who decides, for the record.
    #[arg(long, value_name = "NAME", default_value = "tether-ctl")]
    by: String,
    /// Why, for the record.
    #[arg(long, value_name = "TEXT", default_value = "")]
    reason: String,
}

#[derive(Debug, clap::Subcommand)]
enum CtlCommand {
    /// Pause an op: its next check waits until it is resumed.
    Pause(OpTarget),
    /// Resume a paused op.
    Resume(OpTarget),
    /// Terminate an op for good: its checks fail at once.
    Terminate(OpTarget),
    /// Terminate every op of one agent, or of the whole fleet.
    Halt {
        /// The agent, as ORG/TEAM/AGENT.
        #[arg(
            long,
            value_name = "ORG/TEAM/AGENT",
            required_unless_present = "all",
            conflicts_with = "all"
        )]
        agent: Option<String>,
        /// Every op of every agent (fleet-wide kill switch).
        #[arg(long)]
        all: bool,
    },
    /// Publish a policy invalidation: cached decisions become stale.
    Invalidate {
        /// The agent whose decisions are stale; default: every agent.
        #[arg(long, value_name = "ID", default_value = "")]
        agent_id: String,
        /// The policy version now in force.
        #[arg(long, value_name = "N")]
        policy_version: u64,
        /// Only subscribers of this team; default: every team.
        #[arg(long, value_name = "TEAM", default_value = "")]
        team: String,
    },
    /// List the approvals waiting for a reviewer.
    Pending,
    /// Approve a pending request.
    Approve(Review),
    /// Deny (reject) a pending request.
    Deny(Review),
    /// The gateway's state and its invalidation subscribers (seq, acked,
    /// lag, connected).
    Status,
    /// Suspend an agent: a SuspendCommand on its control stream, and its
    /// heartbeats answer should_suspend until resume-agent.
    SuspendAgent {
        /// The agent, as ORG/TEAM/AGENT.
        #[arg(long, value_name = "ORG/TEAM/AGENT")]
        agent: String,
        /// Why, for the agent and the record.
        #[arg(long, value_name = "TEXT", default_value = "")]
        reason: String,
    },
    /// Resume a suspended agent.
    ResumeAgent {
        /// The agent, as ORG/TEAM/AGENT.
        #[arg(long, value_name = "ORG/TEAM/AGENT")]
        agent: String,
        /// A note, for the agent and the record.
        #[arg(long, value_name = "TEXT", default_value = "")]
        note: String,
    },
    /// Kill an agent: a KillCommand on its control stream.
    KillAgent {
        /// The agent, as ORG/TEAM/AGENT.
        #[arg(long, value_name = "ORG/TEAM/AGENT")]
        agent: String,
        /// Why, for the agent and the record.
        #[arg(long, value_name = "TEXT", default_value = "")]
        reason: String,
    },
    /// Tell an agent its policy changed: a PolicyUpdateCommand on its
    /// control stream, and policy_updated on its next heartbeat.
    PolicyUpdate {
        /// The agent, as ORG/TEAM/AGENT.
        #[arg(long, value_name = "ORG/TEAM/AGENT")]
        agent: String,
        /// The new policy's id.
        #[arg(long, value_name = "ID")]
        policy_id: String,
    },
    /// List the agents the gateway's lifecycle holds (registered, with a
    /// control stream, or suspended).
    Agents {
        /// Only agents of this team; default: every team.
        #[arg(long, value_name = "TEAM", default_value = "")]
        team: String,
    },
}

/// Adds the operator token to every request.
#[derive(Clone)]
struct AdminAuth(Option<AsciiMetadataValue>);

impl Interceptor for AdminAuth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(token) = &self.0 {
            req.metadata_mut().insert(ADMIN_HEADER, token.clone());
        }
        Ok(req)
    }
}

type Admin = AdminServiceClient<InterceptedService<Channel, AdminAuth>>;
type Approvals = ApprovalServiceClient<InterceptedService<Channel, AdminAuth>>;

async fn connect(args: &CtlArgs) -> Result<(Channel, AdminAuth), CliError> {
    let auth = match &args.admin_token {
        Some(t) => Some(
            MetadataValue::try_from(t.as_str())
                .map_err(|_| CliError::Input("--admin-token must be printable ASCII".into()))?,
        ),
        None => None,
    };
    let mut endpoint = Endpoint::from_shared(args.gateway.clone())
        .map_err(|e| CliError::Input(format!("invalid gateway URL {:?}: {e}", args.gateway)))?
        .connect_timeout(common::CONNECT_TIMEOUT)
        .timeout(std::time::Duration::from_secs(10));
    if args.gateway.starts_with("https://") {
        let mut tls = ClientTlsConfig::new().with_enabled_roots();
        if let Some(path) = &args.ca_cert {
            let pem = std::fs::read(path)
                .map_err(|e| CliError::Input(format!("cannot read {}: {e}", path.display())))?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| CliError::Input(format!("TLS: {}", common::error_chain(&e))))?;
    }
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| common::unreachable(&args.gateway, common::error_chain(&e)))?;
    Ok((channel, AdminAuth(auth)))
}

/// Run one operator command.
pub(crate) async fn run(args: CtlArgs, json: bool) -> Result<(), CliError> {
    let (channel, auth) = connect(&args).await?;
    let mut admin: Admin = AdminServiceClient::with_interceptor(channel.clone(), auth.clone());
    let mut approvals: Approvals = ApprovalServiceClient::with_interceptor(channel, auth);
    let agent_id = |t: &OpTarget| AgentId {
        org_id: t.org.clone(),
        team_id: t.team.clone(),
        agent_id: t.agent.clone(),
    };
    match &args.command {
        CtlCommand::Pause(t) => {
            let r = admin
                .pause_op(PauseOpRequest {
                    op_id: t.op_id.clone(),
                    agent_id: Some(agent_id(t)),
                })
                .await
                .map_err(|s| common::refused("pause", &s))?
                .into_inner();
            signal_sent("paused", &t.op_id, r.sequence, r.subscribers, json);
        }
        CtlCommand::Resume(t) => {
            let r = admin
                .resume_op(ResumeOpRequest {
                    op_id: t.op_id.clone(),
                    agent_id: Some(agent_id(t)),
                })
                .await
                .map_err(|s| common::refused("resume", &s))?
                .into_inner();
            signal_sent("resumed", &t.op_id, r.sequence, r.subscribers, json);
        }
        CtlCommand::Terminate(t) => {
            let r = admin
                .terminate_op(TerminateOpRequest {
                    op_id: t.op_id.clone(),
                    agent_id: Some(agent_id(t)),
                })
                .await
                .map_err(|s| common::refused("terminate", &s))?
                .into_inner();
            signal_sent("terminated", &t.op_id, r.sequence, r.subscribers, json);
        }
        CtlCommand::Halt { agent, all } => {
            let scope = match (agent, all) {
                (Some(a), _) => halt_request::Scope::Agent(parse_agent(a)?),
                (None, true) => halt_request::Scope::All(true),
                (None, false) => return Err(CliError::Input("halt needs --agent or --all".into())),
            };
            let r = admin
                .halt(HaltRequest { scope: Some(scope) })
                .await
                .map_err(|s| common::refused("halt", &s))?
                .into_inner();
            signal_sent("halted", &r.op_id, r.sequence, r.subscribers, json);
        }
        CtlCommand::Invalidate {
            agent_id,
            policy_version,
            team,
        } => {
            let r = admin
                .publish_invalidation(PublishInvalidationRequest {
                    agent_id: agent_id.clone(),
                    policy_version: *policy_version,
                    team_id: team.clone(),
                })
                .await
                .map_err(|s| common::refused("invalidate", &s))?
                .into_inner();
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "action": "invalidated",
                        "agent_id": agent_id,
                        "policy_version": policy_version,
                        "subscribers": r.subscribers,
                    })
                );
            } else {
                let who = if agent_id.is_empty() {
                    "every agent".to_owned()
                } else {
                    format!("agent {agent_id}")
                };
                println!(
                    "invalidated policy version {policy_version} for {who}: queued for {} subscribers",
                    r.subscribers
                );
            }
        }
        CtlCommand::Pending => {
            let r = approvals
                .list_pending(ListPendingRequest {})
                .await
                .map_err(|s| common::refused("pending", &s))?
                .into_inner();
            print_pending(&r.requests, json);
        }
        CtlCommand::Approve(review) => {
            decide(&mut approvals, review, ApprovalDecisionType::Approved, json).await?;
        }
        CtlCommand::Deny(review) => {
            decide(&mut approvals, review, ApprovalDecisionType::Rejected, json).await?;
        }
        CtlCommand::SuspendAgent { agent, reason } => {
            let r = admin
                .suspend_agent(SuspendAgentRequest {
                    agent_id: Some(parse_agent(agent)?),
                    reason: reason.clone(),
                })
                .await
                .map_err(|s| common::refused("suspend-agent", &s))?
                .into_inner();
            agent_commanded("suspended", agent, &r, json);
        }
        CtlCommand::ResumeAgent { agent, note } => {
            let r = admin
                .resume_agent(ResumeAgentRequest {
                    agent_id: Some(parse_agent(agent)?),
                    note: note.clone(),
                })
                .await
                .map_err(|s| common::refused("resume-agent", &s))?
                .into_inner();
            agent_commanded("resumed", agent, &r, json);
        }
        CtlCommand::KillAgent { agent, reason } => {
            let r = admin
                .kill_agent(KillAgentRequest {
                    agent_id: Some(parse_agent(agent)?),
                    reason: reason.clone(),
                })
                .await
                .map_err(|s| common::refused("kill-agent", &s))?
                .into_inner();
            agent_commanded("killed", agent, &r, json);
        }
        CtlCommand::PolicyUpdate { agent, policy_id } => {
            let r = admin
                .notify_policy_update(NotifyPolicyUpdateRequest {
                    agent_id: Some(parse_agent(agent)?),
                    policy_id: policy_id.clone(),
                })
                .await
                .map_err(|s| common::refused("policy-update", &s))?
                .into_inner();
            agent_commanded("policy-updated", agent, &r, json);
        }
        CtlCommand::Agents { team } => {
            let agents = admin
                .list_agents(ListAgentsRequest {
                    team_id: team.clone(),
                })
                .await
                .map_err(|s| common::refused("agents", &s))?
                .into_inner()
                .agents;
            print_agents(&agents, json);
        }
        CtlCommand::Status => {
            let status = admin
                .status(StatusRequest {})
                .await
                .map_err(|s| common::refused("status", &s))?
                .into_inner();
            let subs = admin
                .list_subscribers(ListSubscribersRequest {
                    team_id: String::new(),
                })
                .await
                .map_err(|s| common::refused("status", &s))?
                .into_inner()
                .subscribers;
            print_status(&args.gateway, &status, &subs, json);
        }
    }
    Ok(())
}

/// `ORG/TEAM/AGENT` as an [`AgentId`].
fn parse_agent(text: &str) -> Result<AgentId, CliError> {
    match text.split('/').collect::<Vec<_>>().as_slice() {
        [org, team, agent] if !org.is_empty() && !team.is_empty() && !agent.is_empty() => {
            Ok(AgentId {
                org_id: (*org).to_owned(),
                team_id: (*team).to_owned(),
                agent_id: (*agent).to_owned(),
            })
        }
        _ => Err(CliError::Input(format!(
            "--agent {text:?}: expected ORG/TEAM/AGENT"
        ))),
    }
}

fn signal_sent(action: &str, op_id: &str, sequence: u64, subscribers: u32, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({
                "action": action,
                "op_id": op_id,
                "sequence": sequence,
                "subscribers": subscribers,
            })
        );
    } else {
        println!("{action} {op_id} (sequence {sequence}, sent to {subscribers} streams)");
    }
}

fn agent_commanded(action: &str, agent: &str, r: &AgentCommandResponse, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({
                "action": action,
                "agent": agent,
                "delivered": r.delivered,
                "suspended": r.suspended,
            })
        );
    } else {
        let reached = if r.delivered {
            "sent on its control stream"
        } else {
            "no control stream open: not delivered"
        };
        let level = if r.suspended {
            "suspended"
        } else {
            "not suspended"
        };
        println!("{action} {agent} ({reached}; now {level})");
    }
}

fn print_agents(agents: &[tether_proto::admin::AgentInfo], json: bool) {
    let name = |a: &tether_proto::admin::AgentInfo| {
        a.agent_id
            .as_ref()
            .map(|id| format!("{}/{}/{}", id.org_id, id.team_id, id.agent_id))
            .unwrap_or_default()
    };
    let yes = |b: bool| if b { "yes" } else { "no" };
    if json {
        let list: Vec<_> = agents
            .iter()
            .map(|a| {
                serde_json::json!({
                    "agent": name(a),
                    "registered": a.registered,
                    "suspended": a.suspended,
                    "control_stream": a.control_stream,
                })
            })
            .collect();
        println!("{}", serde_json::json!({ "agents": list }));
        return;
    }
    if agents.is_empty() {
        println!("no agents");
        return;
    }
    println!(
        "{:<64} {:>10} {:>9} {:>14}",
        "AGENT", "REGISTERED", "SUSPENDED", "CONTROL STREAM"
    );
    for a in agents {
        println!(
            "{:<64} {:>10} {:>9} {:>14}",
            name(a),
            yes(a.registered),
            yes(a.suspended),
            yes(a.control_stream)
        );
    }
}

async fn decide(
    approvals: &mut Approvals,
    review: &Review,
    decision: ApprovalDecisionType,
    json: bool,
) -> Result<(), CliError> {
    let (verb, action) = match decision {
        ApprovalDecisionType::Approved => ("approve", "approved"),
        _ => ("deny", "denied"),
    };
    let r = approvals
        .decide(DecideRequest {
            request_id: review.id.clone(),
            decision: decision as i32,
            decided_by: review.by.clone(),
            reason: review.reason.clone(),
        })
        .await
        .map_err(|s| common::refused(format!("{verb} {}", review.id), &s))?
        .into_inner();
    if !r.success {
        return Err(CliError::Refused {
            what: format!("{verb} {}", review.id),
            cause: r.error_message,
        });
    }
    if json {
        println!(
            "{}",
            serde_json::json!({"action": action, "request_id": review.id, "by": review.by})
        );
    } else {
        println!("{action} {} (by {})", review.id, review.by);
    }
    Ok(())
}

fn print_pending(requests: &[tether_proto::approval::PendingApproval], json: bool) {
    if json {
        let list: Vec<_> = requests
            .iter()
            .map(|p| {
                serde_json::json!({
                    "request_id": p.request_id,
                    "agent_id": p.agent_id,
                    "team_id": p.team_id,
                    "action": p.action,
                    "condition": p.condition_triggered,
                    "submitted_at": p.submitted_at,
                    "timeout_secs": p.timeout_secs,
                })
            })
            .collect();
        println!("{}", serde_json::json!({ "pending": list }));
        return;
    }
    if requests.is_empty() {
        println!("no pending approvals");
        return;
    }
    println!(
        "{:<24} {:<16} {:<12} {:>8}  ACTION",
        "ID", "AGENT", "TEAM", "TIMEOUT"
    );
    for p in requests {
        println!(
            "{:<24} {:<16} {:<12} {:>7}s  {}",
            p.request_id, p.agent_id, p.team_id, p.timeout_secs, p.action
        );
    }
}

fn print_status(
    url: &str,
    s: &tether_proto::admin::StatusResponse,
    subs: &[tether_proto::admin::SubscriberInfo],
    json: bool,
) {
    if json {
        let list: Vec<_> = subs
            .iter()
            .map(|x| {
                serde_json::json!({
                    "assembly_id": x.assembly_id,
                    "team_id": x.team_id,
                    "seq": x.last_seq_sent,
                    "acked": x.last_acked_seq,
                    "lag": x.lag,
                    "ring_size": x.ring_size,
                    "ring_capacity": x.ring_capacity,
                    "connected": x.connected,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "gateway": {
                    "url": url,
                    "version": s.version,
                    "started_at_unix_ms": s.started_at_unix_ms,
                    "invalidation_subscribers": s.invalidation_subscribers,
                    "invalidation_streams": s.invalidation_streams,
                    "op_control_streams": s.op_control_streams,
                    "pending_approvals": s.pending_approvals,
                    "op_control_sequence": s.op_control_sequence,
                    "ops_tracked": s.ops_tracked,
                    "halted_all": s.halted_all,
                    "registered_agents": s.registered_agents,
                    "agent_control_streams": s.agent_control_streams,
                },
                "subscribers": list,
            })
        );
        return;
    }
    println!("gateway {url} (tether {})", s.version);
    println!(
        "  invalidation: {} subscribers, {} streams open; op-control: {} streams open",
        s.invalidation_subscribers, s.invalidation_streams, s.op_control_streams
    );
    println!(
        "  pending approvals: {}; ops tracked: {}; op-control sequence: {}; fleet halted: {}",
        s.pending_approvals,
        s.ops_tracked,
        s.op_control_sequence,
        if s.halted_all { "yes" } else { "no" }
    );
    println!(
        "  agents: {} registered, {} control streams open",
        s.registered_agents, s.agent_control_streams
    );
    if subs.is_empty() {
        println!("no subscribers");
        return;
    }
    println!(
        "{:<28} {:<12} {:>8} {:>8} {:>6} {:>11}  CONNECTED",
        "SUBSCRIBER", "TEAM", "SEQ", "ACKED", "LAG", "RING"
    );
    for x in subs {
        println!(
            "{:<28} {:<12} {:>8} {:>8} {:>6} {:>11}  {}",
            x.assembly_id,
            x.team_id,
            x.last_seq_sent,
            x.last_acked_seq,
            x.lag,
            format!("{}/{}", x.ring_size, x.ring_capacity),
            if x.connected { "yes" } else { "no" }
        );
    }
}
