//! Tick jobs end to end: the real tokio scheduler service
//! ([`tether_tokio::scheduler`] on a [`MemoryStore`]) against the baseline
//! of one tokio task per job ([`crate::baseline::ticks`]), both running
//! [`JOBS`] jobs every [`INTERVAL`] whose body counts an atomic.
//!
//! Each side runs in a fresh child process ([`child`], started by
//! [`rows`] through the calling binary's `--sched <side>` mode) on the same
//! runtime (multi-thread, [`WORKERS`] workers), so neither inherits the
//! other's heap. The child measures:
//! - resident memory: growth from the bare runtime to the jobs registered
//!   (before their first tick), and to the end of the measured window
//!   (running: the scheduler's run history, bounded per job, has grown by
//!   then);
//! - CPU: process user + system time (`/proc/self/stat`, every thread) over a
//!   window that starts after set-up and one warm-up interval, per second
//!   of wall time;
//! - ticks actually run per second over the same window, to show both
//!   sides did the work (about `JOBS` per second).
//!
//! A third side, `tether-discard`, runs the same scheduler on a
//! [`DiscardStore`] (keeps nothing): the difference from `tether` is what
//! persistence in memory costs (job copies, state, bounded run history),
//! and what is left is the schedule and its worker.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tether_tokio::scheduler::{
    JobDef, JobId, JobRegistry, JobStore, MemoryStore, RunRecord, RunsNotSaved, Scheduler,
    SchedulerConfig, StoreError, StoredJob, TickContext, TickFailure, TickJob, TickSave,
};

use crate::mem::resident_bytes;

/// Jobs per side: the 100k.
pub const JOBS: usize = 100_000;

/// Every job's interval.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// Worker threads of the runtime both sides run on.
pub const WORKERS: usize = 2;

/// The measured window: 10 s, or 3 s with `--quick`.
pub fn window(quick: bool) -> Duration {
    Duration::from_secs(if quick { 3 } else { 10 })
}

/// The runtime both sides run on: multi-thread, [`WORKERS`] workers.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Clock ticks per second of `/proc/self/stat` (`USER_HZ`): part of the
/// Linux ABI, 100 on every architecture (what `sysconf(_SC_CLK_TCK)`
/// returns; calling it would need `unsafe`, which the workspace forbids).
pub const CLK_TCK: u64 = 100;

/// CPU time (user + system, every thread) this process has used so far,
/// from `/proc/self/stat` (`utime + stime`, in [`CLK_TCK`] ticks, so
/// 10 ms resolution); `None` where it cannot be read (not Linux).
pub fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; fields resume after ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    // `rest` starts at field 3 (state); utime and stime are fields 14, 15.
    let utime: u64 = f.nth(11)?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    let ticks = utime + stime;
    Some(
        Duration::from_secs(ticks / CLK_TCK)
            + Duration::from_millis(ticks % CLK_TCK * 1000 / CLK_TCK),
    )
}

/// The job kind tether runs: the trivial body, counting an atomic.
struct Count(Arc<AtomicU64>);

