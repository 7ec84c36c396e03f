//! The policy-cache machine: cached CheckAction decisions kept fresh by the
//! invalidation stream.
//!
//! Guarantees: see the module docs of [`crate::policy_cache`].

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ops::Bound;

use super::config::PolicyCacheConfig;
use super::epochs::Epochs;
use super::key::{CacheKey, FetchTicket, KeyParts};
use super::outcome::{Lookup, NotStored, Stored};
use super::output::{
    EvictReason, InvalidationScope, PolicyCacheAction, PolicyCacheStats, PolicyCacheTimer,
};
use crate::machine::Machine;
use crate::time::{earliest, Deadline, Timestamp};

/// Whether the invalidation stream is up, as last reported by the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidationLink {
    /// Up: invalidations arrive, cached decisions are served.
    Up,
    /// Down (or not yet up) since `since`. Cached decisions are served
    /// until `since + staleness_bound`, excluded.
    Down {
        /// When the stream went down (construction, if it was never up).
        since: Timestamp,
    },
}

#[derive(Clone, Debug)]
struct Entry<V> {
    value: V,
    expires_at: Timestamp,
}

/// The L1 cache of CheckAction decisions, as a sans-IO machine.
///
/// ```
/// use tether_core::policy_cache::{CacheKey, Lookup, PolicyCache, PolicyCacheConfig};
/// use tether_core::Timestamp;
///
/// let t0 = Timestamp::ZERO;
/// let mut cache = PolicyCache::new(PolicyCacheConfig::default(), t0);
/// cache.on_stream_up(t0);
/// let key = CacheKey::new("agent-1", "tool_call:search");
/// let ticket = cache.begin_fetch(t0, &key);
/// // ... CheckAction runs; meanwhile the policy of agent-1 changes:
/// cache.on_invalidate(t0, Some("agent-1"), 2);
/// // The answer predates the change, so it is not stored.
/// assert!(cache.complete_fetch(t0, ticket, key.clone(), "allow", 2).is_err());
/// assert_eq!(cache.get(t0, &key), Lookup::Miss);
/// ```
#[derive(Clone, Debug)]
pub struct PolicyCache<V> {
    config: PolicyCacheConfig,
    entries: BTreeMap<CacheKey, Entry<V>>,
    /// Every entry by (expiry, key): the purge timer and the eviction order.
    expiry: BTreeSet<(Timestamp, CacheKey)>,
    epochs: Epochs,
    policy_version: u64,
    stream: InvalidationLink,
    /// Whether `BecameStale` was emitted for the current outage.
    stale_announced: bool,
    actions: VecDeque<PolicyCacheAction>,
    stats: PolicyCacheStats,
}

