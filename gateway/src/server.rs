//! [`Gateway`]: build and serve the reference gateway on a TCP listener,
//! with gRPC health and reflection; [`RunningGateway`]: its address, its
//! [`AdminHandle`] and its graceful shutdown.
//!
//! Guarantees:
//! - every service of one gateway shares one state, so the admin handle,
//!   the admin service and the agent-facing services agree;
//! - gRPC health reports `SERVING` for the server (`""`) and each service
//!   while it runs and `NOT_SERVING` once shutdown starts; reflection (v1
//!   and v1alpha) lists every service;
//! - the server sends HTTP/2 keepalive pings, so a dead peer is noticed;
//! - [`RunningGateway::shutdown`] stops accepting, ends every open stream
//!   with `UNAVAILABLE` and every held CheckAction at once, and returns
//!   within the configured grace (aborting the server past it); dropping a
//!   `RunningGateway` starts the same shutdown without waiting;
//! - [`RunningGateway::drain`] is the old process of a rolling deploy: it
//!   stops accepting (the listening socket closes, so a replacement can
//!   bind the port) and sends every connection an HTTP/2 GOAWAY, but keeps
//!   serving the streams and calls already open until their clients end
//!   them or [`RunningGateway::shutdown`] does;
//! - every collection client input can grow is bounded (subscribers, ring,
//!   live channels, ops, pending approvals, open streams, batch size,
//!   registration nonces, registered agents, control-stream buffers).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tether_proto::admin::admin_service_server::AdminServiceServer;
use tether_proto::agent::agent_lifecycle_service_server::AgentLifecycleServiceServer;
use tether_proto::approval::approval_service_server::ApprovalServiceServer;
use tether_proto::gateway::invalidation_service_server::InvalidationServiceServer;
use tether_proto::policy::policy_service_server::PolicyServiceServer;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::StreamExt as _;
use tonic::server::NamedService;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

use super::admin::AdminHandle;
use super::admin_service::AdminSvc;
use super::approval_service::ApprovalSvc;
use super::auth::TokenTable;
use super::credentials::AdminGuard;
use super::desk::{ApprovalDesk, DEFAULT_MAX_PENDING, DEFAULT_WATCH_CAPACITY};
use super::hub::{
    InvalidationHub, DEFAULT_LIVE_CAPACITY, DEFAULT_MAX_SUBSCRIBERS, DEFAULT_RING_CAPACITY,
};
use super::invalidation_service::InvalidationSvc;
use super::lifecycle::{
    AgentRegistry, ChallengeBook, Lifecycle, LifecycleSvc, Reregistration, DEFAULT_CHALLENGE_TTL,
    DEFAULT_CONTROL_BUFFER, DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_MAX_AGENTS, DEFAULT_MAX_CHALLENGES,
};
use super::ops::{OpBoard, DEFAULT_MAX_OPS, DEFAULT_OP_LIVE_CAPACITY};
use super::policy_service::PolicySvc;
use super::rules::RuleTable;
use super::shutdown::Shutdown;
use super::state::{Limits, Shared};

/// Streams of each kind (invalidation, op control, approval watch) open at
/// once, by default: 32,768, so 10,000 agents (20,000 streams: one
/// `Subscribe` and one `OpControlStream` each) connect with room for
/// reconnects that overlap the stream they replace.
pub const DEFAULT_MAX_STREAMS: usize = 32_768;
/// Requests in one `BatchCheck`, by default: 256.
pub const DEFAULT_MAX_BATCH: usize = 256;
/// Time a `Subscribe` stream has to send its first message, by default:
/// 10 s.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/2 keepalive ping interval, by default: 30 s.
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// Time a keepalive ping may go unanswered before the connection is closed,
/// by default: 10 s.
pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest [`RunningGateway::shutdown`] waits for connections to close, by
/// default: 5 s.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Longest accepted `assembly_id`, in bytes, by default: 1,024.
pub const DEFAULT_MAX_ASSEMBLY_ID_LEN: usize = 1024;
/// HTTP/2 streams one connection may have open at once
/// (`SETTINGS_MAX_CONCURRENT_STREAMS`), by default: 200, hyper's own
/// server default. One agent's client keeps its two streams and its checks
/// on separate connections, so this caps one agent's concurrent checks.
pub const DEFAULT_MAX_CONCURRENT_STREAMS_PER_CONNECTION: u32 = 200;

