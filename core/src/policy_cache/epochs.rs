//! Invalidation epochs: which in-flight fetches an invalidation overtook.
//!
//! Every invalidation gets the next epoch number. A fetch remembers the
//! epoch current when it began; it is refused when an invalidation covering
//! its agent has a later epoch. Per agent, only the epoch of its *latest*
//! invalidation matters, so one number per agent suffices.
//!
//! Bound: at most `max_agents` agents are tracked. Tracking one more forgets
//! the agent whose last invalidation is the oldest and raises the global
//! `floor` to that epoch: every fetch begun before it is refused, whatever
//! its agent. That refuses more than needed (a refetch), never less (a
//! stale store). An invalidation of every agent also just raises the floor,
//! which makes every per-agent entry redundant, so they are dropped.

use alloc::collections::BTreeMap;
use alloc::string::String;

/// The epoch bookkeeping of one cache.
#[derive(Clone, Debug)]
pub(crate) struct Epochs {
    /// Epoch of the latest invalidation (0 before any). Saturates.
    current: u64,
    /// Every fetch begun before this epoch is refused, whatever its agent.
    floor: u64,
    /// Agent → epoch of its latest invalidation (only those above `floor`).
    per_agent: BTreeMap<String, u64>,
    /// The same, by epoch, to find the oldest at the bound.
    by_epoch: BTreeMap<u64, String>,
    max_agents: usize,
    /// How many times the bound forced a global bump.
    overflows: u64,
}

impl Epochs {
    pub(crate) fn new(max_agents: usize) -> Self {
        Epochs {
            current: 0,
            floor: 0,
            per_agent: BTreeMap::new(),
            by_epoch: BTreeMap::new(),
            max_agents,
            overflows: 0,
        }
    }

    /// The epoch a fetch beginning now records.
    pub(crate) fn current(&self) -> u64 {
        self.current
    }

    /// Agents tracked individually.
    pub(crate) fn tracked(&self) -> usize {
        self.per_agent.len()
    }

    /// Times the bound forced a conservative global bump.
    pub(crate) fn overflows(&self) -> u64 {
        self.overflows
    }

    /// Whether a fetch for `agent` begun at `epoch` must not be stored.
    pub(crate) fn refuses(&self, epoch: u64, agent: &str) -> bool {
        if self.current == u64::MAX {
            // Epochs are exhausted (2^64 invalidations): later ones could not
            // be told apart, so refuse every fetch. Safe, and unreachable.
            return true;
        }
        epoch < self.floor || self.per_agent.get(agent).is_some_and(|&e| epoch < e)
    }

    /// An invalidation of every agent.
    pub(crate) fn invalidate_all(&mut self) {
        self.current = self.current.saturating_add(1);
        self.floor = self.current;
        self.per_agent.clear();
        self.by_epoch.clear();
    }

    /// An invalidation of one agent; falls back to a global bump when the
    /// agent cannot be tracked (bound of zero, or epochs exhausted so that a
    /// new epoch could not be told from the last).
    pub(crate) fn invalidate_agent(&mut self, agent: &str) {
        if self.max_agents == 0 || self.current == u64::MAX {
            self.overflows = self.overflows.saturating_add(1);
            self.invalidate_all();
            return;
        }
        self.current = self.current.saturating_add(1);
        let epoch = self.current;
        if let Some(old) = self.per_agent.get_mut(agent) {
            // Move the agent's id from its old epoch to the new one, without
            // allocating: the new key goes in first (an empty `String` does
            // not allocate), so a map holding only this agent never empties
            // and frees its node just to allocate it again.
            let previous = core::mem::replace(old, epoch);
            self.by_epoch.insert(epoch, String::new());
            let name = self
                .by_epoch
                .remove(&previous)
                .unwrap_or_else(|| String::from(agent));
            if let Some(slot) = self.by_epoch.get_mut(&epoch) {
                *slot = name;
            }
            return;
        }
        while self.per_agent.len() >= self.max_agents {
            let Some((oldest, forgotten)) = self.by_epoch.pop_first() else {
                break;
            };
            self.per_agent.remove(&forgotten);
            self.floor = self.floor.max(oldest);
            self.overflows = self.overflows.saturating_add(1);
        }
        self.per_agent.insert(String::from(agent), epoch);
        self.by_epoch.insert(epoch, String::from(agent));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precise_per_agent_until_the_bound_then_conservative() {
        let mut e = Epochs::new(2);
        let t0 = e.current();
        e.invalidate_agent("a");
        assert!(e.refuses(t0, "a"));
        assert!(!e.refuses(t0, "b"));
        let t1 = e.current();
        e.invalidate_agent("b");
        assert!(!e.refuses(t1, "a"));
        assert!(e.refuses(t1, "b"));
        // A third agent forgets "a" (the oldest) and bumps the floor to its epoch.
        e.invalidate_agent("c");
        assert_eq!(e.tracked(), 2);
        assert_eq!(e.overflows(), 1);
        assert!(e.refuses(t0, "a"), "still refused after being forgotten");
        assert!(
            e.refuses(t0, "z"),
            "conservative for everyone before the floor"
        );
        assert!(!e.refuses(t1, "a"));
        assert!(!e.refuses(e.current(), "c"));
    }

    #[test]
    fn all_agents_clears_tracking_and_zero_bound_is_global() {
        let mut e = Epochs::new(0);
        let t = e.current();
        e.invalidate_agent("a");
        assert!(e.refuses(t, "b"));
        assert_eq!(e.tracked(), 0);
        let mut e = Epochs::new(4);
        e.invalidate_agent("a");
        let t = e.current();
        e.invalidate_all();
        assert_eq!(e.tracked(), 0);
        assert!(e.refuses(t, "a"));
        assert!(!e.refuses(e.current(), "a"));
    }

    #[test]
    fn saturated_epochs_refuse_everything() {
        let mut e = Epochs::new(1);
        e.current = u64::MAX - 1;
        e.invalidate_agent("a");
        e.invalidate_agent("b");
        assert!(e.refuses(u64::MAX, "c"));
    }
}
