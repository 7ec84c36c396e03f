//! The gateway's approval desk: actions waiting for a reviewer.
//!
//! Guarantees: a request is decided at most once (the first decision wins;
//! a second gets `NotFound`); a decision reaches every CheckAction call
//! held open on it; an approval whose timeout passed is dropped silently
//! (timeouts are never broadcast: the waiting side decides on its own
//! deadline, as in Agent Assembly); at most `max_pending` requests wait,
//! beyond that a submit is refused.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{broadcast, oneshot};
use tokio::time::Instant;

use super::ops::AgentKey;

/// Requests that may wait for a reviewer at once, by default: 32,768 (three
/// held calls for each of 10,000 agents).
pub const DEFAULT_MAX_PENDING: usize = 32_768;
/// Newly filed approvals buffered per `WatchApprovals` stream before that
/// watcher counts as lagging, by default: 1,024.
pub const DEFAULT_WATCH_CAPACITY: usize = 1024;

/// A request waiting for a reviewer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PendingApproval {
    /// The approval id returned to the agent as `approval_id`.
    pub request_id: String,
    /// The agent asking.
    pub agent: AgentKey,
    /// The team (tenant) whose invalidation subscribers hear the verdict.
    /// The gateway sets it to the authenticated agent's team, and to `""`
    /// for an unauthenticated request on an open gateway (the team of its
    /// unauthenticated subscribers).
    pub team_id: String,
    /// What it wants to do (the tool name).
    pub action: String,
    /// The rule that required approval.
    pub condition: String,
    /// Unix seconds when it was submitted.
    pub submitted_at: u64,
    /// How long the reviewer has, in seconds.
    pub timeout_secs: u64,
}

/// A reviewer's decision on a pending approval. (Named apart from
/// `tether_tokio`'s `Verdict`, the runtime's answer to a check.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Review {
    /// Go ahead.
    Approved,
    /// Do not.
    Denied,
}

/// Why a decision could not be recorded.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeskError {
    /// No such pending request (never submitted, already decided, expired).
    #[error("no pending approval {0}")]
    NotFound(String),
    /// Too many requests are already waiting.
    #[error("too many pending approvals ({0})")]
    Full(usize),
}

struct Entry {
    approval: PendingApproval,
    expires_at: Instant,
    holders: Vec<oneshot::Sender<Review>>,
}

struct Desk {
    next_id: u64,
    pending: BTreeMap<String, Entry>,
}

/// Pending approvals, reviewers' decisions and watchers.
pub struct ApprovalDesk {
    desk: Mutex<Desk>,
    watch: broadcast::Sender<PendingApproval>,
    max_pending: usize,
}

impl ApprovalDesk {
    /// An empty desk holding at most `max_pending` requests (at least 1),
    /// with [`DEFAULT_WATCH_CAPACITY`] per watcher.
    pub fn new(max_pending: usize) -> Self {
        ApprovalDesk::with_watch_capacity(max_pending, DEFAULT_WATCH_CAPACITY)
    }

