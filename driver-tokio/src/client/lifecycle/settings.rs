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
    /// [`RegistrationConfig`]; its `fresh_key_per_registration` is
    /// replaced by the field below).
    pub machine: RegistrationConfig,
    /// An ephemeral agent: register with a fresh key (so a new agent id)
    /// whenever the gateway refuses the current one as already registered
    /// or forgets its token, instead of reporting the refusal and waiting
    /// (default `false`: the agent keeps its key and its id). See
    /// [`RegistrationSettings::with_fresh_key_per_registration`].
    pub fresh_key_per_registration: bool,
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
            fresh_key_per_registration: false,
        }
    }

    /// An ephemeral agent: after the gateway refuses its key as already
    /// registered (Agent Assembly's gateway does after a restart, which
    /// forgets tokens but keeps agents) or forgets its token, register
    /// with a fresh key, so under a new agent id. What op control held for
    /// the old id (a terminate, a pause) holds for the new one, and the
    /// cached decisions are dropped. For agents whose identity does not
    /// need to outlive a registration.
    pub fn with_fresh_key_per_registration(mut self) -> Self {
        self.fresh_key_per_registration = true;
        self
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
