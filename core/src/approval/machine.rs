//! The approval-waiting machine: waiters with deadlines, verdicts that reach
//! each of them once, and verdicts kept for late waiters.
//!
//! Guarantees: see the module docs of [`crate::approval`]. Costs: a wait
//! and a verdict are one hash lookup each plus O(1) work per waiter
//! resolved (O(log n) for a deadline earlier than the last one given);
//! memory is a fixed-size slot per waiter and one entry per request id,
//! whose text is stored once.

use alloc::collections::VecDeque;

use super::config::ApprovalConfig;
use super::deadlines::{DeadlineEntry, DeadlineQueue};
use super::decision::{Outcome, ReviewerDecision, Verdict};
use super::kept::{KeptEntry, KeptOrder};
use super::output::{ApprovalAction, ApprovalStats, ApprovalTimer};
use super::requests::{Kept, Requests, MAX_ID_LEN, NIL};
use super::slots::{SlotState, Slots, RESOLVED};
use super::waiter::{WaitError, WaiterId};
use crate::id_hash::hash_id;
use crate::machine::Machine;
use crate::time::{earliest, Deadline, Timestamp};

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
    /// The next waiter sequence number; `u64::MAX` means exhausted.
    next_seq: u64,
    slots: Slots,
    waiting: usize,
    requests: Requests,
    /// Request entries with at least one waiter.
    waited_requests: usize,
    /// Every waiting waiter's deadline: the one timer structure.
    deadlines: DeadlineQueue,
    kept_order: KeptOrder,
    kept: usize,
    /// Verdicts kept so far: the generation of the next one.
    kept_gens: u64,
    /// The latest `now` seen, so kept verdicts expire in the order kept.
    latest: Timestamp,
    actions: VecDeque<ApprovalAction>,
    stats: ApprovalStats,
}

