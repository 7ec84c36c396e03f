//! Input sequences for the policy cache and its invariant checker.
//!
//! The [`Harness`] drives a [`PolicyCache<u64>`] (every stored value is a
//! fresh number, so a hit says exactly which fetch it came from) next to a
//! small reference model, and after every step checks the invariants named
//! in [`crate::policy_cache`], the contract invariants, and
//! `CACHE_MATCHES_MODEL`: every answer, every action, every cached entry
//! and the reported deadline equal the model's.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use super::contract::{drain, timeout_checked};
use super::Violation;
use crate::ensure_invariant;
use crate::machine::Machine;
use crate::policy_cache::{
    CacheKey, EvictReason, FetchTicket, InvalidationScope, Lookup, NotStored, PolicyCache,
    PolicyCacheAction, PolicyCacheConfig, PolicyCacheStats, Stored,
};
use crate::time::{Deadline, Timestamp};

/// The agents of the key space (small, so collisions happen).
pub const AGENTS: [&str; 4] = ["a0", "a1", "a2", "a3"];
/// The action fingerprints of the key space.
pub const ACTIONS: [&str; 2] = ["read", "write"];
/// Most fetches the harness keeps in flight (the oldest is forgotten).
pub const MAX_IN_FLIGHT: usize = 8;

/// The key numbered `k` (any `u8` is valid).
pub fn key(k: u8) -> CacheKey {
    let k = usize::from(k);
    CacheKey::new(
        AGENTS[k % AGENTS.len()],
        ACTIONS[(k / AGENTS.len()) % ACTIONS.len()],
    )
}

/// Every key of the key space.
pub fn all_keys() -> Vec<CacheKey> {
    (0..(AGENTS.len() * ACTIONS.len()) as u8).map(key).collect()
}

/// One input to the policy cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, arbitrary::Arbitrary)]
pub enum Op {
    /// Advance time by this many milliseconds, then fire due timers.
    Advance(u16),
    /// Advance time without firing timers (a late driver).
    Lag(u16),
    /// Jump to the next reported deadline and fire it.
    Wake,
    /// The invalidation stream is up.
    StreamUp,
    /// The invalidation stream is down.
    StreamDown,
    /// A fetch of key `key` begins.
    Begin {
        /// Key number (see [`key`]).
        key: u8,
    },
    /// An in-flight fetch completes. `version % 4`: 0 reports the newest
    /// version minus one, 3 the newest plus one, else the newest.
    Complete {
        /// Which in-flight fetch (modulo their number).
        slot: u8,
        /// Version selector.
        version: u8,
    },
    /// An in-flight fetch completes under another key number.
    CompleteWithKey {
        /// Which in-flight fetch.
        slot: u8,
        /// Key number used instead.
        key: u8,
    },
    /// A `PolicyInvalidated` event. `agent % 6`: 0..=3 an agent, 4 `None`,
    /// 5 `Some("")` (both: every agent).
    Invalidate {
        /// Agent selector.
        agent: u8,
        /// The event's policy version.
        version: u8,
    },
    /// `invalidate_all` (gateway restart, unreplayable gap).
    InvalidateAll,
    /// A lookup of key `key`.
    Get {
        /// Key number.
        key: u8,
    },
}

/// Everything the machine answered, in order: two runs of the same inputs
/// must produce equal transcripts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    /// A drained action.
    Action(PolicyCacheAction),
    /// A lookup's answer.
    Lookup(Lookup<u64>),
    /// A completed fetch's answer.
    Fetch(Result<Stored, NotStored>),
    /// The deadline after a step.
    Deadline(Option<Timestamp>),
}

#[derive(Clone, Debug)]
struct InFlight {
    ticket: FetchTicket,
    key: CacheKey,
    begun_at: Timestamp,
    /// Model invalidations applied before the fetch began.
    begin_inv: u64,
    /// Tracking overflows the machine had counted when the fetch began.
    begin_overflows: u64,
}

#[derive(Clone, Debug)]
struct ModelEntry {
    value: u64,
    expires_at: Timestamp,
}

/// The reference model: what the cache must hold and answer.
#[derive(Clone, Debug, Default)]
struct Model {
    entries: BTreeMap<CacheKey, ModelEntry>,
    /// Invalidations applied so far; the n-th has index n.
    inv_count: u64,
    /// Index of the last invalidation that refuses every fetch.
    last_inv_all: u64,
    /// Index of the last invalidation of each agent.
    last_inv_agent: BTreeMap<String, u64>,
    newest_version: u64,
    /// `None` when the stream is up.
    down_since: Option<Timestamp>,
    stale_announced: bool,
}

