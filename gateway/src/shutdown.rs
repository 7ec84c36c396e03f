//! The gateway's shutdown signal.
//!
//! Guarantees: once triggered it stays triggered; every waiter, whether it
//! started waiting before or after the trigger, is woken (no lost wake-up),
//! so every open stream and held call of the gateway ends promptly.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

/// A one-way latch shared by the server and every handler. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
    /// The same flag, for [`Shutdown::is_triggered`] without the channel's
    /// lock (it is checked once per event sent).
    flag: Arc<AtomicBool>,
}

impl Shutdown {
    /// A signal not yet triggered.
    pub(crate) fn new() -> Self {
        Shutdown {
            tx: Arc::new(watch::channel(false).0),
            flag: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Trigger it; idempotent.
    pub(crate) fn trigger(&self) {
        self.flag.store(true, Ordering::Release);
        self.tx.send_replace(true);
    }

    /// Whether it was triggered.
    pub(crate) fn is_triggered(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// Completes once the signal is triggered (at once if it already was).
    /// Cancellation-safe.
    pub(crate) async fn triggered(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`, so the channel cannot close under us.
        let _ = rx.wait_for(|on| *on).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wakes_waiters_before_and_after_the_trigger() {
        let s = Shutdown::new();
        assert!(!s.is_triggered());
        let early = tokio::spawn({
            let s = s.clone();
            async move { s.triggered().await }
        });
        tokio::task::yield_now().await;
        s.trigger();
        s.trigger();
        early.await.unwrap();
        s.triggered().await;
        assert!(s.is_triggered());
    }
}
