//! The machine's public answers: op states, check outcomes, waiter releases,
//! actions, timers and counters.

use crate::time::Timestamp;

use super::op_id::InvalidId;

/// The effective state of an op, ordered by severity
/// (`Running < Paused < Terminated`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpState {
    /// May run.
    Running,
    /// Must wait for a resume (or a terminate).
    Paused,
    /// Must never run again.
    Terminated,
}

/// Identifies one waiter (a check blocked on a paused op or an outage).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpWaiterId(pub(crate) u64);

impl OpWaiterId {
    /// A waiter id from its raw number (for drivers that keep ids as
    /// numbers; an id that was never issued is simply not found).
    pub const fn from_raw(raw: u64) -> Self {
        OpWaiterId(raw)
    }

    /// The raw number (unique among live waiters).
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// Why a check failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenyReason {
    /// The op, its agent or every op was terminated.
    Terminated,
    /// The control stream is down past the grace period and the outage
    /// policy is [`OutagePolicy::Deny`](super::OutagePolicy::Deny).
    StreamDown,
    /// The control stream is down past the grace period, the outage policy
    /// is [`OutagePolicy::Hold`](super::OutagePolicy::Hold), and the outage
    /// has outlasted the hold limit: no check is held any more until the
    /// stream is back and settled.
    HoldExpired,
    /// The op was paused and its entry evicted to make room: it cannot wait
    /// any more and fails closed until it is resumed.
    Evicted,
    /// The machine is saturated and fails closed (see [`Saturation`]).
    Saturated,
    /// The op would wait, but the waiter bound is reached.
    TooManyWaiters,
    /// The op id cannot name one op.
    InvalidOpId(InvalidId),
    /// The agent id cannot be addressed.
    InvalidAgent(InvalidId),
}

/// The answer to [`OpControl::check`](super::OpControl::check).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckOutcome {
    /// The op may run now.
    Run,
    /// The op must not run now or ever.
    Deny(DenyReason),
    /// The op must wait; a [`OpControlAction::Release`] for this waiter will
    /// say how the wait ended (exactly once, unless it is cancelled first).
    Wait(OpWaiterId),
}

/// How a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitOutcome {
    /// A resume made the op runnable: run.
    Resumed,
    /// The op was terminated: fail.
    Terminated,
    /// The machine saturated and its fail-closed cover took in the op (see
    /// [`Saturation::Ops`]): fail.
    Saturated,
    /// The paused op's entry was evicted: fail closed, never run.
    Evicted,
    /// A held op, and the outage policy changed to `Deny`: fail.
    OutageDeny,
    /// A held op, and the outage outlasted the hold limit: fail.
    HoldExpired,
    /// A held op, and the outage policy changed to `Allow`: run.
    OutageAllow,
    /// A held op, and the stream is back and settled: run.
    StreamRestored,
    /// The driver reported the op (or every op) finished: fail.
    OpFinished,
}

impl WaitOutcome {
    /// Whether the released op may run.
    pub const fn runs(self) -> bool {
        matches!(
            self,
            WaitOutcome::Resumed | WaitOutcome::OutageAllow | WaitOutcome::StreamRestored
        )
    }
}

/// What the op-control machine asks its driver to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpControlAction {
    /// End the wait of `waiter` with `outcome`.
    Release {
        /// The waiter.
        waiter: OpWaiterId,
        /// How its wait ended.
        outcome: WaitOutcome,
    },
    /// The stream has been down past the grace period: the outage policy is
    /// now in force (informational: logs, metrics).
    OutageStarted {
        /// When the stream went down.
        since: Timestamp,
    },
    /// The outage is over: the stream is back and settled (informational).
    OutageEnded {
        /// When the stream had gone down.
        since: Timestamp,
    },
}

/// Why the op-control machine wants to be woken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpControlTimer {
    /// The stream has been down for the grace period: the outage starts.
    OutageGrace,
    /// The stream came back and the settle window ends: held waiters run.
    RestoreSettle,
    /// The outage has lasted the hold limit: held waiters fail.
    HoldLimit,
}

/// Whether the machine lost track of a signal for want of room, and so fails
/// closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Saturation {
    /// Every signal received fitted.
    #[default]
    Clear,
    /// A plain-op pause or terminate found the op table and its overflow
    /// full: every op the machine holds nothing for (no entry, no marker)
    /// reads `Paused`, or `Terminated` once a lost signal was a terminate
    /// ([`OpControlStats::lost_terminate`]), and its checks are denied
    /// ([`DenyReason::Saturated`]) until
    /// [`OpControl::on_all_ops_finished`](super::OpControl::on_all_ops_finished).
    /// Ops the machine holds keep their exact state.
    Ops,
    /// An `agent:` pause or terminate found the agent table full: every op
    /// of every agent is treated as terminated, forever (agent entries are
    /// never evicted, so the lost one can never be known to be lifted).
    Fleet,
}

/// Counters and sizes, for metrics and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct OpControlStats {
    /// Plain op entries in the table (paused plus terminated).
    pub entries: usize,
    /// Of which paused.
    pub paused: usize,
    /// Of which terminated.
    pub terminated: usize,
    /// Evicted-paused markers.
    pub evicted_markers: usize,
    /// Overflow entries (paused plus terminated), kept exactly once the
    /// entries are full with nothing evictable.
    pub overflow: usize,
    /// `agent:` entries.
    pub agents: usize,
    /// The state of the `*` entry.
    pub all_ops: Option<OpState>,
    /// Live waiters plus releases not yet drained.
    pub waiters: usize,
    /// Finished op ids remembered (to drop late signals).
    pub finished_remembered: usize,
    /// Recent signals remembered (to drop exact repeats).
    pub recent_signals: usize,
    /// Exact repeats dropped.
    pub duplicates_dropped: u64,
    /// Exact repeats of a pause or terminate applied because they restricted
    /// their ops further.
    pub repeats_applied: u64,
    /// Unspecified or unknown signals ignored.
    pub ignored_signals: u64,
    /// Signals refused for an invalid op id.
    pub refused_signals: u64,
    /// Signals dropped because their op had finished.
    pub late_signals: u64,
    /// Paused entries evicted.
    pub evictions: u64,
    /// Pause or terminate signals covered by saturation instead of stored:
    /// the one that found no room, and any later one for an op without an
    /// entry while saturated.
    pub saturation_events: u64,
    /// Checks denied at the waiter bound.
    pub waiter_limit_hits: u64,
    /// Outages started (stream down past the grace period).
    pub outages: u64,
    /// Outages that outlasted the hold limit (each counted once).
    pub holds_expired: u64,
    /// Held waiters released with `HoldExpired`.
    pub held_released_expired: u64,
    /// Whether the machine is saturated.
    pub saturated: bool,
    /// Which saturated mode, if any.
    pub saturation: Saturation,
    /// Whether a signal lost to [`Saturation::Ops`] was a terminate: the
    /// cover then reads `Terminated` rather than `Paused`.
    pub lost_terminate: bool,
}
