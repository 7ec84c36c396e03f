//! Input sequences for the in-flight machine and its invariant checker.
//!
//! The [`Harness`] keeps its own model of the outstanding drives (tokens,
//! sessions, leases, pokes) and checks every named invariant of
//! [`crate::inflight`] after every step; [`Harness::finish`] checks liveness
//! (`INFLIGHT_EVERY_POKE_DRIVEN`).

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::vec::Vec;
use core::time::Duration;

use super::contract::{drain, timeout_checked};
use super::Violation;
use crate::ensure_invariant;
use crate::inflight::{
    retry_delay, DriveToken, GlobalStatus, InFlight, InFlightAction, InFlightConfig, InFlightError,
    InFlightTimer, PokeOutcome, SessionStatus, MIN_DELAY,
};
use crate::machine::Machine;
use crate::time::Timestamp;

/// Sessions are `0..SESSIONS`: a small space so that inputs collide.
pub const SESSIONS: u8 = 4;

pub use super::Tok;

/// One input to the in-flight machine.
#[derive(Clone, Copy, Debug, arbitrary::Arbitrary)]
pub enum Op {
    /// Advance time by this many milliseconds (then fire due timers).
    Advance(u32),
    /// Jump to the next reported deadline and fire it.
    Wake,
    /// Poke a session (modulo [`SESSIONS`]), or `None`: a global poke.
    Poke(Option<u8>),
    /// The runner started (`on_start`): a global poke the first time when
    /// the config sweeps at start, else nothing.
    Start,
    /// Report `submitted` for a drive, naming `session` (`None`: the drive's
    /// own session, or session 0 for a global drive).
    Submit {
        /// The drive.
        tok: Tok,
        /// The session named.
        session: Option<u8>,
    },
    /// Report `idle` for a drive.
    Idle(Tok),
    /// Report `failed` for a drive.
    Fail(Tok),
    /// Report the completion of a drive's turn.
    Complete(Tok),
    /// Report the completion of a session's turn.
    CompleteSession(u8),
    /// Renew a drive's lease.
    Renew(Tok),
    /// Report a drive's turn finished, possibly before its submission
    /// (`on_turn_finished`).
    TurnFinished(Tok),
    /// Report a session's turn finished, possibly before its submission
    /// (`on_turn_finished_session`).
    TurnFinishedSession(u8),
    /// Report that a drive's call was cancelled (`on_drive_cancelled`), as
    /// the driver does after an [`InFlightAction::CancelDrive`].
    Cancelled(Tok),
}

/// What the harness believes about one outstanding drive.
#[derive(Clone, Copy, Debug)]
struct ModelDrive {
    session: Option<u8>,
    submitted: bool,
    lease_until: Timestamp,
    /// Pokes of its session while it was deciding (not yet submitted).
    pokes: u32,
    /// Its turn was reported finished before it submitted.
    finished_early: bool,
    /// Its lease expired before its call returned: a cancel was asked for,
    /// and the drive stays outstanding until the call's end is reported.
    cancelling: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Report {
    Submit(Option<u8>),
    Idle,
    Fail,
    Complete,
    Renew,
    TurnFinished,
    Cancelled,
}

/// Drives an [`InFlight`] with [`Op`]s and checks every invariant after each.
#[derive(Debug)]
pub struct Harness {
    /// The machine under test.
    pub machine: InFlight<u8>,
    /// Simulated now.
    pub now: Timestamp,
    /// Every action, with the instant it was drained.
    pub log: Vec<(Timestamp, InFlightAction<u8>)>,
    out: BTreeMap<DriveToken, ModelDrive>,
    old: Vec<DriveToken>,
    highest: Option<DriveToken>,
    awaiting: BTreeSet<u8>,
    awaiting_global: bool,
    failures: BTreeMap<u8, u32>,
    global_failures: u32,
    /// The model's own view of `on_start`.
    started: bool,
    sweep_at_start: bool,
    /// A global drive failed and its retry has not been issued yet (the
    /// only way a wanted global drive waits while nothing is outstanding).
    global_retrying: bool,
}

impl Harness {
    /// A fresh machine with `config`.
    pub fn new(config: InFlightConfig) -> Self {
        let sweep_at_start = config.sweep_at_start;
        Harness {
            started: false,
            sweep_at_start,
            global_retrying: false,
            machine: InFlight::new(config),
            now: Timestamp::ZERO,
            log: Vec::new(),
            out: BTreeMap::new(),
            old: Vec::new(),
            highest: None,
            awaiting: BTreeSet::new(),
            awaiting_global: false,
            failures: BTreeMap::new(),
            global_failures: 0,
        }
    }

