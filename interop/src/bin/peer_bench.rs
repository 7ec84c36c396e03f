//! Side by side in one run: tether's runtime client (`tether_tokio::client::
//! Tether`) against Agent Assembly's (`aa_runtime::invalidation_client::
//! InvalidationClient`), with a bare tonic reader that acks every event as
//! the protocol's reference. Issue 19.
//!
//! ```text
//! cargo run --release --manifest-path interop/Cargo.toml --bin peer_bench            # ~3 min
//! cargo run --release --manifest-path interop/Cargo.toml --bin peer_bench -- --quick # ~50 s
//! ```
//!
//! The binary runs itself as child processes, so each figure belongs to one
//! side only:
//!
//! - `peer_bench gateway --rate R --events N --subscribers S` serves tether's
//!   reference gateway on 127.0.0.1 (no token required: aa's client sends
//!   none), prints its port, waits for `S` open `Subscribe` streams, then
//!   publishes `N` `PolicyInvalidated{agent-1, version v}` at `R` per second
//!   with `AdminHandle::publish_invalidation`, recording the wall-clock time
//!   of each publish. When its stdin closes it prints what its subscribers
//!   did (streams opened, lag closes, acks received) and the publish times.
//! - `peer_bench client --kind tether|aa|bare --url U --events N --clients C`
//!   runs `C` clients of one kind on a 2-worker Tokio runtime, counts what
//!   they apply, and prints its own CPU time (getrusage, user+sys) from the
//!   first applied event to the last, its resident memory (VmRSS) before and
//!   after the clients, and, with one client, the wall-clock time each event
//!   was applied.
//! - Without a subcommand, the parent alternates the three kinds in rounds
//!   (the order rotates each round), runs a gateway child and a client child
//!   for every measurement, and prints medians and tether / aa-runtime ratios
//!   as a markdown table.
//!
//! Publish→apply latency is the apply time in the client child minus the
//! publish time in the gateway child, both read from the system's wall clock
//! (`CLOCK_REALTIME`, one clock for every process on the machine). Every
//! socket is on 127.0.0.1; every wait is bounded.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tether_gateway::auth::TokenTable;
use tether_gateway::Gateway;
use tether_proto::assembly::gateway::v1::invalidation_event::Payload;
use tether_proto::assembly::gateway::v1::invalidation_service_client::InvalidationServiceClient;
use tether_proto::assembly::gateway::v1::{
    subscribe_request, SubscribeAck, SubscribeInitial, SubscribeRequest,
};
use tether_tokio::client::{
    AgentIdentity, InvalidateAllReason, PolicyChange, Tether, TetherConfig,
};
use tokio::sync::Notify;

/// The agent every event names.
const AGENT: &str = "agent-1";
/// Pause between the last subscriber's arrival and the first publish.
const SETTLE: Duration = Duration::from_millis(300);
/// Rate and events per client of the memory runs.
const MEM_RATE: u64 = 500;
const MEM_EVENTS: u64 = 100;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("gateway") => gateway_child(&args[1..]),
        Some("client") => client_child(&args[1..]),
        _ => parent(&args),
    }
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|p| args.get(p + 1).cloned())
}

