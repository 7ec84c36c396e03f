//! Tick-schedule parameters and their defaults, each with the reason it was
//! chosen.

use core::time::Duration;

/// At most 100,000 jobs (removed jobs whose tick is still running included).
/// A job costs under two hundred bytes plus its id (held twice: the id map
/// and the job's slot), so the bound is around 20 MiB: far above a realistic schedule (tens to thousands of jobs), low
/// enough that a runaway upsert loop is refused instead of exhausting memory.
pub const DEFAULT_MAX_JOBS: usize = 100_000;

/// The largest `max_jobs` a config is clamped to: the schedule numbers its
/// jobs' slots with `u32`, one value kept as "no slot".
pub const MAX_JOBS_LIMIT: usize = u32::MAX as usize - 1;

/// First failure delay: 1 s (DESIGN.md: 1 s, 2 s, 4 s, 8 s, 16 s, then 30 s).
/// A job that failed once is retried soon, but not in a busy loop.
pub const DEFAULT_FAILURE_BASE: Duration = Duration::from_secs(1);

/// Failure delays double up to 30 s (DESIGN.md): a failing dependency is not
/// hammered, and a recovered one is used again within half a minute.
pub const DEFAULT_FAILURE_MAX: Duration = Duration::from_secs(30);

/// A tick that has not reported after 10 minutes is given up, as a failure.
/// Without a limit, one lost result (a crashed task, a dropped message) would
/// stop the job for good; with a short one, a slow but live tick would be
/// overlapped by the next. Ten minutes is far beyond a periodic job's normal
/// run; a job that legitimately runs longer needs a larger value (or `None`).
pub const DEFAULT_RUN_TIMEOUT: Option<Duration> = Some(Duration::from_secs(600));

/// Wake-up instants are rounded up to whole milliseconds by default: a job
/// anchored at a nanosecond `now` would otherwise get an instant of its own,
/// so 100,000 jobs registered one after another would be 100,000 timer
/// buckets; on millisecond instants jobs on a 1 s grid share at most 1,000,
/// and a slot, a retry or a timeout runs at most 1 ms after the exact one.
pub const DEFAULT_TIMER_GRANULARITY: Duration = Duration::from_millis(1);

/// The coarsest timer granularity a config is clamped to: 1 s. Coarser
/// rounding would delay retries and timeouts by more than they are worth
/// (and a granularity near `u64::MAX` nanoseconds would push every instant
/// to "never").
pub const MAX_TIMER_GRANULARITY: Duration = Duration::from_secs(1);

/// Missed ticks are skipped by default (DESIGN.md): after a late wake-up the
/// job runs once, not once per missed slot, and stays on its grid.
pub const DEFAULT_MISSED: MissedTicks = MissedTicks::Skip;

/// The smallest failure delay or run timeout (1 ms), so no deadline can
/// equal the instant that armed it (no busy loop).
pub const MIN_DELAY: Duration = Duration::from_millis(1);

/// What a job does about grid slots that passed while it could not run (a
/// late wake-up, a tick that outlasted its interval, a backoff).
///
/// In both policies a job runs at most once for all the slots it missed, and
/// never twice at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MissedTicks {
    /// Keep the grid `anchor + k × interval`. Woken at `now` past its due
    /// slot, the job runs once, with `scheduled_for` = the latest slot
    /// `<= now`; every earlier missed slot is skipped (counted in
    /// `stats().skipped`), and the next run is due at the first slot strictly
    /// after `now`. The schedule never drifts.
    #[default]
    Skip,
    /// Re-anchor at the late instant: woken at `now` past its due slot, the
    /// job runs once with `scheduled_for = now`, and the grid becomes
    /// `now + k × interval` (the next run is due at `now + interval`).
    Delay,
}

