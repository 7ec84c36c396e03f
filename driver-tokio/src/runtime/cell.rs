//! [`Driven`]: one machine behind a lock, its actions executed outside the
//! lock in emission order, and one timer task that sleeps until the machine's
//! next deadline.
//!
//! Guarantees: after every input the machine is drained to `None`; the timer
//! task is woken whenever an input made the deadline earlier (or set one
//! where there was none), and only then (a `Notify` permit, so no wake-up is
//! lost between reading the deadline and sleeping). A deadline moved later
//! or cleared wakes no one: the timer task wakes at the earlier instant it
//! sleeps for, its `handle_timeout` finds nothing due (the core contract:
//! an early `handle_timeout` does nothing) and it sleeps again until the new
//! deadline;
//! the timer task ends when the cell is dropped or [`TimerTask::stop`] is
//! called.

use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tether_core::Machine;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::Clock;

type Executor<A> = Box<dyn Fn(A) + Send + Sync>;

/// Largest action buffer, in actions, kept between inputs.
const MAX_SPARE: usize = 4096;

/// A machine shared between the tasks that feed it and the callers that
/// query it.
pub struct Driven<M: Machine> {
    machine: Mutex<M>,
    execute: Executor<M::Action>,
    /// A drained action buffer kept for the next input that emits more than
    /// one action, so a burst does not grow a fresh `Vec` each time.
    spare: Mutex<Vec<M::Action>>,
    deadline_moved: Arc<Notify>,
    clock: Clock,
}

