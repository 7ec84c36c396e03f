//! Scenarios 1-3: the invalidation stream end to end, real gateway and
//! client on 127.0.0.1.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tether_core::subscription::{DEFAULT_ACK_DELAY, DEFAULT_ACK_EVERY};
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
    tether.shutdown(Duration::from_secs(1)).await;
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
    tether.shutdown(Duration::from_secs(1)).await;
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
    tether.shutdown(Duration::from_secs(1)).await;
    gw.shutdown().await.unwrap();
}

/// A burst far larger than the client's outgoing ack buffer: every applied
/// event is acknowledged (the gateway's acked seq reaches the last event and
/// its ring is trimmed to empty), with cumulative acks far fewer than the
/// events (`SUB_ACK_CUMULATIVE_BOUNDED`).
#[tokio::test]
async fn a_burst_larger_than_the_ack_buffer_acks_every_applied_event() {
    const EVENTS: u64 = 30_000;
    let gw = serve(gateway().ring_capacity(1 << 16).live_capacity(1 << 16)).await;
    let admin = gw.admin();
    let tether = connected(client_config(&gw.endpoint())).await;
    let started = Instant::now();
    for v in 1..=EVENTS {
        admin.publish_invalidation("", v, None);
    }
    until("every event applied", || {
        tether.status().invalidation.events_applied == EVENTS
    })
    .await;
    until("every applied event acked, the ring trimmed", || {
        let subs = admin.list_subscribers(None);
        subs.len() == 1 && subs[0].acked_seq == EVENTS && subs[0].ring_len == 0
    })
    .await;
    let elapsed = started.elapsed();
    let st = tether.status().invalidation;
    assert_eq!((st.duplicates, st.gaps, st.reconnects), (0, 0, 0));
    // One stream, and nothing is left unacked, so no ack comes after this one. By count,
    // one ack per 64 applies; by timer, at most one per ack_delay since the
    // first apply (a timer ack comes ack_delay after the previous ack).
    let acks = admin.list_subscribers(None)[0].acks_received;
    let bound = EVENTS / u64::from(DEFAULT_ACK_EVERY)
        + (elapsed.as_millis() / DEFAULT_ACK_DELAY.as_millis()) as u64
        + 1;
    println!("{EVENTS} events acked with {acks} acks in {elapsed:?} (bound {bound})");
    assert!(acks <= bound, "{acks} acks, bound {bound}");
    // The wait above is bounded by WAIT (20 s), so the bound is at most
    // 468 + 1,000 + 1 = 1,469, under EVENTS / 8 = 3,750.
    assert!(acks <= EVENTS / 8, "{acks} acks for {EVENTS} events");
    tether.shutdown(Duration::from_secs(1)).await;
    gw.shutdown().await.unwrap();
}

/// A lone event (fewer than `ack_every`) is acked by the ack timer: not
/// before `ack_delay`, and well within `ack_delay` plus a generous bound.
#[tokio::test]
async fn a_lone_event_is_acked_after_ack_delay() {
    let delay = Duration::from_millis(300);
    let gw = serve(gateway()).await;
    let admin = gw.admin();
    let tether = connected(client_config(&gw.endpoint()).with_acks(DEFAULT_ACK_EVERY, delay)).await;
    let rec = Recorder::default();
    tether.add_sink(Arc::new(rec.clone()));
    let started = Instant::now();
    assert_eq!(admin.publish_invalidation("", 1, None), 1);
    bounded("the event applied", rec.wait_for(|l| l.len() == 1)).await;
    let acked = tokio::time::timeout(
        delay + Duration::from_secs(2),
        until("the event acked", || {
            admin.list_subscribers(None)[0].acked_seq == 1
        }),
    )
    .await;
    let elapsed = started.elapsed();
    assert!(acked.is_ok(), "no ack within {delay:?} + 2 s");
    // The ack leaves ack_delay after the apply, which came after `started`.
    assert!(
        elapsed >= delay,
        "acked after {elapsed:?}, before {delay:?}"
    );
    let sub = &admin.list_subscribers(None)[0];
    assert_eq!((sub.acks_received, sub.ring_len), (1, 0));
    tether.shutdown(Duration::from_secs(1)).await;
    gw.shutdown().await.unwrap();
}

/// `with_acks(1, ..)`: one ack per applied event, as before acks were
/// coalesced.
#[tokio::test]
async fn with_ack_every_1_every_event_gets_its_own_ack() {
    const EVENTS: u64 = 500;
    let gw = serve(gateway()).await;
    let admin = gw.admin();
    let config = client_config(&gw.endpoint()).with_acks(1, DEFAULT_ACK_DELAY);
    let tether = connected(config).await;
    for v in 1..=EVENTS {
        admin.publish_invalidation("", v, None);
    }
    until("every event acked", || {
        let subs = admin.list_subscribers(None);
        subs.len() == 1 && subs[0].acked_seq == EVENTS
    })
    .await;
    let sub = &admin.list_subscribers(None)[0];
    assert_eq!(sub.acks_received, EVENTS, "one ack per applied event");
    assert_eq!(sub.ring_len, 0);
    assert_eq!(tether.status().invalidation.reconnects, 0);
    tether.shutdown(Duration::from_secs(1)).await;
    gw.shutdown().await.unwrap();
}
