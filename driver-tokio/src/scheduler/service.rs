//! [`Scheduler`]: the handle of the persistent tick scheduler.
//!
//! Guarantees: every scheduling decision is the core tick schedule's (one
//! timer task for all jobs, at most one tick of a job at a time, a hot
//! swap never double-ticks and ignores the old version's result, failures
//! back off 1 s, 2 s, 4 s, … 30 s and a success resets it, no drift, missed
//! ticks skipped); changes to jobs are serialised (one at a time: the
//! schedule and the jobs map together under the jobs lock, then the
//! store); on start the stored jobs are resumed, enabled ones ticking
//! again; dropping the last handle without [`Scheduler::shutdown`] ends
//! the timer and worker tasks and stops the running ticks.

use std::collections::hash_map::Entry as Slot;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tether_core::tick::{JobSpec, TickNow, TickSchedule, TickStats, TickTimer, Version};
use tether_core::{Deadline, Machine};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::{AbortHandle, JoinHandle};

use super::config::SchedulerConfig;
use super::error::SchedulerError;
use super::job::{JobDef, JobId, JobInfo};
use super::labels::LabelSelector;
use super::record::{RunRecord, RunSubscription};
use super::shared::{Command, Entry, JobMap, Shared};
use super::state::JobState;
use super::store::{JobStore, StoreError};
use super::tick_job::JobRegistry;
use super::wall::Wall;
use super::worker;
use crate::metrics_names::SCHEDULER_STORE_ERRORS;
use crate::runtime::{Clock, Driven, TimerTask};

/// The background tasks, held once for every clone of the handle: when the
/// last clone goes, the timer task is stopped by its handle's drop and the
/// worker by `_worker_stop` (which drops its running ticks with it).
struct Tasks {
    timer: TimerTask,
    worker: JoinHandle<()>,
    _worker_stop: AbortOnDrop,
}

/// Aborts a task when dropped (after `shutdown`, the task has ended
/// already and this does nothing).
struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The persistent tick scheduler. Cheap to clone; every clone drives the
/// same scheduler. Stop it with [`Scheduler::shutdown`]; dropping the last
/// clone stops it at once (timer, worker and running ticks, unsaved). A
/// clone held inside a job's [`TickJob`](super::TickJob) keeps it alive.
#[derive(Clone)]
pub struct Scheduler {
    shared: Arc<Shared>,
    tasks: Arc<Mutex<Option<Tasks>>>,
    grace: std::time::Duration,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("stats", &self.stats())
            .finish()
    }
}

fn store_err(e: StoreError) -> SchedulerError {
    metrics::counter!(SCHEDULER_STORE_ERRORS).increment(1);
    SchedulerError::Store(e)
}

impl Scheduler {
    /// Start a scheduler on the current tokio runtime: read `store`, resume
    /// its jobs (enabled ones tick again, from their stored next slot), and
    /// run the job kinds of `registry`.
    pub async fn start(
        config: SchedulerConfig,
        registry: JobRegistry,
        store: impl JobStore,
    ) -> Result<Self, SchedulerError> {
        let store: Arc<dyn JobStore> = Arc::new(store);
        let stored = store.load().await.map_err(store_err)?;
        let clock = Clock::new();
        let wall = Wall::new(clock);
        let (commands, rx) = mpsc::unbounded_channel();
        let exec = commands.clone();
        let cell = Driven::new(TickSchedule::new(config.tick.clone()), clock, move |a| {
            let _ = exec.send(Command::of(a));
        });
        let (events, _) = broadcast::channel(config.subscriber_capacity.max(1));
        let shared = Arc::new(Shared {
            cell,
            jobs: Mutex::new(JobMap::default()),
            registry,
            store,
            wall,
            events: Mutex::new(Some(events)),
            commands,
            admin: tokio::sync::Mutex::new(()),
            closed: AtomicBool::new(false),
        });
        let worker = tokio::spawn(worker::run(Arc::downgrade(&shared), rx));
        let timer = shared.cell.spawn_timer();
        let mut resumed = 0usize;
        for job in stored {
            let spec = JobSpec::every(job.def.interval).enabled(job.def.enabled);
            let first = job.next_due.map(|t| wall.timestamp(t));
            let id = job.def.id.clone();
            let mut jobs = shared.jobs();
            let r = shared.cell.with(|m, now| {
                let spec = match first {
                    Some(t) => spec.first_at(t.max(now)),
                    None => spec,
                };
                m.upsert(now, id.clone(), spec)
            });
            match r {
                Ok(_) => {
                    resumed += 1;
                    jobs.insert(
                        id,
                        Entry {
                            imp: shared.registry.get(&job.def.kind),
                            def: Arc::new(job.def),
                            state: job.state,
                            ticks: job.ticks,
                            last_tick: job.last_tick,
                        },
                    );
                }
                Err(e) => tracing::warn!(job = %id, error = %e, "stored job not resumed"),
            }
        }
        tracing::info!(jobs = resumed, "scheduler started");
        Ok(Scheduler {
            shared,
            tasks: Arc::new(Mutex::new(Some(Tasks {
                _worker_stop: AbortOnDrop(worker.abort_handle()),
                timer,
                worker,
            }))),
            grace: config.shutdown_grace,
        })
    }

