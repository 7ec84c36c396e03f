//! Subscription parameters and their defaults, each with the reason it was
//! chosen.

use crate::backoff::BackoffConfig;

/// Most actions the machine queues for a driver that is not draining: 4,096,
/// room for 2,048 applied events (an `Apply` and an `Ack` each), twice the
/// gateway's 1,024-event live channel. A driver that drains after every input
/// never comes near it; one that stops draining gets its stream closed and
/// resubscribed from the last applied event instead of an unbounded queue.
pub const DEFAULT_MAX_QUEUED_ACTIONS: usize = 4_096;

/// The smallest accepted queue bound: room for one event's worst case
/// (`InvalidateAll`, `Apply`, `Ack`) plus the close and connect that may
/// follow it, with headroom.
pub const MIN_MAX_QUEUED_ACTIONS: usize = 8;

/// Parameters of a [`Subscription`](super::Subscription).
///
/// Out-of-range values are clamped when the machine is built, never rejected
/// with a panic: the backoff as [`BackoffConfig::clamped`] does, and
/// `max_queued_actions` to at least [`MIN_MAX_QUEUED_ACTIONS`].
///
/// Built from [`SubscriptionConfig::default`] and its `with_` methods (fields may
/// be added, so outside this crate it cannot be written as a literal).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SubscriptionConfig {
    /// The reconnect schedule; its `seed` seeds the jitter, so the same
    /// config and inputs replay the same outputs.
    pub backoff: BackoffConfig,
    /// Bound of the action queue (see [`DEFAULT_MAX_QUEUED_ACTIONS`]). An
    /// event that would push the queue past it is not applied: the stream is
    /// closed with [`CloseReason::Backlog`](super::CloseReason::Backlog) and
    /// resubscribed from the last applied event, so nothing is lost.
    pub max_queued_actions: usize,
}

impl Default for SubscriptionConfig {
    fn default() -> Self {
        SubscriptionConfig {
            backoff: BackoffConfig::default(),
            max_queued_actions: DEFAULT_MAX_QUEUED_ACTIONS,
        }
    }
}

impl SubscriptionConfig {
    /// The same, with `backoff` as the reconnect schedule.
    pub fn with_backoff(mut self, backoff: BackoffConfig) -> Self {
        self.backoff = backoff;
        self
    }

    /// The same, queueing at most `max_queued_actions` actions.
    pub fn with_max_queued_actions(mut self, max_queued_actions: usize) -> Self {
        self.max_queued_actions = max_queued_actions;
        self
    }

    /// The defaults with a given jitter seed.
    pub fn with_seed(seed: u64) -> Self {
        SubscriptionConfig {
            backoff: BackoffConfig::with_seed(seed),
            ..Self::default()
        }
    }

    /// A copy with every field brought into its valid range.
    pub fn clamped(&self) -> Self {
        SubscriptionConfig {
            backoff: self.backoff.clamped(),
            max_queued_actions: self.max_queued_actions.max(MIN_MAX_QUEUED_ACTIONS),
        }
    }
}
