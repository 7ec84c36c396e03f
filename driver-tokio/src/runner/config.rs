//! The runner's configuration.

use std::time::Duration;

use tether_core::inflight::InFlightConfig;

/// How long [`Runner::shutdown`](super::Runner::shutdown) waits for
/// `submit_next` calls already started, by default: 30 s (the scheduler's
/// grace for running ticks).
pub const DEFAULT_RUNNER_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Parameters of a [`Runner`](super::Runner): only those of the core's
/// in-flight machine (concurrency, pending bound, lease, retry backoff,
/// optional recovery poll, the start-up sweep), since every decision is
/// the machine's, and the shutdown grace.
///
/// Built with [`RunnerConfig::new`] or from [`RunnerConfig::default`] and
/// its `with_` methods (fields may be added, so outside this crate it cannot
/// be written as a literal).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RunnerConfig {
    /// The in-flight machine's parameters (see [`InFlightConfig`]).
    pub inflight: InFlightConfig,
    /// How long `shutdown` waits for `submit_next` calls already started
    /// (default [`DEFAULT_RUNNER_SHUTDOWN_GRACE`]); past it they are
    /// abandoned, so a hung call cannot hold shutdown forever.
    pub shutdown_grace: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            inflight: InFlightConfig::default(),
            shutdown_grace: DEFAULT_RUNNER_SHUTDOWN_GRACE,
        }
    }
}

impl RunnerConfig {
    /// A runner configured by `inflight`.
    pub fn new(inflight: InFlightConfig) -> Self {
        RunnerConfig {
            inflight,
            ..Default::default()
        }
    }

    /// The same, with `inflight` as the in-flight machine's parameters.
    pub fn with_inflight(mut self, inflight: InFlightConfig) -> Self {
        self.inflight = inflight;
        self
    }

    /// The same, with the in-flight machine sweeping once at start for
    /// work queued before the runner existed (`true`, the default: such
    /// work has no poke coming, see
    /// [`DEFAULT_SWEEP_AT_START`](tether_core::inflight::DEFAULT_SWEEP_AT_START))
    /// or not (`false`: only a poke or a configured recovery poll finds
    /// it). Shorthand for setting
    /// [`InFlightConfig::sweep_at_start`].
    pub fn with_sweep_at_start(mut self, sweep_at_start: bool) -> Self {
        self.inflight = self.inflight.with_sweep_at_start(sweep_at_start);
        self
    }

    /// The same, waiting at most `grace` on shutdown for `submit_next`
    /// calls already started.
    pub fn with_shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }
}
