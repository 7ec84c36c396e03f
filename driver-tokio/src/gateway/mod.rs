//! The reference gateway: enough of the Agent Assembly gateway for the demo,
//! the tests and small deployments.
//!
//! Start one with [`Gateway::builder`] and [`GatewayBuilder::serve`]; steer
//! it in-process with the [`AdminHandle`] of the [`RunningGateway`], or over
//! gRPC with `tether.admin.v1.AdminService`. It serves
//! `assembly.gateway.v1.InvalidationService`,
//! `assembly.policy.v1.PolicyService`, `assembly.approval.v1.ApprovalService`,
//! `tether.admin.v1.AdminService`, gRPC health and reflection.
//!
//! The pure state lives in [`hub`], [`ops`], [`rules`], [`auth`] and
//! [`desk`]; the other modules put it on the wire.

pub mod admin;
mod admin_service;
mod approval_service;
pub mod auth;
mod check;
pub mod credentials;
pub mod desk;
pub mod hub;
mod invalidation_service;
mod op_stream;
pub mod ops;
mod policy_service;
pub mod rules;
pub mod server;
mod shutdown;
mod state;

pub use admin::{AdminError, AdminHandle, GatewayStatus, SignalReport};
pub use server::{Gateway, GatewayBuilder, GatewayError, RunningGateway};
