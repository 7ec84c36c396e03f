//! Direction 1: Agent Assembly's own runtime client (`aa-runtime`'s
//! `InvalidationClient`, with its `ApprovalSink`) against tether's
//! reference gateway, served in-process on 127.0.0.1.

use std::sync::Arc;
use std::time::Duration;

use aa_proto::assembly::common::v1::{ActionType, Decision as AaDecision};
use aa_proto::assembly::gateway::v1::Decision as AaVerdict;
use aa_proto::assembly::policy::v1::action_context::Action;
use aa_proto::assembly::policy::v1::{ActionContext, CheckActionRequest, ToolCallContext};
use aa_runtime::approval_sink::ApprovalSink;
use aa_runtime::gateway_client::GatewayClient;
use aa_runtime::invalidation_client::{InvalidationClient, InvalidationSink};
use tether_gateway::auth::TokenTable;
use tether_gateway::desk::Review;
use tether_gateway::rules::RuleTable;
use tether_gateway::{AdminHandle, Gateway, GatewayBuilder};
use tether_interop::{aa_agent_id, bounded, serve, serve_on, until, Recorder, Seen};

/// How long a test watches for a reconnect loop (aa's client reconnects at
/// once after a clean end of stream, so a loop shows dozens of streams).
const SETTLE: Duration = Duration::from_secs(3);

/// aa's `InvalidationClient` sends no credential, so these gateways are
/// open (anonymous subscribers are team `""`).
fn open_gateway() -> GatewayBuilder {
    Gateway::builder().tokens(TokenTable::open()).rules(
        RuleTable::parse("allow read_file\napprove deploy 30\nhold pay 30\ndefault deny\n")
            .expect("rules parse"),
    )
}

fn start(url: String, assembly_id: &str, sinks: Vec<Arc<dyn InvalidationSink>>) -> AbortOnDrop {
    AbortOnDrop(InvalidationClient::start(
        url,
        assembly_id.to_owned(),
        sinks,
    ))
}

/// Stops aa's client task when the test ends, however it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn subscribed(admin: &AdminHandle, streams_opened: u64) {
    until("the aa client's Subscribe stream is open", || {
        let s = admin.status();
        s.invalidation_streams == 1 && s.invalidation_streams_opened == streams_opened
    })
    .await;
}

fn policies(range: std::ops::Range<u64>) -> Vec<Seen> {
    range.map(|i| Seen::Policy(format!("agent-{i}"))).collect()
}

fn publish(admin: &AdminHandle, range: std::ops::Range<u64>) {
    for i in range {
        admin.publish_invalidation(&format!("agent-{i}"), i + 1, None);
    }
}

/// Every invalidation published through the gateway reaches the aa client
/// once, in order; the client's half-close after its one SubscribeRequest
/// does not end the stream, so it never reconnects: one stream for the
/// whole test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_invalidation_arrives_once_on_one_stream() {
    let gw = serve(open_gateway()).await;
    let admin = gw.admin();
    let rec = Recorder::default();
    let _aa = start(gw.endpoint(), "aa-asm-1", vec![Arc::new(rec.clone())]);
    subscribed(&admin, 1).await;

    // One to every agent (empty id), then 99 to named agents.
    assert_eq!(admin.publish_invalidation("", 1, None), 1, "one subscriber");
    publish(&admin, 1..100);
    let mut want = vec![Seen::Policy(String::new())];
    want.extend(policies(1..100));
    assert_eq!(rec.wait_for(100).await, want);

    tokio::time::sleep(SETTLE).await;
    assert_eq!(rec.seen(), want, "nothing delivered twice");
    let st = admin.status();
    assert_eq!(
        st.invalidation_streams_opened, 1,
        "aa's client opened more than one Subscribe stream: a reconnect loop"
    );
    assert_eq!(st.invalidation_streams, 1, "the stream is still open");
    gw.shutdown().await.expect("gateway shuts down");
}

/// The stream is closed by the gateway while events keep coming: aa's
/// client resubscribes from its `last_seq_seen`, and the gateway replays
/// exactly what it missed (no loss, no duplicate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stream_resumes_from_last_seq_seen_without_loss_or_duplicates() {
    let gw = serve(open_gateway()).await;
    let admin = gw.admin();
    let rec = Recorder::default();
    let _aa = start(gw.endpoint(), "aa-asm-2", vec![Arc::new(rec.clone())]);
    subscribed(&admin, 1).await;

    publish(&admin, 0..10);
    rec.wait_for(10).await;
    assert!(admin.close_subscription("aa-asm-2"), "the stream was open");
    // Published while aa's client is away (it backs off 1 s after the
    // UNAVAILABLE): kept in the subscriber's replay ring.
    publish(&admin, 10..20);
    subscribed(&admin, 2).await;
    publish(&admin, 20..30);
    assert_eq!(rec.wait_for(30).await, policies(0..30));

    tokio::time::sleep(SETTLE).await;
    assert_eq!(rec.seen(), policies(0..30), "nothing delivered twice");
    assert_eq!(admin.status().invalidation_streams_opened, 2);
    gw.shutdown().await.expect("gateway shuts down");
}

