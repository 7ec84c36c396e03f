//! [`SubscribeServerCodec`]: the gateway's gRPC codec for
//! `InvalidationService/Subscribe`.
//!
//! Incoming `SubscribeRequest`s are read in place by a hand-written decoder
//! ([`parse_request`]) instead of prost's generated one, so an ack costs no
//! allocation: after the first message of a stream (whose `assembly_id` is
//! copied out once) a later message's id is only compared, byte for byte,
//! with the first one's. Outgoing events are [`OutEvent`]s: a sequence
//! number and the payload already encoded once at publish
//! ([`EncodedPayload`]), shared by every subscriber and replay ring that
//! holds it.
//!
//! Guarantees:
//! - a message decodes exactly as prost decodes `SubscribeRequest`: the same
//!   bytes are accepted (unknown fields of every wire type skipped, groups
//!   included, with prost's recursion limit), the same values result (the
//!   last occurrence of a field wins, a repeated oneof member merges into
//!   the one already set), and every input prost refuses is refused;
//! - a refused message is a `Status` with `INVALID_ARGUMENT`, never a panic;
//! - an outgoing event's bytes are exactly prost's encoding of
//!   `InvalidationEvent { seq, payload }`.

use std::sync::Arc;

use bytes::{Buf, BufMut};
use tether_proto::gateway::invalidation_event::Payload;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Status;

/// Prost's recursion limit for nested messages and groups.
const RECURSION_LIMIT: u32 = 100;

/// Wire types of the protobuf encoding.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const FIXED32: u8 = 5;

/// An `InvalidationEvent`'s `payload` oneof, encoded once (field key,
/// length and message, exactly as prost writes it) and shared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EncodedPayload(Arc<[u8]>);

impl EncodedPayload {
    /// Encode `payload` (one allocation for payloads up to 128 bytes).
    pub(crate) fn new(payload: &Payload) -> Self {
        EncodedPayload(shared_bytes(payload.encoded_len(), |mut out| {
            payload.encode(&mut out)
        }))
    }

    /// `PolicyInvalidated { agent_id, policy_version }` encoded, the same
    /// bytes as [`EncodedPayload::new`] of it, without building the message.
    pub(crate) fn policy_invalidated(agent_id: &str, policy_version: u64) -> Self {
        let id_len = if agent_id.is_empty() {
            0
        } else {
            1 + varint_len(agent_id.len() as u64) + agent_id.len()
        };
        let version_len = if policy_version == 0 {
            0
        } else {
            1 + varint_len(policy_version)
        };
        let body = id_len + version_len;
        let len = 1 + varint_len(body as u64) + body;
        EncodedPayload(shared_bytes(len, |mut out| {
            out.put_u8(0x12); // field 2 (`policy_invalidated`), length-delimited
            put_varint(body as u64, &mut out);
            if !agent_id.is_empty() {
                out.put_u8(0x0a); // field 1 (`agent_id`), length-delimited
                put_varint(agent_id.len() as u64, &mut out);
                out.put_slice(agent_id.as_bytes());
            }
            if policy_version != 0 {
                out.put_u8(0x10); // field 2 (`policy_version`), varint
                put_varint(policy_version, &mut out);
            }
        }))
    }

    /// The encoded bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// One event of the response stream: `InvalidationEvent { seq, payload }`.
#[derive(Clone, Debug)]
pub(crate) struct OutEvent {
    pub(crate) seq: u64,
    pub(crate) payload: EncodedPayload,
}

impl OutEvent {
    /// Write the event as prost writes `InvalidationEvent`.
    fn write(&self, buf: &mut impl BufMut) {
        if self.seq != 0 {
            buf.put_u8(0x08); // field 1, varint
            put_varint(self.seq, buf);
        }
        buf.put_slice(self.payload.as_bytes());
    }
}

/// `len` bytes written by `fill` (which must write exactly `len`), in one
/// allocation when `len` is small.
fn shared_bytes(len: usize, fill: impl FnOnce(&mut [u8])) -> Arc<[u8]> {
    let mut stack = [0u8; 128];
    if len <= stack.len() {
        fill(&mut stack[..len]);
        Arc::from(&stack[..len])
    } else {
        let mut heap = vec![0; len];
        fill(&mut heap);
        Arc::from(heap)
    }
}

fn varint_len(v: u64) -> usize {
    // One byte per started 7 bits, at least one.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn put_varint(mut v: u64, buf: &mut impl BufMut) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// The `kind` oneof of a `SubscribeRequest`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RequestKind {
    /// No `kind`.
    None,
    /// `initial { last_seq_seen }`.
    Initial(u64),
    /// `ack { seq }`.
    Ack(u64),
}

/// How a later message's `assembly_id` compares with the stream's first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IdMatch {
    /// The same id.
    Same,
    /// No id (empty).
    Empty,
    /// Another, non-empty id.
    Other,
}

