//! Wire tests: every message of WIRE.md is encoded and compared with bytes
//! written out by hand, so a wrong field number, wire type or scalar type
//! fails here. Each expected byte string is also decoded back and compared
//! with the message (round trip).
//!
//! Tag byte = (field_number << 3) | wire_type, with wire type 0 = varint and
//! 2 = length-delimited: field 1 varint = 0x08, field 1 LEN = 0x0A, field 2
//! varint = 0x10, field 2 LEN = 0x12, ... field 6 varint = 0x30, field 7 LEN
//! = 0x3A, field 8 LEN = 0x42. A LEN field is followed by its byte length.
//! ASCII used below: 'a' 0x61, 'c' 0x63, 'e' 0x65, 'g' 0x67, 'k' 0x6B,
//! 'm' 0x6D, 'n' 0x6E, 'o' 0x6F, 'p' 0x70, 'r' 0x72, 's' 0x73, 't' 0x74,
//! 'u' 0x75, 'x' 0x78, '1' 0x31, '2' 0x32, ':' 0x3A, '{' 0x7B, '}' 0x7D.

use core::fmt::Debug;

use prost::Message;
use tether_proto::assembly::approval::v1 as approval;
use tether_proto::assembly::common::v1 as common;
use tether_proto::assembly::gateway::v1 as gateway;
use tether_proto::assembly::policy::v1 as policy;
use tether_proto::tether::admin::v1 as admin;

use gateway::invalidation_event::Payload;
use gateway::subscribe_request::Kind;
use policy::action_context::Action;

/// Encodes `msg`, compares with `expected`, then decodes `expected` and
/// compares with `msg`.
#[track_caller]
fn wire<M: Message + Default + PartialEq + Debug>(msg: &M, expected: &[u8]) {
    let encoded = msg.encode_to_vec();
    assert_eq!(
        encoded, expected,
        "encoding of {msg:?}: got {encoded:02X?}, want {expected:02X?}"
    );
    assert_eq!(msg.encoded_len(), expected.len(), "encoded_len of {msg:?}");
    let decoded = M::decode(expected).expect("hand-written bytes decode");
    assert_eq!(&decoded, msg, "decoding {expected:02X?}");
}

/// `AgentId { org_id: "o", team_id: "t", agent_id: "a" }`.
fn ota() -> common::AgentId {
    common::AgentId {
        org_id: "o".into(),
        team_id: "t".into(),
        agent_id: "a".into(),
    }
}

/// Encoding of [`ota`].
const OTA: &[u8] = &[0x0A, 0x01, 0x6F, 0x12, 0x01, 0x74, 0x1A, 0x01, 0x61];

// ---------------------------------------------------------------------------
// assembly.common.v1

#[test]
fn common_agent_id() {
    wire(&ota(), OTA);
    // Defaults are not written.
    wire(&common::AgentId::default(), &[]);
}

#[test]
fn common_decision_values() {
    use common::Decision as D;
    let all = [
        (D::Unspecified, 0, "DECISION_UNSPECIFIED"),
        (D::Allow, 1, "ALLOW"),
        (D::Deny, 2, "DENY"),
        (D::Pending, 3, "PENDING"),
        (D::Redact, 4, "REDACT"),
    ];
    for (d, n, name) in all {
        assert_eq!(d as i32, n);
        assert_eq!(d.as_str_name(), name);
        assert_eq!(D::from_str_name(name), Some(d));
        assert_eq!(D::try_from(n), Ok(d));
    }
    // On the wire, in CheckActionResponse.decision (field 1, varint).
    for (d, byte) in [
        (D::Allow, 0x01),
        (D::Deny, 0x02),
        (D::Pending, 0x03),
        (D::Redact, 0x04),
    ] {
        let msg = policy::CheckActionResponse {
            decision: d.into(),
            ..Default::default()
        };
        wire(&msg, &[0x08, byte]);
    }
}

