//! Property tests and focused tests for the in-flight machine.

use core::time::Duration;

use proptest::prelude::*;
use tether_core::inflight::{
    DriveReason, DriveToken, GlobalStatus, InFlight, InFlightAction, InFlightConfig, InFlightError,
    InFlightTimer, PokeOutcome, SessionStatus,
};
use tether_core::testkit::inflight::{run, Op, Tok};
use tether_core::{Machine, Timestamp};

fn tok() -> impl Strategy<Value = Tok> {
    prop_oneof![
        6 => any::<u8>().prop_map(Tok::Live),
        1 => any::<u8>().prop_map(Tok::Old),
        1 => prop_oneof![any::<u64>(), 0u64..64].prop_map(Tok::MadeUp),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0u32..20_000).prop_map(Op::Advance),
        1 => Just(Op::Wake),
        4 => proptest::option::weighted(0.8, 0u8..6).prop_map(Op::Poke),
        3 => (tok(), proptest::option::weighted(0.2, 0u8..6))
            .prop_map(|(tok, session)| Op::Submit { tok, session }),
        3 => tok().prop_map(Op::Idle),
        2 => tok().prop_map(Op::Fail),
        3 => tok().prop_map(Op::Complete),
        1 => (0u8..6).prop_map(Op::CompleteSession),
        1 => tok().prop_map(Op::Renew),
        2 => tok().prop_map(Op::TurnFinished),
        1 => (0u8..6).prop_map(Op::TurnFinishedSession),
        1 => Just(Op::Start),
        2 => tok().prop_map(Op::Cancelled),
    ]
}

/// Inputs around leases that expire while calls run: short advances, few
/// results, many cancellation reports (valid, stale and unasked-for).
fn lease_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u32..3_000).prop_map(Op::Advance),
        2 => Just(Op::Wake),
        4 => proptest::option::weighted(0.7, 0u8..4).prop_map(Op::Poke),
        2 => (tok(), proptest::option::weighted(0.2, 0u8..4))
            .prop_map(|(tok, session)| Op::Submit { tok, session }),
        1 => tok().prop_map(Op::Idle),
        1 => tok().prop_map(Op::Fail),
        1 => tok().prop_map(Op::Complete),
        1 => tok().prop_map(Op::Renew),
        1 => tok().prop_map(Op::TurnFinished),
        4 => tok().prop_map(Op::Cancelled),
    ]
}