    /// Apply one input and check every invariant.
    pub fn apply(&mut self, op: Op) -> Result<(), Violation> {
        match op {
            Op::Advance(ms) => {
                self.advance_to(self.now + Duration::from_millis(u64::from(ms)))?;
            }
            Op::Wake => {
                let to = self.machine.poll_timeout().map_or(self.now, |d| d.at);
                self.advance_to(self.now.max(to))?;
            }
            Op::Poke(s) => self.poke(s.map(|s| s % SESSIONS))?,
            Op::Start => self.start()?,
            Op::Submit { tok, session } => {
                let t = self.resolve(tok);
                self.report(t, Report::Submit(session.map(|s| s % SESSIONS)))?;
            }
            Op::Idle(tok) => self.report(self.resolve(tok), Report::Idle)?,
            Op::Fail(tok) => self.report(self.resolve(tok), Report::Fail)?,
            Op::Complete(tok) => self.report(self.resolve(tok), Report::Complete)?,
            Op::Renew(tok) => self.report(self.resolve(tok), Report::Renew)?,
            Op::CompleteSession(s) => self.complete_session(s % SESSIONS)?,
            Op::TurnFinished(tok) => self.report(self.resolve(tok), Report::TurnFinished)?,
            Op::TurnFinishedSession(s) => self.turn_finished_session(s % SESSIONS)?,
            Op::Cancelled(tok) => self.report(self.resolve(tok), Report::Cancelled)?,
        }
        self.check_state()
    }

    /// Liveness: stop poking, answer every drive (idle, or complete once
    /// submitted), wake at every deadline, and require that the machine
    /// drains to idle with no poke left undriven (`INFLIGHT_EVERY_POKE_DRIVEN`).
    pub fn finish(&mut self) -> Result<(), Violation> {
        for _ in 0..10_000 {
            if self.out.is_empty() && self.machine.is_idle() {
                break;
            }
            if self.out.is_empty() {
                let Some(d) = self.machine.poll_timeout() else {
                    return Err(Violation::new(
                        "INFLIGHT_EVERY_POKE_DRIVEN",
                        format!(
                            "stuck: nothing outstanding, not idle, no deadline: {:?}",
                            self.machine.stats()
                        ),
                    ));
                };
                self.advance_to(self.now.max(d.at))?;
                self.check_state()?;
                continue;
            }
            let answers: Vec<(DriveToken, bool, bool)> = self
                .out
                .iter()
                .map(|(t, d)| (*t, d.submitted, d.cancelling))
                .collect();
            for (t, submitted, cancelling) in answers {
                if !self.out.contains_key(&t) {
                    continue;
                }
                let r = if submitted {
                    Report::Complete
                } else if cancelling {
                    Report::Cancelled
                } else {
                    Report::Idle
                };
                self.report(t, r)?;
                self.check_state()?;
            }
        }
        if !self.machine.is_idle() || !self.out.is_empty() {
            return Err(Violation::new(
                "INFLIGHT_EVERY_POKE_DRIVEN",
                format!("did not drain to idle: {:?}", self.machine.stats()),
            ));
        }
        if !self.awaiting.is_empty() || self.awaiting_global {
            return Err(Violation::new(
                "INFLIGHT_EVERY_POKE_DRIVEN",
                format!(
                    "pokes never driven: sessions {:?}, global {}",
                    self.awaiting, self.awaiting_global
                ),
            ));
        }
        Ok(())
    }

    // ---- inputs -------------------------------------------------------

