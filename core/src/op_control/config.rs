//! Op-control parameters and their defaults, each with the reason it was
//! chosen.
//!
//! Every bound may be set to any value, zero included: a zero bound is safe
//! (it only makes the machine refuse, deny or saturate earlier), never a
//! panic.

use core::time::Duration;

/// Op entries (paused or terminated plain op ids) the table holds: 4,096.
/// An entry exists only for an op an operator paused or terminated, and a
/// runtime has tens to hundreds of ops in flight; 4,096 is ten times that,
/// and costs at most about 1.5 MB with ids at [`DEFAULT_MAX_OP_ID_LEN`].
pub const DEFAULT_MAX_ENTRIES: usize = 4096;

/// Evicted-paused markers kept: 4,096, as many as entries. A paused entry
/// evicted to make room leaves its op id here so the op keeps checking as
/// not runnable (its waiters were failed closed); the same size as the table
/// means every entry can be evicted once before the machine saturates.
pub const DEFAULT_MAX_EVICTED: usize = 4096;

/// Overflow entries: 4,096. A pause or terminate that finds the table full
/// with nothing evictable (every marker used, or every entry terminated) is
/// kept here, exactly, so that no signal is lost before entries, markers and
/// overflow together (12,288 ops by default, about 4.5 MB at the longest
/// ids) are used; only past that does the machine saturate and fail closed.
pub const DEFAULT_MAX_OVERFLOW: usize = 4096;

/// `agent:{id}` entries: 1,024. These are never evicted (an agent terminate
/// is forever), and a stream only carries its own agents' signals, so a
/// runtime sees a handful; more than 1,024 distinct agent pauses or kills
/// means a broken or hostile gateway, and the machine then stops everything
/// (fleet saturation).
pub const DEFAULT_MAX_AGENTS: usize = 1024;

/// Waiters (checks blocked on a paused op or held by an outage), counting
/// releases not yet drained: 1,024. Each is a blocked call in the driver;
/// past this the check is denied (fail closed) rather than queued without
/// limit.
pub const DEFAULT_MAX_WAITERS: usize = 1024;

/// Recently finished op ids remembered: 4,096, as many as entries. A pause
/// or terminate that arrives for an op that already finished (a race with
/// the operator, or the reference gateway re-sending every op's state on
/// subscribe) is dropped instead of filling the table with entries that can
/// never be freed.
pub const DEFAULT_MAX_FINISHED: usize = 4096;

/// Recent `(sequence, op_id, signal)` triples remembered to drop exact
/// repeats: 1,024, the size of the gateway's replay and live buffers, so a
/// re-delivery after a reconnect falls inside the window.
pub const DEFAULT_DEDUPE_WINDOW: usize = 1024;

/// Longest op id accepted, in bytes: 256. A W3C `{trace_id}:{span_id}` is
/// 49 bytes; 256 leaves room for other id schemes and for `agent:` plus a
/// long agent id, while capping what one entry costs.
pub const DEFAULT_MAX_OP_ID_LEN: usize = 256;

/// How long the control stream may be down before checks on running ops
/// follow the [`OutagePolicy`]: 10 s. It covers a gateway restart or the
/// first four reconnects (1 + 1.6 + 2.56 + 4.1 ≈ 9.3 s of backoff) without
/// holding any call, and no op runs deaf to the kill switch for longer.
pub const DEFAULT_OUTAGE_GRACE: Duration = Duration::from_secs(10);

/// How long after the stream comes back from an outage the policy stays in
/// force: 1 s. The reference gateway sends the current state of every op
/// right after a subscribe; held calls wait that long so a pause or
/// terminate in that burst reaches them before they run. Against a gateway
/// that sends no snapshot it only adds a second to a call that already
/// waited through the outage.
pub const DEFAULT_RESTORE_SETTLE: Duration = Duration::from_secs(1);

/// How long [`OutagePolicy::Hold`] may hold checks once the outage policy
/// is in force: 50 s. With the 10 s [`DEFAULT_OUTAGE_GRACE`] a check waits
/// at most 60 s from the loss of the stream. A stream that stays down that
/// long is usually not coming back by itself (a gateway that forgot the
/// agent's credential refuses it forever), and an agent whose every call
/// hangs makes no progress and reports nothing; past this bound the outage
/// is reported as a denial naming it, so the caller can stop or alert.
pub const DEFAULT_HOLD_LIMIT: Duration = Duration::from_secs(50);

/// The outage policy by default: [`OutagePolicy::Hold`]. It is the safe side
/// that loses no work: a held call neither runs unsupervised (`Allow`) nor
/// fails work no operator stopped (`Deny`); it runs once the stream is back,
/// unless a signal then pauses or terminates it. The wait is bounded by
/// [`DEFAULT_HOLD_LIMIT`]: an outage that outlasts it turns `Hold` into a
/// denial for the rest of that outage.
pub const DEFAULT_OUTAGE_POLICY: OutagePolicy = OutagePolicy::Hold;

