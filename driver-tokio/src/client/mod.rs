//! The runtime client: [`Tether`] connects to a gateway, keeps the
//! invalidation and op-control streams alive, and answers
//! [`Tether::check`] before each tool call.
//!
//! ```no_run
//! use tether_tokio::client::{AgentIdentity, Tether, TetherConfig, ToolCall};
//!
//! # async fn run() -> Result<(), tether_tokio::client::TetherError> {
//! let config = TetherConfig::new(
//!     "http://127.0.0.1:50051",
//!     AgentIdentity::new("acme", "support", "agent-7"),
//!     "runtime-1",
//! )
//! .with_token("s3cret");
//! let tether = Tether::connect(config)?;
//! let verdict = tether.check("trace-1:span-1", &ToolCall::new("read_file")).await?;
//! if verdict.allowed() {
//!     // run the tool
//! }
//! tether.shutdown(std::time::Duration::from_secs(5)).await;
//! # Ok(()) }
//! ```
//!
//! Guarantees: the streams reconnect with the core's backoff until
//! shutdown; a terminate reaches a `check` wherever it waits; every wait is
//! a cancellation-safe future; the handle is cheap to clone.

mod ack_codec;
mod ack_outbox;
mod action;
mod approvals;
mod channel;
mod check;
mod config;
mod credentials;
mod error;
mod goaway;
mod invalidation;
mod lifecycle;
mod op_stream;
mod ops;
mod shared;
mod sink;
mod slots;
mod status;
mod verdict;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::task::JoinHandle;

pub use action::{Action, FileOperation, LlmCall, NetworkCall, ProcessExec, ToolResult};
pub use approvals::{ApprovalOutcome, ApprovalWait, ApprovalWaitError, Approvals};
pub use check::ToolCall;
pub use config::{
    AgentIdentity, TetherConfig, TlsSettings, DEFAULT_APPROVAL_DEADLINE, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_KEEPALIVE_INTERVAL, DEFAULT_KEEPALIVE_TIMEOUT, DEFAULT_OPEN_TIMEOUT,
    DEFAULT_REQUEST_TIMEOUT,
};
pub use credentials::{CredentialProvider, StaticToken};
pub use error::{CheckCapacityError, ConfigError, ProtocolError, TetherError};
pub use lifecycle::{
    AgentSigningKey, KeyError, RegistrationPhase, RegistrationReport, RegistrationSettings,
};
pub use ops::{
    DenyReason, FailClosed, OpBlocked, OpState, Ops, OutagePolicy, Saturation, WaitOutcome,
};
pub use sink::{InvalidateAllReason, InvalidationSink, PolicyChange};
pub use status::{
    CheckStatus, ClientStatus, KillSwitchDown, KillSwitchStatus, OpTableStatus, StreamStatus,
};
pub use verdict::{Decision, Redaction, Verdict, VerdictSource};

use shared::{CheckGuard, Shared};

/// A runtime client. Cheap to clone; every clone is the same client.
///
/// Its streams run in background tasks until [`Tether::shutdown`] or until
/// the last clone is dropped, whichever comes first (dropping ends them at
/// once, without waiting for checks in flight). A registered agent
/// deregisters either way: dropped, its lifecycle task goes on alone just
/// long enough to deregister, within the registration's shutdown bound.
#[derive(Clone)]
pub struct Tether {
    shared: Arc<Shared>,
    life: Arc<Lifetime>,
}

