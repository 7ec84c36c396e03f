//! A deterministic simulation harness for the core: simulated time, any
//! number of [`Subscription`] clients, and a model gateway (one
//! [`ModelGateway`] per subscriber: per-subscriber sequence, replay ring and
//! live channel of 1,024, restarts) that publishes on a schedule.
//!
//! It is a second driver of the core, with no decision logic: it executes
//! every action, feeds every input, and wakes each machine only at the
//! deadlines it reports. [`Sim::step`] jumps to the next instant at which a
//! machine deadline or a scheduled gateway event is due; [`Sim::drive_until`]
//! runs a bounded number of steps and fails on a livelock (a deadline that is
//! not in the future after everything due was handled, more work at one
//! instant than [`Sim::max_actions_per_instant`], or the step limit).
//!
//! While it runs it checks, per client, the action-stream invariants of
//! `tether_core::subscription` (`SUB_RESUME_FROM_LAST`, `SUB_NO_SILENT_LOSS`,
//! `SUB_ACK_CUMULATIVE_BOUNDED`: each ack names the newest applied seq of
//! the current stream, acks of a stream rise, and after every drain an
//! unacked apply has a deadline within `ack_delay` of the first one;
//! `SUB_APPLY_EXACTLY_ONCE` per lifetime, `SUB_EPOCH_CHANGE_RESETS`,
//! `SUB_RESTART_LOSES_NOTHING_HELD`: a `CloseStream { EpochChanged }` is
//! directly followed by `Connect { last_seq_seen: 0 }`) and,
//! through `testkit::contract::timeout_checked`, the contract invariants.
//!
//! With [`Sim::announce_epoch`] the gateway announces its lifetime epoch on
//! every stream it accepts and the clients pass it to
//! `Subscription::on_gateway_epoch` (tether's reference gateway); without it
//! (the default) it announces none (the Agent Assembly gateway).
#![allow(dead_code)] // Shared by the scenarios; not every one uses every helper.

use core::time::Duration;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;

use tether_core::backoff::BackoffConfig;
use tether_core::subscription::{
    CloseReason, InvalidateReason, Subscription, SubscriptionAction, SubscriptionConfig,
};
use tether_core::testkit::contract::{drain, timeout_checked};
use tether_core::testkit::subscription::{ModelGateway, Tag, GATEWAY_BUFFER};
use tether_core::testkit::Violation;
use tether_core::{Machine, Timestamp};

/// How the gateway answers a `Connect` while it is up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Accept {
    /// Accept and keep the stream open.
    Keep,
    /// Accept, then close the stream at once (a misbehaving gateway or proxy).
    CloseAtOnce,
}

/// Something the gateway does at a scheduled instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GatewayEvent {
    /// One new event for every subscriber (nothing if the gateway is down).
    Publish,
    /// One new event for every subscriber that the live channel skips.
    PublishLagging,
    /// The gateway restarts: every stream ends, every subscriber starts a new
    /// lifetime at seq 1, and connections are refused for `down_for`.
    Restart {
        /// How long the gateway stays down.
        down_for: Duration,
    },
    /// Every open stream ends (a network blip); the gateway stays up.
    DropStreams,
    /// One client goes offline: its stream ends and its connections are
    /// refused for `offline_for`, while the gateway keeps publishing to it.
    Isolate {
        /// The client's index.
        client: usize,
        /// How long.
        offline_for: Duration,
    },
    /// Change how connections are answered.
    SetAccept(Accept),
}

/// Why a simulation stopped.
#[derive(Debug)]
pub(crate) enum SimError {
    /// A named invariant broke.
    Violation {
        /// The client it broke in.
        client: usize,
        /// The instant.
        at: Timestamp,
        /// What broke.
        violation: Violation,
    },
    /// Work without time advancing.
    Livelock {
        /// The instant.
        at: Timestamp,
        /// What was observed.
        detail: String,
    },
    /// The step budget ran out.
    StepLimit {
        /// Steps taken.
        steps: u64,
        /// The instant reached.
        at: Timestamp,
    },
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Violation {
                client,
                at,
                violation,
            } => write!(f, "client {client} at {at:?}: {violation}"),
            SimError::Livelock { at, detail } => write!(f, "livelock at {at:?}: {detail}"),
            SimError::StepLimit { steps, at } => {
                write!(f, "step limit: {steps} steps, reached {at:?}")
            }
        }
    }
}

