//! Waiter slots: a slab of 20-byte records, each waiting waiter linked into
//! its request's circular list.
//!
//! Guarantees: a slot is in use from the wait that takes it until its
//! resolution is drained or it is cancelled, so a slot index names one
//! waiter or undelivered resolution at a time; the sequence number stored
//! with it tells a current [`WaiterId`](super::WaiterId) from a finished one
//! that used the same slot; lists keep wait order.

use alloc::vec::Vec;

use super::requests::NIL;

/// `req` of a resolved slot whose resolution is not drained yet (request
/// entry indexes stay below it).
pub(crate) const RESOLVED: u32 = NIL - 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SlotState {
    /// Not in use; `next` links the free list.
    Free,
    /// Waiting, linked into its request's list.
    Waiting,
    /// Resolved; its resolution is not drained yet.
    Resolved,
}

/// One slot. The sequence number is two halves so the record is 4-byte
/// aligned (20 bytes, not 24); the state is told by `req`.
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    seq_lo: u32,
    seq_hi: u32,
    /// The request entry while waiting; [`RESOLVED`] while resolved and not
    /// drained; `NIL` when free.
    pub(crate) req: u32,
    /// Neighbours in the request's circular list (while waiting); `next`
    /// also links the free list.
    pub(crate) prev: u32,
    pub(crate) next: u32,
}

const _: () = assert!(core::mem::size_of::<Slot>() == 20);

impl Slot {
    pub(crate) fn seq(&self) -> u64 {
        (u64::from(self.seq_hi) << 32) | u64::from(self.seq_lo)
    }

    pub(crate) fn state(&self) -> SlotState {
        match self.req {
            NIL => SlotState::Free,
            RESOLVED => SlotState::Resolved,
            _ => SlotState::Waiting,
        }
    }

    /// Mark resolved (the caller unlinked it first).
    pub(crate) fn set_resolved(&mut self) {
        self.req = RESOLVED;
        self.prev = NIL;
        self.next = NIL;
    }
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

    /// Take a slot (call [`Slots::has_room`] first) for waiter `seq`,
    /// resolved at once or to be linked into request `req`'s list.
    pub(crate) fn take(&mut self, seq: u64, req: u32) -> u32 {
        let slot = Slot {
            seq_lo: seq as u32,
            seq_hi: (seq >> 32) as u32,
            req,
            prev: NIL,
            next: NIL,
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
            .filter(|s| s.req != NIL && s.seq() == seq)
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
        if s.req == NIL {
            return;
        }
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
        let a = s.take(1, 0);
        let b = s.take(2, RESOLVED);
        assert_eq!(s.used(), 2);
        assert_eq!(s.get(a).state(), SlotState::Waiting);
        assert_eq!(s.get(b).state(), SlotState::Resolved);
        s.release(a);
        s.release(a);
        assert_eq!(s.used(), 1);
        assert!(s.current(a, 1).is_none());
        assert_eq!(s.get(a).state(), SlotState::Free);
        let c = s.take(3 << 32 | 3, 0);
        assert_eq!(c, a);
        assert!(s.current(c, 3).is_none() && s.current(c, 3 << 32 | 3).is_some());
        assert_eq!(s.get(c).seq(), 3 << 32 | 3);
        assert!(s.current(b, 2).is_some() && s.current(99, 2).is_none());
    }
}
