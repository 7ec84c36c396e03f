//! The end-to-end bench: a reference gateway and tether clients on
//! 127.0.0.1, every figure beside its baseline in the same run.
//!
//! ```text
//! cargo run --release -p tether-benches --bin e2e            # full, < 10 min on 2 cores
//! cargo run --release -p tether-benches --bin e2e -- --quick # ~1 min
//! cargo run --release -p tether-benches --bin e2e -- --only throughput # one phase
//! ```
//!
//! Prints a table of figures and ratios and writes the latency chart to
//! `benches/out/latency.png`. All traffic stays on loopback; every phase is
//! bounded in event count and in time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tether_benches::baseline::approval::BaselineApprovals;
use tether_benches::baseline::op_control::{BaselineOpControl, OpState as BaseOpState};
use tether_benches::baseline::queued::{BaselineQueue, POLL};
use tether_benches::mem::resident_bytes;
use tether_core::approval::{ApprovalConfig, ApprovalWaiters};
use tether_core::backoff::{Backoff, BackoffConfig};
use tether_core::inflight::{InFlight, InFlightConfig};
use tether_core::op_control::{OpControl, OpControlConfig, Signal};
use tether_core::tick::{TickConfig, TickSchedule};
use tether_core::{Machine, Timestamp};
use tether_gateway::{GatewayBuilder, RunningGateway};
use tether_proto::assembly::gateway::v1::invalidation_service_client::InvalidationServiceClient;
use tether_proto::assembly::gateway::v1::{subscribe_request, SubscribeInitial, SubscribeRequest};
use tether_tests::{agent_key, client_config, connected, TOKEN};
use tether_tokio::client::Approvals;
use tether_tokio::client::{
    InvalidateAllReason, InvalidationSink, PolicyChange, Tether, TetherConfig, ToolCall,
};
use tether_tokio::runtime::Clock;
use tokio::sync::Notify;

/// Run sizes: `--quick` shrinks every count and duration.
#[derive(Clone, Copy, Debug)]
struct Plan {
    quick: bool,
    throughput_events: u64,
    throughput_rounds: usize,
    rate_secs: u64,
    kill_samples: usize,
    check_samples: usize,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Plan {
                quick,
                throughput_events: 50_000,
                throughput_rounds: 1,
                rate_secs: 2,
                kill_samples: 200,
                check_samples: 50_000,
            }
        } else {
            Plan {
                quick,
                throughput_events: 300_000,
                throughput_rounds: 5,
                rate_secs: 10,
                kill_samples: 1_000,
                check_samples: 500_000,
            }
        }
    }
}

/// One row of the printed table.
struct Row {
    what: String,
    tether: String,
    baseline: String,
    ratio: String,
}

