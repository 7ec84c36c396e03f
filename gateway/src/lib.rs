//! tether's reference gateway: the Agent Assembly gateway protocol served
//! by tonic, embeddable in tests, demos and deployments of up to about
//! 10,000 agents per gateway at its defaults.
//!
//! It guarantees:
//! - each invalidation subscriber (`assembly_id`) gets its own sequence
//!   from 1, a replay of every buffered event after its `last_seq_seen`,
//!   then live events; cumulative acks trim its replay ring;
//! - a subscriber that falls behind has its stream closed with
//!   `UNAVAILABLE` so it resubscribes, never silently skipped;
//! - a client's half-close of `Subscribe` ends nothing but its acks: the
//!   event stream stays open until the gateway ends it or the client
//!   cancels it;
//! - every `Subscribe` response announces this gateway lifetime's epoch in
//!   [`tether_proto::GATEWAY_EPOCH_HEADER`];
//! - events and approvals are scoped to the caller's team;
//! - every limit is a [`GatewayBuilder`] setting with its default stated,
//!   and hitting one is an error to that caller only.
//!
//! Start one with [`Gateway::builder`] and [`GatewayBuilder::serve`]; steer
//! it in-process with the [`AdminHandle`] of the [`RunningGateway`], or over
//! gRPC with `tether.admin.v1.AdminService`. It serves
//! `assembly.gateway.v1.InvalidationService`,
//! `assembly.policy.v1.PolicyService`, `assembly.approval.v1.ApprovalService`,
//! `assembly.agent.v1.AgentLifecycleService` (where agents register for
//! their tokens; see [`lifecycle`]), `tether.admin.v1.AdminService`, gRPC
//! health and reflection.
//!
//! The pure state lives in [`hub`], [`ops`], [`rules`], [`auth`],
//! [`desk`] and [`lifecycle`]; the other modules put it on the wire.
//!
//! Semantics worth knowing (each module states its own guarantees):
//! - **Teams.** A caller's team is its token's team; a caller without a
//!   (known) token on an open gateway is in team `""`. An invalidation
//!   subscriber, and an approval filed by a CheckAction, take the caller's
//!   team, so a verdict reaches exactly the subscribers of the team that
//!   asked, on an open gateway too. An `assembly_id` stays in the team it
//!   first subscribed with.
//! - **Rule keys.** A tool call is matched by its tool name; any other
//!   action by `action:{kind}` (for example `action:llm_call`), so rules
//!   can name them and the table's default covers them otherwise.
//! - **Stream ends.** Every gateway-initiated end of a stream (a lagging or
//!   replaced subscriber, shutdown) is `UNAVAILABLE` with a message saying
//!   why, so clients reconnect; the one exception is an agent's own
//!   `Deregister`, which ends its `ControlStream` cleanly. A client's clean
//!   half-close of `Subscribe` only stops ack reading; a client message
//!   that does not decode ends the stream with tonic's prost codec status
//!   (`INTERNAL`). The server-streaming calls (`OpControlStream`,
//!   `WatchApprovals`, `ControlStream`) have no client messages after the
//!   request, so the client's side plays no part in how they end.
//! - **Operators.** `AdminService` needs `x-tether-admin-token` when an
//!   admin token is configured; the reviewer's `ApprovalService` needs it
//!   too only when [`GatewayBuilder::approvals_need_admin_token`] is set.

pub mod admin;
mod admin_service;
mod approval_service;
pub mod auth;
mod check;
pub mod credentials;
pub mod desk;
pub mod hub;
mod invalidation_service;
pub mod lifecycle;
mod op_stream;
pub mod ops;
mod policy_service;
pub mod rules;
pub mod server;
mod shutdown;
mod state;

pub use admin::{AdminError, AdminHandle, GatewayStatus, SignalReport};
pub use lifecycle::{AgentCommandReport, RegisteredAgent, Reregistration};
pub use server::{Gateway, GatewayBuilder, GatewayError, RunningGateway};
