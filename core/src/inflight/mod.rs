//! In-flight dedupe for the queued-work runner: which session to drive, and
//! when, so that no session is ever driven twice at once.
//!
//! Guarantees (named invariants, checked after every step by
//! `testkit::inflight`, `tests/prop_inflight.rs` and the `inflight` fuzz
//! target):
//! - `INFLIGHT_NEVER_TWICE`: a session has at most one drive outstanding
//!   (issued and not yet idle, failed, completed or lease-recovered);
//! - `INFLIGHT_NO_OVERLAP`: a drive's call is outstanding from its
//!   [`InFlightAction::Drive`] until its result (submitted, idle, failed) or
//!   its cancellation ([`InFlight::on_drive_cancelled`]) is reported, and no
//!   drive of its session (nor a global drive; nor, for a global drive's
//!   call, any drive) is issued meanwhile, across lease recoveries: a lease
//!   that expires before the call returned yields
//!   [`InFlightAction::CancelDrive`] and the session stays in flight
//!   ([`SessionStatus::Cancelling`]) until the call's end is reported;
//! - `INFLIGHT_GLOBAL_EXCLUSIVE`: a global drive is issued only when nothing
//!   is in flight, and no session drive is issued while a global drive is
//!   outstanding. A wanted global drive is a barrier: no new session drive
//!   starts until it has been issued, so it cannot starve. A global drive
//!   that submits a session continues the sweep (another global drive once
//!   nothing is in flight) until one finds nothing, so a sweep picks up all
//!   queued work, one session at a time (the price of not knowing which
//!   sessions the runtime will pick);
//! - `INFLIGHT_COALESCE_ONE`: any number of pokes for a session in flight
//!   yield exactly one re-drive after it (a completion always re-drives the
//!   session once; a drive that found nothing re-drives once only if poked
//!   meanwhile, and otherwise releases the session with no drive);
//! - `INFLIGHT_EVERY_POKE_DRIVEN`: every poke is followed by a drive of its
//!   session, or, when it folded into the global-poke flag, by a global
//!   drive (liveness: once pokes stop and every drive is answered, the
//!   machine drains to idle with nothing undriven);
//! - `INFLIGHT_LEASE_RECOVERS`: a drive whose result or completion never
//!   comes is recovered `lease` after it was issued (or submitted, or last
//!   renewed): the session is released and re-driven once, and a late report
//!   for the old token is [`InFlightError::StaleToken`]. A drive whose call
//!   has not returned is recovered in two steps (`INFLIGHT_NO_OVERLAP`): at
//!   the lease, [`InFlightAction::CancelDrive`]; once the cancellation is
//!   reported, the release and the re-drive (a result reported instead
//!   stands, as if the lease had not expired);
//! - `INFLIGHT_RETRY_BACKOFF`: a failed drive is retried after
//!   `retry_base × 2^(failures − 1)`, capped at `retry_max` (± jitter),
//!   never dropped; any other result resets the count;
//! - `INFLIGHT_EARLY_FINISH`: a turn reported finished
//!   ([`InFlight::on_turn_finished`]) before its drive reported `submitted`
//!   is remembered, and the drive completes (its session released and
//!   re-driven once) the moment it reports `submitted`; nothing is driven
//!   before that;
//! - `INFLIGHT_STALE_CHANGES_NOTHING`: a stale, duplicate or mismatched
//!   report returns a typed [`InFlightError`] and changes nothing but the
//!   `stale` counter, while every valid report is accepted;
//! - `INFLIGHT_FRESH_TOKENS`: every drive carries a token never issued
//!   before;
//! - `INFLIGHT_IDLE_NO_TIMER`: an idle machine reports no deadline, unless a
//!   recovery poll is configured, and then only the poll, every
//!   `recovery_poll` while idle;
//! - `INFLIGHT_BOUNDED`: at most `max_in_flight` session drives at once, and
//!   at most `max_pending` sessions waiting (for a slot or a retry). A
//!   session that does not fit folds into the global-poke flag: safe, because
//!   a global drive picks up queued work and the global sweep continues until
//!   a global drive finds nothing;
//! - `INFLIGHT_SWEEP_AT_START`: with `sweep_at_start` (the default,
//!   [`DEFAULT_SWEEP_AT_START`]), the first [`InFlight::on_start`] is a
//!   global poke: when nothing is in flight or waiting for a retry (as at a
//!   real start), it issues exactly one global drive at once, and the sweep
//!   goes on until a global drive finds nothing, so work queued before the
//!   runner existed is driven without a poke; otherwise it coalesces like
//!   any global poke. Every later call, and every call without the setting,
//!   changes nothing (and the recovery poll stays as configured).
//!
//! The driver's loop: call [`InFlight::on_start`] once; feed pokes with [`InFlight::on_poke`]; execute each
//! [`InFlightAction::Drive`] and report its result with
//! [`InFlight::on_submitted`], [`InFlight::on_idle`] or
//! [`InFlight::on_failed`] (execute each [`InFlightAction::CancelDrive`]
//! by cancelling that call and report [`InFlight::on_drive_cancelled`], or
//! its result if it returned first), then the end of a submitted turn with
//! [`InFlight::on_complete`] (or [`InFlight::on_complete_session`]), or,
//! when the turn may end before its drive's result is reported, with
//! [`InFlight::on_turn_finished`] (or [`InFlight::on_turn_finished_session`]); sleep
//! until [`poll_timeout`](crate::Machine::poll_timeout) and call
//! [`handle_timeout`](crate::Machine::handle_timeout).

mod config;
mod machine;
mod retry;
mod stats;
mod types;

pub use config::{
    InFlightConfig, DEFAULT_LEASE, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_PENDING,
    DEFAULT_RECOVERY_POLL, DEFAULT_RETRY_BASE, DEFAULT_RETRY_JITTER, DEFAULT_RETRY_MAX,
    DEFAULT_SWEEP_AT_START, MIN_DELAY,
};
pub use machine::InFlight;
pub use retry::retry_delay;
pub use stats::InFlightStats;
pub use types::{
    DriveReason, DriveToken, GlobalStatus, InFlightAction, InFlightError, InFlightTimer,
    PokeOutcome, SessionStatus,
};
