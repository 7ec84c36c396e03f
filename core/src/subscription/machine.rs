//! The subscription machine: sequence rules, acks, gap and restart detection
//! for the invalidation stream.
//!
//! Guarantees: see the module docs of [`crate::subscription`]. In short, each
//! event is applied exactly once per gateway lifetime; acks are cumulative,
//! one for the newest applied event once `ack_every` applies are unacked or
//! `ack_delay` after the first unacked one; a gap closes the stream and
//! resubscribes from the last applied event; a gap the gateway can no longer
//! replay, or a gateway restart, invalidates everything before the first
//! event is adopted.

use alloc::collections::VecDeque;

use super::config::SubscriptionConfig;
use super::stats::SubscriptionStats;
use crate::backoff::{Backoff, BackoffAction};
use crate::machine::Machine;
use crate::time::{earliest, Deadline, Timestamp};

/// Why every cached decision must be dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidateReason {
    /// The gateway restarted and its sequence began again; what it sent
    /// before this stream is unknown. Either the first event of a new stream
    /// was at or below `last_seq_seen` (it cannot be a replay), or the
    /// gateway announced a lifetime epoch other than the last one
    /// ([`Subscription::on_gateway_epoch`]).
    Restart,
    /// The first event of a new stream was past `last_seq_seen + 1`: the
    /// gateway can no longer replay the missing events.
    UnreplayableGap,
}

/// Why the machine asks the driver to drop the current stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// An event skipped ahead mid-stream (the gateway dropped events for this
    /// subscriber); nothing after it was applied.
    Gap {
        /// The last applied sequence number, from which the machine resubscribes.
        last_seq_seen: u64,
        /// The sequence number that arrived instead of `last_seq_seen + 1`.
        got: u64,
    },
    /// The driver let the action queue reach its bound; the event that did
    /// not fit was not applied.
    Backlog,
    /// [`Subscription::stop`] was called.
    Stopped,
    /// The gateway announced a lifetime epoch other than the last one
    /// ([`Subscription::on_gateway_epoch`]) on a stream opened with
    /// `last_seq_seen > 0` of the old lifetime, and the first event of that
    /// stream was not seq 1: the gateway replayed only its events past the
    /// old resume point and may hold earlier events of its new lifetime that
    /// it skipped. Everything was already invalidated and `last_seq_seen`
    /// reset to 0 when the epoch was announced; the event was not applied.
    /// The `Connect { last_seq_seen: 0 }` follows at once, with no backoff
    /// delay (a restart noticed on a working stream is not a failure), so
    /// the new lifetime is replayed from the oldest event the gateway holds
    /// (`SUB_RESTART_LOSES_NOTHING_HELD`).
    EpochChanged,
    /// The peer of the stream's connection is draining (an HTTP/2 GOAWAY:
    /// a planned shutdown, [`Subscription::on_peer_draining`]). The
    /// resubscribe from `last_seq_seen` follows within `base` (a spread),
    /// never earlier than `base` after the stream opened; it counts no
    /// failure (`SUB_DRAIN_FOLLOWED`). The driver must open it on a fresh
    /// connection: the draining one takes no new stream.
    PeerDraining,
}

/// What the subscription machine asks its driver to do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubscriptionAction<E> {
    /// Open a stream whose first message is `initial.last_seq_seen`, then
    /// report [`Subscription::on_connected`] or [`Subscription::on_disconnected`].
    Connect {
        /// The sequence number to resume after (0 on a cold start).
        last_seq_seen: u64,
    },
    /// Apply this event (e.g. drop the cached decisions it invalidates).
    Apply {
        /// The event's sequence number.
        seq: u64,
        /// The event's payload, as given to [`Subscription::on_event`].
        event: E,
    },
    /// Send an ack for `seq` on the current stream. The ack is cumulative:
    /// it covers every event applied on this stream up to `seq`. `seq` is
    /// the newest event applied when the ack is emitted, its `Apply` comes
    /// before it in the action order, and the acks of one stream strictly
    /// increase. Emitted once `ack_every` applies of the stream are unacked
    /// (right after the `Apply` that makes them so), or by
    /// [`Machine::handle_timeout`] at [`SubscriptionTimer::AckDue`].
    Ack {
        /// The newest applied sequence number.
        seq: u64,
    },
    /// Drop every cached decision. Always directly precedes the `Apply` of
    /// the event that caused it, or is the only action emitted for the epoch
    /// announcement that caused it ([`Subscription::on_gateway_epoch`]).
    InvalidateAll {
        /// Why.
        reason: InvalidateReason,
    },
    /// Drop the current stream (or abort the attempt in flight) without
    /// reporting its end: the machine already considers it gone and has
    /// scheduled the resubscribe. An `on_disconnected` for it before the next
    /// `Connect` is handed out is ignored; one after would count against the
    /// new attempt, so a driver must not send it.
    CloseStream {
        /// Why.
        reason: CloseReason,
    },
}

