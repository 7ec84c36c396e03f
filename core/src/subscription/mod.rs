//! The resumable invalidation-stream subscription: sequence rules, acks, gap
//! and restart detection, reconnects through [`crate::backoff`].
//!
//! Guarantees (named invariants, checked after every step by
//! `testkit::subscription`, i.e. by `tests/prop_subscription.rs` and the
//! `subscription` fuzz target, and by the scenarios of `tests/sim_scenarios.rs`):
//! - `SUB_APPLY_EXACTLY_ONCE`: each event of a gateway lifetime is applied at
//!   most once, in increasing sequence order; an event of a lifetime that is
//!   still replayable is applied exactly once;
//! - `SUB_NO_SILENT_LOSS`: every `Apply` is of `last_seq_seen + 1`, or it is
//!   directly preceded by `InvalidateAll`;
//! - `SUB_ACK_CUMULATIVE_BOUNDED`: every `Ack { seq }` names an applied seq
//!   of the current stream, equal to the newest applied seq when the ack is
//!   emitted (so it comes after that seq's `Apply` in the action order), and
//!   the acks of one stream strictly increase; after any input and a full
//!   drain, either every apply of the current stream is acked, or fewer than
//!   `ack_every` are unacked and `poll_timeout` reports a deadline no later
//!   than (the first unacked apply's `now`) + `ack_delay`, and
//!   `handle_timeout` at that deadline emits the ack of the newest applied
//!   seq. An ack is cumulative at the gateway (it trims its replay buffer up
//!   to and including `seq`), so this acks every applied event; an ack
//!   emitted on an apply covers `ack_every` applies, and one emitted by the
//!   timer comes at least `ack_delay` after the previous ack (with a clock
//!   that does not go back), so a burst costs one `Ack` per `ack_every`
//!   events plus one per `ack_delay` of its duration. When the
//!   stream ends (any `CloseStream`, `on_disconnected`, `stop`) the pending
//!   ack is dropped with it and its deadline cleared: there is no stream to
//!   send it on, and acks only trim (the resume point is `last_seq_seen`,
//!   which no ack moves), so the next stream's first ack covers it;
//! - `SUB_DUPLICATE_DROPPED`: mid-stream, an event with `seq <= last_seq_seen`
//!   is dropped and counted;
//! - `SUB_NOTHING_AFTER_GAP`: mid-stream, an event with
//!   `seq > last_seq_seen + 1` is not applied, nor is anything after it on
//!   that stream: the machine emits `CloseStream { Gap }` and resubscribes
//!   from `last_seq_seen` through the backoff (a gap close is a disconnect);
//! - `SUB_RESTART_NEVER_DROPPED`: the first event of a new stream with
//!   `seq <= last_seq_seen` (and `last_seq_seen > 0`) means the gateway
//!   restarted: `InvalidateAll { Restart }`, then that event is adopted and
//!   applied, never dropped as a duplicate;
//! - `SUB_UNREPLAYABLE_INVALIDATES`: the first event of a new stream with
//!   `seq > last_seq_seen + 1` means the gateway could not replay the gap:
//!   `InvalidateAll { UnreplayableGap }`, then that event is adopted and
//!   applied;
//! - `SUB_EPOCH_CHANGE_RESETS`: when the gateway announces a lifetime epoch
//!   ([`Subscription::on_gateway_epoch`]) other than the last one announced,
//!   the machine emits `InvalidateAll { Restart }` and resets
//!   `last_seq_seen` to 0, so every still-replayable event of the new
//!   lifetime is applied exactly once, in order, even when the restart
//!   outran `last_seq_seen`; the same epoch changes nothing, and a machine
//!   never given an epoch behaves as if the input did not exist;
//! - `SUB_RESTART_LOSES_NOTHING_HELD`: after a restart announced by the
//!   epoch, the client loses nothing the new gateway still holds. The
//!   stream the epoch came on is kept: opened with `last_seq_seen == 0` it
//!   replays everything the gateway holds; opened with `last_seq_seen > 0`,
//!   its first event is applied if it is seq 1 (nothing can have been
//!   skipped), and otherwise it is not applied: `CloseStream { EpochChanged }`
//!   then `Connect { last_seq_seen: 0 }` at once, with no backoff delay (a
//!   restart noticed on a working stream is not a failure). So the first
//!   event applied of the new lifetime is the oldest one the gateway held
//!   when the stream that delivered it was opened, and that stream was
//!   opened without waiting. The immediate resubscribe carries 0 and is
//!   only taken from a stream opened with more, so two never follow each
//!   other without a backoff delay between them: the backoff floors of real
//!   failures stand;
//! - `SUB_DRAIN_FOLLOWED`: when the driver reports that the peer of the
//!   open stream's connection is draining ([`Subscription::on_peer_draining`]:
//!   an HTTP/2 GOAWAY, a graceful shutdown that may keep the old stream open
//!   forever while a new process serves new connections), the machine emits
//!   `CloseStream { PeerDraining }` and resubscribes from `last_seq_seen`
//!   (the normal resume: nothing lost, nothing applied twice), counting no
//!   failure: the `Connect` follows after a spread drawn from `[0, base]`
//!   of the backoff (none without jitter: at once), so a fleet drained
//!   together does not come back together, and never earlier than `base`
//!   after the stream opened (so a peer draining every stream it accepts
//!   gets at most one resubscribe per `base` from drains);
//! - `SUB_RESUME_FROM_LAST`: every `Connect` carries the current
//!   `last_seq_seen` (0 on a cold start or after an epoch change);
//! - `SUB_NEVER_GIVES_UP`: while started, the machine is connecting,
//!   connected, or holding a resubscribe deadline;
//! - `SUB_BAD_INPUT_COUNTED`: an event with `seq == 0` or with no open stream
//!   changes nothing but [`SubscriptionStats::ignored`]; no input panics;
//! - `SUB_BOUNDED_QUEUE`: the action queue never holds more than
//!   `max_queued_actions + 2` actions (an applied event counts its `Apply`
//!   and room for the one pending `Ack` that covers it, so an ack the timer
//!   emits later always fits); an event that does not fit is not
//!   applied, the stream is closed (`CloseStream { Backlog }`) and
//!   resubscribed from `last_seq_seen`, so nothing is lost;
//! - `SUB_STATS_CONSISTENT`: the counters match the actions emitted;
//! - and the contract invariants of [`crate::Machine`].
//!
//! The first event of a stream decides between the three cases: in the
//! middle of a stream the gateway only ever moves forward, but a new stream
//! starts with a replay from `last_seq_seen + 1`, so anything else there is a
//! restart or a lost replay. An event with `seq == 0` does not count as a
//! stream's first event. On a cold start (`last_seq_seen == 0`) a first event
//! past 1 is an unreplayable gap too; the `InvalidateAll` it causes is
//! harmless on an empty cache.
//!
//! What sequence numbers cannot reveal: a gateway that restarted and sent at
//! least `last_seq_seen` events of its new lifetime before this client
//! resubscribed replays from `last_seq_seen + 1` of the new lifetime, which
//! looks exactly like a resume; the events up to `last_seq_seen` of the new
//! lifetime are then missed. A restart is likewise only noticed when the
//! first event after it arrives. A gateway that announces a lifetime epoch
//! on every stream (tether's reference gateway, in the
//! `x-tether-gateway-epoch` response header of `Subscribe`) closes both
//! holes: the driver passes it to [`Subscription::on_gateway_epoch`] and a
//! restart is noticed when the stream opens (`SUB_EPOCH_CHANGE_RESETS`),
//! without losing the new lifetime's first events to a reconnect delay
//! (`SUB_RESTART_LOSES_NOTHING_HELD`). The limitation remains for gateways
//! that announce no epoch, such as the Agent Assembly gateway.

mod config;
mod machine;
mod stats;

pub use config::{
    SubscriptionConfig, DEFAULT_ACK_DELAY, DEFAULT_ACK_EVERY, DEFAULT_MAX_QUEUED_ACTIONS,
    MIN_MAX_QUEUED_ACTIONS,
};
pub use machine::{
    CloseReason, InvalidateReason, Subscription, SubscriptionAction, SubscriptionTimer,
};
pub use stats::SubscriptionStats;
