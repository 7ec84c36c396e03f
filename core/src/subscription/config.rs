//! Subscription parameters and their defaults, each with the reason it was
//! chosen.

use core::time::Duration;

use crate::backoff::BackoffConfig;

/// Most actions the machine queues for a driver that is not draining: 4,096,
/// room for at least 2,048 applied events (each is counted as an `Apply`
/// plus room for an `Ack`, whether that ack is emitted with it or later),
/// twice the gateway's 1,024-event live channel. A driver that drains after
/// every input never comes near it; one that stops draining gets its stream
/// closed and resubscribed from the last applied event instead of an
/// unbounded queue.
pub const DEFAULT_MAX_QUEUED_ACTIONS: usize = 4_096;

/// Applies on one stream after which the machine acks at once: 64.
///
/// An ack is cumulative (the gateway trims its replay buffer up to and
/// including the acked `seq`), so one ack for the newest applied event does
/// the work of every ack before it; sending one per event was nearly all of
/// the client's per-event cost. 64 divides that cost by 64 in a burst,
/// while at most 63 applied events of a stream wait for their ack (each for
/// at most [`DEFAULT_ACK_DELAY`]), a small part of the gateway's 1,024-event
/// replay buffer. 1 acks every applied event.
pub const DEFAULT_ACK_EVERY: u32 = 64;

/// Longest an applied event waits for its ack when fewer than
/// [`DEFAULT_ACK_EVERY`] follow it: 20 ms, long enough to gather the events
/// of a burst into one ack, short enough that the gateway's buffer is
/// trimmed almost at once after a lone event. Acks only trim: the resume
/// point is `last_seq_seen`, so a later ack delays no replay and loses
/// nothing.
pub const DEFAULT_ACK_DELAY: Duration = Duration::from_millis(20);

/// The smallest accepted queue bound: room for one event's worst case
/// (`InvalidateAll`, `Apply`, `Ack`) plus the close and connect that may
/// follow it, with headroom.
pub const MIN_MAX_QUEUED_ACTIONS: usize = 8;

/// Parameters of a [`Subscription`](super::Subscription).
///
/// Out-of-range values are clamped when the machine is built, never rejected
/// with a panic: the backoff as [`BackoffConfig::clamped`] does, and
/// `max_queued_actions` to at least [`MIN_MAX_QUEUED_ACTIONS`], `ack_every`
/// to at least 1.
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
    /// Acks are cumulative and bounded: once this many applies on the
    /// current stream are unacked, the machine acks the newest one at once
    /// (see [`DEFAULT_ACK_EVERY`]; at least 1; 1 acks every applied event).
    pub ack_every: u32,
    /// Otherwise the newest applied event is acked when this long has passed
    /// since the first unacked apply (see [`DEFAULT_ACK_DELAY`]); the
    /// machine reports that instant through `poll_timeout`
    /// ([`SubscriptionTimer::AckDue`](super::SubscriptionTimer::AckDue)).
    pub ack_delay: Duration,
}

impl Default for SubscriptionConfig {
    fn default() -> Self {
        SubscriptionConfig {
            backoff: BackoffConfig::default(),
            max_queued_actions: DEFAULT_MAX_QUEUED_ACTIONS,
            ack_every: DEFAULT_ACK_EVERY,
            ack_delay: DEFAULT_ACK_DELAY,
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

    /// The same, acking at once when `ack_every` applies are unacked (at
    /// least 1; 1 acks every applied event).
    pub fn with_ack_every(mut self, ack_every: u32) -> Self {
        self.ack_every = ack_every;
        self
    }

    /// The same, acking at most `ack_delay` after the first unacked apply.
    pub fn with_ack_delay(mut self, ack_delay: Duration) -> Self {
        self.ack_delay = ack_delay;
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
            ack_every: self.ack_every.max(1),
            ack_delay: self.ack_delay,
        }
    }
}
