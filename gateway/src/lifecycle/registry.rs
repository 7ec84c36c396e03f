//! The registry of agents the lifecycle knows: their registration (key and
//! issued token), the operator's suspend level, whether a policy update is
//! waiting for their next heartbeat, and their one open control stream.
//!
//! Guarantees:
//! - registering binds a fresh token to the agent in the gateway's
//!   [`TokenTable`], so every service accepts it as a configured token;
//!   re-registering (with [`Reregistration::Replace`]) revokes the old
//!   token and ends the control stream opened with it, or (with
//!   [`Reregistration::Refuse`]) changes nothing;
//! - deregistering revokes the token presented and the registration's, and
//!   ends the agent's control stream cleanly;
//! - an agent has at most one control stream: opening one ends the previous
//!   one with `UNAVAILABLE`;
//! - a command reaches the open stream once, in the order the operator
//!   sent it; with no stream open it is not queued: only the suspend level
//!   (and the policy-updated flag heartbeat reports) remain, and a stream
//!   opened while the agent is suspended starts with a `SuspendCommand`;
//! - a stream whose client does not read falls behind at most the
//!   configured buffer; one command more ends it with `UNAVAILABLE`;
//! - the operator's suspend level outlives deregistration, so an agent
//!   cannot shed a suspension by registering again;
//! - at most `max_agents` agents are held (registered, streaming or
//!   suspended); one more is refused, and an agent with none of the three
//!   is forgotten at once.

use std::collections::HashMap;
use std::sync::Mutex;

use tether_proto::agent::control_command::Command as WireCommand;
use tether_proto::agent::{
    ControlCommand, KillCommand, PolicyUpdateCommand, ResumeCommand, SuspendCommand,
};
use tokio::sync::{mpsc, oneshot};

use crate::auth::TokenTable;
use crate::credentials::describe;
use crate::ops::AgentKey;

/// Agents the lifecycle holds at once (registered, with a control stream,
/// or suspended), by default: 32,768.
pub const DEFAULT_MAX_AGENTS: usize = 32_768;

/// Commands buffered per control stream before it counts as lagging, by
/// default: 64.
pub const DEFAULT_CONTROL_BUFFER: usize = 64;

/// What `Register` does for an agent (org, team and did:key) that is
/// already registered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reregistration {
    /// The possession proof shows it is the same agent: issue a new token,
    /// revoke the old one and end the control stream opened with it
    /// (default).
    #[default]
    Replace,
    /// Refuse with `ALREADY_EXISTS`, as Agent Assembly's gateway does after
    /// a restart (it keeps registrations but forgets tokens).
    Refuse,
}

/// An operator's command to one agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Command {
    /// Suspend, with a reason; sets the suspend level.
    Suspend(String),
    /// Resume, with a note; clears the suspend level.
    Resume(String),
    /// Kill, with a reason; leaves the level as it is.
    Kill(String),
    /// The agent's policy changed to this id; sets the policy-updated flag.
    PolicyUpdate(String),
}

impl Command {
    fn wire(&self) -> ControlCommand {
        let command = match self {
            Command::Suspend(reason) => WireCommand::Suspend(SuspendCommand {
                reason: reason.clone(),
            }),
            Command::Resume(note) => WireCommand::Resume(ResumeCommand { note: note.clone() }),
            Command::Kill(reason) => WireCommand::Kill(KillCommand {
                reason: reason.clone(),
            }),
            Command::PolicyUpdate(id) => WireCommand::PolicyUpdate(PolicyUpdateCommand {
                new_policy_id: id.clone(),
                policy_bytes: Vec::new(),
            }),
        };
        ControlCommand {
            command: Some(command),
        }
    }
}

/// What an operator command did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AgentCommandReport {
    /// Whether it was queued on the agent's open control stream (`false`:
    /// no stream was open, or it had fallen behind and was ended).
    pub delivered: bool,
    /// The agent's suspend level after the command.
    pub suspended: bool,
}

/// One agent the lifecycle holds, as an operator sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegisteredAgent {
    /// The agent.
    pub agent: AgentKey,
    /// Whether it is registered (holds an issued token).
    pub registered: bool,
    /// Whether an operator suspended it (and has not resumed it).
    pub suspended: bool,
    /// Whether its control stream is open.
    pub control_stream: bool,
}

/// How a control stream was ended by the gateway.
#[derive(Debug)]
pub(crate) enum StreamEnd {
    /// A clean end (the agent deregistered).
    Clean,
    /// `UNAVAILABLE` with this message: the client should reconnect.
    Unavailable(String),
}

/// Why the registry refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RegistryError {
    /// Registered already, and re-registration is refused.
    #[error("agent {0} is already registered")]
    AlreadyRegistered(String),
    /// `max_agents` are held.
    #[error("too many agents ({0}); refused")]
    Full(usize),
}

