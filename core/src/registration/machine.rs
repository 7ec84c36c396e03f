//! The registration machine: when to register, heartbeat, (re)open the
//! control stream and deregister, and what every answer means.
//!
//! Guarantees: see the module docs of [`crate::registration`]. State: one
//! phase (idle, registering, registered, refused, stopping, stopped), the
//! heartbeat and control-stream sub-states while registered, two backoff
//! machines, counters, and the actions not yet drained.

use alloc::collections::VecDeque;
use core::time::Duration;

use super::config::RegistrationConfig;
use super::types::{
    AgentCommand, AgentCommandKind, AttemptId, CallCode, CallFailure, ControlCommand, Generation,
    Granted, HeartbeatAnswer, RegistrationAction, RegistrationState, RegistrationStats,
    RegistrationStatus, RegistrationTimer,
};
use crate::backoff::Backoff;
use crate::machine::Machine;
use crate::rng::Prng;
use crate::time::{earliest, Deadline, Timestamp};

/// At most this many `Agent` actions wait undrained. A command that finds
/// them all waiting is never dropped: the waiting ones are compacted into
/// at most three with the same effect (the latest suspend level, one policy
/// update, a kill last), counted in [`RegistrationStats::commands_coalesced`].
/// A driver that drains after every input (the contract) never reaches it:
/// one input emits at most [`MAX_ACTIONS_PER_INPUT`] actions.
pub const MAX_UNDRAINED_COMMANDS: usize = 32;

/// The most actions one input (or one `handle_timeout`) emits.
pub const MAX_ACTIONS_PER_INPUT: usize = 4;

/// Where an attempt stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// `RequestChallenge` in flight.
    Challenge(AttemptId),
    /// `Register` in flight.
    Register(AttemptId),
    /// Waiting for the retry at `until`.
    Waiting { until: Timestamp },
}

/// The control stream while registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Control {
    /// `OpenControl` emitted, not reported opened yet.
    Opening,
    /// Reported opened.
    Open,
    /// Closed; reopened at `until`.
    Waiting { until: Timestamp },
}

/// What a registered agent keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Session {
    generation: Generation,
    interval: Duration,
    /// When the heartbeat in flight was sent.
    heartbeat_sent: Option<Timestamp>,
    /// When the next heartbeat is due (none while one is in flight).
    heartbeat_due: Option<Timestamp>,
    control: Control,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    Registering(Step),
    Registered(Session),
    Refused {
        failure: CallFailure,
        next_try: Timestamp,
    },
    Stopping {
        generation: Generation,
        until: Timestamp,
    },
    Stopped,
}

/// `*c += 1`, saturating.
fn bump(c: &mut u64) {
    *c = c.saturating_add(1);
}

/// An agent's registration at an Agent Assembly gateway, as a sans-IO
/// machine.
///
/// ```
/// use tether_core::registration::{
///     Granted, Registration, RegistrationAction, RegistrationConfig,
/// };
/// use tether_core::{Machine, Timestamp};
///
/// let t0 = Timestamp::ZERO;
/// let mut reg = Registration::new(RegistrationConfig::default(), t0);
/// reg.on_start(t0);
/// let Some(RegistrationAction::RequestChallenge { attempt }) = reg.poll_action() else {
///     panic!()
/// };
/// reg.on_challenge(t0, attempt, Ok(vec![1, 2, 3]));
/// assert!(matches!(reg.poll_action(), Some(RegistrationAction::Register { .. })));
/// let granted = Granted { token: "tok".into(), heartbeat_interval_sec: 0 };
/// reg.on_registered(t0, attempt, Ok(granted));
/// assert!(matches!(reg.poll_action(), Some(RegistrationAction::TokenIssued { .. })));
/// assert!(matches!(reg.poll_action(), Some(RegistrationAction::OpenControl { .. })));
/// // The first heartbeat is due after the default 30 s.
/// assert_eq!(reg.poll_timeout().unwrap().at, Timestamp::from_secs(30));
/// ```
#[derive(Clone, Debug)]
pub struct Registration {
    config: RegistrationConfig,
    rng: Prng,
    phase: Phase,
    since: Timestamp,
    /// Backoff of registration attempts (fresh after each success).
    retry: Backoff,
    /// Backoff of control-stream reopening (fresh with each token).
    reopen: Backoff,
    next_attempt: u64,
    /// The newest generation issued (0: none).
    last_generation: u64,
    attempt_no: u32,
    last_failure: Option<CallFailure>,
    /// The latest definitive refusal since the last success.
    refusal: Option<CallFailure>,
    /// Emit `RotateKey` before the next `RequestChallenge`.
    rotate_key: bool,
    suspended: bool,
    control_open: bool,
    next_sequence: u64,
    undrained_commands: usize,
    stats: RegistrationStats,
    actions: VecDeque<RegistrationAction>,
}

