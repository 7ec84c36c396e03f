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
    max_overflow: u8,
    max_agents: u8,
    max_waiters: u8,
    max_finished: u8,
    dedupe_window: u8,
    max_op_id_len: u8,
    grace_ms: u16,
    settle_ms: u16,
    hold_ms: u16,
    policy: OutagePolicy,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    // Small bounds so that eviction, saturation and the waiter limit are
    // reached within a few inputs.
    let cfg = OpControlConfig::default()
        .with_max_entries(usize::from(input.max_entries % 6))
        .with_max_evicted(usize::from(input.max_evicted % 4))
        .with_max_overflow(usize::from(input.max_overflow % 3))
        .with_max_agents(usize::from(input.max_agents % 5))
        .with_max_waiters(usize::from(input.max_waiters % 8))
        .with_max_finished(usize::from(input.max_finished % 5))
        .with_dedupe_window(usize::from(input.dedupe_window % 10))
        .with_max_op_id_len(usize::from(input.max_op_id_len))
        .with_outage_grace(Duration::from_millis(u64::from(input.grace_ms)))
        .with_restore_settle(Duration::from_millis(u64::from(input.settle_ms)))
        .with_outage_policy(input.policy)
        .with_hold_limit(Duration::from_millis(u64::from(input.hold_ms)));
    if let Err(v) = run(cfg, &input.ops) {
        panic!("{v}");
    }
});