/// Owns the stream tasks; dropped with the last [`Tether`] clone, it stops
/// them. The tasks hold the shared state, never this.
struct Lifetime {
    shared: Arc<Shared>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// The registration's task, if any: told to shut down on drop, never
    /// aborted, so it deregisters (its machine bounds how long).
    lifecycle: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Lifetime {
    fn drop(&mut self) {
        let _ = self.shared.shutdown.send(true);
        for t in self.tasks.get_mut().drain(..) {
            t.abort();
        }
        // Detached: it sees the shutdown, deregisters and ends by itself
        // within `RegistrationConfig::shutdown_bound` (REG_SHUTDOWN_BOUNDED).
        drop(self.lifecycle.get_mut().take());
    }
}

impl std::fmt::Debug for Tether {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tether")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

/// What [`Tether::shutdown`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Checks still running when the deadline passed (they were abandoned).
    pub abandoned_checks: usize,
}

impl Tether {
    /// Spawn the invalidation and op-control streams on the current tokio
    /// runtime and return at once. **It does not wait for the gateway**
    /// (like tonic's `connect_lazy`): the streams connect, and reconnect,
    /// in the background. Await [`Tether::ready`] to wait for both streams
    /// with a timeout, or watch [`Tether::status`].
    ///
    /// Fails only on a configuration that cannot work (a URL that does not
    /// parse, TLS material that is refused, `https` without a TLS feature).
    /// Must be called within a tokio runtime.
    pub fn connect(config: TetherConfig) -> Result<Self, TetherError> {
        let mut config = config;
        let channels = channel::build(&config)?;
        // A registering agent's credential is the token its registration
        // was issued.
        let registration = config.registration.clone().map(|settings| {
            let token = lifecycle::token::RegisteredToken::new();
            config.credentials = Arc::new(token.clone());
            (settings, token)
        });
        let shared = Shared::new(config, channels);
        let inv = tokio::spawn(invalidation::run(
            shared.clone(),
            shared.shutdown.subscribe(),
        ));
        let ops = tokio::spawn(op_stream::run(shared.clone(), shared.shutdown.subscribe()));
        let tasks = vec![inv, ops];
        let lifecycle = registration.map(|(settings, token)| {
            tokio::spawn(lifecycle::task::run(
                shared.clone(),
                settings,
                token,
                shared.shutdown.subscribe(),
            ))
        });
        Ok(Tether {
            life: Arc::new(Lifetime {
                shared: shared.clone(),
                tasks: Mutex::new(tasks),
                lifecycle: Mutex::new(lifecycle),
            }),
            shared,
        })
    }

    /// Wait until both streams (invalidation and op control) are up, for at
    /// most `timeout`. On timeout the error carries the status, whose
    /// `last_error` per stream says why a stream is not up. The client
    /// keeps trying either way.
    pub async fn ready(&self, timeout: Duration) -> Result<(), TetherError> {
        let mut rx = self.watch_status();
        let up = tokio::time::timeout(timeout, async {
            // The sender lives as long as `self`, so this never errs.
            let _ = rx
                .wait_for(|s| s.invalidation.connected && s.op_control.connected)
                .await;
        })
        .await;
        match up {
            Ok(()) => Ok(()),
            Err(_) => Err(TetherError::NotReady {
                waited: timeout,
                status: Box::new(self.status()),
            }),
        }
    }

    /// Decide whether the tool call `call` of op `op_id` (`"trace:span"`)
    /// may run. See the module docs of `check` for the order of steps; the
    /// verdict says which step decided.
    pub async fn check(&self, op_id: &str, call: &ToolCall) -> Result<Verdict, TetherError> {
        // Count ourselves in flight before looking at the flag, so a
        // shutdown that starts now either refuses us or waits for us.
        let _guard = CheckGuard::enter(&self.shared);
        if self.shared.is_shut_down() {
            return Err(TetherError::Shutdown);
        }
        let result = check::check(&self.shared, op_id, call).await;
        if let Ok(v) = &result {
            metrics::histogram!(crate::metrics_names::CHECK_SECONDS, "verdict" => v.label())
                .record(v.latency.as_secs_f64());
            tracing::debug!(op_id, tool = %call.tool_name, verdict = v.label(), latency_us = v.latency.as_micros() as u64, "check");
        }
        result
    }

    /// Run `action` of op `op_id` under the kill switch: a terminate
    /// cancels it at once, a pause suspends it until resume; see
    /// [`Ops::run`] for every rule. Check the call first with
    /// [`Tether::check`], then run it here:
    ///
    /// ```no_run
    /// # use tether_tokio::client::{Tether, ToolCall, OpBlocked};
    /// # async fn tool() -> u32 { 7 }
    /// # async fn go(tether: Tether) -> Result<(), Box<dyn std::error::Error>> {
    /// let call = ToolCall::new("crawl_site");
    /// if tether.check("trace-1:span-1", &call).await?.allowed() {
    ///     match tether.run("trace-1:span-1", tool()).await {
    ///         Ok(pages) => println!("{pages} pages"),
    ///         Err(OpBlocked::Terminated) => println!("terminated by an operator"),
    ///         Err(other) => println!("stopped: {other}"),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn run<F: std::future::Future>(
        &self,
        op_id: &str,
        action: F,
    ) -> Result<F::Output, OpBlocked> {
        self.shared.ops.run(op_id, action).await
    }