impl ApprovalWaiters {
    /// No waiters, no verdicts.
    pub fn new(config: ApprovalConfig) -> Self {
        ApprovalWaiters {
            config,
            next_seq: 0,
            slots: Slots::default(),
            waiting: 0,
            requests: Requests::default(),
            waited_requests: 0,
            deadlines: DeadlineQueue::default(),
            kept_order: KeptOrder::default(),
            kept: 0,
            kept_gens: 0,
            latest: Timestamp::ZERO,
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
        self.see(now);
        if let Err(e) = self.check_wait(request_id) {
            self.stats.refused_waits = self.stats.refused_waits.saturating_add(1);
            return Err(e);
        }
        let hash = hash_id(request_id);
        let known = self.requests.find(hash, request_id);
        let kept = known.and_then(|r| self.requests.kept(r));
        let at_once = match kept_at(kept, now) {
            Some(verdict) => Some(Outcome::from(verdict)),
            None => (deadline <= now).then_some(Outcome::TimedOut),
        };
        let seq = self.next_seq;
        if let Some(outcome) = at_once {
            return Ok(self.resolve_at_once(seq, outcome));
        }
        let req = match known {
            Some(r) => Some(r),
            None => self.requests.insert_new(hash, request_id),
        };
        let Some(req) = req else {
            self.stats.refused_waits = self.stats.refused_waits.saturating_add(1);
            return Err(WaitError::Full);
        };
        self.next_seq += 1;
        let slot = self.slots.take(seq, req);
        self.link(req, slot);
        self.waiting += 1;
        self.deadlines.push(DeadlineEntry {
            at: deadline,
            seq,
            slot,
        });
        Ok(WaiterId::new(seq, slot))
    }

    /// An `ApprovalResolved` event. An approval or a denial resolves every
    /// waiter of `request_id` (in wait order) and is then kept for
    /// `keep_verdict_for`. The first verdict wins: while one is kept for the
    /// id, a later one (even a contradicting one) is ignored and counted.
    /// Decisions that are not verdicts, and ids that no waiter can have
    /// (empty, too long), are ignored and counted.
    pub fn on_verdict(&mut self, now: Timestamp, request_id: &str, decision: ReviewerDecision) {
        self.see(now);
        let Some(verdict) = decision.verdict() else {
            self.stats.ignored_non_verdicts = self.stats.ignored_non_verdicts.saturating_add(1);
            return;
        };
        if self.id_invalid(request_id).is_some() {
            self.stats.ignored_bad_ids = self.stats.ignored_bad_ids.saturating_add(1);
            return;
        }
        let hash = hash_id(request_id);
        let known = self.requests.find(hash, request_id);
        if let Some(req) = known {
            let kept = self.requests.kept(req);
            if kept_at(kept, now).is_some() {
                self.stats.duplicate_verdicts = self.stats.duplicate_verdicts.saturating_add(1);
                return;
            }
            self.resolve_request(req, verdict.into());
            if kept.is_some() {
                // Expired but not yet purged: replaced below.
                self.unkeep(req);
            }
        }
        self.keep(now, hash, request_id, known, verdict);
        self.settle();
    }

    /// Cancel a waiter (its future was dropped). It leaves nothing behind:
    /// no entry, no timer, and no undelivered resolution. Returns whether
    /// there was anything to cancel; an unknown, delivered or already
    /// cancelled waiter is a harmless no-op returning `false`.
    pub fn cancel(&mut self, waiter: WaiterId) -> bool {
        let Some(slot) = self.slots.current(waiter.slot, waiter.seq()) else {
            return false;
        };
        match slot.state() {
            SlotState::Waiting => {
                self.unlink(waiter.slot);
                self.waiting -= 1;
                self.slots.release(waiter.slot);
                self.settle();
            }
            SlotState::Resolved => {
                if let Some(pos) = self.actions.iter().position(|a| a.waiter() == waiter) {
                    self.actions.remove(pos);
                }
                self.slots.release(waiter.slot);
            }
            SlotState::Free => return false,
        }
        self.stats.cancelled = self.stats.cancelled.saturating_add(1);
        true
    }

    /// Whether `waiter` is still waiting (not resolved, not cancelled).
    pub fn is_waiting(&self, waiter: WaiterId) -> bool {
        self.slots
            .current(waiter.slot, waiter.seq())
            .is_some_and(|s| s.state() == SlotState::Waiting)
    }

    /// Whether `waiter` is waiting or resolved with its resolution not yet
    /// drained: the machine still holds its slot, so a driver's per-slot
    /// data (see [`WaiterId::slot`]) is still this waiter's.
    pub fn holds(&self, waiter: WaiterId) -> bool {
        self.slots.current(waiter.slot, waiter.seq()).is_some()
    }

    /// Waiters waiting now.
    pub fn waiting(&self) -> usize {
        self.waiting
    }

    /// The verdict kept for `request_id` at `now`, if any.
    pub fn kept_verdict(&self, now: Timestamp, request_id: &str) -> Option<Verdict> {
        let req = self.requests.find(hash_id(request_id), request_id)?;
        kept_at(self.requests.kept(req), now)
    }

    /// Counters since construction and current sizes.
    pub fn stats(&self) -> ApprovalStats {
        ApprovalStats {
            waiting: self.waiting,
            kept_verdicts: self.kept,
            undelivered: self.actions.len(),
            ..self.stats
        }
    }

    /// Request ids with at least one waiter (at most the number of waiters).
    pub fn waited_requests(&self) -> usize {
        self.waited_requests
    }

    fn see(&mut self, now: Timestamp) {
        self.latest = self.latest.max(now);
    }

    fn id_invalid(&self, request_id: &str) -> Option<WaitError> {
        if request_id.is_empty() {
            Some(WaitError::EmptyRequestId)
        } else if request_id.len() > self.config.max_request_id_len.min(MAX_ID_LEN) {
            Some(WaitError::RequestIdTooLong)
        } else {
            None
        }
    }

    fn check_wait(&self, request_id: &str) -> Result<(), WaitError> {
        if let Some(e) = self.id_invalid(request_id) {
            return Err(e);
        }
        if self.slots.used() >= self.config.max_waiters || !self.slots.has_room() {
            return Err(WaitError::Full);
        }
        if self.next_seq == u64::MAX {
            return Err(WaitError::IdsExhausted);
        }
        Ok(())
    }

    /// A waiter resolved in the wait that created it.
    fn resolve_at_once(&mut self, seq: u64, outcome: Outcome) -> WaiterId {
        self.next_seq += 1;
        let slot = self.slots.take(seq, RESOLVED);
        let waiter = WaiterId::new(seq, slot);
        self.actions
            .push_back(ApprovalAction::Resolved { waiter, outcome });
        waiter
    }

    /// Resolve every waiter of request entry `req`, in wait order.
    fn resolve_request(&mut self, req: u32, outcome: Outcome) {
        let Some(r) = self.requests.get_mut(req) else {
            return;
        };
        let head = r.head;
        if head == NIL {
            return;
        }
        r.head = NIL;
        self.waited_requests -= 1;
        let mut slot = head;
        loop {
            let s = self.slots.get_mut(slot);
            let next = s.next;
            s.set_resolved();
            let waiter = WaiterId::new(s.seq(), slot);
            self.waiting -= 1;
            self.actions
                .push_back(ApprovalAction::Resolved { waiter, outcome });
            if next == head || next == NIL {
                break;
            }
            slot = next;
        }
    }

    /// Keep `verdict` for `request_id` (entry `known`, if any) from `now`.
    fn keep(
        &mut self,
        now: Timestamp,
        hash: u64,
        request_id: &str,
        known: Option<u32>,
        verdict: Verdict,
    ) {
        // Kept verdicts expire in the order kept, even if `now` went back.
        let expires = self.latest.saturating_add(self.config.keep_verdict_for);
        let max = self.config.max_kept_verdicts;
        if max == 0 || self.config.keep_verdict_for.is_zero() || expires <= now {
            if let Some(req) = known {
                self.requests.remove_if_unused(req);
            }
            return;
        }
        while self.kept >= max {
            let Some(oldest) = self.kept_order.pop() else {
                break;
            };
            if self.is_kept_live(&oldest) {
                self.unkeep(oldest.req);
                self.stats.dropped_verdicts = self.stats.dropped_verdicts.saturating_add(1);
            }
        }
        let req = match known.filter(|&r| self.requests.get(r).is_some()) {
            Some(r) => r,
            None => match self.requests.find_or_insert(hash, request_id) {
                Some(r) => r,
                // 2^32 - 1 ids known at once: the verdict reached its
                // waiters but cannot be kept; count it as dropped.
                None => {
                    self.stats.dropped_verdicts = self.stats.dropped_verdicts.saturating_add(1);
                    return;
                }
            },
        };
        let gen = self.kept_gens;
        self.kept_gens = self.kept_gens.wrapping_add(1);
        self.requests.set_kept(
            req,
            Kept {
                verdict,
                expires,
                gen,
            },
        );
        self.kept += 1;
        self.kept_order.push(KeptEntry { expires, req, gen });
    }

    /// Forget the verdict kept for entry `req`, and the entry if unused.
    fn unkeep(&mut self, req: u32) {
        if self.requests.take_kept(req) {
            self.kept -= 1;
        }
        self.requests.remove_if_unused(req);
    }

    fn is_kept_live(&self, e: &KeptEntry) -> bool {
        kept_live(&self.requests, e)
    }

    /// Link waiter `slot` at the tail of request `req`'s circular list.
    fn link(&mut self, req: u32, slot: u32) {
        let Some(r) = self.requests.get_mut(req) else {
            return;
        };
        let head = r.head;
        if head == NIL {
            r.head = slot;
            self.waited_requests += 1;
            let s = self.slots.get_mut(slot);
            (s.req, s.prev, s.next) = (req, slot, slot);
            return;
        }
        let tail = self.slots.get(head).prev;
        let s = self.slots.get_mut(slot);
        (s.req, s.prev, s.next) = (req, tail, head);
        self.slots.get_mut(tail).next = slot;
        self.slots.get_mut(head).prev = slot;
    }

    /// Unlink waiting `slot` from its request's list (removing the entry
    /// when nothing else holds it). The caller then releases the slot or
    /// marks it resolved.
    fn unlink(&mut self, slot: u32) {
        let s = self.slots.get(slot);
        let (req, prev, next) = (s.req, s.prev, s.next);
        if next == slot {
            if let Some(r) = self.requests.get_mut(req) {
                r.head = NIL;
            }
            self.waited_requests -= 1;
        } else {
            self.slots.get_mut(prev).next = next;
            self.slots.get_mut(next).prev = prev;
            if let Some(r) = self.requests.get_mut(req) {
                if r.head == slot {
                    r.head = next;
                }
            }
        }
        let s = self.slots.get_mut(slot);
        s.prev = NIL;
        s.next = NIL;
        self.requests.remove_if_unused(req);
    }

    /// Restore "the earliest queued deadline and expiry are live".
    fn settle(&mut self) {
        let slots = &self.slots;
        self.deadlines
            .settle(self.waiting, |e| still_waiting(slots, e));
        let requests = &self.requests;
        self.kept_order
            .settle(self.kept, |e| kept_live(requests, e));
    }
}

/// Whether deadline entry `e` is its waiter's, still waiting (not stale).
fn still_waiting(slots: &Slots, e: &DeadlineEntry) -> bool {
    slots
        .current(e.slot, e.seq)
        .is_some_and(|s| s.state() == SlotState::Waiting)
}

/// Whether expiry entry `e` is of the verdict kept now (not stale).
fn kept_live(requests: &Requests, e: &KeptEntry) -> bool {
    requests.kept(e.req).is_some_and(|k| k.gen == e.gen)
}

/// The verdict of `kept` if it is still kept at `now`.
fn kept_at(kept: Option<Kept>, now: Timestamp) -> Option<Verdict> {
    kept.filter(|k| now < k.expires).map(|k| k.verdict)
}

impl Machine for ApprovalWaiters {
    type Action = ApprovalAction;
    type TimerReason = ApprovalTimer;

