//! Whole-scenario simulations of subscription clients against a model
//! gateway (see `sim/mod.rs`), holding the DESIGN.md figures.

mod sim;

use core::time::Duration;

use sim::{busiest_window, max_attempts_within, Accept, GatewayEvent, Sim, SimError};
use tether_core::backoff::BackoffConfig;
use tether_core::subscription::{
    CloseReason, InvalidateReason, Subscription, SubscriptionConfig, DEFAULT_ACK_DELAY,
    DEFAULT_ACK_EVERY,
};
use tether_core::testkit::subscription::Tag;
use tether_core::{Machine, Timestamp};

fn ok<T>(r: Result<T, SimError>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn secs(s: u64) -> Timestamp {
    Timestamp::from_secs(s)
}

/// (a) A gateway that accepts and closes every stream: the attempts in the
/// first minute, ten minutes and hour stay within what the backoff schedule
/// allows, computed from the config (9, 31 and 31 + ⌈3000 / 24⌉ at the
/// defaults), and the client never gives up.
#[test]
fn closing_gateway_attempts_stay_within_the_backoff_schedule() {
    let cfg = BackoffConfig::default();
    let bounds = [60, 600, 3_600].map(|s| max_attempts_within(&cfg, Duration::from_secs(s)));
    assert_eq!(bounds, [9, 31, 31 + 3_000u64.div_ceil(24)]);
    let floor = 3_600 / cfg.max_delay().as_secs();
    let mut worst = [0u64; 3];
    let mut fewest = u64::MAX;
    for seed in 0..200u64 {
        let mut sim = Sim::with_defaults(1, seed.wrapping_mul(0x9E37_79B9));
        sim.accept = Accept::CloseAtOnce;
        ok(sim.drive_until(secs(3_600), 10_000));
        let c = &sim.clients[0];
        let counts =
            [60, 600, 3_600].map(|s| c.connects.iter().filter(|t| **t <= secs(s)).count() as u64);
        for (w, n) in worst.iter_mut().zip(counts) {
            *w = (*w).max(n);
        }
        fewest = fewest.min(counts[2]);
        let st = c.machine.stats();
        assert_eq!(st.reconnects + 1, c.connects.len() as u64);
        assert_eq!(st.applied, 0);
        assert!(never_gave_up(&c.machine));
    }
    println!(
        "closing gateway: worst attempts in 1 min / 10 min / 1 h = {worst:?}, bounds {bounds:?}; fewest in 1 h = {fewest}"
    );
    for (w, b) in worst.iter().zip(bounds) {
        assert!(*w <= b, "{worst:?} above {bounds:?}");
    }
    assert!(fewest >= floor, "gave up: {fewest} attempts in an hour");
}

/// `SUB_NEVER_GIVES_UP`: started, and connected or holding a deadline.
fn never_gave_up(m: &Subscription<Tag>) -> bool {
    m.is_started() && (m.poll_timeout().is_some() || m.is_connected())
}

/// (b) A gateway restart mid-stream: the client invalidates everything right
/// before the first event of the new lifetime, applies every event of the
/// old lifetime exactly once in order, and from then on every event of the
/// new one; what it missed was published before it resubscribed.
#[test]
fn gateway_restart_mid_stream_invalidates_and_loses_nothing_per_lifetime() {
    for seed in 0..20 {
        let mut sim = Sim::with_defaults(1, seed);
        sim.publish_every(secs(1), Duration::from_millis(50), 2_000);
        sim.schedule(
            Timestamp::from_millis(40_025),
            GatewayEvent::Restart {
                down_for: Duration::from_secs(3),
            },
        );
        ok(sim.drive_until(secs(200), 100_000));
        let c = &sim.clients[0];
        c.check_lifetimes().unwrap();
        let (pub0, app0) = c.lifetime(0);
        assert_eq!(app0, pub0, "first lifetime: every event once, in order");
        assert_eq!(pub0.len(), 781);
        let (pub1, app1) = c.lifetime(1);
        let missed = pub1.len() - app1.len();
        assert_eq!(
            app1,
            pub1[missed..],
            "second lifetime: a gap-free run to the end"
        );
        assert_eq!(c.accepted.len(), 2);
        let resub = c.accepted[1];
        assert_eq!(resub.last_seq_seen, 781);
        assert_eq!(missed as u64, resub.head.map_or(0, |t| t.seq));
        assert_eq!(c.invalidations, [(781, InvalidateReason::Restart)]);
        let st = c.machine.stats();
        assert_eq!(
            (st.restarts, st.unreplayable_gaps, st.duplicates),
            (1, 0, 0)
        );
        assert_eq!(c.applied.last(), c.published.last());
    }
}

/// (c) A client offline for more than the 1,024-event replay ring: the
/// first replayed event is past `last + 1`, so everything is invalidated
/// (`UnreplayableGap`) and the ring's oldest event is adopted; nothing after
/// it is lost.
#[test]
fn offline_past_the_replay_window_invalidates_as_unreplayable() {
    for seed in 0..10 {
        let mut sim = Sim::with_defaults(1, seed);
        sim.publish_every(secs(1), Duration::from_millis(10), 3_000);
        sim.schedule(
            Timestamp::from_millis(5_005),
            GatewayEvent::Isolate {
                client: 0,
                offline_for: Duration::from_secs(20),
            },
        );
        ok(sim.drive_until(secs(120), 100_000));
        let c = &sim.clients[0];
        c.check_lifetimes().unwrap();
        assert_eq!(c.accepted.len(), 2);
        let back = c.accepted[1];
        let before = back.last_seq_seen;
        let head = back.head.expect("events while offline").seq;
        assert_eq!(before, 401);
        assert!(
            head - before > 1_024,
            "offline for {} events",
            head - before
        );
        assert_eq!(
            c.invalidations,
            [(before as usize, InvalidateReason::UnreplayableGap)]
        );
        let oldest_in_ring = head - 1_023;
        let expected: Vec<u64> = (1..=before).chain(oldest_in_ring..=3_000).collect();
        assert_eq!(c.lifetime(0).1, expected);
    }
}

/// (c') Offline for fewer events than the ring holds: a full replay, no
/// invalidation, every event exactly once.
#[test]
fn offline_within_the_replay_window_replays_everything() {
    let mut sim = Sim::with_defaults(1, 11);
    sim.publish_every(secs(1), Duration::from_millis(10), 3_000);
    sim.schedule(
        Timestamp::from_millis(5_005),
        GatewayEvent::Isolate {
            client: 0,
            offline_for: Duration::from_secs(5),
        },
    );
    ok(sim.drive_until(secs(120), 100_000));
    let c = &sim.clients[0];
    let (published, applied) = c.lifetime(0);
    assert_eq!(applied, published);
    assert!(c.invalidations.is_empty());
    let back = c.accepted[1];
    assert!(back.head.unwrap().seq - back.last_seq_seen > 400);
}

/// (d) 10,000 clients, healthy, dropped at the same instant: the busiest
/// 100 ms window of their reconnects holds at most twice an even spread's
/// share and at most 15 % of them; without jitter, all of them.
#[test]
fn ten_thousand_clients_dropped_together_spread_their_reconnects() {
    const N: usize = 10_000;
    let window = Duration::from_millis(100);
    let run = |jitter: f64| {
        let backoff = BackoffConfig::default().with_jitter(jitter);
        let mut sim = Sim::with_backoff(N, backoff, 1);
        sim.schedule(secs(1), GatewayEvent::Publish);
        sim.schedule(secs(60), GatewayEvent::DropStreams);
        ok(sim.drive_until(secs(70), 100_000));
        let reconnects: Vec<Timestamp> = sim
            .clients
            .iter()
            .map(|c| {
                assert_eq!(c.connects.len(), 2);
                assert_eq!(c.applied.len(), 1);
                c.connects[1]
            })
            .collect();
        assert!(reconnects.iter().all(|t| (secs(60)..=secs(61)).contains(t)));
        busiest_window(&reconnects, window)
    };
    let busiest = run(0.2);
    let unjittered = run(0.0);
    let base = BackoffConfig::default().base;
    let even = N as f64 * window.as_secs_f64() / base.as_secs_f64();
    println!(
        "10,000 clients dropped at once: busiest 100 ms window = {busiest} reconnects ({:.1} %), \
         even spread = {even:.0}; without jitter = {unjittered} ({:.1} %)",
        100.0 * busiest as f64 / N as f64,
        100.0 * unjittered as f64 / N as f64,
    );
    assert!(busiest as f64 <= 2.0 * even, "{busiest} > 2 x {even}");
    assert!(busiest as f64 <= 0.15 * N as f64, "{busiest} > 15 %");
    assert_eq!(unjittered, N);
}

/// (e) A lagging subscriber: the live channel skips events, the client
/// notices the gap, closes, resubscribes and gets them from the ring.
#[test]
fn lagging_subscriber_notices_the_gap_and_loses_nothing() {
    let mut sim = Sim::with_defaults(1, 3);
    sim.publish_every(secs(1), Duration::from_millis(100), 300);
    for k in 0..5 {
        sim.schedule(
            Timestamp::from_millis(10_050 + k),
            GatewayEvent::PublishLagging,
        );
    }
    ok(sim.drive_until(secs(120), 100_000));
    let c = &sim.clients[0];
    c.check_lifetimes().unwrap();
    let (published, applied) = c.lifetime(0);
    assert_eq!(published.len(), 305);
    assert_eq!(applied, published);
    assert!(c.invalidations.is_empty());
    assert!(matches!(
        c.closes[..],
        [(
            _,
            CloseReason::Gap {
                last_seq_seen: 91,
                got: 97
            }
        )]
    ));
}

/// The restart of the two scenarios below: 3 events, a restart, 10 events
/// of the new lifetime published before the client resubscribes.
fn restart_outrunning_last_seq_seen(announce_epoch: bool) -> Sim {
    let mut sim = Sim::with_defaults(1, 5);
    sim.announce_epoch = announce_epoch;
    sim.publish_every(secs(1), Duration::from_secs(1), 3);
    sim.schedule(
        secs(10),
        GatewayEvent::Restart {
            down_for: Duration::from_millis(500),
        },
    );
    sim.publish_every(
        Timestamp::from_millis(10_510),
        Duration::from_millis(10),
        10,
    );
    ok(sim.drive_until(secs(60), 10_000));
    sim
}

/// What sequence numbers cannot reveal (see the `subscription` module docs):
/// a gateway that restarted and published more than `last_seq_seen` events
/// before the client resubscribed replays from `last_seq_seen + 1` of its new
/// lifetime, which looks exactly like a resume. With a gateway that announces
/// no lifetime epoch (the Agent Assembly gateway) this remains: the scenario
/// pins the behaviour so a change is noticed.
#[test]
fn a_restart_that_outruns_last_seq_seen_is_invisible_to_sequence_numbers() {
    let sim = restart_outrunning_last_seq_seen(false);
    let c = &sim.clients[0];
    assert!(c.accepted[1].at >= Timestamp::from_millis(10_800));
    assert!(c.invalidations.is_empty());
    assert_eq!(c.lifetime(1), ((1..=10).collect(), (4..=10).collect()));
}

/// The same restart against a gateway that announces its lifetime epoch
/// (`SUB_EPOCH_CHANGE_RESETS`): the changed epoch is noticed as the stream
/// opens and everything is invalidated once; the stream, opened from 3,
/// replays from 4, so the client resubscribes from 0 at the same instant
/// (`SUB_RESTART_LOSES_NOTHING_HELD`), and every event of both lifetimes is
/// applied exactly once, in order.
#[test]
fn a_restart_that_outruns_last_seq_seen_is_caught_by_the_gateway_epoch() {
    let sim = restart_outrunning_last_seq_seen(true);
    let c = &sim.clients[0];
    c.check_lifetimes().unwrap();
    assert_eq!(c.lifetime(0), ((1..=3).collect(), (1..=3).collect()));
    assert_eq!(c.lifetime(1), ((1..=10).collect(), (1..=10).collect()));
    assert_eq!(c.invalidations, [(3, InvalidateReason::Restart)]);
    let resubscribes: Vec<u64> = c.accepted.iter().map(|a| a.last_seq_seen).collect();
    assert_eq!(resubscribes, [0, 3, 0]);
    assert!(c.accepted[1].at >= Timestamp::from_millis(10_800));
    assert_eq!(c.accepted[2].at, c.accepted[1].at, "no backoff delay");
    assert!(matches!(c.closes[..], [(_, CloseReason::EpochChanged)]));
    let st = c.machine.stats();
    assert_eq!(
        (st.restarts, st.unreplayable_gaps, st.duplicates, st.applied),
        (1, 0, 0, 13)
    );
    assert_eq!(c.machine.gateway_epoch(), Some(1));
}

/// `SUB_ACK_CUMULATIVE_BOUNDED` over a whole run: a burst of 1,000 events
/// at one instant, a trickle of 100 events 5 ms apart, then 50 events 100 ms
/// apart. Every applied event is covered by an ack (an ack of its seq or a
/// later one of the same stream) within `ack_delay` of its apply, the
/// gateway's acked seq reaches the last event, and the acks are few: the
/// burst takes 15 by count (64 each) and 1 by timer; the trickle at most one
/// per 20 ms of its 495 ms (26); each lone event one, 20 ms after it. With
/// `ack_every` 1 the same run sends one ack per event.
#[test]
fn acks_coalesce_and_every_applied_event_is_acked_within_ack_delay() {
    let run = |ack_every: u32| {
        let mut sim = Sim::new(1, |_| {
            SubscriptionConfig::with_seed(21).with_ack_every(ack_every)
        });
        sim.publish_every(secs(1), Duration::ZERO, 1_000);
        sim.publish_every(secs(2), Duration::from_millis(5), 100);
        sim.publish_every(secs(3), Duration::from_millis(100), 50);
        ok(sim.drive_until(secs(20), 100_000));
        sim
    };
    let sim = run(DEFAULT_ACK_EVERY);
    let c = &sim.clients[0];
    let (published, applied) = c.lifetime(0);
    assert_eq!(applied, published);
    assert_eq!(applied.len(), 1_150);
    assert_eq!(c.gateway.acked(), 1_150);
    assert_eq!(c.accepted.len(), 1, "one stream all along");
    let delay = DEFAULT_ACK_DELAY;
    let mut next_ack = 0;
    for (tag, at) in c.applied.iter().zip(&c.applied_at) {
        while c.acks[next_ack].1 < tag.seq {
            next_ack += 1;
        }
        let (acked_at, _) = c.acks[next_ack];
        assert!(
            acked_at <= *at + delay,
            "{tag:?} applied at {at:?}, acked at {acked_at:?}"
        );
    }
    let within = |from: Timestamp, to: Timestamp| {
        c.acks
            .iter()
            .filter(|(at, _)| (from..to).contains(at))
            .count()
    };
    let burst = within(secs(1), secs(2));
    let trickle = within(secs(2), secs(3));
    let lone = within(secs(3), secs(10));
    println!(
        "acks: burst of 1,000 -> {burst}, trickle of 100 at 5 ms -> {trickle}, \
         50 lone events -> {lone}; {} acks for 1,150 events",
        c.acks.len()
    );
    assert_eq!(burst, 16);
    assert_eq!(
        c.acks
            .iter()
            .filter(|(at, _)| *at == secs(1) + delay)
            .count(),
        1
    );
    assert!(trickle <= 26, "{trickle}");
    assert_eq!(lone, 50);
    assert_eq!(c.machine.stats().acks, c.acks.len() as u64);

    let sim = run(1);
    let c = &sim.clients[0];
    assert_eq!(c.acks.len(), 1_150);
    assert_eq!(c.gateway.acked(), 1_150);
    assert!(c.acks.iter().zip(&c.applied_at).all(|((t, _), at)| t == at));
}

/// The same seeds and schedule replay the same run.
#[test]
fn simulations_replay_exactly_from_their_seeds() {
    let run = || {
        let mut sim = Sim::with_defaults(20, 99);
        sim.publish_every(secs(1), Duration::from_millis(250), 200);
        sim.schedule(secs(20), GatewayEvent::DropStreams);
        sim.schedule(
            secs(30),
            GatewayEvent::Restart {
                down_for: Duration::from_secs(4),
            },
        );
        ok(sim.drive_until(secs(90), 100_000));
        sim.clients
            .iter()
            .map(|c| {
                (
                    c.connects.clone(),
                    c.applied.clone(),
                    c.invalidations.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

/// The harness itself fails on a step limit and on unbounded work at one
/// instant instead of spinning.
#[test]
fn the_harness_reports_step_limits_and_livelocks() {
    let mut sim = Sim::with_defaults(1, 0);
    sim.accept = Accept::CloseAtOnce;
    let err = sim.drive_until(secs(3_600), 10).unwrap_err();
    assert!(
        matches!(err, SimError::StepLimit { steps: 10, .. }),
        "{err}"
    );

    let mut sim = Sim::with_defaults(100, 0);
    sim.max_actions_per_instant = 50;
    let err = sim.drive_until(secs(1), 10).unwrap_err();
    assert!(matches!(err, SimError::Livelock { .. }), "{err}");
}

/// `SUB_RESTART_LOSES_NOTHING_HELD` under load: three clients, a gateway
/// that publishes 5,000 events/s and restarts 20 times (down 100 ms each,
/// then 700 ms of events), announcing its lifetime epoch. The gateway keeps
/// sequencing each subscriber while it is away, so the new ring fills
/// before the client comes back. Every lifetime is applied exactly once, in
/// order, from the oldest event the gateway held when the stream that
/// delivered its first event was opened, to its last; and that stream was
/// the lifetime's first, or opened at the instant the first one's first
/// event showed a skipped replay (the resubscribe from 0 after the restart
/// waits no backoff delay). An unreplayable gap is
/// reported only where the ring no longer held seq 1.
#[test]
fn restarts_under_load_lose_nothing_the_new_gateway_held() {
    const RESTARTS: u64 = 20;
    const EVERY: Duration = Duration::from_micros(200);
    const PER_LIFETIME: u64 = 3_500;
    let backoff = BackoffConfig::default()
        .with_base(Duration::from_millis(50))
        .with_max(Duration::from_millis(500));
    let mut sim = Sim::with_backoff(3, backoff, 41);
    sim.announce_epoch = true;
    let lifetime_start = |k: u64| Timestamp::from_millis(900 * k);
    for k in 0..=RESTARTS {
        if k > 0 {
            sim.schedule(
                lifetime_start(k).saturating_sub(Duration::from_millis(100)),
                GatewayEvent::Restart {
                    down_for: Duration::from_millis(100),
                },
            );
        }
        sim.publish_every(lifetime_start(k), EVERY, PER_LIFETIME);
    }
    ok(sim.drive_until(lifetime_start(RESTARTS + 1), 2_000_000));
    for (i, c) in sim.clients.iter().enumerate() {
        c.check_lifetimes().unwrap();
        let mut expected_gaps = 0;
        for k in 1..=RESTARTS {
            let (published, applied) = c.lifetime(k);
            assert_eq!(published.len() as u64, PER_LIFETIME, "client {i}");
            let first_at = c.applied_at[c.applied.iter().position(|t| t.epoch == k).unwrap()];
            let streams: Vec<_> = c
                .accepted
                .iter()
                .filter(|a| a.at >= lifetime_start(k).saturating_sub(Duration::from_millis(100)))
                .filter(|a| a.at <= first_at)
                .collect();
            let delivering = streams.last().unwrap();
            // The lifetime's first stream, or the resubscribe from 0 made at
            // the instant that stream's first event showed a skipped replay.
            let at_once = c
                .closes
                .iter()
                .any(|&(at, r)| at == delivering.at && r == CloseReason::EpochChanged);
            assert!(
                streams.len() == 1 || (streams.len() == 2 && at_once),
                "client {i} lifetime {k}: the resubscribe waited ({streams:?})"
            );
            let held = delivering.held_from;
            assert_eq!(
                applied,
                (held..=PER_LIFETIME).collect::<Vec<_>>(),
                "client {i} lifetime {k}: held from {held}"
            );
            if held > 1 {
                expected_gaps += 1;
            }
        }
        let st = c.machine.stats();
        assert_eq!(st.restarts, RESTARTS, "client {i}");
        assert_eq!(st.unreplayable_gaps, expected_gaps, "client {i}");
        assert_eq!((st.duplicates, st.gaps), (0, 0), "client {i}");
    }
}