impl Model {
    fn covered(&self, begin_inv: u64, agent: &str) -> bool {
        self.last_inv_all > begin_inv
            || self
                .last_inv_agent
                .get(agent)
                .is_some_and(|&i| i > begin_inv)
    }
}

/// Drives a [`PolicyCache`] with [`Op`]s and checks every invariant after
/// each.
#[derive(Debug)]
pub struct Harness {
    /// The machine under test.
    pub machine: PolicyCache<u64>,
    /// Simulated now.
    pub now: Timestamp,
    /// Everything the machine answered.
    pub transcript: Vec<Observed>,
    config: PolicyCacheConfig,
    model: Model,
    in_flight: Vec<InFlight>,
    /// Value → (its key, model invalidations before its fetch began).
    origin: BTreeMap<u64, (CacheKey, u64)>,
    next_value: u64,
    last_version: u64,
    keys: Vec<CacheKey>,
    /// The counters the machine must report (only those the harness sees).
    counts: PolicyCacheStats,
}

impl Harness {
    /// A fresh cache with `config`, built at time zero with the stream down.
    pub fn new(config: PolicyCacheConfig) -> Self {
        Harness {
            machine: PolicyCache::new(config.clone(), Timestamp::ZERO),
            now: Timestamp::ZERO,
            transcript: Vec::new(),
            model: Model {
                down_since: Some(Timestamp::ZERO),
                ..Model::default()
            },
            config,
            in_flight: Vec::new(),
            origin: BTreeMap::new(),
            next_value: 0,
            last_version: 0,
            keys: all_keys(),
            counts: PolicyCacheStats::default(),
        }
    }

    /// Apply one input and check every invariant.
    pub fn apply(&mut self, op: Op) -> Result<(), Violation> {
        let mut expected = Vec::new();
        let actions = match op {
            Op::Advance(ms) => {
                self.now = self.now + Duration::from_millis(u64::from(ms));
                self.fire(&mut expected)?
            }
            Op::Lag(ms) => {
                self.now = self.now + Duration::from_millis(u64::from(ms));
                drain(&mut self.machine)?
            }
            Op::Wake => {
                if let Some(d) = self.machine.poll_timeout() {
                    self.now = self.now.max(d.at);
                }
                self.fire(&mut expected)?
            }
            Op::StreamUp => {
                if self.model.down_since.take().is_some() && self.model.stale_announced {
                    expected.push(PolicyCacheAction::ServingResumed);
                }
                self.model.stale_announced = false;
                self.machine.on_stream_up(self.now);
                drain(&mut self.machine)?
            }
            Op::StreamDown => {
                if self.model.down_since.is_none() {
                    self.model.down_since = Some(self.now);
                    self.model.stale_announced = false;
                }
                self.machine.on_stream_down(self.now);
                drain(&mut self.machine)?
            }
            Op::Begin { key: k } => {
                let key = key(k);
                let ticket = self.machine.begin_fetch(self.now, &key);
                if self.in_flight.len() >= MAX_IN_FLIGHT {
                    self.in_flight.remove(0);
                }
                self.in_flight.push(InFlight {
                    ticket,
                    key,
                    begun_at: self.now,
                    begin_inv: self.model.inv_count,
                    begin_overflows: self.machine.stats().tracked_agent_overflows,
                });
                drain(&mut self.machine)?
            }
            Op::Complete { slot, version } => {
                let newest = self.model.newest_version;
                let version = match version % 4 {
                    0 => newest.saturating_sub(1),
                    3 => newest.saturating_add(1),
                    _ => newest,
                };
                self.complete(slot, None, version, &mut expected)?;
                drain(&mut self.machine)?
            }
            Op::CompleteWithKey { slot, key: k } => {
                let version = self.model.newest_version;
                self.complete(slot, Some(key(k)), version, &mut expected)?;
                drain(&mut self.machine)?
            }
            Op::Invalidate { agent, version } => {
                let agent = match agent % 6 {
                    4 => None,
                    5 => Some(""),
                    a => AGENTS.get(usize::from(a)).copied(),
                };
                self.model_invalidate(agent, &mut expected);
                self.model.newest_version = self.model.newest_version.max(u64::from(version));
                self.machine
                    .on_invalidate(self.now, agent, u64::from(version));
                drain(&mut self.machine)?
            }
            Op::InvalidateAll => {
                self.model_invalidate(None, &mut expected);
                self.machine.invalidate_all(self.now);
                drain(&mut self.machine)?
            }
            Op::Get { key: k } => {
                self.get(&key(k))?;
                drain(&mut self.machine)?
            }
        };
        self.check_actions(op, &expected, &actions)?;
        self.transcript
            .extend(actions.into_iter().map(Observed::Action));
        self.check_state()
    }

