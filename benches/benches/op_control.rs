//! Op control (the kill switch): check an op with 1k, 100k and 1M op
//! entries held, for an op with no entry (it runs) and for a terminated op
//! (it fails at once); and pause + resume of one op. tether's machine
//! against the baseline (a concurrent map of op states plus a `Notify`
//! woken on every change).

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::fmt::Write as _;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tether_benches::baseline::op_control::{BaselineOpControl, OpState};
use tether_benches::poll::poll_once;
use tether_benches::{short_criterion, size_label, SIZES};
use tether_core::op_control::{CheckOutcome, OpControl, OpControlConfig, Signal};
use tether_core::Timestamp;

const AGENT: &str = "agent-1";

fn machine(n: usize) -> OpControl {
    let t0 = Timestamp::ZERO;
    let mut m = OpControl::new(OpControlConfig::default().with_max_entries(n + 1024), t0);
    m.on_stream_up(t0);
    for i in 0..n {
        m.on_signal(t0, &format!("op-{i}"), Signal::Terminate, i as u64 + 1);
    }
    m
}

fn baseline(n: usize) -> BaselineOpControl {
    let b = BaselineOpControl::new();
    for i in 0..n {
        b.set(&format!("op-{i}"), OpState::Terminated);
    }
    b
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("op_control");
    g.throughput(Throughput::Elements(1));
    for n in SIZES {
        let label = size_label(n);
        let mut m = machine(n);
        let base = baseline(n);
        let hit = format!("op-{}", n / 2);
        let now = Timestamp::from_secs(1);
        g.bench_function(BenchmarkId::new("check_running/tether-core", &label), |b| {
            b.iter(|| assert_eq!(m.check(now, AGENT, "live-op"), CheckOutcome::Run));
        });
        g.bench_function(BenchmarkId::new("check_running/baseline", &label), |b| {
            b.iter(|| {
                let fut = base.check("live-op");
                tokio::pin!(fut);
                assert!(matches!(poll_once(fut), std::task::Poll::Ready(true)));
            });
        });
        g.bench_function(
            BenchmarkId::new("check_terminated/tether-core", &label),
            |b| {
                b.iter(|| assert!(matches!(m.check(now, AGENT, &hit), CheckOutcome::Deny(_))));
            },
        );
        g.bench_function(BenchmarkId::new("check_terminated/baseline", &label), |b| {
            b.iter(|| {
                let fut = base.check(&hit);
                tokio::pin!(fut);
                assert!(matches!(poll_once(fut), std::task::Poll::Ready(false)));
            });
        });
        let mut seq = n as u64 + 10;
        let mut op = String::new();
        g.bench_function(BenchmarkId::new("pause_resume/tether-core", &label), |b| {
            b.iter(|| {
                seq += 2;
                op.clear();
                let _ = write!(op, "p-{}", seq % 1000);
                m.on_signal(now, &op, Signal::Pause, seq);
                m.on_signal(now, &op, Signal::Resume, seq + 1);
            });
        });
        g.bench_function(BenchmarkId::new("pause_resume/baseline", &label), |b| {
            b.iter(|| {
                seq += 2;
                op.clear();
                let _ = write!(op, "p-{}", seq % 1000);
                base.set(&op, OpState::Paused);
                base.set(&op, OpState::Running);
            });
        });
    }
    g.finish();
}

criterion_group! { name = benches; config = short_criterion!(); targets = bench }
criterion_main!(benches);
