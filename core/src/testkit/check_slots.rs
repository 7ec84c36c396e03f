//! Input sequences for the check-slot machine, its reference model and its
//! invariant checker.
//!
//! The [`Harness`] drives a [`CheckSlots`] next to a small reference model
//! written from the rules in [`crate::check_slots`] (plain vectors and its
//! own counters; it calls none of the machine's code) and after every step
//! checks the invariants named there, the contract invariants, and
//! `SLOTS_MATCHES_MODEL`: every admission answer, every drained action, the
//! stats, every issued check's state and the reported deadline equal the
//! model's. [`run`] ends every sequence with [`Harness::finish`], which lets
//! every queued check run out its wait and releases every slot, so
//! `SLOTS_WAIT_BOUNDED`'s "every queued check ends exactly once" is checked
//! to the end.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use core::time::Duration;

use super::contract::{drain, timeout_checked};
use super::Violation;
use crate::check_slots::{
    Admission, CheckSlots, CheckSlotsAction, CheckSlotsConfig, CheckSlotsTimer, SlotId,
    SlotRefusal, SlotState, SlotStats,
};
use crate::ensure_invariant;
use crate::machine::Machine;
use crate::time::Timestamp;

pub use super::Tok;

/// One input to the check-slot machine (or to the harness around it).
#[derive(Clone, Copy, Debug, arbitrary::Arbitrary)]
pub enum Op {
    /// A check wants to start (`on_request`).
    Request,
    /// A check ended (`on_release`): one in flight or queued ([`Tok::Live`]),
    /// one that already ended ([`Tok::Old`]), or any id at all.
    Release(Tok),
    /// A check's caller gave up (`on_cancel`), chosen as for `Release`.
    Cancel(Tok),
    /// Advance time by this many milliseconds and do nothing else (a late
    /// driver: the next input sees the new time first).
    Advance(u32),
    /// `handle_timeout(now)`, due or early.
    Timeout,
    /// Jump to the reported deadline, if any, and `handle_timeout` there.
    Wake,
    /// Drain the undrained actions.
    Drain,
    /// Whether to drain after every input (the driver contract; the
    /// default) or only on [`Op::Drain`] and before a timeout (a lazy
    /// driver, which exercises the bounds on undrained actions).
    AutoDrain(bool),
}

/// Everything the machine answered, in order: two runs of the same inputs
/// must produce equal transcripts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    /// A request's answer.
    Admission(Admission),
    /// A drained action.
    Action(CheckSlotsAction),
    /// The reported deadline after a step.
    Deadline(Option<Timestamp>),
}

/// A queued check in the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ModelWaiting {
    id: SlotId,
    since: Timestamp,
    expires_at: Timestamp,
}

/// What a request should be answered, before its id is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Admitted,
    Queued,
    Refused { queued: usize },
}

/// What a release or cancel should do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LetGo {
    /// It held a slot: freed.
    Freed,
    /// It was queued: withdrawn.
    Withdrawn,
    /// Unknown or ended: nothing.
    Nothing,
}

/// The reference model: the rules of [`crate::check_slots`], written out
/// with vectors.
#[derive(Clone, Debug)]
struct Model {
    max_in_flight: usize,
    max_queued: usize,
    queue_timeout: Duration,
    in_flight: Vec<SlotId>,
    /// Waiting checks, in request order.
    queue: Vec<ModelWaiting>,
    /// Actions the machine has queued and the harness not yet drained.
    pending: Vec<CheckSlotsAction>,
    admitted: u64,
    queued: u64,
    expired: u64,
    refused: u64,
}

impl Model {
    fn new(config: &CheckSlotsConfig) -> Self {
        // The documented clamps: `max_in_flight` at least 1,
        // `queue_timeout` at least 1 ms.
        let max_in_flight = if config.max_in_flight == 0 {
            1
        } else {
            config.max_in_flight
        };
        let queue_timeout = if config.queue_timeout < Duration::from_millis(1) {
            Duration::from_millis(1)
        } else {
            config.queue_timeout
        };
        Model {
            max_in_flight,
            max_queued: config.max_queued,
            queue_timeout,
            in_flight: Vec::new(),
            queue: Vec::new(),
            pending: Vec::new(),
            admitted: 0,
            queued: 0,
            expired: 0,
            refused: 0,
        }
    }