/// The receiving half of one control stream.
#[derive(Debug)]
pub(crate) struct StreamSide {
    /// Its id, to unregister it with [`AgentRegistry::close_stream`].
    pub(crate) id: u64,
    /// Commands, in order.
    pub(crate) commands: mpsc::Receiver<ControlCommand>,
    /// How the gateway ended it; a dropped sender is a clean end too.
    pub(crate) end: oneshot::Receiver<StreamEnd>,
}

#[derive(Debug)]
struct ControlHandle {
    id: u64,
    commands: mpsc::Sender<ControlCommand>,
    end: oneshot::Sender<StreamEnd>,
}

impl ControlHandle {
    fn end(self, how: StreamEnd) {
        // The stream may be gone already; nothing to tell then.
        let _ = self.end.send(how);
    }
}

#[derive(Debug)]
struct Registration {
    token: String,
}

#[derive(Debug, Default)]
struct Entry {
    registration: Option<Registration>,
    suspended: Option<String>,
    policy_updated: bool,
    stream: Option<ControlHandle>,
}

impl Entry {
    fn is_empty(&self) -> bool {
        self.registration.is_none() && self.suspended.is_none() && self.stream.is_none()
    }
}

#[derive(Debug, Default)]
struct Agents {
    next_stream: u64,
    entries: HashMap<AgentKey, Entry>,
}

impl Agents {
    /// The entry of `agent`, created if there is room.
    fn entry(&mut self, agent: &AgentKey, max: usize) -> Result<&mut Entry, RegistryError> {
        if !self.entries.contains_key(agent) && self.entries.len() >= max {
            return Err(RegistryError::Full(max));
        }
        Ok(self.entries.entry(agent.clone()).or_default())
    }

    fn prune(&mut self, agent: &AgentKey) {
        if self.entries.get(agent).is_some_and(Entry::is_empty) {
            self.entries.remove(agent);
        }
    }
}

/// The lifecycle's agents of one gateway.
#[derive(Debug)]
pub(crate) struct AgentRegistry {
    agents: Mutex<Agents>,
    max_agents: usize,
    control_buffer: usize,
    reregistration: Reregistration,
}

