//! Property tests and DESIGN.md figures for the backoff machine.

use core::time::Duration;

use proptest::prelude::*;
use tether_core::backoff::{Backoff, BackoffAction, BackoffConfig, BackoffPhase};
use tether_core::testkit::backoff::{run, Op};
use tether_core::{Machine, Timestamp};

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u32..120_000).prop_map(Op::Advance),
        Just(Op::Wake),
        Just(Op::Connected),
        Just(Op::Message),
        Just(Op::Disconnected),
        Just(Op::Restart),
        Just(Op::PeerDraining),
    ]
}

fn config() -> impl Strategy<Value = BackoffConfig> {
    (
        1u64..5_000,
        1.0f64..3.0,
        0.0f64..1.0,
        1u64..120_000,
        0u64..60_000,
        any::<u64>(),
    )
        .prop_map(|(base, mult, jitter, max, healthy, seed)| {
            BackoffConfig::default()
                .with_base(Duration::from_millis(base))
                .with_multiplier(mult)
                .with_jitter(jitter)
                .with_max(Duration::from_millis(max))
                .with_healthy_after(Duration::from_millis(healthy))
                .with_jitter_seed(seed)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// BACKOFF_DELAY_BOUNDED, BACKOFF_DELAY_FLOOR, BACKOFF_RESET_ONLY_WHEN_HEALTHY,
    /// BACKOFF_NEVER_GIVES_UP and the contract invariants, at the defaults.
    #[test]
    fn invariants_hold_at_defaults(seed in any::<u64>(), ops in prop::collection::vec(op(), 0..300)) {
        if let Err(v) = run(BackoffConfig::with_seed(seed), &ops) {
            prop_assert!(false, "{v}");
        }
    }

    /// The same invariants under arbitrary (even out-of-range) configs.
    #[test]
    fn invariants_hold_for_any_config(cfg in config(), ops in prop::collection::vec(op(), 0..300)) {
        if let Err(v) = run(cfg, &ops) {
            prop_assert!(false, "{v}");
        }
    }

    /// Same seed, same inputs, same outputs.
    #[test]
    fn replays_exactly_from_its_seed(seed in any::<u64>(), ops in prop::collection::vec(op(), 0..200)) {
        let a = run(BackoffConfig::with_seed(seed), &ops).map(|h| h.delays);
        let b = run(BackoffConfig::with_seed(seed), &ops).map(|h| h.delays);
        prop_assert_eq!(a, b);
    }
}

#[test]
fn nonsense_config_is_clamped_not_panicking() {
    let cfg = BackoffConfig::default()
        .with_base(Duration::ZERO)
        .with_multiplier(f64::NAN)
        .with_jitter(f64::INFINITY)
        .with_max(Duration::ZERO)
        .with_healthy_after(Duration::MAX)
        .with_jitter_seed(0);
    let ops = [
        Op::Disconnected,
        Op::Wake,
        Op::Disconnected,
        Op::Wake,
        Op::Advance(u32::MAX),
    ];
    run(cfg, &ops).expect("clamped config keeps every invariant");
}

/// Drive a machine against a gateway that accepts and closes every stream,
/// waking only at reported deadlines; the instants of every attempt.
fn attempts_against_closing_gateway(seed: u64, horizon: Duration) -> Vec<Timestamp> {
    let mut b = Backoff::new(BackoffConfig::with_seed(seed));
    let mut now = Timestamp::ZERO;
    let end = Timestamp::ZERO + horizon;
    let mut attempts = Vec::new();
    b.start(now);
    loop {
        while let Some(BackoffAction::Connect { .. }) = b.poll_action() {
            attempts.push(now);
            b.on_connected(now);
            b.on_disconnected(now);
        }
        let next = b.poll_timeout().expect("never gives up").at;
        assert!(next > now, "busy loop");
        if next > end {
            return attempts;
        }
        now = next;
        b.handle_timeout(now);
    }
}

#[test]
fn closing_gateway_sees_at_most_9_attempts_a_minute_and_31_in_ten() {
    let mut worst_minute = 0;
    let mut worst_ten = 0;
    for seed in 0..2_000 {
        let a = attempts_against_closing_gateway(seed, Duration::from_secs(600));
        let first_minute = a.iter().filter(|t| **t < Timestamp::from_secs(60)).count();
        worst_minute = worst_minute.max(first_minute);
        worst_ten = worst_ten.max(a.len());
    }
    println!("closing gateway: worst attempts in 1 min = {worst_minute}, in 10 min = {worst_ten}");
    assert!(
        worst_minute <= 9,
        "{worst_minute} attempts in the first minute"
    );
    assert!(worst_ten <= 31, "{worst_ten} attempts in ten minutes");
    // And it does keep trying: at least the un-jittered schedule's worth minus jitter.
    assert!(worst_ten >= 20, "gave up too early: {worst_ten}");
}

#[test]
fn after_100k_failures_every_delay_is_at_most_36s() {
    let mut b = Backoff::new(BackoffConfig::with_seed(42));
    let mut now = Timestamp::ZERO;
    b.start(now);
    let mut max = Duration::ZERO;
    for _ in 0..100_000 {
        assert!(matches!(
            b.poll_action(),
            Some(BackoffAction::Connect { .. })
        ));
        b.on_disconnected(now);
        let d = b.last_delay().unwrap();
        max = max.max(d);
        now = b.poll_timeout().unwrap().at;
        b.handle_timeout(now);
    }
    assert!(max <= Duration::from_secs(36), "max delay {max:?}");
    assert!(
        max >= Duration::from_secs(30),
        "the cap was never reached: {max:?}"
    );
    assert_eq!(b.consecutive_failures(), 100_000);
}

#[test]
fn accept_then_close_and_one_message_are_failures_healthy_is_reset() {
    let mut b = Backoff::new(BackoffConfig::with_seed(5));
    let t = Timestamp::from_secs(100);
    b.start(t);
    b.poll_action();
    // Accepted, one message, closed after 29 s: not healthy.
    b.on_connected(t);
    b.on_message(t);
    b.on_disconnected(t + Duration::from_secs(29));
    assert_eq!(b.consecutive_failures(), 1);
    let now = b.poll_timeout().unwrap().at;
    b.handle_timeout(now);
    b.poll_action();
    // Up 31 s but silent: not healthy.
    b.on_connected(now);
    b.on_disconnected(now + Duration::from_secs(31));
    assert_eq!(b.consecutive_failures(), 2);
    let now = b.poll_timeout().unwrap().at;
    b.handle_timeout(now);
    b.poll_action();
    // Message and 30 s up: healthy, reset, first retry within [0, base].
    b.on_connected(now);
    b.on_message(now + Duration::from_secs(1));
    b.on_disconnected(now + Duration::from_secs(30));
    assert_eq!(b.consecutive_failures(), 0);
    assert!(b.last_delay().unwrap() <= Duration::from_secs(1));
    assert!(matches!(b.phase(), BackoffPhase::Waiting { .. }));
}

#[test]
fn no_jitter_means_exact_schedule() {
    let cfg = BackoffConfig::default().with_jitter(0.0);
    let mut b = Backoff::new(cfg);
    b.start(Timestamp::ZERO);
    let mut delays = Vec::new();
    let mut now = Timestamp::ZERO;
    for _ in 0..10 {
        b.poll_action();
        b.on_disconnected(now);
        delays.push(b.last_delay().unwrap().as_millis());
        now = b.poll_timeout().unwrap().at;
        b.handle_timeout(now);
    }
    assert_eq!(
        delays,
        vec![1000, 1600, 2560, 4096, 6553, 10485, 16777, 26843, 30000, 30000]
    );
}

#[test]
fn a_draining_peer_reconnects_at_once_without_a_failure_and_at_most_once_per_base() {
    // Without jitter: no spread, so the timing is exact.
    let mut b = Backoff::new(BackoffConfig::with_seed(9).with_jitter(0.0));
    let t = Timestamp::from_secs(10);
    b.start(t);
    b.poll_action();
    // Two failures first: the drain must not touch them.
    b.on_disconnected(t);
    let now = b.poll_timeout().unwrap().at;
    b.handle_timeout(now);
    b.poll_action();
    b.on_disconnected(now);
    let now = b.poll_timeout().unwrap().at;
    b.handle_timeout(now);
    assert_eq!(b.poll_action(), Some(BackoffAction::Connect { attempt: 3 }));
    assert_eq!(b.consecutive_failures(), 2);
    b.on_connected(now);
    // Up for 5 s, then the peer drains: at once.
    let later = now + Duration::from_secs(5);
    assert!(b.on_peer_draining(later));
    assert_eq!(b.poll_action(), Some(BackoffAction::Connect { attempt: 4 }));
    assert_eq!(b.consecutive_failures(), 2);
    assert_eq!(b.poll_timeout(), None);
    // Up 10 ms, drained again: the attempt waits for `base` since it connected.
    b.on_connected(later);
    assert!(b.on_peer_draining(later + Duration::from_millis(10)));
    assert_eq!(b.poll_action(), None);
    assert_eq!(b.poll_timeout().unwrap().at, later + Duration::from_secs(1));
    assert_eq!(b.consecutive_failures(), 2);
    // Not connected: ignored.
    assert!(!b.on_peer_draining(later + Duration::from_millis(20)));
    // The reopen fails (the replacement is not listening yet): the retry
    // comes within `base`, and no failure is counted; the next failure in
    // a row is an ordinary one.
    let at = b.poll_timeout().unwrap().at;
    b.handle_timeout(at);
    assert_eq!(b.poll_action(), Some(BackoffAction::Connect { attempt: 5 }));
    b.on_disconnected(at);
    assert!(b.last_delay().unwrap() <= Duration::from_secs(1));
    assert_eq!(b.consecutive_failures(), 2);
    let at = b.poll_timeout().unwrap().at;
    b.handle_timeout(at);
    b.poll_action();
    b.on_disconnected(at);
    assert_eq!(b.consecutive_failures(), 3);
    assert!(b.last_delay().unwrap() >= Duration::from_millis(800));
}

/// The reopen after a drain that fails retries within `[0, base]`: spread
/// over it with jitter (so a fleet whose replacement is a moment late does
/// not return at once), exactly `base` without.
#[test]
fn a_failed_reopen_after_a_drain_retries_spread_within_base() {
    let retry = |config: BackoffConfig| {
        let mut b = Backoff::new(config);
        let t = Timestamp::from_secs(10);
        b.start(t);
        b.poll_action();
        b.on_connected(t);
        let drained = t + Duration::from_secs(60);
        assert!(b.on_peer_draining(drained));
        let at = b.poll_timeout().map_or(drained, |d| d.at);
        b.handle_timeout(at);
        assert!(matches!(
            b.poll_action(),
            Some(BackoffAction::Connect { .. })
        ));
        b.on_disconnected(at);
        assert_eq!(b.consecutive_failures(), 0);
        b.last_delay().unwrap()
    };
    let base = Duration::from_secs(1);
    for seed in 0..20 {
        assert_eq!(retry(BackoffConfig::with_seed(seed).with_jitter(0.0)), base);
    }
    let mut delays: Vec<Duration> = (0..100)
        .map(|seed| retry(BackoffConfig::with_seed(seed)))
        .collect();
    delays.sort_unstable();
    assert!(delays.iter().all(|d| *d <= base), "{delays:?}");
    assert!(delays[10] < Duration::from_millis(250), "{delays:?}");
    assert!(delays[89] > Duration::from_millis(750), "{delays:?}");
}

/// A fleet told to go away at the same instant comes back spread over
/// `[0, base]` (with the default jitter), never at once, never later.
#[test]
fn a_fleet_drained_at_once_reopens_spread_over_base() {
    let t = Timestamp::from_secs(10);
    let drained = t + Duration::from_secs(60);
    let mut reopen_at = Vec::new();
    for seed in 0..200u64 {
        let mut b = Backoff::new(BackoffConfig::with_seed(seed));
        b.start(t);
        b.poll_action();
        b.on_connected(t);
        assert!(b.on_peer_draining(drained));
        let at = match b.poll_timeout() {
            Some(d) => d.at,
            None => drained, // drawn 0: at once
        };
        assert!(
            at >= drained && at <= drained + Duration::from_secs(1),
            "{at:?}"
        );
        reopen_at.push(at.saturating_duration_since(drained).as_millis());
    }
    reopen_at.sort_unstable();
    // Spread: a fifth of the fleet in each fifth of the second, roughly.
    for (i, fifth) in reopen_at.chunks(40).enumerate() {
        let (lo, hi) = (fifth[0], fifth[fifth.len() - 1]);
        assert!(
            lo >= (i as u128) * 200 - (i as u128).min(1) * 100 && hi <= (i as u128 + 1) * 200 + 100,
            "fifth {i}: {lo}..{hi} ms"
        );
    }
}
