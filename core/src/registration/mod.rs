//! Agent registration: obtaining, keeping and giving back the credential
//! token of an Agent Assembly gateway's `AgentLifecycleService`
//! (`RequestChallenge`, `Register`, `Heartbeat`, `Deregister`,
//! `ControlStream`), and turning what the gateway says into commands for
//! the agent.
//!
//! Guarantees (named invariants, checked after every step by
//! `testkit::registration`, `tests/prop_registration.rs` and the
//! `registration` fuzz target):
//! - `REG_ONE_CALL_AT_A_TIME`: at most one `RequestChallenge`/`Register` is
//!   in flight (a new one is requested only after the previous attempt's
//!   answer); at most one `SendHeartbeat` per generation is unanswered; at
//!   most one control stream per generation is opening or open.
//! - `REG_STALE_IGNORED`: an answer or report naming an attempt or a
//!   generation that is not the current one, or one the machine is not
//!   waiting for (a second answer, an answer before `on_start` or after
//!   shutdown), changes nothing but [`RegistrationStats::stale_answers`].
//! - `REG_REFUSAL_TYPED`: a challenge or register failing with a definitive
//!   code ([`CallCode::is_refusal`]: `ALREADY_EXISTS`, `PERMISSION_DENIED`,
//!   `INVALID_ARGUMENT`, `FAILED_PRECONDITION`, `UNAUTHENTICATED`,
//!   `UNIMPLEMENTED`, `NOT_FOUND`, `OUT_OF_RANGE`) moves to
//!   [`RegistrationState::Refused`] with `next_try = now + refused_retry`,
//!   and no attempt is made before `next_try`; until a registration
//!   succeeds (or shutdown), the status names the latest refusal (as
//!   `Refused { failure }` or `Registering { last_failure }`). With
//!   `fresh_key_per_registration`, an `ALREADY_EXISTS` is instead retried
//!   through the backoff, after [`RegistrationAction::RotateKey`]. Other
//!   codes are transient and retried through the backoff.
//! - `REG_RETRY_BOUNDED`: a transient failure is retried after a backoff
//!   delay in `[base × (1 − jitter), max × (1 + jitter)]` of the `retry`
//!   config, and a closed control stream is reopened within
//!   `max × (1 + jitter)`; the machine never gives up while started and
//!   not shut down.
//! - `REG_TOKEN_LOSS_REREGISTERS`: a heartbeat answered `UNAUTHENTICATED`
//!   or `NOT_FOUND`, a control stream closed with `UNAUTHENTICATED`, or
//!   [`Registration::on_token_refused`] for the current generation emits
//!   [`RegistrationAction::TokenLost`] once, drops the heartbeat and the
//!   control stream, and a `RequestChallenge` follows within the backoff's
//!   largest delay unless shutdown comes first. A registration counts as a
//!   connection of the `retry` backoff: a token lost less than its
//!   `healthy_after` after it was issued keeps the delays growing (a
//!   gateway that refuses every token at once is not asked every base
//!   delay), one lost later starts again within `[0, base]` (preceded by `RotateKey`
//!   with `fresh_key_per_registration`). Further reports for that
//!   generation are stale.
//! - `REG_GENERATIONS`: each success issues the next generation (1, 2,
//!   ...) with `TokenIssued` then `OpenControl`, and arms the first
//!   heartbeat one interval later; the interval is the gateway's, clamped
//!   to `[1 s, 1 h]`, or `heartbeat_default` when it names `<= 0`.
//! - `REG_HEARTBEAT_CADENCE`: while registered, `SendHeartbeat` is emitted
//!   every interval: two are never closer than the interval, and the gap
//!   between two is never more than the interval or, when the first was in
//!   flight longer, the time it was in flight. A failed heartbeat (not a
//!   token loss) only waits for the next.
//! - `REG_SUSPEND_LEVEL`: `should_suspend` is a level: only a change from
//!   the latest level (set by heartbeats and by suspend/resume commands)
//!   emits `Agent(Suspend)` or `Agent(Resume)`; `policy_updated` emits
//!   `Agent(PolicyUpdated)`.
//! - `REG_COMMANDS_EXACT`: each command on the current generation's control
//!   stream (opening or open) emits exactly one `Agent` action, in arrival
//!   order (`Unknown` emits none and is counted); `Agent` sequences run
//!   1, 2, 3, ... without gaps. A closed or lost stream reopens after its
//!   own backoff (`ReopenControl`); `UNAUTHENTICATED` loses the token.
//! - `REG_SHUTDOWN_BOUNDED`: after [`Registration::on_shutdown`] the only
//!   actions ever emitted are one `Deregister` (only when registered) and
//!   one `Stopped`, which comes on the deregistration's answer or at
//!   `now + shutdown_bound`, whichever is first (at once when not
//!   registered). A second shutdown does nothing.
//! - `REG_BOUNDED`: the machine holds a fixed set of scalars and its action
//!   queue; one input emits at most [`MAX_ACTIONS_PER_INPUT`] actions, and
//!   at most [`MAX_UNDRAINED_COMMANDS`] `Agent` actions wait undrained (a
//!   further one compacts the waiting ones into at most three of the same
//!   effect, kill last: none is ever dropped). No input order panics.
//!
//! Plus the contract invariants every machine keeps (see
//! [`crate::Machine`]).
//!
//! The driver's loop: call [`Registration::on_start`]; perform every
//! requested call ([`RegistrationAction::RequestChallenge`],
//! [`RegistrationAction::Register`], [`RegistrationAction::SendHeartbeat`],
//! [`RegistrationAction::OpenControl`], [`RegistrationAction::Deregister`])
//! and report its outcome with the matching `on_*` method, naming the
//! attempt or generation the action named (a transport error as
//! `UNAVAILABLE`); present the token of the latest
//! [`RegistrationAction::TokenIssued`] on every other call, report an
//! `UNAUTHENTICATED` there with [`Registration::on_token_refused`], and on
//! [`RegistrationAction::TokenLost`] stop presenting it and end that
//! generation's heartbeat and control stream. Drain
//! [`poll_action`](crate::Machine::poll_action) after every input; sleep
//! until [`poll_timeout`](crate::Machine::poll_timeout) and call
//! [`handle_timeout`](crate::Machine::handle_timeout).
//!
//! Order within one step: a registration emits `TokenIssued` then
//! `OpenControl`; a heartbeat answer emits the suspend edge, then
//! `PolicyUpdated`, then the next `SendHeartbeat` if it is already due; a
//! timeout emits `SendHeartbeat` before `OpenControl`; `RotateKey` comes
//! right before the `RequestChallenge` it is for.
//!
//! The gateway facts this follows: a restarted gateway forgets every token
//! (calls and streams answer `UNAUTHENTICATED`) but keeps its registered
//! agents, so registering the same key again answers `ALREADY_EXISTS`; a
//! heartbeat's `should_suspend` is true while the gateway holds the agent
//! suspended.

mod config;
mod machine;
mod types;

pub use config::{
    RegistrationConfig, DEFAULT_HEARTBEAT, DEFAULT_REFUSED_RETRY, DEFAULT_RETRY_BASE,
    DEFAULT_RETRY_MAX, DEFAULT_SHUTDOWN_BOUND, MAX_HEARTBEAT, MIN_DELAY, MIN_HEARTBEAT,
};
pub use machine::{Registration, MAX_ACTIONS_PER_INPUT, MAX_UNDRAINED_COMMANDS};
pub use types::{
    AgentCommand, AgentCommandKind, AttemptId, CallCode, CallFailure, ControlCommand, Generation,
    Granted, HeartbeatAnswer, RegistrationAction, RegistrationState, RegistrationStats,
    RegistrationStatus, RegistrationTimer,
};
