//! The scheduler's error type.

use tether_core::tick::TickError;

use super::store::StoreError;

/// What a [`Scheduler`](super::Scheduler) call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchedulerError {
    /// The scheduler was shut down.
    #[error("the scheduler is shut down")]
    Shutdown,
    /// No [`TickJob`](super::TickJob) is registered for this kind.
    #[error("no job kind {0:?} is registered")]
    UnknownKind(String),
    /// The schedule refused the operation (unknown or disabled job, zero
    /// interval, too many jobs); nothing changed.
    #[error("refused by the schedule")]
    Refused(#[source] TickError),
    /// The store failed. For a change of a job, the change is live in the
    /// running scheduler but may not survive a restart.
    #[error("job store failed")]
    Store(#[from] StoreError),
}
