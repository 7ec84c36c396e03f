//! Input sequences for the tick schedule and its invariant checker.
//!
//! The [`Harness`] keeps its own model of the jobs (versions, grids,
//! failures) and of the running ticks, and checks every named invariant of
//! [`crate::tick`] after every step.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::vec::Vec;
use core::time::Duration;

use super::contract::{drain, timeout_checked};
use super::Violation;
use crate::ensure_invariant;
use crate::machine::Machine;
use crate::tick::{
    JobSpec, MissedTicks, RunReason, RunToken, StaleRun, TickAction, TickConfig, TickError,
    TickNow, TickOutcome, TickSchedule, Version,
};
use crate::time::Timestamp;

/// Jobs are `0..JOBS`: a small space so that inputs collide.
pub const JOBS: u8 = 4;

pub use super::Tok;

/// One input to the tick schedule.
#[derive(Clone, Copy, Debug, arbitrary::Arbitrary)]
pub enum Op {
    /// Advance time by this many milliseconds (then fire due timers).
    Advance(u32),
    /// Jump to the next reported deadline and fire it.
    Wake,
    /// Add or update a job (modulo [`JOBS`]); `interval_ms` 0 must be
    /// refused; `first_at_ms` is relative to now (negative: in the past).
    Upsert {
        /// The job.
        job: u8,
        /// Its interval in milliseconds.
        interval_ms: u16,
        /// Whether it is enabled.
        enabled: bool,
        /// Its first slot, relative to now, if any.
        first_at_ms: Option<i16>,
    },
    /// Remove a job.
    Remove(u8),
    /// Enable or disable a job.
    SetEnabled(u8, bool),
    /// Tick a job now.
    TickNow(u8),
    /// Report a tick's result.
    Finish {
        /// The run.
        tok: Tok,
        /// Success or failure.
        success: bool,
    },
}

/// The model's own reading of a [`TickConfig`]: the documented clamps
/// (`failure_base` and a `run_timeout` at least 1 ms, `failure_max` at
/// least `failure_base`, `timer_granularity` at most 1 s, `max_jobs` below
/// `u32::MAX`), computed here
/// rather than taken from the machine.
#[derive(Clone, Copy, Debug)]
struct Model {
    max_jobs: usize,
    base_ns: u128,
    max_ns: u128,
    run_timeout_ns: Option<u128>,
    missed: MissedTicks,
    granularity_ns: u128,
}

const MS_NS: u128 = 1_000_000;
const NEVER: u128 = u64::MAX as u128;

impl Model {
    fn of(c: &TickConfig) -> Self {
        let base_ns = c.failure_base.as_nanos().max(MS_NS);
        Model {
            max_jobs: c.max_jobs.min(u32::MAX as usize - 1),
            base_ns,
            max_ns: c.failure_max.as_nanos().max(base_ns),
            run_timeout_ns: c.run_timeout.map(|d| d.as_nanos().max(MS_NS)),
            missed: c.missed,
            granularity_ns: c.timer_granularity.as_nanos().min(1_000 * MS_NS),
        }
    }

    /// `ns` rounded up to a multiple of the granularity, capped at the end
    /// of time.
    fn round_up(&self, ns: u128) -> Timestamp {
        let g = self.granularity_ns.max(1);
        let up = ns.div_ceil(g) * g;
        Timestamp::from_nanos(u64::try_from(up.min(NEVER)).unwrap_or(u64::MAX))
    }

    /// The retry instant after the `failures`-th consecutive failure at
    /// `now`: `base`, doubled per earlier failure, capped at `max`.
    fn retry_at(&self, now: Timestamp, failures: u32) -> Timestamp {
        let mut delay = self.base_ns;
        for _ in 1..failures {
            if delay >= self.max_ns {
                break;
            }
            delay *= 2;
        }
        self.round_up(u128::from(now.as_nanos()) + delay.min(self.max_ns))
    }

    /// When a tick started at `now` is given up (`None`: never).
    fn give_up_at(&self, now: Timestamp) -> Option<Timestamp> {
        let t = self.round_up(u128::from(now.as_nanos()) + self.run_timeout_ns?);
        (t != Timestamp::MAX).then_some(t)
    }
}

/// Whether `t` is `anchor + k × interval` for some `k >= 0`.
fn on_grid(anchor: Timestamp, interval: Duration, t: Timestamp) -> bool {
    let iv = interval.as_nanos();
    t >= anchor && iv > 0 && u128::from(t.as_nanos() - anchor.as_nanos()) % iv == 0
}

