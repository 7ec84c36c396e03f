//! Fuzz the backoff machine: arbitrary configs and input sequences (a
//! draining peer, `Op::PeerDraining`, included: `BACKOFF_DRAIN_NOT_A_FAILURE`)
//! must keep every backoff and contract invariant (not just avoid panics).
#![no_main]

use core::time::Duration;

use libfuzzer_sys::fuzz_target;
use tether_core::backoff::BackoffConfig;
use tether_core::testkit::backoff::{run, Op};

#[derive(Debug, arbitrary::Arbitrary)]
struct Input {
    base_ms: u16,
    multiplier: f64,
    jitter: f64,
    max_ms: u32,
    healthy_ms: u32,
    seed: u64,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let cfg = BackoffConfig::default()
        .with_base(Duration::from_millis(u64::from(input.base_ms)))
        .with_multiplier(input.multiplier)
        .with_jitter(input.jitter)
        .with_max(Duration::from_millis(u64::from(input.max_ms)))
        .with_healthy_after(Duration::from_millis(u64::from(input.healthy_ms)))
        .with_jitter_seed(input.seed);
    if let Err(v) = run(cfg, &input.ops) {
        panic!("{v}");
    }
});
