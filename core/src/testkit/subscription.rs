//! Input sequences for the subscription machine, a model of the gateway's
//! invalidation hub (WIRE.md, `InvalidationService`), and the invariant
//! checker.
//!
//! The [`Harness`] plays the driver: it executes every action the machine
//! emits against a [`ModelGateway`] (per-subscriber sequence, replay ring,
//! live channel that skips a lagging subscriber, restart), and after every
//! [`Op`] it checks the named invariants of [`crate::subscription`] plus the
//! contract invariants. It checks them twice over: as properties of the
//! action stream (`SUB_NO_SILENT_LOSS`, `SUB_ACK_CUMULATIVE_BOUNDED`, ...),
//! and against a reference model of the rules that predicts, for every input,
//! the exact actions and counters (`SUB_MODEL_AGREES` when a mismatch has no
//! more specific name).
//!
//! Acks are checked both ways too. The model keeps its own count of unacked
//! applies and the instant of the first one, from the config alone, and
//! predicts each `Ack` (on the apply that makes `ack_every`, or at the first
//! `handle_timeout` at or past first + `ack_delay`). The stream check keeps
//! its own view of the current stream as executed (newest applied seq, last
//! ack, unacked applies and when the first was applied) and asserts
//! `SUB_ACK_CUMULATIVE_BOUNDED` after every step: each ack names the newest
//! applied seq of the stream and exceeds the stream's previous ack; an ack on
//! an apply comes exactly when `ack_every` are unacked, one from the timer
//! only once due and at least `ack_delay` after the previous ack; and after
//! every step either nothing of the stream is unacked, or fewer than
//! `ack_every` are and the reported deadline is no later than first +
//! `ack_delay`, and `handle_timeout` there (on a copy of the machine) acks
//! the newest applied seq. [`Harness::settle`] then fires that deadline and
//! checks that the gateway's acked seq reached its latest event.
//!
//! Events carry a [`Tag`] naming the gateway lifetime (epoch) that sent them,
//! so `SUB_APPLY_EXACTLY_ONCE` is checked per lifetime: no event applied
//! twice, lifetimes in order, and [`Harness::settle`] checks that a client
//! left alone catches up with the gateway's latest event (`SUB_CATCHES_UP`).
//! [`Op::Forge`] injects events the gateway never sent (a lying or buggy
//! peer): those must keep every machine-level invariant, and after one has
//! been applied an `InvalidateAll` resets the per-lifetime ledger (the cache
//! was emptied, so re-applying is harmless).
//!
//! [`Op::ConnectedWithEpoch`] connects with the gateway's lifetime epoch
//! announced ([`Subscription::on_gateway_epoch`]); [`Op::Connected`] keeps
//! the path of a gateway that announces none, and [`Op::Epoch`] reports any
//! epoch at any time (a lying peer or a buggy driver). While every stream
//! was opened with the true epoch announced and no forged event was applied,
//! the harness also checks `SUB_EPOCH_CHANGE_RESETS` end to end: every event
//! of a lifetime is applied exactly once, in order, from seq 1 (or after an
//! `InvalidateAll { UnreplayableGap }` when the ring no longer held it), and
//! no restart goes unnoticed, even one that outran `last_seq_seen`. An epoch
//! change resets the ledger to the start of the announced lifetime (events
//! of it applied on streams that announced nothing may come again: they were
//! invalidated first). It checks `SUB_RESTART_LOSES_NOTHING_HELD` the same
//! way: after an epoch change the first event applied is the oldest one the
//! gateway held when the stream that delivered it was subscribed (unless
//! the model's live channel silently skipped events on that stream, which
//! the gap rules cover), a `CloseStream { EpochChanged }` comes only from a
//! stream opened with `last_seq_seen > 0` and is directly followed by
//! `Connect { last_seq_seen: 0 }`, with no backoff delay.
//!
//! [`Op::PeerDraining`] reports a draining peer (`on_peer_draining`). The
//! model knows the backoff's `base` from the config and when it saw the
//! stream open, and predicts `SUB_DRAIN_FOLLOWED` on its own: nothing
//! unless a stream is open; else `CloseStream { PeerDraining }`, then
//! `Connect { last_seq_seen }` at once if the stream has been open `base`,
//! or exactly a `Resubscribe` deadline at open + `base`; no failure counted
//! by the backoff, `drain_swaps` counted. Nothing is lost or applied twice
//! across the move: the ledger and `SUB_CATCHES_UP` see to that.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::vec::Vec;
use core::time::Duration;

use super::contract::{drain, timeout_checked};
use super::Violation;
use crate::machine::Machine;
use crate::subscription::{
    CloseReason, InvalidateReason, Subscription, SubscriptionAction, SubscriptionConfig,
    SubscriptionStats, SubscriptionTimer,
};
use crate::time::{Deadline, Timestamp};

/// The epoch of forged events (sent by no gateway lifetime).
pub const FORGED_EPOCH: u64 = u64::MAX;

/// The real gateway's replay ring and live channel: 1,024 events each.
pub const GATEWAY_BUFFER: usize = 1_024;

/// Largest ring or channel a model gateway accepts (keeps fuzz runs small).
pub const MAX_MODEL_BUFFER: usize = 4_096;

/// Payload of model events: which gateway lifetime sent which sequence
/// number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag {
    /// The gateway lifetime, from 0; [`FORGED_EPOCH`] for forged events.
    pub epoch: u64,
    /// The sequence number the event was sent with.
    pub seq: u64,
}

impl Tag {
    /// Whether no gateway lifetime sent this event.
    pub fn is_forged(&self) -> bool {
        self.epoch == FORGED_EPOCH
    }
}

/// One subscriber's state in a model of the gateway's invalidation hub:
/// sequence numbers from 1 per lifetime, a replay ring of the last
/// `replay_ring` events, a live channel of `live_channel` messages that skips
/// events when full (the subscriber must notice the gap), and restarts that
/// begin a new lifetime at seq 1 with an empty ring and no filtering by
/// `last_seq_seen`.
#[derive(Clone, Debug)]
pub struct ModelGateway {
    epoch: u64,
    head: u64,
    ring: VecDeque<u64>,
    ring_cap: usize,
    live_cap: usize,
    stream: Option<VecDeque<Tag>>,
    /// Events the live channel skipped on the open stream.
    skipped: u64,
    acked: u64,
}

