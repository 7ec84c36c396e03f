//! What a lookup and a completed fetch return.

use super::key::CacheKey;
use crate::time::Timestamp;

/// The answer of [`PolicyCache::get`](super::PolicyCache::get).
///
/// Only [`Lookup::Hit`] may be used as a decision; every other answer means
/// "ask the gateway".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup<T> {
    /// A fresh cached decision.
    Hit(T),
    /// Nothing cached for this key.
    Miss,
    /// A decision is cached but its TTL has passed (it will be purged).
    Expired,
    /// A decision is cached and within its TTL, but the invalidation stream
    /// has been down for at least the staleness bound, so it is not served.
    Stale,
}

impl<T> Lookup<T> {
    /// The cached decision, if this is a hit.
    pub fn hit(self) -> Option<T> {
        match self {
            Lookup::Hit(v) => Some(v),
            _ => None,
        }
    }
}

impl<T: Clone> Lookup<&T> {
    /// The same answer with an owned copy of the decision.
    pub fn cloned(self) -> Lookup<T> {
        match self {
            Lookup::Hit(v) => Lookup::Hit(v.clone()),
            Lookup::Miss => Lookup::Miss,
            Lookup::Expired => Lookup::Expired,
            Lookup::Stale => Lookup::Stale,
        }
    }
}

/// A fetch result that was stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// When the stored decision expires.
    pub expires_at: Timestamp,
    /// Whether it replaced a decision already cached for the key.
    pub replaced: bool,
    /// The key evicted to make room at the `max_entries` bound, if any.
    pub evicted: Option<CacheKey>,
}

/// Why a fetch result was not stored. The result itself is still the
/// gateway's answer and may be used once by whoever fetched it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotStored {
    /// An invalidation covering the key (its agent, or every agent) arrived
    /// after the fetch began: the result may predate the new policy. Also
    /// returned, conservatively, when the per-agent tracking bound forced a
    /// global bump after the fetch began.
    Invalidated,
    /// The result reports a policy version older than the newest seen.
    OlderPolicyVersion {
        /// The version the result reported.
        got: u64,
        /// The newest version seen.
        newest: u64,
    },
    /// The TTL, counted from the start of the fetch, has already passed.
    AlreadyExpired,
    /// The ticket was issued for another key.
    WrongKey,
    /// The agent id or action fingerprint is longer than `max_key_len`.
    KeyTooLong,
    /// `max_entries` is zero: caching is disabled.
    NoCapacity,
}