    fn open(&self) -> Result<(), SchedulerError> {
        if self.shared.closed.load(Ordering::Acquire) {
            Err(SchedulerError::Shutdown)
        } else {
            Ok(())
        }
    }

    /// Register `def`, or update the job with its id (hot swap): the new
    /// definition takes over with a new version and a fresh grid; a tick of
    /// the old version still running finishes first (no double tick) and
    /// its result is ignored. The job's state, tick count and history are
    /// kept. Returns the new version.
    pub async fn upsert(&self, def: JobDef) -> Result<Version, SchedulerError> {
        self.open()?;
        if !self.shared.registry.contains(&def.kind) {
            return Err(SchedulerError::UnknownKind(def.kind));
        }
        let _admin = self.shared.admin.lock().await;
        let spec = JobSpec::every(def.interval).enabled(def.enabled);
        let imp = self.shared.registry.get(&def.kind);
        // One copy of the definition, shared by the jobs map and the ticks.
        let def = Arc::new(def);
        let version = {
            let mut jobs = self.shared.jobs();
            let version = self
                .shared
                .cell
                .with(|m, now| m.upsert(now, def.id.clone(), spec))
                .map_err(SchedulerError::Refused)?;
            match jobs.entry(def.id.clone()) {
                Slot::Occupied(mut e) => {
                    let e = e.get_mut();
                    e.def = Arc::clone(&def);
                    e.imp = imp;
                }
                Slot::Vacant(v) => {
                    v.insert(Entry {
                        def: Arc::clone(&def),
                        imp,
                        state: JobState::new(),
                        ticks: 0,
                        last_tick: None,
                    });
                }
            }
            version
        };
        self.shared.store.put_job(&def).await.map_err(store_err)?;
        Ok(version)
    }

    async fn set_enabled(&self, id: &JobId, enabled: bool) -> Result<(), SchedulerError> {
        self.open()?;
        let _admin = self.shared.admin.lock().await;
        let def = {
            let mut jobs = self.shared.jobs();
            self.shared
                .cell
                .with(|m, now| m.set_enabled(now, id, enabled))
                .map_err(SchedulerError::Refused)?;
            // Held: the schedule knows the job, and both change together.
            let Some(e) = jobs.get_mut(id) else {
                return Ok(());
            };
            Arc::make_mut(&mut e.def).enabled = enabled;
            Arc::clone(&e.def)
        };
        self.shared.store.put_job(&def).await.map_err(store_err)
    }

    /// Let job `id` tick again (its failure count reset, missed slots not
    /// run).
    pub async fn enable(&self, id: &JobId) -> Result<(), SchedulerError> {
        self.set_enabled(id, true).await
    }

    /// Stop job `id` from ticking (a running tick finishes).
    pub async fn disable(&self, id: &JobId) -> Result<(), SchedulerError> {
        self.set_enabled(id, false).await
    }

