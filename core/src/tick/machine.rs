//! The tick schedule: which periodic job runs when, with one timer structure
//! for all jobs.
//!
//! Guarantees: see the module docs of [`crate::tick`]. In short, at most one
//! tick per job at a time, results of old versions ignored, failures backed
//! off, a drift-free grid, missed slots skipped, a bounded job count.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use core::time::Duration;

use super::config::{MissedTicks, TickConfig};
use super::grid::{failure_delay, slot_after, slot_at_or_before};
use super::stats::{add, Counters, TickStats};
use super::types::{
    JobSpec, JobStatus, Outcome, RunReason, RunToken, StaleRun, TickAction, TickError, TickNow,
    TickTimer, Version,
};
use crate::machine::Machine;
use crate::time::{Deadline, Timestamp};

/// A job's current version and schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Live {
    version: Version,
    interval: Duration,
    enabled: bool,
    anchor: Timestamp,
    /// The next grid slot not yet served.
    due: Timestamp,
    failures: u32,
    retry_at: Option<Timestamp>,
    /// A manual tick waits for the running one.
    queued: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    token: RunToken,
    version: Version,
    give_up_at: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Job {
    /// `None`: removed, kept only while its tick runs.
    live: Option<Live>,
    running: Option<Run>,
    /// The job's one entry in the timer set, and why.
    timer: Option<(Timestamp, TickTimer)>,
}

/// When the job wants to be woken, given its state.
fn desired(job: &Job) -> Option<(Timestamp, TickTimer)> {
    if let Some(run) = &job.running {
        return run.give_up_at.map(|t| (t, TickTimer::RunTimeout));
    }
    let live = job.live.as_ref()?;
    if !live.enabled {
        return None;
    }
    Some(match live.retry_at {
        Some(r) => (r, TickTimer::Retry),
        None => (live.due, TickTimer::Due),
    })
}

/// Mark every grid slot `<= now` as served (without running it).
fn serve(live: &mut Live, missed: MissedTicks, now: Timestamp) {
    if live.due > now {
        return;
    }
    match missed {
        MissedTicks::Skip => live.due = slot_after(live.anchor, live.interval, now),
        MissedTicks::Delay => {
            live.anchor = now;
            live.due = now.saturating_add(live.interval);
        }
    }
}

/// Periodic jobs as a sans-IO machine: one ordered set of `(due, job)` serves
/// every job, so `poll_timeout` is one lookup whatever the job count.
///
/// `J` is the job id (any `Ord + Clone`, e.g. `String`).
///
/// ```
/// use core::time::Duration;
/// use tether_core::tick::{JobSpec, Outcome, RunReason, TickAction, TickConfig, TickSchedule};
/// use tether_core::{Machine, Timestamp};
///
/// let mut s: TickSchedule<&str> = TickSchedule::new(TickConfig::default());
/// let t0 = Timestamp::ZERO;
/// s.upsert(t0, "sweep", JobSpec::every(Duration::from_secs(10))).unwrap();
/// let due = s.poll_timeout().unwrap().at;
/// assert_eq!(due, Timestamp::from_secs(10));
/// s.handle_timeout(due);
/// let Some(TickAction::RunTick { run, scheduled_for, reason, .. }) = s.poll_action() else { panic!() };
/// assert_eq!((scheduled_for, reason), (due, RunReason::Scheduled));
/// s.on_tick_finished(due, run, Outcome::Failure).unwrap();
/// assert_eq!(s.poll_timeout().unwrap().at, Timestamp::from_secs(11)); // backs off 1 s
/// assert!(s.on_tick_finished(due, run, Outcome::Success).is_err()); // duplicate
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TickSchedule<J> {
    config: TickConfig,
    jobs: BTreeMap<J, Job>,
    runs: BTreeMap<RunToken, J>,
    timers: BTreeSet<(Timestamp, J)>,
    live_jobs: usize,
    next_version: u64,
    next_run: u64,
    actions: VecDeque<TickAction<J>>,
    pub(crate) counters: Counters,
}

impl<J: Ord + Clone> TickSchedule<J> {
    /// An empty schedule with `config` (clamped into range).
    pub fn new(config: TickConfig) -> Self {
        TickSchedule {
            config: config.clamped(),
            jobs: BTreeMap::new(),
            runs: BTreeMap::new(),
            timers: BTreeSet::new(),
            live_jobs: 0,
            next_version: 1,
            next_run: 1,
            actions: VecDeque::new(),
            counters: Counters::default(),
        }
    }

