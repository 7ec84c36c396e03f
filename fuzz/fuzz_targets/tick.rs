//! Fuzz the tick schedule: arbitrary configs and input sequences (upserts
//! mid-run, valid, stale and made-up results) must keep every tick and
//! contract invariant (not just avoid panics).
#![no_main]

use core::time::Duration;

use libfuzzer_sys::fuzz_target;
use tether_core::testkit::tick::{run, Op};
use tether_core::tick::{MissedTicks, TickConfig};

#[derive(Debug, arbitrary::Arbitrary)]
struct Input {
    max_jobs: u8,
    failure_base_ms: u16,
    failure_max_ms: u32,
    run_timeout_ms: Option<u32>,
    delay: bool,
    granularity_ms: u16,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let cfg = TickConfig::default()
        .with_max_jobs(usize::from(input.max_jobs % 8))
        .with_failure_backoff(
            Duration::from_millis(u64::from(input.failure_base_ms)),
            Duration::from_millis(u64::from(input.failure_max_ms)),
        )
        .with_run_timeout(
            input
                .run_timeout_ms
                .map(|ms| Duration::from_millis(u64::from(ms))),
        )
        .with_missed(if input.delay {
            MissedTicks::Delay
        } else {
            MissedTicks::Skip
        })
        .with_timer_granularity(Duration::from_millis(u64::from(input.granularity_ms)));
    if let Err(v) = run(cfg, &input.ops) {
        panic!("{v}");
    }
});
