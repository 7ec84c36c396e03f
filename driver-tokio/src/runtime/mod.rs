//! The generic glue between a core machine and tokio: a [`Clock`] that maps
//! tokio time onto the core's [`Timestamp`](tether_core::Timestamp), and a
//! [`Driven`] cell that owns one machine, executes its actions and runs its
//! single timer.
//!
//! Guarantees: no decision logic lives here; every `if` about backoff,
//! dedupe or stickiness is in `tether-core`. A machine's actions are executed
//! in the order it emitted them, outside its lock.

mod cell;
mod clock;
mod waiters;

pub use cell::{Driven, TimerTask};
pub use clock::Clock;
pub use waiters::{CancelGuard, Waiters};
