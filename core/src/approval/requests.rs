//! The waiters of each request id.
//!
//! Guarantees: an id has an entry exactly while at least one waiter waits
//! for it (so [`Requests::len`] is the number of ids waited on); an id's
//! waiters come out in wait order (issue order).

use alloc::collections::BTreeSet;
use alloc::string::String;

use hashbrown::HashMap;

use crate::id_hash::BuildIdHasher;

#[derive(Clone, Debug, Default)]
pub(crate) struct Requests {
    /// Request id → the issue numbers of its waiters.
    by_id: HashMap<String, BTreeSet<u64>, BuildIdHasher>,
}

impl Requests {
    /// Waiter `seq` now waits for `id`.
    pub(crate) fn add(&mut self, id: &str, seq: u64) {
        match self.by_id.get_mut(id) {
            Some(waiters) => {
                waiters.insert(seq);
            }
            None => {
                self.by_id.insert(String::from(id), BTreeSet::from([seq]));
            }
        }
    }

    /// Waiter `seq` no longer waits for `id`; the entry goes with its last
    /// waiter.
    pub(crate) fn remove(&mut self, id: &str, seq: u64) {
        if let Some(waiters) = self.by_id.get_mut(id) {
            waiters.remove(&seq);
            if waiters.is_empty() {
                self.by_id.remove(id);
            }
        }
    }

    /// Every waiter of `id`, in wait order, removed.
    pub(crate) fn take(&mut self, id: &str) -> BTreeSet<u64> {
        self.by_id.remove(id).unwrap_or_default()
    }

    /// Request ids with at least one waiter.
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn an_entry_lives_exactly_while_it_has_waiters() {
        let mut r = Requests::default();
        r.add("a", 3);
        r.add("a", 1);
        r.add("b", 2);
        assert_eq!(r.len(), 2);
        r.remove("a", 3);
        r.remove("a", 7);
        r.remove("zz", 1);
        assert_eq!(r.len(), 2);
        r.remove("a", 1);
        assert_eq!(r.len(), 1);
        r.add("b", 0);
        assert_eq!(r.take("b").into_iter().collect::<Vec<_>>(), [0, 2]);
        assert_eq!(r.len(), 0);
        assert!(r.take("b").is_empty());
    }
}
