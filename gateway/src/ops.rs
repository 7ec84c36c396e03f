//! The gateway side of op control: the current signal of every op it was
//! told about, a gateway-wide sequence counter, and live fan-out.
//!
//! Guarantees:
//! - a subscriber first receives the current state of every op that covers
//!   its agent (paused, resumed or terminated, so a client that missed a
//!   resume while away is released too), then live signals, with nothing
//!   lost between the two (snapshot and live subscription under one lock);
//! - `*` covers every agent; `agent:{agent_id}` covers that agent; any other
//!   op id covers only the agent whose full org/team/agent triple it was
//!   signalled for;
//! - a terminated op stays terminated: a later pause or resume is refused;
//! - `sequence` is one counter for the whole gateway, as in Agent Assembly;
//! - the table is bounded: at the bound the oldest resumed entry is dropped
//!   first, then the oldest paused one; terminated entries go last.

use std::collections::BTreeMap;
use std::sync::Mutex;

use tokio::sync::broadcast;

/// Ops the gateway holds op-control state for, by default: 100,000 (ten
/// signalled ops for each of 10,000 agents).
pub const DEFAULT_MAX_OPS: usize = 100_000;
/// Live signals buffered per op-control subscriber before it counts as
/// lagging, by default: 1,024.
pub const DEFAULT_OP_LIVE_CAPACITY: usize = 1024;

/// An agent's full identity.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct AgentKey {
    /// Organisation.
    pub org_id: String,
    /// Team (tenant).
    pub team_id: String,
    /// Agent.
    pub agent_id: String,
}

/// An op-control signal, with its wire value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpSignal {
    /// Hold the op until resumed or terminated.
    Pause = 1,
    /// Release a paused op.
    Resume = 2,
    /// Stop the op for good.
    Terminate = 3,
}

/// The latest signal of one op.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpRecord {
    /// The op id (`trace:span`, `*` or `agent:{id}`).
    pub op_id: String,
    /// The agent it was signalled for (`None` for `*` and `agent:` ids).
    pub agent: Option<AgentKey>,
    /// The signal.
    pub signal: OpSignal,
    /// The gateway-wide sequence number it was sent with.
    pub sequence: u64,
}

impl OpRecord {
    /// Whether this record applies to `agent`.
    pub fn covers(&self, agent: &AgentKey) -> bool {
        if self.op_id == "*" {
            return true;
        }
        if let Some(id) = self.op_id.strip_prefix("agent:") {
            return id == agent.agent_id;
        }
        self.agent.as_ref() == Some(agent)
    }
}

/// Why a signal was refused.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    /// The op was terminated; terminate is final.
    #[error("op {0} is terminated; it cannot be paused or resumed")]
    Terminated(String),
    /// The op id is empty.
    #[error("op id is empty")]
    EmptyOpId,
}

struct Board {
    next_seq: u64,
    ops: BTreeMap<String, OpRecord>,
}

/// The gateway's op-control state and live fan-out.
pub struct OpBoard {
    board: Mutex<Board>,
    live: broadcast::Sender<OpRecord>,
    max_ops: usize,
}

impl OpBoard {
    /// An empty board remembering at most `max_ops` ops.
    pub fn new(max_ops: usize) -> Self {
        OpBoard::with_live_buffer(max_ops, DEFAULT_OP_LIVE_CAPACITY)
    }