/// Why the subscription machine wants to be woken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscriptionTimer {
    /// The backoff delay has elapsed: resubscribe.
    Resubscribe,
    /// `ack_delay` has passed since the first unacked apply of the open
    /// stream: ack the newest applied event.
    AckDue,
}

/// The stream as the machine sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    /// Not started, or stopped.
    Stopped,
    /// A `Connect` is queued (`issued == false`) or was handed to the driver.
    Connecting { issued: bool },
    /// A stream is open; `fresh` until its first valid event.
    Open { fresh: bool },
    /// Waiting for the backoff deadline.
    Waiting,
}

/// The resumable invalidation-stream subscription as a sans-IO machine,
/// generic over the event payload `E`.
///
/// ```
/// use tether_core::subscription::{
///     InvalidateReason, Subscription, SubscriptionAction as A, SubscriptionConfig,
///     SubscriptionTimer,
/// };
/// use tether_core::{Machine, Timestamp};
///
/// let mut s = Subscription::new(SubscriptionConfig::with_seed(1));
/// let t = Timestamp::ZERO;
/// s.start(t);
/// assert_eq!(s.poll_action(), Some(A::Connect { last_seq_seen: 0 }));
/// s.on_connected(t);
/// s.on_event(t, 1, "policy changed");
/// assert_eq!(s.poll_action(), Some(A::Apply { seq: 1, event: "policy changed" }));
/// s.on_event(t, 2, "another");
/// assert_eq!(s.poll_action(), Some(A::Apply { seq: 2, event: "another" }));
/// // One cumulative ack for both, `ack_delay` after the first unacked apply.
/// assert_eq!(s.poll_action(), None);
/// let due = s.poll_timeout().unwrap();
/// assert_eq!(due.reason, SubscriptionTimer::AckDue);
/// assert_eq!(due.at, t + s.config().ack_delay);
/// s.handle_timeout(due.at);
/// assert_eq!(s.poll_action(), Some(A::Ack { seq: 2 }));
/// s.on_disconnected(t);
/// let at = s.poll_timeout().unwrap().at;
/// s.handle_timeout(at);
/// assert_eq!(s.poll_action(), Some(A::Connect { last_seq_seen: 2 }));
/// s.on_connected(at);
/// // The gateway restarted: seq 1 again is not a duplicate.
/// s.on_event(at, 1, "after restart");
/// assert_eq!(s.poll_action(), Some(A::InvalidateAll { reason: InvalidateReason::Restart }));
/// assert_eq!(s.poll_action(), Some(A::Apply { seq: 1, event: "after restart" }));
/// ```
#[derive(Clone, Debug)]
pub struct Subscription<E> {
    config: SubscriptionConfig,
    backoff: Backoff,
    link: Link,
    last_seq_seen: u64,
    epoch: Option<u64>,
    /// The open stream was opened with `last_seq_seen > 0` and then
    /// announced a new lifetime epoch, and no event was adopted on it yet:
    /// its first event must be seq 1, or the gateway may have skipped
    /// events of its new lifetime at or below the old resume point.
    restart_probe: bool,
    connects: u64,
    /// Applies on the open stream since its last ack.
    unacked: u32,
    /// When the first of them was applied (`Some` iff `unacked > 0`).
    first_unacked_at: Option<Timestamp>,
    stats: SubscriptionStats,
    actions: VecDeque<SubscriptionAction<E>>,
}

impl<E> Subscription<E> {
    /// A stopped machine with `config` (clamped into range), cold
    /// (`last_seq_seen == 0`).
    pub fn new(config: SubscriptionConfig) -> Self {
        let config = config.clamped();
        Subscription {
            backoff: Backoff::new(config.backoff.clone()),
            config,
            link: Link::Stopped,
            last_seq_seen: 0,
            epoch: None,
            restart_probe: false,
            connects: 0,
            unacked: 0,
            first_unacked_at: None,
            stats: SubscriptionStats::default(),
            actions: VecDeque::new(),
        }
    }

    /// The effective (clamped) configuration.
    pub fn config(&self) -> &SubscriptionConfig {
        &self.config
    }

    /// The embedded reconnect backoff (phase, failure count, last delay).
    pub fn backoff(&self) -> &Backoff {
        &self.backoff
    }