fn num(args: &[String], name: &str, default: u64) -> u64 {
    flag(args, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Nanoseconds since the Unix epoch (the system's wall clock, shared by
/// every process on the machine).
fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// This process's CPU time (user + system, every thread) in nanoseconds.
fn cpu_ns() -> u64 {
    // SAFETY: `getrusage` writes one `rusage` into the zeroed value we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is valid and writable for the call's duration.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0;
    }
    let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000;
    ns(ru.ru_utime) + ns(ru.ru_stime)
}

/// Resident set size in bytes (`VmRSS` of `/proc/self/status`).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

// ---------------------------------------------------------------- gateway

fn gateway_child(args: &[String]) {
    let rate = num(args, "--rate", 1_000).max(1);
    let events = num(args, "--events", 1_000);
    let subscribers = num(args, "--subscribers", 1) as usize;
    runtime().block_on(async move {
        // Open (aa's client sends no credential); the live channel is large
        // enough that no client is closed for lag on a busy machine. The
        // replay ring keeps its default (1,024, the Agent Assembly
        // gateway's): aa's client never acks, so its ring stays full.
        let builder = Gateway::builder()
            .tokens(TokenTable::open())
            .live_capacity(1 << 16);
        let gw = tether_interop::serve(builder).await;
        println!("port {}", gw.local_addr().port());
        let _ = std::io::stdout().flush();
        let admin = gw.admin();
        let deadline = Instant::now() + Duration::from_secs(60);
        while admin.status().invalidation_streams < subscribers {
            if Instant::now() > deadline {
                eprintln!(
                    "gateway: only {} subscribers after 60 s",
                    admin.status().invalidation_streams
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(SETTLE).await;
        let period_ns = 1_000_000_000 / rate;
        let start = tokio::time::Instant::now();
        let mut sent = Vec::with_capacity(events as usize);
        for v in 1..=events {
            let at = start + Duration::from_nanos(period_ns * (v - 1));
            if at > tokio::time::Instant::now() {
                tokio::time::sleep_until(at).await;
            }
            sent.push(wall_ns());
            admin.publish_invalidation(AGENT, v, None);
        }
        // Keep serving until the parent closes stdin (its client is done).
        let stdin = tokio::task::spawn_blocking(|| {
            let mut s = String::new();
            let _ = std::io::stdin().read_to_string(&mut s);
        });
        let _ = tokio::time::timeout(Duration::from_secs(600), stdin).await;
        let st = admin.status();
        let subs = admin.list_subscribers(None);
        let lag_closes: u64 = subs.iter().map(|s| s.lag_closes).sum();
        let acks: u64 = subs.iter().map(|s| s.acks_received).sum();
        println!(
            "status opened={} lag_closes={} acks={}",
            st.invalidation_streams_opened, lag_closes, acks
        );
        let times: Vec<String> = sent.iter().map(u64::to_string).collect();
        println!("sent {}", times.join(" "));
        let _ = std::io::stdout().flush();
        let _ = gw.shutdown().await;
    });
}

// ----------------------------------------------------------------- client

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Tether,
    Aa,
    Bare,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Tether, Kind::Aa, Kind::Bare];

    fn name(self) -> &'static str {
        match self {
            Kind::Tether => "tether",
            Kind::Aa => "aa",
            Kind::Bare => "bare",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// What every client kind reports to: a count of applied events, the
/// first and the last one signalled, and (with one client) the wall-clock
/// time each event was applied, indexed by its publish number.
struct Probe {
    count: AtomicU64,
    target: u64,
    first: Notify,
    done: Notify,
    times: Vec<AtomicU64>,
    dups: AtomicU64,
}

impl Probe {
    fn new(target: u64, timed: Option<u64>) -> Arc<Probe> {
        let slots = timed.map_or(0, |n| n as usize + 1);
        Arc::new(Probe {
            count: AtomicU64::new(0),
            target,
            first: Notify::new(),
            done: Notify::new(),
            times: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            dups: AtomicU64::new(0),
        })
    }

    /// One event applied: `index` is its publish number (the policy
    /// version), or `None` to use the arrival order (aa's sink is not told
    /// the version; the gateway delivers in order).
    fn applied(&self, index: Option<u64>) {
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        if !self.times.is_empty() {
            if let Some(slot) = self.times.get(index.unwrap_or(n) as usize) {
                if slot.swap(wall_ns(), Ordering::Relaxed) != 0 {
                    self.dups.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if n == 1 {
            self.first.notify_one();
        }
        if n == self.target {
            self.done.notify_one();
        }
    }
}

/// tether's sink: counts each `on_policy_change`.
struct TetherSink(Arc<Probe>);

#[async_trait::async_trait]
impl tether_tokio::client::InvalidationSink for TetherSink {
    async fn on_policy_change(&self, change: &PolicyChange) {
        self.0.applied(Some(change.policy_version));
    }

    async fn invalidate_all(&self, _reason: InvalidateAllReason) {}
}

/// aa-runtime's sink: counts each `on_policy_invalidated`.
struct AaSink(Arc<Probe>);

impl aa_runtime::invalidation_client::InvalidationSink for AaSink {
    fn on_policy_invalidated(&self, _agent_id: &str) {
        self.0.applied(None);
    }
}

/// The protocol's reference reader: subscribe, apply (count), ack every
/// event with its own `SubscribeAck`; no reconnect, no cache.
async fn bare_reader(url: String, assembly_id: String, probe: Arc<Probe>) {
    let Ok(mut client) = InvalidationServiceClient::connect(url).await else {
        eprintln!("bare: connect failed");
        return;
    };
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    let initial = SubscribeRequest {
        assembly_id: assembly_id.clone(),
        kind: Some(subscribe_request::Kind::Initial(SubscribeInitial {
            last_seq_seen: 0,
        })),
    };
    if tx.send(initial).await.is_err() {
        return;
    }
    let Ok(resp) = client
        .subscribe(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
    else {
        eprintln!("bare: subscribe failed");
        return;
    };
    let mut stream = resp.into_inner();
    while let Ok(Some(ev)) = stream.message().await {
        if let Some(Payload::PolicyInvalidated(p)) = &ev.payload {
            probe.applied(Some(p.policy_version));
        }
        let ack = SubscribeRequest {
            assembly_id: assembly_id.clone(),
            kind: Some(subscribe_request::Kind::Ack(SubscribeAck { seq: ev.seq })),
        };
        if tx.send(ack).await.is_err() {
            break;
        }
    }
}

/// The clients of one kind, stopped when dropped.
enum Clients {
    Tether(Vec<Tether>),
    Tasks(Vec<tokio::task::JoinHandle<()>>),
}

fn start(kind: Kind, url: &str, clients: u64, probe: &Arc<Probe>) -> Clients {
    match kind {
        Kind::Tether => Clients::Tether(
            (0..clients)
                .map(|i| {
                    let config = TetherConfig::new(
                        url,
                        AgentIdentity::new("acme", "team-a", AGENT),
                        format!("tether-{i}"),
                    );
                    let t = Tether::connect(config).expect("tether config is valid");
                    t.add_sink(Arc::new(TetherSink(probe.clone())));
                    t
                })
                .collect(),
        ),
        Kind::Aa => Clients::Tasks(
            (0..clients)
                .map(|i| {
                    let sink: Arc<dyn aa_runtime::invalidation_client::InvalidationSink> =
                        Arc::new(AaSink(probe.clone()));
                    aa_runtime::invalidation_client::InvalidationClient::start(
                        url.to_owned(),
                        format!("aa-{i}"),
                        vec![sink],
                    )
                })
                .collect(),
        ),
        Kind::Bare => Clients::Tasks(
            (0..clients)
                .map(|i| {
                    tokio::spawn(bare_reader(
                        url.to_owned(),
                        format!("bare-{i}"),
                        probe.clone(),
                    ))
                })
                .collect(),
        ),
    }
}

fn client_child(args: &[String]) {
    let kind = flag(args, "--kind")
        .as_deref()
        .and_then(Kind::parse)
        .expect("--kind tether|aa|bare");
    let url = flag(args, "--url").expect("--url");
    let events = num(args, "--events", 1_000);
    let clients = num(args, "--clients", 1).max(1);
    let limit = Duration::from_secs(num(args, "--limit", 60));
    let rt = runtime();
    let rss_before = rt.block_on(async { rss_bytes() });
    let target = events * clients;
    let probe = Probe::new(target, (clients == 1).then_some(events));
    let out = rt.block_on(async {
        let deadline = tokio::time::Instant::now() + limit;
        let running = start(kind, &url, clients, &probe);
        let mut line = String::new();
        let first = tokio::time::timeout_at(deadline, probe.first.notified()).await;
        let (cpu0, n0) = (cpu_ns(), probe.count.load(Ordering::Relaxed));
        let t0 = Instant::now();
        let all = first.is_ok()
            && (probe.count.load(Ordering::Relaxed) >= target
                || tokio::time::timeout_at(deadline, probe.done.notified())
                    .await
                    .is_ok());
        let (cpu1, n1) = (cpu_ns(), probe.count.load(Ordering::Relaxed));
        let wall = t0.elapsed();
        // A tether client is ready when both its streams are up: the
        // memory figure counts a client that is fully connected.
        if let Clients::Tether(ts) = &running {
            for t in ts {
                let _ = t.ready(Duration::from_secs(5)).await;
            }
        }
        // Late duplicates would show here; acks and buffers settle.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let rss_after = rss_bytes();
        let applied = probe.count.load(Ordering::Relaxed);
        line.push_str(&format!(
            "result kind={} applied={applied} expected={target} complete={} cpu_ns={} window_events={} wall_ns={} rss_before={rss_before} rss_after={rss_after} dups={}",
            kind.name(),
            all as u8,
            cpu1.saturating_sub(cpu0),
            n1.saturating_sub(n0),
            wall.as_nanos(),
            probe.dups.load(Ordering::Relaxed),
        ));
        match running {
            Clients::Tether(ts) => {
                for t in &ts {
                    t.shutdown(Duration::from_secs(1)).await;
                }
            }
            Clients::Tasks(hs) => hs.iter().for_each(|h| h.abort()),
        }
        line
    });
    println!("{out}");
    if !probe.times.is_empty() {
        let times: Vec<String> = probe.times[1..]
            .iter()
            .map(|t| t.load(Ordering::Relaxed).to_string())
            .collect();
        println!("applied {}", times.join(" "));
    }
    let _ = std::io::stdout().flush();
    // The runtime's blocking threads (a Tether's, aa's) are not awaited.
    rt.shutdown_timeout(Duration::from_secs(1));
}

// ----------------------------------------------------------------- parent

/// One measurement: a gateway child and a client child.
#[derive(Default, Debug)]
struct Run {
    applied: u64,
    expected: u64,
    complete: bool,
    cpu_ns: u64,
    window_events: u64,
    rss_delta: i64,
    clients: u64,
    latencies: Vec<u64>,
    opened: u64,
    lag_closes: u64,
    acks: u64,
    problem: Option<String>,
}

impl Run {
    fn cpu_us_per_event(&self) -> f64 {
        self.cpu_ns as f64 / 1e3 / self.window_events.max(1) as f64
    }

    fn rss_per_client(&self) -> f64 {
        self.rss_delta as f64 / self.clients as f64
    }
}

fn kv(line: &str) -> BTreeMap<&str, &str> {
    line.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .collect()
}

fn numbers(line: &str, prefix: &str) -> Vec<u64> {
    line.strip_prefix(prefix)
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn measure(kind: Kind, rate: u64, events: u64, clients: u64) -> Run {
    let exe = std::env::current_exe().expect("own executable");
    let limit = events / rate.max(1) + 40;
    let mut gw = Command::new(&exe)
        .args(["gateway", "--rate", &rate.to_string(), "--events"])
        .arg(events.to_string())
        .args(["--subscribers", &clients.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the gateway child");
    let mut gw_out = BufReader::new(gw.stdout.take().expect("gateway stdout"));
    let mut first = String::new();
    let _ = gw_out.read_line(&mut first);
    let Some(port) = first.trim().strip_prefix("port ").map(str::to_owned) else {
        let _ = gw.kill();
        let _ = gw.wait();
        return Run {
            problem: Some("gateway did not start".into()),
            ..Run::default()
        };
    };
    let client = Command::new(&exe)
        .args(["client", "--kind", kind.name(), "--url"])
        .arg(format!("http://127.0.0.1:{port}"))
        .args(["--events", &events.to_string(), "--clients"])
        .arg(clients.to_string())
        .args(["--limit", &limit.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("run the client child");
    drop(gw.stdin.take());
    let mut rest = String::new();
    let _ = gw_out.read_to_string(&mut rest);
    let _ = gw.wait();

    let out = String::from_utf8_lossy(&client.stdout);
    let mut run = Run {
        clients,
        ..Run::default()
    };
    let mut applied_at = Vec::new();
    for line in out.lines() {
        if line.starts_with("result ") {
            let m = kv(line);
            let get = |k: &str| m.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            run.applied = get("applied");
            run.expected = get("expected");
            run.complete = get("complete") == 1;
            run.cpu_ns = get("cpu_ns");
            run.window_events = get("window_events");
            run.rss_delta = get("rss_after") as i64 - get("rss_before") as i64;
            if get("dups") > 0 {
                run.problem = Some(format!("{} events applied twice", get("dups")));
            }
        } else if line.starts_with("applied ") {
            applied_at = numbers(line, "applied ");
        }
    }
    let mut sent = Vec::new();
    for line in rest.lines() {
        if line.starts_with("status ") {
            let m = kv(line);
            let get = |k: &str| m.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            run.opened = get("opened");
            run.lag_closes = get("lag_closes");
            run.acks = get("acks");
        } else if line.starts_with("sent ") {
            sent = numbers(line, "sent ");
        }
    }
    if run.expected == 0 {
        run.problem = Some("client child reported nothing".into());
    } else if run.applied != run.expected || !run.complete {
        run.problem = Some(format!("applied {} of {}", run.applied, run.expected));
    } else if run.opened != clients {
        run.problem = Some(format!(
            "{} Subscribe streams opened for {clients} clients",
            run.opened
        ));
    } else if run.lag_closes > 0 {
        run.problem = Some(format!("{} lag closes", run.lag_closes));
    }
    if !applied_at.is_empty() {
        if applied_at.len() != sent.len() || applied_at.contains(&0) {
            run.problem
                .get_or_insert_with(|| "an event without an apply time".into());
        } else {
            run.latencies = applied_at
                .iter()
                .zip(&sent)
                .map(|(a, s)| a.saturating_sub(*s))
                .collect();
            run.latencies.sort_unstable();
        }
    }
    run
}

fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The measurements of one row: every round's run, per kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Case {
    Cpu1k,
    Cpu10k,
    Mem1,
    Mem100,
}

fn parent(args: &[String]) {
    let quick = args.iter().any(|a| a == "--quick");
    let rounds = num(args, "--rounds", 3).max(1) as usize;
    let (n1k, n10k) = if quick {
        (1_500, 10_000)
    } else {
        (8_000, 50_000)
    };
    let cases = [
        (Case::Cpu1k, 1_000, n1k, 1),
        (Case::Cpu10k, 10_000, n10k, 1),
        (Case::Mem1, MEM_RATE, MEM_EVENTS, 1),
        (Case::Mem100, MEM_RATE, MEM_EVENTS, 100),
    ];
    let started = Instant::now();
    println!(
        "peer_bench: {rounds} rounds; CPU at 1k/s ({n1k} events) and 10k/s ({n10k} events); memory with 1 and 100 clients ({MEM_EVENTS} events each at {MEM_RATE}/s)"
    );
    let mut runs: BTreeMap<(Case, Kind), Vec<Run>> = BTreeMap::new();
    for round in 0..rounds {
        for &(case, rate, events, clients) in &cases {
            for i in 0..Kind::ALL.len() {
                let kind = Kind::ALL[(i + round) % Kind::ALL.len()];
                let run = measure(kind, rate, events, clients);
                println!(
                    "round {} {:?} {:>6}: applied {}/{} cpu {:.2} µs/event rss {:.0} KiB/client streams {} acks {} p50 {} p99 {}{}",
                    round + 1,
                    case,
                    kind.name(),
                    run.applied,
                    run.expected,
                    run.cpu_us_per_event(),
                    run.rss_per_client() / 1024.0,
                    run.opened,
                    run.acks,
                    us(quantile(&run.latencies, 0.5)),
                    us(quantile(&run.latencies, 0.99)),
                    run.problem
                        .as_deref()
                        .map(|p| format!(" INVALID: {p}"))
                        .unwrap_or_default()
                );
                runs.entry((case, kind)).or_default().push(run);
            }
        }
    }
    print_table(&runs, rounds, n1k, n10k);
    println!("total {:.0} s", started.elapsed().as_secs_f64());
}

fn us(ns: u64) -> String {
    format!("{:.0} µs", ns as f64 / 1e3)
}

/// The cell of one kind: the median over valid rounds, marked when a round
/// was invalid.
fn cell(runs: &[Run], fig: impl Fn(&Run) -> f64, fmt: impl Fn(f64) -> String) -> (String, f64) {
    let valid: Vec<f64> = runs
        .iter()
        .filter(|r| r.problem.is_none())
        .map(&fig)
        .collect();
    let bad = runs.len() - valid.len();
    let m = median(valid);
    let mut s = if m.is_nan() { "-".to_owned() } else { fmt(m) };
    if bad > 0 {
        let why = runs
            .iter()
            .find_map(|r| r.problem.clone())
            .unwrap_or_default();
        s.push_str(&format!(
            " (INVALID in {bad} of {} rounds: {why})",
            runs.len()
        ));
    }
    (s, m)
}

fn print_table(runs: &BTreeMap<(Case, Kind), Vec<Run>>, rounds: usize, n1k: u64, n10k: u64) {
    let empty = Vec::new();
    let get = |c: Case, k: Kind| runs.get(&(c, k)).unwrap_or(&empty);
    println!();
    println!("| figure (median of {rounds} alternating rounds) | tether | aa-runtime | bare tonic, acks every event | tether / aa-runtime |");
    println!("|---|---|---|---|---|");
    let line =
        |what: String, fig: &dyn Fn(&Run) -> f64, fmt: &dyn Fn(f64) -> String, case: Case| {
            let cells: Vec<(String, f64)> = Kind::ALL
                .iter()
                .map(|&k| cell(get(case, k), fig, fmt))
                .collect();
            let ratio = cells[0].1 / cells[1].1;
            println!(
                "| {what} | {} | {} | {} | {} |",
                cells[0].0,
                cells[1].0,
                cells[2].0,
                if ratio.is_finite() {
                    format!("{ratio:.2}")
                } else {
                    "-".into()
                }
            );
        };
    let cpu = |r: &Run| r.cpu_us_per_event();
    let cpu_fmt = |v: f64| format!("{v:.2} µs");
    line(
        format!("client CPU (user+sys) per event applied, 1k events/s, {n1k} events"),
        &cpu,
        &cpu_fmt,
        Case::Cpu1k,
    );
    line(
        format!("client CPU (user+sys) per event applied, 10k events/s, {n10k} events"),
        &cpu,
        &cpu_fmt,
        Case::Cpu10k,
    );
    let mem = |r: &Run| r.rss_per_client();
    let mem_fmt = |v: f64| format!("{:.0} KiB", v / 1024.0);
    line(
        "resident memory per client (RSS growth / clients), 1 client".into(),
        &mem,
        &mem_fmt,
        Case::Mem1,
    );
    line(
        "resident memory per client (RSS growth / clients), 100 clients".into(),
        &mem,
        &mem_fmt,
        Case::Mem100,
    );
    let lat_fmt = |v: f64| format!("{v:.0} µs");
    line(
        "publish→apply p50, 1k events/s".into(),
        &|r: &Run| quantile(&r.latencies, 0.5) as f64 / 1e3,
        &lat_fmt,
        Case::Cpu1k,
    );
    line(
        "publish→apply p99, 1k events/s".into(),
        &|r: &Run| quantile(&r.latencies, 0.99) as f64 / 1e3,
        &lat_fmt,
        Case::Cpu1k,
    );
    line(
        "acks the gateway received per event, 10k events/s".into(),
        &|r: &Run| r.acks as f64 / r.expected.max(1) as f64,
        &|v: f64| format!("{v:.3}"),
        Case::Cpu10k,
    );
}