/// An accepted stream: when, from which `last_seq_seen`, and the gateway's
/// head for this subscriber at that moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Accepted {
    /// When the stream opened.
    pub(crate) at: Timestamp,
    /// The `last_seq_seen` the client sent.
    pub(crate) last_seq_seen: u64,
    /// The gateway's latest event for this subscriber then.
    pub(crate) head: Option<Tag>,
    /// The oldest event the gateway held for this subscriber then (its next
    /// seq when it held none): where a replay from 0 begins.
    pub(crate) held_from: u64,
}

/// One simulated client: a machine, the gateway's state for it, and logs.
#[derive(Debug)]
pub(crate) struct Client {
    /// The machine under test.
    pub(crate) machine: Subscription<Tag>,
    /// The gateway's per-subscriber state for this client.
    pub(crate) gateway: ModelGateway,
    /// Whether the driver holds an open stream.
    pub(crate) open: bool,
    /// When each `Connect` was executed.
    pub(crate) connects: Vec<Timestamp>,
    /// Streams the gateway accepted and kept.
    pub(crate) accepted: Vec<Accepted>,
    /// Every event the gateway produced for this subscriber, in order.
    pub(crate) published: Vec<Tag>,
    /// Every applied event, in order.
    pub(crate) applied: Vec<Tag>,
    /// Each `InvalidateAll`: the index in `applied` of the event it preceded.
    pub(crate) invalidations: Vec<(usize, InvalidateReason)>,
    /// Each `CloseStream`.
    pub(crate) closes: Vec<(Timestamp, CloseReason)>,
    /// When each event of `applied` was applied.
    pub(crate) applied_at: Vec<Timestamp>,
    /// Each executed `Ack`: when, and its seq.
    pub(crate) acks: Vec<(Timestamp, u64)>,
    /// The current stream: its newest applied seq, its last ack, and when
    /// its first unacked apply was.
    stream_newest: Option<u64>,
    stream_last_ack: Option<u64>,
    stream_first_unacked: Option<Timestamp>,
    offline_until: Timestamp,
    scheduled: Option<Timestamp>,
    last_seq: u64,
    prev_real: Option<Tag>,
}

impl Client {
    fn new(config: SubscriptionConfig) -> Self {
        Client {
            machine: Subscription::new(config),
            gateway: ModelGateway::new(GATEWAY_BUFFER, GATEWAY_BUFFER),
            open: false,
            connects: Vec::new(),
            accepted: Vec::new(),
            published: Vec::new(),
            applied: Vec::new(),
            invalidations: Vec::new(),
            closes: Vec::new(),
            applied_at: Vec::new(),
            acks: Vec::new(),
            stream_newest: None,
            stream_last_ack: None,
            stream_first_unacked: None,
            offline_until: Timestamp::ZERO,
            scheduled: None,
            last_seq: 0,
            prev_real: None,
        }
    }

    /// The stream ended (or a new one begins): its pending ack went with it.
    fn stream_ended(&mut self) {
        self.open = false;
        self.stream_newest = None;
        self.stream_last_ack = None;
        self.stream_first_unacked = None;
    }

    /// The events of lifetime `epoch`, as published and as applied.
    pub(crate) fn lifetime(&self, epoch: u64) -> (Vec<u64>, Vec<u64>) {
        let pick = |v: &[Tag]| {
            v.iter()
                .filter(|t| t.epoch == epoch)
                .map(|t| t.seq)
                .collect()
        };
        (pick(&self.published), pick(&self.applied))
    }

