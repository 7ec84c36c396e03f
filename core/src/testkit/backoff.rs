//! Input sequences for the backoff machine and its invariant checker.

use alloc::format;
use alloc::vec::Vec;
use core::time::Duration;

use super::contract::{drain, timeout_checked};
use super::Violation;
use crate::backoff::{Backoff, BackoffAction, BackoffConfig, BackoffPhase};
use crate::machine::Machine;
use crate::time::Timestamp;

/// One input to the backoff machine.
#[derive(Clone, Copy, Debug, arbitrary::Arbitrary)]
pub enum Op {
    /// Advance time by this many milliseconds (then fire due timers).
    Advance(u32),
    /// Jump to the next reported deadline and fire it.
    Wake,
    /// The pending attempt connected.
    Connected,
    /// The connection delivered a message.
    Message,
    /// The attempt failed or the connection ended.
    Disconnected,
    /// Stop, then start again.
    Restart,
    /// The peer of the connection is draining (`on_peer_draining`).
    PeerDraining,
}

/// Drives a [`Backoff`] with [`Op`]s and checks every invariant after each.
#[derive(Debug)]
pub struct Harness {
    /// The machine under test.
    pub machine: Backoff,
    /// Simulated now.
    pub now: Timestamp,
    /// Every delay chosen, with whether the preceding connection was healthy.
    pub delays: Vec<(Duration, bool)>,
    /// The model: the attempt requested or due is a reopen after a drain.
    drain_reopen: bool,
}

impl Harness {
    /// A started machine with `config`.
    pub fn new(config: BackoffConfig) -> Result<Self, Violation> {
        let mut machine = Backoff::new(config);
        machine.start(Timestamp::ZERO);
        let first = drain(&mut machine)?;
        if first != [BackoffAction::Connect { attempt: 1 }] {
            return Err(Violation::new(
                "BACKOFF_NEVER_GIVES_UP",
                format!("start produced {first:?}"),
            ));
        }
        Ok(Harness {
            machine,
            now: Timestamp::ZERO,
            delays: Vec::new(),
            drain_reopen: false,
        })
    }

    /// Apply one input and check every invariant.
    pub fn apply(&mut self, op: Op) -> Result<(), Violation> {
        match op {
            Op::Advance(ms) => {
                self.now = self.now + Duration::from_millis(u64::from(ms));
                timeout_checked(&mut self.machine, self.now)?;
            }
            Op::Wake => {
                if let Some(d) = self.machine.poll_timeout() {
                    self.now = self.now.max(d.at);
                }
                timeout_checked(&mut self.machine, self.now)?;
            }
            Op::Connected => {
                if self.machine.phase() == BackoffPhase::Connecting {
                    self.drain_reopen = false;
                }
                self.machine.on_connected(self.now);
                drain(&mut self.machine)?;
            }
            Op::Message => {
                self.machine.on_message(self.now);
                drain(&mut self.machine)?;
            }
            Op::Disconnected => {
                let before = self.machine.phase();
                let healthy = match before {
                    BackoffPhase::Connected { since, got_message } => {
                        got_message
                            && self.now.saturating_duration_since(since)
                                >= self.machine.config().healthy_after
                    }
                    _ => false,
                };
                let acts = matches!(
                    before,
                    BackoffPhase::Connecting | BackoffPhase::Connected { .. }
                );
                let failures = self.machine.consecutive_failures();
                self.machine.on_disconnected(self.now);
                drain(&mut self.machine)?;
                if acts {
                    let drain_retry = self.drain_reopen && before == BackoffPhase::Connecting;
                    self.drain_reopen = false;
                    let delay = self.machine.last_delay().unwrap_or_default();
                    self.delays.push((delay, healthy));
                    if drain_retry {
                        crate::ensure_invariant!(
                            delay <= self.machine.config().base
                                && self.machine.consecutive_failures() == failures,
                            "BACKOFF_DRAIN_NOT_A_FAILURE",
                            "a failed reopen after a drain waited {delay:?} (base {:?}), \
                             failures {failures} -> {}",
                            self.machine.config().base,
                            self.machine.consecutive_failures()
                        );
                    } else {
                        self.check_delay(delay, healthy)?;
                    }
                }
            }
            Op::PeerDraining => {
                let before = self.machine.phase();
                let failures = self.machine.consecutive_failures();
                let attempts = self.machine.attempts();
                let acted = self.machine.on_peer_draining(self.now);
                self.drain_reopen |= acted;
                let got = drain(&mut self.machine)?;
                // The model: only a connected machine acts; the reopen is
                // due after a spread in [0, base] (none without jitter) and
                // never before `base` after it connected. A drawn instant
                // in that window is learnt from the machine.
                let base = self.machine.config().base;
                let spread = self.machine.config().jitter != 0.0;
                let want_phase = match (before, self.machine.phase()) {
                    (BackoffPhase::Connected { since, .. }, got) => {
                        let floor = since.saturating_add(base);
                        let lo = floor.max(self.now);
                        let hi = if spread {
                            floor.max(self.now.saturating_add(base) + Duration::from_nanos(2))
                        } else {
                            lo
                        };
                        match got {
                            BackoffPhase::Waiting { until }
                                if until > self.now && until >= lo && until <= hi =>
                            {
                                got
                            }
                            _ if lo <= self.now => BackoffPhase::Connecting,
                            _ => BackoffPhase::Waiting { until: lo },
                        }
                    }
                    (other, _) => other,
                };
                let want_actions: Vec<BackoffAction> = match want_phase {
                    BackoffPhase::Connecting if before != BackoffPhase::Connecting => {
                        alloc::vec![BackoffAction::Connect {
                            attempt: attempts + 1
                        }]
                    }
                    _ => Vec::new(),
                };
                crate::ensure_invariant!(
                    acted == matches!(before, BackoffPhase::Connected { .. })
                        && self.machine.phase() == want_phase
                        && got == want_actions
                        && self.machine.consecutive_failures() == failures,
                    "BACKOFF_DRAIN_NOT_A_FAILURE",
                    "drain in {before:?}: acted {acted}, phase {:?} (want {want_phase:?}), \
                     actions {got:?} (want {want_actions:?}), failures {} (were {failures})",
                    self.machine.phase(),
                    self.machine.consecutive_failures()
                );
            }
            Op::Restart => {
                self.drain_reopen = false;
                self.machine.stop();
                self.machine.start(self.now);
                drain(&mut self.machine)?;
            }
        }
        self.check_state()
    }

