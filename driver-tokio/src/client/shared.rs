//! What the client's tasks and handles share.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use super::channel::Channels;
use super::slots::CheckSlotGate;
use tether_core::policy_cache::{PolicyCache, PolicyCacheAction};
use tokio::sync::{watch, Notify};

use super::approvals::Approvals;
use super::config::TetherConfig;
use super::ops::Ops;
use super::sink::InvalidationSink;
use super::status::StatusBoard;
use super::verdict::Decision;
use crate::runtime::{Clock, Driven, TimerTask};

/// A cached gateway decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Cached {
    pub(crate) decision: Decision,
    pub(crate) reason: String,
    pub(crate) redactions: Vec<super::verdict::Redaction>,
}

pub(crate) struct Shared {
    pub(crate) config: TetherConfig,
    /// Who this runtime is now: `config.agent`, until a registration with
    /// a fresh key per registration gives the agent a new id.
    agent: RwLock<super::config::AgentIdentity>,
    /// The jitter seed: the configured one, or one drawn from the OS.
    pub(crate) seed: u64,
    pub(crate) channels: Channels,
    pub(crate) clock: Clock,
    pub(crate) cache: Arc<Driven<PolicyCache<Cached>>>,
    pub(crate) _cache_timer: TimerTask,
    pub(crate) approvals: Approvals,
    pub(crate) ops: Ops,
    pub(crate) slots: CheckSlotGate,
    pub(crate) sinks: RwLock<Vec<Arc<dyn InvalidationSink>>>,
    pub(crate) status: StatusBoard,
    /// Stops the stream tasks (sent after in-flight checks are done).
    pub(crate) shutdown: watch::Sender<bool>,
    /// Set when shutdown begins: new checks are refused.
    pub(crate) closing: AtomicBool,
    pub(crate) checks_in_flight: AtomicUsize,
    /// Checks begun since the start (reported in heartbeats).
    pub(crate) checks_total: AtomicU64,
    pub(crate) checks_done: Notify,
}

impl Shared {
    pub(crate) fn new(config: TetherConfig, channels: Channels) -> Arc<Self> {
        let clock = Clock::new();
        let cache = Driven::new(
            PolicyCache::new(config.cache.clone(), clock.now()),
            clock,
            |a: PolicyCacheAction| tracing::debug!(action = ?a, "policy cache"),
        );
        let cache_timer = cache.spawn_timer();
        let approvals = Approvals::new(config.approvals.clone(), clock);
        let status = StatusBoard::default();
        let ops = Ops::new(
            config.ops.clone(),
            &config.agent.agent_id,
            clock,
            status.clone(),
        );
        let seed = config.seed.unwrap_or_else(os_seed);
        let slots = CheckSlotGate::new(config.check_slots.clone(), clock, status.clone());
        Arc::new(Shared {
            agent: RwLock::new(config.agent.clone()),
            config,
            seed,
            channels,
            clock,
            cache,
            _cache_timer: cache_timer,
            approvals,
            ops,
            slots,
            sinks: RwLock::new(Vec::new()),
            status,
            shutdown: watch::channel(false).0,
            closing: AtomicBool::new(false),
            checks_in_flight: AtomicUsize::new(0),
            checks_total: AtomicU64::new(0),
            checks_done: Notify::new(),
        })
    }

    /// Who this runtime is now.
    pub(crate) fn agent(&self) -> super::config::AgentIdentity {
        self.agent.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The agent id this runtime has now.
    pub(crate) fn agent_id(&self) -> String {
        self.agent
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .agent_id
            .clone()
    }

    /// The agent has a new id (a fresh key per registration): calls and
    /// streams use it from now on.
    pub(crate) fn set_agent_id(&self, agent_id: &str) {
        self.agent
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .agent_id = agent_id.to_owned();
    }

    pub(crate) fn sinks(&self) -> Vec<Arc<dyn InvalidationSink>> {
        self.sinks.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// Attach the current credential to a request; the token used.
    pub(crate) async fn authorize<T>(&self, req: &mut tonic::Request<T>) -> Option<String> {
        let token = self.config.credentials.token().await;
        attach_token(req, token.as_deref());
        token
    }

    /// If the gateway refused the credential (`UNAUTHENTICATED`), ask the
    /// provider for a fresh one. Whether it did.
    pub(crate) async fn refresh_if_refused(
        &self,
        status: &tonic::Status,
        token: Option<&str>,
    ) -> bool {
        if status.code() != tonic::Code::Unauthenticated {
            return false;
        }
        metrics::counter!(crate::metrics_names::AUTH_REFRESHES).increment(1);
        tracing::warn!("gateway refused the credential (UNAUTHENTICATED); refreshing");
        self.config.credentials.refresh(token.unwrap_or("")).await;
        true
    }
}

/// A seed from the operating system's randomness (std's `RandomState`
/// keys come from it), different in every process and every call.
fn os_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x7e7e_7e7e);
    h.finish()
}

/// Put `token` in the request metadata as `x-aa-credential-token`.
pub(crate) fn attach_token<T>(req: &mut tonic::Request<T>, token: Option<&str>) {
    if let Some(v) = token.and_then(|t| t.parse().ok()) {
        req.metadata_mut().insert("x-aa-credential-token", v);
    }
}

/// Counts a check in flight for graceful shutdown.
pub(crate) struct CheckGuard<'a>(pub(crate) &'a Shared);

impl<'a> CheckGuard<'a> {
    pub(crate) fn enter(shared: &'a Shared) -> Self {
        shared.checks_in_flight.fetch_add(1, Ordering::SeqCst);
        shared.checks_total.fetch_add(1, Ordering::Relaxed);
        CheckGuard(shared)
    }
}

impl Drop for CheckGuard<'_> {
    fn drop(&mut self) {
        if self.0.checks_in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.checks_done.notify_waiters();
        }
    }
}
