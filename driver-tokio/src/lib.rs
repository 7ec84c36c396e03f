//! tether-tokio: runs tether's sans-IO machines on tokio and tonic.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;
pub mod metrics_names;
pub mod runner;
pub mod runtime;
pub mod scheduler;

#[cfg(feature = "gateway")]
pub mod gateway;
