//! The approval-waiting machine: waiters with deadlines, verdicts that reach
//! each of them once, and verdicts kept for late waiters.
//!
//! Guarantees: see the module docs of [`crate::approval`]. State: the
//! waiting waiters by issue number, each id's waiters
//! ([`Requests`](super::requests)), their deadlines in order
//! ([`Deadlines`](super::deadlines)), the kept verdicts
//! ([`KeptVerdicts`](super::kept)) and the resolutions not yet drained.
//! A waiter is in the first three exactly while it waits.

use alloc::collections::VecDeque;
use alloc::string::String;

use hashbrown::HashMap;

use super::config::ApprovalConfig;
use super::deadlines::Deadlines;
use super::decision::{ApprovalOutcome, ReviewerDecision, ReviewerVerdict};
use super::kept::KeptVerdicts;
use super::output::{ApprovalAction, ApprovalStats, ApprovalTimer};
use super::requests::Requests;
use super::waiter::{ApprovalWaitError, ApprovalWaiterId};
use crate::id_hash::BuildIdHasher;
use crate::machine::Machine;
use crate::time::{earliest, Deadline, Timestamp};

/// A waiting waiter.
#[derive(Clone, Debug)]
struct Waiter {
    request: String,
    deadline: Timestamp,
}

/// Approval waiters as a sans-IO machine.
///
/// ```
/// use core::time::Duration;
/// use tether_core::approval::{
///     ApprovalAction, ApprovalConfig, ApprovalOutcome, ApprovalWaiters, ReviewerDecision,
/// };
/// use tether_core::{Machine, Timestamp};
///
/// let t0 = Timestamp::ZERO;
/// let mut w = ApprovalWaiters::new(ApprovalConfig::default());
/// let a = w.wait(t0, "req-1", t0 + Duration::from_secs(30)).unwrap();
/// let b = w.wait(t0, "req-1", t0 + Duration::from_secs(5)).unwrap();
/// // Nobody answers within 5 s: b learns "pending", not "denied".
/// w.handle_timeout(t0 + Duration::from_secs(5));
/// assert!(matches!(w.poll_action(),
///     Some(ApprovalAction::Resolved { waiter, outcome: ApprovalOutcome::TimedOut })
///         if waiter == b));
/// // The reviewer approves: a learns it.
/// w.on_verdict(t0 + Duration::from_secs(6), "req-1", ReviewerDecision::Approved);
/// assert!(matches!(w.poll_action(),
///     Some(ApprovalAction::Resolved { waiter, outcome: ApprovalOutcome::Approved })
///         if waiter == a));
/// assert_eq!(w.poll_action(), None);
/// ```
#[derive(Clone, Debug)]
pub struct ApprovalWaiters {
    config: ApprovalConfig,
    /// The next waiter's issue number; `u64::MAX` means exhausted.
    next_seq: u64,
    /// Waiting waiters by issue number.
    waiters: HashMap<u64, Waiter, BuildIdHasher>,
    requests: Requests,
    deadlines: Deadlines,
    kept: KeptVerdicts,
    /// Resolutions not yet drained.
    actions: VecDeque<ApprovalAction>,
    stats: ApprovalStats,
}

