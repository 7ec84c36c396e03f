//! Finished runs: [`RunRecord`] (kept in the store's bounded history and
//! broadcast to subscribers) and [`RunSubscription`].
//!
//! Guarantees: every tick that ends (succeeded, failed, panicked, timed
//! out, or superseded by a newer version) yields one record; a subscriber
//! that falls behind by more than the broadcast capacity is told how many
//! records it missed ([`RunEvent::Missed`]) and then continues with the
//! newest.

use std::time::SystemTime;

use tether_core::tick::RunReason;
use tokio::sync::broadcast;

use super::job::JobId;

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// It succeeded; its state was saved.
    Success,
    /// It returned an error.
    Failed(String),
    /// It panicked.
    Panicked(String),
    /// It ran past the schedule's `run_timeout` and was stopped.
    TimedOut,
    /// The job was updated or removed while it ran: its result was ignored
    /// and its state not saved.
    Superseded,
}

impl RunOutcome {
    /// A short label: `success`, `failure`, `panic`, `timeout`, `stale`.
    pub fn label(&self) -> &'static str {
        match self {
            RunOutcome::Success => "success",
            RunOutcome::Failed(_) => "failure",
            RunOutcome::Panicked(_) => "panic",
            RunOutcome::TimedOut => "timeout",
            RunOutcome::Superseded => "stale",
        }
    }

    /// Whether it counts as a failure of the job.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            RunOutcome::Failed(_) | RunOutcome::Panicked(_) | RunOutcome::TimedOut
        )
    }
}

/// One finished run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRecord {
    /// The job.
    pub job: JobId,
    /// The job's schedule version the run belonged to.
    pub version: u64,
    /// The run's token (unique within one scheduler's lifetime).
    pub run: u64,
    /// The job's tick number (see [`TickContext::tick`](super::TickContext::tick)).
    pub tick: u64,
    /// Why it ran.
    pub reason: RunReason,
    /// The slot, request or retry instant it served.
    pub scheduled_for: SystemTime,
    /// When it started.
    pub started_at: SystemTime,
    /// When it ended.
    pub finished_at: SystemTime,
    /// How it ended.
    pub outcome: RunOutcome,
}

/// What a [`RunSubscription`] yields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunEvent {
    /// A run finished.
    Finished(RunRecord),
    /// The subscriber fell behind: this many records were dropped for it.
    Missed(u64),
}

/// Finished runs, as they happen (from
/// [`Scheduler::subscribe`](super::Scheduler::subscribe)).
#[derive(Debug)]
pub struct RunSubscription {
    pub(super) rx: broadcast::Receiver<RunRecord>,
}

impl RunSubscription {
    /// The next event; `None` once the scheduler shut down and every
    /// record was received.
    pub async fn recv(&mut self) -> Option<RunEvent> {
        match self.rx.recv().await {
            Ok(r) => Some(RunEvent::Finished(r)),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(RunEvent::Missed(n)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}