    /// The effective (clamped) configuration.
    pub fn config(&self) -> &TickConfig {
        &self.config
    }

    /// Add `job`, or replace its schedule; its new version.
    ///
    /// The grid is `spec.first_at` (or `now + interval` for the first slot,
    /// anchored at `now`) plus multiples of the interval; the failure count
    /// resets and a queued manual tick is dropped. A tick of the job still
    /// running keeps the job busy: the new version's first tick starts only
    /// after it finishes (its result is then ignored) or is given up.
    ///
    /// Errors (nothing changed): [`TickError::ZeroInterval`];
    /// [`TickError::TooManyJobs`] when `job` is new and `max_jobs` are held.
    pub fn upsert(&mut self, now: Timestamp, job: J, spec: JobSpec) -> Result<Version, TickError> {
        if spec.interval.is_zero() {
            return Err(TickError::ZeroInterval);
        }
        if !self.jobs.contains_key(&job) && self.jobs.len() >= self.config.max_jobs {
            return Err(TickError::TooManyJobs);
        }
        let version = Version(self.next_version);
        self.next_version = self.next_version.saturating_add(1);
        let (anchor, due) = match spec.first_at {
            Some(t) => (t, t),
            None => (now, now.saturating_add(spec.interval)),
        };
        let entry = self.jobs.entry(job.clone()).or_insert(Job {
            live: None,
            running: None,
            timer: None,
        });
        if entry.live.is_none() {
            self.live_jobs += 1;
        }
        entry.live = Some(Live {
            version,
            interval: spec.interval,
            enabled: spec.enabled,
            anchor,
            due,
            failures: 0,
            retry_at: None,
            queued: false,
        });
        self.set_timer(&job);
        self.settle(now);
        Ok(version)
    }

    /// Remove `job`. A tick of it still running finishes unhindered (its
    /// result is then ignored); until then the job id stays busy, so a
    /// re-added job does not overlap it, and it counts toward `max_jobs`.
    pub fn remove(&mut self, job: &J) -> Result<(), TickError> {
        let entry = self.jobs.get_mut(job).ok_or(TickError::UnknownJob)?;
        if entry.live.take().is_none() {
            return Err(TickError::UnknownJob);
        }
        self.live_jobs = self.live_jobs.saturating_sub(1);
        if entry.running.is_none() {
            self.drop_job(job);
        } else {
            self.set_timer(job);
        }
        Ok(())
    }

    /// Enable or disable `job`. Disabling drops a queued manual tick (a
    /// running tick finishes unhindered). Enabling resets the failure count
    /// and rejoins the grid: slots that passed while disabled are not run
    /// (under [`MissedTicks::Delay`] the grid is re-anchored at `now`).
    pub fn set_enabled(&mut self, now: Timestamp, job: &J, enabled: bool) -> Result<(), TickError> {
        let missed = self.config.missed;
        let live = self
            .jobs
            .get_mut(job)
            .and_then(|j| j.live.as_mut())
            .ok_or(TickError::UnknownJob)?;
        if live.enabled == enabled {
            return Ok(());
        }
        live.enabled = enabled;
        if enabled {
            live.failures = 0;
            live.retry_at = None;
            serve(live, missed, now);
        } else {
            live.queued = false;
        }
        self.set_timer(job);
        self.settle(now);
        Ok(())
    }

    /// Run `job` now, outside its grid (the grid is unchanged; grid slots
    /// that passed are served by this run). If a tick of it is running, one
    /// manual run follows it instead, however many calls arrive meanwhile.
    pub fn tick_now(&mut self, now: Timestamp, job: &J) -> Result<TickNow, TickError> {
        let entry = self.jobs.get_mut(job).ok_or(TickError::UnknownJob)?;
        let busy = entry.running.is_some();
        let live = entry.live.as_mut().ok_or(TickError::UnknownJob)?;
        if !live.enabled {
            return Err(TickError::Disabled);
        }
        if busy {
            if live.queued {
                add(&mut self.counters.coalesced, 1);
            }
            live.queued = true;
            return Ok(TickNow::Coalesced);
        }
        let token = self.start_run(now, job, RunReason::Manual, now);
        self.settle(now);
        Ok(TickNow::Started(token))
    }