    /// `handle_timeout(now)` through the contract checker, with the model's
    /// expectation.
    fn fire(
        &mut self,
        expected: &mut Vec<PolicyCacheAction>,
    ) -> Result<Vec<PolicyCacheAction>, Violation> {
        let now = self.now;
        if let Some(since) = self.model.down_since {
            if !self.model.stale_announced && now >= since + self.config.staleness_bound {
                self.model.stale_announced = true;
                expected.push(PolicyCacheAction::BecameStale);
            }
        }
        let before = self.model.entries.len();
        self.model.entries.retain(|_, e| e.expires_at > now);
        let count = before - self.model.entries.len();
        if count > 0 {
            expected.push(PolicyCacheAction::Evicted {
                count,
                reason: EvictReason::Expired,
            });
        }
        timeout_checked(&mut self.machine, now)
    }

    fn model_invalidate(&mut self, agent: Option<&str>, expected: &mut Vec<PolicyCacheAction>) {
        self.counts.invalidations += 1;
        let m = &mut self.model;
        m.inv_count += 1;
        let idx = m.inv_count;
        let (scope, dropped) = match agent {
            None | Some("") => {
                m.last_inv_all = idx;
                m.last_inv_agent.clear();
                let n = m.entries.len();
                m.entries.clear();
                (InvalidationScope::All, n)
            }
            Some(a) if a.len() > self.config.max_key_len => {
                m.last_inv_all = idx;
                (InvalidationScope::OversizedAgentId, 0)
            }
            Some(a) => {
                m.last_inv_agent.insert(String::from(a), idx);
                let before = m.entries.len();
                m.entries.retain(|k, _| k.agent_id != a);
                (InvalidationScope::Agent(a.into()), before - m.entries.len())
            }
        };
        expected.push(PolicyCacheAction::Invalidated { scope, dropped });
    }