impl Registration {
    /// An idle machine with `config` (clamped into range), created at `now`.
    pub fn new(config: RegistrationConfig, now: Timestamp) -> Self {
        let config = config.clamped();
        let mut rng = Prng::new(config.seed);
        let retry = Backoff::new(config.retry.clone().with_jitter_seed(rng.next_u64()));
        let reopen = Backoff::new(config.retry.clone().with_jitter_seed(rng.next_u64()));
        Registration {
            config,
            rng,
            phase: Phase::Idle,
            since: now,
            retry,
            reopen,
            next_attempt: 1,
            last_generation: 0,
            attempt_no: 0,
            last_failure: None,
            refusal: None,
            rotate_key: false,
            suspended: false,
            control_open: false,
            next_sequence: 1,
            undrained_commands: 0,
            stats: RegistrationStats::default(),
            actions: VecDeque::new(),
        }
    }

    /// The effective (clamped) configuration.
    pub fn config(&self) -> &RegistrationConfig {
        &self.config
    }

    /// Begin registering: emits `RequestChallenge`. Does nothing unless
    /// idle.
    pub fn on_start(&mut self, now: Timestamp) {
        if self.phase == Phase::Idle {
            self.begin_attempt(now);
        }
    }

    /// `RequestChallenge` of `attempt` answered: `Ok(nonce)` or a failure.
    /// A nonce emits `Register`; a failure retries (see the module docs).
    /// Anything but the answer the current attempt awaits is stale.
    pub fn on_challenge(
        &mut self,
        now: Timestamp,
        attempt: AttemptId,
        result: Result<alloc::vec::Vec<u8>, CallFailure>,
    ) {
        if self.phase != Phase::Registering(Step::Challenge(attempt)) {
            bump(&mut self.stats.stale_answers);
            return;
        }
        match result {
            Ok(nonce) => {
                self.phase = Phase::Registering(Step::Register(attempt));
                self.actions
                    .push_back(RegistrationAction::Register { attempt, nonce });
            }
            Err(failure) => self.attempt_failed(now, failure),
        }
    }

    /// `Register` of `attempt` answered. A token moves to registered:
    /// `TokenIssued`, `OpenControl`, the first heartbeat one interval later.
    /// Anything but the answer the current attempt awaits is stale.
    pub fn on_registered(
        &mut self,
        now: Timestamp,
        attempt: AttemptId,
        result: Result<Granted, CallFailure>,
    ) {
        if self.phase != Phase::Registering(Step::Register(attempt)) {
            bump(&mut self.stats.stale_answers);
            return;
        }
        match result {
            Ok(granted) => self.registered(now, granted),
            Err(failure) => self.attempt_failed(now, failure),
        }
    }

