//! Waiter deadlines in one queue: O(1) for deadlines that arrive in order
//! (every waiter given the same timeout), O(log n) otherwise, O(1) removal.
//!
//! Guarantees: [`DeadlineQueue::peek`] is the least `(at, seq)` entry
//! pushed and not popped, with its full sequence number; removal is lazy
//! (the owner says which entries are still live), and
//! [`DeadlineQueue::settle`] restores "the least entry is live" and keeps
//! at most `2 × live + SLACK` entries, so memory stays proportional to the
//! waiters waiting. In-order entries take 16 bytes: they keep the low 32
//! bits of the sequence number, the rest recovered from the newest one
//! pushed (an entry falling [`WINDOW`] numbers behind it moves to the heap,
//! which keeps the full number).

use alloc::collections::{BinaryHeap, VecDeque};
use core::cmp::Reverse;

use crate::time::Timestamp;

/// Stale entries tolerated beyond the live ones before a compaction.
const SLACK: usize = 64;

/// How far (in sequence numbers) an in-order entry may fall behind the
/// newest in-order entry before it moves to the heap; below 2^32, so the
/// low 32 bits name it exactly.
const WINDOW: u64 = 1 << 31;

/// One waiter's deadline: ordered by `at`, then by waiter sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct DeadlineEntry {
    pub(crate) at: Timestamp,
    pub(crate) seq: u64,
    pub(crate) slot: u32,
}

/// An in-order entry: the sequence number's low half only.
#[derive(Clone, Copy, Debug)]
struct Packed {
    at: Timestamp,
    seq_lo: u32,
    slot: u32,
}

const _: () = assert!(core::mem::size_of::<Packed>() == 16);

#[derive(Clone, Debug, Default)]
pub(crate) struct DeadlineQueue {
    /// Entries pushed in nondecreasing order: sorted, oldest first, each
    /// within `WINDOW` of `newest`.
    in_order: VecDeque<Packed>,
    /// The sequence number of the last entry pushed to `in_order`.
    newest: u64,
    /// Entries that arrived earlier than the last in-order one, or fell
    /// behind the window.
    out_of_order: BinaryHeap<Reverse<DeadlineEntry>>,
}

impl DeadlineQueue {
    pub(crate) fn len(&self) -> usize {
        self.in_order.len() + self.out_of_order.len()
    }

    /// The full entry of in-order `p`.
    fn unpack(&self, p: &Packed) -> DeadlineEntry {
        let behind = (self.newest as u32).wrapping_sub(p.seq_lo);
        DeadlineEntry {
            at: p.at,
            seq: self.newest.wrapping_sub(u64::from(behind)),
            slot: p.slot,
        }
    }

    /// Add `e`, whose `seq` is greater than every entry's pushed before.
    pub(crate) fn push(&mut self, e: DeadlineEntry) {
        if let Some(last) = self.in_order.back() {
            if e < self.unpack(last) {
                self.out_of_order.push(Reverse(e));
                return;
            }
        }
        // Keep every in-order entry within the window of `e` (unpacked
        // while `newest` is still the one they were packed against).
        while let Some(front) = self.in_order.front() {
            let front = self.unpack(front);
            if e.seq.wrapping_sub(front.seq) < WINDOW {
                break;
            }
            self.in_order.pop_front();
            self.out_of_order.push(Reverse(front));
        }
        self.newest = e.seq;
        self.in_order.push_back(Packed {
            at: e.at,
            seq_lo: e.seq as u32,
            slot: e.slot,
        });
    }

    /// The least entry.
    pub(crate) fn peek(&self) -> Option<DeadlineEntry> {
        let a = self.in_order.front().map(|p| self.unpack(p));
        match (a, self.out_of_order.peek()) {
            (Some(a), Some(Reverse(b))) => Some(if a <= *b { a } else { *b }),
            (Some(a), None) => Some(a),
            (None, Some(Reverse(b))) => Some(*b),
            (None, None) => None,
        }
    }

    /// Remove and return the least entry.
    pub(crate) fn pop(&mut self) -> Option<DeadlineEntry> {
        let a = self.in_order.front().map(|p| self.unpack(p));
        let from_heap = match (a, self.out_of_order.peek()) {
            (Some(a), Some(Reverse(b))) => *b < a,
            (None, Some(_)) => true,
            _ => false,
        };
        if from_heap {
            self.out_of_order.pop().map(|Reverse(e)| e)
        } else {
            self.in_order.pop_front();
            a
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
            let newest = self.newest;
            let unpack = |p: &Packed| {
                let behind = (newest as u32).wrapping_sub(p.seq_lo);
                DeadlineEntry {
                    at: p.at,
                    seq: newest.wrapping_sub(u64::from(behind)),
                    slot: p.slot,
                }
            };
            self.in_order.retain(|p| is_live(&unpack(p)));
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

    #[test]
    fn in_order_entries_keep_their_full_number_across_the_window() {
        let mut q = DeadlineQueue::default();
        let far = [0, 1, WINDOW - 1, WINDOW + 1, 3 << 32 | 5, 7 << 32];
        for (i, &seq) in far.iter().enumerate() {
            q.push(DeadlineEntry {
                at: Timestamp::from_nanos(i as u64),
                seq,
                slot: i as u32,
            });
        }
        // Entries that fell behind the window moved to the heap.
        assert!(q.in_order.len() < far.len() && !q.out_of_order.is_empty());
        let mut got = alloc::vec::Vec::new();
        while let Some(x) = q.pop() {
            got.push((x.at.as_nanos(), x.seq, x.slot));
        }
        let want: alloc::vec::Vec<_> = far
            .iter()
            .enumerate()
            .map(|(i, &seq)| (i as u64, seq, i as u32))
            .collect();
        assert_eq!(got, want);
    }
}
