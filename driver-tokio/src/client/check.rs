//! The per-tool-call decision pipeline behind [`Tether::check`](super::Tether::check).
//!
//! Order: op control (terminated: deny at once; paused: wait), then the
//! policy cache, then a check slot and CheckAction (bounded by the approval
//! deadline, since a gateway may hold the call until a reviewer decides),
//! then (on PENDING) the approval wait.
//! A terminate reaches the check wherever it is waiting and ends it at once.
//!
//! Guarantees: the pipeline only sequences the core machines' answers; the
//! decisions themselves (state of an op, cache freshness, approval outcome)
//! are the machines'. A fetch that began before an invalidation is never
//! cached (the cache machine refuses it). The approval deadline gives the
//! configured fallback with `VerdictSource::ApprovalDeadline`, never an
//! implicit denial, whether the gateway answered PENDING or held the call
//! (then `approval_id` is empty: the gateway named none).

use std::time::Duration;

use tether_core::answer::{
    classify, AnswerDecision, AnswerMeaning, FinalDecision, GatewayAnswer, InvalidAnswer,
};
use tether_core::approval::ApprovalOutcome;
use tether_core::policy_cache::{CacheKey, FetchTicket, Lookup};
use tether_proto::common::{AgentId, Decision as WireDecision};
use tether_proto::policy::policy_service_client::PolicyServiceClient;
use tether_proto::policy::{ActionContext, BatchCheckRequest, CheckActionRequest};
use tokio::time::Instant;

use super::action::Checkable;
use super::error::{ProtocolError, TetherError};
use super::lifecycle::RegistrationPhase;
use super::ops::OpBlocked;
use super::shared::{attach_token, Cached, Shared};
use super::status::{KillSwitchDown, KillSwitchStatus};
use super::verdict::{Decision, Redaction, Verdict, VerdictSource};

/// A tool call to be checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ToolCall {
    /// The tool's name (what the gateway's rules match).
    pub tool_name: String,
    /// Where the tool comes from (an MCP server, a plugin), if known.
    pub tool_source: String,
    /// The call's arguments as JSON.
    pub args_json: Vec<u8>,
    /// The URL the call will reach, if any.
    pub target_url: String,
}

impl ToolCall {
    /// A call of `tool_name` with no arguments.
    pub fn new(tool_name: impl Into<String>) -> Self {
        ToolCall {
            tool_name: tool_name.into(),
            ..Default::default()
        }
    }

    /// The same call with JSON arguments.
    pub fn with_args(mut self, args_json: impl Into<Vec<u8>>) -> Self {
        self.args_json = args_json.into();
        self
    }
}

enum Step<T> {
    Done(T),
    Terminated,
}

/// Race `fut` against a terminate of `op_id`.
async fn unless_terminated<T>(
    shared: &Shared,
    op_id: &str,
    fut: impl std::future::Future<Output = T>,
) -> Step<T> {
    tokio::select! {
        biased;
        _ = shared.ops.terminated(op_id) => Step::Terminated,
        v = fut => Step::Done(v),
    }
}

/// A verdict of this check, its latency measured from `started`.
fn verdict(started: Instant, decision: Decision, source: VerdictSource, reason: String) -> Verdict {
    Verdict {
        decision,
        redactions: Vec::new(),
        source,
        reason,
        latency: started.elapsed(),
    }
}

fn terminated(started: Instant, op_id: &str) -> Verdict {
    verdict(
        started,
        Decision::Deny,
        VerdictSource::Terminated,
        format!("op {op_id} was terminated"),
    )
}

/// Step 1, op control: `None` when the op may run, else its verdict.
async fn gate(shared: &Shared, op_id: &str, started: Instant) -> Option<Verdict> {
    match shared.ops.wait_runnable(op_id).await {
        Ok(()) => None,
        Err(OpBlocked::Terminated) => Some(terminated(started, op_id)),
        Err(OpBlocked::OutageDeny) => Some(verdict(
            started,
            Decision::Deny,
            VerdictSource::OutagePolicy,
            "op-control stream down past its grace; outage policy denies".into(),
        )),
        Err(OpBlocked::HoldExpired { bound }) => {
            let status = shared.status.get();
            let mut reason = hold_expired_reason(&status.kill_switch, bound);
            // A refused or failing registration is why the stream is
            // refused: say that first.
            if let Some(r) = status.registration.as_ref().filter(|r| {
                matches!(
                    r.phase,
                    RegistrationPhase::Refused { .. }
                        | RegistrationPhase::Registering {
                            last_error: Some(_),
                            ..
                        }
                )
            }) {
                reason = format!("agent {}: {}; {reason}", r.agent_id, r.phase);
            }
            Some(verdict(
                started,
                Decision::Deny,
                VerdictSource::OutagePolicy,
                reason,
            ))
        }
        Err(OpBlocked::FailedClosed(why)) => Some(verdict(
            started,
            Decision::Deny,
            VerdictSource::OutagePolicy,
            format!("op control failed closed: {why}"),
        )),
    }
}