    fn advance_to(&mut self, now: Timestamp) -> Result<(), Violation> {
        self.now = now;
        let lease_expired: Vec<(DriveToken, bool)> = self
            .out
            .iter()
            .filter(|(_, d)| d.lease_until != Timestamp::MAX && d.lease_until <= now)
            .map(|(t, d)| (*t, d.submitted))
            .collect();
        // A submitted drive (its call returned) is recovered at once; one
        // whose call is still running must be cancelled first, and stays
        // outstanding until the cancellation is reported.
        let mut recovered: Vec<Option<u8>> = Vec::new();
        let mut to_cancel: BTreeMap<DriveToken, Option<u8>> = BTreeMap::new();
        for (t, submitted) in &lease_expired {
            if *submitted {
                if let Some(d) = self.out.remove(t) {
                    recovered.push(d.session);
                    self.old.push(*t);
                }
            } else if let Some(d) = self.out.get_mut(t) {
                d.cancelling = true;
                d.lease_until = Timestamp::MAX;
                to_cancel.insert(*t, d.session);
            }
        }
        let fired = timeout_checked(&mut self.machine, now)?;
        for (t, submitted) in &lease_expired {
            let outstanding = self.machine.is_outstanding(*t);
            ensure_invariant!(
                outstanding != *submitted,
                if *submitted {
                    "INFLIGHT_LEASE_RECOVERS"
                } else {
                    "INFLIGHT_NO_OVERLAP"
                },
                "drive {t:?} (submitted: {submitted}) outstanding: {outstanding} after its lease expired at {now:?}"
            );
        }
        let mut cancels: BTreeMap<DriveToken, Option<u8>> = BTreeMap::new();
        for a in &fired {
            if let InFlightAction::CancelDrive { token, session } = a {
                ensure_invariant!(
                    cancels.insert(*token, *session).is_none(),
                    "INFLIGHT_NO_OVERLAP",
                    "drive {token:?} cancelled twice"
                );
            }
        }
        ensure_invariant!(
            cancels == to_cancel,
            "INFLIGHT_NO_OVERLAP",
            "cancels {cancels:?} at {now:?}, expected {to_cancel:?}"
        );
        self.observe(&fired)?;
        for s in recovered {
            self.check_recovered(s, &fired, "INFLIGHT_LEASE_RECOVERS")?;
        }
        Ok(())
    }

    /// A drive of `s` (`None`: global) was recovered: it must be driven again.
    fn check_recovered(
        &self,
        s: Option<u8>,
        acts: &[InFlightAction<u8>],
        invariant: &'static str,
    ) -> Result<(), Violation> {
        match s {
            Some(s) => self.check_redriven_once(s, acts, invariant),
            None => {
                let ok = acts
                    .iter()
                    .any(|a| matches!(a, InFlightAction::Drive { session: None, .. }))
                    || matches!(self.machine.global(), GlobalStatus::Wanted(_));
                ensure_invariant!(ok, invariant, "a recovered global drive was not re-driven");
                Ok(())
            }
        }
    }

    /// `on_start`: the model's own rule: the first call sweeps (as a global
    /// poke) when the config says so; nothing else ever does anything.
    fn start(&mut self) -> Result<(), Violation> {
        let sweeps = !self.started && self.sweep_at_start;
        self.started = true;
        if sweeps {
            // The model's own expectation: with nothing outstanding and no
            // global retry waiting (as at a real start), exactly one global
            // drive at once; otherwise no drive now (it waits, like any
            // global poke, and liveness is checked by `finish`).
            let at_once = self.out.is_empty() && !self.global_retrying;
            let before = self.log.len();
            self.poke_by(None, |m, now| m.on_start(now))?;
            let issued = &self.log[before..];
            let one_global = matches!(issued, [(_, InFlightAction::Drive { session: None, .. })]);
            ensure_invariant!(
                if at_once {
                    one_global
                } else {
                    issued.is_empty()
                },
                "INFLIGHT_SWEEP_AT_START",
                "the start-up sweep (at once: {at_once}) issued {issued:?}"
            );
            return Ok(());
        }
        let outcome = self.machine.on_start(self.now);
        ensure_invariant!(
            outcome.is_none(),
            "INFLIGHT_SWEEP_AT_START",
            "a later or non-sweeping on_start gave {outcome:?}"
        );
        let acts = drain(&mut self.machine)?;
        ensure_invariant!(
            acts.is_empty(),
            "INFLIGHT_SWEEP_AT_START",
            "a later or non-sweeping on_start drove {} time(s)",
            acts.len()
        );
        Ok(())
    }

