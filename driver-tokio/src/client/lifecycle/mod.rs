//! The agent lifecycle of `assembly.agent.v1.AgentLifecycleService` as the
//! client's credential provider: the agent proves its did:key identity
//! (`RequestChallenge`, then `Register` with the signature over the nonce),
//! uses the token it is issued on every call and stream, heartbeats at the
//! interval the gateway returns, registers again whenever the gateway no
//! longer knows the token (a restarted gateway forgets them), deregisters
//! at shutdown, and applies the lifecycle's control stream and heartbeat
//! answers as a kill switch (suspend pauses every op of the agent, resume
//! resumes, kill terminates every op, a policy update drops every cached
//! decision).
//!
//! Guarantees: the decisions are the core's `Registration` machine's (see
//! its invariants); a registration the gateway refuses (for example
//! `ALREADY_EXISTS`) is reported as
//! [`RegistrationPhase::Refused`] with its code in
//! [`ClientStatus::registration`](crate::client::ClientStatus::registration),
//! never a silent hang, and the checks meanwhile end by the outage policy
//! within its bound.

mod key;
mod report;
mod settings;
pub(crate) mod task;
pub(crate) mod token;

pub use key::{AgentSigningKey, KeyError};
pub use report::{RegistrationPhase, RegistrationReport};
pub use settings::RegistrationSettings;