/// One decoded client message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// The stream's first message, its id copied out.
    First {
        assembly_id: String,
        kind: RequestKind,
    },
    /// A later message: its id compared with the first's, not copied.
    Later { id: IdMatch, kind: RequestKind },
}

/// A `SubscribeRequest` read in place.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ParsedRequest<'a> {
    /// `assembly_id` (valid UTF-8, checked).
    pub(crate) assembly_id: &'a str,
    pub(crate) kind: RequestKind,
}

/// Why a message was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Malformed(&'static str);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// A cursor over a message's bytes.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, Malformed> {
        let mut value = 0u64;
        for (i, &b) in self.bytes.iter().take(10).enumerate() {
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                if i == 9 && b >= 2 {
                    break;
                }
                self.bytes = &self.bytes[i + 1..];
                return Ok(value);
            }
        }
        Err(Malformed("invalid varint"))
    }

    fn key(&mut self) -> Result<(u32, u8), Malformed> {
        let key = self.varint()?;
        let key = u32::try_from(key).map_err(|_| Malformed("invalid key value"))?;
        let wire = (key & 7) as u8;
        if wire > FIXED32 {
            return Err(Malformed("invalid wire type value"));
        }
        let tag = key >> 3;
        if tag == 0 {
            return Err(Malformed("invalid tag value: 0"));
        }
        Ok((tag, wire))
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], Malformed> {
        if len > self.bytes.len() as u64 {
            return Err(Malformed("buffer underflow"));
        }
        let (head, tail) = self.bytes.split_at(len as usize);
        self.bytes = tail;
        Ok(head)
    }

    fn len_delimited(&mut self) -> Result<&'a [u8], Malformed> {
        let len = self.varint()?;
        self.take(len)
    }

    /// Skip one field of an unknown tag, as prost's `skip_field`.
    fn skip(&mut self, tag: u32, wire: u8, depth: u32) -> Result<(), Malformed> {
        if depth == 0 {
            return Err(Malformed("recursion limit reached"));
        }
        match wire {
            VARINT => {
                self.varint()?;
            }
            FIXED64 => {
                self.take(8)?;
            }
            FIXED32 => {
                self.take(4)?;
            }
            LEN => {
                self.len_delimited()?;
            }
            START_GROUP => loop {
                let (inner_tag, inner_wire) = self.key()?;
                if inner_wire == END_GROUP {
                    if inner_tag != tag {
                        return Err(Malformed("unexpected end group tag"));
                    }
                    break;
                }
                self.skip(inner_tag, inner_wire, depth - 1)?;
            },
            _ => return Err(Malformed("unexpected end group tag")),
        }
        Ok(())
    }
}

fn check_wire(wire: u8, expected: u8) -> Result<(), Malformed> {
    if wire == expected {
        Ok(())
    } else {
        Err(Malformed("invalid wire type"))
    }
}

/// Merge a `SubscribeInitial` or `SubscribeAck` (one `uint64` in field 1)
/// into `value`, as prost's `message::merge` at recursion budget `depth`.
fn merge_u64_message(
    r: &mut Reader<'_>,
    wire: u8,
    value: &mut u64,
    depth: u32,
) -> Result<(), Malformed> {
    check_wire(wire, LEN)?;
    if depth == 0 {
        return Err(Malformed("recursion limit reached"));
    }
    let mut inner = Reader {
        bytes: r.len_delimited()?,
    };
    while !inner.bytes.is_empty() {
        let (tag, wire) = inner.key()?;
        if tag == 1 {
            check_wire(wire, VARINT)?;
            *value = inner.varint()?;
        } else {
            inner.skip(tag, wire, depth - 1)?;
        }
    }
    Ok(())
}

