//! Grid arithmetic (slots `anchor + k × interval`) and the failure delay.
//! Everything saturates: a slot past the end of time is `Timestamp::MAX`,
//! which the schedule treats as "never".

use core::time::Duration;

use crate::time::{duration_nanos, Timestamp};

/// The latest slot `anchor + k × interval` (k ≥ 0) at or before `t`; `None`
/// when `t < anchor` or `interval` is zero.
pub(crate) fn slot_at_or_before(
    anchor: Timestamp,
    interval: Duration,
    t: Timestamp,
) -> Option<Timestamp> {
    let iv = duration_nanos(interval);
    if iv == 0 || t < anchor {
        return None;
    }
    let since = t.as_nanos() - anchor.as_nanos();
    Some(Timestamp::from_nanos(anchor.as_nanos() + since / iv * iv))
}

/// The first slot `anchor + k × interval` (k ≥ 0) strictly after `t`
/// (`anchor` itself when `t < anchor`), saturating at `Timestamp::MAX`.
pub(crate) fn slot_after(anchor: Timestamp, interval: Duration, t: Timestamp) -> Timestamp {
    let iv = duration_nanos(interval).max(1);
    if t < anchor {
        return anchor;
    }
    let k = (t.as_nanos() - anchor.as_nanos()) / iv + 1;
    let at = u128::from(anchor.as_nanos()) + u128::from(k) * u128::from(iv);
    Timestamp::from_nanos(u64::try_from(at).unwrap_or(u64::MAX))
}

/// `t` rounded up to the next multiple of `granularity` (counted from
/// [`Timestamp::ZERO`]), saturating at `Timestamp::MAX`; `t` itself when
/// `granularity` is zero or `t` is already a multiple.
pub(crate) fn align_up(t: Timestamp, granularity: Duration) -> Timestamp {
    let g = duration_nanos(granularity);
    if g <= 1 {
        return t;
    }
    let rem = t.as_nanos() % g;
    if rem == 0 {
        return t;
    }
    Timestamp::from_nanos(t.as_nanos().saturating_add(g - rem))
}

/// The delay after `failures` consecutive failures (from 1): `base`,
/// `2 × base`, `4 × base`, … up to `max`. Saturates; `0` is treated as 1.
pub(crate) fn failure_delay(base: Duration, max: Duration, failures: u32) -> Duration {
    let shift = failures.saturating_sub(1).min(63);
    Duration::from_nanos(duration_nanos(base).saturating_mul(1u64 << shift)).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Timestamp = Timestamp::from_secs;
    const D: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn slots() {
        assert_eq!(slot_at_or_before(S(10), D(5), S(9)), None);
        assert_eq!(slot_at_or_before(S(10), D(5), S(10)), Some(S(10)));
        assert_eq!(slot_at_or_before(S(10), D(5), S(24)), Some(S(20)));
        assert_eq!(slot_at_or_before(S(10), Duration::ZERO, S(24)), None);
        assert_eq!(slot_after(S(10), D(5), S(3)), S(10));
        assert_eq!(slot_after(S(10), D(5), S(10)), S(15));
        assert_eq!(slot_after(S(10), D(5), S(24)), S(25));
        assert_eq!(slot_after(S(10), D(5), S(25)), S(30));
        assert_eq!(
            slot_after(Timestamp::MAX, D(5), Timestamp::MAX),
            Timestamp::MAX
        );
        assert_eq!(slot_after(S(0), Duration::MAX, S(1)), Timestamp::MAX);
    }

    #[test]
    fn failure_delays_double_to_the_cap() {
        let d: alloc::vec::Vec<u64> = (1..=8)
            .map(|f| failure_delay(D(1), D(30), f).as_secs())
            .collect();
        assert_eq!(d, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(failure_delay(D(1), D(30), u32::MAX), D(30));
    }
}
