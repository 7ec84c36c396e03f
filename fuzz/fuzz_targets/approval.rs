//! Fuzz the approval waiters: arbitrary configs and input sequences must
//! keep every approval and contract invariant, checked against the
//! reference model, and leave nothing behind once every waiter is
//! cancelled and every verdict expired (not just avoid panics).
#![no_main]

use core::time::Duration;

use libfuzzer_sys::fuzz_target;
use tether_core::approval::ApprovalConfig;
use tether_core::testkit::approval::{run_and_clean_up, Op};

#[derive(Debug, arbitrary::Arbitrary)]
struct Input {
    max_waiters: u8,
    keep_ms: u16,
    max_kept: u8,
    max_id_len: u8,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let cfg = ApprovalConfig::default()
        .with_max_waiters(usize::from(input.max_waiters % 16))
        .with_keep_verdict_for(Duration::from_millis(u64::from(input.keep_ms)))
        .with_max_kept_verdicts(usize::from(input.max_kept % 6))
        // Mostly roomy, sometimes below the harness's ids ("r0".."r3").
        .with_max_request_id_len(if input.max_id_len < 32 {
            usize::from(input.max_id_len % 4)
        } else {
            64
        });
    if let Err(v) = run_and_clean_up(cfg, &input.ops) {
        panic!("{v}");
    }
});
