//! Every `with_*` builder of the core configs sets exactly its field to the
//! value given, and nothing else (the property tests read configs built
//! with them, but a builder that dropped a value equal to a test's default
//! would pass those unnoticed).

use core::time::Duration;

use tether_core::approval::ApprovalConfig;
use tether_core::backoff::BackoffConfig;
use tether_core::check_slots::CheckSlotsConfig;
use tether_core::inflight::InFlightConfig;
use tether_core::op_control::{OpControlConfig, OutagePolicy};
use tether_core::policy_cache::PolicyCacheConfig;
use tether_core::registration::RegistrationConfig;
use tether_core::subscription::{SubscriptionConfig, DEFAULT_ACK_DELAY, DEFAULT_ACK_EVERY};

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn approval_builders_set_their_fields() {
    let c = ApprovalConfig::default()
        .with_max_waiters(11)
        .with_keep_verdict_for(ms(12))
        .with_max_kept_verdicts(13)
        .with_max_request_id_len(14);
    assert_eq!(
        (
            c.max_waiters,
            c.keep_verdict_for,
            c.max_kept_verdicts,
            c.max_request_id_len
        ),
        (11, ms(12), 13, 14)
    );
}

#[test]
fn backoff_builders_set_their_fields() {
    let c = BackoffConfig::default()
        .with_base(ms(21))
        .with_multiplier(2.5)
        .with_jitter(0.05)
        .with_max(ms(22))
        .with_healthy_after(ms(23))
        .with_jitter_seed(24);
    assert_eq!(
        (c.base, c.max, c.healthy_after, c.seed),
        (ms(21), ms(22), ms(23), 24)
    );
    assert_eq!((c.multiplier, c.jitter), (2.5, 0.05));
    let s = BackoffConfig::with_seed(25);
    let d = BackoffConfig::default();
    assert_eq!(s.seed, 25);
    assert_eq!(
        (s.base, s.max, s.healthy_after),
        (d.base, d.max, d.healthy_after)
    );
}

#[test]
fn subscription_builders_set_their_fields() {
    let c = SubscriptionConfig::default()
        .with_backoff(BackoffConfig::default().with_base(ms(31)))
        .with_max_queued_actions(32)
        .with_ack_every(34)
        .with_ack_delay(ms(35));
    assert_eq!((c.backoff.base, c.max_queued_actions), (ms(31), 32));
    assert_eq!((c.ack_every, c.ack_delay), (34, ms(35)));
    let d = SubscriptionConfig::default();
    assert_eq!(
        (d.ack_every, d.ack_delay),
        (DEFAULT_ACK_EVERY, DEFAULT_ACK_DELAY)
    );
    assert_eq!(c.with_ack_every(0).clamped().ack_every, 1);
    assert_eq!(SubscriptionConfig::with_seed(33).backoff.seed, 33);
}

#[test]
fn policy_cache_builders_set_their_fields() {
    let c = PolicyCacheConfig::default()
        .with_ttl(ms(41))
        .with_staleness_bound(ms(42))
        .with_max_entries(43)
        .with_max_tracked_agents(44)
        .with_max_key_len(45)
        .with_max_queued_actions(46);
    assert_eq!(
        (
            c.ttl,
            c.staleness_bound,
            c.max_entries,
            c.max_tracked_agents,
            c.max_key_len,
            c.max_queued_actions
        ),
        (ms(41), ms(42), 43, 44, 45, 46)
    );
}

#[test]
fn op_control_builders_set_their_fields() {
    let c = OpControlConfig::default()
        .with_max_entries(51)
        .with_max_evicted(52)
        .with_max_agents(53)
        .with_max_waiters(54)
        .with_max_finished(55)
        .with_dedupe_window(56)
        .with_max_op_id_len(57)
        .with_outage_grace(ms(58))
        .with_restore_settle(ms(59))
        .with_outage_policy(OutagePolicy::Allow);
    assert_eq!(
        (
            c.max_entries,
            c.max_evicted,
            c.max_agents,
            c.max_waiters,
            c.max_finished
        ),
        (51, 52, 53, 54, 55)
    );
    assert_eq!((c.dedupe_window, c.max_op_id_len), (56, 57));
    assert_eq!(
        OpControlConfig::default()
            .with_max_overflow(60)
            .max_overflow,
        60
    );
    assert_eq!((c.outage_grace, c.restore_settle), (ms(58), ms(59)));
    assert_eq!(c.outage_policy, OutagePolicy::Allow);
}

#[test]
fn inflight_builders_set_their_fields() {
    let c = InFlightConfig::default()
        .with_max_in_flight(61)
        .with_max_pending(62)
        .with_lease(ms(63))
        .with_retry_base(ms(64))
        .with_retry_max(ms(65))
        .with_retry_jitter(0.125)
        .with_recovery_poll(Some(ms(66)))
        .with_sweep_at_start(false)
        .with_seed(67);
    assert_eq!(
        (
            c.max_in_flight,
            c.max_pending,
            c.lease,
            c.retry_base,
            c.retry_max
        ),
        (61, 62, ms(63), ms(64), ms(65))
    );
    assert_eq!(
        (c.retry_jitter, c.recovery_poll, c.seed),
        (0.125, Some(ms(66)), 67)
    );
    assert!(!c.sweep_at_start);
    assert!(InFlightConfig::default().sweep_at_start);
}

#[test]
fn check_slots_builders_set_their_fields() {
    let c = CheckSlotsConfig::default()
        .with_max_in_flight(71)
        .with_max_queued(72)
        .with_queue_timeout(ms(73));
    assert_eq!(
        (c.max_in_flight, c.max_queued, c.queue_timeout),
        (71, 72, ms(73))
    );
}

#[test]
fn registration_builders_set_their_fields() {
    let retry = BackoffConfig::default().with_base(ms(21)).with_max(ms(22));
    let c = RegistrationConfig::default()
        .with_retry(retry.clone())
        .with_refused_retry(ms(23))
        .with_heartbeat_default(ms(24))
        .with_shutdown_bound(ms(25))
        .with_fresh_key_per_registration(true)
        .with_seed(26);
    assert_eq!(
        (
            c.retry,
            c.refused_retry,
            c.heartbeat_default,
            c.shutdown_bound,
            c.fresh_key_per_registration,
            c.seed
        ),
        (retry, ms(23), ms(24), ms(25), true, 26)
    );
}
