//! Input sequences for the op-control machine and its invariant checker.
//!
//! The [`Harness`] keeps its own model of what the signals applied so far
//! require (per op, per agent, for `*`), an independent mirror of the stream
//! and outage timing, and the set of live waiters; after every step it checks
//! every invariant named in [`crate::op_control`] against the machine.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::time::Duration;

use super::contract::{drain, timeout_checked};
use super::Violation;
use crate::ensure_invariant;
use crate::machine::Machine;
use crate::op_control::{
    CheckOutcome, DenyReason, OpControl, OpControlAction, OpControlConfig, OpControlStats, OpState,
    OpWaiterId, OutagePolicy, Saturation, Signal, SignalOutcome, WaitOutcome,
};
use crate::time::Timestamp;

/// Agent ids a check or a finish may name (the last one is invalid).
pub const AGENTS: [&str; 3] = ["a", "b", ""];

/// The plain op ids the harness watches (five: enough to fill the small
/// config's entries, marker and overflow and still lose a pause).
pub const OPS: [&str; 5] = ["t1:s1", "t1:s2", "t2:s1", "t2:s2", "t3:s1"];

/// Wire values a signal step may carry: mostly the three real signals, then
/// `UNSPECIFIED` and unknown values.
pub const SIGNALS: [i32; 12] = [1, 2, 3, 1, 2, 3, 1, 3, 0, 4, -1, i32::MAX];

/// Number of targets an op id index selects from (see [`Harness::target`]).
pub const TARGETS: usize = 12;

/// One input to the op-control machine. Indices are taken modulo the size
/// of the list they select from, so every value is meaningful.
#[derive(Clone, Copy, Debug, arbitrary::Arbitrary)]
pub enum Op {
    /// A control-stream message: op id index (plain, `*`, `agent:`,
    /// invalid), wire value index into [`SIGNALS`], and a small sequence
    /// number (255 stands for `u64::MAX`) so repeats are common.
    Signal {
        /// Index of the op id (see [`Harness::target`]).
        target: u8,
        /// Index into [`SIGNALS`].
        signal: u8,
        /// Sequence number, taken modulo 8 (255 is `u64::MAX`).
        seq: u8,
    },
    /// A check of an op (index into [`AGENTS`], op id index).
    Check {
        /// Index into [`AGENTS`].
        agent: u8,
        /// Index of the op id.
        target: u8,
    },
    /// Cancel a waiter ever issued (by index), live or not.
    Cancel(u8),
    /// The stream came up.
    StreamUp,
    /// The stream went down.
    StreamDown,
    /// Advance time by this many milliseconds and fire due timers.
    Advance(u16),
    /// Jump to the next reported deadline and fire it.
    Wake,
    /// The op ended.
    Finished {
        /// Index into [`AGENTS`].
        agent: u8,
        /// Index of the op id.
        target: u8,
    },
    /// Every op ended.
    AllFinished,
    /// Change the outage policy.
    Policy(OutagePolicy),
}

/// What one step produced, for same-inputs-same-outputs comparisons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    /// A signal's outcome.
    Signal(SignalOutcome),
    /// A check's outcome.
    Check(CheckOutcome),
    /// Whether a cancel found a live waiter.
    Cancel(bool),
    /// Whether a finish was accepted.
    Finished(bool),
    /// The actions drained after the step.
    Actions(Vec<OpControlAction>),
    /// The stats after the step.
    Stats(OpControlStats),
}

/// A small configuration that makes every bound reachable in a few steps.
pub fn small_config() -> OpControlConfig {
    OpControlConfig {
        max_entries: 2,
        max_evicted: 1,
        max_overflow: 1,
        max_agents: 2,
        max_waiters: 4,
        max_finished: 2,
        dedupe_window: 4,
        max_op_id_len: 16,
        outage_grace: Duration::from_millis(1_000),
        restore_settle: Duration::from_millis(200),
        outage_policy: OutagePolicy::Hold,
        hold_limit: Duration::from_millis(1_500),
    }
}

/// What a control-stream op id covers, as the harness reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    All,
    Agent(String),
    Op(String),
}

fn classify(id: &str, max_len: usize) -> Option<Target> {
    if id.is_empty() || id.len() > max_len {
        return None;
    }
    if id == "*" {
        return Some(Target::All);
    }
    match id.strip_prefix("agent:") {
        Some("") => None,
        Some(agent) => Some(Target::Agent(agent.to_string())),
        None => Some(Target::Op(id.to_string())),
    }
}

