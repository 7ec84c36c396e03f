//! Fuzz the check-slot machine: arbitrary configs and input sequences
//! (live, stale and made-up ids; eager and lazy draining) must keep every
//! check-slot and contract invariant and agree with the reference model,
//! every queued check ending exactly once (not just avoid panics).
#![no_main]

use core::time::Duration;

use libfuzzer_sys::fuzz_target;
use tether_core::check_slots::CheckSlotsConfig;
use tether_core::testkit::check_slots::{run, Op};

#[derive(Debug, arbitrary::Arbitrary)]
struct Input {
    max_in_flight: u8,
    max_queued: u8,
    queue_timeout_ms: u32,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let cfg = CheckSlotsConfig::default()
        .with_max_in_flight(usize::from(input.max_in_flight % 8))
        .with_max_queued(usize::from(input.max_queued % 8))
        .with_queue_timeout(Duration::from_millis(u64::from(input.queue_timeout_ms)));
    if let Err(v) = run(cfg, &input.ops) {
        panic!("{v}");
    }
});
