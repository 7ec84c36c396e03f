//! The client's error types: what went wrong, with the cause attached.

/// What can go wrong in the client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TetherError {
    /// The configuration cannot work (bad URL, bad TLS material).
    #[error("invalid configuration: {0}")]
    InvalidConfig(#[from] ConfigError),
    /// The gateway answered CheckAction with an error.
    #[error("gateway error: {0}")]
    Gateway(#[from] tonic::Status),
    /// The gateway stopped answering while the call was out: the
    /// connection stayed open but no HTTP/2 keepalive ping was answered in
    /// time (a dead link, a frozen peer). This bound ends a call on a dead
    /// link: at most `keepalive_interval + keepalive_timeout` of silence
    /// (15 s by default), long before the approval deadline would.
    #[error(
        "the gateway stopped answering: no HTTP/2 keepalive answer within {bound:?} of silence \
         (keepalive interval plus keepalive timeout), so the call was ended"
    )]
    GatewayUnresponsive {
        /// The bound that ended it: the keepalive interval plus timeout.
        bound: std::time::Duration,
        /// What the transport reported.
        #[source]
        source: tonic::Status,
    },
    /// The gateway answered something tether cannot interpret.
    #[error("gateway protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// The approval wait was refused: a bound was hit (too many waiters),
    /// or the gateway named an approval id that cannot be waited on (empty
    /// or over-long). The caller is failed closed.
    #[error("approval wait refused: {0}")]
    ApprovalRefused(#[from] tether_core::approval::ApprovalWaitError),
    /// The check could not be sent: too many checks were in flight on the
    /// checks' connection and the queue was full, or no slot freed within
    /// the queue timeout. Nothing was sent; the caller decides whether to
    /// retry.
    #[error("check not sent: {0}")]
    CheckCapacity(#[from] CheckCapacityError),
    /// The client was shut down.
    #[error("the tether client is shut down")]
    Shutdown,
    /// The client registers its agent
    /// ([`TetherConfig::with_registration`](super::TetherConfig::with_registration))
    /// and had no token for the call: the registration was refused, or did
    /// not complete within the request timeout. Nothing was sent.
    #[error("the agent is not registered: {phase}")]
    NotRegistered {
        /// Where the registration stood.
        phase: super::RegistrationPhase,
    },
    /// [`Tether::ready`](super::Tether::ready) gave up before both streams
    /// were up.
    #[error("the gateway streams were not up within {waited:?}")]
    NotReady {
        /// How long it waited.
        waited: std::time::Duration,
        /// The status when it gave up (each stream's `last_error` says why).
        status: Box<super::ClientStatus>,
    },
}

/// A configuration that cannot work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The gateway URL does not parse.
    #[error("gateway URL {url:?} is not a valid URI")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it does not parse.
        #[source]
        source: tonic::transport::Error,
    },
    /// The TLS material (CA, identity) was refused.
    #[error("TLS settings for {url:?} were refused")]
    Tls {
        /// The gateway URL.
        url: String,
        /// What tonic / rustls said.
        #[source]
        source: tonic::transport::Error,
    },
    /// An `https://` URL, but the crate was built without a TLS feature.
    #[error("gateway URL {url:?} needs TLS, but tether-tokio was built without a TLS feature (enable `tls-ring` or `tls-aws-lc`)")]
    TlsUnavailable {
        /// The gateway URL.
        url: String,
    },
}

/// A gateway answer that breaks the protocol.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// CheckAction answered a decision value that is not a verdict.
    #[error("CheckAction answered decision {decision} for tool {tool:?}")]
    UnknownDecision {
        /// The wire value.
        decision: i32,
        /// The tool that was checked.
        tool: String,
    },
    /// `BatchCheck` answered another number of responses than requests.
    #[error("BatchCheck answered {answered} responses to {sent} requests")]
    BatchSize {
        /// Requests sent.
        sent: usize,
        /// Responses received.
        answered: usize,
    },
    /// CheckAction answered PENDING without the approval id to wait on.
    #[error("CheckAction answered PENDING without an approval_id")]
    PendingWithoutApprovalId,
}

/// Why a check found no slot on the checks' connection (see
/// [`TetherConfig::with_check_slots`](super::TetherConfig::with_check_slots)).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckCapacityError {
    /// Every slot was in use and the queue was full.
    #[error("{in_flight} checks in flight and {queued} queued, the most allowed")]
    QueueFull {
        /// Checks in flight when it was refused.
        in_flight: usize,
        /// Checks queued when it was refused.
        queued: usize,
    },
    /// The check waited the whole queue timeout without a slot freeing.
    #[error("no check slot freed within {waited:?} ({in_flight} checks in flight)")]
    QueueTimeout {
        /// How long it waited.
        waited: std::time::Duration,
        /// Checks in flight when it gave up.
        in_flight: usize,
    },
}
