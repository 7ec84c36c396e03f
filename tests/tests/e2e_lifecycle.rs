//! What a user holding a `Tether` can rely on about its lifetime and its
//! transport: dropping the last handle ends both streams (no leaked
//! reconnect loop), `ready` waits with a bound and says why it gave up, and
//! a channel the user built carries everything.

use std::time::Duration;

use tether_tests::{bounded, client_config, connected, gateway, serve, until, WAIT};
use tether_tokio::client::{Tether, TetherError, ToolCall};
use tonic::transport::Endpoint;

#[tokio::test]
async fn dropping_the_last_handle_ends_both_streams() {
    let gw = serve(gateway()).await;
    let admin = gw.admin();
    let tether = connected(client_config(&gw.endpoint())).await;
    let clone = tether.clone();
    until("both streams open at the gateway", || {
        let s = admin.status();
        s.invalidation_streams == 1 && s.op_control_streams == 1
    })
    .await;

    // One clone gone: the client lives on.
    drop(tether);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = admin.status();
    assert_eq!(
        (s.invalidation_streams, s.op_control_streams),
        (1, 1),
        "a clone's drop must not stop the client"
    );
    assert!(clone.status().invalidation.connected);

    // The last one gone: both streams end, and stay ended.
    drop(clone);
    until("the gateway saw both streams close", || {
        let s = admin.status();
        s.invalidation_streams == 0 && s.op_control_streams == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let s = admin.status();
    assert_eq!(
        (s.invalidation_streams, s.op_control_streams),
        (0, 0),
        "no stream may reconnect after the last handle is dropped"
    );
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn ready_waits_for_both_streams_and_names_the_cause_when_it_gives_up() {
    // Nothing listens here: the port was bound and released.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let tether = Tether::connect(client_config(&format!("http://127.0.0.1:{port}"))).unwrap();
    let err = bounded("ready gave up", tether.ready(Duration::from_millis(400)))
        .await
        .expect_err("no gateway: not ready");
    match err {
        TetherError::NotReady { waited, status } => {
            assert_eq!(waited, Duration::from_millis(400));
            assert!(!status.invalidation.connected && !status.op_control.connected);
            assert!(
                status.invalidation.last_error.is_some() || status.op_control.last_error.is_some(),
                "the status says why: {status:?}"
            );
        }
        other => panic!("expected NotReady, got {other:?}"),
    }

    // The same client, once a gateway listens on that port, becomes ready.
    let gw = tether_tests::serve_on(gateway(), port).await;
    bounded("ready", tether.ready(WAIT)).await.unwrap();
    assert!(tether.status().op_control.connected);
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_channel_the_user_built_carries_checks_and_streams() {
    let gw = serve(gateway()).await;
    let channel = Endpoint::from_shared(gw.endpoint()).unwrap().connect_lazy();
    // The URL is only a label now: nothing listens there.
    let config = client_config("http://127.0.0.1:9").with_channel(channel);
    let tether = Tether::connect(config).unwrap();
    bounded("ready over the user's channel", tether.ready(WAIT))
        .await
        .unwrap();
    let v = tether
        .check("t:1", &ToolCall::new("read_file"))
        .await
        .unwrap();
    assert!(v.allowed(), "{v:?}");
    let v = tether.check("t:2", &ToolCall::new("rm_rf")).await.unwrap();
    assert!(!v.allowed(), "{v:?}");
    tether.shutdown(Duration::from_secs(1)).await;
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_unparsable_url_is_a_typed_configuration_error_with_its_cause() {
    let err = Tether::connect(client_config("not a url at all")).unwrap_err();
    let TetherError::InvalidConfig(cause) = &err else {
        panic!("expected InvalidConfig, got {err:?}");
    };
    assert!(
        matches!(
            cause,
            tether_tokio::client::ConfigError::InvalidUrl { url, .. } if url == "not a url at all"
        ),
        "{cause:?}"
    );
    assert!(
        std::error::Error::source(cause).is_some(),
        "the parse error is attached"
    );
}
