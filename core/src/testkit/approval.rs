//! Input sequences for the approval waiters and their invariant checker.
//!
//! The [`Harness`] drives an [`ApprovalWaiters`] next to a small reference
//! model and after every step checks the invariants named in
//! [`crate::approval`], the contract invariants, and
//! `APPROVAL_MATCHES_MODEL`: every answer, every action, every counter and
//! the reported deadline equal the model's.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use super::contract::{drain, timeout_checked};
use super::Violation;
use crate::approval::{
    ApprovalAction, ApprovalConfig, ApprovalOutcome, ApprovalStats, ApprovalWaitError,
    ApprovalWaiterId, ApprovalWaiters, ReviewerDecision, ReviewerVerdict,
};
use crate::ensure_invariant;
use crate::machine::Machine;
use crate::time::Timestamp;

/// Request ids of the id space (small, so collisions happen); selectors 4
/// and 5 give the empty id and one longer than the configured maximum.
pub const REQUESTS: [&str; 4] = ["r0", "r1", "r2", "r3"];

/// One input to the approval waiters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, arbitrary::Arbitrary)]
pub enum Op {
    /// Advance time by this many milliseconds, then fire due timers.
    Advance(u16),
    /// Advance time without firing timers (a late driver).
    Lag(u16),
    /// Jump to the next reported deadline and fire it.
    Wake,
    /// Wait on request `id % 6` until now plus `deadline_ms` (0: already due).
    Wait {
        /// Request selector.
        id: u8,
        /// Deadline, relative to now.
        deadline_ms: u16,
    },
    /// An `ApprovalResolved` event for request `id % 6`.
    Verdict {
        /// Request selector.
        id: u8,
        /// The reviewer's decision, any wire value.
        decision: ReviewerDecision,
    },
    /// Cancel the `slot`-th issued waiter (modulo the number issued, plus
    /// one slot for an id never issued).
    Cancel {
        /// Waiter selector.
        slot: u8,
    },
}

/// Everything the machine answered, in order: two runs of the same inputs
/// must produce equal transcripts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    /// A drained action.
    Action(ApprovalAction),
    /// A wait's answer.
    Wait(Result<ApprovalWaiterId, ApprovalWaitError>),
    /// A cancel's answer.
    Cancel(bool),
    /// The deadline after a step.
    Deadline(Option<Timestamp>),
}

#[derive(Clone, Debug)]
struct ModelWaiter {
    request: String,
    deadline: Timestamp,
}

/// The verdict a decision carries, by the wire's rule (only `APPROVED` and
/// `DENIED` are verdicts), computed here rather than by the machine's
/// [`ReviewerDecision::verdict`].
fn model_verdict(decision: ReviewerDecision) -> Option<ReviewerVerdict> {
    match decision {
        ReviewerDecision::Approved => Some(ReviewerVerdict::Approved),
        ReviewerDecision::Denied => Some(ReviewerVerdict::Denied),
        ReviewerDecision::Unspecified
        | ReviewerDecision::Pending
        | ReviewerDecision::Unknown(_) => None,
    }
}

/// What a waiter learns from a verdict, computed here rather than by the
/// machine's `From` conversion.
fn model_outcome(verdict: ReviewerVerdict) -> ApprovalOutcome {
    match verdict {
        ReviewerVerdict::Approved => ApprovalOutcome::Approved,
        ReviewerVerdict::Denied => ApprovalOutcome::Denied,
    }
}

/// The reference model.
#[derive(Clone, Debug, Default)]
struct Model {
    waiters: BTreeMap<ApprovalWaiterId, ModelWaiter>,
    /// Request id → (verdict, expiry, order kept); expired ones stay until
    /// purged.
    kept: BTreeMap<String, (ReviewerVerdict, Timestamp, u64)>,
    /// Verdicts kept so far (the order of the next one).
    kept_count: u64,
    /// Ids that ever received an accepted `DENIED` verdict.
    denied: BTreeSet<String>,
    resolved: BTreeSet<ApprovalWaiterId>,
    cancelled: BTreeSet<ApprovalWaiterId>,
    counts: ApprovalStats,
}

