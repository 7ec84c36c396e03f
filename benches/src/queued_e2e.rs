//! Queued work end to end: poke-to-drive latency of tether's runner
//! ([`tether_tokio::runner`]) against the baseline queue driven by its
//! fixed 400 ms poll ([`crate::baseline::queued`]).
//!
//! [`SESSIONS`] sessions are poked round robin at [`RATE`] pokes per second
//! for the run's duration; each drive submits one turn that completes at
//! once, so no poke finds its session busy. The latency of a poke is from
//! the poke to the drive of its session (tether: the runner's
//! `submit_next` call; baseline: the poll turn that takes it). Both run on
//! the same runtime (multi-thread, [`crate::sched::WORKERS`] workers).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hdrhistogram::Histogram;
use tether_tokio::runner::{
    DriveError, DriveRequest, InFlightConfig, Poker, Runner, RunnerConfig, RunnerHandle, Submission,
};

use crate::baseline::queued::{BaselineQueue, POLL};
use crate::sched::SchedRow;

/// Sessions poked round robin.
pub const SESSIONS: usize = 100;

/// Pokes per second (each session is poked every `SESSIONS / RATE` s,
/// longer than the baseline's poll, so its previous drive is over).
pub const RATE: u64 = 200;

/// Poke times and the latency histogram both sides fill.
struct Clocks {
    base: Instant,
    /// Per session: nanoseconds since `base` of its last poke (0: none).
    poked: Vec<AtomicU64>,
    hist: Mutex<Histogram<u64>>,
}

impl Clocks {
    fn new() -> Arc<Self> {
        Arc::new(Clocks {
            base: Instant::now(),
            poked: (0..SESSIONS).map(|_| AtomicU64::new(0)).collect(),
            hist: Mutex::new(Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("bounds")),
        })
    }

    fn now(&self) -> u64 {
        (self.base.elapsed().as_nanos() as u64).max(1)
    }

    fn poke(&self, session: usize) {
        self.poked[session].store(self.now(), Ordering::Relaxed);
    }

    fn driven(&self, session: usize) {
        let at = self.poked[session].swap(0, Ordering::Relaxed);
        if at != 0 {
            let ns = self.now().saturating_sub(at).max(1);
            let _ = self.hist.lock().expect("hist").record(ns);
        }
    }
}

fn session_name(i: usize) -> String {
    format!("s{i}")
}

fn session_index(name: &str) -> Option<usize> {
    name.strip_prefix('s')?.parse().ok()
}

/// The agent runtime tether drives: a turn completes as it is submitted.
struct Turns {
    clocks: Arc<Clocks>,
    poker: OnceLock<Poker>,
}

#[async_trait]
impl RunnerHandle for Turns {
    async fn submit_next(&self, req: DriveRequest) -> Result<Submission, DriveError> {
        let Some(s) = req.session else {
            return Ok(Submission::NothingReady);
        };
        if let Some(i) = session_index(&s) {
            self.clocks.driven(i);
        }
        if let Some(p) = self.poker.get() {
            let _ = p.complete_session(&s);
        }
        Ok(Submission::Submitted(s))
    }
}

/// Poke round robin at [`RATE`] for `secs`, calling `poke(session)`.
async fn poke_for(secs: u64, mut poke: impl FnMut(usize)) -> u64 {
    let pokes = RATE * secs;
    let every = Duration::from_nanos(1_000_000_000 / RATE);
    let start = tokio::time::Instant::now();
    for k in 0..pokes {
        tokio::time::sleep_until(start + every * (k as u32)).await;
        poke(k as usize % SESSIONS);
    }
    pokes
}

/// tether's runner: poke-to-drive latencies over `secs` of pokes.
pub async fn tether(secs: u64) -> Histogram<u64> {
    let clocks = Clocks::new();
    let turns = Arc::new(Turns {
        clocks: clocks.clone(),
        poker: OnceLock::new(),
    });
    let config = RunnerConfig::new(InFlightConfig::default().with_max_in_flight(SESSIONS));
    let runner = Runner::start(Shared(turns.clone()), config);
    let poker = runner.poker();
    let _ = turns.poker.set(poker.clone());
    poke_for(secs, |i| {
        clocks.poke(i);
        let _ = poker.poke_session(session_name(i));
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    runner.shutdown().await;
    let h = clocks.hist.lock().expect("hist").clone();
    h
}

/// An `Arc` of a handle is a handle.
struct Shared(Arc<Turns>);

#[async_trait]
impl RunnerHandle for Shared {
    async fn submit_next(&self, req: DriveRequest) -> Result<Submission, DriveError> {
        self.0.submit_next(req).await
    }
}

/// The baseline: pokes into its channel, a loop that takes them every
/// [`POLL`] and drives (and completes) each.
pub async fn baseline(secs: u64) -> Histogram<u64> {
    let clocks = Clocks::new();
    let queue = Arc::new(Mutex::new(BaselineQueue::new()));
    let stop = Arc::new(AtomicU64::new(0));
    let driver = {
        let (queue, clocks, stop) = (queue.clone(), clocks.clone(), stop.clone());
        tokio::spawn(async move {
            let mut poll = tokio::time::interval(POLL);
            poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while stop.load(Ordering::Relaxed) == 0 {
                poll.tick().await;
                let mut q = queue.lock().expect("queue");
                while let Some(s) = q.next_drive() {
                    clocks.driven(s as usize);
                    q.complete(s);
                }
            }
        })
    };
    poke_for(secs, |i| {
        clocks.poke(i);
        queue.lock().expect("queue").poke(i as u64);
    })
    .await;
    // Let the last pokes be taken by a poll turn.
    tokio::time::sleep(POLL + Duration::from_millis(50)).await;
    stop.store(1, Ordering::Relaxed);
    let _ = driver.await;
    let h = clocks.hist.lock().expect("hist").clone();
    h
}

/// Run both sides on a fresh runtime (`secs` of pokes each: 10, or 3 with
/// `quick`) and return the row: poke-to-drive p50 / p99, tether against
/// the baseline.
pub fn rows(quick: bool) -> Vec<SchedRow> {
    let secs = if quick { 3 } else { 10 };
    let rt = crate::sched::runtime();
    let (t, b) = rt.block_on(async { (tether(secs).await, baseline(secs).await) });
    let fmt = |h: &Histogram<u64>| {
        format!(
            "{:.0} µs / {:.0} µs",
            h.value_at_quantile(0.5) as f64 / 1e3,
            h.value_at_quantile(0.99) as f64 / 1e3
        )
    };
    vec![SchedRow {
        what: format!(
            "queued work: poke→drive p50/p99, {SESSIONS} sessions, {RATE} pokes/s, {secs} s ({} / {} drives)",
            t.len(),
            b.len()
        ),
        tether: fmt(&t),
        baseline: format!("{} ({} ms poll)", fmt(&b), POLL.as_millis()),
        ratio: format!(
            "{:.4}",
            t.value_at_quantile(0.5) as f64 / b.value_at_quantile(0.5).max(1) as f64
        ),
    }]
}
