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

use tonic::transport::{Channel, Endpoint};

use super::config::TetherConfig;
use super::error::ConfigError;

/// One channel (one HTTP/2 connection, reconnected by tonic) per kind of
/// traffic.
#[derive(Clone, Debug)]
pub(crate) struct Channels {
    /// `CheckAction` calls.
    pub(crate) checks: Channel,
    /// The `Subscribe` stream.
    pub(crate) invalidation: Channel,
    /// The `OpControlStream`.
    pub(crate) op_control: Channel,
}

/// The channels for `config`: the user's own for everything, or three
/// lazily connecting ones from the same endpoint settings.
pub(super) fn build(config: &TetherConfig) -> Result<Channels, ConfigError> {
    if let Some(channel) = &config.channel {
        return Ok(Channels {
            checks: channel.clone(),
            invalidation: channel.clone(),
            op_control: channel.clone(),
        });
    }
    let ep = endpoint(config)?;
    // `connect_lazy` on one endpoint gives a new connection each time.
    Ok(Channels {
        checks: ep.connect_lazy(),
        invalidation: ep.connect_lazy(),
        op_control: ep.connect_lazy(),
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
