//! What a job does: the [`TickJob`] trait, the [`TickContext`] each tick
//! gets, and the [`JobRegistry`] that maps a job's kind to its
//! implementation.
//!
//! Guarantees: a tick sees its job's definition, its tick number, when the
//! previous tick started, and the job's state as saved by the last
//! successful tick; what it writes to [`TickContext::state_mut`] is saved
//! only if it returns `Ok` and its run is the job's current version.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use tether_core::tick::{RunReason, Version};

use super::job::{JobDef, JobId, Labels};
use super::state::JobState;

/// A boxed error, as returned by a failing tick.
pub type TickFailure = Box<dyn std::error::Error + Send + Sync>;

/// A kind of periodic job. One value serves every job of its kind (the
/// job's own settings are in [`TickContext::config`]).
#[async_trait]
pub trait TickJob: Send + Sync + 'static {
    /// Run one tick. An error, a panic, or running past the schedule's
    /// `run_timeout` is a failed run: the job backs off.
    async fn tick(&self, ctx: &mut TickContext) -> Result<(), TickFailure>;
}

/// Everything one tick is given.
#[derive(Debug)]
pub struct TickContext {
    pub(super) def: Arc<JobDef>,
    pub(super) version: Version,
    pub(super) tick: u64,
    pub(super) previous: Option<SystemTime>,
    pub(super) scheduled_for: SystemTime,
    pub(super) reason: RunReason,
    pub(super) state: JobState,
}

impl TickContext {
    /// The job's id.
    pub fn job(&self) -> &JobId {
        &self.def.id
    }

    /// The job's name.
    pub fn name(&self) -> &str {
        &self.def.name
    }

    /// The job's labels.
    pub fn labels(&self) -> &Labels {
        &self.def.labels
    }

    /// The job's configuration.
    pub fn config(&self) -> &str {
        &self.def.config
    }

    /// The job's schedule version this run belongs to.
    pub fn version(&self) -> Version {
        self.version
    }

    /// This tick's number: 1 for the job's first, counting every recorded
    /// tick (succeeded or not) across restarts.
    pub fn tick(&self) -> u64 {
        self.tick
    }

    /// When the previous recorded tick started; `None` for the first.
    pub fn previous(&self) -> Option<SystemTime> {
        self.previous
    }

    /// The grid slot (scheduled), the request (manual) or the retry instant
    /// this run serves.
    pub fn scheduled_for(&self) -> SystemTime {
        self.scheduled_for
    }

    /// Why it runs.
    pub fn reason(&self) -> RunReason {
        self.reason
    }

    /// The job's state, as saved by its last successful tick.
    pub fn state(&self) -> &JobState {
        &self.state
    }

    /// The job's state, to change: saved only if this tick succeeds.
    pub fn state_mut(&mut self) -> &mut JobState {
        &mut self.state
    }
}

/// Job kinds and their implementations.
#[derive(Clone, Default)]
pub struct JobRegistry {
    kinds: HashMap<String, Arc<dyn TickJob>>,
}

impl std::fmt::Debug for JobRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut kinds: Vec<_> = self.kinds.keys().collect();
        kinds.sort();
        f.debug_struct("JobRegistry")
            .field("kinds", &kinds)
            .finish()
    }
}

impl JobRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same, with `job` serving `kind` (replacing any previous one).
    pub fn with(mut self, kind: impl Into<String>, job: impl TickJob) -> Self {
        self.register(kind, job);
        self
    }

    /// Let `job` serve `kind` (replacing any previous one).
    pub fn register(&mut self, kind: impl Into<String>, job: impl TickJob) {
        self.kinds.insert(kind.into(), Arc::new(job));
    }

    /// The implementation of `kind`.
    pub fn get(&self, kind: &str) -> Option<Arc<dyn TickJob>> {
        self.kinds.get(kind).cloned()
    }

    /// Whether `kind` is registered.
    pub fn contains(&self, kind: &str) -> bool {
        self.kinds.contains_key(kind)
    }
}
