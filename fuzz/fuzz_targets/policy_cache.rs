//! Fuzz the policy cache: arbitrary configs and input sequences must keep
//! every policy-cache and contract invariant, checked against the reference
//! model (not just avoid panics).
#![no_main]

use core::time::Duration;

use libfuzzer_sys::fuzz_target;
use tether_core::policy_cache::PolicyCacheConfig;
use tether_core::testkit::policy_cache::{run, Op};

#[derive(Debug, arbitrary::Arbitrary)]
struct Input {
    ttl_ms: u16,
    staleness_ms: u16,
    max_entries: u8,
    max_tracked_agents: u8,
    max_key_len: u8,
    max_queued_actions: u8,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let cfg = PolicyCacheConfig::default()
        .with_ttl(Duration::from_millis(u64::from(input.ttl_ms)))
        .with_staleness_bound(Duration::from_millis(u64::from(input.staleness_ms)))
        .with_max_entries(usize::from(input.max_entries % 12))
        .with_max_tracked_agents(usize::from(input.max_tracked_agents % 6))
        // Mostly roomy, sometimes below the harness's keys (2 to 5 bytes).
        .with_max_key_len(if input.max_key_len < 32 {
            usize::from(input.max_key_len % 6)
        } else {
            64
        })
        .with_max_queued_actions(usize::from(input.max_queued_actions % 6));
    if let Err(v) = run(cfg, &input.ops) {
        panic!("{v}");
    }
});
