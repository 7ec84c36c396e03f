//! Built without a TLS feature (`--no-default-features`), an `https://`
//! gateway is a configuration error that names the feature to enable, not
//! a client that silently never connects.
#![cfg(not(any(feature = "tls-ring", feature = "tls-aws-lc")))]

use tether_tokio::client::{AgentIdentity, ConfigError, Tether, TetherConfig, TetherError};

#[tokio::test]
async fn an_https_gateway_without_a_tls_feature_is_a_clear_config_error() {
    let config = TetherConfig::new(
        "https://gateway.example:443",
        AgentIdentity::new("acme", "support", "agent-7"),
        "runtime-1",
    );
    let err = Tether::connect(config).unwrap_err();
    match &err {
        TetherError::InvalidConfig(ConfigError::TlsUnavailable { url }) => {
            assert_eq!(url, "https://gateway.example:443");
        }
        other => panic!("expected TlsUnavailable, got {other:?}"),
    }
    let cause = std::error::Error::source(&err).expect("the cause is attached");
    assert!(cause.to_string().contains("tls-ring"), "{cause}");
}
