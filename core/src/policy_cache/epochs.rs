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
//!
//! Cost: one hashed lookup per invalidation, and nothing allocated when an
//! agent already tracked is invalidated again. The agent's id is stored
//! once (an `Arc<str>`, also handed out to name the agent in the cache's
//! action); the age order is a list threaded through a slab, so moving an
//! agent to the newest end and forgetting the oldest are O(1).

use alloc::sync::Arc;
use alloc::vec::Vec;

use hashbrown::HashMap;

use crate::id_hash::BuildIdHasher;

/// No slot: the end of the age list.
const NIL: u32 = u32::MAX;

/// One tracked agent, linked into the age list (oldest first).
#[derive(Clone, Debug)]
struct Tracked {
    /// Epoch of the agent's latest invalidation.
    epoch: u64,
    name: Arc<str>,
    older: u32,
    newer: u32,
}

/// The epoch bookkeeping of one cache.
#[derive(Clone, Debug)]
pub(crate) struct Epochs {
    /// Epoch of the latest invalidation (0 before any). Saturates.
    current: u64,
    /// Every fetch begun before this epoch is refused, whatever its agent.
    floor: u64,
    /// Agent → its slot in `slots` (only agents invalidated above `floor`).
    per_agent: HashMap<Arc<str>, u32, BuildIdHasher>,
    /// Tracked agents; a slot in `free` holds a forgotten one.
    slots: Vec<Tracked>,
    free: Vec<u32>,
    /// The agent whose latest invalidation is the oldest, and the newest.
    oldest: u32,
    newest: u32,
    max_agents: usize,
    /// How many times the bound forced a global bump.
    overflows: u64,
}

impl Epochs {
    pub(crate) fn new(max_agents: usize) -> Self {
        Epochs {
            current: 0,
            floor: 0,
            per_agent: HashMap::with_hasher(BuildIdHasher::default()),
            slots: Vec::new(),
            free: Vec::new(),
            oldest: NIL,
            newest: NIL,
            // Slot numbers are u32, NIL excluded.
            max_agents: max_agents.min(NIL as usize),
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
        epoch < self.floor
            || self
                .per_agent
                .get(agent)
                .is_some_and(|&slot| epoch < self.slots[slot as usize].epoch)
    }

    /// An invalidation of every agent.
    pub(crate) fn invalidate_all(&mut self) {
        self.current = self.current.saturating_add(1);
        self.floor = self.current;
        self.per_agent.clear();
        self.slots.clear();
        self.free.clear();
        self.oldest = NIL;
        self.newest = NIL;
    }

    /// An invalidation of one agent; falls back to a global bump when the
    /// agent cannot be tracked (bound of zero, or epochs exhausted so that a
    /// new epoch could not be told from the last). Returns the agent's id as
    /// stored (`None` after a global bump), to name it without a copy.
    pub(crate) fn invalidate_agent(&mut self, agent: &str) -> Option<Arc<str>> {
        if self.max_agents == 0 || self.current == u64::MAX {
            self.overflows = self.overflows.saturating_add(1);
            self.invalidate_all();
            return None;
        }
        self.current = self.current.saturating_add(1);
        let epoch = self.current;
        if let Some(&slot) = self.per_agent.get(agent) {
            self.unlink(slot);
            self.link_newest(slot);
            let tracked = &mut self.slots[slot as usize];
            tracked.epoch = epoch;
            return Some(tracked.name.clone());
        }
        while self.per_agent.len() >= self.max_agents && self.forget_oldest() {}
        let name: Arc<str> = Arc::from(agent);
        let tracked = Tracked {
            epoch,
            name: name.clone(),
            older: NIL,
            newer: NIL,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = tracked;
                slot
            }
            None => {
                self.slots.push(tracked);
                // Below NIL: at most `max_agents` (<= NIL) are tracked.
                (self.slots.len() - 1) as u32
            }
        };
        self.link_newest(slot);
        self.per_agent.insert(name.clone(), slot);
        Some(name)
    }

    /// Forget the agent whose latest invalidation is the oldest, raising
    /// the floor to its epoch. Whether one was tracked.
    fn forget_oldest(&mut self) -> bool {
        let slot = self.oldest;
        if slot == NIL {
            return false;
        }
        self.unlink(slot);
        let tracked = &self.slots[slot as usize];
        self.per_agent.remove(&*tracked.name);
        self.floor = self.floor.max(tracked.epoch);
        self.free.push(slot);
        self.overflows = self.overflows.saturating_add(1);
        true
    }

    fn unlink(&mut self, slot: u32) {
        let Tracked { older, newer, .. } = self.slots[slot as usize];
        match older {
            NIL => self.oldest = newer,
            o => self.slots[o as usize].newer = newer,
        }
        match newer {
            NIL => self.newest = older,
            n => self.slots[n as usize].older = older,
        }
    }

    fn link_newest(&mut self, slot: u32) {
        let previous = self.newest;
        {
            let tracked = &mut self.slots[slot as usize];
            tracked.older = previous;
            tracked.newer = NIL;
        }
        match previous {
            NIL => self.oldest = slot,
            p => self.slots[p as usize].newer = slot,
        }
        self.newest = slot;
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
    fn reinvalidation_moves_an_agent_to_the_newest_end_and_reuses_slots() {
        let mut e = Epochs::new(2);
        e.invalidate_agent("a");
        e.invalidate_agent("b");
        // "a" again: now "b" is the oldest, and "a"'s first entry is stale.
        let t = e.current();
        e.invalidate_agent("a");
        e.invalidate_agent("c");
        assert_eq!(e.overflows(), 1);
        assert!(e.refuses(t, "a"), "a is still tracked, at its later epoch");
        assert!(!e.refuses(e.current(), "a"));
        assert_eq!(e.tracked(), 2);
        // Many re-invalidations of tracked agents use no new slot.
        for _ in 0..1_000 {
            e.invalidate_agent("a");
            e.invalidate_agent("c");
        }
        assert_eq!(e.slots.len(), 2);
        assert_eq!(e.overflows(), 1, "no agent was forgotten meanwhile");
        // The oldest live one is "a" (c was invalidated after it): "d"
        // forgets it and raises the floor to a's latest epoch.
        let before_d = e.current();
        e.invalidate_agent("d");
        assert!(e.per_agent.contains_key("c") && !e.per_agent.contains_key("a"));
        assert_eq!(e.floor, before_d - 1);
        assert!(e.refuses(before_d - 2, "z") && !e.refuses(before_d, "z"));
        assert_eq!(e.slots.len(), 2, "d took a's slot");
        // The list still runs oldest to newest: c, then d.
        let names: alloc::vec::Vec<&str> = core::iter::successors(Some(e.oldest), |&s| {
            Some(e.slots[s as usize].newer).filter(|&n| n != NIL)
        })
        .map(|s| &*e.slots[s as usize].name)
        .collect();
        assert_eq!(names, ["c", "d"]);
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
