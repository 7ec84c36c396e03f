//! The runner's configuration.

use tether_core::inflight::InFlightConfig;

/// Parameters of a [`Runner`](super::Runner): only those of the core's
/// in-flight machine (concurrency, pending bound, lease, retry backoff,
/// optional recovery poll), since every decision is the machine's.
///
/// Built with [`RunnerConfig::new`] or from [`RunnerConfig::default`] and
/// its `with_` methods (fields may be added, so outside this crate it cannot
/// be written as a literal).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct RunnerConfig {
    /// The in-flight machine's parameters (see [`InFlightConfig`]).
    pub inflight: InFlightConfig,
}

impl RunnerConfig {
    /// A runner configured by `inflight`.
    pub fn new(inflight: InFlightConfig) -> Self {
        RunnerConfig { inflight }
    }

    /// The same, with `inflight` as the in-flight machine's parameters.
    pub fn with_inflight(mut self, inflight: InFlightConfig) -> Self {
        self.inflight = inflight;
        self
    }
}
