//! Where the client's credential comes from.
//!
//! Guarantees: the client asks the provider again whenever the gateway
//! answers `UNAUTHENTICATED` (a restarted gateway forgets its tokens), and
//! backs off, through the core's backoff, while the provider has none.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

/// Supplies the agent credential sent as `x-aa-credential-token`.
#[async_trait]
pub trait CredentialProvider: Send + Sync + 'static {
    /// The token to use now, or `None` if there is none yet.
    async fn token(&self) -> Option<String>;

    /// The gateway refused `token` with `UNAUTHENTICATED`: obtain a fresh
    /// one if you can. The default does nothing.
    async fn refresh(&self, rejected: &str) {
        let _ = rejected;
    }
}

/// A fixed token, replaceable at run time (e.g. after re-registration).
#[derive(Clone, Debug, Default)]
pub struct StaticToken {
    token: Arc<Mutex<Option<String>>>,
}

impl StaticToken {
    /// A provider that always returns `token`.
    pub fn new(token: impl Into<String>) -> Self {
        StaticToken {
            token: Arc::new(Mutex::new(Some(token.into()))),
        }
    }

    /// A provider with no token (credentials not required).
    pub fn none() -> Self {
        StaticToken::default()
    }

    /// Replace the token; streams pick it up on their next attempt.
    pub fn set(&self, token: Option<String>) {
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = token;
    }
}

#[async_trait]
impl CredentialProvider for StaticToken {
    async fn token(&self) -> Option<String> {
        self.token.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
