//! Fuzz the in-flight machine: arbitrary configs and input sequences (valid,
//! stale and made-up tokens) must keep every in-flight and contract
//! invariant, liveness included (not just avoid panics). Leases that
//! expire while a drive's call runs yield `CancelDrive`, and the `Cancelled`
//! op reports cancellations (valid, stale and unasked-for), so
//! `INFLIGHT_NO_OVERLAP` is fuzzed too. Whether the machine sweeps at start
//! is drawn from the input, and the `Start` op (anywhere in the sequence,
//! any number of times) checks `INFLIGHT_SWEEP_AT_START` both ways.
#![no_main]

use core::time::Duration;

use libfuzzer_sys::fuzz_target;
use tether_core::inflight::InFlightConfig;
use tether_core::testkit::inflight::{run, Op};

#[derive(Debug, arbitrary::Arbitrary)]
struct Input {
    max_in_flight: u8,
    max_pending: u8,
    lease_ms: u32,
    retry_base_ms: u16,
    retry_max_ms: u32,
    retry_jitter: f64,
    recovery_poll_ms: Option<u32>,
    sweep_at_start: bool,
    seed: u64,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let cfg = InFlightConfig::default()
        .with_max_in_flight(usize::from(input.max_in_flight % 8))
        .with_max_pending(usize::from(input.max_pending % 8))
        .with_lease(Duration::from_millis(u64::from(input.lease_ms)))
        .with_retry_base(Duration::from_millis(u64::from(input.retry_base_ms)))
        .with_retry_max(Duration::from_millis(u64::from(input.retry_max_ms)))
        .with_retry_jitter(input.retry_jitter)
        .with_recovery_poll(
            input
                .recovery_poll_ms
                .map(|ms| Duration::from_millis(u64::from(ms))),
        )
        .with_sweep_at_start(input.sweep_at_start)
        .with_seed(input.seed);
    if let Err(v) = run(cfg, &input.ops) {
        panic!("{v}");
    }
});
