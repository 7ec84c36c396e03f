//! The persistent tick scheduler: periodic jobs, scheduled by the core's
//! tick schedule ([`tether_core::tick`]), run by kind through a
//! [`JobRegistry`], persisted in a [`JobStore`].
//!
//! Guarantees:
//! - one timer task serves every job, plus one worker task, plus one task
//!   per tick still running after its first poll (a tick that completes at
//!   once runs inside the worker task): never a task per job;
//! - at most one tick of a job runs at a time; a manual
//!   [`Scheduler::tick_now`] during a tick coalesces into one tick after it;
//! - [`Scheduler::upsert`] hot-swaps a job: the new version takes over
//!   without a double tick and a result of the old version is ignored
//!   ([`RunOutcome::Superseded`]);
//! - consecutive failures back off 1 s, 2 s, 4 s, 8 s, 16 s, then 30 s
//!   (configurable) and a success resets it; a tick that returns an error,
//!   panics, or runs past the configured `run_timeout` (it is then stopped)
//!   is a failed run, never a dead scheduler;
//! - a tick's state ([`TickContext::state_mut`]) is saved only if it
//!   succeeds, in the same store transaction as its run record;
//! - run history is bounded per job, the oldest trimmed;
//! - on start, the stored jobs are resumed with their state, tick count and
//!   history; enabled ones tick again.
//!
//! ```
//! use std::time::Duration;
//! use async_trait::async_trait;
//! use tether_tokio::scheduler::{
//!     JobDef, JobRegistry, MemoryStore, RunEvent, Scheduler, SchedulerConfig, TickContext,
//!     TickFailure, TickJob,
//! };
//!
//! struct Counter;
//!
//! #[async_trait]
//! impl TickJob for Counter {
//!     async fn tick(&self, ctx: &mut TickContext) -> Result<(), TickFailure> {
//!         let n: u64 = ctx.state().get("n").unwrap_or("0").parse()?;
//!         ctx.state_mut().set("n", (n + 1).to_string())?;
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let registry = JobRegistry::new().with("counter", Counter);
//! let store = MemoryStore::default(); // or SqliteStore::open("jobs.db").await?
//! let scheduler = Scheduler::start(SchedulerConfig::default(), registry, store)
//!     .await
//!     .unwrap();
//! let job = JobDef::new("count", "counter", Duration::from_secs(3600)).with_label("team", "infra");
//! scheduler.upsert(job).await.unwrap();
//! let mut runs = scheduler.subscribe();
//! scheduler.tick_now(&"count".into()).unwrap();
//! let Some(RunEvent::Finished(run)) = runs.recv().await else { panic!() };
//! assert_eq!(run.tick, 1);
//! assert_eq!(scheduler.state(&"count".into()).unwrap().get("n"), Some("1"));
//! scheduler.shutdown().await;
//! # }
//! ```

mod config;
mod error;
mod job;
mod labels;
mod record;
mod service;
mod shared;
mod state;
mod store;
mod tick_job;
mod wall;
mod worker;

pub use config::{SchedulerConfig, DEFAULT_SHUTDOWN_GRACE, DEFAULT_SUBSCRIBER_CAPACITY};
pub use error::SchedulerError;
pub use job::{JobDef, JobId, JobInfo, Labels};
pub use labels::{LabelSelector, SelectorError};
pub use record::{RunEvent, RunOutcome, RunRecord, RunSubscription};
pub use service::Scheduler;
pub use state::{JobState, StateFull, MAX_STATE_BYTES, MAX_STATE_ENTRIES};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use store::SqliteStore;
pub use store::{
    JobStore, MemoryStore, RunsNotSaved, StoreError, StoredJob, TickSave, DEFAULT_MAX_RUNS_PER_JOB,
};
pub use tether_core::tick::{MissedTicks, RunReason, TickConfig, TickNow, Version};
pub use tick_job::{JobRegistry, TickContext, TickFailure, TickJob};