fn row(
    what: impl Into<String>,
    tether: impl Into<String>,
    baseline: impl Into<String>,
    ratio: impl Into<String>,
) -> Row {
    Row {
        what: what.into(),
        tether: tether.into(),
        baseline: baseline.into(),
        ratio: ratio.into(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--mem") {
        let which = args.get(pos + 1).map(String::as_str).unwrap_or("");
        println!("{}", mem_child(which));
        return;
    }
    if let Some(pos) = args.iter().position(|a| a == "--sched") {
        let which = args.get(pos + 1).map(String::as_str).unwrap_or("");
        println!(
            "{}",
            tether_benches::sched::child(which, args.iter().any(|a| a == "--quick"))
        );
        return;
    }
    let plan = Plan::new(args.iter().any(|a| a == "--quick"));
    // `--only <phase>`: run one phase alone (throughput, latency, kill, sched,
    // check, memory, idle, storm).
    let only = args
        .iter()
        .position(|a| a == "--only")
        .map(|p| args.get(p + 1).cloned().unwrap_or_default());
    const PHASES: [&str; 8] = [
        "throughput",
        "latency",
        "kill",
        "check",
        "memory",
        "sched",
        "idle",
        "storm",
    ];
    if let Some(o) = only.as_deref().filter(|o| !PHASES.contains(o)) {
        eprintln!("--only {o:?}: expected one of {PHASES:?}");
        std::process::exit(2);
    }
    let run = |phase: &str| only.as_deref().is_none_or(|o| o == phase);
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut rows = Vec::new();
    let mut curves: Vec<(String, Histogram<u64>)> = Vec::new();
    rt.block_on(async {
        if run("throughput") {
            throughput(plan, &mut rows).await;
        }
        if run("latency") {
            latency_rows(plan, &mut rows, &mut curves).await;
        }
        if run("kill") {
            kill_switch(plan, &mut rows, &mut curves).await;
        }
        if run("check") {
            cached_check(plan, &mut rows, &mut curves).await;
        }
    });
    drop(rt);
    if run("memory") {
        memory_rows(&mut rows);
    }
    if run("sched") {
        sched_rows(plan, &mut rows);
    }
    if run("idle") {
        idle_rows(&mut rows);
    }
    if run("storm") {
        storm_rows(&mut rows);
    }
    print_table(&rows);
    if !curves.is_empty() {
        match plot(&curves) {
            Ok(path) => println!("\nchart: {path}"),
            Err(e) => println!("\nchart not written: {e}"),
        }
    }
    println!(
        "total wall time: {:.1} s ({})",
        started.elapsed().as_secs_f64(),
        if plan.quick { "--quick" } else { "full" }
    );
}

// ---------------------------------------------------------------- set-up

fn gateway_builder() -> GatewayBuilder {
    tether_tests::gateway()
        .ring_capacity(1 << 20)
        .live_capacity(1 << 20)
        .max_subscribers(8192)
}

async fn serve() -> RunningGateway {
    tether_tests::serve(gateway_builder()).await
}

fn config(url: &str, i: usize) -> TetherConfig {
    let mut c = client_config(url);
    c.assembly_id = format!("runtime-{i}");
    c
}

/// Counts applied events and records publish-to-apply latency for events
/// whose `policy_version` indexes `sent` (nanoseconds since `base`, 0 = not
/// timed).
struct Recorder {
    applied: AtomicU64,
    target: AtomicU64,
    done: Notify,
    base: Instant,
    sent: Arc<Vec<AtomicU64>>,
    hist: Mutex<Histogram<u64>>,
}

impl Recorder {
    fn new(base: Instant, sent: Arc<Vec<AtomicU64>>) -> Arc<Self> {
        Arc::new(Recorder {
            applied: AtomicU64::new(0),
            target: AtomicU64::new(u64::MAX),
            done: Notify::new(),
            base,
            sent,
            hist: Mutex::new(Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("bounds")),
        })
    }

    async fn wait_for(&self, n: u64, limit: Duration) -> bool {
        self.target.store(n, Ordering::SeqCst);
        let deadline = Instant::now() + limit;
        loop {
            let notified = self.done.notified();
            if self.applied.load(Ordering::SeqCst) >= n {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, notified).await.is_err() {
                return self.applied.load(Ordering::SeqCst) >= n;
            }
        }
    }
}

#[async_trait::async_trait]
impl InvalidationSink for Recorder {
    async fn on_policy_change(&self, change: &PolicyChange) {
        if let Some(sent) = self.sent.get(change.policy_version as usize) {
            let at = sent.load(Ordering::Relaxed);
            if at != 0 {
                // Read the clock only for timed events: an untimed recorder
                // (the throughput phase) is a bare counter like its baseline.
                let now = self.base.elapsed().as_nanos() as u64;
                let mut h = self.hist.lock().expect("hist");
                let _ = h.record(now.saturating_sub(at).max(1));
            }
        }
        let n = self.applied.fetch_add(1, Ordering::SeqCst) + 1;
        if n >= self.target.load(Ordering::Relaxed) {
            self.done.notify_waiters();
        }
    }

    async fn invalidate_all(&self, _reason: InvalidateAllReason) {}
}

fn untimed() -> Arc<Vec<AtomicU64>> {
    Arc::new(Vec::new())
}

// ------------------------------------------------------------ throughput

/// Events per second: publish `n` as fast as the gateway takes them and
/// time until the reader has them all. One reader at a time, tether and the
/// bare reader taking turns for `plan.throughput_rounds` rounds each, so a
/// burst of load from elsewhere on the machine hits both sides alike; the
/// medians are reported. Also the process CPU time (every thread: gateway,
/// publisher and reader) per event, which contention disturbs less.
async fn throughput(plan: Plan, rows: &mut Vec<Row>) {
    let n = plan.throughput_events;
    let limit = Duration::from_secs(if plan.quick { 30 } else { 90 });
    let mut tether = Vec::new();
    let mut bare = Vec::new();
    let mut all_applied = true;
    for _ in 0..plan.throughput_rounds {
        let (rate, cpu, ok) = tether_round(n, limit).await;
        all_applied &= ok;
        tether.push((rate, cpu));
        bare.push(bare_round(n, limit).await);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let rate = |v: &[(f64, f64)]| median(&mut v.iter().map(|x| x.0).collect());
    let cpu = |v: &[(f64, f64)]| median(&mut v.iter().map(|x| x.1).collect());
    let (t_rate, b_rate) = (rate(&tether), rate(&bare));
    let (t_cpu, b_cpu) = (cpu(&tether), cpu(&bare));
    let rounds = plan.throughput_rounds;
    rows.push(row(
        format!(
            "events applied/s, 1 client, {n} events, median of {rounds} alternating rounds{}",
            if all_applied { "" } else { " (TIMED OUT)" }
        ),
        format!("{t_rate:.0}"),
        format!("{b_rate:.0} (bare tonic)"),
        format!("{:.2}", t_rate / b_rate),
    ));
    rows.push(row(
        "  process CPU per event (gateway + publisher + reader), same rounds",
        format!("{t_cpu:.2} µs"),
        format!("{b_cpu:.2} µs (bare tonic)"),
        format!("{:.2}", t_cpu / b_cpu),
    ));
}

/// Process CPU time in µs per event between two `cpu_time` readings.
fn cpu_per_event(before: Option<Duration>, n: u64) -> f64 {
    match (before, tether_benches::sched::cpu_time()) {
        (Some(a), Some(b)) => b.saturating_sub(a).as_secs_f64() * 1e6 / n as f64,
        _ => f64::NAN,
    }
}

/// One round of a `Tether` client: (events/s, CPU µs per event, all applied).
async fn tether_round(n: u64, limit: Duration) -> (f64, f64, bool) {
    let gw = serve().await;
    let admin = gw.admin();
    let t = connected(config(&gw.endpoint(), 0)).await;
    let rec = Recorder::new(Instant::now(), untimed());
    t.add_sink(rec.clone());
    let cpu = tether_benches::sched::cpu_time();
    let start = Instant::now();
    for v in 0..n {
        admin.publish_invalidation("agent-1", v + 1, None);
        if v % 1024 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let ok = rec.wait_for(n, limit).await;
    let applied = rec.applied.load(Ordering::SeqCst);
    let rate = applied as f64 / start.elapsed().as_secs_f64();
    let cpu = cpu_per_event(cpu, applied.max(1));
    t.shutdown(Duration::from_secs(2)).await;
    let _ = gw.shutdown().await;
    (rate, cpu, ok)
}

/// One round of the bare tonic reader: (events/s, CPU µs per event).
async fn bare_round(n: u64, limit: Duration) -> (f64, f64) {
    let gw = serve().await;
    let admin = gw.admin();
    let count = Arc::new(AtomicU64::new(0));
    let reader = {
        let url = gw.endpoint();
        let count = count.clone();
        tokio::spawn(async move { bare_reader(url, count).await })
    };
    while admin.list_subscribers(None).is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let cpu = tether_benches::sched::cpu_time();
    let start = Instant::now();
    for v in 0..n {
        admin.publish_invalidation("agent-1", v + 1, None);
        if v % 1024 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let deadline = Instant::now() + limit;
    while count.load(Ordering::Relaxed) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let read = count.load(Ordering::Relaxed);
    let rate = read as f64 / start.elapsed().as_secs_f64();
    let cpu = cpu_per_event(cpu, read.max(1));
    reader.abort();
    let _ = gw.shutdown().await;
    (rate, cpu)
}

/// Subscribe and count events, doing nothing else (no acks: the transport's
/// limit). The gateway's ring is sized so nothing is dropped for lag.
async fn bare_reader(url: String, count: Arc<AtomicU64>) {
    let mut client = InvalidationServiceClient::connect(url)
        .await
        .expect("connect");
    let first = SubscribeRequest {
        assembly_id: "bare-reader".into(),
        kind: Some(subscribe_request::Kind::Initial(SubscribeInitial {
            last_seq_seen: 0,
        })),
    };
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(first).await.expect("first message");
    let mut req = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    req.metadata_mut()
        .insert("x-aa-credential-token", TOKEN.parse().expect("ascii"));
    let mut stream = client.subscribe(req).await.expect("subscribe").into_inner();
    while let Ok(Some(_ev)) = stream.message().await {
        count.fetch_add(1, Ordering::Relaxed);
    }
    drop(tx);
}

// --------------------------------------------------------------- latency

fn micros(ns: u64) -> String {
    if ns >= 10_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else {
        format!("{:.0} µs", ns as f64 / 1e3)
    }
}

/// Publish-to-apply latency at fixed rates, for 1, 100 and 1,000 clients.
/// The rates with many clients are lowered so the total applies per second
/// stay within what 2 shared cores can run (gateway and clients share them).
async fn latency_rows(plan: Plan, rows: &mut Vec<Row>, curves: &mut Vec<(String, Histogram<u64>)>) {
    let cases: &[(usize, u64)] = if plan.quick {
        &[(1, 1_000), (1, 10_000), (100, 100), (1_000, 10)]
    } else {
        &[(1, 1_000), (1, 10_000), (100, 1_000), (1_000, 100)]
    };
    for &(clients, rate) in cases {
        let (hist, applied, expected) = latency_case(clients, rate, plan.rate_secs).await;
        let label = format!("{clients} client(s) @ {rate}/s");
        rows.push(row(
            format!("publish→apply p50/p99/p999, {label} ({applied}/{expected} applied)"),
            format!(
                "{} / {} / {}",
                micros(hist.value_at_quantile(0.5)),
                micros(hist.value_at_quantile(0.99)),
                micros(hist.value_at_quantile(0.999))
            ),
            "-",
            "-",
        ));
        if clients == 1 {
            curves.push((format!("publish→apply, {label}"), hist));
        }
    }
}

async fn latency_case(clients: usize, rate: u64, secs: u64) -> (Histogram<u64>, u64, u64) {
    let gw = serve().await;
    let admin = gw.admin();
    let events = rate * secs;
    let base = Instant::now();
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..=events).map(|_| AtomicU64::new(0)).collect());
    let rec = Recorder::new(base, sent.clone());
    let mut ts = Vec::with_capacity(clients);
    for chunk in (0..clients).collect::<Vec<_>>().chunks(50) {
        let batch = chunk.iter().map(|&i| connected(config(&gw.endpoint(), i)));
        for t in futures_join(batch).await {
            t.add_sink(rec.clone());
            ts.push(t);
        }
    }
    let start = tokio::time::Instant::now();
    let per_event = Duration::from_nanos(1_000_000_000 / rate);
    for v in 1..=events {
        let at = start + per_event * (v as u32);
        if at > tokio::time::Instant::now() {
            tokio::time::sleep_until(at).await;
        }
        sent[v as usize].store(base.elapsed().as_nanos() as u64, Ordering::Relaxed);
        admin.publish_invalidation("agent-1", v, None);
    }
    let expected = events * clients as u64;
    rec.wait_for(expected, Duration::from_secs(30)).await;
    let applied = rec.applied.load(Ordering::SeqCst);
    for t in &ts {
        t.shutdown(Duration::from_secs(1)).await;
    }
    drop(ts);
    let _ = gw.shutdown().await;
    let hist = rec.hist.lock().expect("hist").clone();
    (hist, applied, expected)
}

/// Join futures without another dependency.
async fn futures_join<F: std::future::Future<Output = Tether> + Send + 'static>(
    futs: impl Iterator<Item = F>,
) -> Vec<Tether> {
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("connect task"));
    }
    out
}