/// Why the gateway could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The listener has no local address.
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
    /// The reflection service could not be built from the descriptors.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The server failed.
    #[error("server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Connections did not close within the grace; the server was aborted.
    #[error("shutdown took longer than {0:?}; the server was aborted")]
    ShutdownTimedOut(Duration),
    /// The server task panicked or was cancelled.
    #[error("server task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The reference gateway, to be configured with [`Gateway::builder`].
#[derive(Debug)]
pub struct Gateway;

impl Gateway {
    /// A builder with the Agent Assembly defaults: deny-by-default empty
    /// rule table, no credentials required, 1,024-event ring and live
    /// channel, no admin token.
    pub fn builder() -> GatewayBuilder {
        GatewayBuilder::default()
    }
}

/// Configures a [`Gateway`]; finish with [`GatewayBuilder::serve`].
pub struct GatewayBuilder {
    rules: RuleTable,
    tokens: TokenTable,
    ring_capacity: usize,
    live_capacity: usize,
    max_subscribers: usize,
    op_live_capacity: usize,
    max_ops: usize,
    max_pending: usize,
    max_streams: usize,
    max_batch: usize,
    max_assembly_id_len: usize,
    max_concurrent_streams_per_connection: u32,
    watch_capacity: usize,
    handshake_timeout: Duration,
    keepalive_interval: Duration,
    keepalive_timeout: Duration,
    shutdown_grace: Duration,
    admin_token: Option<Arc<str>>,
    approvals_need_admin_token: bool,
    tls: Option<(Vec<u8>, Vec<u8>)>,
    reregistration: Reregistration,
    heartbeat_interval: Duration,
    max_agents: usize,
    max_challenges: usize,
    challenge_ttl: Duration,
    control_buffer: usize,
}

impl std::fmt::Debug for GatewayBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No tokens: a builder may end up in a log.
        f.debug_struct("GatewayBuilder")
            .field("rules", &self.rules)
            .field("tokens_required", &self.tokens.is_required())
            .field("ring_capacity", &self.ring_capacity)
            .field("live_capacity", &self.live_capacity)
            .field("max_subscribers", &self.max_subscribers)
            .field("op_live_capacity", &self.op_live_capacity)
            .field("max_ops", &self.max_ops)
            .field("max_pending", &self.max_pending)
            .field("max_streams", &self.max_streams)
            .field("max_batch", &self.max_batch)
            .field("max_assembly_id_len", &self.max_assembly_id_len)
            .field(
                "max_concurrent_streams_per_connection",
                &self.max_concurrent_streams_per_connection,
            )
            .field("watch_capacity", &self.watch_capacity)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("keepalive_interval", &self.keepalive_interval)
            .field("keepalive_timeout", &self.keepalive_timeout)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "<set>"))
            .field(
                "approvals_need_admin_token",
                &self.approvals_need_admin_token,
            )
            .field("tls", &self.tls.is_some())
            .field("reregistration", &self.reregistration)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("max_agents", &self.max_agents)
            .field("max_challenges", &self.max_challenges)
            .field("challenge_ttl", &self.challenge_ttl)
            .field("control_buffer", &self.control_buffer)
            .finish()
    }
}

