//! The op-control machine: the kill switch.
//!
//! Guarantees: see the module docs of [`crate::op_control`], where every
//! invariant is named. In short, terminate is absorbing, a paused op runs
//! again only after a resume, every waiter is released exactly once and
//! never open when its op is not runnable, every table is bounded, and a
//! signal that finds no room saturates the machine into failing closed.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::config::{OpControlConfig, OutagePolicy};
use super::dedupe::RecentSignals;
use super::finished::FinishedOps;
use super::link::{Link, LinkEvent};
use super::op_id::{check_agent, parse_plain, parse_scope, Scope};
use super::outcome::{
    CheckOutcome, DenyReason, OpControlAction, OpControlStats, OpControlTimer, OpState, OpWaiterId,
    Saturation, WaitOutcome,
};
use super::signal::{Command, Signal, SignalOutcome};
use super::table::{Change, EntryState, Full, OpTable, Own};
use super::waiters::{WaitKind, Waiters};
use crate::machine::Machine;
use crate::time::{Deadline, Timestamp};

/// Why an op has the effective state it has (picks the deny reason).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cause {
    /// Signals (its own entry, its agent's, or `*`), or nothing.
    Signals,
    /// Its paused entry was evicted.
    Evicted,
    /// The machine is saturated.
    Saturated,
}

/// What to do with one waiter after a change.
#[derive(Clone, Copy, Debug)]
enum Verdict {
    Keep,
    NowPaused,
    Release(WaitOutcome),
}

/// Per-op run/pause/terminate control as a sans-IO machine.
///
/// ```
/// use tether_core::op_control::{
///     CheckOutcome, OpControl, OpControlAction, OpControlConfig, OpState, Signal,
///     SignalOutcome, WaitOutcome,
/// };
/// use tether_core::{Machine, Timestamp};
///
/// let t = Timestamp::ZERO;
/// let mut oc = OpControl::new(OpControlConfig::default(), t);
/// oc.on_stream_up(t);
/// assert_eq!(oc.check(t, "a", "trace:span"), CheckOutcome::Run);
///
/// oc.on_signal(t, "trace:span", Signal::Pause, 7);
/// let CheckOutcome::Wait(waiter) = oc.check(t, "a", "trace:span") else { panic!() };
/// oc.on_signal(t, "agent:a", Signal::Terminate, 8);
/// assert_eq!(
///     oc.poll_action(),
///     Some(OpControlAction::Release { waiter, outcome: WaitOutcome::Terminated })
/// );
/// // Terminate is absorbing: a later resume changes nothing.
/// assert_eq!(oc.on_signal(t, "agent:a", Signal::Resume, 9), SignalOutcome::Unchanged);
/// assert_eq!(oc.state("a", "trace:span"), OpState::Terminated);
/// ```
#[derive(Clone, Debug)]
pub struct OpControl {
    config: OpControlConfig,
    table: OpTable,
    agents: BTreeMap<String, EntryState>,
    all_ops: Option<EntryState>,
    waiters: Waiters,
    releases: VecDeque<OpControlAction>,
    notice: Option<OpControlAction>,
    recent: RecentSignals,
    finished: FinishedOps,
    link: Link,
    saturation: Saturation,
    /// Whether a signal lost to [`Saturation::Ops`] was a terminate (the
    /// cover then reads `Terminated`, else `Paused`).
    lost_terminate: bool,
    stats: OpControlStats,
}

impl OpControl {
    /// A machine with `config`, built at `now` with the stream **down**: the
    /// driver has not subscribed yet, so the machine has heard nothing, and
    /// the grace period counts from construction (a runtime that never
    /// manages to subscribe follows the outage policy after the grace
    /// period, like one that lost its stream).
    pub fn new(config: OpControlConfig, now: Timestamp) -> Self {
        OpControl {
            table: OpTable::new(config.max_entries, config.max_evicted, config.max_overflow),
            agents: BTreeMap::new(),
            all_ops: None,
            waiters: Waiters::default(),
            releases: VecDeque::new(),
            notice: None,
            recent: RecentSignals::new(config.dedupe_window),
            finished: FinishedOps::new(config.max_finished),
            link: Link::down_at(now, config.outage_grace),
            saturation: Saturation::Clear,
            lost_terminate: false,
            stats: OpControlStats::default(),
            config,
        }
    }

