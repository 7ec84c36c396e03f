//! CheckAction, BatchCheck and the reviewer's ApprovalService of the
//! reference gateway, over real gRPC.

mod gateway_support;

use std::time::Duration;

use gateway_support::*;
use tether_gateway::auth::TokenTable;
use tether_gateway::rules::{Effect, Rule, RuleTable};
use tether_gateway::{Gateway, GatewayBuilder};
use tether_proto::approval::approval_service_client::ApprovalServiceClient;
use tether_proto::approval::{
    ApprovalDecisionType, DecideRequest, ListPendingRequest, WatchApprovalsRequest,
};
use tether_proto::common::{ActionType, Decision};
use tether_proto::gateway::Decision as Verdict;
use tether_proto::policy::action_context::Action;
use tether_proto::policy::policy_service_client::PolicyServiceClient;
use tether_proto::policy::{
    ActionContext, BatchCheckRequest, CheckActionRequest, CheckActionResponse, LlmCallContext,
};
use tonic::transport::Channel;
use tonic::{Code, Status};

fn rules() -> RuleTable {
    let mut t =
        RuleTable::parse("allow read_file\ndeny rm_*\napprove deploy 30\nhold pay 30\n").unwrap();
    // Sub-second timeout: only expressible programmatically.
    t.rules.push(Rule {
        pattern: "slow".into(),
        effect: Effect::Hold {
            timeout: Duration::from_millis(300),
        },
    });
    t.rules.push(Rule {
        pattern: "instant".into(),
        effect: Effect::Hold {
            timeout: Duration::ZERO,
        },
    });
    t
}

fn builder() -> GatewayBuilder {
    Gateway::builder().rules(rules())
}

async fn check(
    ch: &Channel,
    req: CheckActionRequest,
    cred: Cred<'_>,
) -> Result<CheckActionResponse, Status> {
    within(PolicyServiceClient::new(ch.clone()).check_action(request(req, cred)))
        .await
        .map(|r| r.into_inner())
}

fn decide(id: &str, decision: ApprovalDecisionType) -> DecideRequest {
    DecideRequest {
        request_id: id.into(),
        decision: decision as i32,
        decided_by: "reviewer".into(),
        reason: String::new(),
    }
}

