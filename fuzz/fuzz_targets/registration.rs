//! Fuzz the registration machine: arbitrary configs and input sequences
//! (current, stale and made-up attempts and generations; answers in any
//! order, before start and after shutdown) must keep every registration and
//! contract invariant and agree with the reference model, a lost token
//! being re-registered and shutdown stopping in time (not just avoid
//! panics).
#![no_main]

use core::time::Duration;

use libfuzzer_sys::fuzz_target;
use tether_core::backoff::BackoffConfig;
use tether_core::registration::RegistrationConfig;
use tether_core::testkit::registration::{run, Op};

#[derive(Debug, arbitrary::Arbitrary)]
struct Input {
    fresh_key: bool,
    seed: u64,
    base_ms: u16,
    max_ms: u32,
    jitter_pct: u8,
    refused_ms: u32,
    shutdown_ms: u16,
    heartbeat_ms: u32,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let retry = BackoffConfig::default()
        .with_base(Duration::from_millis(u64::from(input.base_ms)))
        .with_max(Duration::from_millis(u64::from(input.max_ms)))
        .with_jitter(f64::from(input.jitter_pct) / 100.0);
    let cfg = RegistrationConfig::default()
        .with_fresh_key_per_registration(input.fresh_key)
        .with_seed(input.seed)
        .with_retry(retry)
        .with_refused_retry(Duration::from_millis(u64::from(input.refused_ms)))
        .with_shutdown_bound(Duration::from_millis(u64::from(input.shutdown_ms)))
        .with_heartbeat_default(Duration::from_millis(u64::from(input.heartbeat_ms)));
    if let Err(v) = run(cfg, &input.ops) {
        panic!("{v}");
    }
});
