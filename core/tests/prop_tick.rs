//! Property tests and focused tests for the tick schedule.

use core::time::Duration;

use proptest::prelude::*;
use tether_core::testkit::tick::{run, Op, Tok};
use tether_core::tick::{
    JobSpec, MissedTicks, RunReason, RunToken, StaleRun, TickAction, TickConfig, TickError,
    TickNow, TickOutcome, TickSchedule, TickTimer, Version,
};
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
        3 => (0u32..20_000).prop_map(Op::Advance),
        3 => Just(Op::Wake),
        2 => (
            0u8..6,
            prop_oneof![1 => Just(0u16), 10 => 1u16..5_000],
            proptest::bool::weighted(0.85),
            proptest::option::weighted(0.4, any::<i16>()),
        )
            .prop_map(|(job, interval_ms, enabled, first_at_ms)| Op::Upsert {
                job,
                interval_ms,
                enabled,
                first_at_ms,
            }),
        1 => (0u8..6).prop_map(Op::Remove),
        1 => (0u8..6, any::<bool>()).prop_map(|(j, on)| Op::SetEnabled(j, on)),
        2 => (0u8..6).prop_map(Op::TickNow),
        5 => (tok(), proptest::bool::weighted(0.6))
            .prop_map(|(tok, success)| Op::Finish { tok, success }),
    ]
}

