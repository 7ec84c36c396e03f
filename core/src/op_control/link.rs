//! The control stream's health as the outage policy sees it: a small state
//! machine of its own, driven by stream up/down inputs and two timers.
//!
//! ```text
//!          down                grace timer              up (settle > 0)
//!   Up ──────────▶ Down ─────────────────▶ Outage ─────────────────▶ Settling
//!    ▲              │ up                    │ up (settle = 0)          │ │
//!    └──────────────┴───────────────────────┴──────── settle timer ◀───┘ │
//!                                          ▲         down                 │
//!                                          └──────────────────────────────┘
//! ```
//!
//! Guarantees:
//! - the policy is in force exactly from `down + grace` (evaluated from
//!   `now`, so a check at that instant already follows it) until the stream
//!   has been back for the settle window;
//! - a drop during the settle window continues the outage at once (held
//!   calls are never let go by a stream that came back only briefly);
//! - a drop shorter than the grace period leaves no trace.

use core::time::Duration;

use crate::time::{Deadline, Timestamp};

use super::outcome::OpControlTimer;

/// Where the stream is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Link {
    /// Up, no outage.
    Up,
    /// Down since `since`; the outage starts at `outage_at`.
    Down {
        since: Timestamp,
        outage_at: Timestamp,
    },
    /// Down past the grace period (since `since`).
    Outage { since: Timestamp },
    /// Back up after an outage that began with a drop at `since`; the
    /// policy stays in force until `until`.
    Settling { since: Timestamp, until: Timestamp },
}

/// A transition the driver is told about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LinkEvent {
    OutageStarted { since: Timestamp },
    OutageEnded { since: Timestamp },
}

impl Link {
    /// Down since `now`, the outage due at `now + grace`.
    pub(crate) fn down_at(now: Timestamp, grace: Duration) -> Link {
        Link::Down {
            since: now,
            outage_at: now.saturating_add(grace),
        }
    }

    pub(crate) fn is_up(self) -> bool {
        matches!(self, Link::Up | Link::Settling { .. })
    }

    /// Whether the outage policy governs a check on a running op at `now`.
    pub(crate) fn in_force(self, now: Timestamp) -> bool {
        match self {
            Link::Up => false,
            Link::Down { outage_at, .. } => now >= outage_at,
            Link::Outage { .. } => true,
            Link::Settling { until, .. } => now < until,
        }
    }

    pub(crate) fn deadline(self) -> Option<Deadline<OpControlTimer>> {
        match self {
            Link::Down { outage_at, .. } => {
                Some(Deadline::new(outage_at, OpControlTimer::OutageGrace))
            }
            Link::Settling { until, .. } => {
                Some(Deadline::new(until, OpControlTimer::RestoreSettle))
            }
            Link::Up | Link::Outage { .. } => None,
        }
    }

    /// Fire the timer due at `now`, if any.
    pub(crate) fn on_timeout(&mut self, now: Timestamp) -> Option<LinkEvent> {
        match *self {
            Link::Down { since, outage_at } if now >= outage_at => {
                *self = Link::Outage { since };
                Some(LinkEvent::OutageStarted { since })
            }
            Link::Settling { since, until } if now >= until => {
                *self = Link::Up;
                Some(LinkEvent::OutageEnded { since })
            }
            _ => None,
        }
    }

    /// The stream went down. Due timers must have been fired first.
    pub(crate) fn on_down(&mut self, now: Timestamp, grace: Duration) {
        match *self {
            Link::Up => *self = Link::down_at(now, grace),
            Link::Settling { since, .. } => *self = Link::Outage { since },
            Link::Down { .. } | Link::Outage { .. } => {}
        }
    }

    /// The stream is up. Due timers must have been fired first.
    pub(crate) fn on_up(&mut self, now: Timestamp, settle: Duration) -> Option<LinkEvent> {
        match *self {
            Link::Down { .. } => {
                *self = Link::Up;
                None
            }
            Link::Outage { since } if settle.is_zero() => {
                *self = Link::Up;
                Some(LinkEvent::OutageEnded { since })
            }
            Link::Outage { since } => {
                *self = Link::Settling {
                    since,
                    until: now.saturating_add(settle),
                };
                None
            }
            Link::Up | Link::Settling { .. } => None,
        }
    }
}