    fn complete(
        &mut self,
        slot: u8,
        other_key: Option<CacheKey>,
        version: u64,
        expected_actions: &mut Vec<PolicyCacheAction>,
    ) -> Result<(), Violation> {
        if self.in_flight.is_empty() {
            return Ok(());
        }
        let f = self.in_flight[usize::from(slot) % self.in_flight.len()].clone();
        let key = other_key.unwrap_or_else(|| f.key.clone());
        let value = self.next_value;
        self.next_value += 1;
        let cfg = &self.config;
        let m = &self.model;
        let expires_at = f.begun_at + cfg.ttl;
        let expected: Result<(), NotStored> =
            if key.agent_id.len() > cfg.max_key_len || key.action.len() > cfg.max_key_len {
                Err(NotStored::KeyTooLong)
            } else if key != f.key {
                Err(NotStored::WrongKey)
            } else if cfg.max_entries == 0 {
                Err(NotStored::NoCapacity)
            } else if m.covered(f.begin_inv, &key.agent_id) {
                Err(NotStored::Invalidated)
            } else if version < m.newest_version {
                Err(NotStored::OlderPolicyVersion {
                    got: version,
                    newest: m.newest_version,
                })
            } else if expires_at <= self.now {
                Err(NotStored::AlreadyExpired)
            } else {
                Ok(())
            };
        let overflowed = self.machine.stats().tracked_agent_overflows > f.begin_overflows;
        let got = self
            .machine
            .complete_fetch(self.now, f.ticket, key.clone(), value, version);
        match got {
            Ok(_) => self.counts.stored += 1,
            Err(_) => self.counts.refused_fetches += 1,
        }
        self.transcript.push(Observed::Fetch(got.clone()));
        match (&expected, &got) {
            (Err(NotStored::Invalidated), Ok(_)) => {
                return Err(Violation::new(
                    "CACHE_INVALIDATION_BEATS_INFLIGHT_FETCH",
                    format!("stored {key:?} fetched before a covering invalidation"),
                ));
            }
            (Err(NotStored::OlderPolicyVersion { .. }), Ok(_)) => {
                return Err(Violation::new(
                    "CACHE_POLICY_VERSION_MONOTONE",
                    format!("stored version {version} < newest {}", m.newest_version),
                ));
            }
            (Err(NotStored::AlreadyExpired), Ok(_)) => {
                return Err(Violation::new(
                    "CACHE_TTL_RESPECTED",
                    format!("stored {key:?} already past its TTL"),
                ));
            }
            (
                Ok(()) | Err(NotStored::OlderPolicyVersion { .. } | NotStored::AlreadyExpired),
                Err(NotStored::Invalidated),
            ) => {
                ensure_invariant!(
                    overflowed,
                    "CACHE_PER_AGENT_PRECISE",
                    "fetch of {key:?} refused as invalidated with no covering invalidation \
                     and no tracking overflow (expected {expected:?})"
                );
                return Ok(());
            }
            (Ok(()), Ok(stored)) => {
                ensure_invariant!(
                    stored.expires_at == expires_at,
                    "CACHE_TTL_RESPECTED",
                    "stored with expiry {:?}, fetch began {:?}",
                    stored.expires_at,
                    f.begun_at
                );
                let replaced = self.model.entries.contains_key(&key);
                let evict = if !replaced && self.model.entries.len() >= cfg.max_entries {
                    self.model
                        .entries
                        .iter()
                        .min_by_key(|(k, e)| (e.expires_at, (*k).clone()))
                        .map(|(k, _)| k.clone())
                } else {
                    None
                };
                ensure_invariant!(
                    stored.evicted == evict,
                    "CACHE_EVICTS_SOONEST_EXPIRING",
                    "evicted {:?}, expected {evict:?}",
                    stored.evicted
                );
                ensure_invariant!(
                    stored.replaced == replaced,
                    "CACHE_MATCHES_MODEL",
                    "replaced = {}, model says {replaced}",
                    stored.replaced
                );
                if let Some(k) = &evict {
                    self.model.entries.remove(k);
                    expected_actions.push(PolicyCacheAction::Evicted {
                        count: 1,
                        reason: EvictReason::Capacity,
                    });
                }
                self.model
                    .entries
                    .insert(key.clone(), ModelEntry { value, expires_at });
                self.model.newest_version = self.model.newest_version.max(version);
                self.origin.insert(value, (key, f.begin_inv));
            }
            (e, g) => {
                ensure_invariant!(
                    g.as_ref().err() == e.as_ref().err(),
                    "CACHE_MATCHES_MODEL",
                    "complete_fetch({key:?}, v{version}) = {g:?}, expected {e:?}"
                );
            }
        }
        Ok(())
    }

    fn get(&mut self, key: &CacheKey) -> Result<(), Violation> {
        let now = self.now;
        let stale = self
            .model
            .down_since
            .is_some_and(|since| now >= since + self.config.staleness_bound);
        let expected = match self.model.entries.get(key) {
            None => Lookup::Miss,
            Some(e) if now >= e.expires_at => Lookup::Expired,
            Some(_) if stale => Lookup::Stale,
            Some(e) => Lookup::Hit(e.value),
        };
        let got = self.machine.get(now, key).cloned();
        let counter = match got {
            Lookup::Hit(_) => &mut self.counts.hits,
            Lookup::Miss => &mut self.counts.misses,
            Lookup::Expired => &mut self.counts.expired_lookups,
            Lookup::Stale => &mut self.counts.stale_refusals,
        };
        *counter += 1;
        self.transcript.push(Observed::Lookup(got));
        if let Lookup::Hit(v) = got {
            ensure_invariant!(
                !stale,
                "CACHE_NO_STALE_SERVE",
                "served {key:?} with the stream down since {:?} at {now:?}",
                self.model.down_since
            );
            let entry = self.model.entries.get(key);
            ensure_invariant!(
                entry.is_none_or(|e| now < e.expires_at),
                "CACHE_TTL_RESPECTED",
                "served {key:?} past its TTL"
            );
            match self.origin.get(&v) {
                Some((k, begin_inv)) => {
                    ensure_invariant!(
                        k == key && !self.model.covered(*begin_inv, &k.agent_id),
                        "CACHE_INVALIDATION_BEATS_INFLIGHT_FETCH",
                        "served value {v} of {k:?} for {key:?}, fetched before a covering \
                         invalidation or for another key"
                    );
                }
                None => {
                    return Err(Violation::new(
                        "CACHE_HIT_IS_LATEST_STORE",
                        format!("served value {v} that was never stored"),
                    ))
                }
            }
        }
        ensure_invariant!(
            got == expected,
            "CACHE_HIT_IS_LATEST_STORE",
            "get({key:?}) = {got:?}, model expects {expected:?}"
        );
        Ok(())
    }

