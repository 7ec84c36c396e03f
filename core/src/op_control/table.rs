//! The bounded table of plain op entries, evicted-paused markers and
//! overflow entries.
//!
//! Guarantees:
//! - at most `max_entries` entries, `max_evicted` markers and
//!   `max_overflow` overflow entries, ever;
//! - only paused entries are ever evicted (oldest first), and an evicted
//!   entry always leaves a marker: the op stays not runnable;
//! - a pause or terminate that finds the entries full with nothing
//!   evictable (or every marker used) is kept exactly in the overflow, which
//!   is never evicted from: an overflow entry is an entry in every respect
//!   but eviction;
//! - a terminated entry (overflow included) leaves only through
//!   [`OpTable::remove`] (the op finished) or [`OpTable::clear`] (every op
//!   finished).

use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use alloc::sync::Arc;

use hashbrown::{HashMap, HashSet};

use crate::id_hash::BuildIdHasher;

/// Stale age-queue entries tolerated beyond the paused ones before a
/// compaction.
const SLACK: usize = 64;

/// A stored entry's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EntryState {
    Paused,
    Terminated,
}

/// What the table knows about one op id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Own {
    /// No entry, no marker: running as far as the op itself goes.
    None,
    Paused,
    Terminated,
    /// A paused entry that was evicted.
    Evicted,
}

/// The table is full and nothing in it may be evicted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Full;

/// The result of a change that needed room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// Nothing to do.
    Unchanged,
    /// Done; `evicted` names the paused op evicted to make room, if any.
    Done { evicted: Option<String> },
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    state: EntryState,
    /// Insertion order of a paused entry (its place in `paused_by_age`).
    age: u64,
}

/// Entries by op id (one hash lookup), the op's text stored once and shared
/// with the age queue.
#[derive(Clone, Debug)]
pub(crate) struct OpTable {
    entries: HashMap<Arc<str>, Entry, BuildIdHasher>,
    /// Paused entries by age, oldest first. An item whose op is no longer
    /// paused with that age is stale: skipped when evicting, and compacted
    /// away once stale items outnumber `paused + SLACK`.
    paused_by_age: VecDeque<(u64, Arc<str>)>,
    paused: usize,
    evicted: HashSet<Arc<str>, BuildIdHasher>,
    /// Entries that found no room among `entries`: never evicted.
    overflow: HashMap<Arc<str>, EntryState, BuildIdHasher>,
    next_age: u64,
    max_entries: usize,
    max_evicted: usize,
    max_overflow: usize,
}

impl OpTable {
    pub(crate) fn new(max_entries: usize, max_evicted: usize, max_overflow: usize) -> Self {
        OpTable {
            entries: HashMap::default(),
            paused_by_age: VecDeque::new(),
            paused: 0,
            evicted: HashSet::default(),
            overflow: HashMap::default(),
            next_age: 0,
            max_entries,
            max_evicted,
            max_overflow,
        }
    }

    pub(crate) fn own(&self, op: &str) -> Own {
        match self.entries.get(op) {
            Some(Entry {
                state: EntryState::Paused,
                ..
            }) => Own::Paused,
            Some(Entry {
                state: EntryState::Terminated,
                ..
            }) => Own::Terminated,
            None => match self.overflow.get(op) {
                Some(EntryState::Paused) => Own::Paused,
                Some(EntryState::Terminated) => Own::Terminated,
                None if self.evicted.contains(op) => Own::Evicted,
                None => Own::None,
            },
        }
    }

    /// Whether `op` has a table entry, in the overflow or not (a marker is
    /// not an entry).
    pub(crate) fn has_entry(&self, op: &str) -> bool {
        self.entries.contains_key(op) || self.overflow.contains_key(op)
    }

