//! Property tests and focused scenarios for the check-slot machine.

use core::time::Duration;

use proptest::prelude::*;
use tether_core::check_slots::{
    Admission, CheckSlots, CheckSlotsAction, CheckSlotsConfig, CheckSlotsTimer, SlotId,
    SlotRefusal, SlotState, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_QUEUED, DEFAULT_QUEUE_TIMEOUT,
};
use tether_core::testkit::check_slots::{run, Op, Tok};
use tether_core::{Deadline, Machine, Timestamp};

fn tok() -> impl Strategy<Value = Tok> {
    prop_oneof![
        6 => any::<u8>().prop_map(Tok::Live),
        2 => any::<u8>().prop_map(Tok::Old),
        1 => prop_oneof![any::<u64>(), 0u64..64].prop_map(Tok::MadeUp),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    op_with(6)
}

/// Inputs with requests weighted `requests` (against 14 for the rest).
fn op_with(requests: u32) -> impl Strategy<Value = Op> {
    prop_oneof![
        requests => Just(Op::Request),
        3 => tok().prop_map(Op::Release),
        2 => tok().prop_map(Op::Cancel),
        3 => prop_oneof![0u32..3, 0u32..100, 0u32..15_000].prop_map(Op::Advance),
        1 => Just(Op::Timeout),
        2 => Just(Op::Wake),
        1 => Just(Op::Drain),
        1 => any::<bool>().prop_map(Op::AutoDrain),
    ]
}

fn cfg(max_in_flight: usize, max_queued: usize, queue_timeout_ms: u64) -> CheckSlotsConfig {
    CheckSlotsConfig::default()
        .with_max_in_flight(max_in_flight)
        .with_max_queued(max_queued)
        .with_queue_timeout(Duration::from_millis(queue_timeout_ms))
}

fn tiny_config() -> impl Strategy<Value = CheckSlotsConfig> {
    prop_oneof![
        Just(cfg(1, 0, 1)),
        Just(cfg(1, 1, 1)),
        Just(cfg(0, 0, 0)),
        Just(cfg(1, 2, 50)),
        Just(cfg(2, 1, 3)),
    ]
}

fn any_config() -> impl Strategy<Value = CheckSlotsConfig> {
    (
        0usize..6,
        0usize..8,
        prop_oneof![0u64..3, 0u64..500, Just(10_000u64)],
    )
        .prop_map(|(f, q, t)| cfg(f, q, t))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Every SLOTS_* invariant (SLOTS_IN_FLIGHT_BOUNDED, SLOTS_QUEUE_BOUNDED,
    /// SLOTS_WORK_CONSERVING, SLOTS_FIFO, SLOTS_WAIT_BOUNDED,
    /// SLOTS_RELEASE_EXACT), SLOTS_MATCHES_MODEL and the contract invariants
    /// after every step, then every queued check ends exactly once, at the
    /// tiny caps where every bound is hit.
    #[test]
    fn invariants_hold_at_tiny_caps(c in tiny_config(), ops in prop::collection::vec(op(), 0..300)) {
        if let Err(v) = run(c, &ops) {
            prop_assert!(false, "{v}");
        }
    }

    /// The same under arbitrary small, even out-of-range, configs.
    #[test]
    fn invariants_hold_for_any_config(c in any_config(), ops in prop::collection::vec(op(), 0..300)) {
        if let Err(v) = run(c, &ops) {
            prop_assert!(false, "{v}");
        }
    }

    /// The same at a few slots and a short queue with the default timeout.
    #[test]
    fn invariants_hold_at_a_few_slots(ops in prop::collection::vec(op(), 0..400)) {
        if let Err(v) = run(cfg(4, 8, 10_000), &ops) {
            prop_assert!(false, "{v}");
        }
    }

    /// The same at the defaults (requests weighted so that the 64 slots
    /// fill and checks queue).
    #[test]
    fn invariants_hold_at_defaults(ops in prop::collection::vec(op_with(30), 0..400)) {
        if let Err(v) = run(CheckSlotsConfig::default(), &ops) {
            prop_assert!(false, "{v}");
        }
    }

    /// No randomness: the same inputs give the same outputs.
    #[test]
    fn same_inputs_same_outputs(c in any_config(), ops in prop::collection::vec(op(), 0..200)) {
        let a = run(c.clone(), &ops).map(|h| h.transcript);
        let b = run(c, &ops).map(|h| h.transcript);
        prop_assert_eq!(a, b);
    }
}

// ---- focused scenarios ------------------------------------------------------

fn t(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn actions(m: &mut CheckSlots) -> Vec<CheckSlotsAction> {
    let mut v = Vec::new();
    while let Some(a) = m.poll_action() {
        v.push(a);
    }
    v
}

fn admitted(a: Admission) -> SlotId {
    match a {
        Admission::Admitted(id) => id,
        other => panic!("expected Admitted, got {other:?}"),
    }
}

fn queued(a: Admission) -> SlotId {
    match a {
        Admission::Queued(id) => id,
        other => panic!("expected Queued, got {other:?}"),
    }
}

#[test]
fn the_defaults_are_64_slots_1024_queued_10_s() {
    let c = CheckSlotsConfig::default();
    assert_eq!(
        (c.max_in_flight, c.max_queued, c.queue_timeout),
        (64, 1_024, Duration::from_secs(10))
    );
    assert_eq!(
        (
            DEFAULT_MAX_IN_FLIGHT,
            DEFAULT_MAX_QUEUED,
            DEFAULT_QUEUE_TIMEOUT
        ),
        (64, 1_024, Duration::from_secs(10))
    );
    let mut m = CheckSlots::new(c);
    for _ in 0..64 {
        admitted(m.on_request(t(0)));
    }
    queued(m.on_request(t(0)));
    let s = m.stats();
    assert_eq!(
        (s.in_flight, s.queued, s.max_in_flight, s.max_queued),
        (64, 1, 64, 1_024)
    );
}

#[test]
fn a_double_release_frees_one_slot() {
    let mut m = CheckSlots::new(cfg(2, 8, 10_000));
    let a = admitted(m.on_request(t(0)));
    let _b = admitted(m.on_request(t(0)));
    let c = queued(m.on_request(t(1)));
    let d = queued(m.on_request(t(2)));
    m.on_release(t(3), a);
    assert_eq!(actions(&mut m), [CheckSlotsAction::Admit(c)]);
    // The second release of `a` (and a cancel of it) frees nothing: `d`
    // keeps waiting and two checks stay in flight.
    let before = m.stats();
    m.on_release(t(4), a);
    m.on_cancel(t(4), a);
    assert!(actions(&mut m).is_empty());
    assert_eq!(m.stats(), before);
    assert_eq!((before.in_flight, before.queued), (2, 1));
    assert!(matches!(m.slot(d), Some(SlotState::Queued { .. })));
    assert_eq!(m.slot(a), None);
}

#[test]
fn the_queue_head_expires_at_exactly_queue_timeout() {
    let mut m = CheckSlots::new(cfg(1, 8, 10_000));
    let a = admitted(m.on_request(t(0)));
    let b = queued(m.on_request(t(500)));
    let c = queued(m.on_request(t(700)));
    assert_eq!(
        m.poll_timeout(),
        Some(Deadline::new(t(10_500), CheckSlotsTimer::QueueTimeout))
    );
    // One nanosecond early: nothing.
    m.handle_timeout(t(10_500) - Duration::from_nanos(1));
    assert!(actions(&mut m).is_empty());
    // At exactly 10 s of waiting: refused, once.
    m.handle_timeout(t(10_500));
    assert_eq!(actions(&mut m), [CheckSlotsAction::Expire(b)]);
    m.handle_timeout(t(10_500));
    assert!(actions(&mut m).is_empty());
    assert_eq!(m.poll_timeout().map(|d| d.at), Some(t(10_700)));
    // A late release of the expired check changes nothing.
    m.on_release(t(10_600), b);
    assert_eq!(m.stats().in_flight, 1);
    assert_eq!(m.stats().expired_total, 1);
    m.on_release(t(10_600), a);
    assert_eq!(actions(&mut m), [CheckSlotsAction::Admit(c)]);
    assert_eq!(m.poll_timeout(), None);
}

#[test]
fn a_slot_freed_at_the_deadline_expires_the_head_instead_of_admitting_it() {
    let mut m = CheckSlots::new(cfg(1, 8, 10_000));
    let a = admitted(m.on_request(t(0)));
    let b = queued(m.on_request(t(0)));
    let c = queued(m.on_request(t(1)));
    // The driver is late: its timer has not fired when `a` ends at 10 s.
    m.on_release(t(10_000), a);
    assert_eq!(
        actions(&mut m),
        [CheckSlotsAction::Expire(b), CheckSlotsAction::Admit(c)]
    );
    assert_eq!(m.slot(c), Some(SlotState::InFlight));
}

#[test]
fn cancelling_a_queued_check_lets_the_next_one_in_in_order() {
    let mut m = CheckSlots::new(cfg(1, 8, 10_000));
    let a = admitted(m.on_request(t(0)));
    let b = queued(m.on_request(t(1)));
    let c = queued(m.on_request(t(2)));
    let d = queued(m.on_request(t(3)));
    m.on_cancel(t(4), c);
    assert!(actions(&mut m).is_empty());
    assert_eq!(m.stats().queued, 2);
    m.on_release(t(5), a);
    assert_eq!(actions(&mut m), [CheckSlotsAction::Admit(b)]);
    // Releasing a queued id withdraws it, like a cancel.
    let e = queued(m.on_request(t(6)));
    m.on_release(t(7), d);
    assert_eq!(actions(&mut m), []);
    m.on_cancel(t(8), b); // an admitted check's caller gave up: its slot frees
    assert_eq!(actions(&mut m), [CheckSlotsAction::Admit(e)]);
    assert_eq!(m.stats().queued, 0);
}

#[test]
fn a_full_queue_refuses_at_once_and_keeps_nothing() {
    let mut m = CheckSlots::new(cfg(1, 2, 10_000));
    admitted(m.on_request(t(0)));
    queued(m.on_request(t(0)));
    queued(m.on_request(t(0)));
    let r = m.on_request(t(0));
    assert_eq!(r, Admission::Refused(SlotRefusal::QueueFull { queued: 2 }));
    if let Admission::Refused(why) = r {
        assert_eq!(
            why.to_string(),
            "every check slot is in use and the queue is full (2 waiting)"
        );
    }
    let s = m.stats();
    assert_eq!(
        (
            s.in_flight,
            s.queued,
            s.admitted_total,
            s.queued_total,
            s.refused_total
        ),
        (1, 2, 1, 2, 1)
    );
    // Queued checks that reached their timeout make room for a new request
    // (expired first, by the same input).
    let late = queued(m.on_request(t(10_000)));
    assert_eq!(actions(&mut m).len(), 2);
    assert_eq!(m.stats().queued, 1);
    assert!(matches!(m.slot(late), Some(SlotState::Queued { .. })));
}

#[test]
fn zero_config_is_clamped_not_panicking() {
    let mut m = CheckSlots::new(cfg(0, 0, 0));
    assert_eq!(m.config().max_in_flight, 1);
    assert_eq!(m.config().queue_timeout, Duration::from_millis(1));
    let a = admitted(m.on_request(t(0)));
    assert_eq!(
        m.on_request(t(0)),
        Admission::Refused(SlotRefusal::QueueFull { queued: 0 })
    );
    m.on_release(t(0), a);
    admitted(m.on_request(Timestamp::MAX));
    let ops = [
        Op::Request,
        Op::Request,
        Op::Advance(u32::MAX),
        Op::Wake,
        Op::Release(Tok::MadeUp(u64::MAX)),
    ];
    run(cfg(0, 0, 0), &ops).expect("a clamped config keeps every invariant");
    let mut m = CheckSlots::new(cfg(1, 4, u64::MAX));
    admitted(m.on_request(Timestamp::MAX));
    let b = queued(m.on_request(Timestamp::MAX));
    assert_eq!(m.poll_timeout().map(|d| d.at), Some(Timestamp::MAX));
    m.handle_timeout(Timestamp::MAX);
    assert_eq!(actions(&mut m), [CheckSlotsAction::Expire(b)]);
}

#[test]
fn a_lazy_driver_cannot_grow_the_machine() {
    // Expiries left undrained by an earlier input count against the queue
    // bound.
    let mut m = CheckSlots::new(cfg(1, 2, 10));
    admitted(m.on_request(t(0)));
    queued(m.on_request(t(0)));
    queued(m.on_request(t(0)));
    m.handle_timeout(t(10));
    assert_eq!(m.stats().queued, 0);
    assert_eq!(
        m.on_request(t(10)),
        Admission::Refused(SlotRefusal::QueueFull { queued: 0 })
    );
    assert_eq!(actions(&mut m).len(), 2);
    queued(m.on_request(t(10)));
    // An undrained Admit is withdrawn when its check is let go first, so a
    // driver that never drains leaves at most one per slot.
    let mut m = CheckSlots::new(cfg(1, 1, 10_000));
    let mut current = admitted(m.on_request(t(0)));
    for i in 0..1_000 {
        let next = queued(m.on_request(t(i)));
        m.on_release(t(i), current);
        current = next;
    }
    assert_eq!(actions(&mut m), [CheckSlotsAction::Admit(current)]);
    let s = m.stats();
    assert_eq!((s.in_flight, s.queued, s.admitted_total), (1, 0, 1_001));
}

#[test]
fn harness_accepts_known_sequences() {
    let ops = [
        Op::Request,
        Op::Request,
        Op::Request,
        Op::Release(Tok::Live(0)),
        Op::Release(Tok::Old(0)),
        Op::Cancel(Tok::Live(1)),
        Op::AutoDrain(false),
        Op::Request,
        Op::Request,
        Op::Advance(20_000),
        Op::Timeout,
        Op::Request,
        Op::Release(Tok::Live(0)),
        Op::Cancel(Tok::Live(0)),
        Op::Drain,
        Op::AutoDrain(true),
        Op::Wake,
        Op::Timeout,
    ];
    for c in [
        cfg(1, 0, 1),
        cfg(1, 1, 1),
        cfg(2, 2, 10_000),
        CheckSlotsConfig::default(),
    ] {
        let h = run(c, &ops).unwrap_or_else(|v| panic!("{v}"));
        assert!(h.machine.stats().admitted_total >= 1);
    }
}

/// Slot ids come from a counter that starts at 1 and never repeats; a
/// refused request takes none.
#[test]
fn slot_ids_count_up_from_one() {
    use tether_core::check_slots::{Admission, CheckSlots, CheckSlotsConfig};
    use tether_core::Timestamp;
    let mut m = CheckSlots::new(
        CheckSlotsConfig::default()
            .with_max_in_flight(1)
            .with_max_queued(1),
    );
    let id = |a: Admission| match a {
        Admission::Admitted(id) | Admission::Queued(id) => Some(id.get()),
        _ => None,
    };
    assert_eq!(id(m.on_request(Timestamp::ZERO)), Some(1));
    assert_eq!(id(m.on_request(Timestamp::ZERO)), Some(2));
    assert_eq!(id(m.on_request(Timestamp::ZERO)), None, "refused");
}