impl ModelGateway {
    /// A gateway in lifetime 0 with no events; both sizes are clamped to
    /// `[1, MAX_MODEL_BUFFER]`.
    pub fn new(replay_ring: usize, live_channel: usize) -> Self {
        ModelGateway {
            epoch: 0,
            head: 0,
            ring: VecDeque::new(),
            ring_cap: replay_ring.clamp(1, MAX_MODEL_BUFFER),
            live_cap: live_channel.clamp(1, MAX_MODEL_BUFFER),
            stream: None,
            skipped: 0,
            acked: 0,
        }
    }

    /// The current lifetime, from 0; it changes on every restart, and is
    /// what the gateway announces as its lifetime epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The last sequence number of the current lifetime (0 before any event).
    pub fn head(&self) -> u64 {
        self.head
    }

    /// The latest event of the current lifetime, if any.
    pub fn latest(&self) -> Option<Tag> {
        (self.head > 0).then_some(Tag {
            epoch: self.epoch,
            seq: self.head,
        })
    }

    /// Whether a stream to this subscriber is open.
    pub fn is_streaming(&self) -> bool {
        self.stream.is_some()
    }

    /// Messages queued on the open stream.
    pub fn pending(&self) -> usize {
        self.stream.as_ref().map_or(0, VecDeque::len)
    }

    /// The oldest event the ring holds, or the next sequence number when it
    /// holds none: the first event a subscribe from 0 delivers.
    pub fn oldest_held(&self) -> u64 {
        self.ring
            .front()
            .copied()
            .unwrap_or_else(|| self.head.saturating_add(1))
    }

    /// Events the live channel skipped on the open stream (0 when none is
    /// open).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The highest sequence number acked in this lifetime.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Open a stream (replacing any): queue every buffered event with
    /// `seq > last_seq_seen`, then live events.
    pub fn subscribe(&mut self, last_seq_seen: u64) {
        let epoch = self.epoch;
        let replay = self
            .ring
            .iter()
            .filter(|&&seq| seq > last_seq_seen)
            .map(|&seq| Tag { epoch, seq })
            .collect();
        self.stream = Some(replay);
        self.skipped = 0;
    }

    /// A new event: buffered, and queued on the open stream unless its live
    /// channel is full (then this subscriber silently misses it).
    pub fn publish(&mut self) -> Tag {
        let tag = self.buffer_next();
        let live_cap = self.live_cap;
        if let Some(out) = self.stream.as_mut() {
            if out.len() < live_cap {
                out.push_back(tag);
            } else {
                self.skipped += 1;
            }
        }
        tag
    }

    /// A new event that the live channel skips for this subscriber (it lags);
    /// it stays in the replay ring.
    pub fn publish_lagging(&mut self) -> Tag {
        if self.stream.is_some() {
            self.skipped += 1;
        }
        self.buffer_next()
    }

    /// Restart: a new lifetime at seq 1 with an empty ring. Returns whether a
    /// stream was open (it ends).
    pub fn restart(&mut self) -> bool {
        self.epoch = self.epoch.saturating_add(1);
        self.head = 0;
        self.acked = 0;
        self.ring.clear();
        self.stream.take().is_some()
    }

    /// Drop the open stream. Returns whether one was open.
    pub fn close(&mut self) -> bool {
        self.stream.take().is_some()
    }

    /// The next message on the open stream.
    pub fn next_message(&mut self) -> Option<Tag> {
        self.stream.as_mut().and_then(VecDeque::pop_front)
    }

    /// The subscriber acked `seq`.
    pub fn ack(&mut self, seq: u64) {
        self.acked = self.acked.max(seq);
    }

    fn buffer_next(&mut self) -> Tag {
        self.head = self.head.saturating_add(1);
        if self.ring.len() >= self.ring_cap {
            self.ring.pop_front();
        }
        self.ring.push_back(self.head);
        Tag {
            epoch: self.epoch,
            seq: self.head,
        }
    }
}

/// How a forged event picks its sequence number, relative to the machine's
/// `last_seq_seen`.
#[derive(Clone, Copy, Debug, arbitrary::Arbitrary)]
pub enum Forged {
    /// `last + 1`.
    Next,
    /// `last - k` (0, an invalid seq, when that underflows).
    Duplicate(u8),
    /// `last + 2 + k`: a gap.
    Gap(u8),
    /// `1 + k`: what a restarted gateway sends.
    Small(u8),
    /// Any value, 0 and `u64::MAX` included.
    Raw(u64),
    /// 0, never valid.
    Zero,
}

/// One input to the harness.
#[derive(Clone, Copy, Debug, arbitrary::Arbitrary)]
pub enum Op {
    /// Advance time by this many milliseconds (then fire due timers).
    Advance(u32),
    /// Jump to the next reported deadline and fire it.
    Wake,
    /// The pending attempt connected (the gateway accepts the stream); the
    /// gateway announces no lifetime epoch.
    Connected,
    /// The pending attempt connected and the gateway announced its lifetime
    /// epoch: the driver calls `on_gateway_epoch` right after `on_connected`.
    ConnectedWithEpoch,
    /// The driver reports this lifetime epoch, whatever the state (a lying
    /// peer or a buggy driver).
    Epoch(u64),
    /// The attempt failed or the stream ended (error, clean end, cancel...).
    Disconnected,
    /// The gateway publishes `1 + n % 8` events.
    Publish(u8),
    /// Deliver up to `1 + n % 32` messages of the open stream, draining after
    /// each.
    Deliver(u8),
    /// The gateway publishes `1 + n % 4` events its live channel skips.
    Lag(u8),
    /// The gateway restarts (an open stream ends).
    GatewayRestart,
    /// A forged event arrives (on the open stream, or with none open).
    Forge(Forged),
    /// Deliver up to `n` messages without draining in between (a slow
    /// driver), then drain.
    Burst(u8),
    /// Stop the machine.
    Stop,
    /// Start the machine.
    Start,
    /// The peer of the open stream's connection is draining (an HTTP/2
    /// GOAWAY): the driver calls `on_peer_draining`. The model gateway goes
    /// on as it is (a replacement sharing its hub; combine with
    /// [`Op::GatewayRestart`] for one that does not).
    PeerDraining,
}

