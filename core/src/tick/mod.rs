//! The tick schedule: many periodic jobs in one timer structure, at most one
//! tick of a job at a time, failures backed off, no drift.
//!
//! Guarantees (named invariants, checked after every step by
//! `testkit::tick`, `tests/prop_tick.rs` and the `tick` fuzz target):
//! - `TICK_NEVER_OVERLAP`: a job has at most one tick running. A due slot or
//!   a `tick_now` during a running tick coalesces into one run after it; a
//!   job updated or removed during a tick stays busy until that tick
//!   finishes or is given up after `run_timeout` (no double tick on a hot
//!   swap);
//! - `TICK_RUNS_CURRENT_VERSION`: every tick started belongs to the job's
//!   current version;
//! - `TICK_STALE_CHANGES_NOTHING`: a result with an unknown or already
//!   reported token changes nothing; a result of an old version (the job was
//!   updated or removed meanwhile) leaves the current version's failure count,
//!   retry and grid untouched (it only frees the job to run its new version);
//!   both are typed errors ([`StaleRun`]);
//! - `TICK_FAILURE_BACKOFF`: after `k` consecutive failures the job retries
//!   `failure_base × 2^(k − 1)` after the failure, capped at `failure_max`
//!   (at the defaults 1 s, 2 s, 4 s, 8 s, 16 s, then 30 s), the instant
//!   rounded up to `timer_granularity` like every instant the schedule
//!   derives (1 ms by default); a tick given up after `run_timeout` counts
//!   as a failure;
//! - `TICK_SUCCESS_RESETS`: a success resets the failure count and returns
//!   the job to its grid;
//! - `TICK_NO_DRIFT`: a scheduled run's `scheduled_for` is a slot of the
//!   job's grid `anchor + k × interval`; the next slot is computed from the
//!   anchor, never from when a tick finished, so late wake-ups and slow ticks
//!   do not shift the grid (under [`MissedTicks::Skip`]);
//! - `TICK_MISSED_SKIPPED`: after a late wake-up a job runs once, for the
//!   latest slot `<= now` (`Skip`), or re-anchors at `now` (`Delay`); never
//!   once per missed slot;
//! - `TICK_GIVE_UP_REPORTED`: every tick given up after `run_timeout` is
//!   reported with a [`TickAction::GiveUp`] (so the driver can stop it
//!   before the job's next tick starts), and only such a tick is;
//! - `TICK_JOBS_BOUNDED`: at most `max_jobs` jobs are held (removed jobs whose
//!   tick still runs included); an upsert of a new job at the bound is
//!   refused ([`TickError::TooManyJobs`]) and nothing changes;
//! - `TICK_ZERO_INTERVAL_REFUSED`: a zero interval (a busy loop) is refused
//!   ([`TickError::ZeroInterval`]) and nothing changes;
//! - `TICK_FINISH_STATUS`: [`TickSchedule::finish_tick`] reports the job's
//!   status as [`TickSchedule::job`] gives it right after the result
//!   (`None` for an unknown run or a removed job);
//! - `TICK_NEVER_STALLS`: every job that is enabled and idle (its next slot
//!   or retry), and every running tick with a timeout, has its wake-up in the
//!   timer set, so the reported deadline is never later than any of them.
//!
//! One timer structure holds every job's single next wake-up (its due slot,
//! its retry, or its running tick's timeout): jobs sit in a slab, and the
//! wake-ups are grouped into one bucket per distinct instant, kept in
//! instant order; instants are rounded up to `timer_granularity` (1 ms by
//! default) so that jobs registered a few nanoseconds apart share one. There is no timer per job, `poll_timeout` is one lookup
//! (the first bucket: exactly the earliest deadline), and arming or firing a
//! wake-up is list work in the slab plus a lookup among the distinct
//! instants, which periodic jobs on shared grids keep few.

mod config;
mod grid;
mod machine;
mod stats;
mod types;

pub use config::{
    MissedTicks, TickConfig, DEFAULT_FAILURE_BASE, DEFAULT_FAILURE_MAX, DEFAULT_MAX_JOBS,
    DEFAULT_MISSED, DEFAULT_RUN_TIMEOUT, DEFAULT_TIMER_GRANULARITY, MAX_JOBS_LIMIT,
    MAX_TIMER_GRANULARITY, MIN_DELAY,
};
pub use machine::TickSchedule;
pub use stats::TickStats;
pub use types::{
    JobSpec, JobStatus, RunReason, RunToken, StaleRun, TickAction, TickError, TickNow, TickOutcome,
    TickTimer, Version,
};