fn agent_valid(agent: &str, max_len: usize) -> bool {
    !agent.is_empty() && agent.len() + "agent:".len() <= max_len
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmd {
    Pause,
    Resume,
    Terminate,
}

/// What the applied signals require, independent of the machine.
#[derive(Clone, Debug)]
struct Model {
    all: OpState,
    agents: BTreeMap<String, OpState>,
    ops: BTreeMap<String, OpState>,
}

impl Model {
    fn get(&self, t: &Target) -> OpState {
        match t {
            Target::All => self.all,
            Target::Agent(a) => self.agents.get(a).copied().unwrap_or(OpState::Running),
            Target::Op(o) => self.ops.get(o).copied().unwrap_or(OpState::Running),
        }
    }

    fn set(&mut self, t: &Target, s: OpState) {
        let map = match t {
            Target::All => {
                self.all = s;
                return;
            }
            Target::Agent(a) => (&mut self.agents, a),
            Target::Op(o) => (&mut self.ops, o),
        };
        if s == OpState::Running {
            map.0.remove(map.1);
        } else {
            map.0.insert(map.1.clone(), s);
        }
    }

    fn apply(&mut self, t: &Target, cmd: Cmd) {
        let cur = self.get(t);
        let next = match cmd {
            Cmd::Terminate => OpState::Terminated,
            Cmd::Pause => cur.max(OpState::Paused),
            Cmd::Resume if cur == OpState::Paused => OpState::Running,
            Cmd::Resume => cur,
        };
        self.set(t, next);
    }

    fn would_tighten(&self, t: &Target, cmd: Cmd) -> bool {
        let cur = self.get(t);
        match cmd {
            Cmd::Pause => cur == OpState::Running,
            Cmd::Terminate => cur != OpState::Terminated,
            Cmd::Resume => false,
        }
    }

    fn restriction(&self, agent: &str, op: &str) -> OpState {
        self.all
            .max(self.get(&Target::Agent(agent.to_string())))
            .max(self.get(&Target::Op(op.to_string())))
    }
}

/// The harness's own mirror of the stream and the outage timing.
#[derive(Clone, Debug)]
struct LinkMirror {
    up: bool,
    /// While down: when the outage policy starts (or started).
    outage_from: Timestamp,
    /// After coming back from an outage: when the policy stops.
    settle_until: Option<Timestamp>,
    /// When the current (or next) outage began: the grace instant of the
    /// drop that started it; a drop while settling continues it.
    began: Timestamp,
    /// How long `Hold` may hold once an outage began.
    hold_limit: Duration,
}

impl LinkMirror {
    fn in_outage(&self, now: Timestamp) -> bool {
        if self.up {
            self.settle_until.is_some_and(|u| now < u)
        } else {
            now >= self.outage_from
        }
    }

    /// Whether the outage in force at `now` has used up its hold budget.
    fn hold_spent(&self, now: Timestamp) -> bool {
        self.in_outage(now) && now >= self.began + self.hold_limit
    }

    fn down(&mut self, now: Timestamp, grace: Duration) {
        if !self.up {
            return;
        }
        if self.in_outage(now) {
            // Settling: the same outage goes on, with the same budget.
            self.outage_from = now;
        } else {
            self.outage_from = now + grace;
            self.began = self.outage_from;
        }
        self.up = false;
        self.settle_until = None;
    }

    fn up(&mut self, now: Timestamp, settle: Duration) {
        if self.up {
            return;
        }
        self.settle_until = if self.in_outage(now) && !settle.is_zero() {
            Some(now + settle)
        } else {
            None
        };
        self.up = true;
    }
}

/// The kind of step that produced a set of actions.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Signal { cmd: Option<Cmd>, applied: bool },
    Check,
    Cancel,
    Up,
    Down,
    Time,
    Finished(Option<String>),
    AllFinished,
    Policy(OutagePolicy),
}