    fn check_delay(&self, delay: Duration, healthy: bool) -> Result<(), Violation> {
        let cfg = self.machine.config();
        if delay > cfg.max_delay() {
            return Err(Violation::new(
                "BACKOFF_DELAY_BOUNDED",
                format!("delay {delay:?} above {:?}", cfg.max_delay()),
            ));
        }
        if healthy {
            if delay > cfg.base {
                return Err(Violation::new(
                    "BACKOFF_RESET_ONLY_WHEN_HEALTHY",
                    format!("first retry after a healthy stream waited {delay:?} > base"),
                ));
            }
            if self.machine.consecutive_failures() != 0 {
                return Err(Violation::new(
                    "BACKOFF_RESET_ONLY_WHEN_HEALTHY",
                    "a healthy stream did not reset the failure count",
                ));
            }
        } else {
            if delay < cfg.min_failure_delay() {
                return Err(Violation::new(
                    "BACKOFF_DELAY_FLOOR",
                    format!(
                        "failure delay {delay:?} below {:?}",
                        cfg.min_failure_delay()
                    ),
                ));
            }
            if self.machine.consecutive_failures() == 0 {
                return Err(Violation::new(
                    "BACKOFF_RESET_ONLY_WHEN_HEALTHY",
                    "an unhealthy connection reset the schedule",
                ));
            }
        }
        Ok(())
    }

    fn check_state(&self) -> Result<(), Violation> {
        match self.machine.phase() {
            BackoffPhase::Idle => Err(Violation::new(
                "BACKOFF_NEVER_GIVES_UP",
                "a started machine went idle",
            )),
            BackoffPhase::Waiting { .. } if self.machine.poll_timeout().is_none() => Err(
                Violation::new("BACKOFF_NEVER_GIVES_UP", "waiting without a deadline"),
            ),
            _ => Ok(()),
        }
    }
}

/// Run a whole sequence from a fresh machine; the first violation, if any.
pub fn run(config: BackoffConfig, ops: &[Op]) -> Result<Harness, Violation> {
    let mut h = Harness::new(config)?;
    for op in ops {
        h.apply(*op)?;
    }
    Ok(h)
}
