//! The request ids the machine knows, each stored once: the first of its
//! waiters (a circular list through the slots) and whether a verdict is
//! kept for it; the kept verdicts themselves in a side table.
//!
//! Guarantees: one entry per request id with waiters or a kept verdict
//! (found by one hash lookup), removed as soon as it has neither; an entry
//! index stays valid until its entry is removed; the id's text is stored
//! once, in one shared buffer (no allocation per id), never copied per
//! waiter or resolution; that buffer holds at most twice the live text plus
//! [`TEXT_SLACK`] bytes (it is compacted when removed text exceeds that);
//! at most one kept verdict per entry.

use alloc::string::String;
use alloc::vec::Vec;

use hashbrown::HashTable;

use super::decision::Verdict;
use super::slots::RESOLVED;
use crate::id_hash::hash_id;
use crate::time::Timestamp;

/// "No slot": the end of a list.
pub(crate) const NIL: u32 = u32::MAX;

/// Longest id an entry can hold, in bytes.
pub(crate) const MAX_ID_LEN: usize = super::config::REQUEST_ID_LEN_LIMIT;

/// Removed text tolerated beyond the live text before a compaction.
const TEXT_SLACK: usize = 4096;

/// One request id. 12 bytes: the id's text lives in [`Requests`]'s shared
/// buffer, a kept verdict in its side table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Request {
    /// Where the id's text starts in the shared buffer.
    start: u32,
    /// The oldest waiter's slot (the list is circular: its `prev` is the
    /// newest); `NIL` when none waits.
    pub(crate) head: u32,
    /// The id's length in bytes.
    len: u16,
    /// Whether a verdict is kept for it.
    kept: bool,
}

const _: () = assert!(core::mem::size_of::<Option<Request>>() == 12);

/// A kept verdict: what it is, until when, and which keeping it is (unique
/// for the machine's lifetime, so a stale expiry entry is told apart even
/// after the entry index is reused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Kept {
    pub(crate) verdict: Verdict,
    pub(crate) expires: Timestamp,
    pub(crate) gen: u64,
}

#[derive(Clone, Copy, Debug)]
struct KeptSlot {
    req: u32,
    kept: Kept,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Requests {
    entries: Vec<Option<Request>>,
    free: Vec<u32>,
    table: HashTable<u32>,
    /// Every entry's id text, back to back (plus removed text until the
    /// next compaction).
    text: String,
    /// Bytes of `text` no entry uses.
    removed_text: usize,
    /// Kept verdicts, by entry index.
    kept: HashTable<KeptSlot>,
}

/// The hash of an entry index in the kept-verdict table.
fn hash_req(req: u32) -> u64 {
    u64::from(req).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl Requests {
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// The id text of `r` (always whole characters: copied from a `str`).
    fn key<'a>(text: &'a str, r: &Request) -> &'a str {
        let start = r.start as usize;
        text.get(start..start + usize::from(r.len)).unwrap_or("")
    }

    /// The entry for `key` (whose hash is `hash`).
    pub(crate) fn find(&self, hash: u64, key: &str) -> Option<u32> {
        let (entries, text) = (&self.entries, &self.text);
        self.table
            .find(hash, |&i| {
                entries
                    .get(i as usize)
                    .and_then(Option::as_ref)
                    .is_some_and(|r| Self::key(text, r) == key)
            })
            .copied()
    }

    /// The entry for `key`, created empty when missing. `None` when it
    /// cannot be stored (see [`Requests::insert_new`]).
    pub(crate) fn find_or_insert(&mut self, hash: u64, key: &str) -> Option<u32> {
        match self.find(hash, key) {
            Some(i) => Some(i),
            None => self.insert_new(hash, key),
        }
    }

    /// A new empty entry for `key`, which has none (checked by the caller).
    /// `None` when the key is longer than [`MAX_ID_LEN`], or 2^32 - 1 ids
    /// or 4 GiB of id text are held at once.
    pub(crate) fn insert_new(&mut self, hash: u64, key: &str) -> Option<u32> {
        let len = u16::try_from(key.len()).ok()?;
        if self.text.len().saturating_add(key.len()) > u32::MAX as usize {
            self.compact_text();
        }
        let start = u32::try_from(self.text.len())
            .ok()
            .filter(|s| s.checked_add(u32::from(len)).is_some())?;
        let request = Request {
            start,
            head: NIL,
            len,
            kept: false,
        };
        let idx = match self.free.last() {
            Some(&i) => i,
            // Below `RESOLVED`, which a slot's `req` uses as a marker.
            None => u32::try_from(self.entries.len())
                .ok()
                .filter(|&i| i < RESOLVED)?,
        };
        if self.free.pop().is_some() {
            self.entries[idx as usize] = Some(request);
        } else {
            self.entries.push(Some(request));
        }
        self.text.push_str(key);
        let (entries, text) = (&self.entries, &self.text);
        self.table.insert_unique(hash, idx, |&i| {
            entries
                .get(i as usize)
                .and_then(Option::as_ref)
                .map_or(0, |r| hash_id(Self::key(text, r)))
        });
        Some(idx)
    }

    pub(crate) fn get(&self, idx: u32) -> Option<&Request> {
        self.entries.get(idx as usize).and_then(Option::as_ref)
    }

    pub(crate) fn get_mut(&mut self, idx: u32) -> Option<&mut Request> {
        self.entries.get_mut(idx as usize).and_then(Option::as_mut)
    }

