//! The tick schedule: which periodic job runs when, with one timer structure
//! for all jobs.
//!
//! Guarantees: see the module docs of [`crate::tick`]. In short, at most one
//! tick per job at a time, results of old versions ignored, failures backed
//! off, a drift-free grid, missed slots skipped, a bounded job count.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::hash::{BuildHasherDefault, Hasher};
use core::time::Duration;

use hashbrown::HashMap;

use super::config::{MissedTicks, TickConfig};
use super::grid::{align_up, failure_delay, slot_after, slot_at_or_before};
use super::stats::{add, Counters, TickStats};
use super::types::{
    JobSpec, JobStatus, RunReason, RunToken, StaleRun, TickAction, TickError, TickNow, TickOutcome,
    TickTimer, Version,
};
use crate::machine::Machine;
use crate::time::{Deadline, Timestamp};

/// No slot (the end of a bucket's list).
const NIL: u32 = u32::MAX;

/// Hashes a [`RunToken`] (one `u64`, issued in sequence) for the run table:
/// one multiply by an odd constant spreads consecutive tokens over the
/// buckets and the fold puts high bits into the low (bucket) bits too.
/// Kept because it pays: `tick/dispatch_due` at 100k jobs takes 13.9 µs a
/// slot with it and 29.4 µs with a `BTreeMap` run table instead (see the
/// scheduler's HANDOFF.md).
#[derive(Clone, Copy, Debug, Default)]
struct TokenHasher(u64);

impl Hasher for TokenHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        let h = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = h ^ (h >> 32);
    }
}

type Runs = HashMap<RunToken, u32, BuildHasherDefault<TokenHasher>>;

/// The jobs whose wake-up is one instant, as a doubly linked list through
/// the slab (`Slot::prev` / `Slot::next`), oldest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Bucket {
    head: u32,
    tail: u32,
}

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

/// One job in the slab.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Job<J> {
    id: J,
    /// `None`: removed, kept only while its tick runs.
    live: Option<Live>,
    running: Option<Run>,
    /// The job's one entry in the timer set, and why.
    timer: Option<(Timestamp, TickTimer)>,
    /// Neighbours in the timer bucket of `timer`'s instant ([`NIL`]: none).
    prev: u32,
    next: u32,
}

/// The job in slot `i` of `slots`, which must be occupied.
fn slot_in<J>(slots: &mut [Option<Job<J>>], i: u32) -> &mut Job<J> {
    slots[i as usize].as_mut().expect("occupied slot")
}

