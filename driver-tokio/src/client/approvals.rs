//! [`Approvals`]: waiting for a reviewer's verdict, driven by the core's
//! `ApprovalWaiters` machine.
//!
//! Guarantees: any number of waiters per request id, each with its own
//! deadline; a verdict reaches every waiter once; a deadline yields
//! [`Outcome::TimedOut`] (pending), never a denial; a verdict that arrived
//! before anyone waited is kept for a while; a wait future dropped before
//! it finished leaves nothing behind (cancellation-safe).

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

pub use tether_core::approval::Outcome;
use tether_core::approval::{
    ApprovalAction, ApprovalConfig, ApprovalWaiters, ReviewerDecision, WaitError, WaiterId,
};

use super::error::TetherError;
use crate::runtime::{Clock, Driven, TimerTask};

/// Approval waiting, cheap to clone.
#[derive(Clone)]
pub struct Approvals {
    cell: Arc<Driven<ApprovalWaiters>>,
    mailboxes: Mailboxes,
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
        let mailboxes = Mailboxes::default();
        let exec = mailboxes.clone();
        let cell = Driven::new(
            ApprovalWaiters::new(config),
            clock,
            move |a: ApprovalAction| {
                let ApprovalAction::Resolved {
                    waiter, outcome, ..
                } = a;
                exec.deliver(waiter, outcome);
            },
        );
        let timer = Arc::new(cell.spawn_timer());
        Approvals {
            cell,
            mailboxes,
            _timer: timer,
        }
    }

    /// Wait for the verdict on `request_id` for at most `timeout`.
    /// [`Outcome::TimedOut`] means no reviewer answered in time; the request
    /// is still pending at the gateway.
    ///
    /// The waiter is registered when `wait` is called (the timeout runs
    /// from then), so the returned future holds only its id: a held tool
    /// call costs a few dozen bytes beyond the machine's entry. Dropping
    /// the future before it finishes cancels the waiter and leaves nothing
    /// behind (cancellation-safe).
    pub fn wait(&self, request_id: &str, timeout: Duration) -> ApprovalWait<'_> {
        let mailboxes = &self.mailboxes;
        let registered = self.cell.with(|m, now| {
            let id = m.wait(now, request_id, now + timeout)?;
            // Opened under the machine's lock, before an immediate
            // resolution is executed, so it finds the mailbox.
            mailboxes.open(id);
            Ok(id)
        });
        ApprovalWait {
            approvals: self,
            state: match registered {
                Ok(id) => WaitState::Waiting(id),
                Err(e) => WaitState::Refused(e),
            },
        }
    }

    /// Feed a verdict from the invalidation stream (ApprovalResolved).
    pub fn on_verdict(&self, request_id: &str, decision: ReviewerDecision) {
        self.cell
            .with(|m, now| m.on_verdict(now, request_id, decision));
    }

    /// Waiters currently waiting.
    pub fn waiting(&self) -> usize {
        self.cell.read(|m| m.waiting())
    }
}

/// The future of one [`Approvals::wait`]: resolves to the waiter's
/// outcome; dropped before that, it cancels the waiter.
#[must_use = "the waiter is cancelled when this future is dropped"]
pub struct ApprovalWait<'a> {
    approvals: &'a Approvals,
    state: WaitState,
}

enum WaitState {
    Waiting(WaiterId),
    Refused(WaitError),
    Finished,
}

impl std::fmt::Debug for ApprovalWait<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            WaitState::Waiting(id) => format!("waiting ({})", id.get()),
            WaitState::Refused(e) => format!("refused ({e:?})"),
            WaitState::Finished => "finished".to_owned(),
        };
        f.debug_struct("ApprovalWait")
            .field("state", &state)
            .finish()
    }
}

impl Future for ApprovalWait<'_> {
    type Output = Result<Outcome, TetherError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let polled = match self.state {
            WaitState::Waiting(id) => self.approvals.mailboxes.poll(id, cx.waker()),
            WaitState::Refused(e) => Poll::Ready(Err(TetherError::Limit(format!(
                "approval wait refused: {e:?}"
            )))),
            WaitState::Finished => Poll::Ready(Err(TetherError::Limit(
                "approval wait polled after it finished".to_owned(),
            ))),
        };
        if polled.is_ready() {
            self.state = WaitState::Finished;
        }
        polled
    }
}

