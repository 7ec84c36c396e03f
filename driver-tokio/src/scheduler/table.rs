//! A job table: one entry per job in a dense slab, with an index by id.
//! The running scheduler holds its jobs' definitions and persistent data in
//! one; [`MemoryStore`](super::MemoryStore) holds its copy in another.
//!
//! Guarantees:
//! - a slot holds at most one job, and a job is in exactly one slot from
//!   its insertion to its removal (an update keeps its slot);
//! - [`JobTable::find`], [`JobTable::at`] and [`JobTable::at_mut`] take a
//!   slot as a hint only:
//!   they return the entry of job `id` whatever the hint, so a hint made
//!   stale by a delete (and the slot's reuse) never reaches another job;
//! - jobs inserted one after another sit in consecutive slots (freed slots
//!   are reused first), so the jobs a schedule tick starts together, which
//!   were mostly registered together, are read from neighbouring memory
//!   rather than from random places in a hash table.

use std::collections::HashMap;

use tether_core::id_hash::BuildIdHasher;

use super::job::JobId;

/// No slot: the hint of a key built from an id alone.
pub(crate) const NO_SLOT: u32 = u32::MAX;

/// What a [`JobTable`] holds: an entry that names its job.
pub(crate) trait Keyed {
    /// The job this entry is of.
    fn job_id(&self) -> &JobId;
}

/// Jobs by slot, with an index by id.
#[derive(Debug)]
pub(crate) struct JobTable<T> {
    index: HashMap<JobId, u32, BuildIdHasher>,
    slots: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Default for JobTable<T> {
    fn default() -> Self {
        JobTable {
            index: HashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T: Keyed> JobTable<T> {
    /// Job `id`'s slot.
    pub(crate) fn slot_of(&self, id: &JobId) -> Option<u32> {
        self.index.get(id).copied()
    }

    /// Job `id`'s entry.
    pub(crate) fn get(&self, id: &JobId) -> Option<&T> {
        let slot = self.slot_of(id)?;
        self.slots.get(slot as usize)?.as_ref()
    }

    /// Job `id`'s entry, to change.
    pub(crate) fn get_mut(&mut self, id: &JobId) -> Option<&mut T> {
        let slot = self.slot_of(id)?;
        self.slots.get_mut(slot as usize)?.as_mut()
    }

    /// Whether `slot` holds job `id` (the ids share their allocation when
    /// the hint came from this table, so this reads no string).
    fn holds(&self, slot: u32, id: &JobId) -> bool {
        matches!(self.slots.get(slot as usize), Some(Some(e)) if e.job_id() == id)
    }

    /// Job `id`'s slot, `hint` tried first.
    pub(crate) fn find(&self, hint: u32, id: &JobId) -> Option<u32> {
        if self.holds(hint, id) {
            Some(hint)
        } else {
            self.slot_of(id)
        }
    }

    /// The entry in `slot`, if any.
    pub(crate) fn in_slot_mut(&mut self, slot: u32) -> Option<&mut T> {
        self.slots.get_mut(slot as usize)?.as_mut()
    }

    /// Job `id`'s entry, looked for in `slot` first.
    pub(crate) fn at(&self, slot: u32, id: &JobId) -> Option<&T> {
        if self.holds(slot, id) {
            self.slots[slot as usize].as_ref()
        } else {
            self.get(id)
        }
    }

    /// Job `id`'s entry, to change, looked for in `slot` first.
    pub(crate) fn at_mut(&mut self, slot: u32, id: &JobId) -> Option<&mut T> {
        if self.holds(slot, id) {
            self.slots[slot as usize].as_mut()
        } else {
            self.get_mut(id)
        }
    }

    /// Add `entry` under its job's id (replacing the entry of that job if
    /// it is held, in its slot); its slot.
    pub(crate) fn insert(&mut self, entry: T) -> u32 {
        let id = entry.job_id().clone();
        if let Some(slot) = self.slot_of(&id) {
            self.slots[slot as usize] = Some(entry);
            return slot;
        }
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(entry);
                slot
            }
            None => {
                self.slots.push(Some(entry));
                u32::try_from(self.slots.len() - 1).unwrap_or(NO_SLOT)
            }
        };
        self.index.insert(id, slot);
        slot
    }

    /// Remove job `id`; its entry, if it was held.
    pub(crate) fn remove(&mut self, id: &JobId) -> Option<T> {
        let slot = self.index.remove(id)?;
        let entry = self.slots.get_mut(slot as usize)?.take();
        self.free.push(slot);
        entry
    }

    /// Every held entry, in slot order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().flatten()
    }

    /// Jobs held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::scheduler::job::JobDef;
    use crate::scheduler::shared::Entry;
    use crate::scheduler::state::JobState;

    fn entry(id: &str) -> Entry {
        Entry {
            def: Arc::new(JobDef::new(id, "k", Duration::from_secs(1))),
            imp: None,
            state: JobState::new(),
            ticks: 0,
            last_tick: None,
        }
    }

    #[test]
    fn consecutive_inserts_take_consecutive_slots_and_reuse_freed_ones() {
        let mut t = JobTable::<Entry>::default();
        let slots: Vec<u32> = ["a", "b", "c"].map(|id| t.insert(entry(id))).to_vec();
        assert_eq!(slots, [0, 1, 2]);
        let b = JobId::from("b");
        assert!(t.remove(&b).is_some());
        assert!(t.get(&b).is_none());
        assert_eq!(t.insert(entry("d")), 1, "the freed slot first");
        assert_eq!(t.insert(entry("e")), 3);
        assert_eq!(t.len(), 4);
        let ids: Vec<String> = t.values().map(|e| e.def.id.to_string()).collect();
        assert_eq!(ids, ["a", "d", "c", "e"]);
    }

    #[test]
    fn a_stale_hint_finds_the_right_job_or_none() {
        let mut t = JobTable::<Entry>::default();
        let a = JobId::from("a");
        let slot_a = t.insert(entry("a"));
        t.insert(entry("b"));
        assert_eq!(t.at(slot_a, &a).unwrap().def.id, a);
        assert_eq!(t.find(NO_SLOT, &a), Some(slot_a));
        // Deleted, its slot reused by another job: the hint misses, the id
        // decides.
        t.remove(&a);
        assert_eq!(t.insert(entry("c")), slot_a);
        assert!(t.at(slot_a, &a).is_none());
        assert!(t.at_mut(slot_a, &a).is_none());
        assert_eq!(t.find(slot_a, &a), None);
        // Re-added elsewhere: found through the index.
        let again = t.insert(entry("a"));
        assert_ne!(again, slot_a);
        assert_eq!(t.at(slot_a, &a).unwrap().def.id, a);
        assert_eq!(t.find(slot_a, &a), Some(again));
        t.at_mut(NO_SLOT, &a).unwrap().ticks = 7;
        assert_eq!(t.get(&a).unwrap().ticks, 7);
        // Inserting a held id replaces its entry in place.
        let mut e = entry("a");
        e.ticks = 9;
        assert_eq!(t.insert(e), again);
        assert_eq!(t.get(&a).unwrap().ticks, 9);
        assert_eq!(t.len(), 3);
    }
}
