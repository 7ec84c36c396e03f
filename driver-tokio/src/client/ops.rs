//! [`Ops`]: the kill switch as the runtime sees it, driven by the core's
//! `OpControl` machine.
//!
//! Guarantees: a terminated op is denied at once and stays terminated; a
//! paused op's check waits until resume or terminate (never resumes by
//! itself, even when the control stream is down); a wait future dropped
//! early leaves nothing behind; every applied signal bumps a change counter
//! that lets a `check` blocked elsewhere (on CheckAction, on an approval)
//! notice a terminate at once; [`Ops::run`] runs an action only while a
//! check of its op would run: a terminate drops it at once, a pause stops
//! polling it until resume. No wait is unbounded by the outage: under
//! `OutagePolicy::Hold` a check held by an op-control outage ends with
//! [`OpBlocked::HoldExpired`] at most `outage_grace + hold_limit` after the
//! stream was lost (the core's `OP_HOLD_BOUNDED`), and so does
//! [`Ops::run`].

use std::sync::Arc;
use std::time::Duration;

use tether_core::op_control::{
    CheckOutcome, InvalidId, OpControl, OpControlAction, OpControlConfig, OpWaiterId, Signal,
    SignalOutcome,
};
pub use tether_core::op_control::{DenyReason, OpState, OutagePolicy, Saturation, WaitOutcome};
use tokio::sync::{oneshot, watch};

use super::status::{KillSwitchDown, OpTableStatus, StatusBoard};
use crate::runtime::{CancelGuard, Clock, Driven, TimerTask, Waiters};

/// Why an op may not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpBlocked {
    /// The op was terminated (directly, for its agent, or fleet-wide).
    #[error("op is terminated")]
    Terminated,
    /// The control stream has been down past its grace and the outage
    /// policy denies.
    #[error("op-control stream is down and the outage policy denies")]
    OutageDeny,
    /// The outage policy is `Hold`, and the op-control stream has stayed
    /// down longer than a check may be held: checks are denied, not held,
    /// until the stream is back and settled.
    #[error(
        "op-control stream down past the hold limit: held checks end {bound:?} after the \
         stream is lost, and are denied until it is back"
    )]
    HoldExpired {
        /// The bound on a held wait, counted from the loss of the stream:
        /// the outage grace plus the hold limit.
        bound: Duration,
    },
    /// Op control could not keep track of the op, so it fails closed.
    #[error("op control failed closed: {0}")]
    FailedClosed(#[source] FailClosed),
}

/// Why op control failed an op closed (it never fails one open).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FailClosed {
    /// The op was paused and its entry evicted to make room for others.
    #[error("the paused op's entry was evicted to make room")]
    Evicted,
    /// The op-control table and its overflow are full: a pause or terminate
    /// found no room, and every op the table holds nothing for fails closed
    /// until every op has finished ([`Ops::all_finished`]).
    #[error(
        "op control is saturated: a pause or terminate found its table full, so ops it holds \
         nothing for fail closed until every op has finished"
    )]
    Saturated,
    /// Too many checks are already waiting.
    #[error("too many checks are waiting")]
    TooManyWaiters,
    /// The op id cannot name one op.
    #[error("invalid op id: {0:?}")]
    InvalidOpId(InvalidId),
    /// The agent id cannot be addressed.
    #[error("invalid agent id: {0:?}")]
    InvalidAgent(InvalidId),
    /// The runtime reported the op finished while a check of it waited.
    #[error("the op finished while a check of it waited")]
    OpFinished,
    /// The client shut down while the check waited.
    #[error("the client shut down")]
    ShutDown,
}

/// The op-control state of this runtime's agent, cheap to clone.
#[derive(Clone)]
pub struct Ops {
    cell: Arc<Driven<OpControl>>,
    senders: Waiters<OpWaiterId, WaitOutcome>,
    changes: Arc<watch::Sender<u64>>,
    status: StatusBoard,
    /// The agent whose `agent:{id}` signals cover this runtime's ops (it
    /// changes only when a fresh key per registration gives a new id).
    agent: Arc<std::sync::RwLock<Arc<str>>>,
    /// Outage grace plus hold limit (for [`OpBlocked::HoldExpired`]).
    hold_bound: Duration,
    _timer: Arc<TimerTask>,
}

impl std::fmt::Debug for Ops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ops").field("agent", &self.agent()).finish()
    }
}

