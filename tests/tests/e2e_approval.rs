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

/// A gateway that holds `CheckAction` until a reviewer decides (as Agent
/// Assembly's does) gets the same deadline as a PENDING answer: at the
/// approval deadline the check ends with the fallback, says the approval is
/// still pending, and the approval stays pending at the gateway. The
/// request timeout (10 s by default, longer than the deadline here) does
/// not stretch it.
#[tokio::test]
async fn the_approval_deadline_applies_to_a_held_call() {
    let gw = serve(gateway()).await;
    let admin = gw.admin();
    let deadline = Duration::from_millis(500);
    for fallback in [Decision::Deny, Decision::Allow] {
        let config = client_config(&gw.endpoint()).with_approval_deadline(deadline, fallback);
        let tether = connected(config).await;
        let started = tokio::time::Instant::now();
        // `pay` is held by the test gateway's rules (`hold pay 10`).
        let v = tokio::time::timeout(
            deadline + Duration::from_secs(3),
            tether.check("trace-9:span-1", &ToolCall::new("pay")),
        )
        .await
        .expect("the held call ends at the approval deadline, not the request timeout")
        .unwrap();
        assert!(started.elapsed() >= deadline);
        assert_eq!(v.decision, fallback);
        assert_eq!(
            v.source,
            VerdictSource::ApprovalDeadline {
                approval_id: String::new()
            }
        );
        assert!(v.reason.contains("held"), "{}", v.reason);
        assert_eq!(tether.status().checks.in_flight, 0, "the slot was freed");
        assert!(
            !admin.pending().is_empty(),
            "the approval is still pending at the gateway"
        );
        for p in admin.pending() {
            admin.decide(&p.request_id, Review::Denied).unwrap();
        }
        tether.shutdown(Duration::from_secs(1)).await;
    }
    gw.shutdown().await.unwrap();
}
