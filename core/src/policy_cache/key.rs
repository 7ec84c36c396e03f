//! What a cached decision is keyed by, and the ticket a fetch carries from
//! its beginning to its completion.

use alloc::string::String;
use core::borrow::Borrow;
use core::cmp::Ordering;

use crate::time::Timestamp;

/// The key of one cached decision: which agent asked, and a fingerprint of
/// the action it asked about (built by the driver from the CheckAction
/// request: action type, tool name, arguments, ...).
///
/// Keys order by agent first, so every decision of one agent is one range.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CacheKey {
    /// The agent the decision is for.
    pub agent_id: String,
    /// The driver's fingerprint of the action.
    pub action: String,
}

impl CacheKey {
    /// A key for `agent_id` and the action fingerprint `action`.
    pub fn new(agent_id: impl Into<String>, action: impl Into<String>) -> Self {
        CacheKey {
            agent_id: agent_id.into(),
            action: action.into(),
        }
    }

    /// A 64-bit FNV-1a digest of the key, used to catch a ticket completed
    /// with a key other than the one it was issued for.
    pub(crate) fn digest(&self) -> u64 {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut h = OFFSET;
        let bytes = self
            .agent_id
            .as_bytes()
            .iter()
            .chain(&[0xff]) // never in UTF-8: separates the two fields
            .chain(self.action.as_bytes());
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(PRIME);
        }
        h
    }
}

/// A cache key's two parts, borrowed, so the cache can search its ordered
/// map without building a [`CacheKey`] (and allocating its strings). Orders
/// exactly as [`CacheKey`] does: agent first, then action.
pub trait KeyParts {
    /// The agent part.
    fn agent(&self) -> &str;
    /// The action part.
    fn action(&self) -> &str;
}

impl KeyParts for CacheKey {
    fn agent(&self) -> &str {
        &self.agent_id
    }
    fn action(&self) -> &str {
        &self.action
    }
}

impl KeyParts for (&str, &str) {
    fn agent(&self) -> &str {
        self.0
    }
    fn action(&self) -> &str {
        self.1
    }
}

impl<'a> Borrow<dyn KeyParts + 'a> for CacheKey {
    fn borrow(&self) -> &(dyn KeyParts + 'a) {
        self
    }
}

impl PartialEq for dyn KeyParts + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.agent() == other.agent() && self.action() == other.action()
    }
}

impl Eq for dyn KeyParts + '_ {}

impl PartialOrd for dyn KeyParts + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn KeyParts + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.agent(), self.action()).cmp(&(other.agent(), other.action()))
    }
}

/// Proof of when a fetch began, issued by
/// [`PolicyCache::begin_fetch`](super::PolicyCache::begin_fetch) and handed
/// back to [`PolicyCache::complete_fetch`](super::PolicyCache::complete_fetch).
///
/// It records the invalidation epoch at the start of the fetch, so that any
/// invalidation in between refuses the result. Only the cache can make one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchTicket {
    pub(crate) epoch: u64,
    pub(crate) begun_at: Timestamp,
    pub(crate) policy_version: u64,
    pub(crate) key_digest: u64,
}

impl FetchTicket {
    /// When the fetch began; the decision's TTL counts from here.
    pub fn begun_at(&self) -> Timestamp {
        self.begun_at
    }

    /// The newest policy version the cache knew when the fetch began. A
    /// driver whose CheckAction response carries no version completes the
    /// fetch with this one.
    pub fn policy_version(&self) -> u64 {
        self.policy_version
    }
}
