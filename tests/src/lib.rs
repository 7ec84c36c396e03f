//! Helpers for tether's end-to-end tests (the fault-injecting proxy is
//! `tether_fault::LoopbackProxy`): a recording invalidation sink, one-line set-up of a
//! reference gateway and a client with test-speed backoff, and a user's
//! queued work for the queued-work runner ([`queue::QueuedWork`]).
//!
//! Everything here talks to loopback addresses only, and every wait is
//! bounded by [`WAIT`].

pub mod queue;
pub mod recorder;
pub mod scripted;

use std::future::Future;
use std::time::Duration;

use tether_core::backoff::BackoffConfig;
use tether_gateway::auth::TokenTable;
use tether_gateway::ops::AgentKey;
use tether_gateway::rules::RuleTable;
use tether_gateway::{Gateway, GatewayBuilder, RunningGateway};
use tether_tokio::client::{AgentIdentity, Tether, TetherConfig};
use tokio::net::TcpListener;

/// The longest any test waits for something to happen.
pub const WAIT: Duration = Duration::from_secs(20);

/// The token of the test agent.
pub const TOKEN: &str = "tok-agent-1";

/// The test agent's identity.
pub fn agent() -> AgentIdentity {
    AgentIdentity::new("acme", "team-a", "agent-1")
}

/// The same identity as the gateway's key.
pub fn agent_key() -> AgentKey {
    AgentKey {
        org_id: "acme".into(),
        team_id: "team-a".into(),
        agent_id: "agent-1".into(),
    }
}

/// The rules every test gateway uses.
pub fn rules() -> RuleTable {
    RuleTable::parse(
        "allow read_file\nallow search\ndeny rm_rf\napprove deploy 30\nhold pay 10\ndefault deny\n",
    )
    .expect("test rules parse")
}

/// A gateway builder with the test rules and the test agent's token.
pub fn gateway() -> GatewayBuilder {
    Gateway::builder()
        .rules(rules())
        .tokens(TokenTable::required([(TOKEN.to_owned(), agent_key())]))
}

/// Serve `builder` on an ephemeral 127.0.0.1 port.
pub async fn serve(builder: GatewayBuilder) -> RunningGateway {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    builder.serve(listener).await.expect("gateway serves")
}

/// Serve `builder` on a given 127.0.0.1 port (for restarts on the same port).
pub async fn serve_on(builder: GatewayBuilder, port: u16) -> RunningGateway {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("rebind port");
    builder.serve(listener).await.expect("gateway serves")
}

/// Backoff fast enough for tests (base 50 ms, cap 500 ms, healthy after 1 s).
pub fn fast_backoff() -> BackoffConfig {
    BackoffConfig::default()
        .with_base(Duration::from_millis(50))
        .with_max(Duration::from_millis(500))
        .with_healthy_after(Duration::from_secs(1))
}

/// A client config for the test agent against `url`, with fast backoff.
pub fn client_config(url: &str) -> TetherConfig {
    let mut c = TetherConfig::new(url, agent(), "runtime-1").with_token(TOKEN);
    c.backoff = fast_backoff();
    c.connect_timeout = Duration::from_secs(2);
    c
}

/// Connect a client and wait until both streams are up.
pub async fn connected(config: TetherConfig) -> Tether {
    let t = Tether::connect(config).expect("client config is valid");
    let mut st = t.watch_status();
    bounded(
        "both streams connected",
        st.wait_for(|s| s.invalidation.connected && s.op_control.connected),
    )
    .await
    .expect("status channel open");
    t
}

/// Await `fut`, failing the test with `what` if it takes longer than [`WAIT`].
pub async fn bounded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {WAIT:?} waiting for: {what}"),
    }
}

/// Poll a condition on state we cannot subscribe to (the gateway's admin
/// view), every 10 ms, bounded by [`WAIT`].
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    bounded(what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}
