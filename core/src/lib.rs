//! tether-core: the pure, sans-IO state machines behind tether.
//!
//! Guarantees of this crate as a whole:
//! - **No IO, no clock, no threads, no OS randomness.** The crate is
//!   `#![no_std]` (with `alloc`), so the compiler proves it cannot open a
//!   socket, read a clock or spawn a thread. Time arrives as a [`Timestamp`]
//!   parameter; randomness comes from a [`Prng`] seeded through each machine's
//!   config, so a run replays exactly from its seed.
//! - **One contract for every machine** (see [`Machine`]): inputs are `on_*`
//!   methods taking `now`, outputs are drained with `poll_action()` until it
//!   returns `None`, timers are reported by `poll_timeout()` as a [`Deadline`]
//!   with a reason, and `handle_timeout(now)` fires what is due (an early or
//!   repeated call does nothing).
//! - **Bad input never panics** and every collection that input can grow is
//!   bounded, with a documented outcome when the bound is hit.
//!
//! The machines:
//! - [`backoff`]: reconnect delays (gRPC connection-backoff style, jittered,
//!   healthy-after threshold).
//! - [`subscription`]: the resumable invalidation stream (sequence rules,
//!   acks, gap and restart detection).
//! - [`policy_cache`]: cached CheckAction decisions with TTL, bound,
//!   versioned invalidation and a staleness bound.
//! - [`op_control`]: the kill switch (running / paused / terminated per op).
//! - [`approval`]: approval waiters with deadlines and early verdicts.
//! - [`inflight`]: in-flight dedupe for the queued-work runner.
//! - [`tick`]: the periodic job schedule.
//! - [`check_slots`]: bounded concurrency for `CheckAction` calls (slots,
//!   a bounded queue, a bounded wait).
//! - [`registration`]: the agent's registration at an Agent Assembly
//!   gateway (challenge, register, heartbeat, control stream, token loss,
//!   deregistration).
//!
//! Plain logic beside them: [`did_key`] (Ed25519 did:key ids), [`answer`]
//! (what a gateway's answer means).
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;
#[cfg(any(test, feature = "testkit"))]
extern crate std;

pub mod answer;
pub mod approval;
pub mod backoff;
pub mod check_slots;
pub mod did_key;
pub mod id_hash;
pub mod inflight;
pub mod machine;
pub mod op_control;
pub mod policy_cache;
pub mod registration;
pub mod rng;
pub mod subscription;
pub mod tick;
pub mod time;

pub use machine::Machine;
pub use rng::Prng;
pub use time::{Deadline, Timestamp};

#[cfg(feature = "testkit")]
pub mod testkit;