fn config() -> impl Strategy<Value = InFlightConfig> {
    (
        (0usize..5, 0usize..5, 0u64..30_000),
        (
            0u64..3_000,
            0u64..40_000,
            prop_oneof![Just(0.0), 0.0f64..1.0],
        ),
        proptest::option::weighted(0.3, 0u64..20_000),
        (any::<u64>(), any::<bool>()),
    )
        .prop_map(
            |((max_in_flight, max_pending, lease), (base, max, jitter), poll, (seed, sweep))| {
                InFlightConfig::default()
                    .with_max_in_flight(max_in_flight)
                    .with_max_pending(max_pending)
                    .with_lease(Duration::from_millis(lease))
                    .with_retry_base(Duration::from_millis(base))
                    .with_retry_max(Duration::from_millis(max))
                    .with_retry_jitter(jitter)
                    .with_recovery_poll(poll.map(Duration::from_millis))
                    .with_sweep_at_start(sweep)
                    .with_seed(seed)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every INFLIGHT_* invariant (INFLIGHT_NEVER_TWICE, INFLIGHT_GLOBAL_EXCLUSIVE,
    /// INFLIGHT_COALESCE_ONE, INFLIGHT_EVERY_POKE_DRIVEN, INFLIGHT_LEASE_RECOVERS,
    /// INFLIGHT_RETRY_BACKOFF, INFLIGHT_STALE_CHANGES_NOTHING, INFLIGHT_FRESH_TOKENS,
    /// INFLIGHT_IDLE_NO_TIMER, INFLIGHT_BOUNDED, INFLIGHT_SWEEP_AT_START,
    /// INFLIGHT_NO_OVERLAP) and
    /// the contract invariants,
    /// under small, even out-of-range configs.
    #[test]
    fn invariants_hold_for_any_config(cfg in config(), ops in prop::collection::vec(op(), 0..300)) {
        if let Err(v) = run(cfg, &ops) {
            prop_assert!(false, "{v}");
        }
    }

    /// The same at the defaults (long lease, no recovery poll).
    #[test]
    fn invariants_hold_at_defaults(ops in prop::collection::vec(op(), 0..300)) {
        if let Err(v) = run(InFlightConfig::default(), &ops) {
            prop_assert!(false, "{v}");
        }
    }

    /// INFLIGHT_NO_OVERLAP under short leases: leases keep expiring while
    /// calls run, and no drive ever overlaps a call not yet returned or
    /// cancelled (with every other invariant and liveness).
    #[test]
    fn a_lease_never_overlaps_a_running_call(
        lease in 1u64..2_000,
        max_in_flight in 1usize..4,
        sweep in any::<bool>(),
        ops in prop::collection::vec(lease_op(), 0..300),
    ) {
        let cfg = InFlightConfig::default()
            .with_lease(Duration::from_millis(lease))
            .with_max_in_flight(max_in_flight)
            .with_max_pending(2)
            .with_sweep_at_start(sweep);
        let mut ops = ops;
        ops.insert(0, Op::Start);
        if let Err(v) = run(cfg, &ops) {
            prop_assert!(false, "{v}");
        }
    }

    /// INFLIGHT_SWEEP_AT_START against a simulated runtime: work queued in
    /// up to four sessions before the machine exists, then only
    /// `on_start` and the runtime's answers (submit a queued turn or find
    /// nothing, complete turns in an arbitrary order), never a poke. With
    /// the default every queued unit is submitted exactly once and the
    /// machine ends idle; without the setting nothing is ever driven. The
    /// runtime checks on its own that no session has two drives or turns
    /// at once.
    #[test]
    fn work_queued_before_start_is_driven_once_without_a_poke(
        queued in prop::collection::vec(0u32..4, 1..5),
        sweep in any::<bool>(),
        max_in_flight in 1usize..4,
        recovery_poll in proptest::option::of(1u64..5_000),
        choices in prop::collection::vec(any::<u8>(), 1..64),
    ) {
        let cfg = InFlightConfig::default()
            .with_max_in_flight(max_in_flight)
            .with_recovery_poll(recovery_poll.map(Duration::from_millis))
            .with_sweep_at_start(sweep);
        let (submitted, idle) = simulate_start(cfg, &queued, &choices);
        let total: u32 = queued.iter().sum();
        if sweep {
            prop_assert_eq!(&submitted, &queued, "each queued unit once, no poke");
            prop_assert!(idle);
        } else if recovery_poll.is_none() {
            prop_assert!(submitted.iter().all(|n| *n == 0), "driven without a poke: {:?}", submitted);
        } else {
            // A recovery poll finds the work too, later: still once each.
            prop_assert_eq!(submitted.iter().sum::<u32>(), total);
        }
    }

    /// Same seed, same inputs, same outputs (jitter on).
    #[test]
    fn replays_exactly_from_its_seed(seed in any::<u64>(), ops in prop::collection::vec(op(), 0..200)) {
        let cfg = InFlightConfig::default()
            .with_retry_jitter(0.5)
            .with_max_in_flight(2)
            .with_max_pending(2)
            .with_lease(Duration::from_secs(5))
            .with_seed(seed);
        let a = run(cfg.clone(), &ops).map(|h| (h.log, h.machine.stats()));
        let b = run(cfg, &ops).map(|h| (h.log, h.machine.stats()));
        prop_assert_eq!(a, b);
    }
}

/// Runs a machine against a runtime whose sessions `0..queued.len()` hold
/// `queued[s]` turns before the machine is built: `on_start`, then answers
/// to every drive and completions of every turn, picked in the order
/// `choices` gives (cycled), with time moving 1 ms a step and jumping to the
/// next deadline when nothing else is left, for at most 10 s. Returns how
/// many turns of each session were submitted and whether the machine ended
/// idle. Panics if the runtime sees two drives or turns of one session at
/// once, or a session drive during a global one.
fn simulate_start(cfg: InFlightConfig, queued: &[u32], choices: &[u8]) -> (Vec<u32>, bool) {
    #[derive(Debug)]
    enum Work {
        Drive(DriveToken, Option<u8>),
        Turn(DriveToken, u8),
    }
    let mut m: InFlight<u8> = InFlight::new(cfg);
    let mut left = queued.to_vec();
    let mut submitted = vec![0u32; queued.len()];
    // Sessions with a drive or a turn outstanding, and global drives.
    let mut busy = std::collections::BTreeSet::new();
    let mut global = 0usize;
    let mut work: Vec<Work> = Vec::new();
    let mut now = t(0);
    let _ = m.on_start(now);
    let mut step = 0usize;
    loop {
        while let Some(a) = m.poll_action() {
            if let InFlightAction::Drive { token, session, .. } = a {
                match session {
                    Some(s) => {
                        assert!(busy.insert(s), "session {s} driven while busy");
                        assert_eq!(global, 0, "session {s} driven during a global drive");
                    }
                    None => {
                        assert!(busy.is_empty() && global == 0, "global drive while busy");
                        global += 1;
                    }
                }
                work.push(Work::Drive(token, session));
            }
        }
        if work.is_empty() {
            match m.poll_timeout() {
                Some(d) if d.at <= t(10_000) => {
                    now = d.at;
                    m.handle_timeout(now);
                    continue;
                }
                _ => break,
            }
        }
        now = now + Duration::from_millis(1);
        let pick = usize::from(choices[step % choices.len()]) % work.len();
        step += 1;
        match work.swap_remove(pick) {
            Work::Drive(token, session) => {
                let found = match session {
                    Some(s) => (left[usize::from(s)] > 0).then_some(s),
                    None => {
                        global -= 1;
                        (0u8..).zip(&left).find(|(_, n)| **n > 0).map(|(s, _)| s)
                    }
                };
                match found {
                    Some(s) => {
                        if session.is_none() {
                            assert!(busy.insert(s), "global drive submitted busy {s}");
                        }
                        left[usize::from(s)] -= 1;
                        submitted[usize::from(s)] += 1;
                        m.on_submitted(now, token, s).unwrap();
                        work.push(Work::Turn(token, s));
                    }
                    None => {
                        if let Some(s) = session {
                            busy.remove(&s);
                        }
                        m.on_idle(now, token).unwrap();
                    }
                }
            }
            Work::Turn(token, s) => {
                busy.remove(&s);
                m.on_complete(now, token).unwrap();
            }
        }
    }
    (submitted, m.is_idle())
}

// ---- focused tests ---------------------------------------------------------

type M = InFlight<&'static str>;

fn t(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn drives(m: &mut M) -> Vec<(DriveToken, Option<&'static str>, DriveReason)> {
    let mut v = Vec::new();
    while let Some(InFlightAction::Drive {
        token,
        session,
        reason,
    }) = m.poll_action()
    {
        v.push((token, session, reason));
    }
    v
}

fn one(m: &mut M) -> (DriveToken, Option<&'static str>, DriveReason) {
    let d = drives(m);
    assert_eq!(d.len(), 1, "expected exactly one drive, got {d:?}");
    d[0]
}

#[test]
fn seed_semantics() {
    let mut m = M::new(InFlightConfig::default());
    // A session in flight is not driven again.
    assert_eq!(m.on_poke(t(0), Some("a")), PokeOutcome::Driving);
    let (a1, s, _) = one(&mut m);
    assert_eq!(s, Some("a"));
    assert_eq!(m.on_poke(t(1), Some("a")), PokeOutcome::Coalesced);
    assert!(drives(&mut m).is_empty());
    // A global poke does not drive while anything is in flight.
    assert_eq!(m.on_poke(t(2), None), PokeOutcome::Queued);
    assert!(drives(&mut m).is_empty());
    assert_eq!(m.global(), GlobalStatus::Wanted(DriveReason::Poked));
    // While the global drive is wanted, no new session drive starts.
    assert_eq!(m.on_poke(t(3), Some("b")), PokeOutcome::Queued);
    assert!(drives(&mut m).is_empty());
    // Completion re-drives that session... after the wanted global drive,
    // and behind "b", which waited longer (the pending set is FIFO).
    m.on_submitted(t(4), a1, "a").unwrap();
    m.on_complete(t(5), a1).unwrap();
    let (g, s, r) = one(&mut m);
    assert_eq!((s, r), (None, DriveReason::Poked));
    assert_eq!(
        m.session(&"a"),
        Some(SessionStatus::Pending(DriveReason::Completed))
    );
    m.on_idle(t(6), g).unwrap();
    let d = drives(&mut m);
    assert_eq!(
        d.iter().map(|d| (d.1, d.2)).collect::<Vec<_>>(),
        [
            (Some("b"), DriveReason::Poked),
            (Some("a"), DriveReason::Completed)
        ]
    );
    for (tok, _, _) in d {
        m.on_idle(t(7), tok).unwrap();
    }
    assert!(m.is_idle());
    assert_eq!(m.poll_timeout(), None);
}

#[test]
fn many_pokes_coalesce_into_exactly_one_redrive() {
    let mut m = M::new(InFlightConfig::default());
    m.on_poke(t(0), Some("a"));
    let (tok, _, _) = one(&mut m);
    // Pokes while deciding: the drive finds nothing, yet one re-drive follows.
    for i in 0..100 {
        assert_eq!(m.on_poke(t(i), Some("a")), PokeOutcome::Coalesced);
    }
    m.on_idle(t(100), tok).unwrap();
    let (tok, _, r) = one(&mut m);
    assert_eq!(r, DriveReason::Coalesced);
    // Pokes while the turn runs: exactly one re-drive after completion.
    m.on_submitted(t(101), tok, "a").unwrap();
    for i in 0..100 {
        m.on_poke(t(102 + i), Some("a"));
    }
    assert!(drives(&mut m).is_empty());
    m.on_complete(t(300), tok).unwrap();
    let (tok, _, r) = one(&mut m);
    assert_eq!(r, DriveReason::Completed);
    // No pokes meanwhile: an idle drive releases the session, no more drives.
    m.on_idle(t(301), tok).unwrap();
    assert!(drives(&mut m).is_empty());
    assert!(m.is_idle());
    assert_eq!(m.stats().coalesced, 200);
    assert_eq!(m.stats().drives, 3);
}

#[test]
fn lease_recovers_a_lost_completion_and_the_late_one_is_stale() {
    let cfg = InFlightConfig::default().with_lease(Duration::from_secs(60));
    let mut m = M::new(cfg);
    m.on_poke(t(0), Some("a"));
    let (old, _, _) = one(&mut m);
    m.on_submitted(t(1_000), old, "a").unwrap();
    let d = m.poll_timeout().unwrap();
    assert_eq!((d.at, d.reason), (t(61_000), InFlightTimer::Lease));
    m.handle_timeout(t(60_999));
    assert!(drives(&mut m).is_empty());
    m.handle_timeout(t(61_000));
    let (new, s, r) = one(&mut m);
    assert_eq!((s, r), (Some("a"), DriveReason::LeaseExpired));
    assert_eq!(m.stats().lease_recoveries, 1);
    // The late completion of the old drive is stale and changes nothing.
    let before = m.clone();
    assert_eq!(
        m.on_complete(t(62_000), old),
        Err(InFlightError::StaleToken)
    );
    assert_eq!(
        m.on_complete_session(t(62_000), &"a"),
        Err(InFlightError::NotSubmitted)
    );
    assert!(drives(&mut m).is_empty());
    assert_eq!(m.stats().stale, before.stats().stale + 2);
    assert_eq!(m.session(&"a"), Some(SessionStatus::Driving(new)));
    // Renewal keeps a long turn alive.
    m.on_submitted(t(62_000), new, "a").unwrap();
    m.renew_lease(t(100_000), new).unwrap();
    assert_eq!(m.poll_timeout().unwrap().at, t(160_000));
    assert_eq!(
        m.renew_lease(t(100_000), old),
        Err(InFlightError::StaleToken)
    );
}

#[test]
fn failed_drives_retry_with_doubling_backoff_then_reset() {
    let mut m = M::new(InFlightConfig::default());
    let mut now = t(0);
    m.on_poke(now, Some("a"));
    let mut delays = Vec::new();
    for _ in 0..8 {
        let (tok, s, _) = one(&mut m);
        assert_eq!(s, Some("a"));
        m.on_failed(now, tok).unwrap();
        let d = m.poll_timeout().unwrap();
        assert_eq!(d.reason, InFlightTimer::Retry);
        // Pokes during the backoff coalesce into the retry.
        assert_eq!(m.on_poke(now, Some("a")), PokeOutcome::Coalesced);
        delays.push((d.at - now).as_secs());
        now = d.at;
        m.handle_timeout(now);
    }
    assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
    assert_eq!(m.stats().retries, 8);
    // Success (any non-failure result) resets the count.
    let (tok, _, r) = one(&mut m);
    assert_eq!(r, DriveReason::Retry);
    m.on_submitted(now, tok, "a").unwrap();
    m.on_complete(now, tok).unwrap();
    let (tok, _, _) = one(&mut m);
    m.on_failed(now, tok).unwrap();
    assert_eq!(m.poll_timeout().unwrap().at - now, Duration::from_secs(1));
}

#[test]
fn failed_global_drive_retries_too() {
    let mut m = M::new(InFlightConfig::default());
    m.on_poke(t(0), None);
    let (g, s, _) = one(&mut m);
    assert_eq!(s, None);
    m.on_failed(t(0), g).unwrap();
    assert_eq!(m.global(), GlobalStatus::Retrying { until: t(1_000) });
    assert_eq!(m.on_poke(t(10), None), PokeOutcome::Coalesced);
    m.handle_timeout(t(1_000));
    let (g, s, r) = one(&mut m);
    assert_eq!((s, r), (None, DriveReason::Retry));
    // The global drive finds session "x": it is in flight; the sweep goes on
    // once nothing is.
    m.on_submitted(t(1_001), g, "x").unwrap();
    assert_eq!(m.session(&"x"), Some(SessionStatus::Running(g)));
    assert_eq!(m.global(), GlobalStatus::Wanted(DriveReason::Sweep));
    assert_eq!(m.on_complete_session(t(1_002), &"x"), Ok(g));
    let (g2, s, r) = one(&mut m);
    assert_eq!((s, r), (None, DriveReason::Sweep));
    m.on_idle(t(1_003), g2).unwrap();
    let (x, s, r) = one(&mut m);
    assert_eq!((s, r), (Some("x"), DriveReason::Completed));
    m.on_idle(t(1_004), x).unwrap();
    assert!(m.is_idle());
}

#[test]
fn idle_runner_never_wakes_up() {
    let mut m = M::new(InFlightConfig::default());
    assert_eq!(m.poll_timeout(), None);
    m.on_poke(t(0), Some("a"));
    let (tok, _, _) = one(&mut m);
    assert!(m.poll_timeout().is_some()); // the lease
    m.on_idle(t(5), tok).unwrap();
    assert!(m.is_idle());
    assert_eq!(m.poll_timeout(), None);
    m.handle_timeout(Timestamp::from_secs(1_000_000));
    assert!(drives(&mut m).is_empty());
}

#[test]
fn recovery_poll_fires_every_interval_while_idle() {
    let cfg = InFlightConfig::default().with_recovery_poll(Some(Duration::from_secs(30)));
    let mut m = M::new(cfg);
    let mut polls = Vec::new();
    let mut now = t(0);
    for _ in 0..4 {
        let d = m.poll_timeout().unwrap();
        assert_eq!(d.reason, InFlightTimer::RecoveryPoll);
        now = d.at;
        m.handle_timeout(now);
        let (g, s, r) = one(&mut m);
        assert_eq!((s, r), (None, DriveReason::RecoveryPoll));
        polls.push(now.since_origin().as_secs());
        // Nothing while the poll's drive is outstanding but its lease.
        assert_eq!(m.poll_timeout().unwrap().reason, InFlightTimer::Lease);
        now = now + Duration::from_secs(2);
        m.on_idle(now, g).unwrap();
    }
    assert_eq!(polls, [30, 62, 94, 126]);
    assert_eq!(m.stats().recovery_polls, 4);
    // Busy: no recovery poll.
    m.on_poke(now, Some("a"));
    let (tok, _, _) = one(&mut m);
    assert_eq!(m.poll_timeout().unwrap().reason, InFlightTimer::Lease);
    m.on_idle(now + Duration::from_secs(1), tok).unwrap();
    assert_eq!(m.poll_timeout().unwrap().at, now + Duration::from_secs(31));
}

#[test]
fn concurrency_bound_and_pending_overflow_fold_into_a_global_drive() {
    let cfg = InFlightConfig::default()
        .with_max_in_flight(2)
        .with_max_pending(1);
    let mut m = M::new(cfg);
    assert_eq!(m.on_poke(t(0), Some("a")), PokeOutcome::Driving);
    assert_eq!(m.on_poke(t(0), Some("b")), PokeOutcome::Driving);
    assert_eq!(m.on_poke(t(0), Some("c")), PokeOutcome::Queued);
    assert_eq!(m.on_poke(t(0), Some("d")), PokeOutcome::Overflowed);
    assert_eq!(m.on_poke(t(0), Some("e")), PokeOutcome::Overflowed);
    let d = drives(&mut m);
    assert_eq!(d.len(), 2);
    let st = m.stats();
    assert_eq!((st.in_flight, st.pending, st.overflows), (2, 1, 2));
    assert_eq!(m.global(), GlobalStatus::Wanted(DriveReason::Overflow));
    // The global drive waits until nothing is in flight, ahead of "c".
    m.on_idle(t(1), d[0].0).unwrap();
    assert!(drives(&mut m).is_empty());
    m.on_idle(t(2), d[1].0).unwrap();
    let (g, s, r) = one(&mut m);
    assert_eq!((s, r), (None, DriveReason::Overflow));
    m.on_submitted(t(3), g, "d").unwrap();
    m.on_complete(t(4), g).unwrap();
    // Sweep continues before pending sessions.
    let (g, s, _) = one(&mut m);
    assert_eq!(s, None);
    m.on_submitted(t(5), g, "e").unwrap();
    m.on_complete(t(6), g).unwrap();
    let (g, _, _) = one(&mut m);
    // "d" and "e" completed while the sweep was wanted and the pending set
    // was full: their re-drives folded into the sweep, which found nothing.
    m.on_idle(t(7), g).unwrap();
    let d = drives(&mut m);
    assert_eq!(d.iter().map(|d| d.1).collect::<Vec<_>>(), [Some("c")]);
    assert_eq!(m.stats().overflows, 4);
}

#[test]
fn refused_reports_change_nothing() {
    let mut m = M::new(InFlightConfig::default());
    m.on_poke(t(0), Some("a"));
    let (tok, _, _) = one(&mut m);
    let before = m.clone();
    assert_eq!(m.on_complete(t(1), tok), Err(InFlightError::NotSubmitted));
    assert_eq!(
        m.on_submitted(t(1), tok, "b"),
        Err(InFlightError::WrongSession)
    );
    assert_eq!(
        m.on_idle(t(1), DriveToken::from_raw(999)),
        Err(InFlightError::StaleToken)
    );
    assert_eq!(
        m.on_complete_session(t(1), &"zz"),
        Err(InFlightError::NotInFlight)
    );
    m.on_submitted(t(2), tok, "a").unwrap();
    assert_eq!(
        m.on_submitted(t(2), tok, "a"),
        Err(InFlightError::AlreadySubmitted)
    );
    assert_eq!(m.on_failed(t(2), tok), Err(InFlightError::AlreadySubmitted));
    assert_eq!(m.stats().stale, before.stats().stale + 6);
    assert_eq!(m.session(&"a"), Some(SessionStatus::Running(tok)));
}

#[test]
fn nonsense_config_is_clamped_not_panicking() {
    let cfg = InFlightConfig::default()
        .with_max_in_flight(0)
        .with_max_pending(0)
        .with_lease(Duration::ZERO)
        .with_retry_base(Duration::ZERO)
        .with_retry_max(Duration::ZERO)
        .with_retry_jitter(f64::NAN)
        .with_recovery_poll(Some(Duration::ZERO))
        .with_seed(0);
    let ops = [
        Op::Poke(Some(0)),
        Op::Poke(Some(1)),
        Op::Fail(Tok::Live(0)),
        Op::Wake,
        Op::Advance(u32::MAX),
        Op::Poke(None),
        Op::Submit {
            tok: Tok::Live(0),
            session: Some(2),
        },
        Op::Wake,
    ];
    run(cfg, &ops).expect("clamped config keeps every invariant");
}

/// INFLIGHT_SWEEP_AT_START: by default the first `on_start` drives one
/// global sweep; a second does nothing; without the setting, nothing.
#[test]
fn start_sweeps_once_by_default_and_never_without_the_setting() {
    use tether_core::inflight::{InFlightAction, PokeOutcome};
    use tether_core::{Machine, Timestamp};
    let mut m: tether_core::inflight::InFlight<u8> =
        tether_core::inflight::InFlight::new(InFlightConfig::default());
    assert_eq!(m.on_start(Timestamp::ZERO), Some(PokeOutcome::Driving));
    match m.poll_action() {
        Some(InFlightAction::Drive { session: None, .. }) => {}
        other => panic!("expected a global drive, got {other:?}"),
    }
    assert_eq!(m.poll_action(), None);
    assert_eq!(m.on_start(Timestamp::ZERO), None);
    assert_eq!(m.poll_action(), None);

    let mut quiet: tether_core::inflight::InFlight<u8> =
        tether_core::inflight::InFlight::new(InFlightConfig::default().with_sweep_at_start(false));
    assert_eq!(quiet.on_start(Timestamp::ZERO), None);
    assert_eq!(quiet.poll_action(), None);
}

/// INFLIGHT_NO_OVERLAP: a lease that expires while the drive's call has not
/// returned asks for the call to be cancelled and drives nothing until the
/// cancellation is reported; a late result of the cancelled drive is stale.
#[test]
fn a_lease_expiring_during_a_running_call_cancels_it_before_any_redrive() {
    let cfg = InFlightConfig::default().with_lease(Duration::from_secs(60));
    let mut m = M::new(cfg);
    m.on_poke(t(0), Some("a"));
    let (old, _, _) = one(&mut m);
    // The call hangs past its lease.
    m.handle_timeout(t(60_000));
    assert_eq!(
        m.poll_action(),
        Some(InFlightAction::CancelDrive {
            token: old,
            session: Some("a"),
        })
    );
    assert_eq!(m.poll_action(), None);
    assert_eq!(m.stats().lease_recoveries, 1);
    assert!(m.is_outstanding(old));
    assert_eq!(m.session(&"a"), Some(SessionStatus::Cancelling(old)));
    // No timer while the cancel is pending, and nothing is driven meanwhile:
    // not on pokes, not on later wake-ups, not by a global poke.
    assert_eq!(m.poll_timeout(), None);
    assert_eq!(m.on_poke(t(61_000), Some("a")), PokeOutcome::Coalesced);
    assert_eq!(m.on_poke(t(61_000), None), PokeOutcome::Queued);
    m.handle_timeout(t(500_000));
    assert_eq!(m.poll_action(), None);
    // Too late to renew; a second cancel of another drive is refused.
    let before = m.clone();
    assert_eq!(
        m.renew_lease(t(500_000), old),
        Err(InFlightError::StaleToken)
    );
    assert_eq!(
        m.on_drive_cancelled(t(500_000), DriveToken::from_raw(999)),
        Err(InFlightError::StaleToken)
    );
    assert_eq!(m.poll_action(), None);
    assert_eq!(m.stats().stale, before.stats().stale + 2);
    // The call ended: now the session is released and driven once more
    // (the wanted global drive is a barrier, so it goes first).
    m.on_drive_cancelled(t(500_001), old).unwrap();
    let (g, s, _) = one(&mut m);
    assert_eq!(s, None);
    assert!(!m.is_outstanding(old));
    // A late result (even a success) of the cancelled drive is stale and
    // changes nothing; so is a second cancellation report.
    let before = m.clone();
    assert_eq!(
        m.on_submitted(t(500_002), old, "a"),
        Err(InFlightError::StaleToken)
    );
    assert_eq!(
        m.on_drive_cancelled(t(500_002), old),
        Err(InFlightError::StaleToken)
    );
    assert_eq!(m.poll_action(), None);
    assert_eq!(m.stats().stale, before.stats().stale + 2);
    m.on_idle(t(500_003), g).unwrap();
    let (new, s, r) = one(&mut m);
    assert_eq!((s, r), (Some("a"), DriveReason::LeaseExpired));
    assert!(new > old);
    // A cancellation report for a drive not asked to cancel is refused.
    let before = m.clone();
    assert_eq!(
        m.on_drive_cancelled(t(500_004), new),
        Err(InFlightError::NotCancelling)
    );
    assert_eq!(m.stats().stale, before.stats().stale + 1);
    assert_eq!(m.poll_action(), None);
    // A call that returns before it could be cancelled: its result stands.
    m.handle_timeout(t(560_003));
    assert!(matches!(
        m.poll_action(),
        Some(InFlightAction::CancelDrive { token, .. }) if token == new
    ));
    m.on_submitted(t(560_004), new, "a").unwrap();
    assert_eq!(m.session(&"a"), Some(SessionStatus::Running(new)));
    assert_eq!(
        m.on_drive_cancelled(t(560_005), new),
        Err(InFlightError::NotCancelling)
    );
    m.on_complete(t(560_006), new).unwrap();
    let (_, s, r) = one(&mut m);
    assert_eq!((s, r), (Some("a"), DriveReason::Completed));
}

/// INFLIGHT_NO_OVERLAP for a global drive: its hung call blocks every drive
/// until its cancellation is reported; then the global drive is wanted again.
#[test]
fn a_hung_global_call_is_cancelled_before_anything_is_driven() {
    let cfg = InFlightConfig::default().with_lease(Duration::from_secs(10));
    let mut m = M::new(cfg);
    assert_eq!(m.on_start(t(0)), Some(PokeOutcome::Driving));
    let (g, s, _) = one(&mut m);
    assert_eq!(s, None);
    m.handle_timeout(t(10_000));
    assert_eq!(
        m.poll_action(),
        Some(InFlightAction::CancelDrive {
            token: g,
            session: None,
        })
    );
    assert_eq!(m.global(), GlobalStatus::Driving(g));
    assert_eq!(m.on_poke(t(11_000), Some("b")), PokeOutcome::Queued);
    assert_eq!(m.poll_action(), None);
    m.on_drive_cancelled(t(12_000), g).unwrap();
    let (g2, s, r) = one(&mut m);
    assert_eq!((s, r), (None, DriveReason::LeaseExpired));
    assert!(g2 > g);
    m.on_idle(t(12_001), g2).unwrap();
    let (_, s, _) = one(&mut m);
    assert_eq!(s, Some("b"));
}