impl AgentRegistry {
    /// An empty registry.
    pub(crate) fn new(
        max_agents: usize,
        control_buffer: usize,
        reregistration: Reregistration,
    ) -> Self {
        AgentRegistry {
            agents: Mutex::new(Agents::default()),
            max_agents: max_agents.max(1),
            control_buffer: control_buffer.max(1),
            reregistration,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Agents> {
        self.agents.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Register `agent` with the fresh `token`, binding it in `tokens`.
    /// Returns whether an earlier registration was replaced.
    pub(crate) fn register(
        &self,
        agent: &AgentKey,
        token: String,
        tokens: &TokenTable,
    ) -> Result<bool, RegistryError> {
        let mut g = self.lock();
        let entry = g.entry(agent, self.max_agents)?;
        let replaced = match entry.registration.take() {
            None => false,
            Some(old) if self.reregistration == Reregistration::Refuse => {
                entry.registration = Some(old);
                return Err(RegistryError::AlreadyRegistered(describe(agent)));
            }
            Some(old) => {
                tokens.remove(&old.token);
                if let Some(stream) = entry.stream.take() {
                    stream.end(StreamEnd::Unavailable(
                        "the agent registered again: this stream's credential was revoked; \
                         reconnect with the new token"
                            .into(),
                    ));
                }
                true
            }
        };
        tokens.insert(token.clone(), agent.clone());
        entry.registration = Some(Registration { token });
        Ok(replaced)
    }

    /// Deregister `agent`, which presented `token`: both it and the
    /// registration's token are revoked and the control stream ends
    /// cleanly. Returns whether the agent was registered.
    pub(crate) fn deregister(&self, agent: &AgentKey, token: &str, tokens: &TokenTable) -> bool {
        let mut g = self.lock();
        tokens.remove(token);
        let Some(entry) = g.entries.get_mut(agent) else {
            return false;
        };
        let registration = entry.registration.take();
        if let Some(r) = &registration {
            tokens.remove(&r.token);
        }
        if let Some(stream) = entry.stream.take() {
            stream.end(StreamEnd::Clean);
        }
        entry.policy_updated = false;
        g.prune(agent);
        registration.is_some()
    }

    /// A heartbeat of `agent`: its suspend level, and whether a policy
    /// update arrived since its last heartbeat (the flag is cleared).
    pub(crate) fn heartbeat(&self, agent: &AgentKey) -> (bool, bool) {
        let mut g = self.lock();
        match g.entries.get_mut(agent) {
            Some(e) => (e.suspended.is_some(), std::mem::take(&mut e.policy_updated)),
            None => (false, false),
        }
    }

    /// Open the control stream of `agent`, ending the previous one.
    pub(crate) fn open_stream(&self, agent: &AgentKey) -> Result<StreamSide, RegistryError> {
        let mut g = self.lock();
        g.next_stream += 1;
        let id = g.next_stream;
        let entry = g.entry(agent, self.max_agents)?;
        if let Some(old) = entry.stream.take() {
            old.end(StreamEnd::Unavailable(
                "replaced by a newer ControlStream of this agent".into(),
            ));
        }
        let (tx, commands) = mpsc::channel(self.control_buffer);
        let (end_tx, end) = oneshot::channel();
        if let Some(reason) = &entry.suspended {
            // The level, so a stream opened while suspended knows at once;
            // the channel is fresh and has room.
            let _ = tx.try_send(Command::Suspend(reason.clone()).wire());
        }
        entry.stream = Some(ControlHandle {
            id,
            commands: tx,
            end: end_tx,
        });
        Ok(StreamSide { id, commands, end })
    }

    /// Forget control stream `id` of `agent` (it ended), unless a newer one
    /// replaced it.
    pub(crate) fn close_stream(&self, agent: &AgentKey, id: u64) {
        let mut g = self.lock();
        if let Some(entry) = g.entries.get_mut(agent) {
            if entry.stream.as_ref().is_some_and(|s| s.id == id) {
                entry.stream = None;
            }
        }
        g.prune(agent);
    }

    /// Apply an operator's `command` to `agent` and send it on the agent's
    /// open control stream, if any.
    pub(crate) fn command(
        &self,
        agent: &AgentKey,
        command: Command,
    ) -> Result<AgentCommandReport, RegistryError> {
        let mut g = self.lock();
        let entry = match &command {
            Command::Suspend(_) => Some(g.entry(agent, self.max_agents)?),
            Command::Resume(_) | Command::Kill(_) | Command::PolicyUpdate(_) => {
                g.entries.get_mut(agent)
            }
        };
        let Some(entry) = entry else {
            return Ok(AgentCommandReport {
                delivered: false,
                suspended: false,
            });
        };
        match &command {
            Command::Suspend(reason) => entry.suspended = Some(reason.clone()),
            Command::Resume(_) => entry.suspended = None,
            Command::Kill(_) => {}
            Command::PolicyUpdate(_) => entry.policy_updated = true,
        }
        let mut delivered = false;
        if let Some(stream) = entry.stream.take() {
            match stream.commands.try_send(command.wire()) {
                Ok(()) => {
                    delivered = true;
                    entry.stream = Some(stream);
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::debug!(agent = %describe(agent), "control stream fell behind; ended");
                    stream.end(StreamEnd::Unavailable(format!(
                        "control stream fell {} commands behind; reconnect (heartbeat reports \
                         the suspend level)",
                        self.control_buffer
                    )));
                }
                // The stream ended and its guard has not unregistered it yet.
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        let suspended = entry.suspended.is_some();
        g.prune(agent);
        Ok(AgentCommandReport {
            delivered,
            suspended,
        })
    }

    /// Flag a policy update for every held agent `agent_id` names (every
    /// agent when empty) in `team` (every team when `None`); returns how
    /// many were flagged.
    pub(crate) fn flag_policy_update(&self, agent_id: &str, team: Option<&str>) -> usize {
        let mut g = self.lock();
        let mut n = 0;
        for (key, entry) in g.entries.iter_mut() {
            let agent_matches = agent_id.is_empty() || key.agent_id == agent_id;
            let team_matches = team.is_none_or(|t| key.team_id == t);
            if agent_matches && team_matches {
                entry.policy_updated = true;
                n += 1;
            }
        }
        n
    }

    /// Agents registered now.
    pub(crate) fn registered(&self) -> usize {
        self.lock()
            .entries
            .values()
            .filter(|e| e.registration.is_some())
            .count()
    }

    /// Control streams open now.
    pub(crate) fn streams(&self) -> usize {
        self.lock()
            .entries
            .values()
            .filter(|e| e.stream.is_some())
            .count()
    }

    /// Every held agent, sorted by org, team and agent id.
    pub(crate) fn list(&self) -> Vec<RegisteredAgent> {
        let mut v: Vec<RegisteredAgent> = self
            .lock()
            .entries
            .iter()
            .map(|(k, e)| RegisteredAgent {
                agent: k.clone(),
                registered: e.registration.is_some(),
                suspended: e.suspended.is_some(),
                control_stream: e.stream.is_some(),
            })
            .collect();
        v.sort_by(|a, b| a.agent.cmp(&b.agent));
        v
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

    fn kind(c: &ControlCommand) -> &'static str {
        match c.command {
            Some(WireCommand::Suspend(_)) => "suspend",
            Some(WireCommand::Resume(_)) => "resume",
            Some(WireCommand::Kill(_)) => "kill",
            Some(WireCommand::PolicyUpdate(_)) => "policy",
            None => "none",
        }
    }

    #[test]
    fn reregistration_replaces_or_refuses() {
        let tokens = TokenTable::required([]);
        let reg = AgentRegistry::new(8, 4, Reregistration::Replace);
        assert_eq!(reg.register(&agent("a"), "t1".into(), &tokens), Ok(false));
        let mut side = reg.open_stream(&agent("a")).unwrap();
        assert_eq!(reg.register(&agent("a"), "t2".into(), &tokens), Ok(true));
        assert!(tokens.authenticate(Some("t1")).is_err());
        assert_eq!(tokens.authenticate(Some("t2")), Ok(Some(agent("a"))));
        assert!(matches!(side.end.try_recv(), Ok(StreamEnd::Unavailable(_))));

        let refuse = AgentRegistry::new(8, 4, Reregistration::Refuse);
        refuse.register(&agent("a"), "t3".into(), &tokens).unwrap();
        assert!(matches!(
            refuse.register(&agent("a"), "t4".into(), &tokens),
            Err(RegistryError::AlreadyRegistered(_))
        ));
        assert!(tokens.authenticate(Some("t4")).is_err());
        assert_eq!(tokens.authenticate(Some("t3")), Ok(Some(agent("a"))));
    }

    #[test]
    fn bounded_and_pruned() {
        let tokens = TokenTable::required([]);
        let reg = AgentRegistry::new(1, 4, Reregistration::Replace);
        reg.register(&agent("a"), "t1".into(), &tokens).unwrap();
        assert_eq!(
            reg.register(&agent("b"), "t2".into(), &tokens),
            Err(RegistryError::Full(1))
        );
        assert!(reg.deregister(&agent("a"), "t1", &tokens));
        assert!(tokens.authenticate(Some("t1")).is_err());
        assert!(reg.list().is_empty());
        reg.register(&agent("b"), "t2".into(), &tokens).unwrap();
        assert_eq!(reg.registered(), 1);
    }

    #[test]
    fn commands_reach_the_one_stream_in_order_and_set_the_level() {
        let reg = AgentRegistry::new(8, 2, Reregistration::Replace);
        let a = agent("a");
        let mut first = reg.open_stream(&a).unwrap();
        let mut second = reg.open_stream(&a).unwrap();
        assert!(matches!(
            first.end.try_recv(),
            Ok(StreamEnd::Unavailable(_))
        ));
        reg.close_stream(&a, first.id);
        assert_eq!(reg.streams(), 1);

        let r = reg.command(&a, Command::Suspend("why".into())).unwrap();
        assert!(r.delivered && r.suspended);
        assert_eq!(reg.heartbeat(&a), (true, false));
        reg.command(&a, Command::PolicyUpdate("p2".into())).unwrap();
        assert_eq!(reg.heartbeat(&a), (true, true));
        assert_eq!(reg.heartbeat(&a), (true, false));
        assert_eq!(kind(&second.commands.try_recv().unwrap()), "suspend");
        assert_eq!(kind(&second.commands.try_recv().unwrap()), "policy");
        let r = reg.command(&a, Command::Resume("ok".into())).unwrap();
        assert!(r.delivered && !r.suspended);
        // Buffer of 2: the third unread command ends the stream.
        reg.command(&a, Command::Kill("x".into())).unwrap();
        let r = reg.command(&a, Command::Kill("y".into())).unwrap();
        assert!(!r.delivered);
        assert!(matches!(
            second.end.try_recv(),
            Ok(StreamEnd::Unavailable(_))
        ));
        assert_eq!(reg.streams(), 0);
        // Nothing held: forgotten.
        assert!(reg.list().is_empty());
    }

    #[test]
    fn a_suspension_outlives_deregistration_and_greets_a_new_stream() {
        let tokens = TokenTable::required([]);
        let reg = AgentRegistry::new(8, 2, Reregistration::Replace);
        let a = agent("a");
        reg.register(&a, "t1".into(), &tokens).unwrap();
        let r = reg.command(&a, Command::Suspend("hold".into())).unwrap();
        assert!(!r.delivered && r.suspended);
        reg.deregister(&a, "t1", &tokens);
        let mut side = reg.open_stream(&a).unwrap();
        assert_eq!(kind(&side.commands.try_recv().unwrap()), "suspend");
        assert_eq!(reg.flag_policy_update("", Some("t")), 1);
        assert_eq!(reg.flag_policy_update("zz", None), 0);
        assert_eq!(
            reg.list(),
            vec![RegisteredAgent {
                agent: a.clone(),
                registered: false,
                suspended: true,
                control_stream: true,
            }]
        );
    }
}
