//! The straightforward Tokio designs tether is measured against, written as
//! a typical codebase writes them. Benches only: none of this is tether.
//!
//! - [`approval`]: a concurrent map from request id to a oneshot sender,
//!   each waiter wrapped in its own `tokio::time::timeout`;
//! - [`op_control`]: a concurrent map of op states plus a `Notify` woken on
//!   every change;
//! - [`queued`]: an unbounded channel, a set of in-flight sessions, and a
//!   fixed 400 ms poll;
//! - [`ticks`]: one tokio task per job sleeping its interval.

pub mod approval;
pub mod op_control;
pub mod queued;
pub mod ticks;
