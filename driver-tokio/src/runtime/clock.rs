//! Maps tokio's monotonic clock (which tests can pause and advance) onto the
//! core's [`Timestamp`], from an origin fixed when the clock is made.

use std::time::Duration;

use tether_core::time::duration_nanos;
use tether_core::Timestamp;
use tokio::time::Instant;

/// A tokio-time clock with a fixed origin. Cheap to copy.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Clock {
            origin: Instant::now(),
        }
    }

    /// The current instant as a core timestamp.
    pub fn now(&self) -> Timestamp {
        self.timestamp(Instant::now())
    }

    /// A tokio instant as a core timestamp (instants before the origin map
    /// to the origin).
    pub fn timestamp(&self, at: Instant) -> Timestamp {
        Timestamp::from_nanos(duration_nanos(at.saturating_duration_since(self.origin)))
    }

    /// A core timestamp as a tokio instant (saturating to a far future).
    pub fn instant(&self, at: Timestamp) -> Instant {
        self.origin
            .checked_add(at.since_origin())
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365 * 30))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn follows_paused_tokio_time() {
        let clock = Clock::new();
        let t0 = clock.now();
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert_eq!(clock.now() - t0, Duration::from_millis(1500));
        let later = clock.instant(Timestamp::from_secs(5));
        assert_eq!(clock.timestamp(later), Timestamp::from_secs(5));
    }
}
