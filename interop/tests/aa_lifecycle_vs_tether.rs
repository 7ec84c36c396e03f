//! Agent Assembly's own generated lifecycle client (`aa-proto`'s
//! `AgentLifecycleServiceClient`) against tether's reference gateway,
//! served in-process on 127.0.0.1 with tokens required: it registers with
//! a did:key and a possession proof, the issued token works on aa's
//! `CheckAction` and aa-runtime's op-control stream, the operator's
//! commands arrive on its `ControlStream`, and its heartbeats follow the
//! suspend level.

use std::time::Duration;

use aa_proto::assembly::agent::v1::agent_lifecycle_service_client::AgentLifecycleServiceClient;
use aa_proto::assembly::agent::v1::control_command::Command;
use aa_proto::assembly::agent::v1::{
    ControlCommand, ControlStreamRequest, DeregisterRequest, HeartbeatRequest,
};
use aa_proto::assembly::common::v1::ActionType;
use aa_proto::assembly::policy::v1::action_context::Action;
use aa_proto::assembly::policy::v1::policy_service_client::PolicyServiceClient;
use aa_proto::assembly::policy::v1::{ActionContext, CheckActionRequest, ToolCallContext};
use aa_runtime::op_control::{OpControlClient, OpControlStore};
use tether_gateway::auth::TokenTable;
use tether_gateway::ops::AgentKey;
use tether_gateway::rules::RuleTable;
use tether_gateway::{Gateway, Reregistration};
use tether_interop::register::{fresh_key, register, Registered};
use tether_interop::{agent_key, bounded, serve, until, ORG, TEAM, TOKEN};
use tonic::{Code, Streaming};

