//! Property tests and focused guarantees of the op-control machine (the kill
//! switch). Every run goes through `testkit::op_control`, which checks the
//! invariants named in `tether_core::op_control` after every step.

use core::time::Duration;

use proptest::prelude::*;
use tether_core::op_control::{
    CheckOutcome, DenyReason, InvalidId, OpControl, OpControlAction, OpControlConfig,
    OpControlTimer, OpState, OpWaiterId, OutagePolicy, Saturation, Signal, SignalOutcome,
    WaitOutcome, DEFAULT_HOLD_LIMIT, DEFAULT_OUTAGE_GRACE, DEFAULT_RESTORE_SETTLE,
};
use tether_core::testkit::op_control::{run, small_config, Op, TARGETS};
use tether_core::{Machine, Timestamp};

fn policy() -> impl Strategy<Value = OutagePolicy> {
    prop_oneof![
        Just(OutagePolicy::Hold),
        Just(OutagePolicy::Deny),
        Just(OutagePolicy::Allow)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let target = prop_oneof![3 => 0u8..5, 1 => 0u8..(TARGETS as u8)];
    let check_target = prop_oneof![6 => 0u8..5, 1 => 0u8..(TARGETS as u8)];
    let agent = || prop_oneof![8 => 0u8..2, 1 => Just(2u8)];
    let signal = prop_oneof![8 => 0u8..8, 1 => any::<u8>()];
    prop_oneof![
        6 => (target, signal, prop_oneof![4 => 0u8..4, 1 => any::<u8>()])
            .prop_map(|(target, signal, seq)| Op::Signal { target, signal, seq }),
        5 => (agent(), check_target).prop_map(|(agent, target)| Op::Check { agent, target }),
        1 => any::<u8>().prop_map(Op::Cancel),
        2 => Just(Op::StreamUp),
        2 => Just(Op::StreamDown),
        2 => prop_oneof![0u16..300, 0u16..3_000, any::<u16>()].prop_map(Op::Advance),
        1 => Just(Op::Wake),
        1 => (agent(), 0u8..(TARGETS as u8)).prop_map(|(agent, target)| Op::Finished { agent, target }),
        1 => Just(Op::AllFinished),
        1 => policy().prop_map(Op::Policy),
    ]
}

fn config() -> impl Strategy<Value = OpControlConfig> {
    (
        (0usize..5, 0usize..4, 0usize..5, 0usize..6, 0usize..3),
        (0usize..4, 0usize..8, prop_oneof![Just(16usize), 0usize..12]),
        (
            0u64..3_000,
            0u64..1_000,
            policy(),
            prop_oneof![0u64..100, 0u64..4_000, Just(31_536_000_000u64)],
        ),
    )
        .prop_map(
            |(
                (entries, evicted, agents, waiters, overflow),
                (finished, window, id_len),
                (grace, settle, p, hold),
            )| {
                OpControlConfig::default()
                    .with_max_entries(entries)
                    .with_max_evicted(evicted)
                    .with_max_overflow(overflow)
                    .with_max_agents(agents)
                    .with_max_waiters(waiters)
                    .with_max_finished(finished)
                    .with_dedupe_window(window)
                    .with_max_op_id_len(id_len)
                    .with_outage_grace(Duration::from_millis(grace))
                    .with_restore_settle(Duration::from_millis(settle))
                    .with_outage_policy(p)
                    .with_hold_limit(Duration::from_millis(hold))
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Every OP_* invariant and the contract invariants, at the small
    /// harness config (bounds reached within a few steps).
    #[test]
    fn invariants_hold_at_small_bounds(ops in prop::collection::vec(op(), 0..200)) {
        if let Err(v) = run(small_config(), &ops) {
            prop_assert!(false, "{v}");
        }
    }

    /// The same invariants under arbitrary small configs, zero bounds included.
    #[test]
    fn invariants_hold_for_any_config(cfg in config(), ops in prop::collection::vec(op(), 0..200)) {
        if let Err(v) = run(cfg, &ops) {
            prop_assert!(false, "{v}");
        }
    }

    /// Same inputs, same outputs (outcomes, actions and stats, step by step).
    #[test]
    fn same_inputs_same_outputs(cfg in config(), ops in prop::collection::vec(op(), 0..150)) {
        let a = run(cfg.clone(), &ops).map(|h| h.trace);
        let b = run(cfg, &ops).map(|h| h.trace);
        prop_assert_eq!(a, b);
    }
}

#[test]
fn invariants_hold_at_the_defaults() {
    let ops: Vec<Op> = (0u16..2_000)
        .map(|i| match i % 9 {
            0 => Op::Signal {
                target: (i % 10) as u8,
                signal: (i % 12) as u8,
                seq: (i % 5) as u8,
            },
            1 | 2 => Op::Check {
                agent: (i % 2) as u8,
                target: (i % 3) as u8,
            },
            3 => Op::Advance(i.wrapping_mul(97) % 15_000),
            4 if i % 4 == 0 => Op::StreamDown,
            4 => Op::StreamUp,
            5 => Op::Wake,
            6 => Op::Cancel(i as u8),
            7 => Op::Finished {
                agent: 0,
                target: (i % 3) as u8,
            },
            _ => Op::Policy(match i % 3 {
                0 => OutagePolicy::Hold,
                1 => OutagePolicy::Deny,
                _ => OutagePolicy::Allow,
            }),
        })
        .collect();
    run(OpControlConfig::default(), &ops).expect("defaults keep every invariant");
}

// ---------------------------------------------------------------- helpers

const T0: Timestamp = Timestamp::ZERO;

/// A machine with the stream up at `T0` (outage policy not in force).
fn up(config: OpControlConfig) -> OpControl {
    let mut oc = OpControl::new(config, T0);
    oc.on_stream_up(T0);
    assert!(drain(&mut oc).is_empty());
    oc
}

fn drain(oc: &mut OpControl) -> Vec<OpControlAction> {
    let mut out = Vec::new();
    while let Some(a) = oc.poll_action() {
        out.push(a);
    }
    out
}

fn release(waiter: OpWaiterId, outcome: WaitOutcome) -> OpControlAction {
    OpControlAction::Release { waiter, outcome }
}

fn wait(out: CheckOutcome) -> OpWaiterId {
    match out {
        CheckOutcome::Wait(w) => w,
        other => panic!("expected a wait, got {other:?}"),
    }
}

// ---------------------------------------------------------- reserved ids

#[test]
fn reserved_ids_cover_their_scope_and_star_resume_lifts_only_star() {
    let mut oc = up(OpControlConfig::default());
    assert_eq!(
        oc.on_signal(T0, "agent:a", Signal::Pause, 1),
        SignalOutcome::Applied
    );
    assert_eq!(oc.state("a", "t:1"), OpState::Paused);
    assert_eq!(oc.state("b", "t:1"), OpState::Running);
    assert_eq!(oc.check(T0, "b", "t:1"), CheckOutcome::Run);

    assert_eq!(
        oc.on_signal(T0, "*", Signal::Pause, 2),
        SignalOutcome::Applied
    );
    assert_eq!(oc.state("b", "t:1"), OpState::Paused);
    oc.on_signal(T0, "t:2", Signal::Pause, 3);
    let wb = wait(oc.check(T0, "b", "t:1"));
    let wa = wait(oc.check(T0, "a", "t:1"));
    let wb2 = wait(oc.check(T0, "b", "t:2"));

    // Resuming `*` lifts only the `*` pause: agent a and op t:2 stay paused.
    assert_eq!(
        oc.on_signal(T0, "*", Signal::Resume, 4),
        SignalOutcome::Applied
    );
    assert_eq!(drain(&mut oc), vec![release(wb, WaitOutcome::Resumed)]);
    assert_eq!(oc.state("a", "t:1"), OpState::Paused);
    assert_eq!(oc.state("b", "t:2"), OpState::Paused);

    assert_eq!(
        oc.on_signal(T0, "agent:a", Signal::Resume, 5),
        SignalOutcome::Applied
    );
    assert_eq!(drain(&mut oc), vec![release(wa, WaitOutcome::Resumed)]);
    assert_eq!(
        oc.on_signal(T0, "t:2", Signal::Resume, 6),
        SignalOutcome::Applied
    );
    assert_eq!(drain(&mut oc), vec![release(wb2, WaitOutcome::Resumed)]);

    // A reserved id is not an op: a check on one is refused, not a panic.
    assert_eq!(
        oc.check(T0, "a", "*"),
        CheckOutcome::Deny(DenyReason::InvalidOpId(InvalidId::Reserved))
    );
    assert_eq!(
        oc.check(T0, "a", "agent:a"),
        CheckOutcome::Deny(DenyReason::InvalidOpId(InvalidId::Reserved))
    );
}

#[test]
fn invalid_ids_are_refused_with_a_reason() {
    let cfg = OpControlConfig::default().with_max_op_id_len(12);
    let mut oc = up(cfg);
    assert_eq!(
        oc.on_signal(T0, "", Signal::Terminate, 1),
        SignalOutcome::Refused(InvalidId::Empty)
    );
    assert_eq!(
        oc.on_signal(T0, "agent:", Signal::Terminate, 1),
        SignalOutcome::Refused(InvalidId::EmptyAgent)
    );
    let long = "x".repeat(10_000);
    assert_eq!(
        oc.on_signal(T0, &long, Signal::Pause, 1),
        SignalOutcome::Refused(InvalidId::TooLong {
            len: 10_000,
            max: 12
        })
    );
    assert_eq!(
        oc.check(T0, "a", &long),
        CheckOutcome::Deny(DenyReason::InvalidOpId(InvalidId::TooLong {
            len: 10_000,
            max: 12
        }))
    );
    assert_eq!(
        oc.check(T0, "", "t:1"),
        CheckOutcome::Deny(DenyReason::InvalidAgent(InvalidId::Empty))
    );
    // `agent:` + a 7-byte agent id does not fit in 12 bytes.
    assert!(matches!(
        oc.check(T0, "agent-7", "t:1"),
        CheckOutcome::Deny(DenyReason::InvalidAgent(InvalidId::TooLong { .. }))
    ));
    assert_eq!(oc.state("a", &long), OpState::Terminated);
    assert_eq!(oc.stats().refused_signals, 3);
    assert_eq!(oc.stats().entries, 0);
}

#[test]
fn unspecified_and_unknown_signals_are_ignored_and_counted() {
    let mut oc = up(OpControlConfig::default());
    for (i, v) in [0, 4, -1, i32::MAX, i32::MIN].into_iter().enumerate() {
        assert_eq!(
            oc.on_signal(T0, "t:1", Signal::from_wire(v), i as u64),
            SignalOutcome::Ignored
        );
    }
    assert_eq!(
        oc.on_signal(T0, "*", Signal::Unknown(3), 9),
        SignalOutcome::Ignored,
        "an Unknown value is never read as a known signal"
    );
    assert_eq!(oc.stats().ignored_signals, 6);
    assert_eq!(oc.state("a", "t:1"), OpState::Running);
    assert_eq!(oc.check(T0, "a", "t:1"), CheckOutcome::Run);
    assert_eq!(Signal::from_wire(3), Signal::Terminate);
    assert_eq!(Signal::Unknown(7).to_wire(), 7);
}

// ------------------------------------------------------ terminate absorbing

#[test]
fn terminate_survives_reconnect_replay_and_snapshot() {
    let mut oc = up(OpControlConfig::default());
    oc.on_signal(T0, "t:1", Signal::Terminate, 10);
    oc.on_signal(T0, "agent:b", Signal::Terminate, 11);
    assert_eq!(
        oc.check(T0, "a", "t:1"),
        CheckOutcome::Deny(DenyReason::Terminated)
    );

    // Reconnect, well past the grace period.
    let t1 = T0 + Duration::from_secs(60);
    oc.on_stream_down(T0);
    oc.handle_timeout(t1);
    oc.on_stream_up(t1);
    drain(&mut oc);
    // The gateway's snapshot re-sends current states, then stale and new
    // pause / resume signals arrive, with repeated, new and restarted
    // sequence numbers.
    for (seq, sig) in [
        (10, Signal::Terminate),
        (0, Signal::Resume),
        (1, Signal::Pause),
        (2, Signal::Resume),
        (u64::MAX, Signal::Resume),
    ] {
        let out = oc.on_signal(t1, "t:1", sig, seq);
        assert!(
            matches!(out, SignalOutcome::Unchanged | SignalOutcome::Duplicate),
            "{sig:?}@{seq}: {out:?}"
        );
        oc.on_signal(t1, "agent:b", sig, seq);
        oc.on_signal(t1, "*", Signal::Resume, seq);
    }
    let t2 = t1 + Duration::from_secs(5);
    oc.handle_timeout(t2);
    drain(&mut oc);
    assert_eq!(oc.state("a", "t:1"), OpState::Terminated);
    assert_eq!(oc.state("b", "t:9"), OpState::Terminated);
    assert_eq!(
        oc.check(t2, "a", "t:1"),
        CheckOutcome::Deny(DenyReason::Terminated)
    );
    assert_eq!(
        oc.check(t2, "b", "t:9"),
        CheckOutcome::Deny(DenyReason::Terminated)
    );
    assert_eq!(oc.check(t2, "a", "t:9"), CheckOutcome::Run);
}

#[test]
fn star_terminate_is_forever_even_after_every_op_finished() {
    let mut oc = up(OpControlConfig::default());
    oc.on_signal(T0, "*", Signal::Terminate, 1);
    oc.on_all_ops_finished();
    oc.on_signal(T0, "*", Signal::Resume, 2);
    assert_eq!(oc.state("z", "new:op"), OpState::Terminated);
    assert_eq!(oc.stats().all_ops, Some(OpState::Terminated));
}

// ------------------------------------------------------------- waiters

#[test]
fn paused_op_waiter_is_released_by_resume_and_failed_by_terminate() {
    let mut oc = up(OpControlConfig::default());
    oc.on_signal(T0, "t:1", Signal::Pause, 1);
    oc.on_signal(T0, "t:2", Signal::Pause, 2);
    let w1 = wait(oc.check(T0, "a", "t:1"));
    let w2 = wait(oc.check(T0, "a", "t:2"));
    assert_eq!(oc.stats().waiters, 2);

    // Time and stream flaps never release a paused op.
    oc.on_stream_down(T0);
    let late = T0 + Duration::from_secs(3_600);
    oc.handle_timeout(late);
    oc.on_stream_up(late);
    oc.handle_timeout(late + DEFAULT_RESTORE_SETTLE);
    assert!(drain(&mut oc)
        .iter()
        .all(|a| !matches!(a, OpControlAction::Release { .. })));

    let now = late + DEFAULT_RESTORE_SETTLE;
    oc.on_signal(now, "t:1", Signal::Resume, 3);
    assert_eq!(drain(&mut oc), vec![release(w1, WaitOutcome::Resumed)]);
    oc.on_signal(now, "t:2", Signal::Terminate, 4);
    assert_eq!(drain(&mut oc), vec![release(w2, WaitOutcome::Terminated)]);
    assert_eq!(oc.stats().waiters, 0);
}

#[test]
fn cancel_leaves_nothing_behind_and_a_cancelled_waiter_is_never_released() {
    let mut oc = up(OpControlConfig::default());
    oc.on_signal(T0, "t:1", Signal::Pause, 1);
    let w = wait(oc.check(T0, "a", "t:1"));
    assert!(oc.cancel(w));
    assert!(!oc.cancel(w));
    assert_eq!(oc.stats().waiters, 0);
    oc.on_signal(T0, "t:1", Signal::Resume, 2);
    assert!(drain(&mut oc).is_empty());

    // A release queued but not drained is withdrawn by a cancel too.
    oc.on_signal(T0, "t:1", Signal::Pause, 3);
    let w = wait(oc.check(T0, "a", "t:1"));
    oc.on_signal(T0, "t:1", Signal::Terminate, 4);
    assert!(oc.cancel(w));
    assert!(drain(&mut oc).is_empty());
}

#[test]
fn waiters_are_bounded_and_fail_closed_at_the_bound() {
    let cfg = OpControlConfig::default().with_max_waiters(2);
    let mut oc = up(cfg);
    oc.on_signal(T0, "t:1", Signal::Pause, 1);
    wait(oc.check(T0, "a", "t:1"));
    wait(oc.check(T0, "a", "t:1"));
    assert_eq!(
        oc.check(T0, "a", "t:1"),
        CheckOutcome::Deny(DenyReason::TooManyWaiters)
    );
    assert_eq!(oc.stats().waiter_limit_hits, 1);
}

// ------------------------------------------------------ eviction, saturation

#[test]
fn eviction_fails_paused_waiters_closed_and_the_op_stays_not_runnable() {
    let cfg = OpControlConfig::default().with_max_entries(2);
    let mut oc = up(cfg);
    oc.on_signal(T0, "t:1", Signal::Pause, 1);
    let w1 = wait(oc.check(T0, "a", "t:1"));
    oc.on_signal(T0, "t:2", Signal::Terminate, 2);
    // Full: a third entry evicts the oldest paused one (t:1), never t:2.
    assert_eq!(
        oc.on_signal(T0, "t:3", Signal::Pause, 3),
        SignalOutcome::Applied
    );
    assert_eq!(drain(&mut oc), vec![release(w1, WaitOutcome::Evicted)]);
    let s = oc.stats();
    assert_eq!((s.entries, s.evicted_markers, s.evictions), (2, 1, 1));
    assert_eq!(oc.state("a", "t:1"), OpState::Paused);
    assert_eq!(
        oc.check(T0, "a", "t:1"),
        CheckOutcome::Deny(DenyReason::Evicted)
    );
    assert_eq!(
        oc.check(T0, "a", "t:2"),
        CheckOutcome::Deny(DenyReason::Terminated)
    );
    // A resume of the evicted op lets it run again.
    assert_eq!(
        oc.on_signal(T0, "t:1", Signal::Resume, 4),
        SignalOutcome::Applied
    );
    assert_eq!(oc.check(T0, "a", "t:1"), CheckOutcome::Run);
}

#[test]
fn a_terminate_that_finds_no_room_overflows_then_saturates_and_fails_closed() {
    let cfg = OpControlConfig::default()
        .with_max_entries(2)
        .with_max_evicted(1)
        .with_max_overflow(1);
    let mut oc = up(cfg);
    oc.on_signal(T0, "t:1", Signal::Terminate, 1);
    oc.on_signal(T0, "t:2", Signal::Pause, 2);
    let w = wait(oc.check(T0, "a", "t:2"));
    // Full: the paused entry is evicted (a marker is free), never t:1.
    assert_eq!(
        oc.on_signal(T0, "t:3", Signal::Terminate, 3),
        SignalOutcome::Applied
    );
    assert_eq!(drain(&mut oc), vec![release(w, WaitOutcome::Evicted)]);
    assert_eq!(oc.saturation(), Saturation::Clear);

    // Two live terminated entries, the marker set full: the next terminate
    // is kept exactly in the overflow.
    assert_eq!(
        oc.on_signal(T0, "t:4", Signal::Terminate, 4),
        SignalOutcome::Applied
    );
    assert_eq!(oc.saturation(), Saturation::Clear);
    assert_eq!(oc.stats().overflow, 1);
    assert_eq!(oc.state("a", "t:4"), OpState::Terminated);
    assert_eq!(oc.check(T0, "b", "other"), CheckOutcome::Run);

    // The overflow full too: a new terminate finds no room. It is not
    // dropped: the machine saturates and every op it holds nothing for is
    // covered, as terminated since a terminate was lost.
    assert_eq!(
        oc.on_signal(T0, "t:5", Signal::Terminate, 5),
        SignalOutcome::Saturated
    );
    assert_eq!(oc.saturation(), Saturation::Ops);
    let s = oc.stats();
    assert!(s.saturated && s.lost_terminate && s.entries == 2 && s.saturation_events == 1);
    assert_eq!(oc.state("a", "t:5"), OpState::Terminated);
    assert_eq!(
        oc.check(T0, "a", "t:5"),
        CheckOutcome::Deny(DenyReason::Saturated)
    );
    assert_eq!(
        oc.check(T0, "b", "other"),
        CheckOutcome::Deny(DenyReason::Saturated)
    );
    assert_eq!(
        oc.check(T0, "a", "t:1"),
        CheckOutcome::Deny(DenyReason::Terminated)
    );
    // The evicted paused op keeps its own state: paused, not terminated.
    assert_eq!(oc.state("a", "t:2"), OpState::Paused);
    // Space freeing up does not lift it (the lost op is unknown), and the
    // lost op cannot sneak back in with a weaker entry.
    assert!(oc.on_op_finished("a", "t:1"));
    assert_eq!(
        oc.on_signal(T0, "t:5", Signal::Pause, 6),
        SignalOutcome::Saturated
    );
    assert_eq!(
        oc.check(T0, "a", "t:5"),
        CheckOutcome::Deny(DenyReason::Saturated)
    );
    // Only every op having finished does.
    oc.on_all_ops_finished();
    assert_eq!(oc.saturation(), Saturation::Clear);
    assert!(!oc.stats().lost_terminate);
    assert_eq!(oc.check(T0, "a", "t:6"), CheckOutcome::Run);
}

/// Issue 15, item 4: thousands of paused ops of one agent. Past the table
/// and its markers the pauses are kept exactly in the overflow; past that
/// too the machine fails closed, but a paused op never reads terminated,
/// and the state recovers as the ops are resumed and finished.
#[test]
fn thousands_of_paused_ops_stay_paused_and_recover_when_resumed() {
    let mut oc = up(OpControlConfig::default());
    let op = |i: u32| format!("trace-{i}:span");
    let mut seq = 0u64;
    let mut signal = |oc: &mut OpControl, id: &str, s: Signal| {
        seq += 1;
        oc.on_signal(T0, id, s, seq)
    };
    // 8,200 paused ops: table (4,096) plus markers (4,096) plus 8 more.
    for i in 0..8_200 {
        assert_eq!(
            signal(&mut oc, &op(i), Signal::Pause),
            SignalOutcome::Applied
        );
    }
    let s = oc.stats();
    assert_eq!(
        (s.entries, s.evicted_markers, s.overflow),
        (4_096, 4_096, 8)
    );
    assert_eq!(oc.saturation(), Saturation::Clear);
    // Every one of them reads paused; an op never signalled runs.
    for i in [0, 4_095, 4_096, 8_191, 8_192, 8_199] {
        assert_eq!(oc.state("a", &op(i)), OpState::Paused, "op {i}");
    }
    assert_eq!(oc.check(T0, "a", "never:signalled"), CheckOutcome::Run);
    let w = wait(oc.check(T0, "a", &op(8_199)));

    // Fill the overflow and lose one pause: saturated, fail closed.
    for i in 8_200..12_288 {
        signal(&mut oc, &op(i), Signal::Pause);
    }
    assert_eq!(
        signal(&mut oc, &op(20_000), Signal::Pause),
        SignalOutcome::Saturated
    );
    assert_eq!(oc.saturation(), Saturation::Ops);
    assert!(!oc.stats().lost_terminate);
    assert_eq!(
        oc.check(T0, "a", "never:signalled"),
        CheckOutcome::Deny(DenyReason::Saturated)
    );
    // Paused ops, held or lost, read paused, never terminated.
    for i in [0, 4_096, 8_199, 12_287, 20_000] {
        assert_eq!(oc.state("a", &op(i)), OpState::Paused, "op {i}");
    }
    assert!(
        drain(&mut oc).is_empty(),
        "a held op's waiter keeps waiting"
    );

    // Resumed while saturated: the op is no longer held, so the cover
    // takes it in (it may be the one whose signal was lost): fail closed.
    signal(&mut oc, &op(8_199), Signal::Resume);
    assert_eq!(drain(&mut oc), vec![release(w, WaitOutcome::Saturated)]);
    assert_eq!(oc.state("a", &op(8_199)), OpState::Paused);
    // Every op resumed and finished: the state recovers.
    for i in (0..12_288).chain([20_000]) {
        signal(&mut oc, &op(i), Signal::Resume);
        oc.on_op_finished("a", &op(i));
    }
    oc.on_all_ops_finished();
    assert_eq!(oc.saturation(), Saturation::Clear);
    let s = oc.stats();
    assert_eq!((s.entries, s.evicted_markers, s.overflow), (0, 0, 0));
    assert_eq!(oc.check(T0, "a", "never:signalled"), CheckOutcome::Run);
}

/// The issue's own run: 8,200 paused ops, each resumed and finished, leave
/// nothing behind, and no op was ever failed closed on the way.
#[test]
fn eight_thousand_paused_ops_resumed_and_finished_leave_nothing() {
    let mut oc = up(OpControlConfig::default());
    let op = |i: u32| format!("trace-{i}:span");
    for i in 0..8_200u32 {
        oc.on_signal(T0, &op(i), Signal::Pause, u64::from(i));
    }
    assert_eq!(oc.check(T0, "a", "never:signalled"), CheckOutcome::Run);
    for i in 0..8_200u32 {
        assert_eq!(oc.state("a", &op(i)), OpState::Paused);
        assert_eq!(
            oc.on_signal(T0, &op(i), Signal::Resume, u64::from(10_000 + i)),
            SignalOutcome::Applied
        );
        assert_eq!(oc.check(T0, "a", &op(i)), CheckOutcome::Run);
        assert!(oc.on_op_finished("a", &op(i)));
    }
    let s = oc.stats();
    assert_eq!((s.entries, s.evicted_markers, s.overflow), (0, 0, 0));
    assert_eq!((s.saturation, s.saturation_events), (Saturation::Clear, 0));
}

#[test]
fn agent_table_overflow_stops_the_fleet_forever() {
    let cfg = OpControlConfig::default().with_max_agents(1);
    let mut oc = up(cfg);
    oc.on_signal(T0, "t:1", Signal::Pause, 1);
    let w = wait(oc.check(T0, "c", "t:1"));
    oc.on_signal(T0, "agent:a", Signal::Pause, 2);
    assert_eq!(
        oc.on_signal(T0, "agent:b", Signal::Terminate, 3),
        SignalOutcome::Saturated
    );
    assert_eq!(oc.saturation(), Saturation::Fleet);
    assert_eq!(drain(&mut oc), vec![release(w, WaitOutcome::Saturated)]);
    oc.on_signal(T0, "agent:a", Signal::Resume, 4);
    oc.on_all_ops_finished();
    assert_eq!(oc.saturation(), Saturation::Fleet);
    assert_eq!(oc.state("c", "t:2"), OpState::Terminated);
}

#[test]
fn late_signals_for_finished_ops_do_not_fill_the_table() {
    let mut oc = up(OpControlConfig::default());
    oc.on_signal(T0, "t:1", Signal::Terminate, 1);
    assert!(oc.on_op_finished("a", "t:1"));
    assert_eq!(oc.stats().entries, 0);
    // The reference gateway's snapshot re-sends the terminate on subscribe.
    assert_eq!(
        oc.on_signal(T0, "t:1", Signal::Terminate, 2),
        SignalOutcome::LateForFinishedOp
    );
    assert_eq!(oc.stats().entries, 0);
    assert_eq!(oc.stats().late_signals, 1);
    // A check proves the op live again: its signals count from then on.
    assert_eq!(oc.check(T0, "a", "t:1"), CheckOutcome::Run);
    assert_eq!(
        oc.on_signal(T0, "t:1", Signal::Terminate, 3),
        SignalOutcome::Applied
    );
    assert!(!oc.on_op_finished("a", "*"));
}

// ------------------------------------------------------------ dedupe

#[test]
fn exact_repeats_are_dropped_gaps_are_normal() {
    let mut oc = up(OpControlConfig::default());
    assert_eq!(
        oc.on_signal(T0, "t:1", Signal::Pause, 100),
        SignalOutcome::Applied
    );
    let w = wait(oc.check(T0, "a", "t:1"));
    assert_eq!(
        oc.on_signal(T0, "t:1", Signal::Pause, 100),
        SignalOutcome::Duplicate
    );
    // A gap (another agent's signals) is normal.
    assert_eq!(
        oc.on_signal(T0, "t:1", Signal::Resume, 250),
        SignalOutcome::Applied
    );
    assert_eq!(drain(&mut oc), vec![release(w, WaitOutcome::Resumed)]);
    // Paused again, a stale resume repeated after a reconnect is dropped:
    // the op stays paused.
    assert_eq!(
        oc.on_signal(T0, "t:1", Signal::Pause, 251),
        SignalOutcome::Applied
    );
    assert_eq!(
        oc.on_signal(T0, "t:1", Signal::Resume, 250),
        SignalOutcome::Duplicate
    );
    assert_eq!(oc.state("a", "t:1"), OpState::Paused);
    // The same sequence number on another op or signal is not a repeat.
    assert_eq!(
        oc.on_signal(T0, "t:2", Signal::Pause, 250),
        SignalOutcome::Applied
    );
    // A lower sequence is not a reason to drop anything.
    assert_eq!(
        oc.on_signal(T0, "t:1", Signal::Resume, 3),
        SignalOutcome::Applied
    );
    // After a gateway restart the counter may repeat a pause that would
    // restrict the op again: applied (safe side), counted.
    assert_eq!(
        oc.on_signal(T0, "t:1", Signal::Pause, 100),
        SignalOutcome::Applied
    );
    assert_eq!(oc.state("a", "t:1"), OpState::Paused);
    let s = oc.stats();
    assert_eq!((s.duplicates_dropped, s.repeats_applied), (2, 1));
}

// ------------------------------------------------------------- outages

#[test]
fn construction_starts_down_with_the_grace_counted_from_construction() {
    let start = Timestamp::from_secs(100);
    let mut oc = OpControl::new(OpControlConfig::default(), start);
    assert!(!oc.stream_up());
    let d = oc.poll_timeout().unwrap();
    assert_eq!(
        (d.at, d.reason),
        (start + DEFAULT_OUTAGE_GRACE, OpControlTimer::OutageGrace)
    );
    let just_before = d.at - Duration::from_nanos(1);
    assert_eq!(oc.check(just_before, "a", "t:1"), CheckOutcome::Run);
    // At the grace instant the Hold policy starts.
    wait(oc.check(d.at, "a", "t:2"));
    oc.handle_timeout(d.at);
    assert_eq!(
        drain(&mut oc),
        vec![OpControlAction::OutageStarted { since: start }]
    );
    assert_eq!(oc.stats().outages, 1);
}

#[test]
fn hold_waiters_run_after_the_stream_settles_unless_paused_or_terminated() {
    let mut oc = up(OpControlConfig::default());
    oc.on_stream_down(T0);
    let grace = T0 + DEFAULT_OUTAGE_GRACE;
    oc.handle_timeout(grace);
    drain(&mut oc);
    let w1 = wait(oc.check(grace, "a", "t:1"));
    let w2 = wait(oc.check(grace, "a", "t:2"));
    let w3 = wait(oc.check(grace, "a", "t:3"));

    let back = grace + Duration::from_secs(5);
    oc.on_stream_up(back);
    assert!(drain(&mut oc).is_empty(), "held through the settle window");
    // The gateway's snapshot pauses t:2 and terminates t:3.
    oc.on_signal(back, "t:2", Signal::Pause, 1);
    oc.on_signal(back, "t:3", Signal::Terminate, 2);
    assert_eq!(drain(&mut oc), vec![release(w3, WaitOutcome::Terminated)]);
    let d = oc.poll_timeout().unwrap();
    assert_eq!(
        (d.at, d.reason),
        (back + DEFAULT_RESTORE_SETTLE, OpControlTimer::RestoreSettle)
    );
    oc.handle_timeout(d.at);
    assert_eq!(
        drain(&mut oc),
        vec![
            release(w1, WaitOutcome::StreamRestored),
            OpControlAction::OutageEnded { since: T0 }
        ]
    );
    // t:2 waits for its resume.
    oc.on_signal(d.at, "t:2", Signal::Resume, 3);
    assert_eq!(drain(&mut oc), vec![release(w2, WaitOutcome::Resumed)]);
}

#[test]
fn a_drop_while_settling_keeps_holding() {
    let mut oc = up(OpControlConfig::default());
    oc.on_stream_down(T0);
    let grace = T0 + DEFAULT_OUTAGE_GRACE;
    oc.handle_timeout(grace);
    let w = wait(oc.check(grace, "a", "t:1"));
    oc.on_stream_up(grace);
    oc.on_stream_down(grace + Duration::from_millis(10));
    assert!(oc.outage_in_force(grace + Duration::from_millis(10)));
    // Still within the hold limit (counted from the first grace instant).
    oc.handle_timeout(grace + Duration::from_secs(40));
    assert!(drain(&mut oc)
        .iter()
        .all(|a| !matches!(a, OpControlAction::Release { .. })));
    assert_eq!(oc.stats().waiters, 1);
    // Back for good: the held call runs once the settle window passes.
    let back = grace + Duration::from_secs(41);
    oc.on_stream_up(back);
    oc.handle_timeout(back + DEFAULT_RESTORE_SETTLE);
    assert_eq!(
        drain(&mut oc),
        vec![
            release(w, WaitOutcome::StreamRestored),
            OpControlAction::OutageEnded { since: T0 }
        ]
    );
}

#[test]
fn deny_and_allow_policies_and_a_policy_change_releases_held_waiters() {
    let deny = OpControlConfig::default().with_outage_policy(OutagePolicy::Deny);
    let mut oc = OpControl::new(deny, T0);
    let grace = T0 + DEFAULT_OUTAGE_GRACE;
    assert_eq!(
        oc.check(T0, "a", "t:1"),
        CheckOutcome::Run,
        "within the grace period"
    );
    assert_eq!(
        oc.check(grace, "a", "t:1"),
        CheckOutcome::Deny(DenyReason::StreamDown)
    );
    // Paused ops are not governed by the outage policy: they keep waiting.
    oc.on_signal(grace, "t:2", Signal::Pause, 1);
    let paused = wait(oc.check(grace, "a", "t:2"));

    oc.set_outage_policy(grace, OutagePolicy::Allow);
    assert_eq!(oc.check(grace, "a", "t:1"), CheckOutcome::Run);

    oc.set_outage_policy(grace, OutagePolicy::Hold);
    let held = wait(oc.check(grace, "a", "t:1"));
    drain(&mut oc);
    oc.set_outage_policy(grace, OutagePolicy::Deny);
    assert_eq!(drain(&mut oc), vec![release(held, WaitOutcome::OutageDeny)]);
    oc.set_outage_policy(grace, OutagePolicy::Hold);
    let held = wait(oc.check(grace, "a", "t:1"));
    oc.set_outage_policy(grace, OutagePolicy::Allow);
    assert_eq!(
        drain(&mut oc),
        vec![release(held, WaitOutcome::OutageAllow)]
    );
    assert_eq!(
        oc.stats().waiters,
        1,
        "the paused op still waits: {paused:?}"
    );
}

#[test]
fn timeouts_are_idempotent_and_no_op_when_early() {
    let mut oc = OpControl::new(OpControlConfig::default(), T0);
    let d = oc.poll_timeout().unwrap().at;
    oc.handle_timeout(d - Duration::from_millis(1));
    assert!(drain(&mut oc).is_empty());
    assert_eq!(oc.poll_timeout().unwrap().at, d);
    oc.handle_timeout(d);
    assert_eq!(drain(&mut oc).len(), 1);
    oc.handle_timeout(d);
    assert!(drain(&mut oc).is_empty());
    let hold = oc.poll_timeout().unwrap();
    assert_eq!(
        (hold.at, hold.reason),
        (d + DEFAULT_HOLD_LIMIT, OpControlTimer::HoldLimit)
    );
    oc.handle_timeout(hold.at);
    oc.handle_timeout(hold.at);
    assert!(drain(&mut oc).is_empty());
    assert!(oc.poll_timeout().is_none());
}

// ------------------------------------------------------------ hold limit

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Stream down forever: a held waiter is released with `HoldExpired`
    /// exactly at `down + grace + hold_limit`, not a nanosecond before, and
    /// from then on checks of running ops are denied, not held; paused ops
    /// keep waiting for their resume.
    #[test]
    fn stream_down_forever_releases_held_waiters_exactly_at_the_hold_limit(
        grace_ms in 0u64..20_000,
        hold_ms in 0u64..120_000,
        down_ms in 0u64..10_000,
        check_ms in 0u64..120_000,
        steps in prop::collection::vec(1u64..5_000, 0..20),
    ) {
        let grace = Duration::from_millis(grace_ms);
        let hold = Duration::from_millis(hold_ms);
        let cfg = OpControlConfig::default().with_outage_grace(grace).with_hold_limit(hold);
        let mut oc = up(cfg);
        let down = T0 + Duration::from_millis(down_ms);
        oc.on_stream_down(down);
        let began = down + grace;
        let expiry = began + hold;
        oc.handle_timeout(began);
        drain(&mut oc);
        // A check somewhere in the held part of the outage waits.
        let at = began + Duration::from_millis(check_ms % hold_ms.max(1));
        prop_assume!(at < expiry);
        oc.handle_timeout(at);
        drain(&mut oc);
        let held = wait(oc.check(at, "a", "t:1"));
        oc.on_signal(at, "t:2", Signal::Pause, 1);
        let paused = wait(oc.check(at, "a", "t:2"));
        // Time passes in arbitrary steps up to just before the expiry:
        // nothing is released.
        let mut now = at;
        for step in steps {
            now = (now + Duration::from_millis(step)).min(expiry - Duration::from_nanos(1));
            oc.handle_timeout(now);
            prop_assert!(drain(&mut oc).is_empty(), "released early at {:?}", now);
        }
        let last = expiry - Duration::from_nanos(1);
        oc.handle_timeout(last);
        prop_assert!(drain(&mut oc).is_empty());
        prop_assert!(!oc.hold_expired(last));
        let d = oc.poll_timeout().unwrap();
        prop_assert_eq!((d.at, d.reason), (expiry, OpControlTimer::HoldLimit));
        oc.handle_timeout(expiry);
        prop_assert_eq!(drain(&mut oc), vec![release(held, WaitOutcome::HoldExpired)]);
        prop_assert!(oc.hold_expired(expiry));
        prop_assert_eq!(oc.check(expiry, "a", "t:1"), CheckOutcome::Deny(DenyReason::HoldExpired));
        let later = expiry + Duration::from_secs(3_600);
        oc.handle_timeout(later);
        prop_assert!(drain(&mut oc).is_empty());
        prop_assert_eq!(oc.check(later, "a", "t:3"), CheckOutcome::Deny(DenyReason::HoldExpired));
        prop_assert_eq!(oc.stats().holds_expired, 1);
        prop_assert_eq!(oc.stats().held_released_expired, 1);
        // The paused op still waits for its resume (OP_PAUSE_HOLDS).
        prop_assert_eq!(oc.stats().waiters, 1);
        oc.on_signal(later, "t:2", Signal::Resume, 2);
        prop_assert_eq!(drain(&mut oc), vec![release(paused, WaitOutcome::Resumed)]);
    }
}

#[test]
fn a_late_timer_call_fires_grace_and_hold_in_order() {
    let mut oc = up(OpControlConfig::default());
    oc.on_stream_down(T0);
    let grace = T0 + DEFAULT_OUTAGE_GRACE;
    // A check at the grace instant, before the timer was handled, holds.
    let w = wait(oc.check(grace, "a", "t:1"));
    let late = grace + DEFAULT_HOLD_LIMIT + Duration::from_secs(5);
    oc.handle_timeout(late);
    assert_eq!(
        drain(&mut oc),
        vec![
            release(w, WaitOutcome::HoldExpired),
            OpControlAction::OutageStarted { since: T0 }
        ]
    );
    assert!(oc.poll_timeout().is_none());
}

#[test]
fn the_hold_budget_spans_a_drop_while_settling_and_restarts_with_a_new_outage() {
    let hold = Duration::from_secs(5);
    let settle = Duration::from_secs(2);
    let cfg = OpControlConfig::default()
        .with_hold_limit(hold)
        .with_restore_settle(settle);
    let mut oc = up(cfg);
    oc.on_stream_down(T0);
    let grace = T0 + DEFAULT_OUTAGE_GRACE;
    oc.handle_timeout(grace);
    drain(&mut oc);
    let w1 = wait(oc.check(grace, "a", "t:1"));
    // Back briefly, then down again: the same outage, the same budget.
    let back = grace + Duration::from_secs(1);
    oc.on_stream_up(back);
    oc.on_stream_down(back + Duration::from_secs(1));
    let w2 = wait(oc.check(back + Duration::from_secs(1), "a", "t:2"));
    let d = oc.poll_timeout().unwrap();
    assert_eq!((d.at, d.reason), (grace + hold, OpControlTimer::HoldLimit));
    oc.handle_timeout(d.at);
    assert_eq!(
        drain(&mut oc),
        vec![
            release(w1, WaitOutcome::HoldExpired),
            release(w2, WaitOutcome::HoldExpired)
        ]
    );
    // Back: still denied through the settle window, then running again.
    let back = d.at + Duration::from_secs(10);
    oc.on_stream_up(back);
    assert_eq!(
        oc.check(back, "a", "t:3"),
        CheckOutcome::Deny(DenyReason::HoldExpired)
    );
    oc.handle_timeout(back + settle);
    assert_eq!(
        drain(&mut oc),
        vec![OpControlAction::OutageEnded { since: T0 }]
    );
    assert_eq!(oc.check(back + settle, "a", "t:3"), CheckOutcome::Run);
    // A later outage holds again, with a budget of its own.
    let down2 = back + settle + Duration::from_secs(1);
    oc.on_stream_down(down2);
    let grace2 = down2 + DEFAULT_OUTAGE_GRACE;
    oc.handle_timeout(grace2);
    drain(&mut oc);
    let w3 = wait(oc.check(grace2, "a", "t:4"));
    oc.handle_timeout(grace2 + hold - Duration::from_nanos(1));
    assert!(drain(&mut oc).is_empty());
    oc.handle_timeout(grace2 + hold);
    assert_eq!(drain(&mut oc), vec![release(w3, WaitOutcome::HoldExpired)]);
    assert_eq!(oc.stats().holds_expired, 2);
}

#[test]
fn a_settle_window_that_ends_first_releases_to_run_and_the_hold_never_fires() {
    let cfg = OpControlConfig::default().with_hold_limit(Duration::from_secs(5));
    let mut oc = up(cfg);
    oc.on_stream_down(T0);
    let grace = T0 + DEFAULT_OUTAGE_GRACE;
    oc.handle_timeout(grace);
    drain(&mut oc);
    let w = wait(oc.check(grace, "a", "t:1"));
    oc.on_stream_up(grace + Duration::from_secs(1));
    let d = oc.poll_timeout().unwrap();
    assert_eq!(d.reason, OpControlTimer::RestoreSettle);
    oc.handle_timeout(d.at);
    assert_eq!(
        drain(&mut oc),
        vec![
            release(w, WaitOutcome::StreamRestored),
            OpControlAction::OutageEnded { since: T0 }
        ]
    );
    assert!(oc.poll_timeout().is_none());
    assert_eq!(oc.stats().holds_expired, 0);
}

#[test]
fn deny_and_allow_are_unchanged_by_the_hold_limit_and_hold_after_it_denies() {
    let cfg = OpControlConfig::default()
        .with_hold_limit(Duration::ZERO)
        .with_outage_policy(OutagePolicy::Allow);
    let mut oc = OpControl::new(cfg, T0);
    let grace = T0 + DEFAULT_OUTAGE_GRACE;
    oc.handle_timeout(grace);
    drain(&mut oc);
    assert!(oc.hold_expired(grace));
    assert_eq!(oc.check(grace, "a", "t:1"), CheckOutcome::Run);
    oc.set_outage_policy(grace, OutagePolicy::Deny);
    assert_eq!(
        oc.check(grace, "a", "t:1"),
        CheckOutcome::Deny(DenyReason::StreamDown)
    );
    oc.set_outage_policy(grace, OutagePolicy::Hold);
    assert_eq!(
        oc.check(grace, "a", "t:1"),
        CheckOutcome::Deny(DenyReason::HoldExpired)
    );
    assert_eq!(oc.config().hold_limit, Duration::ZERO);
}

#[test]
fn nonsense_inputs_never_panic() {
    let cfg = OpControlConfig::default()
        .with_max_entries(0)
        .with_max_evicted(0)
        .with_max_agents(0)
        .with_max_waiters(0)
        .with_max_finished(0)
        .with_dedupe_window(0)
        .with_max_op_id_len(usize::MAX)
        .with_outage_grace(Duration::MAX)
        .with_restore_settle(Duration::MAX)
        .with_outage_policy(OutagePolicy::Hold);
    let mut oc = OpControl::new(cfg, Timestamp::MAX);
    oc.on_signal(Timestamp::MAX, "t:1", Signal::Pause, u64::MAX);
    oc.on_signal(Timestamp::MAX, "agent:a", Signal::Terminate, 0);
    oc.check(Timestamp::ZERO, "a", "t:1");
    oc.on_stream_up(Timestamp::ZERO);
    oc.on_stream_down(Timestamp::MAX);
    oc.handle_timeout(Timestamp::MAX);
    // Every waiter is refused at a zero bound: fail closed.
    assert_eq!(
        oc.check(Timestamp::MAX, "a", "x"),
        CheckOutcome::Deny(DenyReason::Saturated)
    );
    assert!(!oc.cancel(OpWaiterId::from_raw(42)));
    while oc.poll_action().is_some() {}
}
