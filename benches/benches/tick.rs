//! Ticks: dispatch the ticks due in one 1 ms slot, with 1k, 100k and 1M jobs
//! at a 1 s interval spread evenly over the 1,000 slots of a second (so a
//! slot holds n/1000 ticks; throughput is per tick). tether's
//! `TickSchedule` (every due tick issued and reported finished) against the
//! baseline: one tokio task per job sleeping its interval, on a paused
//! clock advanced 1 ms per iteration.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tether_benches::{short_criterion, size_label, SIZES};
use tether_core::tick::{JobSpec, TickAction, TickConfig, TickOutcome, TickSchedule};
use tether_core::{Machine, Timestamp};

const SLOTS: usize = 1000;
const SECOND: Duration = Duration::from_secs(1);

fn schedule(n: usize) -> TickSchedule<u32> {
    let t0 = Timestamp::ZERO;
    let mut s = TickSchedule::new(TickConfig::default().with_max_jobs(n + 16));
    for i in 0..n {
        let first = t0 + Duration::from_millis(1 + (i % SLOTS) as u64);
        s.upsert(t0, i as u32, JobSpec::every(SECOND).first_at(first))
            .expect("room");
    }
    s
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("tick/dispatch_due");
    for n in SIZES {
        let per_slot = (n / SLOTS) as u64;
        g.throughput(Throughput::Elements(per_slot));
        let label = size_label(n);
        {
            let mut s = schedule(n);
            let mut now = Timestamp::ZERO;
            let mut runs = Vec::with_capacity(per_slot as usize);
            g.bench_function(BenchmarkId::new("tether-core", &label), |b| {
                b.iter(|| {
                    now = now + Duration::from_millis(1);
                    s.handle_timeout(now);
                    while let Some(TickAction::RunTick { run, .. }) = s.poll_action() {
                        runs.push(run);
                    }
                    assert_eq!(runs.len() as u64, per_slot);
                    for run in runs.drain(..) {
                        s.on_tick_finished(now, run, TickOutcome::Success)
                            .expect("current");
                    }
                });
            });
        }
        {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("runtime");
            let ticks = Arc::new(AtomicU64::new(0));
            let handles = rt.block_on(async {
                let start = tokio::time::Instant::now();
                let hs: Vec<_> = (0..n)
                    .map(|i| {
                        let ticks = ticks.clone();
                        let first = start + Duration::from_millis(1 + (i % SLOTS) as u64);
                        tokio::spawn(async move {
                            let mut next = first;
                            loop {
                                tokio::time::sleep_until(next).await;
                                ticks.fetch_add(1, Ordering::Relaxed);
                                next += SECOND;
                            }
                        })
                    })
                    .collect();
                // Let every task register its first sleep.
                for _ in 0..4 {
                    tokio::task::yield_now().await;
                }
                hs
            });
            g.bench_function(BenchmarkId::new("baseline", &label), |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let start = Instant::now();
                        for _ in 0..iters {
                            let target = ticks.load(Ordering::Relaxed) + per_slot;
                            tokio::time::advance(Duration::from_millis(1)).await;
                            while ticks.load(Ordering::Relaxed) < target {
                                tokio::task::yield_now().await;
                            }
                        }
                        start.elapsed()
                    })
                });
            });
            for h in handles {
                h.abort();
            }
        }
    }
    g.finish();
}

criterion_group! { name = benches; config = short_criterion!(); targets = bench }
criterion_main!(benches);
