//! Direction 1: Agent Assembly's own op-control client (`aa-runtime`'s
//! `OpControlClient` and `OpControlStore`) against tether's reference
//! gateway, served in-process on 127.0.0.1.
//!
//! aa's client counts every message it receives in the
//! `aa_op_control_signals_total` counter; this binary installs a counting
//! `metrics` recorder to read it, so it holds ONE test (the counter is
//! process-wide).

use std::time::Duration;

use aa_runtime::op_control::{OpControlClient, OpControlStore, OpState};
use tether_gateway::auth::TokenTable;
use tether_gateway::ops::AgentKey;
use tether_gateway::{AdminHandle, Gateway};
use tether_interop::{aa_agent_id, agent_key, counting_metrics, serve, until, Counts, TOKEN};

const SIGNALS: &str = "aa_op_control_signals_total";

async fn received(counts: &Counts, n: u64) {
    until(&format!("{n} op-control messages at the aa client"), || {
        counts.get(SIGNALS) >= n
    })
    .await;
}

fn other_agent() -> AgentKey {
    AgentKey {
        agent_id: "agent-2".into(),
        ..agent_key()
    }
}

async fn state_is(store: &OpControlStore, op: &str, want: Option<OpState>) {
    until(&format!("op {op} is {want:?} at the aa client"), || {
        store.state(op) == want
    })
    .await;
}

/// pause, resume, terminate, and the agent-wide halt reach aa's client
/// once each, with the effect aa's store gives them; a signal for another
/// agent does not reach it; and the one stream stays open (no reconnect,
/// which would also replay tether's per-subscribe snapshot and count
/// twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn op_control_signals_arrive_once_on_one_stream() {
    let counts = counting_metrics();
    let gw =
        serve(Gateway::builder().tokens(TokenTable::required([(TOKEN.to_owned(), agent_key())])))
            .await;
    let admin: AdminHandle = gw.admin();
    let store = OpControlStore::new();
    let task = OpControlClient::start(
        gw.endpoint(),
        aa_agent_id(),
        Some(TOKEN.to_owned()),
        store.clone(),
    );
    until("aa's op-control stream is open", || {
        admin.status().op_control_streams == 1
    })
    .await;

    let op1 = "trace-1:span-1";
    let op2 = "trace-2:span-2";
    admin.pause(op1, agent_key()).expect("pause");
    received(counts, 1).await;
    state_is(&store, op1, Some(OpState::Paused)).await;

    admin.resume(op1, agent_key()).expect("resume");
    received(counts, 2).await;
    state_is(&store, op1, None).await;

    // Not this agent's: filtered by the gateway.
    admin
        .pause("trace-9:span-9", other_agent())
        .expect("pause other");

    admin.terminate(op2, agent_key()).expect("terminate");
    received(counts, 3).await;
    state_is(&store, op2, Some(OpState::Terminated)).await;

    admin.halt_agent(&agent_key()).expect("halt agent");
    received(counts, 4).await;
    state_is(&store, "agent:agent-1", Some(OpState::Terminated)).await;

    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(counts.get(SIGNALS), 4, "each signal once, none for agent-2");
    assert_eq!(store.state("trace-9:span-9"), None);
    assert_eq!(
        counts.get("aa_op_control_reconnects_total"),
        0,
        "aa's op-control client never had to reconnect"
    );
    assert_eq!(
        admin.status().op_control_streams,
        1,
        "the stream is still open"
    );
    task.abort();
    gw.shutdown().await.expect("gateway shuts down");
}
