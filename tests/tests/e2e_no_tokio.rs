//! Scenario 7: the same core machines driven without tokio, by a plain
//! thread loop with `std::time::Instant` and `std::sync::mpsc`, and awaited
//! from `futures::executor`. Nothing here knows about tokio: the core is
//! reusable under any executor.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tether_core::approval::{
    ApprovalAction, ApprovalConfig, ApprovalOutcome, ApprovalWaiters, ReviewerDecision,
};
use tether_core::backoff::{Backoff, BackoffAction, BackoffConfig};
use tether_core::op_control::{
    CheckOutcome, OpControl, OpControlAction, OpControlConfig, Signal, WaitOutcome,
};
use tether_core::time::duration_nanos;
use tether_core::{Machine, Timestamp};

enum Input {
    Wait(&'static str, Duration),
    Verdict(&'static str, ReviewerDecision),
    Signal(&'static str, Signal, u64),
    Check(&'static str),
    Stop,
}

#[derive(Debug, PartialEq)]
enum Output {
    Resolved(&'static str, ApprovalOutcome, Duration),
    Checked(&'static str, &'static str),
    Released(WaitOutcome),
}

/// The whole driver: one thread, one loop, sleeping on the input channel
/// until the earliest deadline of either machine.
fn machine_thread(rx: mpsc::Receiver<Input>, tx: mpsc::Sender<Output>) {
    let origin = Instant::now();
    let now = || Timestamp::from_nanos(duration_nanos(origin.elapsed()));
    let mut approvals = ApprovalWaiters::new(ApprovalConfig::default());
    let mut ops = OpControl::new(OpControlConfig::default(), now());
    ops.on_stream_up(now());
    let mut names = std::collections::HashMap::new();
    loop {
        let deadline = [
            approvals.poll_timeout().map(|d| d.at),
            ops.poll_timeout().map(|d| d.at),
        ]
        .into_iter()
        .flatten()
        .min();
        let input = match deadline {
            Some(at) => rx.recv_timeout(at - now()),
            None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
        };
        match input {
            Ok(Input::Wait(id, timeout)) => {
                let t = now();
                let w = approvals.wait(t, id, t + timeout).expect("room to wait");
                names.insert(w, (id, t));
            }
            Ok(Input::Verdict(id, d)) => approvals.on_verdict(now(), id, d),
            Ok(Input::Signal(op, s, seq)) => {
                ops.on_signal(now(), op, s, seq);
            }
            Ok(Input::Check(op)) => {
                let label = match ops.check(now(), "agent-1", op) {
                    CheckOutcome::Run => "run",
                    CheckOutcome::Deny(_) => "deny",
                    CheckOutcome::Wait(_) => "wait",
                };
                tx.send(Output::Checked(op, label)).unwrap();
            }
            Ok(Input::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        let t = now();
        approvals.handle_timeout(t);
        ops.handle_timeout(t);
        while let Some(ApprovalAction::Resolved {
            waiter, outcome, ..
        }) = approvals.poll_action()
        {
            let (id, started) = names.remove(&waiter).unwrap();
            tx.send(Output::Resolved(id, outcome, now() - started))
                .unwrap();
        }
        while let Some(a) = ops.poll_action() {
            if let OpControlAction::Release { outcome, .. } = a {
                tx.send(Output::Released(outcome)).unwrap();
            }
        }
    }
}

#[test]
fn approval_and_op_control_machines_run_on_a_plain_thread_loop() {
    let (in_tx, in_rx) = mpsc::channel();
    let (out_tx, out_rx) = mpsc::channel();
    let worker = thread::spawn(move || machine_thread(in_rx, out_tx));
    let recv = || {
        out_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("output in time")
    };

    in_tx
        .send(Input::Wait("slow", Duration::from_millis(150)))
        .unwrap();
    in_tx
        .send(Input::Wait("fast", Duration::from_secs(30)))
        .unwrap();
    in_tx
        .send(Input::Verdict("fast", ReviewerDecision::Approved))
        .unwrap();
    let Output::Resolved(id, outcome, _) = recv() else {
        panic!()
    };
    assert_eq!((id, outcome), ("fast", ApprovalOutcome::Approved));
    // The deadline fires from the thread's own timer: pending, not denied.
    let Output::Resolved(id, outcome, waited) = recv() else {
        panic!()
    };
    assert_eq!((id, outcome), ("slow", ApprovalOutcome::TimedOut));
    assert!(waited >= Duration::from_millis(150), "{waited:?}");

    in_tx.send(Input::Signal("t:1", Signal::Pause, 1)).unwrap();
    in_tx.send(Input::Check("t:1")).unwrap();
    assert_eq!(recv(), Output::Checked("t:1", "wait"));
    in_tx
        .send(Input::Signal("t:1", Signal::Terminate, 2))
        .unwrap();
    assert_eq!(recv(), Output::Released(WaitOutcome::Terminated));
    in_tx.send(Input::Signal("t:1", Signal::Resume, 3)).unwrap();
    in_tx.send(Input::Check("t:1")).unwrap();
    assert_eq!(
        recv(),
        Output::Checked("t:1", "deny"),
        "terminate is absorbing"
    );

    in_tx.send(Input::Stop).unwrap();
    worker.join().unwrap();
}

/// The backoff machine awaited from `futures::executor`, with a timer
/// thread standing in for the executor's reactor.
#[test]
fn backoff_schedule_under_futures_executor() {
    let origin = Instant::now();
    let now = || Timestamp::from_nanos(duration_nanos(origin.elapsed()));
    let mut cfg = BackoffConfig::with_seed(3);
    cfg.base = Duration::from_millis(20);
    cfg.max = Duration::from_millis(80);
    let mut b = Backoff::new(cfg);
    let attempts = futures::executor::block_on(async {
        let mut attempts = Vec::new();
        b.start(now());
        while attempts.len() < 5 {
            while let Some(BackoffAction::Connect { attempt }) = b.poll_action() {
                attempts.push((attempt, now()));
                b.on_disconnected(now()); // refused
            }
            let at = b.poll_timeout().expect("never gives up").at;
            // A oneshot completed by a plain thread after the delay.
            let (tx, rx) = futures::channel::oneshot::channel();
            let wait = at - now();
            thread::spawn(move || {
                thread::sleep(wait);
                let _ = tx.send(());
            });
            rx.await.unwrap();
            b.handle_timeout(now());
        }
        attempts
    });
    let gaps: Vec<Duration> = attempts.windows(2).map(|w| w[1].1 - w[0].1).collect();
    assert_eq!(
        attempts.iter().map(|a| a.0).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    // 20 ms base, x1.6, capped at 80 ms, +-20 %: every gap at least 16 ms.
    assert!(
        gaps.iter().all(|g| *g >= Duration::from_millis(16)),
        "{gaps:?}"
    );
}
