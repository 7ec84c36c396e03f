//! The reference gateway's `assembly.agent.v1.AgentLifecycleService` over
//! real gRPC on 127.0.0.1: challenge and registration with an Ed25519
//! possession proof, the issued token on the other services, heartbeat
//! levels, deregistration, and the per-agent control stream fed by the
//! operator's `AdminHandle`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ed25519_dalek::{Signer, SigningKey};
use tether_core::did_key::did_key;
use tether_gateway::ops::AgentKey;
use tether_gateway::{Reregistration, RunningGateway};
use tether_proto::agent::agent_lifecycle_service_client::AgentLifecycleServiceClient;
use tether_proto::agent::control_command::Command;
use tether_proto::agent::{
    ChallengeRequest, ChallengeResponse, ControlCommand, ControlStreamRequest, DeregisterRequest,
    HeartbeatRequest, HeartbeatResponse, RegisterRequest, RegisterResponse,
};
use tether_proto::common::{ActionType, AgentId, Decision};
use tether_proto::policy::action_context::Action;
use tether_proto::policy::policy_service_client::PolicyServiceClient;
use tether_proto::policy::{
    ActionContext, CheckActionRequest, OpControlSubscribeRequest, ToolCallContext,
};
use tether_tests::{bounded, gateway, serve, until};
use tonic::transport::Channel;
use tonic::{Code, Request, Status, Streaming};

const ORG: &str = "acme";
const TEAM: &str = "team-a";

/// A test agent: its key and its id (org, team, did:key).
struct Agent {
    key: SigningKey,
    id: AgentId,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn agent(seed: u8) -> Agent {
    let key = SigningKey::from_bytes(&[seed; 32]);
    let id = AgentId {
        org_id: ORG.into(),
        team_id: TEAM.into(),
        agent_id: did_key(key.verifying_key().as_bytes()),
    };
    Agent { key, id }
}

impl Agent {
    fn public_key(&self) -> String {
        hex(self.key.verifying_key().as_bytes())
    }

    fn gateway_key(&self) -> AgentKey {
        AgentKey {
            org_id: self.id.org_id.clone(),
            team_id: self.id.team_id.clone(),
            agent_id: self.id.agent_id.clone(),
        }
    }

    fn challenge_request(&self) -> ChallengeRequest {
        ChallengeRequest {
            agent_id: Some(self.id.clone()),
            public_key: self.public_key(),
        }
    }

    fn register_request(&self, nonce: &[u8], proof: Vec<u8>) -> RegisterRequest {
        RegisterRequest {
            agent_id: Some(self.id.clone()),
            name: "e2e".into(),
            framework: "tether".into(),
            version: "0".into(),
            public_key: self.public_key(),
            possession_proof: proof,
            registration_nonce: nonce.to_vec(),
            ..Default::default()
        }
    }
}

type Lifecycle = AgentLifecycleServiceClient<Channel>;

async fn channel(gw: &RunningGateway) -> Channel {
    bounded(
        "connect",
        Channel::from_shared(gw.endpoint()).unwrap().connect(),
    )
    .await
    .expect("connects")
}

async fn challenge(c: &mut Lifecycle, a: &Agent) -> Result<ChallengeResponse, Status> {
    bounded(
        "RequestChallenge",
        c.request_challenge(a.challenge_request()),
    )
    .await
    .map(|r| r.into_inner())
}

async fn register(c: &mut Lifecycle, a: &Agent) -> Result<RegisterResponse, Status> {
    let ch = challenge(c, a).await?;
    let proof = a.key.sign(&ch.nonce).to_bytes().to_vec();
    bounded("Register", c.register(a.register_request(&ch.nonce, proof)))
        .await
        .map(|r| r.into_inner())
}

fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut r = Request::new(message);
    r.metadata_mut()
        .insert("x-aa-credential-token", token.parse().unwrap());
    r
}

