//! The values a [`TickSchedule`](super::TickSchedule) exchanges with its
//! driver: versions, run tokens, specs, actions, timer reasons, errors and
//! status views.

use core::fmt;
use core::time::Duration;

use crate::time::Timestamp;

/// A job's schedule version. Every [`upsert`](super::TickSchedule::upsert)
/// returns a new one (unique across the whole schedule, increasing); a
/// result from a run of an older version is ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub(crate) u64);

impl Version {
    /// The version's number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// Identifies one run of a job. Every [`TickAction::RunTick`] carries a
/// fresh token; its result names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunToken(pub(crate) u64);

impl RunToken {
    /// The token's number (unique per schedule, increasing).
    pub const fn get(self) -> u64 {
        self.0
    }

    /// A token from a raw number, e.g. one read back from a log. A token the
    /// schedule does not track is refused as [`StaleRun::Unknown`].
    pub const fn from_raw(raw: u64) -> Self {
        RunToken(raw)
    }
}

/// How a job is scheduled. Built with [`JobSpec::every`] and its `with`
/// methods (more fields may come).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobSpec {
    /// Time between grid slots. Zero is refused ([`TickError::ZeroInterval`]).
    pub interval: Duration,
    /// A disabled job keeps its grid but never runs (not even by `tick_now`).
    pub enabled: bool,
    /// The grid's anchor and first due slot. `None`: anchored at the upsert's
    /// `now`, first due one interval later. A past instant is a late
    /// wake-up: the job is due at once (see [`MissedTicks`](super::MissedTicks)).
    pub first_at: Option<Timestamp>,
}

impl JobSpec {
    /// An enabled job every `interval`, first due one interval from now.
    pub const fn every(interval: Duration) -> Self {
        JobSpec {
            interval,
            enabled: true,
            first_at: None,
        }
    }

    /// The same, anchored (and first due) at `at`.
    pub const fn first_at(self, at: Timestamp) -> Self {
        JobSpec {
            first_at: Some(at),
            ..self
        }
    }

    /// The same, enabled or not.
    pub const fn enabled(self, enabled: bool) -> Self {
        JobSpec { enabled, ..self }
    }
}

/// Why a tick runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunReason {
    /// A grid slot is due; `scheduled_for` is that slot.
    Scheduled,
    /// [`tick_now`](super::TickSchedule::tick_now); `scheduled_for` is when it
    /// was asked (or, if coalesced behind a running tick, when that finished).
    Manual,
    /// A retry after a failure; `scheduled_for` is the retry instant.
    Retry,
}

/// How a tick ended, as its driver reports it to
/// [`on_tick_finished`](super::TickSchedule::on_tick_finished).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TickOutcome {
    /// It succeeded: the failure count resets and the job returns to its grid.
    Success,
    /// It failed (a timeout the driver observed included): the job backs off.
    Failure,
}

/// What the schedule asks its driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TickAction<J> {
    /// Run one tick of `job` and report it with
    /// [`on_tick_finished`](super::TickSchedule::on_tick_finished)`(run, ..)`.
    RunTick {
        /// The job.
        job: J,
        /// The job's version this run belongs to.
        version: Version,
        /// Names this run in its result.
        run: RunToken,
        /// The grid slot (scheduled), the request instant (manual) or the
        /// retry instant (retry).
        scheduled_for: Timestamp,
        /// Why it runs.
        reason: RunReason,
    },
    /// The running tick `run` of `job` reached `run_timeout` and was given up
    /// (counted as a failure of its version, if current). Stop it: the job
    /// is no longer busy, so its next tick may start, and a late result for
    /// `run` is refused ([`StaleRun::Unknown`]).
    GiveUp {
        /// The job.
        job: J,
        /// The version the run belonged to.
        version: Version,
        /// The run given up.
        run: RunToken,
    },
}

/// Why the schedule wants to be woken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TickTimer {
    /// A job's grid slot is due.
    Due,
    /// A failed job's retry is due.
    Retry,
    /// A running tick reaches `run_timeout`.
    RunTimeout,
}

