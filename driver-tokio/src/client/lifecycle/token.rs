//! The credential a registration issued, as the client's
//! [`CredentialProvider`].
//!
//! Guarantees: streams and calls use the newest token the gateway issued,
//! and none while the agent is not registered (they back off instead of
//! presenting a token the gateway has forgotten); a refusal of the current
//! token reaches the registration machine (once per token is enough: the
//! machine counts a generation's loss once), a refusal of an older token
//! changes nothing.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tether_core::registration::Generation;
use tokio::sync::watch;

use crate::client::credentials::CredentialProvider;

/// The registration's token, shared by the client and the lifecycle task.
#[derive(Clone, Debug)]
pub(crate) struct RegisteredToken {
    current: Arc<Mutex<Option<(String, Generation)>>>,
    refused: Arc<watch::Sender<Option<Generation>>>,
}

impl RegisteredToken {
    pub(crate) fn new() -> Self {
        RegisteredToken {
            current: Arc::new(Mutex::new(None)),
            refused: Arc::new(watch::channel(None).0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(String, Generation)>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The gateway issued `token` as `generation`.
    pub(crate) fn issue(&self, generation: Generation, token: String) {
        *self.lock() = Some((token, generation));
    }

    /// The gateway no longer knows the token of `generation`.
    pub(crate) fn withdraw(&self, generation: Generation) {
        let mut current = self.lock();
        if current.as_ref().is_some_and(|(_, g)| *g == generation) {
            *current = None;
        }
    }

    /// The current token and its generation.
    pub(crate) fn current(&self) -> Option<(String, Generation)> {
        self.lock().clone()
    }

    /// Changes whenever a call reports the current token refused.
    pub(crate) fn refusals(&self) -> watch::Receiver<Option<Generation>> {
        self.refused.subscribe()
    }
}

#[async_trait]
impl CredentialProvider for RegisteredToken {
    async fn token(&self) -> Option<String> {
        self.lock().as_ref().map(|(t, _)| t.clone())
    }

    async fn refresh(&self, rejected: &str) {
        let generation = match &*self.lock() {
            Some((t, g)) if t == rejected => *g,
            _ => return,
        };
        self.refused.send_if_modified(|r| {
            let fresh = *r != Some(generation);
            *r = Some(generation);
            fresh
        });
    }
}