    /// `Heartbeat` with `generation`'s token answered. Stale unless it is
    /// the current generation's heartbeat in flight.
    pub fn on_heartbeat_answer(
        &mut self,
        now: Timestamp,
        generation: Generation,
        result: Result<HeartbeatAnswer, CallFailure>,
    ) {
        let Some(s) = self.session_mut(generation) else {
            bump(&mut self.stats.stale_answers);
            return;
        };
        let Some(sent) = s.heartbeat_sent.take() else {
            bump(&mut self.stats.stale_answers);
            return;
        };
        let due = sent.saturating_add(s.interval);
        match result {
            Err(f) if matches!(f.code, CallCode::Unauthenticated | CallCode::NotFound) => {
                self.token_lost(now, f);
                return;
            }
            Err(_) => bump(&mut self.stats.heartbeat_failures),
            Ok(answer) => {
                if answer.should_suspend != self.suspended {
                    self.suspended = answer.should_suspend;
                    let kind = if answer.should_suspend {
                        AgentCommandKind::Suspend
                    } else {
                        AgentCommandKind::Resume
                    };
                    self.agent(kind);
                }
                if answer.policy_updated {
                    self.agent(AgentCommandKind::PolicyUpdated);
                }
            }
        }
        if due <= now {
            self.send_heartbeat(now);
        } else if let Some(s) = self.session_mut(generation) {
            s.heartbeat_due = Some(due);
        }
    }

    /// A call or stream presenting `generation`'s token was refused with
    /// `UNAUTHENTICATED`: the current generation's token is lost; any
    /// other generation is stale.
    pub fn on_token_refused(&mut self, now: Timestamp, generation: Generation) {
        if self.session_mut(generation).is_none() {
            bump(&mut self.stats.stale_answers);
            return;
        }
        self.token_lost(now, CallFailure::new(CallCode::Unauthenticated));
    }

    /// The control stream opened with `generation`'s token.
    pub fn on_control_opened(&mut self, now: Timestamp, generation: Generation) {
        match self.session_mut(generation) {
            Some(s) if s.control == Control::Opening => {
                s.control = Control::Open;
                self.control_open = true;
                self.reopen.on_connected(now);
                // Opened means the gateway answered the stream's headers:
                // a stream that then stays up `healthy_after` is healthy.
                self.reopen.on_message(now);
            }
            _ => bump(&mut self.stats.stale_answers),
        }
    }

    /// The control stream of `generation` delivered `command`. On the
    /// current generation's stream each command emits exactly one `Agent`
    /// action (none for `Unknown`, which is counted); otherwise stale.
    pub fn on_control_command(
        &mut self,
        now: Timestamp,
        generation: Generation,
        command: ControlCommand,
    ) {
        let Some(s) = self.session_mut(generation) else {
            bump(&mut self.stats.stale_answers);
            return;
        };
        if matches!(s.control, Control::Waiting { .. }) {
            bump(&mut self.stats.stale_answers);
            return;
        }
        if s.control == Control::Opening {
            // A command proves the stream open.
            s.control = Control::Open;
            self.control_open = true;
            self.reopen.on_connected(now);
        }
        self.reopen.on_message(now);
        let kind = match command {
            ControlCommand::Suspend => {
                self.suspended = true;
                AgentCommandKind::Suspend
            }
            ControlCommand::Resume => {
                self.suspended = false;
                AgentCommandKind::Resume
            }
            ControlCommand::Kill => AgentCommandKind::Kill,
            ControlCommand::PolicyUpdate => AgentCommandKind::PolicyUpdated,
            ControlCommand::Unknown => {
                bump(&mut self.stats.unknown_commands);
                return;
            }
        };
        self.agent(kind);
    }

    /// The control stream of `generation` ended: `None` cleanly, else with
    /// `failure`. `UNAUTHENTICATED` loses the token; anything else reopens
    /// it after its backoff.
    pub fn on_control_closed(
        &mut self,
        now: Timestamp,
        generation: Generation,
        failure: Option<CallFailure>,
    ) {
        let Some(s) = self.session_mut(generation) else {
            bump(&mut self.stats.stale_answers);
            return;
        };
        if matches!(s.control, Control::Waiting { .. }) {
            bump(&mut self.stats.stale_answers);
            return;
        }
        if let Some(f) = failure {
            if f.code == CallCode::Unauthenticated {
                self.token_lost(now, f);
                return;
            }
        }
        self.reopen.on_disconnected(now);
        let until = self
            .reopen
            .poll_timeout()
            .map_or(now.saturating_add(self.config.retry.max), |d| d.at);
        self.control_open = false;
        if let Some(s) = self.session_mut(generation) {
            s.control = Control::Waiting { until };
        }
    }

