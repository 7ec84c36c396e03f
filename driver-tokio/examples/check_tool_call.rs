//! Check each tool call with the gateway before running it, and honour the
//! verdict.
//!
//! `cargo run --example check_tool_call` serves tether's reference gateway
//! on an ephemeral 127.0.0.1 port (rules: `read_file` allowed, `rm_rf`
//! denied), connects a client to it, and checks three calls. Against your
//! own gateway, skip the first block and pass its URL and your token.

use std::time::Duration;

use tether_gateway::rules::RuleTable;
use tether_gateway::Gateway;
use tether_tokio::client::{AgentIdentity, Tether, TetherConfig, ToolCall};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // An embedded gateway, so the example needs nothing else running.
    let rules = RuleTable::parse("allow read_file\ndeny rm_rf\ndefault deny\n")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let gateway = Gateway::builder().rules(rules).serve(listener).await?;

    let config = TetherConfig::new(
        gateway.endpoint(),
        AgentIdentity::new("acme", "support", "agent-7"),
        "example-runtime",
    );
    let tether = Tether::connect(config)?;
    // `connect` does not wait for the gateway; `ready` does, with a bound.
    tether.ready(Duration::from_secs(10)).await?;

    let calls = [
        (
            "trace-1:span-1",
            ToolCall::new("read_file").with_args(r#"{"path":"README.md"}"#),
        ),
        (
            "trace-1:span-2",
            ToolCall::new("rm_rf").with_args(r#"{"path":"/"}"#),
        ),
        // The same call again: answered from the policy cache.
        (
            "trace-1:span-3",
            ToolCall::new("read_file").with_args(r#"{"path":"README.md"}"#),
        ),
    ];
    for (op_id, call) in &calls {
        let verdict = tether.check(op_id, call).await?;
        if verdict.allowed() {
            println!(
                "{op_id} {:<9} allowed by {:?}: running it",
                call.tool_name, verdict.source
            );
            // ... run the tool here ...
        } else {
            println!(
                "{op_id} {:<9} denied by {:?} ({}): not running it",
                call.tool_name, verdict.source, verdict.reason
            );
        }
    }

    tether.shutdown(Duration::from_secs(5)).await;
    gateway.shutdown().await?;
    Ok(())
}
