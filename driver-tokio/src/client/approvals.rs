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
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

pub use tether_core::approval::Outcome;
use tether_core::approval::{
    ApprovalAction, ApprovalConfig, ApprovalTimer, ApprovalWaiters, ReviewerDecision, WaitError,
    WaiterId,
};
use tether_core::id_hash::BuildIdHasher;
use tether_core::{Deadline, Machine, Timestamp};

use super::error::TetherError;
use crate::runtime::{Clock, Driven, TimerTask};

/// Approval waiting, cheap to clone.
#[derive(Clone)]
pub struct Approvals {
    cell: Arc<Driven<Waiters>>,
    _timer: Arc<TimerTask>,
}

impl std::fmt::Debug for Approvals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Approvals")
            .field("waiting", &self.waiting())
            .finish()
    }
}

impl Approvals {
    /// Start the machine and its timer on the current tokio runtime.
    pub fn new(config: ApprovalConfig, clock: Clock) -> Self {
        let cell = Driven::new(Waiters::new(config), clock, Waker::wake);
        let timer = Arc::new(cell.spawn_timer());
        Approvals {
            cell,
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
        let registered = self.cell.with(|w, now| {
            let id = w.machine.wait(now, request_id, now + timeout)?;
            // Opened before an immediate resolution is drained, so the
            // resolution finds the mailbox.
            w.mailboxes.open(id);
            Ok(id)
        });
        ApprovalWait {
            approvals: self,
            state: registered.map_err(Ended::Refused),
        }
    }

    /// Feed a verdict from the invalidation stream (ApprovalResolved).
    pub fn on_verdict(&self, request_id: &str, decision: ReviewerDecision) {
        self.cell
            .with(|w, now| w.machine.on_verdict(now, request_id, decision));
    }

    /// Waiters currently waiting.
    pub fn waiting(&self) -> usize {
        self.cell.read(|w| w.machine.waiting())
    }
}

/// The future of one [`Approvals::wait`]: resolves to the waiter's
/// outcome; dropped before that, it cancels the waiter.
#[must_use = "the waiter is cancelled when this future is dropped"]
pub struct ApprovalWait<'a> {
    approvals: &'a Approvals,
    /// `Ok`: waiting as this waiter. 16 bytes (the id's niche holds the
    /// tag), so the future is 24 bytes.
    state: Result<WaiterId, Ended>,
}

/// Why an [`ApprovalWait`] no longer waits.
#[derive(Clone, Copy)]
enum Ended {
    /// The wait was refused.
    Refused(WaitError),
    /// The outcome (or error) was returned.
    Finished,
}

// The future stays three words: a caller's boxed future holding it lands
// in a smaller allocation.
const _: () = assert!(std::mem::size_of::<ApprovalWait<'static>>() <= 24);

impl std::fmt::Debug for ApprovalWait<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            Ok(id) => format!("waiting ({})", id.get()),
            Err(Ended::Refused(e)) => format!("refused ({e:?})"),
            Err(Ended::Finished) => "finished".to_owned(),
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
            Ok(id) => match self
                .approvals
                .cell
                .beside(|w| w.mailboxes.poll(&w.machine, id, cx.waker()))
            {
                Poll::Ready(Some(outcome)) => Poll::Ready(Ok(outcome)),
                // Only a dropped machine leaves a wait without its mailbox,
                // which cannot happen while the future borrows its handle.
                Poll::Ready(None) => Poll::Ready(Err(TetherError::Shutdown)),
                Poll::Pending => Poll::Pending,
            },
            Err(Ended::Refused(e)) => Poll::Ready(Err(TetherError::Limit(format!(
                "approval wait refused: {e:?}"
            )))),
            Err(Ended::Finished) => Poll::Ready(Err(TetherError::Limit(
                "approval wait polled after it finished".to_owned(),
            ))),
        };
        if polled.is_ready() {
            self.state = Err(Ended::Finished);
        }
        polled
    }
}

impl Drop for ApprovalWait<'_> {
    fn drop(&mut self) {
        if let Ok(id) = self.state {
            self.approvals.cell.update(|w| {
                let cancelled = w.machine.cancel(id);
                w.mailboxes.close(id, cancelled);
            });
        }
    }
}

/// The machine and its waiters' mailboxes under one lock: a wait, a
/// verdict, a poll and a cancellation each take the lock once.
///
/// As a [`Machine`], it passes inputs and timers through to the approval
/// machine and turns each resolution into the outcome written in its
/// waiter's mailbox (under the lock) plus the waker to wake (the action
/// executed outside the lock).
struct Waiters {
    machine: ApprovalWaiters,
    mailboxes: Mailboxes,
}

impl Waiters {
    fn new(config: ApprovalConfig) -> Self {
        Waiters {
            machine: ApprovalWaiters::new(config),
            mailboxes: Mailboxes::default(),
        }
    }
}

impl Machine for Waiters {
    type Action = Waker;
    type TimerReason = ApprovalTimer;

