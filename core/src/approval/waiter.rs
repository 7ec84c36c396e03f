//! Waiter identities and why a wait can be refused.

use core::fmt;

/// One approval waiter, as returned by
/// [`ApprovalWaiters::wait`](super::ApprovalWaiters::wait): its issue
/// number. Ids are issued in increasing order and never reused; ordered by
/// issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApprovalWaiterId(u64);

impl ApprovalWaiterId {
    /// The id of the waiter issued `seq`-th.
    pub(crate) fn new(seq: u64) -> Self {
        ApprovalWaiterId(seq)
    }

    /// The id as a number, unique for the machine's lifetime (for logs and
    /// maps in the driver).
    pub fn get(self) -> u64 {
        self.0
    }
}

/// Why [`ApprovalWaiters::wait`](super::ApprovalWaiters::wait) refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApprovalWaitError {
    /// `max_waiters` waiters exist (counting resolutions not yet drained).
    Full,
    /// The request id is empty.
    EmptyRequestId,
    /// The request id is longer than `max_request_id_len` bytes.
    RequestIdTooLong,
    /// Every waiter id has been issued (2^64 - 1 waits): ids are never
    /// reused, so no more waits are possible.
    IdsExhausted,
}

impl fmt::Display for ApprovalWaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ApprovalWaitError::Full => "too many approval waiters",
            ApprovalWaitError::EmptyRequestId => "empty approval request id",
            ApprovalWaitError::RequestIdTooLong => "approval request id too long",
            ApprovalWaitError::IdsExhausted => "approval waiter ids exhausted",
        })
    }
}

impl core::error::Error for ApprovalWaitError {}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn ids_keep_their_number_and_order() {
        let a = ApprovalWaiterId::new(0);
        let b = ApprovalWaiterId::new(u64::MAX - 1);
        assert_eq!((a.get(), b.get()), (0, u64::MAX - 1));
        assert!(a < b && a < ApprovalWaiterId::new(1));
    }

    #[test]
    fn errors_say_what_they_are() {
        assert_eq!(
            ApprovalWaitError::EmptyRequestId.to_string(),
            "empty approval request id"
        );
        assert_eq!(
            ApprovalWaitError::Full.to_string(),
            "too many approval waiters"
        );
        assert_eq!(
            ApprovalWaitError::RequestIdTooLong.to_string(),
            "approval request id too long"
        );
        assert_eq!(
            ApprovalWaitError::IdsExhausted.to_string(),
            "approval waiter ids exhausted"
        );
    }
}
