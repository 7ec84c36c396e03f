//! Builds the tonic channel to the gateway: keepalive, timeouts, TLS.
//!
//! Guarantees: the channel is lazy (building it never blocks or fails on a
//! down gateway; the streams' backoff handles that); HTTP/2 keepalive is on
//! so a silently dead peer is noticed; `https` URLs use rustls (with a
//! client identity for mutual TLS when one is configured). A channel the
//! user supplies ([`TetherConfig::with_channel`]) is used as it is.

use tonic::transport::{Channel, Endpoint};

use super::config::TetherConfig;
use super::error::ConfigError;

/// The channel for `config`: the user's own, or a lazily connecting one.
pub(super) fn build(config: &TetherConfig) -> Result<Channel, ConfigError> {
    if let Some(channel) = &config.channel {
        return Ok(channel.clone());
    }
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
    Ok(ep.connect_lazy())
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
