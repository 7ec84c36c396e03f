//! The policy cache: the L1 cache of CheckAction decisions that the
//! invalidation stream keeps fresh.
//!
//! Guarantees (named invariants, checked after every step by
//! `testkit::policy_cache`, `tests/prop_policy_cache.rs` and the
//! `policy_cache` fuzz target):
//! - `CACHE_INVALIDATION_BEATS_INFLIGHT_FETCH`: a fetch whose ticket was
//!   issued before an invalidation covering its key (its agent, or every
//!   agent) is never stored, and so never served;
//! - `CACHE_PER_AGENT_PRECISE`: an invalidation of agent A does not refuse a
//!   fetch of agent B, unless the per-agent tracking bound
//!   (`max_tracked_agents`) overflowed after that fetch began; the overflow
//!   falls back to a conservative global bump (more refetches, never a stale
//!   store);
//! - `CACHE_POLICY_VERSION_MONOTONE`: [`PolicyCache::policy_version`] never
//!   decreases, and a fetch reporting an older version than the newest seen
//!   is not stored;
//! - `CACHE_NO_STALE_SERVE`: no decision is served while the invalidation
//!   stream has been down for at least `staleness_bound`; a cache that never
//!   saw the stream up counts as down from its construction. Entries are
//!   kept and served again once the stream is up (the subscription then
//!   replays what was missed, or invalidates everything if it cannot);
//! - `CACHE_TTL_RESPECTED`: no decision is served at or after the instant its
//!   fetch began plus `ttl` (a slow fetch does not extend a decision's life);
//! - `CACHE_HIT_IS_LATEST_STORE`: a hit returns exactly the value of the
//!   latest stored fetch of its key that no invalidation, purge or eviction
//!   removed since;
//! - `CACHE_EVICTS_SOONEST_EXPIRING`: at the `max_entries` bound a new key
//!   evicts the entry expiring soonest (the oldest fetch), and only then;
//! - `CACHE_BOUNDED`: at most `max_entries` entries, `max_tracked_agents`
//!   tracked agents and `max_queued_actions` queued actions; keys longer
//!   than `max_key_len` are never stored or tracked;
//! - `CACHE_TIMER_EXACT`: `poll_timeout` is exactly the earliest entry expiry
//!   or the unannounced staleness instant, so nothing is left behind.
//!
//! Plus the contract invariants every machine keeps (see
//! [`crate::Machine`]).
//!
//! Only [`Lookup::Hit`] is a decision: a miss, an expired entry or a stale
//! cache all mean "ask the gateway". The cache stores decisions opaquely
//! (`V`), so a driver decides which gateway answers are worth caching.

mod config;
mod epochs;
mod key;
mod machine;
mod outcome;
mod output;

pub use config::{
    PolicyCacheConfig, DEFAULT_MAX_ENTRIES, DEFAULT_MAX_KEY_LEN, DEFAULT_MAX_QUEUED_ACTIONS,
    DEFAULT_MAX_TRACKED_AGENTS, DEFAULT_STALENESS_BOUND, DEFAULT_TTL,
};
pub use key::{CacheKey, FetchTicket};
pub use machine::{InvalidationLink, PolicyCache};
pub use outcome::{Lookup, NotStored, Stored};
pub use output::{
    EvictReason, InvalidationScope, PolicyCacheAction, PolicyCacheStats, PolicyCacheTimer,
};
