//! [`Waiters`]: the oneshot senders of futures waiting on a machine's
//! answer, keyed by the machine's waiter id, and [`CancelGuard`], which
//! makes such a future cancellation-safe.
//!
//! Guarantees: a value reaches the waiter registered under its id at most
//! once; a waiter future dropped before its answer runs its cancel action
//! (the machine forgets the waiter) and leaves no sender behind.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// Senders of pending waits, shared between the callers that register them
/// and the action executor that completes them.
#[derive(Debug)]
pub struct Waiters<Id, T> {
    senders: Arc<Mutex<HashMap<Id, oneshot::Sender<T>>>>,
}

impl<Id, T> Clone for Waiters<Id, T> {
    fn clone(&self) -> Self {
        Waiters {
            senders: self.senders.clone(),
        }
    }
}

impl<Id, T> Default for Waiters<Id, T> {
    fn default() -> Self {
        Waiters {
            senders: Arc::default(),
        }
    }
}

impl<Id: Eq + Hash, T> Waiters<Id, T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Id, oneshot::Sender<T>>> {
        self.senders.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Register the sender for `id` (call it inside the machine's lock, in
    /// the same input that created the waiter, so an immediate answer finds
    /// it).
    pub fn register(&self, id: Id, tx: oneshot::Sender<T>) {
        self.lock().insert(id, tx);
    }

    /// Deliver `value` to the waiter `id`, if it is still there.
    pub fn complete(&self, id: &Id, value: T) {
        let tx = self.lock().remove(id);
        if let Some(tx) = tx {
            let _ = tx.send(value);
        }
    }

    /// Forget the waiter `id`.
    pub fn remove(&self, id: &Id) {
        self.lock().remove(id);
    }

    /// Waiters still registered.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Runs its cancel action on drop unless disarmed: hold it across the
/// `.await` of a wait, disarm it once the answer arrived.
pub struct CancelGuard<F: FnOnce()> {
    cancel: Option<F>,
}

impl<F: FnOnce()> CancelGuard<F> {
    /// A guard that runs `cancel` if dropped while armed.
    pub fn new(cancel: F) -> Self {
        CancelGuard {
            cancel: Some(cancel),
        }
    }

    /// The wait finished: do not cancel.
    pub fn disarm(mut self) {
        self.cancel = None;
    }
}

impl<F: FnOnce()> Drop for CancelGuard<F> {
    fn drop(&mut self) {
        if let Some(cancel) = self.cancel.take() {
            cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_once_and_a_dropped_guard_cancels() {
        let w: Waiters<u32, &str> = Waiters::default();
        let (tx, mut rx) = oneshot::channel();
        w.register(1, tx);
        w.complete(&1, "a");
        w.complete(&1, "b");
        assert_eq!(rx.try_recv().unwrap(), "a");
        assert!(w.is_empty());

        let cancelled = std::cell::Cell::new(false);
        drop(CancelGuard::new(|| cancelled.set(true)));
        assert!(cancelled.get());
        let kept = std::cell::Cell::new(false);
        CancelGuard::new(|| kept.set(true)).disarm();
        assert!(!kept.get());
    }
}
