//! Run a long tool under the kill switch with `Tether::run`: an operator's
//! pause suspends it (it is not polled, so it makes no progress) until
//! resume, and a terminate cancels it where it is; the caller learns which.
//!
//! `cargo run --example long_running_tool` serves the reference gateway and
//! plays the operator through its admin handle (in production:
//! `tether ctl pause|resume|terminate`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tether_gateway::ops::AgentKey;
use tether_gateway::rules::RuleTable;
use tether_gateway::Gateway;
use tether_tokio::client::{AgentIdentity, OpBlocked, Tether, TetherConfig, ToolCall};

/// A crawler that fetches one page every 20 ms, up to `pages`.
async fn crawl(pages: usize, done: Arc<AtomicUsize>) -> usize {
    for _ in 0..pages {
        tokio::time::sleep(Duration::from_millis(20)).await;
        done.fetch_add(1, Ordering::SeqCst);
    }
    pages
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let gateway = Gateway::builder()
        .rules(RuleTable::parse("allow crawl\ndefault deny\n")?)
        .serve(listener)
        .await?;
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

    let op = "trace-3:span-1";
    let verdict = tether.check(op, &ToolCall::new("crawl")).await?;
    assert!(verdict.allowed());

    // Start the crawl under tether.
    let done = Arc::new(AtomicUsize::new(0));
    let run = tokio::spawn({
        let (t, done) = (tether.clone(), done.clone());
        async move { t.run(op, crawl(10_000, done)).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Pause: the crawl stops making progress.
    admin.pause(op, agent.clone())?;
    while tether.ops().waiting() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let at_pause = done.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    println!(
        "paused after {at_pause} pages; 300 ms later still {}",
        done.load(Ordering::SeqCst)
    );
    assert_eq!(done.load(Ordering::SeqCst), at_pause);

    // Resume: it goes on.
    admin.resume(op, agent.clone())?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    println!("resumed: {} pages", done.load(Ordering::SeqCst));

    // Terminate: cancelled where it is.
    admin.terminate(op, agent)?;
    match run.await? {
        Err(OpBlocked::Terminated) => println!(
            "terminated: the crawl was cancelled after {} pages",
            done.load(Ordering::SeqCst)
        ),
        other => panic!("expected a terminate, got {other:?}"),
    }

    tether.shutdown(Duration::from_secs(5)).await;
    gateway.shutdown().await?;
    Ok(())
}