    fn poke(&mut self, s: Option<u8>) -> Result<(), Violation> {
        self.poke_by(s, |m, now| Some(m.on_poke(now, s)))
    }

    fn poke_by(
        &mut self,
        s: Option<u8>,
        input: impl FnOnce(&mut InFlight<u8>, Timestamp) -> Option<PokeOutcome>,
    ) -> Result<(), Violation> {
        let in_flight = s.and_then(|s| {
            self.out
                .iter()
                .find(|(_, d)| d.session == Some(s))
                .map(|(t, _)| *t)
        });
        let Some(outcome) = input(&mut self.machine, self.now) else {
            return Err(Violation {
                invariant: "INFLIGHT_SWEEP_AT_START",
                detail: "the first on_start of a sweeping config did not poke".into(),
            });
        };
        match s {
            Some(s) => {
                self.awaiting.insert(s);
            }
            None => self.awaiting_global = true,
        }
        if let Some(t) = in_flight {
            ensure_invariant!(
                outcome == PokeOutcome::Coalesced,
                "INFLIGHT_NEVER_TWICE",
                "poke of in-flight session {s:?} gave {outcome:?}"
            );
            if let Some(d) = self.out.get_mut(&t) {
                if !d.submitted {
                    d.pokes += 1;
                }
            }
        }
        let acts = drain(&mut self.machine)?;
        ensure_invariant!(
            (outcome == PokeOutcome::Driving) != acts.is_empty(),
            "INFLIGHT_COALESCE_ONE",
            "poke {s:?} gave {outcome:?} with {} drive(s)",
            acts.len()
        );
        self.observe(&acts)
    }

    fn resolve(&self, tok: Tok) -> DriveToken {
        match tok {
            Tok::Live(i) if !self.out.is_empty() => {
                let i = usize::from(i) % self.out.len();
                self.out
                    .keys()
                    .nth(i)
                    .copied()
                    .unwrap_or(DriveToken::from_raw(0))
            }
            Tok::Old(i) if !self.old.is_empty() => self.old[usize::from(i) % self.old.len()],
            Tok::Live(i) | Tok::Old(i) => DriveToken::from_raw(u64::from(i)),
            Tok::MadeUp(x) => DriveToken::from_raw(x),
        }
    }

    /// The error the machine must return for `r` on `t`, if any.
    fn expected(&self, t: DriveToken, r: Report) -> Result<Option<u8>, InFlightError> {
        let Some(d) = self.out.get(&t) else {
            return Err(InFlightError::StaleToken);
        };
        match r {
            Report::Renew if d.cancelling => Err(InFlightError::StaleToken),
            Report::Renew => Ok(d.session),
            Report::Cancelled => {
                if d.cancelling {
                    Ok(d.session)
                } else {
                    Err(InFlightError::NotCancelling)
                }
            }
            Report::TurnFinished => {
                if d.submitted || !d.finished_early {
                    Ok(d.session)
                } else {
                    Err(InFlightError::NotSubmitted)
                }
            }
            Report::Complete => {
                if d.submitted {
                    Ok(d.session)
                } else {
                    Err(InFlightError::NotSubmitted)
                }
            }
            Report::Idle | Report::Fail => {
                if d.submitted {
                    Err(InFlightError::AlreadySubmitted)
                } else {
                    Ok(d.session)
                }
            }
            Report::Submit(named) => {
                if d.submitted {
                    return Err(InFlightError::AlreadySubmitted);
                }
                match d.session {
                    Some(own) if named.is_some_and(|n| n != own) => {
                        Err(InFlightError::WrongSession)
                    }
                    Some(own) => Ok(Some(own)),
                    None => Ok(Some(named.unwrap_or(0))),
                }
            }
        }
    }