    /// The tick `run` ended with `outcome`.
    ///
    /// A success resets the failure count and returns the job to its grid (a
    /// slot that passed during the tick runs at once, once). A failure
    /// schedules a retry after `failure_base × 2^(failures − 1)`, capped at
    /// `failure_max`; a manual tick queued behind it runs at once instead.
    ///
    /// Errors: [`StaleRun::Unknown`] (nothing changed);
    /// [`StaleRun::OldVersion`] (the outcome is ignored, the job is free).
    pub fn on_tick_finished(
        &mut self,
        now: Timestamp,
        run: RunToken,
        outcome: Outcome,
    ) -> Result<(), StaleRun> {
        let Some(job) = self.runs.get(&run).cloned() else {
            add(&mut self.counters.stale, 1);
            return Err(StaleRun::Unknown);
        };
        let Some(entry) = self.jobs.get_mut(&job) else {
            add(&mut self.counters.stale, 1);
            return Err(StaleRun::Unknown);
        };
        let r = match entry.running {
            Some(r) if r.token == run => r,
            _ => {
                add(&mut self.counters.stale, 1);
                return Err(StaleRun::Unknown);
            }
        };
        entry.running = None;
        self.runs.remove(&run);
        let current = entry.live.as_ref().map(|l| l.version);
        let result = match entry.live.as_mut() {
            Some(live) if live.version == r.version => {
                match outcome {
                    Outcome::Success => {
                        live.failures = 0;
                        live.retry_at = None;
                        add(&mut self.counters.successes, 1);
                    }
                    Outcome::Failure => {
                        Self::fail(&self.config, &mut self.counters, live, now);
                    }
                }
                Ok(())
            }
            _ => {
                add(&mut self.counters.stale, 1);
                Err(StaleRun::OldVersion {
                    run: r.version,
                    current,
                })
            }
        };
        self.after_run(now, &job);
        self.settle(now);
        result
    }

    /// The status of `job`; `None` if unknown or removed.
    pub fn job(&self, job: &J) -> Option<JobStatus> {
        let entry = self.jobs.get(job)?;
        let live = entry.live.as_ref()?;
        Some(JobStatus {
            version: live.version,
            enabled: live.enabled,
            interval: live.interval,
            anchor: live.anchor,
            next_due: live.due,
            failures: live.failures,
            retry_at: live.retry_at,
            running: entry.running.map(|r| (r.token, r.version)),
            queued: live.queued,
        })
    }

    /// The job a running tick belongs to.
    pub fn job_of(&self, run: RunToken) -> Option<&J> {
        self.runs.get(&run)
    }

    /// Gauges and counters.
    pub fn stats(&self) -> TickStats {
        let c = self.counters;
        TickStats {
            jobs: self.live_jobs,
            detached: self.jobs.len().saturating_sub(self.live_jobs),
            running: self.runs.len(),
            runs: c.runs,
            successes: c.successes,
            failures: c.failures,
            timeouts: c.timeouts,
            stale: c.stale,
            skipped: c.skipped,
            coalesced: c.coalesced,
        }
    }

    // ---- internals ----------------------------------------------------

    fn fail(config: &TickConfig, counters: &mut Counters, live: &mut Live, now: Timestamp) {
        live.failures = live.failures.saturating_add(1);
        let d = failure_delay(config.failure_base, config.failure_max, live.failures);
        live.retry_at = Some(now.saturating_add(d));
        add(&mut counters.failures, 1);
    }

    fn drop_job(&mut self, job: &J) {
        if let Some(entry) = self.jobs.remove(job) {
            if let Some((at, _)) = entry.timer {
                self.timers.remove(&(at, job.clone()));
            }
        }
    }

    /// Put the job's one timer entry where its state wants it.
    fn set_timer(&mut self, job: &J) {
        let Some(entry) = self.jobs.get_mut(job) else {
            return;
        };
        if let Some((at, _)) = entry.timer.take() {
            self.timers.remove(&(at, job.clone()));
        }
        // `Timestamp::MAX` means "never" (a slot past the end of time).
        if let Some((at, why)) = desired(entry).filter(|(at, _)| *at != Timestamp::MAX) {
            entry.timer = Some((at, why));
            self.timers.insert((at, job.clone()));
        }
    }

