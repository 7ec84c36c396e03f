//! Invalidation sinks: user caches that the invalidation stream keeps fresh
//! beside the built-in policy cache.
//!
//! Guarantees: every sink sees every applied event once, in sequence order,
//! after the built-in cache; a gateway restart or an unreplayable gap calls
//! `invalidate_all` before the event that revealed it.

use async_trait::async_trait;

/// Why every cached decision must be dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidateAllReason {
    /// The gateway restarted: its sequence started again.
    GatewayRestart,
    /// The gateway could not replay what the client missed.
    UnreplayableGap,
    /// The agent's lifecycle said its policy changed (a `PolicyUpdateCommand`
    /// or a heartbeat answer with `policy_updated`).
    AgentPolicyUpdated,
}

/// A policy invalidation as applied from the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyChange {
    /// The agent whose policy changed; `None` for every agent.
    pub agent_id: Option<String>,
    /// The new policy version.
    pub policy_version: u64,
    /// The stream sequence number it arrived with.
    pub seq: u64,
}

/// A cache that the invalidation stream keeps fresh.
#[async_trait]
pub trait InvalidationSink: Send + Sync + 'static {
    /// A policy changed: drop what it covers.
    async fn on_policy_change(&self, change: &PolicyChange);

    /// Drop everything.
    async fn invalidate_all(&self, reason: InvalidateAllReason);
}