/// Parameters of a [`Harness`].
#[derive(Clone, Debug)]
pub struct HarnessConfig {
    /// The machine's config.
    pub subscription: SubscriptionConfig,
    /// The model gateway's replay ring.
    pub replay_ring: usize,
    /// The model gateway's live channel.
    pub live_channel: usize,
}

impl Default for HarnessConfig {
    fn default() -> Self {
        HarnessConfig {
            subscription: SubscriptionConfig::default(),
            replay_ring: GATEWAY_BUFFER,
            live_channel: GATEWAY_BUFFER,
        }
    }
}

impl HarnessConfig {
    /// The defaults with a given jitter seed.
    pub fn with_seed(seed: u64) -> Self {
        HarnessConfig {
            subscription: SubscriptionConfig::with_seed(seed),
            ..Self::default()
        }
    }
}

/// The reference model's view of the machine's stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    Stopped,
    Waiting,
    Connecting { last_seq_seen: u64 },
    Open { fresh: bool },
}

type Action = SubscriptionAction<Tag>;

/// Drives a [`Subscription`] against a [`ModelGateway`] with [`Op`]s and
/// checks every invariant after each.
#[derive(Debug)]
pub struct Harness {
    /// The machine under test.
    pub machine: Subscription<Tag>,
    /// The gateway the harness executes the machine's actions against.
    pub gateway: ModelGateway,
    /// Simulated now.
    pub now: Timestamp,
    /// The last applied event, as executed.
    pub last_applied: Option<Tag>,
    /// Times a new lifetime's events were applied with no `InvalidateAll`:
    /// the restart was invisible to sequence numbers (see the module docs of
    /// [`crate::subscription`]).
    pub undetectable_restarts: u64,
    /// A digest of every action with the instant it was drained: equal
    /// digests mean equal outputs.
    pub digest: u64,
    max_queued: usize,
    link: Link,
    last: u64,
    executed_last: u64,
    expected: VecDeque<(Action, &'static str)>,
    want: SubscriptionStats,
    connects: u64,
    prev_real: Option<Tag>,
    forged_applied: bool,
    epoch: Option<u64>,
    announcing: bool,
    epochs_honest: bool,
    invalidated_since_real: bool,
    /// The model's `restart_probe`: the open stream was opened from
    /// `last_seq_seen > 0` and announced a new epoch, no event adopted yet.
    probe: bool,
    /// The oldest event the gateway held when the current stream was
    /// subscribed (`SUB_RESTART_LOSES_NOTHING_HELD`).
    held_from: u64,
    /// The `last_seq_seen` of the last executed `Connect`.
    last_connect_from: u64,
    /// The model's ack rule: its own config copy, count and deadline.
    ack_every: u32,
    ack_delay: Duration,
    model_unacked: u32,
    model_first_unacked: Option<Timestamp>,
    /// The stream check's view of the current stream, as executed.
    view: StreamView,
    /// When the last `Ack` was executed (any stream).
    last_ack_at: Option<Timestamp>,
    /// The backoff's `base`, from the config alone (clamped as the machine
    /// clamps it): the spacing of resubscribes caused by drains.
    base: Duration,
    /// When the model's open stream was opened.
    opened_at: Timestamp,
    /// The window of the resubscribe deadline a drain set
    /// (`SUB_DRAIN_FOLLOWED`): never before `base` after the stream opened,
    /// at most `base` of spread after the drain (none without jitter).
    drain_wait: Option<(Timestamp, Timestamp)>,
    /// Whether the backoff spreads its delays (`jitter` is not 0).
    spread: bool,
    /// Whether the batch being executed came from `handle_timeout`.
    in_timeout: bool,
}

/// The current stream as the executed actions show it.
#[derive(Clone, Copy, Debug, Default)]
struct StreamView {
    newest_applied: Option<u64>,
    last_ack: Option<u64>,
    unacked: u32,
    first_unacked_at: Option<Timestamp>,
}

impl Harness {
    /// A started machine with `config`, its first `Connect` executed.
    pub fn new(config: HarnessConfig) -> Result<Self, Violation> {
        let ack_every = config.subscription.ack_every.max(1);
        let ack_delay = config.subscription.ack_delay;
        let base = config.subscription.backoff.clamped().base;
        let spread = config.subscription.backoff.clamped().jitter != 0.0;
        let machine = Subscription::new(config.subscription);
        let max_queued = machine.config().max_queued_actions;
        let mut h = Harness {
            machine,
            gateway: ModelGateway::new(config.replay_ring, config.live_channel),
            now: Timestamp::ZERO,
            last_applied: None,
            undetectable_restarts: 0,
            digest: 0xCBF2_9CE4_8422_2325,
            max_queued,
            link: Link::Stopped,
            last: 0,
            executed_last: 0,
            expected: VecDeque::new(),
            want: SubscriptionStats::default(),
            connects: 0,
            prev_real: None,
            forged_applied: false,
            epoch: None,
            announcing: false,
            epochs_honest: true,
            invalidated_since_real: false,
            probe: false,
            held_from: 1,
            last_connect_from: 0,
            ack_every,
            ack_delay,
            model_unacked: 0,
            model_first_unacked: None,
            view: StreamView::default(),
            last_ack_at: None,
            in_timeout: false,
            base,
            opened_at: Timestamp::ZERO,
            drain_wait: None,
            spread,
        };
        h.apply(Op::Start)?;
        Ok(h)
    }