impl Default for GatewayBuilder {
    fn default() -> Self {
        GatewayBuilder {
            rules: RuleTable::default(),
            tokens: TokenTable::open(),
            ring_capacity: DEFAULT_RING_CAPACITY,
            live_capacity: DEFAULT_LIVE_CAPACITY,
            max_subscribers: DEFAULT_MAX_SUBSCRIBERS,
            op_live_capacity: DEFAULT_OP_LIVE_CAPACITY,
            max_ops: DEFAULT_MAX_OPS,
            max_pending: DEFAULT_MAX_PENDING,
            max_streams: DEFAULT_MAX_STREAMS,
            max_batch: DEFAULT_MAX_BATCH,
            max_assembly_id_len: DEFAULT_MAX_ASSEMBLY_ID_LEN,
            max_concurrent_streams_per_connection: DEFAULT_MAX_CONCURRENT_STREAMS_PER_CONNECTION,
            watch_capacity: DEFAULT_WATCH_CAPACITY,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            keepalive_interval: DEFAULT_KEEPALIVE_INTERVAL,
            keepalive_timeout: DEFAULT_KEEPALIVE_TIMEOUT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            admin_token: None,
            approvals_need_admin_token: false,
            tls: None,
            reregistration: Reregistration::default(),
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            max_agents: DEFAULT_MAX_AGENTS,
            max_challenges: DEFAULT_MAX_CHALLENGES,
            challenge_ttl: DEFAULT_CHALLENGE_TTL,
            control_buffer: DEFAULT_CONTROL_BUFFER,
        }
    }
}

impl GatewayBuilder {
    /// The CheckAction rule table.
    pub fn rules(mut self, rules: RuleTable) -> Self {
        self.rules = rules;
        self
    }

    /// The agent tokens: [`TokenTable::open`] (default) or
    /// [`TokenTable::required`].
    pub fn tokens(mut self, tokens: TokenTable) -> Self {
        self.tokens = tokens;
        self
    }

    /// Events kept per invalidation subscriber for replay (at least 1);
    /// default [`DEFAULT_RING_CAPACITY`] (1,024, as the Agent Assembly
    /// gateway). A subscriber away for more events than this sees an
    /// unreplayable gap.
    pub fn ring_capacity(mut self, n: usize) -> Self {
        self.ring_capacity = n;
        self
    }

    /// Live events queued per invalidation stream beyond the replay, before
    /// the subscriber counts as lagging and its stream is closed with
    /// `UNAVAILABLE` (at least 1); default [`DEFAULT_LIVE_CAPACITY`] (1,024).
    pub fn live_capacity(mut self, n: usize) -> Self {
        self.live_capacity = n;
        self
    }

    /// Invalidation subscribers (distinct `assembly_id`s) remembered (at
    /// least 1); default [`DEFAULT_MAX_SUBSCRIBERS`] (32,768). At the bound
    /// a new subscriber replaces the one without an open stream that
    /// subscribed longest ago; when every one is connected, the new one is
    /// refused with `RESOURCE_EXHAUSTED` (that caller only).
    pub fn max_subscribers(mut self, n: usize) -> Self {
        self.max_subscribers = n;
        self
    }

    /// Live signals queued per op-control stream before it counts as
    /// lagging and is ended with `UNAVAILABLE` (at least 1); default
    /// [`DEFAULT_OP_LIVE_CAPACITY`] (1,024).
    pub fn op_live_capacity(mut self, n: usize) -> Self {
        self.op_live_capacity = n;
        self
    }

    /// Ops the gateway holds op-control state for (at least 1); default
    /// [`DEFAULT_MAX_OPS`] (100,000). A signal for a new op at the bound
    /// makes room: the oldest resumed op is forgotten first, then the
    /// oldest paused one, terminated ones last (see [`ops`](crate::ops)).
    pub fn max_ops(mut self, n: usize) -> Self {
        self.max_ops = n;
        self
    }

    /// Approvals that may wait for a reviewer at once (at least 1); default
    /// [`DEFAULT_MAX_PENDING`] (32,768). Past it, the CheckAction that would
    /// file one more is refused with `RESOURCE_EXHAUSTED`.
    pub fn max_pending(mut self, n: usize) -> Self {
        self.max_pending = n;
        self
    }

