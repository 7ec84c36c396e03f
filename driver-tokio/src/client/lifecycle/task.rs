//! The lifecycle task: runs the core's [`Registration`] machine and does
//! what it says (the RPCs, the control stream, the token, the ops).
//!
//! Guarantees: every decision (when to register, retry, heartbeat, reopen
//! the control stream, give up on a deregistration) is the machine's; every
//! RPC the task starts is bounded by the request timeout, so every call the
//! machine asked for gets an answer; a control command reaches op control
//! before the next one is read; the task ends when the machine says
//! `Stopped`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use tether_core::registration::{
    AgentCommand, AgentCommandKind, AttemptId, CallCode, CallFailure, ControlCommand, Generation,
    Granted, HeartbeatAnswer, Registration, RegistrationAction, RegistrationState,
};
use tether_core::Machine as _;
use tether_proto::agent::agent_lifecycle_service_client::AgentLifecycleServiceClient;
use tether_proto::agent::control_command::Command as WireCommand;
use tether_proto::agent::{
    ChallengeRequest, ControlStreamRequest, DeregisterRequest, HeartbeatRequest, RegisterRequest,
};
use tether_proto::common::AgentId;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use super::key::AgentSigningKey;
use super::report::{RegistrationPhase, RegistrationReport};
use super::settings::RegistrationSettings;
use super::token::RegisteredToken;
use crate::client::shared::Shared;
use crate::client::sink::InvalidateAllReason;

/// The sequence numbers of signals the lifecycle feeds op control: the top
/// bit set, so they never equal a gateway's op-control sequence (op control
/// drops an exact repeat of a recent `(sequence, op, signal)`).
const LIFECYCLE_SEQUENCE_BIT: u64 = 1 << 63;

/// With [`LIFECYCLE_SEQUENCE_BIT`], the sequence numbers of what a key
/// rotation carries over to the new agent id (distinct from commands').
const REKEY_SEQUENCE_BIT: u64 = 1 << 62;

/// What the RPCs and the control stream report back.
enum Event {
    Challenge(AttemptId, Result<Vec<u8>, Failure>),
    Registered(AttemptId, Result<Granted, Failure>),
    Heartbeat(Generation, Result<HeartbeatAnswer, Failure>),
    ControlOpened(Generation),
    Control(Generation, ControlCommand),
    ControlClosed(Generation, Option<Failure>),
    Deregistered(Generation, Result<(), Failure>),
}

/// A failed call: the machine's view plus the gateway's words.
struct Failure {
    call: CallFailure,
    message: String,
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Self {
        Failure {
            call: CallFailure::new(CallCode::from_grpc(status.code() as i32)),
            message: status.message().to_owned(),
        }
    }
}

fn split<T>(r: Result<T, Failure>, last: &mut String) -> Result<T, CallFailure> {
    r.map_err(|f| {
        *last = f.message;
        f.call
    })
}

struct Lifecycle {
    shared: Arc<Shared>,
    settings: RegistrationSettings,
    token: RegisteredToken,
    client: AgentLifecycleServiceClient<Channel>,
    stream_channel: Channel,
    agent: AgentId,
    events: mpsc::Sender<Event>,
    control: Option<JoinHandle<()>>,
    /// The gateway's words with the last failure.
    last_message: String,
    registrations: u64,
    /// Fresh keys taken so far.
    rotations: u64,
}

