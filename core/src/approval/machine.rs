//! The approval-waiting machine: waiters with deadlines, verdicts that reach
//! each of them once, and verdicts kept for late waiters.
//!
//! Guarantees: see the module docs of [`crate::approval`].

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::String;

use super::config::ApprovalConfig;
use super::decision::{Outcome, ReviewerDecision, Verdict};
use super::kept::KeptVerdicts;
use super::output::{ApprovalAction, ApprovalStats, ApprovalTimer};
use super::waiter::{WaitError, WaiterId};
use crate::machine::Machine;
use crate::time::{earliest, Deadline, Timestamp};

#[derive(Clone, Debug)]
struct Waiter {
    request_id: String,
    deadline: Timestamp,
}

/// Approval waiters as a sans-IO machine.
///
/// ```
/// use core::time::Duration;
/// use tether_core::approval::{
///     ApprovalAction, ApprovalConfig, ApprovalWaiters, Outcome, ReviewerDecision,
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
///     Some(ApprovalAction::Resolved { waiter, outcome: Outcome::TimedOut, .. }) if waiter == b));
/// // The reviewer approves: a learns it.
/// w.on_verdict(t0 + Duration::from_secs(6), "req-1", ReviewerDecision::Approved);
/// assert!(matches!(w.poll_action(),
///     Some(ApprovalAction::Resolved { waiter, outcome: Outcome::Approved, .. }) if waiter == a));
/// assert_eq!(w.poll_action(), None);
/// ```
#[derive(Clone, Debug)]
pub struct ApprovalWaiters {
    config: ApprovalConfig,
    /// The next waiter id; `u64::MAX` means exhausted.
    next_id: u64,
    waiters: BTreeMap<WaiterId, Waiter>,
    by_request: BTreeMap<String, BTreeSet<WaiterId>>,
    /// Every waiting waiter by (deadline, id): the one timer structure.
    deadlines: BTreeSet<(Timestamp, WaiterId)>,
    kept: KeptVerdicts,
    actions: VecDeque<ApprovalAction>,
    stats: ApprovalStats,
}

