//! `CheckAction` and `BatchCheck`: one action against the rule table.
//!
//! Rule key: a tool call is matched by its `tool_name` (an empty name is
//! `INVALID_ARGUMENT`: an unnamed tool cannot be governed). Any other action
//! is matched by `action:{kind}` (`action:llm_call`, `action:file_op`,
//! `action:network_call`, `action:process_exec`, `action:tool_result`,
//! `action:agent_spawn`, `action:unspecified`), taken from the context when
//! present, else from `action_type`; so `allow action:llm_call` in a rule
//! file allows model calls, and with no such rule the table's default
//! applies.
//!
//! Guarantees:
//! - credentials come from metadata first, then from `credential_token`;
//!   with credentials required a missing or unknown one is
//!   `UNAUTHENTICATED`, and an authenticated caller naming another agent is
//!   `PERMISSION_DENIED`;
//! - `allow` / `deny` answer `ALLOW` / `DENY` with a reason and
//!   `policy_rule` (`"{effect} {pattern}"` or `"default {effect}"`);
//! - `approve` files an approval and answers `PENDING` with its
//!   `approval_id`; the verdict later reaches the caller's team as
//!   `ApprovalResolved` on the invalidation stream;
//! - `hold` files an approval and keeps the call open until a reviewer
//!   decides (`ALLOW` / `DENY`) or the rule's timeout passes (`DENY`, with a
//!   reason saying it timed out); gateway shutdown ends it with
//!   `UNAVAILABLE`;
//! - a full approval desk is `RESOURCE_EXHAUSTED`;
//! - `decision_latency_us` is the time spent in the gateway, waits included;
//! - a batch holds at most the configured number of requests (else
//!   `INVALID_ARGUMENT`), checks them concurrently and answers in request
//!   order; the first failing request fails the batch, its index named.

use std::time::Duration;

use tether_proto::common::{ActionType, Decision};
use tether_proto::policy::action_context::Action;
use tether_proto::policy::{CheckActionRequest, CheckActionResponse};
use tokio::time::Instant;
use tonic::metadata::MetadataMap;
use tonic::Status;

use super::credentials::{authenticate, describe};
use super::desk::{DeskError, Review};
use super::rules::{Effect, RuleTable};
use super::state::Shared;

/// Check one action.
pub(crate) async fn check_action(
    shared: &Shared,
    metadata: &MetadataMap,
    request: CheckActionRequest,
) -> Result<CheckActionResponse, Status> {
    let started = Instant::now();
    let caller = authenticate(&shared.tokens, metadata, Some(&request.credential_token))?;
    let agent = caller
        .acting_as(request.agent_id.as_ref())?
        .unwrap_or_default();
    let key = rule_key(&request)?;
    let (effect, policy_rule) = explain(&shared.rules, &key);
    let mut response = CheckActionResponse {
        policy_rule: policy_rule.clone(),
        ..Default::default()
    };
    match effect {
        Effect::Allow => {
            response.decision = Decision::Allow as i32;
            response.reason = format!("{key} allowed by rule `{policy_rule}`");
        }
        Effect::Deny => {
            response.decision = Decision::Deny as i32;
            response.reason = format!("{key} denied by rule `{policy_rule}`");
        }
        Effect::Approve { timeout } => {
            let approval = shared
                .desk
                .submit(agent.clone(), caller.team(), &key, &policy_rule, timeout)
                .map_err(desk_status)?;
            tracing::debug!(approval = %approval.request_id, agent = %describe(&agent), %key, "approval filed");
            response.decision = Decision::Pending as i32;
            response.reason = format!(
                "{key} needs a reviewer's approval (rule `{policy_rule}`, {} to decide); the \
                 verdict arrives as ApprovalResolved",
                secs(timeout)
            );
            response.approval_id = approval.request_id;
        }
        Effect::Hold { timeout } => {
            let approval = shared
                .desk
                .submit(agent.clone(), caller.team(), &key, &policy_rule, timeout)
                .map_err(desk_status)?;
            // Only a zero timeout can expire the request before the hold:
            // that is a timeout like any other.
            let held = shared.desk.hold(&approval.request_id).ok();
            let id = approval.request_id;
            let wait = async move {
                match held {
                    Some(rx) => tokio::time::timeout(timeout, rx).await.ok()?.ok(),
                    None => None,
                }
            };
            let verdict = tokio::select! {
                // None: timed out, or the desk dropped the expired request.
                verdict = wait => verdict,
                () = shared.shutdown.triggered() => {
                    return Err(Status::unavailable(format!(
                        "gateway is shutting down; approval {id} was not decided"
                    )))
                }
            };
            let (decision, reason) = match verdict {
                Some(Review::Approved) => (
                    Decision::Allow,
                    format!("{key} approved by a reviewer ({id})"),
                ),
                Some(Review::Denied) => (
                    Decision::Deny,
                    format!("{key} rejected by a reviewer ({id})"),
                ),
                None => (
                    Decision::Deny,
                    format!(
                        "approval {id} for {key} timed out after {} without a verdict",
                        secs(timeout)
                    ),
                ),
            };
            response.decision = decision as i32;
            response.reason = reason;
            response.approval_id = id;
        }
    }
    response.decision_latency_us = i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX);
    Ok(response)
}

