//! The demo steps for the runtime's kernel services: the queued-work runner
//! and the periodic job scheduler.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use tether_tokio::runner::{
    DriveError, DriveRequest, Runner, RunnerConfig, RunnerHandle, Submission,
};
use tether_tokio::scheduler::{
    JobDef, JobRegistry, MemoryStore, RunEvent, RunOutcome, Scheduler, SchedulerConfig,
    TickContext, TickFailure, TickJob,
};
use tokio::sync::mpsc;

use super::timeline::{human, Timeline};

const WAIT: Duration = Duration::from_secs(10);

/// A runtime with one session's message queue: a drive takes everything
/// queued as one turn (or reports nothing ready); it records every drive
/// and how many turns of the session run at once.
struct DemoRuntime {
    queued: Arc<AtomicUsize>,
    drives: mpsc::UnboundedSender<(usize, Instant)>,
    running: Arc<AtomicUsize>,
    max_running: Arc<AtomicUsize>,
}

#[async_trait]
impl RunnerHandle for DemoRuntime {
    async fn submit_next(&self, req: DriveRequest) -> Result<Submission, DriveError> {
        let Some(session) = req.session else {
            return Ok(Submission::NothingReady);
        };
        let batch = self.queued.swap(0, Ordering::SeqCst);
        let at = Instant::now();
        if batch == 0 {
            let _ = self.drives.send((0, at));
            return Ok(Submission::NothingReady);
        }
        let now_running = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now_running, Ordering::SeqCst);
        // Reported only once counted as running: the demo ends the turn
        // (and uncounts it) as soon as it hears of the drive.
        let _ = self.drives.send((batch, at));
        Ok(Submission::Submitted(session))
    }
}

pub(crate) async fn queued_work(tl: &mut Timeline) {
    tl.section("8. queued work poked many times while in flight, driven once");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let running = Arc::new(AtomicUsize::new(0));
    let max_running = Arc::new(AtomicUsize::new(0));
    let runner = Runner::start(
        DemoRuntime {
            queued: queued.clone(),
            drives: tx,
            running: running.clone(),
            max_running: max_running.clone(),
        },
        RunnerConfig::default(),
    );
    let poker = runner.poker();
    let enqueue = |n: usize| {
        for _ in 0..n {
            queued.fetch_add(1, Ordering::SeqCst);
            let _ = poker.poke_session("session-1");
        }
    };
    enqueue(1);
    let first = tokio::time::timeout(WAIT, rx.recv()).await.ok().flatten();
    tl.event(
        "1 message queued and poked: session-1 driven, its turn runs",
        None,
    );
    enqueue(50);
    tl.event(
        "50 more messages queued and poked while the turn runs",
        None,
    );
    let extra = tokio::time::timeout(Duration::from_millis(200), rx.recv())
        .await
        .is_ok();
    tl.event(
        &format!("no second drive while in flight: {}", !extra),
        None,
    );
    running.fetch_sub(1, Ordering::SeqCst);
    let completed = Instant::now();
    let _ = poker.complete_session("session-1");
    let redrive = tokio::time::timeout(WAIT, rx.recv()).await.ok().flatten();
    let redrive_latency = redrive.as_ref().map(|(_, at)| *at - completed);
    let batch = redrive.as_ref().map_or(0, |(n, _)| *n);
    tl.event(
        &format!("turn completed: one re-drive took all {batch} queued messages"),
        redrive_latency,
    );
    running.fetch_sub(1, Ordering::SeqCst);
    let _ = poker.complete_session("session-1");
    let last = tokio::time::timeout(WAIT, rx.recv()).await.ok().flatten();
    let went_idle = matches!(last, Some((0, _)))
        && tokio::time::timeout(Duration::from_millis(200), rx.recv())
            .await
            .is_err();
    let stats = runner.stats();
    let idle_timer = runner.next_wakeup();
    tl.event(
        &format!(
            "queue empty: runner idle; turns: 2 for 51 pokes; coalesced pokes: {}; idle timer: {}",
            stats.coalesced,
            if idle_timer.is_none() {
                "none (no idle wake-ups)"
            } else {
                "set"
            }
        ),
        None,
    );
    runner.shutdown().await;
    let held = first.is_some_and(|(n, _)| n == 1)
        && !extra
        && batch == 50
        && went_idle
        && max_running.load(Ordering::SeqCst) == 1
        && idle_timer.is_none();
    tl.verdict(
        "pokes coalesce, one drive at a time",
        held,
        format!(
            "51 pokes -> 2 turns, never 2 at once; re-drive {}",
            redrive_latency.map_or("-".into(), human)
        ),
    );
}