    fn poll_action(&mut self) -> Option<ApprovalAction> {
        let action = self.actions.pop_front()?;
        let ApprovalAction::Resolved {
            waiter, outcome, ..
        } = &action;
        self.slots.release(waiter.slot);
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
            .peek()
            .map(|e| Deadline::new(e.at, ApprovalTimer::WaiterDeadline));
        let verdict = self
            .kept_order
            .front()
            .map(|e| Deadline::new(e.expires, ApprovalTimer::VerdictExpiry));
        earliest(waiter, verdict)
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        self.see(now);
        while let Some(e) = self.deadlines.peek() {
            if e.at > now {
                break;
            }
            self.deadlines.pop();
            if !still_waiting(&self.slots, &e) {
                continue;
            }
            self.unlink(e.slot);
            self.waiting -= 1;
            self.slots.get_mut(e.slot).set_resolved();
            self.actions.push_back(ApprovalAction::Resolved {
                waiter: WaiterId::new(e.seq, e.slot),
                outcome: Outcome::TimedOut,
            });
        }
        while let Some(e) = self.kept_order.front() {
            if e.expires > now {
                break;
            }
            self.kept_order.pop();
            if self.is_kept_live(&e) {
                self.unkeep(e.req);
            }
        }
        self.settle();
    }
}
