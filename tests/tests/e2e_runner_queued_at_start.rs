//! Issue 19: work queued before the runner started is driven without a
//! poke, by default (`INFLIGHT_SWEEP_AT_START`); with
//! `with_sweep_at_start(false)` it waits for a poke.
//!
//! Real tokio, real time: a user's queues ([`QueuedWork`]) hold units in
//! three sessions before the runner is built; the runtime submits one unit
//! per `submit_next`, runs each turn briefly on its own task and reports
//! its end through the poker. Nothing in the default test ever pokes.

use std::time::Duration;

use tether_tests::queue::QueuedWork;
use tether_tests::until;
use tether_tokio::runner::{DriveReason, InFlightConfig, PokeOutcome, Runner, RunnerConfig};

/// Units queued before the runner exists, per session.
const QUEUED: [(&str, u32); 3] = [("s1", 3), ("s2", 2), ("s3", 1)];

/// How long the switched-off runner is watched for a drive nobody asked for.
const QUIET: Duration = Duration::from_secs(1);

fn queued_before_start() -> QueuedWork {
    let work = QueuedWork::new();
    for (s, n) in QUEUED {
        work.queue(s, n);
    }
    work
}

fn every_unit() -> Vec<(String, u32)> {
    let mut all: Vec<_> = QUEUED
        .iter()
        .flat_map(|(s, n)| (0..*n).map(move |u| (s.to_string(), u)))
        .collect();
    all.sort();
    all
}

/// Waits until every queued unit was submitted and the runner and the
/// runtime are both quiet, then checks each unit was submitted exactly
/// once and no session was ever driven twice at once.
async fn all_driven_once(work: &QueuedWork, runner: &Runner) {
    until("every queued unit driven and the runner idle", || {
        work.left() == 0 && work.quiet() && runner.is_idle()
    })
    .await;
    // Nothing more comes: each unit once.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut submitted = work.submitted();
    submitted.sort();
    assert_eq!(submitted, every_unit(), "each queued unit exactly once");
    assert_eq!(
        work.overlaps(),
        Vec::<String>::new(),
        "a session driven twice at once"
    );
    assert!(runner.is_idle(), "{:?}", runner.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_queued_before_the_runner_started_is_driven_without_a_poke() {
    let work = queued_before_start();
    let runner = Runner::start(work.runtime(), RunnerConfig::default());
    work.attach(runner.poker());
    // No poke, ever: the runner's start-up sweep finds the queued work.
    all_driven_once(&work, &runner).await;
    let requests = work.requests();
    assert_eq!(
        (requests[0].session.as_deref(), requests[0].reason),
        (None, DriveReason::Poked),
        "the first call is the start-up sweep, a global drive"
    );
    // The sweep continues until a global drive finds nothing, and each
    // completion re-drives its session once until it finds nothing.
    assert!(
        requests
            .iter()
            .any(|r| r.session.is_none() && r.reason == DriveReason::Sweep),
        "{requests:?}"
    );
    assert_eq!(
        runner.stats().recovery_polls,
        0,
        "no recovery poll was involved"
    );
    assert!(runner.shutdown().await.drained);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_start_up_sweep_queued_work_waits_for_a_poke() {
    let work = queued_before_start();
    let runner = Runner::start(
        work.runtime(),
        RunnerConfig::new(InFlightConfig::default().with_sweep_at_start(false)),
    );
    work.attach(runner.poker());
    tokio::time::sleep(QUIET).await;
    assert!(work.requests().is_empty(), "{:?}", work.requests());
    assert_eq!(work.left(), 6, "driven without a poke");
    assert!(runner.is_idle());
    assert_eq!(runner.next_wakeup(), None, "an idle runner has no timer");
    // One global poke finds all of it.
    assert_eq!(runner.poker().poke().unwrap(), PokeOutcome::Driving);
    all_driven_once(&work, &runner).await;
    assert!(runner.shutdown().await.drained);
}
