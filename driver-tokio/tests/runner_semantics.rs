//! The queued-work runner against recording runtime handles, under paused
//! tokio time: one test per guarantee of the runner (DESIGN.md, "In-flight
//! dedupe").

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use tether_tokio::runner::{
    DriveError, DriveReason, DriveRequest, InFlightConfig, PokeOutcome, Poker, Runner,
    RunnerConfig, RunnerError, RunnerHandle, Submission,
};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;

/// Bound of every wait (virtual time).
const BOUND: Duration = Duration::from_secs(24 * 3600);

// ---- a handle whose every call the test answers ------------------------

struct Call {
    req: DriveRequest,
    at: Instant,
    reply: oneshot::Sender<Result<Submission, DriveError>>,
}

impl Call {
    fn submitted(self, s: &str) {
        let _ = self.reply.send(Ok(Submission::Submitted(s.to_owned())));
    }
    fn nothing(self) {
        let _ = self.reply.send(Ok(Submission::NothingReady));
    }
    fn fail(self) {
        let _ = self.reply.send(Err("runtime unavailable".into()));
    }
}

#[derive(Clone)]
struct Recording {
    tx: mpsc::UnboundedSender<Call>,
    calls: Arc<AtomicUsize>,
}

#[async_trait]
impl RunnerHandle for Recording {
    async fn submit_next(&self, req: DriveRequest) -> Result<Submission, DriveError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let (reply, rx) = oneshot::channel();
        let _ = self.tx.send(Call {
            req,
            at: Instant::now(),
            reply,
        });
        rx.await.unwrap_or(Ok(Submission::NothingReady))
    }
}

struct Harness {
    runner: Runner,
    poker: Poker,
    calls: mpsc::UnboundedReceiver<Call>,
    count: Arc<AtomicUsize>,
}

/// A runner as a user starts it, minus its start-up sweep: that first
/// global drive (the runtime finds nothing queued) is answered here, and
/// the call count starts after it.
async fn start(inflight: InFlightConfig) -> Harness {
    let mut h = start_raw(inflight);
    let sweep = h.next().await;
    assert_eq!(
        (sweep.req.session.as_deref(), sweep.req.reason),
        (None, DriveReason::Poked),
        "the start-up sweep is a global drive"
    );
    sweep.nothing();
    h.settle().await;
    h.count.store(0, Ordering::SeqCst);
    h
}

fn start_raw(inflight: InFlightConfig) -> Harness {
    let (tx, calls) = mpsc::unbounded_channel();
    let count = Arc::new(AtomicUsize::new(0));
    let runner = Runner::start(
        Recording {
            tx,
            calls: count.clone(),
        },
        RunnerConfig::new(inflight),
    );
    let poker = runner.poker();
    Harness {
        runner,
        poker,
        calls,
        count,
    }
}

impl Harness {
    async fn next(&mut self) -> Call {
        tokio::time::timeout(BOUND, self.calls.recv())
            .await
            .expect("a drive within the bound")
            .expect("runner alive")
    }

    /// No drive for `d` of (virtual) time.
    async fn none_for(&mut self, d: Duration) {
        if let Ok(c) = tokio::time::timeout(d, self.calls.recv()).await {
            panic!("unexpected drive {:?}", c.map(|c| c.req));
        }
    }