/// Drives an [`OpControl`] with [`Op`]s and checks every invariant after
/// each.
#[derive(Debug)]
pub struct Harness {
    /// The machine under test.
    pub machine: OpControl,
    /// Simulated now.
    pub now: Timestamp,
    /// What every step produced.
    pub trace: Vec<Observed>,
    config: OpControlConfig,
    policy: OutagePolicy,
    model: Model,
    link: LinkMirror,
    live: BTreeMap<OpWaiterId, (String, String)>,
    issued: Vec<OpWaiterId>,
    recent: VecDeque<(u64, i32, String)>,
    finished: BTreeSet<String>,
    long_id: String,
    saturation: Saturation,
    /// Plain ops whose own pause or terminate the machine covered instead
    /// of storing (since the last every-op-finished).
    lost: BTreeSet<String>,
    /// Whether one of those was a terminate.
    lost_terminate: bool,
    outage_notified: bool,
}

impl Harness {
    /// A fresh machine with `config`, built at time zero (stream down).
    pub fn new(config: OpControlConfig) -> Self {
        let long_len = config.max_op_id_len.min(1024).saturating_add(1);
        Harness {
            machine: OpControl::new(config.clone(), Timestamp::ZERO),
            now: Timestamp::ZERO,
            trace: Vec::new(),
            policy: config.outage_policy,
            model: Model {
                all: OpState::Running,
                agents: BTreeMap::new(),
                ops: BTreeMap::new(),
            },
            link: LinkMirror {
                up: false,
                outage_from: Timestamp::ZERO + config.outage_grace,
                settle_until: None,
                began: Timestamp::ZERO + config.outage_grace,
                hold_limit: config.hold_limit,
            },
            live: BTreeMap::new(),
            issued: Vec::new(),
            recent: VecDeque::new(),
            finished: BTreeSet::new(),
            long_id: "x".repeat(long_len),
            saturation: Saturation::Clear,
            lost: BTreeSet::new(),
            lost_terminate: false,
            outage_notified: false,
            config,
        }
    }

    /// The op id a target index selects: the plain [`OPS`], `*`,
    /// `agent:a`, `agent:b`, `agent:c`, then invalid ids (empty, `agent:`
    /// and one byte over the length bound).
    pub fn target(&self, index: u8) -> &str {
        match usize::from(index) % TARGETS {
            i @ 0..=4 => OPS[i],
            5 => "*",
            6 => "agent:a",
            7 => "agent:b",
            8 => "agent:c",
            9 => "",
            10 => "agent:",
            _ => &self.long_id,
        }
    }

    fn saturated(&self) -> bool {
        self.machine.saturation() != Saturation::Clear
    }

    /// Whether the machine holds `op`'s own pause or terminate exactly (an
    /// entry, an overflow entry or a marker): the signals say so and none
    /// of them was covered instead.
    fn held(&self, op: &str) -> bool {
        self.model.ops.contains_key(op) && !self.lost.contains(op)
    }

    /// What the saturated machine must say of `op` when it holds nothing
    /// for it: `None` while it is not saturated.
    fn cover(&self, op: &str) -> Option<OpState> {
        match self.machine.saturation() {
            Saturation::Clear => None,
            Saturation::Fleet => Some(OpState::Terminated),
            Saturation::Ops if self.held(op) => None,
            Saturation::Ops if self.lost_terminate => Some(OpState::Terminated),
            Saturation::Ops => Some(OpState::Paused),
        }
    }

