//! The registry of live waiters.
//!
//! Guarantees: a waiter id is unique among live waiters; a removed waiter
//! leaves nothing behind. The bound is enforced by the machine, which counts
//! undrained releases against it too.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::outcome::OpWaiterId;

/// Why a waiter waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WaitKind {
    /// Its op is paused: only a resume (or a terminate, an eviction, a
    /// finish) ends the wait.
    Paused,
    /// Its op is running but the stream is in an outage and the policy is
    /// `Hold`: the stream coming back ends the wait.
    Hold,
}

#[derive(Clone, Debug)]
pub(crate) struct Waiter {
    pub(crate) agent: String,
    pub(crate) op: String,
    pub(crate) kind: WaitKind,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Waiters {
    live: BTreeMap<OpWaiterId, Waiter>,
    next: u64,
}

impl Waiters {
    pub(crate) fn insert(&mut self, agent: &str, op: &str, kind: WaitKind) -> OpWaiterId {
        // Ids only repeat after 2^64 waiters; skip any still live anyway.
        let mut id = OpWaiterId(self.next);
        while self.live.contains_key(&id) {
            id = OpWaiterId(id.0.wrapping_add(1));
        }
        self.next = id.0.wrapping_add(1);
        self.live.insert(
            id,
            Waiter {
                agent: agent.to_string(),
                op: op.to_string(),
                kind,
            },
        );
        id
    }

    pub(crate) fn remove(&mut self, id: OpWaiterId) -> Option<Waiter> {
        self.live.remove(&id)
    }

    pub(crate) fn set_kind(&mut self, id: OpWaiterId, kind: WaitKind) {
        if let Some(w) = self.live.get_mut(&id) {
            w.kind = kind;
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&OpWaiterId, &Waiter)> {
        self.live.iter()
    }

    /// The ids of every waiter of `op` (any agent).
    pub(crate) fn of_op(&self, op: &str) -> Vec<OpWaiterId> {
        self.live
            .iter()
            .filter(|(_, w)| w.op == op)
            .map(|(id, _)| *id)
            .collect()
    }

    pub(crate) fn ids(&self) -> Vec<OpWaiterId> {
        self.live.keys().copied().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.live.len()
    }
}
