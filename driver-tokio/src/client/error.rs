//! The client's error type.

/// What can go wrong in the client.
#[derive(Debug, thiserror::Error)]
pub enum TetherError {
    /// The configuration cannot work (bad URL, bad TLS material).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The gateway answered CheckAction with an error.
    #[error("gateway error: {0}")]
    Gateway(#[from] tonic::Status),
    /// The gateway answered something tether cannot interpret.
    #[error("gateway protocol error: {0}")]
    Protocol(String),
    /// A bound was hit (too many waiters); the caller is failed closed.
    #[error("limit reached: {0}")]
    Limit(String),
    /// The client was shut down.
    #[error("the tether client is shut down")]
    Shutdown,
}