    /// Streams of each kind (`Subscribe`, `OpControlStream`,
    /// `WatchApprovals`) open at once; default [`DEFAULT_MAX_STREAMS`]
    /// (32,768 of each). One more is refused with `RESOURCE_EXHAUSTED`.
    pub fn max_streams(mut self, n: usize) -> Self {
        self.max_streams = n;
        self
    }

    /// Requests in one `BatchCheck`; default [`DEFAULT_MAX_BATCH`] (256).
    /// A larger batch is refused with `INVALID_ARGUMENT`.
    pub fn max_batch(mut self, n: usize) -> Self {
        self.max_batch = n;
        self
    }

    /// Longest accepted `assembly_id`, in bytes; default
    /// [`DEFAULT_MAX_ASSEMBLY_ID_LEN`] (1,024). A longer one is refused
    /// with `INVALID_ARGUMENT`.
    pub fn max_assembly_id_len(mut self, n: usize) -> Self {
        self.max_assembly_id_len = n;
        self
    }

    /// Newly filed approvals queued per `WatchApprovals` stream before that
    /// watcher counts as lagging and its stream is ended with `UNAVAILABLE`
    /// (at least 1); default [`DEFAULT_WATCH_CAPACITY`] (1,024).
    pub fn watch_capacity(mut self, n: usize) -> Self {
        self.watch_capacity = n;
        self
    }