impl<M> Driven<M>
where
    M: Machine + Send + 'static,
    M::Action: Send,
{
    /// Own `machine`, executing its actions with `execute`.
    pub fn new(
        machine: M,
        clock: Clock,
        execute: impl Fn(M::Action) + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Driven {
            machine: Mutex::new(machine),
            execute: Box::new(execute),
            spare: Mutex::new(Vec::new()),
            deadline_moved: Arc::new(Notify::new()),
            clock,
        })
    }

    /// The clock this cell reads `now` from.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Feed an input: run `f` on the machine with the current time, drain
    /// and execute every action, and wake the timer task.
    pub fn with<R>(&self, f: impl FnOnce(&mut M, tether_core::Timestamp) -> R) -> R {
        let clock = self.clock;
        self.update(move |m| f(m, clock.now()))
    }

    /// Feed an input that takes no time (a cancellation), or change state
    /// kept beside the machine in `M`: as [`Driven::with`], without reading
    /// the clock.
    pub fn update<R>(&self, f: impl FnOnce(&mut M) -> R) -> R {
        let (result, first, mut rest, earlier) = {
            let mut m = self.lock();
            let before = m.poll_timeout().map(|d| d.at);
            let result = f(&mut m);
            // Most inputs emit no action or one: only a second one
            // allocates.
            let first = m.poll_action();
            let mut rest = Vec::new();
            if first.is_some() {
                while let Some(a) = m.poll_action() {
                    if rest.capacity() == 0 {
                        rest = self.take_spare();
                    }
                    rest.push(a);
                }
            }
            let after = m.poll_timeout().map(|d| d.at);
            let earlier = match (before, after) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(b), Some(a)) => a < b,
            };
            (result, first, rest, earlier)
        };
        for a in first.into_iter().chain(rest.drain(..)) {
            (self.execute)(a);
        }
        self.keep_spare(rest);
        // Wake the timer task only when the deadline moved earlier: an
        // input that changes no timer (a check on a running op, a cache
        // hit) or pushes it later (a resolved waiter, a finished tick)
        // costs no cross-task wake-up. Compared under the lock, so no move
        // is missed.
        if earlier {
            self.deadline_moved.notify_one();
        }
        result
    }

    /// Change state kept beside the machine in `M`, under the same lock,
    /// without feeding the machine: nothing is drained, the timer is not
    /// checked and the clock is not read, so `f` must not give the machine
    /// an input.
    pub fn beside<R>(&self, f: impl FnOnce(&mut M) -> R) -> R {
        f(&mut self.lock())
    }

    /// Read the machine without feeding it.
    pub fn read<R>(&self, f: impl FnOnce(&M) -> R) -> R {
        f(&self.lock())
    }

    /// The spare action buffer, or a new one if another input holds it.
    fn take_spare(&self) -> Vec<M::Action> {
        match self.spare.try_lock() {
            Ok(mut spare) => std::mem::take(&mut *spare),
            Err(_) => Vec::new(),
        }
    }

    /// Keep an emptied buffer for the next burst (at most `MAX_SPARE`
    /// actions' worth, so one huge burst does not pin its memory).
    fn keep_spare(&self, buffer: Vec<M::Action>) {
        if buffer.capacity() == 0 || buffer.capacity() > MAX_SPARE {
            return;
        }
        if let Ok(mut spare) = self.spare.try_lock() {
            if spare.capacity() < buffer.capacity() {
                *spare = buffer;
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, M> {
        // A panic while holding the lock cannot leave a core machine in a
        // torn state that is worse than stopping; keep serving.
        self.machine.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Spawn the timer task: it sleeps until the machine's next deadline and
    /// calls `handle_timeout`. It holds only a weak reference, so it ends
    /// when the last handle to the cell is dropped.
    pub fn spawn_timer(self: &Arc<Self>) -> TimerTask {
        let weak: Weak<Self> = Arc::downgrade(self);
        let stop = Arc::new(Notify::new());
        let stop2 = stop.clone();
        let deadline_moved = self.deadline_moved.clone();
        let clock = self.clock;
        let handle = tokio::spawn(async move {
            loop {
                // Register interest before reading the deadline, so a move in
                // between is not lost.
                let moved = deadline_moved.notified();
                tokio::pin!(moved);
                moved.as_mut().enable();
                let Some(cell) = weak.upgrade() else { return };
                let next = cell.read(|m| m.poll_timeout()).map(|d| d.at);
                drop(cell);
                match next {
                    Some(at) => {
                        tokio::select! {
                            _ = tokio::time::sleep_until(clock.instant(at)) => {
                                let Some(cell) = weak.upgrade() else { return };
                                cell.with(|m, now| m.handle_timeout(now));
                            }
                            _ = &mut moved => {}
                            _ = stop2.notified() => return,
                        }
                    }
                    None => {
                        tokio::select! {
                            _ = &mut moved => {}
                            _ = stop2.notified() => return,
                        }
                    }
                }
            }
        });
        TimerTask {
            handle: Some(handle),
            stop,
        }
    }
}

/// The handle of a cell's timer task.
#[derive(Debug)]
pub struct TimerTask {
    handle: Option<JoinHandle<()>>,
    stop: Arc<Notify>,
}

impl TimerTask {
    /// Stop the timer task and wait for it to end.
    pub async fn stop(mut self) {
        self.stop.notify_one();
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }
}

impl Drop for TimerTask {
    fn drop(&mut self) {
        if let Some(h) = &self.handle {
            h.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tether_core::backoff::{Backoff, BackoffAction, BackoffConfig};
    use tokio::sync::mpsc;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn timer_task_fires_at_the_reported_deadline_and_executes_actions() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let clock = Clock::new();
        let cell = Driven::new(Backoff::new(BackoffConfig::with_seed(9)), clock, move |a| {
            let _ = tx.send((a, Clock::now(&clock)));
        });
        let timer = cell.spawn_timer();
        cell.with(|m, now| m.start(now));
        let (first, t0) = rx.recv().await.unwrap();
        assert_eq!(first, BackoffAction::Connect { attempt: 1 });
        cell.with(|m, now| m.on_disconnected(now));
        let due = cell.read(|m| m.poll_timeout()).unwrap().at;
        let (second, t1) = rx.recv().await.unwrap();
        assert_eq!(second, BackoffAction::Connect { attempt: 2 });
        // Never early; tokio's timer wheel rounds up to the millisecond.
        assert!(
            t1 >= due && t1 - due <= Duration::from_millis(1),
            "{t1:?} vs {due:?}"
        );
        assert!(t1 - t0 >= Duration::from_millis(800));
        // Idle machine: no further wake-ups, even a long time later.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(rx.try_recv().is_err());
        timer.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn timer_task_ends_when_the_cell_is_dropped() {
        let clock = Clock::new();
        let cell = Driven::new(Backoff::new(BackoffConfig::default()), clock, |_| {});
        let mut timer = cell.spawn_timer();
        drop(cell);
        let handle = timer.handle.take().unwrap();
        tokio::time::timeout(Duration::from_secs(1), handle)
            .await
            .expect("timer task ended")
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_moved_later_fires_at_the_new_instant_and_one_moved_earlier_at_once() {
        use tether_core::tick::{JobSpec, TickAction, TickConfig, TickSchedule};

        let (tx, mut rx) = mpsc::unbounded_channel();
        let clock = Clock::new();
        let cell = Driven::new(
            TickSchedule::<u32>::new(TickConfig::default()),
            clock,
            move |a| {
                if let TickAction::RunTick { job, .. } = a {
                    let _ = tx.send((job, Clock::now(&clock)));
                }
            },
        );
        let timer = cell.spawn_timer();
        let t0 = clock.now();
        let every = |s| JobSpec::every(Duration::from_secs(s));
        cell.with(|m, now| m.upsert(now, 1, every(10))).unwrap();
        // Let the timer task sleep for t0 + 10 s, then push it to t0 + 20 s:
        // no wake-up is sent; the task wakes at 10 s, finds nothing due.
        tokio::time::sleep(Duration::from_secs(1)).await;
        cell.with(|m, _| m.upsert(t0, 1, every(20))).unwrap();
        let (job, at) = rx.recv().await.unwrap();
        assert_eq!(job, 1);
        let since = at.saturating_duration_since(t0);
        assert!(
            since >= Duration::from_secs(20) && since <= Duration::from_millis(20_002),
            "ran {since:?} after the upsert"
        );
        // Earlier: a job due in 1 s while the task sleeps for the next
        // 20 s slot runs after 1 s, not 20.
        let t1 = clock.now();
        cell.with(|m, now| m.upsert(now, 2, every(1))).unwrap();
        let (job, at) = rx.recv().await.unwrap();
        assert_eq!(job, 2);
        let since = at.saturating_duration_since(t1);
        assert!(
            since >= Duration::from_secs(1) && since <= Duration::from_millis(1_002),
            "ran {since:?} after the upsert"
        );
        timer.stop().await;
    }
}
