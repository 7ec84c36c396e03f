//! [`MemoryStore`]: a [`JobStore`] in process memory (tests, ephemeral
//! schedulers).
//!
//! Guarantees: those of [`JobStore`]; every operation holds one lock, so
//! each is atomic. Clones share the same data, so a scheduler restarted on
//! a clone resumes what the previous one stored. Jobs are held in a map by
//! id and loaded in id order.
//!
//! Memory: a run record is kept in 64 bytes (plus its message after a failure or a panic): without its job id
//! (the job's entry names it), its instants as nanoseconds since the Unix
//! epoch (exact from 1970 to 2554); a job's history grows to exactly
//! `max_runs_per_job` records, never to the next power of two.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tether_core::tick::RunReason;

use async_trait::async_trait;

use super::{JobStore, RunsNotSaved, StoreError, StoredJob, TickSave, DEFAULT_MAX_RUNS_PER_JOB};
use crate::scheduler::job::{JobDef, JobId};
use crate::scheduler::record::{RunOutcome, RunRecord};
use crate::scheduler::state::JobState;

/// A run record without its job id (the job's entry names it), in 64
/// bytes: instants as nanoseconds since the Unix epoch, the outcome as a
/// tag and, for a failure or a panic only, a boxed message.
#[derive(Debug)]
struct Kept {
    version: u64,
    run: u64,
    tick: u64,
    scheduled_for: u64,
    started_at: u64,
    finished_at: u64,
    // A thin pointer (8 bytes, `None` free) where `String` would take 24:
    // most records carry no message.
    #[allow(clippy::box_collection)]
    message: Option<Box<String>>,
    reason: RunReason,
    outcome: Tag,
}

/// [`RunOutcome`] without its message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tag {
    Success,
    Failed,
    Panicked,
    TimedOut,
    Superseded,
}

/// Nanoseconds since the Unix epoch, exact for every instant from 1970 to
/// 2554 (the wall clock's run records); earlier ones saturate to the
/// epoch, later ones to the end of that range.
fn epoch_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn from_epoch_ns(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

impl Kept {
    fn of(r: &RunRecord) -> Self {
        let (outcome, message) = match &r.outcome {
            RunOutcome::Success => (Tag::Success, None),
            RunOutcome::Failed(m) => (Tag::Failed, Some(Box::new(m.clone()))),
            RunOutcome::Panicked(m) => (Tag::Panicked, Some(Box::new(m.clone()))),
            RunOutcome::TimedOut => (Tag::TimedOut, None),
            RunOutcome::Superseded => (Tag::Superseded, None),
        };
        Kept {
            version: r.version,
            run: r.run,
            tick: r.tick,
            scheduled_for: epoch_ns(r.scheduled_for),
            started_at: epoch_ns(r.started_at),
            finished_at: epoch_ns(r.finished_at),
            message,
            reason: r.reason,
            outcome,
        }
    }

    fn record(&self, job: &JobId) -> RunRecord {
        let message = || self.message.as_deref().cloned().unwrap_or_default();
        RunRecord {
            job: job.clone(),
            version: self.version,
            run: self.run,
            tick: self.tick,
            reason: self.reason,
            scheduled_for: from_epoch_ns(self.scheduled_for),
            started_at: from_epoch_ns(self.started_at),
            finished_at: from_epoch_ns(self.finished_at),
            outcome: match self.outcome {
                Tag::Success => RunOutcome::Success,
                Tag::Failed => RunOutcome::Failed(message()),
                Tag::Panicked => RunOutcome::Panicked(message()),
                Tag::TimedOut => RunOutcome::TimedOut,
                Tag::Superseded => RunOutcome::Superseded,
            },
        }
    }
}

#[derive(Debug)]
struct Held {
    def: JobDef,
    state: JobState,
    ticks: u64,
    last_tick: Option<SystemTime>,
    next_due: Option<SystemTime>,
    runs: VecDeque<Kept>,
}

/// Hashed with the core's id hash, as the scheduler's own map is.
type Jobs = HashMap<JobId, Held, tether_core::id_hash::BuildIdHasher>;

/// A [`JobStore`] in memory. Cheap to clone (clones share the data).
#[derive(Clone, Debug)]
pub struct MemoryStore {
    jobs: Arc<Mutex<Jobs>>,
    max_runs: usize,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_RUNS_PER_JOB)
    }
}

