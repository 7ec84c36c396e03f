//! The backoff machine: when to attempt the next connection.
//!
//! Guarantees: see the module docs of [`crate::backoff`]. In short, jittered
//! exponential delays bounded by `max × (1 + jitter)`, reset only by a healthy
//! connection, never giving up.

use alloc::collections::VecDeque;
use core::time::Duration;

use super::config::{scale_nanos, BackoffConfig};
use crate::machine::Machine;
use crate::rng::Prng;
use crate::time::{Deadline, Timestamp};

/// What the backoff machine asks its driver to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackoffAction {
    /// Attempt a connection now. `attempt` counts attempts since `start`,
    /// from 1.
    Connect {
        /// The attempt number, from 1.
        attempt: u64,
    },
}

/// Why the backoff machine wants to be woken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackoffTimer {
    /// The retry delay has elapsed: attempt the next connection.
    Retry,
}

/// Where the machine is in its connect / wait cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackoffPhase {
    /// Not started, or stopped: no attempt and no timer.
    Idle,
    /// An attempt was requested and has not connected or failed yet.
    Connecting,
    /// Connected since the given instant.
    Connected {
        /// When the connection was established.
        since: Timestamp,
        /// Whether it has delivered at least one message.
        got_message: bool,
    },
    /// Waiting for the retry deadline.
    Waiting {
        /// When the next attempt is due.
        until: Timestamp,
    },
}

/// Reconnect backoff as a sans-IO machine.
///
/// ```
/// use core::time::Duration;
/// use tether_core::backoff::{Backoff, BackoffAction, BackoffConfig};
/// use tether_core::{Machine, Timestamp};
///
/// let mut b = Backoff::new(BackoffConfig::with_seed(1));
/// let t0 = Timestamp::ZERO;
/// b.start(t0);
/// assert_eq!(b.poll_action(), Some(BackoffAction::Connect { attempt: 1 }));
/// b.on_disconnected(t0); // refused at once: a failure
/// let retry = b.poll_timeout().unwrap().at;
/// assert!(retry - t0 >= Duration::from_millis(800) && retry - t0 <= Duration::from_millis(1200));
/// b.handle_timeout(retry);
/// assert_eq!(b.poll_action(), Some(BackoffAction::Connect { attempt: 2 }));
/// ```
#[derive(Clone, Debug)]
pub struct Backoff {
    config: BackoffConfig,
    rng: Prng,
    phase: BackoffPhase,
    /// The un-jittered delay used for the last failure; `None` after a reset.
    current: Option<Duration>,
    consecutive_failures: u64,
    attempts: u64,
    last_delay: Option<Duration>,
    /// The attempt requested (or due) is the reopen after a drain: if it
    /// fails, its retry is drawn from `[0, base]`.
    drain_reopen: bool,
    actions: VecDeque<BackoffAction>,
}

impl Backoff {
    /// A stopped machine with `config` (clamped into range).
    pub fn new(config: BackoffConfig) -> Self {
        let config = config.clamped();
        Backoff {
            rng: Prng::new(config.seed),
            config,
            phase: BackoffPhase::Idle,
            current: None,
            consecutive_failures: 0,
            attempts: 0,
            last_delay: None,
            drain_reopen: false,
            actions: VecDeque::new(),
        }
    }

    /// The effective (clamped) configuration.
    pub fn config(&self) -> &BackoffConfig {
        &self.config
    }

    /// Begin: request the first attempt at once. Does nothing if already
    /// started.
    pub fn start(&mut self, _now: Timestamp) {
        if self.phase == BackoffPhase::Idle {
            self.request_attempt();
        }
    }

    /// Stop: no further attempts or timers until [`Backoff::start`].
    pub fn stop(&mut self) {
        self.phase = BackoffPhase::Idle;
        self.drain_reopen = false;
        self.actions.clear();
    }

    /// The requested attempt connected (the stream is open).
    /// Ignored unless an attempt is in progress.
    pub fn on_connected(&mut self, now: Timestamp) {
        if self.phase == BackoffPhase::Connecting {
            self.drain_reopen = false;
            self.phase = BackoffPhase::Connected {
                since: now,
                got_message: false,
            };
        }
    }

    /// The open connection delivered a message. Ignored unless connected.
    pub fn on_message(&mut self, _now: Timestamp) {
        if let BackoffPhase::Connected { got_message, .. } = &mut self.phase {
            *got_message = true;
        }
    }