    /// Shut down: when registered, `Deregister` then `Stopped` on its answer
    /// or after `shutdown_bound`; otherwise `Stopped` at once. Nothing else
    /// is requested afterwards. A second call does nothing.
    pub fn on_shutdown(&mut self, now: Timestamp) {
        match self.phase {
            Phase::Stopping { .. } | Phase::Stopped => {}
            Phase::Registered(s) => {
                self.control_open = false;
                self.set_phase(
                    now,
                    Phase::Stopping {
                        generation: s.generation,
                        until: now.saturating_add(self.config.shutdown_bound),
                    },
                );
                self.actions.push_back(RegistrationAction::Deregister {
                    generation: s.generation,
                });
            }
            _ => self.stop(now),
        }
    }

    /// `Deregister` with `generation`'s token answered (either way, the
    /// machine stops). Stale unless shutting down with that generation.
    pub fn on_deregistered(
        &mut self,
        now: Timestamp,
        generation: Generation,
        _result: Result<(), CallFailure>,
    ) {
        match self.phase {
            Phase::Stopping { generation: g, .. } if g == generation => self.stop(now),
            _ => bump(&mut self.stats.stale_answers),
        }
    }

    /// Where the registration stands.
    pub fn status(&self) -> RegistrationStatus {
        let state = match self.phase {
            Phase::Idle => RegistrationState::Idle,
            Phase::Registering(_) => RegistrationState::Registering {
                attempt_no: self.attempt_no,
                last_failure: self.refusal.or(self.last_failure),
            },
            Phase::Registered(s) => RegistrationState::Registered {
                generation: s.generation,
            },
            Phase::Refused { failure, next_try } => {
                RegistrationState::Refused { failure, next_try }
            }
            Phase::Stopping { .. } => RegistrationState::Stopping,
            Phase::Stopped => RegistrationState::Stopped,
        };
        RegistrationStatus {
            state,
            since: self.since,
            suspended: self.suspended,
            control_stream_open: self.control_open,
        }
    }

    /// The counters.
    pub fn stats(&self) -> RegistrationStats {
        self.stats
    }

    /// The generation of the token in use (registered, or deregistering
    /// with it), if any.
    pub fn token_generation(&self) -> Option<Generation> {
        match self.phase {
            Phase::Registered(s) => Some(s.generation),
            Phase::Stopping { generation, .. } => Some(generation),
            _ => None,
        }
    }

    /// The heartbeat interval in use while registered.
    pub fn heartbeat_interval(&self) -> Option<Duration> {
        match self.phase {
            Phase::Registered(s) => Some(s.interval),
            _ => None,
        }
    }

    /// When the closed control stream is reopened, if it is closed while
    /// registered (the backoff's jittered choice, for status and tests).
    pub fn control_reopen_at(&self) -> Option<Timestamp> {
        match self.phase {
            Phase::Registered(Session {
                control: Control::Waiting { until },
                ..
            }) => Some(until),
            _ => None,
        }
    }

    fn set_phase(&mut self, now: Timestamp, phase: Phase) {
        if core::mem::discriminant(&phase) != core::mem::discriminant(&self.phase) {
            self.since = now;
        }
        self.phase = phase;
    }

    fn session_mut(&mut self, generation: Generation) -> Option<&mut Session> {
        match &mut self.phase {
            Phase::Registered(s) if s.generation == generation => Some(s),
            _ => None,
        }
    }

    fn push_request(&mut self, action: RegistrationAction) {
        self.actions.push_back(action);
    }

    fn agent(&mut self, kind: AgentCommandKind) {
        if self.undrained_commands >= MAX_UNDRAINED_COMMANDS {
            self.compact_agent_commands();
        }
        let sequence = self.next_sequence;
        self.next_sequence = self.next_sequence.saturating_add(1);
        self.undrained_commands += 1;
        bump(&mut self.stats.agent_commands);
        self.actions
            .push_back(RegistrationAction::Agent(AgentCommand { sequence, kind }));
    }