/// What became of a [`tick_now`](super::TickSchedule::tick_now).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TickNow {
    /// A run started (drain [`poll_action`](crate::Machine::poll_action)).
    Started(RunToken),
    /// A tick of the job is running: one run follows it (however many
    /// `tick_now` and due slots arrive meanwhile).
    Coalesced,
}

/// A schedule operation that was refused; nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TickError {
    /// The interval is zero (it would be a busy loop).
    ZeroInterval,
    /// The schedule holds `max_jobs` jobs already.
    TooManyJobs,
    /// No such job (or it was removed).
    UnknownJob,
    /// The job is disabled.
    Disabled,
}

impl fmt::Display for TickError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TickError::ZeroInterval => "zero interval",
            TickError::TooManyJobs => "too many jobs",
            TickError::UnknownJob => "unknown job",
            TickError::Disabled => "job disabled",
        })
    }
}

impl core::error::Error for TickError {}

/// A tick result whose outcome was ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StaleRun {
    /// The token was never issued, already reported, or given up after
    /// `run_timeout`. Nothing changed.
    Unknown,
    /// The run belongs to an old version (the job was updated or removed
    /// while it ran). Its outcome is ignored: the current version's failure
    /// count and schedule are untouched. The only effect is that the job is
    /// no longer busy, so the current version's tick may start.
    OldVersion {
        /// The version the run belonged to.
        run: Version,
        /// The job's current version (`None`: removed).
        current: Option<Version>,
    },
}

impl fmt::Display for StaleRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StaleRun::Unknown => f.write_str("unknown or already reported run"),
            StaleRun::OldVersion { run, current } => {
                write!(f, "run of version {} (current: {current:?})", run.0)
            }
        }
    }
}

impl core::error::Error for StaleRun {}

/// A job as seen by [`TickSchedule::job`](super::TickSchedule::job).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobStatus {
    /// The current version.
    pub version: Version,
    /// Whether it is enabled.
    pub enabled: bool,
    /// Its interval.
    pub interval: Duration,
    /// Its grid's anchor (slots are `anchor + k × interval`).
    pub anchor: Timestamp,
    /// Its next grid slot (ignored while a retry is pending).
    pub next_due: Timestamp,
    /// Consecutive failures.
    pub failures: u32,
    /// When its retry is due, after a failure.
    pub retry_at: Option<Timestamp>,
    /// The running tick, if any, and the version it belongs to (possibly an
    /// older one).
    pub running: Option<(RunToken, Version)>,
    /// Whether a manual tick waits for the running one.
    pub queued: bool,
}

#[cfg(test)]
mod tests {
    use alloc::string::ToString;

    use super::*;

    #[test]
    fn numbers_and_messages() {
        assert_eq!(Version(7).get(), 7);
        assert_eq!(RunToken::from_raw(9).get(), 9);
        assert_eq!(RunToken::from_raw(9), RunToken(9));
        assert_eq!(TickError::ZeroInterval.to_string(), "zero interval");
        assert_eq!(TickError::TooManyJobs.to_string(), "too many jobs");
        assert_eq!(TickError::UnknownJob.to_string(), "unknown job");
        assert_eq!(TickError::Disabled.to_string(), "job disabled");
        assert_eq!(
            StaleRun::Unknown.to_string(),
            "unknown or already reported run"
        );
        let old = StaleRun::OldVersion {
            run: Version(2),
            current: Some(Version(3)),
        };
        assert_eq!(
            old.to_string(),
            "run of version 2 (current: Some(Version(3)))"
        );
    }

    #[test]
    fn spec_builders_set_their_field() {
        let d = Duration::from_secs(5);
        let at = Timestamp::from_secs(3);
        let s = JobSpec::every(d);
        assert_eq!((s.interval, s.enabled, s.first_at), (d, true, None));
        assert_eq!(s.first_at(at).first_at, Some(at));
        assert!(!s.enabled(false).enabled);
        assert_eq!(s.enabled(false).first_at(at).interval, d);
    }
}
