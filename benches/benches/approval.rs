//! Approval waiting: register a waiter and resolve it, with 4,096 (the
//! default bound), 1k, 100k and 1M other waiters outstanding. tether's
//! machine alone (wait, verdict, drain); tether's driver (`Approvals::wait`
//! polled once, then dropped: registration and cancellation through the
//! machine behind its lock, the clock and the waiter's mailbox; the driver
//! takes verdicts only from its invalidation stream, so a bench cannot feed
//! one); and the baseline (a concurrent map of oneshot senders, each waiter
//! in its own `tokio::time::timeout`), waited on and resolved.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::fmt::Write as _;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tether_benches::baseline::approval::{BaselineApprovals, Verdict};
use tether_benches::poll::poll_once;
use tether_benches::{short_criterion, size_label, SIZES};
use tether_core::approval::{ApprovalConfig, ApprovalWaiters, ReviewerDecision};
use tether_core::{Machine, Timestamp};
use tether_tokio::client::Approvals;
use tether_tokio::runtime::Clock;

const HOUR: Duration = Duration::from_secs(3600);
const DEFAULT_BOUND: usize = 4_096;

fn machine(n: usize) -> ApprovalWaiters {
    let mut w = ApprovalWaiters::new(ApprovalConfig::default().with_max_waiters(n + 1024));
    let t0 = Timestamp::ZERO;
    for i in 0..n {
        w.wait(t0, &format!("pre-{i}"), t0 + HOUR).expect("room");
    }
    w
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("approval/register_resolve");
    g.throughput(Throughput::Elements(1));
    // The default bound (ApprovalConfig::default().max_waiters, 4,096) first,
    // then the suite's sizes.
    for n in std::iter::once(DEFAULT_BOUND).chain(SIZES) {
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
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("runtime");
            let approvals = rt.block_on(async {
                Approvals::new(
                    ApprovalConfig::default().with_max_waiters(n + 1024),
                    Clock::new(),
                )
            });
            // The n outstanding waiters: registered futures, polled once.
            let ids: Vec<String> = (0..n).map(|i| format!("pre-{i}")).collect();
            let mut outstanding: Vec<_> = ids.iter().map(|id| approvals.wait(id, HOUR)).collect();
            rt.block_on(async {
                for f in &mut outstanding {
                    assert!(poll_once(Pin::new(f)).is_pending());
                }
            });
            assert_eq!(approvals.waiting(), n);
            let mut id = String::new();
            let mut k = 0u64;
            g.bench_function(BenchmarkId::new("tether-register-cancel", &label), |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let start = Instant::now();
                        for _ in 0..iters {
                            k += 1;
                            id.clear();
                            let _ = write!(id, "req-{k}");
                            let mut fut = approvals.wait(&id, Duration::from_secs(30));
                            assert!(poll_once(Pin::new(&mut fut)).is_pending());
                            drop(fut);
                        }
                        start.elapsed()
                    })
                });
            });
            drop(outstanding);
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