    /// Apply one input and check every invariant.
    pub fn apply(&mut self, op: Op) -> Result<(), Violation> {
        let sat_before = self.machine.saturation();
        let step = match op {
            Op::Signal {
                target,
                signal,
                seq,
            } => self.signal(target, signal, seq)?,
            Op::Check { agent, target } => self.check(agent, target)?,
            Op::Cancel(i) => {
                let id = if self.issued.is_empty() {
                    OpWaiterId(u64::from(i))
                } else {
                    self.issued[usize::from(i) % self.issued.len()]
                };
                let expected = self.live.remove(&id).is_some();
                let got = self.machine.cancel(id);
                ensure_invariant!(
                    got == expected,
                    "OP_WAITER_RELEASED_ONCE",
                    "cancel({id:?}) returned {got}, waiter live: {expected}"
                );
                self.trace.push(Observed::Cancel(got));
                Step::Cancel
            }
            Op::StreamUp => {
                self.machine.on_stream_up(self.now);
                self.link.up(self.now, self.config.restore_settle);
                Step::Up
            }
            Op::StreamDown => {
                self.machine.on_stream_down(self.now);
                self.link.down(self.now, self.config.outage_grace);
                Step::Down
            }
            Op::Advance(ms) => {
                self.now = self.now + Duration::from_millis(u64::from(ms));
                let fired = timeout_checked(&mut self.machine, self.now)?;
                return self.after(Step::Time, fired, sat_before);
            }
            Op::Wake => {
                if let Some(d) = self.machine.poll_timeout() {
                    self.now = self.now.max(d.at);
                }
                let fired = timeout_checked(&mut self.machine, self.now)?;
                return self.after(Step::Time, fired, sat_before);
            }
            Op::Finished { agent, target } => {
                let agent = AGENTS[usize::from(agent) % AGENTS.len()];
                let id = self.target(target).to_string();
                let max = self.config.max_op_id_len;
                let op = match classify(&id, max) {
                    Some(Target::Op(op)) if agent_valid(agent, max) => Some(op),
                    _ => None,
                };
                let got = self.machine.on_op_finished(agent, &id);
                ensure_invariant!(
                    got == op.is_some(),
                    "OP_INVALID_ID_REFUSED",
                    "on_op_finished({agent:?}, {id:?}) returned {got}"
                );
                if let Some(op) = &op {
                    self.model.ops.remove(op);
                    self.lost.remove(op);
                    self.finished.insert(op.clone());
                }
                self.trace.push(Observed::Finished(got));
                Step::Finished(op)
            }
            Op::AllFinished => {
                self.machine.on_all_ops_finished();
                self.model.ops.clear();
                self.lost.clear();
                self.lost_terminate = false;
                Step::AllFinished
            }
            Op::Policy(p) => {
                self.machine.set_outage_policy(self.now, p);
                self.policy = p;
                Step::Policy(p)
            }
        };
        let actions = drain(&mut self.machine)?;
        self.after(step, actions, sat_before)
    }

    fn signal(&mut self, target: u8, signal: u8, seq: u8) -> Result<Step, Violation> {
        let raw = SIGNALS[usize::from(signal) % SIGNALS.len()];
        let seq = if seq == u8::MAX {
            u64::MAX
        } else {
            u64::from(seq % 8)
        };
        let id = self.target(target).to_string();
        let before = self.machine.stats();
        let out = self
            .machine
            .on_signal(self.now, &id, Signal::from_wire(raw), seq);
        let after = self.machine.stats();
        self.trace.push(Observed::Signal(out));
        let cmd = match raw {
            1 => Cmd::Pause,
            2 => Cmd::Resume,
            3 => Cmd::Terminate,
            _ => {
                ensure_invariant!(
                    out == SignalOutcome::Ignored
                        && after.ignored_signals == before.ignored_signals + 1,
                    "OP_UNSPECIFIED_IGNORED",
                    "signal {raw} gave {out:?}, ignored count {} -> {}",
                    before.ignored_signals,
                    after.ignored_signals
                );
                return Ok(Step::Signal {
                    cmd: None,
                    applied: false,
                });
            }
        };
        let Some(scope) = classify(&id, self.config.max_op_id_len) else {
            ensure_invariant!(
                matches!(out, SignalOutcome::Refused(_))
                    && after.refused_signals == before.refused_signals + 1,
                "OP_INVALID_ID_REFUSED",
                "signal on {id:?} gave {out:?}"
            );
            return Ok(Step::Signal {
                cmd: Some(cmd),
                applied: false,
            });
        };
        let repeat = self
            .recent
            .iter()
            .any(|(s, r, o)| *s == seq && *r == raw && *o == id);
        if !repeat && self.config.dedupe_window > 0 {
            if self.recent.len() >= self.config.dedupe_window {
                self.recent.pop_front();
            }
            self.recent.push_back((seq, raw, id.clone()));
        }
        let expect_dup = repeat && (cmd == Cmd::Resume || !self.model.would_tighten(&scope, cmd));
        let dup = out == SignalOutcome::Duplicate;
        ensure_invariant!(
            !dup || repeat,
            "OP_DUPLICATE_DROPPED",
            "({seq}, {id:?}, {cmd:?}) dropped as a duplicate but not seen recently"
        );
        ensure_invariant!(
            dup == (after.duplicates_dropped == before.duplicates_dropped + 1),
            "OP_DUPLICATE_DROPPED",
            "duplicate counter out of step with outcome {out:?}"
        );
        if before.saturation == Saturation::Clear {
            ensure_invariant!(
                dup == expect_dup,
                "OP_DUPLICATE_DROPPED",
                "({seq}, {id:?}, {cmd:?}) repeat={repeat} gave {out:?}, expected duplicate: {expect_dup}"
            );
        } else if repeat && cmd == Cmd::Resume {
            ensure_invariant!(
                dup,
                "OP_DUPLICATE_DROPPED",
                "a repeated resume ({seq}, {id:?}) was not dropped: {out:?}"
            );
        }
        match out {
            SignalOutcome::Duplicate => {}
            SignalOutcome::LateForFinishedOp => {
                let late_ok = matches!(&scope, Target::Op(op) if self.finished.contains(op));
                ensure_invariant!(
                    late_ok,
                    "OP_TERMINATE_ABSORBING",
                    "{cmd:?} on {id:?} dropped as late, but the op is not known finished"
                );
            }
            SignalOutcome::Ignored | SignalOutcome::Refused(_) => {
                return Err(Violation::new(
                    "OP_INVALID_ID_REFUSED",
                    format!("valid {cmd:?} on {id:?} gave {out:?}"),
                ));
            }
            SignalOutcome::Applied | SignalOutcome::Unchanged | SignalOutcome::Saturated => {
                if out == SignalOutcome::Saturated {
                    ensure_invariant!(
                        self.saturated() && cmd != Cmd::Resume,
                        "OP_SATURATION_FAILS_CLOSED",
                        "{cmd:?} on {id:?} reported saturated, machine {:?}",
                        self.machine.saturation()
                    );
                    if let Target::Op(op) = &scope {
                        self.lost.insert(op.clone());
                        self.lost_terminate |= cmd == Cmd::Terminate;
                    }
                }
                self.model.apply(&scope, cmd);
            }
        }
        Ok(Step::Signal {
            cmd: Some(cmd),
            applied: out == SignalOutcome::Applied,
        })
    }