    fn report(&mut self, t: DriveToken, r: Report) -> Result<(), Violation> {
        let expect = self.expected(t, r);
        let before = self.machine.clone();
        let now = self.now;
        let got = match r {
            Report::Submit(named) => {
                let s = match expect {
                    Ok(Some(s)) => s,
                    _ => named.unwrap_or(0),
                };
                self.machine.on_submitted(now, t, s)
            }
            Report::Idle => self.machine.on_idle(now, t),
            Report::Fail => self.machine.on_failed(now, t),
            Report::Complete => self.machine.on_complete(now, t),
            Report::Renew => self.machine.renew_lease(now, t),
            Report::TurnFinished => self.machine.on_turn_finished(now, t),
            Report::Cancelled => self.machine.on_drive_cancelled(now, t),
        };
        let acts = drain(&mut self.machine)?;
        match (expect, got) {
            (Err(e), Err(g)) => {
                ensure_invariant!(
                    e == g,
                    "INFLIGHT_STALE_CHANGES_NOTHING",
                    "{r:?} on {t:?}: expected {e:?}, got {g:?}"
                );
                self.check_unchanged(&before, &acts)
            }
            (Ok(_), Err(g)) => Err(Violation::new(
                "INFLIGHT_STALE_CHANGES_NOTHING",
                format!("a valid {r:?} on {t:?} was refused: {g:?}"),
            )),
            (Err(e), Ok(())) => Err(Violation::new(
                "INFLIGHT_STALE_CHANGES_NOTHING",
                format!("{r:?} on {t:?} was accepted, expected {e:?}"),
            )),
            (Ok(session), Ok(())) => self.accepted(t, r, session, &acts),
        }
    }

    fn complete_session(&mut self, s: u8) -> Result<(), Violation> {
        let found = self
            .out
            .iter()
            .find(|(_, d)| d.session == Some(s))
            .map(|(t, d)| (*t, d.submitted));
        let before = self.machine.clone();
        let got = self.machine.on_complete_session(self.now, &s);
        let acts = drain(&mut self.machine)?;
        match (found, got) {
            (Some((t, true)), Ok(g)) if g == t => {
                self.accepted(t, Report::Complete, Some(s), &acts)
            }
            (Some((_, false)), Err(InFlightError::NotSubmitted))
            | (None, Err(InFlightError::NotInFlight)) => self.check_unchanged(&before, &acts),
            (f, g) => Err(Violation::new(
                "INFLIGHT_STALE_CHANGES_NOTHING",
                format!("complete_session({s}) with model {f:?} gave {g:?}"),
            )),
        }
    }

    fn turn_finished_session(&mut self, s: u8) -> Result<(), Violation> {
        let found = self
            .out
            .iter()
            .find(|(_, d)| d.session == Some(s))
            .map(|(t, _)| *t);
        let expect = match found {
            Some(t) => self.expected(t, Report::TurnFinished).map(|_| t),
            None => Err(InFlightError::NotInFlight),
        };
        let before = self.machine.clone();
        let got = self.machine.on_turn_finished_session(self.now, &s);
        let acts = drain(&mut self.machine)?;
        match (expect, got) {
            (Ok(t), Ok(g)) if g == t => self.accepted(t, Report::TurnFinished, Some(s), &acts),
            (Err(e), Err(g)) if e == g => self.check_unchanged(&before, &acts),
            (e, g) => Err(Violation::new(
                "INFLIGHT_EARLY_FINISH",
                format!("turn_finished_session({s}): expected {e:?}, got {g:?}"),
            )),
        }
    }

    fn check_unchanged(
        &self,
        before: &InFlight<u8>,
        acts: &[InFlightAction<u8>],
    ) -> Result<(), Violation> {
        let mut expect = before.clone();
        expect.counters.stale = expect.counters.stale.saturating_add(1);
        ensure_invariant!(
            acts.is_empty() && self.machine == expect,
            "INFLIGHT_STALE_CHANGES_NOTHING",
            "a refused report changed the machine ({} action(s))",
            acts.len()
        );
        Ok(())
    }