#[derive(Clone, Copy, Debug)]
struct ModelJob {
    version: Version,
    interval: Duration,
    anchor: Timestamp,
    enabled: bool,
    failures: u32,
    retry_at: Option<Timestamp>,
    last_scheduled: Option<Timestamp>,
}

#[derive(Clone, Copy, Debug)]
struct ModelRun {
    job: u8,
    version: Version,
    give_up_at: Option<Timestamp>,
}

/// Drives a [`TickSchedule`] with [`Op`]s and checks every invariant after
/// each.
#[derive(Debug)]
pub struct Harness {
    /// The machine under test.
    pub machine: TickSchedule<u8>,
    /// Simulated now.
    pub now: Timestamp,
    /// Every action, with the instant it was drained.
    pub log: Vec<(Timestamp, TickAction<u8>)>,
    model: Model,
    jobs: BTreeMap<u8, ModelJob>,
    runs: BTreeMap<RunToken, ModelRun>,
    old: Vec<RunToken>,
    highest_run: Option<RunToken>,
    highest_version: Option<Version>,
}

impl Harness {
    /// An empty schedule with `config`.
    pub fn new(config: TickConfig) -> Self {
        Harness {
            model: Model::of(&config),
            machine: TickSchedule::new(config),
            now: Timestamp::ZERO,
            log: Vec::new(),
            jobs: BTreeMap::new(),
            runs: BTreeMap::new(),
            old: Vec::new(),
            highest_run: None,
            highest_version: None,
        }
    }

    /// Apply one input and check every invariant.
    pub fn apply(&mut self, op: Op) -> Result<(), Violation> {
        match op {
            Op::Advance(ms) => self.advance_to(self.now + Duration::from_millis(u64::from(ms)))?,
            Op::Wake => {
                let to = self.machine.poll_timeout().map_or(self.now, |d| d.at);
                self.advance_to(self.now.max(to))?;
            }
            Op::Upsert {
                job,
                interval_ms,
                enabled,
                first_at_ms,
            } => {
                let first_at = first_at_ms.map(|ms| {
                    let d = Duration::from_millis(u64::from(ms.unsigned_abs()));
                    if ms < 0 {
                        self.now - d
                    } else {
                        self.now + d
                    }
                });
                let spec = JobSpec {
                    interval: Duration::from_millis(u64::from(interval_ms)),
                    enabled,
                    first_at,
                };
                self.upsert(job % JOBS, spec)?;
            }
            Op::Remove(job) => self.remove(job % JOBS)?,
            Op::SetEnabled(job, on) => self.set_enabled(job % JOBS, on)?,
            Op::TickNow(job) => self.tick_now(job % JOBS)?,
            Op::Finish { tok, success } => {
                let outcome = if success {
                    TickOutcome::Success
                } else {
                    TickOutcome::Failure
                };
                self.finish(self.resolve(tok), outcome)?;
            }
        }
        self.check_state()
    }

    // ---- inputs -------------------------------------------------------

    fn advance_to(&mut self, now: Timestamp) -> Result<(), Violation> {
        self.now = now;
        let given_up: BTreeSet<RunToken> = self
            .runs
            .iter()
            .filter(|(_, r)| r.give_up_at.is_some_and(|t| t <= now))
            .map(|(t, _)| *t)
            .collect();
        let mut failed = Vec::new();
        for t in given_up.iter().copied() {
            let Some(r) = self.runs.remove(&t) else {
                continue;
            };
            self.retire(t);
            if let Some(j) = self.jobs.get_mut(&r.job) {
                if j.version == r.version {
                    failed.push(r.job);
                }
            }
        }
        for job in &failed {
            self.model_failure(*job);
        }
        let fired = timeout_checked(&mut self.machine, now)?;
        let reported: BTreeSet<RunToken> = fired
            .iter()
            .filter_map(|a| match a {
                TickAction::GiveUp { run, .. } => Some(*run),
                TickAction::RunTick { .. } => None,
            })
            .collect();
        ensure_invariant!(
            reported == given_up,
            "TICK_GIVE_UP_REPORTED",
            "runs given up at {now:?}: {given_up:?}, reported {reported:?}"
        );
        self.observe(&fired)?;
        for job in failed {
            self.check_failure(job)?;
        }
        Ok(())
    }

