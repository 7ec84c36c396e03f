//! [`Approvals`]: waiting for a reviewer's verdict, driven by the core's
//! `ApprovalWaiters` machine.
//!
//! Guarantees: any number of waiters per request id, each with its own
//! deadline; a verdict reaches every waiter once; a deadline yields
//! [`ApprovalOutcome::TimedOut`] (pending), never a denial; a verdict that
//! arrived before anyone waited is kept for a while; a wait future dropped
//! before it finished leaves nothing behind (cancellation-safe): no waiter
//! in the machine, no mailbox here. An [`ApprovalWait`] owns a handle to the
//! machine (`'static` and `Send`), so it can be spawned. Verdicts come only
//! from the client's invalidation stream: application code cannot feed the
//! machine.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tether_core::approval::{
    ApprovalAction, ApprovalConfig, ApprovalStats, ApprovalTimer, ApprovalWaiterId,
    ApprovalWaiters, ReviewerDecision,
};
pub use tether_core::approval::{ApprovalOutcome, ApprovalWaitError};
use tether_core::{Deadline, Machine, Timestamp};

use crate::runtime::{Clock, Driven, TimerTask};

/// Approval waiting, cheap to clone.
///
/// The handle waits and reports; it cannot resolve anything. Verdicts are
/// fed by the client's invalidation stream only, so this does not compile:
///
/// ```compile_fail
/// use tether_core::approval::ReviewerDecision;
/// fn feed(a: &tether_tokio::client::Approvals) {
///     a.on_verdict("req-1", ReviewerDecision::Approved);
/// }
/// ```
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
    /// [`ApprovalOutcome::TimedOut`] means no reviewer answered in time; the
    /// request is still pending at the gateway.
    ///
    /// The waiter is registered when `wait` is called (the timeout runs
    /// from then). The future owns a handle (`'static`, `Send`: it can be
    /// spawned); dropping it before it finishes cancels the waiter and
    /// leaves nothing behind. A refused wait (empty or too long id, too
    /// many waiters) resolves to its [`ApprovalWaitError`].
    pub fn wait(&self, request_id: &str, timeout: Duration) -> ApprovalWait {
        let registered = self.cell.with(|w, now| {
            let id = w
                .machine
                .wait(now, request_id, now.saturating_add(timeout))?;
            // Opened before an immediate resolution is drained, so the
            // resolution finds the mailbox.
            w.mailboxes.insert(id, Mailbox::Waiting(None));
            Ok(id)
        });
        ApprovalWait {
            approvals: self.clone(),
            state: match registered {
                Ok(id) => State::Waiting(id),
                Err(e) => State::Ended(Err(e)),
            },
        }
    }

    /// Feed a verdict from the invalidation stream (ApprovalResolved).
    pub(crate) fn on_verdict(&self, request_id: &str, decision: ReviewerDecision) {
        self.cell
            .with(|w, now| w.machine.on_verdict(now, request_id, decision));
    }

    /// Waiters currently waiting.
    pub fn waiting(&self) -> usize {
        self.cell.read(|w| w.machine.waiting())
    }

    /// The machine's counters and sizes (waiting, kept verdicts, ...).
    pub fn stats(&self) -> ApprovalStats {
        self.cell.read(|w| w.machine.stats())
    }
}

/// The future of one [`Approvals::wait`]: resolves to the waiter's
/// outcome; dropped before that, it cancels the waiter.
#[must_use = "the waiter is cancelled when this future is dropped"]
pub struct ApprovalWait {
    approvals: Approvals,
    state: State,
}

enum State {
    /// Registered as this waiter.
    Waiting(ApprovalWaiterId),
    /// Refused, or finished with this result (returned again if polled
    /// again).
    Ended(Result<ApprovalOutcome, ApprovalWaitError>),
}

impl std::fmt::Debug for ApprovalWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Waiting(id) => format!("waiting ({})", id.get()),
            State::Ended(r) => format!("ended ({r:?})"),
        };
        f.debug_struct("ApprovalWait")
            .field("state", &state)
            .finish()
    }
}

impl Future for ApprovalWait {
    type Output = Result<ApprovalOutcome, ApprovalWaitError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let id = match self.state {
            State::Waiting(id) => id,
            State::Ended(r) => return Poll::Ready(r),
        };
        let taken = self
            .approvals
            .cell
            .beside(|w| w.mailboxes.take_or_park(id, cx.waker()));
        match taken {
            Some(outcome) => {
                self.state = State::Ended(Ok(outcome));
                Poll::Ready(Ok(outcome))
            }
            None => Poll::Pending,
        }
    }
}

