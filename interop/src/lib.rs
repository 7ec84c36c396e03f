//! Helpers for tether's interop tests against Agent Assembly's published
//! crates: serving tether's reference gateway on 127.0.0.1, a recording
//! invalidation sink for aa-runtime's `InvalidationClient`, a process-wide
//! counting `metrics` recorder (aa-runtime's clients count what they receive
//! through the `metrics` facade), and bounded waits.
//!
//! Every wait here is bounded by [`WAIT`]; every socket is on 127.0.0.1.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aa_proto::assembly::gateway::v1::Decision as AaVerdict;
use aa_runtime::invalidation_client::InvalidationSink;
use tether_gateway::ops::AgentKey;
use tether_gateway::{GatewayBuilder, RunningGateway};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub mod aa_gateway_proc;
pub mod nats;
pub mod register;

/// The longest any test waits for one thing to happen.
pub const WAIT: Duration = Duration::from_secs(20);

/// The test agent's org, team and agent id.
pub const ORG: &str = "acme";
/// The test agent's team.
pub const TEAM: &str = "team-a";
/// The test agent's id.
pub const AGENT: &str = "agent-1";
/// The test agent's token at tether's gateway.
pub const TOKEN: &str = "tok-agent-1";

/// The test agent as tether's gateway names it.
pub fn agent_key() -> AgentKey {
    AgentKey {
        org_id: ORG.into(),
        team_id: TEAM.into(),
        agent_id: AGENT.into(),
    }
}

/// The test agent as Agent Assembly's wire types name it.
pub fn aa_agent_id() -> aa_proto::assembly::common::v1::AgentId {
    aa_proto::assembly::common::v1::AgentId {
        org_id: ORG.into(),
        team_id: TEAM.into(),
        agent_id: AGENT.into(),
    }
}

/// Serve `builder` on an ephemeral 127.0.0.1 port.
pub async fn serve(builder: GatewayBuilder) -> RunningGateway {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    builder
        .serve(listener)
        .await
        .expect("tether gateway serves")
}

/// Serve `builder` on a given 127.0.0.1 port (a restart on the same port).
pub async fn serve_on(builder: GatewayBuilder, port: u16) -> RunningGateway {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("rebind 127.0.0.1 port");
    builder
        .serve(listener)
        .await
        .expect("tether gateway serves")
}

/// Await `fut`, failing the test with `what` after [`WAIT`].
pub async fn bounded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {WAIT:?} waiting for: {what}"),
    }
}

/// Poll `cond` every 10 ms until it holds, bounded by [`WAIT`].
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    bounded(what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

/// One event as aa-runtime's `InvalidationClient` handed it to a sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// `on_policy_invalidated(agent_id)`.
    Policy(String),
    /// `on_approval_resolved(request_id, decision)`.
    Approval(String, AaVerdict),
}

/// An [`InvalidationSink`] that records every call, in order.
#[derive(Clone)]
pub struct Recorder {
    seen: Arc<watch::Sender<Vec<Seen>>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            seen: Arc::new(watch::Sender::new(Vec::new())),
        }
    }
}

impl Recorder {
    /// Everything recorded so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.borrow().clone()
    }

    /// Wait (bounded by [`WAIT`]) until at least `n` calls were recorded.
    pub async fn wait_for(&self, n: usize) -> Vec<Seen> {
        let mut rx = self.seen.subscribe();
        bounded(&format!("{n} events at the aa sink"), async {
            rx.wait_for(|s| s.len() >= n)
                .await
                .expect("recorder alive")
                .clone()
        })
        .await
    }

    fn push(&self, s: Seen) {
        self.seen.send_modify(|v| v.push(s));
    }
}

impl InvalidationSink for Recorder {
    fn on_policy_invalidated(&self, agent_id: &str) {
        self.push(Seen::Policy(agent_id.to_owned()));
    }

    fn on_approval_resolved(&self, request_id: &str, decision: AaVerdict) {
        self.push(Seen::Approval(request_id.to_owned(), decision));
    }
}

/// A process-wide `metrics` recorder that counts: counters by name (summed
/// over labels) and histograms by the number of samples recorded. Install
/// it with [`counting_metrics`]; read with [`Counts::get`].
#[derive(Default)]
pub struct Counts {
    by_name: Mutex<HashMap<String, Arc<Tally>>>,
}

/// One counter's value, or one histogram's sample count.
#[derive(Default)]
struct Tally(AtomicU64);

impl metrics::CounterFn for Tally {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.0.fetch_max(value, Ordering::Relaxed);
    }
}

impl metrics::HistogramFn for Tally {
    fn record(&self, _value: f64) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

impl Counts {
    fn tally(&self, name: &str) -> Arc<Tally> {
        let mut map = self.by_name.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(name.to_owned()).or_default().clone()
    }

    /// The counter `name` (or the number of samples of histogram `name`).
    pub fn get(&self, name: &str) -> u64 {
        self.tally(name).0.load(Ordering::Relaxed)
    }
}

/// The recorder [`counting_metrics`] installs.
struct Installed(&'static Counts);

impl metrics::Recorder for Installed {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        metrics::Counter::from_arc(self.0.tally(key.name()))
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        key: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::from_arc(self.0.tally(key.name()))
    }
}

/// Install (once per process) and return the counting recorder. Counts
/// are process-wide: a test binary that reads them must run one client
/// at a time (one test per binary, or tests that never overlap).
pub fn counting_metrics() -> &'static Counts {
    static COUNTS: OnceLock<&'static Counts> = OnceLock::new();
    COUNTS.get_or_init(|| {
        let counts: &'static Counts = Box::leak(Box::default());
        metrics::set_global_recorder(Installed(counts))
            .expect("no other metrics recorder is installed in this test binary");
        counts
    })
}