    /// The attempt failed or the connection ended, for whatever cause (a
    /// clean end of stream, a cancel and an unavailable included). Schedules
    /// the next attempt. Ignored when idle or already waiting.
    pub fn on_disconnected(&mut self, now: Timestamp) {
        let healthy = match self.phase {
            BackoffPhase::Connecting => false,
            BackoffPhase::Connected { since, got_message } => {
                got_message && now.saturating_duration_since(since) >= self.config.healthy_after
            }
            BackoffPhase::Idle | BackoffPhase::Waiting { .. } => return,
        };
        let drain_retry = core::mem::take(&mut self.drain_reopen);
        let delay = if healthy {
            self.reset_delay()
        } else if drain_retry && self.phase == BackoffPhase::Connecting {
            // The reopen after a drain failed (the replacement may be a
            // moment from listening): not a failure of a connection that
            // worked; the retry is spread over [0, base], as after a
            // healthy one, and the schedule is left as it is.
            self.drain_retry_delay()
        } else {
            self.failure_delay()
        };
        self.last_delay = Some(delay);
        self.phase = BackoffPhase::Waiting {
            until: now.saturating_add(delay),
        };
    }

    /// The peer of the open connection is draining (an HTTP/2 GOAWAY, a
    /// planned shutdown): move to a fresh connection. This is not a failure:
    /// the failure count and the delay schedule are kept as they are
    /// (`BACKOFF_DRAIN_NOT_A_FAILURE`). The next attempt comes after a
    /// spread drawn uniformly from `[0, base]` (none when `jitter` is 0), so
    /// a fleet told to go away at once does not come back at once, and
    /// never before `since + base`, so a peer that drains every connection
    /// it accepts gets at most one attempt per `base` from drains. If that
    /// reopen fails, its retry is drawn from `[0, base]` (as after a healthy
    /// connection: the replacement may be a moment from listening), still
    /// counting no failure; a second failure in a row is an ordinary one.
    /// Returns whether the input acted: ignored (`false`) unless connected.
    pub fn on_peer_draining(&mut self, now: Timestamp) -> bool {
        let BackoffPhase::Connected { since, .. } = self.phase else {
            return false;
        };
        let spread = if self.config.jitter == 0.0 {
            Duration::ZERO
        } else {
            Duration::from_nanos(scale_nanos(self.config.base, self.rng.next_f64()))
        };
        let at = since
            .saturating_add(self.config.base)
            .max(now.saturating_add(spread));
        self.drain_reopen = true;
        if now >= at {
            self.request_attempt();
        } else {
            self.phase = BackoffPhase::Waiting { until: at };
        }
        true
    }

    /// The current phase.
    pub fn phase(&self) -> BackoffPhase {
        self.phase
    }

    /// Consecutive failed attempts since the last healthy connection.
    pub fn consecutive_failures(&self) -> u64 {
        self.consecutive_failures
    }

    /// Attempts requested since construction.
    pub fn attempts(&self) -> u64 {
        self.attempts
    }

    /// The delay chosen at the last disconnect, if any.
    pub fn last_delay(&self) -> Option<Duration> {
        self.last_delay
    }

    fn request_attempt(&mut self) {
        self.attempts = self.attempts.saturating_add(1);
        self.phase = BackoffPhase::Connecting;
        self.actions.push_back(BackoffAction::Connect {
            attempt: self.attempts,
        });
    }

    /// First retry after a healthy connection: uniform in `[0, base]` so a
    /// fleet dropped together does not return together.
    fn reset_delay(&mut self) -> Duration {
        self.consecutive_failures = 0;
        self.current = None;
        if self.config.jitter == 0.0 {
            return self.config.base;
        }
        let u = self.rng.next_f64();
        Duration::from_nanos(scale_nanos(self.config.base, u))
    }

    /// The retry of a failed reopen after a drain: uniform in `[0, base]`,
    /// the failure count and the schedule untouched.
    fn drain_retry_delay(&mut self) -> Duration {
        if self.config.jitter == 0.0 {
            return self.config.base;
        }
        let u = self.rng.next_f64();
        Duration::from_nanos(scale_nanos(self.config.base, u))
    }

    fn failure_delay(&mut self) -> Duration {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let next = match self.current {
            None => self.config.base,
            Some(cur) => {
                let grown = Duration::from_nanos(scale_nanos(cur, self.config.multiplier));
                grown.min(self.config.max)
            }
        };
        let next = next.min(self.config.max);
        self.current = Some(next);
        if self.config.jitter == 0.0 {
            return next;
        }
        let u = self.rng.next_f64();
        let factor = 1.0 + self.config.jitter * (2.0 * u - 1.0);
        Duration::from_nanos(scale_nanos(next, factor))
    }
}

impl Machine for Backoff {
    type Action = BackoffAction;
    type TimerReason = BackoffTimer;

    fn poll_action(&mut self) -> Option<BackoffAction> {
        self.actions.pop_front()
    }

    fn poll_timeout(&self) -> Option<Deadline<BackoffTimer>> {
        match self.phase {
            BackoffPhase::Waiting { until } => Some(Deadline::new(until, BackoffTimer::Retry)),
            _ => None,
        }
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        if let BackoffPhase::Waiting { until } = self.phase {
            if now >= until {
                self.request_attempt();
            }
        }
    }
}
