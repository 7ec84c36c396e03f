//! The outage policy `Hold` is bounded: when the op-control stream never
//! comes back (here a restarted gateway forgot the agent's token and refuses
//! the stream as unauthenticated, or a proxy cut the connection), a held
//! check ends with a `Deny` from `VerdictSource::OutagePolicy` whose reason
//! names the cause, no later than `outage_grace + hold_limit` after the
//! stream was lost; later checks are denied the same way at once, an action
//! under `Tether::run` ends with `OpBlocked::HoldExpired`; once the stream is
//! back, checks run again. Real tonic on 127.0.0.1, the reference gateway,
//! a cuttable loopback proxy.

use std::time::{Duration, Instant};

use tether_core::op_control::{OpControlConfig, OutagePolicy};
use tether_fault::LoopbackProxy;
use tether_tests::{agent_key, bounded, client_config, gateway, serve, TOKEN};
use tether_tokio::client::{OpBlocked, Tether, TetherConfig, ToolCall, VerdictSource};

const GRACE: Duration = Duration::from_millis(300);
const HOLD: Duration = Duration::from_millis(700);
/// Scheduling slack on a loaded machine (the bound itself is the core's).
const SLACK: Duration = Duration::from_secs(3);

fn held(config: TetherConfig) -> TetherConfig {
    config
        .with_ops(
            OpControlConfig::default()
                .with_outage_grace(GRACE)
                .with_restore_settle(Duration::from_millis(100))
                .with_outage_policy(OutagePolicy::Hold),
        )
        .with_hold_limit(HOLD)
}

async fn reachable(tether: &Tether) {
    let mut st = tether.watch_status();
    bounded(
        "the kill switch reachable, no outage",
        st.wait_for(|s| s.kill_switch.reachable && !s.kill_switch.outage_policy_in_force),
    )
    .await
    .unwrap();
}

async fn outage_in_force(tether: &Tether) {
    let mut st = tether.watch_status();
    bounded(
        "the outage policy in force",
        st.wait_for(|s| s.kill_switch.outage_policy_in_force),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_refused_stream_ends_held_checks_with_a_deny_naming_the_cause() {
    let gw = serve(gateway()).await;
    let tether = Tether::connect(held(client_config(&gw.endpoint()))).unwrap();
    reachable(&tether).await;
    let call = ToolCall::new("read_file");
    assert!(tether.check("t1:s1", &call).await.unwrap().allowed());

    // The gateway forgets the agent's token and ends the stream: every
    // reopen is refused as unauthenticated, forever.
    gw.admin().forget_tokens();
    let lost = Instant::now();
    assert_eq!(gw.admin().close_op_streams(&agent_key()), 1);
    outage_in_force(&tether).await;

    // A check started in the outage is held, then ends with a denial that
    // names the cause, within grace + hold (+ slack) of the loss.
    let held_check = tokio::spawn({
        let tether = tether.clone();
        let call = call.clone();
        async move { tether.check("t1:s2", &call).await }
    });
    let v = tokio::time::timeout(GRACE + HOLD + SLACK, held_check)
        .await
        .expect("a held check ends within the hold bound")
        .unwrap()
        .unwrap();
    let waited = lost.elapsed();
    assert!(!v.allowed(), "{v:?}");
    assert_eq!(v.source, VerdictSource::OutagePolicy, "{v:?}");
    assert!(
        v.reason.contains("credential refused") && v.reason.contains("held checks end"),
        "the reason names the cause and the bound: {}",
        v.reason
    );
    // Never before the hold limit (timers do not fire early).
    assert!(waited >= HOLD, "released after {waited:?}");

    // From then on checks are denied at once, with the same cause, and an
    // action under `run` ends with HoldExpired without starting.
    let v = tokio::time::timeout(SLACK, tether.check("t1:s3", &call))
        .await
        .expect("no check is held past the hold limit")
        .unwrap();
    assert_eq!(v.source, VerdictSource::OutagePolicy);
    assert!(v.reason.contains("credential refused"), "{}", v.reason);
    let ran = tokio::time::timeout(SLACK, tether.run("t1:s4", async { 7 }))
        .await
        .expect("run is not held past the hold limit");
    match ran {
        Err(OpBlocked::HoldExpired { bound }) => assert_eq!(bound, GRACE + HOLD),
        other => panic!("expected HoldExpired, got {other:?}"),
    }

    // The gateway knows the token again: the stream comes back, the outage
    // ends, and checks run again.
    gw.admin().add_token(TOKEN, agent_key());
    reachable(&tether).await;
    let v = bounded("a check after the restore", tether.check("t1:s5", &call))
        .await
        .unwrap();
    assert!(v.allowed(), "{v:?}");
}

#[tokio::test]
async fn a_cut_stream_ends_a_held_run_and_a_later_outage_holds_again() {
    let gw = serve(gateway()).await;
    let proxy = LoopbackProxy::start(gw.local_addr()).await.unwrap();
    let tether = Tether::connect(held(client_config(&proxy.url()))).unwrap();
    reachable(&tether).await;
    let call = ToolCall::new("read_file");

    proxy.cut();
    outage_in_force(&tether).await;
    // A run held by the outage ends with HoldExpired, its action never
    // polled.
    let ran = tokio::time::timeout(
        GRACE + HOLD + SLACK,
        tether.run("t2:s1", async {
            if true {
                panic!("must not run while the stream is down");
            }
        }),
    )
    .await
    .expect("a held run ends within the hold bound");
    assert!(matches!(ran, Err(OpBlocked::HoldExpired { .. })), "{ran:?}");
    let v = tokio::time::timeout(SLACK, tether.check("t2:s2", &call))
        .await
        .expect("no check is held past the hold limit")
        .unwrap();
    assert_eq!(v.source, VerdictSource::OutagePolicy);
    assert!(
        v.reason.contains("op-control stream") && v.reason.contains("held checks end"),
        "{}",
        v.reason
    );

    // Back: checks run again.
    proxy.restore();
    reachable(&tether).await;
    let v = bounded("a check after the restore", tether.check("t2:s3", &call))
        .await
        .unwrap();
    assert!(v.allowed(), "{v:?}");

    // A later outage starts a budget of its own: a check in it is held
    // (not denied at once) until its own hold limit.
    let cut = Instant::now();
    proxy.cut();
    outage_in_force(&tether).await;
    let v = tokio::time::timeout(GRACE + HOLD + SLACK, tether.check("t2:s4", &call))
        .await
        .expect("a held check ends within the hold bound")
        .unwrap();
    assert_eq!(v.source, VerdictSource::OutagePolicy);
    // Never before this outage's own bound (timers do not fire early).
    assert!(
        cut.elapsed() >= HOLD,
        "held in the new outage, not denied at once: {:?}",
        cut.elapsed()
    );
}
