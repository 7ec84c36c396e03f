//! Tick-schedule parameters and their defaults, each with the reason it was
//! chosen.

use core::time::Duration;

/// At most 100,000 jobs (removed jobs whose tick is still running included).
/// A job costs under two hundred bytes plus its id (held twice: the id map
/// and the job's slot), so the bound is around 20 MiB: far above a realistic schedule (tens to thousands of jobs), low
/// enough that a runaway upsert loop is refused instead of exhausting memory.
pub const DEFAULT_MAX_JOBS: usize = 100_000;

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
/// [`MIN_DELAY`], `failure_max` to at least `failure_base`.
#[derive(Clone, Debug, PartialEq, Eq)]
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
}

impl Default for TickConfig {
    fn default() -> Self {
        TickConfig {
            max_jobs: DEFAULT_MAX_JOBS,
            failure_base: DEFAULT_FAILURE_BASE,
            failure_max: DEFAULT_FAILURE_MAX,
            run_timeout: DEFAULT_RUN_TIMEOUT,
            missed: DEFAULT_MISSED,
        }
    }
}

impl TickConfig {
    /// A copy with every field brought into its valid range.
    pub fn clamped(&self) -> Self {
        let failure_base = self.failure_base.max(MIN_DELAY);
        TickConfig {
            max_jobs: self.max_jobs,
            failure_base,
            failure_max: self.failure_max.max(failure_base),
            run_timeout: self.run_timeout.map(|d| d.max(MIN_DELAY)),
            missed: self.missed,
        }
    }
}
