//! The values an [`InFlight`](super::InFlight) exchanges with its driver:
//! tokens, actions, timer reasons, poke outcomes, errors and status views.

use core::fmt;

use crate::time::Timestamp;

/// Identifies one drive. Every [`InFlightAction::Drive`] carries a fresh
/// token; results and completions name it, so a late or duplicated report is
/// recognised and refused ([`InFlightError::StaleToken`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DriveToken(pub(crate) u64);

impl DriveToken {
    /// The token's number (unique per machine, increasing).
    pub const fn get(self) -> u64 {
        self.0
    }

    /// A token from a raw number, e.g. one read back from a log. A token the
    /// machine did not issue (or no longer tracks) is refused as stale.
    pub const fn from_raw(raw: u64) -> Self {
        DriveToken(raw)
    }
}

/// Why a drive was issued (informational: logs, spans, tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriveReason {
    /// A poke for this session, or a global poke.
    Poked,
    /// The session's previous turn completed: drive it again for follow-up
    /// work.
    Completed,
    /// Pokes arrived while the previous drive was deciding; it found nothing,
    /// so one more drive picks up what they announced.
    Coalesced,
    /// The previous drive failed; this is its retry.
    Retry,
    /// The previous drive's lease expired without a result or completion.
    LeaseExpired,
    /// A global drive submitted work, so there may be more: the global sweep
    /// continues until a global drive finds nothing.
    Sweep,
    /// A session did not fit in the pending set and folded into a global
    /// drive.
    Overflow,
    /// The idle recovery poll.
    RecoveryPoll,
}

/// What the in-flight machine asks its driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InFlightAction<S> {
    /// Drive `session` (or, when `None`, whatever session has work ready).
    /// Report the result with [`on_submitted`](super::InFlight::on_submitted),
    /// [`on_idle`](super::InFlight::on_idle) or
    /// [`on_failed`](super::InFlight::on_failed), then the end of the
    /// submitted turn with [`on_complete`](super::InFlight::on_complete).
    Drive {
        /// Names this drive in every later report.
        token: DriveToken,
        /// The session to drive, or `None` for a global drive.
        session: Option<S>,
        /// Why it is driven.
        reason: DriveReason,
    },
    /// The lease of drive `token` expired while its call (the one that
    /// executes its [`Drive`](InFlightAction::Drive)) had not returned:
    /// cancel that call (abort or drop it), then report that it ended with
    /// [`on_drive_cancelled`](super::InFlight::on_drive_cancelled). The
    /// session stays in flight, and nothing is driven in its place, until
    /// then: two calls for one session are never outstanding at once
    /// (`INFLIGHT_NO_OVERLAP`). If the call returns before it could be
    /// cancelled, report its result instead (exactly one of the two).
    CancelDrive {
        /// The drive whose call to cancel.
        token: DriveToken,
        /// Its session, or `None` for a global drive.
        session: Option<S>,
    },
}

/// Why the in-flight machine wants to be woken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InFlightTimer {
    /// A drive's lease expires: recover it.
    Lease,
    /// A failed drive's retry delay has elapsed.
    Retry,
    /// The idle recovery poll is due.
    RecoveryPoll,
}

/// What became of a poke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PokeOutcome {
    /// A drive was issued (drain [`poll_action`](crate::Machine::poll_action)).
    Driving,
    /// Remembered: it is driven when a slot frees (or, for a global poke,
    /// once nothing is in flight).
    Queued,
    /// Folded into a drive already outstanding, wanted or scheduled for
    /// retry: it adds no drive of its own.
    Coalesced,
    /// The pending set was full: folded into the global-poke flag, whose
    /// drive picks up the queued work.
    Overflowed,
}

/// A result, completion or renewal the machine refused. The machine's state
/// is unchanged (only [`InFlightStats::stale`](super::InFlightStats) counts
/// it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InFlightError {
    /// The token was never issued, already finished, or recovered by its
    /// lease.
    StaleToken,
    /// A drive result (submitted, idle or failed) for a drive that already
    /// reported `submitted`: a duplicate.
    AlreadySubmitted,
    /// A completion for a drive that has not reported `submitted` yet (from
    /// [`on_complete`](super::InFlight::on_complete)), or a second early one
    /// (from [`on_turn_finished`](super::InFlight::on_turn_finished)).
    NotSubmitted,
    /// `on_submitted` names another session than the one the drive was for.
    WrongSession,
    /// `on_complete_session` for a session with no outstanding drive.
    NotInFlight,
    /// A global drive reports a session that is already in flight (only a
    /// driver bug can cause it; refused so the session is not tracked twice).
    AlreadyInFlight,
    /// [`on_drive_cancelled`](super::InFlight::on_drive_cancelled) for a
    /// drive the machine did not ask to cancel (no
    /// [`InFlightAction::CancelDrive`] for it, or its call already returned).
    NotCancelling,
}

impl fmt::Display for InFlightError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            InFlightError::StaleToken => "stale or unknown drive token",
            InFlightError::AlreadySubmitted => "duplicate result: the drive already submitted",
            InFlightError::NotSubmitted => "completion for a drive that has not submitted",
            InFlightError::WrongSession => "the drive submitted another session than requested",
            InFlightError::NotInFlight => "the session has no outstanding drive",
            InFlightError::AlreadyInFlight => "the session is already in flight",
            InFlightError::NotCancelling => "the drive was not asked to cancel",
        };
        f.write_str(s)
    }
}

/// Where one session stands, as seen by [`InFlight::session`](super::InFlight::session).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionStatus {
    /// A drive was issued and has not reported its result.
    Driving(DriveToken),
    /// The drive submitted a turn that has not completed.
    Running(DriveToken),
    /// The drive's lease expired before its call returned: the machine asked
    /// for the call to be cancelled ([`InFlightAction::CancelDrive`]) and
    /// drives the session again once it has ended.
    Cancelling(DriveToken),
    /// Waiting for a slot (or for the global drive to finish).
    Pending(DriveReason),
    /// Waiting for the retry of a failed drive.
    Retrying {
        /// When the retry is due.
        until: Timestamp,
        /// Consecutive failed drives of this session.
        failures: u32,
    },
}

/// Where the global poke stands, as seen by [`InFlight::global`](super::InFlight::global).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GlobalStatus {
    /// No global drive is wanted.
    Idle,
    /// A global drive is wanted and waits until nothing is in flight; no new
    /// session drive starts meanwhile.
    Wanted(DriveReason),
    /// A global drive is outstanding (nothing else is driven meanwhile).
    Driving(DriveToken),
    /// A global drive failed; its retry is due at `until`.
    Retrying {
        /// When the retry is due.
        until: Timestamp,
    },
}
