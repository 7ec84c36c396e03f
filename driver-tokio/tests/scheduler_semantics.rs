//! The tick scheduler's guarantees observed through its handle, under
//! paused tokio time, with the in-memory store.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tether_tokio::scheduler::{
    JobDef, JobId, JobRegistry, LabelSelector, MemoryStore, RunEvent, RunOutcome, RunReason,
    RunRecord, RunSubscription, Scheduler, SchedulerConfig, SchedulerError, TickConfig,
    TickContext, TickFailure, TickJob, TickNow,
};
use tokio::time::timeout;

const BOUND: Duration = Duration::from_secs(24 * 3600);

fn id(s: &str) -> JobId {
    JobId::from(s)
}

async fn next(sub: &mut RunSubscription) -> RunRecord {
    match timeout(BOUND, sub.recv())
        .await
        .expect("a run within the bound")
    {
        Some(RunEvent::Finished(r)) => r,
        Some(RunEvent::Missed(n)) => panic!("missed {n}"),
        None => panic!("scheduler gone"),
    }
}

/// The next run of `job`, skipping other jobs' runs.
async fn next_of(sub: &mut RunSubscription, job: &str) -> RunRecord {
    loop {
        let r = next(sub).await;
        if r.job.as_str() == job {
            return r;
        }
    }
}

fn gap(a: SystemTime, b: SystemTime) -> Duration {
    b.duration_since(a).unwrap()
}

fn close_to(d: Duration, secs: u64) -> bool {
    d >= Duration::from_secs(secs) && d <= Duration::from_secs(secs) + Duration::from_millis(2)
}

// ---- job kinds ----------------------------------------------------------

/// Fails while `fail` is above zero (counting it down), then succeeds.
struct Flaky(Arc<AtomicU32>);

