//! Waiter identities and why a wait can be refused.

use core::num::NonZeroU64;

/// One waiter, as returned by
/// [`ApprovalWaiters::wait`](super::ApprovalWaiters::wait). Ids are issued in
/// increasing order and never reused; ordered by issue.
///
/// 16 bytes with a niche: `Option<WaiterId>` and
/// `Result<WaiterId, E>` for a small `E` are 16 bytes too, so a driver's
/// wait future holding one stays small.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WaiterId {
    /// Issue order plus one (so never zero: the niche): strictly
    /// increasing, never reused.
    seq_plus_one: NonZeroU64,
    /// The machine's slot for it (reused once the waiter is finished).
    pub(crate) slot: u32,
}

impl WaiterId {
    /// The id of the waiter issued `seq`-th (`seq < u64::MAX`) in `slot`.
    pub(crate) fn new(seq: u64, slot: u32) -> Self {
        WaiterId {
            seq_plus_one: NonZeroU64::new(seq.wrapping_add(1)).unwrap_or(NonZeroU64::MAX),
            slot,
        }
    }

    /// Issue order: strictly increasing, never reused.
    pub(crate) fn seq(self) -> u64 {
        self.seq_plus_one.get() - 1
    }

    /// The id as a number, unique for the machine's lifetime (for logs and
    /// maps in the driver).
    pub fn get(self) -> u64 {
        self.seq()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_keep_their_number_and_order_and_have_a_niche() {
        let a = WaiterId::new(0, 7);
        let b = WaiterId::new(u64::MAX - 1, 0);
        assert_eq!((a.get(), a.slot(), b.get()), (0, 7, u64::MAX - 1));
        assert!(a < b && a < WaiterId::new(1, 0));
        assert_eq!(core::mem::size_of::<Option<WaiterId>>(), 16);
        assert_eq!(core::mem::size_of::<Result<WaiterId, WaitError>>(), 16);
    }
}
