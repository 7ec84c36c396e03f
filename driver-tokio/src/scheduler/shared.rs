//! What the scheduler's handle, its timer and its worker share: the core
//! schedule behind its cell, the jobs' definitions and state, the registry,
//! the store and the broadcast of finished runs.
//!
//! Who owns which fact: the core schedule owns every scheduling fact
//! (version, grid, enabled, failures, the running tick); the jobs map owns
//! each job's definition, implementation, state and tick count; the store
//! keeps the durable copy of the jobs map and the run history.
//!
//! Guarantees:
//! - locks are taken in one order, the jobs map before the schedule's cell
//!   (never the reverse; the cell's executor only queues commands for the
//!   worker), so no two tasks wait on each other;
//! - a change of a job reaches the schedule and the jobs map under the jobs
//!   lock: the schedule first (it may refuse, and then nothing changed),
//!   the map only once it accepted, so the worker never sees one without
//!   the other and there is nothing to roll back.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tether_core::tick::{RunReason, RunToken, TickAction, TickSchedule, Version};
use tether_core::Timestamp;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::job::{JobDef, JobId};
use super::record::RunRecord;
use super::state::JobState;
use super::store::JobStore;
use super::tick_job::{JobRegistry, TickJob};
use super::wall::Wall;
use crate::runtime::Driven;

pub(super) type Cell = Driven<TickSchedule<JobId>>;

/// A job's definition and persistent data, as the running scheduler holds
/// them.
#[derive(Clone)]
pub(super) struct Entry {
    /// Shared with the ticks running now, so starting one copies nothing.
    pub(super) def: Arc<JobDef>,
    /// The registry's implementation of `def.kind`, looked up when the
    /// definition is set (the registry never changes once started), so a
    /// tick needs no lookup by name.
    pub(super) imp: Option<Arc<dyn TickJob>>,
    pub(super) state: JobState,
    pub(super) ticks: u64,
    pub(super) last_tick: Option<SystemTime>,
}

/// A tick the schedule started: which job, version and run, why, and for
/// which slot. The worker carries it from the command to the run record.
#[derive(Debug)]
pub(super) struct TickOrder {
    pub(super) job: JobId,
    pub(super) version: Version,
    pub(super) run: RunToken,
    pub(super) scheduled_for: Timestamp,
    pub(super) reason: RunReason,
}

/// What the schedule's executor asks the worker to do.
#[derive(Debug)]
pub(super) enum Command {
    Run(TickOrder),
    GiveUp {
        run: RunToken,
    },
    Shutdown {
        grace: Duration,
        done: oneshot::Sender<()>,
    },
}

impl Command {
    pub(super) fn of(action: TickAction<JobId>) -> Self {
        match action {
            TickAction::RunTick {
                job,
                version,
                run,
                scheduled_for,
                reason,
            } => Command::Run(TickOrder {
                job,
                version,
                run,
                scheduled_for,
                reason,
            }),
            TickAction::GiveUp { run, .. } => Command::GiveUp { run },
        }
    }
}

/// The scheduler's jobs by id, hashed with the core's id hash (a few
/// multiplies per id word, where std's SipHash runs its rounds per lookup;
/// a tick looks its job up here and in the store).
pub(super) type JobMap = HashMap<JobId, Entry, tether_core::id_hash::BuildIdHasher>;

pub(super) struct Shared {
    pub(super) cell: Arc<Cell>,
    pub(super) jobs: Mutex<JobMap>,
    pub(super) registry: JobRegistry,
    pub(super) store: Arc<dyn JobStore>,
    pub(super) wall: Wall,
    pub(super) events: Mutex<Option<broadcast::Sender<RunRecord>>>,
    pub(super) commands: mpsc::UnboundedSender<Command>,
    pub(super) admin: tokio::sync::Mutex<()>,
    pub(super) closed: AtomicBool,
}

impl Shared {
    pub(super) fn jobs(&self) -> MutexGuard<'_, JobMap> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Broadcast `records`, in order, under one lock.
    pub(super) fn publish(&self, records: impl IntoIterator<Item = RunRecord>) {
        let events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        match events.as_ref() {
            Some(tx) => {
                for record in records {
                    let _ = tx.send(record);
                }
            }
            None => drop(records.into_iter()),
        }
    }
}
