//! Direction 2: tether's runtime client (`tether_tokio::client::Tether`)
//! against Agent Assembly's real gateway (`aa-gateway =0.0.1-rc.7`, run as
//! a child process by this crate's `aa-gateway-serve` binary), with op
//! control through a real `nats-server -js`.

use std::time::Duration;

use aa_gateway::ops::nats::{
    ensure_op_control_stream, OpControlNatsConfig, OpControlNatsPublisher, OpControlWireEnvelope,
};
use aa_proto::assembly::approval::v1::approval_service_client::ApprovalServiceClient;
use aa_proto::assembly::approval::v1::{ApprovalDecisionType, DecideRequest, ListPendingRequest};
use aa_proto::assembly::policy::v1::OpControlSignal;
use tether_interop::aa_gateway_proc::AaGateway;
use tether_interop::nats::Nats;
use tether_interop::register::{fresh_key, register, Registered};
use tether_interop::{bounded, until, WAIT};
use tether_tokio::client::{
    AgentIdentity, Decision, KillSwitchDown, OpState, Tether, TetherConfig, ToolCall, Verdict,
    VerdictSource,
};

const EXE: &str = env!("CARGO_BIN_EXE_aa-gateway-serve");

const POLICY: &str = r#"
version: "1"
approval_timeout_secs: 60
tools:
  read_file:
    allow: true
  rm_rf:
    allow: false
  deploy:
    allow: true
    requires_approval_if: 'tool == "deploy"'
"#;

async fn registered(gw: &AaGateway) -> Registered {
    let key = fresh_key();
    match bounded(
        "Register at aa-gateway",
        register(&gw.url(), "acme", "team-a", &key),
    )
    .await
    {
        Ok(r) => r,
        Err(e) => panic!(
            "registration refused: {e:?}\n--- gateway log:\n{}",
            gw.log()
        ),
    }
}

fn client(gw: &AaGateway, agent: &Registered) -> Tether {
    let config = TetherConfig::new(
        gw.url(),
        AgentIdentity::new(
            agent.agent.org_id.clone(),
            agent.agent.team_id.clone(),
            agent.agent.agent_id.clone(),
        ),
        "runtime",
    )
    .with_token(agent.token.clone())
    .with_approval_deadline(WAIT, tether_tokio::client::Decision::Deny)
    .with_connect_timeout(Duration::from_secs(2));
    Tether::connect(config).expect("valid tether config")
}

async fn ready(tether: &Tether, gw: &AaGateway) {
    if let Err(e) = tether.ready(WAIT).await {
        panic!(
            "tether never got both streams up: {e}\n--- gateway log:\n{}",
            gw.log()
        );
    }
}

/// An allowed and a denied tool call, each answered by the gateway's policy
/// (source `Gateway`, with the gateway's reason).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_and_denied_tool_checks_come_from_the_gateway() {
    let gw = AaGateway::start(EXE, POLICY, None);
    let agent = registered(&gw).await;
    let tether = client(&gw, &agent);
    ready(&tether, &gw).await;

    let allowed = bounded(
        "check read_file",
        tether.check("t-1:s-1", &ToolCall::new("read_file")),
    )
    .await
    .expect("check answers");
    assert_eq!(allowed.decision, Decision::Allow, "{allowed:?}");
    assert_eq!(allowed.source, VerdictSource::Gateway, "{allowed:?}");

    let denied = bounded(
        "check rm_rf",
        tether.check("t-1:s-2", &ToolCall::new("rm_rf")),
    )
    .await
    .expect("check answers");
    assert_eq!(denied.decision, Decision::Deny, "{denied:?}");
    assert_eq!(denied.source, VerdictSource::Gateway, "{denied:?}");
    eprintln!("aa-gateway allow: {allowed:?}\naa-gateway deny: {denied:?}");
    tether.shutdown(Duration::from_secs(2)).await;
}