// ------------------------------------------------------------ kill switch

/// Terminate published until a waiting `check` fails, with the client idle
/// and with 10k events/s of invalidations flowing on the same client.
async fn kill_switch(plan: Plan, rows: &mut Vec<Row>, curves: &mut Vec<(String, Histogram<u64>)>) {
    for loaded in [false, true] {
        let gw = serve().await;
        let admin = gw.admin();
        let t = connected(config(&gw.endpoint(), 0)).await;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let load = loaded.then(|| {
            let admin = admin.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(1));
                let mut v = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    for _ in 0..10 {
                        v += 1;
                        admin.publish_invalidation("agent-1", v, None);
                    }
                }
            })
        });
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("bounds");
        let call = ToolCall::new("read_file");
        let limit = Instant::now() + Duration::from_secs(if plan.quick { 20 } else { 90 });
        for k in 0..plan.kill_samples {
            if Instant::now() > limit {
                break;
            }
            let op = format!("trace-{k}:span-1");
            admin.pause(&op, agent_key()).expect("pause");
            while t.ops().state(&op) != tether_tokio::client::OpState::Paused {
                tokio::time::sleep(Duration::from_micros(100)).await;
            }
            let check = {
                let t = t.clone();
                let op = op.clone();
                let call = call.clone();
                tokio::spawn(async move { t.check(&op, &call).await })
            };
            while t.ops().waiting() == 0 {
                tokio::time::sleep(Duration::from_micros(100)).await;
            }
            let t0 = Instant::now();
            admin.terminate(&op, agent_key()).expect("terminate");
            let v = check.await.expect("task").expect("check");
            let ns = t0.elapsed().as_nanos() as u64;
            assert!(!v.allowed(), "terminate must fail the waiting check");
            let _ = hist.record(ns.max(1));
        }
        stop.store(true, Ordering::Relaxed);
        if let Some(l) = load {
            let _ = l.await;
        }
        t.shutdown(Duration::from_secs(1)).await;
        let _ = gw.shutdown().await;
        let label = if loaded { "under 10k events/s" } else { "idle" };
        rows.push(row(
            format!("kill switch p50/p99, {label} ({} samples)", hist.len()),
            format!(
                "{} / {}",
                micros(hist.value_at_quantile(0.5)),
                micros(hist.value_at_quantile(0.99))
            ),
            "-",
            "-",
        ));
        curves.push((format!("kill switch, {label}"), hist));
    }
}