    /// Remove job `id`, its state and its history. A running tick of it
    /// finishes unhindered; its result is ignored.
    pub async fn delete(&self, id: &JobId) -> Result<(), SchedulerError> {
        self.open()?;
        let _admin = self.shared.admin.lock().await;
        {
            let mut jobs = self.shared.jobs();
            self.shared
                .cell
                .with(|m, _| m.remove(id))
                .map_err(SchedulerError::Refused)?;
            jobs.remove(id);
        }
        self.shared.store.delete_job(id).await.map_err(store_err)
    }

    fn info(&self, m: &TickSchedule<JobId>, e: &Entry) -> Option<JobInfo> {
        let st = m.job(&e.def.id)?;
        let wall = self.shared.wall;
        Some(JobInfo {
            def: (*e.def).clone(),
            version: st.version,
            ticks: e.ticks,
            last_tick: e.last_tick,
            next_due: st.enabled.then(|| wall.at(st.next_due)),
            failures: st.failures,
            retry_at: st.retry_at.map(|t| wall.at(t)),
            running: st.running.is_some(),
        })
    }

    /// Job `id`, if registered.
    pub fn get(&self, id: &JobId) -> Option<JobInfo> {
        let entry = self.shared.jobs().get(id).cloned()?;
        self.shared.cell.read(|m| self.info(m, &entry))
    }

    /// Every job whose labels match `selector`, by id.
    pub fn list(&self, selector: &LabelSelector) -> Vec<JobInfo> {
        let mut entries: Vec<Entry> = self
            .shared
            .jobs()
            .values()
            .filter(|e| selector.matches(&e.def.labels))
            .cloned()
            .collect();
        entries.sort_by(|a, b| a.def.id.cmp(&b.def.id));
        self.shared
            .cell
            .read(|m| entries.iter().filter_map(|e| self.info(m, e)).collect())
    }

    /// The job's state, as saved by its last successful tick.
    pub fn state(&self, id: &JobId) -> Option<JobState> {
        self.shared.jobs().get(id).map(|e| e.state.clone())
    }

    /// Tick job `id` now, off its grid. If a tick of it is running, one
    /// more follows it instead (never two at once).
    pub fn tick_now(&self, id: &JobId) -> Result<TickNow, SchedulerError> {
        self.open()?;
        self.shared
            .cell
            .with(|m, now| m.tick_now(now, id))
            .map_err(SchedulerError::Refused)
    }

    /// The newest `limit` finished runs of job `id`, newest first (from the
    /// store's bounded history).
    pub async fn recent_runs(
        &self,
        id: &JobId,
        limit: usize,
    ) -> Result<Vec<RunRecord>, SchedulerError> {
        self.shared
            .store
            .recent_runs(id, limit)
            .await
            .map_err(store_err)
    }

    /// Finished runs from now on. A subscriber that falls more than
    /// `subscriber_capacity` records behind is told how many it missed.
    pub fn subscribe(&self) -> RunSubscription {
        let events = self.shared.events.lock().unwrap_or_else(|e| e.into_inner());
        let rx = match events.as_ref() {
            Some(tx) => tx.subscribe(),
            None => broadcast::channel(1).1,
        };
        RunSubscription { rx }
    }

    /// The schedule's gauges and counters.
    pub fn stats(&self) -> TickStats {
        self.shared.cell.read(|m| m.stats())
    }

    /// When the one timer task wakes next, and why.
    pub fn next_wakeup(&self) -> Option<Deadline<TickTimer>> {
        self.shared.cell.read(|m| m.poll_timeout())
    }

    /// Stop gracefully: refuse further changes, stop the timer (no new
    /// tick starts), let running ticks finish and be saved for up to
    /// `shutdown_grace` (then stop them, unsaved), and end every
    /// subscription once it has received what was published. Idempotent.
    pub async fn shutdown(&self) {
        self.shared.closed.store(true, Ordering::Release);
        let tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(tasks) = tasks else { return };
        // Wait for a change in progress to finish.
        drop(self.shared.admin.lock().await);
        tasks.timer.stop().await;
        let (done, finished) = oneshot::channel();
        let _ = self.shared.commands.send(Command::Shutdown {
            grace: self.grace,
            done,
        });
        let _ = finished.await;
        let _ = tasks.worker.await;
        self.shared
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        tracing::info!(stats = ?self.stats(), "scheduler shut down");
    }
}
