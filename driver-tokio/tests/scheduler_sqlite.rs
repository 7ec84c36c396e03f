//! A scheduler reopened on the same SQLite file resumes its jobs, their
//! state and their history; a failed tick's run is saved, its state not.
#![cfg(feature = "sqlite")]

use std::time::Duration;

use async_trait::async_trait;
use tether_tokio::scheduler::{
    JobDef, JobId, JobRegistry, LabelSelector, RunEvent, RunOutcome, RunRecord, RunSubscription,
    Scheduler, SchedulerConfig, SqliteStore, TickContext, TickFailure, TickJob,
};
use tokio::time::timeout;

const BOUND: Duration = Duration::from_secs(24 * 3600);

/// Counts its successful ticks in its state; fails when configured so.
struct Counter;

#[async_trait]
impl TickJob for Counter {
    async fn tick(&self, ctx: &mut TickContext) -> Result<(), TickFailure> {
        let n: u64 = ctx.state().get("n").unwrap_or("0").parse()?;
        ctx.state_mut().set("n", (n + 1).to_string())?;
        let tick = ctx.tick().to_string();
        ctx.state_mut().set("tick", tick)?;
        if ctx.config() == "fail" {
            return Err("configured to fail".into());
        }
        Ok(())
    }
}

async fn next(sub: &mut RunSubscription) -> RunRecord {
    match timeout(BOUND, sub.recv())
        .await
        .expect("a run within the bound")
    {
        Some(RunEvent::Finished(r)) => r,
        other => panic!("{other:?}"),
    }
}

async fn open(path: &std::path::Path) -> Scheduler {
    let store = SqliteStore::open_with(path, 5).await.unwrap();
    let registry = JobRegistry::new().with("counter", Counter);
    Scheduler::start(SchedulerConfig::default(), registry, store)
        .await
        .unwrap()
}

fn id(s: &str) -> JobId {
    JobId::from(s)
}

#[tokio::test(start_paused = true)]
async fn a_reopened_scheduler_resumes_jobs_state_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let ten = Duration::from_secs(10);
    let a = JobDef::new("a", "counter", ten)
        .with_name("counts")
        .with_label("team", "infra")
        .with_config("ok");
    let b = JobDef::new("b", "counter", ten).enabled(false);

    // First life: seven ticks of "a"; "b" is disabled.
    let s = open(&path).await;
    s.upsert(a.clone()).await.unwrap();
    s.upsert(b.clone()).await.unwrap();
    let mut sub = s.subscribe();
    let mut last = None;
    for t in 1..=7 {
        let r = next(&mut sub).await;
        assert_eq!(
            (r.job.as_str(), r.tick, &r.outcome),
            ("a", t, &RunOutcome::Success)
        );
        last = Some(r);
    }
    let last = last.unwrap();
    let history = s.recent_runs(&id("a"), 10).await.unwrap();
    assert_eq!(history.len(), 5, "bounded: the oldest two trimmed");
    assert_eq!(history[0], last);
    assert_eq!(
        history.iter().map(|r| r.tick).collect::<Vec<_>>(),
        [7, 6, 5, 4, 3]
    );
    s.shutdown().await;
    drop(s);

    // Second life: the same jobs, state and history.
    let s = open(&path).await;
    let jobs = s.list(&LabelSelector::all());
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[0].def, a);
    assert_eq!(jobs[1].def, b);
    assert_eq!(jobs[0].ticks, 7);
    assert_eq!(jobs[0].last_tick, Some(last.started_at));
    assert_eq!(s.state(&id("a")).unwrap().get("n"), Some("7"));
    assert_eq!(s.recent_runs(&id("a"), 10).await.unwrap(), history);
    assert_eq!(
        s.list(&LabelSelector::parse("team=infra").unwrap()).len(),
        1
    );
    let mut sub = s.subscribe();
    let r = next(&mut sub).await;
    assert_eq!(
        (r.job.as_str(), r.tick, &r.outcome),
        ("a", 8, &RunOutcome::Success)
    );
    assert_eq!(s.state(&id("a")).unwrap().get("n"), Some("8"));
    // A failing tick: its run and tick count are saved, its state is not.
    s.upsert(a.clone().with_config("fail")).await.unwrap();
    s.tick_now(&id("a")).unwrap();
    let r = next(&mut sub).await;
    assert_eq!(r.tick, 9);
    assert!(r.outcome.is_failure());
    s.shutdown().await;
    drop(s);

    // Third life.
    let s = open(&path).await;
    let info = s.get(&id("a")).unwrap();
    assert_eq!((info.ticks, info.def.config.as_str()), (9, "fail"));
    let state = s.state(&id("a")).unwrap();
    assert_eq!((state.get("n"), state.get("tick")), (Some("8"), Some("8")));
    let hist = s.recent_runs(&id("a"), 10).await.unwrap();
    assert_eq!(
        hist.iter().map(|r| r.tick).collect::<Vec<_>>(),
        [9, 8, 7, 6, 5]
    );
    assert!(hist[0].outcome.is_failure());
    assert!(
        s.recent_runs(&id("b"), 10).await.unwrap().is_empty(),
        "b never ran"
    );
    assert!(!s.get(&id("b")).unwrap().def.enabled);
    // Deleting removes the job, its state and history from the file.
    s.delete(&id("a")).await.unwrap();
    s.shutdown().await;
    drop(s);
    let s = open(&path).await;
    assert!(s.get(&id("a")).is_none());
    assert!(s.recent_runs(&id("a"), 10).await.unwrap().is_empty());
    s.shutdown().await;
}
