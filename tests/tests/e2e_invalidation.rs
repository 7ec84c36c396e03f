//! Scenarios 1-3: the invalidation stream end to end, real gateway and
//! client on 127.0.0.1.

use std::sync::Arc;

use tether_fault::LoopbackProxy;
use tether_tests::recorder::{Recorder, Seen};
use tether_tests::{bounded, client_config, connected, gateway, serve, serve_on, until};
use tether_tokio::client::{InvalidateAllReason, ToolCall, VerdictSource};

/// 1. An invalidation published on the gateway drops the cached decision;
/// every event is applied once, in order; acks trim the gateway's ring.
#[tokio::test]
async fn invalidation_drops_cached_decision_applies_in_order_and_acks_trim_the_ring() {
    let gw = serve(gateway()).await;
    let admin = gw.admin();
    let tether = connected(client_config(&gw.endpoint())).await;
    let rec = Recorder::default();
    tether.add_sink(Arc::new(rec.clone()));

    let call = ToolCall::new("read_file").with_args(r#"{"path":"/etc/motd"}"#);
    let first = tether.check("trace-1:span-1", &call).await.unwrap();
    assert!(first.allowed());
    assert_eq!(first.source, VerdictSource::Gateway);
    let second = tether.check("trace-1:span-2", &call).await.unwrap();
    assert_eq!(second.source, VerdictSource::Cache, "served from the cache");

    assert_eq!(admin.publish_invalidation("agent-1", 2, None), 1);
    bounded("first invalidation applied", rec.wait_for(|l| l.len() == 1)).await;
    let third = tether.check("trace-1:span-3", &call).await.unwrap();
    assert_eq!(
        third.source,
        VerdictSource::Gateway,
        "the invalidation dropped the cached decision"
    );

    for v in 3..=201 {
        admin.publish_invalidation("", v, None);
    }
    let log = bounded("200 events applied", rec.wait_for(|l| l.len() == 200)).await;
    let seqs: Vec<u64> = log
        .iter()
        .map(|s| match s {
            Seen::Change(n) => *n,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(seqs, (1..=200).collect::<Vec<_>>(), "each once, in order");
    let st = tether.status().invalidation;
    assert_eq!((st.events_applied, st.duplicates, st.gaps), (200, 0, 0));

    until("acks trim the ring to empty", || {
        let subs = admin.list_subscribers(None);
        subs.len() == 1 && subs[0].acked_seq == 200 && subs[0].ring_len == 0
    })
    .await;
    tether.shutdown(std::time::Duration::from_secs(1)).await;
    gw.shutdown().await.unwrap();
}

/// 2. The gateway is stopped and started again on the same port while
/// events are being published: the client reconnects, detects the restart,
/// invalidates everything and carries on; within one gateway lifetime no
/// event is lost or applied twice.
#[tokio::test]
async fn gateway_restart_on_the_same_port_is_detected_and_nothing_is_lost_within_a_lifetime() {
    let gw = serve(gateway()).await;
    let port = gw.local_addr().port();
    let url = gw.endpoint();
    let tether = connected(client_config(&url)).await;
    let rec = Recorder::default();
    tether.add_sink(Arc::new(rec.clone()));
    let call = ToolCall::new("search");
    tether.check("t:1", &call).await.unwrap();
    assert_eq!(tether.cached_decisions(), 1);

    // Lifetime A: publish while the client is streaming.
    let admin = gw.admin();
    for v in 1..=50 {
        admin.publish_invalidation("", v, None);
    }
    bounded("lifetime A applied", rec.wait_for(|l| l.len() == 50)).await;
    // Publish more and stop the gateway mid-stream.
    for v in 51..=80 {
        admin.publish_invalidation("", v, None);
    }
    gw.shutdown().await.unwrap();
    let mut st = tether.watch_status();
    bounded(
        "client saw the drop",
        st.wait_for(|s| !s.invalidation.connected),
    )
    .await
    .unwrap();

    // Lifetime B, same port.
    let gw2 = serve_on(gateway(), port).await;
    let admin2 = gw2.admin();
    until("client resubscribed to the new gateway", || {
        admin2.list_subscribers(None).iter().any(|s| s.connected)
    })
    .await;
    for v in 1..=40 {
        admin2.publish_invalidation("", 1000 + v, None);
    }
    bounded(
        "restart detected and lifetime B applied",
        rec.wait_for(|l| {
            l.iter()
                .rposition(|s| *s == Seen::All(InvalidateAllReason::GatewayRestart))
                .is_some_and(|i| l.len() - i - 1 == 40)
        }),
    )
    .await;
    let log = rec.seen();
    let reset = log
        .iter()
        .position(|s| *s == Seen::All(InvalidateAllReason::GatewayRestart))
        .unwrap();
    let before: Vec<u64> = log[..reset]
        .iter()
        .map(|s| match s {
            Seen::Change(n) => *n,
            other => panic!("unexpected {other:?} in lifetime A"),
        })
        .collect();
    // Lifetime A: a contiguous prefix 1..=k with k >= 50 (what was in flight
    // when the gateway died is lost with it), nothing twice.
    assert!(before.len() >= 50 && before.len() <= 80, "{}", before.len());
    assert_eq!(before, (1..=before.len() as u64).collect::<Vec<_>>());
    // Lifetime B: exactly 1..=40.
    assert_eq!(rec.changes_since_last_reset(), (1..=40).collect::<Vec<_>>());
    let st = tether.status().invalidation;
    assert_eq!(st.restarts, 1);
    assert!(st.reconnects >= 1);
    assert_eq!(tether.cached_decisions(), 0, "everything invalidated");
    // And it carries on: a fresh decision is fetched and cached again.
    let v = tether.check("t:2", &call).await.unwrap();
    assert_eq!(v.source, VerdictSource::Gateway);
    tether.shutdown(std::time::Duration::from_secs(1)).await;
    gw2.shutdown().await.unwrap();
}

/// 3. A client away for more than the replay window comes back, detects
/// the unreplayable gap, and invalidates everything.
#[tokio::test]
async fn client_away_past_the_replay_window_invalidates_everything() {
    let gw = serve(gateway().ring_capacity(16)).await;
    let admin = gw.admin();
    let proxy = LoopbackProxy::start(gw.local_addr()).await.unwrap();
    let tether = connected(client_config(&proxy.url())).await;
    let rec = Recorder::default();
    tether.add_sink(Arc::new(rec.clone()));
    for v in 1..=5 {
        admin.publish_invalidation("", v, None);
    }
    bounded("5 applied", rec.wait_for(|l| l.len() == 5)).await;
    tether.check("t:1", &ToolCall::new("search")).await.unwrap();
    assert_eq!(tether.cached_decisions(), 1);

    proxy.cut();
    let mut st = tether.watch_status();
    bounded(
        "client saw the partition",
        st.wait_for(|s| !s.invalidation.connected),
    )
    .await
    .unwrap();
    until("gateway saw the partition", || {
        admin.list_subscribers(None).iter().all(|s| !s.connected)
    })
    .await;
    // 40 events while away; the ring keeps the last 16 (seq 30..=45).
    for v in 6..=45 {
        admin.publish_invalidation("", v, None);
    }
    proxy.restore();
    bounded(
        "unreplayable gap detected",
        rec.wait_for(|l| l.contains(&Seen::All(InvalidateAllReason::UnreplayableGap))),
    )
    .await;
    bounded(
        "the replayed tail applied",
        rec.wait_for(|l| matches!(l.last(), Some(Seen::Change(45)))),
    )
    .await;
    assert_eq!(
        rec.changes_since_last_reset(),
        (30..=45).collect::<Vec<_>>()
    );
    let st = tether.status().invalidation;
    assert_eq!(st.unreplayable_gaps, 1);
    assert_eq!(st.restarts, 0);
    assert_eq!(tether.cached_decisions(), 0);
    tether.shutdown(std::time::Duration::from_secs(1)).await;
    gw.shutdown().await.unwrap();
}

/// A burst far larger than the client's outgoing ack buffer: every applied
/// event is still acked, one ack each (none dropped when the buffer is
/// full; the client waits for room instead, and the gateway reads acks
/// while it is sending).
#[tokio::test]
async fn a_burst_larger_than_the_ack_buffer_acks_every_applied_event() {
    const EVENTS: u64 = 30_000;
    let gw = serve(gateway().ring_capacity(1 << 16).live_capacity(1 << 16)).await;
    let admin = gw.admin();
    let tether = connected(client_config(&gw.endpoint())).await;
    for v in 1..=EVENTS {
        admin.publish_invalidation("", v, None);
    }
    until("every event applied", || {
        tether.status().invalidation.events_applied == EVENTS
    })
    .await;
    until("every applied event acked", || {
        let subs = admin.list_subscribers(None);
        subs.len() == 1 && subs[0].acked_seq == EVENTS && subs[0].acks_received >= EVENTS
    })
    .await;
    let subs = admin.list_subscribers(None);
    assert_eq!(subs[0].acks_received, EVENTS, "one ack per applied event");
    let st = tether.status().invalidation;
    assert_eq!((st.duplicates, st.gaps, st.reconnects), (0, 0, 0));
    tether.shutdown(std::time::Duration::from_secs(1)).await;
    gw.shutdown().await.unwrap();
}
