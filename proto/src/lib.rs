//! Wire types of tether: the Agent Assembly gateway protocol and tether's
//! own admin service, generated at build time from the `.proto` files under
//! `proto/proto/` (by protox and prost, so no `protoc` is needed).
//!
//! The Agent Assembly packages keep the gateway's package, service, message
//! and field names, numbers and types exactly (see `WIRE.md`), so a tether
//! runtime and an Agent Assembly gateway, or an Agent Assembly runtime and
//! tether's reference gateway, understand each other.
//!
//! | protobuf package | Rust module | short alias |
//! |---|---|---|
//! | `assembly.common.v1` | [`assembly::common::v1`] | [`common`] |
//! | `assembly.gateway.v1` | [`assembly::gateway::v1`] | [`gateway`] |
//! | `assembly.policy.v1` | [`assembly::policy::v1`] | [`policy`] |
//! | `assembly.approval.v1` | [`assembly::approval::v1`] | [`approval`] |
//! | `assembly.agent.v1` | [`assembly::agent::v1`] | [`agent`] |
//! | `tether.admin.v1` | [`tether::admin::v1`] | [`admin`] |
//!
//! # Features
//!
//! - `grpc` (default): tonic client and server stubs for every service,
//!   in `xxx_service_client` and `xxx_service_server` modules beside the
//!   messages.
//! - `transport`: also the clients' `connect(endpoint)` constructors, which
//!   need tonic's channel.
//!
//! With `default-features = false` the crate holds only the prost messages
//! and does not depend on tonic.
//!
//! [`FILE_DESCRIPTOR_SET`] holds the encoded descriptors of every file, for
//! gRPC reflection.

/// The `Subscribe` response header in which tether's reference gateway
/// announces its lifetime epoch: a decimal `u64` that differs across gateway
/// restarts and stays the same for every stream of one gateway lifetime. A
/// client passes it to `Subscription::on_gateway_epoch`, so a restart is
/// noticed as the stream opens even when sequence numbers cannot show it
/// (gateways that send no such header, e.g. Agent Assembly, keep that
/// limitation). Not part of the Agent Assembly protocol: an extension that
/// both of tether's sides understand and other peers ignore.
pub const GATEWAY_EPOCH_HEADER: &str = "x-tether-gateway-epoch";

/// Generated code: rustdoc comes from the `.proto` comments, lints that
/// generated code cannot meet are allowed here.
macro_rules! generated {
    ($(#[$attr:meta])* $name:ident, $file:literal) => {
        $(#[$attr])*
        #[allow(
            missing_docs,
            unreachable_pub
        )]
        pub mod $name {
            include!(concat!(env!("OUT_DIR"), "/", $file));
        }
    };
}

/// Packages `assembly.*`: the Agent Assembly gateway protocol.
pub mod assembly {
    /// Package `assembly.common.*`: types shared by every service.
    pub mod common {
        generated!(
            /// Package `assembly.common.v1`: agent identity, policy decision
            /// and action type.
            v1,
            "assembly.common.v1.rs"
        );
    }

    /// Package `assembly.gateway.*`: the invalidation stream.
    pub mod gateway {
        generated!(
            /// Package `assembly.gateway.v1`: `InvalidationService`, whose
            /// bidirectional `Subscribe` stream carries policy invalidations
            /// and approval verdicts.
            v1,
            "assembly.gateway.v1.rs"
        );
    }

    /// Package `assembly.policy.*`: action checks and op control.
    pub mod policy {
        generated!(
            /// Package `assembly.policy.v1`: `PolicyService` with
            /// `CheckAction`, `BatchCheck` and the `OpControlStream` kill
            /// switch.
            v1,
            "assembly.policy.v1.rs"
        );
    }

    /// Package `assembly.approval.*`: the reviewer's side of approvals.
    pub mod approval {
        generated!(
            /// Package `assembly.approval.v1`: `ApprovalService` with
            /// `ListPending`, `Decide` and `WatchApprovals`.
            v1,
            "assembly.approval.v1.rs"
        );
    }

    /// Package `assembly.agent.*`: the agent lifecycle.
    pub mod agent {
        generated!(
            /// Package `assembly.agent.v1`: `AgentLifecycleService` with
            /// `RequestChallenge`, `Register`, `Heartbeat`, `Deregister` and
            /// the per-agent `ControlStream`, where credential tokens come
            /// from.
            v1,
            "assembly.agent.v1.rs"
        );
    }
}

/// Packages `tether.*`: tether's own services, not part of the Agent
/// Assembly protocol.
pub mod tether {
    /// Package `tether.admin.*`: operator actions.
    pub mod admin {
        generated!(
            /// Package `tether.admin.v1`: `AdminService`, for operator
            /// actions the Agent Assembly protocol has no RPC for (publish
            /// invalidations and verdicts, pause, resume, terminate and halt
            /// ops, list subscribers, status).
            v1,
            "tether.admin.v1.rs"
        );
    }
}

pub use assembly::agent::v1 as agent;
pub use assembly::approval::v1 as approval;
pub use assembly::common::v1 as common;
pub use assembly::gateway::v1 as gateway;
pub use assembly::policy::v1 as policy;
pub use tether::admin::v1 as admin;

/// Encoded `google.protobuf.FileDescriptorSet` of every `.proto` file of
/// this crate (with source info), for gRPC reflection services.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tether_descriptor.bin"));
