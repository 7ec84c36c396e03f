//! Executing one [`InFlightAction::Drive`]: a short task that calls the
//! runtime's [`RunnerHandle::submit_next`] and reports its answer back to
//! the in-flight machine; and [`InFlightAction::CancelDrive`]: dropping a
//! call whose lease expired before it returned.
//!
//! Guarantees: every drive started reports exactly one outcome (submitted,
//! nothing ready, failed, or cancelled; a panic in the handle counts as a
//! failure); a cancelled call's future is dropped before its cancellation
//! is reported, so the machine's next drive of that session never overlaps
//! it (`INFLIGHT_NO_OVERLAP`); the executor cancels only when the machine
//! asks; no drive starts once shutdown began; every drive task holds a
//! gate guard, so shutdown can wait until the last one has reported.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Instant;

use futures::FutureExt;
use tether_core::inflight::{DriveToken, InFlight, InFlightAction};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::handle::{traces_idle, DriveRequest, RunnerHandle, Submission};
use crate::metrics_names::{RUNNER_DRIVES, RUNNER_DRIVE_SECONDS, RUNNER_STALE_REPORTS};
use crate::runtime::Driven;

pub(super) type Cell = Driven<InFlight<String>>;

/// While `Some`, drives may start; each drive task holds a clone of the
/// sender, so the receiver sees `None` once the last one ended.
pub(super) type Gate = Arc<Mutex<Option<mpsc::Sender<()>>>>;

/// The cancel switch of every drive task still running its call.
pub(super) type Cancels = Arc<Mutex<HashMap<DriveToken, oneshot::Sender<()>>>>;

/// What the machine's executor needs to start and cancel drives.
pub(super) struct Executor {
    pub(super) rt: tokio::runtime::Handle,
    pub(super) handle: Arc<dyn RunnerHandle>,
    pub(super) cell: Arc<OnceLock<Weak<Cell>>>,
    pub(super) gate: Gate,
    pub(super) cancels: Cancels,
}

impl Executor {
    /// Execute `action` (outside the machine's lock).
    pub(super) fn execute(&self, action: InFlightAction<String>) {
        match action {
            InFlightAction::Drive {
                token,
                session,
                reason,
            } => self.drive(token, session, reason),
            InFlightAction::CancelDrive { token, session } => {
                let switch = self
                    .cancels
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&token);
                // No switch: the call already returned, and its task reports
                // that result instead (the machine takes either).
                let sent = switch.is_some_and(|tx| tx.send(()).is_ok());
                tracing::warn!(
                    token = token.get(),
                    session = session.as_deref().unwrap_or("*"),
                    sent,
                    "submit_next outlived its lease: cancelling it before the session is driven again"
                );
            }
        }
    }

    fn drive(
        &self,
        token: DriveToken,
        session: Option<String>,
        reason: tether_core::inflight::DriveReason,
    ) {
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
        let (cancel_tx, mut cancel_rx) = oneshot::channel();
        // Armed before the task exists, so a cancel can never miss it.
        self.cancels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token, cancel_tx);
        let cancels = self.cancels.clone();
        self.rt.spawn(
            async move {
                let _guard = guard;
                let started = Instant::now();
                let trace_idle = request.trace_idle;
                let call = AssertUnwindSafe(handle.submit_next(request)).catch_unwind();
                let answer = tokio::select! {
                    biased;
                    Ok(()) = &mut cancel_rx => None,
                    answer = call => Some(answer),
                };
                // The call's future is dropped by now (cancelled or done).
                cancels
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&token);
                metrics::histogram!(RUNNER_DRIVE_SECONDS).record(started.elapsed().as_secs_f64());
                let Some(cell) = cell.upgrade() else { return };
                let Some(answer) = answer else {
                    let report = cell.with(|m, now| m.on_drive_cancelled(now, token));
                    metrics::counter!(RUNNER_DRIVES, "result" => "cancelled").increment(1);
                    if let Err(e) = report {
                        metrics::counter!(RUNNER_STALE_REPORTS).increment(1);
                        tracing::debug!(error = %e, "drive cancellation refused");
                    }
                    return;
                };
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
