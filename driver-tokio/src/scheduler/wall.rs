//! Wall-clock times for what is persisted (run records, last tick, next
//! due), derived from the scheduler's tokio [`Clock`] so that paused test
//! time moves them too.
//!
//! Guarantees: `at(timestamp(t)) == t` for every `t` at or after the
//! scheduler's start; earlier instants map to the start; conversions
//! saturate, never panic.

use std::time::SystemTime;

use tether_core::Timestamp;

use crate::runtime::Clock;

#[derive(Clone, Copy, Debug)]
pub(super) struct Wall {
    pub(super) clock: Clock,
    base: SystemTime,
}

impl Wall {
    pub(super) fn new(clock: Clock) -> Self {
        let now = SystemTime::now();
        let base = now.checked_sub(clock.now().since_origin()).unwrap_or(now);
        Wall { clock, base }
    }

    /// The wall-clock time of a core instant.
    pub(super) fn at(&self, t: Timestamp) -> SystemTime {
        self.base.checked_add(t.since_origin()).unwrap_or(self.base)
    }

    /// The core instant of a wall-clock time (the origin if earlier).
    pub(super) fn timestamp(&self, t: SystemTime) -> Timestamp {
        t.duration_since(self.base)
            .map_or(Timestamp::ZERO, |d| Timestamp::ZERO + d)
    }
}
