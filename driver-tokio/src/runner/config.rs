//! The runner's configuration.

use tether_core::inflight::InFlightConfig;

/// Parameters of a [`Runner`](super::Runner): only those of the core's
/// in-flight machine (concurrency, pending bound, lease, retry backoff,
/// optional recovery poll), since every decision is the machine's.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunnerConfig {
    /// The in-flight machine's parameters (see [`InFlightConfig`]).
    pub inflight: InFlightConfig,
}

impl RunnerConfig {
    /// A runner configured by `inflight`.
    pub fn new(inflight: InFlightConfig) -> Self {
        RunnerConfig { inflight }
    }
}