/// Run the agent's registration until the machine stops (after
/// `shutdown` turns true, a deregistration bounded by the machine).
pub(crate) async fn run(
    shared: Arc<Shared>,
    settings: RegistrationSettings,
    token: RegisteredToken,
    mut shutdown: watch::Receiver<bool>,
) {
    let clock = shared.clock;
    let mut machine = Registration::new(
        settings
            .machine
            .clone()
            .with_seed(shared.seed ^ 0x6c69_6665)
            .with_fresh_key_per_registration(settings.fresh_key_per_registration),
        clock.now(),
    );
    let (tx, mut rx) = mpsc::channel(64);
    let a = &shared.config.agent;
    let agent = AgentId {
        org_id: a.org_id.clone(),
        team_id: a.team_id.clone(),
        agent_id: a.agent_id.clone(),
    };
    let mut life = Lifecycle {
        client: AgentLifecycleServiceClient::new(shared.channels.op_control.channel.clone()),
        stream_channel: shared.channels.invalidation.channel.clone(),
        shared: shared.clone(),
        settings,
        token: token.clone(),
        agent,
        events: tx,
        control: None,
        last_message: String::new(),
        registrations: 0,
        rotations: 0,
    };
    let mut refusals = token.refusals();
    let mut shutting = *shutdown.borrow();
    if shutting {
        machine.on_shutdown(clock.now());
    } else {
        machine.on_start(clock.now());
    }
    loop {
        machine.handle_timeout(clock.now());
        while let Some(action) = machine.poll_action() {
            if life.act(action) {
                life.publish(&machine);
                if let Some(c) = life.control.take() {
                    c.abort();
                }
                return;
            }
        }
        life.publish(&machine);
        let deadline = machine.poll_timeout().map(|d| clock.instant(d.at));
        tokio::select! {
            Some(event) = rx.recv() => life.feed(&mut machine, event),
            () = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {}
            changed = shutdown.changed(), if !shutting => {
                // A dropped sender means the client is gone: shut down too.
                let _ = changed;
                shutting = true;
                machine.on_shutdown(clock.now());
            }
            Ok(()) = refusals.changed() => {
                let refused = *refusals.borrow_and_update();
                if let Some(generation) = refused {
                    machine.on_token_refused(clock.now(), generation);
                }
            }
        }
    }
}

impl Lifecycle {
    fn feed(&mut self, m: &mut Registration, event: Event) {
        let now = self.shared.clock.now();
        let last = &mut self.last_message;
        match event {
            Event::Challenge(attempt, r) => m.on_challenge(now, attempt, split(r, last)),
            Event::Registered(attempt, r) => m.on_registered(now, attempt, split(r, last)),
            Event::Heartbeat(generation, r) => {
                m.on_heartbeat_answer(now, generation, split(r, last))
            }
            Event::ControlOpened(generation) => m.on_control_opened(now, generation),
            Event::Control(generation, command) => m.on_control_command(now, generation, command),
            Event::ControlClosed(generation, failure) => {
                let failure = failure.map(|f| {
                    *last = f.message;
                    f.call
                });
                m.on_control_closed(now, generation, failure)
            }
            Event::Deregistered(generation, r) => {
                m.on_deregistered(now, generation, split(r, last))
            }
        }
    }

