//! Persistence of the scheduler: the [`JobStore`] trait, with an in-memory
//! ([`MemoryStore`]) and a SQLite ([`SqliteStore`]) implementation.
//!
//! Guarantees every implementation must keep:
//! - [`JobStore::record_runs`] saves each run it is given, in order, as
//!   one transaction of its own (or part of a larger one): the run record,
//!   the job's tick count and (after a success) its new state are all
//!   written, or none is; a crash between a tick and its save loses at most
//!   that tick; a run that fails to save does not stop the next;
//! - a job's run history is bounded (`max_runs_per_job`), the oldest
//!   records trimmed first;
//! - [`JobStore::put_job`] inserts or updates a job's definition (enabled
//!   or not included) and keeps its state, tick count and history;
//!   [`JobStore::delete_job`] removes all three;
//! - a run recorded for a job that no longer exists is dropped.

mod memory;
#[cfg(feature = "sqlite")]
mod sqlite;

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
    #[error("sqlite failed")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored value cannot be read back (no underlying error: the value
    /// is not one this version writes).
    #[error("corrupt store: unreadable {what} {value:?}")]
    Corrupt {
        /// What the value should have been (`run reason`, `run outcome`).
        what: &'static str,
        /// The value found.
        value: String,
    },
    /// The blocking task that ran the operation failed (it panicked, or
    /// the runtime is shutting down).
    #[error("the store's blocking task failed")]
    Task(#[from] tokio::task::JoinError),
}

/// Runs of a [`JobStore::record_runs`] batch that were not saved.
#[derive(Debug, thiserror::Error)]
#[error("{failed} run(s) not saved")]
pub struct RunsNotSaved {
    /// The first run's error.
    #[source]
    pub first: StoreError,
    /// How many runs failed (at least 1).
    pub failed: usize,
}

/// Where the scheduler keeps its jobs, their state and their run history.
///
/// The scheduler calls it after each change is live in memory: a job put
/// (registered, updated, enabled or disabled) or deleted, and the runs
/// that ended in one turn of its worker. It reads it back whole once, on
/// start, and for [`Scheduler::recent_runs`](super::Scheduler::recent_runs).
#[async_trait]
pub trait JobStore: Send + Sync + 'static {
    /// Every stored job.
    async fn load(&self) -> Result<Vec<StoredJob>, StoreError>;
    /// Insert `def`, or update the definition of the job with its id
    /// (keeping its state, tick count and history).
    async fn put_job(&self, def: &JobDef) -> Result<(), StoreError>;
    /// Remove job `id` with its state and history (nothing if unknown).
    async fn delete_job(&self, id: &JobId) -> Result<(), StoreError>;
    /// Save `runs`, in order: for each, in one transaction, append the run
    /// to its job's history (trimming the oldest past the bound) and apply
    /// its save, if any; a run of a job that is not stored is dropped.
    /// Every run is attempted even after one fails; the error names the
    /// first failure and how many failed.
    async fn record_runs(&self, runs: &[(RunRecord, Option<TickSave>)])
        -> Result<(), RunsNotSaved>;
    /// The newest `limit` runs of job `id`, newest first.
    async fn recent_runs(&self, id: &JobId, limit: usize) -> Result<Vec<RunRecord>, StoreError>;
}