async fn check(ch: &Channel, a: &Agent, token: &str) -> Result<Decision, Status> {
    let req = CheckActionRequest {
        agent_id: Some(a.id.clone()),
        trace_id: "trace".into(),
        span_id: "span".into(),
        action_type: ActionType::ToolCall as i32,
        context: Some(ActionContext {
            action: Some(Action::ToolCall(ToolCallContext {
                tool_name: "read_file".into(),
                ..Default::default()
            })),
        }),
        ..Default::default()
    };
    let r = bounded(
        "CheckAction",
        PolicyServiceClient::new(ch.clone()).check_action(with_token(req, token)),
    )
    .await?
    .into_inner();
    Ok(Decision::try_from(r.decision).unwrap())
}

async fn heartbeat(c: &mut Lifecycle, a: &Agent, token: &str) -> Result<HeartbeatResponse, Status> {
    let req = HeartbeatRequest {
        agent_id: Some(a.id.clone()),
        credential_token: token.into(),
        active_runs: 1,
        actions_count: 2,
    };
    bounded("Heartbeat", c.heartbeat(req))
        .await
        .map(|r| r.into_inner())
}

async fn control(
    c: &mut Lifecycle,
    a: &Agent,
    token: &str,
) -> Result<Streaming<ControlCommand>, Status> {
    let req = ControlStreamRequest {
        agent_id: Some(a.id.clone()),
        credential_token: token.into(),
    };
    bounded("ControlStream", c.control_stream(req))
        .await
        .map(|r| r.into_inner())
}

async fn next(s: &mut Streaming<ControlCommand>) -> Result<Option<ControlCommand>, Status> {
    bounded("a control command", s.message()).await
}

async fn streams_open(gw: &RunningGateway, n: usize) {
    let admin = gw.admin();
    until(&format!("{n} control streams open"), || {
        admin.status().agent_control_streams == n
    })
    .await;
}

fn kind(c: &ControlCommand) -> String {
    match &c.command {
        Some(Command::Suspend(s)) => format!("suspend:{}", s.reason),
        Some(Command::Resume(r)) => format!("resume:{}", r.note),
        Some(Command::Kill(k)) => format!("kill:{}", k.reason),
        Some(Command::PolicyUpdate(p)) => format!("policy:{}", p.new_policy_id),
        None => "none".into(),
    }
}

#[tokio::test]
async fn a_registered_token_works_on_check_action_and_op_control() {
    let gw = serve(gateway()).await;
    let ch = channel(&gw).await;
    let mut c = Lifecycle::new(ch.clone());
    let a = agent(1);

    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let first = challenge(&mut c, &a).await.unwrap();
    assert_eq!(first.nonce.len(), 32);
    let ttl = first.expires_at_unix_ms - before;
    assert!((55_000..=65_000).contains(&ttl), "expires in {ttl} ms");
    let second = challenge(&mut c, &a).await.unwrap();
    assert_ne!(first.nonce, second.nonce, "nonces are fresh");

    let r = register(&mut c, &a).await.unwrap();
    assert!(!r.credential_token.is_empty());
    assert_eq!(r.heartbeat_interval_sec, 30);
    assert_eq!(r.team_id.as_deref(), Some(TEAM));
    assert_eq!(r.assigned_policy, "default");
    assert_eq!(gw.admin().status().registered_agents, 1);

    // The gateway requires tokens; the issued one is accepted like a
    // configured one.
    assert_eq!(
        check(&ch, &a, &r.credential_token).await.unwrap(),
        Decision::Allow
    );
    let mut ops = bounded(
        "OpControlStream",
        PolicyServiceClient::new(ch.clone()).op_control_stream(with_token(
            OpControlSubscribeRequest {
                agent_id: Some(a.id.clone()),
            },
            &r.credential_token,
        )),
    )
    .await
    .unwrap()
    .into_inner();
    let admin = gw.admin();
    until("the op-control stream is open", || {
        admin.status().op_control_streams == 1
    })
    .await;
    admin.pause("t1:s1", a.gateway_key()).unwrap();
    let m = bounded("an op-control message", ops.message())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.op_id, "t1:s1");
}

