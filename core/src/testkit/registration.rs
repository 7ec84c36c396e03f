//! Input sequences for the registration machine, its reference model and
//! its invariant checker.
//!
//! The [`Harness`] drives a [`Registration`] next to a reference model
//! written from the rules in [`crate::registration`] (its own phases,
//! counters and clamps; it calls none of the machine's code) and after every
//! step checks the `REG_*` invariants named there, the contract invariants,
//! and `REG_MATCHES_MODEL`: every drained action, the status, the stats,
//! the token generation and the reported deadline equal the model's. The
//! only things the model learns from the machine are its jittered backoff
//! choices, and only after checking each lies within the bounds the config
//! allows. The harness drains after every input, as the driver contract
//! asks. [`run`] ends every sequence with [`Harness::finish`], which checks
//! that a lost token is re-registered and that shutdown ends in time.

use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

use super::contract::{drain, timeout_checked};
use super::Violation;
use crate::ensure_invariant;
use crate::machine::Machine;
use crate::registration::{
    AgentCommand, AgentCommandKind, AttemptId, CallCode, CallFailure, ControlCommand, Generation,
    Granted, HeartbeatAnswer, Registration, RegistrationAction, RegistrationConfig,
    RegistrationState, RegistrationStats, RegistrationTimer, MAX_ACTIONS_PER_INPUT,
};
use crate::time::{Deadline, Timestamp};

/// Which attempt or generation an input names.
#[derive(Clone, Copy, Debug, arbitrary::Arbitrary)]
pub enum Pick {
    /// The current one (the latest issued when there is none).
    Current,
    /// The one before the latest issued.
    Previous,
    /// Any small number.
    Any(u8),
}

/// A gRPC status number, as `from_grpc(n % 20)` (0 and 17..19 give
/// [`CallCode::Other`]).
#[derive(Clone, Copy, Debug, arbitrary::Arbitrary)]
pub struct Code(pub u8);

impl Code {
    /// The failure this code stands for.
    pub fn failure(self) -> CallFailure {
        CallFailure::new(CallCode::from_grpc(i32::from(self.0 % 20)))
    }
}

/// One input to the registration machine (or to the harness around it).
#[derive(Clone, Copy, Debug, arbitrary::Arbitrary)]
pub enum Op {
    /// `on_start`.
    Start,
    /// `on_challenge`: a nonce of this many bytes, or a failure.
    Challenge(Pick, Result<u8, Code>),
    /// `on_registered`: a token with this heartbeat interval, or a failure.
    Registered(Pick, Result<i8, Code>),
    /// `on_heartbeat_answer`.
    Heartbeat(Pick, Result<(bool, bool), Code>),
    /// `on_token_refused`.
    TokenRefused(Pick),
    /// `on_control_opened`.
    ControlOpened(Pick),
    /// `on_control_command` (`n % 5`: suspend, resume, policy update, kill,
    /// unknown).
    Command(Pick, u8),
    /// `on_control_closed` (`None`: cleanly).
    ControlClosed(Pick, Option<Code>),
    /// `on_shutdown`.
    Shutdown,
    /// `on_deregistered`.
    Deregistered(Pick, Option<Code>),
    /// Advance time by this many milliseconds and do nothing else.
    Advance(u32),
    /// `handle_timeout(now)`, due or early.
    Timeout,
    /// Jump to the reported deadline, if any, and `handle_timeout` there.
    Wake,
    /// Act as a willing gateway and a prompt driver: answer what is
    /// outstanding with success (the challenge, the register, the heartbeat
    /// with these `policy_updated` and `should_suspend`, the control
    /// stream's opening, the deregistration), start when idle, or else
    /// [`Op::Wake`].
    Serve(bool, bool),
}

/// The control stream in the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MCtl {
    Opening,
    Open,
    /// Closed; reopened at `until` (learned from the machine, in bounds).
    Closed {
        until: Timestamp,
    },
}

/// The model's phases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MPhase {
    Idle,
    Challenging(u64),
    Registering(u64),
    /// Waiting for a backoff retry at `until` (learned, in bounds).
    Backoff {
        until: Timestamp,
    },
    Refused {
        failure: CallFailure,
        next_try: Timestamp,
    },
    Registered {
        generation: u64,
        interval: Duration,
        hb_sent: Option<Timestamp>,
        hb_due: Option<Timestamp>,
        ctl: MCtl,
    },
    Stopping {
        generation: u64,
        until: Timestamp,
    },
    Stopped,
}

impl MPhase {
    /// Which public state kind the phase shows (for `since`).
    fn kind(&self) -> u8 {
        match self {
            MPhase::Idle => 0,
            MPhase::Challenging(_) | MPhase::Registering(_) | MPhase::Backoff { .. } => 1,
            MPhase::Registered { .. } => 2,
            MPhase::Refused { .. } => 3,
            MPhase::Stopping { .. } => 4,
            MPhase::Stopped => 5,
        }
    }
}

/// A backoff choice the model must learn from the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Learn {
    Retry { lo: Timestamp, hi: Timestamp },
    Reopen { lo: Timestamp, hi: Timestamp },
}

