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
use tether_tokio::client::{
    AgentIdentity, AgentSigningKey, Decision, RegistrationPhase, RegistrationSettings, Tether,
    TetherConfig,
};
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

/// The demo agent's Ed25519 key seed: a fixed, public demo key, so the
/// agent id (its did:key) is the same every run. A real agent keeps its own
/// key in a file (`tether agent --key FILE`).
const DEMO_KEY_SEED: [u8; 32] = [7; 32];

pub(crate) fn demo_key() -> AgentSigningKey {
    AgentSigningKey::from_seed(DEMO_KEY_SEED)
}

/// The demo agent's id: the did:key of its key.
pub(crate) fn agent_id() -> String {
    demo_key().did()
}
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
        agent_id: agent_id(),
    }
}

pub(crate) fn gateway_builder() -> GatewayBuilder {
    Gateway::builder()
        .rules(RuleTable::parse(RULES).expect("built-in rules parse"))
        // No configured tokens: an agent gets one only by registering
        // through the lifecycle service (challenge, signed nonce).
        .tokens(TokenTable::required(
            std::iter::empty::<(String, AgentKey)>(),
        ))
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
        AgentIdentity::new("acme", "support", ""),
        "demo-runtime",
    )
    .with_registration(
        RegistrationSettings::new(demo_key())
            .with_name("demo-agent")
            .with_tools(["read_file", "search", "rm_rf", "deploy"]),
    )
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
            status.wait_for(|s| s
                .registration
                .as_ref()
                .is_some_and(|r| r.phase == RegistrationPhase::Registered)
                && s.invalidation.connected
                && s.op_control.connected),
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
            "agent acme/support/{} registered (a challenge signed with its Ed25519 key; the token it was issued is its credential) and connected through a cuttable proxy at {}",
            agent_id(),
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
    link::lifecycle_suspend(&mut tl, &stage).await;
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