impl Drop for ApprovalWait {
    fn drop(&mut self) {
        if let State::Waiting(id) = self.state {
            self.approvals.cell.update(|w| {
                // Still waiting, or resolved and drained into the mailbox:
                // either way nothing of it stays.
                let _ = w.machine.cancel(id);
                w.mailboxes.remove(&id);
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
            let ApprovalAction::Resolved { waiter, outcome } = self.machine.poll_action()?;
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

/// One waiter's mailbox: whom to wake, then its outcome until taken.
enum Mailbox {
    Waiting(Option<Waker>),
    Done(ApprovalOutcome),
}

/// The mailboxes of the waiters whose futures exist, by waiter id.
///
/// Guarantees: a mailbox exists exactly from a successful `wait` until its
/// future takes the outcome or is dropped; an outcome is written at most
/// once (the machine resolves a waiter once).
#[derive(Default)]
struct Mailboxes {
    by_id: HashMap<ApprovalWaiterId, Mailbox>,
}

impl Mailboxes {
    fn insert(&mut self, id: ApprovalWaiterId, mailbox: Mailbox) {
        self.by_id.insert(id, mailbox);
    }

    fn remove(&mut self, id: &ApprovalWaiterId) {
        self.by_id.remove(id);
    }

    /// Record `outcome` for `id`; whom to wake. A waiter without a mailbox
    /// (its future is gone) is skipped.
    fn deliver(&mut self, id: ApprovalWaiterId, outcome: ApprovalOutcome) -> Option<Waker> {
        let mailbox = self.by_id.get_mut(&id)?;
        match std::mem::replace(mailbox, Mailbox::Done(outcome)) {
            Mailbox::Waiting(waker) => waker,
            Mailbox::Done(_) => None,
        }
    }

    /// Take the outcome of `id` (removing its mailbox), or remember `waker`
    /// until there is one.
    fn take_or_park(&mut self, id: ApprovalWaiterId, waker: &Waker) -> Option<ApprovalOutcome> {
        match self.by_id.get_mut(&id) {
            Some(Mailbox::Waiting(parked)) => {
                if !parked.as_ref().is_some_and(|w| w.will_wake(waker)) {
                    *parked = Some(waker.clone());
                }
                None
            }
            Some(Mailbox::Done(outcome)) => {
                let outcome = *outcome;
                self.by_id.remove(&id);
                Some(outcome)
            }
            // Unreachable: the mailbox goes only with its future's outcome
            // or drop. Were it gone, no verdict is known: "pending".
            None => Some(ApprovalOutcome::TimedOut),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_id.len()
    }

    #[cfg(test)]
    fn done(&self) -> usize {
        self.by_id
            .values()
            .filter(|m| matches!(m, Mailbox::Done(_)))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::TetherError;

    fn assert_static_send<T: Send + 'static>(_: &T) {}

    /// Nothing left: no waiter, no undelivered resolution, no mailbox.
    fn empty(a: &Approvals) -> bool {
        let s = a.stats();
        s.waiting == 0 && s.undelivered == 0 && a.cell.read(|w| w.mailboxes.len()) == 0
    }

    #[tokio::test(start_paused = true)]
    async fn verdict_reaches_every_waiter_deadline_is_pending_and_drop_leaves_nothing() {
        let a = Approvals::new(ApprovalConfig::default(), Clock::new());
        let w1 = tokio::spawn(a.wait("r1", Duration::from_secs(10)));
        let w2 = tokio::spawn(a.wait("r1", Duration::from_secs(20)));
        let w3 = tokio::spawn(a.wait("r2", Duration::from_secs(5)));
        assert_eq!(a.waiting(), 3);
        a.on_verdict("r1", ReviewerDecision::Approved);
        assert_eq!(w1.await.unwrap(), Ok(ApprovalOutcome::Approved));
        assert_eq!(w2.await.unwrap(), Ok(ApprovalOutcome::Approved));
        assert_eq!(w3.await.unwrap(), Ok(ApprovalOutcome::TimedOut));
        // Early verdict: kept for a late waiter.
        a.on_verdict("r3", ReviewerDecision::Denied);
        assert_eq!(
            a.wait("r3", Duration::from_secs(1)).await,
            Ok(ApprovalOutcome::Denied)
        );
        // A dropped wait leaves nothing behind.
        let fut = a.wait("r4", Duration::from_secs(100));
        let _ = tokio::time::timeout(Duration::from_secs(1), fut).await;
        assert!(empty(&a));
        // Registered at the call: a future dropped unpolled cancels too.
        let unpolled = a.wait("r5", Duration::from_secs(100));
        assert_eq!(a.waiting(), 1);
        drop(unpolled);
        assert!(empty(&a));
        assert_eq!(a.stats().cancelled, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_is_static_and_send_and_a_spawned_one_gets_its_verdict() {
        let a = Approvals::new(ApprovalConfig::default(), Clock::new());
        let wait = a.wait("r1", Duration::from_secs(60));
        assert_static_send(&wait);
        // The wait outlives every handle the caller held.
        let task = tokio::spawn(wait);
        let feeder = a.clone();
        drop(a);
        tokio::task::yield_now().await;
        assert_eq!(feeder.waiting(), 1);
        feeder.on_verdict("r1", ReviewerDecision::Denied);
        assert_eq!(task.await.unwrap(), Ok(ApprovalOutcome::Denied));
        assert!(empty(&feeder));
        // Polled again after it finished: the same result, no panic.
        let mut again = feeder.wait("r1", Duration::from_secs(60));
        assert_eq!((&mut again).await, Ok(ApprovalOutcome::Denied));
        assert_eq!((&mut again).await, Ok(ApprovalOutcome::Denied));
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_wait_leaves_zero_waiters() {
        let a = Approvals::new(ApprovalConfig::default(), Clock::new());
        // Spawned, parked, then aborted: the task drops the future.
        let task = tokio::spawn(a.wait("r1", Duration::from_secs(60)));
        tokio::task::yield_now().await;
        assert_eq!((a.waiting(), a.cell.read(|w| w.mailboxes.len())), (1, 1));
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        assert!(empty(&a));
        // Resolved but never taken: dropping removes the outcome too.
        let resolved = a.wait("r2", Duration::from_secs(60));
        a.on_verdict("r2", ReviewerDecision::Approved);
        assert_eq!(a.cell.read(|w| w.mailboxes.done()), 1);
        drop(resolved);
        assert!(empty(&a));
        // Nothing fires later for them.
        tokio::time::sleep(Duration::from_secs(120)).await;
        assert!(empty(&a));
        assert_eq!(a.stats().cancelled, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_outcome_waits_in_its_mailbox_until_taken() {
        let a = Approvals::new(ApprovalConfig::default(), Clock::new());
        let first = a.wait("r1", Duration::from_secs(10));
        a.on_verdict("r1", ReviewerDecision::Approved);
        let second = a.wait("r2", Duration::from_secs(10));
        assert_eq!(a.cell.read(|w| w.mailboxes.done()), 1);
        a.on_verdict("r2", ReviewerDecision::Denied);
        assert_eq!(second.await, Ok(ApprovalOutcome::Denied));
        assert_eq!(first.await, Ok(ApprovalOutcome::Approved));
        assert!(empty(&a));
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_wait_is_a_typed_error_and_registers_nothing() {
        let a = Approvals::new(
            ApprovalConfig::default()
                .with_max_waiters(1)
                .with_max_request_id_len(4),
            Clock::new(),
        );
        let first = a.wait("r1", Duration::from_secs(10));
        assert_eq!(
            a.wait("r2", Duration::from_secs(10)).await,
            Err(ApprovalWaitError::Full)
        );
        assert_eq!(
            a.wait("", Duration::from_secs(1)).await,
            Err(ApprovalWaitError::EmptyRequestId)
        );
        assert_eq!(
            a.wait("toolong", Duration::from_secs(1)).await,
            Err(ApprovalWaitError::RequestIdTooLong)
        );
        assert!(matches!(
            TetherError::from(ApprovalWaitError::Full),
            TetherError::ApprovalRefused(ApprovalWaitError::Full)
        ));
        let e = TetherError::from(ApprovalWaitError::EmptyRequestId);
        assert!(
            std::error::Error::source(&e).is_some(),
            "the cause is attached"
        );
        a.on_verdict("r1", ReviewerDecision::Denied);
        assert_eq!(first.await, Ok(ApprovalOutcome::Denied));
        assert!(empty(&a));
    }
}