#[tokio::test]
async fn a_key_must_match_its_did_and_be_well_formed() {
    let gw = serve(gateway()).await;
    let mut c = Lifecycle::new(channel(&gw).await);
    let a = agent(1);
    let b = agent(2);

    let mut wrong_did = a.challenge_request();
    wrong_did.agent_id = Some(b.id.clone());
    let err = challenge_raw(&mut c, wrong_did).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("did:key"), "{}", err.message());

    let mut upper = a.challenge_request();
    upper.public_key = upper.public_key.to_uppercase();
    let err = challenge_raw(&mut c, upper).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("hex"), "{}", err.message());

    let mut short = a.challenge_request();
    short.public_key.truncate(10);
    assert_eq!(
        challenge_raw(&mut c, short).await.unwrap_err().code(),
        Code::InvalidArgument
    );

    let mut none = a.challenge_request();
    none.agent_id = None;
    assert_eq!(
        challenge_raw(&mut c, none).await.unwrap_err().code(),
        Code::InvalidArgument
    );
}

async fn challenge_raw(
    c: &mut Lifecycle,
    req: ChallengeRequest,
) -> Result<ChallengeResponse, Status> {
    bounded("RequestChallenge", c.request_challenge(req))
        .await
        .map(|r| r.into_inner())
}

