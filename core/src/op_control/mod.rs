//! Op control, the kill switch: per op id, running, paused or terminated.
//!
//! Guarantees (named invariants, checked after every step by
//! `testkit::op_control`, `tests/prop_op_control.rs` and the `op_control`
//! fuzz target):
//! - `OP_TERMINATE_ABSORBING`: once an op is terminated, by its own id, by
//!   `agent:{id}` or by `*`, its state is `Terminated` and every check is
//!   denied, forever: no pause, resume, reconnect, eviction, repeat or
//!   replay lifts it. The only exit is the driver reporting that the op
//!   itself finished (`on_op_finished`, `on_all_ops_finished`), which
//!   forgets its own entry; `*` and `agent:` terminates are never forgotten.
//! - `OP_TERMINATE_RELEASES_WAITERS`: a terminate releases every waiter it
//!   covers at once, with `Terminated`.
//! - `OP_PAUSE_HOLDS`: a paused op (own, agent or `*` pause) never runs and
//!   no waiter of it is released to run, until a resume signal lifts every
//!   pause covering it: not stream down or up, not time, not eviction.
//!   A resume of `*` lifts only the `*` pause.
//! - `OP_STATE_EXACT`: an op's state is the most severe of its own entry,
//!   its agent's and `*` (`Terminated > Paused > Running`); short of
//!   saturation it is exactly what the signals applied say.
//! - `OP_EVICTION_FAILS_CLOSED`: only paused entries are evicted (oldest
//!   first, only when the table is full); their waiters are released with
//!   `Evicted` (never run), and the op keeps checking as not runnable
//!   (`Deny(Evicted)`) through a marker until it is resumed or finishes.
//! - `OP_WAITER_RELEASED_ONCE`: every waiter is released exactly once, and
//!   a cancelled waiter never (`cancel` leaves nothing behind).
//! - `OP_BOUNDED`: op entries, evicted markers, overflow entries, agent
//!   entries, waiters
//!   (undrained releases included), remembered finished ops and remembered
//!   signals each stay within their configured bound; at most one outage
//!   notice is pending.
//! - `OP_OVERFLOW_EXACT`: a pause or terminate that finds the entries full
//!   with nothing evictable (every entry terminated, or every marker used)
//!   is kept exactly in the overflow: its op's state stays exact, and a
//!   resume or the op's finish lifts it as it would an entry. Nothing is
//!   lost, and nothing fails closed, before the overflow too is full.
//! - `OP_SATURATION_FAILS_CLOSED`: a pause or terminate that finds no room
//!   even there (or an `agent:` one that finds the agent table full) is
//!   never dropped: the machine saturates and covers it by failing closed.
//!   [`Saturation::Ops`]: every op the machine holds nothing for (no entry,
//!   no marker) is covered (and gains no entry): it reads `Paused`, or
//!   `Terminated` once a lost signal was a terminate, and its checks are
//!   denied `Saturated`; ops it holds keep their own exact state (a paused
//!   op never reads `Terminated` because of saturation). The cover lasts
//!   until `on_all_ops_finished`, because the lost signal's op is unknown
//!   and lifting it earlier could lift a pause or a terminate that no
//!   resume ended. [`Saturation::Fleet`] (agent table full): every op is
//!   `Terminated`, forever.
//! - `OP_OUTAGE_POLICY`: from `outage_grace` after the stream went down
//!   (construction counts as down) until `restore_settle` after it came
//!   back, a check on a running op follows the [`OutagePolicy`] (`Hold`
//!   only within its bound, see `OP_HOLD_BOUNDED`); otherwise it runs. A
//!   timer fires at both instants.
//! - `OP_HOLD_BOUNDED`: a waiter held by the outage policy is released no
//!   later than `hold_limit` after the outage began (the policy came in
//!   force), with `HoldExpired` (never run); from then until the outage
//!   ends (restore settled) no check on a running op is held: under `Hold`
//!   it is denied with `HoldExpired`. A timer fires at that instant; a
//!   later outage starts a budget of its own. Paused ops are not affected
//!   (`OP_PAUSE_HOLDS`).
//! - `OP_HOLD_RELEASED_ON_RESTORE`: held waiters run (`StreamRestored`) when
//!   the settle window ends, except those a signal paused (they wait for a
//!   resume) or terminated (released `Terminated`) meanwhile.
//! - `OP_DUPLICATE_DROPPED`: an exact repeat of a recent
//!   `(sequence, op_id, signal)` is dropped and counted, except a repeated
//!   pause or terminate that would restrict its ops further, which is
//!   applied: after a gateway restart the counter may start again, and a
//!   repeat must never leave an op more open than applying it would. Gaps
//!   are normal; the sequence is never a resume point nor an order.
//! - `OP_UNSPECIFIED_IGNORED`: `UNSPECIFIED` and unknown signal values change
//!   nothing and are counted.
//! - `OP_INVALID_ID_REFUSED`: an empty, over-long or `agent:`-without-agent
//!   op id is refused with a typed reason (a check is denied); never a
//!   panic.
//!
//! Layout: [`config`](OpControlConfig) (bounds and defaults), `op_id`
//! (reserved ids), `signal`, `outcome` (public answers), `table` (bounded
//! op entries, evicted markers and overflow), `waiters`, `dedupe` (recent signals),
//! `finished` (recently finished ops), `link` (stream health and outage
//! timers) and `machine` ([`OpControl`]).

mod config;
mod dedupe;
mod finished;
mod link;
mod machine;
mod op_id;
mod outcome;
mod signal;
mod table;
mod waiters;

pub use config::{
    OpControlConfig, OutagePolicy, DEFAULT_DEDUPE_WINDOW, DEFAULT_HOLD_LIMIT, DEFAULT_MAX_AGENTS,
    DEFAULT_MAX_ENTRIES, DEFAULT_MAX_EVICTED, DEFAULT_MAX_FINISHED, DEFAULT_MAX_OP_ID_LEN,
    DEFAULT_MAX_OVERFLOW, DEFAULT_MAX_WAITERS, DEFAULT_OUTAGE_GRACE, DEFAULT_OUTAGE_POLICY,
    DEFAULT_RESTORE_SETTLE,
};
pub use machine::OpControl;
pub use op_id::{check_agent, parse_plain, parse_scope, InvalidId, Scope, AGENT_PREFIX, ALL_OPS};
pub use outcome::{
    CheckOutcome, DenyReason, OpControlAction, OpControlStats, OpControlTimer, OpState, OpWaiterId,
    Saturation, WaitOutcome,
};
pub use signal::{Signal, SignalOutcome};