    fn check(&mut self, agent: u8, target: u8) -> Result<Step, Violation> {
        let agent = AGENTS[usize::from(agent) % AGENTS.len()];
        let id = self.target(target).to_string();
        let max = self.config.max_op_id_len;
        let out = self.machine.check(self.now, agent, &id);
        self.trace.push(Observed::Check(out));
        if !agent_valid(agent, max) {
            ensure_invariant!(
                matches!(out, CheckOutcome::Deny(DenyReason::InvalidAgent(_))),
                "OP_INVALID_ID_REFUSED",
                "check({agent:?}, {id:?}) gave {out:?}"
            );
            return Ok(Step::Check);
        }
        let Some(Target::Op(op)) = classify(&id, max) else {
            ensure_invariant!(
                matches!(out, CheckOutcome::Deny(DenyReason::InvalidOpId(_))),
                "OP_INVALID_ID_REFUSED",
                "check({agent:?}, {id:?}) gave {out:?}"
            );
            return Ok(Step::Check);
        };
        self.finished.remove(&op);
        let r = self.model.restriction(agent, &op);
        let sat = self.saturated();
        let room = self.live.len() < self.config.max_waiters;
        let ctx = format!("check({agent:?}, {op:?}) with {r:?} gave {out:?}");
        match r {
            OpState::Terminated => {
                let ok = if sat {
                    matches!(
                        out,
                        CheckOutcome::Deny(DenyReason::Terminated | DenyReason::Saturated)
                    )
                } else {
                    out == CheckOutcome::Deny(DenyReason::Terminated)
                };
                ensure_invariant!(ok, "OP_TERMINATE_ABSORBING", "{ctx}");
            }
            OpState::Paused if self.cover(&op).is_some() => {
                ensure_invariant!(
                    out == CheckOutcome::Deny(DenyReason::Saturated),
                    "OP_SATURATION_FAILS_CLOSED",
                    "{ctx} under the cover of {:?}",
                    self.machine.saturation()
                );
            }
            OpState::Paused => {
                let ok = match out {
                    CheckOutcome::Run => false,
                    CheckOutcome::Wait(_) => room,
                    CheckOutcome::Deny(DenyReason::TooManyWaiters) => !room,
                    CheckOutcome::Deny(DenyReason::Evicted) => {
                        self.machine.stats().evicted_markers > 0
                    }
                    CheckOutcome::Deny(_) => false,
                };
                ensure_invariant!(ok, "OP_PAUSE_HOLDS", "{ctx}");
            }
            OpState::Running if sat => {
                ensure_invariant!(
                    out == CheckOutcome::Deny(DenyReason::Saturated),
                    "OP_SATURATION_FAILS_CLOSED",
                    "{ctx} while {:?}",
                    self.machine.saturation()
                );
            }
            OpState::Running => {
                let expected = if !self.link.in_outage(self.now) {
                    Some(CheckOutcome::Run)
                } else {
                    match self.policy {
                        OutagePolicy::Hold if self.link.hold_spent(self.now) => {
                            Some(CheckOutcome::Deny(DenyReason::HoldExpired))
                        }
                        OutagePolicy::Hold if room => None,
                        OutagePolicy::Hold => Some(CheckOutcome::Deny(DenyReason::TooManyWaiters)),
                        OutagePolicy::Deny => Some(CheckOutcome::Deny(DenyReason::StreamDown)),
                        OutagePolicy::Allow => Some(CheckOutcome::Run),
                    }
                };
                let ok = match expected {
                    Some(e) => out == e,
                    None => matches!(out, CheckOutcome::Wait(_)),
                };
                let inv = if out == CheckOutcome::Deny(DenyReason::HoldExpired)
                    || expected == Some(CheckOutcome::Deny(DenyReason::HoldExpired))
                {
                    "OP_HOLD_BOUNDED"
                } else {
                    "OP_OUTAGE_POLICY"
                };
                ensure_invariant!(
                    ok,
                    inv,
                    "{ctx}; outage {} hold spent {} policy {:?}",
                    self.link.in_outage(self.now),
                    self.link.hold_spent(self.now),
                    self.policy
                );
            }
        }
        if let CheckOutcome::Wait(w) = out {
            ensure_invariant!(
                !self.issued.contains(&w),
                "OP_WAITER_RELEASED_ONCE",
                "waiter id {w:?} issued twice"
            );
            self.issued.push(w);
            self.live.insert(w, (agent.to_string(), op));
        }
        Ok(Step::Check)
    }