/// The reason of a check the outage hold limit ended: the kill switch's
/// own cause (why the stream is down, for how long) and the bound, e.g.
/// "op-control stream refused: credential refused (unauthenticated or
/// permission denied: token unknown) for 61.0 s; held checks end 60.0 s
/// after the stream is lost".
fn hold_expired_reason(k: &KillSwitchStatus, bound: Duration) -> String {
    let cause = match &k.unreachable {
        None if k.reachable => "op-control stream back but still settling after an outage".into(),
        None => "op-control stream down".into(),
        Some(KillSwitchDown::Opening) => "op-control stream down (reopening, no answer yet)".into(),
        Some(KillSwitchDown::StreamLost { error }) => {
            format!("op-control stream lost ({error})")
        }
        Some(KillSwitchDown::OpenRefused { code, message }) => {
            format!("op-control stream refused: {code:?} ({message})")
        }
        Some(KillSwitchDown::CredentialRefused { message }) => format!(
            "op-control stream refused: credential refused (unauthenticated or permission \
             denied: {message})"
        ),
        Some(KillSwitchDown::OpenUnanswered { waited }) => format!(
            "op-control stream unanswered (each open timed out after {:.1} s)",
            waited.as_secs_f64()
        ),
        Some(KillSwitchDown::ShutDown) => "op-control stream closed: the client shut down".into(),
    };
    let down = std::time::SystemTime::now()
        .duration_since(k.since)
        .unwrap_or_default();
    format!(
        "{cause} for {:.1} s; held checks end {:.1} s after the stream is lost (outage grace \
         plus hold limit), and checks are denied until it is back",
        down.as_secs_f64(),
        bound.as_secs_f64()
    )
}

/// Step 2, the policy cache: the cached verdict, or the fetch ticket that
/// lets the answer be cached later (refused if an invalidation comes in
/// between).
fn lookup<A: Checkable + ?Sized>(
    shared: &Shared,
    call: &A,
    started: Instant,
) -> Result<Verdict, (CacheKey, FetchTicket)> {
    let key = CacheKey::new(shared.agent_id(), call.fingerprint());
    let cached = shared.cache.with(|c, now| match c.get(now, &key) {
        Lookup::Hit(v) => Some(v.clone()),
        _ => None,
    });
    if let Some(hit) = cached {
        let mut v = verdict(started, hit.decision, VerdictSource::Cache, hit.reason);
        v.redactions = hit.redactions;
        return Ok(v);
    }
    let ticket = shared
        .cache
        .read(|c| c.begin_fetch(shared.clock.now(), &key));
    Err((key, ticket))
}

/// The fallback when the gateway held the call(s) past the approval
/// deadline without answering.
fn held_past_deadline(shared: &Shared, started: Instant) -> Verdict {
    verdict(
        started,
        shared.config.approval_fallback,
        VerdictSource::ApprovalDeadline {
            approval_id: String::new(),
        },
        format!(
            "the gateway held the call past the approval deadline of {}s without an answer \
             (a reviewer may still decide it); fallback applied",
            shared.config.approval_deadline.as_secs_f64()
        ),
    )
}

pub(crate) async fn check<A: Checkable + ?Sized>(
    shared: &Shared,
    op_id: &str,
    call: &A,
) -> Result<Verdict, TetherError> {
    let started = Instant::now();
    if let Some(v) = gate(shared, op_id, started).await {
        return Ok(v);
    }
    let (key, ticket) = match lookup(shared, call, started) {
        Ok(hit) => return Ok(hit),
        Err(miss) => miss,
    };

    // 3. CheckAction: a slot on the checks' connection (a typed error when
    // none frees in time), then the call, raced with a terminate and bounded
    // by the approval deadline: a gateway may hold the call open until a
    // reviewer decides (Agent Assembly's does), and the deadline applies to
    // a held call as it does to a PENDING answer.
    let slot = match unless_terminated(shared, op_id, shared.slots.acquire()).await {
        Step::Terminated => return Ok(terminated(started, op_id)),
        Step::Done(r) => r?,
    };
    let deadline = shared.config.approval_deadline;
    let request = request(shared, op_id, call);
    let bounded_call = tokio::time::timeout(deadline, check_action(shared, request));
    let response = match unless_terminated(shared, op_id, bounded_call).await {
        Step::Terminated => return Ok(terminated(started, op_id)),
        Step::Done(Ok(r)) => r?,
        Step::Done(Err(_)) => return Ok(held_past_deadline(shared, started)),
    };
    // The answer is in: a wait for a reviewer from here on holds no slot.
    drop(slot);
    conclude(shared, op_id, call.label(), key, ticket, response, started).await
}

