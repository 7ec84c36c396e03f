//! [`Runner`]: the in-flight machine, its single timer task and its drive
//! tasks, started on the current tokio runtime.
//!
//! Guarantees: one timer task whatever the number of sessions, and it
//! sleeps while the machine reports no deadline (an idle runner does not
//! wake up unless a recovery poll is configured); at most
//! `max_in_flight` drive tasks at once (one per drive the machine issued);
//! a drive task whose `submit_next` outlived its lease ends when the
//! machine asks for it to be cancelled (the call's future is dropped), and
//! only then is its session driven again;
//! [`Runner::shutdown`] refuses further pokes, starts no further drive,
//! stops the timer and returns once every started drive has reported.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tether_core::inflight::{InFlight, InFlightStats, InFlightTimer, SessionStatus};
use tether_core::{Deadline, Machine};
use tokio::sync::mpsc;

use super::config::RunnerConfig;
use super::drive::{Executor, Gate};
use super::handle::RunnerHandle;
use super::poker::{Poker, Shared};
use crate::runtime::{Clock, Driven, TimerTask};

/// The queued-work runner. Create it with [`Runner::start`], hand out
/// [`Poker`]s, and call [`Runner::shutdown`] to stop it gracefully
/// (dropping it stops the timer at once, without waiting).
pub struct Runner {
    shared: Arc<Shared>,
    gate: Gate,
    drained: mpsc::Receiver<()>,
    timer: Option<TimerTask>,
    grace: std::time::Duration,
}

/// What [`Runner::shutdown`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunnerShutdown {
    /// Every `submit_next` already started returned within the grace. If
    /// not, the rest were abandoned: their tasks run on, and whatever they
    /// report is refused.
    pub drained: bool,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Runner {
    /// Start a runner driving `handle`, on the current tokio runtime.
    ///
    /// The machine is told at once that the runner started; by default it
    /// then drives one global drive (`session: None`) before any poke, so
    /// `handle` must be ready for `submit_next` calls as soon as this is
    /// called (see [`RunnerConfig::with_sweep_at_start`]).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn start(handle: impl RunnerHandle, config: RunnerConfig) -> Self {
        let (tx, drained) = mpsc::channel(1);
        let gate: Gate = Arc::new(Mutex::new(Some(tx)));
        let weak = Arc::new(OnceLock::new());
        let exec = Executor {
            rt: tokio::runtime::Handle::current(),
            handle: Arc::new(handle),
            cell: weak.clone(),
            gate: gate.clone(),
            cancels: Default::default(),
        };
        let grace = config.shutdown_grace;
        let cell = Driven::new(InFlight::new(config.inflight), Clock::new(), move |a| {
            exec.execute(a)
        });
        let _ = weak.set(Arc::downgrade(&cell));
        // Work queued before the runner existed: the machine decides
        // whether to sweep for it (by default it does).
        cell.with(|m, now| {
            let _ = m.on_start(now);
        });
        let timer = cell.spawn_timer();
        Runner {
            shared: Arc::new(Shared {
                cell,
                closed: AtomicBool::new(false),
            }),
            gate,
            drained,
            timer: Some(timer),
            grace,
        }
    }

    /// A handle to poke the runner and report completions.
    pub fn poker(&self) -> Poker {
        Poker {
            shared: self.shared.clone(),
        }
    }

    /// The in-flight machine's gauges and counters.
    pub fn stats(&self) -> InFlightStats {
        self.shared.cell.read(|m| m.stats())
    }

    /// Where `session` stands; `None` when nothing is held for it.
    pub fn session(&self, session: &str) -> Option<SessionStatus> {
        self.shared.cell.read(|m| m.session(&session.to_owned()))
    }

    /// Whether nothing is in flight, pending, retrying or wanted.
    pub fn is_idle(&self) -> bool {
        self.shared.cell.read(|m| m.is_idle())
    }

    /// When the timer task will next wake up, and why; `None`: it sleeps
    /// until the next poke or report.
    pub fn next_wakeup(&self) -> Option<Deadline<InFlightTimer>> {
        self.shared.cell.read(|m| m.poll_timeout())
    }

    /// Stop gracefully: refuse further pokes, start no further drive, stop
    /// the timer, and wait until every `submit_next` already started has
    /// returned and been reported, for at most the configured
    /// `shutdown_grace` (a hung call is abandoned past it, and the report
    /// says so). Turns already submitted keep running in the runtime; their
    /// completions are refused from now on.
    pub async fn shutdown(mut self) -> RunnerShutdown {
        self.shared.closed.store(true, Ordering::Release);
        let gate = self.gate.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(gate);
        if let Some(timer) = self.timer.take() {
            timer.stop().await;
        }
        // `None` once the last drive task dropped its gate guard.
        let drained = tokio::time::timeout(self.grace, self.drained.recv())
            .await
            .is_ok();
        if drained {
            tracing::debug!(stats = ?self.stats(), "runner shut down");
        } else {
            tracing::warn!(grace = ?self.grace, stats = ?self.stats(), "runner shut down; submit_next calls still running were abandoned");
        }
        RunnerShutdown { drained }
    }
}
