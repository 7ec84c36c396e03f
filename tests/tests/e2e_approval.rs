//! Scenario 5: approvals end to end: CheckAction answers PENDING, a
//! reviewer's decide releases the waiting check with the verdict; a held
//! CheckAction is released the same way; a deadline with no answer gives
//! the configured fallback, never an implicit deny.

use std::time::Duration;

use tether_gateway::desk::Review;
use tether_tests::{bounded, client_config, connected, gateway, serve, until};
use tether_tokio::client::{Decision, ToolCall, VerdictSource};

#[tokio::test]
async fn pending_then_reviewer_decides_releases_the_check() {
    let gw = serve(gateway()).await;
    let admin = gw.admin();
    let tether = connected(client_config(&gw.endpoint())).await;
    for (verdict, expected) in [
        (Review::Approved, Decision::Allow),
        (Review::Denied, Decision::Deny),
    ] {
        let waiting = tokio::spawn({
            let t = tether.clone();
            async move { t.check("trace-1:span-1", &ToolCall::new("deploy")).await }
        });
        until("approval pending at the gateway", || {
            admin.pending().len() == 1
        })
        .await;
        let id = admin.pending()[0].request_id.clone();
        admin.decide(&id, verdict).unwrap();
        let v = bounded("verdict reaches the check", waiting)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(v.decision, expected);
        assert_eq!(v.source, VerdictSource::Reviewer { approval_id: id });
    }
    tether.shutdown(Duration::from_secs(1)).await;
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn held_check_action_is_released_by_the_reviewer() {
    let gw = serve(gateway()).await;
    let admin = gw.admin();
    let tether = connected(client_config(&gw.endpoint())).await;
    let waiting = tokio::spawn({
        let t = tether.clone();
        async move { t.check("trace-2:span-1", &ToolCall::new("pay")).await }
    });
    until("held approval pending", || admin.pending().len() == 1).await;
    let id = admin.pending()[0].request_id.clone();
    admin.decide(&id, Review::Denied).unwrap();
    let v = bounded("held call answered", waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.decision, Decision::Deny);
    // The answer that ends a held call carries its approval id: it is the
    // reviewer's verdict for this one call (WIRE.md), not a policy decision.
    assert_eq!(
        v.source,
        VerdictSource::Reviewer { approval_id: id },
        "the held call answered DENY with the reviewer's approval id"
    );
    assert_eq!(tether.cached_decisions(), 0, "and it is not cached");
    tether.shutdown(Duration::from_secs(1)).await;
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn deadline_without_an_answer_gives_the_fallback_not_a_denial() {
    let gw = serve(gateway()).await;
    let admin = gw.admin();
    // A permissive fallback, so an implicit deny could not hide behind it.
    let config = client_config(&gw.endpoint())
        .with_approval_deadline(Duration::from_millis(300), Decision::Allow);
    let tether = connected(config).await;
    let v = tether
        .check("trace-3:span-1", &ToolCall::new("deploy"))
        .await
        .unwrap();
    let VerdictSource::ApprovalDeadline { approval_id } = &v.source else {
        panic!("expected the deadline fallback, got {v:?}");
    };
    assert_eq!(v.decision, Decision::Allow);
    assert!(v.latency >= Duration::from_millis(300));
    // Nobody denied it: the approval is still pending at the gateway.
    assert!(admin.pending().iter().any(|p| &p.request_id == approval_id));
    tether.shutdown(Duration::from_secs(1)).await;
    gw.shutdown().await.unwrap();
}