    fn poll_action(&mut self) -> Option<Waker> {
        loop {
            let ApprovalAction::Resolved {
                waiter, outcome, ..
            } = self.machine.poll_action()?;
            if let Some(waker) = self.mailboxes.deliver(waiter, outcome) {
                return Some(waker);
            }
        }
    }

    fn poll_timeout(&self) -> Option<Deadline<ApprovalTimer>> {
        self.machine.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        self.machine.handle_timeout(now);
    }
}

/// The waiters' mailboxes: whom to wake per waiting waiter, in a dense
/// `Vec` indexed by the machine's slot for the waiter (so no hashing, and
/// it grows like the machine's slab), and the outcomes delivered but not
/// yet taken, by waiter id.
///
/// A slot's waker needs no tag naming its waiter: while the machine holds
/// the slot ([`ApprovalWaiters::holds`]) it is that waiter's, and a
/// resolution moves the outcome out of the slot's reach (into `done`) in
/// the same drain that frees the slot, so a newer waiter reusing it never
/// sees an older one's outcome. 16 bytes per slot.
///
/// Guarantees: an outcome is written at most once, only for a waiter whose
/// future still exists (a dropped future cancels first); a waker or
/// outcome is removed when its outcome is taken or its future dropped, so
/// none outlives its wait.
#[derive(Default)]
struct Mailboxes {
    /// By slot: whom to wake when the waiter holding the slot is resolved.
    wakers: Vec<Option<Waker>>,
    /// Outcomes delivered and not yet taken, by waiter id.
    done: HashMap<u64, Outcome, BuildIdHasher>,
}

// A slot's mailbox is one waker, no tag.
const _: () = assert!(std::mem::size_of::<Option<Waker>>() == 16);

impl Mailboxes {
    /// Open the mailbox of a new waiter (whose slot the machine now holds).
    fn open(&mut self, id: WaiterId) {
        let slot = id.slot();
        if slot >= self.wakers.len() {
            self.wakers.resize_with(slot + 1, || None);
        }
        self.wakers[slot] = None;
    }

    /// Record `outcome` for `id`, whose resolution is being drained (its
    /// slot is still its own); whom to wake.
    fn deliver(&mut self, id: WaiterId, outcome: Outcome) -> Option<Waker> {
        self.done.insert(id.get(), outcome);
        self.wakers.get_mut(id.slot()).and_then(Option::take)
    }

    /// Take the outcome of `id` (`Ready(None)`: it has none and the machine
    /// does not hold it), or remember `waker` while the machine holds it.
    fn poll(
        &mut self,
        machine: &ApprovalWaiters,
        id: WaiterId,
        waker: &Waker,
    ) -> Poll<Option<Outcome>> {
        if machine.holds(id) {
            if let Some(slot) = self.wakers.get_mut(id.slot()) {
                if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
                    *slot = Some(waker.clone());
                }
                return Poll::Pending;
            }
        }
        Poll::Ready(self.done.remove(&id.get()))
    }

    /// Remove what `id` left: its waker if the machine held it until now
    /// (`cancelled`), else its outcome not yet taken.
    fn close(&mut self, id: WaiterId, cancelled: bool) {
        if cancelled {
            if let Some(slot) = self.wakers.get_mut(id.slot()) {
                *slot = None;
            }
        } else {
            self.done.remove(&id.get());
        }
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.done.is_empty() && self.wakers.iter().all(Option::is_none)
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
        assert!(a.cell.read(|w| w.mailboxes.is_empty()));
        // Registered at the call: a future dropped unpolled cancels too.
        let unpolled = a.wait("r5", Duration::from_secs(100));
        assert_eq!(a.waiting(), 1);
        drop(unpolled);
        assert_eq!(a.waiting(), 0);
        assert!(a.cell.read(|w| w.mailboxes.is_empty()));
    }

    #[tokio::test(start_paused = true)]
    async fn an_outcome_not_yet_taken_survives_the_reuse_of_its_slot() {
        let a = Approvals::new(ApprovalConfig::default(), Clock::new());
        let done = || a.cell.read(|w| w.mailboxes.done.len());
        let first = a.wait("r1", Duration::from_secs(10));
        a.on_verdict("r1", ReviewerDecision::Approved);
        // The resolution is drained, so the machine reuses the slot before
        // `first` takes its outcome: the outcome waits in `done`.
        let second = a.wait("r2", Duration::from_secs(10));
        assert_eq!(done(), 1);
        a.on_verdict("r2", ReviewerDecision::Denied);
        assert_eq!(second.await.unwrap(), Outcome::Denied);
        assert_eq!(first.await.unwrap(), Outcome::Approved);
        assert!(a.cell.read(|w| w.mailboxes.is_empty()));
        // Dropped instead of taken, an outcome in `done` is removed too.
        let third = a.wait("r3", Duration::from_secs(10));
        a.on_verdict("r3", ReviewerDecision::Approved);
        let fourth = a.wait("r4", Duration::from_secs(10));
        assert_eq!(done(), 1);
        drop(third);
        drop(fourth);
        assert_eq!(a.waiting(), 0);
        assert!(a.cell.read(|w| w.mailboxes.is_empty()));
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
        assert!(a.cell.read(|w| w.mailboxes.is_empty()));
    }
}