#[test]
fn common_action_type_values() {
    use common::ActionType as A;
    let all = [
        (A::ActionUnspecified, 0, "ACTION_UNSPECIFIED"),
        (A::LlmCall, 1, "LLM_CALL"),
        (A::ToolCall, 2, "TOOL_CALL"),
        (A::FileOperation, 3, "FILE_OPERATION"),
        (A::NetworkCall, 4, "NETWORK_CALL"),
        (A::ProcessExec, 5, "PROCESS_EXEC"),
        (A::AgentSpawn, 6, "AGENT_SPAWN"),
        (A::ToolResult, 7, "TOOL_RESULT"),
    ];
    for (a, n, name) in all {
        assert_eq!(a as i32, n);
        assert_eq!(a.as_str_name(), name);
        assert_eq!(A::from_str_name(name), Some(a));
    }
    // On the wire, in CheckActionRequest.action_type (field 5, varint: 0x28).
    let on_wire = [
        (A::LlmCall, 0x01),
        (A::ToolCall, 0x02),
        (A::FileOperation, 0x03),
        (A::NetworkCall, 0x04),
        (A::ProcessExec, 0x05),
        (A::AgentSpawn, 0x06),
        (A::ToolResult, 0x07),
    ];
    for (a, byte) in on_wire {
        let msg = policy::CheckActionRequest {
            action_type: a.into(),
            ..Default::default()
        };
        wire(&msg, &[0x28, byte]);
    }
}

// ---------------------------------------------------------------------------
// assembly.gateway.v1

#[test]
fn gateway_subscribe_request_initial() {
    let msg = gateway::SubscribeRequest {
        assembly_id: "a1".into(),
        kind: Some(Kind::Initial(gateway::SubscribeInitial {
            last_seq_seen: 5,
        })),
    };
    wire(
        &msg,
        &[
            0x0A, 0x02, 0x61, 0x31, // assembly_id = "a1"
            0x12, 0x02, // initial, 2 bytes
            0x08, 0x05, // last_seq_seen = 5
        ],
    );
    // A cold start (last_seq_seen 0) still sends the empty `initial`.
    let cold = gateway::SubscribeRequest {
        assembly_id: "a1".into(),
        kind: Some(Kind::Initial(gateway::SubscribeInitial {
            last_seq_seen: 0,
        })),
    };
    wire(&cold, &[0x0A, 0x02, 0x61, 0x31, 0x12, 0x00]);
}

#[test]
fn gateway_subscribe_request_ack() {
    let msg = gateway::SubscribeRequest {
        assembly_id: "a1".into(),
        kind: Some(Kind::Ack(gateway::SubscribeAck { seq: 300 })),
    };
    wire(
        &msg,
        &[
            0x0A, 0x02, 0x61, 0x31, // assembly_id = "a1"
            0x1A, 0x03, // ack, 3 bytes
            0x08, 0xAC, 0x02, // seq = 300 (varint 0xAC 0x02)
        ],
    );
}

#[test]
fn gateway_subscribe_initial_and_ack() {
    wire(
        &gateway::SubscribeInitial { last_seq_seen: 5 },
        &[0x08, 0x05],
    );
    wire(
        &gateway::SubscribeInitial {
            last_seq_seen: u64::MAX,
        },
        &[
            0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01,
        ],
    );
    wire(&gateway::SubscribeAck { seq: 1 }, &[0x08, 0x01]);
}

#[test]
fn gateway_invalidation_event_policy_invalidated() {
    let msg = gateway::InvalidationEvent {
        seq: 7,
        payload: Some(Payload::PolicyInvalidated(gateway::PolicyInvalidated {
            agent_id: "ag".into(),
            policy_version: 3,
        })),
    };
    wire(
        &msg,
        &[
            0x08, 0x07, // seq = 7
            0x12, 0x06, // policy_invalidated, 6 bytes
            0x0A, 0x02, 0x61, 0x67, // agent_id = "ag"
            0x10, 0x03, // policy_version = 3
        ],
    );
}

#[test]
fn gateway_invalidation_event_approval_resolved() {
    let msg = gateway::InvalidationEvent {
        seq: 7,
        payload: Some(Payload::ApprovalResolved(gateway::ApprovalResolved {
            request_id: "r".into(),
            decision: gateway::Decision::Denied.into(),
        })),
    };
    wire(
        &msg,
        &[
            0x08, 0x07, // seq = 7
            0x1A, 0x05, // approval_resolved, 5 bytes
            0x0A, 0x01, 0x72, // request_id = "r"
            0x10, 0x02, // decision = DENIED
        ],
    );
}

