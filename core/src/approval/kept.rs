//! Verdicts kept for waiters that arrive after them.
//!
//! Guarantees: at most one verdict per request id; a verdict is kept
//! (answered by [`KeptVerdicts::get`]) strictly before its expiry, and
//! stays counted until [`KeptVerdicts::expire`] purges it;
//! [`KeptVerdicts::next_expiry`] is exactly the earliest expiry held; at
//! the bound the verdict expiring soonest is dropped (of verdicts expiring
//! together, the one kept first).

use alloc::collections::BTreeMap;
use alloc::string::String;

use hashbrown::HashMap;

use super::decision::ReviewerVerdict;
use crate::id_hash::BuildIdHasher;
use crate::time::Timestamp;

/// One kept verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Kept {
    verdict: ReviewerVerdict,
    expires: Timestamp,
    /// Verdicts kept before this one (breaks ties between equal expiries).
    order: u64,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct KeptVerdicts {
    by_id: HashMap<String, Kept, BuildIdHasher>,
    /// (expiry, order) → request id: the expiry order.
    by_expiry: BTreeMap<(Timestamp, u64), String>,
    /// Verdicts kept so far: the order of the next one.
    next_order: u64,
}

impl KeptVerdicts {
    /// The verdict kept for `id` at `now`.
    pub(crate) fn get(&self, id: &str, now: Timestamp) -> Option<ReviewerVerdict> {
        self.by_id
            .get(id)
            .filter(|k| now < k.expires)
            .map(|k| k.verdict)
    }

    /// Forget the verdict kept for `id` (expired or not).
    pub(crate) fn remove(&mut self, id: &str) {
        if let Some(k) = self.by_id.remove(id) {
            self.by_expiry.remove(&(k.expires, k.order));
        }
    }

    /// Keep `verdict` for `id` (which has none) until `expires`, holding at
    /// most `max` (at least one); how many were dropped for room.
    pub(crate) fn keep(
        &mut self,
        id: &str,
        verdict: ReviewerVerdict,
        expires: Timestamp,
        max: usize,
    ) -> u64 {
        let mut dropped = 0;
        while self.by_id.len() >= max {
            let Some((_, oldest)) = self.by_expiry.pop_first() else {
                break;
            };
            self.by_id.remove(&oldest);
            dropped += 1;
        }
        let order = self.next_order;
        self.next_order += 1;
        self.by_expiry.insert((expires, order), String::from(id));
        self.by_id.insert(
            String::from(id),
            Kept {
                verdict,
                expires,
                order,
            },
        );
        dropped
    }

    /// Purge every verdict whose expiry is at or before `now`.
    pub(crate) fn expire(&mut self, now: Timestamp) {
        while let Some(entry) = self.by_expiry.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let id = entry.remove();
            self.by_id.remove(&id);
        }
    }

    /// The earliest expiry held.
    pub(crate) fn next_expiry(&self) -> Option<Timestamp> {
        self.by_expiry.first_key_value().map(|(&(at, _), _)| at)
    }

    /// Verdicts held (expired ones until purged).
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReviewerVerdict::{Approved, Denied};

    #[test]
    fn kept_until_expiry_and_dropped_soonest_first() {
        let t = Timestamp::from_nanos;
        let mut k = KeptVerdicts::default();
        assert_eq!(k.keep("a", Approved, t(10), 2), 0);
        assert_eq!(k.keep("b", Denied, t(10), 2), 0);
        assert_eq!(
            (k.get("a", t(9)), k.get("a", t(10))),
            (Some(Approved), None)
        );
        // Equal expiries: the one kept first goes first.
        assert_eq!(k.keep("c", Denied, t(5), 2), 1);
        assert_eq!((k.get("a", t(0)), k.get("b", t(0))), (None, Some(Denied)));
        assert_eq!((k.len(), k.next_expiry()), (2, Some(t(5))));
        k.expire(t(4));
        assert_eq!(k.len(), 2);
        k.expire(t(5));
        assert_eq!((k.len(), k.next_expiry()), (1, Some(t(10))));
        k.remove("b");
        k.remove("b");
        assert_eq!((k.len(), k.next_expiry()), (0, None));
    }
}