/// Parameters of a [`TickSchedule`](super::TickSchedule).
///
/// Out-of-range values are clamped when the machine is built, never rejected
/// with a panic: `failure_base` and a configured `run_timeout` to at least
/// [`MIN_DELAY`], `failure_max` to at least `failure_base`,
/// `timer_granularity` to at most [`MAX_TIMER_GRANULARITY`], `max_jobs` to
/// at most [`MAX_JOBS_LIMIT`].
///
/// Built from [`TickConfig::default`] and its `with_` methods (fields may
/// be added, so outside this crate it cannot be written as a literal):
///
/// ```
/// use core::time::Duration;
/// use tether_core::tick::{MissedTicks, TickConfig};
///
/// let cfg = TickConfig::default()
///     .with_max_jobs(10)
///     .with_run_timeout(Some(Duration::from_secs(5)))
///     .with_missed(MissedTicks::Delay);
/// assert_eq!(cfg.max_jobs, 10);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TickConfig {
    /// Most jobs held (removed jobs whose tick is still running included).
    pub max_jobs: usize,
    /// Delay after the first consecutive failure.
    pub failure_base: Duration,
    /// Cap of the doubling failure delay.
    pub failure_max: Duration,
    /// A tick with no result after this long is given up (as a failure);
    /// `None`: never.
    pub run_timeout: Option<Duration>,
    /// What to do about missed grid slots.
    pub missed: MissedTicks,
    /// Every instant the schedule derives (a grid's anchor, so each of its
    /// slots when the interval is a multiple; a retry; a run's timeout) is
    /// rounded up to a multiple of this, so jobs share timer buckets.
    /// Zero: exact instants.
    pub timer_granularity: Duration,
}

impl Default for TickConfig {
    fn default() -> Self {
        TickConfig {
            max_jobs: DEFAULT_MAX_JOBS,
            failure_base: DEFAULT_FAILURE_BASE,
            failure_max: DEFAULT_FAILURE_MAX,
            run_timeout: DEFAULT_RUN_TIMEOUT,
            missed: DEFAULT_MISSED,
            timer_granularity: DEFAULT_TIMER_GRANULARITY,
        }
    }
}

impl TickConfig {
    /// The same, holding at most `max_jobs` jobs.
    pub fn with_max_jobs(mut self, max_jobs: usize) -> Self {
        self.max_jobs = max_jobs;
        self
    }

    /// The same, backing off from `base` after the first consecutive
    /// failure, doubling up to `max`.
    pub fn with_failure_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.failure_base = base;
        self.failure_max = max;
        self
    }

    /// The same, giving a tick up after `run_timeout` (`None`: never).
    pub fn with_run_timeout(mut self, run_timeout: Option<Duration>) -> Self {
        self.run_timeout = run_timeout;
        self
    }

    /// The same, with `missed` as the missed-tick policy.
    pub fn with_missed(mut self, missed: MissedTicks) -> Self {
        self.missed = missed;
        self
    }

    /// The same, rounding derived instants up to `granularity`.
    pub fn with_timer_granularity(mut self, granularity: Duration) -> Self {
        self.timer_granularity = granularity;
        self
    }

    /// A copy with every field brought into its valid range.
    pub fn clamped(&self) -> Self {
        let failure_base = self.failure_base.max(MIN_DELAY);
        TickConfig {
            max_jobs: self.max_jobs.min(MAX_JOBS_LIMIT),
            failure_base,
            failure_max: self.failure_max.max(failure_base),
            run_timeout: self.run_timeout.map(|d| d.max(MIN_DELAY)),
            missed: self.missed,
            timer_granularity: self.timer_granularity.min(MAX_TIMER_GRANULARITY),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_set_exactly_their_field() {
        let (a, b, c) = (
            Duration::from_millis(3),
            Duration::from_millis(40),
            Duration::from_millis(7),
        );
        let cfg = TickConfig::default()
            .with_max_jobs(5)
            .with_failure_backoff(a, b)
            .with_run_timeout(None)
            .with_missed(MissedTicks::Delay)
            .with_timer_granularity(c);
        let want = TickConfig {
            max_jobs: 5,
            failure_base: a,
            failure_max: b,
            run_timeout: None,
            missed: MissedTicks::Delay,
            timer_granularity: c,
        };
        assert_eq!(cfg, want);
        assert_eq!(cfg.clamped(), want, "in range: unchanged");
    }

    #[test]
    fn clamping_brings_each_field_into_range() {
        let cfg = TickConfig::default()
            .with_failure_backoff(Duration::ZERO, Duration::ZERO)
            .with_run_timeout(Some(Duration::ZERO))
            .with_timer_granularity(Duration::from_secs(5))
            .clamped();
        assert_eq!(cfg.failure_base, MIN_DELAY);
        assert_eq!(cfg.failure_max, MIN_DELAY);
        assert_eq!(cfg.run_timeout, Some(MIN_DELAY));
        assert_eq!(cfg.timer_granularity, MAX_TIMER_GRANULARITY);
        let cfg = TickConfig::default()
            .with_failure_backoff(Duration::from_secs(2), Duration::from_secs(1))
            .clamped();
        assert_eq!(cfg.failure_max, Duration::from_secs(2));
        let cfg = TickConfig::default().with_max_jobs(usize::MAX).clamped();
        assert_eq!(cfg.max_jobs, MAX_JOBS_LIMIT);
    }
}
