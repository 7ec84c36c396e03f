//! Builds the tonic channel to the gateway: keepalive, timeouts, TLS.
//!
//! Guarantees: the channel is lazy (building it never blocks or fails on a
//! down gateway; the streams' backoff handles that); HTTP/2 keepalive is on
//! so a silently dead peer is noticed; `https` URLs use rustls.

use tonic::transport::{Channel, Endpoint};

use super::config::TetherConfig;
use super::error::TetherError;

/// A lazily connecting channel for `config`.
pub(super) fn build(config: &TetherConfig) -> Result<Channel, TetherError> {
    let mut ep = Endpoint::from_shared(config.gateway_url.clone()).map_err(|e| {
        TetherError::InvalidConfig(format!("gateway URL {:?}: {e}", config.gateway_url))
    })?;
    ep = ep
        .connect_timeout(config.connect_timeout)
        .http2_keep_alive_interval(config.keepalive_interval)
        .keep_alive_timeout(config.keepalive_timeout)
        .keep_alive_while_idle(true)
        .tcp_nodelay(true);
    if config.gateway_url.starts_with("https://") {
        ep = with_tls(ep, config)?;
    }
    Ok(ep.connect_lazy())
}

/// `ep` with rustls set up from `config.tls`.
#[cfg(any(feature = "tls-ring", feature = "tls-aws-lc"))]
fn with_tls(ep: Endpoint, config: &TetherConfig) -> Result<Endpoint, TetherError> {
    {
        use tonic::transport::ClientTlsConfig;
        let mut tls = ClientTlsConfig::new().with_enabled_roots();
        if let Some(ca) = &config.tls.ca_pem {
            tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(ca));
        }
        if let Some(domain) = &config.tls.domain {
            tls = tls.domain_name(domain.clone());
        }
        ep.tls_config(tls)
            .map_err(|e| TetherError::InvalidConfig(format!("TLS: {e}")))
    }
}

/// Built without a TLS feature: an `https://` gateway is a configuration
/// error that says which feature to enable.
#[cfg(not(any(feature = "tls-ring", feature = "tls-aws-lc")))]
fn with_tls(_ep: Endpoint, config: &TetherConfig) -> Result<Endpoint, TetherError> {
    Err(TetherError::InvalidConfig(format!(
        "gateway URL {:?} needs TLS, but tether-tokio was built without a TLS feature (enable `tls-ring` or `tls-aws-lc`)",
        config.gateway_url
    )))
}
