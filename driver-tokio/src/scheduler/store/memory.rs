//! [`MemoryStore`]: a [`JobStore`] in process memory (tests, ephemeral
//! schedulers).
//!
//! Guarantees: those of [`JobStore`]; every operation holds one lock, so
//! each is atomic. Clones share the same data, so a scheduler restarted on
//! a clone resumes what the previous one stored. Jobs are held by hash (a
//! tick's record finds its job in one probe) and loaded in id order.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;

use super::{JobStore, StoreError, StoredJob, TickSave, DEFAULT_MAX_RUNS_PER_JOB};
use crate::scheduler::job::{JobDef, JobId};
use crate::scheduler::record::RunRecord;
use crate::scheduler::state::JobState;

#[derive(Debug)]
struct Held {
    def: JobDef,
    state: JobState,
    ticks: u64,
    last_tick: Option<SystemTime>,
    next_due: Option<SystemTime>,
    runs: VecDeque<RunRecord>,
}

/// A [`JobStore`] in memory. Cheap to clone (clones share the data).
#[derive(Clone, Debug)]
pub struct MemoryStore {
    jobs: Arc<Mutex<HashMap<JobId, Held>>>,
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, Held>> {
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

    async fn set_enabled(&self, id: &JobId, enabled: bool) -> Result<(), StoreError> {
        if let Some(h) = self.lock().get_mut(id) {
            h.def.enabled = enabled;
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
        h.runs.push_back(run.clone());
        while h.runs.len() > self.max_runs {
            h.runs.pop_front();
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
            .map(|h| h.runs.iter().rev().take(limit).cloned().collect())
            .unwrap_or_default())
    }
}