#[async_trait]
impl TickJob for Count {
    async fn tick(&self, _: &mut TickContext) -> Result<(), TickFailure> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// A [`JobStore`] that keeps nothing (bench only, not a product type): every
/// write succeeds and is dropped, every read is empty. It isolates the
/// schedule and its worker from the cost of persistence.
pub struct DiscardStore;

#[async_trait]
impl JobStore for DiscardStore {
    async fn load(&self) -> Result<Vec<StoredJob>, StoreError> {
        Ok(Vec::new())
    }
    async fn put_job(&self, _: &JobDef) -> Result<(), StoreError> {
        Ok(())
    }
    async fn delete_job(&self, _: &JobId) -> Result<(), StoreError> {
        Ok(())
    }
    async fn record_runs(&self, _: &[(RunRecord, Option<TickSave>)]) -> Result<(), RunsNotSaved> {
        Ok(())
    }
    async fn recent_runs(&self, _: &JobId, _: usize) -> Result<Vec<RunRecord>, StoreError> {
        Ok(Vec::new())
    }
}

/// Start tether's scheduler service on the current runtime with `jobs`
/// jobs every `interval`, each counting one `ticks` per tick, on a
/// [`MemoryStore`]. Shut it down with [`Scheduler::shutdown`] (or drop it).
pub async fn start_tether(jobs: usize, interval: Duration, ticks: Arc<AtomicU64>) -> Scheduler {
    start_on(MemoryStore::default(), jobs, interval, ticks).await
}

/// [`start_tether`] on `store`.
pub async fn start_on(
    store: impl JobStore,
    jobs: usize,
    interval: Duration,
    ticks: Arc<AtomicU64>,
) -> Scheduler {
    let config = SchedulerConfig::default().with_tick(
        tether_tokio::scheduler::TickConfig::default()
            .with_max_jobs(jobs.max(tether_core::tick::DEFAULT_MAX_JOBS)),
    );
    let registry = JobRegistry::new().with("count", Count(ticks));
    let scheduler = Scheduler::start(config, registry, store)
        .await
        .expect("scheduler");
    for i in 0..jobs {
        scheduler
            .upsert(JobDef::new(format!("job{i:06}"), "count", interval))
            .await
            .expect("upsert");
    }
    scheduler
}

/// What one child measured.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Measured {
    /// Resident-memory growth from the bare runtime to the jobs registered,
    /// before their first tick, in bytes.
    pub setup_rss_bytes: u64,
    /// Resident-memory growth from the bare runtime to the end of the
    /// window, in bytes.
    pub rss_bytes: u64,
    /// CPU seconds used per wall second over the window.
    pub cpu_per_sec: f64,
    /// Ticks run per wall second over the window.
    pub ticks_per_sec: f64,
}

impl Measured {
    fn encode(&self) -> String {
        format!(
            "{} {} {} {}",
            self.setup_rss_bytes, self.rss_bytes, self.cpu_per_sec, self.ticks_per_sec
        )
    }

    fn decode(s: &str) -> Option<Self> {
        let mut it = s.split_whitespace();
        Some(Measured {
            setup_rss_bytes: it.next()?.parse().ok()?,
            rss_bytes: it.next()?.parse().ok()?,
            cpu_per_sec: it.next()?.parse().ok()?,
            ticks_per_sec: it.next()?.parse().ok()?,
        })
    }
}

/// The child process's body, for the calling binary's `--sched <side>`
/// mode: run side `which` (`tether`, `tether-discard` or `baseline`) and
/// measure it. Returns the line [`rows`] parses, or `unknown`.
pub fn child(which: &str, quick: bool) -> String {
    if !["tether", "tether-discard", "baseline"].contains(&which) {
        return "unknown".into();
    }
    let rt = runtime();
    let before = resident_bytes().unwrap_or(0);
    let ticks = Arc::new(AtomicU64::new(0));
    let m = rt.block_on(async {
        let (scheduler, tasks) = if which == "tether" {
            let s = start_tether(JOBS, INTERVAL, ticks.clone()).await;
            (Some(s), Vec::new())
        } else if which == "tether-discard" {
            let s = start_on(DiscardStore, JOBS, INTERVAL, ticks.clone()).await;
            (Some(s), Vec::new())
        } else {
            let hs = crate::baseline::ticks::spawn_jobs(JOBS, INTERVAL, ticks.clone());
            (None, hs)
        };
        let setup_rss = resident_bytes().unwrap_or(0).saturating_sub(before);
        // Warm-up: one interval after set-up, so every job has ticked.
        tokio::time::sleep(INTERVAL).await;
        let (t0, c0, w0) = (ticks.load(Ordering::Relaxed), cpu_time(), Instant::now());
        tokio::time::sleep(window(quick)).await;
        let (t1, c1, wall) = (
            ticks.load(Ordering::Relaxed),
            cpu_time(),
            w0.elapsed().as_secs_f64(),
        );
        let rss = resident_bytes().unwrap_or(0);
        let cpu = match (c0, c1) {
            (Some(a), Some(b)) => b.saturating_sub(a).as_secs_f64(),
            _ => f64::NAN,
        };
        for t in &tasks {
            t.abort();
        }
        if let Some(s) = scheduler {
            s.shutdown().await;
        }
        Measured {
            setup_rss_bytes: setup_rss,
            rss_bytes: rss.saturating_sub(before),
            cpu_per_sec: cpu / wall,
            ticks_per_sec: (t1 - t0) as f64 / wall,
        }
    });
    m.encode()
}