    fn undrained_expiries(&self) -> usize {
        self.pending
            .iter()
            .filter(|a| matches!(a, CheckSlotsAction::Expire(_)))
            .count()
    }

    /// Refuse every waiting check whose deadline is reached at `now`, in
    /// queue order (any of them, not only a prefix).
    fn expire(&mut self, now: Timestamp) {
        let mut kept = Vec::new();
        for w in self.queue.drain(..) {
            if w.expires_at <= now {
                self.pending.push(CheckSlotsAction::Expire(w.id));
                self.expired += 1;
            } else {
                kept.push(w);
            }
        }
        self.queue = kept;
    }

    /// The answer a request at `now` should get (expiring what is due
    /// first when every slot is in use).
    fn expect_request(&mut self, now: Timestamp) -> Expect {
        if self.in_flight.len() < self.max_in_flight {
            return Expect::Admitted;
        }
        // Expiries undrained from earlier inputs count; this input's do not.
        let earlier = self.undrained_expiries();
        self.expire(now);
        if self.queue.len() + earlier >= self.max_queued {
            Expect::Refused {
                queued: self.queue.len(),
            }
        } else {
            Expect::Queued
        }
    }

    fn admit_now(&mut self, id: SlotId) {
        self.in_flight.push(id);
        self.admitted += 1;
    }

    fn enqueue(&mut self, id: SlotId, now: Timestamp) {
        let since = match self.queue.last() {
            Some(tail) if tail.since > now => tail.since,
            _ => now,
        };
        self.queue.push(ModelWaiting {
            id,
            since,
            expires_at: since + self.queue_timeout,
        });
        self.queued += 1;
    }

    fn let_go(&mut self, now: Timestamp, id: SlotId) -> LetGo {
        if let Some(i) = self.in_flight.iter().position(|x| *x == id) {
            self.in_flight.remove(i);
            self.pending.retain(|a| *a != CheckSlotsAction::Admit(id));
            self.expire(now);
            if !self.queue.is_empty() {
                let head = self.queue.remove(0);
                self.in_flight.push(head.id);
                self.pending.push(CheckSlotsAction::Admit(head.id));
                self.admitted += 1;
            }
            LetGo::Freed
        } else if let Some(i) = self.queue.iter().position(|w| w.id == id) {
            self.queue.remove(i);
            LetGo::Withdrawn
        } else {
            LetGo::Nothing
        }
    }

    fn stats(&self) -> SlotStats {
        SlotStats {
            in_flight: self.in_flight.len(),
            queued: self.queue.len(),
            admitted_total: self.admitted,
            queued_total: self.queued,
            expired_total: self.expired,
            refused_total: self.refused,
            max_in_flight: self.max_in_flight,
            max_queued: self.max_queued,
        }
    }

    fn state(&self, id: SlotId) -> Option<SlotState> {
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

    /// The earliest deadline of any waiting check.
    fn deadline(&self) -> Option<Timestamp> {
        self.queue.iter().map(|w| w.expires_at).min()
    }

    fn live(&self) -> BTreeSet<SlotId> {
        self.in_flight
            .iter()
            .copied()
            .chain(self.queue.iter().map(|w| w.id))
            .collect()
    }
}

/// How a queued check's wait ended, as the driver saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// An `Admit` naming it was drained.
    Admitted,
    /// An `Expire` naming it was drained.
    Expired,
    /// It was released or cancelled before either was drained.
    LetGo,
}

/// What the harness remembers of every id the machine issued.
#[derive(Clone, Copy, Debug)]
struct Issued {
    /// Its request's number among all requests (request order).
    seq: u64,
    /// Whether it was answered `Queued`.
    queued: bool,
    /// How its wait ended, for a queued check.
    end: Option<End>,
}

/// Drives a [`CheckSlots`] with [`Op`]s and checks every invariant after
/// each.
#[derive(Debug)]
pub struct Harness {
    /// The machine under test.
    pub machine: CheckSlots,
    /// Simulated now.
    pub now: Timestamp,
    /// Everything the machine answered.
    pub transcript: Vec<Observed>,
    model: Model,
    auto_drain: bool,
    issued: BTreeMap<SlotId, Issued>,
    requests: u64,
    /// The request number of the last `Admit` or `Expire` drained.
    last_from_queue: Option<u64>,
}