    /// Pause `op`. A paused, terminated or evicted op is unchanged.
    pub(crate) fn pause(&mut self, op: &str) -> Result<Change, Full> {
        if self.own(op) != Own::None {
            return Ok(Change::Unchanged);
        }
        let evicted = match self.make_room() {
            Ok(evicted) => evicted,
            Err(Full) => return self.overflow_insert(op, EntryState::Paused),
        };
        let age = self.next_age;
        self.next_age = self.next_age.wrapping_add(1);
        let key: Arc<str> = Arc::from(op);
        self.entries.insert(
            key.clone(),
            Entry {
                state: EntryState::Paused,
                age,
            },
        );
        self.paused_by_age.push_back((age, key));
        self.paused += 1;
        Ok(Change::Done { evicted })
    }

    /// Terminate `op`: a paused entry turns terminated in place; a missing or
    /// evicted op needs room.
    pub(crate) fn terminate(&mut self, op: &str) -> Result<Change, Full> {
        match self.entries.get_mut(op) {
            Some(e) if e.state == EntryState::Terminated => Ok(Change::Unchanged),
            Some(e) => {
                e.state = EntryState::Terminated;
                self.unpaused();
                Ok(Change::Done { evicted: None })
            }
            None => match self.overflow.get_mut(op) {
                Some(EntryState::Terminated) => Ok(Change::Unchanged),
                Some(state) => {
                    *state = EntryState::Terminated;
                    Ok(Change::Done { evicted: None })
                }
                None => self.terminate_new(op),
            },
        }
    }

    /// Terminate an op with no entry. Its marker, if it has one, goes
    /// first (a terminated op needs none, and its slot may take the paused
    /// entry evicted to make room); if no room is found it stays gone, and
    /// the caller's fail-closed cover takes the op in.
    fn terminate_new(&mut self, op: &str) -> Result<Change, Full> {
        self.evicted.remove(op);
        match self.make_room() {
            Err(Full) => self.overflow_insert(op, EntryState::Terminated),
            Ok(evicted) => {
                self.entries.insert(
                    Arc::from(op),
                    Entry {
                        state: EntryState::Terminated,
                        age: 0,
                    },
                );
                Ok(Change::Done { evicted })
            }
        }
    }

    /// Keep `op` in the overflow, if it has room.
    fn overflow_insert(&mut self, op: &str, state: EntryState) -> Result<Change, Full> {
        if self.overflow.len() >= self.max_overflow {
            return Err(Full);
        }
        self.overflow.insert(Arc::from(op), state);
        Ok(Change::Done { evicted: None })
    }

    /// Resume `op`: a paused entry or a marker goes; a terminated entry
    /// stays. Whether anything changed.
    pub(crate) fn resume(&mut self, op: &str) -> bool {
        match self.own(op) {
            Own::Paused => self.remove(op),
            Own::Evicted => self.evicted.remove(op),
            Own::None | Own::Terminated => false,
        }
    }

    /// Forget `op` (its entry or marker) whatever its state: the op finished.
    pub(crate) fn remove(&mut self, op: &str) -> bool {
        if let Some(e) = self.entries.remove(op) {
            if e.state == EntryState::Paused {
                self.unpaused();
            }
            return true;
        }
        self.overflow.remove(op).is_some() || self.evicted.remove(op)
    }

    /// Forget `op`'s evicted marker, if it has one.
    pub(crate) fn forget_marker(&mut self, op: &str) {
        self.evicted.remove(op);
    }

    /// Forget every entry and marker: every op finished.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.paused_by_age.clear();
        self.paused = 0;
        self.evicted.clear();
        self.overflow.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn paused(&self) -> usize {
        self.paused
    }

    pub(crate) fn evicted(&self) -> usize {
        self.evicted.len()
    }

    /// Overflow entries (paused plus terminated).
    pub(crate) fn overflow(&self) -> usize {
        self.overflow.len()
    }

