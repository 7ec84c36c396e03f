//! What a gateway's answer means to the agent, end to end on 127.0.0.1:
//! a held call's verdict is the reviewer's for that one call (never cached,
//! reported with its approval id); a DENY that names no policy rule (a
//! refused credential) is never cached; REDACT is its own verdict that
//! carries the gateway's redaction rules.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tether_gateway::desk::Review;
use tether_proto::common::Decision as WireDecision;
use tether_proto::policy::action_context::Action;
use tether_proto::policy::{
    CheckActionRequest, CheckActionResponse, RedactInstructions, RedactRule,
};
use tether_tests::scripted::ScriptedPolicy;
use tether_tests::{bounded, client_config, connected, gateway, serve, until};
use tether_tokio::client::{Decision, Redaction, Tether, ToolCall, VerdictSource};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

#[tokio::test]
async fn a_held_calls_verdict_is_the_reviewers_and_is_never_cached() {
    let gw = serve(gateway()).await; // rules: `hold pay 10`
    let admin = gw.admin();
    let tether = connected(client_config(&gw.endpoint())).await;
    let call = ToolCall::new("pay").with_args(r#"{"amount":5}"#);

    for (round, op) in ["t:1", "t:2"].into_iter().enumerate() {
        let check = tokio::spawn({
            let (t, call) = (tether.clone(), call.clone());
            async move { t.check(op, &call).await }
        });
        // Every identical call is a new pending approval at the gateway.
        until("the call is held for review", || admin.pending().len() == 1).await;
        let pending = admin.pending().remove(0);
        admin.decide(&pending.request_id, Review::Approved).unwrap();
        let v = bounded("held call answered", check).await.unwrap().unwrap();
        assert_eq!(v.decision, Decision::Allow, "round {round}");
        assert_eq!(
            v.source,
            VerdictSource::Reviewer {
                approval_id: pending.request_id.clone()
            },
            "round {round}: the verdict is the reviewer's, with its approval id"
        );
    }
    assert_eq!(
        tether.cached_decisions(),
        0,
        "a reviewer's verdict is never cached"
    );
    tether.shutdown(Duration::from_secs(1)).await;
    gw.shutdown().await.unwrap();
}

/// Answers by tool name, as the real gateway would for these cases.
fn answer(req: CheckActionRequest) -> CheckActionResponse {
    let tool = match req.context.and_then(|c| c.action) {
        Some(Action::ToolCall(t)) => t.tool_name,
        _ => String::new(),
    };
    match tool.as_str() {
        // The real gateway's answer to a missing or bad credential.
        "needs_credential" => CheckActionResponse {
            decision: WireDecision::Deny as i32,
            reason: "missing credential token".into(),
            ..Default::default()
        },
        // The Agent Assembly gateway's answer to a stale token after its
        // restart: a DENY naming its identity check.
        "stale_token" => CheckActionResponse {
            decision: WireDecision::Deny as i32,
            reason: "credential token mismatch".into(),
            policy_rule: tether_core::answer::IDENTITY_CHECK_RULE.into(),
            ..Default::default()
        },
        "send_email" => CheckActionResponse {
            decision: WireDecision::Redact as i32,
            reason: "personal data".into(),
            policy_rule: "redact pii".into(),
            redact: Some(RedactInstructions {
                rules: vec![
                    RedactRule {
                        field_path: "args.to".into(),
                        replacement: "<redacted>".into(),
                    },
                    RedactRule {
                        field_path: "args.body".into(),
                        replacement: String::new(),
                    },
                ],
            }),
            ..Default::default()
        },
        _ => CheckActionResponse {
            decision: WireDecision::Deny as i32,
            reason: "no".into(),
            policy_rule: "default deny".into(),
            ..Default::default()
        },
    }
}

/// The scripted gateway on 127.0.0.1: its URL, its call counter, its task.
async fn scripted() -> (Arc<AtomicUsize>, String, tokio::task::JoinHandle<()>) {
    let (svc, calls) = ScriptedPolicy::new(answer);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await;
    });
    (calls, url, server)
}