    /// The configuration (the outage policy as last set).
    pub fn config(&self) -> &OpControlConfig {
        &self.config
    }

    /// A message from the control stream: `op_id` is a plain op id, `"*"`
    /// or `"agent:{id}"`; `sequence` is advisory (only an exact repeat of a
    /// recent triple is recognised, as a duplicate).
    pub fn on_signal(
        &mut self,
        now: Timestamp,
        op_id: &str,
        signal: Signal,
        sequence: u64,
    ) -> SignalOutcome {
        let Some(command) = signal.command() else {
            self.stats.ignored_signals = self.stats.ignored_signals.saturating_add(1);
            return SignalOutcome::Ignored;
        };
        let scope = match parse_scope(op_id, self.config.max_op_id_len) {
            Ok(scope) => scope,
            Err(e) => {
                self.stats.refused_signals = self.stats.refused_signals.saturating_add(1);
                return SignalOutcome::Refused(e);
            }
        };
        let repeat = self.recent.contains(sequence, command, op_id);
        if repeat {
            if command == Command::Resume || !self.would_restrict(scope, command) {
                self.stats.duplicates_dropped = self.stats.duplicates_dropped.saturating_add(1);
                return SignalOutcome::Duplicate;
            }
        } else {
            self.recent.record(sequence, command, op_id);
        }
        let outcome = match scope {
            Scope::All => self.apply_all(command),
            Scope::Agent(agent) => self.apply_agent(agent, command),
            Scope::Op(op) => self.apply_op(op, command),
        };
        if matches!(outcome, SignalOutcome::Applied | SignalOutcome::Saturated) {
            if repeat {
                self.stats.repeats_applied = self.stats.repeats_applied.saturating_add(1);
            }
            self.reevaluate(now);
        }
        outcome
    }

    /// May op `op_id` of agent `agent` run now? A paused op (or, during an
    /// outage under [`OutagePolicy::Hold`], a running one) gets a waiter,
    /// released later by an [`OpControlAction::Release`]. Once the outage
    /// has lasted the hold limit, a running op is denied
    /// ([`DenyReason::HoldExpired`]) instead of held.
    pub fn check(&mut self, now: Timestamp, agent: &str, op_id: &str) -> CheckOutcome {
        let max = self.config.max_op_id_len;
        if let Err(e) = check_agent(agent, max) {
            return CheckOutcome::Deny(DenyReason::InvalidAgent(e));
        }
        let op = match parse_plain(op_id, max) {
            Ok(op) => op,
            Err(e) => return CheckOutcome::Deny(DenyReason::InvalidOpId(e)),
        };
        // A checked op is live: its signals are no longer late.
        self.finished.revive(op);
        match self.effective(agent, op) {
            (_, Cause::Saturated) => CheckOutcome::Deny(DenyReason::Saturated),
            (OpState::Terminated, _) => CheckOutcome::Deny(DenyReason::Terminated),
            (OpState::Paused, Cause::Evicted) => CheckOutcome::Deny(DenyReason::Evicted),
            (OpState::Paused, _) => self.wait(agent, op, WaitKind::Paused),
            (OpState::Running, _) if self.link.in_force(now) => match self.config.outage_policy {
                OutagePolicy::Hold if self.hold_expired(now) => {
                    CheckOutcome::Deny(DenyReason::HoldExpired)
                }
                OutagePolicy::Hold => self.wait(agent, op, WaitKind::Hold),
                OutagePolicy::Deny => CheckOutcome::Deny(DenyReason::StreamDown),
                OutagePolicy::Allow => CheckOutcome::Run,
            },
            (OpState::Running, _) => CheckOutcome::Run,
        }
    }

