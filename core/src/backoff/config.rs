//! Backoff parameters and their defaults, each with the reason it was chosen.

use core::time::Duration;

/// First reconnect delay: 1 s. Long enough that a gateway that is down is
/// not hammered, short enough that a blip costs about a second of staleness.
pub const DEFAULT_BASE: Duration = Duration::from_secs(1);

/// Growth per consecutive failure: ×1.6, the gRPC connection-backoff value; it
/// reaches the cap after eight failures (about a minute of trying).
pub const DEFAULT_MULTIPLIER: f64 = 1.6;

/// Jitter: ±20 % on every delay, the gRPC value; enough to spread a fleet that
/// fails together, small enough to keep the schedule predictable.
pub const DEFAULT_JITTER: f64 = 0.2;

/// Delay cap: 30 s, not gRPC's 120 s: the op-control stream carries the kill
/// switch, and an agent must not stay deaf to a terminate for two minutes.
pub const DEFAULT_MAX: Duration = Duration::from_secs(30);

/// A connection resets the schedule only after delivering a message and
/// staying up this long (30 s): a gateway that accepts and closes at once, or
/// one that sends one message and dies, must keep backing off.
pub const DEFAULT_HEALTHY_AFTER: Duration = Duration::from_secs(30);

/// Parameters of a [`Backoff`](super::Backoff).
///
/// Out-of-range values are clamped when the machine is built, never
/// rejected with a panic: `multiplier` to `[1, 1000]`, `jitter` to `[0, 1]`
/// (NaN becomes the bound's safe end), `base` to at least 1 ms, `max` to at
/// least `base`.
///
/// Built from [`BackoffConfig::default`] and its `with_` methods (fields may
/// be added, so outside this crate it cannot be written as a literal).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct BackoffConfig {
    /// The first delay after a failure.
    pub base: Duration,
    /// The factor applied to the delay after each further failure.
    pub multiplier: f64,
    /// The relative jitter: each delay is drawn from `d × [1 − j, 1 + j)`.
    /// `0` disables randomness entirely (the first retry after a healthy
    /// stream then waits exactly `base`).
    pub jitter: f64,
    /// The largest delay before jitter.
    pub max: Duration,
    /// How long a connection that delivered a message must stay up before it
    /// counts as healthy and resets the schedule.
    pub healthy_after: Duration,
    /// Seed of the jitter generator: the same seed replays the same delays.
    pub seed: u64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            base: DEFAULT_BASE,
            multiplier: DEFAULT_MULTIPLIER,
            jitter: DEFAULT_JITTER,
            max: DEFAULT_MAX,
            healthy_after: DEFAULT_HEALTHY_AFTER,
            seed: 0,
        }
    }
}

impl BackoffConfig {
    /// The same, with `base` as the first delay after a failure.
    pub fn with_base(mut self, base: Duration) -> Self {
        self.base = base;
        self
    }

    /// The same, multiplying the delay by `multiplier` after each further failure.
    pub fn with_multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// The same, with `jitter` as the relative jitter of every delay.
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// The same, capping the delay (before jitter) at `max`.
    pub fn with_max(mut self, max: Duration) -> Self {
        self.max = max;
        self
    }

    /// The same, counting a connection healthy after it stayed up `healthy_after`.
    pub fn with_healthy_after(mut self, healthy_after: Duration) -> Self {
        self.healthy_after = healthy_after;
        self
    }

    /// The defaults with a given jitter seed.
    pub fn with_seed(seed: u64) -> Self {
        BackoffConfig {
            seed,
            ..Self::default()
        }
    }

    /// The same, seeding the jitter generator with `seed` (the
    /// [`with_seed`](Self::with_seed) name is taken by the constructor).
    pub fn with_jitter_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// A copy with every field brought into its valid range.
    pub fn clamped(&self) -> Self {
        let multiplier = if self.multiplier.is_nan() {
            1.0
        } else {
            self.multiplier.clamp(1.0, 1000.0)
        };
        let jitter = if self.jitter.is_nan() {
            0.0
        } else {
            self.jitter.clamp(0.0, 1.0)
        };
        let base = self.base.max(Duration::from_millis(1));
        let max = self.max.max(base);
        BackoffConfig {
            base,
            multiplier,
            jitter,
            max,
            healthy_after: self.healthy_after,
            seed: self.seed,
        }
    }

    /// The largest delay this config can ever produce: `max × (1 + jitter)`.
    pub fn max_delay(&self) -> Duration {
        let c = self.clamped();
        Duration::from_nanos(scale_nanos(c.max, 1.0 + c.jitter))
    }

    /// The smallest delay after a failure: `base × (1 − jitter)`.
    pub fn min_failure_delay(&self) -> Duration {
        let c = self.clamped();
        Duration::from_nanos(scale_nanos(c.base, 1.0 - c.jitter))
    }
}

/// `d × factor` in nanoseconds, saturating, never panicking (NaN gives 0).
pub(crate) fn scale_nanos(d: Duration, factor: f64) -> u64 {
    let nanos = d.as_nanos() as f64 * factor;
    // `as` from f64 saturates and maps NaN to 0.
    nanos as u64
}
