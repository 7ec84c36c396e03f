//! Per-stream connection status, as [`Tether::status`](super::Tether::status)
//! reports it.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::watch;

/// One stream's state and counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamStatus {
    /// Whether the stream is open now.
    pub connected: bool,
    /// When it last became connected or disconnected (wall clock).
    pub since: Option<SystemTime>,
    /// The last sequence number applied (invalidation) or seen (op control).
    pub last_seq: u64,
    /// Connection attempts after the first.
    pub reconnects: u64,
    /// Times the stream was moved to a fresh connection because the gateway
    /// behind its connection was draining (an HTTP/2 GOAWAY: a graceful
    /// shutdown, its replacement serving new connections). Each is also a
    /// reconnect. Plaintext (`http://`) channels built by tether see the
    /// GOAWAY; under TLS a stream is moved when the checks moved to a new
    /// connection after it opened (which needs a check); a user's channel
    /// notices nothing.
    pub drain_swaps: u64,
    /// Events applied.
    pub events_applied: u64,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Sequence gaps seen (invalidation stream).
    pub gaps: u64,
    /// Gateway restarts detected (invalidation stream).
    pub restarts: u64,
    /// Gaps the gateway could not replay (invalidation stream).
    pub unreplayable_gaps: u64,
    /// The last error that ended a stream or an attempt, if any.
    pub last_error: Option<String>,
}

/// The checks on their way to the gateway.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckStatus {
    /// `CheckAction` calls in flight on the checks' connection (a gateway
    /// that holds a call until a reviewer decides counts here).
    pub in_flight: usize,
    /// Checks waiting for a slot (at most `max_queued`, each for at most
    /// the queue timeout).
    pub queued: usize,
    /// Checks waiting for a reviewer after a `PENDING` answer (they hold no
    /// slot).
    pub held_for_approval: usize,
    /// The most checks in flight at once.
    pub max_in_flight: usize,
    /// The most checks queued at once.
    pub max_queued: usize,
}

/// Whether a halt published now can reach this agent: the op-control
/// stream is subscribed. The outage policy acts on this same fact (the core
/// `OpControl` machine's view of the stream).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KillSwitchStatus {
    /// A pause or terminate published now reaches this agent.
    pub reachable: bool,
    /// Since when it is reachable, or since when it is not.
    pub since: SystemTime,
    /// Why it cannot be reached (`None` while reachable).
    pub unreachable: Option<KillSwitchDown>,
    /// Checks on running ops follow the outage policy now (the stream has
    /// been down past its grace, or came back less than the settle window
    /// ago).
    pub outage_policy_in_force: bool,
    /// How full the op table is, and whether it saturated.
    pub op_table: OpTableStatus,
}

/// How full the op-control table is. Pauses and terminates of single ops
/// are kept exactly in entries (oldest paused ones evicted into markers) and
/// then in an overflow; only past all three does the table saturate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpTableStatus {
    /// Paused or terminated op entries.
    pub entries: usize,
    /// Paused ops evicted from the entries (they fail closed until resumed).
    pub evicted_markers: usize,
    /// Paused or terminated ops kept in the overflow.
    pub overflow: usize,
    /// `Clear`, or why ops the table holds nothing for fail closed:
    /// `Ops` until every op has finished
    /// ([`Ops::all_finished`](super::Ops::all_finished)), `Fleet` for good.
    pub saturation: tether_core::op_control::Saturation,
    /// Whether a lost signal was a terminate (the ops it may cover then
    /// read terminated rather than paused).
    pub lost_terminate: bool,
}

impl Default for KillSwitchStatus {
    fn default() -> Self {
        KillSwitchStatus {
            reachable: false,
            since: SystemTime::now(),
            unreachable: Some(KillSwitchDown::Opening),
            outage_policy_in_force: false,
            op_table: OpTableStatus::default(),
        }
    }
}