    fn after(
        &mut self,
        step: Step,
        actions: Vec<OpControlAction>,
        sat_before: Saturation,
    ) -> Result<(), Violation> {
        let sat = self.saturated();
        let in_outage = self.link.in_outage(self.now);
        for action in &actions {
            match *action {
                OpControlAction::Release { waiter, outcome } => {
                    self.check_release(&step, waiter, outcome, sat, in_outage)?;
                }
                OpControlAction::OutageStarted { .. } => {
                    ensure_invariant!(
                        !self.outage_notified
                            && matches!(step, Step::Time | Step::Up | Step::Down | Step::Policy(_)),
                        "OP_OUTAGE_POLICY",
                        "outage started twice or on {step:?}"
                    );
                    self.outage_notified = true;
                }
                OpControlAction::OutageEnded { .. } => {
                    ensure_invariant!(
                        self.outage_notified && !in_outage,
                        "OP_OUTAGE_POLICY",
                        "outage ended without starting, or while in force"
                    );
                    self.outage_notified = false;
                }
            }
        }
        if step == Step::Check {
            ensure_invariant!(
                actions.is_empty(),
                "OP_WAITER_RELEASED_ONCE",
                "a check produced actions {actions:?}"
            );
        }
        self.trace.push(Observed::Actions(actions));
        self.check_state(&step, sat_before)
    }

