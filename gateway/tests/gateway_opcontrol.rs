//! The op-control stream (kill switch) of the reference gateway, over real
//! gRPC, steered through the admin handle and the admin service.

mod gateway_support;

use gateway_support::*;
use tether_gateway::auth::TokenTable;
use tether_gateway::ops::{AgentKey, SignalError};
use tether_gateway::{AdminError, Gateway, RunningGateway};
use tether_proto::admin::admin_service_client::AdminServiceClient;
use tether_proto::admin::halt_request::Scope;
use tether_proto::admin::{HaltRequest, PauseOpRequest, ResumeOpRequest, TerminateOpRequest};
use tether_proto::policy::policy_service_client::PolicyServiceClient;
use tether_proto::policy::{OpControlMessage, OpControlSignal, OpControlSubscribeRequest};
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};

async fn open(
    ch: &Channel,
    agent: &AgentKey,
    cred: Cred<'_>,
) -> Result<Streaming<OpControlMessage>, Status> {
    let req = OpControlSubscribeRequest {
        agent_id: Some(wire(agent)),
    };
    within(PolicyServiceClient::new(ch.clone()).op_control_stream(request(req, cred)))
        .await
        .map(|r| r.into_inner())
}

async fn next(s: &mut Streaming<OpControlMessage>) -> (String, OpControlSignal) {
    let m = within(s.message()).await.unwrap().expect("stream ended");
    (m.op_id, OpControlSignal::try_from(m.signal).unwrap())
}

fn a() -> AgentKey {
    key("o", "t", "a")
}

fn b() -> AgentKey {
    key("o", "t", "b")
}

async fn gateway() -> RunningGateway {
    start(Gateway::builder().tokens(TokenTable::required([
        ("tok-a".to_owned(), a()),
        ("tok-b".to_owned(), b()),
    ])))
    .await
}

