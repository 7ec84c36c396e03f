//! Fuzz the op-control machine (the kill switch): arbitrary small configs
//! and input sequences must keep every op-control and contract invariant
//! (not just avoid panics).
#![no_main]

use core::time::Duration;

use libfuzzer_sys::fuzz_target;
use tether_core::op_control::{OpControlConfig, OutagePolicy};
use tether_core::testkit::op_control::{run, Op};

#[derive(Debug, arbitrary::Arbitrary)]
struct Input {
    max_entries: u8,
    max_evicted: u8,
    max_agents: u8,
    max_waiters: u8,
    max_finished: u8,
    dedupe_window: u8,
    max_op_id_len: u8,
    grace_ms: u16,
    settle_ms: u16,
    policy: OutagePolicy,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    // Small bounds so that eviction, saturation and the waiter limit are
    // reached within a few inputs.
    let cfg = OpControlConfig {
        max_entries: usize::from(input.max_entries % 6),
        max_evicted: usize::from(input.max_evicted % 4),
        max_agents: usize::from(input.max_agents % 5),
        max_waiters: usize::from(input.max_waiters % 8),
        max_finished: usize::from(input.max_finished % 5),
        dedupe_window: usize::from(input.dedupe_window % 10),
        max_op_id_len: usize::from(input.max_op_id_len),
        outage_grace: Duration::from_millis(u64::from(input.grace_ms)),
        restore_settle: Duration::from_millis(u64::from(input.settle_ms)),
        outage_policy: input.policy,
    };
    if let Err(v) = run(cfg, &input.ops) {
        panic!("{v}");
    }
});