const NOT_UTF8: Malformed = Malformed("invalid string value: data is not UTF-8 encoded");

/// Read a `SubscribeRequest` from `bytes` as prost's `decode` would, except
/// that the UTF-8 check of the `assembly_id` it returns (the last
/// occurrence) is left to the caller; earlier occurrences are checked here.
fn parse_raw(bytes: &[u8]) -> Result<(&[u8], RequestKind), Malformed> {
    let mut r = Reader { bytes };
    let mut id: Option<&[u8]> = None;
    let mut kind = RequestKind::None;
    while !r.bytes.is_empty() {
        let (tag, wire) = r.key()?;
        match tag {
            1 => {
                check_wire(wire, LEN)?;
                let value = r.len_delimited()?;
                // Prost checks every occurrence as it reads it.
                if let Some(earlier) = id.replace(value) {
                    std::str::from_utf8(earlier).map_err(|_| NOT_UTF8)?;
                }
            }
            2 => {
                let mut v = match kind {
                    RequestKind::Initial(v) => v,
                    _ => 0,
                };
                merge_u64_message(&mut r, wire, &mut v, RECURSION_LIMIT)?;
                kind = RequestKind::Initial(v);
            }
            3 => {
                let mut v = match kind {
                    RequestKind::Ack(v) => v,
                    _ => 0,
                };
                merge_u64_message(&mut r, wire, &mut v, RECURSION_LIMIT)?;
                kind = RequestKind::Ack(v);
            }
            _ => r.skip(tag, wire, RECURSION_LIMIT)?,
        }
    }
    Ok((id.unwrap_or_default(), kind))
}

/// Read a `SubscribeRequest` from `bytes` as prost's `decode` would.
pub(crate) fn parse_request(bytes: &[u8]) -> Result<ParsedRequest<'_>, Malformed> {
    let (id, kind) = parse_raw(bytes)?;
    let assembly_id = std::str::from_utf8(id).map_err(|_| NOT_UTF8)?;
    Ok(ParsedRequest { assembly_id, kind })
}

/// Decodes [`Incoming`]; keeps the first message's id to compare later
/// ones with. One per stream.
#[derive(Debug, Default)]
pub(crate) struct RequestDecoder {
    first_id: Option<Box<[u8]>>,
    /// Reused when a message arrives in more than one chunk.
    scratch: Vec<u8>,
}

impl RequestDecoder {
    fn decode_bytes(&mut self, bytes: &[u8]) -> Result<Incoming, Malformed> {
        let Some(first) = &self.first_id else {
            let parsed = parse_request(bytes)?;
            self.first_id = Some(parsed.assembly_id.as_bytes().into());
            return Ok(Incoming::First {
                assembly_id: parsed.assembly_id.to_owned(),
                kind: parsed.kind,
            });
        };
        let (id, kind) = parse_raw(bytes)?;
        let id = if id.is_empty() {
            IdMatch::Empty
        } else if id == &first[..] {
            // The first id was checked: no UTF-8 check needed.
            IdMatch::Same
        } else {
            std::str::from_utf8(id).map_err(|_| NOT_UTF8)?;
            IdMatch::Other
        };
        Ok(Incoming::Later { id, kind })
    }
}