    /// Begin: request the first `Connect` at once. Does nothing if already
    /// started.
    pub fn start(&mut self, now: Timestamp) {
        if self.link == Link::Stopped {
            self.backoff.start(now);
            self.pull_backoff();
        }
    }

    /// Stop: no further connects or timers until [`Subscription::start`].
    /// Emits `CloseStream { Stopped }` if a stream is open or an attempt was
    /// handed out; a `Connect` not yet handed out is withdrawn. Applied
    /// events still queued (`Apply`, `Ack`) are kept: they were adopted. An
    /// ack not emitted yet is dropped with the stream (the next stream's
    /// first ack covers it).
    pub fn stop(&mut self) {
        self.drop_pending_ack();
        match self.link {
            Link::Open { .. } | Link::Connecting { issued: true } => {
                self.actions.push_back(SubscriptionAction::CloseStream {
                    reason: CloseReason::Stopped,
                });
            }
            Link::Connecting { issued: false } => {
                self.actions
                    .retain(|a| !matches!(a, SubscriptionAction::Connect { .. }));
            }
            Link::Stopped | Link::Waiting => {}
        }
        self.backoff.stop();
        self.restart_probe = false;
        self.link = Link::Stopped;
    }

    /// The stream requested by the last `Connect` is open. Ignored unless
    /// that `Connect` was handed out by [`Machine::poll_action`] and has not
    /// connected or failed yet.
    pub fn on_connected(&mut self, now: Timestamp) {
        if self.link == (Link::Connecting { issued: true }) {
            self.backoff.on_connected(now);
            self.link = Link::Open { fresh: true };
        }
    }

    /// The gateway of the stream just opened announced its lifetime `epoch`
    /// (a value that differs across gateway restarts). Call it right after
    /// [`Subscription::on_connected`], before any event of that stream, for
    /// gateways that announce one; never for those that do not.
    ///
    /// The machine remembers the last epoch. If it knew one and `epoch`
    /// differs, the gateway restarted: it emits `InvalidateAll { Restart }`
    /// (counted in [`SubscriptionStats::restarts`]) and resets
    /// `last_seq_seen` to 0, and **keeps the stream**: the gateway sends this
    /// stream its held events past the `last_seq_seen` the stream was opened
    /// with, then its live ones, so
    /// - a stream opened with `last_seq_seen == 0` already replays everything
    ///   the gateway holds;
    /// - on a stream opened with `last_seq_seen > 0`, a first event of seq 1
    ///   proves that nothing was skipped (tether's gateway, which knows no
    ///   subscriber before its first subscribe, sends exactly that: the new
    ///   lifetime live from seq 1); any other first event is not applied, the
    ///   stream is closed (`CloseStream { EpochChanged }`) and
    ///   `Connect { last_seq_seen: 0 }` is emitted at once, with no backoff
    ///   delay, so the gateway replays every event it still holds.
    ///
    /// Either way nothing the new gateway holds is lost
    /// (`SUB_RESTART_LOSES_NOTHING_HELD`), even when the restart outran
    /// `last_seq_seen`. The same epoch, or a first one, changes nothing.
    ///
    /// Ignored unless a stream is open and no event was adopted on it yet.
    pub fn on_gateway_epoch(&mut self, _now: Timestamp, epoch: u64) {
        if self.link != (Link::Open { fresh: true }) {
            return;
        }
        let previous = self.epoch.replace(epoch);
        if previous.is_some_and(|p| p != epoch) {
            // Nothing is queued after a `Connect` until it is handed out,
            // and a fresh stream adopted nothing: the queue holds at most the
            // `InvalidateAll` of an earlier announcement on this stream. One
            // not yet drained covers this one too (bounded queue).
            let restart = SubscriptionAction::InvalidateAll {
                reason: InvalidateReason::Restart,
            };
            if !matches!(
                self.actions.back(),
                Some(SubscriptionAction::InvalidateAll {
                    reason: InvalidateReason::Restart
                })
            ) {
                self.stats.restarts = self.stats.restarts.saturating_add(1);
                self.actions.push_back(restart);
            }
            self.restart_probe |= self.last_seq_seen > 0;
            self.last_seq_seen = 0;
        }
    }

    /// The last lifetime epoch announced by the gateway, if any.
    pub fn gateway_epoch(&self) -> Option<u64> {
        self.epoch
    }

    /// The attempt failed or the stream ended, for whatever cause (an error,
    /// a clean end, a cancel, an unavailable). Schedules the resubscribe
    /// through the backoff. Ignored when no attempt was handed out and no
    /// stream is open (e.g. the end of a stream the machine already closed
    /// with `CloseStream`).
    pub fn on_disconnected(&mut self, now: Timestamp) {
        if matches!(
            self.link,
            Link::Open { .. } | Link::Connecting { issued: true }
        ) {
            self.lose_stream(now);
        }
    }

