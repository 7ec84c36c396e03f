//! Recently finished op ids, so that a late pause or terminate for an op
//! that can no longer run does not take a table entry that nothing would
//! ever free.
//!
//! Guarantees: at most `cap` ids (the oldest is forgotten first, which is
//! safe: a forgotten id only means a late signal for it is stored); an id
//! leaves as soon as the op is checked again ([`FinishedOps::revive`]), so a
//! live op's signals are never dropped as late.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};

#[derive(Clone, Debug)]
pub(crate) struct FinishedOps {
    by_op: BTreeMap<String, u64>,
    by_age: BTreeMap<u64, String>,
    next_age: u64,
    cap: usize,
}

impl FinishedOps {
    pub(crate) fn new(cap: usize) -> Self {
        FinishedOps {
            by_op: BTreeMap::new(),
            by_age: BTreeMap::new(),
            next_age: 0,
            cap,
        }
    }

    /// Remember that `op` finished (as the newest).
    pub(crate) fn record(&mut self, op: &str) {
        self.revive(op);
        if self.cap == 0 {
            return;
        }
        while self.by_op.len() >= self.cap {
            let Some((_, oldest)) = self.by_age.pop_first() else {
                break;
            };
            self.by_op.remove(&oldest);
        }
        let age = self.next_age;
        self.next_age = self.next_age.wrapping_add(1);
        self.by_op.insert(op.to_string(), age);
        self.by_age.insert(age, op.to_string());
    }

    pub(crate) fn contains(&self, op: &str) -> bool {
        self.by_op.contains_key(op)
    }

    /// The op is live again (it was checked): forget that it finished.
    pub(crate) fn revive(&mut self, op: &str) {
        if let Some(age) = self.by_op.remove(op) {
            self.by_age.remove(&age);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.by_op.len()
    }
}