/// What a check on a *running* op does once the control stream has been
/// down longer than the grace period (paused and terminated ops are not
/// affected: they keep waiting or failing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "testkit", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub enum OutagePolicy {
    /// Wait until the stream is back (and has settled), then run; but once
    /// the outage has lasted the hold limit, fail (for the rest of that
    /// outage) instead of waiting.
    #[default]
    Hold,
    /// Fail the check at once.
    Deny,
    /// Run as if the stream were up.
    Allow,
}

/// Parameters of an [`OpControl`](super::OpControl).
///
/// Built from [`OpControlConfig::default`] and its `with_` methods (fields may
/// be added, so outside this crate it cannot be written as a literal).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpControlConfig {
    /// Bound on paused or terminated plain op entries.
    pub max_entries: usize,
    /// Bound on evicted-paused markers.
    pub max_evicted: usize,
    /// Bound on overflow entries (signals kept exactly once the entries are
    /// full with nothing evictable).
    pub max_overflow: usize,
    /// Bound on `agent:{id}` entries.
    pub max_agents: usize,
    /// Bound on waiters, undrained releases included.
    pub max_waiters: usize,
    /// Bound on remembered finished op ids.
    pub max_finished: usize,
    /// How many recent signals are remembered to drop exact repeats.
    pub dedupe_window: usize,
    /// Longest op id accepted, in bytes.
    pub max_op_id_len: usize,
    /// How long the stream may be down before the outage policy applies.
    pub outage_grace: Duration,
    /// How long the outage policy stays in force after the stream is back.
    pub restore_settle: Duration,
    /// What a check on a running op does during an outage.
    pub outage_policy: OutagePolicy,
    /// How long, once the outage policy is in force, [`OutagePolicy::Hold`]
    /// holds checks before it fails them for the rest of that outage.
    pub hold_limit: Duration,
}

impl Default for OpControlConfig {
    fn default() -> Self {
        OpControlConfig {
            max_entries: DEFAULT_MAX_ENTRIES,
            max_evicted: DEFAULT_MAX_EVICTED,
            max_overflow: DEFAULT_MAX_OVERFLOW,
            max_agents: DEFAULT_MAX_AGENTS,
            max_waiters: DEFAULT_MAX_WAITERS,
            max_finished: DEFAULT_MAX_FINISHED,
            dedupe_window: DEFAULT_DEDUPE_WINDOW,
            max_op_id_len: DEFAULT_MAX_OP_ID_LEN,
            outage_grace: DEFAULT_OUTAGE_GRACE,
            restore_settle: DEFAULT_RESTORE_SETTLE,
            outage_policy: DEFAULT_OUTAGE_POLICY,
            hold_limit: DEFAULT_HOLD_LIMIT,
        }
    }
}

impl OpControlConfig {
    /// The same, holding at most `max_entries` paused or terminated plain op entries.
    pub fn with_max_entries(mut self, max_entries: usize) -> Self {
        self.max_entries = max_entries;
        self
    }

    /// The same, keeping at most `max_evicted` evicted-paused markers.
    pub fn with_max_evicted(mut self, max_evicted: usize) -> Self {
        self.max_evicted = max_evicted;
        self
    }

    /// The same, keeping at most `max_overflow` overflow entries.
    pub fn with_max_overflow(mut self, max_overflow: usize) -> Self {
        self.max_overflow = max_overflow;
        self
    }

    /// The same, holding at most `max_agents` `agent:{id}` entries.
    pub fn with_max_agents(mut self, max_agents: usize) -> Self {
        self.max_agents = max_agents;
        self
    }

    /// The same, holding at most `max_waiters` waiters (undrained releases included).
    pub fn with_max_waiters(mut self, max_waiters: usize) -> Self {
        self.max_waiters = max_waiters;
        self
    }

    /// The same, remembering at most `max_finished` finished op ids.
    pub fn with_max_finished(mut self, max_finished: usize) -> Self {
        self.max_finished = max_finished;
        self
    }

    /// The same, remembering the last `dedupe_window` signals to drop exact repeats.
    pub fn with_dedupe_window(mut self, dedupe_window: usize) -> Self {
        self.dedupe_window = dedupe_window;
        self
    }

    /// The same, accepting op ids of at most `max_op_id_len` bytes.
    pub fn with_max_op_id_len(mut self, max_op_id_len: usize) -> Self {
        self.max_op_id_len = max_op_id_len;
        self
    }

    /// The same, applying the outage policy once the stream has been down `outage_grace`.
    pub fn with_outage_grace(mut self, outage_grace: Duration) -> Self {
        self.outage_grace = outage_grace;
        self
    }

    /// The same, keeping the outage policy in force `restore_settle` after the stream is back.
    pub fn with_restore_settle(mut self, restore_settle: Duration) -> Self {
        self.restore_settle = restore_settle;
        self
    }

    /// The same, with `outage_policy` as what a check on a running op does during an outage.
    pub fn with_outage_policy(mut self, outage_policy: OutagePolicy) -> Self {
        self.outage_policy = outage_policy;
        self
    }

    /// The same, holding checks under [`OutagePolicy::Hold`] for at most
    /// `hold_limit` after the outage policy came in force: from then until
    /// the outage ends, held checks are released and new ones are denied.
    pub fn with_hold_limit(mut self, hold_limit: Duration) -> Self {
        self.hold_limit = hold_limit;
        self
    }
}
