//! The check-slot machine: which `CheckAction` calls may be in flight, which
//! wait, and for how long.
//!
//! Guarantees: see the module docs of [`crate::check_slots`]. State: the ids
//! holding a slot, the queue of waiting checks in request order, and the
//! actions not yet drained. A check is in exactly one of the first two while
//! the machine holds it.

use alloc::collections::{BTreeSet, VecDeque};

use super::config::CheckSlotsConfig;
use super::types::{
    Admission, CheckSlotsAction, CheckSlotsTimer, SlotId, SlotRefusal, SlotState, SlotStats,
};
use crate::machine::Machine;
use crate::time::{Deadline, Timestamp};

/// A check waiting for a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Waiting {
    id: SlotId,
    /// When it joined the queue (never before the check ahead of it).
    since: Timestamp,
    /// `since + queue_timeout`, saturating.
    expires_at: Timestamp,
}

/// The counters the machine keeps (the gauges are computed on demand).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counters {
    admitted: u64,
    queued: u64,
    expired: u64,
    refused: u64,
}

/// `*c += 1`, saturating.
fn bump(c: &mut u64) {
    *c = c.saturating_add(1);
}

/// Bounded concurrency for `CheckAction` calls, as a sans-IO machine.
///
/// ```
/// use core::time::Duration;
/// use tether_core::check_slots::{Admission, CheckSlots, CheckSlotsAction, CheckSlotsConfig};
/// use tether_core::{Machine, Timestamp};
///
/// let cfg = CheckSlotsConfig::default()
///     .with_max_in_flight(1)
///     .with_queue_timeout(Duration::from_secs(10));
/// let mut slots = CheckSlots::new(cfg);
/// let t0 = Timestamp::ZERO;
/// let Admission::Admitted(a) = slots.on_request(t0) else { panic!() };
/// let Admission::Queued(b) = slots.on_request(t0) else { panic!() };
/// let Admission::Queued(c) = slots.on_request(t0) else { panic!() };
/// // a ends: b, first in line, gets its slot.
/// slots.on_release(t0 + Duration::from_secs(1), a);
/// assert_eq!(slots.poll_action(), Some(CheckSlotsAction::Admit(b)));
/// // c waits no longer than 10 s.
/// let deadline = slots.poll_timeout().unwrap().at;
/// assert_eq!(deadline, t0 + Duration::from_secs(10));
/// slots.handle_timeout(deadline);
/// assert_eq!(slots.poll_action(), Some(CheckSlotsAction::Expire(c)));
/// // A second release of a frees nothing.
/// slots.on_release(deadline, a);
/// assert_eq!(slots.stats().in_flight, 1);
/// ```
#[derive(Clone, Debug)]
pub struct CheckSlots {
    config: CheckSlotsConfig,
    /// The next id's number.
    next_id: u64,
    /// Checks holding a slot (at most `max_in_flight`).
    in_flight: BTreeSet<SlotId>,
    /// Checks waiting, in request order.
    queue: VecDeque<Waiting>,
    /// Actions not yet drained.
    actions: VecDeque<CheckSlotsAction>,
    /// How many of `actions` are `Expire`s (those left from earlier inputs
    /// count against `max_queued`).
    undrained_expiries: usize,
    counters: Counters,
}

impl CheckSlots {
    /// No check in flight or queued, with `config` (clamped into range).
    pub fn new(config: CheckSlotsConfig) -> Self {
        CheckSlots {
            config: config.clamped(),
            next_id: 1,
            in_flight: BTreeSet::new(),
            queue: VecDeque::new(),
            actions: VecDeque::new(),
            undrained_expiries: 0,
            counters: Counters::default(),
        }
    }

    /// The effective (clamped) configuration.
    pub fn config(&self) -> &CheckSlotsConfig {
        &self.config
    }

    /// A check wants to start.
    ///
    /// - A free slot: [`Admission::Admitted`], the check holds it now.
    /// - Every slot in use: first every queued check whose wait reached
    ///   `queue_timeout` at `now` is expired (drain the
    ///   [`CheckSlotsAction::Expire`]s), then the check joins the back of the
    ///   queue ([`Admission::Queued`]), unless `max_queued` checks are held
    ///   against the bound (waiting, or expired by an earlier input and not
    ///   drained since): then it is [`Admission::Refused`] and nothing is
    ///   kept for it.
    pub fn on_request(&mut self, now: Timestamp) -> Admission {
        if self.in_flight.len() < self.config.max_in_flight {
            // A free slot means an empty queue (work conserving).
            let id = self.fresh_id();
            self.in_flight.insert(id);
            bump(&mut self.counters.admitted);
            return Admission::Admitted(id);
        }
        // Expiries a lazy driver left undrained from earlier inputs count
        // against the bound; those of this input do not (a driver that
        // drains after every input never sees the difference).
        let earlier = self.undrained_expiries;
        self.expire_due(now);
        let held = self.queue.len().saturating_add(earlier);
        if held >= self.config.max_queued {
            bump(&mut self.counters.refused);
            return Admission::Refused(SlotRefusal::QueueFull {
                queued: self.queue.len(),
            });
        }
        let id = self.fresh_id();
        let since = self.queue.back().map_or(now, |tail| now.max(tail.since));
        self.queue.push_back(Waiting {
            id,
            since,
            expires_at: since.saturating_add(self.config.queue_timeout),
        });
        bump(&mut self.counters.queued);
        Admission::Queued(id)
    }

