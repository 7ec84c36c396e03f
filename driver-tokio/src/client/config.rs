//! How a [`Tether`](super::Tether) client is configured.

use std::sync::Arc;
use std::time::Duration;

use tether_core::approval::ApprovalConfig;
use tether_core::backoff::BackoffConfig;
use tether_core::policy_cache::PolicyCacheConfig;
use tether_core::subscription::{DEFAULT_ACK_DELAY, DEFAULT_ACK_EVERY};

use super::credentials::{CredentialProvider, StaticToken};
use super::lifecycle::RegistrationSettings;
use super::verdict::Decision;

/// Connect timeout: 5 s, long enough for a TLS handshake over a slow link,
/// short enough that a dead address falls through to backoff quickly.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// CheckAction timeout: 10 s (a held approval call gets its own, longer
/// deadline: the approval deadline).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/2 keepalive ping interval: 10 s, so a silently dead peer (a
/// pulled cable, a dropped NAT entry) is noticed within about 15 s.
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// How long a keepalive ping may go unanswered: 5 s.
pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `check` waits for a reviewer on a PENDING answer: 60 s.
pub const DEFAULT_APPROVAL_DEADLINE: Duration = Duration::from_secs(60);
/// How long opening a stream may take, connection and response headers
/// included, before the attempt counts as failed: 10 s.
pub const DEFAULT_OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// The agent's composite identity, as the gateway knows it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct AgentIdentity {
    /// Organisation.
    pub org_id: String,
    /// Team (tenant).
    pub team_id: String,
    /// Agent.
    pub agent_id: String,
}

impl AgentIdentity {
    /// A stable invalidation subscriber id for one runtime of this agent:
    /// `{org}/{team}/{agent}/{runtime}`. The same runtime gets the same id
    /// across process restarts, so it takes its old subscription over (the
    /// gateway keeps every subscriber's state; an id per process would leak
    /// one per restart).
    pub fn assembly_id(&self, runtime: &str) -> String {
        format!(
            "{}/{}/{}/{}",
            self.org_id, self.team_id, self.agent_id, runtime
        )
    }

    /// An identity from its three parts.
    pub fn new(org: impl Into<String>, team: impl Into<String>, agent: impl Into<String>) -> Self {
        AgentIdentity {
            org_id: org.into(),
            team_id: team.into(),
            agent_id: agent.into(),
        }
    }
}

/// TLS settings for an `https` gateway URL.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct TlsSettings {
    /// PEM of a CA to trust in addition to the webpki roots.
    pub ca_pem: Option<Vec<u8>>,
    /// The server name to verify, if not the URL's host.
    pub domain: Option<String>,
    /// A client identity for mutual TLS: PEM certificate chain and PEM
    /// private key.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key never reaches a log.
        f.debug_struct("TlsSettings")
            .field("ca_pem", &self.ca_pem.as_ref().map(|c| c.len()))
            .field("domain", &self.domain)
            .field("identity", &self.identity.is_some())
            .finish()
    }
}

impl TlsSettings {
    /// Trust the CA in `pem` too.
    pub fn with_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Verify the gateway's certificate for `domain` instead of the URL's
    /// host.
    pub fn with_domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// Present this client certificate (PEM chain) and key (PEM) to the
    /// gateway: mutual TLS.
    pub fn with_identity(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.identity = Some((cert_pem.into(), key_pem.into()));
        self
    }
}

