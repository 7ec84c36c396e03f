//! Op control as a typical codebase writes it: a concurrent map of op
//! states plus one `Notify` woken on every change.

use dashmap::DashMap;
use tokio::sync::Notify;

/// An op's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpState {
    /// May run.
    Running,
    /// Must wait.
    Paused,
    /// Must not run.
    Terminated,
}

/// Op id → state, and a `Notify` every waiter re-checks on.
#[derive(Debug, Default)]
pub struct BaselineOpControl {
    ops: DashMap<String, OpState>,
    changed: Notify,
}

impl BaselineOpControl {
    /// No ops.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set an op's state and wake every waiter. Terminate is kept absorbing
    /// (the one rule such code usually does get right).
    pub fn set(&self, op_id: &str, state: OpState) {
        let mut e = self.ops.entry(op_id.to_owned()).or_insert(OpState::Running);
        if *e != OpState::Terminated {
            *e = state;
        }
        drop(e);
        self.changed.notify_waiters();
    }

    /// The op's state now (unknown ops run).
    pub fn state(&self, op_id: &str) -> OpState {
        self.ops.get(op_id).map(|s| *s).unwrap_or(OpState::Running)
    }

    /// Wait until the op may run (`true`) or is terminated (`false`).
    pub async fn check(&self, op_id: &str) -> bool {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.state(op_id) {
                OpState::Running => return true,
                OpState::Terminated => return false,
                OpState::Paused => notified.await,
            }
        }
    }

    /// Ops known.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether no op is known.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}
