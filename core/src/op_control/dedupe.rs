//! The ring of recently seen `(sequence, signal, op_id)` triples that makes
//! exact repeats recognisable.
//!
//! Guarantees: at most `cap` triples, the oldest forgotten first; a triple
//! is recorded once (a repeat does not refresh it). The sequence is only
//! ever compared for equality: never as a resume point, never to reorder.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::hash::{Hash, Hasher};

use hashbrown::{Equivalent, HashSet};

use super::signal::Command;
use crate::id_hash::BuildIdHasher;

/// A recorded triple; the op's text is shared by the set and the ring.
type Triple = (u64, Command, Arc<str>);

/// A triple to look up, borrowing the op id: hashes exactly as [`Triple`].
struct Probe<'a>(u64, Command, &'a str);

impl Hash for Probe<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // A tuple hashes its fields in order; `Arc<str>` hashes as `str`.
        self.0.hash(state);
        self.1.hash(state);
        self.2.hash(state);
    }
}

impl Equivalent<Triple> for Probe<'_> {
    fn equivalent(&self, key: &Triple) -> bool {
        self.0 == key.0 && self.1 == key.1 && self.2 == &*key.2
    }
}

#[derive(Clone, Debug)]
pub(crate) struct RecentSignals {
    seen: HashSet<Triple, BuildIdHasher>,
    order: VecDeque<Triple>,
    cap: usize,
}

impl RecentSignals {
    pub(crate) fn new(cap: usize) -> Self {
        RecentSignals {
            seen: HashSet::default(),
            order: VecDeque::new(),
            cap,
        }
    }

    pub(crate) fn contains(&self, sequence: u64, command: Command, op_id: &str) -> bool {
        self.seen.contains(&Probe(sequence, command, op_id))
    }

    /// Record a triple not yet in the ring.
    pub(crate) fn record(&mut self, sequence: u64, command: Command, op_id: &str) {
        if self.cap == 0 || self.contains(sequence, command, op_id) {
            return;
        }
        while self.order.len() >= self.cap {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.seen.remove(&oldest);
        }
        let triple: Triple = (sequence, command, Arc::from(op_id));
        self.seen.insert(triple.clone());
        self.order.push_back(triple);
    }

    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_triple_is_found_by_its_borrowed_form_until_it_ages_out() {
        let mut r = RecentSignals::new(2);
        r.record(7, Command::Pause, "op-a");
        r.record(7, Command::Pause, "op-a");
        assert!(r.contains(7, Command::Pause, "op-a"));
        assert!(!r.contains(7, Command::Resume, "op-a"));
        assert!(!r.contains(8, Command::Pause, "op-a"));
        assert!(!r.contains(7, Command::Pause, "op-b"));
        assert_eq!(r.len(), 1);
        r.record(8, Command::Pause, "op-b");
        r.record(9, Command::Pause, "op-c");
        assert!(!r.contains(7, Command::Pause, "op-a"));
        assert!(r.contains(8, Command::Pause, "op-b") && r.contains(9, Command::Pause, "op-c"));
        assert_eq!((r.len(), r.seen.len()), (2, 2));
    }
}