    /// Apply one input and check every invariant.
    pub fn apply(&mut self, op: Op) -> Result<(), Violation> {
        match op {
            Op::Advance(ms) => {
                self.now = self.now + Duration::from_millis(u64::from(ms));
                self.fire_timeout()?;
            }
            Op::Wake => {
                if let Some(d) = self.machine.poll_timeout() {
                    self.now = self.now.max(d.at);
                }
                self.fire_timeout()?;
            }
            Op::Connected | Op::ConnectedWithEpoch => {
                let announce = matches!(op, Op::ConnectedWithEpoch);
                self.machine.on_connected(self.now);
                let mut name = "SUB_MODEL_AGREES";
                if let Link::Connecting { last_seq_seen } = self.link {
                    self.held_from = self.gateway.oldest_held();
                    self.gateway.subscribe(last_seq_seen);
                    self.link = Link::Open { fresh: true };
                    self.opened_at = self.now;
                    self.announcing = announce;
                    if announce {
                        let epoch = self.gateway.epoch();
                        self.machine.on_gateway_epoch(self.now, epoch);
                        name = self.model_epoch(epoch);
                    } else {
                        self.epochs_honest = false;
                    }
                }
                self.after_input(name)?;
                self.drain_checked()?;
            }
            Op::Epoch(epoch) => {
                self.machine.on_gateway_epoch(self.now, epoch);
                if self.link == (Link::Open { fresh: true }) {
                    self.epochs_honest = false;
                }
                let name = self.model_epoch(epoch);
                self.after_input(name)?;
                self.drain_checked()?;
            }
            Op::Disconnected => {
                self.machine.on_disconnected(self.now);
                if matches!(self.link, Link::Open { .. } | Link::Connecting { .. }) {
                    self.gateway.close();
                    self.view = StreamView::default();
                    self.model_leave(Link::Waiting);
                }
                self.after_input("SUB_MODEL_AGREES")?;
                self.drain_checked()?;
            }
            Op::Publish(n) => {
                for _ in 0..=(n % 8) {
                    self.gateway.publish();
                }
            }
            Op::Lag(n) => {
                for _ in 0..=(n % 4) {
                    self.gateway.publish_lagging();
                }
            }
            Op::Deliver(n) => {
                for _ in 0..=(n % 32) {
                    let Some(tag) = self.gateway.next_message() else {
                        break;
                    };
                    self.event(tag.seq, tag)?;
                    self.drain_checked()?;
                }
            }
            Op::Burst(n) => {
                for _ in 0..n {
                    let Some(tag) = self.gateway.next_message() else {
                        break;
                    };
                    self.event(tag.seq, tag)?;
                }
                self.drain_checked()?;
            }
            Op::GatewayRestart => {
                if self.gateway.restart() {
                    // The stream ends with the old lifetime.
                    self.machine.on_disconnected(self.now);
                    self.view = StreamView::default();
                    self.model_leave(Link::Waiting);
                    self.after_input("SUB_MODEL_AGREES")?;
                    self.drain_checked()?;
                }
            }
            Op::Forge(f) => {
                let last = self.last;
                let seq = match f {
                    Forged::Next => last.saturating_add(1),
                    Forged::Duplicate(k) => last.saturating_sub(u64::from(k)),
                    Forged::Gap(k) => last.saturating_add(2).saturating_add(u64::from(k)),
                    Forged::Small(k) => 1 + u64::from(k),
                    Forged::Raw(x) => x,
                    Forged::Zero => 0,
                };
                let tag = Tag {
                    epoch: FORGED_EPOCH,
                    seq,
                };
                self.event(seq, tag)?;
                self.drain_checked()?;
            }
            Op::Stop => {
                self.machine.stop();
                if matches!(self.link, Link::Open { .. } | Link::Connecting { .. }) {
                    self.expect(
                        SubscriptionAction::CloseStream {
                            reason: CloseReason::Stopped,
                        },
                        "SUB_MODEL_AGREES",
                    );
                }
                self.model_leave(Link::Stopped);
                self.after_input("SUB_MODEL_AGREES")?;
                self.drain_checked()?;
            }
            Op::PeerDraining => {
                let failures = self.machine.backoff().consecutive_failures();
                let acted = self.machine.on_peer_draining(self.now);
                let open = matches!(self.link, Link::Open { .. });
                crate::ensure_invariant!(
                    acted == open,
                    "SUB_DRAIN_FOLLOWED",
                    "on_peer_draining acted: {acted}, model link {:?}",
                    self.link
                );
                if open {
                    self.want.drain_swaps += 1;
                    self.expect(
                        SubscriptionAction::CloseStream {
                            reason: CloseReason::PeerDraining,
                        },
                        "SUB_DRAIN_FOLLOWED",
                    );
                    let floor = self.opened_at.saturating_add(self.base);
                    let lo = floor.max(self.now);
                    self.model_leave(Link::Waiting);
                    // A drawn spread is learnt from the machine: a reopen
                    // at once (a spread of 0, only when `base` has passed
                    // since the stream opened) or a deadline in the window.
                    let waits = self
                        .machine
                        .poll_timeout()
                        .is_some_and(|d| d.reason == SubscriptionTimer::Resubscribe);
                    if self.spread && (waits || lo > self.now) {
                        let hi =
                            floor.max(self.now.saturating_add(self.base) + Duration::from_nanos(2));
                        self.drain_wait = Some((lo, hi));
                    } else if lo <= self.now {
                        self.expect_connect();
                    } else {
                        self.drain_wait = Some((lo, lo));
                    }
                }
                self.after_input("SUB_DRAIN_FOLLOWED")?;
                self.drain_checked()?;
                crate::ensure_invariant!(
                    self.machine.backoff().consecutive_failures() == failures,
                    "SUB_DRAIN_FOLLOWED",
                    "a drain counted a failure: {failures} -> {}",
                    self.machine.backoff().consecutive_failures()
                );
            }
            Op::Start => {
                self.machine.start(self.now);
                if self.link == Link::Stopped {
                    self.expect_connect();
                }
                self.after_input("SUB_NEVER_GIVES_UP")?;
                self.drain_checked()?;
            }
        }
        self.check_state()
    }