impl Harness {
    /// A fresh machine with `config`, at time zero, draining after every
    /// input.
    pub fn new(config: CheckSlotsConfig) -> Self {
        Harness {
            model: Model::new(&config),
            machine: CheckSlots::new(config),
            now: Timestamp::ZERO,
            transcript: Vec::new(),
            auto_drain: true,
            issued: BTreeMap::new(),
            requests: 0,
            last_from_queue: None,
        }
    }

    /// Apply one input and check every invariant.
    pub fn apply(&mut self, op: Op) -> Result<(), Violation> {
        let input = match op {
            Op::Request => {
                self.request()?;
                true
            }
            Op::Release(tok) => {
                let id = self.resolve(tok);
                self.let_go(id, false)?;
                true
            }
            Op::Cancel(tok) => {
                let id = self.resolve(tok);
                self.let_go(id, true)?;
                true
            }
            Op::Advance(ms) => {
                self.now = self.now + Duration::from_millis(u64::from(ms));
                false
            }
            Op::Timeout => {
                self.timeout()?;
                false
            }
            Op::Wake => {
                if let Some(d) = self.machine.poll_timeout() {
                    self.now = self.now.max(d.at);
                }
                self.timeout()?;
                false
            }
            Op::Drain => {
                self.drain()?;
                false
            }
            Op::AutoDrain(on) => {
                self.auto_drain = on;
                false
            }
        };
        if input && self.auto_drain {
            self.drain()?;
        }
        self.check_state()
    }

    /// End the run: drain, let every queued check run out its wait, then
    /// release every slot. Every check answered `Queued` must have ended
    /// exactly once (`SLOTS_WAIT_BOUNDED`), and nothing may be left.
    pub fn finish(&mut self) -> Result<(), Violation> {
        self.drain()?;
        self.check_state()?;
        let rounds = self.model.queue.len() + 2;
        for _ in 0..rounds {
            let Some(d) = self.machine.poll_timeout() else {
                break;
            };
            self.now = self.now.max(d.at);
            self.timeout()?;
            self.check_state()?;
        }
        ensure_invariant!(
            self.machine.stats().queued == 0 && self.machine.poll_timeout().is_none(),
            "SLOTS_WAIT_BOUNDED",
            "checks still queued after every deadline passed: {:?}",
            self.machine.stats()
        );
        for (id, issued) in &self.issued {
            ensure_invariant!(
                !issued.queued || issued.end.is_some(),
                "SLOTS_WAIT_BOUNDED",
                "queued check {id:?} never ended (no Admit, no Expire, no cancel)"
            );
        }
        let in_flight = self.model.in_flight.clone();
        for id in in_flight {
            self.let_go(id, false)?;
            self.drain()?;
            self.check_state()?;
        }
        let stats = self.machine.stats();
        ensure_invariant!(
            stats.in_flight == 0 && stats.queued == 0 && self.machine.poll_timeout().is_none(),
            "SLOTS_RELEASE_EXACT",
            "state left after releasing every check: {stats:?}"
        );
        Ok(())
    }

    /// The id an input names.
    fn resolve(&self, tok: Tok) -> SlotId {
        match tok {
            Tok::Live(i) => {
                let live = self.model.live();
                if live.is_empty() {
                    return SlotId(u64::from(i));
                }
                let n = usize::from(i) % live.len();
                live.iter().nth(n).copied().unwrap_or(SlotId(0))
            }
            Tok::Old(i) => {
                let live = self.model.live();
                let old: Vec<SlotId> = self
                    .issued
                    .keys()
                    .filter(|id| !live.contains(id))
                    .copied()
                    .collect();
                if old.is_empty() {
                    return SlotId(u64::from(i));
                }
                old[usize::from(i) % old.len()]
            }
            Tok::MadeUp(x) => SlotId(x),
        }
    }