/// A job that fails its first three ticks, then succeeds.
struct Flaky(AtomicU32);

#[async_trait]
impl TickJob for Flaky {
    async fn tick(&self, _ctx: &mut TickContext) -> Result<(), TickFailure> {
        if self.0.fetch_add(1, Ordering::SeqCst) < 3 {
            Err("upstream unavailable".into())
        } else {
            Ok(())
        }
    }
}

pub(crate) async fn periodic_job(tl: &mut Timeline) {
    tl.section("9. a periodic job failing, backing off, then recovering");
    let mut config = SchedulerConfig::default();
    // Demo speed: the 1-2-4-8-16-30 s curve scaled to 100 ms steps.
    config.tick.failure_base = Duration::from_millis(100);
    config.tick.failure_max = Duration::from_secs(3);
    let registry = JobRegistry::new().with("flaky", Flaky(AtomicU32::new(0)));
    let scheduler = match Scheduler::start(config, registry, MemoryStore::default()).await {
        Ok(s) => s,
        Err(e) => {
            tl.verdict(
                "failing job backs off, then recovers",
                false,
                format!("scheduler: {e}"),
            );
            return;
        }
    };
    let mut runs = scheduler.subscribe();
    let id = "nightly-sync";
    let upserted = scheduler
        .upsert(JobDef::new(id, "flaky", Duration::from_secs(3600)))
        .await
        .is_ok();
    let _ = scheduler.tick_now(&id.into());
    let mut starts: Vec<SystemTime> = Vec::new();
    let mut outcomes = Vec::new();
    while outcomes.len() < 4 {
        match tokio::time::timeout(WAIT, runs.recv()).await {
            Ok(Some(RunEvent::Finished(r))) => {
                let ok = r.outcome == RunOutcome::Success;
                let gap = starts
                    .last()
                    .and_then(|p| r.started_at.duration_since(*p).ok());
                let what = match (&r.outcome, gap) {
                    (RunOutcome::Success, Some(g)) => format!(
                        "tick {} succeeded, {} after the last failure",
                        r.tick,
                        human(g)
                    ),
                    (o, Some(g)) => {
                        format!("tick {} failed ({o:?}); retried after {}", r.tick, human(g))
                    }
                    (o, None) => format!("tick {} failed ({o:?})", r.tick),
                };
                tl.event(&what, None);
                starts.push(r.started_at);
                outcomes.push(ok);
            }
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    let gaps: Vec<Duration> = starts
        .windows(2)
        .filter_map(|w| w[1].duration_since(w[0]).ok())
        .collect();
    let doubling = gaps.len() == 3
        && gaps[0] >= Duration::from_millis(90)
        && gaps[1] >= gaps[0].mul_f64(1.5)
        && gaps[2] >= gaps[1].mul_f64(1.5);
    let recovered = outcomes == [false, false, false, true];
    // After the success the job is back on its hourly schedule: no retry due.
    let next = scheduler.next_wakeup().map(|d| d.at);
    let back_on_schedule = next.is_some();
    tl.event(
        "back on its hourly schedule; tasks per job: none (one timer for all jobs)",
        None,
    );
    scheduler.shutdown().await;
    tl.verdict(
        "failing job backs off, then recovers",
        upserted && recovered && doubling && back_on_schedule,
        format!(
            "retries after {}",
            gaps.iter()
                .map(|g| human(*g))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
}