/// Why the kill switch cannot reach this agent now.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KillSwitchDown {
    /// The stream is being opened: connecting, or its open is queued (a
    /// proxy's stream cap) or unanswered.
    Opening,
    /// The stream was open and ended (the gateway ended it, the connection
    /// broke); the client is reconnecting.
    StreamLost {
        /// What ended it.
        error: String,
    },
    /// The gateway answered the open with an error other than a credential
    /// refusal (unavailable, resource exhausted, ...).
    OpenRefused {
        /// The gRPC status code.
        code: tonic::Code,
        /// The gateway's message.
        message: String,
    },
    /// The gateway refused the credential (`UNAUTHENTICATED` or
    /// `PERMISSION_DENIED`); the client refreshes it and retries.
    CredentialRefused {
        /// The gateway's message.
        message: String,
    },
    /// The open got no answer (no connection, or no response headers)
    /// within the open timeout; the client retries with its backoff.
    OpenUnanswered {
        /// How long it waited.
        waited: std::time::Duration,
    },
    /// The client shut down.
    ShutDown,
}

impl std::fmt::Display for KillSwitchDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KillSwitchDown::Opening => f.write_str("the op-control stream is being opened"),
            KillSwitchDown::StreamLost { error } => {
                write!(f, "the op-control stream was lost ({error}); reconnecting")
            }
            KillSwitchDown::OpenRefused { code, message } => {
                write!(
                    f,
                    "the gateway refused the op-control stream: {code:?}: {message}"
                )
            }
            KillSwitchDown::CredentialRefused { message } => {
                write!(f, "the gateway refused the credential: {message}")
            }
            KillSwitchDown::OpenUnanswered { waited } => {
                write!(
                    f,
                    "the op-control stream's open got no answer within {waited:?}"
                )
            }
            KillSwitchDown::ShutDown => f.write_str("the client shut down"),
        }
    }
}

/// The client's status: both streams', the checks' and the kill switch's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientStatus {
    /// The invalidation stream.
    pub invalidation: StreamStatus,
    /// The op-control stream.
    pub op_control: StreamStatus,
    /// The checks in flight, queued and held for approval.
    pub checks: CheckStatus,
    /// Whether a halt published now can reach this agent, and if not,
    /// since when and why.
    pub kill_switch: KillSwitchStatus,
    /// The agent's registration, when the client registers it
    /// ([`TetherConfig::with_registration`](super::TetherConfig::with_registration)).
    pub registration: Option<super::lifecycle::RegistrationReport>,
}

/// Where the stream tasks publish their status.
#[derive(Clone, Debug)]
pub(crate) struct StatusBoard {
    inner: Arc<watch::Sender<ClientStatus>>,
}

impl Default for StatusBoard {
    fn default() -> Self {
        StatusBoard {
            inner: Arc::new(watch::channel(ClientStatus::default()).0),
        }
    }
}

impl StatusBoard {
    /// Change the status; watchers are woken only if something changed.
    /// `f` returns whether it changed anything (cheap: no clone to compare).
    pub(crate) fn update_if(&self, f: impl FnOnce(&mut ClientStatus) -> bool) {
        self.inner.send_if_modified(f);
    }

    /// Change the status and wake watchers.
    pub(crate) fn update(&self, f: impl FnOnce(&mut ClientStatus)) {
        self.inner.send_if_modified(|s| {
            f(s);
            true
        });
    }

    pub(crate) fn get(&self) -> ClientStatus {
        self.inner.borrow().clone()
    }

    pub(crate) fn watch(&self) -> watch::Receiver<ClientStatus> {
        self.inner.subscribe()
    }
}

/// Mark a stream connected or disconnected, stamping the time of change.
pub(crate) fn set_connected(s: &mut StreamStatus, connected: bool) {
    if s.connected != connected || s.since.is_none() {
        s.since = Some(SystemTime::now());
    }
    s.connected = connected;
}