    /// The peer of the open stream's connection is draining: it announced a
    /// graceful shutdown (an HTTP/2 GOAWAY) and will take no new stream on
    /// that connection, while it may keep this one open indefinitely. Its
    /// replacement serves new connections, and what it publishes never
    /// reaches a stream left on the old process, so the machine moves:
    /// `CloseStream { PeerDraining }`, then `Connect { last_seq_seen }` (the
    /// normal resume: nothing lost, nothing applied twice). The move is not
    /// a failure: no backoff delay and no failure counted; the `Connect`
    /// comes after a spread drawn from `[0, base]` (at once without jitter),
    /// so a fleet drained together does not return together, and never
    /// before `base` after the stream opened, so drains alone cost at most
    /// one reconnect per `base` (`SUB_DRAIN_FOLLOWED`). A pending ack is dropped with the stream, as
    /// on any close (the resume point is `last_seq_seen`). Counted in
    /// [`SubscriptionStats::drain_swaps`].
    ///
    /// Ignored unless a stream is open (an attempt in flight on a draining
    /// connection fails or succeeds on its own; report the drain again once
    /// it is open). Returns whether it acted.
    pub fn on_peer_draining(&mut self, now: Timestamp) -> bool {
        if !matches!(self.link, Link::Open { .. }) {
            return false;
        }
        self.actions.push_back(SubscriptionAction::CloseStream {
            reason: CloseReason::PeerDraining,
        });
        self.drop_pending_ack();
        self.restart_probe = false;
        self.stats.drain_swaps = self.stats.drain_swaps.saturating_add(1);
        self.backoff.on_peer_draining(now);
        self.link = Link::Waiting;
        self.pull_backoff();
        true
    }

    /// An event arrived on the open stream. See the module docs for the
    /// rules; an event with no open stream, or with `seq == 0`, is dropped
    /// and counted in [`SubscriptionStats::ignored`].
    pub fn on_event(&mut self, now: Timestamp, seq: u64, event: E) {
        let fresh = match self.link {
            Link::Open { fresh } => fresh,
            _ => {
                self.stats.ignored = self.stats.ignored.saturating_add(1);
                return;
            }
        };
        if seq == 0 {
            self.stats.ignored = self.stats.ignored.saturating_add(1);
            return;
        }
        self.backoff.on_message(now);
        if fresh && self.restart_probe && seq > 1 {
            // A new lifetime, and the gateway replayed it from past the old
            // resume point: what it holds below this event comes only from a
            // replay from 0. Not a failure: no backoff delay.
            self.resubscribe_now(now, CloseReason::EpochChanged);
            return;
        }
        let last = self.last_seq_seen;
        let next = last.saturating_add(1);
        let invalidate = if fresh {
            if last > 0 && seq <= last {
                Some(InvalidateReason::Restart)
            } else if seq > next {
                Some(InvalidateReason::UnreplayableGap)
            } else {
                None
            }
        } else if seq <= last {
            self.stats.duplicates = self.stats.duplicates.saturating_add(1);
            return;
        } else if seq > next {
            self.stats.gaps = self.stats.gaps.saturating_add(1);
            self.close(
                now,
                CloseReason::Gap {
                    last_seq_seen: last,
                    got: seq,
                },
            );
            return;
        } else {
            None
        };
        // Room for the `Apply`, for its `Ack` (emitted now, or later by the
        // timer: at most one ack is pending, and it covers this event) and
        // for the `InvalidateAll`, if any.
        let needed = if invalidate.is_some() { 3 } else { 2 };
        if self.actions.len().saturating_add(needed) > self.config.max_queued_actions {
            self.stats.backlog_closes = self.stats.backlog_closes.saturating_add(1);
            self.close(now, CloseReason::Backlog);
            return;
        }
        if let Some(reason) = invalidate {
            match reason {
                InvalidateReason::Restart => {
                    self.stats.restarts = self.stats.restarts.saturating_add(1);
                }
                InvalidateReason::UnreplayableGap => {
                    self.stats.unreplayable_gaps = self.stats.unreplayable_gaps.saturating_add(1);
                }
            }
            self.actions
                .push_back(SubscriptionAction::InvalidateAll { reason });
        }
        self.last_seq_seen = seq;
        self.stats.applied = self.stats.applied.saturating_add(1);
        self.link = Link::Open { fresh: false };
        self.restart_probe = false;
        self.actions
            .push_back(SubscriptionAction::Apply { seq, event });
        if self.first_unacked_at.is_none() {
            self.first_unacked_at = Some(now);
        }
        self.unacked = self.unacked.saturating_add(1);
        if self.unacked >= self.config.ack_every {
            self.ack();
        }
    }

