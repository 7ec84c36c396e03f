//! A job's identity and definition ([`JobId`], [`JobDef`]) and the view
//! the handle returns ([`JobInfo`]).
//!
//! Guarantees: a definition is plain data (no behaviour): its `kind` names
//! the [`TickJob`](super::TickJob) that runs it, looked up in the
//! [`JobRegistry`](super::JobRegistry), so a stored job can be resumed
//! after a restart.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tether_core::tick::Version;

/// A job's labels: free-form `key = value` pairs, selected with a
/// [`LabelSelector`](super::LabelSelector).
pub type Labels = BTreeMap<String, String>;

/// A job's unique id. Cheap to clone: the structures that hold the id
/// (the schedule, the jobs map, the records) share one allocation, and two
/// handles on that allocation compare equal without reading the string.
#[derive(Clone, Debug)]
pub struct JobId(Arc<str>);

impl std::hash::Hash for JobId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // The string's hash, as equality is the string's.
        self.0.hash(state)
    }
}

// Equality and order are the string's; the shared allocation only short-cuts
// them (an id looked up with the handle it was stored under is found without
// reading either string, one cache miss less per lookup).
impl PartialEq for JobId {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl Eq for JobId {}

impl PartialOrd for JobId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for JobId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if Arc::ptr_eq(&self.0, &other.0) {
            std::cmp::Ordering::Equal
        } else {
            self.0.cmp(&other.0)
        }
    }
}

impl JobId {
    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for JobId {
    fn from(s: &str) -> Self {
        JobId(Arc::from(s))
    }
}

impl From<String> for JobId {
    fn from(s: String) -> Self {
        JobId(Arc::from(s))
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a job is: registered with
/// [`Scheduler::upsert`](super::Scheduler::upsert) and persisted as is.
/// Built with [`JobDef::new`] and its `with_` methods (fields may be
/// added, so outside this crate it cannot be written as a literal).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobDef {
    /// Unique id.
    pub id: JobId,
    /// Human-readable name.
    pub name: String,
    /// Labels, for [`Scheduler::list`](super::Scheduler::list).
    pub labels: Labels,
    /// Time between ticks (zero is refused).
    pub interval: Duration,
    /// Whether it ticks.
    pub enabled: bool,
    /// The [`TickJob`](super::TickJob) kind that runs it.
    pub kind: String,
    /// Configuration handed to each tick, opaque to the scheduler (JSON,
    /// say).
    pub config: String,
}

impl JobDef {
    /// An enabled job `id` of `kind`, every `interval`, named after its id,
    /// with no labels and an empty configuration.
    pub fn new(id: impl Into<JobId>, kind: impl Into<String>, interval: Duration) -> Self {
        let id = id.into();
        JobDef {
            name: id.as_str().to_owned(),
            id,
            labels: Labels::new(),
            interval,
            enabled: true,
            kind: kind.into(),
            config: String::new(),
        }
    }

    /// The same, named `name`.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The same, with the label `key = value`.
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// The same, configured by `config`.
    pub fn with_config(mut self, config: impl Into<String>) -> Self {
        self.config = config.into();
        self
    }

    /// The same, enabled or not.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }
}

/// A job as seen through [`Scheduler::get`](super::Scheduler::get) and
/// [`Scheduler::list`](super::Scheduler::list).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobInfo {
    /// Its definition.
    pub def: JobDef,
    /// Its current schedule version (new on every update).
    pub version: Version,
    /// Ticks recorded (succeeded, failed, panicked or timed out), across
    /// restarts.
    pub ticks: u64,
    /// When the last recorded tick started.
    pub last_tick: Option<SystemTime>,
    /// Its next grid slot (`None` while disabled).
    pub next_due: Option<SystemTime>,
    /// Consecutive failures.
    pub failures: u32,
    /// When its retry is due, after a failure.
    pub retry_at: Option<SystemTime>,
    /// Whether a tick of it runs now.
    pub running: bool,
}
