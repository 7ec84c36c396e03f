//! The request ids the machine knows, each stored once: the head and tail
//! of its waiters' list and the verdict kept for it.
//!
//! Guarantees: one entry per request id with waiters or a kept verdict
//! (found by one hash lookup), removed as soon as it has neither; a slot
//! index stays valid until its entry is removed; the id's text is stored
//! once per entry (a `Box<str>`), never copied per waiter or resolution.

use alloc::boxed::Box;
use alloc::vec::Vec;

use hashbrown::HashTable;

use super::decision::Verdict;
use crate::id_hash::hash_id;
use crate::time::Timestamp;

/// "No slot": the end of a list.
pub(crate) const NIL: u32 = u32::MAX;

#[derive(Clone, Debug)]
pub(crate) struct Request {
    pub(crate) key: Box<str>,
    /// First and last waiter slot, in wait order; `NIL` when none waits.
    pub(crate) head: u32,
    pub(crate) tail: u32,
    /// The kept verdict and when it stops being kept.
    pub(crate) kept: Option<(Verdict, Timestamp)>,
    /// Which keeping this is (unique for the machine's lifetime), so a stale
    /// expiry entry is told apart even after the slot is reused.
    pub(crate) kept_gen: u64,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Requests {
    entries: Vec<Option<Request>>,
    free: Vec<u32>,
    table: HashTable<u32>,
}

impl Requests {
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// The entry for `key` (whose hash is `hash`).
    pub(crate) fn find(&self, hash: u64, key: &str) -> Option<u32> {
        let entries = &self.entries;
        self.table
            .find(hash, |&i| {
                entries
                    .get(i as usize)
                    .and_then(Option::as_ref)
                    .is_some_and(|r| &*r.key == key)
            })
            .copied()
    }

    /// The entry for `key`, created empty when missing. `None` only when
    /// 2^32 - 1 ids are known at once.
    pub(crate) fn find_or_insert(&mut self, hash: u64, key: &str) -> Option<u32> {
        match self.find(hash, key) {
            Some(i) => Some(i),
            None => self.insert_new(hash, key),
        }
    }

    /// A new empty entry for `key`, which has none (checked by the caller).
    pub(crate) fn insert_new(&mut self, hash: u64, key: &str) -> Option<u32> {
        let request = Request {
            key: Box::from(key),
            head: NIL,
            tail: NIL,
            kept: None,
            kept_gen: 0,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                self.entries[i as usize] = Some(request);
                i
            }
            None => {
                let i = u32::try_from(self.entries.len())
                    .ok()
                    .filter(|&i| i != NIL)?;
                self.entries.push(Some(request));
                i
            }
        };
        let entries = &self.entries;
        self.table.insert_unique(hash, idx, |&i| {
            entries
                .get(i as usize)
                .and_then(Option::as_ref)
                .map_or(0, |r| hash_id(&r.key))
        });
        Some(idx)
    }

    pub(crate) fn get(&self, idx: u32) -> Option<&Request> {
        self.entries.get(idx as usize).and_then(Option::as_ref)
    }

    pub(crate) fn get_mut(&mut self, idx: u32) -> Option<&mut Request> {
        self.entries.get_mut(idx as usize).and_then(Option::as_mut)
    }

    /// Remove `idx` if nothing waits on it and no verdict is kept for it.
    pub(crate) fn remove_if_unused(&mut self, idx: u32) {
        let unused = self
            .get(idx)
            .is_some_and(|r| r.head == NIL && r.kept.is_none());
        if !unused {
            return;
        }
        if let Some(r) = self.entries[idx as usize].take() {
            if let Ok(entry) = self.table.find_entry(hash_id(&r.key), |&i| i == idx) {
                entry.remove();
            }
            self.free.push(idx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_entry_per_id_removed_when_unused_and_its_index_reused() {
        let mut r = Requests::default();
        let a = r.find_or_insert(hash_id("a"), "a").unwrap();
        let b = r.find_or_insert(hash_id("b"), "b").unwrap();
        assert_eq!(r.find_or_insert(hash_id("a"), "a"), Some(a));
        assert_ne!(a, b);
        r.get_mut(b).unwrap().kept = Some((Verdict::Approved, Timestamp::MAX));
        r.remove_if_unused(a);
        r.remove_if_unused(b);
        assert_eq!((r.len(), r.find(hash_id("a"), "a")), (1, None));
        assert_eq!(r.find(hash_id("b"), "b"), Some(b));
        let c = r.find_or_insert(hash_id("c"), "c").unwrap();
        assert_eq!(c, a, "a freed index is reused");
        assert_eq!(&*r.get(c).unwrap().key, "c");
    }
}