    /// Drop a waiter (its check was cancelled). Whether it was still
    /// waiting; afterwards nothing of it is left, not even an undrained
    /// release.
    pub fn cancel(&mut self, waiter: OpWaiterId) -> bool {
        if self.waiters.remove(waiter).is_some() {
            return true;
        }
        let before = self.releases.len();
        self.releases
            .retain(|a| !matches!(a, OpControlAction::Release { waiter: w, .. } if *w == waiter));
        self.releases.len() != before
    }

    /// The effective state of op `op_id` of agent `agent`: the most severe
    /// of its own entry, the `agent:{agent}` entry and the `*` entry (an
    /// evicted paused op is `Paused`; an op the machine holds nothing for,
    /// while saturated, is what the cover says: see [`Saturation`]). An id
    /// that cannot name an op is reported `Terminated`: it can never run.
    pub fn state(&self, agent: &str, op_id: &str) -> OpState {
        let max = self.config.max_op_id_len;
        match (check_agent(agent, max), parse_plain(op_id, max)) {
            (Ok(agent), Ok(op)) => self.effective(agent, op).0,
            _ => OpState::Terminated,
        }
    }

    /// The control stream is up (subscribed). Fires what is due at `now`
    /// first. After an outage the policy stays in force for the settle
    /// window, then held waiters run (unless a signal paused or terminated
    /// their ops meanwhile).
    pub fn on_stream_up(&mut self, now: Timestamp) {
        self.handle_timeout(now);
        if let Some(event) = self.link.on_up(now, self.config.restore_settle) {
            self.notify(event);
            self.reevaluate(now);
        }
    }

    /// The control stream is down. Fires what is due at `now` first. Paused
    /// ops stay paused; after the grace period (at once, if the stream drops
    /// again while settling from an outage) checks on running ops follow the
    /// outage policy.
    pub fn on_stream_down(&mut self, now: Timestamp) {
        self.handle_timeout(now);
        self.link.on_down(now, self.config.outage_grace);
    }

    /// Change the outage policy. Fires what is due at `now` first; held
    /// waiters are released with [`WaitOutcome::OutageDeny`] or
    /// [`WaitOutcome::OutageAllow`] if the new policy no longer holds. A
    /// change to [`OutagePolicy::Hold`] after the hold limit of the outage
    /// in progress holds nothing: checks are denied until it ends.
    pub fn set_outage_policy(&mut self, now: Timestamp, policy: OutagePolicy) {
        self.handle_timeout(now);
        self.config.outage_policy = policy;
        self.reevaluate(now);
    }

    /// Op `op_id` of agent `agent` ended: its entry (even a terminated one)
    /// and any evicted marker are forgotten, any waiter of it is released
    /// with [`WaitOutcome::OpFinished`], and late pause or terminate signals
    /// for it are dropped until it is checked again. Op ids are global
    /// (`trace:span`), so `agent` is only validated. Returns whether the ids
    /// were valid (an invalid one changes nothing).
    ///
    /// The driver promises the op will not be checked again; a check that
    /// comes anyway treats it as a new op.
    pub fn on_op_finished(&mut self, agent: &str, op_id: &str) -> bool {
        let max = self.config.max_op_id_len;
        let op = match (check_agent(agent, max), parse_plain(op_id, max)) {
            (Ok(_), Ok(op)) => op,
            _ => return false,
        };
        for id in self.waiters.of_op(op) {
            self.release(id, WaitOutcome::OpFinished);
        }
        self.table.remove(op);
        self.finished.record(op);
        true
    }

    /// Every op that was ever checked has ended (for instance the runtime
    /// drained all its work): the op table and markers are cleared, every
    /// waiter is released with [`WaitOutcome::OpFinished`], and
    /// [`Saturation::Ops`] is lifted (the lost signal's op cannot run any
    /// more). `*` and `agent:` entries and [`Saturation::Fleet`] stay.
    pub fn on_all_ops_finished(&mut self) {
        for id in self.waiters.ids() {
            self.release(id, WaitOutcome::OpFinished);
        }
        self.table.clear();
        // Every op a lost signal may have named has finished.
        self.lost_terminate = false;
        if self.saturation == Saturation::Ops {
            self.saturation = Saturation::Clear;
        }
    }

