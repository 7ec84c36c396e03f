//! React to the kill switch. An operator pauses an op: its next check waits.
//! A resume lets it go on. A terminate ends it for good: the check in
//! flight is denied at once, and a tool already running under
//! `Tether::run` is cancelled.
//!
//! `cargo run --example kill_switch` serves the reference gateway and plays
//! the operator through its admin handle (in production:
//! `tether ctl pause|resume|terminate`, or `tether.admin.v1.AdminService`).

use std::time::Duration;

use tether_gateway::ops::AgentKey;
use tether_gateway::rules::RuleTable;
use tether_gateway::Gateway;
use tether_tokio::client::{AgentIdentity, OpState, Tether, TetherConfig, ToolCall};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rules = RuleTable::parse("default allow\n")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let gateway = Gateway::builder().rules(rules).serve(listener).await?;
    let admin = gateway.admin();
    let agent = AgentKey {
        org_id: "acme".into(),
        team_id: "support".into(),
        agent_id: "agent-7".into(),
    };

    let tether = Tether::connect(TetherConfig::new(
        gateway.endpoint(),
        AgentIdentity::new("acme", "support", "agent-7"),
        "example-runtime",
    ))?;
    tether.ready(Duration::from_secs(10)).await?;
    let op = "trace-9:span-1";
    let call = ToolCall::new("crawl");

    // 1. Paused: the check waits until the operator resumes.
    admin.pause(op, agent.clone())?;
    wait_for_state(&tether, op, OpState::Paused).await;
    let waiting = tokio::spawn({
        let (t, call) = (tether.clone(), call.clone());
        async move { t.check(op, &call).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    println!("paused: {} check(s) waiting", tether.ops().waiting());
    admin.resume(op, agent.clone())?;
    let v = waiting.await??;
    println!("resumed: check answered {:?} by {:?}", v.decision, v.source);

    // 2. A long-running tool, run under the kill switch: the terminate
    //    cancels it where it is (see examples/long_running_tool.rs).
    let tool = tokio::spawn({
        let t = tether.clone();
        async move { t.run(op, tokio::time::sleep(Duration::from_secs(60))).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    admin.terminate(op, agent.clone())?;
    println!("terminated: the running tool ended with {:?}", tool.await?);

    // 3. Every later check of the op is denied at once, for good.
    let v = tether.check(op, &call).await?;
    println!(
        "after terminate: {:?} by {:?} ({})",
        v.decision, v.source, v.reason
    );
    assert!(!v.allowed());

    tether.shutdown(Duration::from_secs(5)).await;
    gateway.shutdown().await?;
    Ok(())
}

async fn wait_for_state(tether: &Tether, op: &str, state: OpState) {
    while tether.ops().state(op) != state {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
