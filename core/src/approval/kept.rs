//! The order in which kept verdicts expire: a queue, because every verdict
//! is kept equally long and time only moves forward, so the verdict kept
//! first expires first.
//!
//! Guarantees: [`KeptOrder::front`] is the earliest expiry still in the
//! queue; the owner removes entries whose verdict was replaced ("stale",
//! told by the kept verdict's generation) with [`KeptOrder::settle`],
//! which also keeps at most `2 × kept + SLACK` entries.

use alloc::collections::VecDeque;

use crate::time::Timestamp;

/// Stale entries tolerated beyond the kept verdicts before a compaction.
const SLACK: usize = 64;

/// A kept verdict's expiry: the request entry and the generation of the
/// verdict it was recorded for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeptEntry {
    pub(crate) expires: Timestamp,
    pub(crate) req: u32,
    pub(crate) gen: u64,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct KeptOrder {
    queue: VecDeque<KeptEntry>,
}

impl KeptOrder {
    /// Record an expiry; it must not be earlier than any recorded before.
    pub(crate) fn push(&mut self, e: KeptEntry) {
        self.queue.push_back(e);
    }

    pub(crate) fn front(&self) -> Option<KeptEntry> {
        self.queue.front().copied()
    }

    pub(crate) fn pop(&mut self) -> Option<KeptEntry> {
        self.queue.pop_front()
    }

    /// Drop stale entries from the front and compact when they outnumber
    /// `kept + SLACK`.
    pub(crate) fn settle(&mut self, kept: usize, is_live: impl Fn(&KeptEntry) -> bool) {
        if kept == 0 {
            self.queue.clear();
            return;
        }
        if self.queue.len() > kept.saturating_mul(2).saturating_add(SLACK) {
            self.queue.retain(|e| is_live(e));
        }
        while let Some(e) = self.queue.front() {
            if is_live(e) {
                break;
            }
            self.queue.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settle_drops_stale_fronts_and_compacts() {
        let mut k = KeptOrder::default();
        for i in 0..500u32 {
            k.push(KeptEntry {
                expires: Timestamp::from_nanos(u64::from(i)),
                req: i,
                gen: 0,
            });
        }
        k.settle(10, |e| e.req >= 490);
        assert_eq!(k.front().map(|e| e.req), Some(490));
        assert_eq!(k.queue.len(), 10);
        k.settle(0, |_| true);
        assert_eq!(k.front(), None);
    }
}