/// Check every request of a batch, concurrently, answering in order.
pub(crate) async fn batch_check(
    shared: &Shared,
    metadata: &MetadataMap,
    requests: Vec<CheckActionRequest>,
) -> Result<Vec<CheckActionResponse>, Status> {
    if requests.len() > shared.limits.max_batch {
        return Err(Status::invalid_argument(format!(
            "a batch holds at most {} requests, not {}",
            shared.limits.max_batch,
            requests.len()
        )));
    }
    let checks = requests
        .into_iter()
        .map(|r| check_action(shared, metadata, r));
    futures::future::join_all(checks)
        .await
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.map_err(|s| Status::new(s.code(), format!("request {i}: {}", s.message()))))
        .collect()
}

/// The rule-table key of a request (see the module docs).
pub(crate) fn rule_key(request: &CheckActionRequest) -> Result<String, Status> {
    let action = request.context.as_ref().and_then(|c| c.action.as_ref());
    let kind = match action {
        Some(Action::ToolCall(tool)) if tool.tool_name.is_empty() => {
            return Err(Status::invalid_argument("tool_call.tool_name is empty"))
        }
        Some(Action::ToolCall(tool)) => return Ok(tool.tool_name.clone()),
        Some(Action::LlmCall(_)) => "llm_call",
        Some(Action::FileOp(_)) => "file_op",
        Some(Action::NetworkCall(_)) => "network_call",
        Some(Action::ProcessExec(_)) => "process_exec",
        Some(Action::ToolResult(_)) => "tool_result",
        None => match ActionType::try_from(request.action_type) {
            Ok(ActionType::ToolCall) => {
                return Err(Status::invalid_argument(
                    "a TOOL_CALL needs context.tool_call with the tool's name",
                ))
            }
            Ok(ActionType::LlmCall) => "llm_call",
            Ok(ActionType::FileOperation) => "file_op",
            Ok(ActionType::NetworkCall) => "network_call",
            Ok(ActionType::ProcessExec) => "process_exec",
            Ok(ActionType::AgentSpawn) => "agent_spawn",
            Ok(ActionType::ToolResult) => "tool_result",
            Ok(ActionType::ActionUnspecified) | Err(_) => "unspecified",
        },
    };
    Ok(format!("action:{kind}"))
}

/// The effect for `key` and the name of the rule that gave it.
fn explain(rules: &RuleTable, key: &str) -> (Effect, String) {
    match rules.rules.iter().find(|r| r.matches(key)) {
        Some(rule) => (
            rule.effect,
            format!("{} {}", word(rule.effect), rule.pattern),
        ),
        None => (rules.default, format!("default {}", word(rules.default))),
    }
}

fn word(effect: Effect) -> &'static str {
    match effect {
        Effect::Allow => "allow",
        Effect::Deny => "deny",
        Effect::Approve { .. } => "approve",
        Effect::Hold { .. } => "hold",
    }
}

fn secs(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

fn desk_status(e: DeskError) -> Status {
    match e {
        DeskError::Full(_) => Status::resource_exhausted(e.to_string()),
        DeskError::NotFound(_) => Status::not_found(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_proto::policy::{ActionContext, LlmCallContext, ToolCallContext};
    use tonic::Code;

    fn with(action: Option<Action>, action_type: ActionType) -> CheckActionRequest {
        CheckActionRequest {
            action_type: action_type as i32,
            context: action.map(|a| ActionContext { action: Some(a) }),
            ..Default::default()
        }
    }

    #[test]
    fn rule_keys() {
        let tool = |n: &str| {
            Some(Action::ToolCall(ToolCallContext {
                tool_name: n.into(),
                ..Default::default()
            }))
        };
        assert_eq!(
            rule_key(&with(tool("deploy"), ActionType::ToolCall)).unwrap(),
            "deploy"
        );
        assert_eq!(
            rule_key(&with(tool(""), ActionType::ToolCall))
                .unwrap_err()
                .code(),
            Code::InvalidArgument
        );
        assert_eq!(
            rule_key(&with(None, ActionType::ToolCall))
                .unwrap_err()
                .code(),
            Code::InvalidArgument
        );
        assert_eq!(
            rule_key(&with(
                Some(Action::LlmCall(LlmCallContext::default())),
                ActionType::ActionUnspecified
            ))
            .unwrap(),
            "action:llm_call"
        );
        assert_eq!(
            rule_key(&with(None, ActionType::AgentSpawn)).unwrap(),
            "action:agent_spawn"
        );
        let mut odd = with(None, ActionType::ActionUnspecified);
        odd.action_type = 99;
        assert_eq!(rule_key(&odd).unwrap(), "action:unspecified");
    }

    #[test]
    fn explains_the_matching_rule_or_the_default() {
        let t = RuleTable::parse("allow read_*\nhold pay 5\n").unwrap();
        assert_eq!(
            explain(&t, "read_x"),
            (Effect::Allow, "allow read_*".into())
        );
        assert_eq!(explain(&t, "pay").1, "hold pay");
        assert_eq!(explain(&t, "x"), (Effect::Deny, "default deny".into()));
    }
}