fn is_refusal(code: CallCode) -> bool {
    matches!(
        code,
        CallCode::AlreadyExists
            | CallCode::PermissionDenied
            | CallCode::InvalidArgument
            | CallCode::FailedPrecondition
            | CallCode::Unauthenticated
            | CallCode::Unimplemented
            | CallCode::NotFound
            | CallCode::OutOfRange
    )
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The reference model.
#[derive(Clone, Debug)]
struct Model {
    retry_lo: Duration,
    retry_hi: Duration,
    /// The retry backoff's base (a reset delay is at most this).
    retry_base: Duration,
    /// How long a registration must hold for a lost token to restart the
    /// retry delays from the base.
    healthy_after: Duration,
    /// When the current token was issued.
    registered_at: Option<Timestamp>,
    refused_retry: Duration,
    hb_default: Duration,
    shutdown_bound: Duration,
    fresh: bool,
    phase: MPhase,
    since: Timestamp,
    next_attempt: u64,
    generation: u64,
    attempt_no: u32,
    last_failure: Option<CallFailure>,
    sticky: Option<CallFailure>,
    rotate: bool,
    suspended: bool,
    control_open: bool,
    sequence: u64,
    stats: RegistrationStats,
    out: Vec<RegistrationAction>,
    learn: Option<Learn>,
}

fn nanos_f(d: Duration) -> f64 {
    d.as_nanos() as f64
}

impl Model {
    fn new(c: &RegistrationConfig) -> Self {
        let base = if c.retry.base < Duration::from_millis(1) {
            Duration::from_millis(1)
        } else {
            c.retry.base
        };
        let max = if c.retry.max < base {
            base
        } else {
            c.retry.max
        };
        let j = if c.retry.jitter.is_nan() {
            0.0
        } else {
            c.retry.jitter.clamp(0.0, 1.0)
        };
        // A nanosecond of slack either way for float rounding.
        let lo = Duration::from_nanos((nanos_f(base) * (1.0 - j)) as u64)
            .saturating_sub(Duration::from_nanos(2));
        let hi = Duration::from_nanos((nanos_f(max) * (1.0 + j)) as u64 + 2);
        let ms = Duration::from_millis(1);
        Model {
            retry_lo: lo,
            retry_hi: hi,
            retry_base: base,
            healthy_after: c.retry.healthy_after,
            registered_at: None,
            refused_retry: if c.refused_retry < ms {
                ms
            } else {
                c.refused_retry
            },
            hb_default: c.heartbeat_default.max(secs(1)).min(secs(3600)),
            shutdown_bound: if c.shutdown_bound < ms {
                ms
            } else {
                c.shutdown_bound
            },
            fresh: c.fresh_key_per_registration,
            phase: MPhase::Idle,
            since: Timestamp::ZERO,
            next_attempt: 1,
            generation: 0,
            attempt_no: 0,
            last_failure: None,
            sticky: None,
            rotate: false,
            suspended: false,
            control_open: false,
            sequence: 0,
            stats: RegistrationStats::default(),
            out: Vec::new(),
            learn: None,
        }
    }

    fn go(&mut self, now: Timestamp, p: MPhase) {
        if p.kind() != self.phase.kind() {
            self.since = now;
        }
        self.phase = p;
    }

    fn stale(&mut self) {
        self.stats.stale_answers += 1;
    }

    fn agent(&mut self, kind: AgentCommandKind) {
        self.sequence += 1;
        self.stats.agent_commands += 1;
        self.out.push(RegistrationAction::Agent(AgentCommand {
            sequence: self.sequence,
            kind,
        }));
    }

    fn attempt(&mut self, now: Timestamp) {
        if self.rotate {
            self.rotate = false;
            self.stats.key_rotations += 1;
            self.out.push(RegistrationAction::RotateKey);
        }
        let id = self.next_attempt;
        self.next_attempt += 1;
        self.attempt_no += 1;
        self.stats.attempts += 1;
        self.go(now, MPhase::Challenging(id));
        self.out.push(RegistrationAction::RequestChallenge {
            attempt: AttemptId(id),
        });
    }

    fn backoff(&mut self, now: Timestamp) {
        self.go(now, MPhase::Backoff { until: now });
        self.learn = Some(Learn::Retry {
            lo: now + self.retry_lo,
            hi: now + self.retry_hi,
        });
    }

    fn fail(&mut self, now: Timestamp, f: CallFailure) {
        self.last_failure = Some(f);
        if !is_refusal(f.code) {
            self.stats.transient_failures += 1;
            self.backoff(now);
            return;
        }
        self.stats.refusals += 1;
        self.sticky = Some(f);
        if self.fresh && f.code == CallCode::AlreadyExists {
            self.rotate = true;
            self.backoff(now);
        } else {
            self.go(
                now,
                MPhase::Refused {
                    failure: f,
                    next_try: now + self.refused_retry,
                },
            );
        }
    }

    fn lose(&mut self, now: Timestamp, generation: u64, f: CallFailure) {
        self.stats.tokens_lost += 1;
        self.control_open = false;
        self.last_failure = Some(f);
        self.attempt_no = 0;
        if self.fresh {
            self.rotate = true;
        }
        self.out.push(RegistrationAction::TokenLost {
            generation: Generation(generation),
        });
        let healthy = self
            .registered_at
            .take()
            .is_some_and(|at| now.saturating_duration_since(at) >= self.healthy_after);
        if healthy {
            // The token held: the delays start again, in [0, base].
            self.go(now, MPhase::Backoff { until: now });
            self.learn = Some(Learn::Retry {
                lo: now,
                hi: now + self.retry_base + Duration::from_nanos(2),
            });
        } else {
            self.backoff(now);
        }
    }

    fn send(&mut self, now: Timestamp) {
        if let MPhase::Registered {
            generation,
            hb_sent,
            hb_due,
            ..
        } = &mut self.phase
        {
            *hb_sent = Some(now);
            *hb_due = None;
            let g = *generation;
            self.stats.heartbeats_sent += 1;
            self.out.push(RegistrationAction::SendHeartbeat {
                generation: Generation(g),
            });
        }
    }

    fn deadline_of_heartbeat(&self) -> Option<Timestamp> {
        match self.phase {
            MPhase::Registered { hb_due, .. } => hb_due,
            _ => None,
        }
    }

    fn current_generation(&self) -> Option<u64> {
        match self.phase {
            MPhase::Registered { generation, .. } | MPhase::Stopping { generation, .. } => {
                Some(generation)
            }
            _ => None,
        }
    }

    fn current_attempt(&self) -> Option<u64> {
        match self.phase {
            MPhase::Challenging(a) | MPhase::Registering(a) => Some(a),
            _ => None,
        }
    }

    fn state(&self) -> RegistrationState {
        match self.phase {
            MPhase::Idle => RegistrationState::Idle,
            MPhase::Challenging(_) | MPhase::Registering(_) | MPhase::Backoff { .. } => {
                RegistrationState::Registering {
                    attempt_no: self.attempt_no,
                    last_failure: match self.sticky {
                        Some(f) => Some(f),
                        None => self.last_failure,
                    },
                }
            }
            MPhase::Registered { generation, .. } => RegistrationState::Registered {
                generation: Generation(generation),
            },
            MPhase::Refused { failure, next_try } => {
                RegistrationState::Refused { failure, next_try }
            }
            MPhase::Stopping { .. } => RegistrationState::Stopping,
            MPhase::Stopped => RegistrationState::Stopped,
        }
    }

    fn deadline(&self) -> Option<Deadline<RegistrationTimer>> {
        match self.phase {
            MPhase::Backoff { until } => Some(Deadline::new(until, RegistrationTimer::Retry)),
            MPhase::Refused { next_try, .. } => {
                Some(Deadline::new(next_try, RegistrationTimer::Retry))
            }
            MPhase::Stopping { until, .. } => {
                Some(Deadline::new(until, RegistrationTimer::ShutdownBound))
            }
            MPhase::Registered { hb_due, ctl, .. } => match (hb_due, ctl) {
                (Some(h), MCtl::Closed { until }) if until < h => {
                    Some(Deadline::new(until, RegistrationTimer::ReopenControl))
                }
                (Some(h), _) => Some(Deadline::new(h, RegistrationTimer::Heartbeat)),
                (None, MCtl::Closed { until }) => {
                    Some(Deadline::new(until, RegistrationTimer::ReopenControl))
                }
                (None, _) => None,
            },
            _ => None,
        }
    }

    // ---- inputs; each returns whether it was stale -------------------------

    fn start(&mut self, now: Timestamp) {
        if self.phase == MPhase::Idle {
            self.attempt(now);
        }
    }

    fn challenge(&mut self, now: Timestamp, a: u64, r: &Result<Vec<u8>, CallFailure>) -> bool {
        if self.phase != MPhase::Challenging(a) {
            self.stale();
            return true;
        }
        match r {
            Ok(nonce) => {
                self.phase = MPhase::Registering(a);
                self.out.push(RegistrationAction::Register {
                    attempt: AttemptId(a),
                    nonce: nonce.clone(),
                });
            }
            Err(f) => self.fail(now, *f),
        }
        false
    }

    fn registered(&mut self, now: Timestamp, a: u64, r: &Result<Granted, CallFailure>) -> bool {
        if self.phase != MPhase::Registering(a) {
            self.stale();
            return true;
        }
        match r {
            Err(f) => self.fail(now, *f),
            Ok(g) => {
                self.generation += 1;
                self.registered_at = Some(now);
                let interval = if g.heartbeat_interval_sec <= 0 {
                    self.hb_default
                } else {
                    secs(g.heartbeat_interval_sec as u64).min(secs(3600))
                };
                self.stats.registrations += 1;
                self.stats.control_opens += 1;
                self.attempt_no = 0;
                self.last_failure = None;
                self.sticky = None;
                self.control_open = false;
                self.go(
                    now,
                    MPhase::Registered {
                        generation: self.generation,
                        interval,
                        hb_sent: None,
                        hb_due: Some(now + interval),
                        ctl: MCtl::Opening,
                    },
                );
                let generation = Generation(self.generation);
                self.out.push(RegistrationAction::TokenIssued {
                    generation,
                    token: g.token.clone(),
                });
                self.out
                    .push(RegistrationAction::OpenControl { generation });
            }
        }
        false
    }

    fn heartbeat(
        &mut self,
        now: Timestamp,
        g: u64,
        r: Result<HeartbeatAnswer, CallFailure>,
    ) -> bool {
        let MPhase::Registered {
            generation,
            interval,
            hb_sent: Some(sent),
            ..
        } = self.phase
        else {
            self.stale();
            return true;
        };
        if generation != g {
            self.stale();
            return true;
        }
        if let MPhase::Registered { hb_sent, .. } = &mut self.phase {
            *hb_sent = None;
        }
        match r {
            Err(f) if f.code == CallCode::Unauthenticated || f.code == CallCode::NotFound => {
                self.lose(now, g, f);
                return false;
            }
            Err(_) => self.stats.heartbeat_failures += 1,
            Ok(a) => {
                if a.should_suspend && !self.suspended {
                    self.suspended = true;
                    self.agent(AgentCommandKind::Suspend);
                } else if !a.should_suspend && self.suspended {
                    self.suspended = false;
                    self.agent(AgentCommandKind::Resume);
                }
                if a.policy_updated {
                    self.agent(AgentCommandKind::PolicyUpdated);
                }
            }
        }
        let due = sent + interval;
        if now >= due {
            self.send(now);
        } else if let MPhase::Registered { hb_due, .. } = &mut self.phase {
            *hb_due = Some(due);
        }
        false
    }

    fn token_refused(&mut self, now: Timestamp, g: u64) -> bool {
        match self.phase {
            MPhase::Registered { generation, .. } if generation == g => {
                self.lose(now, g, CallFailure::new(CallCode::Unauthenticated));
                false
            }
            _ => {
                self.stale();
                true
            }
        }
    }

    /// The control stream of `g`, if it is the current one and not closed.
    fn live_ctl(&self, g: u64) -> Option<MCtl> {
        match self.phase {
            MPhase::Registered {
                generation, ctl, ..
            } if generation == g && ctl != MCtl::Opening && !matches!(ctl, MCtl::Closed { .. }) => {
                Some(ctl)
            }
            MPhase::Registered {
                generation,
                ctl: MCtl::Opening,
                ..
            } if generation == g => Some(MCtl::Opening),
            _ => None,
        }
    }

    fn set_ctl(&mut self, c: MCtl) {
        if let MPhase::Registered { ctl, .. } = &mut self.phase {
            *ctl = c;
        }
    }

    fn control_opened(&mut self, g: u64) -> bool {
        if self.live_ctl(g) != Some(MCtl::Opening) {
            self.stale();
            return true;
        }
        self.set_ctl(MCtl::Open);
        self.control_open = true;
        false
    }

    fn command(&mut self, g: u64, c: ControlCommand) -> bool {
        if self.live_ctl(g).is_none() {
            self.stale();
            return true;
        }
        self.set_ctl(MCtl::Open);
        self.control_open = true;
        match c {
            ControlCommand::Suspend => {
                self.suspended = true;
                self.agent(AgentCommandKind::Suspend);
            }
            ControlCommand::Resume => {
                self.suspended = false;
                self.agent(AgentCommandKind::Resume);
            }
            ControlCommand::Kill => self.agent(AgentCommandKind::Kill),
            ControlCommand::PolicyUpdate => self.agent(AgentCommandKind::PolicyUpdated),
            ControlCommand::Unknown => self.stats.unknown_commands += 1,
        }
        false
    }

    fn control_closed(&mut self, now: Timestamp, g: u64, f: Option<CallFailure>) -> bool {
        if self.live_ctl(g).is_none() {
            self.stale();
            return true;
        }
        if let Some(f) = f {
            if f.code == CallCode::Unauthenticated {
                self.lose(now, g, f);
                return false;
            }
        }
        self.control_open = false;
        self.set_ctl(MCtl::Closed { until: now });
        // A healthy stream's first reopen is drawn from [0, base].
        self.learn = Some(Learn::Reopen {
            lo: now,
            hi: now + self.retry_hi,
        });
        false
    }

    fn shutdown(&mut self, now: Timestamp) {
        match self.phase {
            MPhase::Stopping { .. } | MPhase::Stopped => {}
            MPhase::Registered { generation, .. } => {
                self.control_open = false;
                self.go(
                    now,
                    MPhase::Stopping {
                        generation,
                        until: now + self.shutdown_bound,
                    },
                );
                self.out.push(RegistrationAction::Deregister {
                    generation: Generation(generation),
                });
            }
            _ => self.stop(now),
        }
    }

    fn stop(&mut self, now: Timestamp) {
        self.control_open = false;
        self.go(now, MPhase::Stopped);
        self.out.push(RegistrationAction::Stopped);
    }

    fn deregistered(&mut self, now: Timestamp, g: u64) -> bool {
        match self.phase {
            MPhase::Stopping { generation, .. } if generation == g => {
                self.stop(now);
                false
            }
            _ => {
                self.stale();
                true
            }
        }
    }

    fn timeout(&mut self, now: Timestamp) {
        match self.phase {
            MPhase::Backoff { until } if until <= now => self.attempt(now),
            MPhase::Refused { next_try, .. } if next_try <= now => self.attempt(now),
            MPhase::Stopping { until, .. } if until <= now => self.stop(now),
            MPhase::Registered {
                generation,
                hb_due,
                ctl,
                ..
            } => {
                if matches!(hb_due, Some(h) if h <= now) {
                    self.send(now);
                }
                if let MCtl::Closed { until } = ctl {
                    if until <= now {
                        self.set_ctl(MCtl::Opening);
                        self.stats.control_opens += 1;
                        self.out.push(RegistrationAction::OpenControl {
                            generation: Generation(generation),
                        });
                    }
                }
            }
            _ => {}
        }
    }
}

/// What the harness, as the driver, knows is outstanding.
#[derive(Clone, Debug, Default)]
struct Driver {
    /// The attempt whose challenge or register is unanswered.
    call: Option<AttemptId>,
    /// Generations with an unanswered heartbeat.
    heartbeat: Option<Generation>,
    /// The generation whose control stream is opening or open.
    control: Option<Generation>,
    /// When each heartbeat of the current generation was sent and answered.
    last_sent: Option<(Generation, Timestamp)>,
    last_answered: Option<Timestamp>,
    /// When the current generation was issued, and its interval.
    issued: Option<(Generation, Timestamp, Duration)>,
    /// No attempt before this instant (the last refusal's `next_try`).
    not_before: Option<Timestamp>,
    /// A token was lost at this instant and no `RequestChallenge` followed.
    lost_at: Option<Timestamp>,
    /// Shutdown at this instant, and whether it emitted `Deregister`.
    shutdown_at: Option<Timestamp>,
    deregisters: u32,
    stopped: u32,
    last_sequence: u64,
    last_generation: u64,
}

/// Drives a [`Registration`] with [`Op`]s and checks every invariant after
/// each.
#[derive(Debug)]
pub struct Harness {
    /// The machine under test.
    pub machine: Registration,
    /// Simulated now.
    pub now: Timestamp,
    /// Every drained action, in order.
    pub transcript: Vec<RegistrationAction>,
    model: Model,
    driver: Driver,
}

impl Harness {
    /// A fresh machine with `config`, at time zero.
    pub fn new(config: RegistrationConfig) -> Self {
        Harness {
            model: Model::new(&config),
            machine: Registration::new(config, Timestamp::ZERO),
            now: Timestamp::ZERO,
            transcript: Vec::new(),
            driver: Driver::default(),
        }
    }

    fn attempt_of(&self, p: Pick) -> u64 {
        let latest = self
            .model
            .current_attempt()
            .unwrap_or(self.model.next_attempt.saturating_sub(1));
        match p {
            Pick::Current => latest,
            Pick::Previous => latest.saturating_sub(1),
            Pick::Any(n) => u64::from(n),
        }
    }

    fn generation_of(&self, p: Pick) -> u64 {
        let latest = self
            .model
            .current_generation()
            .unwrap_or(self.model.generation);
        match p {
            Pick::Current => latest,
            Pick::Previous => latest.saturating_sub(1),
            Pick::Any(n) => u64::from(n),
        }
    }

    /// Apply one input and check every invariant.
    pub fn apply(&mut self, op: Op) -> Result<(), Violation> {
        let now = self.now;
        let before = (
            self.machine.status(),
            self.machine.stats(),
            self.machine.poll_timeout(),
        );
        let stale = match op {
            Op::Start => {
                self.model.start(now);
                self.machine.on_start(now);
                false
            }
            Op::Challenge(p, r) => {
                let a = self.attempt_of(p);
                let r = r
                    .map(|n| vec![n; usize::from(n % 65)])
                    .map_err(Code::failure);
                let stale = self.model.challenge(now, a, &r);
                self.machine.on_challenge(now, AttemptId(a), r);
                self.answered_call(AttemptId(a));
                stale
            }
            Op::Registered(p, r) => {
                let a = self.attempt_of(p);
                let r = r
                    .map(|s| Granted {
                        token: alloc::format!("token-{a}"),
                        heartbeat_interval_sec: i64::from(s) * 100,
                    })
                    .map_err(Code::failure);
                let stale = self.model.registered(now, a, &r);
                self.machine.on_registered(now, AttemptId(a), r);
                self.answered_call(AttemptId(a));
                stale
            }
            Op::Heartbeat(p, r) => {
                let g = self.generation_of(p);
                let r = r
                    .map(|(policy_updated, should_suspend)| HeartbeatAnswer {
                        policy_updated,
                        should_suspend,
                    })
                    .map_err(Code::failure);
                let stale = self.model.heartbeat(now, g, r);
                self.machine.on_heartbeat_answer(now, Generation(g), r);
                if self.driver.heartbeat == Some(Generation(g)) {
                    self.driver.heartbeat = None;
                    if !stale {
                        self.driver.last_answered = Some(now);
                    }
                }
                stale
            }
            Op::TokenRefused(p) => {
                let g = self.generation_of(p);
                let stale = self.model.token_refused(now, g);
                self.machine.on_token_refused(now, Generation(g));
                stale
            }
            Op::ControlOpened(p) => {
                let g = self.generation_of(p);
                let stale = self.model.control_opened(g);
                self.machine.on_control_opened(now, Generation(g));
                stale
            }
            Op::Command(p, c) => {
                let g = self.generation_of(p);
                let c = match c % 5 {
                    0 => ControlCommand::Suspend,
                    1 => ControlCommand::Resume,
                    2 => ControlCommand::PolicyUpdate,
                    3 => ControlCommand::Kill,
                    _ => ControlCommand::Unknown,
                };
                let stale = self.model.command(g, c);
                self.machine.on_control_command(now, Generation(g), c);
                stale
            }
            Op::ControlClosed(p, f) => {
                let g = self.generation_of(p);
                let f = f.map(Code::failure);
                let stale = self.model.control_closed(now, g, f);
                self.machine.on_control_closed(now, Generation(g), f);
                if self.driver.control == Some(Generation(g)) {
                    self.driver.control = None;
                }
                stale
            }
            Op::Shutdown => {
                if self.driver.shutdown_at.is_none() {
                    self.driver.shutdown_at = Some(now);
                }
                self.model.shutdown(now);
                self.machine.on_shutdown(now);
                false
            }
            Op::Deregistered(p, f) => {
                let g = self.generation_of(p);
                let stale = self.model.deregistered(now, g);
                self.machine.on_deregistered(
                    now,
                    Generation(g),
                    f.map(Code::failure).map_or(Ok(()), Err),
                );
                stale
            }
            Op::Advance(ms) => {
                self.now = self.now + Duration::from_millis(u64::from(ms));
                return self.check_state();
            }
            Op::Timeout => return self.timeout(),
            Op::Wake => {
                if let Some(d) = self.machine.poll_timeout() {
                    self.now = self.now.max(d.at);
                }
                return self.timeout();
            }
            Op::Serve(policy, suspend) => {
                let op = match self.model.phase {
                    MPhase::Idle => Op::Start,
                    MPhase::Challenging(_) => Op::Challenge(Pick::Current, Ok(32)),
                    MPhase::Registering(_) => Op::Registered(Pick::Current, Ok(0)),
                    MPhase::Registered {
                        hb_sent: Some(_), ..
                    } => Op::Heartbeat(Pick::Current, Ok((policy, suspend))),
                    MPhase::Registered {
                        ctl: MCtl::Opening, ..
                    } => Op::ControlOpened(Pick::Current),
                    MPhase::Stopping { .. } => Op::Deregistered(Pick::Current, None),
                    _ => Op::Wake,
                };
                return self.apply(op);
            }
        };
        if stale {
            let mut stats = before.1;
            stats.stale_answers += 1;
            ensure_invariant!(
                self.machine.status() == before.0
                    && self.machine.stats() == stats
                    && self.machine.poll_timeout() == before.2,
                "REG_STALE_IGNORED",
                "{op:?} (stale) changed {before:?} -> {:?} {:?} {:?}",
                self.machine.status(),
                self.machine.stats(),
                self.machine.poll_timeout()
            );
        }
        let got = drain(&mut self.machine)?;
        ensure_invariant!(
            !stale || got.is_empty(),
            "REG_STALE_IGNORED",
            "{op:?} (stale) emitted {got:?}"
        );
        self.observe(got)?;
        self.check_state()
    }

    fn answered_call(&mut self, a: AttemptId) {
        if self.driver.call == Some(a) {
            self.driver.call = None;
        }
    }

    fn timeout(&mut self) -> Result<(), Violation> {
        let now = self.now;
        self.model.timeout(now);
        let fired = timeout_checked(&mut self.machine, now)?;
        self.observe(fired)?;
        self.check_state()
    }

    /// Check one step's drained actions against the model's and the
    /// driver-side invariants.
    fn observe(&mut self, got: Vec<RegistrationAction>) -> Result<(), Violation> {
        let now = self.now;
        ensure_invariant!(
            got.len() <= MAX_ACTIONS_PER_INPUT,
            "REG_BOUNDED",
            "one step emitted {} actions: {got:?}",
            got.len()
        );
        let want = core::mem::take(&mut self.model.out);
        ensure_invariant!(
            got == want,
            "REG_MATCHES_MODEL",
            "drained {got:?}, model {want:?} (state {:?})",
            self.model.phase
        );
        let d = &mut self.driver;
        for a in &got {
            if let Some(t) = d.shutdown_at {
                let allowed = match a {
                    RegistrationAction::Deregister { .. } => {
                        d.deregisters += 1;
                        d.deregisters == 1 && d.stopped == 0 && now == t
                    }
                    RegistrationAction::Stopped => {
                        d.stopped += 1;
                        d.stopped == 1
                    }
                    _ => false,
                };
                ensure_invariant!(
                    allowed,
                    "REG_SHUTDOWN_BOUNDED",
                    "{a:?} at {now:?} after shutdown at {t:?}"
                );
            }
            match a {
                RegistrationAction::RequestChallenge { attempt } => {
                    ensure_invariant!(
                        d.call.is_none(),
                        "REG_ONE_CALL_AT_A_TIME",
                        "RequestChallenge({}) while {:?} is unanswered",
                        attempt.get(),
                        d.call
                    );
                    ensure_invariant!(
                        d.not_before.is_none_or(|t| now >= t),
                        "REG_REFUSAL_TYPED",
                        "attempt at {now:?} before the refusal's next_try {:?}",
                        d.not_before
                    );
                    d.call = Some(*attempt);
                    d.lost_at = None;
                }
                RegistrationAction::Register { attempt, .. } => d.call = Some(*attempt),
                RegistrationAction::TokenIssued { generation, .. } => {
                    ensure_invariant!(
                        generation.get() == d.last_generation + 1,
                        "REG_GENERATIONS",
                        "generation {} after {}",
                        generation.get(),
                        d.last_generation
                    );
                    d.last_generation = generation.get();
                    let interval = self.machine.heartbeat_interval().unwrap_or_default();
                    ensure_invariant!(
                        interval >= secs(1) && interval <= secs(3600),
                        "REG_GENERATIONS",
                        "heartbeat interval {interval:?} outside [1 s, 1 h]"
                    );
                    d.issued = Some((*generation, now, interval));
                    d.heartbeat = None;
                    d.last_sent = None;
                    d.last_answered = None;
                }
                RegistrationAction::TokenLost { .. } => d.lost_at = Some(now),
                RegistrationAction::SendHeartbeat { generation } => {
                    ensure_invariant!(
                        d.heartbeat != Some(*generation),
                        "REG_ONE_CALL_AT_A_TIME",
                        "a second heartbeat for {generation:?} while one is unanswered"
                    );
                    if let Some((g, at, interval)) = d.issued {
                        let last = match d.last_sent {
                            Some((lg, t)) if lg == g => t,
                            _ => at,
                        };
                        ensure_invariant!(
                            g == *generation && now >= last + interval,
                            "REG_HEARTBEAT_CADENCE",
                            "heartbeat at {now:?}, previous (or token) at {last:?}, \
                             interval {interval:?}"
                        );
                    }
                    d.heartbeat = Some(*generation);
                    d.last_sent = Some((*generation, now));
                }
                RegistrationAction::OpenControl { generation } => {
                    ensure_invariant!(
                        d.control != Some(*generation),
                        "REG_ONE_CALL_AT_A_TIME",
                        "a second control stream for {generation:?}"
                    );
                    d.control = Some(*generation);
                }
                RegistrationAction::Agent(c) => {
                    ensure_invariant!(
                        c.sequence == d.last_sequence + 1,
                        "REG_COMMANDS_EXACT",
                        "command #{} after #{}",
                        c.sequence,
                        d.last_sequence
                    );
                    d.last_sequence = c.sequence;
                }
                RegistrationAction::Deregister { .. }
                | RegistrationAction::RotateKey
                | RegistrationAction::Stopped => {}
            }
        }
        self.transcript.extend(got);
        Ok(())
    }

    /// Learn a jittered choice (checking its bounds), then compare the
    /// machine's observable state with the model's and check the state
    /// invariants.
    fn check_state(&mut self) -> Result<(), Violation> {
        let now = self.now;
        match self.model.learn.take() {
            Some(Learn::Retry { lo, hi }) => {
                let got = self.machine.poll_timeout();
                let ok = matches!(got, Some(d) if d.reason == RegistrationTimer::Retry
                    && d.at >= lo && d.at <= hi);
                ensure_invariant!(
                    ok,
                    "REG_RETRY_BOUNDED",
                    "retry deadline {got:?}, allowed [{lo:?}, {hi:?}]"
                );
                if let (Some(d), MPhase::Backoff { until }) = (got, &mut self.model.phase) {
                    *until = d.at;
                }
            }
            Some(Learn::Reopen { lo, hi }) => {
                let got = self.machine.control_reopen_at();
                ensure_invariant!(
                    matches!(got, Some(at) if at >= lo && at <= hi),
                    "REG_RETRY_BOUNDED",
                    "control reopen at {got:?}, allowed [{lo:?}, {hi:?}]"
                );
                if let Some(at) = got {
                    self.model.set_ctl(MCtl::Closed { until: at });
                }
            }
            None => {}
        }
        let m = &self.model;
        let status = self.machine.status();
        ensure_invariant!(
            status.state == m.state()
                && status.since == m.since
                && status.suspended == m.suspended
                && status.control_stream_open == m.control_open,
            "REG_MATCHES_MODEL",
            "status {status:?}, model {:?} since {:?} suspended {} open {}",
            m.state(),
            m.since,
            m.suspended,
            m.control_open
        );
        let stats = self.machine.stats();
        ensure_invariant!(
            stats == m.stats,
            "REG_MATCHES_MODEL",
            "stats {stats:?}, model {:?}",
            m.stats
        );
        let deadline = self.machine.poll_timeout();
        ensure_invariant!(
            deadline == m.deadline(),
            "REG_MATCHES_MODEL",
            "deadline {deadline:?}, model {:?} (phase {:?})",
            m.deadline(),
            m.phase
        );
        let g = self.machine.token_generation().map(Generation::get);
        ensure_invariant!(
            g == m.current_generation(),
            "REG_MATCHES_MODEL",
            "token generation {g:?}, model {:?}",
            m.current_generation()
        );
        ensure_invariant!(
            stats.commands_coalesced == 0,
            "REG_COMMANDS_EXACT",
            "a draining driver had {} commands coalesced",
            stats.commands_coalesced
        );
        // REG_REFUSAL_TYPED: the refusal shows until a success.
        if let RegistrationState::Refused { next_try, .. } = status.state {
            self.driver.not_before = Some(next_try);
        } else if !matches!(status.state, RegistrationState::Registering { .. }) {
            self.driver.not_before = None;
        }
        if let Some(f) = m.sticky {
            let shown = match status.state {
                RegistrationState::Refused { failure, .. } => Some(failure),
                RegistrationState::Registering { last_failure, .. } => last_failure,
                RegistrationState::Stopping | RegistrationState::Stopped => Some(f),
                _ => None,
            };
            ensure_invariant!(
                shown == Some(f),
                "REG_REFUSAL_TYPED",
                "refused with {f:?}, status {status:?}"
            );
        }
        // REG_TOKEN_LOSS_REREGISTERS: the retry is due within the bound.
        if let (Some(t), None) = (self.driver.lost_at, self.driver.shutdown_at) {
            let hi = t + m.retry_hi;
            ensure_invariant!(
                matches!(deadline, Some(d) if d.reason == RegistrationTimer::Retry && d.at <= hi),
                "REG_TOKEN_LOSS_REREGISTERS",
                "token lost at {t:?}, next deadline {deadline:?} (bound {hi:?})"
            );
        }
        // REG_HEARTBEAT_CADENCE: the next heartbeat is due in time.
        if let (Some((g, at, interval)), RegistrationState::Registered { generation }) =
            (self.driver.issued, status.state)
        {
            if g == generation && self.driver.heartbeat.is_none() {
                let bound = match (self.driver.last_sent, self.driver.last_answered) {
                    (Some((_, sent)), Some(answered)) => {
                        sent + interval.max(answered.saturating_duration_since(sent))
                    }
                    _ => at + interval,
                };
                let due = self.model.deadline_of_heartbeat();
                ensure_invariant!(
                    due.is_some_and(|d| d <= bound),
                    "REG_HEARTBEAT_CADENCE",
                    "next heartbeat due {due:?}, bound {bound:?}"
                );
            }
        }
        // REG_SHUTDOWN_BOUNDED: stopping ends by the bound.
        if let Some(t) = self.driver.shutdown_at {
            let bound = t + m.shutdown_bound;
            let ok = match status.state {
                RegistrationState::Stopped => deadline.is_none(),
                RegistrationState::Stopping => deadline.is_some_and(|d| d.at <= bound),
                _ => false,
            };
            ensure_invariant!(
                ok,
                "REG_SHUTDOWN_BOUNDED",
                "{status:?}, deadline {deadline:?} at {now:?}, shutdown at {t:?}"
            );
        }
        Ok(())
    }

    /// End the run: a lost token must be re-registered at its deadline,
    /// then shutdown must stop at its deadline, and nothing follows. (That
    /// both deadlines lie within their bounds is checked after every step.)
    pub fn finish(&mut self) -> Result<(), Violation> {
        if let (Some(t), None) = (self.driver.lost_at, self.driver.shutdown_at) {
            self.apply(Op::Wake)?;
            ensure_invariant!(
                self.driver.lost_at.is_none(),
                "REG_TOKEN_LOSS_REREGISTERS",
                "no RequestChallenge by {:?} after the token was lost at {t:?}",
                self.now
            );
        }
        self.apply(Op::Shutdown)?;
        let t = self.driver.shutdown_at.unwrap_or(self.now);
        for _ in 0..2 {
            self.apply(Op::Wake)?;
        }
        ensure_invariant!(
            self.machine.status().state == RegistrationState::Stopped
                && self.driver.stopped == 1
                && self.machine.poll_timeout().is_none(),
            "REG_SHUTDOWN_BOUNDED",
            "{:?} at {:?} after shutdown at {t:?}",
            self.machine.status(),
            self.now
        );
        Ok(())
    }
}

/// Run a whole sequence from a fresh machine, then [`Harness::finish`];
/// the first violation, if any.
pub fn run(config: RegistrationConfig, ops: &[Op]) -> Result<Harness, Violation> {
    let mut h = Harness::new(config);
    for op in ops {
        h.apply(*op)?;
    }
    h.finish()?;
    Ok(h)
}