#[async_trait]
impl TickJob for Flaky {
    async fn tick(&self, _: &mut TickContext) -> Result<(), TickFailure> {
        let left = self.0.load(Ordering::SeqCst);
        if left > 0 {
            self.0.store(left - 1, Ordering::SeqCst);
            return Err("dependency down".into());
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn backoff_curve_and_reset_observed_through_the_scheduler() {
    let fail = Arc::new(AtomicU32::new(7));
    let registry = JobRegistry::new().with("flaky", Flaky(fail.clone()));
    let s = Scheduler::start(SchedulerConfig::default(), registry, MemoryStore::default())
        .await
        .unwrap();
    let mut sub = s.subscribe();
    s.upsert(JobDef::new("f", "flaky", Duration::from_secs(60)))
        .await
        .unwrap();
    let t0 = s.get(&id("f")).unwrap().next_due.unwrap() - Duration::from_secs(60);
    let mut runs = Vec::new();
    for _ in 0..8 {
        runs.push(next(&mut sub).await);
    }
    assert_eq!(runs[0].reason, RunReason::Scheduled);
    assert_eq!(runs[0].scheduled_for, t0 + Duration::from_secs(60));
    assert!(runs[..7].iter().all(|r| r.outcome.is_failure()));
    assert!(runs[1..].iter().all(|r| r.reason == RunReason::Retry));
    assert_eq!(runs[7].outcome, RunOutcome::Success);
    let gaps: Vec<Duration> = runs
        .windows(2)
        .map(|w| gap(w[0].started_at, w[1].started_at))
        .collect();
    for (g, secs) in gaps.iter().zip([1, 2, 4, 8, 16, 30, 30]) {
        assert!(close_to(*g, secs), "gaps {gaps:?}");
    }
    // The success reset the count and returned the job to its grid.
    let info = s.get(&id("f")).unwrap();
    assert_eq!(info.failures, 0);
    assert_eq!(info.next_due, Some(t0 + Duration::from_secs(180)));
    fail.store(1, Ordering::SeqCst);
    let r9 = next(&mut sub).await;
    assert_eq!(
        (r9.reason, r9.scheduled_for),
        (RunReason::Scheduled, t0 + Duration::from_secs(180))
    );
    assert!(r9.outcome.is_failure());
    let r10 = next(&mut sub).await;
    assert_eq!(r10.reason, RunReason::Retry);
    assert!(
        close_to(gap(r9.started_at, r10.started_at), 1),
        "reset: 1 s again"
    );
    assert_eq!(r10.outcome, RunOutcome::Success);
    assert_eq!(s.stats().failures, 8);
    s.shutdown().await;
}

/// Counts ticks running per job; works for `config` milliseconds.
#[derive(Clone, Default)]
struct Probe {
    active: Arc<Mutex<HashMap<JobId, usize>>>,
    overlaps: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

struct Leave(Probe, JobId);

impl Drop for Leave {
    fn drop(&mut self) {
        *self.0.active.lock().unwrap().get_mut(&self.1).unwrap() -= 1;
    }
}

#[async_trait]
impl TickJob for Probe {
    async fn tick(&self, ctx: &mut TickContext) -> Result<(), TickFailure> {
        let job = ctx.job().clone();
        {
            let mut a = self.active.lock().unwrap();
            let n = a.entry(job.clone()).or_default();
            *n += 1;
            self.peak.fetch_max(*n, Ordering::SeqCst);
            if *n > 1 {
                self.overlaps.fetch_add(1, Ordering::SeqCst);
            }
        }
        let _leave = Leave(self.clone(), job);
        let ms: u64 = ctx.config().parse()?;
        tokio::time::sleep(Duration::from_millis(ms)).await;
        if ms == u64::MAX {
            return Ok(()); // never: a hang is cut by the run timeout
        }
        let by = ctx.version().get().to_string();
        ctx.state_mut().set("by", by)?;
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn hot_swap_under_load_never_overlaps_and_ignores_old_results() {
    let probe = Probe::default();
    let registry = JobRegistry::new().with("probe", probe.clone());
    let cfg = SchedulerConfig::default().with_subscriber_capacity(100_000);
    let s = Scheduler::start(cfg, registry, MemoryStore::default())
        .await
        .unwrap();
    let mut sub = s.subscribe();
    const JOBS: u64 = 10;
    for j in 0..JOBS {
        let def =
            JobDef::new(format!("j{j}"), "probe", Duration::from_millis(50)).with_config("80");
        s.upsert(def).await.unwrap();
    }
    let mut x: u64 = 99;
    let mut updates = 0;
    for i in 0..400u64 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = (x >> 33) % JOBS;
        let job = format!("j{j}");
        if i % 3 == 0 {
            let _ = s.tick_now(&id(&job)).unwrap();
        } else {
            let def = JobDef::new(job, "probe", Duration::from_millis(30 + (x >> 40) % 50))
                .with_config(((x >> 20) % 120 + 10).to_string());
            s.upsert(def).await.unwrap();
            updates += 1;
        }
        tokio::time::sleep(Duration::from_millis((x >> 50) % 15)).await;
    }
    let versions: HashMap<JobId, u64> = s
        .list(&LabelSelector::all())
        .into_iter()
        .map(|j| (j.def.id, j.version.get()))
        .collect();
    // Running ticks finish (and are saved) during the shutdown grace.
    s.shutdown().await;
    let states: HashMap<JobId, Option<String>> = (0..JOBS)
        .map(|j| {
            let i = id(&format!("j{j}"));
            let st = s.state(&i).unwrap().get("by").map(str::to_owned);
            (i, st)
        })
        .collect();
    let mut records = Vec::new();
    while let Some(ev) = timeout(BOUND, sub.recv()).await.unwrap() {
        match ev {
            RunEvent::Finished(r) => records.push(r),
            RunEvent::Missed(n) => panic!("missed {n}"),
        }
    }
    assert_eq!(
        probe.overlaps.load(Ordering::SeqCst),
        0,
        "no overlapping ticks"
    );
    assert_eq!(probe.peak.load(Ordering::SeqCst), 1);
    let superseded = records
        .iter()
        .filter(|r| r.outcome == RunOutcome::Superseded)
        .count();
    let succeeded = records
        .iter()
        .filter(|r| r.outcome == RunOutcome::Success)
        .count();
    assert!(
        superseded > 0 && succeeded > 0,
        "{superseded} superseded, {succeeded} ok"
    );
    // The saved state is the last accepted success's: a superseded run of
    // an older version never wrote it.
    for (job, state) in &states {
        let last_ok = records
            .iter()
            .rfind(|r| &r.job == job && r.outcome == RunOutcome::Success)
            .map(|r| r.version.to_string());
        assert_eq!(state, &last_ok, "job {job}");
        for r in records.iter().filter(|r| &r.job == job) {
            assert!(r.version <= versions[job]);
        }
    }
    eprintln!(
        "{updates} hot swaps, {} runs: {succeeded} ok, {superseded} superseded",
        records.len()
    );
}

#[derive(Clone)]
struct Boom;

#[async_trait]
impl TickJob for Boom {
    async fn tick(&self, _: &mut TickContext) -> Result<(), TickFailure> {
        panic!("boom");
    }
}

#[tokio::test(start_paused = true)]
async fn a_panic_or_a_timeout_is_a_failed_run_not_a_dead_scheduler() {
    let probe = Probe::default();
    let registry = JobRegistry::new()
        .with("boom", Boom)
        .with("probe", probe.clone());
    let cfg = SchedulerConfig::default()
        .with_tick(TickConfig::default().with_run_timeout(Some(Duration::from_secs(5))));
    let s = Scheduler::start(cfg, registry, MemoryStore::default())
        .await
        .unwrap();
    let mut sub = s.subscribe();
    let ten = Duration::from_secs(10);
    s.upsert(JobDef::new("boom", "boom", ten)).await.unwrap();
    s.upsert(JobDef::new("hang", "probe", ten).with_config(u64::MAX.to_string()))
        .await
        .unwrap();
    s.upsert(JobDef::new("ok", "probe", ten).with_config("10"))
        .await
        .unwrap();
    let mut boom = Vec::new();
    let mut hang = Vec::new();
    let mut ok = 0;
    while boom.len() < 3 || hang.len() < 3 || ok < 3 {
        let r = next(&mut sub).await;
        match r.job.as_str() {
            "boom" => boom.push(r),
            "hang" => hang.push(r),
            _ => {
                assert_eq!(r.outcome, RunOutcome::Success);
                ok += 1;
            }
        }
    }
    assert!(boom
        .iter()
        .all(|r| matches!(&r.outcome, RunOutcome::Panicked(m) if m == "boom")));
    assert!(close_to(gap(boom[0].started_at, boom[1].started_at), 1));
    assert!(close_to(gap(boom[1].started_at, boom[2].started_at), 2));
    assert!(hang.iter().all(|r| r.outcome == RunOutcome::TimedOut));
    assert!(close_to(gap(hang[0].started_at, hang[0].finished_at), 5));
    // Retried 1 s, then 2 s after each timeout, never overlapping the
    // stopped tick.
    assert_eq!(hang[1].reason, RunReason::Retry);
    assert!(close_to(gap(hang[0].finished_at, hang[1].started_at), 1));
    assert!(close_to(gap(hang[1].finished_at, hang[2].started_at), 2));
    assert_eq!(probe.overlaps.load(Ordering::SeqCst), 0);
    assert_eq!(s.get(&id("hang")).unwrap().failures, 3);
    assert_eq!(s.stats().timeouts, 3);
    s.shutdown().await;
}

/// Writes `last = tick`, then fails if its config says so.
struct Writer;

#[async_trait]
impl TickJob for Writer {
    async fn tick(&self, ctx: &mut TickContext) -> Result<(), TickFailure> {
        let t = ctx.tick().to_string();
        ctx.state_mut().set("last", t)?;
        if ctx.config() == "fail" {
            return Err("asked to fail".into());
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn handle_operations_and_state_saved_only_on_success() {
    let registry = JobRegistry::new().with("w", Writer);
    let store = MemoryStore::new(3);
    let s = Scheduler::start(SchedulerConfig::default(), registry, store)
        .await
        .unwrap();
    let mut sub = s.subscribe();
    let hour = Duration::from_secs(3600);
    assert!(matches!(
        s.upsert(JobDef::new("x", "nope", hour)).await,
        Err(SchedulerError::UnknownKind(_))
    ));
    assert!(matches!(
        s.upsert(JobDef::new("x", "w", Duration::ZERO)).await,
        Err(SchedulerError::Refused(_))
    ));
    assert!(s.get(&id("x")).is_none());
    s.upsert(JobDef::new("a", "w", hour).with_label("team", "infra"))
        .await
        .unwrap();
    s.upsert(JobDef::new("b", "w", hour).with_label("team", "ops"))
        .await
        .unwrap();
    s.upsert(JobDef::new("c", "w", hour)).await.unwrap();
    let names = |sel: &str| -> Vec<String> {
        s.list(&LabelSelector::parse(sel).unwrap())
            .into_iter()
            .map(|j| j.def.id.to_string())
            .collect()
    };
    assert_eq!(names(""), ["a", "b", "c"]);
    assert_eq!(names("team=infra"), ["a"]);
    assert_eq!(names("team,team!=infra"), ["b"]);
    assert_eq!(names("!team"), ["c"]);

    // tick now; state saved after a success...
    assert!(matches!(s.tick_now(&id("a")).unwrap(), TickNow::Started(_)));
    let r = next(&mut sub).await;
    assert_eq!(
        (r.reason, r.tick, r.outcome.clone()),
        (RunReason::Manual, 1, RunOutcome::Success)
    );
    assert_eq!(s.state(&id("a")).unwrap().get("last"), Some("1"));
    // ...not after a failure (the tick count still moves).
    s.upsert(
        JobDef::new("a", "w", hour)
            .with_config("fail")
            .with_label("team", "infra"),
    )
    .await
    .unwrap();
    s.tick_now(&id("a")).unwrap();
    let r = next(&mut sub).await;
    assert!(r.outcome.is_failure());
    assert_eq!(s.state(&id("a")).unwrap().get("last"), Some("1"));
    let a = s.get(&id("a")).unwrap();
    assert_eq!((a.ticks, a.failures), (2, 1));
    assert_eq!(a.def.config, "fail");

    // Disabled: no tick, even by hand.
    s.disable(&id("b")).await.unwrap();
    assert!(matches!(
        s.tick_now(&id("b")),
        Err(SchedulerError::Refused(_))
    ));
    assert_eq!(s.get(&id("b")).unwrap().next_due, None);
    let until = tokio::time::Instant::now() + Duration::from_secs(3 * 3600);
    while let Ok(ev) = tokio::time::timeout_at(until, sub.recv()).await {
        let Some(RunEvent::Finished(r)) = ev else {
            panic!("{ev:?}")
        };
        assert_ne!(r.job.as_str(), "b", "a disabled job ticked");
    }
    s.enable(&id("b")).await.unwrap();
    let r = next_of(&mut sub, "b").await;
    assert_eq!(r.reason, RunReason::Scheduled);

    // History: newest first, bounded by the store (3 per job).
    let hist = s.recent_runs(&id("a"), 10).await.unwrap();
    assert_eq!(hist.len(), 3);
    assert!(hist.windows(2).all(|w| w[0].run > w[1].run));

    // Delete: gone with its history; no more runs.
    s.delete(&id("c")).await.unwrap();
    assert!(s.get(&id("c")).is_none());
    assert!(s.recent_runs(&id("c"), 10).await.unwrap().is_empty());
    assert!(matches!(
        s.delete(&id("c")).await,
        Err(SchedulerError::Refused(_))
    ));
    s.shutdown().await;
    assert!(matches!(
        s.upsert(JobDef::new("d", "w", hour)).await,
        Err(SchedulerError::Shutdown)
    ));
    assert!(matches!(
        s.tick_now(&id("a")),
        Err(SchedulerError::Shutdown)
    ));
}

#[tokio::test(start_paused = true)]
async fn tick_now_during_a_tick_coalesces_into_one() {
    let probe = Probe::default();
    let registry = JobRegistry::new().with("probe", probe.clone());
    let s = Scheduler::start(SchedulerConfig::default(), registry, MemoryStore::default())
        .await
        .unwrap();
    let mut sub = s.subscribe();
    s.upsert(JobDef::new("p", "probe", Duration::from_secs(3600)).with_config("1000"))
        .await
        .unwrap();
    assert!(matches!(s.tick_now(&id("p")).unwrap(), TickNow::Started(_)));
    for _ in 0..5 {
        assert_eq!(s.tick_now(&id("p")).unwrap(), TickNow::Coalesced);
    }
    let first = next(&mut sub).await;
    let second = next(&mut sub).await;
    assert_eq!(
        (first.reason, second.reason),
        (RunReason::Manual, RunReason::Manual)
    );
    assert!(second.started_at >= first.finished_at);
    // Nothing more until the grid slot an hour after registration.
    let third = next(&mut sub).await;
    assert_eq!(third.reason, RunReason::Scheduled);
    assert_eq!(probe.overlaps.load(Ordering::SeqCst), 0);
    s.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_slow_subscriber_is_told_how_many_it_missed() {
    let registry = JobRegistry::new().with("w", Writer);
    let cfg = SchedulerConfig::default().with_subscriber_capacity(4);
    let s = Scheduler::start(cfg, registry, MemoryStore::default())
        .await
        .unwrap();
    s.upsert(JobDef::new("a", "w", Duration::from_secs(3600)))
        .await
        .unwrap();
    let mut slow = s.subscribe();
    let mut fast = s.subscribe();
    for i in 1..=10 {
        s.tick_now(&id("a")).unwrap();
        let r = next(&mut fast).await;
        assert_eq!(r.tick, i);
    }
    assert_eq!(slow.recv().await, Some(RunEvent::Missed(6)));
    for t in 7..=10 {
        assert_eq!(next(&mut slow).await.tick, t);
    }
    s.shutdown().await;
    assert_eq!(slow.recv().await, None);
}

/// Counts its ticks; one with config `hang` never finishes.
struct Counting(Arc<AtomicUsize>);

#[async_trait]
impl TickJob for Counting {
    async fn tick(&self, ctx: &mut TickContext) -> Result<(), TickFailure> {
        self.0.fetch_add(1, Ordering::SeqCst);
        if ctx.config() == "hang" {
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn dropping_the_last_handle_ends_the_background_tasks() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let idle = metrics.num_alive_tasks();
    let ticks = Arc::new(AtomicUsize::new(0));
    let registry = JobRegistry::new().with("count", Counting(ticks.clone()));
    let s = Scheduler::start(SchedulerConfig::default(), registry, MemoryStore::default())
        .await
        .unwrap();
    s.upsert(JobDef::new("every", "count", Duration::from_secs(1)))
        .await
        .unwrap();
    s.upsert(JobDef::new("stuck", "count", Duration::from_secs(1)).with_config("hang"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    // 3 ticks of `every`, 1 of `stuck` (still running: never two at once).
    assert_eq!(ticks.load(Ordering::SeqCst), 4);
    // The timer, the worker and the stuck tick's task.
    assert_eq!(metrics.num_alive_tasks(), idle + 3);
    // A clone keeps it running.
    let clone = s.clone();
    drop(s);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(ticks.load(Ordering::SeqCst), 6);
    // The last handle goes without `shutdown`: every task ends, the stuck
    // tick included, and nothing ticks any more.
    drop(clone);
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(metrics.num_alive_tasks(), idle, "tasks left after the drop");
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(ticks.load(Ordering::SeqCst), 6, "ticked after the drop");
    // The job implementations (held by the scheduler) are released.
    assert_eq!(Arc::strong_count(&ticks), 1);
}
