//! Approval waiting: tool calls held for a human verdict, each with its own
//! deadline.
//!
//! Guarantees (named invariants, checked after every step by
//! `testkit::approval`, `tests/prop_approval.rs` and the `approval` fuzz
//! target):
//! - `APPROVAL_RESOLVED_ONCE`: every waiter that is not cancelled first is
//!   resolved exactly once (one [`ApprovalAction::Resolved`]);
//! - `APPROVAL_VERDICT_REACHES_EVERY_WAITER`: an approval or denial resolves
//!   every current waiter of its request id at once, with its outcome;
//! - `APPROVAL_FIRST_VERDICT_WINS`: while a verdict is kept for an id,
//!   another verdict for it (even a contradicting one) is ignored and
//!   counted, so every waiter of the id learns the same, first, verdict;
//! - `APPROVAL_EARLY_VERDICT_KEPT`: a verdict is kept for
//!   `keep_verdict_for`, and a waiter registering meanwhile is resolved at
//!   once with it;
//! - `APPROVAL_TIMEOUT_IS_PENDING`: a deadline passing resolves the waiter
//!   as [`ApprovalOutcome::TimedOut`] ("pending: no human answered"), only at or
//!   after its deadline, and never as [`ApprovalOutcome::Denied`]: a denial comes
//!   only from a `DENIED` verdict;
//! - `APPROVAL_NON_VERDICTS_IGNORED`: `UNSPECIFIED`, `PENDING` and unknown
//!   decision values resolve nothing and are counted;
//! - `APPROVAL_CANCEL_LEAVES_NOTHING`: a cancelled waiter is never resolved
//!   and leaves no entry, no timer and no undelivered action; cancelling an
//!   unknown, delivered or cancelled waiter is a no-op returning `false`;
//! - `APPROVAL_IDS_NEVER_REUSED`: waiter ids strictly increase;
//! - `APPROVAL_BOUNDED`: waiters plus undelivered resolutions stay within
//!   `max_waiters` (`wait` returns [`ApprovalWaitError::Full`] at the
//!   bound), kept verdicts within `max_kept_verdicts` (the soonest expiring
//!   is dropped; of verdicts expiring together, the one kept first),
//!   request ids within `max_request_id_len` bytes (a longer one, or an
//!   empty one, is a typed [`ApprovalWaitError`], never a panic);
//! - `APPROVAL_TIMER_EXACT`: `poll_timeout` is exactly the earliest waiter
//!   deadline or verdict expiry, so once every waiter is resolved or
//!   cancelled and every verdict expired, no state and no timer is left.
//!
//! Plus the contract invariants every machine keeps (see
//! [`crate::Machine`]). The gateway never broadcasts approval timeouts: the
//! waiting side decides on its own deadline, which is why a timeout is
//! "pending" and what to do then is the caller's policy.

mod config;
mod deadlines;
mod decision;
mod kept;
mod machine;
mod output;
mod requests;
mod waiter;

pub use config::{
    ApprovalConfig, DEFAULT_KEEP_VERDICT_FOR, DEFAULT_MAX_KEPT_VERDICTS,
    DEFAULT_MAX_REQUEST_ID_LEN, DEFAULT_MAX_WAITERS,
};
pub use decision::{ApprovalOutcome, ReviewerDecision, ReviewerVerdict};
pub use machine::ApprovalWaiters;
pub use output::{ApprovalAction, ApprovalStats, ApprovalTimer};
pub use waiter::{ApprovalWaitError, ApprovalWaiterId};
