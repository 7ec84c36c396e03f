//! The queued-work runner as a typical codebase writes it: an unbounded
//! channel of pokes, a set of in-flight sessions, and a fixed 400 ms poll.

use std::collections::HashSet;
use std::time::Duration;

use tokio::sync::mpsc;

/// The fixed poll interval of the baseline runner.
pub const POLL: Duration = Duration::from_millis(400);

/// The dispatch side: pokes in, drives out, with no session driven twice
/// at once (a poke for a session in flight is remembered and re-sent when
/// the session completes).
#[derive(Debug)]
pub struct BaselineQueue {
    tx: mpsc::UnboundedSender<u64>,
    rx: mpsc::UnboundedReceiver<u64>,
    in_flight: HashSet<u64>,
    again: HashSet<u64>,
}

impl Default for BaselineQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl BaselineQueue {
    /// An empty queue.
    pub fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        BaselineQueue {
            tx,
            rx,
            in_flight: HashSet::new(),
            again: HashSet::new(),
        }
    }

    /// Poke a session.
    pub fn poke(&self, session: u64) {
        let _ = self.tx.send(session);
    }

    /// Take queued pokes; return the next session to drive, if any.
    pub fn next_drive(&mut self) -> Option<u64> {
        while let Ok(s) = self.rx.try_recv() {
            if self.in_flight.insert(s) {
                return Some(s);
            }
            self.again.insert(s);
        }
        None
    }

    /// A drive of `session` completed; a poke that came meanwhile is
    /// re-queued.
    pub fn complete(&mut self, session: u64) {
        self.in_flight.remove(&session);
        if self.again.remove(&session) {
            let _ = self.tx.send(session);
        }
    }

    /// Mark `session` in flight without a poke (bench set-up).
    pub fn preload(&mut self, session: u64) {
        self.in_flight.insert(session);
    }

    /// Sessions in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The runner's loop as such code writes it: wake on a poke or every
    /// [`POLL`], whichever comes first. Counts its wake-ups into `wakeups`
    /// and returns after `duration` (measured on tokio's clock, so a paused
    /// runtime counts exactly).
    pub async fn run_idle(mut self, duration: Duration) -> u64 {
        let end = tokio::time::Instant::now() + duration;
        let mut wakeups = 0u64;
        let mut poll = tokio::time::interval(POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = poll.tick() => {}
                Some(s) = self.rx.recv() => { self.in_flight.insert(s); }
                _ = tokio::time::sleep_until(end) => return wakeups,
            }
            wakeups += 1;
        }
    }
}