    /// Do what the machine asked; `true` once it has stopped.
    fn act(&mut self, action: RegistrationAction) -> bool {
        match action {
            RegistrationAction::RequestChallenge { attempt } => {
                let req = ChallengeRequest {
                    agent_id: Some(self.agent.clone()),
                    public_key: self.settings.key.public_key_hex(),
                };
                let mut client = self.client.clone();
                let timeout = self.shared.config.request_timeout;
                self.call(move || async move {
                    let r = client
                        .request_challenge(timed(req, timeout))
                        .await
                        .map(|r| r.into_inner().nonce)
                        .map_err(Failure::from);
                    Event::Challenge(attempt, r)
                });
            }
            RegistrationAction::Register { attempt, nonce } => {
                let s = &self.settings;
                let req = RegisterRequest {
                    agent_id: Some(self.agent.clone()),
                    name: s.name.clone(),
                    framework: s.framework.clone(),
                    version: s.version.clone(),
                    tool_names: s.tool_names.clone(),
                    public_key: s.key.public_key_hex(),
                    metadata: s.metadata.clone(),
                    possession_proof: s.key.sign(&nonce),
                    registration_nonce: nonce,
                    ..Default::default()
                };
                let mut client = self.client.clone();
                let timeout = self.shared.config.request_timeout;
                self.call(move || async move {
                    let r = client
                        .register(timed(req, timeout))
                        .await
                        .map(|r| {
                            let r = r.into_inner();
                            Granted {
                                token: r.credential_token,
                                heartbeat_interval_sec: r.heartbeat_interval_sec,
                            }
                        })
                        .map_err(Failure::from);
                    Event::Registered(attempt, r)
                });
            }
            RegistrationAction::TokenIssued { generation, token } => {
                self.registrations += 1;
                tracing::info!(agent = %self.agent.agent_id, generation = generation.get(), "registered");
                self.token.issue(generation, token);
            }
            RegistrationAction::TokenLost { generation } => {
                tracing::warn!(agent = %self.agent.agent_id, generation = generation.get(), "the gateway no longer knows the agent's token; registering again");
                self.token.withdraw(generation);
                if let Some(c) = self.control.take() {
                    c.abort();
                }
            }
            RegistrationAction::SendHeartbeat { generation } => {
                let Some(token) = self.token_of(generation) else {
                    self.answer(Event::Heartbeat(
                        generation,
                        Err(tonic::Status::unauthenticated("no token").into()),
                    ));
                    return false;
                };
                let req = HeartbeatRequest {
                    agent_id: Some(self.agent.clone()),
                    credential_token: token,
                    active_runs: i32::try_from(
                        self.shared.checks_in_flight.load(Ordering::Relaxed),
                    )
                    .unwrap_or(i32::MAX),
                    actions_count: i64::try_from(self.shared.checks_total.load(Ordering::Relaxed))
                        .unwrap_or(i64::MAX),
                };
                let mut client = self.client.clone();
                let timeout = self.shared.config.request_timeout;
                self.call(move || async move {
                    let r = client
                        .heartbeat(timed(req, timeout))
                        .await
                        .map(|r| {
                            let r = r.into_inner();
                            HeartbeatAnswer {
                                policy_updated: r.policy_updated,
                                should_suspend: r.should_suspend,
                            }
                        })
                        .map_err(Failure::from);
                    Event::Heartbeat(generation, r)
                });
            }
            RegistrationAction::OpenControl { generation } => {
                if let Some(c) = self.control.take() {
                    c.abort();
                }
                let token = self.token_of(generation).unwrap_or_default();
                let req = ControlStreamRequest {
                    agent_id: Some(self.agent.clone()),
                    credential_token: token,
                };
                let client = AgentLifecycleServiceClient::new(self.stream_channel.clone());
                let events = self.events.clone();
                let open_timeout = self.shared.config.open_timeout;
                self.control = Some(tokio::spawn(control_stream(
                    client,
                    req,
                    generation,
                    events,
                    open_timeout,
                )));
            }
            RegistrationAction::Deregister { generation } => {
                let token = self.token_of(generation).unwrap_or_default();
                let req = DeregisterRequest {
                    agent_id: Some(self.agent.clone()),
                    credential_token: token,
                    reason: "shutdown".into(),
                };
                let mut client = self.client.clone();
                let timeout = self.shared.config.request_timeout;
                self.call(move || async move {
                    let r = client
                        .deregister(timed(req, timeout))
                        .await
                        .map(|_| ())
                        .map_err(Failure::from);
                    Event::Deregistered(generation, r)
                });
            }
            RegistrationAction::Agent(command) => self.apply(command),
            RegistrationAction::RotateKey => self.rotate_key(),
            RegistrationAction::Stopped => return true,
        }
        false
    }

    /// A fresh key, so a new agent id, for the next registration (an
    /// ephemeral agent whose old id the gateway refuses). Calls and streams
    /// use the new id from now on; what op control held for the old id (a
    /// terminate, a pause) holds for the new one; cached decisions (the old
    /// id's) are dropped.
    fn rotate_key(&mut self) {
        let key = match AgentSigningKey::generate() {
            Ok(key) => key,
            Err(e) => {
                tracing::error!(error = %e, "no fresh key: registering with the old one");
                return;
            }
        };
        self.rotations += 1;
        let did = key.did();
        tracing::info!(old = %self.agent.agent_id, new = %did, "fresh key for the next registration");
        self.settings.key = key;
        self.agent.agent_id = did.clone();
        self.shared.set_agent_id(&did);
        self.shared.ops.rekey(
            &did,
            LIFECYCLE_SEQUENCE_BIT | REKEY_SEQUENCE_BIT | self.rotations,
        );
        self.shared.cache.with(|c, now| c.invalidate_all(now));
    }

    fn token_of(&self, generation: Generation) -> Option<String> {
        self.token
            .current()
            .filter(|(_, g)| *g == generation)
            .map(|(t, _)| t)
    }

    /// Start an RPC whose outcome comes back as an event.
    fn call<F, Fut>(&self, make: F)
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Event> + Send + 'static,
    {
        let events = self.events.clone();
        let fut = make();
        tokio::spawn(async move {
            let _ = events.send(fut.await).await;
        });
    }

    fn answer(&self, event: Event) {
        let events = self.events.clone();
        tokio::spawn(async move {
            let _ = events.send(event).await;
        });
    }

