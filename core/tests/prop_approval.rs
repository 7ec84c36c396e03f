//! Property tests and focused guarantees for the approval waiters.

use core::time::Duration;

use proptest::prelude::*;
use tether_core::approval::{
    ApprovalAction, ApprovalConfig, ApprovalOutcome, ApprovalTimer, ApprovalWaitError,
    ApprovalWaiterId, ApprovalWaiters, ReviewerDecision, ReviewerVerdict,
};
use tether_core::testkit::approval::{run, run_and_clean_up, small_config, Op};
use tether_core::{Machine, Timestamp};

fn decision() -> impl Strategy<Value = ReviewerDecision> {
    prop_oneof![
        3 => Just(ReviewerDecision::Approved),
        3 => Just(ReviewerDecision::Denied),
        1 => Just(ReviewerDecision::Pending),
        1 => Just(ReviewerDecision::Unspecified),
        1 => any::<i32>().prop_map(ReviewerDecision::Unknown),
        1 => (-2i32..6).prop_map(ReviewerDecision::from_wire),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u16..2_000).prop_map(Op::Advance),
        1 => (0u16..2_000).prop_map(Op::Lag),
        1 => Just(Op::Wake),
        5 => (any::<u8>(), prop_oneof![Just(0u16), 0u16..5_000])
            .prop_map(|(id, deadline_ms)| Op::Wait { id, deadline_ms }),
        4 => (any::<u8>(), decision()).prop_map(|(id, decision)| Op::Verdict { id, decision }),
        2 => any::<u8>().prop_map(|slot| Op::Cancel { slot }),
    ]
}

