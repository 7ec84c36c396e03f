//! Issue 15, item 6: a check on a dead link (connections open, nothing
//! answers) ends within its documented bound, the keepalive interval plus
//! the keepalive timeout, and the error names that bound. Real tonic on
//! 127.0.0.1 behind a fault proxy that freezes the link; after a thaw the
//! client checks again.

use std::time::{Duration, Instant};

use tether_fault::LoopbackProxy;
use tether_tests::{agent, connected, gateway, serve, until, TOKEN};
use tether_tokio::client::{TetherConfig, TetherError, ToolCall};

#[tokio::test]
async fn a_check_on_a_frozen_link_ends_at_the_keepalive_bound_and_says_so() {
    let gw = serve(gateway()).await;
    let proxy = LoopbackProxy::start(gw.local_addr()).await.unwrap();
    let mut config = TetherConfig::new(proxy.url(), agent(), "runtime-1").with_token(TOKEN);
    // Shorter than the defaults (10 s + 5 s) to keep the test quick; the
    // bound is the same sum.
    config.keepalive_interval = Duration::from_secs(1);
    config.keepalive_timeout = Duration::from_secs(1);
    let bound = Duration::from_secs(2);
    let tether = connected(config).await;
    assert!(tether
        .check("t:1", &ToolCall::new("read_file"))
        .await
        .unwrap()
        .allowed());

    proxy.freeze();
    let started = Instant::now();
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tether.check("t:2", &ToolCall::new("write_file")),
    )
    .await
    .expect("the check ended by itself, not at the approval deadline");
    let waited = started.elapsed();
    match out {
        Err(TetherError::GatewayUnresponsive { bound: b, .. }) => assert_eq!(b, bound),
        other => panic!("after {waited:?}: {other:?}"),
    }
    // Silence is measured from the last frame, so the check may end a
    // little before the full bound, never long after it.
    assert!(waited <= bound + Duration::from_secs(2), "{waited:?}");

    proxy.thaw();
    until("checks work again after the thaw", || {
        tether.status().invalidation.connected && tether.status().op_control.connected
    })
    .await;
    let v = tether
        .check("t:3", &ToolCall::new("read_file"))
        .await
        .unwrap();
    assert!(v.allowed(), "{v:?}");
}
