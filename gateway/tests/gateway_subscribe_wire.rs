//! `Subscribe` over real gRPC with client messages written byte by byte
//! (unknown fields, acks without or with another `assembly_id`, malformed
//! frames) and what the gateway, served by the generated tonic service and
//! its prost codec, makes of them.

mod gateway_support;

use bytes::{Buf, BufMut};
use gateway_support::*;
use prost::Message;
use tether_gateway::Gateway;
use tether_proto::gateway::subscribe_request::Kind;
use tether_proto::gateway::{InvalidationEvent, SubscribeAck, SubscribeInitial, SubscribeRequest};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};

/// Sends raw message bytes, decodes events with prost.
#[derive(Clone, Copy, Default)]
struct RawCodec;

struct RawEncoder;
impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

struct EventDecoder;
impl Decoder for EventDecoder {
    type Item = InvalidationEvent;
    type Error = Status;
    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<InvalidationEvent>, Status> {
        let bytes = buf.copy_to_bytes(buf.remaining());
        InvalidationEvent::decode(bytes)
            .map(Some)
            .map_err(|e| Status::internal(e.to_string()))
    }
}

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = InvalidationEvent;
    type Encoder = RawEncoder;
    type Decoder = EventDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> EventDecoder {
        EventDecoder
    }
}

struct RawSub {
    tx: mpsc::Sender<Vec<u8>>,
    events: Streaming<InvalidationEvent>,
}

async fn raw_subscribe(ch: &Channel, first: Vec<u8>) -> Result<RawSub, Status> {
    let (tx, rx) = mpsc::channel(64);
    tx.send(first).await.unwrap();
    let mut grpc = tonic::client::Grpc::new(ch.clone());
    within(grpc.ready()).await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
        "/assembly.gateway.v1.InvalidationService/Subscribe",
    );
    let response =
        within(grpc.streaming(tonic::Request::new(ReceiverStream::new(rx)), path, RawCodec))
            .await?;
    Ok(RawSub {
        tx,
        events: response.into_inner(),
    })
}

fn msg(assembly_id: &str, kind: Kind) -> Vec<u8> {
    SubscribeRequest {
        assembly_id: assembly_id.into(),
        kind: Some(kind),
    }
    .encode_to_vec()
}

fn ack(assembly_id: &str, seq: u64) -> Vec<u8> {
    msg(assembly_id, Kind::Ack(SubscribeAck { seq }))
}

/// Unknown fields of every wire type, a group with a nested field included.
fn unknown_fields() -> Vec<u8> {
    vec![
        0x48, 0xac, 0x02, // field 9, varint 300
        0x51, 1, 2, 3, 4, 5, 6, 7, 8, // field 10, fixed64
        0x5d, 1, 2, 3, 4, // field 11, fixed32
        0x62, 2, 0xff, 0xfe, // field 12, 2 bytes
        0x6b, 0x08, 0x07, 0x6c, // field 13, a group holding field 1 = 7
    ]
}

#[tokio::test]
async fn unknown_fields_are_skipped_and_only_this_subscribers_acks_count() {
    let gw = start(Gateway::builder()).await;
    let admin = gw.admin();
    let ch = channel(&gw).await;
    let mut first = unknown_fields();
    first.extend(msg(
        "asm-wire",
        Kind::Initial(SubscribeInitial { last_seq_seen: 0 }),
    ));
    let mut sub = raw_subscribe(&ch, first).await.unwrap();
    for v in 1..=4 {
        admin.publish_invalidation("agent-a", v, None);
    }
    for seq in 1..=4 {
        let ev = within(sub.events.message()).await.unwrap().unwrap();
        assert_eq!((ev.seq, ev.payload), (seq, invalidated("agent-a", seq)));
    }
    // Another subscriber's ack is ignored.
    sub.tx.send(ack("someone-else", 4)).await.unwrap();
    // An ack without an id is this stream's.
    sub.tx.send(ack("", 1)).await.unwrap();
    // Unknown fields before and inside the ack.
    let mut with_unknown = unknown_fields();
    with_unknown.extend(ack("asm-wire", 0));
    with_unknown.extend([0x1a, 4, 0x18, 0x01, 0x08, 0x02]); // ack { field 3 = 1, seq = 2 }
    sub.tx.send(with_unknown).await.unwrap();
    eventually(|| admin.list_subscribers(None)[0].acked_seq == 2).await;
    let info = &admin.list_subscribers(None)[0];
    assert_eq!((info.acks_received, info.ring_len, info.lag), (2, 2, 2));
    // And the foreign ack of 4 was not applied after all.
    sub.tx.send(ack("asm-wire", 3)).await.unwrap();
    eventually(|| admin.list_subscribers(None)[0].acked_seq == 3).await;
    assert_eq!(admin.list_subscribers(None)[0].ring_len, 1);
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_malformed_ack_ends_the_stream_with_the_prost_codecs_status() {
    let malformed: [&[u8]; 5] = [
        &[0x1a, 0x05, 0x08],       // ack longer than the message
        &[0x1a, 0x02, 0x09, 0x01], // ack's seq with the wrong wire type
        &[0x0a, 0x02, 0xc3, 0x28], // assembly_id not UTF-8
        &[0x0c],                   // end of a group never opened
        &[
            0x48, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
        ], // varint too long
    ];
    let gw = start(Gateway::builder()).await;
    let admin = gw.admin();
    let ch = channel(&gw).await;
    for (i, bad) in malformed.iter().enumerate() {
        let id = format!("asm-bad-{i}");
        let mut sub = raw_subscribe(
            &ch,
            msg(&id, Kind::Initial(SubscribeInitial { last_seq_seen: 0 })),
        )
        .await
        .unwrap();
        admin.publish_invalidation("", 1, None);
        let ev = within(sub.events.message()).await.unwrap().unwrap();
        assert_eq!(ev.seq, 1);
        sub.tx.send(bad.to_vec()).await.unwrap();
        let end = within(sub.events.message()).await;
        let status = end.expect_err("the stream ends with an error");
        // What tonic's prost codec gives for a message that does not decode.
        assert_eq!(status.code(), Code::Internal, "{bad:02x?}: {status:?}");
        assert!(
            status
                .message()
                .contains("failed to decode Protobuf message"),
            "{status:?}"
        );
        eventually(|| {
            admin
                .list_subscribers(None)
                .iter()
                .any(|s| s.assembly_id == id && !s.connected)
        })
        .await;
    }
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_malformed_first_message_is_refused_with_the_prost_codecs_status() {
    let gw = start(Gateway::builder()).await;
    let ch = channel(&gw).await;
    for bad in [vec![0x12, 0x05, 0x08], vec![0x0a, 0x01, 0xff], vec![0x07]] {
        let status = match raw_subscribe(&ch, bad.clone()).await {
            Err(status) => status,
            Ok(mut sub) => within(sub.events.message()).await.expect_err("refused"),
        };
        assert_eq!(status.code(), Code::Internal, "{bad:02x?}: {status:?}");
        assert!(
            status
                .message()
                .contains("failed to decode Protobuf message"),
            "{status:?}"
        );
    }
    assert!(gw.admin().list_subscribers(None).is_empty());
    gw.shutdown().await.unwrap();
}