    /// Update the model after an accepted report and check its effects.
    fn accepted(
        &mut self,
        t: DriveToken,
        r: Report,
        session: Option<u8>,
        acts: &[InFlightAction<u8>],
    ) -> Result<(), Violation> {
        let lease = self.machine.config().lease;
        let now = self.now;
        match r {
            Report::Renew => {
                if let Some(d) = self.out.get_mut(&t) {
                    d.lease_until = now.saturating_add(lease);
                }
                self.observe(acts)
            }
            Report::Submit(_) => {
                let mut finished = false;
                if let Some(d) = self.out.get_mut(&t) {
                    if d.session.is_none() {
                        self.global_failures = 0;
                    }
                    d.session = session;
                    d.submitted = true;
                    d.cancelling = false;
                    d.lease_until = now.saturating_add(lease);
                    d.pokes = 0;
                    finished = d.finished_early;
                }
                if let Some(s) = session {
                    self.failures.insert(s, 0);
                }
                if !finished {
                    return self.observe(acts);
                }
                // The turn already finished: the drive completes at once.
                self.retire(t);
                ensure_invariant!(
                    !self.machine.is_outstanding(t),
                    "INFLIGHT_EARLY_FINISH",
                    "drive {t:?} still outstanding after submitting an already finished turn"
                );
                self.observe(acts)?;
                match session {
                    Some(s) => self.check_redriven_once(s, acts, "INFLIGHT_EARLY_FINISH"),
                    None => Ok(()),
                }
            }
            Report::TurnFinished => {
                let submitted = self.out.get(&t).is_some_and(|d| d.submitted);
                if submitted {
                    return self.accepted(t, Report::Complete, session, acts);
                }
                if let Some(d) = self.out.get_mut(&t) {
                    d.finished_early = true;
                }
                ensure_invariant!(
                    acts.is_empty() && self.machine.is_outstanding(t),
                    "INFLIGHT_EARLY_FINISH",
                    "an early finish of {t:?} drove {} session(s) / released the drive",
                    acts.len()
                );
                Ok(())
            }
            Report::Idle => {
                let d = self.retire(t);
                self.observe(acts)?;
                match d.and_then(|d| d.session.map(|s| (s, d.pokes))) {
                    Some((s, pokes)) => {
                        self.failures.insert(s, 0);
                        if pokes > 0 {
                            self.check_redriven_once(s, acts, "INFLIGHT_COALESCE_ONE")
                        } else {
                            let driven = count_drives(acts, s);
                            ensure_invariant!(
                                driven == 0 && self.machine.session(&s).is_none(),
                                "INFLIGHT_COALESCE_ONE",
                                "an unpoked idle session {s} was driven {driven} time(s) / kept as {:?}",
                                self.machine.session(&s)
                            );
                            Ok(())
                        }
                    }
                    None => {
                        self.global_failures = 0;
                        Ok(())
                    }
                }
            }
            Report::Fail => {
                let d = self.retire(t);
                self.observe(acts)?;
                match d.and_then(|d| d.session) {
                    Some(s) => {
                        let f = self
                            .failures
                            .get(&s)
                            .copied()
                            .unwrap_or(0)
                            .saturating_add(1);
                        self.failures.insert(s, f);
                        ensure_invariant!(
                            count_drives(acts, s) == 0,
                            "INFLIGHT_RETRY_BACKOFF",
                            "failed session {s} re-driven at once"
                        );
                        match self.machine.session(&s) {
                            Some(SessionStatus::Retrying { until, failures }) => {
                                ensure_invariant!(
                                    failures == f,
                                    "INFLIGHT_RETRY_BACKOFF",
                                    "session {s}: {failures} failures counted, expected {f}"
                                );
                                self.check_delay(until, f)
                            }
                            None => {
                                self.failures.insert(s, 0);
                                ensure_invariant!(
                                    self.machine.global() != GlobalStatus::Idle,
                                    "INFLIGHT_RETRY_BACKOFF",
                                    "failed session {s} dropped without folding into a global poke"
                                );
                                Ok(())
                            }
                            other => Err(Violation::new(
                                "INFLIGHT_RETRY_BACKOFF",
                                format!("failed session {s} is {other:?}"),
                            )),
                        }
                    }
                    None => {
                        self.global_retrying = true;
                        self.global_failures = self.global_failures.saturating_add(1);
                        match self.machine.global() {
                            GlobalStatus::Retrying { until } => {
                                self.check_delay(until, self.global_failures)
                            }
                            g => Err(Violation::new(
                                "INFLIGHT_RETRY_BACKOFF",
                                format!("a failed global drive left {g:?}"),
                            )),
                        }
                    }
                }
            }
            Report::Cancelled => {
                let d = self.retire(t);
                ensure_invariant!(
                    !self.machine.is_outstanding(t),
                    "INFLIGHT_NO_OVERLAP",
                    "drive {t:?} still outstanding after its cancellation"
                );
                self.observe(acts)?;
                self.check_recovered(d.and_then(|d| d.session), acts, "INFLIGHT_LEASE_RECOVERS")
            }
            Report::Complete => {
                let d = self.retire(t);
                self.observe(acts)?;
                match d.and_then(|d| d.session) {
                    Some(s) => self.check_redriven_once(s, acts, "INFLIGHT_COALESCE_ONE"),
                    None => Err(Violation::new(
                        "INFLIGHT_STALE_CHANGES_NOTHING",
                        "a completion accepted for a drive with no session",
                    )),
                }
            }
        }
    }