    /// Room for one more entry: free, or made by evicting the oldest paused
    /// entry into a marker (if a marker fits). The evicted op, if any.
    fn make_room(&mut self) -> Result<Option<String>, Full> {
        if self.entries.len() < self.max_entries {
            return Ok(None);
        }
        if self.evicted.len() >= self.max_evicted {
            return Err(Full);
        }
        loop {
            let Some((age, op)) = self.paused_by_age.pop_front() else {
                return Err(Full);
            };
            if !self.is_paused_at(&op, age) {
                continue;
            }
            self.entries.remove(&op);
            self.paused -= 1;
            let name = op.to_string();
            self.evicted.insert(op);
            return Ok(Some(name));
        }
    }

    /// Whether `op` is paused since `age` (its age-queue item is current).
    fn is_paused_at(&self, op: &str, age: u64) -> bool {
        paused_at(&self.entries, op, age)
    }

    /// A paused entry stopped being paused: its age-queue item is stale.
    /// Compact the queue when stale items outnumber the paused ones.
    fn unpaused(&mut self) {
        self.paused -= 1;
        if self.paused == 0 {
            self.paused_by_age.clear();
        } else if self.paused_by_age.len() > self.paused.saturating_mul(2).saturating_add(SLACK) {
            let entries = &self.entries;
            self.paused_by_age
                .retain(|(age, op)| paused_at(entries, op, *age));
        }
    }
}

/// Whether `op` has been paused since `age` in `entries`.
fn paused_at(entries: &HashMap<Arc<str>, Entry, BuildIdHasher>, op: &str, age: u64) -> bool {
    entries
        .get(op)
        .is_some_and(|e| e.state == EntryState::Paused && e.age == age)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_oldest_paused_into_a_marker_and_never_a_terminated_entry() {
        let mut t = OpTable::new(2, 1, 0);
        assert!(matches!(
            t.terminate("t"),
            Ok(Change::Done { evicted: None })
        ));
        assert!(matches!(t.pause("p1"), Ok(Change::Done { evicted: None })));
        match t.pause("p2") {
            Ok(Change::Done { evicted: Some(op) }) => assert_eq!(op, "p1"),
            other => panic!("{other:?}"),
        }
        assert_eq!(t.own("p1"), Own::Evicted);
        assert_eq!(t.own("t"), Own::Terminated);
        // The marker set is full: nothing more is evictable.
        assert_eq!(t.pause("p3"), Err(Full));
        assert_eq!(t.own("p3"), Own::None);
        assert!(t.resume("p1"));
        assert_eq!(t.own("p1"), Own::None);
        assert!(matches!(
            t.pause("p3"),
            Ok(Change::Done { evicted: Some(_) })
        ));
        assert!(!t.resume("t"));
        assert_eq!(t.own("t"), Own::Terminated);
    }

    #[test]
    fn the_age_queue_stays_bounded_and_evicts_the_oldest_still_paused() {
        let mut t = OpTable::new(8, 8, 0);
        assert!(t.pause("old").is_ok());
        // Thousands of ops paused then resumed or terminated and removed:
        // their queue items go stale behind "old".
        for i in 0..5_000u32 {
            let op = alloc::format!("op-{i}");
            assert!(t.pause(&op).is_ok());
            if i % 2 == 0 {
                assert!(t.resume(&op));
            } else {
                assert!(t.terminate(&op).is_ok());
                assert!(t.remove(&op));
            }
            assert!(t.paused_by_age.len() <= 2 * t.paused() + SLACK + 1);
        }
        for p in ["p1", "p2", "p3", "p4", "p5", "p6", "p7"] {
            assert!(t.pause(p).is_ok());
        }
        assert!(t.resume("p1"));
        assert!(t.terminate("p2").is_ok());
        assert!(matches!(t.pause("q0"), Ok(Change::Done { evicted: None })));
        // Full (8 entries): evictions take the oldest still paused, in order.
        for (next, want) in [("q1", "old"), ("q2", "p3"), ("q3", "p4")] {
            match t.pause(next) {
                Ok(Change::Done { evicted: Some(op) }) => assert_eq!(op, want),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!((t.own("old"), t.own("p2")), (Own::Evicted, Own::Terminated));
        assert_eq!(t.paused(), 7);
    }
}