impl Model {
    fn kept_at(&self, id: &str, now: Timestamp) -> Option<ReviewerVerdict> {
        match self.kept.get(id) {
            Some((v, expires, _)) if now < *expires => Some(*v),
            _ => None,
        }
    }
}

/// Drives an [`ApprovalWaiters`] with [`Op`]s and checks every invariant
/// after each.
#[derive(Debug)]
pub struct Harness {
    /// The machine under test.
    pub machine: ApprovalWaiters,
    /// Simulated now.
    pub now: Timestamp,
    /// Everything the machine answered.
    pub transcript: Vec<Observed>,
    config: ApprovalConfig,
    model: Model,
    /// Every waiter id issued, in order.
    issued: Vec<ApprovalWaiterId>,
    /// The deadline every issued waiter was given.
    deadlines: BTreeMap<ApprovalWaiterId, Timestamp>,
    /// The request id every issued waiter waited for (resolutions do not
    /// repeat it).
    requests: BTreeMap<ApprovalWaiterId, String>,
    /// The request ids selectors map to.
    ids: Vec<String>,
}

impl Harness {
    /// A fresh machine with `config`, at time zero.
    pub fn new(config: ApprovalConfig) -> Self {
        let mut ids: Vec<String> = REQUESTS.iter().map(|s| String::from(*s)).collect();
        ids.push(String::new());
        ids.push("x".repeat(config.max_request_id_len.saturating_add(1).min(4_096)));
        Harness {
            machine: ApprovalWaiters::new(config.clone()),
            now: Timestamp::ZERO,
            transcript: Vec::new(),
            config,
            model: Model::default(),
            issued: Vec::new(),
            deadlines: BTreeMap::new(),
            requests: BTreeMap::new(),
            ids,
        }
    }

    fn id(&self, sel: u8) -> String {
        let i = usize::from(sel) % self.ids.len();
        self.ids.get(i).cloned().unwrap_or_default()
    }

    /// Apply one input and check every invariant.
    pub fn apply(&mut self, op: Op) -> Result<(), Violation> {
        let mut expected = Vec::new();
        let (actions, name) = match op {
            Op::Advance(ms) => {
                self.now = self.now + Duration::from_millis(u64::from(ms));
                (self.fire(&mut expected)?, "APPROVAL_TIMEOUT_IS_PENDING")
            }
            Op::Lag(ms) => {
                self.now = self.now + Duration::from_millis(u64::from(ms));
                (drain(&mut self.machine)?, "APPROVAL_MATCHES_MODEL")
            }
            Op::Wake => {
                if let Some(d) = self.machine.poll_timeout() {
                    self.now = self.now.max(d.at);
                }
                (self.fire(&mut expected)?, "APPROVAL_TIMEOUT_IS_PENDING")
            }
            Op::Wait { id, deadline_ms } => {
                let request = self.id(id);
                let deadline = self.now + Duration::from_millis(u64::from(deadline_ms));
                let name = self.wait(&request, deadline, &mut expected)?;
                (drain(&mut self.machine)?, name)
            }
            Op::Verdict { id, decision } => {
                let request = self.id(id);
                self.verdict(&request, decision, &mut expected);
                self.machine.on_verdict(self.now, &request, decision);
                let name = if model_verdict(decision).is_some() {
                    "APPROVAL_VERDICT_REACHES_EVERY_WAITER"
                } else {
                    "APPROVAL_NON_VERDICTS_IGNORED"
                };
                (drain(&mut self.machine)?, name)
            }
            Op::Cancel { slot } => {
                self.cancel(slot)?;
                (drain(&mut self.machine)?, "APPROVAL_CANCEL_LEAVES_NOTHING")
            }
        };
        self.check_actions(&actions, &expected, name)?;
        self.transcript
            .extend(actions.into_iter().map(Observed::Action));
        self.check_state()
    }

    fn fire(
        &mut self,
        expected: &mut Vec<ApprovalAction>,
    ) -> Result<Vec<ApprovalAction>, Violation> {
        let now = self.now;
        let mut due: Vec<(Timestamp, ApprovalWaiterId)> = self
            .model
            .waiters
            .iter()
            .filter(|(_, w)| w.deadline <= now)
            .map(|(id, w)| (w.deadline, *id))
            .collect();
        due.sort();
        for (_, id) in due {
            if self.model.waiters.remove(&id).is_some() {
                expected.push(ApprovalAction::Resolved {
                    waiter: id,
                    outcome: ApprovalOutcome::TimedOut,
                });
            }
        }
        self.model.kept.retain(|_, (_, expires, _)| *expires > now);
        timeout_checked(&mut self.machine, now)
    }

