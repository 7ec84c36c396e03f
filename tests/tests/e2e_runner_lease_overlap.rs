//! Issue 15, item 5: a `submit_next` call that hangs past its drive's lease
//! must not overlap the call that drives its session again
//! (`INFLIGHT_NO_OVERLAP`). The runner cancels the hung call (drops its
//! future) first, and only then drives the session again; shutdown is not
//! held up by the hung call.
//!
//! Real tokio, real time (short leases): the gauge counts calls whose
//! future is alive, so a dropped call leaves it at once.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tether_tokio::runner::{
    DriveError, DriveReason, DriveRequest, InFlightConfig, PokeOutcome, Runner, RunnerConfig,
    RunnerHandle, Submission,
};

const LEASE: Duration = Duration::from_millis(300);
const GRACE: Duration = Duration::from_secs(3);
/// Bound of every wait for the runner.
const BOUND: Duration = Duration::from_secs(10);

/// What the runtime saw: every request, and how many calls were alive at
/// once (every call here concerns the one session, or any session).
#[derive(Default)]
struct Seen {
    requests: Mutex<Vec<DriveRequest>>,
    live: AtomicUsize,
    max_live: AtomicUsize,
    /// The first call's future was dropped before it returned.
    first_cancelled: AtomicBool,
    /// Whether the first call had been cancelled when the second began.
    cancelled_before_second: AtomicBool,
}

impl Seen {
    fn calls(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    fn requests(&self) -> Vec<DriveRequest> {
        self.requests.lock().unwrap().clone()
    }
}

/// One live call: counted in the gauge until its future ends or is dropped.
struct Live(Arc<Seen>);

impl Live {
    fn enter(seen: &Arc<Seen>) -> Live {
        let now = seen.live.fetch_add(1, Ordering::SeqCst) + 1;
        seen.max_live.fetch_max(now, Ordering::SeqCst);
        Live(seen.clone())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Set when the hung call's future is dropped (it never returns).
struct Cancelled(Arc<Seen>);

impl Drop for Cancelled {
    fn drop(&mut self) {
        self.0.first_cancelled.store(true, Ordering::SeqCst);
    }
}

/// A runtime whose first `submit_next` hangs forever; every later call
/// finds nothing ready.
struct HangsFirst(Arc<Seen>);

#[async_trait]
impl RunnerHandle for HangsFirst {
    async fn submit_next(&self, req: DriveRequest) -> Result<Submission, DriveError> {
        let seen = &self.0;
        let _live = Live::enter(seen);
        let n = {
            let mut r = seen.requests.lock().unwrap();
            r.push(req);
            r.len()
        };
        if n == 1 {
            let _cancelled = Cancelled(seen.clone());
            std::future::pending::<()>().await;
        }
        if n == 2 {
            seen.cancelled_before_second.store(
                seen.first_cancelled.load(Ordering::SeqCst),
                Ordering::SeqCst,
            );
        }
        Ok(Submission::NothingReady)
    }
}

async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + BOUND;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn start(seen: &Arc<Seen>, sweep_at_start: bool) -> Runner {
    Runner::start(
        HangsFirst(seen.clone()),
        RunnerConfig::new(
            InFlightConfig::default()
                .with_lease(LEASE)
                .with_sweep_at_start(sweep_at_start),
        )
        .with_shutdown_grace(GRACE),
    )
}

async fn shutdown_within_grace(runner: Runner) {
    let t = Instant::now();
    let report = tokio::time::timeout(GRACE + Duration::from_secs(1), runner.shutdown())
        .await
        .expect("shutdown returns");
    assert!(
        report.drained,
        "a submit_next call was still running at shutdown"
    );
    assert!(t.elapsed() < GRACE, "shutdown took {:?}", t.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_submit_is_cancelled_before_its_session_is_driven_again() {
    let seen = Arc::new(Seen::default());
    let runner = start(&seen, false);
    let poker = runner.poker();
    let t0 = Instant::now();
    assert_eq!(poker.poke_session("a").unwrap(), PokeOutcome::Driving);
    wait_until("the first call", || seen.calls() >= 1).await;
    // More work announced while the call hangs: coalesced, not driven.
    assert_eq!(poker.poke_session("a").unwrap(), PokeOutcome::Coalesced);
    wait_until("the session to be driven again", || seen.calls() >= 2).await;
    assert!(t0.elapsed() >= LEASE, "re-driven before the lease expired");
    // Leave room for any further (overlapping) call.
    tokio::time::sleep(LEASE * 3).await;
    assert_eq!(
        seen.max_live.load(Ordering::SeqCst),
        1,
        "two submit_next calls of one session were outstanding at once"
    );
    assert!(seen.first_cancelled.load(Ordering::SeqCst));
    assert!(seen.cancelled_before_second.load(Ordering::SeqCst));
    let reqs = seen.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(
        (reqs[1].session.as_deref(), reqs[1].reason),
        (Some("a"), DriveReason::LeaseExpired)
    );
    assert!(reqs[1].token > reqs[0].token);
    assert_eq!(runner.stats().lease_recoveries, 1);
    assert!(runner.is_idle(), "{:?}", runner.stats());
    shutdown_within_grace(runner).await;
    assert_eq!(seen.live.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_global_submit_is_cancelled_before_anything_is_driven_again() {
    let seen = Arc::new(Seen::default());
    // The start-up sweep is the call that hangs.
    let runner = start(&seen, true);
    let poker = runner.poker();
    wait_until("the start-up sweep", || seen.calls() >= 1).await;
    assert_eq!(poker.poke_session("b").unwrap(), PokeOutcome::Queued);
    wait_until("the sweep again, then b", || seen.calls() >= 3).await;
    tokio::time::sleep(LEASE * 3).await;
    assert_eq!(
        seen.max_live.load(Ordering::SeqCst),
        1,
        "a call overlapped the hung global call"
    );
    assert!(seen.cancelled_before_second.load(Ordering::SeqCst));
    let reqs: Vec<_> = seen
        .requests()
        .into_iter()
        .map(|r| (r.session, r.reason))
        .collect();
    assert_eq!(
        reqs,
        [
            (None, DriveReason::Poked),
            (None, DriveReason::LeaseExpired),
            (Some("b".to_owned()), DriveReason::Poked),
        ]
    );
    shutdown_within_grace(runner).await;
}
