//! `Tether::run`: an action runs only while a check of its op would run.
//! A terminate cancels the running future at once, a pause stops polling it
//! until resume, a terminate that came first means it never starts; a
//! cancelled action leaves no waiter behind. Real tonic on 127.0.0.1,
//! signals from the reference gateway's admin handle.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tether_tests::{agent_key, bounded, client_config, connected, gateway, serve, until};
use tether_tokio::client::{OpBlocked, OpState, Tether};

/// A long-running tool: counts its steps (one per poll that finds its
/// timer done), and records being dropped.
struct Tool {
    steps: Arc<AtomicUsize>,
    dropped: Arc<AtomicBool>,
}

struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Tool {
    fn new() -> Self {
        Tool {
            steps: Arc::new(AtomicUsize::new(0)),
            dropped: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The tool's body: `total` steps of 5 ms; returns the steps it made.
    fn body(&self, total: usize) -> impl std::future::Future<Output = usize> + Send + 'static {
        let steps = self.steps.clone();
        let flag = DropFlag(self.dropped.clone());
        async move {
            let _flag = flag;
            for _ in 0..total {
                tokio::time::sleep(Duration::from_millis(5)).await;
                steps.fetch_add(1, Ordering::SeqCst);
            }
            steps.load(Ordering::SeqCst)
        }
    }

    fn steps(&self) -> usize {
        self.steps.load(Ordering::SeqCst)
    }

    fn dropped(&self) -> bool {
        self.dropped.load(Ordering::SeqCst)
    }
}

fn spawn_run(
    t: &Tether,
    op: &'static str,
    tool: &Tool,
    total: usize,
) -> tokio::task::JoinHandle<Result<usize, OpBlocked>> {
    let t = t.clone();
    let body = tool.body(total);
    tokio::spawn(async move { t.run(op, body).await })
}

async fn applied(t: &Tether, op: &str, state: OpState) {
    until("the signal is applied", || t.ops().state(op) == state).await;
}

#[tokio::test]
async fn a_terminate_during_the_action_cancels_it_at_once() {
    let gw = serve(gateway()).await;
    let tether = connected(client_config(&gw.endpoint())).await;
    let tool = Tool::new();
    let run = spawn_run(&tether, "t1:s1", &tool, 1_000_000);
    until("the tool is running", || tool.steps() >= 3).await;

    gw.admin().terminate("t1:s1", agent_key()).unwrap();
    let out = bounded("the terminate ends the run", run).await.unwrap();
    assert_eq!(out, Err(OpBlocked::Terminated));
    assert!(tool.dropped(), "the action's future was dropped");
    let at_end = tool.steps();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(tool.steps(), at_end, "nothing of the action runs on");
    assert_eq!(tether.ops().waiting(), 0);
}

#[tokio::test]
async fn a_pause_suspends_the_action_and_a_resume_lets_it_finish() {
    let gw = serve(gateway()).await;
    let tether = connected(client_config(&gw.endpoint())).await;
    let tool = Tool::new();
    let run = spawn_run(&tether, "t2:s1", &tool, 40);
    until("the tool is running", || tool.steps() >= 3).await;

    gw.admin().pause("t2:s1", agent_key()).unwrap();
    // The run waits on the pause: its action is no longer polled.
    until("the run waits on the pause", || tether.ops().waiting() == 1).await;
    let paused_at = tool.steps();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(tool.steps(), paused_at, "a paused action made progress");
    assert!(paused_at < 40);
    assert!(!run.is_finished());

    gw.admin().resume("t2:s1", agent_key()).unwrap();
    let out = bounded("the resumed action finishes", run).await.unwrap();
    assert_eq!(out, Ok(40));
    assert_eq!(tether.ops().waiting(), 0);
}

#[tokio::test]
async fn a_pause_then_a_terminate_cancels_the_suspended_action() {
    let gw = serve(gateway()).await;
    let tether = connected(client_config(&gw.endpoint())).await;
    let tool = Tool::new();
    let run = spawn_run(&tether, "t3:s1", &tool, 1_000_000);
    until("the tool is running", || tool.steps() >= 3).await;

    gw.admin().pause("t3:s1", agent_key()).unwrap();
    until("the run waits on the pause", || tether.ops().waiting() == 1).await;
    gw.admin().terminate("t3:s1", agent_key()).unwrap();
    let out = bounded("the terminate ends the suspended run", run)
        .await
        .unwrap();
    assert_eq!(out, Err(OpBlocked::Terminated));
    assert!(tool.dropped());
    assert_eq!(tether.ops().waiting(), 0, "no waiter left behind");
}

#[tokio::test]
async fn an_action_of_an_op_terminated_before_it_starts_never_runs() {
    let gw = serve(gateway()).await;
    let tether = connected(client_config(&gw.endpoint())).await;
    gw.admin().terminate("t4:s1", agent_key()).unwrap();
    applied(&tether, "t4:s1", OpState::Terminated).await;

    let tool = Tool::new();
    let out = bounded("the run is refused", tether.run("t4:s1", tool.body(3))).await;
    assert_eq!(out, Err(OpBlocked::Terminated));
    assert_eq!(tool.steps(), 0, "the action was never polled");
    assert!(tool.dropped());

    // A halt of the whole agent counts too, for an action already running.
    let tool = Tool::new();
    let run = spawn_run(&tether, "t5:s1", &tool, 1_000_000);
    until("the tool is running", || tool.steps() >= 3).await;
    gw.admin().halt_agent(&agent_key()).unwrap();
    let out = bounded("the halt ends the run", run).await.unwrap();
    assert_eq!(out, Err(OpBlocked::Terminated));
}

#[tokio::test]
async fn dropping_a_suspended_run_leaves_nothing_behind() {
    let gw = serve(gateway()).await;
    let tether = connected(client_config(&gw.endpoint())).await;
    gw.admin().pause("t6:s1", agent_key()).unwrap();
    applied(&tether, "t6:s1", OpState::Paused).await;

    let tool = Tool::new();
    let run = spawn_run(&tether, "t6:s1", &tool, 3);
    until("the run waits on the pause", || tether.ops().waiting() == 1).await;
    run.abort();
    let _ = run.await;
    assert_eq!(tether.ops().waiting(), 0, "the waiter went with the future");
    assert!(tool.dropped());
    assert_eq!(tool.steps(), 0);
}
