//! The state every service of one gateway shares, and the operations more
//! than one service performs on it (deciding an approval, signalling an op,
//! counting open streams).
//!
//! Guarantees: one `Shared` per running gateway, so the gRPC services and
//! the in-process [`AdminHandle`](super::admin::AdminHandle) see and change
//! the same state; open streams are counted by guards that release their
//! slot when the stream is dropped, however it ends; the number of open
//! streams of each kind is bounded.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tether_proto::gateway::invalidation_event::Payload;
use tether_proto::gateway::{ApprovalResolved, Decision as WireVerdict};

use super::auth::TokenTable;
use super::desk::{ApprovalDesk, DeskError, PendingApproval, Review};
use super::hub::InvalidationHub;
use super::lifecycle::Lifecycle;
use super::ops::{AgentKey, OpBoard, OpRecord, OpSignal, SignalError};
use super::rules::RuleTable;
use super::shutdown::Shutdown;

/// Bounds and timings the services apply.
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    /// Invalidation streams open at once.
    pub(crate) max_invalidation_streams: usize,
    /// Op-control streams open at once.
    pub(crate) max_op_streams: usize,
    /// Approval watch streams open at once.
    pub(crate) max_watch_streams: usize,
    /// Requests in one `BatchCheck`.
    pub(crate) max_batch: usize,
    /// Longest accepted `assembly_id`, in bytes.
    pub(crate) max_id_len: usize,
    /// How long a new `Subscribe` stream may take to send its first message.
    pub(crate) handshake_timeout: Duration,
}

/// Counts open streams of one kind, up to a bound.
#[derive(Debug, Default)]
pub(crate) struct Gauge {
    open: Arc<AtomicUsize>,
}

/// One counted open stream; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct GaugeSlot {
    open: Arc<AtomicUsize>,
}

impl Gauge {
    /// Take a slot, unless `max` are taken.
    pub(crate) fn try_acquire(&self, max: usize) -> Option<GaugeSlot> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| GaugeSlot {
                open: self.open.clone(),
            })
    }

    /// Slots taken now.
    pub(crate) fn get(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

impl Drop for GaugeSlot {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The agents of the open op-control streams, so a signal can report how
/// many streams it reached.
#[derive(Debug, Default)]
pub(crate) struct OpStreams {
    inner: Arc<Mutex<OpStreamTable>>,
}

/// The open op-control streams by id: each one's agent and the latch that
/// asks it to end.
type OpStreamTable = (u64, BTreeMap<u64, (AgentKey, Arc<tokio::sync::Notify>)>);

/// One registered op-control stream; dropping it unregisters it.
#[derive(Debug)]
pub(crate) struct OpStreamSlot {
    inner: Arc<Mutex<OpStreamTable>>,
    id: u64,
    /// Notified when an operator asks this stream to end.
    pub(crate) close: Arc<tokio::sync::Notify>,
}

impl OpStreams {
    /// Register a stream of `agent`, unless `max` are open.
    pub(crate) fn register(&self, agent: AgentKey, max: usize) -> Option<OpStreamSlot> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if g.1.len() >= max {
            return None;
        }
        g.0 += 1;
        let id = g.0;
        let close = Arc::new(tokio::sync::Notify::new());
        g.1.insert(id, (agent, close.clone()));
        Some(OpStreamSlot {
            inner: self.inner.clone(),
            id,
            close,
        })
    }

    /// Open streams whose agent `record` covers.
    pub(crate) fn covered_by(&self, record: &OpRecord) -> usize {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.1.values().filter(|(a, _)| record.covers(a)).count()
    }

    /// Ask every open stream of `agent` to end; returns how many were asked.
    /// The latch keeps the request, so a stream between two polls still
    /// sees it.
    pub(crate) fn close_agent(&self, agent: &AgentKey) -> usize {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut n = 0;
        for (a, close) in g.1.values() {
            if a == agent {
                close.notify_one();
                n += 1;
            }
        }
        n
    }

    /// Open streams.
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).1.len()
    }
}

