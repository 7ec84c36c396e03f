//! The gateway's limits are settings: a low cap refuses the next caller
//! with `RESOURCE_EXHAUSTED` (that caller only), a raised one admits it.

mod gateway_support;

use gateway_support::*;
use tether_gateway::{Gateway, GatewayBuilder};
use tonic::Code;

/// Subscribe `ids` on a gateway built by `builder`; returns the status of
/// the last one and checks the earlier ones still receive events.
async fn subscribe_all(builder: GatewayBuilder, ids: &[&str]) -> Result<(), tonic::Status> {
    let gw = start(builder).await;
    let ch = channel(&gw).await;
    let (last, earlier) = ids.split_last().unwrap();
    let mut open = Vec::new();
    for id in earlier {
        open.push(subscribe(&ch, id, 0, Cred::None).await.unwrap());
    }
    let result = subscribe(&ch, last, 0, Cred::None).await.map(drop);
    // The refusal touched nobody else: every earlier stream still serves.
    let sent = gw.admin().publish_invalidation("", 1, None);
    assert!(sent >= earlier.len());
    for sub in &mut open {
        assert_eq!(sub.expect().await.seq, 1);
    }
    gw.shutdown().await.unwrap();
    result
}

#[tokio::test]
async fn a_low_subscriber_cap_refuses_the_next_subscriber_and_a_raised_one_admits_it() {
    let ids = ["asm-1", "asm-2", "asm-3"];
    let err = subscribe_all(Gateway::builder().max_subscribers(2), &ids)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("max_subscribers"), "{err:?}");
    subscribe_all(Gateway::builder().max_subscribers(3), &ids)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_low_stream_cap_refuses_the_next_stream_and_a_raised_one_admits_it() {
    let ids = ["asm-1", "asm-2"];
    let err = subscribe_all(Gateway::builder().max_streams(1), &ids)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("max_streams"), "{err:?}");
    subscribe_all(Gateway::builder().max_streams(2), &ids)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_assembly_id_length_is_a_setting() {
    let long = "x".repeat(2000);
    let err = subscribe_all(Gateway::builder(), &[&long])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    subscribe_all(Gateway::builder().max_assembly_id_len(4096), &[&long])
        .await
        .unwrap();
}

// The defaults admit 10,000 agents: one Subscribe and one OpControlStream
// each, plus a reconnect overlapping each (checked when this compiles).
const _: () = {
    assert!(tether_gateway::server::DEFAULT_MAX_STREAMS >= 20_000);
    assert!(tether_gateway::hub::DEFAULT_MAX_SUBSCRIBERS >= 20_000);
    assert!(tether_gateway::desk::DEFAULT_MAX_PENDING >= 10_000);
    assert!(tether_gateway::ops::DEFAULT_MAX_OPS >= 10_000);
};
