//! [`MemoryStore`]: a [`JobStore`] in process memory (tests, ephemeral
//! schedulers).
//!
//! Guarantees: those of [`JobStore`]; every operation holds one lock, so
//! each is atomic. Clones share the same data, so a scheduler restarted on
//! a clone resumes what the previous one stored. Jobs are held by hash (a
//! tick's record finds its job in one probe) and loaded in id order.
//!
//! Memory: a job's definition is shared with the scheduler that stored it
//! ([`JobStore::put_job_shared`]), not copied; a run record is kept without
//! its job id (the job's entry names it), and a job's history grows to
//! exactly `max_runs_per_job` records, never to the next power of two.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tether_core::tick::RunReason;

use async_trait::async_trait;
use tether_core::id_hash::BuildIdHasher;

use super::{JobStore, StoreError, StoredJob, TickSave, DEFAULT_MAX_RUNS_PER_JOB};
use crate::scheduler::job::{JobDef, JobId};
use crate::scheduler::record::{RunOutcome, RunRecord};
use crate::scheduler::state::JobState;

/// A run record without its job id (the job's entry names it).
#[derive(Debug)]
struct Kept {
    version: u64,
    run: u64,
    tick: u64,
    reason: RunReason,
    scheduled_for: SystemTime,
    started_at: SystemTime,
    finished_at: SystemTime,
    outcome: RunOutcome,
}

impl Kept {
    fn of(r: &RunRecord) -> Self {
        Kept {
            version: r.version,
            run: r.run,
            tick: r.tick,
            reason: r.reason,
            scheduled_for: r.scheduled_for,
            started_at: r.started_at,
            finished_at: r.finished_at,
            outcome: r.outcome.clone(),
        }
    }

    fn record(&self, job: &JobId) -> RunRecord {
        RunRecord {
            job: job.clone(),
            version: self.version,
            run: self.run,
            tick: self.tick,
            reason: self.reason,
            scheduled_for: self.scheduled_for,
            started_at: self.started_at,
            finished_at: self.finished_at,
            outcome: self.outcome.clone(),
        }
    }
}

#[derive(Debug)]
struct Held {
    def: Arc<JobDef>,
    state: JobState,
    ticks: u64,
    last_tick: Option<SystemTime>,
    next_due: Option<SystemTime>,
    runs: VecDeque<Kept>,
}

/// A [`JobStore`] in memory. Cheap to clone (clones share the data).
#[derive(Clone, Debug)]
pub struct MemoryStore {
    jobs: Arc<Mutex<HashMap<JobId, Held, BuildIdHasher>>>,
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

    /// Insert `def`, or update the definition of its job (keeping its
    /// state, tick count and history).
    fn hold(&self, def: Arc<JobDef>) {
        let mut jobs = self.lock();
        match jobs.get_mut(&def.id) {
            Some(h) => h.def = def,
            None => {
                jobs.insert(
                    def.id.clone(),
                    Held {
                        def,
                        state: JobState::new(),
                        ticks: 0,
                        last_tick: None,
                        next_due: None,
                        runs: VecDeque::new(),
                    },
                );
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, Held, BuildIdHasher>> {
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
                def: (*h.def).clone(),
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
        self.hold(Arc::new(def.clone()));
        Ok(())
    }

    async fn put_job_shared(&self, def: &Arc<JobDef>) -> Result<(), StoreError> {
        self.hold(Arc::clone(def));
        Ok(())
    }

    async fn set_enabled(&self, id: &JobId, enabled: bool) -> Result<(), StoreError> {
        if let Some(h) = self.lock().get_mut(id) {
            if h.def.enabled != enabled {
                Arc::make_mut(&mut h.def).enabled = enabled;
            }
        }
        Ok(())
    }

    async fn delete_job(&self, id: &JobId) -> Result<(), StoreError> {
        self.lock().remove(id);
        Ok(())
    }

    async fn record_run(&self, run: &RunRecord, save: Option<&TickSave>) -> Result<(), StoreError> {
        let mut jobs = self.lock();
        let Some(h) = jobs.get_mut(&run.job) else {
            return Ok(());
        };
        if self.max_runs > 0 {
            while h.runs.len() >= self.max_runs {
                h.runs.pop_front();
            }
            // Grow by doubling, but never past the bound: a full history
            // holds `max_runs` records, not the next power of two.
            if h.runs.len() == h.runs.capacity() {
                let want = (h.runs.capacity() * 2).max(4).min(self.max_runs);
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
