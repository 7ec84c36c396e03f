//! The waiters' outputs: actions, timer reasons and counters.

use super::decision::ApprovalOutcome;
use super::waiter::ApprovalWaiterId;

/// What the approval machine asks its driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApprovalAction {
    /// Wake `waiter` with its outcome. Emitted exactly once per waiter that
    /// was not cancelled first. The request id is not repeated: whoever
    /// called [`ApprovalWaiters::wait`](super::ApprovalWaiters::wait) knows
    /// it, so the machine neither shares nor copies its text per waiter.
    Resolved {
        /// The waiter.
        waiter: ApprovalWaiterId,
        /// What it learns.
        outcome: ApprovalOutcome,
    },
}

impl ApprovalAction {
    /// The waiter this action is for.
    pub fn waiter(&self) -> ApprovalWaiterId {
        match self {
            ApprovalAction::Resolved { waiter, .. } => *waiter,
        }
    }
}

/// Why the approval machine wants to be woken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApprovalTimer {
    /// A waiter's deadline passes.
    WaiterDeadline,
    /// A kept verdict is no longer kept.
    VerdictExpiry,
}

/// Counters since construction (all saturating), plus current sizes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApprovalStats {
    /// Waiters waiting now.
    pub waiting: usize,
    /// Verdicts kept now.
    pub kept_verdicts: usize,
    /// Resolutions queued and not yet drained.
    pub undelivered: usize,
    /// `Approved` resolutions delivered.
    pub approved: u64,
    /// `Denied` resolutions delivered.
    pub denied: u64,
    /// `TimedOut` resolutions delivered.
    pub timed_out: u64,
    /// Waiters cancelled before delivery.
    pub cancelled: u64,
    /// Waits refused (any [`ApprovalWaitError`](super::ApprovalWaitError)).
    pub refused_waits: u64,
    /// Decisions that were not verdicts (unspecified, pending, unknown).
    pub ignored_non_verdicts: u64,
    /// Verdicts ignored because one was already kept for their id.
    pub duplicate_verdicts: u64,
    /// Verdicts ignored because their id was empty or too long.
    pub ignored_bad_ids: u64,
    /// Kept verdicts dropped at the `max_kept_verdicts` bound.
    pub dropped_verdicts: u64,
}