    /// Decide whether `action` of op `op_id` may run: the same pipeline as
    /// [`Tether::check`] (op control, cache, a check slot and
    /// `CheckAction`, the approval wait), for any kind of action the
    /// protocol checks: a model call, a tool call, a file operation, a
    /// network call, a process start or a tool's result, each sent with its
    /// `ActionType` and context.
    pub async fn check_action(&self, op_id: &str, action: &Action) -> Result<Verdict, TetherError> {
        let _guard = CheckGuard::enter(&self.shared);
        if self.shared.is_shut_down() {
            return Err(TetherError::Shutdown);
        }
        let result = check::check(&self.shared, op_id, action).await;
        if let Ok(v) = &result {
            metrics::histogram!(crate::metrics_names::CHECK_SECONDS, "verdict" => v.label())
                .record(v.latency.as_secs_f64());
            tracing::debug!(
                op_id,
                action = action::Checkable::label(action),
                verdict = v.label(),
                latency_us = v.latency.as_micros() as u64,
                "check"
            );
        }
        result
    }

    /// Decide several actions of op `op_id` at once (parallel tool calls):
    /// op control once, the cache for each, then one `BatchCheck` call for
    /// those not cached (one check slot), each answer concluded as
    /// [`Tether::check_action`] concludes it (cached when it may be; a
    /// `PENDING` one waits for its reviewer, all such waits at once).
    /// Verdicts come in the order of `actions`. The call fails as a whole
    /// when the gateway refuses the batch (for example one larger than it
    /// accepts: `INVALID_ARGUMENT`) or breaks the protocol.
    pub async fn check_batch(
        &self,
        op_id: &str,
        actions: &[Action],
    ) -> Result<Vec<Verdict>, TetherError> {
        let _guard = CheckGuard::enter(&self.shared);
        if self.shared.is_shut_down() {
            return Err(TetherError::Shutdown);
        }
        let result = check::check_batch(&self.shared, op_id, actions).await;
        if let Ok(verdicts) = &result {
            for v in verdicts {
                metrics::histogram!(crate::metrics_names::CHECK_SECONDS, "verdict" => v.label())
                    .record(v.latency.as_secs_f64());
            }
            tracing::debug!(op_id, actions = actions.len(), "batch check");
        }
        result
    }

    /// Approval waiting, for runtimes that compose their own pipeline.
    pub fn approvals(&self) -> &Approvals {
        &self.shared.approvals
    }

    /// Op control, for runtimes that compose their own pipeline.
    pub fn ops(&self) -> &Ops {
        &self.shared.ops
    }

    /// Register a cache of your own to be kept fresh by the invalidation
    /// stream, beside the built-in policy cache.
    pub fn add_sink(&self, sink: Arc<dyn InvalidationSink>) {
        self.shared
            .sinks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(sink);
    }

    /// Both streams' state and counters.
    pub fn status(&self) -> ClientStatus {
        self.shared.status.get()
    }

    /// A receiver that sees every change of [`Tether::status`], for
    /// dashboards and for waiting on a condition without polling:
    /// `tether.watch_status().wait_for(|s| s.invalidation.connected).await`.
    ///
    /// Do not keep the `Ref` that `borrow` or `wait_for` return (for example
    /// in a `let` that lives on): it holds a read lock that blocks the
    /// stream tasks' next status update. Copy out what you need.
    pub fn watch_status(&self) -> tokio::sync::watch::Receiver<ClientStatus> {
        self.shared.status.watch()
    }

    /// Decisions held by the built-in policy cache.
    pub fn cached_decisions(&self) -> usize {
        self.shared.cache.read(|c| c.len())
    }

    /// Stop accepting checks, wait up to `deadline` for checks in flight
    /// (the streams stay up meanwhile, so a resume or a verdict can still
    /// finish them), then stop both streams.
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        self.shared.closing.store(true, Ordering::SeqCst);
        let waited = tokio::time::timeout(deadline, async {
            loop {
                let done = self.shared.checks_done.notified();
                if self.shared.checks_in_flight.load(Ordering::SeqCst) == 0 {
                    return;
                }
                done.await;
            }
        })
        .await;
        let abandoned = if waited.is_ok() {
            0
        } else {
            self.shared.checks_in_flight.load(Ordering::SeqCst)
        };
        let _ = self.shared.shutdown.send(true);
        let mut tasks: Vec<_> = std::mem::take(&mut *self.life.tasks.lock().await);
        tasks.extend(self.life.lifecycle.lock().await.take());
        // A registered agent deregisters, within the registration's own
        // bound; the streams end at once.
        let bound = match &self.shared.config.registration {
            Some(r) => r.machine.shutdown_bound + Duration::from_secs(1),
            None => Duration::from_secs(1),
        };
        for t in tasks {
            let abort = t.abort_handle();
            if tokio::time::timeout(bound, t).await.is_err() {
                abort.abort();
            }
        }
        ShutdownReport {
            abandoned_checks: abandoned,
        }
    }
}
