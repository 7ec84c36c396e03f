//! The contract invariants every machine shares (see [`crate::Machine`]):
//!
//! - `CONTRACT_EARLY_TIMEOUT_IS_NOOP`: `handle_timeout(now)` before the
//!   reported deadline (or with none reported) produces no action and leaves
//!   the deadline unchanged, so nothing is ever acted on at a deadline that
//!   was not reported (no lost wake-up);
//! - `CONTRACT_NO_BUSY_LOOP`: after `handle_timeout(now)` and a full drain,
//!   `poll_timeout()` is `None` or later than `now`;
//! - `CONTRACT_TIMEOUT_IDEMPOTENT`: a second `handle_timeout(now)` right
//!   after the first, drained, produces nothing.

use alloc::vec::Vec;

use super::Violation;
use crate::machine::Machine;
use crate::time::Timestamp;

/// Upper bound on actions one drain may yield before we call it a livelock.
pub const MAX_DRAIN: usize = 1_000_000;

/// Drain every pending action into a vector (bounded by [`MAX_DRAIN`]).
pub fn drain<M: Machine>(m: &mut M) -> Result<Vec<M::Action>, Violation> {
    let mut out = Vec::new();
    while let Some(a) = m.poll_action() {
        out.push(a);
        if out.len() > MAX_DRAIN {
            return Err(Violation::new(
                "CONTRACT_DRAIN_TERMINATES",
                "poll_action yielded more than MAX_DRAIN actions",
            ));
        }
    }
    Ok(out)
}

/// Call `handle_timeout(now)` on a machine whose queue was already drained,
/// checking the three contract invariants, and return the actions it fired.
pub fn timeout_checked<M: Machine>(m: &mut M, now: Timestamp) -> Result<Vec<M::Action>, Violation> {
    let before = m.poll_timeout().map(|d| d.at);
    let due = matches!(before, Some(at) if at <= now);
    m.handle_timeout(now);
    let fired = drain(m)?;
    if !due {
        if !fired.is_empty() {
            return Err(Violation::new(
                "CONTRACT_EARLY_TIMEOUT_IS_NOOP",
                alloc::format!(
                    "handle_timeout({now:?}) fired {} action(s) with reported deadline {before:?}",
                    fired.len()
                ),
            ));
        }
        let after = m.poll_timeout().map(|d| d.at);
        if after != before {
            return Err(Violation::new(
                "CONTRACT_EARLY_TIMEOUT_IS_NOOP",
                alloc::format!(
                    "early handle_timeout({now:?}) moved the deadline {before:?} -> {after:?}"
                ),
            ));
        }
    }
    if let Some(d) = m.poll_timeout() {
        if d.at <= now {
            return Err(Violation::new(
                "CONTRACT_NO_BUSY_LOOP",
                alloc::format!("after handle_timeout({now:?}) the next deadline is {d:?}"),
            ));
        }
    }
    let deadline = m.poll_timeout().map(|d| d.at);
    m.handle_timeout(now);
    let again = drain(m)?;
    if !again.is_empty() || m.poll_timeout().map(|d| d.at) != deadline {
        return Err(Violation::new(
            "CONTRACT_TIMEOUT_IDEMPOTENT",
            alloc::format!(
                "a repeated handle_timeout({now:?}) fired {} action(s)",
                again.len()
            ),
        ));
    }
    Ok(fired)
}