/// Check `actions` of op `op_id` at once: op control once, the cache for
/// each, then one `BatchCheck` call for the misses (one slot), and each
/// answer concluded as a single check's is, approval waits concurrently.
/// Verdicts come in the order of `actions`.
pub(crate) async fn check_batch<A: Checkable>(
    shared: &Shared,
    op_id: &str,
    actions: &[A],
) -> Result<Vec<Verdict>, TetherError> {
    let started = Instant::now();
    if let Some(v) = gate(shared, op_id, started).await {
        return Ok(vec![v; actions.len()]);
    }
    let mut verdicts: Vec<Option<Verdict>> = vec![None; actions.len()];
    let mut misses = Vec::new();
    for (i, a) in actions.iter().enumerate() {
        match lookup(shared, a, started) {
            Ok(hit) => verdicts[i] = Some(hit),
            Err((key, ticket)) => misses.push((i, key, ticket)),
        }
    }
    if !misses.is_empty() {
        let slot = match unless_terminated(shared, op_id, shared.slots.acquire()).await {
            Step::Terminated => return Ok(vec![terminated(started, op_id); actions.len()]),
            Step::Done(r) => r?,
        };
        let requests: Vec<_> = misses
            .iter()
            .map(|(i, _, _)| request(shared, op_id, &actions[*i]))
            .collect();
        let deadline = shared.config.approval_deadline;
        let bounded_call = tokio::time::timeout(deadline, batch_check(shared, requests));
        let responses = match unless_terminated(shared, op_id, bounded_call).await {
            Step::Terminated => return Ok(vec![terminated(started, op_id); actions.len()]),
            Step::Done(Ok(r)) => r?,
            Step::Done(Err(_)) => {
                for (i, _, _) in &misses {
                    verdicts[*i] = Some(held_past_deadline(shared, started));
                }
                Vec::new()
            }
        };
        drop(slot);
        if !responses.is_empty() {
            if responses.len() != misses.len() {
                return Err(ProtocolError::BatchSize {
                    sent: misses.len(),
                    answered: responses.len(),
                }
                .into());
            }
            let concluded = futures::future::join_all(misses.into_iter().zip(responses).map(
                |((i, key, ticket), response)| async move {
                    let v = conclude(
                        shared,
                        op_id,
                        actions[i].label(),
                        key,
                        ticket,
                        response,
                        started,
                    )
                    .await;
                    (i, v)
                },
            ))
            .await;
            for (i, v) in concluded {
                verdicts[i] = Some(v?);
            }
        }
    }
    Ok(verdicts.into_iter().flatten().collect())
}