    /// `SUB_APPLY_EXACTLY_ONCE`, whole-run: per lifetime, the applied events
    /// are a gap-free run of the published ones, except where an
    /// `InvalidateAll` precedes an event; no published event is applied twice.
    pub(crate) fn check_lifetimes(&self) -> Result<(), String> {
        let invalidated: Vec<usize> = self.invalidations.iter().map(|(i, _)| *i).collect();
        for (i, pair) in self.applied.windows(2).enumerate() {
            let (a, b) = (pair[0], pair[1]);
            if b <= a {
                return Err(format!("applied {b:?} after {a:?}"));
            }
            if b.epoch == a.epoch && b.seq != a.seq + 1 && !invalidated.contains(&(i + 1)) {
                return Err(format!(
                    "lifetime {}: {} -> {} silently",
                    a.epoch, a.seq, b.seq
                ));
            }
        }
        Ok(())
    }
}

/// The simulation: clients, gateway, simulated time.
pub(crate) struct Sim {
    /// Simulated now.
    pub(crate) now: Timestamp,
    /// The clients.
    pub(crate) clients: Vec<Client>,
    /// How the gateway answers connections while up.
    pub(crate) accept: Accept,
    /// Steps taken.
    pub(crate) steps: u64,
    /// Actions allowed at one instant before it counts as a livelock.
    pub(crate) max_actions_per_instant: u64,
    /// Whether the gateway announces its lifetime epoch on every stream it
    /// accepts (and the clients report it right after `on_connected`).
    pub(crate) announce_epoch: bool,
    down_until: Timestamp,
    timers: BinaryHeap<Reverse<(Timestamp, usize)>>,
    events: BinaryHeap<Reverse<(Timestamp, usize)>>,
    scheduled: Vec<GatewayEvent>,
    work: VecDeque<usize>,
    queued: Vec<bool>,
    actions_now: u64,
}

impl Sim {
    /// `n` clients, client `i` built with `config(i)`, all started at time 0.
    pub(crate) fn new(n: usize, mut config: impl FnMut(usize) -> SubscriptionConfig) -> Self {
        let clients: Vec<Client> = (0..n).map(|i| Client::new(config(i))).collect();
        let mut sim = Sim {
            now: Timestamp::ZERO,
            clients,
            accept: Accept::Keep,
            steps: 0,
            max_actions_per_instant: 100_000 + 1_000 * n as u64,
            announce_epoch: false,
            down_until: Timestamp::ZERO,
            timers: BinaryHeap::new(),
            events: BinaryHeap::new(),
            scheduled: Vec::new(),
            work: VecDeque::new(),
            queued: vec![false; n],
            actions_now: 0,
        };
        for i in 0..n {
            sim.clients[i].machine.start(Timestamp::ZERO);
            sim.mark(i);
        }
        sim
    }

    /// `n` clients at the defaults, client `i` seeded with `seed + i`.
    pub(crate) fn with_defaults(n: usize, seed: u64) -> Self {
        Sim::new(n, |i| {
            SubscriptionConfig::with_seed(seed.wrapping_add(i as u64))
        })
    }

    /// `n` clients with backoff config `backoff`, client `i` seeded `seed + i`.
    pub(crate) fn with_backoff(n: usize, backoff: BackoffConfig, seed: u64) -> Self {
        Sim::new(n, |i| {
            SubscriptionConfig::default().with_backoff(
                backoff
                    .clone()
                    .with_jitter_seed(seed.wrapping_add(i as u64)),
            )
        })
    }

    /// Schedule a gateway event at `at` (no earlier than now).
    pub(crate) fn schedule(&mut self, at: Timestamp, event: GatewayEvent) {
        let at = at.max(self.now);
        self.events.push(Reverse((at, self.scheduled.len())));
        self.scheduled.push(event);
    }

    /// Schedule `count` publishes, one every `every`, from `start`.
    pub(crate) fn publish_every(&mut self, start: Timestamp, every: Duration, count: u64) {
        let mut at = start;
        for _ in 0..count {
            self.schedule(at, GatewayEvent::Publish);
            at = at + every;
        }
    }

