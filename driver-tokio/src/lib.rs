//! tether-tokio: runs tether's sans-IO machines on tokio and tonic.
//!
//! The crate an agent runtime depends on: the runtime [`client`] (policy
//! checks, the invalidation and op-control streams, approvals), the
//! queued-work [`runner`] and the periodic-job [`scheduler`]. It holds no
//! server and no command-line code: the reference gateway is the
//! `tether-gateway` crate and the `tether` command is `tether-cli`.
//!
//! # Features
//!
//! - `sqlite` (default): `scheduler::SqliteStore`, a durable job store on a
//!   bundled SQLite (a C build). Without it the scheduler keeps jobs in
//!   memory or in a store of your own.
//! - `tls-ring` (default): `https://` gateways through rustls with the ring
//!   provider and the webpki root certificates.
//! - `tls-aws-lc`: the same with the aws-lc-rs provider.
//!
//! With `default-features = false` the client speaks plain HTTP/2 (`http://`
//! gateways, or a `tonic::transport::Channel` you build yourself).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod client;
pub mod metrics_names;
pub mod runner;
pub mod runtime;
pub mod scheduler;

pub use tether_proto::GATEWAY_EPOCH_HEADER;