impl Ops {
    /// Start the machine and its timer for `agent` on the current runtime.
    pub(crate) fn new(
        config: OpControlConfig,
        agent: &str,
        clock: Clock,
        status: StatusBoard,
    ) -> Self {
        let senders: Waiters<OpWaiterId, WaitOutcome> = Waiters::default();
        let exec = senders.clone();
        let changes = Arc::new(watch::channel(0u64).0);
        let outage_changes = changes.clone();
        let outage_status = status.clone();
        let hold_bound = config.outage_grace.saturating_add(config.hold_limit);
        let machine = OpControl::new(config, clock.now());
        let cell = Driven::new(machine, clock, move |a: OpControlAction| match a {
            OpControlAction::Release { waiter, outcome } => exec.complete(&waiter, outcome),
            OpControlAction::OutageStarted { .. } => {
                tracing::warn!("op-control outage: the stream has been down past its grace");
                outage_status.update(|s| s.kill_switch.outage_policy_in_force = true);
                // Actions under `run` re-check: the outage policy now applies.
                outage_changes.send_modify(|n| *n = n.wrapping_add(1));
            }
            OpControlAction::OutageEnded { .. } => {
                tracing::info!("op-control outage over");
                outage_status.update(|s| s.kill_switch.outage_policy_in_force = false);
            }
        });
        let timer = Arc::new(cell.spawn_timer());
        Ops {
            cell,
            senders,
            changes,
            status,
            agent: Arc::new(std::sync::RwLock::new(agent.into())),
            hold_bound,
            _timer: timer,
        }
    }