impl Decoder for RequestDecoder {
    type Item = Incoming;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Incoming>, Status> {
        let len = src.remaining();
        let result = if src.chunk().len() >= len {
            let r = self.decode_bytes(&src.chunk()[..len]);
            src.advance(len);
            r
        } else {
            let mut scratch = std::mem::take(&mut self.scratch);
            scratch.clear();
            while src.has_remaining() {
                let chunk = src.chunk();
                scratch.extend_from_slice(chunk);
                let n = chunk.len();
                src.advance(n);
            }
            let r = self.decode_bytes(&scratch);
            self.scratch = scratch;
            r
        };
        result
            .map(Some)
            .map_err(|e| Status::invalid_argument(format!("malformed SubscribeRequest: {e}")))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

/// Encodes [`OutEvent`].
#[derive(Debug, Default)]
pub(crate) struct EventEncoder;

impl Encoder for EventEncoder {
    type Item = OutEvent;
    type Error = Status;

    fn encode(&mut self, item: OutEvent, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.write(buf);
        Ok(())
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

/// The server codec of `Subscribe`: decodes [`Incoming`], encodes
/// [`OutEvent`].
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SubscribeServerCodec;

impl Codec for SubscribeServerCodec {
    type Encode = OutEvent;
    type Decode = Incoming;
    type Encoder = EventEncoder;
    type Decoder = RequestDecoder;

    fn encoder(&mut self) -> EventEncoder {
        EventEncoder
    }

    fn decoder(&mut self) -> RequestDecoder {
        RequestDecoder::default()
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use tether_proto::gateway::invalidation_event::Payload;
    use tether_proto::gateway::subscribe_request::Kind;
    use tether_proto::gateway::{
        ApprovalResolved, InvalidationEvent, PolicyInvalidated, SubscribeAck, SubscribeInitial,
        SubscribeRequest,
    };

    use super::*;

    /// What prost makes of `bytes`, in [`ParsedRequest`]'s terms.
    fn prost_view(bytes: &[u8]) -> Option<(String, RequestKind)> {
        let m = SubscribeRequest::decode(bytes).ok()?;
        let kind = match m.kind {
            None => RequestKind::None,
            Some(Kind::Initial(i)) => RequestKind::Initial(i.last_seq_seen),
            Some(Kind::Ack(a)) => RequestKind::Ack(a.seq),
        };
        Some((m.assembly_id, kind))
    }

    fn ours(bytes: &[u8]) -> Option<(String, RequestKind)> {
        parse_request(bytes)
            .ok()
            .map(|p| (p.assembly_id.to_owned(), p.kind))
    }

    /// `parse_request` agrees with prost, and so does a decoder past its
    /// first message (which skips the UTF-8 check of an id it knows).
    fn agree(bytes: &[u8]) {
        let theirs = prost_view(bytes);
        assert_eq!(ours(bytes), theirs, "input {bytes:02x?}");
        let mut later = RequestDecoder {
            first_id: Some(b"runtime-1"[..].into()),
            scratch: Vec::new(),
        };
        let got = later.decode_bytes(bytes).ok();
        let expected = theirs.map(|(id, kind)| Incoming::Later {
            id: match id.as_str() {
                "" => IdMatch::Empty,
                "runtime-1" => IdMatch::Same,
                _ => IdMatch::Other,
            },
            kind,
        });
        assert_eq!(got, expected, "input {bytes:02x?}");
    }

    /// A small deterministic generator (xorshift64*).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn varint(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(v, &mut out);
        out
    }

    fn key(tag: u64, wire: u64) -> Vec<u8> {
        varint((tag << 3) | wire)
    }

    /// A random field: known or unknown tag, any wire type, sometimes with
    /// a body of the wrong shape.
    fn random_field(rng: &mut Rng, depth: u32, out: &mut Vec<u8>) {
        let tag = match rng.below(6) {
            0 => 1,
            1 => 2,
            2 => 3,
            3 => 1 + rng.below(20),
            4 => rng.below(1 << 29),
            _ => rng.below(1 << 32) >> rng.below(32),
        };
        let wire = match rng.below(8) {
            0..=2 => 2,
            3 | 4 => 0,
            5 => 3,
            _ => rng.below(8),
        };
        out.extend(key(tag, wire));
        match wire {
            0 => out.extend(varint(rng.next() >> rng.below(64))),
            1 => out.extend(rng.next().to_le_bytes()),
            5 => out.extend(&rng.next().to_le_bytes()[..4]),
            2 => {
                let mut body = Vec::new();
                match rng.below(4) {
                    0 => body.extend(b"runtime-1"),
                    1 if depth > 0 => {
                        for _ in 0..rng.below(3) {
                            random_field(rng, depth - 1, &mut body);
                        }
                    }
                    2 => {
                        body.extend(key(1, 0));
                        body.extend(varint(rng.next() >> rng.below(64)));
                    }
                    _ => body.extend((0..rng.below(6)).map(|_| rng.next() as u8)),
                }
                out.extend(varint(body.len() as u64));
                out.extend(body);
            }
            3 => {
                if depth > 0 {
                    for _ in 0..rng.below(3) {
                        random_field(rng, depth - 1, out);
                    }
                }
                if rng.below(8) != 0 {
                    out.extend(key(tag, 4));
                }
            }
            _ => {}
        }
    }

    #[test]
    fn every_well_formed_request_reads_as_prost_reads_it() {
        let long = "x".repeat(300);
        for id in ["", "runtime-1", "é∂", long.as_str()] {
            for kind in [
                None,
                Some(Kind::Initial(SubscribeInitial { last_seq_seen: 0 })),
                Some(Kind::Initial(SubscribeInitial {
                    last_seq_seen: 5000,
                })),
                Some(Kind::Ack(SubscribeAck { seq: 1 })),
                Some(Kind::Ack(SubscribeAck { seq: u64::MAX })),
            ] {
                let bytes = SubscribeRequest {
                    assembly_id: id.to_owned(),
                    kind,
                }
                .encode_to_vec();
                agree(&bytes);
                assert!(ours(&bytes).is_some());
            }
        }
    }

    #[test]
    fn unknown_fields_repeats_and_malformed_input_match_prost() {
        let mut cases: Vec<Vec<u8>> = vec![
            vec![],
            // Unknown fields of every wire type around an ack.
            [
                key(9, 0),
                varint(300),
                key(10, 1),
                vec![0; 8],
                key(11, 5),
                vec![0; 4],
                key(12, 2),
                vec![2, 0xff, 0xfe],
                key(13, 3),
                key(1, 0),
                varint(7),
                key(13, 4),
                key(3, 2),
                vec![2, 0x08, 0x05],
            ]
            .concat(),
            // A later occurrence wins; a repeated member merges.
            [
                key(1, 2),
                vec![1, b'a'],
                key(1, 2),
                vec![1, b'b'],
                key(3, 2),
                vec![2, 0x08, 0x05],
                key(3, 2),
                vec![0],
            ]
            .concat(),
            // Ack then initial: the last member wins, fresh.
            [key(3, 2), vec![2, 0x08, 0x05], key(2, 2), vec![0]].concat(),
            // Unknown fields inside the nested message.
            [key(3, 2), vec![4, 0x10, 0x01, 0x08, 0x09]].concat(),
            // Wrong wire types for known fields.
            [key(1, 0), vec![1]].concat(),
            [key(3, 0), vec![1]].concat(),
            [key(3, 2), vec![2, 0x09, 0x05]].concat(),
            // Not UTF-8.
            [key(1, 2), vec![2, 0xc3, 0x28]].concat(),
            // Truncations, over-long lengths, bad keys.
            [key(1, 2), vec![5, b'a']].concat(),
            [key(3, 2), vec![1, 0x08]].concat(),
            [key(3, 2), vec![1, 0x08, 0x05]].concat(),
            vec![0x00],
            vec![0x07],
            vec![0x06],
            key(3, 4),
            key(9, 3),
            [key(9, 3), key(8, 4)].concat(),
            vec![0x80],
            vec![0xff; 10],
            [key(9, 0), vec![0xff; 9], vec![0x01]].concat(),
            [key(9, 0), vec![0xff; 9], vec![0x02]].concat(),
            vec![0x80, 0x80, 0x80, 0x80, 0x10],
            [vec![0x80, 0x80, 0x80, 0x80, 0x0f]].concat(),
        ];
        // Nested groups at and around the recursion limit, top level and
        // inside the ack.
        for depth in [98usize, 99, 100, 101] {
            let open: Vec<u8> = (0..depth).flat_map(|_| key(9, 3)).collect();
            let close: Vec<u8> = (0..depth).flat_map(|_| key(9, 4)).collect();
            let groups = [open, close].concat();
            cases.push(groups.clone());
            let mut nested = [key(3, 2), varint(groups.len() as u64)].concat();
            nested.extend(&groups);
            cases.push(nested);
        }
        for case in &cases {
            agree(case);
        }
    }

    #[test]
    fn random_and_mutated_inputs_match_prost() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut accepted = 0;
        for i in 0..200_000 {
            let mut bytes = Vec::new();
            match i % 4 {
                0 => bytes.extend((0..rng.below(24)).map(|_| rng.next() as u8)),
                1 | 2 => {
                    for _ in 0..rng.below(5) {
                        random_field(&mut rng, 3, &mut bytes);
                    }
                }
                _ => {
                    bytes = SubscribeRequest {
                        assembly_id: "runtime-1".into(),
                        kind: Some(Kind::Ack(SubscribeAck { seq: rng.next() })),
                    }
                    .encode_to_vec();
                    let at = rng.below(bytes.len() as u64) as usize;
                    match rng.below(3) {
                        0 => bytes[at] = rng.next() as u8,
                        1 => bytes.truncate(at),
                        _ => bytes.insert(at, rng.next() as u8),
                    }
                }
            }
            agree(&bytes);
            accepted += usize::from(ours(&bytes).is_some());
        }
        assert!(accepted > 20_000, "only {accepted} inputs were well formed");
    }

    #[test]
    fn later_messages_compare_their_id_without_copying_it() {
        let mut d = RequestDecoder::default();
        let msg = |id: &str, kind| {
            SubscribeRequest {
                assembly_id: id.to_owned(),
                kind,
            }
            .encode_to_vec()
        };
        let first = msg(
            "rt",
            Some(Kind::Initial(SubscribeInitial { last_seq_seen: 3 })),
        );
        assert_eq!(
            d.decode_bytes(&first),
            Ok(Incoming::First {
                assembly_id: "rt".into(),
                kind: RequestKind::Initial(3)
            })
        );
        let ack = |seq| Some(Kind::Ack(SubscribeAck { seq }));
        for (id, expected) in [
            ("rt", IdMatch::Same),
            ("", IdMatch::Empty),
            ("rt2", IdMatch::Other),
            ("r", IdMatch::Other),
        ] {
            assert_eq!(
                d.decode_bytes(&msg(id, ack(4))),
                Ok(Incoming::Later {
                    id: expected,
                    kind: RequestKind::Ack(4)
                })
            );
        }
        assert!(d.decode_bytes(&[0x1a, 0x05]).is_err());
    }

    #[test]
    fn an_event_is_byte_for_byte_what_prost_writes() {
        let long = "a".repeat(400);
        let payloads = [
            Payload::PolicyInvalidated(PolicyInvalidated {
                agent_id: String::new(),
                policy_version: 0,
            }),
            Payload::PolicyInvalidated(PolicyInvalidated {
                agent_id: "agent-1".into(),
                policy_version: 300_000,
            }),
            Payload::PolicyInvalidated(PolicyInvalidated {
                agent_id: long.clone(),
                policy_version: u64::MAX,
            }),
            Payload::ApprovalResolved(ApprovalResolved {
                request_id: "req-9".into(),
                decision: 2,
            }),
            Payload::ApprovalResolved(ApprovalResolved {
                request_id: long,
                decision: -1,
            }),
        ];
        for payload in payloads {
            let encoded = EncodedPayload::new(&payload);
            if let Payload::PolicyInvalidated(p) = &payload {
                assert_eq!(
                    EncodedPayload::policy_invalidated(&p.agent_id, p.policy_version),
                    encoded
                );
            }
            for seq in [0, 1, 127, 128, 1 << 40, u64::MAX] {
                let mut ours = Vec::new();
                OutEvent {
                    seq,
                    payload: encoded.clone(),
                }
                .write(&mut ours);
                let event = InvalidationEvent {
                    seq,
                    payload: Some(payload.clone()),
                };
                assert_eq!(ours, event.encode_to_vec(), "seq {seq}");
            }
        }
    }

    #[test]
    fn a_policy_invalidation_is_written_as_prost_writes_it() {
        for id_len in [0, 1, 5, 100, 126, 127, 128, 200, 20_000] {
            let agent_id = "é".repeat(id_len / 2) + &"a".repeat(id_len % 2);
            for version in [0, 1, 127, 128, 16_383, 16_384, 1 << 35, u64::MAX] {
                let payload = Payload::PolicyInvalidated(PolicyInvalidated {
                    agent_id: agent_id.clone(),
                    policy_version: version,
                });
                assert_eq!(
                    EncodedPayload::policy_invalidated(&agent_id, version).as_bytes(),
                    &{
                        let mut v = Vec::new();
                        payload.encode(&mut v);
                        v
                    }[..],
                    "id of {id_len} bytes, version {version}"
                );
            }
        }
        for v in [0, 1, 127, 128, 300, u64::MAX >> 1, u64::MAX] {
            assert_eq!(varint_len(v), varint(v).len(), "{v}");
        }
    }
}