#[test]
fn gateway_policy_invalidated_every_agent() {
    // Empty agent_id (every agent) is simply absent.
    let msg = gateway::PolicyInvalidated {
        agent_id: String::new(),
        policy_version: 9,
    };
    wire(&msg, &[0x10, 0x09]);
}

#[test]
fn gateway_approval_resolved_and_decision_values() {
    use gateway::Decision as D;
    let all = [
        (D::Unspecified, 0, "DECISION_UNSPECIFIED"),
        (D::Approved, 1, "APPROVED"),
        (D::Denied, 2, "DENIED"),
        (D::Pending, 3, "PENDING"),
    ];
    for (d, n, name) in all {
        assert_eq!(d as i32, n);
        assert_eq!(d.as_str_name(), name);
    }
    for (d, byte) in [(D::Approved, 0x01), (D::Denied, 0x02), (D::Pending, 0x03)] {
        let msg = gateway::ApprovalResolved {
            request_id: "r".into(),
            decision: d.into(),
        };
        wire(&msg, &[0x0A, 0x01, 0x72, 0x10, byte]);
    }
}

// ---------------------------------------------------------------------------
// assembly.policy.v1

#[test]
fn policy_check_action_request() {
    let msg = policy::CheckActionRequest {
        agent_id: Some(ota()),
        credential_token: "k".into(),
        trace_id: "tr".into(),
        span_id: "sp".into(),
        action_type: common::ActionType::ToolCall.into(),
        context: Some(policy::ActionContext {
            action: Some(Action::ToolCall(policy::ToolCallContext {
                tool_name: "sh".into(),
                tool_source: "mcp".into(),
                args_json: b"{}".to_vec(),
                target_url: "u".into(),
            })),
        }),
        caller_agent_id: Some(common::AgentId {
            org_id: "o".into(),
            team_id: "t".into(),
            agent_id: "b".into(),
        }),
    };
    wire(
        &msg,
        &[
            0x0A, 0x09, // agent_id, 9 bytes
            0x0A, 0x01, 0x6F, 0x12, 0x01, 0x74, 0x1A, 0x01, 0x61, // o / t / a
            0x12, 0x01, 0x6B, // credential_token = "k"
            0x1A, 0x02, 0x74, 0x72, // trace_id = "tr"
            0x22, 0x02, 0x73, 0x70, // span_id = "sp"
            0x28, 0x02, // action_type = TOOL_CALL
            0x32, 0x12, // context, 18 bytes
            0x12, 0x10, // tool_call, 16 bytes
            0x0A, 0x02, 0x73, 0x68, // tool_name = "sh"
            0x12, 0x03, 0x6D, 0x63, 0x70, // tool_source = "mcp"
            0x1A, 0x02, 0x7B, 0x7D, // args_json = b"{}"
            0x22, 0x01, 0x75, // target_url = "u"
            0x3A, 0x09, // caller_agent_id (field 7), 9 bytes
            0x0A, 0x01, 0x6F, 0x12, 0x01, 0x74, 0x1A, 0x01, 0x62, // o / t / b
        ],
    );
}

#[test]
fn policy_action_context_every_arm() {
    let arms = [
        (Action::LlmCall(policy::LlmCallContext::default()), 0x0A),
        (Action::ToolCall(policy::ToolCallContext::default()), 0x12),
        (Action::FileOp(policy::FileOpContext::default()), 0x1A),
        (
            Action::NetworkCall(policy::NetworkCallContext::default()),
            0x22,
        ),
        (
            Action::ProcessExec(policy::ProcessExecContext::default()),
            0x2A,
        ),
        (
            Action::ToolResult(policy::ToolResultContext::default()),
            0x32,
        ),
    ];
    for (action, tag) in arms {
        let msg = policy::ActionContext {
            action: Some(action),
        };
        // The chosen arm is written even when its message is empty.
        wire(&msg, &[tag, 0x00]);
    }
    wire(&policy::ActionContext { action: None }, &[]);
}