    fn request(&mut self) -> Result<(), Violation> {
        let now = self.now;
        let before = self.model.queue.clone();
        let want = self.model.expect_request(now);
        let got = self.machine.on_request(now);
        self.transcript.push(Observed::Admission(got));
        match (want, got) {
            (Expect::Admitted, Admission::Admitted(id)) => {
                self.issue(id, false)?;
                self.model.admit_now(id);
            }
            (Expect::Queued, Admission::Queued(id)) => {
                self.issue(id, true)?;
                self.model.enqueue(id, now);
            }
            (
                Expect::Refused { queued },
                Admission::Refused(SlotRefusal::QueueFull { queued: q }),
            ) => {
                ensure_invariant!(
                    q == queued,
                    "SLOTS_MATCHES_MODEL",
                    "refused with {q} queued, model {queued}"
                );
                self.model.refused += 1;
            }
            (want, got) => {
                let name = match (want, got) {
                    (_, Admission::Admitted(_)) => "SLOTS_IN_FLIGHT_BOUNDED",
                    (Expect::Admitted, _) => "SLOTS_WORK_CONSERVING",
                    _ => "SLOTS_QUEUE_BOUNDED",
                };
                return Err(Violation::new(
                    name,
                    alloc::format!(
                        "on_request({now:?}) = {got:?}, expected {want:?} with {:?}",
                        self.model.stats()
                    ),
                ));
            }
        }
        self.check_waits(&before, None, false)
    }

    /// Record a freshly issued id.
    fn issue(&mut self, id: SlotId, queued: bool) -> Result<(), Violation> {
        ensure_invariant!(
            !self.issued.contains_key(&id),
            "SLOTS_RELEASE_EXACT",
            "id {id:?} issued twice: a stale release of the first would free the second"
        );
        self.issued.insert(
            id,
            Issued {
                seq: self.requests,
                queued,
                end: None,
            },
        );
        self.requests += 1;
        Ok(())
    }

    fn let_go(&mut self, id: SlotId, cancel: bool) -> Result<(), Violation> {
        let now = self.now;
        let before = self.model.queue.clone();
        let stats = self.machine.stats();
        let deadline = self.machine.poll_timeout();
        let want = self.model.let_go(now, id);
        if cancel {
            self.machine.on_cancel(now, id);
        } else {
            self.machine.on_release(now, id);
        }
        match want {
            LetGo::Nothing => {
                ensure_invariant!(
                    self.machine.stats() == stats && self.machine.poll_timeout() == deadline,
                    "SLOTS_RELEASE_EXACT",
                    "letting go of {id:?} (unknown or ended) changed {stats:?} -> {:?}, \
                     deadline {deadline:?} -> {:?}",
                    self.machine.stats(),
                    self.machine.poll_timeout()
                );
            }
            LetGo::Freed | LetGo::Withdrawn => {
                // A queued check whose wait had not ended for the driver
                // (still queued, or its `Admit` undrained) ends here.
                if let Some(issued) = self.issued.get_mut(&id) {
                    if issued.queued && issued.end.is_none() {
                        issued.end = Some(End::LetGo);
                    }
                }
                ensure_invariant!(
                    self.machine.slot(id).is_none(),
                    "SLOTS_RELEASE_EXACT",
                    "{id:?} still held after its release or cancel"
                );
            }
        }
        self.check_waits(&before, Some(id), false)
    }

    fn timeout(&mut self) -> Result<(), Violation> {
        self.drain()?;
        let now = self.now;
        let before = self.model.queue.clone();
        self.model.expire(now);
        let fired = timeout_checked(&mut self.machine, now)?;
        self.check_waits(&before, None, true)?;
        self.observe(fired)
    }

    /// Drain the machine and compare with the model's undrained actions.
    fn drain(&mut self) -> Result<(), Violation> {
        let got = drain(&mut self.machine)?;
        self.observe(got)
    }

    /// Check drained actions: each names a queued check whose wait had not
    /// ended, in request order, and they are exactly the model's.
    fn observe(&mut self, got: Vec<CheckSlotsAction>) -> Result<(), Violation> {
        for a in &got {
            let (id, end) = match *a {
                CheckSlotsAction::Admit(id) => (id, End::Admitted),
                CheckSlotsAction::Expire(id) => (id, End::Expired),
            };
            let Some(issued) = self.issued.get_mut(&id) else {
                return Err(Violation::new(
                    "SLOTS_WAIT_BOUNDED",
                    alloc::format!("{a:?} names an id never issued"),
                ));
            };
            ensure_invariant!(
                issued.queued,
                "SLOTS_WAIT_BOUNDED",
                "{a:?} names a check that was admitted at once, never queued"
            );
            ensure_invariant!(
                issued.end.is_none(),
                "SLOTS_WAIT_BOUNDED",
                "{a:?} for a check whose wait already ended ({:?})",
                issued.end
            );
            issued.end = Some(end);
            ensure_invariant!(
                self.last_from_queue.is_none_or(|last| last < issued.seq),
                "SLOTS_FIFO",
                "{a:?} (request #{}) after request #{:?} left the queue",
                issued.seq,
                self.last_from_queue
            );
            self.last_from_queue = Some(issued.seq);
        }
        let want = core::mem::take(&mut self.model.pending);
        ensure_invariant!(
            got == want,
            "SLOTS_MATCHES_MODEL",
            "drained {got:?}, model {want:?}"
        );
        self.transcript
            .extend(got.into_iter().map(Observed::Action));
        Ok(())
    }