impl<V: Clone> PolicyCache<V> {
    /// An empty cache. The stream counts as down from `now` until
    /// [`PolicyCache::on_stream_up`]: a cache that never heard from the
    /// stream stops serving after the staleness bound, like one that lost it.
    pub fn new(config: PolicyCacheConfig, now: Timestamp) -> Self {
        PolicyCache {
            epochs: Epochs::new(config.max_tracked_agents),
            config,
            entries: BTreeMap::new(),
            expiry: BTreeSet::new(),
            policy_version: 0,
            stream: InvalidationLink::Down { since: now },
            stale_announced: false,
            actions: VecDeque::new(),
            stats: PolicyCacheStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PolicyCacheConfig {
        &self.config
    }

    /// The newest policy version seen, from invalidations and stored
    /// fetches. Never decreases.
    pub fn policy_version(&self) -> u64 {
        self.policy_version
    }

    /// The stream status as last reported.
    pub fn stream_status(&self) -> InvalidationLink {
        self.stream
    }

    /// Whether cached decisions may be served at `now`: false once the
    /// stream has been down for at least the staleness bound.
    pub fn is_serving(&self, now: Timestamp) -> bool {
        match self.stream {
            InvalidationLink::Up => true,
            InvalidationLink::Down { since } => now < self.stale_at(since),
        }
    }

    /// Entries cached now (expired ones not yet purged included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Counters since construction and the current size.
    pub fn stats(&self) -> PolicyCacheStats {
        PolicyCacheStats {
            tracked_agent_overflows: self.epochs.overflows(),
            tracked_agents: self.epochs.tracked(),
            len: self.entries.len(),
            ..self.stats
        }
    }

    /// The cached value of `key` and its expiry, whatever the TTL and the
    /// stream, without counting a lookup. For invariant checkers only: never
    /// a decision.
    #[cfg(feature = "testkit")]
    pub fn inspect(&self, key: &CacheKey) -> Option<(&V, Timestamp)> {
        self.entries.get(key).map(|e| (&e.value, e.expires_at))
    }

    /// Look up a decision. Only [`Lookup::Hit`] may be used; it is returned
    /// only for an entry within its TTL while the cache is serving.
    pub fn get(&mut self, now: Timestamp, key: &CacheKey) -> Lookup<&V> {
        let serving = self.is_serving(now);
        let stats = &mut self.stats;
        match self.entries.get(key) {
            None => {
                stats.misses = stats.misses.saturating_add(1);
                Lookup::Miss
            }
            Some(e) if now >= e.expires_at => {
                stats.expired_lookups = stats.expired_lookups.saturating_add(1);
                Lookup::Expired
            }
            Some(_) if !serving => {
                stats.stale_refusals = stats.stale_refusals.saturating_add(1);
                Lookup::Stale
            }
            Some(e) => {
                stats.hits = stats.hits.saturating_add(1);
                Lookup::Hit(&e.value)
            }
        }
    }

    /// A fetch of `key` from the gateway begins: the ticket records the
    /// current invalidation epoch and the start time.
    pub fn begin_fetch(&self, now: Timestamp, key: &CacheKey) -> FetchTicket {
        FetchTicket {
            epoch: self.epochs.current(),
            begun_at: now,
            policy_version: self.policy_version,
            key_digest: key.digest(),
        }
    }

    /// The fetch of `ticket` returned `value`, computed under
    /// `policy_version` (a driver whose response carries no version passes
    /// [`FetchTicket::policy_version`]). Stored unless one of the
    /// [`NotStored`] reasons applies. They are checked in this order, and the
    /// first that applies is returned: `KeyTooLong`, `WrongKey`,
    /// `NoCapacity`, `Invalidated`, `OlderPolicyVersion`, `AlreadyExpired`.
    /// A stored result raises [`PolicyCache::policy_version`] to its version.
    ///
    /// At the `max_entries` bound a new key evicts the entry that expires
    /// soonest (ties broken by key order); since every entry lives the same
    /// TTL, that is the oldest fetch.
    pub fn complete_fetch(
        &mut self,
        now: Timestamp,
        ticket: FetchTicket,
        key: CacheKey,
        value: V,
        policy_version: u64,
    ) -> Result<Stored, NotStored> {
        let verdict = self.admit(now, &ticket, &key, policy_version);
        let expires_at = match verdict {
            Ok(at) => at,
            Err(reason) => {
                self.stats.refused_fetches = self.stats.refused_fetches.saturating_add(1);
                return Err(reason);
            }
        };
        self.policy_version = self.policy_version.max(policy_version);
        let mut evicted = None;
        let replaced = match self.entries.remove(&key) {
            Some(old) => {
                self.expiry.remove(&(old.expires_at, key.clone()));
                true
            }
            None => {
                if self.entries.len() >= self.config.max_entries {
                    evicted = self.evict_soonest();
                }
                false
            }
        };
        self.expiry.insert((expires_at, key.clone()));
        self.entries.insert(key, Entry { value, expires_at });
        self.stats.stored = self.stats.stored.saturating_add(1);
        Ok(Stored {
            expires_at,
            replaced,
            evicted,
        })
    }

    /// A `PolicyInvalidated` event: drop the decisions of `agent_id` (`None`
    /// or `""`: of every agent) and refuse every fetch of theirs already in
    /// flight. An invalidation is applied whatever its version (an old
    /// version still never makes [`PolicyCache::policy_version`] go back).
    pub fn on_invalidate(&mut self, _now: Timestamp, agent_id: Option<&str>, policy_version: u64) {
        self.policy_version = self.policy_version.max(policy_version);
        match agent_id {
            None | Some("") => self.drop_all(),
            Some(agent) => self.drop_agent(agent),
        }
    }

    /// Invalidate every cached decision and every fetch in flight: used when
    /// the subscription detects a gateway restart or a gap it cannot replay.
    pub fn invalidate_all(&mut self, _now: Timestamp) {
        self.drop_all();
    }

    /// The invalidation stream is up (subscribed). Cached decisions are
    /// served again; if they had stopped, [`PolicyCacheAction::ServingResumed`]
    /// is reported.
    pub fn on_stream_up(&mut self, _now: Timestamp) {
        if matches!(self.stream, InvalidationLink::Down { .. }) {
            self.stream = InvalidationLink::Up;
            if self.stale_announced {
                self.stale_announced = false;
                self.push(PolicyCacheAction::ServingResumed);
            }
        }
    }

    /// The invalidation stream is down. The staleness clock starts now; a
    /// repeated report does not restart it.
    pub fn on_stream_down(&mut self, now: Timestamp) {
        if self.stream == InvalidationLink::Up {
            self.stream = InvalidationLink::Down { since: now };
            self.stale_announced = false;
        }
    }

    fn stale_at(&self, since: Timestamp) -> Timestamp {
        since.saturating_add(self.config.staleness_bound)
    }

    fn key_too_long(&self, agent: &str, action: &str) -> bool {
        agent.len() > self.config.max_key_len || action.len() > self.config.max_key_len
    }

    /// Whether a result may be stored; the expiry it would get.
    fn admit(
        &self,
        now: Timestamp,
        ticket: &FetchTicket,
        key: &CacheKey,
        policy_version: u64,
    ) -> Result<Timestamp, NotStored> {
        if self.key_too_long(&key.agent_id, &key.action) {
            return Err(NotStored::KeyTooLong);
        }
        if ticket.key_digest != key.digest() {
            return Err(NotStored::WrongKey);
        }
        if self.config.max_entries == 0 {
            return Err(NotStored::NoCapacity);
        }
        if self.epochs.refuses(ticket.epoch, &key.agent_id) {
            return Err(NotStored::Invalidated);
        }
        if policy_version < self.policy_version {
            return Err(NotStored::OlderPolicyVersion {
                got: policy_version,
                newest: self.policy_version,
            });
        }
        let expires_at = ticket.begun_at.saturating_add(self.config.ttl);
        if expires_at <= now {
            return Err(NotStored::AlreadyExpired);
        }
        Ok(expires_at)
    }

    fn evict_soonest(&mut self) -> Option<CacheKey> {
        let (_, key) = self.expiry.pop_first()?;
        self.entries.remove(&key);
        self.stats.evicted_capacity = self.stats.evicted_capacity.saturating_add(1);
        self.push(PolicyCacheAction::Evicted {
            count: 1,
            reason: EvictReason::Capacity,
        });
        Some(key)
    }

    fn drop_all(&mut self) {
        self.epochs.invalidate_all();
        let dropped = self.entries.len();
        self.entries.clear();
        self.expiry.clear();
        self.invalidated(InvalidationScope::All, dropped);
    }

    fn drop_agent(&mut self, agent: &str) {
        if agent.len() > self.config.max_key_len {
            // No key of this agent can be cached or stored; tracking the id
            // would let one hostile id cost unbounded memory. Count it as a
            // global bump: every fetch in flight is refused (safe).
            self.epochs.invalidate_all();
            self.invalidated(InvalidationScope::OversizedAgentId, 0);
            return;
        }
        let name = self
            .epochs
            .invalidate_agent(agent)
            .unwrap_or_else(|| Arc::from(agent));
        // Look the agent's range up by a borrowed probe: no key is built.
        let probe: (&str, &str) = (agent, "");
        let covered: Vec<(CacheKey, Timestamp)> = self
            .entries
            .range::<dyn KeyParts, _>((Bound::Included(&probe as &dyn KeyParts), Bound::Unbounded))
            .take_while(|(k, _)| k.agent_id == agent)
            .map(|(k, e)| (k.clone(), e.expires_at))
            .collect();
        for (key, expires_at) in &covered {
            self.entries.remove(key);
            self.expiry.remove(&(*expires_at, key.clone()));
        }
        self.invalidated(InvalidationScope::Agent(name), covered.len());
    }

    fn invalidated(&mut self, scope: InvalidationScope, dropped: usize) {
        self.stats.invalidations = self.stats.invalidations.saturating_add(1);
        self.stats.dropped_by_invalidation = self
            .stats
            .dropped_by_invalidation
            .saturating_add(dropped as u64);
        self.push(PolicyCacheAction::Invalidated { scope, dropped });
    }

    /// Queue an informational action; at the bound the oldest is dropped.
    fn push(&mut self, action: PolicyCacheAction) {
        if self.config.max_queued_actions == 0 {
            self.stats.dropped_actions = self.stats.dropped_actions.saturating_add(1);
            return;
        }
        while self.actions.len() >= self.config.max_queued_actions {
            self.actions.pop_front();
            self.stats.dropped_actions = self.stats.dropped_actions.saturating_add(1);
        }
        self.actions.push_back(action);
    }
}

impl<V: Clone> Machine for PolicyCache<V> {
    type Action = PolicyCacheAction;
    type TimerReason = PolicyCacheTimer;

    fn poll_action(&mut self) -> Option<PolicyCacheAction> {
        self.actions.pop_front()
    }

    fn poll_timeout(&self) -> Option<Deadline<PolicyCacheTimer>> {
        let expiry = self
            .expiry
            .first()
            .map(|(at, _)| Deadline::new(*at, PolicyCacheTimer::Expiry));
        let stale = match self.stream {
            InvalidationLink::Down { since } if !self.stale_announced => Some(Deadline::new(
                self.stale_at(since),
                PolicyCacheTimer::Staleness,
            )),
            _ => None,
        };
        earliest(stale, expiry)
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        if let InvalidationLink::Down { since } = self.stream {
            if !self.stale_announced && now >= self.stale_at(since) {
                self.stale_announced = true;
                self.push(PolicyCacheAction::BecameStale);
            }
        }
        let mut count = 0usize;
        while let Some((at, _)) = self.expiry.first() {
            if *at > now {
                break;
            }
            if let Some((_, key)) = self.expiry.pop_first() {
                self.entries.remove(&key);
                count = count.saturating_add(1);
            }
        }
        if count > 0 {
            self.stats.evicted_expired = self.stats.evicted_expired.saturating_add(count as u64);
            self.push(PolicyCacheAction::Evicted {
                count,
                reason: EvictReason::Expired,
            });
        }
    }
}