/// Everything a [`Tether`](super::Tether) client needs.
///
/// Build it with [`TetherConfig::new`] and the `with_*` methods; every field
/// is public to read and to set, and new fields come with defaults.
#[derive(Clone)]
#[non_exhaustive]
pub struct TetherConfig {
    /// The gateway, e.g. `http://127.0.0.1:50051` (TLS when `https`).
    /// With `http`, the stream connections are watched for a draining
    /// gateway (an HTTP/2 GOAWAY), and a stream is moved to a new
    /// connection when one drains; under TLS the frames cannot be seen, so
    /// a drain is noticed only when the gateway ends the stream.
    pub gateway_url: String,
    /// A channel of your own (a custom connector, a proxy, a service
    /// mesh, in-process transport). When set, it carries every call and
    /// stream, and `gateway_url`, the timeouts, keepalive and `tls` are not
    /// used to build one. Without it, tether opens one connection per
    /// stream and one for the checks, so that checks never delay the
    /// streams; with it, that separation is the channel's.
    pub channel: Option<tonic::transport::Channel>,
    /// Who this runtime is.
    pub agent: AgentIdentity,
    /// The subscriber id of the invalidation stream.
    pub assembly_id: String,
    /// Where the credential comes from.
    pub credentials: Arc<dyn CredentialProvider>,
    /// TLS settings (used when the URL is `https`).
    pub tls: TlsSettings,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// CheckAction timeout.
    pub request_timeout: Duration,
    /// HTTP/2 keepalive interval.
    pub keepalive_interval: Duration,
    /// HTTP/2 keepalive timeout.
    pub keepalive_timeout: Duration,
    /// Reconnect backoff of both streams (each gets its own seed from
    /// [`TetherConfig::seed`]).
    pub backoff: BackoffConfig,
    /// The policy cache.
    pub cache: PolicyCacheConfig,
    /// The approval waiters.
    pub approvals: ApprovalConfig,
    /// The op-control machine.
    pub ops: tether_core::op_control::OpControlConfig,
    /// How long opening a stream (invalidation or op control) may take,
    /// connection and response headers included, before the attempt counts
    /// as a failure for the backoff (default [`DEFAULT_OPEN_TIMEOUT`]): a
    /// gateway or proxy that accepts a stream and never answers cannot
    /// leave the client without its kill switch.
    pub open_timeout: Duration,
    /// Acks on the invalidation stream are cumulative: one ack for the
    /// newest applied event once this many applied events of the stream are
    /// unacked (default [`DEFAULT_ACK_EVERY`], 64; at least 1; 1 acks every
    /// event). See [`TetherConfig::with_acks`].
    pub ack_every: u32,
    /// ...or once this long has passed since the first unacked one (default
    /// [`DEFAULT_ACK_DELAY`], 20 ms).
    pub ack_delay: Duration,
    /// How many `CheckAction` calls may be in flight at once on the
    /// checks' connection, how many more may queue, and for how long (the
    /// core's `CheckSlots`; defaults 64 in flight, 1,024 queued, 10 s).
    pub check_slots: tether_core::check_slots::CheckSlotsConfig,
    /// How long `check` waits for a reviewer on a PENDING answer.
    pub approval_deadline: Duration,
    /// What `check` answers when that deadline passes with no verdict (the
    /// approval is still pending; this is a local decision, not a denial by
    /// anyone). Defaults to deny, the safe side.
    pub approval_fallback: Decision,
    /// Seed of every jitter generator. `None` (the default): drawn from the
    /// operating system's randomness when the client starts, so a fleet
    /// started together does not reconnect in lock step. `Some`: a run
    /// replays exactly.
    pub seed: Option<u64>,
    /// Register the agent through `AgentLifecycleService` and use the
    /// token it is issued (see [`TetherConfig::with_registration`]).
    pub registration: Option<RegistrationSettings>,
}

impl std::fmt::Debug for TetherConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TetherConfig")
            .field("gateway_url", &self.gateway_url)
            .field("own_channel", &self.channel.is_some())
            .field("agent", &self.agent)
            .field("assembly_id", &self.assembly_id)
            .field("approval_deadline", &self.approval_deadline)
            .field("approval_fallback", &self.approval_fallback)
            .finish_non_exhaustive()
    }
}

impl TetherConfig {
    /// A config with the defaults for everything but the gateway, the agent
    /// and the subscriber id; no credential.
    pub fn new(
        gateway_url: impl Into<String>,
        agent: AgentIdentity,
        assembly_id: impl Into<String>,
    ) -> Self {
        TetherConfig {
            gateway_url: gateway_url.into(),
            channel: None,
            agent,
            assembly_id: assembly_id.into(),
            credentials: Arc::new(StaticToken::none()),
            tls: TlsSettings::default(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            keepalive_interval: DEFAULT_KEEPALIVE_INTERVAL,
            keepalive_timeout: DEFAULT_KEEPALIVE_TIMEOUT,
            backoff: BackoffConfig::default(),
            cache: PolicyCacheConfig::default(),
            approvals: ApprovalConfig::default(),
            ops: Default::default(),
            ack_every: DEFAULT_ACK_EVERY,
            ack_delay: DEFAULT_ACK_DELAY,
            check_slots: Default::default(),
            open_timeout: DEFAULT_OPEN_TIMEOUT,
            approval_deadline: DEFAULT_APPROVAL_DEADLINE,
            approval_fallback: Decision::Deny,
            seed: None,
            registration: None,
        }
    }

    /// Register the agent at the gateway's `AgentLifecycleService` with
    /// `settings.key`, whose did:key becomes the agent id (the org and team
    /// stay as given), and present the token the registration is issued
    /// on every call and stream (it replaces any token or provider set
    /// before). The client registers again whenever the gateway no longer
    /// knows the token, heartbeats, deregisters at shutdown, and applies
    /// the lifecycle's suspend, resume, kill and policy-update commands.
    /// Its progress is [`ClientStatus::registration`](super::ClientStatus::registration).
    pub fn with_registration(mut self, settings: RegistrationSettings) -> Self {
        self.agent.agent_id = settings.key.did();
        self.registration = Some(settings);
        self
    }

    /// Use a static token.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.credentials = Arc::new(StaticToken::new(token));
        self
    }

    /// Use a credential provider.
    pub fn with_credentials(mut self, provider: Arc<dyn CredentialProvider>) -> Self {
        self.credentials = provider;
        self
    }

    /// Set the approval deadline and the fallback decision when it passes.
    pub fn with_approval_deadline(mut self, deadline: Duration, fallback: Decision) -> Self {
        self.approval_deadline = deadline;
        self.approval_fallback = fallback;
        self
    }