    /// An empty board remembering at most `max_ops` ops, buffering
    /// `live_buffer` live signals per subscriber (at least 1) before that
    /// subscriber counts as lagging.
    pub fn with_live_buffer(max_ops: usize, live_buffer: usize) -> Self {
        OpBoard {
            board: Mutex::new(Board {
                next_seq: 1,
                ops: BTreeMap::new(),
            }),
            live: broadcast::channel(live_buffer.max(1)).0,
            max_ops: max_ops.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Board> {
        self.board.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record and broadcast `signal` for `op_id`. `agent` is required for
    /// ordinary op ids and ignored for `*` and `agent:{id}`.
    pub fn signal(
        &self,
        op_id: &str,
        agent: Option<AgentKey>,
        signal: OpSignal,
    ) -> Result<OpRecord, SignalError> {
        if op_id.is_empty() {
            return Err(SignalError::EmptyOpId);
        }
        let mut b = self.lock();
        if let Some(prev) = b.ops.get(op_id) {
            if prev.signal == OpSignal::Terminate && signal != OpSignal::Terminate {
                return Err(SignalError::Terminated(op_id.to_owned()));
            }
        }
        let reserved = op_id == "*" || op_id.starts_with("agent:");
        let record = OpRecord {
            op_id: op_id.to_owned(),
            agent: if reserved { None } else { agent },
            signal,
            sequence: b.next_seq,
        };
        b.next_seq += 1;
        if !b.ops.contains_key(op_id) && b.ops.len() >= self.max_ops {
            evict_one(&mut b.ops);
        }
        b.ops.insert(op_id.to_owned(), record.clone());
        // No receivers is fine: nobody is subscribed.
        let _ = self.live.send(record.clone());
        Ok(record)
    }

    /// The current state of every op covering `agent`, then a receiver of
    /// live signals (filter them with [`OpRecord::covers`]).
    pub fn subscribe(&self, agent: &AgentKey) -> (Vec<OpRecord>, broadcast::Receiver<OpRecord>) {
        let b = self.lock();
        let mut snapshot: Vec<OpRecord> = b
            .ops
            .values()
            .filter(|r| r.covers(agent))
            .cloned()
            .collect();
        snapshot.sort_by_key(|r| r.sequence);
        (snapshot, self.live.subscribe())
    }

    /// The latest record of `op_id`, if the board holds one.
    pub fn get(&self, op_id: &str) -> Option<OpRecord> {
        self.lock().ops.get(op_id).cloned()
    }

    /// Ops the board holds state for.
    pub fn len(&self) -> usize {
        self.lock().ops.len()
    }

    /// Whether the board holds no op.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sequence number of the last signal sent; 0 if none.
    pub fn last_sequence(&self) -> u64 {
        self.lock().next_seq - 1
    }

    /// Every op's latest record, in sequence order.
    pub fn all(&self) -> Vec<OpRecord> {
        let mut v: Vec<OpRecord> = self.lock().ops.values().cloned().collect();
        v.sort_by_key(|r| r.sequence);
        v
    }
}

fn evict_one(ops: &mut BTreeMap<String, OpRecord>) {
    for wanted in [OpSignal::Resume, OpSignal::Pause, OpSignal::Terminate] {
        let victim = ops
            .values()
            .filter(|r| r.signal == wanted && r.op_id != "*" && !r.op_id.starts_with("agent:"))
            .min_by_key(|r| r.sequence)
            .map(|r| r.op_id.clone());
        if let Some(id) = victim {
            ops.remove(&id);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(a: &str) -> AgentKey {
        AgentKey {
            org_id: "o".into(),
            team_id: "t".into(),
            agent_id: a.into(),
        }
    }

    #[test]
    fn snapshot_then_live_filtered_by_triple_and_reserved_ids() {
        let board = OpBoard::new(16);
        board
            .signal("t1:s1", Some(agent("a")), OpSignal::Pause)
            .unwrap();
        board
            .signal("t2:s2", Some(agent("b")), OpSignal::Pause)
            .unwrap();
        board.signal("agent:a", None, OpSignal::Pause).unwrap();
        let (snap, mut live) = board.subscribe(&agent("a"));
        let ids: Vec<_> = snap.iter().map(|r| r.op_id.as_str()).collect();
        assert_eq!(ids, vec!["t1:s1", "agent:a"]);
        board.signal("*", None, OpSignal::Terminate).unwrap();
        let r = live.try_recv().unwrap();
        assert!(r.covers(&agent("a")) && r.covers(&agent("zzz")));
        // Another org's agent with the same agent_id is not covered by an op
        // signalled for ("o","t","a").
        let other = AgentKey {
            org_id: "x".into(),
            ..agent("a")
        };
        assert!(!snap[0].covers(&other));
    }

    #[test]
    fn terminate_is_final_and_sequence_is_gateway_wide() {
        let board = OpBoard::new(16);
        let a = board
            .signal("x:y", Some(agent("a")), OpSignal::Terminate)
            .unwrap();
        assert_eq!(
            board.signal("x:y", Some(agent("a")), OpSignal::Resume),
            Err(SignalError::Terminated("x:y".into()))
        );
        let b = board
            .signal("p:q", Some(agent("b")), OpSignal::Pause)
            .unwrap();
        assert_eq!(b.sequence, a.sequence + 1);
        assert_eq!(
            board.signal("", None, OpSignal::Pause),
            Err(SignalError::EmptyOpId)
        );
        assert_eq!(board.last_sequence(), b.sequence);
        assert_eq!(board.len(), 2);
        assert_eq!(
            board.get("x:y").map(|r| r.signal),
            Some(OpSignal::Terminate)
        );
        assert_eq!(OpBoard::new(1).last_sequence(), 0);
    }

    #[test]
    fn bounded_table_drops_resumed_before_terminated() {
        let board = OpBoard::new(2);
        board
            .signal("a:1", Some(agent("a")), OpSignal::Terminate)
            .unwrap();
        board
            .signal("a:2", Some(agent("a")), OpSignal::Resume)
            .unwrap();
        board
            .signal("a:3", Some(agent("a")), OpSignal::Pause)
            .unwrap();
        let ids: Vec<_> = board.all().into_iter().map(|r| r.op_id).collect();
        assert_eq!(ids, vec!["a:1", "a:3"]);
    }
}
