//! Every waiting waiter's deadline, in order: the machine's one timer
//! structure for waiters.
//!
//! Guarantees: exact (an entry is removed when its waiter stops waiting, so
//! [`Deadlines::next`] is the earliest live deadline); waiters due at the
//! same instant come out in issue order.

use alloc::collections::BTreeSet;

use crate::time::Timestamp;

#[derive(Clone, Debug, Default)]
pub(crate) struct Deadlines {
    /// (deadline, waiter issue number).
    queue: BTreeSet<(Timestamp, u64)>,
}

impl Deadlines {
    pub(crate) fn insert(&mut self, at: Timestamp, seq: u64) {
        self.queue.insert((at, seq));
    }

    pub(crate) fn remove(&mut self, at: Timestamp, seq: u64) {
        self.queue.remove(&(at, seq));
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Timestamp> {
        self.queue.first().map(|&(at, _)| at)
    }

    /// The waiter whose deadline is earliest, removed, if it is due at
    /// `now`.
    pub(crate) fn pop_due(&mut self, now: Timestamp) -> Option<u64> {
        if self.next()? > now {
            return None;
        }
        self.queue.pop_first().map(|(_, seq)| seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_deadlines_come_out_in_order_and_removed_ones_never() {
        let t = Timestamp::from_nanos;
        let mut d = Deadlines::default();
        d.insert(t(5), 1);
        d.insert(t(3), 2);
        d.insert(t(5), 0);
        d.insert(t(9), 3);
        d.remove(t(3), 2);
        d.remove(t(3), 3);
        assert_eq!(d.next(), Some(t(5)));
        assert_eq!(d.pop_due(t(4)), None);
        assert_eq!(d.pop_due(t(5)), Some(0));
        assert_eq!(d.pop_due(t(5)), Some(1));
        assert_eq!(d.pop_due(t(5)), None);
        assert_eq!(d.pop_due(t(9)), Some(3));
        assert_eq!((d.next(), d.pop_due(Timestamp::MAX)), (None, None));
    }
}