    /// Fold the undrained `Agent` actions into at most three with the same
    /// effect on the agent, in this order: the last suspend or resume (a
    /// level: only the latest counts), one policy update (dropping cached
    /// decisions twice is dropping them once), a kill (absorbing: whatever
    /// came before it, the agent ends killed). They take the place of the
    /// first undrained one and are numbered again from its sequence, so
    /// the sequences the driver sees still run without a gap.
    fn compact_agent_commands(&mut self) {
        let mut level = None;
        let mut policy = false;
        let mut kill = false;
        let mut first: Option<(usize, u64)> = None;
        let mut kept = VecDeque::with_capacity(self.actions.len());
        for action in self.actions.drain(..) {
            let RegistrationAction::Agent(cmd) = action else {
                kept.push_back(action);
                continue;
            };
            first.get_or_insert((kept.len(), cmd.sequence));
            match cmd.kind {
                AgentCommandKind::Suspend | AgentCommandKind::Resume => level = Some(cmd.kind),
                AgentCommandKind::PolicyUpdated => policy = true,
                AgentCommandKind::Kill => kill = true,
            }
        }
        let Some((at, mut sequence)) = first else {
            self.actions = kept;
            return;
        };
        let kinds = [
            level,
            policy.then_some(AgentCommandKind::PolicyUpdated),
            kill.then_some(AgentCommandKind::Kill),
        ];
        let mut folded = 0;
        for (i, kind) in kinds.into_iter().flatten().enumerate() {
            kept.insert(
                at + i,
                RegistrationAction::Agent(AgentCommand { sequence, kind }),
            );
            sequence = sequence.saturating_add(1);
            folded += 1;
        }
        let coalesced = self.undrained_commands.saturating_sub(folded);
        self.stats.commands_coalesced = self
            .stats
            .commands_coalesced
            .saturating_add(u64::try_from(coalesced).unwrap_or(u64::MAX));
        self.undrained_commands = folded;
        self.next_sequence = sequence;
        self.actions = kept;
    }

    /// Emit `RequestChallenge` for a new attempt (after `RotateKey` if one
    /// is owed).
    fn begin_attempt(&mut self, now: Timestamp) {
        if self.rotate_key {
            self.rotate_key = false;
            bump(&mut self.stats.key_rotations);
            self.push_request(RegistrationAction::RotateKey);
        }
        // Restart the backoff's cycle without resetting its growth.
        self.retry.stop();
        self.retry.start(now);
        while self.retry.poll_action().is_some() {}
        let attempt = AttemptId(self.next_attempt);
        self.next_attempt = self.next_attempt.saturating_add(1);
        self.attempt_no = self.attempt_no.saturating_add(1);
        bump(&mut self.stats.attempts);
        self.set_phase(now, Phase::Registering(Step::Challenge(attempt)));
        self.push_request(RegistrationAction::RequestChallenge { attempt });
    }

    /// Wait one backoff delay, then attempt.
    fn wait_backoff(&mut self, now: Timestamp) {
        self.retry.on_disconnected(now);
        let until = self
            .retry
            .poll_timeout()
            .map_or(now.saturating_add(self.config.retry.max), |d| d.at);
        self.set_phase(now, Phase::Registering(Step::Waiting { until }));
    }

    fn attempt_failed(&mut self, now: Timestamp, failure: CallFailure) {
        self.last_failure = Some(failure);
        if !failure.code.is_refusal() {
            bump(&mut self.stats.transient_failures);
            self.wait_backoff(now);
            return;
        }
        bump(&mut self.stats.refusals);
        self.refusal = Some(failure);
        if failure.code == CallCode::AlreadyExists && self.config.fresh_key_per_registration {
            self.rotate_key = true;
            self.wait_backoff(now);
            return;
        }
        self.retry.on_disconnected(now);
        self.retry.stop();
        self.set_phase(
            now,
            Phase::Refused {
                failure,
                next_try: now.saturating_add(self.config.refused_retry),
            },
        );
    }