    /// The state every op of `agent` is at least in: the most severe of the
    /// `agent:{agent}` entry and the `*` entry (`Terminated` under
    /// [`Saturation::Fleet`], or for an id that cannot be an agent's).
    /// Entries of single ops and [`Saturation::Ops`] do not count.
    pub fn agent_state(&self, agent: &str) -> OpState {
        if check_agent(agent, self.config.max_op_id_len).is_err()
            || self.saturation == Saturation::Fleet
        {
            return OpState::Terminated;
        }
        [self.all_ops, self.agents.get(agent).copied()]
            .into_iter()
            .flatten()
            .map(entry_state)
            .max()
            .unwrap_or(OpState::Running)
    }

    /// Whether the control stream is up.
    pub fn stream_up(&self) -> bool {
        self.link.is_up()
    }

    /// Whether checks on running ops follow the outage policy at `now`.
    pub fn outage_in_force(&self, now: Timestamp) -> bool {
        self.link.in_force(now)
    }

    /// Whether, at `now`, the outage policy is in force and the outage has
    /// lasted the hold limit: [`OutagePolicy::Hold`] then holds nothing and
    /// denies checks on running ops ([`DenyReason::HoldExpired`]) until the
    /// outage ends.
    pub fn hold_expired(&self, now: Timestamp) -> bool {
        self.link.hold_spent(now, self.config.hold_limit)
    }

    /// The saturated mode, if any.
    pub fn saturation(&self) -> Saturation {
        self.saturation
    }

    /// Counters and sizes.
    pub fn stats(&self) -> OpControlStats {
        let mut s = self.stats;
        s.entries = self.table.len();
        s.paused = self.table.paused();
        s.terminated = self.table.len().saturating_sub(self.table.paused());
        s.evicted_markers = self.table.evicted();
        s.overflow = self.table.overflow();
        s.lost_terminate = self.lost_terminate;
        s.agents = self.agents.len();
        s.all_ops = self.all_ops.map(entry_state);
        s.waiters = self.waiters.len().saturating_add(self.releases.len());
        s.finished_remembered = self.finished.len();
        s.recent_signals = self.recent.len();
        s.saturation = self.saturation;
        s.saturated = self.saturation != Saturation::Clear;
        s
    }

    fn effective(&self, agent: &str, op: &str) -> (OpState, Cause) {
        if self.saturation == Saturation::Fleet {
            return (OpState::Terminated, Cause::Saturated);
        }
        let own = self.table.own(op);
        let reserved = [self.all_ops, self.agents.get(agent).copied()];
        if own == Own::Terminated || reserved.contains(&Some(EntryState::Terminated)) {
            return (OpState::Terminated, Cause::Signals);
        }
        if own == Own::Evicted {
            return (OpState::Paused, Cause::Evicted);
        }
        if self.saturation == Saturation::Ops && own == Own::None {
            // Covered: this op may be the one whose signal was lost.
            let cover = if self.lost_terminate {
                OpState::Terminated
            } else {
                OpState::Paused
            };
            return (cover, Cause::Saturated);
        }
        if own == Own::Paused || reserved.contains(&Some(EntryState::Paused)) {
            return (OpState::Paused, Cause::Signals);
        }
        (OpState::Running, Cause::Signals)
    }

    /// Whether a pause or terminate would restrict its scope's own entry.
    fn would_restrict(&self, scope: Scope<'_>, command: Command) -> bool {
        let current = match scope {
            Scope::All => self.all_ops.map(entry_state),
            Scope::Agent(agent) => self.agents.get(agent).copied().map(entry_state),
            Scope::Op(op) => match self.table.own(op) {
                Own::None => None,
                Own::Paused | Own::Evicted => Some(OpState::Paused),
                Own::Terminated => Some(OpState::Terminated),
            },
        };
        match command {
            Command::Pause => current.is_none(),
            Command::Terminate => current != Some(OpState::Terminated),
            Command::Resume => false,
        }
    }

    fn apply_all(&mut self, command: Command) -> SignalOutcome {
        let (next, outcome) = reserved_transition(self.all_ops, command);
        self.all_ops = next;
        outcome
    }