    fn upsert(&mut self, job: u8, spec: JobSpec) -> Result<(), Violation> {
        let held: BTreeSet<u8> = self
            .jobs
            .keys()
            .copied()
            .chain(self.runs.values().map(|r| r.job))
            .collect();
        let max = self.model.max_jobs;
        let expect = if spec.interval.is_zero() {
            Err(TickError::ZeroInterval)
        } else if !held.contains(&job) && held.len() >= max {
            Err(TickError::TooManyJobs)
        } else {
            Ok(())
        };
        let before = self.machine.clone();
        let got = self.machine.upsert(self.now, job, spec);
        let acts = drain(&mut self.machine)?;
        match (expect, got) {
            (Err(e), Err(g)) if e == g => {
                let inv = match e {
                    TickError::ZeroInterval => "TICK_ZERO_INTERVAL_REFUSED",
                    _ => "TICK_JOBS_BOUNDED",
                };
                ensure_invariant!(
                    acts.is_empty() && self.machine == before,
                    inv,
                    "a refused upsert ({e:?}) changed the schedule"
                );
                Ok(())
            }
            (Ok(()), Ok(version)) => {
                ensure_invariant!(
                    self.highest_version.is_none_or(|h| version > h),
                    "TICK_RUNS_CURRENT_VERSION",
                    "upsert returned {version:?}, not above {:?}",
                    self.highest_version
                );
                self.highest_version = Some(version);
                self.jobs.insert(
                    job,
                    ModelJob {
                        version,
                        interval: spec.interval,
                        anchor: self
                            .model
                            .round_up(u128::from(spec.first_at.unwrap_or(self.now).as_nanos())),
                        enabled: spec.enabled,
                        failures: 0,
                        retry_at: None,
                        last_scheduled: None,
                    },
                );
                self.observe(&acts)
            }
            (e, g) => Err(Violation::new(
                if spec.interval.is_zero() {
                    "TICK_ZERO_INTERVAL_REFUSED"
                } else {
                    "TICK_JOBS_BOUNDED"
                },
                format!(
                    "upsert of job {job} ({} held): expected {e:?}, got {g:?}",
                    held.len()
                ),
            )),
        }
    }

    fn remove(&mut self, job: u8) -> Result<(), Violation> {
        let expect = if self.jobs.contains_key(&job) {
            Ok(())
        } else {
            Err(TickError::UnknownJob)
        };
        let before = self.machine.clone();
        let got = self.machine.remove(&job);
        let acts = drain(&mut self.machine)?;
        ensure_invariant!(
            got == expect && acts.is_empty(),
            "TICK_STALE_CHANGES_NOTHING",
            "remove({job}): expected {expect:?}, got {got:?}"
        );
        if got.is_err() {
            ensure_invariant!(
                self.machine == before,
                "TICK_STALE_CHANGES_NOTHING",
                "a refused remove changed the schedule"
            );
        }
        self.jobs.remove(&job);
        Ok(())
    }

    fn set_enabled(&mut self, job: u8, on: bool) -> Result<(), Violation> {
        let expect = if self.jobs.contains_key(&job) {
            Ok(())
        } else {
            Err(TickError::UnknownJob)
        };
        let before = self.machine.clone();
        let got = self.machine.set_enabled(self.now, &job, on);
        let acts = drain(&mut self.machine)?;
        ensure_invariant!(
            got == expect,
            "TICK_STALE_CHANGES_NOTHING",
            "set_enabled({job}, {on}): expected {expect:?}, got {got:?}"
        );
        if got.is_err() {
            ensure_invariant!(
                acts.is_empty() && self.machine == before,
                "TICK_STALE_CHANGES_NOTHING",
                "a refused set_enabled changed the schedule"
            );
            return Ok(());
        }
        if let Some(j) = self.jobs.get_mut(&job) {
            if on && !j.enabled {
                j.failures = 0;
                j.retry_at = None;
            }
            j.enabled = on;
        }
        ensure_invariant!(
            acts.is_empty(),
            "TICK_MISSED_SKIPPED",
            "set_enabled({job}, {on}) started {} tick(s)",
            acts.len()
        );
        Ok(())
    }