#[test]
fn policy_tool_call_context() {
    let msg = policy::ToolCallContext {
        tool_name: "sh".into(),
        tool_source: "mcp".into(),
        args_json: vec![0x00, 0xFF],
        target_url: "u".into(),
    };
    wire(
        &msg,
        &[
            0x0A, 0x02, 0x73, 0x68, // tool_name = "sh"
            0x12, 0x03, 0x6D, 0x63, 0x70, // tool_source = "mcp"
            0x1A, 0x02, 0x00, 0xFF, // args_json: bytes, not UTF-8 checked
            0x22, 0x01, 0x75, // target_url = "u"
        ],
    );
}

#[test]
fn policy_action_contexts_carry_every_declared_field() {
    wire(
        &policy::LlmCallContext {
            model: "m".into(),
            prompt_tokens: 7,
            contains_pii: true,
        },
        &[0x0A, 0x01, 0x6D, 0x10, 0x07, 0x18, 0x01],
    );
    wire(
        &policy::FileOpContext {
            operation: "r".into(),
            path: "p".into(),
            is_sensitive_path: true,
        },
        &[0x0A, 0x01, 0x72, 0x12, 0x01, 0x70, 0x18, 0x01],
    );
    wire(
        &policy::NetworkCallContext {
            host: "h".into(),
            port: 443,
            protocol: "s".into(),
            in_allowlist: true,
        },
        // port 443 = 0x1BB: varint 0xBB 0x03
        &[
            0x0A, 0x01, 0x68, 0x10, 0xBB, 0x03, 0x1A, 0x01, 0x73, 0x20, 0x01,
        ],
    );
    wire(
        &policy::ProcessExecContext {
            command: "c".into(),
            args: vec!["a".into(), "b".into()],
        },
        &[0x0A, 0x01, 0x63, 0x12, 0x01, 0x61, 0x12, 0x01, 0x62],
    );
    wire(
        &policy::ToolResultContext {
            tool_name: "t".into(),
            tool_source: "s".into(),
            result_json: b"{}".to_vec(),
            source_url: "u".into(),
        },
        &[
            0x0A, 0x01, 0x74, 0x12, 0x01, 0x73, 0x1A, 0x02, 0x7B, 0x7D, 0x22, 0x01, 0x75,
        ],
    );
}

#[test]
fn policy_check_action_response() {
    let msg = policy::CheckActionResponse {
        decision: common::Decision::Redact.into(),
        reason: "r".into(),
        policy_rule: "p".into(),
        approval_id: "ap".into(),
        redact: Some(policy::RedactInstructions {
            rules: vec![policy::RedactRule {
                field_path: "a".into(),
                replacement: "x".into(),
            }],
        }),
        decision_latency_us: 1234,
        agent_identity_assurance: common::AgentIdentityAssurance::Bound.into(),
    };
    wire(
        &msg,
        &[
            0x08, 0x04, // decision = REDACT
            0x12, 0x01, 0x72, // reason = "r"
            0x1A, 0x01, 0x70, // policy_rule = "p"
            0x22, 0x02, 0x61, 0x70, // approval_id = "ap"
            0x2A, 0x08, // redact (field 5), 8 bytes
            0x0A, 0x06, // rules[0], 6 bytes
            0x0A, 0x01, 0x61, // field_path = "a"
            0x12, 0x01, 0x78, // replacement = "x"
            0x30, 0xD2, 0x09, // decision_latency_us (field 6) = 1234
            0x38, 0x03, // agent_identity_assurance (field 7) = BOUND
        ],
    );
}

#[test]
fn policy_check_action_response_latency_is_int64() {
    // int64 writes a negative number as ten bytes of two's complement (a
    // sint64 would write 0x01, an int32 would differ in range).
    let msg = policy::CheckActionResponse {
        decision_latency_us: -1,
        ..Default::default()
    };
    wire(
        &msg,
        &[
            0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01,
        ],
    );
    // 2^40: bit 40 lies in the sixth 7-bit group (bits 35..=41), at bit 5.
    let big = policy::CheckActionResponse {
        decision_latency_us: 1 << 40,
        ..Default::default()
    };
    wire(&big, &[0x30, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20]);
}