#[tokio::test]
async fn snapshot_of_paused_resumed_and_terminated_ops_then_live_signals() {
    let gw = gateway().await;
    let admin = gw.admin();
    admin.pause("tr1:s1", a()).unwrap();
    admin.pause("tr2:s2", a()).unwrap();
    admin.resume("tr2:s2", a()).unwrap();
    let term = admin.terminate("tr3:s3", a()).unwrap();
    admin.pause("trb:s", b()).unwrap();
    // Same agent id in another org: not agent a's op.
    admin.pause("tro:s", key("other", "t", "a")).unwrap();

    let ch = channel(&gw).await;
    let mut s = open(&ch, &a(), Cred::Header("tok-a")).await.unwrap();
    use OpControlSignal::*;
    assert_eq!(next(&mut s).await, ("tr1:s1".into(), Pause));
    assert_eq!(next(&mut s).await, ("tr2:s2".into(), Resume));
    let m = within(s.message()).await.unwrap().unwrap();
    assert_eq!(
        (m.op_id.as_str(), m.signal, m.sequence),
        ("tr3:s3", Terminate as i32, term.sequence)
    );

    // Live: b's and the other org's signals are filtered out; a's, its
    // agent-wide halt and the fleet halt arrive in order.
    admin.pause("trb:s2", b()).unwrap();
    admin.pause("tro:s2", key("other", "t", "a")).unwrap();
    let live = admin.pause("tr4:s4", a()).unwrap();
    assert_eq!(live.subscribers, 1);
    let m = within(s.message()).await.unwrap().unwrap();
    assert_eq!(
        (m.op_id.as_str(), m.signal, m.sequence),
        ("tr4:s4", Pause as i32, live.sequence)
    );
    let halt_a = admin.halt_agent(&a()).unwrap();
    assert_eq!((halt_a.op_id.as_str(), halt_a.subscribers), ("agent:a", 1));
    assert_eq!(next(&mut s).await, ("agent:a".into(), Terminate));
    let halt_b = admin.halt_agent(&b()).unwrap();
    assert_eq!(halt_b.subscribers, 0, "nobody listens for b");
    let all = admin.halt_all().unwrap();
    assert_eq!((all.op_id.as_str(), all.subscribers), ("*", 1));
    assert_eq!(next(&mut s).await, ("*".into(), Terminate));
    assert!(admin.status().halted_all);

    // A new subscriber of b gets b's ops and both halts that cover it.
    let mut sb = open(&ch, &b(), Cred::Bearer("tok-b")).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(next(&mut sb).await);
    }
    assert_eq!(
        got,
        vec![
            ("trb:s".into(), Pause),
            ("trb:s2".into(), Pause),
            ("agent:b".into(), Terminate),
            ("*".into(), Terminate)
        ]
    );
    assert_eq!(admin.status().op_control_streams, 2);
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn credentials_and_agent_identity_are_enforced() {
    let gw = gateway().await;
    let ch = channel(&gw).await;
    assert_eq!(
        open(&ch, &a(), Cred::None).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert_eq!(
        open(&ch, &a(), Cred::Header("bad"))
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    let err = open(&ch, &b(), Cred::Header("tok-a")).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    // Same agent id, another org or team: still another agent.
    for other in [key("x", "t", "a"), key("o", "x", "a")] {
        let err = open(&ch, &other, Cred::Header("tok-a")).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{other:?}");
    }
    assert_eq!(gw.admin().status().op_control_streams, 0);
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn terminate_is_final_and_admin_arguments_are_checked() {
    let gw = gateway().await;
    let ch = channel(&gw).await;
    let mut admin = AdminServiceClient::new(ch.clone());
    let mut s = open(&ch, &a(), Cred::Header("tok-a")).await.unwrap();
    let t = admin
        .terminate_op(TerminateOpRequest {
            op_id: "x:y".into(),
            agent_id: Some(wire(&a())),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(t.subscribers, 1);
    assert_eq!(
        next(&mut s).await,
        ("x:y".into(), OpControlSignal::Terminate)
    );
    let err = admin
        .resume_op(ResumeOpRequest {
            op_id: "x:y".into(),
            agent_id: Some(wire(&a())),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(
        gw.admin().pause("x:y", a()),
        Err(AdminError::Op(SignalError::Terminated("x:y".into())))
    );
    // Missing agent for an ordinary op, empty op id, halt without scope or
    // with all=false: refused.
    let bad = [
        admin
            .pause_op(PauseOpRequest {
                op_id: "p:q".into(),
                agent_id: None,
            })
            .await
            .unwrap_err(),
        admin.pause_op(PauseOpRequest::default()).await.unwrap_err(),
        admin.halt(HaltRequest { scope: None }).await.unwrap_err(),
        admin
            .halt(HaltRequest {
                scope: Some(Scope::All(false)),
            })
            .await
            .unwrap_err(),
        admin
            .halt(HaltRequest {
                scope: Some(Scope::Agent(Default::default())),
            })
            .await
            .unwrap_err(),
    ];
    for e in bad {
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    }
    assert!(
        !gw.admin().status().halted_all,
        "no refused halt halted anything"
    );
    let h = admin
        .halt(HaltRequest {
            scope: Some(Scope::Agent(wire(&a()))),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((h.op_id.as_str(), h.subscribers), ("agent:a", 1));
    assert_eq!(
        next(&mut s).await,
        ("agent:a".into(), OpControlSignal::Terminate)
    );
    // The terminated op stays terminated for a reconnecting client.
    drop(s);
    let mut again = open(&ch, &a(), Cred::Header("tok-a")).await.unwrap();
    assert_eq!(
        next(&mut again).await,
        ("x:y".into(), OpControlSignal::Terminate)
    );
    assert_eq!(
        next(&mut again).await,
        ("agent:a".into(), OpControlSignal::Terminate)
    );
    gw.shutdown().await.unwrap();
}

// Current-thread runtime: the signals below are sent back to back, before
// the server task can forward any, so the subscriber deterministically lags.
#[tokio::test(flavor = "current_thread")]
async fn a_lagging_op_control_stream_is_ended_and_a_reconnect_gets_a_fresh_snapshot() {
    let gw = start(Gateway::builder().op_live_capacity(2)).await;
    let admin = gw.admin();
    let ch = channel(&gw).await;
    let mut s = open(&ch, &a(), Cred::None).await.unwrap();
    for i in 0..5 {
        admin.pause(&format!("t:{i}"), a()).unwrap();
    }
    let end = within(s.message()).await.unwrap_err();
    assert_eq!(end.code(), Code::Unavailable, "{end:?}");
    let mut s = open(&ch, &a(), Cred::None).await.unwrap();
    for i in 0..5 {
        assert_eq!(
            next(&mut s).await,
            (format!("t:{i}"), OpControlSignal::Pause)
        );
    }
    gw.shutdown().await.unwrap();
}
