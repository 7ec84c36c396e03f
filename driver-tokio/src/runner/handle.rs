//! What the runner asks of the agent runtime: [`RunnerHandle`], the one
//! call that submits the next queued turn, and its request and answer.
//!
//! Guarantees: the runner calls [`RunnerHandle::submit_next`] only for a
//! drive the core's in-flight machine issued, so never for a session that
//! is already being driven or running a turn, and never while a global
//! request (`session: None`) is outstanding alongside anything else; a
//! lease expiry does not lift this: a call that outlived its lease is
//! cancelled before its session is requested again.

use async_trait::async_trait;
use tether_core::inflight::{DriveReason, DriveToken};

/// A boxed error, as returned by a failing [`RunnerHandle::submit_next`].
pub type DriveError = Box<dyn std::error::Error + Send + Sync>;

/// One request to submit work: which session (or any), why, and whether
/// finding nothing is worth a trace line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriveRequest {
    /// Names this drive. Report the end of the turn it submits with
    /// [`Poker::complete_drive`](super::Poker::complete_drive) (or
    /// [`Poker::complete_session`](super::Poker::complete_session)), and
    /// keep a long turn alive with
    /// [`Poker::renew_lease`](super::Poker::renew_lease).
    pub token: DriveToken,
    /// The session whose next queued turn to submit, or `None`: submit the
    /// next queued turn of any session.
    pub session: Option<String>,
    /// Why the runner drives now (informational).
    pub reason: DriveReason,
    /// Whether "nothing was ready" is noteworthy for this request (see
    /// [`traces_idle`]); when `false` the runtime should not log it above
    /// trace level.
    pub trace_idle: bool,
}

/// What [`RunnerHandle::submit_next`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Submission {
    /// A turn of this session was submitted. For a request naming a
    /// session it must be that session. The session counts as running
    /// until its completion is reported.
    Submitted(String),
    /// No turn was ready.
    NothingReady,
}

/// The agent runtime, as the runner sees it.
///
/// Implement it on whatever owns the runtime's per-session work queues. A
/// turn's completion is reported separately, through a
/// [`Poker`](super::Poker), and may be reported even before `submit_next`
/// returns.
#[async_trait]
pub trait RunnerHandle: Send + Sync + 'static {
    /// Submit the next queued turn of `request.session` (or of any session
    /// when it is `None`) and say which session it submitted, or that
    /// nothing was ready. An error is retried with backoff by the runner.
    ///
    /// A call still running when its drive's lease expires is cancelled:
    /// its future is dropped at its next `.await`, and only then is the
    /// session driven again. Make it cancel-safe (a turn is either
    /// submitted and reported, or not started), or renew the lease
    /// ([`Poker::renew_lease`](super::Poker::renew_lease)) while it is
    /// legitimately slow.
    async fn submit_next(&self, request: DriveRequest) -> Result<Submission, DriveError>;
}

/// Whether a drive issued for `reason` should trace "nothing ready": yes
/// when a poke, a retry or a recovery announced work; no for the routine
/// re-drive after a completion, the last drive of a global sweep and the
/// idle recovery poll, which usually find nothing.
pub fn traces_idle(reason: DriveReason) -> bool {
    !matches!(
        reason,
        DriveReason::Completed | DriveReason::Sweep | DriveReason::RecoveryPoll
    )
}
