//! Register a periodic job with the scheduler: one timer for every job, no
//! overlapping ticks, and a failing job backs off (1 s, 2 s, 4 s, ...)
//! instead of hammering what it calls.
//!
//! `cargo run --example periodic_job` registers a job that ticks every
//! 200 ms and fails on its second and third tick, prints each run as it
//! finishes, and stops after five runs.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tether_tokio::scheduler::{
    JobDef, JobRegistry, MemoryStore, RunEvent, Scheduler, SchedulerConfig, TickContext,
    TickFailure, TickJob,
};

/// Refreshes something every interval; fails twice in a row on purpose.
struct Refresh(Arc<AtomicU32>);

#[async_trait]
impl TickJob for Refresh {
    async fn tick(&self, ctx: &mut TickContext) -> Result<(), TickFailure> {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        if n == 2 || n == 3 {
            return Err("upstream unavailable".into());
        }
        ctx.state_mut().set("last_ok_tick", n.to_string())?;
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let calls = Arc::new(AtomicU32::new(0));
    let registry = JobRegistry::new().with("refresh", Refresh(calls.clone()));
    // MemoryStore keeps jobs for this process; SqliteStore (feature
    // `sqlite`, on by default) keeps them across restarts.
    let scheduler =
        Scheduler::start(SchedulerConfig::default(), registry, MemoryStore::default()).await?;
    let mut runs = scheduler.subscribe();
    scheduler
        .upsert(JobDef::new(
            "refresh-prices",
            "refresh",
            Duration::from_millis(200),
        ))
        .await?;

    let started = tokio::time::Instant::now();
    let mut finished = 0;
    while finished < 5 {
        match tokio::time::timeout(Duration::from_secs(30), runs.recv()).await? {
            Some(RunEvent::Finished(run)) => {
                finished += 1;
                println!(
                    "{:>6.1} s  tick {}  {:?}",
                    started.elapsed().as_secs_f64(),
                    run.tick,
                    run.outcome
                );
            }
            Some(_) => {}
            None => break,
        }
    }
    let state = scheduler
        .state(&"refresh-prices".into())
        .expect("job exists");
    println!(
        "saved state: last_ok_tick = {:?}",
        state.get("last_ok_tick")
    );
    scheduler.shutdown().await;
    Ok(())
}