async fn register_raw(c: &mut Lifecycle, req: RegisterRequest) -> Result<RegisterResponse, Status> {
    bounded("Register", c.register(req))
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn a_forged_proof_is_refused_and_spends_the_nonce() {
    let gw = serve(gateway()).await;
    let mut c = Lifecycle::new(channel(&gw).await);
    let a = agent(1);
    let mallory = agent(9);

    let ch = challenge(&mut c, &a).await.unwrap();
    let forged = mallory.key.sign(&ch.nonce).to_bytes().to_vec();
    let err = register_raw(&mut c, a.register_request(&ch.nonce, forged))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(
        err.message().contains("possession_proof"),
        "{}",
        err.message()
    );

    // The nonce is gone: even the right proof is refused now.
    let right = a.key.sign(&ch.nonce).to_bytes().to_vec();
    let err = register_raw(&mut c, a.register_request(&ch.nonce, right))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    // A proof that is not even a signature.
    let ch = challenge(&mut c, &a).await.unwrap();
    let err = register_raw(&mut c, a.register_request(&ch.nonce, vec![1, 2, 3]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(gw.admin().status().registered_agents, 0);
}

#[tokio::test]
async fn a_nonce_is_single_use_and_bound_to_its_agent() {
    let gw = serve(gateway()).await;
    let mut c = Lifecycle::new(channel(&gw).await);
    let a = agent(1);
    let b = agent(2);

    let ch = challenge(&mut c, &a).await.unwrap();
    let proof = a.key.sign(&ch.nonce).to_bytes().to_vec();
    register_raw(&mut c, a.register_request(&ch.nonce, proof.clone()))
        .await
        .unwrap();
    let err = register_raw(&mut c, a.register_request(&ch.nonce, proof))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    // B signs a nonce issued for A: refused.
    let ch = challenge(&mut c, &a).await.unwrap();
    let proof = b.key.sign(&ch.nonce).to_bytes().to_vec();
    let err = register_raw(&mut c, b.register_request(&ch.nonce, proof))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    // A nonce never issued.
    let proof = a.key.sign(&[7u8; 32]).to_bytes().to_vec();
    let err = register_raw(&mut c, a.register_request(&[7u8; 32], proof))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn reregistering_replaces_the_token_or_is_refused() {
    let gw = serve(gateway()).await;
    let ch = channel(&gw).await;
    let mut c = Lifecycle::new(ch.clone());
    let a = agent(1);

    let old = register(&mut c, &a).await.unwrap().credential_token;
    let mut stream = control(&mut c, &a, &old).await.unwrap();
    streams_open(&gw, 1).await;
    let new = register(&mut c, &a).await.unwrap().credential_token;
    assert_ne!(old, new);
    assert_eq!(
        check(&ch, &a, &old).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert_eq!(check(&ch, &a, &new).await.unwrap(), Decision::Allow);
    // The stream opened with the revoked token ends, asking for a reconnect.
    assert_eq!(
        next(&mut stream).await.unwrap_err().code(),
        Code::Unavailable
    );
    assert_eq!(gw.admin().status().registered_agents, 1);

    let refusing = serve(gateway().reregistration(Reregistration::Refuse)).await;
    let ch = channel(&refusing).await;
    let mut c = Lifecycle::new(ch.clone());
    let first = register(&mut c, &a).await.unwrap().credential_token;
    let err = register(&mut c, &a).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(check(&ch, &a, &first).await.unwrap(), Decision::Allow);
}

#[tokio::test]
async fn registered_agents_are_bounded() {
    let gw = serve(gateway().max_agents(1)).await;
    let mut c = Lifecycle::new(channel(&gw).await);
    register(&mut c, &agent(1)).await.unwrap();
    let err = register(&mut c, &agent(2)).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
}

#[tokio::test]
async fn heartbeat_reports_the_suspend_level_and_policy_updates() {
    let gw = serve(gateway().heartbeat_interval(Duration::from_secs(5))).await;
    let mut c = Lifecycle::new(channel(&gw).await);
    let a = agent(1);
    let r = register(&mut c, &a).await.unwrap();
    assert_eq!(r.heartbeat_interval_sec, 5);
    let token = r.credential_token;
    let admin = gw.admin();

    let hb = heartbeat(&mut c, &a, &token).await.unwrap();
    assert!(!hb.should_suspend && !hb.policy_updated);

    let report = admin.suspend_agent(&a.gateway_key(), "audit").unwrap();
    assert!(report.suspended && !report.delivered);
    for _ in 0..2 {
        // A level: it holds on every heartbeat until resumed.
        assert!(heartbeat(&mut c, &a, &token).await.unwrap().should_suspend);
    }
    admin.resume_agent(&a.gateway_key(), "cleared").unwrap();
    assert!(!heartbeat(&mut c, &a, &token).await.unwrap().should_suspend);

    admin.notify_policy_update(&a.gateway_key(), "p2").unwrap();
    assert!(heartbeat(&mut c, &a, &token).await.unwrap().policy_updated);
    assert!(!heartbeat(&mut c, &a, &token).await.unwrap().policy_updated);
    admin.publish_invalidation(&a.id.agent_id, 3, None);
    assert!(heartbeat(&mut c, &a, &token).await.unwrap().policy_updated);
    admin.publish_invalidation("other-agent", 4, None);
    assert!(!heartbeat(&mut c, &a, &token).await.unwrap().policy_updated);

    // The token in metadata works too, with the agent named by the body.
    let req = HeartbeatRequest {
        agent_id: Some(a.id.clone()),
        ..Default::default()
    };
    bounded("Heartbeat", c.heartbeat(with_token(req, &token)))
        .await
        .unwrap();
}

#[tokio::test]
async fn deregister_revokes_the_token_and_ends_the_control_stream() {
    let gw = serve(gateway()).await;
    let ch = channel(&gw).await;
    let mut c = Lifecycle::new(ch.clone());
    let a = agent(1);
    let token = register(&mut c, &a).await.unwrap().credential_token;
    let mut stream = control(&mut c, &a, &token).await.unwrap();
    streams_open(&gw, 1).await;

    let r = bounded(
        "Deregister",
        c.deregister(DeregisterRequest {
            agent_id: Some(a.id.clone()),
            credential_token: token.clone(),
            reason: "done".into(),
        }),
    )
    .await
    .unwrap()
    .into_inner();
    assert!(r.success);
    assert_eq!(r.agent_id, a.id.agent_id);

    // The stream ends cleanly; the token is refused everywhere.
    assert!(next(&mut stream).await.unwrap().is_none());
    assert_eq!(
        check(&ch, &a, &token).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert_eq!(
        heartbeat(&mut c, &a, &token).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert_eq!(gw.admin().status().registered_agents, 0);
    assert!(gw.admin().agents().is_empty());
    // It may register again.
    register(&mut c, &a).await.unwrap();
}

#[tokio::test]
async fn the_control_stream_delivers_each_command_once_in_order() {
    let gw = serve(gateway()).await;
    let mut c = Lifecycle::new(channel(&gw).await);
    let a = agent(1);
    let token = register(&mut c, &a).await.unwrap().credential_token;
    let mut stream = control(&mut c, &a, &token).await.unwrap();
    streams_open(&gw, 1).await;
    let admin = gw.admin();
    let who = a.gateway_key();

    assert!(admin.suspend_agent(&who, "why").unwrap().delivered);
    assert!(admin.resume_agent(&who, "ok").unwrap().delivered);
    assert!(admin.kill_agent(&who, "bye").unwrap().delivered);
    assert!(admin.notify_policy_update(&who, "p7").unwrap().delivered);
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(kind(&next(&mut stream).await.unwrap().unwrap()));
    }
    assert_eq!(seen, ["suspend:why", "resume:ok", "kill:bye", "policy:p7"]);

    // Nothing more, and the stream stays open while nothing is sent.
    let quiet = tokio::time::timeout(Duration::from_millis(300), stream.message()).await;
    assert!(quiet.is_err(), "unexpected: {quiet:?}");
    assert_eq!(admin.status().agent_control_streams, 1);

    // Another agent's command does not reach it.
    admin
        .suspend_agent(&agent(2).gateway_key(), "other")
        .unwrap();
    admin.kill_agent(&who, "again").unwrap();
    assert_eq!(
        kind(&next(&mut stream).await.unwrap().unwrap()),
        "kill:again"
    );
}

#[tokio::test]
async fn a_second_control_stream_replaces_the_first() {
    let gw = serve(gateway()).await;
    let mut c = Lifecycle::new(channel(&gw).await);
    let a = agent(1);
    let token = register(&mut c, &a).await.unwrap().credential_token;
    let mut first = control(&mut c, &a, &token).await.unwrap();
    streams_open(&gw, 1).await;
    let mut second = control(&mut c, &a, &token).await.unwrap();
    let err = next(&mut first).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("replaced"), "{}", err.message());
    streams_open(&gw, 1).await;

    gw.admin().suspend_agent(&a.gateway_key(), "x").unwrap();
    assert_eq!(
        kind(&next(&mut second).await.unwrap().unwrap()),
        "suspend:x"
    );
    drop(second);
    streams_open(&gw, 0).await;

    // A stream opened while suspended starts with the level.
    let mut third = control(&mut c, &a, &token).await.unwrap();
    assert_eq!(kind(&next(&mut third).await.unwrap().unwrap()), "suspend:x");
}

#[tokio::test]
async fn an_unknown_or_foreign_token_is_unauthenticated_everywhere() {
    let gw = serve(gateway()).await;
    let ch = channel(&gw).await;
    let mut c = Lifecycle::new(ch.clone());
    let a = agent(1);
    let b = agent(2);
    let b_token = register(&mut c, &b).await.unwrap().credential_token;

    for token in ["nope", b_token.as_str(), ""] {
        assert_eq!(
            heartbeat(&mut c, &a, token).await.unwrap_err().code(),
            Code::Unauthenticated,
            "heartbeat with {token:?}"
        );
        assert_eq!(
            control(&mut c, &a, token).await.unwrap_err().code(),
            Code::Unauthenticated,
            "control stream with {token:?}"
        );
        let dereg = bounded(
            "Deregister",
            c.deregister(DeregisterRequest {
                agent_id: Some(a.id.clone()),
                credential_token: token.into(),
                reason: String::new(),
            }),
        )
        .await;
        assert_eq!(dereg.unwrap_err().code(), Code::Unauthenticated);
    }
    assert_eq!(
        check(&ch, &a, "nope").await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let ops = bounded(
        "OpControlStream",
        PolicyServiceClient::new(ch.clone()).op_control_stream(with_token(
            OpControlSubscribeRequest {
                agent_id: Some(a.id.clone()),
            },
            "nope",
        )),
    )
    .await;
    assert_eq!(ops.unwrap_err().code(), Code::Unauthenticated);
    // B's token still works for B: the refusals changed nothing.
    assert!(
        !heartbeat(&mut c, &b, &b_token)
            .await
            .unwrap()
            .should_suspend
    );
}

#[tokio::test]
async fn shutdown_ends_the_control_stream_with_unavailable() {
    let gw = serve(gateway()).await;
    let mut c = Lifecycle::new(channel(&gw).await);
    let a = agent(1);
    let token = register(&mut c, &a).await.unwrap().credential_token;
    let mut stream = control(&mut c, &a, &token).await.unwrap();
    streams_open(&gw, 1).await;
    let stopping = tokio::spawn(gw.shutdown());
    let end = bounded("the stream's end", stream.message()).await;
    assert_eq!(end.unwrap_err().code(), Code::Unavailable);
    bounded("shutdown", stopping).await.unwrap().unwrap();
}