// ----------------------------------------------------------- cached check

async fn cached_check(plan: Plan, rows: &mut Vec<Row>, curves: &mut Vec<(String, Histogram<u64>)>) {
    let gw = serve().await;
    let t = connected(config(&gw.endpoint(), 0)).await;
    let call = ToolCall::new("read_file");
    let first = t.check("trace-c:span-1", &call).await.expect("check");
    assert!(first.allowed());
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("bounds");
    let mut sources = std::collections::BTreeMap::new();
    for _ in 0..plan.check_samples {
        let t0 = Instant::now();
        let v = t.check("trace-c:span-1", &call).await.expect("check");
        let ns = t0.elapsed().as_nanos() as u64;
        let _ = hist.record(ns.max(1));
        *sources.entry(v.label()).or_insert(0u64) += 1;
    }
    t.shutdown(Duration::from_secs(1)).await;
    let _ = gw.shutdown().await;
    rows.push(row(
        format!(
            "cached check p50/p99 ({} calls; {sources:?})",
            plan.check_samples
        ),
        format!(
            "{:.2} µs / {:.2} µs",
            hist.value_at_quantile(0.5) as f64 / 1e3,
            hist.value_at_quantile(0.99) as f64 / 1e3
        ),
        "-",
        "-",
    ));
    curves.push(("cached check".into(), hist));
}

