//! Fuzz the subscription machine against the model gateway: arbitrary
//! configs (the ack policy included: `ack_every` from 0, clamped to 1, and
//! any `ack_delay` from zero up), gateway behaviour (with and without a lifetime epoch announced:
//! `Op::ConnectedWithEpoch`, `Op::Epoch`), forged events and driver timing
//! must keep every subscription and contract invariant (not just avoid
//! panics; with epochs announced, `SUB_RESTART_LOSES_NOTHING_HELD`
//! included: after a restart the first event applied is the oldest the
//! gateway held, and the resubscribe from 0 waits no backoff delay), draining
//! peers (`Op::PeerDraining`: `SUB_DRAIN_FOLLOWED`, the stream moved and
//! resumed from `last_seq_seen` at once or `base` after it opened, no
//! failure counted), and the client must then catch up with the gateway.
#![no_main]

use core::time::Duration;

use libfuzzer_sys::fuzz_target;
use tether_core::backoff::BackoffConfig;
use tether_core::subscription::SubscriptionConfig;
use tether_core::testkit::subscription::{run_and_settle, HarnessConfig, Op};

#[derive(Debug, arbitrary::Arbitrary)]
struct Input {
    base_ms: u16,
    multiplier: f64,
    jitter: f64,
    max_ms: u32,
    healthy_ms: u32,
    seed: u64,
    max_queued: u8,
    ack_every: u8,
    ack_delay_ms: u32,
    replay_ring: u8,
    live_channel: u8,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let cfg = HarnessConfig {
        subscription: SubscriptionConfig::default()
            .with_backoff(
                BackoffConfig::default()
                    .with_base(Duration::from_millis(u64::from(input.base_ms)))
                    .with_multiplier(input.multiplier)
                    .with_jitter(input.jitter)
                    .with_max(Duration::from_millis(u64::from(input.max_ms)))
                    .with_healthy_after(Duration::from_millis(u64::from(input.healthy_ms)))
                    .with_jitter_seed(input.seed),
            )
            .with_max_queued_actions(usize::from(input.max_queued))
            .with_ack_every(u32::from(input.ack_every))
            .with_ack_delay(Duration::from_millis(u64::from(input.ack_delay_ms))),
        replay_ring: usize::from(input.replay_ring),
        live_channel: usize::from(input.live_channel),
    };
    if let Err(v) = run_and_settle(cfg, &input.ops) {
        panic!("{v}");
    }
});
