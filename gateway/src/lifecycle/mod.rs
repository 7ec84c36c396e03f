//! The agent lifecycle (`assembly.agent.v1.AgentLifecycleService`): how an
//! agent proves it holds the key its did:key names, obtains the credential
//! token every other service asks for, heartbeats, gives the token back,
//! and hears the operator's commands on its control stream.
//!
//! Guarantees:
//! - a token is issued only to the holder of the key: the agent id must be
//!   the key's did:key, and `Register` must carry the key's Ed25519
//!   signature of a fresh 32-byte nonce from the OS that was issued for
//!   that agent and key, is used once and expires (60 s by default);
//! - an issued token is bound in the gateway's token table, so every other
//!   service accepts it exactly like a configured one, until the agent
//!   deregisters or registers again (which revokes it);
//! - `Heartbeat.should_suspend` is a level: true from an operator's
//!   [`suspend_agent`](crate::AdminHandle::suspend_agent) until
//!   [`resume_agent`](crate::AdminHandle::resume_agent);
//!   `Heartbeat.policy_updated` is true on the first heartbeat after a
//!   [`notify_policy_update`](crate::AdminHandle::notify_policy_update) or a
//!   [`publish_invalidation`](crate::AdminHandle::publish_invalidation)
//!   naming the agent (or every agent), for agents the lifecycle holds
//!   (registered, streaming or suspended); for any other agent it is false;
//! - operator commands go to the agent's one open control stream, once
//!   each and in order; with none open they are not queued: the suspend
//!   level and the policy flag are what remains, and a stream opened while
//!   suspended starts with a `SuspendCommand`;
//! - outstanding nonces, held agents and each stream's buffer are bounded
//!   (see [`GatewayBuilder`](crate::GatewayBuilder)); everything is in
//!   memory, so a restarted gateway has forgotten every registration.

pub mod challenges;
mod control_stream;
mod proof;
mod registry;
mod service;

use std::time::Duration;

pub use challenges::{ChallengeBook, DEFAULT_CHALLENGE_TTL, DEFAULT_MAX_CHALLENGES};
pub use registry::{
    AgentCommandReport, RegisteredAgent, Reregistration, DEFAULT_CONTROL_BUFFER, DEFAULT_MAX_AGENTS,
};

pub(crate) use registry::{AgentRegistry, Command, RegistryError};
pub(crate) use service::LifecycleSvc;

/// How often agents are told to heartbeat, by default: 30 s.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);

/// The `assigned_policy` every registration is answered with: the gateway
/// has one rule table.
pub const ASSIGNED_POLICY: &str = "default";

/// The lifecycle's share of a gateway's state.
#[derive(Debug)]
pub(crate) struct Lifecycle {
    /// Outstanding registration nonces.
    pub(crate) challenges: ChallengeBook,
    /// Registered, streaming and suspended agents.
    pub(crate) agents: AgentRegistry,
    /// What `RegisterResponse.heartbeat_interval_sec` says.
    pub(crate) heartbeat_interval: Duration,
}
