//! Issue 15, item 3: a restarted gateway's first events are not lost.
//!
//! A publisher at 4,000 events/s against a real tether gateway on
//! 127.0.0.1, restarted on the same port 8 times, and one client with a
//! recording sink. The gateway's replay ring is small (256 events, a
//! sixteenth of a second at this rate), so a client that waits a backoff
//! delay before it takes the new lifetime's events finds them gone. The
//! rule (`SUB_RESTART_LOSES_NOTHING_HELD`): after a restart the client
//! loses nothing the gateway still holds, so every lifetime is applied from
//! its seq 1, exactly once, in order, with one `GatewayRestart`
//! invalidation in between and no unreplayable gap.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tether_tests::recorder::{Recorder, Seen};
use tether_tests::{bounded, client_config, connected, gateway, serve, serve_on};
use tether_tokio::client::InvalidateAllReason;

/// Restarts of the gateway (so 9 lifetimes).
const RESTARTS: usize = 8;
/// Events published per 5 ms tick: 4,000 events/s.
const PER_TICK: u64 = 20;
/// Events of each lifetime the client must have been sequenced before the
/// publisher stops.
const PER_LIFETIME: u64 = 600;
/// The gateway's replay ring: 64 ms of events at this rate.
const RING: usize = 256;

#[tokio::test]
async fn every_event_of_every_lifetime_is_applied_once_across_restarts_under_load() {
    let builder = || gateway().ring_capacity(RING);
    let mut gw = serve(builder()).await;
    let port = gw.local_addr().port();
    let tether = connected(client_config(&gw.endpoint())).await;
    let rec = Recorder::default();
    tether.add_sink(Arc::new(rec.clone()));

    let mut expected: Vec<Seen> = Vec::new();
    let started = Instant::now();
    for lifetime in 0..=RESTARTS {
        if lifetime > 0 {
            gw.shutdown().await.unwrap();
            // Down long enough for the client to see refused attempts (its
            // backoff grows), then the same port again.
            tokio::time::sleep(Duration::from_millis(150)).await;
            gw = serve_on(builder(), port).await;
            expected.push(Seen::All(InvalidateAllReason::GatewayRestart));
        }
        let admin = gw.admin();
        // Publish at a steady rate until the client, subscribed to this
        // lifetime, has been sequenced PER_LIFETIME events.
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        let mut value = 0u64;
        let last_seq = bounded("the client subscribes to this lifetime", async {
            loop {
                tick.tick().await;
                for _ in 0..PER_TICK {
                    value += 1;
                    admin.publish_invalidation("", value, None);
                }
                let subs = admin.list_subscribers(None);
                if let Some(s) = subs.first() {
                    if s.last_seq >= PER_LIFETIME {
                        return s.last_seq;
                    }
                }
            }
        })
        .await;
        let want: Vec<u64> = (1..=last_seq).collect();
        expected.extend(want.iter().map(|&s| Seen::Change(s)));
        // The client catches up with this lifetime's last event before the
        // gateway goes away (nothing is in flight at the restart).
        bounded(
            "the client applied this lifetime's last event",
            rec.wait_for(|l| l.last() == Some(&Seen::Change(last_seq))),
        )
        .await;
        let log = rec.seen();
        let unreplayable = log
            .iter()
            .filter(|s| **s == Seen::All(InvalidateAllReason::UnreplayableGap))
            .count();
        assert_eq!(
            unreplayable,
            0,
            "lifetime {lifetime}: an unreplayable gap after a restart (the new \
             lifetime's first events were lost); applied since the last reset: {} \
             events from seq {:?}",
            rec.changes_since_last_reset().len(),
            rec.changes_since_last_reset().first()
        );
        assert_eq!(
            rec.changes_since_last_reset(),
            want,
            "lifetime {lifetime}: every event from seq 1, exactly once, in order"
        );
    }
    assert_eq!(rec.seen(), expected, "the whole log, lifetime by lifetime");
    let st = tether.status().invalidation;
    assert_eq!(st.restarts, RESTARTS as u64);
    assert_eq!((st.unreplayable_gaps, st.duplicates, st.gaps), (0, 0, 0));
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "bounded: {:?}",
        started.elapsed()
    );
    tether.shutdown(Duration::from_secs(1)).await;
    gw.shutdown().await.unwrap();
}
