//! Time as the core sees it: a monotonic [`Timestamp`] from an arbitrary
//! origin, and a [`Deadline`] that pairs an instant with the reason a machine
//! wants to be woken.
//!
//! Guarantees: every arithmetic operation saturates (no overflow, no panic),
//! so a fuzzer or a simulator can build any instant, including the extremes.
//! Durations are [`core::time::Duration`].

use core::fmt;
use core::ops::{Add, Sub};
use core::time::Duration;

/// A monotonic instant, in nanoseconds since an arbitrary origin chosen by
/// the driver (process start, a simulation's zero, a fuzzer's choice).
///
/// Arithmetic saturates at `0` and at `u64::MAX` nanoseconds (about 584
/// years), so no input can make it overflow.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "testkit", derive(arbitrary::Arbitrary))]
pub struct Timestamp(u64);

impl Timestamp {
    /// The origin.
    pub const ZERO: Timestamp = Timestamp(0);
    /// The latest representable instant.
    pub const MAX: Timestamp = Timestamp(u64::MAX);

    /// An instant `nanos` nanoseconds after the origin.
    pub const fn from_nanos(nanos: u64) -> Self {
        Timestamp(nanos)
    }

    /// An instant `millis` milliseconds after the origin (saturating).
    pub const fn from_millis(millis: u64) -> Self {
        Timestamp(millis.saturating_mul(1_000_000))
    }

    /// An instant `secs` seconds after the origin (saturating).
    pub const fn from_secs(secs: u64) -> Self {
        Timestamp(secs.saturating_mul(1_000_000_000))
    }

    /// Nanoseconds since the origin.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// The duration since the origin.
    pub const fn since_origin(self) -> Duration {
        Duration::from_nanos(self.0)
    }

    /// `self + d`, saturating at [`Timestamp::MAX`].
    pub fn saturating_add(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_add(duration_nanos(d)))
    }

    /// `self - d`, saturating at [`Timestamp::ZERO`].
    pub fn saturating_sub(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_sub(duration_nanos(d)))
    }

    /// How long after `earlier` this instant is; zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

/// A [`Duration`] in whole nanoseconds, saturating at `u64::MAX`.
pub fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        self.saturating_add(d)
    }
}

impl Sub<Duration> for Timestamp {
    type Output = Timestamp;
    fn sub(self, d: Duration) -> Timestamp {
        self.saturating_sub(d)
    }
}

impl Sub<Timestamp> for Timestamp {
    type Output = Duration;
    fn sub(self, earlier: Timestamp) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0 / 1_000_000_000;
        let nanos = self.0 % 1_000_000_000;
        write!(f, "t+{secs}.{nanos:09}s")
    }
}

/// When a machine wants `handle_timeout` to be called, and why.
///
/// The reason is informational (logs, spans, tests): `handle_timeout` fires
/// everything that is due regardless of which reason was reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline<R> {
    /// The instant at which something becomes due.
    pub at: Timestamp,
    /// What becomes due then.
    pub reason: R,
}

impl<R> Deadline<R> {
    /// A deadline at `at` for `reason`.
    pub const fn new(at: Timestamp, reason: R) -> Self {
        Deadline { at, reason }
    }
}

/// The earlier of two optional deadlines (the first one wins a tie).
pub fn earliest<R>(a: Option<Deadline<R>>, b: Option<Deadline<R>>) -> Option<Deadline<R>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.at < a.at { b } else { a }),
        (a, None) => a,
        (None, b) => b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_at_both_ends() {
        assert_eq!(Timestamp::MAX + Duration::from_secs(1), Timestamp::MAX);
        assert_eq!(Timestamp::ZERO - Duration::from_secs(1), Timestamp::ZERO);
        assert_eq!(Timestamp::ZERO - Timestamp::MAX, Duration::ZERO);
        assert_eq!(Timestamp::ZERO + Duration::MAX, Timestamp::MAX);
        assert_eq!(
            Timestamp::from_secs(3) - Timestamp::from_secs(1),
            Duration::from_secs(2)
        );
        assert_eq!(Timestamp::from_secs(u64::MAX), Timestamp::MAX);
    }

    #[test]
    fn earliest_picks_the_sooner_deadline() {
        let a = Some(Deadline::new(Timestamp::from_secs(2), 'a'));
        let b = Some(Deadline::new(Timestamp::from_secs(1), 'b'));
        assert_eq!(earliest(a, b).unwrap().reason, 'b');
        assert_eq!(earliest(a, None).unwrap().reason, 'a');
        assert_eq!(earliest(None, b).unwrap().reason, 'b');
        assert!(earliest::<char>(None, None).is_none());
    }
}