fn gateway_key(r: &Registered) -> AgentKey {
    AgentKey {
        org_id: r.agent.org_id.clone(),
        team_id: r.agent.team_id.clone(),
        agent_id: r.agent.agent_id.clone(),
    }
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

async fn next(s: &mut Streaming<ControlCommand>) -> ControlCommand {
    bounded("a control command at aa's client", s.message())
        .await
        .expect("the control stream stays healthy")
        .expect("the control stream stays open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aa_client_registers_heartbeats_and_hears_commands() {
    let gw = serve(
        Gateway::builder()
            .rules(RuleTable::parse("allow read_file\ndefault deny\n").expect("rules"))
            .tokens(TokenTable::required([(TOKEN.to_owned(), agent_key())])),
    )
    .await;
    let url = gw.endpoint();
    let admin = gw.admin();

    let key = fresh_key();
    let me = bounded("register", register(&url, ORG, TEAM, &key))
        .await
        .expect("aa's client registers at tether's gateway");
    assert!(!me.token.is_empty());
    let who = gateway_key(&me);

    // The token works on aa's own PolicyService client...
    let mut policy = PolicyServiceClient::connect(url.clone())
        .await
        .expect("connect");
    let decision = bounded(
        "CheckAction",
        policy.check_action(CheckActionRequest {
            agent_id: Some(me.agent.clone()),
            credential_token: me.token.clone(),
            trace_id: "trace-1".into(),
            span_id: "span-1".into(),
            action_type: ActionType::ToolCall as i32,
            context: Some(ActionContext {
                action: Some(Action::ToolCall(ToolCallContext {
                    tool_name: "read_file".into(),
                    ..Default::default()
                })),
            }),
            ..Default::default()
        }),
    )
    .await
    .expect("the issued token is accepted")
    .into_inner();
    assert_eq!(
        decision.decision,
        aa_proto::assembly::common::v1::Decision::Allow as i32
    );

    // ...and on aa-runtime's op-control client.
    let store = OpControlStore::new();
    let ops = OpControlClient::start(
        url.clone(),
        me.agent.clone(),
        Some(me.token.clone()),
        store.clone(),
    );
    until("aa-runtime's op-control stream is open", || {
        admin.status().op_control_streams == 1
    })
    .await;
    ops.abort();

    let mut lifecycle = AgentLifecycleServiceClient::connect(url.clone())
        .await
        .expect("connect");
    let heartbeat = |token: String| HeartbeatRequest {
        agent_id: Some(me.agent.clone()),
        credential_token: token,
        active_runs: 0,
        actions_count: 0,
    };
    let hb = bounded(
        "Heartbeat",
        lifecycle.heartbeat(heartbeat(me.token.clone())),
    )
    .await
    .expect("heartbeat")
    .into_inner();
    assert!(!hb.should_suspend && !hb.policy_updated);

    let mut stream = bounded(
        "ControlStream",
        lifecycle.control_stream(ControlStreamRequest {
            agent_id: Some(me.agent.clone()),
            credential_token: me.token.clone(),
        }),
    )
    .await
    .expect("control stream opens")
    .into_inner();
    until("the control stream is open", || {
        admin.status().agent_control_streams == 1
    })
    .await;

    assert!(
        admin
            .suspend_agent(&who, "audit")
            .expect("suspend")
            .delivered
    );
    assert_eq!(kind(&next(&mut stream).await), "suspend:audit");
    let hb = bounded(
        "Heartbeat",
        lifecycle.heartbeat(heartbeat(me.token.clone())),
    )
    .await
    .expect("heartbeat")
    .into_inner();
    assert!(hb.should_suspend, "suspended: heartbeat says so");

    admin.resume_agent(&who, "cleared").expect("resume");
    admin
        .notify_policy_update(&who, "policy-2")
        .expect("policy");
    admin.kill_agent(&who, "done").expect("kill");
    assert_eq!(kind(&next(&mut stream).await), "resume:cleared");
    assert_eq!(kind(&next(&mut stream).await), "policy:policy-2");
    assert_eq!(kind(&next(&mut stream).await), "kill:done");
    let hb = bounded(
        "Heartbeat",
        lifecycle.heartbeat(heartbeat(me.token.clone())),
    )
    .await
    .expect("heartbeat")
    .into_inner();
    assert!(!hb.should_suspend && hb.policy_updated);

    // Nothing else arrives; the stream stays open.
    let quiet = tokio::time::timeout(Duration::from_millis(500), stream.message()).await;
    assert!(quiet.is_err(), "unexpected: {quiet:?}");

    // An unknown token is refused.
    let err = bounded("Heartbeat", lifecycle.heartbeat(heartbeat("nope".into())))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    // Deregistering ends the stream and revokes the token.
    let r = bounded(
        "Deregister",
        lifecycle.deregister(DeregisterRequest {
            agent_id: Some(me.agent.clone()),
            credential_token: me.token.clone(),
            reason: "interop done".into(),
        }),
    )
    .await
    .expect("deregister")
    .into_inner();
    assert!(r.success);
    assert_eq!(r.agent_id, me.agent.agent_id);
    assert!(bounded("the stream's end", stream.message())
        .await
        .expect("a clean end")
        .is_none());
    let err = bounded(
        "Heartbeat",
        lifecycle.heartbeat(heartbeat(me.token.clone())),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    gw.shutdown().await.expect("gateway shuts down");
}

/// With [`Reregistration::Refuse`] tether's gateway answers a second
/// registration of the same did:key as Agent Assembly's does after a
/// restart: `ALREADY_EXISTS`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusing_reregistration_is_already_exists_for_aa_client() {
    let gw = serve(
        Gateway::builder()
            .tokens(TokenTable::required([]))
            .reregistration(Reregistration::Refuse),
    )
    .await;
    let key = fresh_key();
    bounded("register", register(&gw.endpoint(), ORG, TEAM, &key))
        .await
        .expect("first registration");
    let err = bounded("register again", register(&gw.endpoint(), ORG, TEAM, &key))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    gw.shutdown().await.expect("gateway shuts down");
}
