//! Check slots: how many `CheckAction` calls may be in flight at once, and
//! what happens to the rest.
//!
//! The runtime client sends its checks on one HTTP/2 connection whose peer
//! caps concurrent streams, and a gateway may hold a call for minutes while
//! a human decides. So the client bounds the checks in flight, queues the
//! rest in a bounded queue, and bounds how long each may wait: no check
//! waits without bound, and what happens at each bound is decided here.
//!
//! Guarantees (named invariants, checked after every step by
//! `testkit::check_slots`, `tests/prop_check_slots.rs` and the `check_slots`
//! fuzz target):
//! - `SLOTS_IN_FLIGHT_BOUNDED`: at most `max_in_flight` checks hold a slot,
//!   always (a configured 0 is raised to 1);
//! - `SLOTS_QUEUE_BOUNDED`: at most `max_queued` checks wait, always; a
//!   request that finds every slot in use and `max_queued` checks waiting
//!   (once those due at `now` are expired) is refused at once with
//!   [`SlotRefusal::QueueFull`] and leaves nothing behind. A driver that
//!   does not drain cannot grow the machine either: queue-timeout refusals
//!   ([`CheckSlotsAction::Expire`]) left undrained from earlier inputs count
//!   against the bound (so waiting checks plus undrained expiries stay
//!   within `2 × max_queued`), and an [`CheckSlotsAction::Admit`] not yet
//!   drained is withdrawn when its check is released or cancelled first (so
//!   undrained admissions stay within `max_in_flight`);
//! - `SLOTS_WORK_CONSERVING`: whenever a check is queued, every slot is in
//!   use (a freed slot goes to the head of the queue at once, in the same
//!   input), so no slot idles while a check waits;
//! - `SLOTS_FIFO`: queued checks are admitted, and expired, in request order;
//! - `SLOTS_WAIT_BOUNDED`: every queued check ends exactly once: by `Admit`,
//!   by `Expire`, or by its release or cancel. A check is never admitted
//!   once its wait reached `queue_timeout` (an input that frees a slot at
//!   that instant expires it first), and after `handle_timeout(now)` no
//!   queued check has waited `queue_timeout` or more;
//! - `SLOTS_RELEASE_EXACT`: a release or cancel of an unknown, already
//!   released, cancelled or expired id changes nothing (no slot freed, no
//!   action, no counter), so a double release never frees two slots.
//!
//! Plus the contract invariants every machine keeps (see
//! [`crate::Machine`]).
//!
//! The driver's loop: call [`CheckSlots::on_request`] before sending a
//! check; send it at once if [`Admission::Admitted`], wait for
//! [`CheckSlotsAction::Admit`] or [`CheckSlotsAction::Expire`] naming it if
//! [`Admission::Queued`], fail it if [`Admission::Refused`]. Report its end
//! with [`CheckSlots::on_release`], or, if its caller gave up first, with
//! [`CheckSlots::on_cancel`]. Drain [`poll_action`](crate::Machine::poll_action)
//! after every input; sleep until [`poll_timeout`](crate::Machine::poll_timeout)
//! and call [`handle_timeout`](crate::Machine::handle_timeout).
//!
//! Time: a queued check's wait is counted from the instant it was queued,
//! or from that of the check ahead of it if `now` went backwards, so
//! deadlines never decrease along the queue. A deadline past
//! [`Timestamp::MAX`](crate::Timestamp::MAX) saturates there.

mod config;
mod machine;
mod types;

pub use config::{
    CheckSlotsConfig, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_QUEUED, DEFAULT_QUEUE_TIMEOUT,
    MIN_QUEUE_TIMEOUT,
};
pub use machine::CheckSlots;
pub use types::{
    Admission, CheckSlotsAction, CheckSlotsTimer, SlotId, SlotRefusal, SlotState, SlotStats,
};
