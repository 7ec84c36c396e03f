//! Issue 15, item 4: thousands of paused ops of one agent, through a real
//! gateway on 127.0.0.1 and a client with the default op-control bounds.
//! Past the table and its markers the pauses are kept exactly (overflow):
//! every paused op reads paused and ops never signalled run. Past the
//! overflow too the client fails closed, visibly (`status()` and the
//! `tether_op_table_saturated` gauge), a paused op still never reads
//! terminated, and once the ops are resumed and the runtime reports every
//! op finished, checks run again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use metrics::{
    Counter, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use tether_tests::{agent_key, client_config, connected, gateway, serve, until};
use tether_tokio::client::{
    Decision, OpState, OpTableStatus, Saturation, Tether, ToolCall, VerdictSource,
};

/// The last value of each gauge, by name and labels.
#[derive(Default, Clone)]
struct Gauges(Arc<Mutex<HashMap<String, Arc<Mutex<f64>>>>>);

struct Value(Arc<Mutex<f64>>);

impl GaugeFn for Value {
    fn increment(&self, v: f64) {
        *self.0.lock().unwrap() += v;
    }
    fn decrement(&self, v: f64) {
        *self.0.lock().unwrap() -= v;
    }
    fn set(&self, v: f64) {
        *self.0.lock().unwrap() = v;
    }
}

impl Gauges {
    fn get(&self, name: &str) -> Option<f64> {
        let map = self.0.lock().unwrap();
        map.get(name).map(|v| *v.lock().unwrap())
    }
}

impl Recorder for Gauges {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
        Counter::noop()
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        let value = self.0.lock().unwrap().entry(name).or_default().clone();
        Gauge::from_arc(Arc::new(Value(value)))
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

fn op(i: u32) -> String {
    format!("trace-{i}:span")
}

fn table(t: &Tether) -> OpTableStatus {
    t.status().kill_switch.op_table
}

/// Pause ops `from..to` at the gateway, in batches the gateway's live
/// buffer holds, each batch applied at the client before the next.
async fn pause(gw: &tether_gateway::RunningGateway, t: &Tether, from: u32, to: u32) {
    let admin = gw.admin();
    let mut start = from;
    while start < to {
        let end = (start + 500).min(to);
        for i in start..end {
            admin.pause(&op(i), agent_key()).unwrap();
        }
        let last = op(end - 1);
        let want = (end - from) as usize;
        until("the batch is applied", || {
            let s = table(t);
            t.ops().state(&last) == OpState::Paused
                && (s.saturation != Saturation::Clear
                    || s.entries + s.evicted_markers + s.overflow >= want)
        })
        .await;
        start = end;
    }
}

#[test]
fn thousands_of_paused_ops_fail_closed_visibly_and_recover() {
    let gauges = Gauges::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&gauges, || rt.block_on(scenario(&gauges)));
}

async fn scenario(gauges: &Gauges) {
    let gw = serve(gateway()).await;
    let tether = connected(client_config(&gw.endpoint())).await;
    let call = ToolCall::new("read_file");

    // 8,200 paused ops: the table (4,096), its markers (4,096) and 8 in
    // the overflow. Nothing is lost and nothing fails closed.
    pause(&gw, &tether, 0, 8_200).await;
    let s = table(&tether);
    assert_eq!(
        (s.entries, s.evicted_markers, s.overflow, s.saturation),
        (4_096, 4_096, 8, Saturation::Clear),
        "{s:?}"
    );
    for i in [0, 4_096, 8_199] {
        assert_eq!(tether.ops().state(&op(i)), OpState::Paused, "op {i}");
    }
    let v = tether.check("never:signalled", &call).await.unwrap();
    assert!(v.allowed(), "{v:?}");
    assert_eq!(gauges.get("tether_op_table_saturated{}"), Some(0.0));
    assert_eq!(
        gauges.get("tether_op_table_entries{kind=overflow}"),
        Some(8.0)
    );

    // Past the overflow (12,288 ops) one more pause finds no room: the
    // client fails closed, and says so.
    pause(&gw, &tether, 8_200, 12_289).await;
    until("saturated", || table(&tether).saturation == Saturation::Ops).await;
    let s = table(&tether);
    assert!(!s.lost_terminate, "{s:?}");
    assert_eq!(gauges.get("tether_op_table_saturated{}"), Some(1.0));
    let v = tether.check("never:signalled", &call).await.unwrap();
    assert_eq!(v.decision, Decision::Deny, "{v:?}");
    assert_eq!(v.source, VerdictSource::OutagePolicy, "{v:?}");
    assert!(v.reason.contains("saturated"), "{}", v.reason);
    // A paused op never reads terminated, held or lost.
    for i in [0, 4_096, 8_199, 12_287, 12_288] {
        assert_eq!(tether.ops().state(&op(i)), OpState::Paused, "op {i}");
    }

    // The operator resumes every op; the runtime reports every op finished.
    let admin = gw.admin();
    for i in 0..12_289 {
        admin.resume(&op(i), agent_key()).unwrap();
        if i % 500 == 499 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    tether.ops().all_finished();
    until("recovered", || {
        table(&tether) == OpTableStatus::default()
            && tether.ops().state("never:signalled") == OpState::Running
    })
    .await;
    assert_eq!(gauges.get("tether_op_table_saturated{}"), Some(0.0));
    let v = tether.check("never:signalled", &call).await.unwrap();
    assert!(v.allowed(), "{v:?}");
    assert_eq!(tether.ops().state(&op(12_288)), OpState::Running);

    tether.shutdown(std::time::Duration::from_secs(1)).await;
    gw.shutdown().await.unwrap();
}
