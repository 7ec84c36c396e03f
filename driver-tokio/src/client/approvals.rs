//! [`Approvals`]: waiting for a reviewer's verdict, driven by the core's
//! `ApprovalWaiters` machine.
//!
//! Guarantees: any number of waiters per request id, each with its own
//! deadline; a verdict reaches every waiter once; a deadline yields
//! [`Outcome::TimedOut`] (pending), never a denial; a verdict that arrived
//! before anyone waited is kept for a while; a wait future dropped before
//! it finished leaves nothing behind (cancellation-safe).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use tether_core::approval::Outcome;
use tether_core::approval::{
    ApprovalAction, ApprovalConfig, ApprovalWaiters, ReviewerDecision, WaiterId,
};
use tokio::sync::oneshot;

use super::error::TetherError;
use crate::runtime::{Clock, Driven, TimerTask};

type Senders = Arc<Mutex<HashMap<WaiterId, oneshot::Sender<Outcome>>>>;

/// Approval waiting, cheap to clone.
#[derive(Clone)]
pub struct Approvals {
    cell: Arc<Driven<ApprovalWaiters>>,
    senders: Senders,
    _timer: Arc<TimerTask>,
}

impl std::fmt::Debug for Approvals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Approvals")
            .field("waiting", &self.cell.read(|m| m.waiting()))
            .finish()
    }
}

impl Approvals {
    /// Start the machine and its timer on the current tokio runtime.
    pub fn new(config: ApprovalConfig, clock: Clock) -> Self {
        let senders: Senders = Arc::default();
        let exec = senders.clone();
        let cell = Driven::new(ApprovalWaiters::new(config), clock, move |a: ApprovalAction| {
            let ApprovalAction::Resolved { waiter, outcome, .. } = a;
            let tx = exec.lock().unwrap_or_else(|e| e.into_inner()).remove(&waiter);
            if let Some(tx) = tx {
                let _ = tx.send(outcome);
            }
        });
        let timer = Arc::new(cell.spawn_timer());
        Approvals {
            cell,
            senders,
            _timer: timer,
        }
    }

    /// Wait for the verdict on `request_id` for at most `timeout`.
    /// [`Outcome::TimedOut`] means no reviewer answered in time; the request
    /// is still pending at the gateway.
    pub async fn wait(&self, request_id: &str, timeout: Duration) -> Result<Outcome, TetherError> {
        let (tx, rx) = oneshot::channel();
        let senders = self.senders.clone();
        let id = self.cell.with(|m, now| {
            let id = m.wait(now, request_id, now + timeout)?;
            senders
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, tx);
            Ok::<_, tether_core::approval::WaitError>(id)
        });
        let id = id.map_err(|e| TetherError::Limit(format!("approval wait refused: {e:?}")))?;
        let guard = CancelOnDrop {
            approvals: self,
            id: Some(id),
        };
        let out = rx.await;
        let mut guard = guard;
        guard.id = None;
        // The sender is only dropped without a value if the machine was
        // dropped, which cannot happen while `self` is alive.
        out.map_err(|_| TetherError::Shutdown)
    }

    /// Feed a verdict from the invalidation stream (ApprovalResolved).
    pub fn on_verdict(&self, request_id: &str, decision: ReviewerDecision) {
        self.cell.with(|m, now| m.on_verdict(now, request_id, decision));
    }

    /// Waiters currently waiting.
    pub fn waiting(&self) -> usize {
        self.cell.read(|m| m.waiting())
    }
}

struct CancelOnDrop<'a> {
    approvals: &'a Approvals,
    id: Option<WaiterId>,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.approvals.cell.with(|m, _| m.cancel(id));
            self.approvals
                .senders
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn verdict_reaches_every_waiter_deadline_is_pending_and_drop_leaves_nothing() {
        let a = Approvals::new(ApprovalConfig::default(), Clock::new());
        let w1 = tokio::spawn({
            let a = a.clone();
            async move { a.wait("r1", Duration::from_secs(10)).await }
        });
        let w2 = tokio::spawn({
            let a = a.clone();
            async move { a.wait("r1", Duration::from_secs(20)).await }
        });
        let w3 = tokio::spawn({
            let a = a.clone();
            async move { a.wait("r2", Duration::from_secs(5)).await }
        });
        while a.waiting() < 3 {
            tokio::task::yield_now().await;
        }
        a.on_verdict("r1", ReviewerDecision::Approved);
        assert_eq!(w1.await.unwrap().unwrap(), Outcome::Approved);
        assert_eq!(w2.await.unwrap().unwrap(), Outcome::Approved);
        assert_eq!(w3.await.unwrap().unwrap(), Outcome::TimedOut);
        // Early verdict: kept for a late waiter.
        a.on_verdict("r3", ReviewerDecision::Denied);
        assert_eq!(a.wait("r3", Duration::from_secs(1)).await.unwrap(), Outcome::Denied);
        // A dropped wait leaves nothing behind.
        let fut = a.wait("r4", Duration::from_secs(100));
        let _ = tokio::time::timeout(Duration::from_secs(1), fut).await;
        assert_eq!(a.waiting(), 0);
        assert!(a.senders.lock().unwrap().is_empty());
    }
}