    /// Fix the jitter seed, so a run replays exactly (the default draws
    /// one from the operating system's randomness).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Carry every call and stream on `channel`, a
    /// [`tonic::transport::Channel`] you built (your own connector, TLS
    /// setup or middleware-free transport). tether still keeps the streams
    /// alive and bounds every call; the URL is then only a label in logs.
    /// The streams and the checks then share whatever connections the
    /// channel has: a channel with one connection to a peer that caps
    /// streams per connection lets held checks delay the kill switch. Nor
    /// is a draining gateway noticed on it (an HTTP/2 GOAWAY: tether's own
    /// plaintext channels watch for one and move the streams to a new
    /// connection): a stream stays where the channel put it until the peer
    /// ends it.
    pub fn with_channel(mut self, channel: tonic::transport::Channel) -> Self {
        self.channel = Some(channel);
        self
    }

    /// TLS settings for an `https://` gateway (extra CA, server name,
    /// client identity for mutual TLS).
    pub fn with_tls(mut self, tls: TlsSettings) -> Self {
        self.tls = tls;
        self
    }

    /// The TCP connect timeout (default [`DEFAULT_CONNECT_TIMEOUT`]).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The CheckAction timeout (default [`DEFAULT_REQUEST_TIMEOUT`]).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// HTTP/2 keepalive: ping every `interval`, give up on the connection
    /// after `timeout` without an answer (defaults
    /// [`DEFAULT_KEEPALIVE_INTERVAL`], [`DEFAULT_KEEPALIVE_TIMEOUT`]).
    pub fn with_keepalive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.keepalive_interval = interval;
        self.keepalive_timeout = timeout;
        self
    }

    /// The streams' reconnect backoff.
    pub fn with_backoff(mut self, backoff: BackoffConfig) -> Self {
        self.backoff = backoff;
        self
    }

    /// The policy cache's TTL and bounds.
    pub fn with_cache(mut self, cache: PolicyCacheConfig) -> Self {
        self.cache = cache;
        self
    }

    /// The approval waiters' bounds.
    pub fn with_approvals(mut self, approvals: ApprovalConfig) -> Self {
        self.approvals = approvals;
        self
    }

    /// How the invalidation stream acks applied events: one cumulative ack
    /// for the newest applied event once `every` applied events of the
    /// stream are unacked, or `delay` after the first unacked one, whichever
    /// comes first (defaults [`DEFAULT_ACK_EVERY`], 64, and
    /// [`DEFAULT_ACK_DELAY`], 20 ms; `every` is at least 1).
    ///
    /// Why: the gateway treats an ack as cumulative (it trims its replay
    /// buffer up to and including the acked sequence number), so one ack
    /// does the work of a burst's worth, and sending one per event was most
    /// of the client's per-event cost. Acks only trim that buffer: the
    /// resume point after a reconnect is the last applied event, which no
    /// ack moves, so a later ack loses nothing; an ack still pending when a
    /// stream ends is not sent (the next stream's first ack covers it).
    /// `with_acks(1, ..)` acks every applied event, for a gateway that
    /// needs one ack per event.
    pub fn with_acks(mut self, every: u32, delay: Duration) -> Self {
        self.ack_every = every;
        self.ack_delay = delay;
        self
    }

    /// The op-control machine's bounds and outage policy.
    pub fn with_ops(mut self, ops: tether_core::op_control::OpControlConfig) -> Self {
        self.ops = ops;
        self
    }

    /// Bound how long a check is held by an op-control outage under the
    /// `Hold` outage policy: once the outage (the policy in force, after
    /// the outage grace) has lasted `hold_limit`, held checks end with a
    /// `Deny` verdict from [`VerdictSource::OutagePolicy`](super::VerdictSource::OutagePolicy)
    /// naming why the stream is down, and new checks are denied the same
    /// way until the stream is back (default 50 s, so with the default 10 s
    /// grace no check waits more than 60 s). Sets `ops.hold_limit`.
    pub fn with_hold_limit(mut self, hold_limit: Duration) -> Self {
        self.ops.hold_limit = hold_limit;
        self
    }

    /// Bound each stream open (see [`TetherConfig::open_timeout`]).
    pub fn with_open_timeout(mut self, timeout: Duration) -> Self {
        self.open_timeout = timeout;
        self
    }

    /// Bound the checks: at most `max_in_flight` `CheckAction` calls on the
    /// checks' connection at once, at most `max_queued` more waiting, each
    /// for at most `queue_timeout`; past either bound a check ends with
    /// [`TetherError::CheckCapacity`](super::TetherError::CheckCapacity)
    /// without being sent. Keep `max_in_flight` below the gateway's (or
    /// its proxy's) per-connection stream cap (hyper's server default is
    /// 200, nginx's 128, cloud load balancers about 100): past the cap,
    /// extra calls wait inside HTTP/2, bounded only by their own timeout.
    pub fn with_check_slots(mut self, slots: tether_core::check_slots::CheckSlotsConfig) -> Self {
        self.check_slots = slots;
        self
    }
}