    /// After an input at `now`, every check that was queued before it and
    /// has left the queue left it rightly: admitted only before its
    /// deadline, gone only at or after it (or withdrawn by this input); and
    /// after `handle_timeout`, none still queued has reached its deadline.
    fn check_waits(
        &self,
        before: &[ModelWaiting],
        withdrawn: Option<SlotId>,
        timeout: bool,
    ) -> Result<(), Violation> {
        let now = self.now;
        for w in before {
            match self.machine.slot(w.id) {
                Some(SlotState::InFlight) => ensure_invariant!(
                    now < w.expires_at,
                    "SLOTS_WAIT_BOUNDED",
                    "{:?} admitted at {now:?}, its wait ended at {:?}",
                    w.id,
                    w.expires_at
                ),
                None if withdrawn != Some(w.id) => ensure_invariant!(
                    w.expires_at <= now,
                    "SLOTS_WAIT_BOUNDED",
                    "{:?} left the queue at {now:?} unadmitted, before its deadline {:?}",
                    w.id,
                    w.expires_at
                ),
                None => {}
                Some(SlotState::Queued { expires_at }) => ensure_invariant!(
                    !timeout || expires_at > now,
                    "SLOTS_WAIT_BOUNDED",
                    "{:?} still queued after handle_timeout({now:?}), deadline {expires_at:?}",
                    w.id
                ),
            }
        }
        Ok(())
    }

    fn check_state(&mut self) -> Result<(), Violation> {
        let m = &self.model;
        let s = self.machine.stats();
        ensure_invariant!(
            s.in_flight <= m.max_in_flight && s.max_in_flight == m.max_in_flight,
            "SLOTS_IN_FLIGHT_BOUNDED",
            "{s:?}, bound {}",
            m.max_in_flight
        );
        let expiries = m.undrained_expiries();
        let admits = m.pending.len() - expiries;
        ensure_invariant!(
            s.queued <= m.max_queued
                && s.queued + expiries <= m.max_queued.saturating_mul(2)
                && admits <= s.in_flight
                && s.max_queued == m.max_queued,
            "SLOTS_QUEUE_BOUNDED",
            "{s:?} with {expiries} undrained expiries and {admits} undrained admissions, \
             bound {}",
            m.max_queued
        );
        ensure_invariant!(
            s.queued == 0 || s.in_flight == m.max_in_flight,
            "SLOTS_WORK_CONSERVING",
            "{} queued with {} of {} slots in use",
            s.queued,
            s.in_flight,
            m.max_in_flight
        );
        let want = m.stats();
        ensure_invariant!(
            s == want,
            "SLOTS_MATCHES_MODEL",
            "stats {s:?}, model {want:?}"
        );
        for id in self.issued.keys() {
            let got = self.machine.slot(*id);
            let want = m.state(*id);
            ensure_invariant!(
                got == want,
                "SLOTS_MATCHES_MODEL",
                "{id:?} is {got:?}, model {want:?}"
            );
        }
        let got = self.machine.poll_timeout();
        let want = m
            .deadline()
            .map(|at| crate::time::Deadline::new(at, CheckSlotsTimer::QueueTimeout));
        ensure_invariant!(
            got == want,
            "SLOTS_MATCHES_MODEL",
            "poll_timeout {got:?}, model {want:?}"
        );
        self.transcript.push(Observed::Deadline(got.map(|d| d.at)));
        Ok(())
    }
}

/// Run a whole sequence from a fresh machine, then [`Harness::finish`];
/// the first violation, if any.
pub fn run(config: CheckSlotsConfig, ops: &[Op]) -> Result<Harness, Violation> {
    let mut h = Harness::new(config);
    for op in ops {
        h.apply(*op)?;
    }
    h.finish()?;
    Ok(h)
}
