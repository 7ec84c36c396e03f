//! Persistence of the scheduler: the [`JobStore`] trait, with an in-memory
//! ([`MemoryStore`]) and a SQLite ([`SqliteStore`]) implementation.
//!
//! Guarantees every implementation must keep:
//! - [`JobStore::record_run`] is one transaction: the run record, the
//!   job's tick count and (after a success) its new state are all written,
//!   or none is; a crash between a tick and its save loses at most that
//!   tick;
//! - a job's run history is bounded (`max_runs_per_job`), the oldest
//!   records trimmed first;
//! - [`JobStore::put_job`] updates a job's definition and keeps its state,
//!   tick count and history; [`JobStore::delete_job`] removes all three;
//! - a run recorded for a job that no longer exists is dropped;
//! - [`JobStore::record_runs`] keeps every guarantee of `record_run` for
//!   each run it is given (each is one transaction of its own, or part of
//!   a larger one), in order; a run that fails to save does not stop the
//!   next.

mod memory;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;

pub use memory::MemoryStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::SqliteStore;

use super::job::{JobDef, JobId};
use super::record::RunRecord;
use super::state::JobState;

/// Run records kept per job by default: the last 8, enough to see a job's
/// recent pattern (a whole failure backoff, 1 s to 30 s, fits), small
/// enough that history never dominates the store at any scale.
///
/// Its memory cost in a [`MemoryStore`] is 64 bytes a record (plus the
/// message of a failure or a panic): a full history is about 512 bytes per
/// job, about 50 MiB for 100,000 jobs. Pass a larger bound to
/// [`MemoryStore::new`] or [`SqliteStore::open_with`] to keep more. A
/// configured bound is always kept to exactly.
pub const DEFAULT_MAX_RUNS_PER_JOB: usize = 8;

/// A job as read back from a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredJob {
    /// Its definition.
    pub def: JobDef,
    /// Its state, as saved by its last successful tick.
    pub state: JobState,
    /// Ticks recorded.
    pub ticks: u64,
    /// When the last recorded tick started.
    pub last_tick: Option<SystemTime>,
    /// Its next grid slot when last saved (`None`: unknown or disabled).
    pub next_due: Option<SystemTime>,
}

/// What a finished tick changes besides its run record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TickSave {
    /// The job's tick count, this tick included.
    pub ticks: u64,
    /// When this tick started.
    pub last_tick: SystemTime,
    /// The job's next grid slot.
    pub next_due: Option<SystemTime>,
    /// The state to save (`Some` only after a success).
    pub state: Option<JobState>,
}

/// A store operation that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite failed.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    #[error("sqlite")]
    Sqlite(#[from] rusqlite::Error),
    /// Stored data cannot be read back.
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The store's worker is gone.
    #[error("the store is closed")]
    Closed,
}

/// Runs of a [`JobStore::record_runs`] batch that were not saved.
#[derive(Debug, thiserror::Error)]
#[error("{failed} run(s) not saved, the first: {first}")]
pub struct RunsNotSaved {
    /// The first run's error.
    pub first: StoreError,
    /// How many runs failed (at least 1).
    pub failed: usize,
}

impl RunsNotSaved {
    /// Count `e` in `failed` (kept as the first error if it is).
    pub fn add(failed: &mut Option<RunsNotSaved>, e: StoreError) {
        match failed {
            Some(f) => f.failed += 1,
            None => {
                *failed = Some(RunsNotSaved {
                    first: e,
                    failed: 1,
                })
            }
        }
    }
}