    /// Start a tick of `job` (which must be live and idle); its token.
    fn start_run(
        &mut self,
        now: Timestamp,
        job: &J,
        reason: RunReason,
        scheduled_for: Timestamp,
    ) -> RunToken {
        let token = RunToken(self.next_run);
        self.next_run = self.next_run.saturating_add(1);
        let give_up_at = self
            .config
            .run_timeout
            .map(|d| now.saturating_add(d))
            .filter(|t| *t != Timestamp::MAX);
        let missed = self.config.missed;
        let Some(entry) = self.jobs.get_mut(job) else {
            return token;
        };
        let Some(live) = entry.live.as_mut() else {
            return token;
        };
        serve(live, missed, now);
        live.retry_at = None;
        live.queued = false;
        let version = live.version;
        entry.running = Some(Run {
            token,
            version,
            give_up_at,
        });
        self.runs.insert(token, job.clone());
        add(&mut self.counters.runs, 1);
        self.actions.push_back(TickAction::RunTick {
            job: job.clone(),
            version,
            run: token,
            scheduled_for,
            reason,
        });
        self.set_timer(job);
        token
    }

    /// A grid slot of `job` is due at `now`: run it once for every slot
    /// missed (see [`MissedTicks`]).
    fn start_scheduled(&mut self, now: Timestamp, job: &J) {
        let missed = self.config.missed;
        let Some(live) = self.jobs.get_mut(job).and_then(|e| e.live.as_mut()) else {
            return;
        };
        let scheduled_for = match missed {
            MissedTicks::Skip => {
                let slot = slot_at_or_before(live.anchor, live.interval, now).unwrap_or(live.due);
                let skipped = slot.saturating_duration_since(live.due).as_nanos()
                    / live.interval.as_nanos().max(1);
                add(
                    &mut self.counters.skipped,
                    u64::try_from(skipped).unwrap_or(u64::MAX),
                );
                slot
            }
            MissedTicks::Delay => now,
        };
        self.start_run(now, job, RunReason::Scheduled, scheduled_for);
    }

    /// The running tick of `job` ended (finished or given up).
    fn after_run(&mut self, now: Timestamp, job: &J) {
        let Some(entry) = self.jobs.get(job) else {
            return;
        };
        match &entry.live {
            None => self.drop_job(job),
            Some(live) if live.queued && live.enabled => {
                self.start_run(now, job, RunReason::Manual, now);
            }
            Some(_) => self.set_timer(job),
        }
    }

    fn give_up(&mut self, now: Timestamp, job: &J) {
        let Some(entry) = self.jobs.get_mut(job) else {
            return;
        };
        let Some(run) = entry.running.take() else {
            return;
        };
        self.runs.remove(&run.token);
        add(&mut self.counters.timeouts, 1);
        self.actions.push_back(TickAction::GiveUp {
            job: job.clone(),
            version: run.version,
            run: run.token,
        });
        if let Some(live) = entry.live.as_mut() {
            if live.version == run.version {
                Self::fail(&self.config, &mut self.counters, live, now);
            }
        }
        self.after_run(now, job);
    }

    /// Fire whatever of `job` is due at `now`.
    fn fire(&mut self, now: Timestamp, job: &J) {
        let Some(entry) = self.jobs.get(job) else {
            return;
        };
        match desired(entry) {
            Some((at, TickTimer::RunTimeout)) if at <= now => self.give_up(now, job),
            Some((at, TickTimer::Retry)) if at <= now => {
                self.start_run(now, job, RunReason::Retry, at);
            }
            Some((at, TickTimer::Due)) if at <= now => self.start_scheduled(now, job),
            _ => self.set_timer(job),
        }
    }

    /// Fire everything due at or before `now`.
    fn settle(&mut self, now: Timestamp) {
        while let Some((at, job)) = self.timers.first().cloned() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, job.clone()));
            if let Some(entry) = self.jobs.get_mut(&job) {
                entry.timer = None;
            }
            self.fire(now, &job);
        }
    }
}

impl<J: Ord + Clone> Machine for TickSchedule<J> {
    type Action = TickAction<J>;
    type TimerReason = TickTimer;

    fn poll_action(&mut self) -> Option<TickAction<J>> {
        self.actions.pop_front()
    }

    fn poll_timeout(&self) -> Option<Deadline<TickTimer>> {
        let (at, job) = self.timers.first()?;
        let why = self
            .jobs
            .get(job)
            .and_then(|e| e.timer)
            .map_or(TickTimer::Due, |(_, why)| why);
        Some(Deadline::new(*at, why))
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        self.settle(now);
    }
}