// ---------------------------------------------------------------- memory

/// Runs in a fresh child process: builds one structure and prints the
/// resident-memory growth in bytes.
fn mem_child(which: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let before = resident_bytes().unwrap_or(0);
    let t0 = Timestamp::ZERO;
    let hour = Duration::from_secs(3600);
    let keep: Box<dyn std::any::Any> = match which {
        "approval-tether" | "approval-tasks-tether" => rt.block_on(async {
            // The real driver: `Approvals::wait` futures, each polled once so
            // it is registered (machine slot, request entry, deadline,
            // mailbox), held either as boxed futures or one task each.
            let approvals: &'static Approvals = Box::leak(Box::new(Approvals::new(
                ApprovalConfig::default().with_max_waiters(200_000),
                Clock::new(),
            )));
            let futures = (0..100_000).map(move |i| async move {
                let id = format!("req-{i}");
                let _ = approvals.wait(&id, hour).await;
            });
            hold(futures, which.contains("tasks"), || {
                approvals.waiting() == 100_000
            })
            .await
        }),
        "approval-baseline" | "approval-tasks-baseline" => rt.block_on(async {
            let map: &'static BaselineApprovals = Box::leak(Box::new(BaselineApprovals::new()));
            let futures = (0..100_000).map(move |i| async move {
                let id = format!("req-{i}");
                map.wait(&id, hour).await;
            });
            hold(futures, which.contains("tasks"), || map.len() == 100_000).await
        }),
        "ops-tether" => {
            let mut m = OpControl::new(OpControlConfig::default().with_max_entries(1_100_000), t0);
            m.on_stream_up(t0);
            for i in 0..1_000_000u64 {
                m.on_signal(t0, &format!("op-{i}"), Signal::Pause, i + 1);
            }
            Box::new(m)
        }
        "ops-baseline" => {
            let b = BaselineOpControl::new();
            for i in 0..1_000_000u64 {
                b.set(&format!("op-{i}"), BaseOpState::Paused);
            }
            Box::new(b)
        }
        _ => return "unknown".into(),
    };
    let after = resident_bytes().unwrap_or(0);
    drop(keep);
    format!("{}", after.saturating_sub(before))
}