    /// The verdict kept for entry `idx`, if any.
    pub(crate) fn kept(&self, idx: u32) -> Option<Kept> {
        if !self.get(idx)?.kept {
            return None;
        }
        self.kept
            .find(hash_req(idx), |k| k.req == idx)
            .map(|k| k.kept)
    }

    /// Keep `kept` for existing entry `idx`, replacing any kept before.
    pub(crate) fn set_kept(&mut self, idx: u32, kept: Kept) {
        let Some(r) = self.get_mut(idx) else {
            return;
        };
        r.kept = true;
        match self.kept.find_mut(hash_req(idx), |k| k.req == idx) {
            Some(slot) => slot.kept = kept,
            None => {
                self.kept
                    .insert_unique(hash_req(idx), KeptSlot { req: idx, kept }, |k| {
                        hash_req(k.req)
                    });
            }
        }
    }

    /// Forget the verdict kept for `idx`; whether there was one.
    pub(crate) fn take_kept(&mut self, idx: u32) -> bool {
        let Some(r) = self.get_mut(idx) else {
            return false;
        };
        if !core::mem::replace(&mut r.kept, false) {
            return false;
        }
        if let Ok(entry) = self.kept.find_entry(hash_req(idx), |k| k.req == idx) {
            entry.remove();
        }
        true
    }

    /// Remove `idx` if nothing waits on it and no verdict is kept for it.
    pub(crate) fn remove_if_unused(&mut self, idx: u32) {
        let unused = self.get(idx).is_some_and(|r| r.head == NIL && !r.kept);
        if !unused {
            return;
        }
        if let Some(r) = self.entries[idx as usize].take() {
            let hash = hash_id(Self::key(&self.text, &r));
            if let Ok(entry) = self.table.find_entry(hash, |&i| i == idx) {
                entry.remove();
            }
            self.free.push(idx);
            let start = r.start as usize;
            if start + usize::from(r.len) == self.text.len() && self.text.is_char_boundary(start) {
                // The newest text: give it back at once.
                self.text.truncate(start);
            } else {
                self.removed_text += usize::from(r.len);
            }
            if self.table.is_empty() {
                self.text.clear();
                self.removed_text = 0;
            } else if self.removed_text > (self.text.len() - self.removed_text) + TEXT_SLACK {
                self.compact_text();
            }
        }
    }

    /// Rewrite the shared text buffer with only the live entries' text.
    fn compact_text(&mut self) {
        let live = self.text.len() - self.removed_text;
        let mut text = String::with_capacity(live);
        for r in self.entries.iter_mut().flatten() {
            let key = Self::key(&self.text, r);
            // Live text fitted in u32 offsets before, so it still does.
            r.start = u32::try_from(text.len()).unwrap_or(u32::MAX);
            text.push_str(key);
        }
        self.text = text;
        self.removed_text = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn one_entry_per_id_removed_when_unused_and_its_index_reused() {
        let mut r = Requests::default();
        let a = r.find_or_insert(hash_id("a"), "a").unwrap();
        let b = r.find_or_insert(hash_id("b"), "b").unwrap();
        assert_eq!(r.find_or_insert(hash_id("a"), "a"), Some(a));
        assert_ne!(a, b);
        let kept = Kept {
            verdict: Verdict::Approved,
            expires: Timestamp::MAX,
            gen: 7,
        };
        r.set_kept(b, kept);
        assert_eq!(r.kept(b), Some(kept));
        r.remove_if_unused(a);
        r.remove_if_unused(b);
        assert_eq!((r.len(), r.find(hash_id("a"), "a")), (1, None));
        assert_eq!(r.find(hash_id("b"), "b"), Some(b));
        let c = r.find_or_insert(hash_id("c"), "c").unwrap();
        assert_eq!(c, a, "a freed index is reused");
        assert_eq!(Requests::key(&r.text, r.get(c).unwrap()), "c");
        assert!(r.take_kept(b) && !r.take_kept(b));
        assert_eq!(r.kept(b), None);
        r.remove_if_unused(b);
        r.remove_if_unused(c);
        assert_eq!((r.len(), r.text.len(), r.kept.len()), (0, 0, 0));
    }

    #[test]
    fn removed_text_is_compacted_and_ids_still_found() {
        let mut r = Requests::default();
        let ids: alloc::vec::Vec<_> = (0..5_000).map(|i| format!("request-{i}")).collect();
        let idx: alloc::vec::Vec<_> = ids
            .iter()
            .map(|id| r.insert_new(hash_id(id), id).unwrap())
            .collect();
        // Remove all but every tenth, oldest first (never the newest text).
        for (i, &x) in idx.iter().enumerate() {
            if i % 10 != 0 {
                r.remove_if_unused(x);
            }
            let live: usize = r.entries.iter().flatten().map(|e| usize::from(e.len)).sum();
            assert!(r.text.len() <= 2 * live + TEXT_SLACK + 16);
        }
        for (i, id) in ids.iter().enumerate() {
            let found = r.find(hash_id(id), id);
            assert_eq!(found.is_some(), i % 10 == 0, "{id}");
            if let Some(x) = found {
                assert_eq!(Requests::key(&r.text, r.get(x).unwrap()), id);
            }
        }
        let long = "x".repeat(MAX_ID_LEN + 1);
        assert_eq!(r.insert_new(hash_id(&long), &long), None);
    }
}
