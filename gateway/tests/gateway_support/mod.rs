//! Shared helpers of the gateway tests: a real gateway on 127.0.0.1:0 and
//! real tonic clients.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::time::Duration;

use tether_gateway::ops::AgentKey;
use tether_gateway::{GatewayBuilder, RunningGateway};
use tether_proto::common::AgentId;
use tether_proto::gateway::invalidation_event::Payload;
use tether_proto::gateway::invalidation_service_client::InvalidationServiceClient;
use tether_proto::gateway::subscribe_request::Kind;
use tether_proto::gateway::{
    ApprovalResolved, InvalidationEvent, PolicyInvalidated, SubscribeAck, SubscribeInitial,
    SubscribeRequest,
};
use tether_proto::policy::action_context::Action;
use tether_proto::policy::{ActionContext, CheckActionRequest, ToolCallContext};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status, Streaming};

/// Every wait in these tests is guarded by this.
pub const GUARD: Duration = Duration::from_secs(10);

/// Await `f`, failing the test if it takes longer than [`GUARD`].
pub async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(GUARD, f).await.expect("timed out")
}

/// Poll `cond` until it holds (guarded by [`GUARD`]): for state that only
/// changes when the server processes a message we cannot observe otherwise.
pub async fn eventually(mut cond: impl FnMut() -> bool) {
    within(async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
}

/// Serve `builder` on a fresh loopback port.
pub async fn start(builder: GatewayBuilder) -> RunningGateway {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    builder.serve(listener).await.unwrap()
}

/// A client channel to `gw`.
pub async fn channel(gw: &RunningGateway) -> Channel {
    within(Endpoint::from_shared(gw.endpoint()).unwrap().connect())
        .await
        .unwrap()
}

/// `org/team/agent` as a key.
pub fn key(org: &str, team: &str, agent: &str) -> AgentKey {
    AgentKey {
        org_id: org.into(),
        team_id: team.into(),
        agent_id: agent.into(),
    }
}

/// The wire id of a key.
pub fn wire(k: &AgentKey) -> AgentId {
    AgentId {
        org_id: k.org_id.clone(),
        team_id: k.team_id.clone(),
        agent_id: k.agent_id.clone(),
    }
}

/// How a test presents a credential.
#[derive(Clone, Copy, Debug)]
pub enum Cred<'a> {
    /// None at all.
    None,
    /// `x-aa-credential-token: {token}`.
    Header(&'a str),
    /// `authorization: Bearer {token}`.
    Bearer(&'a str),
}

/// `message` with the credential in its metadata.
pub fn request<T>(message: T, cred: Cred<'_>) -> Request<T> {
    let mut r = Request::new(message);
    match cred {
        Cred::None => {}
        Cred::Header(t) => {
            r.metadata_mut()
                .insert("x-aa-credential-token", t.parse().unwrap());
        }
        Cred::Bearer(t) => {
            r.metadata_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
    }
    r
}

/// An open invalidation stream, driven like a runtime would.
pub struct Sub {
    acks: mpsc::Sender<SubscribeRequest>,
    pub events: Streaming<InvalidationEvent>,
    pub assembly_id: String,
    /// The response headers.
    pub metadata: tonic::metadata::MetadataMap,
}

/// Open `Subscribe` for `assembly_id` from `last_seq_seen`.
pub async fn subscribe(
    channel: &Channel,
    assembly_id: &str,
    last_seq_seen: u64,
    cred: Cred<'_>,
) -> Result<Sub, Status> {
    subscribe_with(
        channel,
        SubscribeRequest {
            assembly_id: assembly_id.into(),
            kind: Some(Kind::Initial(SubscribeInitial { last_seq_seen })),
        },
        cred,
    )
    .await
}

/// Open `Subscribe` with an arbitrary first message.
pub async fn subscribe_with(
    channel: &Channel,
    first: SubscribeRequest,
    cred: Cred<'_>,
) -> Result<Sub, Status> {
    let (tx, rx) = mpsc::channel(64);
    let assembly_id = first.assembly_id.clone();
    tx.send(first).await.unwrap();
    let mut client = InvalidationServiceClient::new(channel.clone());
    let response = within(client.subscribe(request(ReceiverStream::new(rx), cred))).await?;
    let metadata = response.metadata().clone();
    Ok(Sub {
        acks: tx,
        events: response.into_inner(),
        assembly_id,
        metadata,
    })
}

impl Sub {
    /// The next event (guarded); `Err` when the stream ended with a status,
    /// `Ok(None)` on a clean end.
    pub async fn next(&mut self) -> Result<Option<InvalidationEvent>, Status> {
        within(self.events.message()).await
    }

    /// The next event, which must be there.
    pub async fn expect(&mut self) -> InvalidationEvent {
        self.next().await.unwrap().expect("stream ended")
    }

    /// Ack `seq`.
    pub async fn ack(&self, seq: u64) {
        self.acks
            .send(SubscribeRequest {
                assembly_id: self.assembly_id.clone(),
                kind: Some(Kind::Ack(SubscribeAck { seq })),
            })
            .await
            .unwrap();
    }
}

/// `PolicyInvalidated{agent_id, policy_version}` as an event payload.
pub fn invalidated(agent_id: &str, policy_version: u64) -> Option<Payload> {
    Some(Payload::PolicyInvalidated(PolicyInvalidated {
        agent_id: agent_id.into(),
        policy_version,
    }))
}

/// `ApprovalResolved{request_id, decision}` as an event payload.
pub fn resolved(request_id: &str, decision: tether_proto::gateway::Decision) -> Option<Payload> {
    Some(Payload::ApprovalResolved(ApprovalResolved {
        request_id: request_id.into(),
        decision: decision as i32,
    }))
}

/// A CheckAction of tool `tool` by `agent` (no agent: leave it unset).
pub fn tool_call(agent: Option<&AgentKey>, tool: &str) -> CheckActionRequest {
    CheckActionRequest {
        agent_id: agent.map(wire),
        trace_id: "trace".into(),
        span_id: "span".into(),
        action_type: tether_proto::common::ActionType::ToolCall as i32,
        context: Some(ActionContext {
            action: Some(Action::ToolCall(ToolCallContext {
                tool_name: tool.into(),
                ..Default::default()
            })),
        }),
        ..Default::default()
    }
}