    fn registered(&mut self, now: Timestamp, granted: Granted) {
        self.last_generation = self.last_generation.saturating_add(1);
        let generation = Generation(self.last_generation);
        let interval = self
            .config
            .heartbeat_interval(granted.heartbeat_interval_sec);
        bump(&mut self.stats.registrations);
        self.attempt_no = 0;
        self.last_failure = None;
        self.refusal = None;
        // The registration holds like a connection: a token lost before
        // `healthy_after` keeps the retry delays growing (a gateway that
        // issues tokens and refuses them at once gets ever slower
        // registrations, not one every base delay); one lost later starts
        // again from the base.
        self.retry.on_connected(now);
        self.retry.on_message(now);
        self.reopen = Backoff::new(
            self.config
                .retry
                .clone()
                .with_jitter_seed(self.rng.next_u64()),
        );
        self.reopen.start(now);
        while self.reopen.poll_action().is_some() {}
        self.control_open = false;
        self.set_phase(
            now,
            Phase::Registered(Session {
                generation,
                interval,
                heartbeat_sent: None,
                heartbeat_due: Some(now.saturating_add(interval)),
                control: Control::Opening,
            }),
        );
        self.push_request(RegistrationAction::TokenIssued {
            generation,
            token: granted.token,
        });
        bump(&mut self.stats.control_opens);
        self.push_request(RegistrationAction::OpenControl { generation });
    }

    fn token_lost(&mut self, now: Timestamp, failure: CallFailure) {
        let Phase::Registered(s) = self.phase else {
            return;
        };
        bump(&mut self.stats.tokens_lost);
        self.control_open = false;
        self.last_failure = Some(failure);
        self.attempt_no = 0;
        if self.config.fresh_key_per_registration {
            self.rotate_key = true;
        }
        self.push_request(RegistrationAction::TokenLost {
            generation: s.generation,
        });
        self.wait_backoff(now);
    }

    fn send_heartbeat(&mut self, now: Timestamp) {
        let Phase::Registered(s) = &mut self.phase else {
            return;
        };
        s.heartbeat_due = None;
        s.heartbeat_sent = Some(now);
        let generation = s.generation;
        bump(&mut self.stats.heartbeats_sent);
        self.push_request(RegistrationAction::SendHeartbeat { generation });
    }

    fn stop(&mut self, now: Timestamp) {
        self.control_open = false;
        self.set_phase(now, Phase::Stopped);
        self.push_request(RegistrationAction::Stopped);
    }
}

impl Machine for Registration {
    type Action = RegistrationAction;
    type TimerReason = RegistrationTimer;

    fn poll_action(&mut self) -> Option<RegistrationAction> {
        let action = self.actions.pop_front()?;
        if let RegistrationAction::Agent(_) = action {
            self.undrained_commands = self.undrained_commands.saturating_sub(1);
        }
        Some(action)
    }

