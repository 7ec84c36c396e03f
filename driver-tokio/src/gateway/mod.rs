//! The reference gateway: enough of the Agent Assembly gateway for the demo,
//! the tests and small deployments.

pub mod auth;
pub mod desk;
pub mod hub;
pub mod ops;
pub mod rules;
