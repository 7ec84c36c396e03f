//! Reconnect backoff: how long to wait before the next connection attempt.
//!
//! Guarantees (named invariants, checked by `tests/prop_backoff.rs` and the
//! `backoff` fuzz target):
//! - `BACKOFF_DELAY_BOUNDED`: every delay is at most `max × (1 + jitter)`, after
//!   any number of failures (the counter saturates, nothing overflows);
//! - `BACKOFF_DELAY_FLOOR`: after a failure every delay is at least
//!   `min(base, max) × (1 − jitter)`: a closing peer is never hammered
//!   (the one exception is below: the retry of a failed reopen right after
//!   a drain);
//! - `BACKOFF_RESET_ONLY_WHEN_HEALTHY`: the schedule resets only when a
//!   connection delivered at least one message *and* stayed up
//!   `healthy_after`; an accept-then-close, a clean end of stream, a cancel
//!   or an unavailable are failures; the first retry after a healthy stream
//!   is drawn from `[0, base]`;
//! - `BACKOFF_DRAIN_NOT_A_FAILURE`: a draining peer
//!   ([`Backoff::on_peer_draining`]) moves the connection without counting a
//!   failure or touching the schedule: the next attempt comes after a
//!   spread drawn from `[0, base]` (none without jitter), and never
//!   earlier than `base` after it connected, so drains alone request at
//!   most one attempt per `base`; if that reopen
//!   fails, its retry is drawn from `[0, base]` with no failure counted, and
//!   a second failure in a row is an ordinary failure;
//! - `BACKOFF_NEVER_GIVES_UP`: while started, the machine is always either
//!   connecting, connected, or holding a retry deadline.
//!
//! The schedule follows the gRPC connection-backoff spec: the first delay is
//! `base`, each failure multiplies it by `multiplier` up to `max`, and every
//! delay (the first included) is jittered by ±`jitter`.

mod config;
mod machine;

pub use config::{
    BackoffConfig, DEFAULT_BASE, DEFAULT_HEALTHY_AFTER, DEFAULT_JITTER, DEFAULT_MAX,
    DEFAULT_MULTIPLIER,
};
pub use machine::{Backoff, BackoffAction, BackoffPhase, BackoffTimer};