#[tokio::test]
async fn allow_and_deny_follow_the_rule_table() {
    let gw = start(builder()).await;
    let ch = channel(&gw).await;
    let agent = key("o", "t", "a");
    let cases = [
        ("read_file", Decision::Allow, "allow read_file"),
        ("rm_rf", Decision::Deny, "deny rm_*"),
        ("unknown_tool", Decision::Deny, "default deny"),
    ];
    for (tool, decision, rule) in cases {
        let r = check(&ch, tool_call(Some(&agent), tool), Cred::None)
            .await
            .unwrap();
        assert_eq!(
            (r.decision, r.policy_rule.as_str()),
            (decision as i32, rule),
            "{tool}"
        );
        assert!(r.reason.contains(tool), "{r:?}");
        assert!(r.approval_id.is_empty());
    }
    // A model call is matched as `action:llm_call`: the default here.
    let llm = CheckActionRequest {
        action_type: ActionType::LlmCall as i32,
        context: Some(ActionContext {
            action: Some(Action::LlmCall(LlmCallContext::default())),
        }),
        ..Default::default()
    };
    let r = check(&ch, llm, Cred::None).await.unwrap();
    assert_eq!(
        (r.decision, r.policy_rule.as_str()),
        (Decision::Deny as i32, "default deny")
    );
    let err = check(&ch, tool_call(Some(&agent), ""), Cred::None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    let batch = PolicyServiceClient::new(ch.clone())
        .batch_check(BatchCheckRequest {
            requests: vec![tool_call(None, "read_file"), tool_call(None, "rm_x")],
        })
        .await
        .unwrap()
        .into_inner();
    let decisions: Vec<i32> = batch.responses.iter().map(|r| r.decision).collect();
    assert_eq!(
        decisions,
        vec![Decision::Allow as i32, Decision::Deny as i32]
    );
    let err = PolicyServiceClient::new(ch.clone())
        .batch_check(BatchCheckRequest {
            requests: vec![tool_call(None, "read_file"), tool_call(None, "")],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("request 1"), "{err:?}");
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn batches_are_bounded() {
    let gw = start(builder().max_batch(2)).await;
    let ch = channel(&gw).await;
    let err = PolicyServiceClient::new(ch.clone())
        .batch_check(BatchCheckRequest {
            requests: vec![tool_call(None, "read_file"); 3],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn credentials_on_check_action() {
    let a = key("o", "t", "a");
    let gw = start(builder().tokens(TokenTable::required([("tok-a".to_owned(), a.clone())]))).await;
    let ch = channel(&gw).await;
    let err = check(&ch, tool_call(Some(&a), "read_file"), Cred::None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    // The token may travel in the message itself.
    let mut in_body = tool_call(Some(&a), "read_file");
    in_body.credential_token = "tok-a".into();
    assert_eq!(
        check(&ch, in_body, Cred::None).await.unwrap().decision,
        Decision::Allow as i32
    );
    // ... but the metadata wins over it.
    let mut both = tool_call(Some(&a), "read_file");
    both.credential_token = "tok-a".into();
    assert_eq!(
        check(&ch, both, Cred::Bearer("wrong"))
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    let other = key("o", "t", "b");
    let err = check(
        &ch,
        tool_call(Some(&other), "read_file"),
        Cred::Header("tok-a"),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn approve_answers_pending_and_decide_publishes_the_verdict() {
    let gw = start(builder()).await;
    let ch = channel(&gw).await;
    let mut reviewer = ApprovalServiceClient::new(ch.clone());
    let mut watch = reviewer
        .watch_approvals(WatchApprovalsRequest {})
        .await
        .unwrap()
        .into_inner();
    // An anonymous subscriber on an open gateway is in team "", as is the
    // anonymous agent's approval.
    let mut sub = subscribe(&ch, "asm", 0, Cred::None).await.unwrap();
    let agent = key("o", "t", "a");

    let r = check(&ch, tool_call(Some(&agent), "deploy"), Cred::None)
        .await
        .unwrap();
    assert_eq!(
        (r.decision, r.policy_rule.as_str()),
        (Decision::Pending as i32, "approve deploy")
    );
    let id = r.approval_id.clone();
    assert!(!id.is_empty());
    let seen = within(watch.message()).await.unwrap().unwrap();
    assert_eq!(
        (
            seen.request_id.as_str(),
            seen.agent_id.as_str(),
            seen.action.as_str(),
            seen.timeout_secs
        ),
        (id.as_str(), "a", "deploy", 30)
    );
    let pending = reviewer
        .list_pending(ListPendingRequest {})
        .await
        .unwrap()
        .into_inner()
        .requests;
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (
            pending[0].request_id.as_str(),
            pending[0].team_id.as_str(),
            pending[0].condition_triggered.as_str()
        ),
        (id.as_str(), "", "approve deploy")
    );

    let err = reviewer
        .decide(decide(&id, ApprovalDecisionType::DecisionUnspecified))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let ok = reviewer
        .decide(decide(&id, ApprovalDecisionType::Rejected))
        .await
        .unwrap()
        .into_inner();
    assert!(ok.success && ok.error_message.is_empty(), "{ok:?}");
    let ev = sub.expect().await;
    assert_eq!(
        ev.payload,
        resolved(&id, Verdict::Denied),
        "a reject travels as DENIED"
    );
    let again = reviewer
        .decide(decide(&id, ApprovalDecisionType::Approved))
        .await
        .unwrap()
        .into_inner();
    assert!(
        !again.success && again.error_message.contains(&id),
        "{again:?}"
    );
    let unknown = reviewer
        .decide(decide("apr-nope", ApprovalDecisionType::Approved))
        .await
        .unwrap()
        .into_inner();
    assert!(!unknown.success);
    assert!(gw.admin().pending().is_empty());
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_held_check_is_released_by_the_reviewer() {
    let gw = start(builder()).await;
    let ch = channel(&gw).await;
    let mut reviewer = ApprovalServiceClient::new(ch.clone());
    let mut watch = reviewer
        .watch_approvals(WatchApprovalsRequest {})
        .await
        .unwrap()
        .into_inner();
    let held = tokio::spawn({
        let ch = ch.clone();
        async move { check(&ch, tool_call(None, "pay"), Cred::None).await }
    });
    // Wait for the approval itself, then approve it.
    let filed = within(watch.message()).await.unwrap().unwrap();
    assert_eq!(filed.action, "pay");
    assert!(!held.is_finished());
    let ok = reviewer
        .decide(decide(&filed.request_id, ApprovalDecisionType::Approved))
        .await
        .unwrap()
        .into_inner();
    assert!(ok.success);
    let r = within(held).await.unwrap().unwrap();
    assert_eq!(
        (r.decision, r.approval_id.as_str(), r.policy_rule.as_str()),
        (
            Decision::Allow as i32,
            filed.request_id.as_str(),
            "hold pay"
        )
    );
    assert!(r.decision_latency_us > 0);

    // A rejection releases it as DENY.
    let held = tokio::spawn({
        let ch = ch.clone();
        async move { check(&ch, tool_call(None, "pay"), Cred::None).await }
    });
    let filed = within(watch.message()).await.unwrap().unwrap();
    gw.admin()
        .decide(&filed.request_id, tether_gateway::desk::Review::Denied)
        .unwrap();
    let r = within(held).await.unwrap().unwrap();
    assert_eq!(r.decision, Decision::Deny as i32);
    assert!(r.reason.contains("rejected"), "{r:?}");
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_held_check_that_nobody_decides_times_out_as_deny() {
    let gw = start(builder()).await;
    let ch = channel(&gw).await;
    let started = std::time::Instant::now();
    let r = check(&ch, tool_call(None, "slow"), Cred::None)
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(r.decision, Decision::Deny as i32);
    assert!(r.reason.contains("timed out"), "{r:?}");
    assert!(r.decision_latency_us >= 300_000, "{r:?}");
    // A zero timeout is a timeout too, not an error.
    let r = check(&ch, tool_call(None, "instant"), Cred::None)
        .await
        .unwrap();
    assert_eq!(r.decision, Decision::Deny as i32);
    assert!(r.reason.contains("timed out"), "{r:?}");
    gw.shutdown().await.unwrap();
}
