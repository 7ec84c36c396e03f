//! Verdicts kept for waiters that arrive after them: bounded, each expiring
//! `keep_for` after it arrived.
//!
//! Bound: at most `max` verdicts. Keeping one more drops the verdict that
//! expires soonest (ties by request id); every verdict is kept equally long,
//! so that is the oldest. A verdict is *kept* only strictly before its
//! expiry, whether or not the purge timer has run yet.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use core::time::Duration;

use super::decision::Verdict;
use crate::time::Timestamp;

#[derive(Clone, Debug)]
pub(crate) struct KeptVerdicts {
    by_id: BTreeMap<String, (Verdict, Timestamp)>,
    by_expiry: BTreeSet<(Timestamp, String)>,
    keep_for: Duration,
    max: usize,
}

impl KeptVerdicts {
    pub(crate) fn new(keep_for: Duration, max: usize) -> Self {
        KeptVerdicts {
            by_id: BTreeMap::new(),
            by_expiry: BTreeSet::new(),
            keep_for,
            max,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// The verdict kept for `id` at `now`, if any.
    pub(crate) fn get(&self, id: &str, now: Timestamp) -> Option<Verdict> {
        match self.by_id.get(id) {
            Some((v, expires)) if now < *expires => Some(*v),
            _ => None,
        }
    }

    /// Keep `verdict` for `id` from `now`, replacing an expired one. Returns
    /// how many verdicts the bound dropped (0 or 1). Keeps nothing when
    /// keeping is disabled.
    pub(crate) fn insert(&mut self, now: Timestamp, id: &str, verdict: Verdict) -> usize {
        let expires = now.saturating_add(self.keep_for);
        if self.max == 0 || expires <= now {
            return 0;
        }
        self.remove(id);
        let mut dropped = 0;
        while self.by_id.len() >= self.max {
            let Some((_, oldest)) = self.by_expiry.pop_first() else {
                break;
            };
            self.by_id.remove(&oldest);
            dropped += 1;
        }
        self.by_id.insert(String::from(id), (verdict, expires));
        self.by_expiry.insert((expires, String::from(id)));
        dropped
    }

    /// Forget every verdict whose expiry is at or before `now`.
    pub(crate) fn expire(&mut self, now: Timestamp) {
        while let Some((at, _)) = self.by_expiry.first() {
            if *at > now {
                break;
            }
            if let Some((_, id)) = self.by_expiry.pop_first() {
                self.by_id.remove(&id);
            }
        }
    }

    /// The earliest expiry, if any verdict is kept.
    pub(crate) fn next_expiry(&self) -> Option<Timestamp> {
        self.by_expiry.first().map(|(at, _)| *at)
    }

    fn remove(&mut self, id: &str) {
        if let Some((_, expires)) = self.by_id.remove(id) {
            self.by_expiry.remove(&(expires, String::from(id)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_until_expiry_and_bounded_by_dropping_the_oldest() {
        let mut k = KeptVerdicts::new(Duration::from_secs(10), 2);
        let t = Timestamp::from_secs(1);
        assert_eq!(k.insert(t, "a", Verdict::Approved), 0);
        assert_eq!(
            k.insert(t + Duration::from_secs(1), "b", Verdict::Denied),
            0
        );
        assert_eq!(
            k.insert(t + Duration::from_secs(2), "c", Verdict::Denied),
            1
        );
        assert_eq!(k.get("a", t), None);
        assert_eq!(k.get("b", t), Some(Verdict::Denied));
        assert_eq!(k.get("b", t + Duration::from_secs(11)), None);
        assert_eq!(k.next_expiry(), Some(t + Duration::from_secs(11)));
        k.expire(t + Duration::from_secs(11));
        assert_eq!(k.len(), 1);
        k.expire(Timestamp::MAX);
        assert_eq!((k.len(), k.next_expiry()), (0, None));
    }

    #[test]
    fn disabled_keeping_keeps_nothing() {
        let mut k = KeptVerdicts::new(Duration::ZERO, 8);
        k.insert(Timestamp::ZERO, "a", Verdict::Approved);
        let mut m = KeptVerdicts::new(Duration::from_secs(1), 0);
        m.insert(Timestamp::ZERO, "a", Verdict::Approved);
        // Keeping from the end of time saturates to an instant already past.
        let mut n = KeptVerdicts::new(Duration::from_secs(1), 8);
        n.insert(Timestamp::MAX, "a", Verdict::Approved);
        assert_eq!(k.len() + m.len() + n.len(), 0);
    }
}