    fn agent(&self) -> Arc<str> {
        self.agent.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The agent has a new id (a fresh key per registration). What covered
    /// every op of the old id covers the new one: a terminate stays a
    /// terminate, a pause a pause (applied to `agent:{new}` with
    /// `sequence`, before the switch). Checks waiting on a pause of the old
    /// id are released to look again, under the new id.
    pub(crate) fn rekey(&self, new_agent: &str, sequence: u64) {
        let old = self.agent();
        if *old == *new_agent {
            return;
        }
        let new_scope = format!("agent:{new_agent}");
        let old_scope = format!("agent:{old}");
        self.cell.with(|m, now| match m.agent_state(&old) {
            OpState::Terminated => {
                let _ = m.on_signal(now, &new_scope, Signal::Terminate, sequence);
            }
            OpState::Paused => {
                let _ = m.on_signal(now, &new_scope, Signal::Pause, sequence);
            }
            _ => {}
        });
        *self.agent.write().unwrap_or_else(|e| e.into_inner()) = new_agent.into();
        // Waiters of the old id re-check under the new one.
        self.cell.with(|m, now| {
            if m.agent_state(&old) == OpState::Paused {
                let _ = m.on_signal(now, &old_scope, Signal::Resume, sequence);
            }
        });
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The op's current state.
    pub fn state(&self, op_id: &str) -> OpState {
        let agent = self.agent();
        self.cell.read(|m| m.state(&agent, op_id))
    }

    /// Resolve when the op may run; fail when it may not. Waits while the op
    /// is paused (or while the outage policy holds, at most until the hold
    /// limit: then [`OpBlocked::HoldExpired`]). Cancellation-safe.
    pub async fn wait_runnable(&self, op_id: &str) -> Result<(), OpBlocked> {
        loop {
            let senders = self.senders.clone();
            let agent = self.agent();
            // The channel is made only when the op must wait: a check on a
            // running op (the hot path) allocates nothing.
            let step = self.cell.with(|m, now| match m.check(now, &agent, op_id) {
                CheckOutcome::Run => Ok(None),
                CheckOutcome::Deny(reason) => Err(blocked(reason, self.hold_bound)),
                CheckOutcome::Wait(id) => {
                    let (tx, rx) = oneshot::channel();
                    senders.register(id, tx);
                    Ok(Some((id, rx)))
                }
            });
            let Some((id, rx)) = step? else {
                return Ok(());
            };
            let guard = CancelGuard::new(|| {
                self.cell.with(|m, _| m.cancel(id));
                self.senders.remove(&id);
            });
            let released = rx.await;
            guard.disarm();
            match released {
                Ok(o) if o.runs() => continue, // re-check: it may be paused again
                Ok(WaitOutcome::Terminated) => return Err(OpBlocked::Terminated),
                Ok(WaitOutcome::OutageDeny) => return Err(OpBlocked::OutageDeny),
                Ok(WaitOutcome::HoldExpired) => {
                    tracing::warn!(
                        op_id,
                        bound = ?self.hold_bound,
                        "op-control outage outlasted the hold limit: held check denied"
                    );
                    return Err(self.hold_expired());
                }
                Ok(WaitOutcome::Evicted) => {
                    return Err(OpBlocked::FailedClosed(FailClosed::Evicted))
                }
                Ok(WaitOutcome::Saturated) => {
                    return Err(OpBlocked::FailedClosed(FailClosed::Saturated))
                }
                // `runs()` covers every other outcome but this one.
                Ok(_) => return Err(OpBlocked::FailedClosed(FailClosed::OpFinished)),
                Err(_) => return Err(OpBlocked::FailedClosed(FailClosed::ShutDown)),
            }
        }
    }

    /// Run `action`, one action of op `op_id` (a tool call, a file write),
    /// under the kill switch: it runs only while a check of the op would
    /// run, and the caller learns why when it may not.
    ///
    /// - Terminated before it starts: `Err(OpBlocked::Terminated)` and
    ///   `action` is never polled.
    /// - Paused (or held by the outage policy) before it starts: waits, as
    ///   a check does, then starts.
    /// - Terminated while it runs: `action` is dropped at once (its work
    ///   cancelled at its next `.await`) and the call returns
    ///   `Err(OpBlocked::Terminated)`. A terminate of the op, of its agent
    ///   or of the fleet all count; terminated stays terminated.
    /// - Paused while it runs: `action` is not polled until a resume (or
    ///   is dropped on a terminate meanwhile), so the runtime's own code
    ///   makes no progress while paused; IO it handed to other tasks
    ///   continues.
    /// - The op-control stream down past its grace: the outage policy
    ///   applies as it does to checks: `Hold` suspends the action as a
    ///   pause does until the stream is back and settled, but no longer than
    ///   the hold limit: past it the action is dropped and the call returns
    ///   `Err(OpBlocked::HoldExpired { .. })`; `Deny` cancels it
    ///   (`Err(OpBlocked::OutageDeny)`), `Allow` lets it run. Op control
    ///   failing closed cancels it with `Err(OpBlocked::FailedClosed(_))`.
    ///
    /// Every one of those decisions is the core `OpControl` machine's (the
    /// same `check` a [`Tether::check`](super::Tether::check) asks); this
    /// only re-asks after each signal, stream change and outage. A
    /// terminate that lands as `action` completes wins: the output is
    /// dropped and the call says `Terminated`. Spawns nothing; dropping
    /// the returned future drops `action` and leaves no waiter behind.
    pub async fn run<F: std::future::Future>(
        &self,
        op_id: &str,
        action: F,
    ) -> Result<F::Output, OpBlocked> {
        // Subscribed before the first look, so no change is missed.
        let mut changes = self.changes.subscribe();
        self.wait_runnable(op_id).await?;
        let mut action = std::pin::pin!(action);
        loop {
            tokio::select! {
                biased;
                changed = changes.changed() => {
                    if changed.is_err() {
                        // Cannot happen while `self` holds the sender; run
                        // on without re-checks rather than spin.
                        return Ok(action.await);
                    }
                    // Suspends `action` while the op must wait; fails when
                    // it may not run.
                    self.wait_runnable(op_id).await?;
                }
                out = &mut action => return Ok(out),
            }
        }
    }

    /// Resolve once the op is terminated (used to cut short a check that is
    /// waiting elsewhere). Never resolves otherwise.
    pub async fn terminated(&self, op_id: &str) {
        let mut rx = self.changes.subscribe();
        loop {
            if self.state(op_id) == OpState::Terminated {
                return;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// The runtime finished this op: its terminated entry may be forgotten.
    pub fn finished(&self, op_id: &str) {
        let agent = self.agent();
        self.cell.with(|m, _| {
            m.on_op_finished(&agent, op_id);
            self.show_table(m);
        });
    }

    /// The runtime finished every op it ever checked (it drained its work):
    /// every op entry, marker and overflow entry is forgotten, any check
    /// still waiting on an op ends with [`FailClosed::OpFinished`], and a
    /// saturation of the op table ([`FailClosed::Saturated`]) lifts. Pauses
    /// and terminates of the whole agent or fleet stay: they cover ops not
    /// yet started.
    pub fn all_finished(&self) {
        self.cell.with(|m, _| {
            m.on_all_ops_finished();
            self.show_table(m);
        });
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Publish the op table's fill and saturation (status and metrics).
    fn show_table(&self, m: &OpControl) {
        let s = m.stats();
        let table = OpTableStatus {
            entries: s.entries,
            evicted_markers: s.evicted_markers,
            overflow: s.overflow,
            saturation: s.saturation,
            lost_terminate: s.lost_terminate,
        };
        metrics::gauge!(crate::metrics_names::OP_TABLE_SATURATED).set(if s.saturated {
            1.0
        } else {
            0.0
        });
        metrics::gauge!(crate::metrics_names::OP_TABLE_ENTRIES, "kind" => "entry")
            .set(s.entries as f64);
        metrics::gauge!(crate::metrics_names::OP_TABLE_ENTRIES, "kind" => "marker")
            .set(s.evicted_markers as f64);
        metrics::gauge!(crate::metrics_names::OP_TABLE_ENTRIES, "kind" => "overflow")
            .set(s.overflow as f64);
        // Watchers wake only when the table's figures changed.
        self.status.update_if(|st| {
            if st.kill_switch.op_table == table {
                return false;
            }
            if table.saturation != Saturation::Clear
                && st.kill_switch.op_table.saturation == Saturation::Clear
            {
                tracing::error!(
                    ?table,
                    "op control saturated: a pause or terminate found no room; ops it \
                     holds nothing for fail closed until every op has finished"
                );
            }
            st.kill_switch.op_table = table;
            true
        });
    }

    /// Feed a signal from the op-control stream (the stream task's job
    /// alone: application code reads and waits, it never feeds).
    pub(crate) fn on_signal(&self, op_id: &str, signal: i32, sequence: u64) -> SignalOutcome {
        let out = self.cell.with(|m, now| {
            let out = m.on_signal(now, op_id, Signal::from_wire(signal), sequence);
            if matches!(out, SignalOutcome::Applied | SignalOutcome::Saturated) {
                self.show_table(m);
            }
            out
        });
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
        out
    }

    /// The control stream is up.
    pub(crate) fn on_stream_up(&self) {
        self.cell.with(|m, now| {
            m.on_stream_up(now);
            self.show_link(m, now, None);
        });
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The control stream is down, for `why`.
    pub(crate) fn on_stream_down(&self, why: KillSwitchDown) {
        self.cell.with(|m, now| {
            m.on_stream_down(now);
            self.show_link(m, now, Some(why));
        });
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The stream is not up and an attempt to open it is under way, or
    /// failed for `why`: only the reason shown changes (the machine already
    /// counts the stream as down).
    pub(crate) fn on_stream_attempt(&self, why: KillSwitchDown) {
        self.cell.beside(|m| {
            if !m.stream_up() {
                self.status
                    .update(|s| s.kill_switch.unreachable = Some(why));
            }
        });
    }

    /// Publish the machine's view of the link (under its lock, so the
    /// status and the outage policy never disagree for long): reachable is
    /// exactly the machine's `stream_up`.
    fn show_link(&self, m: &OpControl, now: tether_core::Timestamp, why: Option<KillSwitchDown>) {
        let up = m.stream_up();
        let in_force = m.outage_in_force(now);
        self.status.update(|s| {
            let k = &mut s.kill_switch;
            if k.reachable != up {
                k.since = std::time::SystemTime::now();
            }
            k.reachable = up;
            k.unreachable = if up { None } else { why };
            k.outage_policy_in_force = in_force;
        });
    }

    /// The error of a check the hold limit ended.
    fn hold_expired(&self) -> OpBlocked {
        OpBlocked::HoldExpired {
            bound: self.hold_bound,
        }
    }

    /// How long after the stream is lost a held check ends at the latest
    /// (outage grace plus hold limit).
    pub fn hold_bound(&self) -> Duration {
        self.hold_bound
    }

    /// Whether the op-control outage in progress has outlasted the hold
    /// limit (checks on running ops are denied until it ends).
    pub fn hold_expired_now(&self) -> bool {
        let now = self.cell.clock().now();
        self.cell.read(|m| m.hold_expired(now))
    }

    /// Checks currently waiting.
    pub fn waiting(&self) -> usize {
        self.cell.read(|m| m.stats().waiters)
    }
}

fn blocked(reason: DenyReason, hold_bound: Duration) -> OpBlocked {
    match reason {
        DenyReason::Terminated => OpBlocked::Terminated,
        DenyReason::StreamDown => OpBlocked::OutageDeny,
        DenyReason::HoldExpired => OpBlocked::HoldExpired { bound: hold_bound },
        DenyReason::Evicted => OpBlocked::FailedClosed(FailClosed::Evicted),
        DenyReason::Saturated => OpBlocked::FailedClosed(FailClosed::Saturated),
        DenyReason::TooManyWaiters => OpBlocked::FailedClosed(FailClosed::TooManyWaiters),
        DenyReason::InvalidOpId(e) => OpBlocked::FailedClosed(FailClosed::InvalidOpId(e)),
        DenyReason::InvalidAgent(e) => OpBlocked::FailedClosed(FailClosed::InvalidAgent(e)),
    }
}
