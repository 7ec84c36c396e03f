//! Approval waiting: register a waiter and resolve it, with 1k, 100k and 1M
//! other waiters outstanding. tether's machine alone, tether's machine plus
//! the oneshot its driver hands each caller, and the baseline (a concurrent
//! map of oneshot senders, each waiter in its own `tokio::time::timeout`).

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tether_benches::baseline::approval::{BaselineApprovals, Verdict};
use tether_benches::poll::poll_once;
use tether_benches::{short_criterion, size_label, SIZES};
use tether_core::approval::{ApprovalAction, ApprovalConfig, ApprovalWaiters, ReviewerDecision};
use tether_core::{Machine, Timestamp};
use tokio::sync::oneshot;

const HOUR: Duration = Duration::from_secs(3600);

fn machine(n: usize) -> ApprovalWaiters {
    let mut w = ApprovalWaiters::new(ApprovalConfig {
        max_waiters: n + 1024,
        ..ApprovalConfig::default()
    });
    let t0 = Timestamp::ZERO;
    for i in 0..n {
        w.wait(t0, &format!("pre-{i}"), t0 + HOUR).expect("room");
    }
    w
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("approval/register_resolve");
    g.throughput(Throughput::Elements(1));
    for n in SIZES {
        let label = size_label(n);
        {
            let mut w = machine(n);
            let mut id = String::new();
            let mut k = 0u64;
            g.bench_function(BenchmarkId::new("tether-core", &label), |b| {
                b.iter(|| {
                    k += 1;
                    let now = Timestamp::from_nanos(k * 1_000);
                    id.clear();
                    let _ = write!(id, "req-{k}");
                    let waiter = w
                        .wait(now, &id, now + Duration::from_secs(30))
                        .expect("room");
                    w.on_verdict(now, &id, ReviewerDecision::Approved);
                    let a = w.poll_action().expect("resolved");
                    assert_eq!(a.waiter(), waiter);
                });
            });
        }
        {
            let mut w = machine(n);
            let mut senders: HashMap<_, oneshot::Sender<ApprovalAction>> = HashMap::new();
            let mut id = String::new();
            let mut k = 0u64;
            g.bench_function(BenchmarkId::new("tether-core+oneshot", &label), |b| {
                b.iter(|| {
                    k += 1;
                    let now = Timestamp::from_nanos(k * 1_000);
                    id.clear();
                    let _ = write!(id, "req-{k}");
                    let waiter = w
                        .wait(now, &id, now + Duration::from_secs(30))
                        .expect("room");
                    let (tx, mut rx) = oneshot::channel();
                    senders.insert(waiter, tx);
                    w.on_verdict(now, &id, ReviewerDecision::Approved);
                    while let Some(a) = w.poll_action() {
                        if let Some(tx) = senders.remove(&a.waiter()) {
                            let _ = tx.send(a);
                        }
                    }
                    rx.try_recv().expect("delivered");
                });
            });
        }
        {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("runtime");
            let map = Arc::new(BaselineApprovals::new());
            rt.block_on(async {
                for i in 0..n {
                    let map = map.clone();
                    tokio::spawn(async move {
                        map.wait(&format!("pre-{i}"), HOUR).await;
                    });
                }
                while map.len() < n {
                    tokio::task::yield_now().await;
                }
            });
            let mut id = String::new();
            let mut k = 0u64;
            g.bench_function(BenchmarkId::new("baseline", &label), |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let start = Instant::now();
                        for _ in 0..iters {
                            k += 1;
                            id.clear();
                            let _ = write!(id, "req-{k}");
                            // Unconstrained: tokio's co-op budget would otherwise make a
                            // ready oneshot report pending after many polls in one task.
                            let fut =
                                tokio::task::unconstrained(map.wait(&id, Duration::from_secs(30)));
                            tokio::pin!(fut);
                            assert!(poll_once(fut.as_mut()).is_pending());
                            map.resolve(&id, Verdict::Approved);
                            assert!(poll_once(fut.as_mut()).is_ready());
                        }
                        start.elapsed()
                    })
                });
            });
        }
    }
    g.finish();
}

criterion_group! { name = benches; config = short_criterion!(); targets = bench }
criterion_main!(benches);