    /// Time a `Subscribe` stream has to send its first message; default
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`] (10 s).
    pub fn handshake_timeout(mut self, d: Duration) -> Self {
        self.handshake_timeout = d;
        self
    }

    /// HTTP/2 keepalive: ping every `interval`, close the connection when a
    /// ping is unanswered for `timeout`; defaults
    /// [`DEFAULT_KEEPALIVE_INTERVAL`] (30 s) and
    /// [`DEFAULT_KEEPALIVE_TIMEOUT`] (10 s).
    pub fn keepalive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.keepalive_interval = interval;
        self.keepalive_timeout = timeout;
        self
    }

    /// Longest [`RunningGateway::shutdown`] waits for connections to close;
    /// default [`DEFAULT_SHUTDOWN_GRACE`] (5 s).
    pub fn shutdown_grace(mut self, d: Duration) -> Self {
        self.shutdown_grace = d;
        self
    }

    /// Require `x-tether-admin-token: {token}` on every `AdminService` call.
    pub fn admin_token(mut self, token: impl Into<String>) -> Self {
        self.admin_token = Some(Arc::from(token.into()));
        self
    }

    /// Also require the admin token on the reviewer's `ApprovalService`
    /// (off by default; without it any client can decide approvals).
    pub fn approvals_need_admin_token(mut self, yes: bool) -> Self {
        self.approvals_need_admin_token = yes;
        self
    }

    /// Serve TLS with this certificate chain and private key (both PEM);
    /// without it the gateway serves plaintext HTTP/2.
    pub fn tls(mut self, cert_pem: impl Into<Vec<u8>>, key_pem: impl Into<Vec<u8>>) -> Self {
        self.tls = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// HTTP/2 streams one connection may have open at once (at least 1;
    /// default [`DEFAULT_MAX_CONCURRENT_STREAMS_PER_CONNECTION`]). A
    /// held `CheckAction` keeps its stream until a reviewer decides, so this
    /// is also how many held checks one connection can carry; a client
    /// opening more waits for a stream to close.
    pub fn max_concurrent_streams_per_connection(mut self, n: u32) -> Self {
        self.max_concurrent_streams_per_connection = n.max(1);
        self
    }

    /// What `Register` does for an agent (org, team and did:key) that is
    /// registered already: [`Reregistration::Replace`] (default: a new
    /// token, the old one revoked) or [`Reregistration::Refuse`]
    /// (`ALREADY_EXISTS`, as Agent Assembly's gateway after a restart).
    pub fn reregistration(mut self, policy: Reregistration) -> Self {
        self.reregistration = policy;
        self
    }

    /// The heartbeat interval `Register` tells agents (whole seconds, at
    /// least 1); default [`DEFAULT_HEARTBEAT_INTERVAL`] (30 s).
    pub fn heartbeat_interval(mut self, d: Duration) -> Self {
        self.heartbeat_interval = d;
        self
    }

    /// Agents the lifecycle holds at once: registered, with an open
    /// `ControlStream`, or suspended by an operator (at least 1); default
    /// [`DEFAULT_MAX_AGENTS`] (32,768). One more `Register` or `ControlStream` is refused with
    /// `RESOURCE_EXHAUSTED`, and one more operator suspend with
    /// [`AdminError::TooManyAgents`](crate::AdminError::TooManyAgents).
    pub fn max_agents(mut self, n: usize) -> Self {
        self.max_agents = n;
        self
    }

    /// Registration nonces outstanding at once (at least 1); default
    /// [`DEFAULT_MAX_CHALLENGES`] (4,096). One more drops the oldest.
    pub fn max_challenges(mut self, n: usize) -> Self {
        self.max_challenges = n;
        self
    }

    /// How long a registration nonce stays valid; default
    /// [`DEFAULT_CHALLENGE_TTL`] (60 s).
    pub fn challenge_ttl(mut self, d: Duration) -> Self {
        self.challenge_ttl = d;
        self
    }

    /// Commands queued per `ControlStream` before its client counts as
    /// lagging and the stream is ended with `UNAVAILABLE` (at least 1);
    /// default [`DEFAULT_CONTROL_BUFFER`] (64).
    pub fn control_buffer(mut self, n: usize) -> Self {
        self.control_buffer = n;
        self
    }

    /// Start serving on `listener`, in a spawned task (so call it inside a
    /// tokio runtime).
    pub async fn serve(self, listener: TcpListener) -> Result<RunningGateway, GatewayError> {
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(
            InvalidationHub::new(self.ring_capacity, self.live_capacity)
                .with_max_subscribers(self.max_subscribers),
            OpBoard::with_live_buffer(self.max_ops, self.op_live_capacity),
            ApprovalDesk::with_watch_capacity(self.max_pending, self.watch_capacity),
            self.rules,
            self.tokens,
            Limits {
                max_invalidation_streams: self.max_streams,
                max_op_streams: self.max_streams,
                max_watch_streams: self.max_streams,
                max_batch: self.max_batch,
                max_id_len: self.max_assembly_id_len,
                handshake_timeout: self.handshake_timeout,
            },
            Lifecycle {
                challenges: ChallengeBook::new(self.max_challenges, self.challenge_ttl),
                agents: AgentRegistry::new(
                    self.max_agents,
                    self.control_buffer,
                    self.reregistration,
                ),
                heartbeat_interval: self.heartbeat_interval,
            },
        ));
        let admin = AdminHandle::new(shared.clone());

        let (health, health_service) = tonic_health::server::health_reporter();
        for name in SERVICE_NAMES {
            health
                .set_service_status(name, ServingStatus::Serving)
                .await;
        }
        let reflection_v1 = reflection().build_v1()?;
        let reflection_v1alpha = reflection().build_v1alpha()?;

        let guard = AdminGuard::new(self.admin_token.clone());
        let approval_guard =
            AdminGuard::new(self.admin_token.filter(|_| self.approvals_need_admin_token));
        let mut server = Server::builder();
        if let Some((cert, key)) = &self.tls {
            server = server
                .tls_config(ServerTlsConfig::new().identity(Identity::from_pem(cert, key)))?;
        }
        let router = server
            .http2_keepalive_interval(Some(self.keepalive_interval))
            .http2_keepalive_timeout(Some(self.keepalive_timeout))
            .max_concurrent_streams(Some(self.max_concurrent_streams_per_connection))
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(InvalidationServiceServer::new(InvalidationSvc::new(
                shared.clone(),
            )))
            .add_service(PolicyServiceServer::new(PolicySvc::new(shared.clone())))
            .add_service(AgentLifecycleServiceServer::new(LifecycleSvc::new(
                shared.clone(),
            )))
            .add_service(ApprovalServiceServer::with_interceptor(
                ApprovalSvc::new(shared.clone()),
                approval_guard,
            ))
            .add_service(AdminServiceServer::with_interceptor(
                AdminSvc::new(admin.clone()),
                guard,
            ));

        let incoming = TcpListenerStream::new(listener).map(|conn| {
            conn.inspect(|stream| {
                // Small messages should not wait for Nagle; failure is harmless.
                let _ = stream.set_nodelay(true);
            })
        });
        let signal = shared.shutdown.clone();
        // A drain stops the server (GOAWAY, no more accepts) without ending
        // the streams, which follow `shared.shutdown` only.
        let drain = Shutdown::new();
        let drained = drain.clone();
        let task = tokio::spawn(router.serve_with_incoming_shutdown(incoming, async move {
            tokio::select! {
                _ = signal.triggered() => {}
                _ = drained.triggered() => {}
            }
        }));
        tracing::info!(%local_addr, "reference gateway serving");
        Ok(RunningGateway {
            local_addr,
            admin,
            shared,
            health,
            grace: self.shutdown_grace,
            drain,
            task: Some(task),
        })
    }
}

/// The services health reports on, by their full gRPC names.
const SERVICE_NAMES: [&str; 6] = [
    "",
    <InvalidationServiceServer<InvalidationSvc> as NamedService>::NAME,
    <PolicyServiceServer<PolicySvc> as NamedService>::NAME,
    <AgentLifecycleServiceServer<LifecycleSvc> as NamedService>::NAME,
    <ApprovalServiceServer<ApprovalSvc> as NamedService>::NAME,
    <AdminServiceServer<AdminSvc> as NamedService>::NAME,
];

fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tether_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

/// A gateway serving in the background.
pub struct RunningGateway {
    local_addr: SocketAddr,
    admin: AdminHandle,
    shared: Arc<Shared>,
    health: HealthReporter,
    grace: Duration,
    drain: Shutdown,
    task: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
}

impl std::fmt::Debug for RunningGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningGateway")
            .field("local_addr", &self.local_addr)
            .field("shutting_down", &self.shared.shutdown.is_triggered())
            .finish_non_exhaustive()
    }
}

impl RunningGateway {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://{local_addr}`, for clients.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// In-process operator control of this gateway.
    pub fn admin(&self) -> AdminHandle {
        self.admin.clone()
    }