impl MemoryStore {
    /// An empty store keeping at most `max_runs_per_job` records per job.
    pub fn new(max_runs_per_job: usize) -> Self {
        MemoryStore {
            jobs: Arc::default(),
            max_runs: max_runs_per_job,
        }
    }

    /// Append `run` to its job's history and apply `save` (nothing if the
    /// job is not held).
    fn keep(&self, jobs: &mut Jobs, run: &RunRecord, save: Option<&TickSave>) {
        let Some(h) = jobs.get_mut(&run.job) else {
            return;
        };
        if self.max_runs > 0 {
            while h.runs.len() >= self.max_runs {
                h.runs.pop_front();
            }
            // Grow by doubling, but never past the bound: a full history
            // holds `max_runs` records, not the next power of two.
            if h.runs.len() == h.runs.capacity() {
                let want = (h.runs.capacity() * 2).max(8).min(self.max_runs);
                h.runs.reserve_exact(want - h.runs.len());
            }
            h.runs.push_back(Kept::of(run));
        }
        if let Some(save) = save {
            h.ticks = save.ticks;
            h.last_tick = Some(save.last_tick);
            h.next_due = save.next_due;
            if let Some(state) = &save.state {
                h.state = state.clone();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Jobs> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl JobStore for MemoryStore {
    async fn load(&self) -> Result<Vec<StoredJob>, StoreError> {
        let mut jobs: Vec<StoredJob> = self
            .lock()
            .values()
            .map(|h| StoredJob {
                def: h.def.clone(),
                state: h.state.clone(),
                ticks: h.ticks,
                last_tick: h.last_tick,
                next_due: h.next_due,
            })
            .collect();
        jobs.sort_by(|a, b| a.def.id.cmp(&b.def.id));
        Ok(jobs)
    }

    async fn put_job(&self, def: &JobDef) -> Result<(), StoreError> {
        let mut jobs = self.lock();
        match jobs.get_mut(&def.id) {
            Some(h) => h.def = def.clone(),
            None => {
                jobs.insert(
                    def.id.clone(),
                    Held {
                        def: def.clone(),
                        state: JobState::new(),
                        ticks: 0,
                        last_tick: None,
                        next_due: None,
                        runs: VecDeque::new(),
                    },
                );
            }
        }
        Ok(())
    }

    async fn delete_job(&self, id: &JobId) -> Result<(), StoreError> {
        self.lock().remove(id);
        Ok(())
    }

    async fn record_runs(
        &self,
        runs: &[(RunRecord, Option<TickSave>)],
    ) -> Result<(), RunsNotSaved> {
        // One lock for the batch: each run is still applied whole.
        let mut jobs = self.lock();
        for (run, save) in runs {
            self.keep(&mut jobs, run, save.as_ref());
        }
        Ok(())
    }

    async fn recent_runs(&self, id: &JobId, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        Ok(self
            .lock()
            .get(id)
            .map(|h| {
                let job = &h.def.id;
                h.runs
                    .iter()
                    .rev()
                    .take(limit)
                    .map(|k| k.record(job))
                    .collect()
            })
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(tick: u64, outcome: RunOutcome) -> RunRecord {
        let t = UNIX_EPOCH + Duration::new(1_800_000_000, 123_456_789);
        RunRecord {
            job: JobId::from("j"),
            version: 3,
            run: 40 + tick,
            tick,
            reason: RunReason::Retry,
            scheduled_for: t,
            started_at: t + Duration::from_nanos(tick),
            finished_at: t + Duration::from_secs(tick),
            outcome,
        }
    }

    #[test]
    fn a_kept_record_is_64_bytes_and_reads_back_exactly() {
        assert_eq!(std::mem::size_of::<Kept>(), 64);
        for outcome in [
            RunOutcome::Success,
            RunOutcome::Failed("boom".into()),
            RunOutcome::Panicked("oops".into()),
            RunOutcome::TimedOut,
            RunOutcome::Superseded,
        ] {
            let r = record(7, outcome);
            assert_eq!(Kept::of(&r).record(&r.job), r);
        }
    }

    #[tokio::test]
    async fn the_default_history_is_bounded_to_the_default() {
        let store = MemoryStore::default();
        store
            .put_job(&JobDef::new("j", "k", Duration::from_secs(1)))
            .await
            .unwrap();
        for tick in 1..=3 * DEFAULT_MAX_RUNS_PER_JOB as u64 {
            store
                .record_runs(&[(record(tick, RunOutcome::Success), None)])
                .await
                .unwrap();
        }
        let runs = store
            .recent_runs(&JobId::from("j"), usize::MAX)
            .await
            .unwrap();
        assert_eq!(runs.len(), DEFAULT_MAX_RUNS_PER_JOB);
        assert_eq!(runs[0].tick, 3 * DEFAULT_MAX_RUNS_PER_JOB as u64);
        let jobs = store.lock();
        let held = &jobs.get(&JobId::from("j")).unwrap().runs;
        assert!(
            held.capacity() <= DEFAULT_MAX_RUNS_PER_JOB,
            "{}",
            held.capacity()
        );
    }

    fn save(ticks: u64, n: &str) -> TickSave {
        let mut state = JobState::new();
        state.set("n", n).unwrap();
        TickSave {
            ticks,
            last_tick: UNIX_EPOCH + Duration::from_secs(ticks),
            next_due: None,
            state: Some(state),
        }
    }

    #[tokio::test]
    async fn a_batch_applies_each_run_in_order_and_drops_unknown_jobs() {
        let store = MemoryStore::default();
        store
            .put_job(&JobDef::new("j", "k", Duration::from_secs(1)))
            .await
            .unwrap();
        let mut gone = record(2, RunOutcome::Success);
        gone.job = JobId::from("gone");
        let batch = vec![
            (record(1, RunOutcome::Success), Some(save(1, "one"))),
            (gone, Some(save(2, "two"))),
            (record(2, RunOutcome::Success), Some(save(2, "two"))),
            (record(3, RunOutcome::Failed("x".into())), None),
        ];
        store.record_runs(&batch).await.unwrap();
        let runs = store.recent_runs(&JobId::from("j"), 10).await.unwrap();
        let ticks: Vec<u64> = runs.iter().map(|r| r.tick).collect();
        assert_eq!(ticks, [3, 2, 1]);
        assert_eq!(runs[0].outcome, RunOutcome::Failed("x".into()));
        let jobs = store.load().await.unwrap();
        assert_eq!(jobs.len(), 1, "no job created for a run of an unknown one");
        assert_eq!(jobs[0].state.get("n"), Some("two"));
        assert_eq!(jobs[0].ticks, 2);
        assert_eq!(
            store.recent_runs(&JobId::from("gone"), 10).await.unwrap(),
            []
        );
    }

    #[tokio::test]
    async fn records_reach_their_own_job_after_deletes_and_re_adds() {
        let store = MemoryStore::default();
        for id in ["a", "b", "c"] {
            store
                .put_job(&JobDef::new(id, "k", Duration::from_secs(1)))
                .await
                .unwrap();
        }
        // b is deleted, d added after it: a record of b must not land in
        // d's history.
        store.delete_job(&JobId::from("b")).await.unwrap();
        store
            .put_job(&JobDef::new("d", "k", Duration::from_secs(1)))
            .await
            .unwrap();
        let of = |id: &str, tick: u64| {
            let mut r = record(tick, RunOutcome::Success);
            r.job = JobId::from(id);
            (r, None)
        };
        // In insertion order, out of order, and a deleted job in between.
        let batch = vec![
            of("a", 1),
            of("b", 2),
            of("d", 3),
            of("c", 4),
            of("a", 5),
            of("c", 6),
            of("d", 7),
        ];
        store.record_runs(&batch).await.unwrap();
        for (id, want) in [
            ("a", vec![5, 1]),
            ("b", vec![]),
            ("c", vec![6, 4]),
            ("d", vec![7, 3]),
        ] {
            let runs = store.recent_runs(&JobId::from(id), 10).await.unwrap();
            let ticks: Vec<u64> = runs.iter().map(|r| r.tick).collect();
            assert_eq!(ticks, want, "job {id}");
            assert!(runs.iter().all(|r| r.job.as_str() == id));
        }
    }
}