impl Drop for OpStreamSlot {
    fn drop(&mut self) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.1.remove(&self.id);
    }
}

/// A lifetime epoch that differs across gateway restarts (and between
/// gateways of one process): the nanoseconds since the Unix epoch at start,
/// hashed with a randomly keyed hasher (keys from the OS, different for every
/// `RandomState`).
fn lifetime_epoch() -> u64 {
    use std::hash::BuildHasher;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    std::collections::hash_map::RandomState::new().hash_one(nanos)
}

/// Everything one gateway's services share.
pub(crate) struct Shared {
    pub(crate) hub: InvalidationHub<Arc<Payload>>,
    pub(crate) ops: OpBoard,
    pub(crate) desk: ApprovalDesk,
    pub(crate) rules: RuleTable,
    pub(crate) tokens: TokenTable,
    pub(crate) limits: Limits,
    pub(crate) shutdown: Shutdown,
    pub(crate) invalidation_streams: Gauge,
    /// `Subscribe` streams accepted since start.
    pub(crate) invalidation_streams_opened: AtomicU64,
    pub(crate) watch_streams: Gauge,
    pub(crate) op_streams: OpStreams,
    /// Registration nonces, registered agents and their control streams.
    pub(crate) lifecycle: Lifecycle,
    pub(crate) started_at_unix_ms: u64,
    /// This gateway lifetime's epoch, announced on every `Subscribe`
    /// ([`tether_proto::GATEWAY_EPOCH_HEADER`]).
    pub(crate) epoch: u64,
}

impl Shared {
    /// Fresh state.
    pub(crate) fn new(
        hub: InvalidationHub<Arc<Payload>>,
        ops: OpBoard,
        desk: ApprovalDesk,
        rules: RuleTable,
        tokens: TokenTable,
        limits: Limits,
        lifecycle: Lifecycle,
    ) -> Self {
        Shared {
            hub,
            ops,
            desk,
            rules,
            tokens,
            limits,
            shutdown: Shutdown::new(),
            invalidation_streams: Gauge::default(),
            invalidation_streams_opened: AtomicU64::new(0),
            watch_streams: Gauge::default(),
            op_streams: OpStreams::default(),
            lifecycle,
            started_at_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                .unwrap_or(0),
            epoch: lifetime_epoch(),
        }
    }

    /// Queue `ApprovalResolved{request_id, decision}` for the subscribers
    /// of `team_id`; returns how many.
    pub(crate) fn publish_verdict(
        &self,
        team_id: &str,
        request_id: &str,
        decision: WireVerdict,
    ) -> usize {
        self.hub.publish(
            Some(team_id),
            Arc::new(Payload::ApprovalResolved(ApprovalResolved {
                request_id: request_id.to_owned(),
                decision: decision as i32,
            })),
        )
    }

    /// Record a reviewer's verdict (releasing held CheckAction calls) and
    /// tell the approval's team on the invalidation stream.
    pub(crate) fn decide(
        &self,
        request_id: &str,
        verdict: Review,
    ) -> Result<PendingApproval, DeskError> {
        let approval = self.desk.decide(request_id, verdict)?;
        let wire = match verdict {
            Review::Approved => WireVerdict::Approved,
            Review::Denied => WireVerdict::Denied,
        };
        self.publish_verdict(&approval.team_id, &approval.request_id, wire);
        Ok(approval)
    }

    /// Send `signal` for `op_id`; returns the record sent and how many open
    /// op-control streams it reached.
    pub(crate) fn signal(
        &self,
        op_id: &str,
        agent: Option<AgentKey>,
        signal: OpSignal,
    ) -> Result<(OpRecord, usize), SignalError> {
        let record = self.ops.signal(op_id, agent, signal)?;
        let reached = self.op_streams.covered_by(&record);
        Ok((record, reached))
    }
}
