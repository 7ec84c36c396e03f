//! Waiter slots: a slab of fixed-size records, each waiter linked into its
//! request's list.
//!
//! Guarantees: a slot is in use from the wait that takes it until its
//! resolution is drained or it is cancelled, so a slot index names one
//! waiter or undelivered resolution at a time; the sequence number stored
//! with it tells a current [`WaiterId`](super::WaiterId) from a finished one
//! that used the same slot; lists keep wait order.

use alloc::vec::Vec;

use super::requests::NIL;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SlotState {
    /// Not in use; `next` links the free list.
    Free,
    /// Waiting, linked into its request's list.
    Waiting,
    /// Resolved; its resolution is not drained yet.
    Resolved,
}

#[derive(Clone, Debug)]
pub(crate) struct Slot {
    pub(crate) seq: u64,
    /// The request entry (while waiting).
    pub(crate) req: u32,
    pub(crate) prev: u32,
    pub(crate) next: u32,
    pub(crate) state: SlotState,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Slots {
    slots: Vec<Slot>,
    free: Option<u32>,
    used: usize,
}

impl Slots {
    /// Slots in use (waiting plus undelivered).
    pub(crate) fn used(&self) -> usize {
        self.used
    }

    /// Whether another slot can be taken (indexes are `u32`, `NIL` excluded).
    pub(crate) fn has_room(&self) -> bool {
        self.free.is_some() || self.slots.len() < NIL as usize
    }

    /// Take a slot (call [`Slots::has_room`] first).
    pub(crate) fn take(&mut self, seq: u64, state: SlotState) -> u32 {
        let slot = Slot {
            seq,
            req: NIL,
            prev: NIL,
            next: NIL,
            state,
        };
        self.used += 1;
        match self.free {
            Some(i) => {
                let s = &mut self.slots[i as usize];
                self.free = (s.next != NIL).then_some(s.next);
                *s = slot;
                i
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        }
    }

    /// The slot `i` if it holds waiter `seq` (waiting or undelivered).
    pub(crate) fn current(&self, i: u32, seq: u64) -> Option<&Slot> {
        self.slots
            .get(i as usize)
            .filter(|s| s.seq == seq && s.state != SlotState::Free)
    }

    pub(crate) fn get(&self, i: u32) -> &Slot {
        &self.slots[i as usize]
    }

    pub(crate) fn get_mut(&mut self, i: u32) -> &mut Slot {
        &mut self.slots[i as usize]
    }

    /// Give slot `i` back.
    pub(crate) fn release(&mut self, i: u32) {
        let Some(s) = self.slots.get_mut(i as usize) else {
            return;
        };
        if s.state == SlotState::Free {
            return;
        }
        s.state = SlotState::Free;
        s.req = NIL;
        s.prev = NIL;
        s.next = self.free.unwrap_or(NIL);
        self.free = Some(i);
        self.used -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_slots_are_reused_and_old_ids_no_longer_match() {
        let mut s = Slots::default();
        let a = s.take(1, SlotState::Waiting);
        let b = s.take(2, SlotState::Resolved);
        assert_eq!(s.used(), 2);
        s.release(a);
        s.release(a);
        assert_eq!(s.used(), 1);
        assert!(s.current(a, 1).is_none());
        let c = s.take(3, SlotState::Waiting);
        assert_eq!(c, a);
        assert!(s.current(c, 1).is_none() && s.current(c, 3).is_some());
        assert!(s.current(b, 2).is_some() && s.current(99, 2).is_none());
    }
}