/// A call that needs approval is held by the gateway; a reviewer lists it
/// and approves it through `ApprovalService.Decide`; tether's check ends
/// `Allow`, from the reviewer, with the approval id the reviewer decided.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_approval_decided_through_the_approval_service() {
    let gw = AaGateway::start(EXE, POLICY, None);
    let agent = registered(&gw).await;
    let tether = client(&gw, &agent);
    ready(&tether, &gw).await;

    let held = {
        let tether = tether.clone();
        tokio::spawn(async move { tether.check("t-2:s-1", &ToolCall::new("deploy")).await })
    };

    // The reviewer's side needs a credential too (aa-gateway's fail-closed
    // interceptor guards ApprovalService): the agent's own serves here.
    let mut reviewer = ApprovalServiceClient::connect(gw.url())
        .await
        .expect("reviewer connects");
    fn with_token<T>(token: &str, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        r.metadata_mut()
            .insert("x-aa-credential-token", token.parse().expect("ascii token"));
        r
    }
    let request_id = bounded("the approval is pending at aa-gateway", async {
        loop {
            let pending = reviewer
                .list_pending(with_token(&agent.token, ListPendingRequest {}))
                .await
                .expect("ListPending")
                .into_inner();
            if let Some(p) = pending.requests.into_iter().next() {
                return p.request_id;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let decided = reviewer
        .decide(with_token(
            &agent.token,
            DecideRequest {
                request_id: request_id.clone(),
                decision: ApprovalDecisionType::Approved as i32,
                decided_by: "interop-reviewer".into(),
                reason: "ok".into(),
            },
        ))
        .await
        .expect("Decide")
        .into_inner();
    assert!(decided.success, "Decide failed: {}", decided.error_message);

    let verdict = bounded("the held check", held)
        .await
        .expect("task")
        .expect("check answers");
    eprintln!("aa-gateway held approval: {verdict:?}");
    assert_eq!(verdict.decision, Decision::Allow, "{verdict:?}");
    assert_eq!(
        verdict.source,
        VerdictSource::Reviewer {
            approval_id: request_id
        },
        "{verdict:?}"
    );
    tether.shutdown(Duration::from_secs(2)).await;
}

/// pause, resume and terminate published through NATS JetStream (as
/// aa-api publishes them) reach `tether.ops()` over aa-gateway's
/// `OpControlStream`; a terminated op's check is denied at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn op_control_through_jetstream_reaches_tether_ops() {
    let Some(nats) = Nats::start() else {
        eprintln!(
            "SKIPPED op-control assertions: nats-server is not installed (.ci/interop installs it)"
        );
        return;
    };
    let gw = AaGateway::start(EXE, POLICY, Some(nats.url()));
    let agent = registered(&gw).await;
    let tether = client(&gw, &agent);
    ready(&tether, &gw).await;

    let config = OpControlNatsConfig::new(nats.url());
    let publisher = OpControlNatsPublisher::new(config.connect().await.expect("NATS connects"));
    let js = async_nats::jetstream::new(config.connect().await.expect("NATS connects"));
    ensure_op_control_stream(&js)
        .await
        .expect("op-control stream");
    let send = |op: &str, signal: OpControlSignal| OpControlWireEnvelope {
        org_id: agent.agent.org_id.clone(),
        team_id: agent.agent.team_id.clone(),
        agent_id: agent.agent.agent_id.clone(),
        op_id: op.to_owned(),
        signal: signal as i32,
        global: false,
    };
    let op = "t-3:s-1";
    let ops = tether.ops();

    // The bridge's consumer may start after the stream exists: send the
    // pause until it is seen (a repeat is harmless: same state).
    bounded("pause reaches tether", async {
        loop {
            publisher
                .publish(&send(op, OpControlSignal::Pause))
                .await
                .expect("publish pause");
            tokio::time::sleep(Duration::from_millis(300)).await;
            if ops.state(op) == OpState::Paused {
                break;
            }
        }
    })
    .await;
    publisher
        .publish(&send(op, OpControlSignal::Resume))
        .await
        .expect("publish resume");
    until("resume reaches tether", || {
        ops.state(op) == OpState::Running
    })
    .await;
    publisher
        .publish(&send(op, OpControlSignal::Terminate))
        .await
        .expect("publish terminate");
    until("terminate reaches tether", || {
        ops.state(op) == OpState::Terminated
    })
    .await;

    let verdict = bounded(
        "check on the terminated op",
        tether.check(op, &ToolCall::new("read_file")),
    )
    .await
    .expect("check answers");
    assert_eq!(verdict.decision, Decision::Deny);
    assert_eq!(verdict.source, VerdictSource::Terminated);
    tether.shutdown(Duration::from_secs(2)).await;
}

/// Kill the gateway and start it again with the same state; wait until
/// tether reports the refused credential; then check a tool that was not
/// checked (nor cached) before, twice. Returns both answers.
async fn restart_then_check_twice() -> (Verdict, Verdict) {
    let mut gw = AaGateway::start(EXE, POLICY, None);
    let agent = registered(&gw).await;
    let tether = client(&gw, &agent);
    ready(&tether, &gw).await;
    let before = bounded(
        "check before restart",
        tether.check("t-4:s-1", &ToolCall::new("read_file")),
    )
    .await
    .expect("check answers");
    assert!(before.allowed());

    gw.restart();
    let mut status = tether.watch_status();
    bounded(
        "tether reports the refused credential",
        status.wait_for(|s| {
            matches!(
                s.kill_switch.unreachable,
                Some(KillSwitchDown::CredentialRefused { .. })
            ) && !s.invalidation.connected
                && s.invalidation
                    .last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("Unauthenticated"))
        }),
    )
    .await
    .expect("status channel open");

    let first = bounded(
        "check after restart",
        tether.check("t-4:s-2", &ToolCall::new("rm_rf")),
    )
    .await
    .expect("check answers");
    let second = bounded(
        "second check after restart",
        tether.check("t-4:s-3", &ToolCall::new("rm_rf")),
    )
    .await
    .expect("check answers");
    eprintln!("after restart: {first:?}\nthen: {second:?}");
    tether.shutdown(Duration::from_secs(2)).await;
    (first, second)
}

/// Agent Assembly's gateway keeps its agents but forgets every token on a
/// restart (WIRE.md): tether's client says so plainly (both streams
/// refused `UNAUTHENTICATED`, the kill switch unreachable because the
/// credential is refused), and its checks still answer within the bound,
/// denied, not hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_gateway_restart_the_client_reports_the_refused_credential() {
    let (first, second) = restart_then_check_twice().await;
    assert_eq!(first.decision, Decision::Deny, "{first:?}");
    assert_eq!(second.decision, Decision::Deny, "{second:?}");
}

/// The refusal of a stale token is not a policy decision (WIRE.md), so it
/// must not be cached. aa-gateway sends it as `DENY` with reason
/// `"credential token mismatch"` and `policy_rule:
/// "a2a_identity_verification"`, the gateway's identity check; tether's
/// answer classification (`tether_core::answer::IDENTITY_CHECK_RULE`)
/// knows it is no rule about the call, so the second check asks again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_refusal_after_a_restart_is_not_cached() {
    let (first, second) = restart_then_check_twice().await;
    assert_eq!(first.source, VerdictSource::Gateway, "{first:?}");
    assert_ne!(second.source, VerdictSource::Cache, "{second:?}");
}
