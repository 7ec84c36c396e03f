//! [`Poker`]: the cheap, cloneable handle through which the runtime tells
//! the runner that work is queued, or that a turn finished.
//!
//! Guarantees: every call is one input to the in-flight machine, so it
//! keeps the machine's semantics (a session is never driven twice at once,
//! pokes during a drive coalesce into one re-drive, a global poke waits
//! while anything is in flight); calls never block on the runtime; after
//! shutdown every call returns [`RunnerError::Shutdown`] and changes
//! nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tether_core::inflight::{DriveToken, PokeOutcome};

use super::drive::Cell;
use super::error::RunnerError;
use crate::metrics_names::{RUNNER_POKES, RUNNER_STALE_REPORTS};

pub(super) struct Shared {
    pub(super) cell: Arc<Cell>,
    pub(super) closed: AtomicBool,
}

/// Pokes and completions for a [`Runner`](super::Runner). Cheap to clone;
/// usable from any thread (no `.await`).
#[derive(Clone)]
pub struct Poker {
    pub(super) shared: Arc<Shared>,
}

impl std::fmt::Debug for Poker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poker")
            .field("closed", &self.shared.closed.load(Ordering::Acquire))
            .finish()
    }
}

fn outcome_label(o: PokeOutcome) -> &'static str {
    match o {
        PokeOutcome::Driving => "driving",
        PokeOutcome::Queued => "queued",
        PokeOutcome::Coalesced => "coalesced",
        PokeOutcome::Overflowed => "overflowed",
    }
}

impl Poker {
    fn open(&self) -> Result<&Cell, RunnerError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(RunnerError::Shutdown);
        }
        Ok(&self.shared.cell)
    }

    fn poke_inner(&self, session: Option<String>) -> Result<PokeOutcome, RunnerError> {
        let cell = self.open()?;
        let o = cell.with(|m, now| m.on_poke(now, session));
        metrics::counter!(RUNNER_POKES, "outcome" => outcome_label(o)).increment(1);
        Ok(o)
    }

    /// Work may be queued for some session: drive whichever has work, once
    /// nothing is in flight.
    pub fn poke(&self) -> Result<PokeOutcome, RunnerError> {
        self.poke_inner(None)
    }

    /// Work is queued for `session`: drive it unless it is already being
    /// driven or running a turn (then one re-drive follows, however many
    /// pokes arrive meanwhile).
    pub fn poke_session(&self, session: impl Into<String>) -> Result<PokeOutcome, RunnerError> {
        self.poke_inner(Some(session.into()))
    }

    /// The running turn of `session` finished: it is released and driven
    /// once more for follow-up work. May be called before the
    /// `submit_next` that submitted the turn has returned. A session
    /// submitted by a global request is only known once that request
    /// returned; before that, use [`complete_drive`](Self::complete_drive).
    pub fn complete_session(&self, session: &str) -> Result<(), RunnerError> {
        let cell = self.open()?;
        let session = session.to_owned();
        cell.with(|m, now| m.on_turn_finished_session(now, &session))
            .map(|_| ())
            .map_err(refused)
    }

    /// The turn submitted by the drive `token` (see
    /// [`DriveRequest::token`](super::DriveRequest::token)) finished. Like
    /// [`complete_session`](Self::complete_session), but a late report for
    /// an older drive is refused instead of being taken for the current one.
    pub fn complete_drive(&self, token: DriveToken) -> Result<(), RunnerError> {
        let cell = self.open()?;
        cell.with(|m, now| m.on_turn_finished(now, token))
            .map_err(refused)
    }

    /// The turn of drive `token` is still alive: restart its lease, so it
    /// is not recovered as lost.
    pub fn renew_lease(&self, token: DriveToken) -> Result<(), RunnerError> {
        let cell = self.open()?;
        cell.with(|m, now| m.renew_lease(now, token))
            .map_err(refused)
    }
}

fn refused(e: tether_core::inflight::InFlightError) -> RunnerError {
    metrics::counter!(RUNNER_STALE_REPORTS).increment(1);
    RunnerError::Refused(e)
}