/// tether's gateway restarts on the same port: aa's client comes back by
/// itself and gets the new lifetime's events (it resubscribes with its old
/// `last_seq_seen`; the new gateway does not hold that against it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_gateway_restart_the_aa_client_gets_new_events() {
    let gw = serve(open_gateway()).await;
    let port = gw.local_addr().port();
    let rec = Recorder::default();
    let _aa = start(gw.endpoint(), "aa-asm-3", vec![Arc::new(rec.clone())]);
    subscribed(&gw.admin(), 1).await;
    publish(&gw.admin(), 0..5);
    rec.wait_for(5).await;

    gw.shutdown().await.expect("gateway shuts down");
    let gw = serve_on(open_gateway(), port).await;
    let admin = gw.admin();
    subscribed(&admin, 1).await;
    publish(&admin, 5..8);
    assert_eq!(rec.wait_for(8).await, policies(0..8));

    tokio::time::sleep(SETTLE).await;
    assert_eq!(rec.seen(), policies(0..8), "nothing delivered twice");
    assert_eq!(admin.status().invalidation_streams_opened, 1);
    gw.shutdown().await.expect("gateway shuts down");
}

fn tool_call(tool: &str) -> CheckActionRequest {
    CheckActionRequest {
        agent_id: Some(aa_agent_id()),
        action_type: ActionType::ToolCall as i32,
        trace_id: "trace-1".into(),
        span_id: "span-1".into(),
        context: Some(ActionContext {
            action: Some(Action::ToolCall(ToolCallContext {
                tool_name: tool.into(),
                ..Default::default()
            })),
        }),
        ..Default::default()
    }
}

/// aa's runtime asks tether's gateway with aa's own `GatewayClient`: a
/// PENDING answer carries an approval id; a reviewer's decision
/// (`AdminHandle::decide`) reaches aa's `ApprovalSink` waiter as
/// `ApprovalResolved`, approve as `APPROVED`, reject as `DENIED`, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decided_approval_reaches_the_aa_approval_sink() {
    let gw = serve(open_gateway()).await;
    let admin = gw.admin();
    let sink = Arc::new(ApprovalSink::new());
    let rec = Recorder::default();
    let _aa = start(
        gw.endpoint(),
        "aa-asm-4",
        vec![sink.clone(), Arc::new(rec.clone())],
    );
    subscribed(&admin, 1).await;
    let mut policy = bounded(
        "connect aa's GatewayClient",
        GatewayClient::connect(&gw.endpoint()),
    )
    .await
    .expect("aa's GatewayClient connects");

    let allowed = bounded(
        "CheckAction read_file",
        policy.check_action(tool_call("read_file")),
    )
    .await
    .expect("CheckAction answers");
    assert_eq!(allowed.decision(), AaDecision::Allow);

    let mut ids = Vec::new();
    for (review, want) in [
        (Review::Approved, AaVerdict::Approved),
        (Review::Denied, AaVerdict::Denied),
    ] {
        let pending = bounded(
            "CheckAction deploy",
            policy.check_action(tool_call("deploy")),
        )
        .await
        .expect("CheckAction answers");
        assert_eq!(pending.decision(), AaDecision::Pending);
        let id = pending.approval_id.clone();
        assert!(!id.is_empty(), "PENDING carries an approval id");
        let verdict = sink.wait_for_approval(id.clone(), tether_interop::WAIT);
        admin.decide(&id, review).expect("the approval is pending");
        assert_eq!(bounded("the aa sink's verdict", verdict).await, want);
        ids.push((id, want));
    }

    // A call the gateway holds open until the reviewer decides: the answer
    // is the verdict with the approval id, and the same verdict is
    // broadcast to the aa client.
    let held = tokio::spawn(async move { policy.check_action(tool_call("pay")).await });
    until("the held call is pending at the gateway", || {
        admin.pending().iter().any(|p| p.action == "pay")
    })
    .await;
    let id = admin
        .pending()
        .into_iter()
        .find(|p| p.action == "pay")
        .expect("pending pay")
        .request_id;
    let verdict = sink.wait_for_approval(id.clone(), tether_interop::WAIT);
    admin
        .decide(&id, Review::Approved)
        .expect("the approval is pending");
    let answer = bounded("the held CheckAction", held)
        .await
        .expect("task")
        .expect("CheckAction answers");
    assert_eq!(answer.decision(), AaDecision::Allow);
    assert_eq!(answer.approval_id, id);
    assert_eq!(
        bounded("the aa sink's verdict", verdict).await,
        AaVerdict::Approved
    );
    ids.push((id, AaVerdict::Approved));

    let want: Vec<Seen> = ids
        .into_iter()
        .map(|(id, v)| Seen::Approval(id, v))
        .collect();
    tokio::time::sleep(SETTLE).await;
    assert_eq!(rec.seen(), want, "each verdict once, nothing else");
    assert_eq!(sink.waiter_count(), 0);
    assert_eq!(admin.status().invalidation_streams_opened, 1);
    gw.shutdown().await.expect("gateway shuts down");
}