    /// A command for the whole agent, applied through op control (pause,
    /// resume, terminate every op of the agent) or the caches.
    fn apply(&self, command: AgentCommand) {
        let AgentCommand { sequence, kind } = command;
        let scope = format!("agent:{}", self.agent.agent_id);
        let seq = LIFECYCLE_SEQUENCE_BIT | sequence;
        tracing::info!(?kind, sequence, "lifecycle command");
        match kind {
            AgentCommandKind::Suspend => {
                self.shared.ops.on_signal(&scope, 1, seq);
            }
            AgentCommandKind::Resume => {
                self.shared.ops.on_signal(&scope, 2, seq);
            }
            AgentCommandKind::Kill => {
                self.shared.ops.on_signal(&scope, 3, seq);
            }
            AgentCommandKind::PolicyUpdated => {
                self.shared.cache.with(|c, now| c.invalidate_all(now));
                let sinks = self.shared.sinks();
                tokio::spawn(async move {
                    for sink in sinks {
                        sink.invalidate_all(InvalidateAllReason::AgentPolicyUpdated)
                            .await;
                    }
                });
            }
        }
    }

    fn publish(&self, m: &Registration) {
        let status = m.status();
        let phase = match status.state {
            RegistrationState::Idle => RegistrationPhase::Starting,
            RegistrationState::Registering {
                attempt_no,
                last_failure,
            } => RegistrationPhase::Registering {
                attempts: attempt_no,
                last_error: last_failure.map(|f| {
                    if self.last_message.is_empty() {
                        f.code.to_string()
                    } else {
                        format!("{}: {}", f.code, self.last_message)
                    }
                }),
            },
            RegistrationState::Registered { .. } => RegistrationPhase::Registered,
            RegistrationState::Refused { failure, .. } => RegistrationPhase::Refused {
                code: tonic::Code::from_i32(failure.code.to_grpc()),
                message: self.last_message.clone(),
            },
            RegistrationState::Stopping => RegistrationPhase::Stopping,
            _ => RegistrationPhase::Stopped,
        };
        let report = RegistrationReport {
            agent_id: self.agent.agent_id.clone(),
            phase,
            since: None,
            registrations: self.registrations,
            key_rotations: self.rotations,
            suspended: status.suspended,
            control_stream_open: status.control_stream_open,
        };
        self.shared.status.update_if(|s| {
            let changed = match &s.registration {
                Some(old) => {
                    old.phase != report.phase
                        || old.registrations != report.registrations
                        || old.agent_id != report.agent_id
                        || old.suspended != report.suspended
                        || old.control_stream_open != report.control_stream_open
                }
                None => true,
            };
            if changed {
                let since = match &s.registration {
                    Some(old) if old.phase == report.phase => old.since,
                    _ => Some(SystemTime::now()),
                };
                s.registration = Some(RegistrationReport { since, ..report });
            }
            changed
        });
    }
}

fn timed<T>(message: T, timeout: std::time::Duration) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    req.set_timeout(timeout);
    req
}

/// Open the control stream and forward what it carries, in order, each
/// command handed over before the next is read.
async fn control_stream(
    mut client: AgentLifecycleServiceClient<Channel>,
    req: ControlStreamRequest,
    generation: Generation,
    events: mpsc::Sender<Event>,
    open_timeout: std::time::Duration,
) {
    let opened = tokio::time::timeout(open_timeout, client.control_stream(req)).await;
    let mut stream = match opened {
        Ok(Ok(r)) => r.into_inner(),
        Ok(Err(status)) => {
            let _ = events
                .send(Event::ControlClosed(generation, Some(status.into())))
                .await;
            return;
        }
        Err(_) => {
            let status =
                tonic::Status::deadline_exceeded("the control stream did not open in time");
            let _ = events
                .send(Event::ControlClosed(generation, Some(status.into())))
                .await;
            return;
        }
    };
    if events.send(Event::ControlOpened(generation)).await.is_err() {
        return;
    }
    loop {
        let event = match stream.message().await {
            Ok(Some(message)) => {
                let command = match message.command {
                    Some(WireCommand::Suspend(_)) => ControlCommand::Suspend,
                    Some(WireCommand::Resume(_)) => ControlCommand::Resume,
                    Some(WireCommand::PolicyUpdate(_)) => ControlCommand::PolicyUpdate,
                    Some(WireCommand::Kill(_)) => ControlCommand::Kill,
                    None => ControlCommand::Unknown,
                };
                Event::Control(generation, command)
            }
            Ok(None) => Event::ControlClosed(generation, None),
            Err(status) => Event::ControlClosed(generation, Some(status.into())),
        };
        let closed = matches!(event, Event::ControlClosed(..));
        if events.send(event).await.is_err() || closed {
            return;
        }
    }
}