#[test]
fn policy_batch_check_request() {
    let msg = policy::BatchCheckRequest {
        requests: vec![
            policy::CheckActionRequest {
                trace_id: "a".into(),
                ..Default::default()
            },
            policy::CheckActionRequest {
                trace_id: "b".into(),
                ..Default::default()
            },
        ],
    };
    wire(
        &msg,
        &[
            0x0A, 0x03, 0x1A, 0x01, 0x61, // requests[0]: trace_id = "a"
            0x0A, 0x03, 0x1A, 0x01, 0x62, // requests[1]: trace_id = "b"
        ],
    );
    wire(&policy::BatchCheckRequest::default(), &[]);
}

#[test]
fn policy_batch_check_response() {
    let msg = policy::BatchCheckResponse {
        responses: vec![
            policy::CheckActionResponse {
                decision: common::Decision::Allow.into(),
                ..Default::default()
            },
            policy::CheckActionResponse {
                decision: common::Decision::Deny.into(),
                decision_latency_us: 5,
                ..Default::default()
            },
            // An all-default element is still one (empty) entry.
            policy::CheckActionResponse::default(),
        ],
    };
    wire(
        &msg,
        &[
            0x0A, 0x02, 0x08, 0x01, // responses[0]: ALLOW
            0x0A, 0x04, 0x08, 0x02, 0x30, 0x05, // responses[1]: DENY, 5 us
            0x0A, 0x00, // responses[2]: empty
        ],
    );
}

#[test]
fn policy_op_control_subscribe_request() {
    let msg = policy::OpControlSubscribeRequest {
        agent_id: Some(ota()),
    };
    let mut expected = vec![0x0A, 0x09];
    expected.extend_from_slice(OTA);
    wire(&msg, &expected);
}

#[test]
fn policy_op_control_message() {
    let msg = policy::OpControlMessage {
        op_id: "t:s".into(),
        signal: policy::OpControlSignal::Terminate.into(),
        sequence: 128,
    };
    wire(
        &msg,
        &[
            0x0A, 0x03, 0x74, 0x3A, 0x73, // op_id = "t:s"
            0x10, 0x03, // signal = TERMINATE
            0x18, 0x80, 0x01, // sequence = 128
        ],
    );
}

#[test]
fn policy_op_control_signal_values() {
    use policy::OpControlSignal as S;
    let all = [
        (S::Unspecified, 0, "OP_CONTROL_SIGNAL_UNSPECIFIED"),
        (S::Pause, 1, "OP_CONTROL_SIGNAL_PAUSE"),
        (S::Resume, 2, "OP_CONTROL_SIGNAL_RESUME"),
        (S::Terminate, 3, "OP_CONTROL_SIGNAL_TERMINATE"),
    ];
    for (s, n, name) in all {
        assert_eq!(s as i32, n);
        assert_eq!(s.as_str_name(), name);
    }
    for (s, byte) in [(S::Pause, 0x01), (S::Resume, 0x02), (S::Terminate, 0x03)] {
        let msg = policy::OpControlMessage {
            signal: s.into(),
            ..Default::default()
        };
        wire(&msg, &[0x10, byte]);
    }
}

// ---------------------------------------------------------------------------
// assembly.approval.v1

#[test]
fn approval_pending_approval() {
    let msg = approval::PendingApproval {
        request_id: "r".into(),
        agent_id: "a".into(),
        action: "x".into(),
        condition_triggered: "c".into(),
        submitted_at: 200,
        timeout_secs: 60,
        team_id: "t".into(),
        routing_status: "s".into(),
    };
    wire(
        &msg,
        &[
            0x0A, 0x01, 0x72, // request_id = "r"
            0x12, 0x01, 0x61, // agent_id = "a"
            0x1A, 0x01, 0x78, // action = "x"
            0x22, 0x01, 0x63, // condition_triggered = "c"
            0x28, 0xC8, 0x01, // submitted_at = 200
            0x30, 0x3C, // timeout_secs = 60
            0x3A, 0x01, 0x74, // team_id = "t"
            0x42, 0x01, 0x73, // routing_status = "s"
        ],
    );
}

