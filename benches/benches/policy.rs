//! The invalidation path: a cached decision lookup (the cached `check`),
//! and applying one invalidation event (subscription sequencing + ack, the
//! cache dropping that agent's decision, and the decision stored again) with
//! 1k, 100k and 1M decisions cached. No baseline here: the stream's baseline
//! is the bare tonic reader in the end-to-end bench.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;
use tether_benches::{short_criterion, size_label, SIZES};
use tether_core::policy_cache::{CacheKey, Lookup, PolicyCache, PolicyCacheConfig};
use tether_core::subscription::{Subscription, SubscriptionAction, SubscriptionConfig};
use tether_core::{Machine, Timestamp};

fn cache(n: usize) -> PolicyCache<u8> {
    let t0 = Timestamp::ZERO;
    let mut c = PolicyCache::new(
        PolicyCacheConfig::default()
            .with_max_entries(n + 16)
            .with_ttl(Duration::from_secs(3600))
            .with_staleness_bound(Duration::from_secs(3600)),
        t0,
    );
    c.on_stream_up(t0);
    for i in 0..n {
        let key = CacheKey::new(format!("agent-{}", i % 1000), format!("tool-{i}"));
        let t = c.begin_fetch(t0, &key);
        c.complete_fetch(t0, t, key, 1, 1).expect("stored");
    }
    c
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("policy");
    g.throughput(Throughput::Elements(1));
    for n in SIZES {
        let label = size_label(n);
        let mut cache = cache(n);
        let now = Timestamp::from_secs(1);
        let key = CacheKey::new("agent-7", format!("tool-{}", n / 2 / 1000 * 1000 + 7));
        g.bench_function(BenchmarkId::new("cached_get/tether-core", &label), |b| {
            b.iter(|| assert!(matches!(cache.get(now, &key), Lookup::Hit(_))));
        });

        let hot = CacheKey::new("hot-agent", "tool-x");
        let t = cache.begin_fetch(now, &hot);
        cache
            .complete_fetch(now, t, hot.clone(), 1, 1)
            .expect("stored");
        let mut sub: Subscription<u32> = Subscription::new(SubscriptionConfig::default());
        sub.start(now);
        while sub.poll_action().is_some() {}
        sub.on_connected(now);
        while sub.poll_action().is_some() {}
        let mut seq = 0u64;
        g.bench_function(BenchmarkId::new("apply_event/tether-core", &label), |b| {
            b.iter(|| {
                seq += 1;
                sub.on_event(now, seq, 7);
                while let Some(a) = sub.poll_action() {
                    if let SubscriptionAction::Apply { .. } = a {
                        cache.on_invalidate(now, Some("hot-agent"), 1);
                        let t = cache.begin_fetch(now, &hot);
                        cache
                            .complete_fetch(now, t, hot.clone(), 1, 1)
                            .expect("stored");
                    }
                }
            });
        });
    }
    g.finish();
}

criterion_group! { name = benches; config = short_criterion!(); targets = bench }
criterion_main!(benches);
