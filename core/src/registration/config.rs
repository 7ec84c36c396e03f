//! Registration parameters and their defaults, each with the reason it was
//! chosen.

use core::time::Duration;

use crate::backoff::BackoffConfig;

/// First retry of a failed attempt after about 500 ms: registration is on
/// the agent's start-up path, so a blip should cost half a second, not one.
pub const DEFAULT_RETRY_BASE: Duration = Duration::from_millis(500);

/// Retries back off to at most 30 s (before jitter): an agent without a
/// token cannot be governed, so it must not wait minutes once the gateway
/// is back.
pub const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(30);

/// A definitively refused registration (`ALREADY_EXISTS`,
/// `PERMISSION_DENIED`, ...) is tried again after 60 s: an operator may fix
/// the cause, but asking more often only repeats the same refusal.
pub const DEFAULT_REFUSED_RETRY: Duration = Duration::from_secs(60);

/// Heartbeat every 30 s when the gateway names no interval: the gateway's
/// own default.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(30);

/// The shortest heartbeat interval honoured (1 s): a gateway cannot make
/// the agent hammer it.
pub const MIN_HEARTBEAT: Duration = Duration::from_secs(1);

/// The longest heartbeat interval honoured (1 h): a gateway cannot make the
/// agent fall silent for longer.
pub const MAX_HEARTBEAT: Duration = Duration::from_secs(3_600);

/// Shutdown waits at most 5 s for `Deregister`: long enough for a round
/// trip, short enough not to hold a process that is exiting.
pub const DEFAULT_SHUTDOWN_BOUND: Duration = Duration::from_secs(5);

/// The shortest `refused_retry` and `shutdown_bound` (1 ms): shorter ones,
/// zero included, are raised to it.
pub const MIN_DELAY: Duration = Duration::from_millis(1);

/// Parameters of a [`Registration`](super::Registration).
///
/// Out-of-range values are clamped when the machine is built, never rejected
/// with a panic: `heartbeat_default` to `[MIN_HEARTBEAT, MAX_HEARTBEAT]`,
/// `refused_retry` and `shutdown_bound` to at least [`MIN_DELAY`], `retry`
/// as [`BackoffConfig::clamped`] does.
///
/// Built from [`RegistrationConfig::default`] and its `with_` methods
/// (fields may be added, so outside this crate it cannot be written as a
/// literal).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RegistrationConfig {
    /// Backoff of transient registration failures and of control-stream
    /// reopening (its `seed` is ignored: both are seeded from `seed`).
    pub retry: BackoffConfig,
    /// How soon a definitively refused registration is tried again.
    pub refused_retry: Duration,
    /// Heartbeat interval when the gateway names none (`<= 0`).
    pub heartbeat_default: Duration,
    /// How long shutdown waits for `Deregister`.
    pub shutdown_bound: Duration,
    /// Register every time with a new key (emits
    /// [`RotateKey`](super::RegistrationAction::RotateKey) before an attempt
    /// that follows an `ALREADY_EXISTS` or a lost token), so a restarted
    /// gateway that refuses the old key is recovered from at once.
    pub fresh_key_per_registration: bool,
    /// Seed of the jitter generators: the same seed replays the same run.
    pub seed: u64,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        RegistrationConfig {
            retry: BackoffConfig::default()
                .with_base(DEFAULT_RETRY_BASE)
                .with_max(DEFAULT_RETRY_MAX),
            refused_retry: DEFAULT_REFUSED_RETRY,
            heartbeat_default: DEFAULT_HEARTBEAT,
            shutdown_bound: DEFAULT_SHUTDOWN_BOUND,
            fresh_key_per_registration: false,
            seed: 0,
        }
    }
}

impl RegistrationConfig {
    /// The same, backing off transient failures with `retry`.
    pub fn with_retry(mut self, retry: BackoffConfig) -> Self {
        self.retry = retry;
        self
    }

    /// The same, trying a definitively refused registration again after
    /// `refused_retry`.
    pub fn with_refused_retry(mut self, refused_retry: Duration) -> Self {
        self.refused_retry = refused_retry;
        self
    }

    /// The same, heartbeating every `heartbeat_default` when the gateway
    /// names no interval.
    pub fn with_heartbeat_default(mut self, heartbeat_default: Duration) -> Self {
        self.heartbeat_default = heartbeat_default;
        self
    }

    /// The same, waiting at most `shutdown_bound` for `Deregister`.
    pub fn with_shutdown_bound(mut self, shutdown_bound: Duration) -> Self {
        self.shutdown_bound = shutdown_bound;
        self
    }

    /// The same, registering with a fresh key after `ALREADY_EXISTS` or a
    /// lost token.
    pub fn with_fresh_key_per_registration(mut self, fresh: bool) -> Self {
        self.fresh_key_per_registration = fresh;
        self
    }

    /// The same, seeding the jitter generators with `seed`.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// A copy with every field brought into its valid range.
    pub fn clamped(&self) -> Self {
        RegistrationConfig {
            retry: self.retry.clamped(),
            refused_retry: self.refused_retry.max(MIN_DELAY),
            heartbeat_default: self.heartbeat_default.clamp(MIN_HEARTBEAT, MAX_HEARTBEAT),
            shutdown_bound: self.shutdown_bound.max(MIN_DELAY),
            fresh_key_per_registration: self.fresh_key_per_registration,
            seed: self.seed,
        }
    }

    /// The heartbeat interval for a gateway's `heartbeat_interval_sec`:
    /// the default when `<= 0`, else clamped to `[MIN_HEARTBEAT, MAX_HEARTBEAT]`.
    pub fn heartbeat_interval(&self, heartbeat_interval_sec: i64) -> Duration {
        if heartbeat_interval_sec <= 0 {
            return self.heartbeat_default.clamp(MIN_HEARTBEAT, MAX_HEARTBEAT);
        }
        Duration::from_secs(heartbeat_interval_sec.unsigned_abs())
            .clamp(MIN_HEARTBEAT, MAX_HEARTBEAT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamps_out_of_range_values() {
        let c = RegistrationConfig::default()
            .with_refused_retry(Duration::ZERO)
            .with_shutdown_bound(Duration::ZERO)
            .with_heartbeat_default(Duration::from_secs(1_000_000))
            .clamped();
        assert_eq!(c.refused_retry, MIN_DELAY);
        assert_eq!(c.shutdown_bound, MIN_DELAY);
        assert_eq!(c.heartbeat_default, MAX_HEARTBEAT);
        let c = c.with_heartbeat_default(Duration::ZERO).clamped();
        assert_eq!(c.heartbeat_default, MIN_HEARTBEAT);
    }

    #[test]
    fn heartbeat_interval_defaults_and_clamps() {
        let c = RegistrationConfig::default();
        assert_eq!(c.heartbeat_interval(0), DEFAULT_HEARTBEAT);
        assert_eq!(c.heartbeat_interval(i64::MIN), DEFAULT_HEARTBEAT);
        assert_eq!(c.heartbeat_interval(7), Duration::from_secs(7));
        assert_eq!(c.heartbeat_interval(i64::MAX), MAX_HEARTBEAT);
    }
}