    fn retire(&mut self, t: DriveToken) -> Option<ModelDrive> {
        let d = self.out.remove(&t);
        self.old.push(t);
        if self.old.len() > 64 {
            self.old.remove(0);
        }
        d
    }

    fn check_delay(&self, until: Timestamp, failures: u32) -> Result<(), Violation> {
        let c = self.machine.config();
        let d = retry_delay(c.retry_base, c.retry_max, failures).as_nanos() as f64;
        let lo = (d * (1.0 - c.retry_jitter) - 1_000.0).max(MIN_DELAY.as_nanos() as f64);
        let hi = d * (1.0 + c.retry_jitter) + 1_000.0;
        let got = until.saturating_duration_since(self.now).as_nanos() as f64;
        let saturated = until == Timestamp::MAX;
        ensure_invariant!(
            saturated || (lo <= got && got <= hi.max(lo)),
            "INFLIGHT_RETRY_BACKOFF",
            "retry after {failures} failure(s) in {got} ns, expected [{lo}, {hi}]"
        );
        Ok(())
    }

    /// `s` was released and must be driven exactly once more: now, or later
    /// from the pending set, or through the global-poke flag it folded into.
    fn check_redriven_once(
        &self,
        s: u8,
        acts: &[InFlightAction<u8>],
        invariant: &'static str,
    ) -> Result<(), Violation> {
        let driven = count_drives(acts, s);
        let status = self.machine.session(&s);
        let ok = match driven {
            1 => matches!(status, Some(SessionStatus::Driving(_))),
            0 => match status {
                Some(SessionStatus::Pending(_)) => true,
                None => self.machine.global() != GlobalStatus::Idle,
                _ => false,
            },
            _ => false,
        };
        ensure_invariant!(
            ok,
            invariant,
            "session {s} re-driven {driven} time(s), now {status:?} (global {:?})",
            self.machine.global()
        );
        Ok(())
    }

    // ---- checks -------------------------------------------------------

