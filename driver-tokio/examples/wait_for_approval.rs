//! A call that needs a human: the gateway answers PENDING, `check` waits for
//! the reviewer's verdict (up to the approval deadline, after which the
//! configured fallback applies and the verdict says the approval is still
//! pending), and reports who decided.
//!
//! `cargo run --example wait_for_approval` serves the reference gateway
//! with `approve deploy`, checks a `deploy` call, and plays the reviewer
//! from another task through the gateway's admin handle (in production the
//! reviewer uses `assembly.approval.v1.ApprovalService`, e.g.
//! `tether ctl decide`).

use std::time::Duration;

use tether_gateway::desk::Review;
use tether_gateway::rules::RuleTable;
use tether_gateway::Gateway;
use tether_tokio::client::{
    AgentIdentity, Decision, Tether, TetherConfig, ToolCall, VerdictSource,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rules = RuleTable::parse("approve deploy 60\ndefault deny\n")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let gateway = Gateway::builder().rules(rules).serve(listener).await?;
    let admin = gateway.admin();

    let config = TetherConfig::new(
        gateway.endpoint(),
        AgentIdentity::new("acme", "support", "agent-7"),
        "example-runtime",
    )
    // Wait at most 30 s for a reviewer; then deny (the safe fallback).
    .with_approval_deadline(Duration::from_secs(30), Decision::Deny);
    let tether = Tether::connect(config)?;
    tether.ready(Duration::from_secs(10)).await?;

    // The reviewer: approves the first request that shows up.
    let reviewer = tokio::spawn(async move {
        loop {
            if let Some(p) = admin.pending().into_iter().next() {
                println!(
                    "reviewer: {} asks to {}; approving",
                    p.agent.agent_id, p.action
                );
                admin
                    .decide(&p.request_id, Review::Approved)
                    .expect("pending request");
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });

    let verdict = tether
        .check(
            "release-42:deploy",
            &ToolCall::new("deploy").with_args(r#"{"env":"prod"}"#),
        )
        .await?;
    match &verdict.source {
        VerdictSource::Reviewer { approval_id } => {
            println!(
                "{:?} by a reviewer (approval {approval_id}) after {:?}",
                verdict.decision, verdict.latency
            )
        }
        VerdictSource::ApprovalDeadline { approval_id } => {
            println!(
                "no reviewer in time; approval {approval_id} still pending; fallback {:?}",
                verdict.decision
            )
        }
        other => println!("{:?} by {other:?}", verdict.decision),
    }
    if verdict.allowed() {
        // ... deploy ...
    }
    reviewer.await?;

    tether.shutdown(Duration::from_secs(5)).await;
    gateway.shutdown().await?;
    Ok(())
}
