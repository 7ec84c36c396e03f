//! Executing one [`InFlightAction::Drive`]: a short task that calls the
//! runtime's [`RunnerHandle::submit_next`] and reports its answer back to
//! the in-flight machine.
//!
//! Guarantees: every drive started reports exactly one result (submitted,
//! nothing ready, or failed; a panic in the handle counts as a failure);
//! no drive starts once shutdown began; every drive task holds a gate
//! guard, so shutdown can wait until the last one has reported.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Instant;

use futures::FutureExt;
use tether_core::inflight::{InFlight, InFlightAction};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::handle::{traces_idle, DriveRequest, RunnerHandle, Submission};
use crate::metrics_names::{RUNNER_DRIVES, RUNNER_DRIVE_SECONDS, RUNNER_STALE_REPORTS};
use crate::runtime::Driven;

pub(super) type Cell = Driven<InFlight<String>>;

/// While `Some`, drives may start; each drive task holds a clone of the
/// sender, so the receiver sees `None` once the last one ended.
pub(super) type Gate = Arc<Mutex<Option<mpsc::Sender<()>>>>;

/// What the machine's executor needs to start drives.
pub(super) struct Executor {
    pub(super) rt: tokio::runtime::Handle,
    pub(super) handle: Arc<dyn RunnerHandle>,
    pub(super) cell: Arc<OnceLock<Weak<Cell>>>,
    pub(super) gate: Gate,
}

impl Executor {
    /// Start the drive `action` asks for (outside the machine's lock).
    pub(super) fn execute(&self, action: InFlightAction<String>) {
        let InFlightAction::Drive {
            token,
            session,
            reason,
        } = action;
        let guard = self.gate.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(guard) = guard else {
            tracing::debug!(token = token.get(), "runner shut down: drive not started");
            return;
        };
        let Some(cell) = self.cell.get().cloned() else {
            return;
        };
        let handle = self.handle.clone();
        let request = DriveRequest {
            token,
            session: session.clone(),
            reason,
            trace_idle: traces_idle(reason),
        };
        let span = tracing::info_span!(
            "runner.drive",
            token = token.get(),
            session = session.as_deref().unwrap_or("*"),
            reason = ?reason,
        );
        self.rt.spawn(
            async move {
                let _guard = guard;
                let started = Instant::now();
                let trace_idle = request.trace_idle;
                let answer = AssertUnwindSafe(handle.submit_next(request))
                    .catch_unwind()
                    .await;
                metrics::histogram!(RUNNER_DRIVE_SECONDS).record(started.elapsed().as_secs_f64());
                let Some(cell) = cell.upgrade() else { return };
                let (label, report) = match answer {
                    Ok(Ok(Submission::Submitted(s))) => {
                        tracing::debug!(session = %s, "turn submitted");
                        (
                            "submitted",
                            cell.with(|m, now| m.on_submitted(now, token, s)),
                        )
                    }
                    Ok(Ok(Submission::NothingReady)) => {
                        if trace_idle {
                            tracing::debug!("nothing ready");
                        } else {
                            tracing::trace!("nothing ready");
                        }
                        ("idle", cell.with(|m, now| m.on_idle(now, token)))
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "drive failed");
                        ("failed", cell.with(|m, now| m.on_failed(now, token)))
                    }
                    Err(_) => {
                        tracing::error!("runner handle panicked: drive failed");
                        ("panicked", cell.with(|m, now| m.on_failed(now, token)))
                    }
                };
                metrics::counter!(RUNNER_DRIVES, "result" => label).increment(1);
                if let Err(e) = report {
                    metrics::counter!(RUNNER_STALE_REPORTS).increment(1);
                    tracing::debug!(error = %e, "drive result refused");
                }
            }
            .instrument(span),
        );
    }
}