    /// Check every drive issued against the model, then record it.
    fn observe(&mut self, acts: &[InFlightAction<u8>]) -> Result<(), Violation> {
        let lease = self.machine.config().lease;
        let max = self.machine.config().max_in_flight;
        for a in acts {
            self.log.push((self.now, a.clone()));
            let (token, session) = match a {
                InFlightAction::Drive { token, session, .. } => (token, session),
                InFlightAction::CancelDrive { token, session } => {
                    // Only a lease expiry asks for a cancel, and the model
                    // already marked the drive (checked in `advance_to`).
                    let ok = self
                        .out
                        .get(token)
                        .is_some_and(|d| d.cancelling && !d.submitted && d.session == *session);
                    ensure_invariant!(
                        ok,
                        "INFLIGHT_NO_OVERLAP",
                        "unexpected cancel of {token:?} ({session:?}): model {:?}",
                        self.out.get(token)
                    );
                    continue;
                }
            };
            // A call still running (not yet returned, or being cancelled)
            // blocks every drive of its session; a global one, every drive.
            let overlap = self.out.iter().find(|(_, d)| {
                !d.submitted && (session.is_none() || d.session.is_none() || d.session == *session)
            });
            ensure_invariant!(
                overlap.is_none(),
                "INFLIGHT_NO_OVERLAP",
                "drive {token:?} of {session:?} issued while the call of {overlap:?} is outstanding"
            );
            ensure_invariant!(
                self.highest.is_none_or(|h| *token > h),
                "INFLIGHT_FRESH_TOKENS",
                "token {token:?} not above every earlier one ({:?})",
                self.highest
            );
            self.highest = Some(*token);
            match session {
                Some(s) => {
                    ensure_invariant!(
                        !self.out.values().any(|d| d.session == Some(*s)),
                        "INFLIGHT_NEVER_TWICE",
                        "session {s} driven while a drive of it is outstanding"
                    );
                    ensure_invariant!(
                        !self.out.values().any(|d| d.session.is_none()),
                        "INFLIGHT_GLOBAL_EXCLUSIVE",
                        "session {s} driven while a global drive is outstanding"
                    );
                    ensure_invariant!(
                        self.out.len() < max,
                        "INFLIGHT_BOUNDED",
                        "a drive beyond max_in_flight {max}"
                    );
                    self.awaiting.remove(s);
                }
                None => {
                    ensure_invariant!(
                        self.out.is_empty(),
                        "INFLIGHT_GLOBAL_EXCLUSIVE",
                        "global drive while {} drive(s) are outstanding",
                        self.out.len()
                    );
                    self.awaiting_global = false;
                    self.global_retrying = false;
                    let m = &self.machine;
                    self.awaiting.retain(|s| m.session(s).is_some());
                }
            }
            self.out.insert(
                *token,
                ModelDrive {
                    session: *session,
                    submitted: false,
                    lease_until: self.now.saturating_add(lease),
                    pokes: 0,
                    finished_early: false,
                    cancelling: false,
                },
            );
        }
        Ok(())
    }

    fn check_state(&mut self) -> Result<(), Violation> {
        let c = self.machine.config();
        let st = self.machine.stats();
        ensure_invariant!(
            st.in_flight <= c.max_in_flight && st.pending + st.retrying <= c.max_pending,
            "INFLIGHT_BOUNDED",
            "{st:?} beyond max_in_flight {} / max_pending {}",
            c.max_in_flight,
            c.max_pending
        );
        ensure_invariant!(
            st.in_flight == self.out.len()
                && self.out.keys().all(|t| self.machine.is_outstanding(*t)),
            "INFLIGHT_LEASE_RECOVERS",
            "machine has {} drive(s) outstanding, model {:?}",
            st.in_flight,
            self.out
        );
        if self.machine.is_idle() {
            let d = self.machine.poll_timeout();
            let ok = match c.recovery_poll {
                None => d.is_none(),
                Some(every) => d.is_some_and(|d| {
                    d.reason == InFlightTimer::RecoveryPoll
                        && (d.at <= self.now.saturating_add(every) || d.at == Timestamp::MAX)
                }),
            };
            ensure_invariant!(
                ok,
                "INFLIGHT_IDLE_NO_TIMER",
                "idle with deadline {d:?} (recovery poll {:?})",
                c.recovery_poll
            );
        }
        for (t, d) in &self.out {
            if let (true, Some(s)) = (d.cancelling, d.session) {
                let st = self.machine.session(&s);
                ensure_invariant!(
                    st == Some(SessionStatus::Cancelling(*t)),
                    "INFLIGHT_NO_OVERLAP",
                    "session {s} with its call of {t:?} being cancelled is {st:?}"
                );
            }
        }
        // The machine forgets the failure count of a session it no longer holds.
        let m = &self.machine;
        self.failures.retain(|s, _| m.session(s).is_some());
        Ok(())
    }
}

fn count_drives(acts: &[InFlightAction<u8>], s: u8) -> usize {
    acts.iter()
        .filter(|a| matches!(a, InFlightAction::Drive { session: Some(x), .. } if *x == s))
        .count()
}

/// Run a whole sequence from a fresh machine, then the liveness check; the
/// first violation, if any.
pub fn run(config: InFlightConfig, ops: &[Op]) -> Result<Harness, Violation> {
    let mut h = Harness::new(config);
    for op in ops {
        h.apply(*op)?;
    }
    h.finish()?;
    Ok(h)
}