#[test]
fn approval_list_pending() {
    wire(&approval::ListPendingRequest {}, &[]);
    let msg = approval::ListPendingResponse {
        requests: vec![
            approval::PendingApproval {
                request_id: "r1".into(),
                ..Default::default()
            },
            approval::PendingApproval {
                request_id: "r2".into(),
                team_id: "t".into(),
                ..Default::default()
            },
        ],
    };
    wire(
        &msg,
        &[
            0x0A, 0x04, 0x0A, 0x02, 0x72, 0x31, // requests[0]: "r1"
            0x0A, 0x07, 0x0A, 0x02, 0x72, 0x32, 0x3A, 0x01,
            0x74, // requests[1]: "r2", team "t"
        ],
    );
}

#[test]
fn approval_decision_type_values() {
    use approval::ApprovalDecisionType as T;
    let all = [
        (T::DecisionUnspecified, 0, "DECISION_UNSPECIFIED"),
        (T::Approved, 1, "APPROVED"),
        (T::Rejected, 2, "REJECTED"),
    ];
    for (t, n, name) in all {
        assert_eq!(t as i32, n);
        assert_eq!(t.as_str_name(), name);
    }
}

#[test]
fn approval_decide_request() {
    let msg = approval::DecideRequest {
        request_id: "r".into(),
        decision: approval::ApprovalDecisionType::Rejected.into(),
        decided_by: "me".into(),
        reason: "no".into(),
    };
    wire(
        &msg,
        &[
            0x0A, 0x01, 0x72, // request_id = "r"
            0x10, 0x02, // decision = REJECTED
            0x1A, 0x02, 0x6D, 0x65, // decided_by = "me"
            0x22, 0x02, 0x6E, 0x6F, // reason = "no"
        ],
    );
    let approve = approval::DecideRequest {
        request_id: "r".into(),
        decision: approval::ApprovalDecisionType::Approved.into(),
        ..Default::default()
    };
    wire(&approve, &[0x0A, 0x01, 0x72, 0x10, 0x01]);
}

#[test]
fn approval_decide_response() {
    let msg = approval::DecideResponse {
        success: true,
        error_message: "e".into(),
    };
    wire(&msg, &[0x08, 0x01, 0x12, 0x01, 0x65]);
}

#[test]
fn approval_watch_and_event() {
    wire(&approval::WatchApprovalsRequest {}, &[]);
    let msg = approval::ApprovalEvent {
        request_id: "r".into(),
        agent_id: "a".into(),
        action: "x".into(),
        condition_triggered: "c".into(),
        submitted_at: 200,
        timeout_secs: 60,
    };
    wire(
        &msg,
        &[
            0x0A, 0x01, 0x72, // request_id = "r"
            0x12, 0x01, 0x61, // agent_id = "a"
            0x1A, 0x01, 0x78, // action = "x"
            0x22, 0x01, 0x63, // condition_triggered = "c"
            0x28, 0xC8, 0x01, // submitted_at = 200
            0x30, 0x3C, // timeout_secs = 60
        ],
    );
}

// ---------------------------------------------------------------------------
// tether.admin.v1 (tether's own; pinned so it does not drift by accident)

#[test]
fn admin_halt_request() {
    use admin::halt_request::Scope;
    wire(
        &admin::HaltRequest {
            scope: Some(Scope::All(true)),
        },
        &[0x10, 0x01],
    );
    let mut expected = vec![0x0A, 0x09];
    expected.extend_from_slice(OTA);
    wire(
        &admin::HaltRequest {
            scope: Some(Scope::Agent(ota())),
        },
        &expected,
    );
}

#[test]
fn admin_subscriber_info() {
    let msg = admin::SubscriberInfo {
        assembly_id: "a1".into(),
        team_id: "t".into(),
        last_seq_sent: 10,
        last_acked_seq: 7,
        lag: 3,
        ring_size: 10,
        ring_capacity: 1024,
        connected: true,
    };
    wire(
        &msg,
        &[
            0x0A, 0x02, 0x61, 0x31, // assembly_id = "a1"
            0x12, 0x01, 0x74, // team_id = "t"
            0x18, 0x0A, // last_seq_sent = 10
            0x20, 0x07, // last_acked_seq = 7
            0x28, 0x03, // lag = 3
            0x30, 0x0A, // ring_size = 10
            0x38, 0x80, 0x08, // ring_capacity = 1024
            0x40, 0x01, // connected = true
        ],
    );
}

