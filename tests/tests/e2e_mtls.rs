//! Mutual TLS: a gateway that requires a client certificate answers a
//! client configured with one (`TlsSettings::with_identity`) and refuses
//! the same client without it. Certificates are made at test time.

use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tether_proto::common::Decision as WireDecision;
use tether_proto::policy::CheckActionResponse;
use tether_tests::scripted::ScriptedPolicy;
use tether_tests::{bounded, client_config};
use tether_tokio::client::{Decision, Tether, TetherError, TlsSettings, ToolCall, VerdictSource};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

struct Pki {
    ca_pem: String,
    server: (String, String),
    client: (String, String),
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca_cert, &ca_key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    Pki {
        ca_pem: ca_cert.pem(),
        server: leaf(vec!["localhost".into()]),
        client: leaf(vec!["agent-7.client".into()]),
    }
}

#[tokio::test]
async fn a_gateway_that_requires_a_client_certificate_answers_only_with_one() {
    let pki = pki();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(&pki.server.0, &pki.server.1))
        .client_ca_root(Certificate::from_pem(&pki.ca_pem));
    let server = tokio::spawn(
        Server::builder()
            .tls_config(tls)
            .unwrap()
            .add_service(
                ScriptedPolicy::new(|_| CheckActionResponse {
                    decision: WireDecision::Allow as i32,
                    reason: "mtls peer allowed".into(),
                    ..Default::default()
                })
                .0,
            )
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let url = format!("https://localhost:{port}");
    let trust = TlsSettings::default().with_ca_pem(pki.ca_pem.clone());

    // With the client identity: the gateway answers.
    let mut config = client_config(&url).with_tls(
        trust
            .clone()
            .with_identity(pki.client.0.clone(), pki.client.1.clone()),
    );
    config.request_timeout = Duration::from_secs(5);
    let with_id = Tether::connect(config).unwrap();
    let v = bounded(
        "check over mTLS",
        with_id.check("t:1", &ToolCall::new("read_file")),
    )
    .await
    .unwrap();
    assert_eq!(v.decision, Decision::Allow);
    assert_eq!(v.source, VerdictSource::Gateway);
    assert_eq!(v.reason, "mtls peer allowed");

    // Without it: the handshake is refused, and the check says so.
    let mut config = client_config(&url).with_tls(trust);
    config.request_timeout = Duration::from_secs(5);
    let without = Tether::connect(config).unwrap();
    let err = bounded(
        "check without a client cert",
        without.check("t:2", &ToolCall::new("read_file")),
    )
    .await
    .expect_err("no client certificate: refused");
    assert!(matches!(err, TetherError::Gateway(_)), "{err:?}");

    with_id.shutdown(Duration::from_secs(1)).await;
    without.shutdown(Duration::from_secs(1)).await;
    server.abort();
}