    fn apply_agent(&mut self, agent: &str, command: Command) -> SignalOutcome {
        let current = self.agents.get(agent).copied();
        let (next, outcome) = reserved_transition(current, command);
        if outcome != SignalOutcome::Applied {
            return outcome;
        }
        match next {
            Some(_) if current.is_none() && self.agents.len() >= self.config.max_agents => {
                self.saturate(Saturation::Fleet)
            }
            Some(state) => {
                self.agents.insert(agent.to_string(), state);
                SignalOutcome::Applied
            }
            None => {
                self.agents.remove(agent);
                SignalOutcome::Applied
            }
        }
    }

    fn apply_op(&mut self, op: &str, command: Command) -> SignalOutcome {
        if self.finished.contains(op) {
            self.stats.late_signals = self.stats.late_signals.saturating_add(1);
            return SignalOutcome::LateForFinishedOp;
        }
        if command != Command::Resume
            && self.saturation != Saturation::Clear
            && !self.table.has_entry(op)
        {
            if command == Command::Pause && self.table.own(op) == Own::Evicted {
                // Its marker already holds it paused, exactly.
                return SignalOutcome::Unchanged;
            }
            // Saturated: every op without an entry may be the one whose
            // signal was lost, so none may gain an entry (which would make
            // its state exact again, lifting the lost signal).
            return self.saturate_ops(op, command);
        }
        let change = match command {
            Command::Pause => self.table.pause(op),
            Command::Terminate => self.table.terminate(op),
            Command::Resume => {
                return if self.table.resume(op) {
                    SignalOutcome::Applied
                } else {
                    SignalOutcome::Unchanged
                };
            }
        };
        match change {
            Ok(Change::Unchanged) => SignalOutcome::Unchanged,
            Ok(Change::Done { evicted }) => {
                if evicted.is_some() {
                    self.stats.evictions = self.stats.evictions.saturating_add(1);
                }
                SignalOutcome::Applied
            }
            Err(Full) => self.saturate_ops(op, command),
        }
    }

    /// A plain-op pause or terminate for `op` found no room: cover it. A
    /// terminate of an evicted op drops its marker, so that the cover (now
    /// reading `Terminated`) takes the op in.
    fn saturate_ops(&mut self, op: &str, command: Command) -> SignalOutcome {
        if command == Command::Terminate {
            self.lost_terminate = true;
            self.table.forget_marker(op);
        }
        self.saturate(Saturation::Ops)
    }

    fn saturate(&mut self, level: Saturation) -> SignalOutcome {
        self.stats.saturation_events = self.stats.saturation_events.saturating_add(1);
        self.saturation = self.saturation.max(level);
        SignalOutcome::Saturated
    }

    fn wait(&mut self, agent: &str, op: &str, kind: WaitKind) -> CheckOutcome {
        let used = self.waiters.len().saturating_add(self.releases.len());
        if used >= self.config.max_waiters {
            self.stats.waiter_limit_hits = self.stats.waiter_limit_hits.saturating_add(1);
            return CheckOutcome::Deny(DenyReason::TooManyWaiters);
        }
        CheckOutcome::Wait(self.waiters.insert(agent, op, kind))
    }

    fn release(&mut self, waiter: OpWaiterId, outcome: WaitOutcome) {
        if self.waiters.remove(waiter).is_some() {
            self.releases
                .push_back(OpControlAction::Release { waiter, outcome });
        }
    }