    fn check_release(
        &mut self,
        step: &Step,
        waiter: OpWaiterId,
        outcome: WaitOutcome,
        sat: bool,
        in_outage: bool,
    ) -> Result<(), Violation> {
        let Some((agent, op)) = self.live.remove(&waiter) else {
            return Err(Violation::new(
                "OP_WAITER_RELEASED_ONCE",
                format!(
                    "{waiter:?} released with {outcome:?} but not live (released or cancelled)"
                ),
            ));
        };
        let r = self.model.restriction(&agent, &op);
        let ctx =
            format!("{waiter:?} of ({agent:?}, {op:?}) at {r:?} released {outcome:?} on {step:?}");
        if outcome.runs() {
            let inv = if r == OpState::Terminated {
                "OP_TERMINATE_ABSORBING"
            } else {
                "OP_PAUSE_HOLDS"
            };
            ensure_invariant!(r == OpState::Running && !sat, inv, "{ctx}");
        }
        let ok = match outcome {
            WaitOutcome::Resumed => matches!(
                step,
                Step::Signal {
                    cmd: Some(Cmd::Resume),
                    applied: true
                }
            ),
            WaitOutcome::StreamRestored => matches!(step, Step::Time | Step::Up) && !in_outage,
            WaitOutcome::OutageAllow => *step == Step::Policy(OutagePolicy::Allow) && in_outage,
            WaitOutcome::OutageDeny => *step == Step::Policy(OutagePolicy::Deny) && in_outage,
            WaitOutcome::HoldExpired => {
                *step != Step::Check
                    && r == OpState::Running
                    && !sat
                    && self.policy == OutagePolicy::Hold
                    && self.link.hold_spent(self.now)
            }
            WaitOutcome::Terminated => r == OpState::Terminated,
            WaitOutcome::Saturated => self.cover(&op).is_some(),
            WaitOutcome::Evicted => {
                matches!(
                    step,
                    Step::Signal {
                        cmd: Some(Cmd::Pause | Cmd::Terminate),
                        ..
                    }
                ) && (r == OpState::Paused || sat)
            }
            WaitOutcome::OpFinished => match step {
                Step::Finished(Some(f)) => *f == op,
                Step::AllFinished => true,
                _ => false,
            },
        };
        let inv = match outcome {
            WaitOutcome::Resumed => "OP_PAUSE_HOLDS",
            WaitOutcome::StreamRestored => "OP_HOLD_RELEASED_ON_RESTORE",
            WaitOutcome::OutageAllow | WaitOutcome::OutageDeny => "OP_OUTAGE_POLICY",
            WaitOutcome::HoldExpired => "OP_HOLD_BOUNDED",
            WaitOutcome::Terminated => "OP_TERMINATE_RELEASES_WAITERS",
            WaitOutcome::Saturated => "OP_SATURATION_FAILS_CLOSED",
            WaitOutcome::Evicted => "OP_EVICTION_FAILS_CLOSED",
            WaitOutcome::OpFinished => "OP_WAITER_RELEASED_ONCE",
        };
        ensure_invariant!(ok, inv, "{ctx}");
        Ok(())
    }