    /// Leave the client alone with a well-behaved gateway: reconnect, publish
    /// and deliver until the client has applied the gateway's latest event.
    /// Fails with `SUB_CATCHES_UP` if it does not within a few rounds.
    pub fn settle(&mut self) -> Result<(), Violation> {
        if self.link == Link::Stopped {
            self.apply(Op::Start)?;
        }
        if matches!(self.link, Link::Open { .. }) {
            self.apply(Op::Disconnected)?;
        }
        for _round in 0..8 {
            self.apply(Op::Publish(0))?;
            for _ in 0..2 {
                if self.link == Link::Waiting {
                    self.apply(Op::Wake)?;
                }
            }
            if matches!(self.link, Link::Connecting { .. }) {
                self.apply(if self.announcing {
                    Op::ConnectedWithEpoch
                } else {
                    Op::Connected
                })?;
            }
            while matches!(self.link, Link::Open { .. }) && self.gateway.pending() > 0 {
                self.apply(Op::Deliver(31))?;
            }
            if self.last_applied.is_some() && self.last_applied == self.gateway.latest() {
                // The last applies' ack is due within ack_delay: fire it; the
                // gateway then holds nothing applied and unacked.
                if self.view.unacked > 0 {
                    self.apply(Op::Wake)?;
                }
                crate::ensure_invariant!(
                    self.view.unacked == 0 && self.gateway.acked() >= self.gateway.head(),
                    "SUB_ACK_CUMULATIVE_BOUNDED",
                    "caught up at {:?}, yet the gateway's acked seq is {} ({:?})",
                    self.last_applied,
                    self.gateway.acked(),
                    self.view
                );
                return Ok(());
            }
        }
        Err(Violation::new(
            "SUB_CATCHES_UP",
            format!(
                "after 8 rounds the client is at {:?}, the gateway at {:?}",
                self.last_applied,
                self.gateway.latest()
            ),
        ))
    }

    /// Feed one event to the machine and to the reference model.
    fn event(&mut self, seq: u64, tag: Tag) -> Result<(), Violation> {
        self.machine.on_event(self.now, seq, tag);
        let name = self.model_event(seq, tag);
        self.after_input(name)
    }

    /// The rules, as the reference model: update the model and queue the
    /// expected actions. Returns the invariant the input exercises.
    fn model_event(&mut self, seq: u64, tag: Tag) -> &'static str {
        let fresh = match self.link {
            Link::Open { fresh } if seq != 0 => fresh,
            _ => {
                self.want.ignored += 1;
                return "SUB_BAD_INPUT_COUNTED";
            }
        };
        if fresh && self.probe && seq > 1 {
            self.model_leave(Link::Waiting);
            self.expect(
                SubscriptionAction::CloseStream {
                    reason: CloseReason::EpochChanged,
                },
                "SUB_RESTART_LOSES_NOTHING_HELD",
            );
            self.expect_connect();
            return "SUB_RESTART_LOSES_NOTHING_HELD";
        }
        let last = self.last;
        let next = last.saturating_add(1);
        let (invalidate, name) = if fresh {
            if last > 0 && seq <= last {
                (Some(InvalidateReason::Restart), "SUB_RESTART_NEVER_DROPPED")
            } else if seq > next {
                (
                    Some(InvalidateReason::UnreplayableGap),
                    "SUB_UNREPLAYABLE_INVALIDATES",
                )
            } else {
                (None, "SUB_APPLY_EXACTLY_ONCE")
            }
        } else if seq <= last {
            self.want.duplicates += 1;
            return "SUB_DUPLICATE_DROPPED";
        } else if seq > next {
            self.want.gaps += 1;
            self.model_leave(Link::Waiting);
            let reason = CloseReason::Gap {
                last_seq_seen: last,
                got: seq,
            };
            self.expect(
                SubscriptionAction::CloseStream { reason },
                "SUB_NOTHING_AFTER_GAP",
            );
            return "SUB_NOTHING_AFTER_GAP";
        } else {
            (None, "SUB_APPLY_EXACTLY_ONCE")
        };
        let needed = if invalidate.is_some() { 3 } else { 2 };
        if self.expected.len() + needed > self.max_queued {
            self.want.backlog_closes += 1;
            self.model_leave(Link::Waiting);
            self.expect(
                SubscriptionAction::CloseStream {
                    reason: CloseReason::Backlog,
                },
                "SUB_BOUNDED_QUEUE",
            );
            return "SUB_BOUNDED_QUEUE";
        }
        if let Some(reason) = invalidate {
            match reason {
                InvalidateReason::Restart => self.want.restarts += 1,
                InvalidateReason::UnreplayableGap => self.want.unreplayable_gaps += 1,
            }
            self.expect(SubscriptionAction::InvalidateAll { reason }, name);
        }
        self.last = seq;
        self.want.applied += 1;
        self.link = Link::Open { fresh: false };
        self.probe = false;
        self.expect(SubscriptionAction::Apply { seq, event: tag }, name);
        self.model_first_unacked.get_or_insert(self.now);
        self.model_unacked += 1;
        if self.model_unacked >= self.ack_every {
            self.model_ack();
        }
        name
    }

    /// The model's stream ends (or was never open): its pending ack goes.
    fn model_leave(&mut self, link: Link) {
        self.link = link;
        self.drain_wait = None;
        self.probe = false;
        self.model_unacked = 0;
        self.model_first_unacked = None;
    }

    /// The model expects the cumulative ack of the newest applied event.
    fn model_ack(&mut self) {
        self.model_unacked = 0;
        self.model_first_unacked = None;
        self.want.acks += 1;
        self.expect(
            SubscriptionAction::Ack { seq: self.last },
            "SUB_ACK_CUMULATIVE_BOUNDED",
        );
    }

    /// When the model's pending ack is due.
    fn model_ack_due(&self) -> Option<Timestamp> {
        self.model_first_unacked.map(|t| t + self.ack_delay)
    }

