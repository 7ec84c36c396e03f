//! A client's half-close of `Subscribe` ends nothing but its acks (WIRE.md,
//! last section): Agent Assembly's runtime sends its one `SubscribeRequest`
//! and half-closes its side, and must keep receiving events on that stream.

mod gateway_support;

use std::time::Duration;

use gateway_support::*;
use tether_gateway::Gateway;
use tether_proto::gateway::invalidation_service_client::InvalidationServiceClient;
use tether_proto::gateway::subscribe_request::Kind;
use tether_proto::gateway::{InvalidationEvent, SubscribeAck, SubscribeInitial, SubscribeRequest};
use tokio::sync::mpsc;
use tonic::transport::Channel;

fn initial(assembly_id: &str, last_seq_seen: u64) -> SubscribeRequest {
    SubscribeRequest {
        assembly_id: assembly_id.into(),
        kind: Some(Kind::Initial(SubscribeInitial { last_seq_seen })),
    }
}

fn ack(assembly_id: &str, seq: u64) -> SubscribeRequest {
    SubscribeRequest {
        assembly_id: assembly_id.into(),
        kind: Some(Kind::Ack(SubscribeAck { seq })),
    }
}

/// A client shaped like Agent Assembly's runtime: one `SubscribeRequest`,
/// then its side is closed (the request stream has exactly one item); it
/// never acks, and resubscribes at once whenever the stream ends. Reports
/// each event with the number of the stream (1, 2, ...) it came on.
fn half_closing_client(ch: Channel, out: mpsc::UnboundedSender<(u32, InvalidationEvent)>) {
    tokio::spawn(async move {
        let mut client = InvalidationServiceClient::new(ch);
        let mut last = 0;
        for stream_no in 1u32.. {
            let once = tokio_stream::once(initial("asm-half-closed", last));
            let Ok(response) = client.subscribe(once).await else {
                continue;
            };
            assert!(response
                .metadata()
                .get(tether_proto::GATEWAY_EPOCH_HEADER)
                .is_some());
            let mut events = response.into_inner();
            while let Ok(Some(ev)) = events.message().await {
                last = ev.seq;
                if out.send((stream_no, ev)).is_err() {
                    return;
                }
            }
        }
    });
}

#[tokio::test]
async fn a_half_closed_subscribe_stays_open_and_receives_later_events() {
    let gw = start(Gateway::builder()).await;
    let admin = gw.admin();
    let ch = channel(&gw).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    half_closing_client(ch, tx);
    eventually(|| admin.status().invalidation_streams == 1).await;
    // Let the gateway see the client's half-close before publishing.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for v in 1..=3 {
        assert_eq!(admin.publish_invalidation("agent-a", v, None), 1);
    }
    for seq in 1..=3 {
        let (stream_no, ev) = within(rx.recv()).await.unwrap();
        assert_eq!(
            (stream_no, ev.seq, ev.payload),
            (1, seq, invalidated("agent-a", seq)),
            "every event on the first and only stream"
        );
    }
    // Over a second: no reconnect, the one stream still open and serving.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let status = admin.status();
    assert_eq!(
        (
            status.invalidation_streams_opened,
            status.invalidation_streams
        ),
        (1, 1),
        "{status:?}"
    );
    admin.publish_invalidation("", 4, None);
    let (stream_no, ev) = within(rx.recv()).await.unwrap();
    assert_eq!((stream_no, ev.seq), (1, 4));
    assert!(admin.list_subscribers(None)[0].connected);
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn acks_sent_before_the_half_close_count_and_the_stream_stays() {
    let gw = start(Gateway::builder()).await;
    let admin = gw.admin();
    let ch = channel(&gw).await;
    let (tx, rx) = mpsc::channel(8);
    tx.send(initial("asm-acks", 0)).await.unwrap();
    let mut client = InvalidationServiceClient::new(ch);
    let response = within(client.subscribe(tokio_stream::wrappers::ReceiverStream::new(rx)))
        .await
        .unwrap();
    let mut events = response.into_inner();
    for v in 1..=3 {
        admin.publish_invalidation("", v, None);
    }
    for seq in 1..=3 {
        assert_eq!(within(events.message()).await.unwrap().unwrap().seq, seq);
    }
    tx.send(ack("asm-acks", 2)).await.unwrap();
    drop(tx); // half-close after the ack
    eventually(|| admin.list_subscribers(None)[0].acked_seq == 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    admin.publish_invalidation("", 4, None);
    assert_eq!(within(events.message()).await.unwrap().unwrap().seq, 4);
    let info = &admin.list_subscribers(None)[0];
    assert_eq!(
        (info.acked_seq, info.ring_len, info.connected),
        (2, 2, true)
    );

    // The client dropping its response is what ends the stream.
    drop(events);
    eventually(|| admin.status().invalidation_streams == 0).await;
    assert!(!admin.list_subscribers(None)[0].connected);
    assert_eq!(admin.status().invalidation_streams_opened, 1);
    gw.shutdown().await.unwrap();
}
