//! The control stream's health as the outage policy sees it: a small state
//! machine of its own, driven by stream up/down inputs and three timers.
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
//! `Outage` and `Settling` also carry the outage's hold budget: the hold
//! timer fires `hold_limit` after the outage began (the grace timer's
//! instant, not when it was handled), once per outage, unless the settle
//! window ends first.
//!
//! Guarantees:
//! - the policy is in force exactly from `down + grace` (evaluated from
//!   `now`, so a check at that instant already follows it) until the stream
//!   has been back for the settle window;
//! - the hold budget is spent exactly from `down + grace + hold_limit`
//!   (evaluated from `now` too) until the policy stops being in force; a
//!   drop while settling continues the same outage and the same budget;
//! - a drop during the settle window continues the outage at once (held
//!   calls are never let go by a stream that came back only briefly);
//! - a drop shorter than the grace period leaves no trace.

use core::time::Duration;

use crate::time::{earliest, Deadline, Timestamp};

use super::outcome::OpControlTimer;

/// The hold budget of the outage in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Budget {
    /// Holding is allowed until this instant (the hold timer).
    Until(Timestamp),
    /// The hold timer fired: nothing is held until the outage ends.
    Spent,
}

impl Budget {
    fn spent_at(self, now: Timestamp) -> bool {
        match self {
            Budget::Until(at) => now >= at,
            Budget::Spent => true,
        }
    }
}

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
    Outage { since: Timestamp, budget: Budget },
    /// Back up after an outage that began with a drop at `since`; the
    /// policy stays in force until `until`.
    Settling {
        since: Timestamp,
        until: Timestamp,
        budget: Budget,
    },
}

/// A transition the driver is told about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LinkEvent {
    OutageStarted { since: Timestamp },
    HoldExpired,
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

    /// Whether, at `now`, the policy is in force and the outage has lasted
    /// `hold_limit` (so `Hold` holds nothing any more).
    pub(crate) fn hold_spent(self, now: Timestamp, hold_limit: Duration) -> bool {
        match self {
            Link::Up => false,
            Link::Down { outage_at, .. } => now >= outage_at.saturating_add(hold_limit),
            Link::Outage { budget, .. } => budget.spent_at(now),
            Link::Settling { until, budget, .. } => now < until && budget.spent_at(now),
        }
    }

    pub(crate) fn deadline(self) -> Option<Deadline<OpControlTimer>> {
        match self {
            Link::Down { outage_at, .. } => {
                Some(Deadline::new(outage_at, OpControlTimer::OutageGrace))
            }
            Link::Outage {
                budget: Budget::Until(at),
                ..
            } => Some(Deadline::new(at, OpControlTimer::HoldLimit)),
            Link::Settling { until, budget, .. } => {
                let settle = Some(Deadline::new(until, OpControlTimer::RestoreSettle));
                let hold = match budget {
                    Budget::Until(at) if at < until => {
                        Some(Deadline::new(at, OpControlTimer::HoldLimit))
                    }
                    _ => None,
                };
                earliest(hold, settle)
            }
            Link::Up
            | Link::Outage {
                budget: Budget::Spent,
                ..
            } => None,
        }
    }

    /// Fire the earliest timer due at `now`, if any (call again until
    /// `None`: several may be due).
    pub(crate) fn on_timeout(&mut self, now: Timestamp, hold_limit: Duration) -> Option<LinkEvent> {
        match *self {
            Link::Down { since, outage_at } if now >= outage_at => {
                *self = Link::Outage {
                    since,
                    budget: Budget::Until(outage_at.saturating_add(hold_limit)),
                };
                Some(LinkEvent::OutageStarted { since })
            }
            Link::Outage {
                since,
                budget: Budget::Until(at),
            } if now >= at => {
                *self = Link::Outage {
                    since,
                    budget: Budget::Spent,
                };
                Some(LinkEvent::HoldExpired)
            }
            Link::Settling {
                since,
                until,
                budget: Budget::Until(at),
            } if at < until && now >= at => {
                *self = Link::Settling {
                    since,
                    until,
                    budget: Budget::Spent,
                };
                Some(LinkEvent::HoldExpired)
            }
            Link::Settling { since, until, .. } if now >= until => {
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
            Link::Settling { since, budget, .. } => *self = Link::Outage { since, budget },
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
            Link::Outage { since, .. } if settle.is_zero() => {
                *self = Link::Up;
                Some(LinkEvent::OutageEnded { since })
            }
            Link::Outage { since, budget } => {
                *self = Link::Settling {
                    since,
                    until: now.saturating_add(settle),
                    budget,
                };
                None
            }
            Link::Up | Link::Settling { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn settling(until: u64, hold_at: u64) -> Link {
        Link::Settling {
            since: t(0),
            until: t(until),
            budget: Budget::Until(t(hold_at)),
        }
    }

    #[test]
    fn the_policy_and_the_spent_budget_lift_exactly_at_the_settle_end() {
        let l = settling(100, 50);
        assert!(l.in_force(t(99)));
        assert!(!l.in_force(t(100)));
        assert!(l.hold_spent(t(99), Duration::ZERO));
        assert!(!l.hold_spent(t(100), Duration::ZERO));
    }

    #[test]
    fn a_hold_timer_at_the_settle_end_never_fires_the_settle_end_does() {
        let mut l = settling(100, 100);
        let d = l.deadline().unwrap();
        assert_eq!((d.at, d.reason), (t(100), OpControlTimer::RestoreSettle));
        assert_eq!(
            l.on_timeout(t(100), Duration::ZERO),
            Some(LinkEvent::OutageEnded { since: t(0) })
        );
        assert_eq!(l, Link::Up);
        // Earlier, the hold timer comes first.
        let l = settling(100, 99);
        let d = l.deadline().unwrap();
        assert_eq!((d.at, d.reason), (t(99), OpControlTimer::HoldLimit));
    }

    #[test]
    fn no_settle_window_ends_the_outage_at_once() {
        let mut l = Link::Outage {
            since: t(5),
            budget: Budget::Spent,
        };
        assert_eq!(
            l.on_up(t(10), Duration::ZERO),
            Some(LinkEvent::OutageEnded { since: t(5) })
        );
        assert_eq!(l, Link::Up);
        let mut l = Link::Outage {
            since: t(5),
            budget: Budget::Spent,
        };
        assert_eq!(l.on_up(t(10), Duration::from_millis(1)), None);
        assert!(matches!(l, Link::Settling { .. }));
    }
}