impl ApprovalWaiters {
    /// No waiters, no verdicts.
    pub fn new(config: ApprovalConfig) -> Self {
        ApprovalWaiters {
            kept: KeptVerdicts::new(config.keep_verdict_for, config.max_kept_verdicts),
            config,
            next_id: 0,
            waiters: BTreeMap::new(),
            by_request: BTreeMap::new(),
            deadlines: BTreeSet::new(),
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
    /// returns). Refused, with nothing changed but a counter, when the id is
    /// empty or too long, or when `max_waiters` waiters exist counting
    /// resolutions not yet drained (drain to free slots).
    pub fn wait(
        &mut self,
        now: Timestamp,
        request_id: &str,
        deadline: Timestamp,
    ) -> Result<WaiterId, WaitError> {
        let checked = self.check_wait(request_id);
        if let Err(e) = checked {
            self.stats.refused_waits = self.stats.refused_waits.saturating_add(1);
            return Err(e);
        }
        let id = WaiterId(self.next_id);
        self.next_id = self.next_id.saturating_add(1);
        if let Some(verdict) = self.kept.get(request_id, now) {
            self.resolve(id, String::from(request_id), verdict.into());
        } else if deadline <= now {
            self.resolve(id, String::from(request_id), Outcome::TimedOut);
        } else {
            self.waiters.insert(
                id,
                Waiter {
                    request_id: String::from(request_id),
                    deadline,
                },
            );
            self.by_request
                .entry(String::from(request_id))
                .or_default()
                .insert(id);
            self.deadlines.insert((deadline, id));
        }
        Ok(id)
    }

    /// An `ApprovalResolved` event. An approval or a denial resolves every
    /// waiter of `request_id` (in id order) and is then kept for
    /// `keep_verdict_for`. The first verdict wins: while one is kept for the
    /// id, a later one (even a contradicting one) is ignored and counted.
    /// Decisions that are not verdicts, and ids that no waiter can have
    /// (empty, too long), are ignored and counted.
    pub fn on_verdict(&mut self, now: Timestamp, request_id: &str, decision: ReviewerDecision) {
        let Some(verdict) = decision.verdict() else {
            self.stats.ignored_non_verdicts = self.stats.ignored_non_verdicts.saturating_add(1);
            return;
        };
        if self.id_invalid(request_id).is_some() {
            self.stats.ignored_bad_ids = self.stats.ignored_bad_ids.saturating_add(1);
            return;
        }
        if self.kept.get(request_id, now).is_some() {
            self.stats.duplicate_verdicts = self.stats.duplicate_verdicts.saturating_add(1);
            return;
        }
        if let Some(ids) = self.by_request.remove(request_id) {
            for id in ids {
                if let Some(w) = self.waiters.remove(&id) {
                    self.deadlines.remove(&(w.deadline, id));
                    self.resolve(id, w.request_id, verdict.into());
                }
            }
        }
        let dropped = self.kept.insert(now, request_id, verdict);
        self.stats.dropped_verdicts = self.stats.dropped_verdicts.saturating_add(dropped as u64);
    }

    /// Cancel a waiter (its future was dropped). It leaves nothing behind:
    /// no entry, no timer, and no undelivered resolution. Returns whether
    /// there was anything to cancel; an unknown, delivered or already
    /// cancelled waiter is a harmless no-op returning `false`.
    pub fn cancel(&mut self, waiter: WaiterId) -> bool {
        let removed = if self.detach(waiter).is_some() {
            true
        } else if let Some(pos) = self.actions.iter().position(|a| a.waiter() == waiter) {
            self.actions.remove(pos);
            true
        } else {
            false
        };
        if removed {
            self.stats.cancelled = self.stats.cancelled.saturating_add(1);
        }
        removed
    }

    /// Whether `waiter` is still waiting (not resolved, not cancelled).
    pub fn is_waiting(&self, waiter: WaiterId) -> bool {
        self.waiters.contains_key(&waiter)
    }

    /// Waiters waiting now.
    pub fn waiting(&self) -> usize {
        self.waiters.len()
    }

    /// The verdict kept for `request_id` at `now`, if any.
    pub fn kept_verdict(&self, now: Timestamp, request_id: &str) -> Option<Verdict> {
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
        self.by_request.len()
    }

    fn id_invalid(&self, request_id: &str) -> Option<WaitError> {
        if request_id.is_empty() {
            Some(WaitError::EmptyRequestId)
        } else if request_id.len() > self.config.max_request_id_len {
            Some(WaitError::RequestIdTooLong)
        } else {
            None
        }
    }

    fn check_wait(&self, request_id: &str) -> Result<(), WaitError> {
        if let Some(e) = self.id_invalid(request_id) {
            return Err(e);
        }
        let used = self.waiters.len().saturating_add(self.actions.len());
        if used >= self.config.max_waiters {
            return Err(WaitError::Full);
        }
        if self.next_id == u64::MAX {
            return Err(WaitError::IdsExhausted);
        }
        Ok(())
    }

    /// Remove a waiting waiter from every index.
    fn detach(&mut self, id: WaiterId) -> Option<Waiter> {
        let w = self.waiters.remove(&id)?;
        self.deadlines.remove(&(w.deadline, id));
        if let Some(ids) = self.by_request.get_mut(&w.request_id) {
            ids.remove(&id);
            if ids.is_empty() {
                self.by_request.remove(&w.request_id);
            }
        }
        Some(w)
    }

    fn resolve(&mut self, waiter: WaiterId, request_id: String, outcome: Outcome) {
        self.actions.push_back(ApprovalAction::Resolved {
            waiter,
            request_id,
            outcome,
        });
    }
}

impl Machine for ApprovalWaiters {
    type Action = ApprovalAction;
    type TimerReason = ApprovalTimer;

    fn poll_action(&mut self) -> Option<ApprovalAction> {
        let action = self.actions.pop_front()?;
        let ApprovalAction::Resolved { outcome, .. } = &action;
        let counter = match outcome {
            Outcome::Approved => &mut self.stats.approved,
            Outcome::Denied => &mut self.stats.denied,
            Outcome::TimedOut => &mut self.stats.timed_out,
        };
        *counter = counter.saturating_add(1);
        Some(action)
    }

    fn poll_timeout(&self) -> Option<Deadline<ApprovalTimer>> {
        let waiter = self
            .deadlines
            .first()
            .map(|(at, _)| Deadline::new(*at, ApprovalTimer::WaiterDeadline));
        let verdict = self
            .kept
            .next_expiry()
            .map(|at| Deadline::new(at, ApprovalTimer::VerdictExpiry));
        earliest(waiter, verdict)
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        while let Some(&(at, id)) = self.deadlines.first() {
            if at > now {
                break;
            }
            match self.detach(id) {
                Some(w) => self.resolve(id, w.request_id, Outcome::TimedOut),
                // Unreachable (the indexes agree), but never loop forever.
                None => {
                    self.deadlines.remove(&(at, id));
                }
            }
        }
        self.kept.expire(now);
    }
}