    /// The next instant at which anything is due.
    pub(crate) fn next_instant(&mut self) -> Option<Timestamp> {
        while let Some(&Reverse((at, i))) = self.timers.peek() {
            if self.clients[i].scheduled == Some(at) {
                break;
            }
            self.timers.pop();
        }
        let timer = self.timers.peek().map(|Reverse((at, _))| *at);
        let event = self.events.peek().map(|Reverse((at, _))| *at);
        match (timer, event) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Settle everything due now, jump to the next instant, fire what is due
    /// there and settle again. `Ok(false)` when nothing is left to happen.
    pub(crate) fn step(&mut self) -> Result<bool, SimError> {
        self.settle_now()?;
        let Some(next) = self.next_instant() else {
            return Ok(false);
        };
        if next <= self.now {
            return Err(SimError::Livelock {
                at: self.now,
                detail: format!("next instant {next:?} is not in the future"),
            });
        }
        self.now = next;
        self.steps += 1;
        self.actions_now = 0;
        self.settle_now()?;
        Ok(true)
    }

    /// Step until nothing is due before `end` (then now = `end`), at most
    /// `max_steps` steps in all.
    pub(crate) fn drive_until(&mut self, end: Timestamp, max_steps: u64) -> Result<(), SimError> {
        loop {
            self.settle_now()?;
            match self.next_instant() {
                Some(next) if next <= end => {}
                _ => {
                    self.now = self.now.max(end);
                    return Ok(());
                }
            }
            if self.steps >= max_steps {
                return Err(SimError::StepLimit {
                    steps: self.steps,
                    at: self.now,
                });
            }
            self.step()?;
        }
    }

    /// Fire and serve everything due at or before now, until nothing is
    /// (bounded by `max_actions_per_instant`).
    fn settle_now(&mut self) -> Result<(), SimError> {
        loop {
            self.pump()?;
            match self.next_instant() {
                Some(at) if at <= self.now => self.fire_due()?,
                _ => return Ok(()),
            }
        }
    }

    /// Fire the gateway events and machine deadlines due at or before now.
    fn fire_due(&mut self) -> Result<(), SimError> {
        while let Some(&Reverse((at, idx))) = self.events.peek() {
            if at > self.now {
                break;
            }
            self.events.pop();
            self.fire(self.scheduled[idx])?;
        }
        while let Some(&Reverse((at, i))) = self.timers.peek() {
            if at > self.now {
                break;
            }
            self.timers.pop();
            if self.clients[i].scheduled != Some(at) {
                continue;
            }
            self.clients[i].scheduled = None;
            // The contract check needs a drained machine.
            let pending = drain(&mut self.clients[i].machine).map_err(|v| self.violation(i, v))?;
            self.execute(i, pending)?;
            let now = self.now;
            let acts = timeout_checked(&mut self.clients[i].machine, now)
                .map_err(|v| self.violation(i, v))?;
            self.count(acts.len() + 1)?;
            self.execute(i, acts)?;
            self.mark(i);
        }
        Ok(())
    }

    fn mark(&mut self, i: usize) {
        if !self.queued[i] {
            self.queued[i] = true;
            self.work.push_back(i);
        }
    }

    fn violation(&self, client: usize, violation: Violation) -> SimError {
        SimError::Violation {
            client,
            at: self.now,
            violation,
        }
    }

    fn count(&mut self, n: usize) -> Result<(), SimError> {
        self.actions_now += n as u64;
        if self.actions_now > self.max_actions_per_instant {
            return Err(SimError::Livelock {
                at: self.now,
                detail: format!("{} actions at one instant", self.actions_now),
            });
        }
        Ok(())
    }

    /// Serve every marked client until nothing is left to do at this instant.
    fn pump(&mut self) -> Result<(), SimError> {
        while let Some(i) = self.work.pop_front() {
            self.queued[i] = false;
            loop {
                let acts = drain(&mut self.clients[i].machine).map_err(|v| self.violation(i, v))?;
                let had_actions = !acts.is_empty();
                self.count(acts.len() + 1)?;
                self.execute(i, acts)?;
                let now = self.now;
                let c = &mut self.clients[i];
                if c.open {
                    if let Some(tag) = c.gateway.next_message() {
                        c.machine.on_event(now, tag.seq, tag);
                        continue;
                    }
                }
                if !had_actions {
                    break;
                }
            }
            let c = &mut self.clients[i];
            let deadline = c.machine.poll_timeout().map(|d| d.at);
            if let Some(first) = c.stream_first_unacked {
                let due = first + c.machine.config().ack_delay;
                if deadline.is_none_or(|at| at > due) {
                    return Err(self.violation(
                        i,
                        Violation::new(
                            "SUB_ACK_CUMULATIVE_BOUNDED",
                            format!("unacked since {first:?}, deadline {deadline:?}"),
                        ),
                    ));
                }
            }
            let c = &mut self.clients[i];
            if deadline != c.scheduled {
                if let Some(at) = deadline {
                    self.timers.push(Reverse((at, i)));
                }
                c.scheduled = deadline;
            }
        }
        Ok(())
    }

    /// Execute a drained batch for client `i`, checking the action-stream
    /// invariants.
    fn execute(&mut self, i: usize, acts: Vec<SubscriptionAction<Tag>>) -> Result<(), SimError> {
        let now = self.now;
        let gateway_up = now >= self.down_until;
        let accept = self.accept;
        let announce = self.announce_epoch;
        let c = &mut self.clients[i];
        let mut invalidated = false;
        let mut iter = acts.into_iter().peekable();
        let err = |v: Violation| SimError::Violation {
            client: i,
            at: now,
            violation: v,
        };
        while let Some(a) = iter.next() {
            match a {
                SubscriptionAction::Connect { last_seq_seen } => {
                    if last_seq_seen != c.last_seq {
                        return Err(err(Violation::new(
                            "SUB_RESUME_FROM_LAST",
                            format!("Connect from {last_seq_seen}, last applied {}", c.last_seq),
                        )));
                    }
                    c.connects.push(now);
                    c.stream_ended();
                    if !gateway_up || now < c.offline_until {
                        c.machine.on_disconnected(now);
                    } else if accept == Accept::CloseAtOnce {
                        c.machine.on_connected(now);
                        if announce {
                            c.machine.on_gateway_epoch(now, c.gateway.epoch());
                        }
                        c.machine.on_disconnected(now);
                    } else {
                        c.machine.on_connected(now);
                        if announce {
                            c.machine.on_gateway_epoch(now, c.gateway.epoch());
                        }
                        c.accepted.push(Accepted {
                            at: now,
                            last_seq_seen,
                            head: c.gateway.latest(),
                            held_from: c.gateway.oldest_held(),
                        });
                        c.gateway.subscribe(last_seq_seen);
                        c.open = true;
                    }
                }
                SubscriptionAction::InvalidateAll { reason } => {
                    c.invalidations.push((c.applied.len(), reason));
                    invalidated = true;
                    if reason == InvalidateReason::Restart && iter.peek().is_none() {
                        // An epoch announcement: the machine starts the new
                        // lifetime over, from 0, on the same stream.
                        c.last_seq = 0;
                    } else if !matches!(iter.peek(), Some(SubscriptionAction::Apply { .. })) {
                        return Err(err(Violation::new(
                            "SUB_NO_SILENT_LOSS",
                            format!("InvalidateAll({reason:?}) followed by {:?}", iter.peek()),
                        )));
                    }
                }
                SubscriptionAction::Apply { seq, event } => {
                    if !invalidated && seq != c.last_seq.saturating_add(1) {
                        return Err(err(Violation::new(
                            "SUB_NO_SILENT_LOSS",
                            format!("Apply {seq} after {} without InvalidateAll", c.last_seq),
                        )));
                    }
                    if let Some(prev) = c.prev_real {
                        if event <= prev {
                            return Err(err(Violation::new(
                                "SUB_APPLY_EXACTLY_ONCE",
                                format!("applied {event:?} after {prev:?}"),
                            )));
                        }
                    }
                    c.prev_real = Some(event);
                    c.last_seq = seq;
                    c.applied.push(event);
                    c.applied_at.push(now);
                    c.stream_newest = Some(seq);
                    c.stream_first_unacked.get_or_insert(now);
                    invalidated = false;
                }
                SubscriptionAction::Ack { seq } => {
                    let rising = c.stream_last_ack.is_none_or(|a| seq > a);
                    if c.stream_newest != Some(seq) || !rising {
                        return Err(err(Violation::new(
                            "SUB_ACK_CUMULATIVE_BOUNDED",
                            format!(
                                "Ack {seq}: newest applied of the stream {:?}, last ack {:?}",
                                c.stream_newest, c.stream_last_ack
                            ),
                        )));
                    }
                    c.gateway.ack(seq);
                    c.acks.push((now, seq));
                    c.stream_last_ack = Some(seq);
                    c.stream_first_unacked = None;
                }
                SubscriptionAction::CloseStream { reason } => {
                    c.closes.push((now, reason));
                    c.gateway.close();
                    c.stream_ended();
                    if reason == CloseReason::EpochChanged
                        && (c.last_seq != 0
                            || iter.peek()
                                != Some(&SubscriptionAction::Connect { last_seq_seen: 0 }))
                    {
                        // The resubscribe after a restart is at once, from 0.
                        return Err(err(Violation::new(
                            "SUB_RESTART_LOSES_NOTHING_HELD",
                            format!(
                                "CloseStream(EpochChanged) with last {} followed by {:?}",
                                c.last_seq,
                                iter.peek()
                            ),
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// Fire a scheduled gateway event.
    fn fire(&mut self, event: GatewayEvent) -> Result<(), SimError> {
        let now = self.now;
        match event {
            GatewayEvent::Publish | GatewayEvent::PublishLagging => {
                if now < self.down_until {
                    return Ok(());
                }
                for i in 0..self.clients.len() {
                    let c = &mut self.clients[i];
                    let tag = if event == GatewayEvent::Publish {
                        c.gateway.publish()
                    } else {
                        c.gateway.publish_lagging()
                    };
                    c.published.push(tag);
                    if c.open {
                        self.mark(i);
                    }
                }
            }
            GatewayEvent::Restart { down_for } => {
                self.down_until = now + down_for;
                for i in 0..self.clients.len() {
                    let c = &mut self.clients[i];
                    if c.gateway.restart() {
                        c.stream_ended();
                        c.machine.on_disconnected(now);
                        self.mark(i);
                    }
                }
            }
            GatewayEvent::DropStreams => {
                for i in 0..self.clients.len() {
                    let c = &mut self.clients[i];
                    if c.gateway.close() {
                        c.stream_ended();
                        c.machine.on_disconnected(now);
                        self.mark(i);
                    }
                }
            }
            GatewayEvent::Isolate {
                client,
                offline_for,
            } => {
                if let Some(c) = self.clients.get_mut(client) {
                    c.offline_until = now + offline_for;
                    if c.gateway.close() {
                        c.stream_ended();
                        c.machine.on_disconnected(now);
                        self.mark(client);
                    }
                }
            }
            GatewayEvent::SetAccept(accept) => self.accept = accept,
        }
        self.count(1)
    }
}

/// The most attempts a client can make within `horizon` against a gateway
/// that fails every attempt at once, from the backoff config alone: attempt
/// 1 at time 0, then every delay at its floor, `min(base × multiplier^k, max)
/// × (1 − jitter)` (less 1 ms of slack for rounding).
pub(crate) fn max_attempts_within(cfg: &BackoffConfig, horizon: Duration) -> u64 {
    let c = cfg.clamped();
    let floor = 1.0 - c.jitter;
    let max = c.max.as_secs_f64();
    let mut current = c.base.as_secs_f64().min(max);
    let mut t = 0.0;
    let mut attempts = 1;
    loop {
        t += (current * floor - 0.001).max(0.0);
        if t > horizon.as_secs_f64() {
            return attempts;
        }
        attempts += 1;
        current = (current * c.multiplier).min(max);
    }
}

/// The most instants of `times` in any window `[t, t + window)`.
pub(crate) fn busiest_window(times: &[Timestamp], window: Duration) -> usize {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..sorted.len() {
        while sorted[hi] - sorted[lo] >= window {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}
