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
//! - a run recorded for a job that no longer exists is dropped.

mod memory;
mod sqlite;

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;

pub use memory::MemoryStore;
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
pub enum StoreError {
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Stored data cannot be read back.
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The store's worker is gone.
    #[error("the store is closed")]
    Closed,
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
    /// The newest `limit` runs of job `id`, newest first.
    async fn recent_runs(&self, id: &JobId, limit: usize) -> Result<Vec<RunRecord>, StoreError>;
}
