//! tether-tokio: runs tether's sans-IO machines on tokio and tonic.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;
pub mod fault;
pub mod metrics_names;
pub mod runtime;

#[cfg(feature = "gateway")]
pub mod gateway;
