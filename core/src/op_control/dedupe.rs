//! The ring of recently seen `(sequence, signal, op_id)` triples that makes
//! exact repeats recognisable.
//!
//! Guarantees: at most `cap` triples, the oldest forgotten first; a triple
//! is recorded once (a repeat does not refresh it). The sequence is only
//! ever compared for equality: never as a resume point, never to reorder.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::{String, ToString};

use super::signal::Command;

#[derive(Clone, Debug)]
pub(crate) struct RecentSignals {
    seen: BTreeMap<(u64, Command), BTreeSet<String>>,
    order: VecDeque<(u64, Command, String)>,
    cap: usize,
}

impl RecentSignals {
    pub(crate) fn new(cap: usize) -> Self {
        RecentSignals {
            seen: BTreeMap::new(),
            order: VecDeque::new(),
            cap,
        }
    }

    pub(crate) fn contains(&self, sequence: u64, command: Command, op_id: &str) -> bool {
        self.seen
            .get(&(sequence, command))
            .is_some_and(|ops| ops.contains(op_id))
    }

    /// Record a triple not yet in the ring.
    pub(crate) fn record(&mut self, sequence: u64, command: Command, op_id: &str) {
        if self.cap == 0 || self.contains(sequence, command, op_id) {
            return;
        }
        while self.order.len() >= self.cap {
            let Some((s, c, op)) = self.order.pop_front() else {
                break;
            };
            if let Some(ops) = self.seen.get_mut(&(s, c)) {
                ops.remove(&op);
                if ops.is_empty() {
                    self.seen.remove(&(s, c));
                }
            }
        }
        self.seen
            .entry((sequence, command))
            .or_default()
            .insert(op_id.to_string());
        self.order
            .push_back((sequence, command, op_id.to_string()));
    }

    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }
}
