//! Run an agent runtime's queued turns with the runner: pokes for a session
//! that is already being driven coalesce into one re-drive after it, and no
//! session is ever driven twice at once.
//!
//! `cargo run --example queued_work` queues work for three sessions, pokes
//! each of them many times from several tasks, and prints how many turns
//! ran (one per queued unit, never two of one session at a time).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tether_tokio::runner::{
    DriveError, DriveRequest, Poker, Runner, RunnerConfig, RunnerHandle, Submission,
};

/// A toy runtime: a queue of turns per session; a turn takes 20 ms.
#[derive(Default)]
struct Queues {
    queued: Mutex<HashMap<String, u32>>,
    running: Mutex<HashMap<String, bool>>,
    turns: Mutex<HashMap<String, u32>>,
    poker: Mutex<Option<Poker>>,
}

struct Runtime(Arc<Queues>);

#[async_trait]
impl RunnerHandle for Runtime {
    async fn submit_next(&self, req: DriveRequest) -> Result<Submission, DriveError> {
        let q = &self.0;
        let session = match req.session {
            Some(s) => s,
            // A global poke: pick any session with work.
            None => match q.queued.lock().unwrap().iter().find(|(_, n)| **n > 0) {
                Some((s, _)) => s.clone(),
                None => return Ok(Submission::NothingReady),
            },
        };
        {
            let mut queued = q.queued.lock().unwrap();
            let n = queued.entry(session.clone()).or_default();
            if *n == 0 {
                return Ok(Submission::NothingReady);
            }
            *n -= 1;
        }
        let twice = q.running.lock().unwrap().insert(session.clone(), true) == Some(true);
        assert!(!twice, "session {session} driven twice at once");
        let (q2, s2) = (q.clone(), session.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await; // the turn
            *q2.turns.lock().unwrap().entry(s2.clone()).or_default() += 1;
            q2.running.lock().unwrap().insert(s2.clone(), false);
            let poker = q2.poker.lock().unwrap().clone().expect("poker set");
            // The turn ended: tell the runner, then poke in case more is queued.
            let _ = poker.complete_session(&s2);
            let _ = poker.poke_session(s2);
        });
        Ok(Submission::Submitted(session))
    }
}

#[tokio::main]
async fn main() {
    let queues = Arc::new(Queues::default());
    for (s, n) in [("alice", 3), ("bob", 5), ("carol", 1)] {
        queues.queued.lock().unwrap().insert(s.into(), n);
    }
    let runner = Runner::start(Runtime(queues.clone()), RunnerConfig::default());
    *queues.poker.lock().unwrap() = Some(runner.poker());

    // Many pokes from many tasks: they coalesce.
    let mut pokers = Vec::new();
    for _ in 0..4 {
        let p = runner.poker();
        pokers.push(tokio::spawn(async move {
            for s in ["alice", "bob", "carol", "alice", "bob"] {
                let _ = p.poke_session(s);
            }
        }));
    }
    for p in pokers {
        p.await.unwrap();
    }

    // Wait (bounded) until every queued unit ran.
    for _ in 0..500 {
        if queues.queued.lock().unwrap().values().all(|n| *n == 0) && runner.is_idle() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let turns = queues.turns.lock().unwrap().clone();
    let mut sessions: Vec<_> = turns.into_iter().collect();
    sessions.sort();
    for (s, n) in &sessions {
        println!("{s}: {n} turn(s)");
    }
    assert_eq!(
        sessions.iter().map(|(_, n)| n).sum::<u32>(),
        9,
        "every queued turn ran once"
    );
    runner.shutdown().await;
}
