//! Fuzz protobuf decoding: arbitrary bytes decoded as each top-level message
//! of the wire protocol must never panic, and whatever decodes must survive
//! an encode/decode round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use tether_proto::{admin, approval, common, gateway, policy};

/// Decodes `data` as `M`; if it decodes, re-encodes it and checks that the
/// re-encoding decodes to the same message and is stable.
fn check<M: Message + Default + PartialEq + core::fmt::Debug>(data: &[u8]) {
    let Ok(msg) = M::decode(data) else {
        return;
    };
    let bytes = msg.encode_to_vec();
    assert_eq!(bytes.len(), msg.encoded_len());
    let again = M::decode(bytes.as_slice()).expect("re-encoded message decodes");
    assert_eq!(again, msg);
    assert_eq!(again.encode_to_vec(), bytes);
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the message type, so the fuzzer can steer each
    // decoder separately; the rest is the encoded message.
    let Some((&which, data)) = data.split_first() else {
        return;
    };
    match which % 24 {
        0 => check::<common::AgentId>(data),
        1 => check::<gateway::SubscribeRequest>(data),
        2 => check::<gateway::InvalidationEvent>(data),
        3 => check::<gateway::PolicyInvalidated>(data),
        4 => check::<gateway::ApprovalResolved>(data),
        5 => check::<policy::CheckActionRequest>(data),
        6 => check::<policy::CheckActionResponse>(data),
        7 => check::<policy::BatchCheckRequest>(data),
        8 => check::<policy::BatchCheckResponse>(data),
        9 => check::<policy::OpControlSubscribeRequest>(data),
        10 => check::<policy::OpControlMessage>(data),
        11 => check::<policy::ActionContext>(data),
        12 => check::<approval::ListPendingResponse>(data),
        13 => check::<approval::DecideRequest>(data),
        14 => check::<approval::DecideResponse>(data),
        15 => check::<approval::ApprovalEvent>(data),
        16 => check::<admin::PublishInvalidationRequest>(data),
        17 => check::<admin::PublishApprovalResolvedRequest>(data),
        18 => check::<admin::PauseOpRequest>(data),
        19 => check::<admin::HaltRequest>(data),
        20 => check::<admin::ListSubscribersResponse>(data),
        21 => check::<admin::StatusResponse>(data),
        22 => check::<gateway::SubscribeAck>(data),
        _ => check::<approval::PendingApproval>(data),
    }
});
