//! Waiter deadlines in one queue: O(1) for deadlines that arrive in order
//! (every waiter given the same timeout), O(log n) otherwise, O(1) removal.
//!
//! Guarantees: [`DeadlineQueue::peek`] is the least `(at, seq)` entry
//! pushed and not popped; removal is lazy (the owner says which entries are
//! still live), and [`DeadlineQueue::settle`] restores "the least entry is
//! live" and keeps at most `2 × live + SLACK` entries, so memory stays
//! proportional to the waiters waiting.

use alloc::collections::{BinaryHeap, VecDeque};
use core::cmp::Reverse;

use crate::time::Timestamp;

/// Stale entries tolerated beyond the live ones before a compaction.
const SLACK: usize = 64;

/// One waiter's deadline: ordered by `at`, then by waiter sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct DeadlineEntry {
    pub(crate) at: Timestamp,
    pub(crate) seq: u64,
    pub(crate) slot: u32,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct DeadlineQueue {
    /// Entries pushed in nondecreasing order: sorted, oldest first.
    in_order: VecDeque<DeadlineEntry>,
    /// Entries that arrived earlier than the last in-order one.
    out_of_order: BinaryHeap<Reverse<DeadlineEntry>>,
}

impl DeadlineQueue {
    pub(crate) fn len(&self) -> usize {
        self.in_order.len() + self.out_of_order.len()
    }

    pub(crate) fn push(&mut self, e: DeadlineEntry) {
        match self.in_order.back() {
            Some(last) if e < *last => self.out_of_order.push(Reverse(e)),
            _ => self.in_order.push_back(e),
        }
    }

    /// The least entry.
    pub(crate) fn peek(&self) -> Option<DeadlineEntry> {
        match (self.in_order.front(), self.out_of_order.peek()) {
            (Some(a), Some(Reverse(b))) => Some(if a <= b { *a } else { *b }),
            (Some(a), None) => Some(*a),
            (None, Some(Reverse(b))) => Some(*b),
            (None, None) => None,
        }
    }

    /// Remove and return the least entry.
    pub(crate) fn pop(&mut self) -> Option<DeadlineEntry> {
        let from_heap = match (self.in_order.front(), self.out_of_order.peek()) {
            (Some(a), Some(Reverse(b))) => b < a,
            (None, Some(_)) => true,
            _ => false,
        };
        if from_heap {
            self.out_of_order.pop().map(|Reverse(e)| e)
        } else {
            self.in_order.pop_front()
        }
    }

    /// Drop stale entries from the front, so the least entry is live, and
    /// compact when stale entries outnumber `live + SLACK`.
    pub(crate) fn settle(&mut self, live_count: usize, is_live: impl Fn(&DeadlineEntry) -> bool) {
        if live_count == 0 {
            self.in_order.clear();
            self.out_of_order.clear();
            return;
        }
        if self.len() > live_count.saturating_mul(2).saturating_add(SLACK) {
            self.in_order.retain(|e| is_live(e));
            self.out_of_order.retain(|Reverse(e)| is_live(e));
        }
        while let Some(e) = self.peek() {
            if is_live(&e) {
                break;
            }
            self.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(at: u64, seq: u64) -> DeadlineEntry {
        DeadlineEntry {
            at: Timestamp::from_nanos(at),
            seq,
            slot: seq as u32,
        }
    }

    #[test]
    fn pops_in_order_whatever_the_push_order() {
        let mut q = DeadlineQueue::default();
        for (i, at) in [5u64, 7, 7, 3, 9, 1, 8].into_iter().enumerate() {
            q.push(e(at, i as u64));
        }
        let mut got = alloc::vec::Vec::new();
        while let Some(x) = q.pop() {
            got.push((x.at.as_nanos(), x.seq));
        }
        assert_eq!(
            got,
            [(1, 5), (3, 3), (5, 0), (7, 1), (7, 2), (8, 6), (9, 4)]
        );
    }

    #[test]
    fn settle_exposes_a_live_entry_and_bounds_stale_ones() {
        let mut q = DeadlineQueue::default();
        for i in 0..1_000u64 {
            q.push(e(i, i));
        }
        // Only multiples of 10 are still live.
        q.settle(100, |x| x.seq % 10 == 0);
        assert!(q.len() <= 2 * 100 + SLACK);
        assert_eq!(q.peek().map(|x| x.seq), Some(0));
        q.pop();
        q.settle(99, |x| x.seq % 10 == 0);
        assert_eq!(q.peek().map(|x| x.seq), Some(10));
        q.settle(0, |_| false);
        assert_eq!((q.len(), q.peek()), (0, None));
    }
}
