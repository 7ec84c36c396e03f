//! `status().kill_switch` says whether a halt published now can reach the
//! agent, since when it cannot and why (opening, stream lost, credential
//! refused), and the outage policy acts on that same fact. Real tonic on
//! 127.0.0.1, a cuttable loopback proxy, the reference gateway.

use std::time::Duration;

use tether_core::op_control::{OpControlConfig, OutagePolicy};
use tether_fault::LoopbackProxy;
use tether_tests::{agent_key, bounded, client_config, gateway, serve, until};
use tether_tokio::client::{KillSwitchDown, Tether, ToolCall, VerdictSource};

#[tokio::test]
async fn reachability_follows_the_stream_and_drives_the_outage_policy() {
    let gw = serve(gateway()).await;
    let proxy = LoopbackProxy::start(gw.local_addr()).await.unwrap();
    let config = client_config(&proxy.url()).with_ops(
        OpControlConfig::default()
            .with_outage_grace(Duration::from_millis(300))
            .with_restore_settle(Duration::from_millis(100))
            .with_outage_policy(OutagePolicy::Deny),
    );
    let tether = Tether::connect(config).unwrap();

    // Not yet subscribed: unreachable.
    let first = tether.status().kill_switch;
    if !first.reachable {
        assert!(first.unreachable.is_some());
    }
    let mut st = tether.watch_status();
    bounded("reachable", st.wait_for(|s| s.kill_switch.reachable))
        .await
        .unwrap();
    let up = tether.status().kill_switch;
    assert_eq!(up.unreachable, None);
    assert!(!up.outage_policy_in_force);
    assert!(tether.status().op_control.connected);

    // Cut: unreachable, the stream lost, since the cut.
    proxy.cut();
    bounded("unreachable", st.wait_for(|s| !s.kill_switch.reachable))
        .await
        .unwrap();
    let down = tether.status().kill_switch;
    assert!(down.since >= up.since);
    assert!(
        matches!(down.unreachable, Some(KillSwitchDown::StreamLost { .. })),
        "{:?}",
        down.unreachable
    );

    // Past the grace, the outage policy is in force on that same fact, and
    // a check follows it.
    bounded(
        "the outage policy in force",
        st.wait_for(|s| s.kill_switch.outage_policy_in_force),
    )
    .await
    .unwrap();
    assert!(!tether.status().kill_switch.reachable);
    let v = tether
        .check("trace-1:span-1", &ToolCall::new("read_file"))
        .await
        .unwrap();
    assert_eq!(v.source, VerdictSource::OutagePolicy);
    assert!(!v.allowed());

    // Restored: reachable again, and the policy lifts after the settle.
    proxy.restore();
    bounded("reachable again", st.wait_for(|s| s.kill_switch.reachable))
        .await
        .unwrap();
    bounded(
        "the outage policy lifted",
        st.wait_for(|s| !s.kill_switch.outage_policy_in_force),
    )
    .await
    .unwrap();
    let v = tether
        .check("trace-1:span-1", &ToolCall::new("read_file"))
        .await
        .unwrap();
    assert!(v.allowed());
}

#[tokio::test]
async fn a_refused_credential_is_named() {
    let gw = serve(gateway()).await;
    let tether = Tether::connect(client_config(&gw.endpoint())).unwrap();
    let mut st = tether.watch_status();
    bounded("reachable", st.wait_for(|s| s.kill_switch.reachable))
        .await
        .unwrap();

    // The gateway forgets the token and ends the stream: the reopen is
    // refused for the credential.
    gw.admin().forget_tokens();
    assert_eq!(gw.admin().close_op_streams(&agent_key()), 1);
    until("the refusal is named", || {
        matches!(
            tether.status().kill_switch.unreachable,
            Some(KillSwitchDown::CredentialRefused { .. })
        )
    })
    .await;
    assert!(!tether.status().kill_switch.reachable);

    // Shut down: named too.
    tether.shutdown(Duration::from_secs(2)).await;
    assert_eq!(
        tether.status().kill_switch.unreachable,
        Some(KillSwitchDown::ShutDown)
    );
}