    fn wait(
        &mut self,
        request: &str,
        deadline: Timestamp,
        expected: &mut Vec<ApprovalAction>,
    ) -> Result<&'static str, Violation> {
        let cfg = &self.config;
        let want = if request.is_empty() {
            Err(ApprovalWaitError::EmptyRequestId)
        } else if request.len() > cfg.max_request_id_len {
            Err(ApprovalWaitError::RequestIdTooLong)
        } else if self.model.waiters.len() >= cfg.max_waiters {
            Err(ApprovalWaitError::Full)
        } else {
            Ok(())
        };
        let got = self.machine.wait(self.now, request, deadline);
        self.transcript.push(Observed::Wait(got));
        let id = match (want, got) {
            (Err(w), Err(g)) => {
                ensure_invariant!(
                    w == g,
                    "APPROVAL_MATCHES_MODEL",
                    "wait({request:?}) refused with {g:?}, expected {w:?}"
                );
                self.model.counts.refused_waits += 1;
                return Ok("APPROVAL_BOUNDED");
            }
            (Ok(()), Ok(id)) => id,
            (w, g) => {
                return Err(Violation::new(
                    if w == Err(ApprovalWaitError::Full) {
                        "APPROVAL_BOUNDED"
                    } else {
                        "APPROVAL_MATCHES_MODEL"
                    },
                    format!("wait({request:?}) = {g:?}, expected {w:?}"),
                ))
            }
        };
        ensure_invariant!(
            self.issued.last().is_none_or(|last| *last < id),
            "APPROVAL_IDS_NEVER_REUSED",
            "issued {id:?} after {:?}",
            self.issued.last()
        );
        self.issued.push(id);
        self.deadlines.insert(id, deadline);
        self.requests.insert(id, String::from(request));
        if let Some(v) = self.model.kept_at(request, self.now) {
            expected.push(ApprovalAction::Resolved {
                waiter: id,
                outcome: model_outcome(v),
            });
            return Ok("APPROVAL_EARLY_VERDICT_KEPT");
        }
        if deadline <= self.now {
            expected.push(ApprovalAction::Resolved {
                waiter: id,
                outcome: ApprovalOutcome::TimedOut,
            });
            return Ok("APPROVAL_TIMEOUT_IS_PENDING");
        }
        self.model.waiters.insert(
            id,
            ModelWaiter {
                request: String::from(request),
                deadline,
            },
        );
        Ok("APPROVAL_MATCHES_MODEL")
    }

    fn verdict(
        &mut self,
        request: &str,
        decision: ReviewerDecision,
        expected: &mut Vec<ApprovalAction>,
    ) {
        let cfg = &self.config;
        let m = &mut self.model;
        let Some(verdict) = model_verdict(decision) else {
            m.counts.ignored_non_verdicts += 1;
            return;
        };
        if request.is_empty() || request.len() > cfg.max_request_id_len {
            m.counts.ignored_bad_ids += 1;
            return;
        }
        if m.kept_at(request, self.now).is_some() {
            m.counts.duplicate_verdicts += 1;
            return;
        }
        if verdict == ReviewerVerdict::Denied {
            m.denied.insert(String::from(request));
        }
        let ids: Vec<ApprovalWaiterId> = m
            .waiters
            .iter()
            .filter(|(_, w)| w.request == request)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            m.waiters.remove(&id);
            expected.push(ApprovalAction::Resolved {
                waiter: id,
                outcome: model_outcome(verdict),
            });
        }
        m.kept.remove(request);
        let expires = self.now + cfg.keep_verdict_for;
        if cfg.max_kept_verdicts == 0 || expires <= self.now {
            return;
        }
        while m.kept.len() >= cfg.max_kept_verdicts {
            // The soonest expiring; of those expiring together, the one
            // kept first.
            let oldest = m
                .kept
                .iter()
                .map(|(id, (_, at, order))| (*at, *order, id.clone()))
                .min();
            match oldest {
                Some((_, _, id)) => {
                    m.kept.remove(&id);
                    m.counts.dropped_verdicts += 1;
                }
                None => break,
            }
        }
        m.kept
            .insert(String::from(request), (verdict, expires, m.kept_count));
        m.kept_count += 1;
    }

    fn cancel(&mut self, slot: u8) -> Result<(), Violation> {
        let n = self.issued.len();
        let i = usize::from(slot) % (n + 1);
        let waiter = self
            .issued
            .get(i)
            .copied()
            .unwrap_or(ApprovalWaiterId::new(u64::MAX - 1));
        let want = self.model.waiters.remove(&waiter).is_some();
        let got = self.machine.cancel(waiter);
        self.transcript.push(Observed::Cancel(got));
        ensure_invariant!(
            got == want,
            "APPROVAL_CANCEL_LEAVES_NOTHING",
            "cancel({waiter:?}) = {got}, expected {want}"
        );
        if want {
            self.model.cancelled.insert(waiter);
            self.model.counts.cancelled += 1;
        }
        ensure_invariant!(
            !self.machine.is_waiting(waiter),
            "APPROVAL_CANCEL_LEAVES_NOTHING",
            "{waiter:?} still waiting after cancel"
        );
        Ok(())
    }

    fn check_actions(
        &mut self,
        got: &[ApprovalAction],
        expected: &[ApprovalAction],
        name: &'static str,
    ) -> Result<(), Violation> {
        let now = self.now;
        for a in got {
            let ApprovalAction::Resolved { waiter, outcome } = a;
            let request_id = self.requests.get(waiter).map_or("", String::as_str);
            ensure_invariant!(
                !self.model.cancelled.contains(waiter),
                "APPROVAL_CANCEL_LEAVES_NOTHING",
                "cancelled {waiter:?} resolved {outcome:?}"
            );
            ensure_invariant!(
                self.model.resolved.insert(*waiter),
                "APPROVAL_RESOLVED_ONCE",
                "{waiter:?} resolved twice (now {outcome:?})"
            );
            match outcome {
                ApprovalOutcome::TimedOut => {
                    let deadline = self.deadlines.get(waiter).copied();
                    ensure_invariant!(
                        deadline.is_some_and(|d| d <= now),
                        "APPROVAL_TIMEOUT_IS_PENDING",
                        "{waiter:?} timed out at {now:?}, deadline {deadline:?}"
                    );
                }
                ApprovalOutcome::Denied => {
                    ensure_invariant!(
                        self.model.denied.contains(request_id),
                        "APPROVAL_TIMEOUT_IS_PENDING",
                        "{waiter:?} denied with no DENIED verdict for {request_id:?}"
                    );
                }
                ApprovalOutcome::Approved => {}
            }
            if let ApprovalOutcome::Approved | ApprovalOutcome::Denied = outcome {
                let first = self
                    .model
                    .kept
                    .get(request_id)
                    .map(|(v, _, _)| model_outcome(*v));
                ensure_invariant!(
                    first.is_none_or(|f| f == *outcome),
                    "APPROVAL_FIRST_VERDICT_WINS",
                    "{waiter:?} of {request_id:?} got {outcome:?}, first verdict {first:?}"
                );
            }
            let counter = match outcome {
                ApprovalOutcome::Approved => &mut self.model.counts.approved,
                ApprovalOutcome::Denied => &mut self.model.counts.denied,
                ApprovalOutcome::TimedOut => &mut self.model.counts.timed_out,
            };
            *counter += 1;
        }
        ensure_invariant!(
            got == expected,
            name,
            "actions {got:?}, expected {expected:?}"
        );
        Ok(())
    }

    fn check_state(&mut self) -> Result<(), Violation> {
        let m = &self.model;
        let cfg = &self.config;
        let stats = self.machine.stats();
        ensure_invariant!(
            stats.waiting.saturating_add(stats.undelivered) <= cfg.max_waiters
                && stats.kept_verdicts <= cfg.max_kept_verdicts
                && self.machine.waited_requests() <= stats.waiting,
            "APPROVAL_BOUNDED",
            "{stats:?} with {cfg:?}"
        );
        ensure_invariant!(
            self.machine.waiting() == m.waiters.len()
                && m.waiters.keys().all(|w| self.machine.is_waiting(*w)),
            "APPROVAL_MATCHES_MODEL",
            "waiting {}, model {:?}",
            self.machine.waiting(),
            m.waiters.keys().collect::<Vec<_>>()
        );
        for w in &self.issued {
            if !m.waiters.contains_key(w) {
                ensure_invariant!(
                    !self.machine.is_waiting(*w),
                    if m.cancelled.contains(w) {
                        "APPROVAL_CANCEL_LEAVES_NOTHING"
                    } else {
                        "APPROVAL_RESOLVED_ONCE"
                    },
                    "{w:?} is finished but still waiting"
                );
            }
        }
        let requests: BTreeSet<&str> = m.waiters.values().map(|w| w.request.as_str()).collect();
        let c = &m.counts;
        let want = ApprovalStats {
            waiting: m.waiters.len(),
            kept_verdicts: m.kept.len(),
            undelivered: 0,
            ..*c
        };
        ensure_invariant!(
            stats == want && self.machine.waited_requests() == requests.len(),
            "APPROVAL_MATCHES_MODEL",
            "stats {stats:?}, model {want:?}; waited requests {} vs {}",
            self.machine.waited_requests(),
            requests.len()
        );
        for id in &self.ids {
            let got = self.machine.kept_verdict(self.now, id);
            let want = m.kept_at(id, self.now);
            ensure_invariant!(
                got == want,
                "APPROVAL_EARLY_VERDICT_KEPT",
                "kept verdict for {id:?} is {got:?}, model {want:?}"
            );
        }
        let next_deadline = m.waiters.values().map(|w| w.deadline).min();
        let next_expiry = m.kept.values().map(|(_, at, _)| *at).min();
        let want = match (next_deadline, next_expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let got = self.machine.poll_timeout().map(|d| d.at);
        ensure_invariant!(
            got == want,
            "APPROVAL_TIMER_EXACT",
            "poll_timeout {got:?}, model {want:?}"
        );
        self.transcript.push(Observed::Deadline(got));
        Ok(())
    }
}

