//! The cache's outputs: informational actions, timer reasons and counters.

use alloc::sync::Arc;

/// What the cache reports to its driver. Every action is informational
/// (metrics, logs): the cache needs nothing executed to stay correct.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyCacheAction {
    /// Entries were removed without an invalidation.
    Evicted {
        /// How many.
        count: usize,
        /// Why.
        reason: EvictReason,
    },
    /// An invalidation (from the stream, or [`invalidate_all`]) was applied.
    ///
    /// [`invalidate_all`]: super::PolicyCache::invalidate_all
    Invalidated {
        /// Which decisions it covered.
        scope: InvalidationScope,
        /// How many cached entries it dropped.
        dropped: usize,
    },
    /// The stream has now been down for the staleness bound: cached
    /// decisions are no longer served.
    BecameStale,
    /// The stream is up again after [`PolicyCacheAction::BecameStale`]:
    /// cached decisions are served again.
    ServingResumed,
}

/// Why entries were evicted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvictReason {
    /// Their TTL passed.
    Expired,
    /// The cache was full and a new decision needed room.
    Capacity,
}

/// Which decisions an invalidation covered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvalidationScope {
    /// Every agent's.
    All,
    /// One agent's (its id, shared with the cache's own bookkeeping).
    Agent(Arc<str>),
    /// An agent id longer than `max_key_len`: no cached entry can belong to
    /// it, so nothing was dropped, but every fetch in flight was refused as
    /// for [`InvalidationScope::All`] (the id is not kept).
    OversizedAgentId,
}

/// Why the cache wants to be woken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyCacheTimer {
    /// The earliest entry's TTL passes: purge expired entries.
    Expiry,
    /// The stream will have been down for the staleness bound.
    Staleness,
}

/// Counters since construction (all saturating), plus the current size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PolicyCacheStats {
    /// Lookups answered with a cached decision.
    pub hits: u64,
    /// Lookups with nothing cached.
    pub misses: u64,
    /// Lookups that found an entry past its TTL.
    pub expired_lookups: u64,
    /// Lookups refused because the stream was down too long.
    pub stale_refusals: u64,
    /// Fetch results stored.
    pub stored: u64,
    /// Fetch results refused (any [`NotStored`](super::NotStored) reason).
    pub refused_fetches: u64,
    /// Invalidations applied (stream events and `invalidate_all`).
    pub invalidations: u64,
    /// Entries dropped by invalidations.
    pub dropped_by_invalidation: u64,
    /// Entries purged after their TTL.
    pub evicted_expired: u64,
    /// Entries evicted at the `max_entries` bound.
    pub evicted_capacity: u64,
    /// Times the per-agent tracking bound forced a global bump.
    pub tracked_agent_overflows: u64,
    /// Informational actions dropped because the driver did not drain.
    pub dropped_actions: u64,
    /// Agents whose last invalidation is tracked individually now.
    pub tracked_agents: usize,
    /// Entries cached now (expired ones not yet purged included).
    pub len: usize,
}