    /// The check `id` ended.
    ///
    /// - In flight: its slot is freed; every queued check whose wait reached
    ///   `queue_timeout` at `now` is expired, then the head of the queue, if
    ///   any, takes the slot ([`CheckSlotsAction::Admit`]). A check is never
    ///   admitted once its wait reached `queue_timeout`. If the check's own
    ///   `Admit` was not drained yet, it is withdrawn.
    /// - Queued: it leaves the queue (as [`on_cancel`](Self::on_cancel)).
    /// - Unknown, already released, cancelled or expired: nothing changes,
    ///   so a repeated release never frees a second slot.
    pub fn on_release(&mut self, now: Timestamp, id: SlotId) {
        self.let_go(now, id);
    }

    /// The caller of check `id` gave up (its future was dropped). The check
    /// is removed wherever it is: queued, it leaves the queue; in flight, its
    /// slot is freed exactly as by [`on_release`](Self::on_release). An
    /// unknown, ended or expired id changes nothing.
    pub fn on_cancel(&mut self, now: Timestamp, id: SlotId) {
        self.let_go(now, id);
    }

    /// Where check `id` stands, or `None` if the machine holds nothing for
    /// it (never issued, released, cancelled, expired or refused).
    pub fn slot(&self, id: SlotId) -> Option<SlotState> {
        if self.in_flight.contains(&id) {
            return Some(SlotState::InFlight);
        }
        self.queue
            .iter()
            .find(|w| w.id == id)
            .map(|w| SlotState::Queued {
                expires_at: w.expires_at,
            })
    }

    /// Gauges and counters.
    pub fn stats(&self) -> SlotStats {
        SlotStats {
            in_flight: self.in_flight.len(),
            queued: self.queue.len(),
            admitted_total: self.counters.admitted,
            queued_total: self.counters.queued,
            expired_total: self.counters.expired,
            refused_total: self.counters.refused,
            max_in_flight: self.config.max_in_flight,
            max_queued: self.config.max_queued,
        }
    }

    fn fresh_id(&mut self) -> SlotId {
        let id = SlotId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    fn let_go(&mut self, now: Timestamp, id: SlotId) {
        if self.in_flight.remove(&id) {
            let undrained = CheckSlotsAction::Admit(id);
            if let Some(pos) = self.actions.iter().position(|a| *a == undrained) {
                self.actions.remove(pos);
            }
            self.expire_due(now);
            if let Some(head) = self.queue.pop_front() {
                self.in_flight.insert(head.id);
                self.actions.push_back(CheckSlotsAction::Admit(head.id));
                bump(&mut self.counters.admitted);
            }
        } else if let Some(pos) = self.queue.iter().position(|w| w.id == id) {
            self.queue.remove(pos);
        }
    }

    /// Expire, in queue order, every queued check due at `now`. Deadlines
    /// never decrease along the queue, so the due ones are a prefix.
    fn expire_due(&mut self, now: Timestamp) {
        while let Some(head) = self.queue.front().copied() {
            if head.expires_at > now {
                break;
            }
            self.queue.pop_front();
            self.actions.push_back(CheckSlotsAction::Expire(head.id));
            self.undrained_expiries += 1;
            bump(&mut self.counters.expired);
        }
    }
}

impl Machine for CheckSlots {
    type Action = CheckSlotsAction;
    type TimerReason = CheckSlotsTimer;

    fn poll_action(&mut self) -> Option<CheckSlotsAction> {
        let action = self.actions.pop_front()?;
        if let CheckSlotsAction::Expire(_) = action {
            self.undrained_expiries = self.undrained_expiries.saturating_sub(1);
        }
        Some(action)
    }

    fn poll_timeout(&self) -> Option<Deadline<CheckSlotsTimer>> {
        self.queue
            .front()
            .map(|head| Deadline::new(head.expires_at, CheckSlotsTimer::QueueTimeout))
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        self.expire_due(now);
    }
}