impl Drop for ApprovalWait<'_> {
    fn drop(&mut self) {
        if let WaitState::Waiting(id) = self.state {
            self.approvals.cell.with(|m, _| m.cancel(id));
            self.approvals.mailboxes.close(id);
        }
    }
}

/// What a waiter's mailbox holds: whom to wake, then the outcome.
enum Mailbox {
    Waiting(Option<Waker>),
    Done(Outcome),
}

/// One small entry per pending wait, keyed by its waiter id, instead of a
/// channel per wait: the resolution is written in place and the waiting
/// task woken.
///
/// Guarantees: an outcome reaches the mailbox of its waiter at most once
/// and only while it is open; a mailbox is removed when its outcome is
/// taken or its future dropped, so none outlives its wait.
#[derive(Clone, Default)]
struct Mailboxes {
    map: Arc<Mutex<HashMap<u64, Mailbox, BuildHasherDefault<SeqHasher>>>>,
}

impl Mailboxes {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Mailbox, BuildHasherDefault<SeqHasher>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open(&self, id: WaiterId) {
        self.lock().insert(id.get(), Mailbox::Waiting(None));
    }

    fn deliver(&self, id: WaiterId, outcome: Outcome) {
        let waker = {
            let mut map = self.lock();
            match map.get_mut(&id.get()) {
                Some(slot @ Mailbox::Waiting(_)) => {
                    match std::mem::replace(slot, Mailbox::Done(outcome)) {
                        Mailbox::Waiting(w) => w,
                        Mailbox::Done(_) => None,
                    }
                }
                _ => None,
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn poll(&self, id: WaiterId, waker: &Waker) -> Poll<Result<Outcome, TetherError>> {
        let mut map = self.lock();
        match map.get_mut(&id.get()) {
            Some(Mailbox::Waiting(slot)) => {
                if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
                    *slot = Some(waker.clone());
                }
                Poll::Pending
            }
            Some(Mailbox::Done(outcome)) => {
                let outcome = *outcome;
                map.remove(&id.get());
                Poll::Ready(Ok(outcome))
            }
            // Only a dropped machine leaves a wait without its mailbox,
            // which cannot happen while the future borrows its handle.
            None => Poll::Ready(Err(TetherError::Shutdown)),
        }
    }

    fn close(&self, id: WaiterId) {
        self.lock().remove(&id.get());
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

/// Hashes the machine's waiter ids, which are issued in sequence: one
/// multiplication by an odd constant spreads consecutive ids over every
/// bucket with no collision among any 2^k of them.
#[derive(Default)]
struct SeqHasher(u64);

impl Hasher for SeqHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
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
        assert_eq!(
            a.wait("r3", Duration::from_secs(1)).await.unwrap(),
            Outcome::Denied
        );
        // A dropped wait leaves nothing behind.
        let fut = a.wait("r4", Duration::from_secs(100));
        let _ = tokio::time::timeout(Duration::from_secs(1), fut).await;
        assert_eq!(a.waiting(), 0);
        assert!(a.mailboxes.is_empty());
        // Registered at the call: a future dropped unpolled cancels too.
        let unpolled = a.wait("r5", Duration::from_secs(100));
        assert_eq!(a.waiting(), 1);
        drop(unpolled);
        assert_eq!(a.waiting(), 0);
        assert!(a.mailboxes.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_wait_is_a_limit_error_and_registers_nothing() {
        let a = Approvals::new(
            ApprovalConfig {
                max_waiters: 1,
                ..ApprovalConfig::default()
            },
            Clock::new(),
        );
        let first = a.wait("r1", Duration::from_secs(10));
        let refused = a.wait("r2", Duration::from_secs(10)).await;
        assert!(matches!(refused, Err(TetherError::Limit(_))), "{refused:?}");
        assert!(matches!(
            a.wait("", Duration::from_secs(1)).await,
            Err(TetherError::Limit(_))
        ));
        a.on_verdict("r1", ReviewerDecision::Denied);
        assert_eq!(first.await.unwrap(), Outcome::Denied);
        assert!(a.mailboxes.is_empty());
    }
}