// ---------------------------------------------------------------------------
// Round trips and unknown fields

#[test]
fn round_trip_nested_and_repeated() {
    let batch = policy::BatchCheckRequest {
        requests: (0..3)
            .map(|i| policy::CheckActionRequest {
                caller_agent_id: None,
                agent_id: Some(ota()),
                credential_token: format!("tok-{i}"),
                trace_id: format!("trace-{i}"),
                span_id: format!("span-{i}"),
                action_type: i,
                context: Some(policy::ActionContext {
                    action: Some(Action::ToolCall(policy::ToolCallContext {
                        tool_name: "shell".into(),
                        tool_source: "builtin".into(),
                        args_json: br#"{"cmd":"ls"}"#.to_vec(),
                        target_url: String::new(),
                    })),
                }),
            })
            .collect(),
    };
    let bytes = batch.encode_to_vec();
    let back = policy::BatchCheckRequest::decode(bytes.as_slice()).unwrap();
    assert_eq!(back, batch);
    assert_eq!(back.encode_to_vec(), bytes);

    let event = gateway::InvalidationEvent {
        seq: u64::MAX,
        payload: Some(Payload::ApprovalResolved(gateway::ApprovalResolved {
            request_id: "req-42".into(),
            decision: gateway::Decision::Approved.into(),
        })),
    };
    let back = gateway::InvalidationEvent::decode(event.encode_to_vec().as_slice()).unwrap();
    assert_eq!(back, event);
}

#[test]
fn unknown_fields_are_ignored() {
    // SubscribeAck { seq: 5 } plus field 15 (LEN "hi") and field 9 (varint 1).
    let ack = gateway::SubscribeAck::decode(&[0x08, 0x05, 0x7A, 0x02, 0x68, 0x69, 0x48, 0x01][..])
        .unwrap();
    assert_eq!(ack, gateway::SubscribeAck { seq: 5 });

    // A field 9 in CheckActionResponse (which has none) is skipped.
    let resp =
        policy::CheckActionResponse::decode(&[0x08, 0x01, 0x48, 0x07, 0x30, 0x02][..]).unwrap();
    assert_eq!(resp.decision, common::Decision::Allow as i32);
    assert_eq!(resp.decision_latency_us, 2);

    // An LLMCallContext field tether does not declare (field 9) is skipped
    // and the declared ones are read.
    let ctx =
        policy::ActionContext::decode(&[0x0A, 0x07, 0x0A, 0x03, 0x67, 0x70, 0x74, 0x48, 0x01][..])
            .unwrap();
    assert_eq!(
        ctx.action,
        Some(Action::LlmCall(policy::LlmCallContext {
            model: "gpt".into(),
            ..Default::default()
        }))
    );

    // An oneof arm tether does not know (field 7) leaves the oneof unset.
    let ctx = policy::ActionContext::decode(&[0x3A, 0x00][..]).unwrap();
    assert_eq!(ctx.action, None);

    // Unknown fields inside a repeated element and at the top level.
    let list = approval::ListPendingResponse::decode(
        &[
            0x0A, 0x05, 0x0A, 0x01, 0x72, 0x78, 0x2A, // requests[0]: "r", field 15 = 42
            0x10, 0x01, // field 2 varint, unknown here
        ][..],
    )
    .unwrap();
    assert_eq!(list.requests.len(), 1);
    assert_eq!(list.requests[0].request_id, "r");

    // An unknown enum value is kept as its number.
    let resolved = gateway::ApprovalResolved::decode(&[0x10, 0x09][..]).unwrap();
    assert_eq!(resolved.decision, 9);
    assert!(gateway::Decision::try_from(resolved.decision).is_err());
}

// ---------------------------------------------------------------------------
// Service shapes (from the embedded descriptor set)

