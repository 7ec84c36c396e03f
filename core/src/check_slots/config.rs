//! Check-slot parameters and their defaults, each with the reason it was
//! chosen.

use core::time::Duration;

/// At most 64 checks in flight at once. RFC 9113 (§6.5.2) recommends that a
/// peer allow no fewer than 100 concurrent streams per connection; 64 stays
/// below that with room for the connection's other streams (the op-control
/// and invalidation subscriptions, admin calls), so a burst of checks never
/// makes the peer refuse a stream.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;

/// At most 1,024 checks waiting for a slot. One entry is an id and two
/// instants (24 bytes), so the queue stays within a few tens of KiB; a
/// request beyond it is refused at once ([`SlotRefusal::QueueFull`](super::SlotRefusal::QueueFull))
/// rather than held without bound.
pub const DEFAULT_MAX_QUEUED: usize = 1_024;

/// A queued check waits at most 10 s for a slot, then is refused
/// ([`CheckSlotsAction::Expire`](super::CheckSlotsAction::Expire)). A check
/// normally takes milliseconds, so 10 s absorbs any burst that only briefly
/// fills the slots; a queue that does not move for 10 s is stuck behind
/// checks a gateway holds for a human (minutes), and the caller is better
/// served by a prompt, typed refusal it can act on than by an unbounded wait.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

/// The shortest queue timeout (1 ms): a shorter one, zero included, is
/// raised to it, so a queued check's deadline is always after the instant it
/// was queued. (To queue nothing at all, set `max_queued` to 0.)
pub const MIN_QUEUE_TIMEOUT: Duration = Duration::from_millis(1);

/// Parameters of a [`CheckSlots`](super::CheckSlots).
///
/// Out-of-range values are clamped when the machine is built, never rejected
/// with a panic: `max_in_flight` to at least 1 (0 would admit nothing, and
/// every check would wait out its timeout), `queue_timeout` to at least
/// [`MIN_QUEUE_TIMEOUT`]. `max_queued` may be 0: a check that finds every
/// slot in use is then refused at once.
///
/// Built from [`CheckSlotsConfig::default`] and its `with_` methods (fields
/// may be added, so outside this crate it cannot be written as a literal).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckSlotsConfig {
    /// Most checks in flight at once.
    pub max_in_flight: usize,
    /// Most checks waiting for a slot (queue-timeout refusals a driver left
    /// undrained from earlier inputs count against it too).
    pub max_queued: usize,
    /// How long a check may wait for a slot before it is refused.
    pub queue_timeout: Duration,
}

impl Default for CheckSlotsConfig {
    fn default() -> Self {
        CheckSlotsConfig {
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_queued: DEFAULT_MAX_QUEUED,
            queue_timeout: DEFAULT_QUEUE_TIMEOUT,
        }
    }
}

impl CheckSlotsConfig {
    /// The same, with at most `max_in_flight` checks in flight at once.
    pub fn with_max_in_flight(mut self, max_in_flight: usize) -> Self {
        self.max_in_flight = max_in_flight;
        self
    }

    /// The same, with at most `max_queued` checks waiting for a slot.
    pub fn with_max_queued(mut self, max_queued: usize) -> Self {
        self.max_queued = max_queued;
        self
    }

    /// The same, refusing a check that waited `queue_timeout` for a slot.
    pub fn with_queue_timeout(mut self, queue_timeout: Duration) -> Self {
        self.queue_timeout = queue_timeout;
        self
    }

    /// A copy with every field brought into its valid range.
    pub fn clamped(&self) -> Self {
        CheckSlotsConfig {
            max_in_flight: self.max_in_flight.max(1),
            max_queued: self.max_queued,
            queue_timeout: self.queue_timeout.max(MIN_QUEUE_TIMEOUT),
        }
    }
}
