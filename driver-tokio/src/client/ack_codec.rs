//! [`SubscribeCodec`]: the invalidation stream's gRPC codec on the client.
//! Events are decoded as prost decodes them; the outgoing acks are written
//! straight from their sequence number.
//!
//! Guarantees: the bytes of every outgoing message are exactly prost's
//! encoding of the `SubscribeRequest` it stands for (the same assembly id on
//! every message, as the generated client sent it), so the gateway sees no
//! difference; an ack costs no allocation (no `SubscribeRequest`, no copy of
//! the assembly id): its fixed prefix is encoded once per stream.

use bytes::BufMut;
use prost::Message;
use tether_proto::gateway::{InvalidationEvent, SubscribeAck, SubscribeRequest};
use tonic::codec::{BufferSettings, Codec, EncodeBuf, Encoder};
use tonic::Status;

/// `/package.Service/Method` of the call this codec is for.
pub(crate) const SUBSCRIBE_PATH: &str = "/assembly.gateway.v1.InvalidationService/Subscribe";
/// The service, as tonic names it in the call's `GrpcMethod` extension.
pub(crate) const SERVICE: &str = tether_proto::gateway::invalidation_service_server::SERVICE_NAME;

/// Field 3 (`ack`) of `SubscribeRequest`, length-delimited: `(3 << 3) | 2`.
const ACK_FIELD_KEY: u8 = 0x1a;

/// One message of the client's side of the stream.
pub(crate) enum Outgoing {
    /// The first message: who subscribes, from which sequence.
    Subscribe(SubscribeRequest),
    /// The ack of one applied event.
    Ack(u64),
}

/// Encodes [`Outgoing`], decodes [`InvalidationEvent`].
#[derive(Clone)]
pub(crate) struct SubscribeCodec {
    /// `SubscribeRequest { assembly_id, kind: None }` encoded, then the key
    /// of the `ack` field.
    ack_prefix: bytes::Bytes,
}

impl SubscribeCodec {
    /// A codec whose acks carry `assembly_id`.
    pub(crate) fn new(assembly_id: &str) -> Self {
        let mut prefix = SubscribeRequest {
            assembly_id: assembly_id.to_owned(),
            kind: None,
        }
        .encode_to_vec();
        prefix.push(ACK_FIELD_KEY);
        SubscribeCodec {
            ack_prefix: prefix.into(),
        }
    }

    fn write_ack(&self, seq: u64, buf: &mut impl BufMut) {
        buf.put_slice(&self.ack_prefix);
        // The nested `SubscribeAck`, with its length first, exactly as prost
        // writes a message field.
        let _ = SubscribeAck { seq }.encode_length_delimited(buf);
    }
}

/// The encoding half of [`SubscribeCodec`].
pub(crate) struct OutgoingEncoder(SubscribeCodec);

impl Encoder for OutgoingEncoder {
    type Item = Outgoing;
    type Error = Status;

    fn encode(&mut self, item: Outgoing, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        match item {
            Outgoing::Subscribe(m) => m
                .encode(buf)
                .map_err(|e| Status::internal(format!("encoding the subscribe message: {e}"))),
            Outgoing::Ack(seq) => {
                self.0.write_ack(seq, buf);
                Ok(())
            }
        }
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

impl Codec for SubscribeCodec {
    type Encode = Outgoing;
    type Decode = InvalidationEvent;
    type Encoder = OutgoingEncoder;
    type Decoder = tonic_prost::ProstDecoder<InvalidationEvent>;

    fn encoder(&mut self) -> OutgoingEncoder {
        OutgoingEncoder(self.clone())
    }

    fn decoder(&mut self) -> Self::Decoder {
        tonic_prost::ProstDecoder::new(BufferSettings::default())
    }
}

/// What prost writes for the ack of `seq` from `assembly_id` (tests).
#[cfg(test)]
fn prost_ack(assembly_id: &str, seq: u64) -> Vec<u8> {
    SubscribeRequest {
        assembly_id: assembly_id.to_owned(),
        kind: Some(tether_proto::gateway::subscribe_request::Kind::Ack(
            SubscribeAck { seq },
        )),
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use tether_proto::gateway::subscribe_request;

    use super::*;

    #[test]
    fn an_ack_is_byte_for_byte_what_prost_writes() {
        for id in ["", "runtime-1", &"x".repeat(300)] {
            let codec = SubscribeCodec::new(id);
            for seq in [0, 1, 127, 128, 300, 1 << 35, u64::MAX] {
                let mut ours = Vec::new();
                codec.write_ack(seq, &mut ours);
                assert_eq!(ours, prost_ack(id, seq), "id {:?}, seq {seq}", id.len());
                let back = SubscribeRequest::decode(&ours[..]).expect("decodes");
                assert_eq!(back.assembly_id, id);
                assert_eq!(
                    back.kind,
                    Some(subscribe_request::Kind::Ack(SubscribeAck { seq }))
                );
            }
        }
    }

    #[test]
    fn the_path_names_the_generated_service() {
        assert_eq!(SUBSCRIBE_PATH, format!("/{SERVICE}/Subscribe"));
    }
}
