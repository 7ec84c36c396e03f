//! Approval-waiting parameters and their defaults, each with the reason it
//! was chosen.

use core::time::Duration;

/// Most waiters at once, counting resolutions not yet drained: 4,096. Each
/// waiter is a tool call held for a human; an agent host has a handful, a
/// large multi-agent host a few hundred. The bound caps memory (a waiter
/// costs well under 1 KiB) while leaving an order of magnitude of headroom.
pub const DEFAULT_MAX_WAITERS: usize = 4_096;

/// How long a verdict is kept for waiters that arrive after it: 60 s. The
/// verdict can reach the invalidation stream before the CheckAction answer
/// that names its `approval_id` has been processed (or be replayed after a
/// reconnect); that race lasts milliseconds to a few seconds. A minute
/// covers a slow response and a retry, and bounds how long a verdict about
/// an abandoned call lingers.
pub const DEFAULT_KEEP_VERDICT_FOR: Duration = Duration::from_secs(60);

/// Most verdicts kept at once: 1,024, the gateway's replay buffer: a full
/// replay of verdict events after a reconnect fits. At the bound the verdict
/// expiring soonest (the oldest) is dropped.
pub const DEFAULT_MAX_KEPT_VERDICTS: usize = 1_024;

/// Longest request id, in bytes: 256. Approval ids are UUIDs or similar
/// (under 64 bytes); the bound keeps one hostile id from costing unbounded
/// memory. A longer id is refused by `wait`
/// ([`ApprovalWaitError::RequestIdTooLong`](super::ApprovalWaitError)) and
/// ignored (counted) in a verdict; so is an empty one
/// ([`ApprovalWaitError::EmptyRequestId`](super::ApprovalWaitError)).
pub const DEFAULT_MAX_REQUEST_ID_LEN: usize = 256;

/// Parameters of [`ApprovalWaiters`](super::ApprovalWaiters).
///
/// Every value is valid: `max_waiters == 0` refuses every wait,
/// `max_kept_verdicts == 0` or a zero `keep_verdict_for` keeps no verdict
/// (a verdict then reaches only the waiters present when it arrives).
///
/// Built from [`ApprovalConfig::default`] and its `with_` methods (fields may
/// be added, so outside this crate it cannot be written as a literal).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApprovalConfig {
    /// Most waiters at once, counting resolutions not yet drained.
    pub max_waiters: usize,
    /// How long a verdict is kept for late waiters.
    pub keep_verdict_for: Duration,
    /// Most verdicts kept at once.
    pub max_kept_verdicts: usize,
    /// Longest request id, in bytes (any value; ids are never empty).
    pub max_request_id_len: usize,
}

impl Default for ApprovalConfig {
    fn default() -> Self {
        ApprovalConfig {
            max_waiters: DEFAULT_MAX_WAITERS,
            keep_verdict_for: DEFAULT_KEEP_VERDICT_FOR,
            max_kept_verdicts: DEFAULT_MAX_KEPT_VERDICTS,
            max_request_id_len: DEFAULT_MAX_REQUEST_ID_LEN,
        }
    }
}

impl ApprovalConfig {
    /// The same, holding at most `max_waiters` waiters (undrained resolutions included).
    pub fn with_max_waiters(mut self, max_waiters: usize) -> Self {
        self.max_waiters = max_waiters;
        self
    }

    /// The same, keeping a verdict for late waiters for `keep_verdict_for`.
    pub fn with_keep_verdict_for(mut self, keep_verdict_for: Duration) -> Self {
        self.keep_verdict_for = keep_verdict_for;
        self
    }

    /// The same, keeping at most `max_kept_verdicts` verdicts at once.
    pub fn with_max_kept_verdicts(mut self, max_kept_verdicts: usize) -> Self {
        self.max_kept_verdicts = max_kept_verdicts;
        self
    }

    /// The same, accepting request ids of at most `max_request_id_len` bytes.
    pub fn with_max_request_id_len(mut self, max_request_id_len: usize) -> Self {
        self.max_request_id_len = max_request_id_len;
        self
    }
}