    /// Drain, as the old process of a rolling deploy does: health turns
    /// `NOT_SERVING`, the listener closes (a replacement can bind the same
    /// port at once), every connection is sent an HTTP/2 GOAWAY (no new
    /// stream or call on it), and the streams and calls already open go on
    /// being served, for as long as their clients keep them: a client that
    /// does not move its streams keeps hearing only this gateway. Events and
    /// signals published through this gateway's admin still reach them.
    /// [`RunningGateway::shutdown`] (or dropping it) ends them.
    pub async fn drain(&self) {
        for name in SERVICE_NAMES {
            self.health
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        self.drain.trigger();
    }

    /// Whether [`RunningGateway::drain`] was called.
    pub fn is_draining(&self) -> bool {
        self.drain.is_triggered()
    }

    /// Stop: health turns `NOT_SERVING`, the listener closes, every open
    /// stream ends with `UNAVAILABLE` and every held call returns; then wait
    /// (at most the grace) for connections to close.
    pub async fn shutdown(mut self) -> Result<(), GatewayError> {
        for name in SERVICE_NAMES {
            self.health
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        self.shared.shutdown.trigger();
        let Some(mut task) = self.task.take() else {
            return Ok(());
        };
        match tokio::time::timeout(self.grace, &mut task).await {
            Ok(joined) => {
                joined??;
                tracing::info!(local_addr = %self.local_addr, "reference gateway stopped");
                Ok(())
            }
            Err(_) => {
                task.abort();
                Err(GatewayError::ShutdownTimedOut(self.grace))
            }
        }
    }
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        // Without an explicit shutdown: start it, do not wait.
        self.shared.shutdown.trigger();
    }
}
