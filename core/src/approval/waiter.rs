//! Waiter identities and why a wait can be refused.

/// One waiter, as returned by
/// [`ApprovalWaiters::wait`](super::ApprovalWaiters::wait). Ids are issued in
/// increasing order and never reused; ordered by issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WaiterId {
    /// Issue order: strictly increasing, never reused.
    pub(crate) seq: u64,
    /// The machine's slot for it (reused once the waiter is finished).
    pub(crate) slot: u32,
}

impl WaiterId {
    /// The id as a number, unique for the machine's lifetime (for logs and
    /// maps in the driver).
    pub fn get(self) -> u64 {
        self.seq
    }

    /// The machine's slot for this waiter: dense from 0, below the most
    /// waiters and undelivered resolutions ever held at once, and reused
    /// once the waiter's resolution is drained or it is cancelled. A
    /// driver can keep per-waiter data in a `Vec` indexed by it, telling a
    /// reuse apart by [`WaiterId::get`].
    pub fn slot(self) -> usize {
        self.slot as usize
    }
}

/// Why [`ApprovalWaiters::wait`](super::ApprovalWaiters::wait) refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitError {
    /// `max_waiters` waiters exist (counting resolutions not yet drained).
    Full,
    /// The request id is empty.
    EmptyRequestId,
    /// The request id is longer than `max_request_id_len`.
    RequestIdTooLong,
    /// Every waiter id has been issued (2^64 - 1 waits): ids are never
    /// reused, so no more waits are possible.
    IdsExhausted,
}