    /// Re-decide every waiter after anything that can change an op's state
    /// or the outage: release those whose wait is over, in id order.
    fn reevaluate(&mut self, now: Timestamp) {
        let in_force = self.link.in_force(now);
        let spent = self.hold_expired(now);
        let policy = self.config.outage_policy;
        let verdicts: Vec<(OpWaiterId, Verdict)> = self
            .waiters
            .iter()
            .map(|(id, w)| {
                let verdict = match self.effective(&w.agent, &w.op) {
                    (_, Cause::Saturated) => Verdict::Release(WaitOutcome::Saturated),
                    (OpState::Terminated, _) => Verdict::Release(WaitOutcome::Terminated),
                    (OpState::Paused, Cause::Evicted) => Verdict::Release(WaitOutcome::Evicted),
                    (OpState::Paused, _) if w.kind == WaitKind::Hold => Verdict::NowPaused,
                    (OpState::Paused, _) => Verdict::Keep,
                    // Only a resume signal makes a paused op's waiter runnable.
                    (OpState::Running, _) if w.kind == WaitKind::Paused => {
                        Verdict::Release(WaitOutcome::Resumed)
                    }
                    (OpState::Running, _) if !in_force => {
                        Verdict::Release(WaitOutcome::StreamRestored)
                    }
                    (OpState::Running, _) => match policy {
                        OutagePolicy::Hold if spent => Verdict::Release(WaitOutcome::HoldExpired),
                        OutagePolicy::Hold => Verdict::Keep,
                        OutagePolicy::Deny => Verdict::Release(WaitOutcome::OutageDeny),
                        OutagePolicy::Allow => Verdict::Release(WaitOutcome::OutageAllow),
                    },
                };
                (*id, verdict)
            })
            .collect();
        for (id, verdict) in verdicts {
            match verdict {
                Verdict::Keep => {}
                Verdict::NowPaused => self.waiters.set_kind(id, WaitKind::Paused),
                Verdict::Release(outcome) => {
                    if outcome == WaitOutcome::HoldExpired {
                        self.stats.held_released_expired =
                            self.stats.held_released_expired.saturating_add(1);
                    }
                    self.release(id, outcome);
                }
            }
        }
    }

    /// Queue an outage notice, coalescing with an undrained opposite one (so
    /// at most one notice is ever pending).
    fn notify(&mut self, event: LinkEvent) {
        let action = match event {
            LinkEvent::OutageStarted { since } => {
                self.stats.outages = self.stats.outages.saturating_add(1);
                OpControlAction::OutageStarted { since }
            }
            LinkEvent::OutageEnded { since } => OpControlAction::OutageEnded { since },
            LinkEvent::HoldExpired => return,
        };
        self.notice = match (self.notice.take(), action) {
            (Some(OpControlAction::OutageStarted { .. }), OpControlAction::OutageEnded { .. })
            | (Some(OpControlAction::OutageEnded { .. }), OpControlAction::OutageStarted { .. }) => {
                None
            }
            (_, action) => Some(action),
        };
    }
}

/// The next state and outcome of a reserved (`*` or `agent:`) entry.
fn reserved_transition(
    current: Option<EntryState>,
    command: Command,
) -> (Option<EntryState>, SignalOutcome) {
    use EntryState::{Paused, Terminated};
    match (current, command) {
        (Some(Terminated), _) | (Some(Paused), Command::Pause) | (None, Command::Resume) => {
            (current, SignalOutcome::Unchanged)
        }
        (Some(Paused), Command::Resume) => (None, SignalOutcome::Applied),
        (_, Command::Terminate) => (Some(Terminated), SignalOutcome::Applied),
        (None, Command::Pause) => (Some(Paused), SignalOutcome::Applied),
    }
}

fn entry_state(s: EntryState) -> OpState {
    match s {
        EntryState::Paused => OpState::Paused,
        EntryState::Terminated => OpState::Terminated,
    }
}

impl Machine for OpControl {
    type Action = OpControlAction;
    type TimerReason = OpControlTimer;

    fn poll_action(&mut self) -> Option<OpControlAction> {
        self.releases.pop_front().or_else(|| self.notice.take())
    }

    fn poll_timeout(&self) -> Option<Deadline<OpControlTimer>> {
        self.link.deadline()
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        // Several timers may be due (a late call): fire them in order.
        while let Some(event) = self.link.on_timeout(now, self.config.hold_limit) {
            match event {
                LinkEvent::OutageStarted { .. } => self.notify(event),
                LinkEvent::HoldExpired => {
                    self.stats.holds_expired = self.stats.holds_expired.saturating_add(1);
                    self.reevaluate(now);
                }
                LinkEvent::OutageEnded { .. } => {
                    self.notify(event);
                    self.reevaluate(now);
                }
            }
        }
    }
}
