//! The client's lifecycle promises: `shutdown` waits for checks in flight
//! within its deadline and reports what it abandoned; later checks are
//! refused; the gateway sees the streams close. Waits are cancellation-safe.

use std::time::Duration;

use tether_tests::{agent_key, bounded, client_config, connected, gateway, serve, until};
use tether_tokio::client::{OpState, TetherError, ToolCall};

#[tokio::test]
async fn shutdown_waits_for_checks_within_its_deadline_then_refuses_new_ones() {
    let gw = serve(gateway()).await;
    let admin = gw.admin();
    let tether = connected(client_config(&gw.endpoint())).await;

    // A check that finishes during the grace period is waited for.
    admin.pause("t:1", agent_key()).unwrap();
    until("paused", || tether.ops().state("t:1") == OpState::Paused).await;
    let finishing = tokio::spawn({
        let t = tether.clone();
        async move { t.check("t:1", &ToolCall::new("read_file")).await }
    });
    until("waiting", || tether.ops().waiting() == 1).await;
    let shutting = tokio::spawn({
        let t = tether.clone();
        async move { t.shutdown(Duration::from_secs(10)).await }
    });
    // New checks are refused as soon as shutdown begins.
    until("shutdown begun", || futures_refused(&tether)).await;
    admin.resume("t:1", agent_key()).unwrap();
    let v = bounded("in-flight check finished", finishing)
        .await
        .unwrap()
        .unwrap();
    assert!(v.allowed());
    let report = bounded("shutdown returned", shutting).await.unwrap();
    assert_eq!(report.abandoned_checks, 0);
    until("gateway saw the stream close", || {
        admin.list_subscribers(None).iter().all(|s| !s.connected)
    })
    .await;
    gw.shutdown().await.unwrap();
}

/// Whether a new check is refused with `Shutdown` (without waiting on it).
fn futures_refused(t: &tether_tokio::client::Tether) -> bool {
    let t = t.clone();
    let fut = async move { t.check("t:probe", &ToolCall::new("read_file")).await };
    matches!(
        futures::FutureExt::now_or_never(fut),
        Some(Err(TetherError::Shutdown))
    )
}

#[tokio::test]
async fn shutdown_abandons_what_outlives_its_deadline() {
    let gw = serve(gateway()).await;
    let admin = gw.admin();
    let tether = connected(client_config(&gw.endpoint())).await;
    admin.pause("t:2", agent_key()).unwrap();
    until("paused", || tether.ops().state("t:2") == OpState::Paused).await;
    let stuck = tokio::spawn({
        let t = tether.clone();
        async move { t.check("t:2", &ToolCall::new("read_file")).await }
    });
    until("waiting", || tether.ops().waiting() == 1).await;
    let report = tether.shutdown(Duration::from_millis(200)).await;
    assert_eq!(report.abandoned_checks, 1);
    stuck.abort();
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_dropped_wait_runnable_leaves_nothing_behind() {
    let gw = serve(gateway()).await;
    let admin = gw.admin();
    let tether = connected(client_config(&gw.endpoint())).await;
    admin.pause("t:3", agent_key()).unwrap();
    until("paused", || tether.ops().state("t:3") == OpState::Paused).await;
    {
        let wait = tether.ops().wait_runnable("t:3");
        tokio::pin!(wait);
        assert!(futures::poll!(wait.as_mut()).is_pending());
        assert_eq!(tether.ops().waiting(), 1);
    } // dropped here
    assert_eq!(
        tether.ops().waiting(),
        0,
        "the dropped waiter was cancelled"
    );
    // And a later resume still releases a new waiter normally.
    let w = tokio::spawn({
        let t = tether.clone();
        async move { t.ops().wait_runnable("t:3").await }
    });
    until("waiting again", || tether.ops().waiting() == 1).await;
    admin.resume("t:3", agent_key()).unwrap();
    bounded("released", w).await.unwrap().unwrap();
    tether.shutdown(Duration::from_secs(1)).await;
    gw.shutdown().await.unwrap();
}