    fn check_actions(
        &self,
        op: Op,
        expected: &[PolicyCacheAction],
        got: &[PolicyCacheAction],
    ) -> Result<(), Violation> {
        // At the queue bound only the newest actions survive.
        let bound = self.config.max_queued_actions;
        let kept = &expected[expected.len().saturating_sub(bound)..];
        ensure_invariant!(
            got == kept,
            "CACHE_MATCHES_MODEL",
            "{op:?} produced actions {got:?}, expected {kept:?}"
        );
        Ok(())
    }

    fn check_state(&mut self) -> Result<(), Violation> {
        let m = &self.model;
        let cfg = &self.config;
        let stats = self.machine.stats();
        let version = self.machine.policy_version();
        ensure_invariant!(
            version >= self.last_version && version == m.newest_version,
            "CACHE_POLICY_VERSION_MONOTONE",
            "policy_version {version} (was {}, model {})",
            self.last_version,
            m.newest_version
        );
        self.last_version = version;
        ensure_invariant!(
            self.machine.len() <= cfg.max_entries && stats.tracked_agents <= cfg.max_tracked_agents,
            "CACHE_BOUNDED",
            "len {} / {}, tracked agents {} / {}",
            self.machine.len(),
            cfg.max_entries,
            stats.tracked_agents,
            cfg.max_tracked_agents
        );
        ensure_invariant!(
            self.machine.len() == m.entries.len() && stats.len == m.entries.len(),
            "CACHE_MATCHES_MODEL",
            "len {} (stats {}), model {}",
            self.machine.len(),
            stats.len,
            m.entries.len()
        );
        for k in &self.keys {
            let got = self.machine.inspect(k).map(|(v, at)| (*v, at));
            let want = m.entries.get(k).map(|e| (e.value, e.expires_at));
            ensure_invariant!(
                got == want,
                "CACHE_MATCHES_MODEL",
                "entry {k:?} is {got:?}, model {want:?}"
            );
        }
        let c = &self.counts;
        let seen = (
            stats.hits,
            stats.misses,
            stats.expired_lookups,
            stats.stale_refusals,
            stats.stored,
            stats.refused_fetches,
            stats.invalidations,
        );
        let want = (
            c.hits,
            c.misses,
            c.expired_lookups,
            c.stale_refusals,
            c.stored,
            c.refused_fetches,
            c.invalidations,
        );
        ensure_invariant!(
            seen == want,
            "CACHE_MATCHES_MODEL",
            "stats (hits, misses, expired, stale, stored, refused, invalidations) {seen:?}, \
             model {want:?}"
        );
        let expiry = m.entries.values().map(|e| e.expires_at).min();
        let stale = match m.down_since {
            Some(since) if !m.stale_announced => Some(since + cfg.staleness_bound),
            _ => None,
        };
        let want = match (expiry, stale) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let got = self.machine.poll_timeout().map(|d: Deadline<_>| d.at);
        ensure_invariant!(
            got == want,
            "CACHE_TIMER_EXACT",
            "poll_timeout {got:?}, model {want:?}"
        );
        self.transcript.push(Observed::Deadline(got));
        Ok(())
    }
}

/// Run a whole sequence from a fresh cache; the first violation, if any.
pub fn run(config: PolicyCacheConfig, ops: &[Op]) -> Result<Harness, Violation> {
    let mut h = Harness::new(config);
    for op in ops {
        h.apply(*op)?;
    }
    Ok(h)
}

/// A small config for tests and fuzzing: short TTL and staleness bound (in
/// the range the [`Op::Advance`] steps cover), a bound that is hit, and a
/// per-agent tracking bound below the number of agents.
pub fn small_config() -> PolicyCacheConfig {
    PolicyCacheConfig {
        ttl: Duration::from_millis(5_000),
        staleness_bound: Duration::from_millis(3_000),
        max_entries: 4,
        max_tracked_agents: 2,
        max_key_len: 8,
        max_queued_actions: 16,
    }
}