/// The status of a job; `None` if removed.
fn status_of<J>(entry: &Job<J>) -> Option<JobStatus> {
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

/// When the job wants to be woken, given its state.
fn desired<J>(job: &Job<J>) -> Option<(Timestamp, TickTimer)> {
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

/// Mark every grid slot `<= now` as served (without running it); under
/// [`MissedTicks::Delay`] the grid is re-anchored at `now` rounded up to
/// `granularity`.
fn serve(live: &mut Live, missed: MissedTicks, granularity: Duration, now: Timestamp) {
    if live.due > now {
        return;
    }
    match missed {
        MissedTicks::Skip => live.due = slot_after(live.anchor, live.interval, now),
        MissedTicks::Delay => {
            live.anchor = align_up(now, granularity);
            live.due = live.anchor.saturating_add(live.interval);
        }
    }
}

/// Periodic jobs as a sans-IO machine: one timer structure serves every
/// job, so `poll_timeout` is one lookup whatever the job count.
///
/// Layout: jobs live in a slab (dense `u32` indices, freed slots reused); the
/// id map is consulted only by the operations that name a job by id. Wake-ups
/// are grouped by instant: an ordered map from each distinct instant to a
/// bucket, a list linked through the slab. Periodic jobs share few instants,
/// because every instant the schedule derives is rounded up to
/// [`TickConfig::timer_granularity`] (1 ms by default: every job on a 1 s
/// grid then falls on one of at most 1,000 instants), so
/// arming, moving and firing a wake-up is O(1) list work plus a lookup in
/// that small map, and a tick allocates nothing once the tables have grown.
/// The earliest instant is the map's first key: `poll_timeout` is exact.
///
/// `J` is the job id (any `Ord + Clone`, e.g. `String`). It is held twice
/// (the id map's key and the slab entry), and cloned into each action.
///
/// ```
/// use core::time::Duration;
/// use tether_core::tick::{JobSpec, TickOutcome, RunReason, TickAction, TickConfig, TickSchedule};
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
/// s.on_tick_finished(due, run, TickOutcome::Failure).unwrap();
/// assert_eq!(s.poll_timeout().unwrap().at, Timestamp::from_secs(11)); // backs off 1 s
/// assert!(s.on_tick_finished(due, run, TickOutcome::Success).is_err()); // duplicate
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TickSchedule<J> {
    config: TickConfig,
    /// Job id → slab index.
    index: BTreeMap<J, u32>,
    slots: Vec<Option<Job<J>>>,
    free: Vec<u32>,
    /// Running tick → slab index.
    runs: Runs,
    /// Wake-up instant → the jobs due then.
    timers: BTreeMap<Timestamp, Bucket>,
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
            index: BTreeMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            runs: Runs::default(),
            timers: BTreeMap::new(),
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
    /// anchored at `now`) plus multiples of the interval, its anchor rounded
    /// up to [`TickConfig::timer_granularity`]; the failure count
    /// resets and a queued manual tick is dropped. A tick of the job still
    /// running keeps the job busy: the new version's first tick starts only
    /// after it finishes (its result is then ignored) or is given up.
    ///
    /// Errors (nothing changed): [`TickError::ZeroInterval`];
    /// [`TickError::TooManyJobs`] when `job` is new and `max_jobs` are held
    /// (clamped to [`MAX_JOBS_LIMIT`](super::MAX_JOBS_LIMIT), the slab's
    /// index width).
    pub fn upsert(&mut self, now: Timestamp, job: J, spec: JobSpec) -> Result<Version, TickError> {
        if spec.interval.is_zero() {
            return Err(TickError::ZeroInterval);
        }
        let existing = self.index.get(&job).copied();
        if existing.is_none() && self.index.len() >= self.config.max_jobs {
            return Err(TickError::TooManyJobs);
        }
        let version = Version(self.next_version);
        self.next_version = self.next_version.saturating_add(1);
        let granularity = self.config.timer_granularity;
        let (anchor, due) = match spec.first_at {
            Some(t) => {
                let t = align_up(t, granularity);
                (t, t)
            }
            None => {
                let t = align_up(now, granularity);
                (t, t.saturating_add(spec.interval))
            }
        };
        let live = Live {
            version,
            interval: spec.interval,
            enabled: spec.enabled,
            anchor,
            due,
            failures: 0,
            retry_at: None,
            queued: false,
        };
        let i = match existing {
            Some(i) => i,
            None => {
                let entry = Job {
                    id: job.clone(),
                    live: None,
                    running: None,
                    timer: None,
                    prev: NIL,
                    next: NIL,
                };
                let i = match self.free.pop() {
                    Some(i) => {
                        self.slots[i as usize] = Some(entry);
                        i
                    }
                    None => {
                        self.slots.push(Some(entry));
                        (self.slots.len() - 1) as u32
                    }
                };
                self.index.insert(job, i);
                i
            }
        };
        let entry = self.slot_mut(i);
        let was_live = entry.live.replace(live).is_some();
        if !was_live {
            self.live_jobs += 1;
        }
        self.set_timer(i);
        self.settle(now);
        Ok(version)
    }

    /// Remove `job`. A tick of it still running finishes unhindered (its
    /// result is then ignored); until then the job id stays busy, so a
    /// re-added job does not overlap it, and it counts toward `max_jobs`.
    pub fn remove(&mut self, job: &J) -> Result<(), TickError> {
        let i = self.find(job).ok_or(TickError::UnknownJob)?;
        let entry = self.slot_mut(i);
        if entry.live.take().is_none() {
            return Err(TickError::UnknownJob);
        }
        let running = entry.running.is_some();
        self.live_jobs = self.live_jobs.saturating_sub(1);
        if running {
            self.set_timer(i);
        } else {
            self.drop_job(i);
        }
        Ok(())
    }

    /// Enable or disable `job`. Disabling drops a queued manual tick (a
    /// running tick finishes unhindered). Enabling resets the failure count
    /// and rejoins the grid: slots that passed while disabled are not run
    /// (under [`MissedTicks::Delay`] the grid is re-anchored at `now`).
    pub fn set_enabled(&mut self, now: Timestamp, job: &J, enabled: bool) -> Result<(), TickError> {
        let missed = self.config.missed;
        let granularity = self.config.timer_granularity;
        let i = self.find(job).ok_or(TickError::UnknownJob)?;
        let live = self
            .slot_mut(i)
            .live
            .as_mut()
            .ok_or(TickError::UnknownJob)?;
        if live.enabled == enabled {
            return Ok(());
        }
        live.enabled = enabled;
        if enabled {
            live.failures = 0;
            live.retry_at = None;
            serve(live, missed, granularity, now);
        } else {
            live.queued = false;
        }
        self.set_timer(i);
        self.settle(now);
        Ok(())
    }

    /// Run `job` now, outside its grid (the grid is unchanged; grid slots
    /// that passed are served by this run). If a tick of it is running, one
    /// manual run follows it instead, however many calls arrive meanwhile.
    pub fn tick_now(&mut self, now: Timestamp, job: &J) -> Result<TickNow, TickError> {
        let i = self.find(job).ok_or(TickError::UnknownJob)?;
        let entry = slot_in(&mut self.slots, i);
        let busy = entry.running.is_some();
        let live = entry.live.as_mut().ok_or(TickError::UnknownJob)?;
        if !live.enabled {
            return Err(TickError::Disabled);
        }
        if busy {
            let coalesced = live.queued;
            live.queued = true;
            if coalesced {
                add(&mut self.counters.coalesced, 1);
            }
            return Ok(TickNow::Coalesced);
        }
        let token = self.start_run(now, i, RunReason::Manual, now);
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
        outcome: TickOutcome,
    ) -> Result<(), StaleRun> {
        // The run table holds exactly the running ticks (a token leaves it
        // when its run ends or is given up), so a token found there is its
        // job's running tick.
        let Some(i) = self.runs.remove(&run) else {
            add(&mut self.counters.stale, 1);
            return Err(StaleRun::Unknown);
        };
        let entry = slot_in(&mut self.slots, i);
        let Some(r) = entry.running.take() else {
            return Err(StaleRun::Unknown);
        };
        let current = entry.live.as_ref().map(|l| l.version);
        let result = match entry.live.as_mut() {
            Some(live) if live.version == r.version => {
                match outcome {
                    TickOutcome::Success => {
                        live.failures = 0;
                        live.retry_at = None;
                        add(&mut self.counters.successes, 1);
                    }
                    TickOutcome::Failure => {
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
        self.after_run(now, i);
        self.settle(now);
        result
    }

    /// [`on_tick_finished`](Self::on_tick_finished), then the status of the
    /// run's job after it (`None`: unknown run, or the job was removed), as
    /// [`job`](Self::job) would give it, found through the run without a
    /// lookup by id.
    pub fn finish_tick(
        &mut self,
        now: Timestamp,
        run: RunToken,
        outcome: TickOutcome,
    ) -> (Result<(), StaleRun>, Option<JobStatus>) {
        let slot = self.runs.get(&run).copied();
        let result = self.on_tick_finished(now, run, outcome);
        let status = match (&result, slot) {
            (Err(StaleRun::Unknown), _) | (_, None) => None,
            // The job's slot, unless the job was dropped (a freed slot is
            // not reused within one call).
            (_, Some(i)) => self.slots[i as usize].as_ref().and_then(status_of),
        };
        (result, status)
    }

    /// The status of `job`; `None` if unknown or removed.
    pub fn job(&self, job: &J) -> Option<JobStatus> {
        status_of(self.slot(self.find(job)?))
    }

    /// The job a running tick belongs to.
    pub fn job_of(&self, run: RunToken) -> Option<&J> {
        let i = *self.runs.get(&run)?;
        Some(&self.slot(i).id)
    }

    /// Gauges and counters.
    pub fn stats(&self) -> TickStats {
        let c = self.counters;
        TickStats {
            jobs: self.live_jobs,
            detached: self.index.len().saturating_sub(self.live_jobs),
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

    fn find(&self, job: &J) -> Option<u32> {
        self.index.get(job).copied()
    }

    /// The job in slot `i`, which must be occupied (indices come from the
    /// id map, the run table or a timer bucket, which only name live slots).
    fn slot(&self, i: u32) -> &Job<J> {
        self.slots[i as usize].as_ref().expect("occupied slot")
    }

    fn slot_mut(&mut self, i: u32) -> &mut Job<J> {
        slot_in(&mut self.slots, i)
    }

    fn fail(config: &TickConfig, counters: &mut Counters, live: &mut Live, now: Timestamp) {
        live.failures = live.failures.saturating_add(1);
        let d = failure_delay(config.failure_base, config.failure_max, live.failures);
        live.retry_at = Some(align_up(now.saturating_add(d), config.timer_granularity));
        add(&mut counters.failures, 1);
    }

    fn drop_job(&mut self, i: u32) {
        self.unlink(i);
        if let Some(entry) = self.slots[i as usize].take() {
            self.index.remove(&entry.id);
            self.free.push(i);
        }
    }

    /// Take job `i` out of its timer bucket (if any); the bucket goes when
    /// it empties.
    fn unlink(&mut self, i: u32) {
        let entry = self.slot_mut(i);
        let Some((at, _)) = entry.timer.take() else {
            return;
        };
        let (prev, next) = (entry.prev, entry.next);
        entry.prev = NIL;
        entry.next = NIL;
        if prev != NIL {
            self.slot_mut(prev).next = next;
        }
        if next != NIL {
            self.slot_mut(next).prev = prev;
        }
        if prev == NIL && next == NIL {
            self.timers.remove(&at);
        } else if let Some(b) = self.timers.get_mut(&at) {
            if prev == NIL {
                b.head = next;
            }
            if next == NIL {
                b.tail = prev;
            }
        }
    }

    /// Put job `i` at the end of the bucket of `at`.
    fn link(&mut self, i: u32, at: Timestamp, why: TickTimer) {
        let tail = match self.timers.get_mut(&at) {
            Some(b) => {
                let tail = b.tail;
                b.tail = i;
                tail
            }
            None => {
                self.timers.insert(at, Bucket { head: i, tail: i });
                NIL
            }
        };
        if tail != NIL {
            self.slot_mut(tail).next = i;
        }
        let entry = self.slot_mut(i);
        entry.timer = Some((at, why));
        entry.prev = tail;
        entry.next = NIL;
    }

    /// Put the job's one timer entry where its state wants it.
    fn set_timer(&mut self, i: u32) {
        // `Timestamp::MAX` means "never" (a slot past the end of time).
        let want = desired(self.slot(i)).filter(|(at, _)| *at != Timestamp::MAX);
        let have = self.slot(i).timer;
        if want == have {
            return;
        }
        match (want, have) {
            // Same instant, another reason: the bucket stays.
            (Some((at, why)), Some((had, _))) if at == had => {
                self.slot_mut(i).timer = Some((at, why));
            }
            _ => {
                self.unlink(i);
                if let Some((at, why)) = want {
                    self.link(i, at, why);
                }
            }
        }
    }

    /// Start a tick of job `i` (which must be live and idle); its token.
    fn start_run(
        &mut self,
        now: Timestamp,
        i: u32,
        reason: RunReason,
        scheduled_for: Timestamp,
    ) -> RunToken {
        let token = RunToken(self.next_run);
        self.next_run = self.next_run.saturating_add(1);
        let give_up_at = self
            .config
            .run_timeout
            .map(|d| align_up(now.saturating_add(d), self.config.timer_granularity))
            .filter(|t| *t != Timestamp::MAX);
        let missed = self.config.missed;
        let granularity = self.config.timer_granularity;
        let entry = slot_in(&mut self.slots, i);
        let Some(live) = entry.live.as_mut() else {
            return token;
        };
        serve(live, missed, granularity, now);
        live.retry_at = None;
        live.queued = false;
        let version = live.version;
        entry.running = Some(Run {
            token,
            version,
            give_up_at,
        });
        let job = entry.id.clone();
        self.runs.insert(token, i);
        add(&mut self.counters.runs, 1);
        self.actions.push_back(TickAction::RunTick {
            job,
            version,
            run: token,
            scheduled_for,
            reason,
        });
        self.set_timer(i);
        token
    }

    /// A grid slot of job `i` is due at `now`: run it once for every slot
    /// missed (see [`MissedTicks`]).
    fn start_scheduled(&mut self, now: Timestamp, i: u32) {
        let missed = self.config.missed;
        let Some(live) = slot_in(&mut self.slots, i).live.as_mut() else {
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
        self.start_run(now, i, RunReason::Scheduled, scheduled_for);
    }

    /// The running tick of job `i` ended (finished or given up).
    fn after_run(&mut self, now: Timestamp, i: u32) {
        match &self.slot(i).live {
            None => self.drop_job(i),
            Some(live) if live.queued && live.enabled => {
                self.start_run(now, i, RunReason::Manual, now);
            }
            Some(_) => self.set_timer(i),
        }
    }

    fn give_up(&mut self, now: Timestamp, i: u32) {
        let entry = slot_in(&mut self.slots, i);
        let Some(run) = entry.running.take() else {
            return;
        };
        let job = entry.id.clone();
        if let Some(live) = entry.live.as_mut() {
            if live.version == run.version {
                Self::fail(&self.config, &mut self.counters, live, now);
            }
        }
        self.runs.remove(&run.token);
        add(&mut self.counters.timeouts, 1);
        self.actions.push_back(TickAction::GiveUp {
            job,
            version: run.version,
            run: run.token,
        });
        self.after_run(now, i);
    }

    /// Fire job `i`'s wake-up, taken from a due bucket. The bucket's instant
    /// is the job's wanted wake-up (every state change re-files it through
    /// [`set_timer`](Self::set_timer)), so what it wants is due.
    fn fire(&mut self, now: Timestamp, i: u32) {
        match desired(self.slot(i)) {
            Some((_, TickTimer::RunTimeout)) => self.give_up(now, i),
            Some((at, TickTimer::Retry)) => {
                self.start_run(now, i, RunReason::Retry, at);
            }
            Some((_, TickTimer::Due)) => self.start_scheduled(now, i),
            None => {}
        }
    }

    /// Fire everything due at or before `now`, earliest instant first, in
    /// arming order within an instant.
    fn settle(&mut self, now: Timestamp) {
        while let Some((&at, b)) = self.timers.first_key_value() {
            if at > now {
                break;
            }
            let i = b.head;
            self.unlink(i);
            self.fire(now, i);
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
        let (at, b) = self.timers.first_key_value()?;
        let why = self
            .slot(b.head)
            .timer
            .map_or(TickTimer::Due, |(_, why)| why);
        Some(Deadline::new(*at, why))
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        self.settle(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_anchored_within_one_granule_share_a_bucket() {
        let mut s: TickSchedule<u32> = TickSchedule::new(TickConfig::default());
        let every = JobSpec::every(Duration::from_secs(1));
        // 1,000 jobs registered a microsecond apart: one millisecond.
        for j in 0..1_000u32 {
            let now = Timestamp::from_nanos(5_000_001 + u64::from(j) * 1_000);
            s.upsert(now, j, every).unwrap();
        }
        assert_eq!(s.timers.len(), 1, "one bucket for the whole millisecond");
        let due = s.poll_timeout().unwrap().at;
        assert_eq!(due, Timestamp::from_nanos(1_006_000_000));
        s.handle_timeout(due);
        let mut ran = 0;
        while let Some(a) = s.poll_action() {
            if let TickAction::RunTick { scheduled_for, .. } = a {
                assert_eq!(scheduled_for, due);
                ran += 1;
            }
        }
        assert_eq!(ran, 1_000);

        // Exact instants (granularity zero): one bucket per job.
        let mut exact: TickSchedule<u32> = TickSchedule::new(TickConfig {
            timer_granularity: Duration::ZERO,
            ..TickConfig::default()
        });
        for j in 0..10u32 {
            let now = Timestamp::from_nanos(5_000_000 + u64::from(j) * 1_000);
            exact.upsert(now, j, every).unwrap();
        }
        assert_eq!(exact.timers.len(), 10);
    }

    #[test]
    fn job_slot_size() {
        // Keeps the figure in `DEFAULT_MAX_JOBS`'s docs honest.
        assert!(core::mem::size_of::<Option<Job<u64>>>() <= 160);
    }
}