/// Run a whole sequence from a fresh machine; the first violation, if any.
pub fn run(config: ApprovalConfig, ops: &[Op]) -> Result<Harness, Violation> {
    let mut h = Harness::new(config);
    for op in ops {
        h.apply(*op)?;
    }
    Ok(h)
}

/// Run a sequence, then cancel every waiter still waiting and let every
/// kept verdict expire: nothing may be left (`APPROVAL_CANCEL_LEAVES_NOTHING`,
/// `APPROVAL_TIMER_EXACT`).
pub fn run_and_clean_up(config: ApprovalConfig, ops: &[Op]) -> Result<Harness, Violation> {
    let mut h = run(config, ops)?;
    let waiting: Vec<ApprovalWaiterId> = h.model.waiters.keys().copied().collect();
    for w in waiting {
        let want = h.model.waiters.remove(&w).is_some();
        let got = h.machine.cancel(w);
        ensure_invariant!(
            got == want,
            "APPROVAL_CANCEL_LEAVES_NOTHING",
            "cancel({w:?}) = {got}, expected {want}"
        );
        h.model.cancelled.insert(w);
        h.model.counts.cancelled += 1;
        h.check_state()?;
    }
    if let Some(at) = h.model.kept.values().map(|(_, at, _)| *at).max() {
        h.now = h.now.max(at);
        h.apply(Op::Advance(0))?;
    }
    let stats = h.machine.stats();
    ensure_invariant!(
        stats.waiting == 0
            && stats.kept_verdicts == 0
            && h.machine.waited_requests() == 0
            && h.machine.poll_timeout().is_none(),
        "APPROVAL_CANCEL_LEAVES_NOTHING",
        "state left after cleanup: {stats:?}, timer {:?}",
        h.machine.poll_timeout()
    );
    Ok(h)
}

/// A small config for tests and fuzzing: bounds that are hit and a keep
/// period in the range the [`Op::Advance`] steps cover.
pub fn small_config() -> ApprovalConfig {
    ApprovalConfig {
        max_waiters: 6,
        keep_verdict_for: Duration::from_millis(3_000),
        max_kept_verdicts: 2,
        max_request_id_len: 8,
    }
}
