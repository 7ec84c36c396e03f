//! In-flight parameters and their defaults, each with the reason it was chosen.

use core::time::Duration;

/// At most 16 distinct sessions driven at once. An agent turn is heavy (model
/// calls, tools), so a runner rarely profits from more; the bound keeps one
/// burst of pokes from starting an unbounded number of turns.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 16;

/// At most 1,024 sessions waiting (for a slot, or for a retry). One entry is a
/// session id, so this is a few tens of KiB at most; beyond it a poke folds
/// into the global-poke flag, which is safe because a global drive picks up
/// whatever work is queued.
pub const DEFAULT_MAX_PENDING: usize = 1_024;

/// A drive whose result or completion never arrives is recovered after
/// 10 minutes. A lost completion can only come from a driver or runtime bug
/// or crash, and recovering it early risks driving a turn that is in fact
/// still running; 10 minutes comfortably exceeds a normal turn (seconds to a
/// few minutes) while bounding how long a session stays wedged. A turn that
/// legitimately runs longer (say, waiting on a human approval) renews its
/// lease with [`InFlight::renew_lease`](super::InFlight::renew_lease).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(600);

/// First retry of a failed drive after 1 s: a runtime that failed once is
/// likely to fail again at once, and a second is a negligible delay for work
/// that is queued anyway.
pub const DEFAULT_RETRY_BASE: Duration = Duration::from_secs(1);

/// Retry delays double up to 30 s, the same cap as the reconnect backoff: a
/// failing runtime is not hammered, and a recovered one is used again within
/// half a minute.
pub const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(30);

/// No retry jitter by default: retries are local (no fleet to spread) and
/// already throttled by `max_in_flight`, and exact delays keep a replay easy
/// to read. Set it to spread sessions that failed together.
pub const DEFAULT_RETRY_JITTER: f64 = 0.0;

/// No recovery poll by default: DESIGN.md requires that an idle runner does
/// not wake up. Configure one to catch work whose poke was lost.
pub const DEFAULT_RECOVERY_POLL: Option<Duration> = None;

/// Sweep once at start by default (`INFLIGHT_SWEEP_AT_START`). Work queued
/// while no runner ran (a crash, a deploy, a runtime that queued turns
/// before building its runner) has no poke coming: its poke was sent to no
/// one. Without the sweep it would wait for an unrelated poke, or for a
/// recovery poll that is off by default, possibly forever. The price is one
/// global drive per start, which finds nothing when nothing is queued. Turn
/// it off only when the runtime pokes every queued session itself after
/// starting the runner.
pub const DEFAULT_SWEEP_AT_START: bool = true;

/// The smallest delay any timer of this machine uses (1 ms), so no deadline
/// can equal the instant that armed it (no busy loop).
pub const MIN_DELAY: Duration = Duration::from_millis(1);

/// Parameters of an [`InFlight`](super::InFlight).
///
/// Out-of-range values are clamped when the machine is built, never rejected
/// with a panic: `max_in_flight` to at least 1, `lease`, `retry_base` and a
/// configured `recovery_poll` to at least [`MIN_DELAY`], `retry_max` to at
/// least `retry_base`, `retry_jitter` to `[0, 1]` (NaN becomes 0).
/// `max_pending` may be 0: every poke that cannot start at once then folds
/// into the global-poke flag.
///
/// Built from [`InFlightConfig::default`] and its `with_` methods (fields may
/// be added, so outside this crate it cannot be written as a literal).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct InFlightConfig {
    /// Most distinct sessions driven at once (a global drive is exclusive).
    pub max_in_flight: usize,
    /// Most sessions waiting for a slot or for a retry.
    pub max_pending: usize,
    /// How long a drive may stay outstanding (from issue, then from
    /// submission or the last renewal) before it is recovered.
    pub lease: Duration,
    /// Delay before the first retry of a failed drive.
    pub retry_base: Duration,
    /// Cap of the doubling retry delay.
    pub retry_max: Duration,
    /// Relative jitter of retry delays: each is drawn from `d × [1 − j, 1 + j)`.
    pub retry_jitter: f64,
    /// When set, a global poke is issued every this long while idle.
    pub recovery_poll: Option<Duration>,
    /// Whether [`InFlight::on_start`](super::InFlight::on_start) sweeps
    /// once (one global drive, at once) for work queued before the runner
    /// existed. Default [`DEFAULT_SWEEP_AT_START`] (`true`: work that exists
    /// at start is driven without a poke; see there for why).
    pub sweep_at_start: bool,
    /// Seed of the jitter generator: the same seed replays the same delays.
    pub seed: u64,
}

impl Default for InFlightConfig {
    fn default() -> Self {
        InFlightConfig {
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_pending: DEFAULT_MAX_PENDING,
            lease: DEFAULT_LEASE,
            retry_base: DEFAULT_RETRY_BASE,
            retry_max: DEFAULT_RETRY_MAX,
            retry_jitter: DEFAULT_RETRY_JITTER,
            recovery_poll: DEFAULT_RECOVERY_POLL,
            sweep_at_start: DEFAULT_SWEEP_AT_START,
            seed: 0,
        }
    }
}

impl InFlightConfig {
    /// The same, driving at most `max_in_flight` distinct sessions at once.
    pub fn with_max_in_flight(mut self, max_in_flight: usize) -> Self {
        self.max_in_flight = max_in_flight;
        self
    }

    /// The same, keeping at most `max_pending` sessions waiting.
    pub fn with_max_pending(mut self, max_pending: usize) -> Self {
        self.max_pending = max_pending;
        self
    }

    /// The same, recovering a drive outstanding longer than `lease`.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// The same, retrying a failed drive first after `retry_base`.
    pub fn with_retry_base(mut self, retry_base: Duration) -> Self {
        self.retry_base = retry_base;
        self
    }

    /// The same, capping the doubling retry delay at `retry_max`.
    pub fn with_retry_max(mut self, retry_max: Duration) -> Self {
        self.retry_max = retry_max;
        self
    }

    /// The same, with `retry_jitter` as the relative jitter of retry delays.
    pub fn with_retry_jitter(mut self, retry_jitter: f64) -> Self {
        self.retry_jitter = retry_jitter;
        self
    }

    /// The same, sweeping at start for work queued before the runner
    /// existed (`true`, the default, see [`DEFAULT_SWEEP_AT_START`]) or not
    /// (`false`: only a poke, or a configured recovery poll, finds it).
    pub fn with_sweep_at_start(mut self, sweep_at_start: bool) -> Self {
        self.sweep_at_start = sweep_at_start;
        self
    }

    /// The same, polling for lost work every `recovery_poll` while idle (`None`: never).
    pub fn with_recovery_poll(mut self, recovery_poll: Option<Duration>) -> Self {
        self.recovery_poll = recovery_poll;
        self
    }

    /// The same, seeding the jitter generator with `seed`.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// A copy with every field brought into its valid range.
    pub fn clamped(&self) -> Self {
        let retry_base = self.retry_base.max(MIN_DELAY);
        let retry_jitter = if self.retry_jitter.is_nan() {
            0.0
        } else {
            self.retry_jitter.clamp(0.0, 1.0)
        };
        InFlightConfig {
            max_in_flight: self.max_in_flight.max(1),
            max_pending: self.max_pending,
            lease: self.lease.max(MIN_DELAY),
            retry_base,
            retry_max: self.retry_max.max(retry_base),
            retry_jitter,
            recovery_poll: self.recovery_poll.map(|d| d.max(MIN_DELAY)),
            sweep_at_start: self.sweep_at_start,
            seed: self.seed,
        }
    }
}
