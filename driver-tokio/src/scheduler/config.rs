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
#[derive(Clone, Debug, PartialEq, Eq)]
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

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            tick: TickConfig::default(),
            subscriber_capacity: DEFAULT_SUBSCRIBER_CAPACITY,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }
}
