//! The in-flight machine: which session to drive, and when.
//!
//! Guarantees: see the module docs of [`crate::inflight`]. In short, one
//! drive per session at a time, a global drive only when nothing else is in
//! flight, pokes coalesced into exactly one re-drive, leases, retries with
//! backoff, bounded waiting, and no timer while idle unless a recovery poll
//! is configured.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};

use super::config::InFlightConfig;
use super::retry::{jittered, retry_delay};
use super::stats::{bump, Counters, InFlightStats};
use super::types::{
    DriveReason, DriveToken, GlobalStatus, InFlightAction, InFlightError, InFlightTimer,
    PokeOutcome, SessionStatus,
};
use crate::machine::Machine;
use crate::rng::Prng;
use crate::time::{earliest, Deadline, Timestamp};

/// One outstanding drive.
#[derive(Clone, Debug, PartialEq)]
struct Drive<S> {
    /// The session driven: `None` for a global drive until it submits.
    session: Option<S>,
    /// Whether the drive reported `submitted` (its turn is running).
    submitted: bool,
    /// When the lease expires (`Timestamp::MAX`: never).
    lease_until: Timestamp,
    /// Pokes arrived while it was outstanding: drive once more if it finds
    /// nothing.
    redrive: bool,
    /// Its turn was reported finished before the drive reported
    /// `submitted`: complete it the moment it does.
    finished_early: bool,
    /// Its lease expired before its call returned: the machine asked the
    /// driver to cancel the call and waits for the call's end (no lease
    /// timer meanwhile).
    cancelling: bool,
}