/// What an answer means for the check, decided by the core's `classify`:
/// a final verdict (cached when it may be), or the reviewer's verdict after
/// a wait on a PENDING answer, raced with a terminate.
async fn conclude(
    shared: &Shared,
    op_id: &str,
    label: &str,
    key: CacheKey,
    ticket: FetchTicket,
    response: tether_proto::policy::CheckActionResponse,
    started: Instant,
) -> Result<Verdict, TetherError> {
    let answer = GatewayAnswer {
        decision: answer_decision(response.decision),
        approval_id: &response.approval_id,
        policy_rule: &response.policy_rule,
    };
    let final_answer = match classify(answer) {
        AnswerMeaning::Policy {
            decision,
            cacheable,
        } => Some((decision, VerdictSource::Gateway, cacheable)),
        AnswerMeaning::Reviewer { decision } => Some((
            decision,
            VerdictSource::Reviewer {
                approval_id: response.approval_id.clone(),
            },
            false,
        )),
        AnswerMeaning::Pending => None,
        AnswerMeaning::Invalid(InvalidAnswer::UnknownDecision) => {
            return Err(ProtocolError::UnknownDecision {
                decision: response.decision,
                tool: label.to_owned(),
            }
            .into())
        }
        AnswerMeaning::Invalid(InvalidAnswer::PendingWithoutApprovalId) => {
            return Err(ProtocolError::PendingWithoutApprovalId.into())
        }
    };
    if let Some((decision, source, cacheable)) = final_answer {
        let decision = match decision {
            FinalDecision::Allow => Decision::Allow,
            FinalDecision::Deny => Decision::Deny,
            FinalDecision::Redact => Decision::Redact,
        };
        let redactions: Vec<Redaction> = response
            .redact
            .iter()
            .flat_map(|r| r.rules.iter())
            .map(|r| Redaction::new(r.field_path.clone(), r.replacement.clone()))
            .collect();
        if cacheable {
            let value = Cached {
                decision,
                reason: response.reason.clone(),
                redactions: redactions.clone(),
            };
            let version = ticket.policy_version();
            let stored = shared
                .cache
                .with(|c, now| c.complete_fetch(now, ticket, key, value, version));
            if let Err(why) = stored {
                tracing::debug!(?why, "decision not cached");
            }
        }
        // A terminate that landed while the answer was in flight still wins.
        if shared.ops.state(op_id) == tether_core::op_control::OpState::Terminated {
            return Ok(terminated(started, op_id));
        }
        let mut v = verdict(started, decision, source, response.reason);
        v.redactions = redactions;
        return Ok(v);
    }

    // 4. PENDING: wait for the reviewer, raced with a terminate.
    let approval_id = response.approval_id.clone();
    let deadline = shared.config.approval_deadline;
    let _held = HeldForApproval::enter(shared);
    let outcome =
        match unless_terminated(shared, op_id, shared.approvals.wait(&approval_id, deadline)).await
        {
            Step::Terminated => return Ok(terminated(started, op_id)),
            Step::Done(r) => r?,
        };
    Ok(match outcome {
        ApprovalOutcome::Approved => verdict(
            started,
            Decision::Allow,
            VerdictSource::Reviewer { approval_id },
            "approved by a reviewer".into(),
        ),
        ApprovalOutcome::Denied => verdict(
            started,
            Decision::Deny,
            VerdictSource::Reviewer { approval_id },
            "denied by a reviewer".into(),
        ),
        ApprovalOutcome::TimedOut => verdict(
            started,
            shared.config.approval_fallback,
            VerdictSource::ApprovalDeadline { approval_id },
            format!(
                "no reviewer answered within {}s; approval still pending, fallback applied",
                deadline.as_secs_f64()
            ),
        ),
    })
}

/// Counts one check in `ClientStatus::checks.held_for_approval` (and its
/// gauge) while it lives.
struct HeldForApproval<'a>(&'a Shared);

impl<'a> HeldForApproval<'a> {
    fn enter(shared: &'a Shared) -> Self {
        held_by(shared, |n| n + 1);
        HeldForApproval(shared)
    }
}

impl Drop for HeldForApproval<'_> {
    fn drop(&mut self) {
        held_by(self.0, |n| n.saturating_sub(1));
    }
}

fn held_by(shared: &Shared, f: impl FnOnce(usize) -> usize) {
    shared.status.update(|s| {
        s.checks.held_for_approval = f(s.checks.held_for_approval);
        metrics::gauge!(crate::metrics_names::CHECKS_HELD_FOR_APPROVAL)
            .set(s.checks.held_for_approval as f64);
    });
}

/// The wire decision as the core's answer classification sees it.
fn answer_decision(wire: i32) -> AnswerDecision {
    match WireDecision::try_from(wire) {
        Ok(WireDecision::Allow) => AnswerDecision::Allow,
        Ok(WireDecision::Deny) => AnswerDecision::Deny,
        Ok(WireDecision::Pending) => AnswerDecision::Pending,
        Ok(WireDecision::Redact) => AnswerDecision::Redact,
        Ok(WireDecision::Unspecified) | Err(_) => AnswerDecision::Unspecified,
    }
}

/// The `CheckActionRequest` for `call` of op `op_id` (credential attached
/// at send time).
fn request<A: Checkable + ?Sized>(shared: &Shared, op_id: &str, call: &A) -> CheckActionRequest {
    let (trace_id, span_id) = op_id.split_once(':').unwrap_or((op_id, ""));
    let a = &shared.agent();
    let (action_type, context) = call.wire();
    CheckActionRequest {
        agent_id: Some(AgentId {
            org_id: a.org_id.clone(),
            team_id: a.team_id.clone(),
            agent_id: a.agent_id.clone(),
        }),
        credential_token: String::new(),
        trace_id: trace_id.to_owned(),
        span_id: span_id.to_owned(),
        action_type: action_type as i32,
        caller_agent_id: None,
        context: Some(ActionContext {
            action: Some(context),
        }),
    }
}

