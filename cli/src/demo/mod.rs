//! `tether demo`: serves the reference gateway on an ephemeral 127.0.0.1
//! port, connects an agent runtime in the same process (through a loopback
//! proxy that can cut the connection), and plays a scenario that shows each
//! guarantee happening, with timestamps and measured latencies. It ends
//! with a summary table and fails if any guarantee did not hold.

mod kernel;
mod link;
mod timeline;

use std::time::Duration;

use tether_fault::LoopbackProxy;
use tether_gateway::auth::TokenTable;
use tether_gateway::ops::AgentKey;
use tether_gateway::rules::RuleTable;
use tether_gateway::{Gateway, GatewayBuilder, RunningGateway};
use tether_tokio::client::{AgentIdentity, Decision, Tether, TetherConfig};
use tokio::net::TcpListener;

use crate::common::CliError;
use timeline::Timeline;

/// Arguments of `tether demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// Seed of every jitter generator (the same seed replays the same
    /// reconnect delays).
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

pub(crate) const TOKEN: &str = "demo-token";
pub(crate) const RULES: &str = "\
allow read_file
allow search
deny  rm_rf
approve deploy 60
default deny
";

pub(crate) fn agent_key() -> AgentKey {
    AgentKey {
        org_id: "acme".into(),
        team_id: "support".into(),
        agent_id: "agent-7".into(),
    }
}

pub(crate) fn gateway_builder() -> GatewayBuilder {
    Gateway::builder()
        .rules(RuleTable::parse(RULES).expect("built-in rules parse"))
        .tokens(TokenTable::required([(TOKEN.to_owned(), agent_key())]))
}

/// The demo's moving parts.
pub(crate) struct Stage {
    pub(crate) gateway: Option<RunningGateway>,
    pub(crate) port: u16,
    pub(crate) proxy: LoopbackProxy,
    pub(crate) tether: Tether,
}

pub(crate) async fn run(args: DemoArgs, json: bool) -> Result<(), CliError> {
    let mut tl = Timeline::new(json);
    tl.section("set-up");
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| CliError::Other(format!("cannot bind 127.0.0.1: {e}")))?;
    let gateway = gateway_builder()
        .serve(listener)
        .await
        .map_err(|e| CliError::Other(format!("cannot start the gateway: {e}")))?;
    let port = gateway.local_addr().port();
    tl.event(
        &format!("reference gateway serving on {}", gateway.local_addr()),
        None,
    );
    let proxy = LoopbackProxy::start(gateway.local_addr())
        .await
        .map_err(|e| CliError::Other(format!("cannot start the loopback proxy: {e}")))?;
    let mut config = TetherConfig::new(
        proxy.url(),
        AgentIdentity::new("acme", "support", "agent-7"),
        "demo-runtime",
    )
    .with_token(TOKEN)
    .with_seed(args.seed)
    .with_approval_deadline(Duration::from_millis(1500), Decision::Deny);
    // Demo-speed reconnects: 200 ms base, same x1.6 and ±20 % jitter.
    config.backoff.base = Duration::from_millis(200);
    config.backoff.max = Duration::from_secs(2);
    config.backoff.healthy_after = Duration::from_secs(2);
    config.ops.outage_grace = Duration::from_secs(10);
    let tether = Tether::connect(config)
        .map_err(|e| CliError::Other(format!("cannot build the client: {e}")))?;
    let started = std::time::Instant::now();
    let mut status = tether.watch_status();
    // Evaluate to a bool at once: a held `watch::Ref` would block the
    // stream tasks' status updates.
    let up = matches!(
        tokio::time::timeout(
            Duration::from_secs(10),
            status.wait_for(|s| s.invalidation.connected && s.op_control.connected),
        )
        .await,
        Ok(Ok(_))
    );
    if !up {
        return Err(CliError::Other(
            "the agent could not connect to the embedded gateway".into(),
        ));
    }
    tl.event(
        &format!(
            "agent acme/support/agent-7 connected through a cuttable proxy at {}",
            proxy.local_addr()
        ),
        Some(started.elapsed()),
    );
    let mut stage = Stage {
        gateway: Some(gateway),
        port,
        proxy,
        tether,
    };

    link::cache_then_invalidate(&mut tl, &stage).await;
    link::approvals(&mut tl, &stage).await;
    link::kill_switch(&mut tl, &stage).await;
    link::gateway_restart(&mut tl, &mut stage).await;
    kernel::queued_work(&mut tl).await;
    kernel::periodic_job(&mut tl).await;

    stage.tether.shutdown(Duration::from_secs(2)).await;
    if let Some(gw) = stage.gateway.take() {
        let _ = gw.shutdown().await;
    }
    match tl.summary() {
        0 => Ok(()),
        n => Err(CliError::DemoFailed(n)),
    }
}

/// Poll `cond` every 2 ms for at most `limit` (state we cannot subscribe
/// to, such as the gateway's pending list). Returns whether it held.
pub(crate) async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    tokio::time::timeout(limit, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .is_ok()
}