    fn tick_now(&mut self, job: u8) -> Result<(), Violation> {
        let running = self.runs.values().any(|r| r.job == job);
        let expect = match self.jobs.get(&job) {
            None => Err(TickError::UnknownJob),
            Some(j) if !j.enabled => Err(TickError::Disabled),
            Some(_) => Ok(running),
        };
        let before = self.machine.clone();
        let got = self.machine.tick_now(self.now, &job);
        let acts = drain(&mut self.machine)?;
        match (expect, got) {
            (Err(e), Err(g)) if e == g => {
                ensure_invariant!(
                    acts.is_empty() && self.machine == before,
                    "TICK_STALE_CHANGES_NOTHING",
                    "a refused tick_now changed the schedule"
                );
                Ok(())
            }
            (Ok(true), Ok(TickNow::Coalesced)) => {
                ensure_invariant!(
                    acts.is_empty(),
                    "TICK_NEVER_OVERLAP",
                    "tick_now during a running tick started one"
                );
                Ok(())
            }
            (Ok(false), Ok(TickNow::Started(t))) => {
                ensure_invariant!(
                    matches!(acts.first(), Some(TickAction::RunTick { run, reason: RunReason::Manual, .. }) if *run == t),
                    "TICK_NEVER_OVERLAP",
                    "tick_now started {t:?} but emitted {acts:?}"
                );
                self.observe(&acts)
            }
            (e, g) => Err(Violation::new(
                "TICK_NEVER_OVERLAP",
                format!("tick_now({job}): expected {e:?}, got {g:?}"),
            )),
        }
    }

    fn resolve(&self, tok: Tok) -> RunToken {
        match tok {
            Tok::Live(i) if !self.runs.is_empty() => {
                let i = usize::from(i) % self.runs.len();
                self.runs
                    .keys()
                    .nth(i)
                    .copied()
                    .unwrap_or(RunToken::from_raw(0))
            }
            Tok::Old(i) if !self.old.is_empty() => self.old[usize::from(i) % self.old.len()],
            Tok::Live(i) | Tok::Old(i) => RunToken::from_raw(u64::from(i)),
            Tok::MadeUp(x) => RunToken::from_raw(x),
        }
    }

    fn finish(&mut self, t: RunToken, outcome: TickOutcome) -> Result<(), Violation> {
        let expect = match self.runs.get(&t) {
            None => Err(StaleRun::Unknown),
            Some(r) => match self.jobs.get(&r.job) {
                Some(j) if j.version == r.version => Ok(r.job),
                j => Err(StaleRun::OldVersion {
                    run: r.version,
                    current: j.map(|j| j.version),
                }),
            },
        };
        let before = self.machine.clone();
        let run_job = self.runs.get(&t).map(|r| r.job);
        let (got, status) = self.machine.finish_tick(self.now, t, outcome);
        let want = match (&got, run_job) {
            (Err(StaleRun::Unknown), _) | (_, None) => None,
            (_, Some(j)) => self.machine.job(&j),
        };
        ensure_invariant!(
            status == want,
            "TICK_FINISH_STATUS",
            "finish_tick reported {status:?}, job() says {want:?}"
        );
        let acts = drain(&mut self.machine)?;
        match (expect, got) {
            (Err(StaleRun::Unknown), Err(StaleRun::Unknown)) => {
                let mut expect = before;
                expect.counters.stale += 1;
                ensure_invariant!(
                    acts.is_empty() && self.machine == expect,
                    "TICK_STALE_CHANGES_NOTHING",
                    "an unknown result changed the schedule"
                );
                Ok(())
            }
            (Err(e @ StaleRun::OldVersion { .. }), Err(g)) if e == g => {
                let job = self.runs.get(&t).map(|r| r.job);
                self.runs.remove(&t);
                self.retire(t);
                let (b, a) = (before.stats(), self.machine.stats());
                ensure_invariant!(
                    a.successes == b.successes
                        && a.failures == b.failures
                        && a.stale == b.stale + 1,
                    "TICK_STALE_CHANGES_NOTHING",
                    "an old version's outcome was counted: {b:?} -> {a:?}"
                );
                if let Some(job) = job {
                    let (pb, pa) = (before.job(&job), self.machine.job(&job));
                    let same = match (pb, pa) {
                        (Some(pb), Some(pa)) => {
                            pb.version == pa.version
                                && pb.failures == pa.failures
                                && pb.enabled == pa.enabled
                                && pb.interval == pa.interval
                        }
                        (None, None) => true,
                        _ => false,
                    };
                    ensure_invariant!(
                        same,
                        "TICK_STALE_CHANGES_NOTHING",
                        "an old version's result changed the current job: {pb:?} -> {pa:?}"
                    );
                }
                self.observe(&acts)
            }
            (Ok(job), Ok(())) => {
                self.runs.remove(&t);
                self.retire(t);
                match outcome {
                    TickOutcome::Success => {
                        if let Some(j) = self.jobs.get_mut(&job) {
                            j.failures = 0;
                            j.retry_at = None;
                        }
                        self.observe(&acts)?;
                        let st = self.machine.job(&job);
                        ensure_invariant!(
                            st.is_some_and(|s| s.failures == 0 && s.retry_at.is_none()),
                            "TICK_SUCCESS_RESETS",
                            "after a success job {job} is {st:?}"
                        );
                        if let (Some(s), Some(j)) = (st, self.jobs.get(&job)) {
                            let on = self.model.missed == MissedTicks::Delay
                                || on_grid(j.anchor, j.interval, s.next_due)
                                || s.next_due == Timestamp::MAX;
                            ensure_invariant!(
                                on && (s.next_due > self.now || s.running.is_some() || !j.enabled),
                                "TICK_SUCCESS_RESETS",
                                "after a success job {job} is due at {:?} (anchor {:?})",
                                s.next_due,
                                j.anchor
                            );
                        }
                        Ok(())
                    }
                    TickOutcome::Failure => {
                        self.model_failure(job);
                        self.observe(&acts)?;
                        self.check_failure(job)
                    }
                }
            }
            (e, g) => Err(Violation::new(
                "TICK_STALE_CHANGES_NOTHING",
                format!("result for {t:?}: expected {e:?}, got {g:?}"),
            )),
        }
    }

