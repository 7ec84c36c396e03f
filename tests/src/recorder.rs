//! A recording invalidation sink: what a user's own cache would see.

use std::sync::Arc;

use async_trait::async_trait;
use tether_tokio::client::{InvalidateAllReason, InvalidationSink, PolicyChange};
use tokio::sync::watch;

/// One thing the sink saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// A policy change with its stream sequence.
    Change(u64),
    /// Everything invalidated.
    All(InvalidateAllReason),
}

/// Records every call, in order; awaitable.
#[derive(Clone, Debug)]
pub struct Recorder {
    log: Arc<watch::Sender<Vec<Seen>>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            log: Arc::new(watch::channel(Vec::new()).0),
        }
    }
}

impl Recorder {
    /// Everything seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.log.borrow().clone()
    }

    /// Wait until `cond` holds on the log (bounded by the caller).
    pub async fn wait_for(&self, cond: impl FnMut(&Vec<Seen>) -> bool) -> Vec<Seen> {
        let mut rx = self.log.subscribe();
        let r = rx.wait_for(cond).await.expect("recorder alive");
        r.clone()
    }

    /// The sequences of policy changes seen after the last `All`.
    pub fn changes_since_last_reset(&self) -> Vec<u64> {
        let log = self.seen();
        let start = log
            .iter()
            .rposition(|s| matches!(s, Seen::All(_)))
            .map_or(0, |i| i + 1);
        log[start..]
            .iter()
            .filter_map(|s| match s {
                Seen::Change(n) => Some(*n),
                Seen::All(_) => None,
            })
            .collect()
    }
}

#[async_trait]
impl InvalidationSink for Recorder {
    async fn on_policy_change(&self, change: &PolicyChange) {
        self.log.send_modify(|l| l.push(Seen::Change(change.seq)));
    }

    async fn invalidate_all(&self, reason: InvalidateAllReason) {
        self.log.send_modify(|l| l.push(Seen::All(reason)));
    }
}