/// What the machine holds for one session (absent: nothing to do).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Slot {
    InFlight(DriveToken),
    Pending(DriveReason),
    Retrying(Timestamp),
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Entry {
    slot: Slot,
    /// Consecutive failed drives; reset by any drive that reports a result
    /// other than failure.
    failures: u32,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Global {
    Idle,
    Wanted(DriveReason),
    Outstanding(DriveToken),
    Retrying(Timestamp),
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKey<S> {
    Lease(DriveToken),
    Retry(S),
    GlobalRetry,
}

/// In-flight dedupe for a queued-work runner, as a sans-IO machine.
///
/// `S` is the session id (any `Ord + Clone`, e.g. `String`).
///
/// ```
/// use tether_core::inflight::{DriveReason, InFlight, InFlightAction, InFlightConfig};
/// use tether_core::{Machine, Timestamp};
///
/// let mut m: InFlight<&str> = InFlight::new(InFlightConfig::default());
/// let t = Timestamp::from_secs(1);
/// m.on_poke(t, Some("a"));
/// let Some(InFlightAction::Drive { token, session, .. }) = m.poll_action() else { panic!() };
/// assert_eq!(session, Some("a"));
/// m.on_poke(t, Some("a")); // in flight: coalesced
/// m.on_poke(t, Some("a"));
/// assert_eq!(m.poll_action(), None);
/// m.on_submitted(t, token, "a").unwrap();
/// m.on_complete(t, token).unwrap(); // completion re-drives the session, once
/// let Some(InFlightAction::Drive { token: t2, reason, .. }) = m.poll_action() else { panic!() };
/// assert_eq!(reason, DriveReason::Completed);
/// assert_eq!(m.poll_action(), None);
/// assert!(m.on_complete(t, token).is_err()); // stale
/// m.on_idle(t, t2).unwrap();
/// assert!(m.is_idle() && m.poll_timeout().is_none());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct InFlight<S> {
    config: InFlightConfig,
    rng: Prng,
    next_token: u64,
    drives: BTreeMap<DriveToken, Drive<S>>,
    sessions: BTreeMap<S, Entry>,
    /// Sessions in `Slot::Pending`, oldest first.
    pending: VecDeque<S>,
    retrying: usize,
    global: Global,
    global_failures: u32,
    timers: BTreeSet<(Timestamp, TimerKey<S>)>,
    /// Since when the machine has been idle (`None` while busy).
    idle_since: Option<Timestamp>,
    actions: VecDeque<InFlightAction<S>>,
    /// Whether `on_start` was called.
    started: bool,
    pub(crate) counters: Counters,
}

impl<S: Ord + Clone> InFlight<S> {
    /// An idle machine with `config` (clamped into range). The origin counts
    /// as the start of idleness: with a recovery poll configured, the first
    /// one is due at `Timestamp::ZERO + recovery_poll`.
    pub fn new(config: InFlightConfig) -> Self {
        let config = config.clamped();
        InFlight {
            rng: Prng::new(config.seed),
            config,
            next_token: 1,
            drives: BTreeMap::new(),
            sessions: BTreeMap::new(),
            pending: VecDeque::new(),
            retrying: 0,
            global: Global::Idle,
            global_failures: 0,
            timers: BTreeSet::new(),
            idle_since: Some(Timestamp::ZERO),
            actions: VecDeque::new(),
            started: false,
            counters: Counters::default(),
        }
    }

    /// The effective (clamped) configuration.
    pub fn config(&self) -> &InFlightConfig {
        &self.config
    }

    /// The runner started. With [`InFlightConfig::sweep_at_start`] (the
    /// default), the first call is a global poke: one sweep finds work
    /// queued before the runner existed, without waiting for a poke. Later
    /// calls, and any call without it, change nothing and return `None`.
    pub fn on_start(&mut self, now: Timestamp) -> Option<PokeOutcome> {
        if self.started {
            return None;
        }
        self.started = true;
        if !self.config.sweep_at_start {
            return None;
        }
        Some(self.on_poke(now, None))
    }

    /// Work may be ready for `session`, or (`None`) for some unknown session.
    ///
    /// - A session in flight, pending or waiting for a retry is not driven
    ///   again: the poke coalesces into its one re-drive.
    /// - A session otherwise starts a drive at once if a slot is free and no
    ///   global drive is wanted or outstanding; else it waits in the pending
    ///   set; if that is full, it folds into the global-poke flag.
    /// - A global poke drives at once only when nothing is in flight;
    ///   otherwise it is remembered (coalesced) and driven once nothing is.
    pub fn on_poke(&mut self, now: Timestamp, session: Option<S>) -> PokeOutcome {
        let outcome = match session {
            None => self.poke_global(now),
            Some(s) => self.poke_session(now, s),
        };
        self.pump(now);
        self.refresh_idle(now);
        outcome
    }

    /// Drive `token` submitted a turn of `session` (for a global drive, this
    /// is where the session becomes known). The session stays in flight until
    /// [`on_complete`](Self::on_complete); the lease restarts now. A global
    /// drive that submitted continues the global sweep once nothing is in
    /// flight.
    pub fn on_submitted(
        &mut self,
        now: Timestamp,
        token: DriveToken,
        session: S,
    ) -> Result<(), InFlightError> {
        let r = self.submitted(now, token, session);
        self.finish_input(now, r)
    }

    /// Drive `token` found nothing ready. The session is released, unless
    /// pokes arrived meanwhile: then it is driven exactly once more.
    pub fn on_idle(&mut self, now: Timestamp, token: DriveToken) -> Result<(), InFlightError> {
        let r = self.idle(now, token);
        self.finish_input(now, r)
    }

    /// Drive `token` failed (the runtime could not be asked). The session is
    /// retried after `retry_base × 2^(failures − 1)` (capped at `retry_max`),
    /// never dropped; if the waiting set is full, it folds into the
    /// global-poke flag instead.
    pub fn on_failed(&mut self, now: Timestamp, token: DriveToken) -> Result<(), InFlightError> {
        let r = self.failed(now, token);
        self.finish_input(now, r)
    }

    /// The turn submitted by drive `token` finished: the session is released
    /// and driven once more (for any follow-up work).
    pub fn on_complete(&mut self, now: Timestamp, token: DriveToken) -> Result<(), InFlightError> {
        let r = self.complete(now, token);
        self.finish_input(now, r)
    }

    /// The running turn of `session` finished (the same as
    /// [`on_complete`](Self::on_complete) with its token, which is returned).
    pub fn on_complete_session(
        &mut self,
        now: Timestamp,
        session: &S,
    ) -> Result<DriveToken, InFlightError> {
        let r = match self.sessions.get(session).map(|e| e.slot) {
            Some(Slot::InFlight(token)) => self.complete(now, token).map(|()| token),
            _ => Err(InFlightError::NotInFlight),
        };
        self.finish_input(now, r)
    }

    /// The turn of drive `token` finished, possibly before the drive reported
    /// its result (a runtime's turn may end before the call that submitted
    /// it returns). If the drive already submitted, this is
    /// [`on_complete`](Self::on_complete). If it is still deciding, the
    /// completion is remembered and applied the moment the drive reports
    /// [`on_submitted`](Self::on_submitted) (the session is then released and
    /// re-driven once, as for any completion); it is discarded if the drive
    /// reports idle or failed, or its lease expires.
    ///
    /// Errors: [`InFlightError::StaleToken`];
    /// [`InFlightError::NotSubmitted`] when a completion is already
    /// remembered for this drive (a duplicate). Either changes nothing.
    pub fn on_turn_finished(
        &mut self,
        now: Timestamp,
        token: DriveToken,
    ) -> Result<(), InFlightError> {
        let r = self.turn_finished(now, token);
        self.finish_input(now, r)
    }

    /// The turn of `session` finished (the same as
    /// [`on_turn_finished`](Self::on_turn_finished) with the token of the
    /// session's drive, which is returned). A global drive's session is only
    /// known once it reports `submitted`: before that, name its token.
    pub fn on_turn_finished_session(
        &mut self,
        now: Timestamp,
        session: &S,
    ) -> Result<DriveToken, InFlightError> {
        let r = match self.sessions.get(session).map(|e| e.slot) {
            Some(Slot::InFlight(token)) => self.turn_finished(now, token).map(|()| token),
            _ => Err(InFlightError::NotInFlight),
        };
        self.finish_input(now, r)
    }

    /// Drive `token` is still alive: its lease restarts now.
    pub fn renew_lease(&mut self, now: Timestamp, token: DriveToken) -> Result<(), InFlightError> {
        let r = match self.drives.get(&token) {
            Some(d) if !d.cancelling => {
                self.set_lease(now, token);
                Ok(())
            }
            // A cancelling drive's lease is over: too late to renew it.
            _ => Err(InFlightError::StaleToken),
        };
        self.finish_input(now, r)
    }

    /// The call of drive `token`, which the machine asked to cancel
    /// ([`InFlightAction::CancelDrive`]), has ended without a result (it was
    /// aborted or dropped). Now, and only now, the lease recovery completes:
    /// the session is released and driven once more (a global drive is
    /// wanted again).
    ///
    /// Errors: [`InFlightError::StaleToken`] for a token not outstanding
    /// (e.g. a second report); [`InFlightError::NotCancelling`] for a drive
    /// the machine did not ask to cancel. Either changes nothing.
    pub fn on_drive_cancelled(
        &mut self,
        now: Timestamp,
        token: DriveToken,
    ) -> Result<(), InFlightError> {
        let r = self.cancelled(now, token);
        self.finish_input(now, r)
    }

    /// Whether nothing is in flight, pending, retrying or wanted.
    pub fn is_idle(&self) -> bool {
        self.drives.is_empty() && self.sessions.is_empty() && self.global == Global::Idle
    }

    /// Whether `token` names an outstanding drive.
    pub fn is_outstanding(&self, token: DriveToken) -> bool {
        self.drives.contains_key(&token)
    }

    /// Where `session` stands; `None` when the machine holds nothing for it.
    pub fn session(&self, session: &S) -> Option<SessionStatus> {
        let e = self.sessions.get(session)?;
        Some(match e.slot {
            Slot::InFlight(t) => match self.drives.get(&t) {
                Some(d) if d.submitted => SessionStatus::Running(t),
                Some(d) if d.cancelling => SessionStatus::Cancelling(t),
                _ => SessionStatus::Driving(t),
            },
            Slot::Pending(r) => SessionStatus::Pending(r),
            Slot::Retrying(until) => SessionStatus::Retrying {
                until,
                failures: e.failures,
            },
        })
    }

    /// Where the global poke stands.
    pub fn global(&self) -> GlobalStatus {
        match self.global {
            Global::Idle => GlobalStatus::Idle,
            Global::Wanted(r) => GlobalStatus::Wanted(r),
            Global::Outstanding(t) => GlobalStatus::Driving(t),
            Global::Retrying(until) => GlobalStatus::Retrying { until },
        }
    }

    /// Gauges and counters.
    pub fn stats(&self) -> InFlightStats {
        let c = self.counters;
        InFlightStats {
            in_flight: self.drives.len(),
            pending: self.pending.len(),
            retrying: self.retrying,
            drives: c.drives,
            coalesced: c.coalesced,
            overflows: c.overflows,
            lease_recoveries: c.lease_recoveries,
            retries: c.retries,
            stale: c.stale,
            recovery_polls: c.recovery_polls,
        }
    }

    // ---- inputs -------------------------------------------------------

    fn poke_global(&mut self, now: Timestamp) -> PokeOutcome {
        match self.global {
            Global::Idle => {
                self.global = Global::Wanted(DriveReason::Poked);
                self.pump(now);
                if matches!(self.global, Global::Outstanding(_)) {
                    PokeOutcome::Driving
                } else {
                    PokeOutcome::Queued
                }
            }
            Global::Outstanding(t) => {
                if let Some(d) = self.drives.get_mut(&t) {
                    d.redrive = true;
                }
                bump(&mut self.counters.coalesced);
                PokeOutcome::Coalesced
            }
            Global::Wanted(_) | Global::Retrying(_) => {
                bump(&mut self.counters.coalesced);
                PokeOutcome::Coalesced
            }
        }
    }

    fn poke_session(&mut self, now: Timestamp, s: S) -> PokeOutcome {
        match self.sessions.get(&s).map(|e| e.slot) {
            Some(Slot::InFlight(t)) => {
                if let Some(d) = self.drives.get_mut(&t) {
                    d.redrive = true;
                }
                bump(&mut self.counters.coalesced);
                PokeOutcome::Coalesced
            }
            Some(Slot::Pending(_) | Slot::Retrying(_)) => {
                bump(&mut self.counters.coalesced);
                PokeOutcome::Coalesced
            }
            None => self.want_drive(now, s, DriveReason::Poked),
        }
    }

    fn submitted(&mut self, now: Timestamp, token: DriveToken, s: S) -> Result<(), InFlightError> {
        let d = self.drives.get(&token).ok_or(InFlightError::StaleToken)?;
        if d.submitted {
            return Err(InFlightError::AlreadySubmitted);
        }
        match d.session.clone() {
            Some(own) => {
                if own != s {
                    return Err(InFlightError::WrongSession);
                }
                if let Some(e) = self.sessions.get_mut(&s) {
                    e.failures = 0;
                }
            }
            None => {
                if matches!(
                    self.sessions.get(&s).map(|e| e.slot),
                    Some(Slot::InFlight(_))
                ) {
                    return Err(InFlightError::AlreadyInFlight);
                }
                // Whatever was waiting for this session is served by this turn
                // (and its completion re-drives the session anyway).
                self.take_entry(&s);
                self.sessions.insert(
                    s.clone(),
                    Entry {
                        slot: Slot::InFlight(token),
                        failures: 0,
                    },
                );
                self.global_failures = 0;
                self.global = Global::Wanted(DriveReason::Sweep);
            }
        }
        let mut finished = false;
        if let Some(d) = self.drives.get_mut(&token) {
            d.submitted = true;
            // A call asked to cancel that returned anyway: its result stands.
            d.cancelling = false;
            d.session = Some(s);
            d.redrive = false;
            finished = d.finished_early;
        }
        self.set_lease(now, token);
        if finished {
            return self.complete(now, token);
        }
        Ok(())
    }

    fn turn_finished(&mut self, now: Timestamp, token: DriveToken) -> Result<(), InFlightError> {
        let d = self
            .drives
            .get_mut(&token)
            .ok_or(InFlightError::StaleToken)?;
        if d.submitted {
            return self.complete(now, token);
        }
        if d.finished_early {
            return Err(InFlightError::NotSubmitted);
        }
        d.finished_early = true;
        Ok(())
    }

    fn idle(&mut self, now: Timestamp, token: DriveToken) -> Result<(), InFlightError> {
        let d = self.drives.get(&token).ok_or(InFlightError::StaleToken)?;
        if d.submitted {
            return Err(InFlightError::AlreadySubmitted);
        }
        let d = self.release(token);
        match d.session {
            None => {
                self.global_failures = 0;
                self.global = if d.redrive {
                    Global::Wanted(DriveReason::Coalesced)
                } else {
                    Global::Idle
                };
            }
            Some(s) => {
                if d.redrive {
                    if let Some(e) = self.sessions.get_mut(&s) {
                        e.failures = 0;
                    }
                    self.want_drive(now, s, DriveReason::Coalesced);
                } else {
                    self.sessions.remove(&s);
                }
            }
        }
        self.pump(now);
        Ok(())
    }

    fn failed(&mut self, now: Timestamp, token: DriveToken) -> Result<(), InFlightError> {
        let d = self.drives.get(&token).ok_or(InFlightError::StaleToken)?;
        if d.submitted {
            return Err(InFlightError::AlreadySubmitted);
        }
        let d = self.release(token);
        match d.session {
            None => {
                self.global_failures = self.global_failures.saturating_add(1);
                let until = self.retry_at(now, self.global_failures);
                self.global = Global::Retrying(until);
                self.timers.insert((until, TimerKey::GlobalRetry));
                bump(&mut self.counters.retries);
            }
            Some(s) => {
                let failures = self.take_entry(&s).saturating_add(1);
                if self.waiting() < self.config.max_pending {
                    let until = self.retry_at(now, failures);
                    self.timers.insert((until, TimerKey::Retry(s.clone())));
                    self.sessions.insert(
                        s,
                        Entry {
                            slot: Slot::Retrying(until),
                            failures,
                        },
                    );
                    self.retrying += 1;
                    bump(&mut self.counters.retries);
                } else {
                    self.fold_into_global();
                }
            }
        }
        self.pump(now);
        Ok(())
    }

    fn complete(&mut self, now: Timestamp, token: DriveToken) -> Result<(), InFlightError> {
        let d = self.drives.get(&token).ok_or(InFlightError::StaleToken)?;
        if !d.submitted {
            return Err(InFlightError::NotSubmitted);
        }
        let d = self.release(token);
        if let Some(s) = d.session {
            self.want_drive(now, s, DriveReason::Completed);
        }
        self.pump(now);
        Ok(())
    }

    fn cancelled(&mut self, now: Timestamp, token: DriveToken) -> Result<(), InFlightError> {
        let d = self.drives.get(&token).ok_or(InFlightError::StaleToken)?;
        if !d.cancelling {
            return Err(InFlightError::NotCancelling);
        }
        let d = self.release(token);
        self.recover(now, token, d.session);
        self.pump(now);
        Ok(())
    }

    /// The lease of drive `token` (already released) is over: release its
    /// session and drive it once more, or want the global drive again.
    fn recover(&mut self, now: Timestamp, token: DriveToken, session: Option<S>) {
        match session {
            None => {
                if self.global == Global::Outstanding(token) {
                    self.global = Global::Wanted(DriveReason::LeaseExpired);
                }
            }
            Some(s) => {
                self.want_drive(now, s, DriveReason::LeaseExpired);
            }
        }
    }

    fn finish_input<T>(
        &mut self,
        now: Timestamp,
        r: Result<T, InFlightError>,
    ) -> Result<T, InFlightError> {
        if r.is_err() {
            bump(&mut self.counters.stale);
        } else {
            self.refresh_idle(now);
        }
        r
    }

    // ---- internals ----------------------------------------------------

    /// Sessions waiting for a slot or a retry.
    fn waiting(&self) -> usize {
        self.pending.len() + self.retrying
    }

    fn can_start_session(&self) -> bool {
        matches!(self.global, Global::Idle | Global::Retrying(_))
            && self.drives.len() < self.config.max_in_flight
    }

    /// Remove whatever the machine holds for `s` (its drive, if any, must
    /// already be released); its failure count.
    fn take_entry(&mut self, s: &S) -> u32 {
        let Some(e) = self.sessions.remove(s) else {
            return 0;
        };
        match e.slot {
            Slot::InFlight(_) => {}
            Slot::Pending(_) => self.pending.retain(|p| p != s),
            Slot::Retrying(until) => {
                self.timers.remove(&(until, TimerKey::Retry(s.clone())));
                self.retrying = self.retrying.saturating_sub(1);
            }
        }
        e.failures
    }

    /// `s` needs a drive: start it, queue it, or fold it into the global flag.
    fn want_drive(&mut self, now: Timestamp, s: S, reason: DriveReason) -> PokeOutcome {
        let failures = self.take_entry(&s);
        if self.pending.is_empty() && self.can_start_session() {
            self.issue(now, Some(s), reason, failures);
            PokeOutcome::Driving
        } else if self.waiting() < self.config.max_pending {
            self.sessions.insert(
                s.clone(),
                Entry {
                    slot: Slot::Pending(reason),
                    failures,
                },
            );
            self.pending.push_back(s);
            PokeOutcome::Queued
        } else {
            self.fold_into_global();
            PokeOutcome::Overflowed
        }
    }

    fn fold_into_global(&mut self) {
        bump(&mut self.counters.overflows);
        match self.global {
            Global::Idle => self.global = Global::Wanted(DriveReason::Overflow),
            Global::Outstanding(t) => {
                if let Some(d) = self.drives.get_mut(&t) {
                    d.redrive = true;
                }
            }
            Global::Wanted(_) | Global::Retrying(_) => {}
        }
    }

    fn issue(&mut self, now: Timestamp, session: Option<S>, reason: DriveReason, failures: u32) {
        let token = DriveToken(self.next_token);
        self.next_token = self.next_token.saturating_add(1);
        let lease_until = now.saturating_add(self.config.lease);
        self.timers.insert((lease_until, TimerKey::Lease(token)));
        match &session {
            Some(s) => {
                self.sessions.insert(
                    s.clone(),
                    Entry {
                        slot: Slot::InFlight(token),
                        failures,
                    },
                );
            }
            None => self.global = Global::Outstanding(token),
        }
        self.drives.insert(
            token,
            Drive {
                session: session.clone(),
                submitted: false,
                lease_until,
                redrive: false,
                finished_early: false,
                cancelling: false,
            },
        );
        bump(&mut self.counters.drives);
        self.actions.push_back(InFlightAction::Drive {
            token,
            session,
            reason,
        });
    }

    /// Forget an outstanding drive (caller checked it exists).
    fn release(&mut self, token: DriveToken) -> Drive<S> {
        let d = self.drives.remove(&token).unwrap_or(Drive {
            session: None,
            submitted: false,
            lease_until: Timestamp::MAX,
            redrive: false,
            finished_early: false,
            cancelling: false,
        });
        self.timers.remove(&(d.lease_until, TimerKey::Lease(token)));
        d
    }

    fn set_lease(&mut self, now: Timestamp, token: DriveToken) {
        let lease_until = now.saturating_add(self.config.lease);
        if let Some(d) = self.drives.get_mut(&token) {
            self.timers.remove(&(d.lease_until, TimerKey::Lease(token)));
            d.lease_until = lease_until;
            self.timers.insert((lease_until, TimerKey::Lease(token)));
        }
    }

    fn retry_at(&mut self, now: Timestamp, failures: u32) -> Timestamp {
        let c = &self.config;
        let d = retry_delay(c.retry_base, c.retry_max, failures);
        now.saturating_add(jittered(d, c.retry_jitter, &mut self.rng))
    }

    /// Start every drive that may start: the wanted global drive once nothing
    /// is in flight (it is a barrier: no session drive starts while it is
    /// wanted), else pending sessions, oldest first, while slots are free.
    fn pump(&mut self, now: Timestamp) {
        loop {
            match self.global {
                Global::Wanted(reason) => {
                    if self.drives.is_empty() {
                        self.issue(now, None, reason, 0);
                    }
                    return;
                }
                Global::Outstanding(_) => return,
                Global::Idle | Global::Retrying(_) => {
                    if self.drives.len() >= self.config.max_in_flight {
                        return;
                    }
                    let Some(s) = self.pending.pop_front() else {
                        return;
                    };
                    let (reason, failures) = match self.sessions.get(&s) {
                        Some(Entry {
                            slot: Slot::Pending(r),
                            failures,
                        }) => (*r, *failures),
                        _ => continue,
                    };
                    self.issue(now, Some(s), reason, failures);
                }
            }
        }
    }

    fn refresh_idle(&mut self, now: Timestamp) {
        if self.is_idle() {
            if self.idle_since.is_none() {
                self.idle_since = Some(now);
            }
        } else {
            self.idle_since = None;
        }
    }

    fn recovery_due(&self) -> Option<Timestamp> {
        let every = self.config.recovery_poll?;
        if !self.is_idle() {
            return None;
        }
        let at = self.idle_since?.saturating_add(every);
        (at != Timestamp::MAX).then_some(at)
    }

    fn fire(&mut self, now: Timestamp, key: TimerKey<S>) {
        match key {
            TimerKey::Lease(token) => {
                let Some(d) = self.drives.get_mut(&token) else {
                    return;
                };
                if d.cancelling {
                    return;
                }
                bump(&mut self.counters.lease_recoveries);
                if !d.submitted {
                    // Its call is still running: driving the session again
                    // now would overlap it (`INFLIGHT_NO_OVERLAP`). Cancel
                    // it, and recover once the driver reports its end.
                    d.cancelling = true;
                    d.lease_until = Timestamp::MAX;
                    let session = d.session.clone();
                    self.actions
                        .push_back(InFlightAction::CancelDrive { token, session });
                    return;
                }
                let d = self.release(token);
                self.recover(now, token, d.session);
            }
            TimerKey::Retry(s) => {
                if matches!(
                    self.sessions.get(&s).map(|e| e.slot),
                    Some(Slot::Retrying(_))
                ) {
                    self.want_drive(now, s, DriveReason::Retry);
                }
            }
            TimerKey::GlobalRetry => {
                if matches!(self.global, Global::Retrying(_)) {
                    self.global = Global::Wanted(DriveReason::Retry);
                }
            }
        }
    }
}

impl<S: Ord + Clone> Machine for InFlight<S> {
    type Action = InFlightAction<S>;
    type TimerReason = InFlightTimer;

    fn poll_action(&mut self) -> Option<InFlightAction<S>> {
        self.actions.pop_front()
    }

    fn poll_timeout(&self) -> Option<Deadline<InFlightTimer>> {
        // `Timestamp::MAX` means "never" (a deadline past the end of time).
        let timer = self
            .timers
            .first()
            .filter(|(at, _)| *at != Timestamp::MAX)
            .map(|(at, key)| {
                let reason = match key {
                    TimerKey::Lease(_) => InFlightTimer::Lease,
                    TimerKey::Retry(_) | TimerKey::GlobalRetry => InFlightTimer::Retry,
                };
                Deadline::new(*at, reason)
            });
        let poll = self
            .recovery_due()
            .map(|at| Deadline::new(at, InFlightTimer::RecoveryPoll));
        earliest(timer, poll)
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        while let Some((at, key)) = self.timers.first().cloned() {
            if at > now || at == Timestamp::MAX {
                break;
            }
            self.timers.remove(&(at, key.clone()));
            self.fire(now, key);
        }
        self.pump(now);
        if matches!(self.recovery_due(), Some(at) if at <= now) {
            bump(&mut self.counters.recovery_polls);
            self.global = Global::Wanted(DriveReason::RecoveryPoll);
            self.pump(now);
        }
        self.refresh_idle(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drive(m: &mut InFlight<&'static str>) -> (DriveToken, Option<&'static str>, DriveReason) {
        let Some(InFlightAction::Drive {
            token,
            session,
            reason,
        }) = m.poll_action()
        else {
            panic!("no drive");
        };
        assert_eq!(m.poll_action(), None);
        (token, session, reason)
    }

    #[test]
    fn a_turn_finished_before_its_submission_completes_on_submission() {
        let t = Timestamp::from_secs(1);
        let mut m = InFlight::new(InFlightConfig::default());
        // Session drive: the runtime's turn ends before `submit` returns.
        m.on_poke(t, Some("a"));
        let (a1, _, _) = drive(&mut m);
        assert_eq!(m.on_turn_finished_session(t, &"a"), Ok(a1));
        assert_eq!(m.poll_action(), None);
        assert_eq!(m.session(&"a"), Some(SessionStatus::Driving(a1)));
        // A second early finish is a duplicate and changes nothing.
        let before = m.clone();
        assert_eq!(m.on_turn_finished(t, a1), Err(InFlightError::NotSubmitted));
        assert_eq!(m.stats().stale, before.stats().stale + 1);
        m.on_submitted(t, a1, "a").unwrap();
        let (a2, s, r) = drive(&mut m);
        assert_eq!((s, r), (Some("a"), DriveReason::Completed));
        assert!(!m.is_outstanding(a1));
        m.on_idle(t, a2).unwrap();
        // Global drive: only the token names it before submission.
        m.on_poke(t, None);
        let (g, s, _) = drive(&mut m);
        assert_eq!(s, None);
        assert_eq!(
            m.on_turn_finished_session(t, &"b"),
            Err(InFlightError::NotInFlight)
        );
        m.on_turn_finished(t, g).unwrap();
        m.on_submitted(t, g, "b").unwrap();
        // The sweep continues first, then "b" is re-driven once.
        let (g2, s, r) = drive(&mut m);
        assert_eq!((s, r), (None, DriveReason::Sweep));
        m.on_idle(t, g2).unwrap();
        let (b, s, r) = drive(&mut m);
        assert_eq!((s, r), (Some("b"), DriveReason::Completed));
        // Discarded when the drive finds nothing after all.
        m.on_turn_finished(t, b).unwrap();
        m.on_idle(t, b).unwrap();
        assert!(m.is_idle());
        // After submission it is a plain completion.
        m.on_poke(t, Some("c"));
        let (c, _, _) = drive(&mut m);
        m.on_submitted(t, c, "c").unwrap();
        m.on_turn_finished(t, c).unwrap();
        let (_, s, r) = drive(&mut m);
        assert_eq!((s, r), (Some("c"), DriveReason::Completed));
    }
}
