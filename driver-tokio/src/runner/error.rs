//! The runner's error type.

use tether_core::inflight::InFlightError;

/// What a [`Poker`](super::Poker) call can fail with.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum RunnerError {
    /// The runner was shut down.
    #[error("the runner is shut down")]
    Shutdown,
    /// The in-flight machine refused the report (stale token, a session
    /// with no drive, a duplicate); nothing changed.
    #[error("report refused: {0}")]
    Refused(InFlightError),
}
