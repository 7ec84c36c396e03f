//! The values a [`CheckSlots`](super::CheckSlots) exchanges with its driver:
//! slot ids, admission answers, actions, timer reasons and counters.

use core::fmt;

use crate::time::Timestamp;

/// One admitted or queued check, as returned by
/// [`CheckSlots::on_request`](super::CheckSlots::on_request). Opaque: ids
/// come from a counter, are issued in increasing order and are not reused
/// (a repeat would take 2^64 requests), so a late release of an old id never
/// touches a newer check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SlotId(pub(crate) u64);

impl SlotId {
    /// The id as a number, unique for the machine's lifetime (for logs and
    /// maps in the driver).
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// The answer to [`CheckSlots::on_request`](super::CheckSlots::on_request).
#[must_use = "an admitted or queued check holds its place until released or cancelled"]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// A slot was free: the check may start now. Release it with
    /// [`on_release`](super::CheckSlots::on_release) when it ends.
    Admitted(SlotId),
    /// Every slot is in use: the check waits in the queue until
    /// [`CheckSlotsAction::Admit`] (it may start) or
    /// [`CheckSlotsAction::Expire`] (refused) names it. Cancel it with
    /// [`on_cancel`](super::CheckSlots::on_cancel) if its caller gives up.
    Queued(SlotId),
    /// Every slot is in use and the queue is full: the check is refused now,
    /// and the machine holds nothing for it.
    Refused(SlotRefusal),
}

/// Why a check was refused at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlotRefusal {
    /// Every slot is in use and `max_queued` checks are held against the
    /// queue bound.
    QueueFull {
        /// Checks waiting in the queue when it was refused: `max_queued`,
        /// less any queue-timeout refusals left undrained by earlier inputs
        /// (those count against the bound too).
        queued: usize,
    },
}

impl fmt::Display for SlotRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlotRefusal::QueueFull { queued } => {
                write!(
                    f,
                    "every check slot is in use and the queue is full ({queued} waiting)"
                )
            }
        }
    }
}

/// What the check-slot machine asks its driver to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckSlotsAction {
    /// The queued check `id` now holds a slot: let it start. Release it
    /// when it ends.
    Admit(SlotId),
    /// The queued check `id` waited `queue_timeout` without a slot: it is
    /// refused, and the machine holds nothing for it any more.
    Expire(SlotId),
}

impl CheckSlotsAction {
    /// The check this action is for.
    pub const fn id(self) -> SlotId {
        match self {
            CheckSlotsAction::Admit(id) | CheckSlotsAction::Expire(id) => id,
        }
    }
}

/// Why the check-slot machine wants to be woken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckSlotsTimer {
    /// The check at the head of the queue reaches its queue timeout.
    QueueTimeout,
}

/// Where one check stands, as seen by [`CheckSlots::slot`](super::CheckSlots::slot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotState {
    /// It holds a slot (admitted at once, or by an [`CheckSlotsAction::Admit`],
    /// drained or not).
    InFlight,
    /// It waits in the queue.
    Queued {
        /// When it is refused if no slot frees before.
        expires_at: Timestamp,
    },
}

/// Gauges and counters of a [`CheckSlots`](super::CheckSlots), for status
/// and metrics. Counters saturate, never overflow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlotStats {
    /// Checks holding a slot now.
    pub in_flight: usize,
    /// Checks waiting in the queue now.
    pub queued: usize,
    /// Checks given a slot, at once or from the queue.
    pub admitted_total: u64,
    /// Requests answered [`Admission::Queued`].
    pub queued_total: u64,
    /// Queued checks refused by their queue timeout.
    pub expired_total: u64,
    /// Requests answered [`Admission::Refused`].
    pub refused_total: u64,
    /// The effective (clamped) `max_in_flight`.
    pub max_in_flight: usize,
    /// The effective `max_queued`.
    pub max_queued: usize,
}
