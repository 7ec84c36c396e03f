//! Check concurrency is explicit: past the configured checks in flight a
//! check queues, past the queue it is refused at once, and a queued check
//! that finds no slot within the queue timeout ends with a typed error;
//! `status()` shows checks in flight, queued and held for approval; a check
//! dropped while queued leaves nothing behind. Real tonic on 127.0.0.1,
//! against the reference gateway holding every `slow` call.

use std::time::Duration;

use tether_core::check_slots::CheckSlotsConfig;
use tether_gateway::desk::Review;
use tether_gateway::rules::RuleTable;
use tether_tests::{agent, bounded, connected, gateway, serve, until, TOKEN};
use tether_tokio::client::{
    CheckCapacityError, Tether, TetherConfig, TetherError, ToolCall, VerdictSource,
};

fn spawn_check(
    t: &Tether,
    op: &str,
    tool: &str,
) -> tokio::task::JoinHandle<Result<tether_tokio::client::Verdict, TetherError>> {
    let t = t.clone();
    let op = op.to_owned();
    let call = ToolCall::new(tool);
    tokio::spawn(async move { t.check(&op, &call).await })
}

#[tokio::test]
async fn past_the_slots_checks_queue_then_are_refused_or_time_out_with_a_typed_error() {
    let rules = RuleTable::parse("hold slow 600\napprove deploy 600\ndefault deny\n").unwrap();
    let gw = serve(gateway().rules(rules)).await;
    let config = TetherConfig::new(gw.endpoint(), agent(), "runtime-1")
        .with_token(TOKEN)
        .with_check_slots(
            CheckSlotsConfig::default()
                .with_max_in_flight(2)
                .with_max_queued(1)
                .with_queue_timeout(Duration::from_millis(400)),
        );
    let tether = connected(config).await;
    let admin = gw.admin();

    // Two held checks fill both slots.
    let held: Vec<_> = (0..2)
        .map(|i| spawn_check(&tether, &format!("t{i}:s"), "slow"))
        .collect();
    until("both held", || admin.pending().len() == 2).await;
    let st = tether.status().checks;
    assert_eq!((st.in_flight, st.queued), (2, 0));
    assert_eq!((st.max_in_flight, st.max_queued), (2, 1));

    // A third queues; a fourth is refused at once, unsent.
    let queued = spawn_check(&tether, "t2:s", "slow");
    until("one queued", || tether.status().checks.queued == 1).await;
    let refused = bounded(
        "the fourth check is refused",
        tether.check("t3:s", &ToolCall::new("slow")),
    )
    .await;
    match refused {
        Err(TetherError::CheckCapacity(CheckCapacityError::QueueFull { in_flight, queued })) => {
            assert_eq!((in_flight, queued), (2, 1));
        }
        other => panic!("expected QueueFull, got {other:?}"),
    }
    assert_eq!(admin.pending().len(), 2, "the refused check was not sent");

    // The queued one finds no slot within its timeout.
    let timed_out = bounded("the queued check times out", queued).await.unwrap();
    match timed_out {
        Err(TetherError::CheckCapacity(CheckCapacityError::QueueTimeout { waited, .. })) => {
            assert_eq!(waited, Duration::from_millis(400));
        }
        other => panic!("expected QueueTimeout, got {other:?}"),
    }
    assert_eq!(tether.status().checks.queued, 0);

    // A queued check dropped early leaves nothing behind.
    let dropped = spawn_check(&tether, "t4:s", "slow");
    until("queued again", || tether.status().checks.queued == 1).await;
    dropped.abort();
    until("the dropped check left the queue", || {
        tether.status().checks.queued == 0
    })
    .await;

    // A reviewer's answer frees a slot; the next check is sent at once and
    // lands on the gateway.
    let first = admin.pending()[0].request_id.clone();
    admin.decide(&first, Review::Approved).unwrap();
    until("a slot freed", || tether.status().checks.in_flight == 1).await;
    let next = spawn_check(&tether, "t5:s", "slow");
    until("the next check is held", || admin.pending().len() == 2).await;
    assert_eq!(tether.status().checks.in_flight, 2);

    // A PENDING answer waits for its reviewer without a slot, counted as
    // held for approval.
    for p in admin.pending() {
        admin.decide(&p.request_id, Review::Denied).unwrap();
    }
    until("slots free", || tether.status().checks.in_flight == 0).await;
    let approval = spawn_check(&tether, "t6:s", "deploy");
    until("held for approval", || {
        tether.status().checks.held_for_approval == 1
    })
    .await;
    assert_eq!(tether.status().checks.in_flight, 0);
    let id = admin.pending()[0].request_id.clone();
    admin.decide(&id, Review::Approved).unwrap();
    let v = bounded("the approval lands", approval)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(v.source, VerdictSource::Reviewer { .. }));
    assert!(v.allowed());
    assert_eq!(tether.status().checks.held_for_approval, 0);

    for h in held.into_iter().chain([next]) {
        let _ = bounded("held checks end", h).await;
    }
}