#[tokio::test]
async fn a_deny_that_names_no_policy_rule_is_never_cached() {
    let (calls, url, server) = scripted().await;
    let tether = Tether::connect(client_config(&url)).unwrap();
    let call = ToolCall::new("needs_credential");
    for op in ["t:1", "t:2"] {
        let v = bounded("check", tether.check(op, &call)).await.unwrap();
        assert_eq!(v.decision, Decision::Deny);
        assert_eq!(v.source, VerdictSource::Gateway);
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "both calls reached the gateway"
    );
    assert_eq!(tether.cached_decisions(), 0);

    // A policy deny (it names its rule) is cached as before.
    let other = ToolCall::new("rm_rf");
    let first = tether.check("t:3", &other).await.unwrap();
    let second = tether.check("t:4", &other).await.unwrap();
    assert_eq!(first.source, VerdictSource::Gateway);
    assert_eq!(second.source, VerdictSource::Cache);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    server.abort();
}

#[tokio::test]
async fn redact_is_a_verdict_of_its_own_that_carries_the_rules() {
    let (calls, url, server) = scripted().await;
    let tether = Tether::connect(client_config(&url)).unwrap();
    let call = ToolCall::new("send_email").with_args(r#"{"to":"a@b.c","body":"hi"}"#);
    let expected = vec![
        Redaction::new("args.to", "<redacted>"),
        Redaction::new("args.body", ""),
    ];

    let v = bounded("check", tether.check("t:1", &call)).await.unwrap();
    assert_eq!(v.decision, Decision::Redact);
    assert!(!v.allowed(), "a runtime that does not redact fails closed");
    assert_eq!(v.source, VerdictSource::Gateway);
    assert_eq!(v.redactions, expected);

    // Cached like any policy decision, with its rules.
    let v = tether.check("t:2", &call).await.unwrap();
    assert_eq!(v.source, VerdictSource::Cache);
    assert_eq!(v.decision, Decision::Redact);
    assert_eq!(v.redactions, expected);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    server.abort();
}

/// The cache key covers every field of the call exactly: a decision for a
/// tool from one source is not served for the same tool from another, and
/// arguments that differ only in bytes that are not UTF-8 are different
/// calls; the identical call is served from the cache.
#[tokio::test]
async fn the_cache_key_covers_the_tool_source_and_the_exact_argument_bytes() {
    let (calls, url, server) = scripted().await;
    let tether = Tether::connect(client_config(&url)).unwrap();
    let from = |source: &str, args: &[u8]| ToolCall {
        tool_source: source.into(),
        ..ToolCall::new("lookup").with_args(args.to_vec())
    };
    let checks = [
        (from("mcp-a", b"{}"), 1, VerdictSource::Gateway),
        (from("mcp-b", b"{}"), 2, VerdictSource::Gateway),
        (from("mcp-a", b"{}"), 2, VerdictSource::Cache),
        (from("mcp-a", &[0xff]), 3, VerdictSource::Gateway),
        (from("mcp-a", &[0xfe]), 4, VerdictSource::Gateway),
        (from("mcp-a", &[0xfe]), 4, VerdictSource::Cache),
    ];
    for (i, (call, gateway_calls, source)) in checks.into_iter().enumerate() {
        let v = bounded("check", tether.check("t:1", &call)).await.unwrap();
        assert_eq!(v.source, source, "check {i}");
        assert_eq!(calls.load(Ordering::SeqCst), gateway_calls, "check {i}");
    }
    server.abort();
}

/// A DENY by the gateway's identity check (a stale credential) is never
/// cached: the next identical call asks the gateway again.
#[tokio::test]
async fn a_deny_by_the_identity_check_is_never_cached() {
    let (calls, url, server) = scripted().await;
    let tether = Tether::connect(client_config(&url)).unwrap();
    let call = ToolCall::new("stale_token");
    for op in ["t:1", "t:2"] {
        let v = bounded("check", tether.check(op, &call)).await.unwrap();
        assert_eq!(v.decision, Decision::Deny);
        assert_eq!(v.source, VerdictSource::Gateway);
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "both calls reached the gateway"
    );
    assert_eq!(tether.cached_decisions(), 0);
    server.abort();
}