    /// An empty desk holding at most `max_pending` requests, buffering
    /// `watch_capacity` new approvals per watcher (each at least 1).
    pub fn with_watch_capacity(max_pending: usize, watch_capacity: usize) -> Self {
        ApprovalDesk {
            desk: Mutex::new(Desk {
                next_id: 1,
                pending: BTreeMap::new(),
            }),
            watch: broadcast::channel(watch_capacity.max(1)).0,
            max_pending: max_pending.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Desk> {
        let mut d = self.desk.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        d.pending.retain(|_, e| e.expires_at > now);
        d
    }

    /// File a new request for `agent`, whose verdict goes to the subscribers
    /// of `team_id`; watchers are told.
    pub fn submit(
        &self,
        agent: AgentKey,
        team_id: &str,
        action: &str,
        condition: &str,
        timeout: Duration,
    ) -> Result<PendingApproval, DeskError> {
        let mut d = self.lock();
        if d.pending.len() >= self.max_pending {
            return Err(DeskError::Full(self.max_pending));
        }
        let request_id = format!("apr-{}", d.next_id);
        d.next_id += 1;
        let approval = PendingApproval {
            request_id: request_id.clone(),
            agent,
            team_id: team_id.to_owned(),
            action: action.to_owned(),
            condition: condition.to_owned(),
            submitted_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            timeout_secs: timeout.as_secs(),
        };
        d.pending.insert(
            request_id,
            Entry {
                approval: approval.clone(),
                expires_at: Instant::now() + timeout,
                holders: Vec::new(),
            },
        );
        let _ = self.watch.send(approval.clone());
        Ok(approval)
    }

    /// A receiver for the verdict of `request_id` (for a held CheckAction).
    pub fn hold(&self, request_id: &str) -> Result<oneshot::Receiver<Review>, DeskError> {
        let mut d = self.lock();
        let entry = d
            .pending
            .get_mut(request_id)
            .ok_or_else(|| DeskError::NotFound(request_id.to_owned()))?;
        let (tx, rx) = oneshot::channel();
        entry.holders.push(tx);
        Ok(rx)
    }

    /// Record a reviewer's verdict: releases held calls and returns the
    /// request so the caller can publish ApprovalResolved to its team.
    pub fn decide(&self, request_id: &str, verdict: Review) -> Result<PendingApproval, DeskError> {
        let entry = self
            .lock()
            .pending
            .remove(request_id)
            .ok_or_else(|| DeskError::NotFound(request_id.to_owned()))?;
        for h in entry.holders {
            let _ = h.send(verdict);
        }
        Ok(entry.approval)
    }

    /// The request `request_id`, if it is still waiting.
    pub fn get(&self, request_id: &str) -> Option<PendingApproval> {
        self.lock()
            .pending
            .get(request_id)
            .map(|e| e.approval.clone())
    }

    /// Requests still waiting.
    pub fn len(&self) -> usize {
        self.lock().pending.len()
    }

    /// Whether no request is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every request still waiting, oldest first.
    pub fn list(&self) -> Vec<PendingApproval> {
        self.lock()
            .pending
            .values()
            .map(|e| e.approval.clone())
            .collect()
    }

    /// New requests as they are filed.
    pub fn watch(&self) -> broadcast::Receiver<PendingApproval> {
        self.watch.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn decide_once_releases_holders_and_expiry_is_silent() {
        let desk = ApprovalDesk::new(2);
        let mut watch = desk.watch();
        let a = desk
            .submit(
                AgentKey::default(),
                "t",
                "deploy",
                "approve deploy",
                Duration::from_secs(5),
            )
            .unwrap();
        assert_eq!(watch.try_recv().unwrap().request_id, a.request_id);
        let held = desk.hold(&a.request_id).unwrap();
        assert_eq!(desk.decide(&a.request_id, Review::Approved).unwrap(), a);
        assert_eq!(held.await.unwrap(), Review::Approved);
        assert_eq!(
            desk.decide(&a.request_id, Review::Denied),
            Err(DeskError::NotFound(a.request_id.clone()))
        );
        let b = desk
            .submit(AgentKey::default(), "t", "x", "c", Duration::from_secs(5))
            .unwrap();
        let c = desk
            .submit(AgentKey::default(), "t", "y", "c", Duration::from_secs(50))
            .unwrap();
        assert_eq!(
            desk.submit(AgentKey::default(), "t", "z", "c", Duration::from_secs(5)),
            Err(DeskError::Full(2))
        );
        assert_eq!(desk.get(&b.request_id).map(|p| p.team_id), Some("t".into()));
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(desk.list(), vec![c]);
        assert_eq!(desk.len(), 1);
        assert!(matches!(
            desk.decide(&b.request_id, Review::Denied),
            Err(DeskError::NotFound(_))
        ));
    }
}
