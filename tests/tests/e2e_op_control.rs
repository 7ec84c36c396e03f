//! Scenario 4: the kill switch end to end: pause blocks a check, resume
//! releases it, terminate fails it at once; a terminate sent while the
//! client was partitioned takes effect when it reconnects; a terminated op
//! stays terminated across reconnects.

use std::time::Duration;

use tether_fault::LoopbackProxy;
use tether_tests::{agent_key, bounded, client_config, connected, gateway, serve, until};
use tether_tokio::client::{OpState, Tether, ToolCall, VerdictSource};

async fn signals_applied(t: &Tether, n: u64) {
    let mut st = t.watch_status();
    bounded(
        "op signals applied",
        st.wait_for(|s| s.op_control.events_applied + s.op_control.duplicates >= n),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn pause_resume_terminate_and_terminate_survives_partitions() {
    let gw = serve(gateway()).await;
    let admin = gw.admin();
    let proxy = LoopbackProxy::start(gw.local_addr()).await.unwrap();
    let tether = connected(client_config(&proxy.url())).await;
    let call = ToolCall::new("read_file");

    // Pause blocks, resume releases.
    admin.pause("trace-1:span-1", agent_key()).unwrap();
    signals_applied(&tether, 1).await;
    assert_eq!(tether.ops().state("trace-1:span-1"), OpState::Paused);
    let blocked = tokio::spawn({
        let t = tether.clone();
        let call = call.clone();
        async move { t.check("trace-1:span-1", &call).await }
    });
    until("the check is waiting on the pause", || {
        tether.ops().waiting() == 1
    })
    .await;
    assert!(!blocked.is_finished());
    admin.resume("trace-1:span-1", agent_key()).unwrap();
    let v = bounded("resume releases the check", blocked)
        .await
        .unwrap()
        .unwrap();
    assert!(v.allowed());
    assert_eq!(v.source, VerdictSource::Gateway);

    // Pause again, then terminate: the waiting check fails at once.
    admin.pause("trace-1:span-1", agent_key()).unwrap();
    signals_applied(&tether, 3).await;
    let blocked = tokio::spawn({
        let t = tether.clone();
        let call = call.clone();
        async move { t.check("trace-1:span-1", &call).await }
    });
    until("waiting again", || tether.ops().waiting() == 1).await;
    admin.terminate("trace-1:span-1", agent_key()).unwrap();
    let v = bounded("terminate fails the check", blocked)
        .await
        .unwrap()
        .unwrap();
    assert!(!v.allowed());
    assert_eq!(v.source, VerdictSource::Terminated);
    let again = tether.check("trace-1:span-1", &call).await.unwrap();
    assert_eq!(again.source, VerdictSource::Terminated, "fails at once");

    // A terminate sent while the client is partitioned takes effect when it
    // reconnects (the gateway's snapshot carries it).
    proxy.cut();
    let mut st = tether.watch_status();
    bounded("partitioned", st.wait_for(|s| !s.op_control.connected))
        .await
        .unwrap();
    admin.terminate("trace-2:span-1", agent_key()).unwrap();
    assert_eq!(tether.ops().state("trace-2:span-1"), OpState::Running);
    proxy.restore();
    bounded("reconnected", st.wait_for(|s| s.op_control.connected))
        .await
        .unwrap();
    until("missed terminate applied", || {
        tether.ops().state("trace-2:span-1") == OpState::Terminated
    })
    .await;
    let v = tether.check("trace-2:span-1", &call).await.unwrap();
    assert_eq!(v.source, VerdictSource::Terminated);

    // Stays terminated across another reconnect; resume is refused by the
    // gateway and could not lift it anyway.
    proxy.cut();
    bounded(
        "partitioned again",
        st.wait_for(|s| !s.op_control.connected),
    )
    .await
    .unwrap();
    proxy.restore();
    bounded("reconnected again", st.wait_for(|s| s.op_control.connected))
        .await
        .unwrap();
    assert!(admin.resume("trace-2:span-1", agent_key()).is_err());
    assert_eq!(tether.ops().state("trace-2:span-1"), OpState::Terminated);
    assert_eq!(tether.ops().state("trace-1:span-1"), OpState::Terminated);
    assert!(tether.status().op_control.reconnects >= 2);

    // The fleet-wide halt covers ops the client never saw.
    admin.halt_all().unwrap();
    until("halt applied", || {
        tether.ops().state("fresh:op") == OpState::Terminated
    })
    .await;
    let v = tether.check("fresh:op", &call).await.unwrap();
    assert_eq!(v.source, VerdictSource::Terminated);

    tether.shutdown(Duration::from_secs(1)).await;
    gw.shutdown().await.unwrap();
}

/// A terminate reaches a check that is waiting on an approval.
#[tokio::test]
async fn terminate_ends_a_check_waiting_on_an_approval() {
    let gw = serve(gateway()).await;
    let admin = gw.admin();
    let tether = connected(client_config(&gw.endpoint())).await;
    let waiting = tokio::spawn({
        let t = tether.clone();
        async move { t.check("trace-9:span-9", &ToolCall::new("deploy")).await }
    });
    until("approval pending", || admin.pending().len() == 1).await;
    until("client waits on it", || tether.approvals().waiting() == 1).await;
    admin.terminate("trace-9:span-9", agent_key()).unwrap();
    let v = bounded("terminate ends the approval wait", waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.source, VerdictSource::Terminated);
    assert_eq!(
        tether.approvals().waiting(),
        0,
        "the dropped wait left nothing"
    );
    tether.shutdown(Duration::from_secs(1)).await;
    gw.shutdown().await.unwrap();
}

/// A terminate reaches a check whose CheckAction call the gateway holds
/// open for a reviewer.
#[tokio::test]
async fn terminate_ends_a_check_held_in_check_action() {
    let gw = serve(gateway()).await;
    let admin = gw.admin();
    let tether = connected(client_config(&gw.endpoint())).await;
    let waiting = tokio::spawn({
        let t = tether.clone();
        async move { t.check("trace-8:span-8", &ToolCall::new("pay")).await }
    });
    until("the gateway holds the call", || admin.pending().len() == 1).await;
    admin.terminate("trace-8:span-8", agent_key()).unwrap();
    let v = bounded("terminate ends the held call", waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.source, VerdictSource::Terminated);
    assert!(!v.allowed());
    tether.shutdown(Duration::from_secs(1)).await;
    gw.shutdown().await.unwrap();
}
