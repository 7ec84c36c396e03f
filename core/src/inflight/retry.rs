//! The retry delay of a failed drive: `base × 2^(failures − 1)`, capped,
//! optionally jittered.

use core::time::Duration;

use super::config::MIN_DELAY;
use crate::rng::Prng;
use crate::time::duration_nanos;

/// The un-jittered delay after `failures` consecutive failures (from 1):
/// `base`, `2 × base`, `4 × base`, … up to `max`. Saturates, never panics;
/// `failures == 0` is treated as 1.
pub fn retry_delay(base: Duration, max: Duration, failures: u32) -> Duration {
    let shift = failures.saturating_sub(1).min(63);
    let nanos = duration_nanos(base).saturating_mul(1u64 << shift);
    Duration::from_nanos(nanos).min(max)
}

/// `delay` jittered by ±`jitter` (no draw when `jitter` is 0), never below
/// [`MIN_DELAY`].
pub(crate) fn jittered(delay: Duration, jitter: f64, rng: &mut Prng) -> Duration {
    if jitter <= 0.0 {
        return delay.max(MIN_DELAY);
    }
    let u = rng.next_f64();
    let factor = 1.0 + jitter * (2.0 * u - 1.0);
    // `as` from f64 saturates and maps NaN to 0.
    let nanos = (delay.as_nanos() as f64 * factor) as u64;
    Duration::from_nanos(nanos).max(MIN_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_and_saturates() {
        let s = Duration::from_secs;
        let d: alloc::vec::Vec<u64> = (1..=8)
            .map(|f| retry_delay(s(1), s(30), f).as_secs())
            .collect();
        assert_eq!(d, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(retry_delay(s(1), s(30), 0), s(1));
        assert_eq!(retry_delay(s(1), s(30), u32::MAX), s(30));
        assert_eq!(
            retry_delay(Duration::MAX, Duration::MAX, 70),
            Duration::from_nanos(u64::MAX)
        );
    }

    #[test]
    fn jitter_stays_in_range() {
        let mut r = Prng::new(9);
        for _ in 0..1000 {
            let d = jittered(Duration::from_secs(10), 0.2, &mut r);
            assert!(d >= Duration::from_secs(8) && d < Duration::from_secs(12));
        }
        assert_eq!(jittered(Duration::ZERO, 0.0, &mut r), MIN_DELAY);
        assert!(jittered(Duration::from_secs(1), 1.0, &mut r) >= MIN_DELAY);
    }
}