#[test]
fn descriptor_set_services() {
    use prost_types::FileDescriptorSet;

    let fds = FileDescriptorSet::decode(tether_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut packages: Vec<_> = fds.file.iter().map(|f| f.package()).collect();
    packages.sort_unstable();
    assert_eq!(
        packages,
        [
            "assembly.agent.v1",
            "assembly.approval.v1",
            "assembly.common.v1",
            "assembly.gateway.v1",
            "assembly.policy.v1",
            "tether.admin.v1",
        ]
    );

    // (service, method, input, output, client streaming, server streaming)
    let expected = [
        (
            "InvalidationService",
            "Subscribe",
            ".assembly.gateway.v1.SubscribeRequest",
            ".assembly.gateway.v1.InvalidationEvent",
            true,
            true,
        ),
        (
            "PolicyService",
            "CheckAction",
            ".assembly.policy.v1.CheckActionRequest",
            ".assembly.policy.v1.CheckActionResponse",
            false,
            false,
        ),
        (
            "PolicyService",
            "BatchCheck",
            ".assembly.policy.v1.BatchCheckRequest",
            ".assembly.policy.v1.BatchCheckResponse",
            false,
            false,
        ),
        (
            "PolicyService",
            "OpControlStream",
            ".assembly.policy.v1.OpControlSubscribeRequest",
            ".assembly.policy.v1.OpControlMessage",
            false,
            true,
        ),
        (
            "ApprovalService",
            "ListPending",
            ".assembly.approval.v1.ListPendingRequest",
            ".assembly.approval.v1.ListPendingResponse",
            false,
            false,
        ),
        (
            "ApprovalService",
            "Decide",
            ".assembly.approval.v1.DecideRequest",
            ".assembly.approval.v1.DecideResponse",
            false,
            false,
        ),
        (
            "ApprovalService",
            "WatchApprovals",
            ".assembly.approval.v1.WatchApprovalsRequest",
            ".assembly.approval.v1.ApprovalEvent",
            false,
            true,
        ),
        (
            "AgentLifecycleService",
            "RequestChallenge",
            ".assembly.agent.v1.ChallengeRequest",
            ".assembly.agent.v1.ChallengeResponse",
            false,
            false,
        ),
        (
            "AgentLifecycleService",
            "Register",
            ".assembly.agent.v1.RegisterRequest",
            ".assembly.agent.v1.RegisterResponse",
            false,
            false,
        ),
        (
            "AgentLifecycleService",
            "Heartbeat",
            ".assembly.agent.v1.HeartbeatRequest",
            ".assembly.agent.v1.HeartbeatResponse",
            false,
            false,
        ),
        (
            "AgentLifecycleService",
            "Deregister",
            ".assembly.agent.v1.DeregisterRequest",
            ".assembly.agent.v1.DeregisterResponse",
            false,
            false,
        ),
        (
            "AgentLifecycleService",
            "ControlStream",
            ".assembly.agent.v1.ControlStreamRequest",
            ".assembly.agent.v1.ControlCommand",
            false,
            true,
        ),
    ];
    for (service, method, input, output, cs, ss) in expected {
        let m = fds
            .file
            .iter()
            .flat_map(|f| &f.service)
            .filter(|s| s.name() == service)
            .flat_map(|s| &s.method)
            .find(|m| m.name() == method)
            .unwrap_or_else(|| panic!("{service}.{method} missing"));
        assert_eq!(m.input_type(), input, "{service}.{method}");
        assert_eq!(m.output_type(), output, "{service}.{method}");
        assert_eq!(m.client_streaming(), cs, "{service}.{method}");
        assert_eq!(m.server_streaming(), ss, "{service}.{method}");
    }
}

#[cfg(feature = "grpc")]
#[test]
fn grpc_service_names() {
    assert_eq!(
        gateway::invalidation_service_server::SERVICE_NAME,
        "assembly.gateway.v1.InvalidationService"
    );
    assert_eq!(
        policy::policy_service_server::SERVICE_NAME,
        "assembly.policy.v1.PolicyService"
    );
    assert_eq!(
        approval::approval_service_server::SERVICE_NAME,
        "assembly.approval.v1.ApprovalService"
    );
    assert_eq!(
        tether_proto::agent::agent_lifecycle_service_server::SERVICE_NAME,
        "assembly.agent.v1.AgentLifecycleService"
    );
    assert_eq!(
        admin::admin_service_server::SERVICE_NAME,
        "tether.admin.v1.AdminService"
    );
}