fn config() -> impl Strategy<Value = ApprovalConfig> {
    (
        0usize..8,
        0u64..5_000,
        0usize..4,
        prop_oneof![0usize..4, Just(256usize)],
    )
        .prop_map(|(waiters, keep, kept, len)| {
            ApprovalConfig::default()
                .with_max_waiters(waiters)
                .with_keep_verdict_for(Duration::from_millis(keep))
                .with_max_kept_verdicts(kept)
                .with_max_request_id_len(len)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Every APPROVAL_* invariant, APPROVAL_MATCHES_MODEL and the contract
    /// invariants after every step, then nothing left after cleanup.
    #[test]
    fn invariants_hold_with_small_bounds(ops in prop::collection::vec(op(), 0..300)) {
        if let Err(v) = run_and_clean_up(small_config(), &ops) {
            prop_assert!(false, "{v}");
        }
    }

    /// The same under arbitrary configs (zero bounds, keeping disabled).
    #[test]
    fn invariants_hold_for_any_config(cfg in config(), ops in prop::collection::vec(op(), 0..300)) {
        if let Err(v) = run_and_clean_up(cfg, &ops) {
            prop_assert!(false, "{v}");
        }
    }

    /// No randomness: the same inputs give the same outputs.
    #[test]
    fn same_inputs_same_outputs(ops in prop::collection::vec(op(), 0..200)) {
        let a = run(small_config(), &ops).map(|h| h.transcript);
        let b = run(small_config(), &ops).map(|h| h.transcript);
        prop_assert_eq!(a, b);
    }
}

const T0: Timestamp = Timestamp::ZERO;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn drain(w: &mut ApprovalWaiters) -> Vec<(ApprovalWaiterId, ApprovalOutcome)> {
    std::iter::from_fn(|| w.poll_action())
        .map(
            |ApprovalAction::Resolved {
                 waiter, outcome, ..
             }| (waiter, outcome),
        )
        .collect()
}

/// APPROVAL_VERDICT_REACHES_EVERY_WAITER and APPROVAL_RESOLVED_ONCE.
#[test]
fn a_verdict_reaches_every_waiter_of_its_id_once() {
    let mut w = ApprovalWaiters::new(ApprovalConfig::default());
    let a = w.wait(T0, "r1", T0 + secs(10)).unwrap();
    let b = w.wait(T0, "r1", T0 + secs(20)).unwrap();
    let other = w.wait(T0, "r2", T0 + secs(10)).unwrap();
    w.on_verdict(T0 + secs(1), "r1", ReviewerDecision::Denied);
    assert_eq!(
        drain(&mut w),
        [(a, ApprovalOutcome::Denied), (b, ApprovalOutcome::Denied)]
    );
    w.on_verdict(T0 + secs(2), "r1", ReviewerDecision::Denied);
    assert!(drain(&mut w).is_empty());
    assert!(w.is_waiting(other) && !w.is_waiting(a));
    w.handle_timeout(T0 + secs(20));
    assert_eq!(drain(&mut w), [(other, ApprovalOutcome::TimedOut)]);
    let s = w.stats();
    assert_eq!((s.denied, s.timed_out, s.waiting), (2, 1, 0));
}

/// APPROVAL_TIMEOUT_IS_PENDING: at the deadline, not before, never Denied.
#[test]
fn a_deadline_passing_is_pending_never_denied() {
    let mut w = ApprovalWaiters::new(ApprovalConfig::default());
    let a = w.wait(T0, "r", T0 + secs(30)).unwrap();
    assert_eq!(
        w.poll_timeout().map(|d| (d.at, d.reason)),
        Some((T0 + secs(30), ApprovalTimer::WaiterDeadline))
    );
    w.handle_timeout(T0 + secs(30) - Duration::from_nanos(1));
    assert!(drain(&mut w).is_empty());
    w.handle_timeout(T0 + secs(30));
    assert_eq!(drain(&mut w), [(a, ApprovalOutcome::TimedOut)]);
    w.handle_timeout(T0 + secs(30));
    assert!(drain(&mut w).is_empty());
    assert_eq!(w.poll_timeout(), None);
    // A deadline already past resolves at once, as pending too.
    let b = w.wait(T0 + secs(40), "r", T0 + secs(39)).unwrap();
    assert_eq!(drain(&mut w), [(b, ApprovalOutcome::TimedOut)]);
    assert_eq!(w.stats().denied, 0);
}

/// APPROVAL_EARLY_VERDICT_KEPT: kept for `keep_verdict_for`, then forgotten.
#[test]
fn an_early_verdict_is_kept_for_late_waiters() {
    let cfg = ApprovalConfig::default();
    let keep = cfg.keep_verdict_for;
    let mut w = ApprovalWaiters::new(cfg);
    w.on_verdict(T0, "r", ReviewerDecision::from_wire(1));
    assert_eq!(w.kept_verdict(T0, "r"), Some(ReviewerVerdict::Approved));
    assert_eq!(
        w.poll_timeout().map(|d| (d.at, d.reason)),
        Some((T0 + keep, ApprovalTimer::VerdictExpiry))
    );
    let a = w
        .wait(T0 + keep - secs(1), "r", T0 + keep + secs(10))
        .unwrap();
    assert_eq!(drain(&mut w), [(a, ApprovalOutcome::Approved)]);
    // Not kept at the expiry instant, even before the purge timer runs.
    let b = w.wait(T0 + keep, "r", T0 + keep + secs(10)).unwrap();
    assert!(w.is_waiting(b));
    w.handle_timeout(T0 + keep);
    assert_eq!(w.stats().kept_verdicts, 0);
    assert!(drain(&mut w).is_empty());
}

/// APPROVAL_FIRST_VERDICT_WINS, while kept; a new one is accepted after.
#[test]
fn the_first_verdict_wins_while_kept() {
    let cfg = ApprovalConfig::default();
    let keep = cfg.keep_verdict_for;
    let mut w = ApprovalWaiters::new(cfg);
    w.on_verdict(T0, "r", ReviewerDecision::Approved);
    w.on_verdict(T0, "r", ReviewerDecision::Denied);
    let a = w.wait(T0, "r", T0 + secs(1)).unwrap();
    assert_eq!(drain(&mut w), [(a, ApprovalOutcome::Approved)]);
    assert_eq!(w.stats().duplicate_verdicts, 1);
    w.handle_timeout(T0 + keep);
    w.on_verdict(T0 + keep, "r", ReviewerDecision::Denied);
    assert_eq!(
        w.kept_verdict(T0 + keep, "r"),
        Some(ReviewerVerdict::Denied)
    );
}

/// APPROVAL_NON_VERDICTS_IGNORED, and the wire mapping.
#[test]
fn decisions_that_are_not_verdicts_are_ignored_and_counted() {
    let mut w = ApprovalWaiters::new(ApprovalConfig::default());
    let a = w.wait(T0, "r", T0 + secs(5)).unwrap();
    for d in [
        ReviewerDecision::Unspecified,
        ReviewerDecision::Pending,
        ReviewerDecision::Unknown(1),
        ReviewerDecision::from_wire(-1),
        ReviewerDecision::from_wire(4),
        ReviewerDecision::from_wire(i32::MAX),
    ] {
        w.on_verdict(T0, "r", d);
    }
    assert!(drain(&mut w).is_empty());
    assert!(w.is_waiting(a));
    assert_eq!(w.stats().ignored_non_verdicts, 6);
    assert_eq!(w.stats().kept_verdicts, 0);
    for v in -1..5 {
        assert_eq!(ReviewerDecision::from_wire(v).to_wire(), v);
    }
    assert_eq!(ReviewerDecision::from_wire(2), ReviewerDecision::Denied);
    assert_eq!(ReviewerDecision::from_wire(3), ReviewerDecision::Pending);
}

/// APPROVAL_CANCEL_LEAVES_NOTHING, including an undelivered resolution.
#[test]
fn a_cancelled_waiter_leaves_nothing_behind() {
    let mut w = ApprovalWaiters::new(ApprovalConfig::default());
    let a = w.wait(T0, "r", T0 + secs(5)).unwrap();
    assert!(w.cancel(a));
    assert!(!w.cancel(a));
    assert!(!w.cancel(ApprovalWaiterId::clone(&a)));
    assert_eq!(w.poll_timeout(), None);
    assert_eq!((w.waiting(), w.waited_requests()), (0, 0));
    // Resolved but not yet drained: cancelling removes the resolution too.
    let b = w.wait(T0, "r", T0 + secs(5)).unwrap();
    let c = w.wait(T0, "r", T0 + secs(5)).unwrap();
    w.on_verdict(T0, "r", ReviewerDecision::Approved);
    assert!(w.cancel(b));
    assert_eq!(drain(&mut w), [(c, ApprovalOutcome::Approved)]);
    assert!(!w.cancel(c), "delivered: nothing to cancel");
    assert_eq!(w.stats().cancelled, 2);
    // IDs are never reused.
    let d = w.wait(T0, "q", T0 + secs(5)).unwrap();
    assert!(d > c && c > b && b > a);
}

/// APPROVAL_BOUNDED: waiters (undelivered resolutions count), kept verdicts,
/// request ids.
#[test]
fn every_collection_is_bounded() {
    let cfg = ApprovalConfig::default()
        .with_max_waiters(2)
        .with_max_kept_verdicts(2)
        .with_max_request_id_len(4);
    let mut w = ApprovalWaiters::new(cfg);
    w.wait(T0, "a", T0 + secs(5)).unwrap();
    w.wait(T0, "b", T0 + secs(5)).unwrap();
    assert_eq!(w.wait(T0, "c", T0 + secs(5)), Err(ApprovalWaitError::Full));
    w.on_verdict(T0, "a", ReviewerDecision::Approved);
    // Resolved but undelivered still holds its slot, and stats say so.
    assert_eq!(w.wait(T0, "c", T0 + secs(5)), Err(ApprovalWaitError::Full));
    assert_eq!((w.stats().waiting, w.stats().undelivered), (1, 1));
    assert_eq!(drain(&mut w).len(), 1);
    assert_eq!(w.stats().undelivered, 0);
    assert!(w.wait(T0, "c", T0 + secs(5)).is_ok());
    assert_eq!(
        w.wait(T0, "", T0 + secs(5)),
        Err(ApprovalWaitError::EmptyRequestId)
    );
    assert_eq!(
        w.wait(T0, "toolong", T0 + secs(5)),
        Err(ApprovalWaitError::RequestIdTooLong)
    );
    w.on_verdict(T0 + secs(1), "x", ReviewerDecision::Denied);
    w.on_verdict(T0 + secs(2), "y", ReviewerDecision::Denied);
    assert_eq!(w.stats().kept_verdicts, 2);
    assert_eq!(w.stats().dropped_verdicts, 1);
    assert_eq!(w.kept_verdict(T0 + secs(2), "a"), None, "oldest dropped");
    w.on_verdict(T0, &"z".repeat(100_000), ReviewerDecision::Approved);
    assert_eq!(w.stats().ignored_bad_ids, 1);
    assert_eq!(w.stats().refused_waits, 4);
}

/// Extremes of time never panic.
#[test]
fn extreme_instants_are_safe() {
    let mut w = ApprovalWaiters::new(ApprovalConfig::default());
    let a = w.wait(T0, "r", Timestamp::MAX).unwrap();
    w.on_verdict(Timestamp::MAX, "q", ReviewerDecision::Approved);
    assert_eq!(
        w.stats().kept_verdicts,
        0,
        "kept until past the end of time"
    );
    w.handle_timeout(Timestamp::MAX);
    assert_eq!(drain(&mut w), [(a, ApprovalOutcome::TimedOut)]);
    assert_eq!(w.poll_timeout(), None);
}

/// A few hand-written sequences the harness must accept.
#[test]
fn harness_accepts_known_sequences() {
    use Op::*;
    let seqs: &[&[Op]] = &[
        &[
            Wait {
                id: 0,
                deadline_ms: 1_000,
            },
            Wait {
                id: 0,
                deadline_ms: 500,
            },
            Lag(600),
            Verdict {
                id: 0,
                decision: ReviewerDecision::Denied,
            },
            Wait {
                id: 0,
                deadline_ms: 0,
            },
            Cancel { slot: 1 },
            Wake,
            Wake,
        ],
        &[
            Verdict {
                id: 1,
                decision: ReviewerDecision::Pending,
            },
            Wait {
                id: 1,
                deadline_ms: 100,
            },
            Wait {
                id: 4,
                deadline_ms: 100,
            },
            Wait {
                id: 5,
                deadline_ms: 100,
            },
            Advance(100),
            Verdict {
                id: 1,
                decision: ReviewerDecision::Approved,
            },
            Verdict {
                id: 1,
                decision: ReviewerDecision::Denied,
            },
            Wait {
                id: 1,
                deadline_ms: 100,
            },
        ],
    ];
    for ops in seqs {
        if let Err(v) = run_and_clean_up(small_config(), ops) {
            panic!("{v}");
        }
    }
}

/// Long runs that create and remove request entries thousands of times,
/// give deadlines out of order, and resolve and cancel many waiters (and
/// replace verdicts) behind a live first deadline: the model still agrees
/// after every step, and nothing is left at the end. (Written for the packed
/// layout's slot reuse and lazy-queue compaction, which are gone; kept
/// unchanged as a long run of the plain maps.)
#[test]
fn slot_reuse_out_of_order_deadlines_and_compaction_match_the_model() {
    let mut ops = Vec::new();
    // A waiter whose deadline stays first, so stale entries pile up behind
    // it instead of being dropped from the front.
    ops.push(Op::Wait {
        id: 3,
        deadline_ms: 60_000,
    });
    for i in 0..2_000u16 {
        // Later than the first waiter's deadline, going down and up, so
        // some land out of order.
        let deadline_ms = 61_000 + (i % 7) * 300;
        ops.push(Op::Wait { id: 0, deadline_ms });
        ops.push(Op::Wait {
            id: 1,
            deadline_ms: deadline_ms + 1_000,
        });
        match i % 4 {
            0 => ops.push(Op::Verdict {
                id: 0,
                decision: ReviewerDecision::Approved,
            }),
            1 => ops.push(Op::Cancel { slot: u8::MAX }),
            2 => ops.push(Op::Verdict {
                id: 1,
                decision: ReviewerDecision::Denied,
            }),
            _ => ops.push(Op::Advance(2)),
        }
        if i % 97 == 0 {
            // Waiters nobody answers: they outlive compactions, then time out.
            // Alternately after every other deadline (queued in order) and
            // before the last one (out of order).
            ops.push(Op::Wait {
                id: 2,
                deadline_ms: if (i / 97) % 2 == 0 { 65_000 } else { 61_500 },
            });
        }
    }
    // Let every deadline pass, one wake-up at a time: a live entry lost in a
    // compaction would show as a missing time-out.
    ops.extend([Op::Wake; 200]);
    // A kept verdict that expires first and is never purged (time moves by
    // `Lag` only), then a verdict replaced after expiring, again and again.
    ops.push(Op::Verdict {
        id: 2,
        decision: ReviewerDecision::Approved,
    });
    for _ in 0..300 {
        ops.push(Op::Lag(800));
        ops.push(Op::Verdict {
            id: 0,
            decision: ReviewerDecision::Denied,
        });
    }
    for config in [
        // No verdict kept: every verdict leaves stale deadline entries.
        small_config()
            .with_max_waiters(64)
            .with_keep_verdict_for(Duration::ZERO),
        // Verdicts kept briefly, replaced and dropped at the bound.
        small_config()
            .with_max_waiters(64)
            .with_keep_verdict_for(Duration::from_millis(700))
            .with_max_kept_verdicts(4),
    ] {
        if let Err(v) = run_and_clean_up(config, &ops) {
            panic!("{v}");
        }
    }
}
