//! What the scheduler's handle, its timer and its worker share: the core
//! schedule behind its cell, the jobs' definitions and state, the registry,
//! the store and the broadcast of finished runs.
//!
//! Guarantees: the jobs map is never locked while the schedule's cell is
//! fed (its executor only queues commands for the worker), so no lock is
//! ever taken inside another.

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
use super::table::{JobTable, Keyed, NO_SLOT};
use super::tick_job::{JobRegistry, TickJob};
use super::wall::Wall;
use crate::runtime::Driven;

pub(super) type Cell = Driven<TickSchedule<Key>>;

/// The schedule's key for a job: its id behind a hash computed once, so
/// the schedule's ordered maps compare one integer per step instead of two
/// strings (only equal hashes fall back to the id). The schedule's order of
/// jobs carries no meaning, so ordering by hash changes nothing it does.
///
/// It also carries the job's slot in the [`JobTable`] as a hint (not part
/// of its identity: equality and order ignore it), so a tick the schedule
/// starts finds its job's entry without a hash lookup.
#[derive(Clone, Debug)]
pub(super) struct Key {
    hash: u64,
    pub(super) id: JobId,
    pub(super) slot: u32,
}

impl Key {
    /// The key of `id`, with no slot hint (for naming a job to the schedule).
    pub(super) fn of(id: &JobId) -> Self {
        Key::at(id, NO_SLOT)
    }

    /// The key of `id`, held in `slot` of the job table.
    pub(super) fn at(id: &JobId, slot: u32) -> Self {
        Key {
            hash: tether_core::id_hash::hash_id(id.as_str()),
            id: id.clone(),
            slot,
        }
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.id == other.id
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.hash
            .cmp(&other.hash)
            .then_with(|| self.id.cmp(&other.id))
    }
}

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

impl Keyed for Entry {
    fn job_id(&self) -> &JobId {
        &self.def.id
    }
}

/// A tick the schedule started: which job, version and run, why, and for
/// which slot. The worker carries it from the command to the run record.
#[derive(Debug)]
pub(super) struct TickOrder {
    pub(super) job: JobId,
    /// The job's slot in the job table (a hint).
    pub(super) slot: u32,
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
    pub(super) fn of(action: TickAction<Key>) -> Self {
        match action {
            TickAction::RunTick {
                job,
                version,
                run,
                scheduled_for,
                reason,
            } => Command::Run(TickOrder {
                slot: job.slot,
                job: job.id,
                version,
                run,
                scheduled_for,
                reason,
            }),
            TickAction::GiveUp { run, .. } => Command::GiveUp { run },
        }
    }
}

pub(super) struct Shared {
    pub(super) cell: Arc<Cell>,
    pub(super) jobs: Mutex<JobTable<Entry>>,
    pub(super) registry: JobRegistry,
    pub(super) store: Arc<dyn JobStore>,
    pub(super) wall: Wall,
    pub(super) events: Mutex<Option<broadcast::Sender<RunRecord>>>,
    pub(super) commands: mpsc::UnboundedSender<Command>,
    pub(super) admin: tokio::sync::Mutex<()>,
    pub(super) closed: AtomicBool,
}

impl Shared {
    pub(super) fn jobs(&self) -> MutexGuard<'_, JobTable<Entry>> {
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