    /// Let drive tasks report (they need no time, only scheduling).
    async fn settle(&self) {
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn pokes_during_a_drive_coalesce_into_one_redrive() {
    let mut h = start(InFlightConfig::default()).await;
    assert_eq!(h.poker.poke_session("a").unwrap(), PokeOutcome::Driving);
    let c = h.next().await;
    assert_eq!(
        (c.req.session.as_deref(), c.req.reason),
        (Some("a"), DriveReason::Poked)
    );
    assert!(c.req.trace_idle);
    // 50 pokes while deciding: one re-drive if the drive found nothing.
    for _ in 0..50 {
        assert_eq!(h.poker.poke_session("a").unwrap(), PokeOutcome::Coalesced);
    }
    h.settle().await;
    assert!(
        h.calls.try_recv().is_err(),
        "never the same session twice at once"
    );
    c.nothing();
    let c = h.next().await;
    assert_eq!(c.req.reason, DriveReason::Coalesced);
    c.submitted("a");
    // 50 pokes while the turn runs: exactly one re-drive after completion.
    for _ in 0..50 {
        h.poker.poke_session("a").unwrap();
    }
    h.none_for(Duration::from_secs(60)).await;
    h.poker.complete_session("a").unwrap();
    let c = h.next().await;
    assert_eq!(
        (c.req.session.as_deref(), c.req.reason, c.req.trace_idle),
        (Some("a"), DriveReason::Completed, false)
    );
    c.nothing();
    h.none_for(Duration::from_secs(3600)).await;
    assert_eq!(h.count.load(Ordering::SeqCst), 3);
    assert_eq!(h.runner.stats().coalesced, 100);
    assert!(h.runner.is_idle());
}

#[tokio::test(start_paused = true)]
async fn a_global_poke_waits_while_anything_is_in_flight() {
    let mut h = start(InFlightConfig::default()).await;
    h.poker.poke_session("a").unwrap();
    let a = h.next().await;
    assert_eq!(h.poker.poke().unwrap(), PokeOutcome::Queued);
    // Also a barrier: "b" waits behind the wanted global drive.
    assert_eq!(h.poker.poke_session("b").unwrap(), PokeOutcome::Queued);
    a.submitted("a");
    h.none_for(Duration::from_secs(60)).await;
    h.poker.complete_session("a").unwrap();
    let g = h.next().await;
    assert_eq!(
        (g.req.session.as_deref(), g.req.reason),
        (None, DriveReason::Poked)
    );
    h.settle().await;
    assert!(
        h.calls.try_recv().is_err(),
        "nothing else runs beside a global drive"
    );
    // The global drive submits "c": the sweep continues (before "b" and
    // "a"), but only once "c" is no longer in flight.
    g.submitted("c");
    h.none_for(Duration::from_secs(60)).await;
    h.poker.complete_session("c").unwrap();
    let sweep = h.next().await;
    assert_eq!(
        (sweep.req.session.as_deref(), sweep.req.reason),
        (None, DriveReason::Sweep)
    );
    sweep.nothing();
    h.settle().await;
    let mut next = Vec::new();
    while let Ok(c) = h.calls.try_recv() {
        next.push((c.req.session.clone().unwrap(), c.req.reason));
    }
    assert_eq!(
        next,
        [
            ("b".to_owned(), DriveReason::Poked),
            ("a".to_owned(), DriveReason::Completed),
            ("c".to_owned(), DriveReason::Completed),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_lost_completion_is_recovered_after_the_lease() {
    let lease = Duration::from_secs(60);
    let mut h = start(InFlightConfig::default().with_lease(lease)).await;
    h.poker.poke_session("a").unwrap();
    let c = h.next().await;
    let old = c.req.token;
    c.submitted("a");
    h.settle().await;
    let submitted_at = Instant::now();
    // The completion never comes.
    let c = h.next().await;
    assert_eq!(
        (c.req.session.as_deref(), c.req.reason),
        (Some("a"), DriveReason::LeaseExpired)
    );
    let waited = c.at - submitted_at;
    assert!(
        waited >= lease && waited <= lease + Duration::from_millis(2),
        "{waited:?}"
    );
    assert_eq!(h.runner.stats().lease_recoveries, 1);
    // The late completion of the old drive is refused.
    assert!(matches!(
        h.poker.complete_drive(old),
        Err(RunnerError::Refused(_))
    ));
    // A renewed lease keeps a long turn alive.
    let tok = c.req.token;
    c.submitted("a");
    h.settle().await;
    tokio::time::advance(Duration::from_secs(50)).await;
    h.poker.renew_lease(tok).unwrap();
    h.none_for(Duration::from_secs(59)).await;
    h.poker.complete_drive(tok).unwrap();
    let c = h.next().await;
    assert_eq!(c.req.reason, DriveReason::Completed);
}

#[tokio::test(start_paused = true)]
async fn a_failed_drive_is_retried_with_backoff_and_success_resets_it() {
    let mut h = start(
        InFlightConfig::default()
            .with_retry_base(Duration::from_secs(1))
            .with_retry_max(Duration::from_secs(8)),
    )
    .await;
    h.poker.poke_session("a").unwrap();
    let mut c = h.next().await;
    let mut gaps = Vec::new();
    for _ in 0..6 {
        let at = c.at;
        c.fail();
        c = h.next().await;
        assert_eq!(
            (c.req.session.as_deref(), c.req.reason),
            (Some("a"), DriveReason::Retry)
        );
        gaps.push((c.at - at).as_millis());
    }
    let secs: Vec<u128> = gaps.iter().map(|ms| (ms + 1) / 1000).collect();
    assert_eq!(secs, [1, 2, 4, 8, 8, 8], "gaps in ms: {gaps:?}");
    assert!(gaps
        .iter()
        .zip([1, 2, 4, 8, 8, 8])
        .all(|(g, s)| *g >= s * 1000 && *g <= s * 1000 + 2));
    // A drive that does not fail resets the count.
    c.submitted("a");
    h.poker.complete_session("a").unwrap();
    let c = h.next().await;
    let at = c.at;
    c.fail();
    let c = h.next().await;
    assert_eq!(c.req.reason, DriveReason::Retry);
    let gap = c.at - at;
    assert!(
        gap >= Duration::from_secs(1) && gap <= Duration::from_millis(1002),
        "{gap:?}"
    );
    assert_eq!(h.runner.stats().retries, 7);
}

#[tokio::test(start_paused = true)]
async fn an_idle_runner_does_not_wake_up() {
    let mut h = start(InFlightConfig::default()).await;
    h.poker.poke_session("a").unwrap();
    let c = h.next().await;
    c.submitted("a");
    h.poker.complete_session("a").unwrap();
    h.next().await.nothing();
    h.settle().await;
    assert!(h.runner.is_idle());
    assert_eq!(h.runner.next_wakeup(), None, "no timer while idle");
    let calls = h.count.load(Ordering::SeqCst);
    h.none_for(Duration::from_secs(7 * 24 * 3600)).await;
    assert_eq!(
        h.count.load(Ordering::SeqCst),
        calls,
        "a week idle: no call"
    );
    assert_eq!(h.runner.next_wakeup(), None);
    assert_eq!(h.runner.stats().recovery_polls, 0);
}

#[tokio::test(start_paused = true)]
async fn a_configured_recovery_poll_wakes_at_its_interval_only() {
    let every = Duration::from_secs(60);
    let mut h = start(InFlightConfig::default().with_recovery_poll(Some(every))).await;
    let t0 = Instant::now();
    let mut ats = Vec::new();
    // Ten minutes idle: exactly ten polls, each a global drive that does
    // not trace "nothing ready".
    loop {
        let c = tokio::time::timeout_at(t0 + Duration::from_secs(630), h.calls.recv()).await;
        let Ok(Some(c)) = c else { break };
        assert_eq!(
            (c.req.session.as_deref(), c.req.reason, c.req.trace_idle),
            (None, DriveReason::RecoveryPoll, false)
        );
        ats.push((c.at - t0).as_secs());
        c.nothing();
    }
    assert_eq!(ats, (1..=10).map(|k| k * 60).collect::<Vec<_>>());
    assert_eq!(h.count.load(Ordering::SeqCst), 10);
    assert_eq!(h.runner.stats().recovery_polls, 10);
}

#[tokio::test(start_paused = true)]
async fn a_turn_that_finishes_before_submit_returns_is_not_lost() {
    let mut h = start(InFlightConfig::default()).await;
    h.poker.poke_session("a").unwrap();
    let c = h.next().await;
    // The runtime's turn ends before `submit_next` has returned.
    h.poker.complete_session("a").unwrap();
    c.submitted("a");
    let c = h.next().await;
    assert_eq!(c.req.reason, DriveReason::Completed);
    assert_eq!(h.runner.stats().lease_recoveries, 0);
    // Same through a global drive, naming the token.
    c.nothing();
    h.poker.poke().unwrap();
    let g = h.next().await;
    h.poker.complete_drive(g.req.token).unwrap();
    g.submitted("b");
    let sweep = h.next().await;
    assert_eq!(sweep.req.reason, DriveReason::Sweep);
    sweep.nothing();
    let b = h.next().await;
    assert_eq!(
        (b.req.session.as_deref(), b.req.reason),
        (Some("b"), DriveReason::Completed)
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_started_drives_then_refuses_pokes() {
    let mut h =
        start(InFlightConfig::default().with_recovery_poll(Some(Duration::from_secs(1)))).await;
    h.poker.poke_session("a").unwrap();
    let c = h.next().await;
    let poker = h.poker.clone();
    let mut down = tokio::spawn(h.runner.shutdown());
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert!(!down.is_finished(), "waits for the started drive");
    assert_eq!(poker.poke_session("b"), Err(RunnerError::Shutdown));
    assert_eq!(poker.complete_session("a"), Err(RunnerError::Shutdown));
    c.submitted("a");
    tokio::time::timeout(BOUND, &mut down)
        .await
        .expect("shutdown within the bound")
        .unwrap();
    // No drive and no recovery poll after shutdown.
    let calls = h.count.load(Ordering::SeqCst);
    if let Ok(Some(c)) = tokio::time::timeout(Duration::from_secs(3600), h.calls.recv()).await {
        panic!("drive after shutdown: {:?}", c.req);
    }
    assert_eq!(h.count.load(Ordering::SeqCst), calls);
    assert_eq!(poker.poke(), Err(RunnerError::Shutdown));
}

// ---- a runtime with real per-session queues, under load ------------------

#[derive(Default)]
struct Runtime {
    queued: Mutex<HashMap<String, u32>>,
    busy: Mutex<HashSet<String>>,
    in_calls: AtomicUsize,
    violations: AtomicUsize,
    submitted: AtomicUsize,
    poker: OnceLock<Poker>,
    progress: Notify,
}

#[derive(Clone)]
struct Load(Arc<Runtime>);

#[async_trait]
impl RunnerHandle for Load {
    async fn submit_next(&self, req: DriveRequest) -> Result<Submission, DriveError> {
        let rt = self.0.clone();
        rt.in_calls.fetch_add(1, Ordering::SeqCst);
        let answer = rt.clone().submit(req).await;
        rt.in_calls.fetch_sub(1, Ordering::SeqCst);
        rt.progress.notify_one();
        Ok(answer)
    }
}

impl Runtime {
    async fn submit(self: Arc<Self>, req: DriveRequest) -> Submission {
        let token = req.token;
        let global = req.session.is_none();
        let session = match req.session {
            Some(s) => s,
            None => {
                let q = self.queued.lock().unwrap();
                let busy = self.busy.lock().unwrap();
                let mut ready: Vec<_> = q
                    .iter()
                    .filter(|(s, n)| **n > 0 && !busy.contains(*s))
                    .map(|(s, _)| s.clone())
                    .collect();
                ready.sort();
                match ready.into_iter().next() {
                    Some(s) => s,
                    None => return Submission::NothingReady,
                }
            }
        };
        if !self.busy.lock().unwrap().insert(session.clone()) {
            self.violations.fetch_add(1, Ordering::SeqCst);
        }
        // Deciding takes a little while: pokes arrive meanwhile.
        tokio::time::sleep(Duration::from_millis(3)).await;
        let had = {
            let mut q = self.queued.lock().unwrap();
            let n = q.entry(session.clone()).or_default();
            let had = *n > 0;
            *n = n.saturating_sub(1);
            had
        };
        if !had {
            self.busy.lock().unwrap().remove(&session);
            return Submission::NothingReady;
        }
        let n = self.submitted.fetch_add(1, Ordering::SeqCst);
        let poker = self.poker.get().unwrap().clone();
        if n.is_multiple_of(5) {
            // A turn that ends before submit_next returns. A global
            // drive's session is not known yet: name the drive.
            self.busy.lock().unwrap().remove(&session);
            if global {
                poker.complete_drive(token).unwrap();
            } else {
                poker.complete_session(&session).unwrap();
            }
        } else {
            let rt = self.clone();
            let s = session.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20 + (n as u64 % 7) * 10)).await;
                rt.busy.lock().unwrap().remove(&s);
                if n.is_multiple_of(2) {
                    poker.complete_drive(token).unwrap();
                } else {
                    poker.complete_session(&s).unwrap();
                }
                rt.progress.notify_one();
            });
        }
        Submission::Submitted(session)
    }
}

#[tokio::test(start_paused = true)]
async fn never_drives_the_same_session_twice_at_once_under_load() {
    let rt = Arc::new(Runtime::default());
    let runner = Runner::start(
        Load(rt.clone()),
        RunnerConfig::new(InFlightConfig::default().with_max_in_flight(4)),
    );
    let poker = runner.poker();
    let _ = rt.poker.set(poker.clone());
    let mut x: u64 = 7;
    const WORK: usize = 400;
    for i in 0..WORK {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let s = format!("s{}", (x >> 33) % 9);
        *rt.queued.lock().unwrap().entry(s.clone()).or_default() += 1;
        poker.poke_session(s).unwrap();
        if i % 25 == 0 {
            poker.poke().unwrap();
        }
        tokio::time::sleep(Duration::from_millis((x >> 40) % 8)).await;
    }
    let deadline = Instant::now() + BOUND;
    loop {
        let done = rt.queued.lock().unwrap().values().all(|n| *n == 0)
            && rt.busy.lock().unwrap().is_empty()
            && rt.in_calls.load(Ordering::SeqCst) == 0;
        if done && runner.is_idle() {
            break;
        }
        if done {
            // Only reports (no time needed) or a follow-up drive remain.
            tokio::task::yield_now().await;
        } else {
            tokio::time::timeout_at(deadline, rt.progress.notified())
                .await
                .expect("all work done within the bound");
        }
    }
    assert_eq!(rt.violations.load(Ordering::SeqCst), 0);
    assert_eq!(rt.submitted.load(Ordering::SeqCst), WORK);
    let st = runner.stats();
    assert!(st.coalesced > 0, "{st:?}");
    assert_eq!(st.lease_recoveries, 0, "{st:?}");
    assert_eq!(runner.next_wakeup(), None);
    tokio::time::timeout(BOUND, runner.shutdown())
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn work_queued_before_the_runner_started_is_driven_without_a_poke() {
    let mut h = start_raw(InFlightConfig::default());
    // No poke: the runner sweeps once at start, and the runtime names the
    // session it found queued.
    let sweep = h.next().await;
    assert_eq!(
        (sweep.req.session.as_deref(), sweep.req.reason),
        (None, DriveReason::Poked)
    );
    sweep.submitted("queued-before-start");
    h.settle().await;
    // The turn ends; the session is re-driven once, and the sweep goes on
    // until a global drive finds nothing.
    h.poker.complete_session("queued-before-start").unwrap();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let c = h.next().await;
        seen.push(c.req.session.clone());
        c.nothing();
        h.settle().await;
    }
    seen.sort();
    assert_eq!(seen, vec![None, Some("queued-before-start".to_owned())]);
    h.none_for(Duration::from_secs(3600)).await;
    assert!(h.runner.is_idle());
}

#[tokio::test(start_paused = true)]
async fn without_the_start_up_sweep_nothing_is_driven_until_a_poke() {
    let mut h = start_raw(InFlightConfig::default().with_sweep_at_start(false));
    h.none_for(Duration::from_secs(3600)).await;
    assert_eq!(h.count.load(Ordering::SeqCst), 0);
    h.poker.poke_session("a").unwrap();
    assert_eq!(h.next().await.req.session.as_deref(), Some("a"));
}

/// A `submit_next` that never returns cannot hold shutdown forever: it
/// returns at the configured grace and says the drive was abandoned.
#[tokio::test(start_paused = true)]
async fn shutdown_abandons_a_hung_drive_at_its_grace() {
    let (tx, mut calls) = mpsc::unbounded_channel();
    let grace = Duration::from_secs(5);
    let runner = Runner::start(
        Recording {
            tx,
            calls: Arc::new(AtomicUsize::new(0)),
        },
        RunnerConfig::new(InFlightConfig::default().with_sweep_at_start(false))
            .with_shutdown_grace(grace),
    );
    runner.poker().poke_session("a").unwrap();
    // The call arrives and is never answered (its reply is kept, unsent).
    let _hung = tokio::time::timeout(BOUND, calls.recv())
        .await
        .unwrap()
        .unwrap();
    let t0 = Instant::now();
    let report = tokio::time::timeout(BOUND, runner.shutdown())
        .await
        .expect("shutdown returns");
    assert!(!report.drained);
    assert_eq!(Instant::now() - t0, grace);
}
