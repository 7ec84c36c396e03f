//! The one contract every tether state machine follows.
//!
//! Guarantees a driver may rely on, for every implementor:
//! - inputs are plain `on_*` methods that take `now` when time matters;
//! - outputs are drained with [`Machine::poll_action`] until it returns `None`;
//! - [`Machine::poll_timeout`] reports the earliest instant at which
//!   [`Machine::handle_timeout`] has something to do, with a reason;
//! - `handle_timeout(now)` fires exactly what is due at `now`; calling it
//!   early (before the reported deadline) or twice does nothing;
//! - after `handle_timeout(now)` and a full drain, `poll_timeout()` is `None`
//!   or strictly later than `now` (no busy loop);
//! - nothing is ever acted on at a deadline that `poll_timeout` did not report
//!   (no lost wake-up).
//!
//! The property tests check the last three for every machine through
//! `testkit::contract`.

use crate::time::{Deadline, Timestamp};

/// The sans-IO contract shared by every machine in this crate.
///
/// A driver loop looks like this, whatever the executor:
///
/// ```
/// # use tether_core::{Machine, Timestamp};
/// fn pump<M: Machine>(m: &mut M, now: Timestamp, mut exec: impl FnMut(M::Action)) {
///     m.handle_timeout(now);
///     while let Some(action) = m.poll_action() {
///         exec(action);
///     }
///     // then sleep until m.poll_timeout() or the next input, whichever is first
/// }
/// ```
pub trait Machine {
    /// What the machine asks its driver to do.
    type Action;
    /// Why the machine wants to be woken.
    type TimerReason: Copy + core::fmt::Debug;

    /// The next action to execute, or `None` once drained.
    fn poll_action(&mut self) -> Option<Self::Action>;

    /// The earliest instant at which `handle_timeout` has work, if any.
    fn poll_timeout(&self) -> Option<Deadline<Self::TimerReason>>;

    /// Fire everything due at `now`. Early and repeated calls do nothing.
    fn handle_timeout(&mut self, now: Timestamp);
}
