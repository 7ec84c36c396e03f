//! The queued-work runner: drives an agent runtime's queued turns so that
//! no session is ever driven twice at once, with every decision taken by
//! the core's in-flight machine ([`tether_core::inflight`]).
//!
//! Guarantees (the machine's, see its module docs; this module only runs
//! it):
//! - a session being driven or running a turn is never driven again
//!   concurrently;
//! - pokes that arrive meanwhile coalesce into exactly one re-drive after it;
//! - a global [`Poker::poke`] does not drive while anything is in flight;
//! - a completion that never comes is recovered after the configured lease;
//! - a `submit_next` call that has not returned when its lease expires is
//!   cancelled (its future dropped) before its session is driven again, so
//!   two calls for one session are never outstanding at once;
//! - a failed drive (an error or a panic in [`RunnerHandle::submit_next`])
//!   is retried with backoff, never dropped;
//! - work queued before the runner started is driven without a poke: by
//!   default [`Runner::start`] tells the machine it started
//!   ([`InFlight::on_start`](tether_core::inflight::InFlight::on_start)),
//!   and the machine asks for one global drive at once, a sweep that goes
//!   on until a global drive finds nothing
//!   ([`RunnerConfig::with_sweep_at_start`]`(false)` turns it off, for a
//!   runtime that pokes its queued sessions itself);
//! - an idle runner does not wake up, unless a recovery poll is configured,
//!   and then once every `recovery_poll`;
//! - [`Runner::shutdown`] is graceful (see [`Runner`]).
//!
//! One timer task serves the whole runner; a drive is a short task that
//! lives for one `submit_next` call.
//!
//! ```no_run
//! use async_trait::async_trait;
//! use tether_tokio::runner::{DriveError, DriveRequest, Runner, RunnerConfig, RunnerHandle, Submission};
//!
//! struct MyRuntime;
//!
//! #[async_trait]
//! impl RunnerHandle for MyRuntime {
//!     async fn submit_next(&self, req: DriveRequest) -> Result<Submission, DriveError> {
//!         // Pop the next queued turn of `req.session` (or of any session),
//!         // start it, and say which session it belongs to.
//!         match req.session {
//!             Some(s) => Ok(Submission::Submitted(s)),
//!             None => Ok(Submission::NothingReady),
//!         }
//!     }
//! }
//!
//! # async fn demo() {
//! let runner = Runner::start(MyRuntime, RunnerConfig::default());
//! let poker = runner.poker();
//! poker.poke_session("session-1").unwrap(); // work was queued
//! // ... when the turn ends (possibly before submit_next returned):
//! poker.complete_session("session-1").unwrap();
//! runner.shutdown().await;
//! # }
//! ```

mod config;
mod drive;
mod error;
mod handle;
mod poker;
mod service;

pub use config::{RunnerConfig, DEFAULT_RUNNER_SHUTDOWN_GRACE};
pub use error::RunnerError;
pub use handle::{traces_idle, DriveError, DriveRequest, RunnerHandle, Submission};
pub use poker::Poker;
pub use service::{Runner, RunnerShutdown};
pub use tether_core::inflight::{DriveReason, DriveToken, InFlightConfig, PokeOutcome};