    fn check_state(&mut self, step: &Step, sat_before: Saturation) -> Result<(), Violation> {
        let s = self.machine.stats();
        let c = &self.config;
        ensure_invariant!(
            s.entries <= c.max_entries
                && s.evicted_markers <= c.max_evicted
                && s.overflow <= c.max_overflow
                && s.agents <= c.max_agents
                && s.waiters <= c.max_waiters
                && s.finished_remembered <= c.max_finished
                && s.recent_signals <= c.dedupe_window,
            "OP_BOUNDED",
            "{s:?} exceeds {c:?}"
        );
        ensure_invariant!(
            s.waiters == self.live.len(),
            "OP_WAITER_RELEASED_ONCE",
            "machine holds {} waiters, harness {}",
            s.waiters,
            self.live.len()
        );
        // Saturation: entered only when full, sticky, lifted only as documented.
        let sat = s.saturation;
        let allowed_drop = sat_before == Saturation::Ops && *step == Step::AllFinished;
        ensure_invariant!(
            sat >= sat_before || (allowed_drop && sat == Saturation::Clear),
            "OP_SATURATION_FAILS_CLOSED",
            "saturation went {sat_before:?} -> {sat:?} on {step:?}"
        );
        if sat > sat_before && sat_before != Saturation::Fleet {
            let legit = match sat {
                Saturation::Ops => {
                    s.entries == c.max_entries
                        && (s.paused == 0 || s.evicted_markers == c.max_evicted)
                        && s.overflow == c.max_overflow
                }
                Saturation::Fleet => s.agents == c.max_agents,
                Saturation::Clear => false,
            };
            ensure_invariant!(
                legit,
                "OP_OVERFLOW_EXACT",
                "saturated to {sat:?} with room left: {s:?}"
            );
        }
        if *step == Step::AllFinished {
            ensure_invariant!(
                sat != Saturation::Ops && s.entries == 0 && s.evicted_markers == 0,
                "OP_SATURATION_FAILS_CLOSED",
                "on_all_ops_finished left {s:?}"
            );
        }
        ensure_invariant!(
            s.lost_terminate == self.lost_terminate,
            "OP_SATURATION_FAILS_CLOSED",
            "machine says a terminate was lost: {}, harness: {}",
            s.lost_terminate,
            self.lost_terminate
        );
        self.saturation = sat;
        // Stream and outage mirror.
        ensure_invariant!(
            self.machine.stream_up() == self.link.up
                && self.machine.outage_in_force(self.now) == self.link.in_outage(self.now),
            "OP_OUTAGE_POLICY",
            "machine up={} outage={}, mirror up={} outage={} at {:?}",
            self.machine.stream_up(),
            self.machine.outage_in_force(self.now),
            self.link.up,
            self.link.in_outage(self.now),
            self.now
        );
        ensure_invariant!(
            self.machine.hold_expired(self.now) == self.link.hold_spent(self.now),
            "OP_HOLD_BOUNDED",
            "machine hold expired={}, mirror={} (outage began {:?}, limit {:?}) at {:?}",
            self.machine.hold_expired(self.now),
            self.link.hold_spent(self.now),
            self.link.began,
            self.link.hold_limit,
            self.now
        );
        // Every watched op's state.
        let saturated = sat != Saturation::Clear;
        let max = self.config.max_op_id_len;
        for agent in &AGENTS[..2] {
            for op in OPS {
                let st = self.machine.state(agent, op);
                if !agent_valid(agent, max) || classify(op, max).is_none() {
                    ensure_invariant!(
                        st == OpState::Terminated,
                        "OP_INVALID_ID_REFUSED",
                        "state({agent:?}, {op:?}) = {st:?} for an id that cannot run"
                    );
                    continue;
                }
                let r = self.model.restriction(agent, op);
                let ctx = format!("state({agent:?}, {op:?}) = {st:?}, signals say {r:?}");
                match (r, self.cover(op)) {
                    (OpState::Terminated, _) => {
                        ensure_invariant!(st == r, "OP_TERMINATE_ABSORBING", "{ctx}");
                    }
                    (_, Some(cover)) => {
                        ensure_invariant!(
                            st == cover,
                            "OP_SATURATION_FAILS_CLOSED",
                            "{ctx}, the cover says {cover:?}"
                        );
                    }
                    (OpState::Paused, None) if saturated => {
                        // Held exactly: saturation never makes it worse.
                        ensure_invariant!(st == r, "OP_OVERFLOW_EXACT", "{ctx}");
                    }
                    _ => ensure_invariant!(st == r, "OP_STATE_EXACT", "{ctx}"),
                }
            }
        }
        // Live waiters must still have a reason to wait.
        let in_outage = self.link.in_outage(self.now);
        for (w, (agent, op)) in &self.live {
            let r = self.model.restriction(agent, op);
            let ctx = format!("{w:?} of ({agent:?}, {op:?}) at {r:?} still waiting");
            match r {
                OpState::Terminated => {
                    return Err(Violation::new("OP_TERMINATE_RELEASES_WAITERS", ctx));
                }
                OpState::Running => {
                    ensure_invariant!(
                        !saturated && in_outage && self.policy == OutagePolicy::Hold,
                        "OP_HOLD_RELEASED_ON_RESTORE",
                        "{ctx} (outage {in_outage}, policy {:?}, {sat:?})",
                        self.policy
                    );
                    ensure_invariant!(
                        !self.link.hold_spent(self.now),
                        "OP_HOLD_BOUNDED",
                        "{ctx} past the hold limit (outage began {:?}, limit {:?}, now {:?})",
                        self.link.began,
                        self.link.hold_limit,
                        self.now
                    );
                }
                OpState::Paused => {
                    ensure_invariant!(
                        self.cover(op).is_none(),
                        "OP_SATURATION_FAILS_CLOSED",
                        "{ctx} under the cover of {sat:?}"
                    );
                }
            }
        }
        self.trace.push(Observed::Stats(s));
        Ok(())
    }
}

/// Run a whole sequence from a fresh machine; the first violation, if any.
pub fn run(config: OpControlConfig, ops: &[Op]) -> Result<Harness, Violation> {
    let mut h = Harness::new(config);
    for op in ops {
        h.apply(*op)?;
    }
    Ok(h)
}
