//! Property tests and focused guarantees for the policy cache.

use core::time::Duration;

use proptest::prelude::*;
use tether_core::policy_cache::{
    CacheKey, EvictReason, InvalidationLink, InvalidationScope, Lookup, NotStored, PolicyCache,
    PolicyCacheAction, PolicyCacheConfig, PolicyCacheTimer,
};
use tether_core::testkit::policy_cache::{run, small_config, Op};
use tether_core::{Machine, Timestamp};

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u16..4_000).prop_map(Op::Advance),
        1 => (0u16..4_000).prop_map(Op::Lag),
        1 => Just(Op::Wake),
        2 => Just(Op::StreamUp),
        1 => Just(Op::StreamDown),
        4 => any::<u8>().prop_map(|key| Op::Begin { key }),
        4 => (any::<u8>(), any::<u8>()).prop_map(|(slot, version)| Op::Complete { slot, version }),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(slot, key)| Op::CompleteWithKey { slot, key }),
        2 => (any::<u8>(), 0u8..20).prop_map(|(agent, version)| Op::Invalidate { agent, version }),
        1 => Just(Op::InvalidateAll),
        5 => any::<u8>().prop_map(|key| Op::Get { key }),
    ]
}

fn config() -> impl Strategy<Value = PolicyCacheConfig> {
    (
        0u64..10_000,
        0u64..10_000,
        0usize..6,
        0usize..5,
        prop_oneof![0usize..6, Just(64usize)],
        prop_oneof![0usize..5, Just(256usize)],
    )
        .prop_map(|(ttl, stale, entries, agents, key_len, queued)| {
            PolicyCacheConfig::default()
                .with_ttl(Duration::from_millis(ttl))
                .with_staleness_bound(Duration::from_millis(stale))
                .with_max_entries(entries)
                .with_max_tracked_agents(agents)
                .with_max_key_len(key_len)
                .with_max_queued_actions(queued)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Every CACHE_* invariant, CACHE_MATCHES_MODEL and the contract
    /// invariants, after every step, with bounds that are hit.
    #[test]
    fn invariants_hold_with_small_bounds(ops in prop::collection::vec(op(), 0..300)) {
        if let Err(v) = run(small_config(), &ops) {
            prop_assert!(false, "{v}");
        }
    }

    /// The same under arbitrary configs (zero bounds, zero TTL, keys too long).
    #[test]
    fn invariants_hold_for_any_config(cfg in config(), ops in prop::collection::vec(op(), 0..300)) {
        if let Err(v) = run(cfg, &ops) {
            prop_assert!(false, "{v}");
        }
    }

    /// No randomness: the same inputs give the same outputs.
    #[test]
    fn same_inputs_same_outputs(ops in prop::collection::vec(op(), 0..200)) {
        let a = run(small_config(), &ops).map(|h| h.transcript);
        let b = run(small_config(), &ops).map(|h| h.transcript);
        prop_assert_eq!(a, b);
    }
}

const T0: Timestamp = Timestamp::ZERO;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn up_cache(cfg: PolicyCacheConfig) -> PolicyCache<&'static str> {
    let mut c = PolicyCache::new(cfg, T0);
    c.on_stream_up(T0);
    c
}

fn drain(c: &mut PolicyCache<&'static str>) -> Vec<PolicyCacheAction> {
    std::iter::from_fn(|| c.poll_action()).collect()
}

/// CACHE_INVALIDATION_BEATS_INFLIGHT_FETCH, for one agent, every agent and
/// `invalidate_all`; a fetch begun after the invalidation is stored.
#[test]
fn an_invalidation_wins_over_a_fetch_that_began_before_it() {
    let mut c = up_cache(PolicyCacheConfig::default());
    let k = CacheKey::new("a", "tool:x");
    for inval in 0..4 {
        let t = c.begin_fetch(T0, &k);
        match inval {
            0 => c.on_invalidate(T0, Some("a"), 0),
            1 => c.on_invalidate(T0, None, 0),
            2 => c.on_invalidate(T0, Some(""), 0),
            _ => c.invalidate_all(T0),
        }
        assert_eq!(
            c.complete_fetch(T0, t, k.clone(), "allow", 0),
            Err(NotStored::Invalidated)
        );
        assert_eq!(c.get(T0, &k), Lookup::Miss);
    }
    let t = c.begin_fetch(T0, &k);
    assert!(c.complete_fetch(T0, t, k.clone(), "allow", 0).is_ok());
    assert_eq!(c.get(T0, &k), Lookup::Hit(&"allow"));
    assert_eq!(c.stats().refused_fetches, 4);
}

/// CACHE_PER_AGENT_PRECISE, and the conservative fallback at the tracking
/// bound.
#[test]
fn an_invalidation_of_one_agent_does_not_refuse_another_until_the_bound() {
    let cfg = PolicyCacheConfig::default().with_max_tracked_agents(2);
    let mut c = up_cache(cfg);
    let b = CacheKey::new("b", "x");
    let t1 = c.begin_fetch(T0, &b);
    let t2 = c.begin_fetch(T0, &b);
    c.on_invalidate(T0, Some("a"), 0);
    c.on_invalidate(T0, Some("c"), 0);
    assert!(c.complete_fetch(T0, t1, b.clone(), "allow", 0).is_ok());
    // A third tracked agent overflows: "a" (the oldest) is forgotten, so
    // every fetch begun before its invalidation is refused, whatever its agent.
    c.on_invalidate(T0, Some("d"), 0);
    assert_eq!(c.stats().tracked_agent_overflows, 1);
    assert_eq!(c.stats().tracked_agents, 2);
    assert_eq!(
        c.complete_fetch(T0, t2, b.clone(), "allow", 0),
        Err(NotStored::Invalidated)
    );
    // Fetches begun after are precise again.
    let t = c.begin_fetch(T0, &b);
    c.on_invalidate(T0, Some("e"), 0);
    assert!(c.complete_fetch(T0, t, b, "allow", 0).is_ok());
}

/// Invalidations drop exactly the covered entries.
#[test]
fn an_invalidation_drops_only_what_it_covers() {
    let mut c = up_cache(PolicyCacheConfig::default());
    for (agent, action) in [("a", "1"), ("a", "2"), ("ab", "1"), ("b", "1")] {
        let k = CacheKey::new(agent, action);
        let t = c.begin_fetch(T0, &k);
        c.complete_fetch(T0, t, k, "allow", 0).unwrap();
    }
    drain(&mut c);
    c.on_invalidate(T0, Some("a"), 1);
    assert_eq!(
        drain(&mut c),
        [PolicyCacheAction::Invalidated {
            scope: InvalidationScope::Agent("a".into()),
            dropped: 2
        }]
    );
    assert_eq!(c.len(), 2);
    assert!(c.get(T0, &CacheKey::new("ab", "1")).hit().is_some());
    c.on_invalidate(T0, None, 2);
    assert_eq!(
        drain(&mut c),
        [PolicyCacheAction::Invalidated {
            scope: InvalidationScope::All,
            dropped: 2
        }]
    );
    assert!(c.is_empty());
    assert_eq!(c.poll_timeout(), None);
}

/// CACHE_POLICY_VERSION_MONOTONE.
#[test]
fn policy_version_never_goes_back_and_older_results_are_refused() {
    let mut c = up_cache(PolicyCacheConfig::default());
    let k = CacheKey::new("a", "x");
    c.on_invalidate(T0, Some("z"), 5);
    c.on_invalidate(T0, Some("z"), 3);
    assert_eq!(c.policy_version(), 5);
    let t = c.begin_fetch(T0, &k);
    assert_eq!(t.policy_version(), 5);
    assert_eq!(
        c.complete_fetch(T0, t, k.clone(), "allow", 4),
        Err(NotStored::OlderPolicyVersion { got: 4, newest: 5 })
    );
    assert!(c.complete_fetch(T0, t, k.clone(), "allow", 5).is_ok());
    assert!(c.complete_fetch(T0, t, k.clone(), "deny", 7).is_ok());
    assert_eq!(c.policy_version(), 7);
    assert_eq!(c.get(T0, &k), Lookup::Hit(&"deny"));
    c.on_invalidate(T0, None, 0);
    assert_eq!(c.policy_version(), 7);
}

/// CACHE_NO_STALE_SERVE: from construction, after an outage, and the
/// resumption once the stream is up.
#[test]
fn decisions_stop_being_served_when_the_stream_is_down_too_long() {
    let cfg = PolicyCacheConfig::default();
    let bound = cfg.staleness_bound;
    let mut c: PolicyCache<&str> = PolicyCache::new(cfg, T0);
    let k = CacheKey::new("a", "x");
    let t = c.begin_fetch(T0, &k);
    c.complete_fetch(T0, t, k.clone(), "allow", 0).unwrap();
    // Never up: served until the bound, not at it.
    assert_eq!(c.get(T0 + bound - ms(1), &k), Lookup::Hit(&"allow"));
    assert_eq!(c.get(T0 + bound, &k), Lookup::Stale);
    assert_eq!(
        c.poll_timeout().map(|d| (d.at, d.reason)),
        Some((T0 + bound, PolicyCacheTimer::Staleness))
    );
    c.handle_timeout(T0 + bound);
    assert_eq!(drain(&mut c), [PolicyCacheAction::BecameStale]);
    c.on_stream_up(T0 + bound);
    assert_eq!(drain(&mut c), [PolicyCacheAction::ServingResumed]);
    assert_eq!(c.get(T0 + bound, &k), Lookup::Hit(&"allow"));
    // Down again: the clock starts at the first report, not the repeat.
    let down = T0 + ms(20_000);
    c.on_stream_down(down);
    c.on_stream_down(down + ms(10_000));
    assert_eq!(c.stream_status(), InvalidationLink::Down { since: down });
    assert!(c.is_serving(down + bound - ms(1)));
    assert_eq!(c.get(down + bound, &k), Lookup::Stale);
    assert_eq!(c.stats().stale_refusals, 2);
    // Up before the timer fired: no announcement either way.
    c.on_stream_up(down + bound);
    assert!(drain(&mut c).is_empty());
    assert_eq!(c.get(down + bound, &k), Lookup::Hit(&"allow"));
}

/// CACHE_TTL_RESPECTED: counted from the start of the fetch; purged by the
/// timer.
#[test]
fn decisions_expire_after_their_ttl_counted_from_the_fetch_start() {
    let cfg = PolicyCacheConfig::default();
    let ttl = cfg.ttl;
    let mut c = up_cache(cfg);
    let k = CacheKey::new("a", "x");
    let t = c.begin_fetch(T0, &k);
    let stored = c
        .complete_fetch(T0 + ms(500), t, k.clone(), "allow", 0)
        .unwrap();
    assert_eq!(stored.expires_at, T0 + ttl);
    assert_eq!(c.get(T0 + ttl - ms(1), &k), Lookup::Hit(&"allow"));
    assert_eq!(c.get(T0 + ttl, &k), Lookup::Expired);
    assert_eq!(
        c.poll_timeout().map(|d| (d.at, d.reason)),
        Some((T0 + ttl, PolicyCacheTimer::Expiry))
    );
    c.handle_timeout(T0 + ttl - ms(1));
    assert_eq!(c.len(), 1, "early timeout is a no-op");
    c.handle_timeout(T0 + ttl);
    assert_eq!(
        drain(&mut c),
        [PolicyCacheAction::Evicted {
            count: 1,
            reason: EvictReason::Expired
        }]
    );
    assert_eq!(c.get(T0 + ttl, &k), Lookup::Miss);
    assert_eq!(c.poll_timeout(), None);
    // A fetch slower than the TTL is not stored at all.
    let t = c.begin_fetch(T0 + ttl, &k);
    assert_eq!(
        c.complete_fetch(T0 + ttl + ttl, t, k, "allow", 0),
        Err(NotStored::AlreadyExpired)
    );
}

/// CACHE_EVICTS_SOONEST_EXPIRING and CACHE_BOUNDED.
#[test]
fn at_the_bound_the_soonest_expiring_entry_makes_room() {
    let cfg = PolicyCacheConfig::default().with_max_entries(2);
    let mut c = up_cache(cfg);
    let keys: Vec<CacheKey> = (0..3).map(|i| CacheKey::new("a", format!("{i}"))).collect();
    for (i, k) in keys.iter().enumerate().take(2) {
        let t = c.begin_fetch(T0 + ms(i as u64), k);
        let s = c.complete_fetch(T0 + ms(i as u64), t, k.clone(), "allow", 0);
        assert_eq!(s.unwrap().evicted, None);
    }
    // Replacing an existing key evicts nothing.
    let t = c.begin_fetch(T0 + ms(5), &keys[1]);
    let s = c
        .complete_fetch(T0 + ms(5), t, keys[1].clone(), "deny", 0)
        .unwrap();
    assert!(s.replaced && s.evicted.is_none());
    drain(&mut c);
    let t = c.begin_fetch(T0 + ms(6), &keys[2]);
    let s = c
        .complete_fetch(T0 + ms(6), t, keys[2].clone(), "allow", 0)
        .unwrap();
    assert_eq!(s.evicted.as_ref(), Some(&keys[0]));
    assert_eq!(c.len(), 2);
    assert_eq!(
        drain(&mut c),
        [PolicyCacheAction::Evicted {
            count: 1,
            reason: EvictReason::Capacity
        }]
    );
    assert_eq!(c.stats().evicted_capacity, 1);
}

/// Bad input never panics and has a typed outcome.
#[test]
fn bad_input_is_refused_not_panicking() {
    let cfg = PolicyCacheConfig::default()
        .with_max_key_len(4)
        .with_max_queued_actions(2)
        .with_ttl(Duration::MAX);
    let mut c = up_cache(cfg);
    let long = CacheKey::new("agent-too-long", "x");
    let t = c.begin_fetch(T0, &long);
    assert_eq!(
        c.complete_fetch(T0, t, long.clone(), "allow", 0),
        Err(NotStored::KeyTooLong)
    );
    let k = CacheKey::new("a", "x");
    let t = c.begin_fetch(Timestamp::MAX, &k);
    assert_eq!(
        c.complete_fetch(T0, t, CacheKey::new("a", "y"), "allow", 0),
        Err(NotStored::WrongKey)
    );
    // TTL of Duration::MAX from Timestamp::MAX saturates: already expired at MAX.
    assert_eq!(
        c.complete_fetch(Timestamp::MAX, t, k.clone(), "allow", u64::MAX),
        Err(NotStored::AlreadyExpired)
    );
    let t = c.begin_fetch(T0, &k);
    assert!(c
        .complete_fetch(T0, t, k.clone(), "allow", u64::MAX)
        .is_ok());
    // An oversized agent id is not tracked, but still refuses fetches in flight.
    let t = c.begin_fetch(T0, &k);
    c.on_invalidate(T0, Some(&"z".repeat(10_000)), 0);
    assert_eq!(c.stats().tracked_agents, 0);
    assert_eq!(
        c.complete_fetch(T0, t, k.clone(), "allow", u64::MAX),
        Err(NotStored::Invalidated)
    );
    assert_eq!(c.len(), 1);
    // A driver that never drains: the informational queue stays bounded.
    for _ in 0..10 {
        c.on_invalidate(T0, Some("q"), 0);
    }
    assert_eq!(drain(&mut c).len(), 2);
    assert_eq!(c.stats().dropped_actions, 9);
    // Zero capacity disables storing.
    let mut z: PolicyCache<u8> =
        PolicyCache::new(PolicyCacheConfig::default().with_max_entries(0), T0);
    let t = z.begin_fetch(T0, &k);
    assert_eq!(z.complete_fetch(T0, t, k, 1, 0), Err(NotStored::NoCapacity));
}

/// A few hand-written sequences the harness must accept.
#[test]
fn harness_accepts_known_sequences() {
    use Op::*;
    let seqs: &[&[Op]] = &[
        &[
            StreamUp,
            Begin { key: 0 },
            Invalidate {
                agent: 1,
                version: 1,
            },
            Complete {
                slot: 0,
                version: 1,
            },
            Get { key: 0 },
            StreamDown,
            Advance(3_000),
            Get { key: 0 },
            StreamUp,
            Get { key: 0 },
            Lag(2_500),
            Get { key: 0 },
            Wake,
            Get { key: 0 },
        ],
        &[
            Begin { key: 0 },
            Begin { key: 1 },
            Begin { key: 2 },
            Begin { key: 3 },
            Begin { key: 4 },
            Invalidate {
                agent: 0,
                version: 0,
            },
            Invalidate {
                agent: 1,
                version: 0,
            },
            Invalidate {
                agent: 2,
                version: 0,
            },
            Complete {
                slot: 3,
                version: 1,
            },
            Complete {
                slot: 4,
                version: 1,
            },
            Complete {
                slot: 0,
                version: 1,
            },
            InvalidateAll,
            Wake,
            Wake,
        ],
    ];
    for ops in seqs {
        if let Err(v) = run(small_config(), ops) {
            panic!("{v}");
        }
    }
}