    fn retire(&mut self, t: RunToken) {
        self.old.push(t);
        if self.old.len() > 64 {
            self.old.remove(0);
        }
    }

    fn model_failure(&mut self, job: u8) {
        let (model, now) = (self.model, self.now);
        if let Some(j) = self.jobs.get_mut(&job) {
            j.failures = j.failures.saturating_add(1);
            j.retry_at = Some(model.retry_at(now, j.failures));
        }
    }

    /// After a failure of `job`: the count and the retry instant follow the
    /// doubling schedule, unless a queued manual tick started at once.
    fn check_failure(&self, job: u8) -> Result<(), Violation> {
        let (Some(j), Some(s)) = (self.jobs.get(&job), self.machine.job(&job)) else {
            return Ok(());
        };
        ensure_invariant!(
            s.failures == j.failures,
            "TICK_FAILURE_BACKOFF",
            "job {job}: {} failures counted, expected {}",
            s.failures,
            j.failures
        );
        let manual_started = s.running.is_some() && j.retry_at.is_none();
        ensure_invariant!(
            manual_started || s.retry_at == j.retry_at,
            "TICK_FAILURE_BACKOFF",
            "job {job} after {} failure(s) at {:?}: retry at {:?}, expected {:?}",
            j.failures,
            self.now,
            s.retry_at,
            j.retry_at
        );
        Ok(())
    }

    // ---- checks -------------------------------------------------------