/// Where the scheduler keeps its jobs, their state and their run history.
#[async_trait]
pub trait JobStore: Send + Sync + 'static {
    /// Every stored job.
    async fn load(&self) -> Result<Vec<StoredJob>, StoreError>;
    /// Insert `def`, or update the definition of the job with its id
    /// (keeping its state, tick count and history).
    async fn put_job(&self, def: &JobDef) -> Result<(), StoreError>;
    /// [`put_job`](JobStore::put_job) with the scheduler's shared copy of
    /// the definition: a store in memory may keep the `Arc` instead of a
    /// copy of its own. By default, `put_job(def)`.
    async fn put_job_shared(&self, def: &Arc<JobDef>) -> Result<(), StoreError> {
        self.put_job(def).await
    }
    /// Set whether job `id` is enabled (nothing if unknown).
    async fn set_enabled(&self, id: &JobId, enabled: bool) -> Result<(), StoreError>;
    /// Remove job `id` with its state and history (nothing if unknown).
    async fn delete_job(&self, id: &JobId) -> Result<(), StoreError>;
    /// In one transaction: append `run` to its job's history (trimming the
    /// oldest past the bound) and apply `save`, if any. Dropped if the job
    /// is not stored.
    async fn record_run(&self, run: &RunRecord, save: Option<&TickSave>) -> Result<(), StoreError>;
    /// [`record_run`](JobStore::record_run) for each of `runs`, in order
    /// (the scheduler's worker hands it the ticks that ended in one turn).
    /// Every run is attempted, each with its own guarantees, even after
    /// one fails; the result is the first failure and how many failed.
    /// By default, `record_run` for each; an implementation overrides it to
    /// take its lock or reach its thread once per batch.
    async fn record_runs(
        &self,
        runs: &[(RunRecord, Option<TickSave>)],
    ) -> Result<(), RunsNotSaved> {
        let mut failed: Option<RunsNotSaved> = None;
        for (run, save) in runs {
            if let Err(e) = self.record_run(run, save.as_ref()).await {
                RunsNotSaved::add(&mut failed, e);
            }
        }
        failed.map_or(Ok(()), Err)
    }
    /// The newest `limit` runs of job `id`, newest first.
    async fn recent_runs(&self, id: &JobId, limit: usize) -> Result<Vec<RunRecord>, StoreError>;
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use tether_core::tick::RunReason;

    use super::*;
    use crate::scheduler::record::RunOutcome;

    /// A store with only the required methods (so `record_runs` is the
    /// default) over a [`MemoryStore`], failing every run of job `bad`.
    struct Picky(MemoryStore);

    #[async_trait]
    impl JobStore for Picky {
        async fn load(&self) -> Result<Vec<StoredJob>, StoreError> {
            self.0.load().await
        }
        async fn put_job(&self, def: &JobDef) -> Result<(), StoreError> {
            self.0.put_job(def).await
        }
        async fn set_enabled(&self, id: &JobId, enabled: bool) -> Result<(), StoreError> {
            self.0.set_enabled(id, enabled).await
        }
        async fn delete_job(&self, id: &JobId) -> Result<(), StoreError> {
            self.0.delete_job(id).await
        }
        async fn record_run(
            &self,
            run: &RunRecord,
            save: Option<&TickSave>,
        ) -> Result<(), StoreError> {
            if run.job.as_str() == "bad" {
                return Err(StoreError::Corrupt(format!("tick {}", run.tick)));
            }
            self.0.record_run(run, save).await
        }
        async fn recent_runs(
            &self,
            id: &JobId,
            limit: usize,
        ) -> Result<Vec<RunRecord>, StoreError> {
            self.0.recent_runs(id, limit).await
        }
    }

    fn run(job: &str, tick: u64) -> (RunRecord, Option<TickSave>) {
        let t = UNIX_EPOCH + Duration::from_secs(tick);
        let record = RunRecord {
            job: JobId::from(job),
            version: 1,
            run: tick,
            tick,
            reason: RunReason::Scheduled,
            scheduled_for: t,
            started_at: t,
            finished_at: t,
            outcome: RunOutcome::Success,
        };
        let save = TickSave {
            ticks: tick,
            last_tick: t,
            next_due: None,
            state: None,
        };
        (record, Some(save))
    }

    #[tokio::test]
    async fn the_default_batch_tries_every_run_and_reports_the_first_failure() {
        let store = Picky(MemoryStore::default());
        for id in ["good", "bad"] {
            store
                .put_job(&JobDef::new(id, "k", Duration::from_secs(1)))
                .await
                .unwrap();
        }
        let batch = [run("bad", 1), run("good", 2), run("bad", 3), run("good", 4)];
        let e = store.record_runs(&batch).await.unwrap_err();
        assert_eq!(e.failed, 2);
        assert!(
            matches!(&e.first, StoreError::Corrupt(m) if m == "tick 1"),
            "{e}"
        );
        let good = store.recent_runs(&JobId::from("good"), 10).await.unwrap();
        let ticks: Vec<u64> = good.iter().map(|r| r.tick).collect();
        assert_eq!(ticks, [4, 2], "runs after a failed one are still saved");
        let jobs = store.load().await.unwrap();
        let good = jobs.iter().find(|j| j.def.id.as_str() == "good").unwrap();
        assert_eq!(good.ticks, 4);
    }
}
