//! What an agent tells the gateway about itself when it registers, and the
//! registration machine's settings.

use std::collections::HashMap;

use tether_core::registration::RegistrationConfig;

use super::key::AgentSigningKey;

/// How [`TetherConfig::with_registration`](crate::client::TetherConfig::with_registration)
/// registers the agent: its key (whose did:key becomes the agent id) and
/// what `Register` says about it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RegistrationSettings {
    /// The agent's key. Keep it (a file, see
    /// [`AgentSigningKey::load_or_create`]) to stay the same agent across
    /// restarts.
    pub key: AgentSigningKey,
    /// A human-readable name (default `"tether-agent"`).
    pub name: String,
    /// The agent framework (default `"tether"`).
    pub framework: String,
    /// The agent's version (default: this crate's).
    pub version: String,
    /// The tools the agent may call.
    pub tool_names: Vec<String>,
    /// Free-form labels.
    pub metadata: HashMap<String, String>,
    /// Retry, heartbeat and shutdown timing (the core's
    /// [`RegistrationConfig`]). Its `fresh_key_per_registration` is not
    /// used: a client keeps its key (and so its agent id) for its whole
    /// life; an ephemeral agent makes a fresh key per process with
    /// [`AgentSigningKey::generate`].
    pub machine: RegistrationConfig,
}

impl RegistrationSettings {
    /// Register with `key` and the defaults.
    pub fn new(key: AgentSigningKey) -> Self {
        RegistrationSettings {
            key,
            name: "tether-agent".into(),
            framework: "tether".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            tool_names: Vec::new(),
            metadata: HashMap::new(),
            machine: RegistrationConfig::default(),
        }
    }

    /// Register under this name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Declare these tools.
    pub fn with_tools<I, S>(mut self, tools: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tool_names = tools.into_iter().map(Into::into).collect();
        self
    }

    /// Add a label.
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Use these retry, heartbeat and shutdown settings.
    pub fn with_machine(mut self, machine: RegistrationConfig) -> Self {
        self.machine = machine;
        self
    }
}
