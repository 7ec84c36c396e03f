//! The registration as [`Tether::status`](crate::client::Tether::status)
//! reports it.

use std::time::SystemTime;

/// Where the agent's registration stands.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistrationPhase {
    /// Not started yet.
    Starting,
    /// Asking for a challenge or registering; `attempts` in a row so far,
    /// and why the last one failed, if one did (a transient failure: the
    /// client keeps trying through its backoff).
    Registering {
        /// Consecutive attempts.
        attempts: u32,
        /// The last attempt's failure.
        last_error: Option<String>,
    },
    /// Registered: the token is in use.
    Registered,
    /// The gateway refused the registration itself (for example
    /// `ALREADY_EXISTS` when a restarted Agent Assembly gateway keeps the
    /// agent but forgot its token). The client tries again now and then,
    /// in case an operator lifts the refusal, and checks end by the outage
    /// policy meanwhile.
    Refused {
        /// The gRPC code of the refusal.
        code: tonic::Code,
        /// The gateway's message.
        message: String,
    },
    /// Deregistering at shutdown.
    Stopping,
    /// Stopped.
    Stopped,
}

impl std::fmt::Display for RegistrationPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistrationPhase::Starting => write!(f, "starting"),
            RegistrationPhase::Registering {
                attempts,
                last_error: None,
            } => write!(f, "registering (attempt {attempts})"),
            RegistrationPhase::Registering {
                attempts,
                last_error: Some(e),
            } => write!(f, "registering (attempt {attempts}, last: {e})"),
            RegistrationPhase::Registered => write!(f, "registered"),
            RegistrationPhase::Refused { code, message } => {
                write!(f, "registration refused: {}", code_words(*code))?;
                if !message.is_empty() {
                    write!(f, " ({message})")?;
                }
                Ok(())
            }
            RegistrationPhase::Stopping => write!(f, "deregistering"),
            RegistrationPhase::Stopped => write!(f, "stopped"),
        }
    }
}

/// The agent's registration at the gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegistrationReport {
    /// The agent id the key stands for (`did:key:z…`).
    pub agent_id: String,
    /// Where the registration stands.
    pub phase: RegistrationPhase,
    /// When it got there (wall clock).
    pub since: Option<SystemTime>,
    /// Successful registrations so far (more than one: the gateway forgot
    /// a token and the agent registered again).
    pub registrations: u64,
    /// Fresh keys taken (only with
    /// [`RegistrationSettings::with_fresh_key_per_registration`](super::RegistrationSettings::with_fresh_key_per_registration)):
    /// each gave the agent a new id.
    pub key_rotations: u64,
    /// The gateway holds the agent suspended (its control stream or its
    /// heartbeat said so; every op of the agent is paused meanwhile).
    pub suspended: bool,
    /// The lifecycle's control stream is open.
    pub control_stream_open: bool,
}

/// A gRPC code in a few lower-case words ("already exists").
pub(crate) fn code_words(code: tonic::Code) -> String {
    tether_core::registration::CallCode::from_grpc(code as i32).to_string()
}
