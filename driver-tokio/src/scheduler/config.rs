//! The scheduler's configuration.

use std::time::Duration;

use tether_core::tick::TickConfig;

/// A subscriber may fall 1,024 finished runs behind before it is told how
/// many it missed.
pub const DEFAULT_SUBSCRIBER_CAPACITY: usize = 1_024;

/// On shutdown, running ticks get 30 s to finish (and be saved) before
/// they are stopped.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Parameters of a [`Scheduler`](super::Scheduler).
///
/// Built from [`SchedulerConfig::default`] and its `with_` methods (fields
/// may be added, so outside this crate it cannot be written as a literal):
///
/// ```
/// use std::time::Duration;
/// use tether_tokio::scheduler::{SchedulerConfig, TickConfig};
///
/// let config = SchedulerConfig::default()
///     .with_tick(TickConfig::default().with_run_timeout(Some(Duration::from_secs(5))))
///     .with_subscriber_capacity(64);
/// assert_eq!(config.subscriber_capacity, 64);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SchedulerConfig {
    /// The core schedule's parameters: failure backoff (1 s doubling to
    /// 30 s), the run timeout after which a tick is stopped as failed,
    /// the missed-tick policy and the job bound.
    pub tick: TickConfig,
    /// How many finished runs a slow subscriber may lag behind.
    pub subscriber_capacity: usize,
    /// How long [`Scheduler::shutdown`](super::Scheduler::shutdown) lets
    /// running ticks finish.
    pub shutdown_grace: Duration,
}

impl SchedulerConfig {
    /// The same, with the core schedule's parameters `tick`.
    pub fn with_tick(mut self, tick: TickConfig) -> Self {
        self.tick = tick;
        self
    }

    /// The same, letting a subscriber lag `capacity` finished runs behind.
    pub fn with_subscriber_capacity(mut self, capacity: usize) -> Self {
        self.subscriber_capacity = capacity;
        self
    }

    /// The same, giving running ticks `grace` to finish on shutdown.
    pub fn with_shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            tick: TickConfig::default(),
            subscriber_capacity: DEFAULT_SUBSCRIBER_CAPACITY,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }
}