    /// The reference model of `on_gateway_epoch`. Returns the invariant the
    /// input exercises.
    fn model_epoch(&mut self, epoch: u64) -> &'static str {
        if self.link != (Link::Open { fresh: true }) {
            return "SUB_BAD_INPUT_COUNTED";
        }
        let previous = self.epoch.replace(epoch);
        if previous.is_some_and(|p| p != epoch) {
            let restart = SubscriptionAction::InvalidateAll {
                reason: InvalidateReason::Restart,
            };
            // One not yet drained covers this one too.
            if self.expected.back().map(|(a, _)| a) != Some(&restart) {
                self.want.restarts += 1;
                self.expect(restart, "SUB_EPOCH_CHANGE_RESETS");
            }
            // The stream is kept; a first event other than seq 1 on a stream
            // opened from further on resubscribes from 0 at once.
            self.probe |= self.last > 0;
            self.last = 0;
        }
        "SUB_EPOCH_CHANGE_RESETS"
    }

    fn expect(&mut self, action: Action, invariant: &'static str) {
        self.expected.push_back((action, invariant));
    }

    fn expect_connect(&mut self) {
        self.drain_wait = None;
        self.link = Link::Connecting {
            last_seq_seen: self.last,
        };
        self.expect(
            SubscriptionAction::Connect {
                last_seq_seen: self.last,
            },
            "SUB_RESUME_FROM_LAST",
        );
    }

    /// After one input: the machine queued exactly what the model expects,
    /// and no more than its bound allows.
    fn after_input(&self, invariant: &'static str) -> Result<(), Violation> {
        let queued = self.machine.queued_actions();
        if queued > self.max_queued.saturating_add(2) {
            return Err(Violation::new(
                "SUB_BOUNDED_QUEUE",
                format!("{queued} actions queued, bound {}", self.max_queued),
            ));
        }
        if queued != self.expected.len() {
            return Err(Violation::new(
                invariant,
                format!(
                    "machine queued {queued} action(s), model expects {:?}",
                    self.expected
                ),
            ));
        }
        Ok(())
    }

    fn fire_timeout(&mut self) -> Result<(), Violation> {
        if self.model_ack_due().is_some_and(|at| at <= self.now) {
            self.model_ack();
        }
        let due = matches!(self.machine.poll_timeout(), Some(d) if d.at <= self.now);
        if due && self.link == Link::Waiting {
            self.expect_connect();
        }
        let got = timeout_checked(&mut self.machine, self.now)?;
        self.in_timeout = true;
        let settled = self.settle_batch(got);
        self.in_timeout = false;
        settled
    }

    fn drain_checked(&mut self) -> Result<(), Violation> {
        let got = drain(&mut self.machine)?;
        self.settle_batch(got)
    }

    /// Check a drained batch as a property of the action stream, execute it
    /// against the gateway, then compare it with the model's prediction.
    fn settle_batch(&mut self, got: Vec<Action>) -> Result<(), Violation> {
        self.execute(&got)?;
        let expected: Vec<(Action, &'static str)> = self.expected.drain(..).collect();
        for i in 0..got.len().max(expected.len()) {
            match (got.get(i), expected.get(i)) {
                (Some(g), Some((e, _))) if g == e => {}
                (g, Some((e, inv))) => {
                    return Err(Violation::new(
                        inv,
                        format!("action {i}: expected {e:?}, got {g:?} (batch {got:?})"),
                    ))
                }
                (g, None) => {
                    return Err(Violation::new(
                        "SUB_MODEL_AGREES",
                        format!("unexpected action {i}: {g:?} (batch {got:?})"),
                    ))
                }
            }
        }
        Ok(())
    }

    /// The action-stream properties, and the driver's side effects.
    fn execute(&mut self, got: &[Action]) -> Result<(), Violation> {
        let mut invalidated: Option<InvalidateReason> = None;
        let mut i = 0;
        while i < got.len() {
            self.record(&got[i]);
            match &got[i] {
                SubscriptionAction::InvalidateAll { reason } => {
                    self.invalidated_since_real = true;
                    if *reason == InvalidateReason::Restart && i + 1 == got.len() {
                        // An epoch announcement: the machine starts the
                        // announced lifetime over, from 0.
                        self.executed_last = 0;
                        // The ledger restarts at the announced lifetime: its
                        // events come again from its oldest held, after the
                        // cache was emptied. A lie names no lifetime: forget
                        // the ledger.
                        self.prev_real = self
                            .epoch
                            .filter(|&e| e == self.gateway.epoch())
                            .map(|epoch| Tag { epoch, seq: 0 });
                        i += 1;
                        continue;
                    }
                    let Some(SubscriptionAction::Apply { seq, event }) = got.get(i + 1) else {
                        return Err(Violation::new(
                            "SUB_NO_SILENT_LOSS",
                            format!(
                                "InvalidateAll neither directly followed by Apply nor \
                                 alone for an epoch announcement: {got:?}"
                            ),
                        ));
                    };
                    let last = self.executed_last;
                    match reason {
                        InvalidateReason::Restart => crate::ensure_invariant!(
                            last > 0 && *seq <= last,
                            "SUB_RESTART_NEVER_DROPPED",
                            "InvalidateAll(Restart) before seq {seq} with last {last}"
                        ),
                        InvalidateReason::UnreplayableGap => crate::ensure_invariant!(
                            *seq > last.saturating_add(1),
                            "SUB_UNREPLAYABLE_INVALIDATES",
                            "InvalidateAll(UnreplayableGap) before seq {seq} with last {last}"
                        ),
                    }
                    // Once forged events were adopted (this one included),
                    // real events may legitimately be re-applied after an
                    // InvalidateAll: the cache they touched was emptied.
                    self.forged_applied |= event.is_forged();
                    if self.forged_applied {
                        self.prev_real = None;
                    }
                    invalidated = Some(*reason);
                }
                SubscriptionAction::Apply { seq, event } => {
                    let last = self.executed_last;
                    crate::ensure_invariant!(
                        invalidated.is_some() || *seq == last.saturating_add(1),
                        "SUB_NO_SILENT_LOSS",
                        "Apply {seq} after {last} without InvalidateAll"
                    );
                    crate::ensure_invariant!(
                        event.seq == *seq,
                        "SUB_APPLY_EXACTLY_ONCE",
                        "Apply {seq} carries the payload of {event:?}"
                    );
                    self.ledger(*event, invalidated)?;
                    self.executed_last = *seq;
                    self.last_applied = Some(*event);
                    invalidated = None;
                    self.view.newest_applied = Some(*seq);
                    self.view.unacked += 1;
                    self.view.first_unacked_at.get_or_insert(self.now);
                }
                SubscriptionAction::Ack { seq } => self.check_ack(*seq, got)?,
                SubscriptionAction::Connect { last_seq_seen } => {
                    crate::ensure_invariant!(
                        *last_seq_seen == self.executed_last,
                        "SUB_RESUME_FROM_LAST",
                        "Connect from {last_seq_seen}, last applied {}",
                        self.executed_last
                    );
                    crate::ensure_invariant!(
                        self.view.unacked == 0 && !self.gateway.is_streaming(),
                        "SUB_ACK_CUMULATIVE_BOUNDED",
                        "Connect while a stream is open ({:?})",
                        self.view
                    );
                    self.view = StreamView::default();
                    self.connects += 1;
                    self.last_connect_from = *last_seq_seen;
                }
                SubscriptionAction::CloseStream { reason } => {
                    self.gateway.close();
                    self.view = StreamView::default();
                    if *reason == CloseReason::PeerDraining {
                        // The move to a fresh connection resumes from the
                        // last applied event: at once (the `Connect` is
                        // next), or at the drain's deadline (checked in
                        // `check_state`), never with anything between.
                        crate::ensure_invariant!(
                            got.get(i + 1).is_none_or(|a| *a
                                == SubscriptionAction::Connect {
                                    last_seq_seen: self.executed_last
                                }),
                            "SUB_DRAIN_FOLLOWED",
                            "CloseStream(PeerDraining) with last {} followed by {got:?}",
                            self.executed_last
                        );
                    }
                    if *reason == CloseReason::EpochChanged {
                        // The resubscribe after a restart: at once, from 0,
                        // and only from a stream opened from further on (so
                        // never twice without a backoff delay between).
                        crate::ensure_invariant!(
                            self.executed_last == 0
                                && self.last_connect_from > 0
                                && got.get(i + 1)
                                    == Some(&SubscriptionAction::Connect { last_seq_seen: 0 }),
                            "SUB_RESTART_LOSES_NOTHING_HELD",
                            "CloseStream(EpochChanged) with last {} on a stream opened from \
                             {}: {got:?}",
                            self.executed_last,
                            self.last_connect_from
                        );
                    }
                }
            }
            i += 1;
        }
        Ok(())
    }

    /// `SUB_ACK_CUMULATIVE_BOUNDED` for one executed `Ack`: it names the
    /// newest applied seq of the current stream and exceeds the stream's
    /// previous ack; on an apply it comes exactly when `ack_every` applies
    /// are unacked, from the timer only once due and at least `ack_delay`
    /// after the previous ack.
    fn check_ack(&mut self, seq: u64, got: &[Action]) -> Result<(), Violation> {
        let v = self.view;
        crate::ensure_invariant!(
            v.newest_applied == Some(seq) && v.unacked > 0,
            "SUB_ACK_CUMULATIVE_BOUNDED",
            "Ack {seq}, but the newest applied seq of this stream is {:?} \
             with {} unacked: {got:?}",
            v.newest_applied,
            v.unacked
        );
        crate::ensure_invariant!(
            v.last_ack.is_none_or(|a| seq > a),
            "SUB_ACK_CUMULATIVE_BOUNDED",
            "Ack {seq} after Ack {:?} on the same stream",
            v.last_ack
        );
        if self.in_timeout {
            let first = v.first_unacked_at.unwrap_or(self.now);
            crate::ensure_invariant!(
                first + self.ack_delay <= self.now,
                "SUB_ACK_CUMULATIVE_BOUNDED",
                "timer Ack {seq} at {:?}, first unacked apply at {first:?}, not due",
                self.now
            );
            crate::ensure_invariant!(
                self.last_ack_at
                    .is_none_or(|at| at + self.ack_delay <= self.now),
                "SUB_ACK_CUMULATIVE_BOUNDED",
                "timer Ack {seq} at {:?}, less than ack_delay after the ack at {:?}",
                self.now,
                self.last_ack_at
            );
        } else {
            crate::ensure_invariant!(
                v.unacked == self.ack_every,
                "SUB_ACK_CUMULATIVE_BOUNDED",
                "Ack {seq} on an apply with {} unacked, ack_every {}",
                v.unacked,
                self.ack_every
            );
        }
        self.gateway.ack(seq);
        self.view.last_ack = Some(seq);
        self.view.unacked = 0;
        self.view.first_unacked_at = None;
        self.last_ack_at = Some(self.now);
        Ok(())
    }

    /// `SUB_ACK_CUMULATIVE_BOUNDED` after a step, the machine drained:
    /// every apply of the current stream is acked, or fewer than
    /// `ack_every` are unacked, a deadline no later than the first one's
    /// instant + `ack_delay` is reported, and `handle_timeout` there acks
    /// the newest applied seq.
    fn check_acks_bounded(&self) -> Result<(), Violation> {
        let v = self.view;
        let Some(first) = v.first_unacked_at else {
            crate::ensure_invariant!(
                v.unacked == 0,
                "SUB_ACK_CUMULATIVE_BOUNDED",
                "{} unacked with no first apply instant",
                v.unacked
            );
            return Ok(());
        };
        crate::ensure_invariant!(
            v.unacked > 0 && v.unacked < self.ack_every,
            "SUB_ACK_CUMULATIVE_BOUNDED",
            "{} applies of the stream unacked after a drain, ack_every {}",
            v.unacked,
            self.ack_every
        );
        let due = first + self.ack_delay;
        let deadline = self.machine.poll_timeout();
        let Some(d) = deadline.filter(|d| d.at <= due) else {
            return Err(Violation::new(
                "SUB_ACK_CUMULATIVE_BOUNDED",
                format!(
                    "{} unacked since {first:?}: deadline {deadline:?}, due by {due:?}",
                    v.unacked
                ),
            ));
        };
        let mut copy = self.machine.clone();
        copy.handle_timeout(d.at);
        let fired = drain(&mut copy)?;
        let want = v.newest_applied.map(|seq| SubscriptionAction::Ack { seq });
        crate::ensure_invariant!(
            fired.len() == 1 && fired.first() == want.as_ref(),
            "SUB_ACK_CUMULATIVE_BOUNDED",
            "handle_timeout at {:?} fired {fired:?}, expected {want:?}",
            d.at
        );
        Ok(())
    }

    /// `SUB_APPLY_EXACTLY_ONCE` per gateway lifetime, and, while every
    /// stream announced the true epoch, `SUB_EPOCH_CHANGE_RESETS`: the first
    /// event applied of a new lifetime is its seq 1, or the ring no longer
    /// held it (`InvalidateAll { UnreplayableGap }` right before), and the
    /// restart was noticed (an `InvalidateAll` since the previous event).
    fn ledger(&mut self, tag: Tag, invalidated: Option<InvalidateReason>) -> Result<(), Violation> {
        if tag.is_forged() {
            self.forged_applied = true;
            return Ok(());
        }
        let noticed = core::mem::replace(&mut self.invalidated_since_real, false);
        if let Some(prev) = self.prev_real {
            crate::ensure_invariant!(
                tag > prev,
                "SUB_APPLY_EXACTLY_ONCE",
                "applied {tag:?} after {prev:?}"
            );
            if tag.epoch != prev.epoch {
                if !noticed {
                    self.undetectable_restarts += 1;
                }
                if self.epochs_honest && !self.forged_applied {
                    crate::ensure_invariant!(
                        noticed,
                        "SUB_EPOCH_CHANGE_RESETS",
                        "lifetime {} began at {tag:?} unnoticed (previous {prev:?})",
                        tag.epoch
                    );
                    crate::ensure_invariant!(
                        tag.seq == 1 || invalidated == Some(InvalidateReason::UnreplayableGap),
                        "SUB_EPOCH_CHANGE_RESETS",
                        "lifetime {} began at {tag:?}: its first events were lost",
                        tag.epoch
                    );
                }
            } else if prev.seq == 0 && self.epochs_honest && !self.forged_applied {
                crate::ensure_invariant!(
                    tag.seq == 1 || invalidated == Some(InvalidateReason::UnreplayableGap),
                    "SUB_EPOCH_CHANGE_RESETS",
                    "after the epoch change the lifetime resumed at {tag:?}, not at 1"
                );
                crate::ensure_invariant!(
                    tag.seq == self.held_from || self.gateway.skipped() > 0,
                    "SUB_RESTART_LOSES_NOTHING_HELD",
                    "after the epoch change the lifetime resumed at {tag:?}, but the \
                     gateway held it from seq {} when the stream was subscribed",
                    self.held_from
                );
            }
        }
        self.prev_real = Some(tag);
        Ok(())
    }

    fn record(&mut self, a: &Action) {
        let (kind, x, y) = match a {
            SubscriptionAction::Connect { last_seq_seen } => (1, *last_seq_seen, 0),
            SubscriptionAction::Apply { seq, event } => (2, *seq, event.epoch),
            SubscriptionAction::Ack { seq } => (3, *seq, 0),
            SubscriptionAction::InvalidateAll { reason } => (4, *reason as u64, 0),
            SubscriptionAction::CloseStream { reason } => match reason {
                CloseReason::Gap { last_seq_seen, got } => (5, *last_seq_seen, *got),
                CloseReason::Backlog => (6, 0, 0),
                CloseReason::Stopped => (7, 0, 0),
                CloseReason::EpochChanged => (8, 0, 0),
                CloseReason::PeerDraining => (9, 0, 0),
            },
        };
        for v in [self.now.as_nanos(), kind, x, y] {
            self.digest = (self.digest ^ v).wrapping_mul(0x0000_0100_0000_01B3);
        }
    }

    fn check_state(&self) -> Result<(), Violation> {
        let deadline = self.machine.poll_timeout();
        match self.link {
            Link::Stopped => crate::ensure_invariant!(
                !self.machine.is_started() && deadline.is_none(),
                "SUB_MODEL_AGREES",
                "a stopped machine is started or holds a deadline {deadline:?}"
            ),
            Link::Waiting => {
                crate::ensure_invariant!(
                    self.machine.is_started() && deadline.is_some(),
                    "SUB_NEVER_GIVES_UP",
                    "a started machine with no stream holds no resubscribe deadline"
                );
                if let Some((lo, hi)) = self.drain_wait {
                    crate::ensure_invariant!(
                        deadline.is_some_and(|d| d.reason == SubscriptionTimer::Resubscribe
                            && d.at >= lo
                            && d.at <= hi),
                        "SUB_DRAIN_FOLLOWED",
                        "after a drain on a stream opened at {:?}, deadline {deadline:?}, \
                         want a resubscribe in [{lo:?}, {hi:?}]",
                        self.opened_at
                    );
                }
            }
            Link::Connecting { .. } => crate::ensure_invariant!(
                self.machine.is_started() && deadline.is_none(),
                "SUB_MODEL_AGREES",
                "connecting, yet deadline {deadline:?}"
            ),
            Link::Open { .. } => {
                let want = self
                    .model_ack_due()
                    .map(|at| Deadline::new(at, SubscriptionTimer::AckDue));
                crate::ensure_invariant!(
                    self.machine.is_started() && deadline == want,
                    "SUB_MODEL_AGREES",
                    "connected, deadline {deadline:?}, model {want:?}"
                );
            }
        }
        self.check_acks_bounded()?;
        crate::ensure_invariant!(
            self.machine.gateway_epoch() == self.epoch,
            "SUB_MODEL_AGREES",
            "machine epoch {:?}, model {:?}",
            self.machine.gateway_epoch(),
            self.epoch
        );
        let open = matches!(self.link, Link::Open { .. });
        crate::ensure_invariant!(
            self.machine.is_connected() == open && self.gateway.is_streaming() == open,
            "SUB_MODEL_AGREES",
            "machine connected: {}, gateway streaming: {}, model {:?}",
            self.machine.is_connected(),
            self.gateway.is_streaming(),
            self.link
        );
        let want = SubscriptionStats {
            last_seq: self.last,
            reconnects: self.connects.saturating_sub(1),
            ..self.want
        };
        let stats = self.machine.stats();
        crate::ensure_invariant!(
            stats == want,
            "SUB_STATS_CONSISTENT",
            "stats {stats:?}, expected {want:?}"
        );
        crate::ensure_invariant!(
            self.machine.last_seq_seen() == self.last && self.executed_last == self.last,
            "SUB_STATS_CONSISTENT",
            "last_seq_seen {} executed {} model {}",
            self.machine.last_seq_seen(),
            self.executed_last,
            self.last
        );
        Ok(())
    }
}

/// Run a whole sequence from a fresh machine; the first violation, if any.
pub fn run(config: HarnessConfig, ops: &[Op]) -> Result<Harness, Violation> {
    let mut h = Harness::new(config)?;
    for op in ops {
        h.apply(*op)?;
    }
    Ok(h)
}

/// [`run`], then [`Harness::settle`]: the client must also catch up.
pub fn run_and_settle(config: HarnessConfig, ops: &[Op]) -> Result<Harness, Violation> {
    let mut h = run(config, ops)?;
    h.settle()?;
    Ok(h)
}
