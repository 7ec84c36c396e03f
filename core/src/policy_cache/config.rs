//! Policy-cache parameters and their defaults, each with the reason it was
//! chosen.

use core::time::Duration;

/// How long a cached decision lives, counted from the moment its fetch
/// *began*: 60 s. The invalidation stream is what keeps the cache fresh; the
/// TTL is the backstop that bounds how long a decision can outlive an
/// invalidation that was lost anyway (a bug, a gateway that forgot to send
/// it). A minute keeps the hit rate of an agent loop high while capping that
/// exposure.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// How long the invalidation stream may be down before cached decisions stop
/// being served: 15 s. It covers the reconnect after a healthy stream (at
/// most 1 s) plus the first backoff steps (1 + 1.6 + 2.56 + 4.1 s, jittered),
/// so a blip does not flush the hit rate, while a real outage stops serving
/// decisions that may have been revoked meanwhile within 15 s.
pub const DEFAULT_STALENESS_BOUND: Duration = Duration::from_secs(15);

/// Most cached decisions: 10,000. A decision is an agent and an action
/// fingerprint plus a small value (well under 1 KiB), so the cache stays
/// within a few MiB, while covering the working set of a busy multi-agent
/// host.
pub const DEFAULT_MAX_ENTRIES: usize = 10_000;

/// Most agents whose last invalidation is tracked individually: 1,024. Past
/// it the oldest is forgotten and replaced by a conservative global bump
/// (every fetch begun before it is refused), so the bound costs only a few
/// refetches, never a stale store. A host rarely runs more agents than that.
pub const DEFAULT_MAX_TRACKED_AGENTS: usize = 1_024;

/// Longest agent id or action fingerprint, in bytes: 1 KiB. Agent ids and
/// fingerprints (hashes, tool names) are far shorter; the bound keeps one
/// hostile key from costing unbounded memory. Longer keys are never stored.
pub const DEFAULT_MAX_KEY_LEN: usize = 1_024;

/// Most informational actions kept for a driver that does not drain: 256.
/// Actions only feed metrics and logs, so at the bound the oldest is dropped
/// (and counted) rather than letting memory grow.
pub const DEFAULT_MAX_QUEUED_ACTIONS: usize = 256;

/// Parameters of a [`PolicyCache`](super::PolicyCache).
///
/// Every value is valid: `max_entries == 0` disables storing (every fetch
/// is refused with [`NotStored::NoCapacity`](super::NotStored::NoCapacity)),
/// `max_tracked_agents == 0` makes every agent invalidation a global bump,
/// a zero `ttl` stores nothing and a zero `staleness_bound` stops serving
/// the moment the stream goes down.
///
/// Built from [`PolicyCacheConfig::default`] and its `with_` methods (fields may
/// be added, so outside this crate it cannot be written as a literal).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PolicyCacheConfig {
    /// Lifetime of a decision, from the moment its fetch began.
    pub ttl: Duration,
    /// Stream outage after which cached decisions are not served.
    pub staleness_bound: Duration,
    /// Most cached decisions.
    pub max_entries: usize,
    /// Most agents whose last invalidation is tracked individually.
    pub max_tracked_agents: usize,
    /// Longest agent id or action fingerprint, in bytes.
    pub max_key_len: usize,
    /// Most informational actions queued before the oldest is dropped.
    pub max_queued_actions: usize,
}

impl Default for PolicyCacheConfig {
    fn default() -> Self {
        PolicyCacheConfig {
            ttl: DEFAULT_TTL,
            staleness_bound: DEFAULT_STALENESS_BOUND,
            max_entries: DEFAULT_MAX_ENTRIES,
            max_tracked_agents: DEFAULT_MAX_TRACKED_AGENTS,
            max_key_len: DEFAULT_MAX_KEY_LEN,
            max_queued_actions: DEFAULT_MAX_QUEUED_ACTIONS,
        }
    }
}

impl PolicyCacheConfig {
    /// The same, keeping a decision for `ttl` from the moment its fetch began.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The same, not serving cached decisions after a stream outage of `staleness_bound`.
    pub fn with_staleness_bound(mut self, staleness_bound: Duration) -> Self {
        self.staleness_bound = staleness_bound;
        self
    }

    /// The same, caching at most `max_entries` decisions.
    pub fn with_max_entries(mut self, max_entries: usize) -> Self {
        self.max_entries = max_entries;
        self
    }

    /// The same, tracking at most `max_tracked_agents` agents' last invalidation.
    pub fn with_max_tracked_agents(mut self, max_tracked_agents: usize) -> Self {
        self.max_tracked_agents = max_tracked_agents;
        self
    }

    /// The same, accepting agent ids and action fingerprints of at most `max_key_len` bytes.
    pub fn with_max_key_len(mut self, max_key_len: usize) -> Self {
        self.max_key_len = max_key_len;
        self
    }

    /// The same, queueing at most `max_queued_actions` informational actions.
    pub fn with_max_queued_actions(mut self, max_queued_actions: usize) -> Self {
        self.max_queued_actions = max_queued_actions;
        self
    }
}
