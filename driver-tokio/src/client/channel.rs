//! Builds the tonic channels to the gateway: keepalive, timeouts, TLS.
//!
//! Guarantees: the invalidation stream, the op-control stream and the
//! checks each get a connection of their own, so no check traffic (held
//! checks filling a peer's or a proxy's per-connection stream cap, a
//! window full of check bodies) can delay a stream's reopen or its
//! messages, and neither stream can queue behind the other, whatever the
//! cap (1 up). Each channel is lazy (building it never blocks or fails on a
//! down gateway; the streams' backoff handles that); HTTP/2 keepalive is on
//! so a silently dead peer is noticed; `https` URLs use rustls (with a
//! client identity for mutual TLS when one is configured). A channel the
//! user supplies ([`TetherConfig::with_channel`]) is used as it is, for all
//! three, so the isolation is then the user's channel's.
//!
//! The two stream channels of a plaintext (`http://`) gateway connect
//! through [`GoawayConnector`], which notices a draining gateway (an HTTP/2
//! GOAWAY) on the stream's connection; a stream task that learns of one
//! reopens on [`Channels::fresh_stream`], a channel built afresh, so the
//! reopened stream cannot land on the draining connection. Under TLS
//! (`https://`) the frames cannot be seen: the checks channel's
//! connections are counted instead, and a stream on a connection older than
//! the checks' latest is moved. A user's channel is not watched (see
//! [`super::goaway`]).

use tonic::transport::{Channel, Endpoint};

use super::config::TetherConfig;
use super::error::ConfigError;
use super::goaway::{DrainWatch, GoawayConnector};

/// One channel (one HTTP/2 connection, reconnected by tonic) per kind of
/// traffic.
#[derive(Clone, Debug)]
pub(crate) struct Channels {
    /// `CheckAction` calls.
    pub(crate) checks: Channel,
    /// Under TLS, the count of the checks channel's connections: a stream
    /// on a connection older than the checks' latest is moved (see
    /// [`super::goaway`]). `None` when the stream channels are scanned
    /// (plaintext) or the channel is the user's.
    pub(crate) checks_watch: Option<DrainWatch>,
    /// The `Subscribe` stream's first channel.
    pub(crate) invalidation: StreamChannel,
    /// The `OpControlStream`'s first channel.
    pub(crate) op_control: StreamChannel,
    /// How to build a stream channel afresh; `None` for a user's channel.
    endpoint: Option<Endpoint>,
    /// Whether stream channels can be watched for a GOAWAY (plaintext).
    watchable: bool,
    /// The user's channel, if one was supplied.
    user: Option<Channel>,
    nodelay: bool,
}

/// A stream's channel and, when its connections can be watched, the watch
/// that says the latest one is draining.
#[derive(Clone, Debug)]
pub(crate) struct StreamChannel {
    pub(crate) channel: Channel,
    pub(crate) watch: Option<DrainWatch>,
}

impl Channels {
    /// A new channel for a stream, on a connection of its own that no
    /// earlier channel shares (the user's channel when one was supplied).
    pub(crate) fn fresh_stream(&self) -> StreamChannel {
        match (&self.endpoint, &self.user) {
            (_, Some(user)) => StreamChannel {
                channel: user.clone(),
                watch: None,
            },
            (Some(ep), None) => stream_channel(ep, self.watchable, self.nodelay),
            (None, None) => unreachable!("built with an endpoint or a user's channel"),
        }
    }
}

/// A lazily connecting channel on `ep`, watched for a GOAWAY if `watchable`.
fn stream_channel(ep: &Endpoint, watchable: bool, nodelay: bool) -> StreamChannel {
    if !watchable {
        return StreamChannel {
            channel: ep.connect_lazy(),
            watch: None,
        };
    }
    let watch = DrainWatch::new();
    StreamChannel {
        channel: ep.connect_with_connector_lazy(GoawayConnector::new(watch.clone(), nodelay)),
        watch: Some(watch),
    }
}

/// The channels for `config`: the user's own for everything, or three
/// lazily connecting ones from the same endpoint settings.
pub(super) fn build(config: &TetherConfig) -> Result<Channels, ConfigError> {
    if let Some(channel) = &config.channel {
        let user = || StreamChannel {
            channel: channel.clone(),
            watch: None,
        };
        return Ok(Channels {
            checks: channel.clone(),
            checks_watch: None,
            invalidation: user(),
            op_control: user(),
            endpoint: None,
            watchable: false,
            user: Some(channel.clone()),
            nodelay: true,
        });
    }
    let ep = endpoint(config)?;
    // Frames can be watched only below no TLS.
    let watchable = config.gateway_url.starts_with("http://");
    // Under TLS the checks' connections are counted instead.
    let checks_watch = (!watchable).then(DrainWatch::new);
    let checks = match &checks_watch {
        Some(w) => ep.connect_with_connector_lazy(GoawayConnector::counting(w.clone(), true)),
        None => ep.connect_lazy(),
    };
    // `connect_lazy` on one endpoint gives a new connection each time.
    Ok(Channels {
        checks,
        checks_watch,
        invalidation: stream_channel(&ep, watchable, true),
        op_control: stream_channel(&ep, watchable, true),
        endpoint: Some(ep),
        watchable,
        user: None,
        nodelay: true,
    })
}

/// The endpoint settings every channel of `config` shares.
fn endpoint(config: &TetherConfig) -> Result<Endpoint, ConfigError> {
    let url = &config.gateway_url;
    let mut ep = Endpoint::from_shared(url.clone()).map_err(|source| ConfigError::InvalidUrl {
        url: url.clone(),
        source,
    })?;
    ep = ep
        .connect_timeout(config.connect_timeout)
        .http2_keep_alive_interval(config.keepalive_interval)
        .keep_alive_timeout(config.keepalive_timeout)
        .keep_alive_while_idle(true)
        .tcp_nodelay(true);
    if url.starts_with("https://") {
        ep = with_tls(ep, config)?;
    }
    Ok(ep)
}

/// `ep` with rustls set up from `config.tls`.
#[cfg(any(feature = "tls-ring", feature = "tls-aws-lc"))]
fn with_tls(ep: Endpoint, config: &TetherConfig) -> Result<Endpoint, ConfigError> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let mut tls = ClientTlsConfig::new().with_enabled_roots();
    if let Some(ca) = &config.tls.ca_pem {
        tls = tls.ca_certificate(Certificate::from_pem(ca));
    }
    if let Some(domain) = &config.tls.domain {
        tls = tls.domain_name(domain.clone());
    }
    if let Some((cert, key)) = &config.tls.identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    ep.tls_config(tls).map_err(|source| ConfigError::Tls {
        url: config.gateway_url.clone(),
        source,
    })
}

/// Built without a TLS feature: an `https://` gateway is a configuration
/// error that says which feature to enable.
#[cfg(not(any(feature = "tls-ring", feature = "tls-aws-lc")))]
fn with_tls(_ep: Endpoint, config: &TetherConfig) -> Result<Endpoint, ConfigError> {
    Err(ConfigError::TlsUnavailable {
        url: config.gateway_url.clone(),
    })
}
