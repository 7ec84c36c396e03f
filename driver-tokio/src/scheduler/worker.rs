//! The worker: one task that starts each tick the schedule asks for, as a
//! task of its own in one `JoinSet`, and turns each ending into the
//! schedule's input, a persisted record and a broadcast.
//!
//! Guarantees:
//! - a tick that returns, fails, panics (caught through its task's
//!   `JoinHandle` result) or is stopped after `run_timeout` yields exactly
//!   one record (one the schedule gave up just before its ending was told
//!   is recorded as timed out); none of them stops the worker;
//! - the schedule hears of every ending it asked about, before the record
//!   is written, so the job's next tick starts only after this one ended;
//!   the ticks that end in one turn of the loop (a slot's worth of due
//!   ticks that complete at once) are told to it together, in one input;
//! - a tick's state and its record are saved in one store transaction, the
//!   state only after a success the schedule accepted (a superseded
//!   version's result is recorded, never saved); the records of one turn
//!   go to the store in one [`JobStore::record_runs`] batch, in the order
//!   the ticks ended, and to subscribers under one lock;
//! - the ticks asked for in one turn read their jobs' entries under one
//!   lock, released before the first is polled;
//! - tasks: this one, plus one per tick still running after its first
//!   poll (none per job): a tick is first polled here, and one that
//!   completes at once (most periodic bodies that only touch memory) ends
//!   without a task spawn or a cross-thread wake-up; a panic in that poll
//!   is caught as in a task.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};

use tether_core::tick::{RunToken, StaleRun, TickOutcome, TickSchedule};
use tether_core::Timestamp;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{AbortHandle, Id, JoinError, JoinSet};
use tokio::time::Instant;
use tracing::Instrument;

use super::job::JobId;
use super::record::{RunOutcome, RunRecord};
use super::shared::{Command, Entry, Shared, TickOrder};
use super::state::JobState;
#[cfg(doc)]
use super::store::JobStore;
use super::store::TickSave;
use super::tick_job::TickContext;
use crate::metrics_names::{SCHEDULER_STORE_ERRORS, SCHEDULER_TICKS, SCHEDULER_TICK_SECONDS};

type TickResult = (JobState, Result<(), String>);

/// How a tick ended, before the schedule's verdict.
enum Ended {
    Returned(TickResult),
    Panicked(Box<dyn Any + Send>),
    Cancelled,
}

/// A tick running now.
struct Running {
    order: TickOrder,
    started: Timestamp,
    tick: u64,
}

#[derive(Default)]
struct Ticks {
    set: JoinSet<TickResult>,
    by_task: HashMap<Id, Running>,
    by_run: HashMap<RunToken, AbortHandle>,
    /// Ticks that ended in this turn, not yet told to the schedule.
    ended: Vec<(Running, Ended)>,
    /// The records and saves of one turn's endings, written to the store
    /// in one batch (kept empty between turns, for its capacity).
    batch: Vec<(RunRecord, Option<TickSave>)>,
    /// Ticks the schedule asked for in this turn, not yet started (kept
    /// empty between turns, for its capacity).
    due: Vec<Due>,
    /// This turn's endings with the schedule's verdicts (kept empty between
    /// turns, for its capacity).
    judged: Vec<Judged>,
}

/// A tick the schedule asked for, with its job's entry once read.
struct Due {
    order: TickOrder,
    entry: Option<Entry>,
}

/// Most commands handled in one turn of the worker's loop.
const DRAIN: usize = 256;