    /// Check every tick started against the model, then record it.
    fn observe(&mut self, acts: &[TickAction<u8>]) -> Result<(), Violation> {
        let model = self.model;
        for a in acts {
            self.log.push((self.now, a.clone()));
            let (job, version, run, scheduled_for, reason) = match *a {
                TickAction::RunTick {
                    job,
                    version,
                    run,
                    scheduled_for,
                    reason,
                } => (job, version, run, scheduled_for, reason),
                TickAction::GiveUp { run, .. } => {
                    // Checked against the model by `advance_to`; the run is
                    // over.
                    ensure_invariant!(
                        !self.runs.contains_key(&run) && self.machine.job_of(run).is_none(),
                        "TICK_GIVE_UP_REPORTED",
                        "{run:?} reported given up but still runs"
                    );
                    continue;
                }
            };
            ensure_invariant!(
                self.highest_run.is_none_or(|h| run > h),
                "TICK_NEVER_OVERLAP",
                "run token {run:?} reused"
            );
            self.highest_run = Some(run);
            ensure_invariant!(
                !self.runs.values().any(|r| r.job == job),
                "TICK_NEVER_OVERLAP",
                "job {job} started {run:?} while a tick of it runs"
            );
            let now = self.now;
            let Some(j) = self.jobs.get_mut(&job) else {
                return Err(Violation::new(
                    "TICK_RUNS_CURRENT_VERSION",
                    format!("removed job {job} started a tick"),
                ));
            };
            ensure_invariant!(
                j.version == version && j.enabled,
                "TICK_RUNS_CURRENT_VERSION",
                "job {job} started a tick of {version:?} (current {:?}, enabled {})",
                j.version,
                j.enabled
            );
            match reason {
                RunReason::Scheduled => {
                    ensure_invariant!(
                        j.retry_at.is_none(),
                        "TICK_FAILURE_BACKOFF",
                        "job {job} ran on schedule while backing off until {:?}",
                        j.retry_at
                    );
                    match model.missed {
                        MissedTicks::Skip => {
                            ensure_invariant!(
                                on_grid(j.anchor, j.interval, scheduled_for),
                                "TICK_NO_DRIFT",
                                "job {job} scheduled for {scheduled_for:?}, off its grid {:?} + k × {:?}",
                                j.anchor,
                                j.interval
                            );
                            ensure_invariant!(
                                scheduled_for <= now
                                    && now < scheduled_for.saturating_add(j.interval),
                                "TICK_MISSED_SKIPPED",
                                "job {job} at {now:?} ran for slot {scheduled_for:?}, not the latest"
                            );
                        }
                        MissedTicks::Delay => {
                            ensure_invariant!(
                                scheduled_for == now,
                                "TICK_MISSED_SKIPPED",
                                "job {job} at {now:?} ran for {scheduled_for:?} under Delay"
                            );
                        }
                    }
                    if let Some(last) = j.last_scheduled {
                        ensure_invariant!(
                            scheduled_for >= last.saturating_add(j.interval),
                            "TICK_NO_DRIFT",
                            "job {job} ran for {scheduled_for:?} less than an interval after {last:?}"
                        );
                    }
                    j.last_scheduled = Some(scheduled_for);
                }
                RunReason::Retry => {
                    ensure_invariant!(
                        j.retry_at == Some(scheduled_for) && scheduled_for <= now,
                        "TICK_FAILURE_BACKOFF",
                        "job {job} retried for {scheduled_for:?} at {now:?}, expected {:?}",
                        j.retry_at
                    );
                    j.retry_at = None;
                }
                RunReason::Manual => {
                    ensure_invariant!(
                        scheduled_for == now,
                        "TICK_NEVER_OVERLAP",
                        "manual tick of job {job} scheduled for {scheduled_for:?} at {now:?}"
                    );
                    j.retry_at = None;
                }
            }
            let give_up_at = model.give_up_at(now);
            self.runs.insert(
                run,
                ModelRun {
                    job,
                    version,
                    give_up_at,
                },
            );
        }
        Ok(())
    }

    fn check_state(&self) -> Result<(), Violation> {
        let st = self.machine.stats();
        let max = self.model.max_jobs;
        ensure_invariant!(
            st.jobs + st.detached <= max && st.jobs == self.jobs.len(),
            "TICK_JOBS_BOUNDED",
            "{st:?} with max_jobs {max}, model holds {}",
            self.jobs.len()
        );
        ensure_invariant!(
            st.running == self.runs.len()
                && self.runs.keys().all(|t| self.machine.job_of(*t).is_some()),
            "TICK_NEVER_OVERLAP",
            "{} tick(s) running, model {:?}",
            st.running,
            self.runs
        );
        // Every job's next wake-up is in the one timer set: the reported
        // deadline is no later than any of them.
        let mut next: Option<Timestamp> = None;
        for (job, j) in &self.jobs {
            let Some(s) = self.machine.job(job) else {
                return Err(Violation::new(
                    "TICK_NEVER_STALLS",
                    format!("job {job} missing from the schedule"),
                ));
            };
            if s.running.is_none() && j.enabled {
                let at = s.retry_at.unwrap_or(s.next_due);
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        for r in self.runs.values() {
            if let Some(at) = r.give_up_at {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        if let Some(at) = next.filter(|at| *at != Timestamp::MAX) {
            let d = self.machine.poll_timeout();
            ensure_invariant!(
                d.is_some_and(|d| d.at <= at),
                "TICK_NEVER_STALLS",
                "a wake-up is due at {at:?} but the schedule reports {d:?}"
            );
        }
        Ok(())
    }
}

/// Run a whole sequence from an empty schedule; the first violation, if any.
pub fn run(config: TickConfig, ops: &[Op]) -> Result<Harness, Violation> {
    let mut h = Harness::new(config);
    for op in ops {
        h.apply(*op)?;
    }
    Ok(h)
}