/// A gateway may hold the call open until a reviewer decides; the caller
/// gives up at the approval deadline, so the gateway's own timeout comes a
/// second later and never pre-empts the fallback.
fn call_timeout(shared: &Shared) -> Duration {
    shared
        .config
        .request_timeout
        .max(shared.config.approval_deadline)
        + Duration::from_secs(1)
}

/// The error for a failed call: a keepalive timeout (a dead link) names
/// its bound; anything else is the gateway's status.
fn call_error(shared: &Shared, status: tonic::Status) -> TetherError {
    if keepalive_timed_out(&status) {
        let c = &shared.config;
        return TetherError::GatewayUnresponsive {
            bound: c.keepalive_interval + c.keepalive_timeout,
            source: status,
        };
    }
    TetherError::Gateway(status)
}

/// Whether hyper ended the connection because a keepalive ping went
/// unanswered (its error says "keep-alive timed out").
fn keepalive_timed_out(status: &tonic::Status) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(e) = cause {
        if e.to_string() == "keep-alive timed out" {
            return true;
        }
        cause = e.source();
    }
    false
}

/// Send one call with the current credential (in metadata and, through
/// `body`, in the request), refreshing it once and retrying once when the
/// gateway refuses it.
async fn with_credential<B, T, Fut>(
    shared: &Shared,
    body: impl Fn(Option<&str>) -> B,
    send: impl Fn(PolicyServiceClient<tonic::transport::Channel>, tonic::Request<B>) -> Fut,
) -> Result<T, TetherError>
where
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let client = PolicyServiceClient::new(shared.channels.checks.clone());
    for attempt in 0..2 {
        let token = token_for_call(shared).await?;
        let mut req = tonic::Request::new(body(token.as_deref()));
        req.set_timeout(call_timeout(shared));
        attach_token(&mut req, token.as_deref());
        match send(client.clone(), req).await {
            Ok(resp) => return Ok(resp.into_inner()),
            // Refused: refresh the credential once and retry once.
            Err(status)
                if attempt == 0 && shared.refresh_if_refused(&status, token.as_deref()).await => {}
            Err(status) => return Err(call_error(shared, status)),
        }
    }
    Err(TetherError::Gateway(tonic::Status::unauthenticated(
        "credential refused after refresh",
    )))
}

/// The credential for a call. A registering client with no token yet (the
/// registration is under way, or the gateway forgot the token and it is
/// registering again) waits for one, at most the request timeout; refused
/// or not done by then, the call is not sent.
async fn token_for_call(shared: &Shared) -> Result<Option<String>, TetherError> {
    let token = shared.config.credentials.token().await;
    if token.is_some() || shared.config.registration.is_none() {
        return Ok(token);
    }
    let settled = |s: &super::ClientStatus| {
        !matches!(
            s.registration.as_ref().map(|r| &r.phase),
            None | Some(RegistrationPhase::Starting | RegistrationPhase::Registering { .. })
        )
    };
    let mut status = shared.status.watch();
    // Map the `Ref` away at once: holding it blocks status updates.
    let _ = tokio::time::timeout(shared.config.request_timeout, async {
        status.wait_for(settled).await.is_ok()
    })
    .await;
    match shared.config.credentials.token().await {
        Some(token) => Ok(Some(token)),
        None => Err(TetherError::NotRegistered {
            phase: shared
                .status
                .get()
                .registration
                .map(|r| r.phase)
                .unwrap_or(RegistrationPhase::Starting),
        }),
    }
}

async fn check_action(
    shared: &Shared,
    request: CheckActionRequest,
) -> Result<tether_proto::policy::CheckActionResponse, TetherError> {
    with_credential(
        shared,
        |token| CheckActionRequest {
            credential_token: token.unwrap_or_default().to_owned(),
            ..request.clone()
        },
        |mut client, req| async move { client.check_action(req).await },
    )
    .await
}

async fn batch_check(
    shared: &Shared,
    requests: Vec<CheckActionRequest>,
) -> Result<Vec<tether_proto::policy::CheckActionResponse>, TetherError> {
    let answer = with_credential(
        shared,
        |token| BatchCheckRequest {
            requests: requests
                .iter()
                .map(|r| CheckActionRequest {
                    credential_token: token.unwrap_or_default().to_owned(),
                    ..r.clone()
                })
                .collect(),
        },
        |mut client, req| async move { client.batch_check(req).await },
    )
    .await?;
    Ok(answer.responses)
}
