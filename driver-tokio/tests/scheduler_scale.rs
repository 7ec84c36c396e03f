//! 10,000 registered jobs run on one timer: the tokio task count does not
//! grow with the number of jobs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tether_tokio::scheduler::{
    JobDef, JobRegistry, MemoryStore, RunEvent, RunOutcome, Scheduler, SchedulerConfig,
    TickContext, TickFailure, TickJob,
};
use tokio::time::timeout;

struct Count(Arc<AtomicU64>);

#[async_trait]
impl TickJob for Count {
    async fn tick(&self, _: &mut TickContext) -> Result<(), TickFailure> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn ten_thousand_jobs_run_on_one_timer() {
    const JOBS: u64 = 10_000;
    let ticks = Arc::new(AtomicU64::new(0));
    let registry = JobRegistry::new().with("count", Count(ticks.clone()));
    let cfg = SchedulerConfig::default().with_subscriber_capacity(2 * JOBS as usize);
    let s = Scheduler::start(cfg, registry, MemoryStore::new(4))
        .await
        .unwrap();
    let metrics = tokio::runtime::Handle::current().metrics();
    let minute = Duration::from_secs(60);
    for j in 0..10 {
        s.upsert(JobDef::new(format!("job{j:05}"), "count", minute))
            .await
            .unwrap();
    }
    let with_10 = metrics.num_alive_tasks();
    for j in 10..JOBS {
        s.upsert(JobDef::new(format!("job{j:05}"), "count", minute))
            .await
            .unwrap();
    }
    let with_10k = metrics.num_alive_tasks();
    assert_eq!(with_10k, with_10, "tasks with 10 jobs vs 10,000 jobs");
    assert_eq!(s.stats().jobs, JOBS as usize);

    // Every job ticks once, then the idle task count is back where it was.
    let mut sub = s.subscribe();
    let mut ok = 0;
    while ok < JOBS {
        match timeout(Duration::from_secs(3600), sub.recv())
            .await
            .unwrap()
        {
            Some(RunEvent::Finished(r)) => {
                assert_eq!(r.outcome, RunOutcome::Success);
                ok += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(ticks.load(Ordering::Relaxed), JOBS);
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert_eq!(s.stats().running, 0);
    assert_eq!(metrics.num_alive_tasks(), with_10, "after 10,000 ticks");
    // One timer: a single next wake-up, the next grid slot of them all.
    let next = s.next_wakeup().unwrap();
    let first = s.get(&"job00000".into()).unwrap().next_due.unwrap();
    let last = s.get(&"job09999".into()).unwrap().next_due.unwrap();
    assert_eq!(first, last, "all on the same slot");
    eprintln!("alive tasks: {with_10} with 10 jobs, {with_10k} with 10,000; next wake-up {next:?}");
    s.shutdown().await;
}
