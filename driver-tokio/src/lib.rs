//! tether-tokio: runs tether's sans-IO machines on tokio and tonic.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;
pub mod fault;
pub mod metrics_names;
pub mod runner;
pub mod runtime;
pub mod scheduler;

/// The `Subscribe` response header in which tether's reference gateway
/// announces its lifetime epoch: a decimal `u64` that differs across gateway
/// restarts and stays the same for every stream of one gateway lifetime. The
/// client passes it to `Subscription::on_gateway_epoch`, so a restart is
/// noticed as the stream opens even when sequence numbers cannot show it
/// (gateways that send no such header, e.g. Agent Assembly, keep that
/// limitation).
pub const GATEWAY_EPOCH_HEADER: &str = "x-tether-gateway-epoch";

#[cfg(feature = "gateway")]
pub mod gateway;