    /// The sequence number of the last applied event (0 on a cold start).
    pub fn last_seq_seen(&self) -> u64 {
        self.last_seq_seen
    }

    /// Whether a stream is open (connected and not closed by the machine).
    pub fn is_connected(&self) -> bool {
        matches!(self.link, Link::Open { .. })
    }

    /// Whether the machine is started (connecting, connected or waiting).
    pub fn is_started(&self) -> bool {
        self.link != Link::Stopped
    }

    /// Counters since construction.
    pub fn stats(&self) -> SubscriptionStats {
        SubscriptionStats {
            last_seq: self.last_seq_seen,
            reconnects: self.connects.saturating_sub(1),
            ..self.stats
        }
    }

    /// Actions queued and not yet drained.
    pub fn queued_actions(&self) -> usize {
        self.actions.len()
    }

    /// Ask the driver to drop the stream and schedule the resubscribe.
    fn close(&mut self, now: Timestamp, reason: CloseReason) {
        self.actions
            .push_back(SubscriptionAction::CloseStream { reason });
        self.lose_stream(now);
    }

    /// The stream or attempt is gone: a disconnect for the backoff. An ack
    /// not emitted yet has no stream to go on: dropped.
    fn lose_stream(&mut self, now: Timestamp) {
        self.drop_pending_ack();
        self.restart_probe = false;
        self.backoff.on_disconnected(now);
        self.link = Link::Waiting;
        self.pull_backoff();
    }

    /// Ask the driver to drop the stream and resubscribe at once, from
    /// `last_seq_seen`, with no backoff delay: only for a restart noticed on
    /// a stream opened with `last_seq_seen > 0`, whose resubscribe carries 0,
    /// so two never follow each other without a backoff delay between them
    /// (the backoff schedule itself, failure count included, is kept).
    fn resubscribe_now(&mut self, now: Timestamp, reason: CloseReason) {
        self.actions
            .push_back(SubscriptionAction::CloseStream { reason });
        self.drop_pending_ack();
        self.restart_probe = false;
        self.backoff.stop();
        self.backoff.start(now);
        self.pull_backoff();
    }

    /// Emit the cumulative ack of every unacked apply: the newest applied
    /// event of the open stream.
    fn ack(&mut self) {
        self.drop_pending_ack();
        self.stats.acks = self.stats.acks.saturating_add(1);
        self.actions.push_back(SubscriptionAction::Ack {
            seq: self.last_seq_seen,
        });
    }

    fn drop_pending_ack(&mut self) {
        self.unacked = 0;
        self.first_unacked_at = None;
    }

    /// When the pending ack is due, if one is pending.
    fn ack_due(&self) -> Option<Timestamp> {
        self.first_unacked_at
            .map(|first| first.saturating_add(self.config.ack_delay))
    }

    /// Turn the backoff's connect requests into `Connect` actions carrying
    /// the current `last_seq_seen`.
    fn pull_backoff(&mut self) {
        while let Some(BackoffAction::Connect { .. }) = self.backoff.poll_action() {
            self.link = Link::Connecting { issued: false };
            self.actions.push_back(SubscriptionAction::Connect {
                last_seq_seen: self.last_seq_seen,
            });
        }
    }
}

impl<E> Machine for Subscription<E> {
    type Action = SubscriptionAction<E>;
    type TimerReason = SubscriptionTimer;

    fn poll_action(&mut self) -> Option<SubscriptionAction<E>> {
        let action = self.actions.pop_front()?;
        if let SubscriptionAction::Connect { .. } = action {
            self.connects = self.connects.saturating_add(1);
            if self.link == (Link::Connecting { issued: false }) {
                self.link = Link::Connecting { issued: true };
            }
        }
        Some(action)
    }

    fn poll_timeout(&self) -> Option<Deadline<SubscriptionTimer>> {
        let resubscribe = match self.link {
            Link::Waiting => self
                .backoff
                .poll_timeout()
                .map(|d| Deadline::new(d.at, SubscriptionTimer::Resubscribe)),
            _ => None,
        };
        let ack = self
            .ack_due()
            .map(|at| Deadline::new(at, SubscriptionTimer::AckDue));
        earliest(resubscribe, ack)
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        if self.ack_due().is_some_and(|at| at <= now) {
            self.ack();
        }
        if self.link == Link::Waiting {
            self.backoff.handle_timeout(now);
            self.pull_backoff();
        }
    }
}
