//! Approval waiting as a typical codebase writes it: a concurrent map from
//! request id to a oneshot sender, each waiter in its own
//! `tokio::time::timeout`.

use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::oneshot;

/// A reviewer's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Approved.
    Approved,
    /// Denied.
    Denied,
}

/// How a baseline wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitResult {
    /// A verdict arrived.
    Verdict(Verdict),
    /// The timeout passed first.
    TimedOut,
    /// The sender was dropped (replaced by a second waiter on the same id).
    Dropped,
}

/// Request id → the waiter's sender. One waiter per id, as such code
/// usually has (a second waiter on the same id replaces the first).
#[derive(Debug, Default)]
pub struct BaselineApprovals {
    waiters: DashMap<String, oneshot::Sender<Verdict>>,
}

impl BaselineApprovals {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wait up to `timeout` for the verdict on `request_id`.
    pub async fn wait(&self, request_id: &str, timeout: Duration) -> WaitResult {
        let (tx, rx) = oneshot::channel();
        self.waiters.insert(request_id.to_owned(), tx);
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(v)) => WaitResult::Verdict(v),
            Ok(Err(_)) => WaitResult::Dropped,
            Err(_) => {
                self.waiters.remove(request_id);
                WaitResult::TimedOut
            }
        }
    }

    /// Deliver a verdict; `false` when nobody waits on `request_id`.
    pub fn resolve(&self, request_id: &str, verdict: Verdict) -> bool {
        match self.waiters.remove(request_id) {
            Some((_, tx)) => tx.send(verdict).is_ok(),
            None => false,
        }
    }

    /// Waiters registered.
    pub fn len(&self) -> usize {
        self.waiters.len()
    }

    /// Whether no waiter is registered.
    pub fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }
}
