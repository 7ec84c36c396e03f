//! The queued-work runner's dedupe: poke a session and complete its drive,
//! with 1k, 100k and 1M other sessions in flight. tether's `InFlight`
//! machine against the baseline's dispatch (an unbounded channel of pokes
//! and a set of in-flight sessions; its 400 ms poll is measured in the
//! end-to-end bench's idle row).

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;
use tether_benches::baseline::queued::BaselineQueue;
use tether_benches::{short_criterion, size_label, SIZES};
use tether_core::inflight::{InFlight, InFlightAction, InFlightConfig};
use tether_core::{Machine, Timestamp};

fn drive(m: &mut InFlight<u64>) -> tether_core::inflight::DriveToken {
    match m.poll_action() {
        Some(InFlightAction::Drive { token, .. }) => token,
        other => panic!("expected a drive, got {other:?}"),
    }
}

fn machine(n: usize) -> InFlight<u64> {
    let t0 = Timestamp::ZERO;
    let mut m = InFlight::new(
        InFlightConfig::default()
            .with_max_in_flight(n + 16)
            .with_max_pending(n + 16)
            .with_lease(Duration::from_secs(3600)),
    );
    for s in 0..n as u64 {
        m.on_poke(t0, Some(s));
    }
    while m.poll_action().is_some() {}
    m
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("inflight/poke_complete");
    g.throughput(Throughput::Elements(1));
    for n in SIZES {
        let label = size_label(n);
        let hot = u64::MAX - 1;
        let mut m = machine(n);
        let mut k = 0u64;
        g.bench_function(BenchmarkId::new("tether-core", &label), |b| {
            b.iter(|| {
                k += 1;
                let now = Timestamp::from_nanos(1_000_000 + k * 1_000);
                m.on_poke(now, Some(hot));
                let t = drive(&mut m);
                m.on_idle(now, t).expect("valid");
                assert!(m.poll_action().is_none());
            });
        });
        g.bench_function(
            BenchmarkId::new("tether-core-submit-complete-redrive", &label),
            |b| {
                b.iter(|| {
                    k += 1;
                    let now = Timestamp::from_nanos(1_000_000 + k * 1_000);
                    m.on_poke(now, Some(hot));
                    let t = drive(&mut m);
                    m.on_submitted(now, t, hot).expect("valid");
                    m.on_complete(now, t).expect("valid");
                    let t2 = drive(&mut m);
                    m.on_idle(now, t2).expect("valid");
                });
            },
        );
        drop(m);
        let mut q = BaselineQueue::new();
        for s in 0..n as u64 {
            q.preload(s);
        }
        g.bench_function(BenchmarkId::new("baseline", &label), |b| {
            b.iter(|| {
                q.poke(hot);
                let s = q.next_drive().expect("a drive");
                q.complete(s);
            });
        });
    }
    g.finish();
}

criterion_group! { name = benches; config = short_criterion!(); targets = bench }
criterion_main!(benches);