/// Run `exe --sched <which> [--quick]` in a fresh process and parse what
/// it measured.
pub fn measure(exe: &Path, which: &str, quick: bool) -> Option<Measured> {
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["--sched", which]);
    if quick {
        cmd.arg("--quick");
    }
    let out = cmd.output().ok()?;
    Measured::decode(String::from_utf8_lossy(&out.stdout).trim())
}

/// One row of the bench's table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedRow {
    /// What is measured.
    pub what: String,
    /// tether's figure.
    pub tether: String,
    /// The baseline's figure.
    pub baseline: String,
    /// tether / baseline.
    pub ratio: String,
}

/// Measure both sides (each in a child process of `exe`, which must
/// support `--sched <side>` through [`child`]) and return the rows:
/// resident memory, CPU per second, ticks run per second.
pub fn rows(exe: &Path, quick: bool) -> Vec<SchedRow> {
    let t = measure(exe, "tether", quick);
    let d = measure(exe, "tether-discard", quick);
    let b = measure(exe, "baseline", quick);
    let ratio = |side: Option<Measured>, f: fn(&Measured) -> f64| match (side, b) {
        (Some(t), Some(b)) if f(&b) > 0.0 => format!("{:.2}", f(&t) / f(&b)),
        _ => "n/a".into(),
    };
    let fmt = |v: Option<Measured>, f: &dyn Fn(&Measured) -> String| match v {
        Some(m) => f(&m),
        None => "n/a".into(),
    };
    let mib = |b: u64| {
        format!(
            "{:.1} MiB ({} B each)",
            b as f64 / 1048576.0,
            b / JOBS as u64
        )
    };
    let setup = |m: &Measured| mib(m.setup_rss_bytes);
    let mem = |m: &Measured| mib(m.rss_bytes);
    let cpu = |m: &Measured| {
        format!(
            "{:.3} s/s ({:.2} µs/tick)",
            m.cpu_per_sec,
            m.cpu_per_sec * 1e6 / m.ticks_per_sec.max(1.0)
        )
    };
    let tps = |m: &Measured| format!("{:.0}", m.ticks_per_sec);
    let secs = window(quick).as_secs();
    let label = format!("100k tick jobs @ 1 s, {WORKERS} workers");
    let running = format!("after {} s running", secs + INTERVAL.as_secs());
    let mut rows = Vec::new();
    for (side, store, note) in [
        (t, "", " (run history growing)"),
        (d, " [tether without persistence: DiscardStore]", ""),
    ] {
        rows.push(SchedRow {
            what: format!("resident memory, {label}, registered (before the first tick){store}"),
            tether: fmt(side, &setup),
            baseline: fmt(b, &setup),
            ratio: ratio(side, |m| m.setup_rss_bytes as f64),
        });
        rows.push(SchedRow {
            what: format!("resident memory, {label}, {running}{note}{store}"),
            tether: fmt(side, &mem),
            baseline: fmt(b, &mem),
            ratio: ratio(side, |m| m.rss_bytes as f64),
        });
        rows.push(SchedRow {
            what: format!("CPU (user+sys) per second, {label}, {secs} s window{store}"),
            tether: fmt(side, &cpu),
            baseline: fmt(b, &cpu),
            ratio: ratio(side, |m| m.cpu_per_sec),
        });
    }
    rows.push(SchedRow {
        what: format!("ticks run per second, {label} (tether on MemoryStore)"),
        tether: fmt(t, &tps),
        baseline: fmt(b, &tps),
        ratio: ratio(t, |m| m.ticks_per_sec),
    });
    rows
}