fn config() -> impl Strategy<Value = TickConfig> {
    (
        0usize..6,
        0u64..3_000,
        0u64..40_000,
        proptest::option::weighted(0.7, 0u64..30_000),
        prop_oneof![Just(MissedTicks::Skip), Just(MissedTicks::Delay)],
        // Exact, the default (1 ms: a no-op on this millisecond clock), and
        // coarse ones that round most instants up.
        prop_oneof![Just(0u64), Just(1), 2u64..50, 250u64..3_000],
    )
        .prop_map(|(max_jobs, base, max, timeout, missed, granularity)| {
            TickConfig::default()
                .with_max_jobs(max_jobs)
                .with_failure_backoff(Duration::from_millis(base), Duration::from_millis(max))
                .with_run_timeout(timeout.map(Duration::from_millis))
                .with_missed(missed)
                .with_timer_granularity(Duration::from_millis(granularity))
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every TICK_* invariant (TICK_NEVER_OVERLAP, TICK_RUNS_CURRENT_VERSION,
    /// TICK_STALE_CHANGES_NOTHING, TICK_FAILURE_BACKOFF, TICK_SUCCESS_RESETS,
    /// TICK_NO_DRIFT, TICK_MISSED_SKIPPED, TICK_JOBS_BOUNDED,
    /// TICK_ZERO_INTERVAL_REFUSED, TICK_NEVER_STALLS) and the contract
    /// invariants, under small, even out-of-range configs, both policies.
    #[test]
    fn invariants_hold_for_any_config(cfg in config(), ops in prop::collection::vec(op(), 0..300)) {
        if let Err(v) = run(cfg, &ops) {
            prop_assert!(false, "{v}");
        }
    }

    /// The same at the defaults.
    #[test]
    fn invariants_hold_at_defaults(ops in prop::collection::vec(op(), 0..300)) {
        if let Err(v) = run(TickConfig::default(), &ops) {
            prop_assert!(false, "{v}");
        }
    }

    /// Same inputs, same outputs (the schedule has no randomness at all).
    #[test]
    fn replays_exactly(cfg in config(), ops in prop::collection::vec(op(), 0..200)) {
        let a = run(cfg.clone(), &ops).map(|h| (h.log, h.machine.stats()));
        let b = run(cfg, &ops).map(|h| (h.log, h.machine.stats()));
        prop_assert_eq!(a, b);
    }
}

// ---- focused tests ---------------------------------------------------------

type S = TickSchedule<u32>;

fn secs(s: u64) -> Timestamp {
    Timestamp::from_secs(s)
}

fn ms(m: u64) -> Timestamp {
    Timestamp::from_millis(m)
}

fn every(s: u64) -> JobSpec {
    JobSpec::every(Duration::from_secs(s))
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Started {
    job: u32,
    version: Version,
    run: RunToken,
    at: Timestamp,
    reason: RunReason,
}

fn started(s: &mut S) -> Vec<Started> {
    let mut v = Vec::new();
    while let Some(TickAction::RunTick {
        job,
        version,
        run,
        scheduled_for,
        reason,
    }) = s.poll_action()
    {
        v.push(Started {
            job,
            version,
            run,
            at: scheduled_for,
            reason,
        });
    }
    v
}

fn one(s: &mut S) -> Started {
    let v = started(s);
    assert_eq!(v.len(), 1, "expected one tick, got {v:?}");
    v[0]
}

#[test]
fn ten_thousand_jobs_share_one_timer_structure() {
    let mut s = S::new(TickConfig::default());
    let t0 = secs(0);
    for j in 0..10_000u32 {
        let spec = JobSpec::every(Duration::from_millis(1_000 + u64::from(j % 997)))
            .first_at(ms(500 + u64::from(j % 7_919)));
        s.upsert(t0, j, spec).unwrap();
    }
    assert!(started(&mut s).is_empty());
    assert_eq!(s.stats().jobs, 10_000);
    // One lookup gives the earliest of all 10,000 deadlines.
    let d = s.poll_timeout().unwrap();
    assert_eq!((d.at, d.reason), (ms(500), TickTimer::Due));
    // Drive one simulated minute, finishing every tick at once: each job runs
    // once per slot of its own grid, never early, never twice at once.
    let mut now = t0;
    let mut runs = 0u64;
    while let Some(d) = s.poll_timeout() {
        if d.at > secs(60) {
            break;
        }
        assert!(d.at > now, "busy loop");
        now = d.at;
        s.handle_timeout(now);
        for st in started(&mut s) {
            assert_eq!(st.at, now);
            s.on_tick_finished(now, st.run, TickOutcome::Success)
                .unwrap();
            runs += 1;
        }
        assert!(started(&mut s).is_empty());
    }
    let expect: u64 = (0..10_000u64)
        .map(|j| {
            let first = 500 + j % 7_919;
            let iv = 1_000 + j % 997;
            if first > 60_000 {
                0
            } else {
                (60_000 - first) / iv + 1
            }
        })
        .sum();
    assert_eq!(runs, expect);
    assert_eq!(s.stats().runs, expect);
}

#[test]
fn failures_back_off_1_2_4_8_16_30_then_success_resets() {
    let mut s = S::new(TickConfig::default());
    s.upsert(secs(0), 1, every(60)).unwrap();
    let mut now = secs(60);
    s.handle_timeout(now);
    let mut st = one(&mut s);
    let mut delays = Vec::new();
    for _ in 0..8 {
        now = now + Duration::from_millis(250); // the tick took 250 ms
        s.on_tick_finished(now, st.run, TickOutcome::Failure)
            .unwrap();
        let d = s.poll_timeout().unwrap();
        assert_eq!(d.reason, TickTimer::Retry);
        delays.push((d.at - now).as_secs());
        now = d.at;
        s.handle_timeout(now);
        st = one(&mut s);
        assert_eq!((st.reason, st.at), (RunReason::Retry, now));
    }
    assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
    assert_eq!(s.job(&1).unwrap().failures, 8);
    // Success resets: back on the grid (60 s slots), then failures start at 1 s.
    s.on_tick_finished(now, st.run, TickOutcome::Success)
        .unwrap();
    let j = s.job(&1).unwrap();
    assert_eq!((j.failures, j.retry_at), (0, None));
    let d = s.poll_timeout().unwrap();
    assert_eq!(d.reason, TickTimer::Due);
    // now is t+183 s (60 + 8 × 0.25 + 121); the retry served the slot at
    // 180 s, so the next is the 60 s grid's 240 s.
    assert_eq!(now, secs(183));
    assert_eq!(d.at, secs(240));
    s.handle_timeout(d.at);
    let st = one(&mut s);
    assert_eq!((st.reason, st.at), (RunReason::Scheduled, secs(240)));
    s.on_tick_finished(secs(241), st.run, TickOutcome::Failure)
        .unwrap();
    assert_eq!(s.poll_timeout().unwrap().at, secs(242));
}

#[test]
fn late_wake_ups_do_not_drift_the_grid() {
    let mut s = S::new(TickConfig::default());
    s.upsert(secs(0), 7, every(10).first_at(secs(5))).unwrap();
    let mut lateness = 0u64;
    let mut slots = Vec::new();
    for k in 0..50u64 {
        let due = s.poll_timeout().unwrap().at;
        assert_eq!(due, secs(5 + 10 * k));
        // Wake up late by up to 6.9 s, and take up to 3 s more to run.
        lateness = (lateness * 7 + 3) % 6_900;
        let now = due + Duration::from_millis(lateness);
        s.handle_timeout(now);
        let st = one(&mut s);
        assert_eq!(st.reason, RunReason::Scheduled);
        slots.push(st.at);
        let done = now + Duration::from_millis(lateness % 3_000);
        s.on_tick_finished(done, st.run, TickOutcome::Success)
            .unwrap();
        assert!(started(&mut s).is_empty());
    }
    let expect: Vec<Timestamp> = (0..50).map(|k| secs(5 + 10 * k)).collect();
    assert_eq!(slots, expect);
    assert_eq!(s.stats().skipped, 0);
}

#[test]
fn missed_ticks_are_skipped_by_default() {
    let mut s = S::new(TickConfig::default());
    s.upsert(secs(0), 1, every(1)).unwrap(); // slots at 1, 2, 3, ...
    s.handle_timeout(ms(10_500)); // asleep through slots 1..=10
    let st = one(&mut s);
    assert_eq!((st.at, st.reason), (secs(10), RunReason::Scheduled));
    assert_eq!(s.stats().skipped, 9);
    s.on_tick_finished(ms(10_600), st.run, TickOutcome::Success)
        .unwrap();
    assert!(started(&mut s).is_empty());
    assert_eq!(s.poll_timeout().unwrap().at, secs(11));
    // A tick that outlasts several slots: one run after it, for the latest.
    s.handle_timeout(secs(11));
    let st = one(&mut s);
    s.on_tick_finished(ms(14_200), st.run, TickOutcome::Success)
        .unwrap();
    let st = one(&mut s);
    assert_eq!((st.at, st.reason), (secs(14), RunReason::Scheduled));
}

#[test]
fn delay_policy_reanchors_at_the_late_instant() {
    let cfg = TickConfig::default().with_missed(MissedTicks::Delay);
    let mut s = S::new(cfg);
    s.upsert(secs(0), 1, every(10)).unwrap();
    s.handle_timeout(secs(10));
    let st = one(&mut s);
    assert_eq!(st.at, secs(10));
    s.on_tick_finished(secs(11), st.run, TickOutcome::Success)
        .unwrap();
    s.handle_timeout(ms(23_500)); // late by 3.5 s
    let st = one(&mut s);
    assert_eq!(st.at, ms(23_500));
    s.on_tick_finished(ms(24_000), st.run, TickOutcome::Success)
        .unwrap();
    assert_eq!(s.poll_timeout().unwrap().at, ms(33_500));
    assert_eq!(s.job(&1).unwrap().anchor, ms(23_500));
}

#[test]
fn hot_swap_waits_for_the_old_tick_and_ignores_its_result() {
    let mut s = S::new(TickConfig::default());
    let v1 = s.upsert(secs(0), 1, every(10)).unwrap();
    s.handle_timeout(secs(10));
    let old = one(&mut s);
    assert_eq!(old.version, v1);
    // Update mid-run: the new version is due at 12 s, but the old tick runs on.
    let v2 = s.upsert(secs(11), 1, every(5).first_at(secs(12))).unwrap();
    assert!(v2 > v1);
    s.handle_timeout(secs(12));
    s.handle_timeout(secs(16));
    assert!(started(&mut s).is_empty(), "overlapping ticks");
    assert_eq!(s.tick_now(secs(16), &1), Ok(TickNow::Coalesced));
    assert_eq!(s.tick_now(secs(16), &1), Ok(TickNow::Coalesced));
    // The old tick fails: ignored (no backoff for v2), and the job is free.
    assert_eq!(
        s.on_tick_finished(secs(18), old.run, TickOutcome::Failure),
        Err(StaleRun::OldVersion {
            run: v1,
            current: Some(v2)
        })
    );
    let st = one(&mut s); // exactly one run for the two tick_now and the due slots
    assert_eq!((st.version, st.reason), (v2, RunReason::Manual));
    assert_eq!(s.job(&1).unwrap().failures, 0);
    assert_eq!(s.stats().failures, 0);
    assert_eq!(s.stats().coalesced, 1);
    // v2's grid: 12 + 5k; slots up to 18 were served by the manual run.
    s.on_tick_finished(secs(19), st.run, TickOutcome::Success)
        .unwrap();
    assert!(started(&mut s).is_empty());
    assert_eq!(s.poll_timeout().unwrap().at, secs(22));
    // A duplicate is unknown and changes nothing.
    let before = s.clone();
    assert_eq!(
        s.on_tick_finished(secs(19), st.run, TickOutcome::Failure),
        Err(StaleRun::Unknown)
    );
    assert_eq!(s.stats().stale, before.stats().stale + 1);
    assert_eq!(s.job(&1), before.job(&1));
}

#[test]
fn removed_job_stays_busy_until_its_tick_ends() {
    let mut s = S::new(TickConfig::default().with_max_jobs(1));
    s.upsert(secs(0), 1, every(10)).unwrap();
    s.handle_timeout(secs(10));
    let old = one(&mut s);
    s.remove(&1).unwrap();
    assert_eq!(s.remove(&1), Err(TickError::UnknownJob));
    assert_eq!(s.stats().detached, 1);
    assert_eq!(
        s.upsert(secs(11), 2, every(10)),
        Err(TickError::TooManyJobs)
    );
    // Re-adding job 1 is allowed, but it does not overlap the old tick.
    let v = s.upsert(secs(11), 1, every(1).first_at(secs(11))).unwrap();
    s.handle_timeout(secs(12));
    assert!(started(&mut s).is_empty());
    assert!(matches!(
        s.on_tick_finished(secs(13), old.run, TickOutcome::Success),
        Err(StaleRun::OldVersion { .. })
    ));
    let st = one(&mut s);
    assert_eq!((st.version, st.at), (v, secs(13)));
}

#[test]
fn run_timeout_gives_up_as_a_failure_and_the_late_result_is_unknown() {
    let cfg = TickConfig::default().with_run_timeout(Some(Duration::from_secs(60)));
    let mut s = S::new(cfg);
    s.upsert(secs(0), 1, every(10)).unwrap();
    s.handle_timeout(secs(10));
    let st = one(&mut s);
    let d = s.poll_timeout().unwrap();
    assert_eq!((d.at, d.reason), (secs(70), TickTimer::RunTimeout));
    s.handle_timeout(secs(70));
    assert!(started(&mut s).is_empty());
    assert_eq!(s.stats().timeouts, 1);
    assert_eq!(s.job(&1).unwrap().failures, 1);
    assert_eq!(s.poll_timeout().unwrap().at, secs(71));
    assert_eq!(
        s.on_tick_finished(secs(70), st.run, TickOutcome::Success),
        Err(StaleRun::Unknown)
    );
    s.handle_timeout(secs(71));
    assert_eq!(one(&mut s).reason, RunReason::Retry);
}

#[test]
fn bad_input_is_refused_with_typed_errors() {
    let mut s = S::new(TickConfig::default().with_max_jobs(2));
    let before = s.clone();
    assert_eq!(
        s.upsert(secs(0), 1, JobSpec::every(Duration::ZERO)),
        Err(TickError::ZeroInterval)
    );
    assert_eq!(s, before);
    s.upsert(secs(0), 1, every(1)).unwrap();
    s.upsert(secs(0), 2, every(1).enabled(false)).unwrap();
    assert_eq!(s.upsert(secs(0), 3, every(1)), Err(TickError::TooManyJobs));
    s.upsert(secs(0), 2, every(2)).unwrap(); // updating a held job is fine
    assert_eq!(s.tick_now(secs(0), &9), Err(TickError::UnknownJob));
    s.set_enabled(secs(0), &2, false).unwrap();
    assert_eq!(s.tick_now(secs(0), &2), Err(TickError::Disabled));
    assert_eq!(s.set_enabled(secs(0), &9, true), Err(TickError::UnknownJob));
    assert_eq!(
        s.on_tick_finished(secs(0), RunToken::from_raw(77), TickOutcome::Success),
        Err(StaleRun::Unknown)
    );
    // Disabled: never runs; enabled again: rejoins its grid, missed slots skipped.
    s.handle_timeout(secs(100));
    let st = started(&mut s);
    assert!(st.iter().all(|t| t.job == 1));
    s.set_enabled(secs(100), &2, true).unwrap();
    assert!(started(&mut s).is_empty());
    assert_eq!(s.job(&2).unwrap().next_due, secs(102));
}

#[test]
fn nonsense_config_is_clamped_not_panicking() {
    let cfg = TickConfig::default()
        .with_max_jobs(0)
        .with_failure_backoff(Duration::ZERO, Duration::ZERO)
        .with_run_timeout(Some(Duration::ZERO))
        .with_missed(MissedTicks::Skip)
        .with_timer_granularity(Duration::MAX);
    let ops = [
        Op::Upsert {
            job: 0,
            interval_ms: 1,
            enabled: true,
            first_at_ms: Some(-5),
        },
        Op::Wake,
        Op::Advance(u32::MAX),
        Op::Finish {
            tok: Tok::Live(0),
            success: false,
        },
        Op::Wake,
    ];
    run(cfg, &ops).expect("clamped config keeps every invariant");
    let cfg = TickConfig::default()
        .with_max_jobs(3)
        .with_run_timeout(Some(Duration::ZERO));
    let ops = [
        Op::Upsert {
            job: 0,
            interval_ms: 1,
            enabled: true,
            first_at_ms: Some(-5),
        },
        Op::TickNow(0),
        Op::Wake,
        Op::Wake,
        Op::Finish {
            tok: Tok::Old(0),
            success: false,
        },
        Op::Advance(u32::MAX),
    ];
    run(cfg, &ops).expect("clamped config keeps every invariant");
}
