//! A user's queued work, as a runtime that a real
//! [`Runner`](tether_tokio::runner::Runner) drives: per-session queues of
//! units filled before (or after) the runner exists, a
//! [`RunnerHandle`] that submits the next unit of the session asked for
//! (or of any session), and turns that run briefly on their own task and
//! report their end through the runner's [`Poker`].
//!
//! The runtime checks on its own what the runner promises: it counts every
//! time a drive or a turn of a session begins while another drive or turn
//! of that session is outstanding, or a global drive begins while anything
//! is (`overlaps`), and records every unit it submitted, in order.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use tether_tokio::runner::{DriveError, DriveRequest, Poker, RunnerHandle, Submission};

/// How long a submitted turn runs before it reports its end.
pub const TURN: Duration = Duration::from_millis(20);

/// How long each `submit_next` call takes (widens any overlap window).
pub const DECIDE: Duration = Duration::from_millis(5);

#[derive(Debug, Default)]
struct State {
    queues: BTreeMap<String, VecDeque<u32>>,
    /// Outstanding drives and turns per session.
    busy: BTreeMap<String, usize>,
    /// Outstanding global `submit_next` calls.
    global: usize,
    submitted: Vec<(String, u32)>,
    requests: Vec<DriveRequest>,
    overlaps: Vec<String>,
}

impl State {
    fn anything_busy(&self) -> bool {
        self.global > 0 || self.busy.values().any(|n| *n > 0)
    }

    fn enter(&mut self, session: &str, what: &str) {
        let n = self.busy.entry(session.to_owned()).or_default();
        if *n > 0 || self.global > 0 {
            self.overlaps
                .push(format!("{what} of {session} while {n} outstanding"));
        }
        *n += 1;
    }

    fn leave(&mut self, session: &str) {
        if let Some(n) = self.busy.get_mut(session) {
            *n = n.saturating_sub(1);
        }
    }
}

/// The user's queues and what the runtime saw. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct QueuedWork {
    state: Arc<Mutex<State>>,
    poker: Arc<OnceLock<Poker>>,
}

impl QueuedWork {
    /// Empty queues.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queue `units` (ids `0..units`) for `session`.
    pub fn queue(&self, session: &str, units: u32) {
        let mut st = self.state.lock().unwrap();
        st.queues
            .entry(session.to_owned())
            .or_default()
            .extend(0..units);
    }

    /// The runtime the runner drives.
    pub fn runtime(&self) -> impl RunnerHandle {
        Runtime(self.clone())
    }

    /// Hand the runtime the runner's poker (turns report their end with
    /// it; a turn that ends before this waits for it).
    pub fn attach(&self, poker: Poker) {
        let _ = self.poker.set(poker);
    }

    /// Every unit submitted, in order.
    pub fn submitted(&self) -> Vec<(String, u32)> {
        self.state.lock().unwrap().submitted.clone()
    }

    /// Every `submit_next` request, in order.
    pub fn requests(&self) -> Vec<DriveRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Units still queued.
    pub fn left(&self) -> usize {
        let st = self.state.lock().unwrap();
        st.queues.values().map(VecDeque::len).sum()
    }

    /// Whether no drive or turn is outstanding.
    pub fn quiet(&self) -> bool {
        !self.state.lock().unwrap().anything_busy()
    }

    /// Every overlap seen: a drive or turn of a session that began while
    /// another of that session (or a global drive) was outstanding, or a
    /// global drive that began while anything was.
    pub fn overlaps(&self) -> Vec<String> {
        self.state.lock().unwrap().overlaps.clone()
    }

    async fn turn(self, session: String, token: tether_tokio::runner::DriveToken) {
        tokio::time::sleep(TURN).await;
        let poker = loop {
            if let Some(p) = self.poker.get() {
                break p.clone();
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        self.state.lock().unwrap().leave(&session);
        poker
            .complete_drive(token)
            .expect("the runner takes the turn's end");
    }
}

struct Runtime(QueuedWork);

#[async_trait]
impl RunnerHandle for Runtime {
    async fn submit_next(&self, req: DriveRequest) -> Result<Submission, DriveError> {
        let token = req.token;
        let session = req.session.clone();
        {
            let mut st = self.0.state.lock().unwrap();
            st.requests.push(req);
            match &session {
                Some(s) => st.enter(s, "a drive"),
                None => {
                    if st.anything_busy() {
                        st.overlaps.push("a global drive while busy".to_owned());
                    }
                    st.global += 1;
                }
            }
        }
        tokio::time::sleep(DECIDE).await;
        let picked = {
            let mut st = self.0.state.lock().unwrap();
            let picked = match &session {
                Some(s) => st
                    .queues
                    .get_mut(s)
                    .and_then(VecDeque::pop_front)
                    .map(|u| (s.clone(), u)),
                None => {
                    st.global -= 1;
                    let found = st
                        .queues
                        .iter_mut()
                        .find(|(_, q)| !q.is_empty())
                        .and_then(|(s, q)| q.pop_front().map(|u| (s.clone(), u)));
                    if let Some((s, _)) = &found {
                        st.enter(s, "a turn picked by a global drive");
                    }
                    found
                }
            };
            match &picked {
                Some(unit) => st.submitted.push(unit.clone()),
                None => {
                    if let Some(s) = &session {
                        st.leave(s);
                    }
                }
            }
            picked
        };
        match picked {
            Some((s, _)) => {
                // The turn keeps the session's busy mark until it ends.
                tokio::spawn(self.0.clone().turn(s.clone(), token));
                Ok(Submission::Submitted(s))
            }
            None => Ok(Submission::NothingReady),
        }
    }
}