/// Hold `futures` waiting: boxed and polled once each (the waiters
/// alone), or spawned as one task each (what a caller with a task per held
/// tool call adds).
async fn hold<F>(
    futures: impl Iterator<Item = F>,
    tasks: bool,
    all_waiting: impl Fn() -> bool,
) -> Box<dyn std::any::Any>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    if tasks {
        let handles: Vec<_> = futures.map(tokio::spawn).collect();
        // Let every task run to its first wait.
        while !all_waiting() {
            tokio::task::yield_now().await;
        }
        Box::new(handles)
    } else {
        let mut held: Vec<std::pin::Pin<Box<F>>> = futures.map(Box::pin).collect();
        for f in &mut held {
            assert!(tether_benches::poll::poll_once(f.as_mut()).is_pending());
        }
        assert!(all_waiting());
        Box::new(std::sync::Mutex::new(held))
    }
}

fn measure_child(which: &str) -> Option<u64> {
    let exe = std::env::current_exe().ok()?;
    let out = std::process::Command::new(exe)
        .args(["--mem", which])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn memory_rows(rows: &mut Vec<Row>) {
    for (what, name, per) in [
        (
            "resident memory per 100k approval waiters (registered wait futures)",
            "approval",
            100_000u64,
        ),
        (
            "resident memory per 100k approval waiters (one task per waiter)",
            "approval-tasks",
            100_000u64,
        ),
        ("resident memory per 1M op entries", "ops", 1_000_000),
    ] {
        let t = measure_child(&format!("{name}-tether"));
        let b = measure_child(&format!("{name}-baseline"));
        let fmt = |v: Option<u64>| match v {
            Some(v) => format!("{:.1} MiB ({} B each)", v as f64 / 1048576.0, v / per),
            None => "n/a".into(),
        };
        let ratio = match (t, b) {
            (Some(t), Some(b)) if b > 0 => format!("{:.2}", t as f64 / b as f64),
            _ => "n/a".into(),
        };
        rows.push(row(what, fmt(t), fmt(b), ratio));
    }
}

/// 100k tick jobs at 1 s: tether's scheduler service against one task per
/// job, each side in a child process (`--sched <side>`, see
/// `tether_benches::sched`); then queued work's poke→drive latency
/// (`tether_benches::queued_e2e`).
fn sched_rows(plan: Plan, rows: &mut Vec<Row>) {
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut found = tether_benches::sched::rows(&exe, plan.quick);
    found.extend(tether_benches::queued_e2e::rows(plan.quick));
    for r in found {
        rows.push(row(r.what, r.tether, r.baseline, r.ratio));
    }
}

// ------------------------------------------------------------------ idle

/// Wake-ups of an idle runner in a minute. tether: its machines' own timers
/// (counted by driving them over a minute of simulated time) plus HTTP/2
/// keepalive (computed from the configured interval). Baseline: its 400 ms
/// poll, counted on a paused tokio clock.
fn idle_rows(rows: &mut Vec<Row>) {
    let minute = Duration::from_secs(60);
    // tether machines, idle: count handle_timeout calls over a minute.
    let mut inflight: InFlight<u64> = InFlight::new(InFlightConfig::default());
    let mut ticks: TickSchedule<u32> = TickSchedule::new(TickConfig::default());
    let mut approvals = ApprovalWaiters::new(ApprovalConfig::default());
    let end = Timestamp::ZERO + minute;
    let mut fires = 0u64;
    fires += count_fires(&mut inflight, end);
    fires += count_fires(&mut ticks, end);
    fires += count_fires(&mut approvals, end);
    let keepalive =
        TetherConfig::new("http://127.0.0.1:1", tether_tests::agent(), "x").keepalive_interval;
    let keepalive_per_min = minute.as_secs() / keepalive.as_secs().max(1);
    // baseline: count its loop turns on a paused clock.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    let base = rt.block_on(BaselineQueue::new().run_idle(minute));
    let computed = minute.as_millis() as u64 / POLL.as_millis() as u64;
    rows.push(row(
        "idle wake-ups per minute (timer fires; +keepalive pings)",
        format!("{fires} machine timer fires + {keepalive_per_min} keepalive/connection"),
        format!("{base} counted ({computed} computed)"),
        "-",
    ));
}

fn count_fires<M: Machine>(m: &mut M, end: Timestamp) -> u64 {
    let mut n = 0;
    while let Some(d) = m.poll_timeout() {
        if d.at > end {
            break;
        }
        m.handle_timeout(d.at);
        while m.poll_action().is_some() {}
        n += 1;
    }
    n
}

// ------------------------------------------------------- reconnect storm

/// 10,000 clients on a healthy stream drop at the same instant: the share of
/// their first reconnects in the busiest 100 ms window.
fn storm_rows(rows: &mut Vec<Row>) {
    let peak = |jitter: f64| {
        let mut windows = std::collections::BTreeMap::<u64, u64>::new();
        let up = Timestamp::ZERO;
        let drop_at = Timestamp::from_secs(60);
        for i in 0..10_000u64 {
            let mut b = Backoff::new(
                BackoffConfig::default()
                    .with_jitter(jitter)
                    .with_jitter_seed(i + 1),
            );
            b.start(up);
            while b.poll_action().is_some() {}
            b.on_connected(up);
            b.on_message(up);
            while b.poll_action().is_some() {}
            b.on_disconnected(drop_at);
            while b.poll_action().is_some() {}
            let at = b.poll_timeout().map(|d| d.at).unwrap_or(drop_at);
            *windows.entry(at.as_nanos() / 100_000_000).or_default() += 1;
        }
        windows.values().copied().max().unwrap_or(0)
    };
    let jittered = peak(BackoffConfig::default().jitter);
    let flat = peak(0.0);
    rows.push(row(
        "reconnect storm: peak reconnects in a 100 ms window, 10,000 clients",
        format!("{jittered} ({:.1} %, jittered)", jittered as f64 / 100.0),
        format!("{flat} ({:.1} %, no jitter)", flat as f64 / 100.0),
        format!("{:.2}", jittered as f64 / flat.max(1) as f64),
    ));
}

// ---------------------------------------------------------------- output

fn print_table(rows: &[Row]) {
    let w0 = rows
        .iter()
        .map(|r| r.what.chars().count())
        .max()
        .unwrap_or(0);
    let w1 = rows
        .iter()
        .map(|r| r.tether.chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    let w2 = rows
        .iter()
        .map(|r| r.baseline.chars().count())
        .max()
        .unwrap_or(0)
        .max(8);
    println!();
    println!(
        "| {:w0$} | {:w1$} | {:w2$} | ratio |",
        "figure", "tether", "baseline"
    );
    println!(
        "|{}|{}|{}|-------|",
        "-".repeat(w0 + 2),
        "-".repeat(w1 + 2),
        "-".repeat(w2 + 2)
    );
    for r in rows {
        println!(
            "| {:w0$} | {:w1$} | {:w2$} | {} |",
            r.what, r.tether, r.baseline, r.ratio
        );
    }
}

/// Latency against percentile, one line per distribution, log-scale time.
/// Plotters is built without a font backend (none builds portably here),
/// so the chart has no text: grey rules mark 1 µs, 10 µs, 100 µs, 1 ms,
/// 10 ms and 100 ms across, and p50, p90, p99 up; the colours are listed on
/// stdout and in BENCHMARKS.md.
fn plot(curves: &[(String, Histogram<u64>)]) -> Result<String, Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("out");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("latency.png");
    let root = BitMapBackend::new(&path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .margin(20)
        .build_cartesian_2d(0f64..100f64, (0.1f64..200_000f64).log_scale())?;
    let grey = RGBColor(200, 200, 200);
    for us in [1.0, 10.0, 100.0, 1_000.0, 10_000.0, 100_000.0] {
        chart.draw_series(LineSeries::new(
            [(0.0, us), (100.0, us)],
            grey.stroke_width(1),
        ))?;
    }
    for p in [50.0, 90.0, 99.0] {
        chart.draw_series(LineSeries::new(
            [(p, 0.1), (p, 200_000.0)],
            grey.stroke_width(1),
        ))?;
    }
    const COLOURS: [(&str, RGBColor); 6] = [
        ("blue", RGBColor(31, 119, 180)),
        ("orange", RGBColor(255, 127, 14)),
        ("green", RGBColor(44, 160, 44)),
        ("red", RGBColor(214, 39, 40)),
        ("purple", RGBColor(148, 103, 189)),
        ("brown", RGBColor(140, 86, 75)),
    ];
    for (i, (name, h)) in curves.iter().enumerate() {
        let (cname, color) = COLOURS[i % COLOURS.len()];
        println!("chart line {cname}: {name}");
        let points: Vec<(f64, f64)> = (0..=999)
            .map(|k| {
                let q = k as f64 / 1000.0;
                (q * 100.0, (h.value_at_quantile(q) as f64 / 1e3).max(0.1))
            })
            .collect();
        chart.draw_series(LineSeries::new(points, color.stroke_width(3)))?;
    }
    root.present()?;
    Ok(path.display().to_string())
}