impl ApprovalWaiters {
    /// No waiters, no verdicts.
    pub fn new(config: ApprovalConfig) -> Self {
        ApprovalWaiters {
            config,
            next_seq: 0,
            waiters: HashMap::default(),
            requests: Requests::default(),
            deadlines: Deadlines::default(),
            kept: KeptVerdicts::default(),
            actions: VecDeque::new(),
            stats: ApprovalStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ApprovalConfig {
        &self.config
    }

    /// Wait for the verdict on `request_id` until `deadline`.
    ///
    /// If a verdict for it is kept, or the deadline is not after `now`, the
    /// waiter is resolved at once (its action is queued before this
    /// returns: drain it). Refused, with nothing changed but a counter, when
    /// the id is empty or too long, or when `max_waiters` waiters exist
    /// counting resolutions not yet drained (drain to make room).
    pub fn wait(
        &mut self,
        now: Timestamp,
        request_id: &str,
        deadline: Timestamp,
    ) -> Result<ApprovalWaiterId, ApprovalWaitError> {
        if let Err(e) = self.check_wait(request_id) {
            self.stats.refused_waits = self.stats.refused_waits.saturating_add(1);
            return Err(e);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let waiter = ApprovalWaiterId::new(seq);
        let at_once = match self.kept.get(request_id, now) {
            Some(verdict) => Some(ApprovalOutcome::from(verdict)),
            None => (deadline <= now).then_some(ApprovalOutcome::TimedOut),
        };
        if let Some(outcome) = at_once {
            self.actions
                .push_back(ApprovalAction::Resolved { waiter, outcome });
            return Ok(waiter);
        }
        self.requests.add(request_id, seq);
        self.deadlines.insert(deadline, seq);
        self.waiters.insert(
            seq,
            Waiter {
                request: String::from(request_id),
                deadline,
            },
        );
        Ok(waiter)
    }

    /// An `ApprovalResolved` event. An approval or a denial resolves every
    /// waiter of `request_id` (in wait order) and is then kept for
    /// `keep_verdict_for`. The first verdict wins: while one is kept for the
    /// id, a later one (even a contradicting one) is ignored and counted.
    /// Decisions that are not verdicts, and ids that no waiter can have
    /// (empty, too long), are ignored and counted. Drain the resolutions.
    pub fn on_verdict(&mut self, now: Timestamp, request_id: &str, decision: ReviewerDecision) {
        let Some(verdict) = decision.verdict() else {
            self.stats.ignored_non_verdicts = self.stats.ignored_non_verdicts.saturating_add(1);
            return;
        };
        if self.id_error(request_id).is_some() {
            self.stats.ignored_bad_ids = self.stats.ignored_bad_ids.saturating_add(1);
            return;
        }
        if self.kept.get(request_id, now).is_some() {
            self.stats.duplicate_verdicts = self.stats.duplicate_verdicts.saturating_add(1);
            return;
        }
        for seq in self.requests.take(request_id) {
            if let Some(w) = self.waiters.remove(&seq) {
                self.deadlines.remove(w.deadline, seq);
            }
            self.actions.push_back(ApprovalAction::Resolved {
                waiter: ApprovalWaiterId::new(seq),
                outcome: verdict.into(),
            });
        }
        // An expired verdict not yet purged is replaced.
        self.kept.remove(request_id);
        self.keep(now, request_id, verdict);
    }

    /// Cancel a waiter (its future was dropped). It leaves nothing behind:
    /// no entry, no timer, and no undelivered resolution. Returns whether
    /// there was anything to cancel; an unknown, delivered or already
    /// cancelled waiter is a harmless no-op returning `false`.
    pub fn cancel(&mut self, waiter: ApprovalWaiterId) -> bool {
        let seq = waiter.get();
        if let Some(w) = self.waiters.remove(&seq) {
            self.requests.remove(&w.request, seq);
            self.deadlines.remove(w.deadline, seq);
        } else if let Some(pos) = self.actions.iter().position(|a| a.waiter() == waiter) {
            self.actions.remove(pos);
        } else {
            return false;
        }
        self.stats.cancelled = self.stats.cancelled.saturating_add(1);
        true
    }

    /// Whether `waiter` is still waiting (not resolved, not cancelled).
    pub fn is_waiting(&self, waiter: ApprovalWaiterId) -> bool {
        self.waiters.contains_key(&waiter.get())
    }

    /// Waiters waiting now.
    pub fn waiting(&self) -> usize {
        self.waiters.len()
    }

    /// The verdict kept for `request_id` at `now`, if any.
    pub fn kept_verdict(&self, now: Timestamp, request_id: &str) -> Option<ReviewerVerdict> {
        self.kept.get(request_id, now)
    }

    /// Counters since construction and current sizes.
    pub fn stats(&self) -> ApprovalStats {
        ApprovalStats {
            waiting: self.waiters.len(),
            kept_verdicts: self.kept.len(),
            undelivered: self.actions.len(),
            ..self.stats
        }
    }

    /// Request ids with at least one waiter (at most the number of waiters).
    pub fn waited_requests(&self) -> usize {
        self.requests.len()
    }

    /// Why `request_id` can have no waiter, if it cannot.
    fn id_error(&self, request_id: &str) -> Option<ApprovalWaitError> {
        if request_id.is_empty() {
            Some(ApprovalWaitError::EmptyRequestId)
        } else if request_id.len() > self.config.max_request_id_len {
            Some(ApprovalWaitError::RequestIdTooLong)
        } else {
            None
        }
    }

    fn check_wait(&self, request_id: &str) -> Result<(), ApprovalWaitError> {
        if let Some(e) = self.id_error(request_id) {
            return Err(e);
        }
        if self.waiters.len() + self.actions.len() >= self.config.max_waiters {
            return Err(ApprovalWaitError::Full);
        }
        if self.next_seq == u64::MAX {
            return Err(ApprovalWaitError::IdsExhausted);
        }
        Ok(())
    }

    /// Keep `verdict` for `request_id` (which has none kept) from `now`,
    /// unless keeping is disabled or it would expire at once.
    fn keep(&mut self, now: Timestamp, request_id: &str, verdict: ReviewerVerdict) {
        let expires = now.saturating_add(self.config.keep_verdict_for);
        let max = self.config.max_kept_verdicts;
        if max == 0 || expires <= now {
            return;
        }
        let dropped = self.kept.keep(request_id, verdict, expires, max);
        self.stats.dropped_verdicts = self.stats.dropped_verdicts.saturating_add(dropped);
    }
}

impl Machine for ApprovalWaiters {
    type Action = ApprovalAction;
    type TimerReason = ApprovalTimer;

    fn poll_action(&mut self) -> Option<ApprovalAction> {
        let action = self.actions.pop_front()?;
        let ApprovalAction::Resolved { outcome, .. } = &action;
        let counter = match outcome {
            ApprovalOutcome::Approved => &mut self.stats.approved,
            ApprovalOutcome::Denied => &mut self.stats.denied,
            ApprovalOutcome::TimedOut => &mut self.stats.timed_out,
        };
        *counter = counter.saturating_add(1);
        Some(action)
    }

    fn poll_timeout(&self) -> Option<Deadline<ApprovalTimer>> {
        let waiter = self
            .deadlines
            .next()
            .map(|at| Deadline::new(at, ApprovalTimer::WaiterDeadline));
        let verdict = self
            .kept
            .next_expiry()
            .map(|at| Deadline::new(at, ApprovalTimer::VerdictExpiry));
        earliest(waiter, verdict)
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        while let Some(seq) = self.deadlines.pop_due(now) {
            if let Some(w) = self.waiters.remove(&seq) {
                self.requests.remove(&w.request, seq);
            }
            self.actions.push_back(ApprovalAction::Resolved {
                waiter: ApprovalWaiterId::new(seq),
                outcome: ApprovalOutcome::TimedOut,
            });
        }
        self.kept.expire(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_id_is_never_issued() {
        let mut w = ApprovalWaiters::new(ApprovalConfig::default());
        let t = Timestamp::from_nanos(1);
        w.next_seq = u64::MAX - 1;
        let last = w.wait(t, "r", t).unwrap();
        assert_eq!(last.get(), u64::MAX - 1);
        assert_eq!(w.wait(t, "r", t), Err(ApprovalWaitError::IdsExhausted));
        assert_eq!(w.stats().refused_waits, 1);
        assert_eq!(w.poll_action().map(|a| a.waiter()), Some(last));
    }
}