/// The worker's loop; ends on shutdown or when the scheduler is dropped.
pub(super) async fn run(shared: Weak<Shared>, mut rx: mpsc::UnboundedReceiver<Command>) {
    let mut ticks = Ticks::default();
    let mut closing: Option<(Instant, oneshot::Sender<()>)> = None;
    loop {
        if closing.is_some() && ticks.set.is_empty() {
            break;
        }
        let grace = closing.as_ref().map(|(at, _)| *at);
        tokio::select! {
            cmd = rx.recv() => {
                let Some(mut cmd) = cmd else { return };
                let Some(shared) = shared.upgrade() else { return };
                // Take what else is queued (a slot's worth of due ticks)
                // in the same turn, in order, up to a bound so tick
                // endings are not starved.
                let mut budget = DRAIN;
                loop {
                    match cmd {
                        Command::Run(order) => {
                            if closing.is_none() {
                                ticks.due.push(Due { order, entry: None });
                            }
                        }
                        Command::GiveUp { run } => {
                            // Whatever was asked before it starts, and
                            // whatever ended before it is recorded, first.
                            ticks.start_due(&shared);
                            ticks.flush(&shared).await;
                            ticks.give_up(&shared, run).await;
                        }
                        Command::Shutdown { grace, done } => {
                            closing = Some((Instant::now() + grace, done));
                        }
                    }
                    budget -= 1;
                    if budget == 0 {
                        break;
                    }
                    match rx.try_recv() {
                        Ok(next) => cmd = next,
                        Err(_) => break,
                    }
                }
                ticks.start_due(&shared);
                ticks.flush(&shared).await;
            }
            Some(joined) = ticks.set.join_next_with_id(), if !ticks.set.is_empty() => {
                let Some(shared) = shared.upgrade() else { return };
                ticks.joined(joined);
                ticks.flush(&shared).await;
            }
            _ = sleep_until_opt(grace) => {
                tracing::warn!(running = ticks.set.len(), "shutdown grace over: stopping running ticks");
                ticks.set.abort_all();
                while ticks.set.join_next().await.is_some() {}
                break;
            }
        }
    }
    if let Some((_, done)) = closing {
        let _ = done.send(());
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Ticks {
    /// Start the ticks in `due`, in order: their jobs' entries are read
    /// under one lock, released before any tick is polled (a tick may
    /// read the scheduler).
    fn start_due(&mut self, shared: &Arc<Shared>) {
        if self.due.is_empty() {
            return;
        }
        let mut due = std::mem::take(&mut self.due);
        {
            let jobs = shared.jobs();
            for d in &mut due {
                d.entry = jobs.get(&d.order.job).cloned();
            }
        }
        for d in due.drain(..) {
            self.start(shared, d);
        }
        self.due = due;
    }

    /// Start a tick the schedule asked for; one that completes at once is
    /// queued in `ended`, told to the schedule by the turn's [`Ticks::flush`].
    fn start(&mut self, shared: &Arc<Shared>, due: Due) {
        let Due { order, entry } = due;
        let TickOrder {
            ref job,
            version,
            run,
            scheduled_for,
            reason,
            ..
        } = order;
        let Some(entry) = entry else {
            // Deleted since the schedule started it: free the schedule.
            let _ = shared
                .cell
                .with(|m, now| m.on_tick_finished(now, run, TickOutcome::Failure));
            return;
        };
        let wall = shared.wall;
        let tick = entry.ticks.saturating_add(1);
        let started = wall.clock.now();
        let imp = entry.imp;
        let ctx = TickContext {
            def: entry.def,
            version,
            tick,
            previous: entry.last_tick,
            scheduled_for: wall.at(scheduled_for),
            reason,
            state: entry.state,
        };
        let fut = async move {
            let mut ctx = ctx;
            let r = match imp {
                Some(imp) => imp.tick(&mut ctx).await.map_err(|e| e.to_string()),
                None => Err(format!("no job kind {:?} is registered", ctx.def.kind)),
            };
            (ctx.state, r)
        };
        // The span only when a subscriber wants it: a disabled one would
        // still be entered and left at every poll.
        let span = tracing::info_span!(
            "scheduler.tick",
            job = %job,
            run = run.get(),
            version = version.get(),
            tick,
            reason = ?reason,
        );
        let mut fut: Pin<Box<dyn Future<Output = TickResult> + Send>> = if span.is_disabled() {
            Box::pin(fut)
        } else {
            Box::pin(fut.instrument(span))
        };
        let meta = Running {
            order,
            started,
            tick,
        };
        // First poll here: a tick that completes at once needs no task. A
        // pending one moves to its own task, whose first poll registers
        // that task's waker (the no-op one used here is never woken).
        let first = std::panic::catch_unwind(AssertUnwindSafe(|| {
            fut.as_mut().poll(&mut Context::from_waker(Waker::noop()))
        }));
        match first {
            Ok(Poll::Pending) => {
                let abort = self.set.spawn(fut);
                self.by_run.insert(run, abort.clone());
                self.by_task.insert(abort.id(), meta);
            }
            Ok(Poll::Ready(result)) => self.ended.push((meta, Ended::Returned(result))),
            Err(panic) => {
                drop(fut);
                self.ended.push((meta, Ended::Panicked(panic)));
            }
        }
    }

    /// The schedule gave `run` up after `run_timeout`: stop it, record it.
    async fn give_up(&mut self, shared: &Arc<Shared>, run: RunToken) {
        let Some(abort) = self.by_run.remove(&run) else {
            return;
        };
        abort.abort();
        let Some(meta) = self.by_task.remove(&abort.id()) else {
            return;
        };
        tracing::warn!(job = %meta.order.job, run = run.get(), "tick timed out: stopped");
        let next_due = shared.cell.read(|m| next_due(m, &meta.order.job));
        let now = shared.wall.clock.now();
        let judged = Judged {
            meta,
            outcome: RunOutcome::TimedOut,
            state: None,
            next: next_due,
        };
        conclude(shared, &mut self.batch, std::iter::once(judged), now).await;
    }

    /// A tick task ended (returned, panicked or was stopped): queue it in
    /// `ended`.
    fn joined(&mut self, joined: Result<(Id, TickResult), JoinError>) {
        let id = match &joined {
            Ok((id, _)) => *id,
            Err(e) => e.id(),
        };
        // Not tracked: stopped by `give_up`, which recorded it.
        let Some(meta) = self.by_task.remove(&id) else {
            return;
        };
        self.by_run.remove(&meta.order.run);
        let how = match joined {
            Ok((_, result)) => Ended::Returned(result),
            Err(e) if e.is_panic() => Ended::Panicked(e.into_panic()),
            Err(_) => Ended::Cancelled,
        };
        self.ended.push((meta, how));
    }

    /// The ticks that ended (returned, panicked or were stopped) since the
    /// last flush: tell the schedule of all of them in one input, then
    /// record each, in the order they ended.
    async fn flush(&mut self, shared: &Arc<Shared>) {
        if self.ended.is_empty() {
            return;
        }
        let mut judged = std::mem::take(&mut self.judged);
        judged.extend(self.ended.drain(..).map(Judged::of));
        let now = shared.cell.with(|m, now| {
            for j in &mut judged {
                let reported = if j.state.is_some() {
                    TickOutcome::Success
                } else {
                    TickOutcome::Failure
                };
                let (verdict, status) = m.finish_tick(now, j.meta.order.run, reported);
                j.next = status.filter(|s| s.enabled).map(|s| s.next_due);
                match verdict {
                    Ok(()) => {}
                    Err(StaleRun::OldVersion { .. }) => j.outcome = RunOutcome::Superseded,
                    // Given up after `run_timeout` before its ending was
                    // told: `give_up` did not record it (it records only
                    // ticks still running), so it is recorded here, as the
                    // schedule counted it: timed out, state not saved.
                    Err(StaleRun::Unknown) => {
                        j.outcome = RunOutcome::TimedOut;
                        j.state = None;
                        j.next = next_due(m, &j.meta.order.job);
                    }
                }
            }
            now
        });
        conclude(shared, &mut self.batch, judged.drain(..), now).await;
        self.judged = judged;
    }
}

/// A tick that ended, with the schedule's verdict once it is told.
struct Judged {
    meta: Running,
    outcome: RunOutcome,
    /// The state to save: `Some` after a success only.
    state: Option<JobState>,
    next: Option<Timestamp>,
}

impl Judged {
    fn of((meta, how): (Running, Ended)) -> Self {
        let (outcome, state) = match how {
            Ended::Returned((state, Ok(()))) => (RunOutcome::Success, Some(state)),
            Ended::Returned((_, Err(msg))) => (RunOutcome::Failed(msg), None),
            Ended::Panicked(payload) => (RunOutcome::Panicked(panic_message(payload)), None),
            Ended::Cancelled => (RunOutcome::Failed("cancelled".to_owned()), None),
        };
        if let RunOutcome::Panicked(m) | RunOutcome::Failed(m) = &outcome {
            tracing::warn!(job = %meta.order.job, run = meta.order.run.get(), error = %m, "tick failed");
        }
        Judged {
            meta,
            outcome,
            state,
            next: None,
        }
    }
}

fn next_due(m: &TickSchedule<JobId>, job: &JobId) -> Option<Timestamp> {
    m.job(job).filter(|j| j.enabled).map(|j| j.next_due)
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_owned()
    }
}

/// Record the runs that finished at `now`: memory first (a job's next tick
/// may start at once; one lock for all), then the store (one batch, each
/// run one transaction), then subscribers.
async fn conclude(
    shared: &Shared,
    batch: &mut Vec<(RunRecord, Option<TickSave>)>,
    judged: impl IntoIterator<Item = Judged>,
    now: Timestamp,
) {
    let wall = shared.wall;
    let finished_at = wall.at(now);
    let tick_seconds = metrics::histogram!(SCHEDULER_TICK_SECONDS);
    let mut successes = 0u64;
    {
        let mut jobs = shared.jobs();
        for Judged {
            meta,
            outcome,
            state,
            next,
        } in judged
        {
            let save = (outcome != RunOutcome::Superseded).then(|| TickSave {
                ticks: meta.tick,
                last_tick: wall.at(meta.started),
                next_due: next.map(|t| wall.at(t)),
                state: state.filter(|_| outcome == RunOutcome::Success),
            });
            if let Some(save) = &save {
                if let Some(e) = jobs.get_mut(&meta.order.job) {
                    e.ticks = save.ticks;
                    e.last_tick = Some(save.last_tick);
                    if let Some(s) = &save.state {
                        e.state = s.clone();
                    }
                }
            }
            // Successes, nearly all of a healthy turn, are counted once
            // per turn; anything else as it comes.
            if outcome == RunOutcome::Success {
                successes += 1;
            } else {
                metrics::counter!(SCHEDULER_TICKS, "outcome" => outcome.label()).increment(1);
            }
            tick_seconds.record(now.saturating_duration_since(meta.started).as_secs_f64());
            let order = meta.order;
            let record = RunRecord {
                job: order.job,
                version: order.version.get(),
                run: order.run.get(),
                tick: meta.tick,
                reason: order.reason,
                scheduled_for: wall.at(order.scheduled_for),
                started_at: wall.at(meta.started),
                finished_at,
                outcome,
            };
            batch.push((record, save));
        }
    }
    if successes > 0 {
        metrics::counter!(SCHEDULER_TICKS, "outcome" => RunOutcome::Success.label())
            .increment(successes);
    }
    if batch.is_empty() {
        return;
    }
    if let Err(e) = shared.store.record_runs(batch).await {
        metrics::counter!(SCHEDULER_STORE_ERRORS).increment(e.failed as u64);
        tracing::error!(runs = e.failed, error = %e.first, "runs not saved");
    }
    shared.publish(batch.drain(..).map(|(record, _)| record));
}