    fn poll_timeout(&self) -> Option<Deadline<RegistrationTimer>> {
        match self.phase {
            Phase::Idle | Phase::Stopped => None,
            Phase::Registering(Step::Waiting { until }) => {
                Some(Deadline::new(until, RegistrationTimer::Retry))
            }
            Phase::Registering(_) => None,
            Phase::Refused { next_try, .. } => {
                Some(Deadline::new(next_try, RegistrationTimer::Retry))
            }
            Phase::Stopping { until, .. } => {
                Some(Deadline::new(until, RegistrationTimer::ShutdownBound))
            }
            Phase::Registered(s) => {
                let hb = s
                    .heartbeat_due
                    .map(|at| Deadline::new(at, RegistrationTimer::Heartbeat));
                let ctl = match s.control {
                    Control::Waiting { until } => {
                        Some(Deadline::new(until, RegistrationTimer::ReopenControl))
                    }
                    _ => None,
                };
                earliest(hb, ctl)
            }
        }
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        match self.phase {
            Phase::Registering(Step::Waiting { until }) if until <= now => {
                self.begin_attempt(now);
            }
            Phase::Refused { next_try, .. } if next_try <= now => self.begin_attempt(now),
            Phase::Stopping { until, .. } if until <= now => self.stop(now),
            Phase::Registered(s) => {
                if matches!(s.heartbeat_due, Some(at) if at <= now) {
                    self.send_heartbeat(now);
                }
                if let Control::Waiting { until } = s.control {
                    if until <= now {
                        self.reopen.handle_timeout(now);
                        while self.reopen.poll_action().is_some() {}
                        if let Phase::Registered(s) = &mut self.phase {
                            s.control = Control::Opening;
                        }
                        bump(&mut self.stats.control_opens);
                        self.push_request(RegistrationAction::OpenControl {
                            generation: s.generation,
                        });
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    fn drain(m: &mut Registration) -> Vec<RegistrationAction> {
        core::iter::from_fn(|| m.poll_action()).collect()
    }

    fn t(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn start_is_once_and_attempts_are_numbered() {
        let mut m = Registration::new(RegistrationConfig::default(), t(0));
        m.on_start(t(0));
        m.on_start(t(1));
        assert_eq!(
            drain(&mut m),
            vec![RegistrationAction::RequestChallenge {
                attempt: AttemptId(1)
            }]
        );
        m.on_challenge(
            t(2),
            AttemptId(1),
            Err(CallFailure::new(CallCode::Unavailable)),
        );
        assert_eq!(
            m.status().state,
            RegistrationState::Registering {
                attempt_no: 1,
                last_failure: Some(CallFailure::new(CallCode::Unavailable)),
            }
        );
        let d = m.poll_timeout().unwrap();
        assert_eq!(d.reason, RegistrationTimer::Retry);
        // About 500 ms, jittered by 20 %.
        assert!(d.at >= t(402) && d.at <= t(602), "{d:?}");
        m.handle_timeout(d.at);
        assert_eq!(
            drain(&mut m),
            vec![RegistrationAction::RequestChallenge {
                attempt: AttemptId(2)
            }]
        );
    }

    #[test]
    fn undrained_commands_are_compacted_never_dropped() {
        let mut m = Registration::new(RegistrationConfig::default(), t(0));
        m.on_start(t(0));
        drain(&mut m);
        m.on_challenge(t(0), AttemptId(1), Ok(vec![]));
        m.on_registered(
            t(0),
            AttemptId(1),
            Ok(Granted {
                token: "x".into(),
                heartbeat_interval_sec: 0,
            }),
        );
        let g = Generation(1);
        drain(&mut m);
        // A kill early among many suspends and resumes, a policy update,
        // and the queue left undrained well past the cap.
        m.on_control_command(t(1), g, ControlCommand::Suspend);
        m.on_control_command(t(1), g, ControlCommand::Kill);
        m.on_control_command(t(1), g, ControlCommand::PolicyUpdate);
        for i in 0..(3 * MAX_UNDRAINED_COMMANDS) {
            let c = if i % 2 == 0 {
                ControlCommand::Resume
            } else {
                ControlCommand::Suspend
            };
            m.on_control_command(t(1), g, c);
        }
        let agents: Vec<AgentCommand> = drain(&mut m)
            .into_iter()
            .filter_map(|a| match a {
                RegistrationAction::Agent(c) => Some(c),
                _ => None,
            })
            .collect();
        assert!(agents.len() <= MAX_UNDRAINED_COMMANDS, "{}", agents.len());
        // Sequences run 1, 2, 3, ... without a gap.
        for (i, c) in agents.iter().enumerate() {
            assert_eq!(c.sequence, i as u64 + 1, "{agents:?}");
        }
        // Nothing lost: the kill, the policy update and the last level
        // (suspend: the 96 alternating commands end on one) all survive.
        let kinds: Vec<AgentCommandKind> = agents.iter().map(|c| c.kind).collect();
        assert!(kinds.contains(&AgentCommandKind::Kill), "{kinds:?}");
        assert!(
            kinds.contains(&AgentCommandKind::PolicyUpdated),
            "{kinds:?}"
        );
        let last_level = kinds
            .iter()
            .rev()
            .find(|k| matches!(k, AgentCommandKind::Suspend | AgentCommandKind::Resume));
        assert_eq!(last_level, Some(&AgentCommandKind::Suspend), "{kinds:?}");
        assert!(m.stats().commands_coalesced > 0);
        // However many arrive undrained, no more than the bound wait, each
        // compaction counted exactly (every command is either waiting or
        // coalesced).
        for n in [33usize, 50, 64, 65, 66, 99, 200] {
            let mut m = Registration::new(RegistrationConfig::default(), t(0));
            m.on_start(t(0));
            let attempt = match drain(&mut m).as_slice() {
                [RegistrationAction::RequestChallenge { attempt }] => *attempt,
                other => panic!("{other:?}"),
            };
            m.on_challenge(t(0), attempt, Ok(vec![]));
            m.on_registered(
                t(0),
                attempt,
                Ok(Granted {
                    token: "x".into(),
                    heartbeat_interval_sec: 0,
                }),
            );
            drain(&mut m);
            for i in 0..n {
                let c = if i % 2 == 0 {
                    ControlCommand::Suspend
                } else {
                    ControlCommand::Resume
                };
                m.on_control_command(t(1), Generation(1), c);
            }
            let waiting = drain(&mut m)
                .into_iter()
                .filter(|a| matches!(a, RegistrationAction::Agent(_)))
                .count();
            assert!(waiting <= MAX_UNDRAINED_COMMANDS, "{n}: {waiting}");
            assert_eq!(
                waiting as u64 + m.stats().commands_coalesced,
                n as u64,
                "{n} commands"
            );
        }
        // Drained: sequences carry on without a gap.
        let next = agents.last().map_or(1, |c| c.sequence + 1);
        m.on_control_command(t(2), g, ControlCommand::Kill);
        assert_eq!(
            drain(&mut m),
            vec![RegistrationAction::Agent(AgentCommand {
                sequence: next,
                kind: AgentCommandKind::Kill
            })]
        );
    }

    /// Register at `now` (answering the pending challenge at once); the
    /// new generation.
    fn register_now(m: &mut Registration, now: Timestamp) -> Generation {
        let attempt = drain(m)
            .into_iter()
            .find_map(|a| match a {
                RegistrationAction::RequestChallenge { attempt } => Some(attempt),
                _ => None,
            })
            .expect("a challenge is requested");
        m.on_challenge(now, attempt, Ok(vec![1]));
        m.on_registered(
            now,
            attempt,
            Ok(Granted {
                token: "x".into(),
                heartbeat_interval_sec: 3_600,
            }),
        );
        drain(m);
        m.token_generation().expect("registered")
    }

    #[test]
    fn a_token_refused_at_once_backs_off_and_a_healthy_one_starts_again() {
        let mut m = Registration::new(RegistrationConfig::default(), t(0));
        m.on_start(t(0));
        let mut now = t(0);
        let mut delays = Vec::new();
        for _ in 0..8 {
            let g = register_now(&mut m, now);
            now = now.saturating_add(Duration::from_millis(10));
            m.on_token_refused(now, g);
            let at = m.poll_timeout().expect("a retry is pending").at;
            delays.push(at.saturating_duration_since(now));
            now = at;
            m.handle_timeout(now);
        }
        // A gateway that refuses every token at once: ever slower, not a
        // registration every base delay (500 ms).
        assert!(delays[0] <= Duration::from_millis(600), "{delays:?}");
        assert!(delays[7] >= Duration::from_secs(5), "{delays:?}");
        // A token that held past `healthy_after` (30 s): back to the base.
        let g = register_now(&mut m, now);
        now = now.saturating_add(Duration::from_secs(31));
        m.on_token_refused(now, g);
        let at = m.poll_timeout().expect("a retry is pending").at;
        assert!(
            at.saturating_duration_since(now) <= Duration::from_millis(500),
            "{:?}",
            at.saturating_duration_since(now)
        );
    }

    #[test]
    fn anything_after_stopped_is_ignored() {
        let mut m = Registration::new(RegistrationConfig::default(), t(0));
        m.on_shutdown(t(0));
        assert_eq!(drain(&mut m), vec![RegistrationAction::Stopped]);
        m.on_start(t(1));
        m.on_shutdown(t(1));
        m.on_token_refused(t(1), Generation(0));
        m.on_control_closed(t(1), Generation(1), None);
        m.handle_timeout(Timestamp::MAX);
        assert!(drain(&mut m).is_empty());
        assert_eq!(m.poll_timeout(), None);
        assert_eq!(m.status().state, RegistrationState::Stopped);
    }
}
