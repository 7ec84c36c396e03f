//! The values a [`Registration`](super::Registration) exchanges with its
//! driver: attempt and token ids, call outcomes, actions, timer reasons,
//! status and counters.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::time::Timestamp;

/// One challenge-and-register attempt. Ids come from a counter starting at
/// 1 and are never reused, so a late answer to an old attempt is recognised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AttemptId(pub(crate) u64);

impl AttemptId {
    /// The attempt numbered `n` (for tests and replays: a number the
    /// machine did not issue is answered as stale).
    pub const fn new(n: u64) -> Self {
        AttemptId(n)
    }

    /// The id as a number (for logs and spans).
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// One issued credential token: the first is 1, each successful
/// registration issues the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Generation(pub(crate) u64);

impl Generation {
    /// The generation numbered `n` (for tests and replays: a number that is
    /// not the current generation is answered as stale).
    pub const fn new(n: u64) -> Self {
        Generation(n)
    }

    /// The generation as a number (for logs and spans).
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// A gRPC status code other than `OK`, as the machine sees a failed call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallCode {
    /// `CANCELLED` (1).
    Cancelled,
    /// `UNKNOWN` (2).
    Unknown,
    /// `INVALID_ARGUMENT` (3).
    InvalidArgument,
    /// `DEADLINE_EXCEEDED` (4).
    DeadlineExceeded,
    /// `NOT_FOUND` (5).
    NotFound,
    /// `ALREADY_EXISTS` (6).
    AlreadyExists,
    /// `PERMISSION_DENIED` (7).
    PermissionDenied,
    /// `RESOURCE_EXHAUSTED` (8).
    ResourceExhausted,
    /// `FAILED_PRECONDITION` (9).
    FailedPrecondition,
    /// `ABORTED` (10).
    Aborted,
    /// `OUT_OF_RANGE` (11).
    OutOfRange,
    /// `UNIMPLEMENTED` (12).
    Unimplemented,
    /// `INTERNAL` (13).
    Internal,
    /// `UNAVAILABLE` (14); transport errors arrive as this code.
    Unavailable,
    /// `DATA_LOSS` (15).
    DataLoss,
    /// `UNAUTHENTICATED` (16).
    Unauthenticated,
    /// Any other number (`OK` included: a failure that names it is still a
    /// failure, of no known kind).
    Other(i32),
}

impl CallCode {
    /// The code for a gRPC status number.
    pub const fn from_grpc(code: i32) -> CallCode {
        match code {
            1 => CallCode::Cancelled,
            2 => CallCode::Unknown,
            3 => CallCode::InvalidArgument,
            4 => CallCode::DeadlineExceeded,
            5 => CallCode::NotFound,
            6 => CallCode::AlreadyExists,
            7 => CallCode::PermissionDenied,
            8 => CallCode::ResourceExhausted,
            9 => CallCode::FailedPrecondition,
            10 => CallCode::Aborted,
            11 => CallCode::OutOfRange,
            12 => CallCode::Unimplemented,
            13 => CallCode::Internal,
            14 => CallCode::Unavailable,
            15 => CallCode::DataLoss,
            16 => CallCode::Unauthenticated,
            other => CallCode::Other(other),
        }
    }

    /// The gRPC status number (`from_grpc(c.to_grpc()) == c` for every
    /// code `from_grpc` returns).
    pub const fn to_grpc(self) -> i32 {
        match self {
            CallCode::Cancelled => 1,
            CallCode::Unknown => 2,
            CallCode::InvalidArgument => 3,
            CallCode::DeadlineExceeded => 4,
            CallCode::NotFound => 5,
            CallCode::AlreadyExists => 6,
            CallCode::PermissionDenied => 7,
            CallCode::ResourceExhausted => 8,
            CallCode::FailedPrecondition => 9,
            CallCode::Aborted => 10,
            CallCode::OutOfRange => 11,
            CallCode::Unimplemented => 12,
            CallCode::Internal => 13,
            CallCode::Unavailable => 14,
            CallCode::DataLoss => 15,
            CallCode::Unauthenticated => 16,
            CallCode::Other(n) => n,
        }
    }

    /// Whether a challenge or register failing with this code is a
    /// definitive refusal (retried only after `refused_retry`) rather than
    /// a transient failure (retried through the backoff).
    pub const fn is_refusal(self) -> bool {
        matches!(
            self,
            CallCode::AlreadyExists
                | CallCode::PermissionDenied
                | CallCode::InvalidArgument
                | CallCode::FailedPrecondition
                | CallCode::Unauthenticated
                | CallCode::Unimplemented
                | CallCode::NotFound
                | CallCode::OutOfRange
        )
    }
}

impl fmt::Display for CallCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            CallCode::Cancelled => "cancelled",
            CallCode::Unknown => "unknown",
            CallCode::InvalidArgument => "invalid argument",
            CallCode::DeadlineExceeded => "deadline exceeded",
            CallCode::NotFound => "not found",
            CallCode::AlreadyExists => "already exists",
            CallCode::PermissionDenied => "permission denied",
            CallCode::ResourceExhausted => "resource exhausted",
            CallCode::FailedPrecondition => "failed precondition",
            CallCode::Aborted => "aborted",
            CallCode::OutOfRange => "out of range",
            CallCode::Unimplemented => "unimplemented",
            CallCode::Internal => "internal",
            CallCode::Unavailable => "unavailable",
            CallCode::DataLoss => "data loss",
            CallCode::Unauthenticated => "unauthenticated",
            CallCode::Other(n) => return write!(f, "code {n}"),
        };
        f.write_str(s)
    }
}

/// A failed call: its status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CallFailure {
    /// The status code.
    pub code: CallCode,
}

impl CallFailure {
    /// A failure with `code`.
    pub const fn new(code: CallCode) -> Self {
        CallFailure { code }
    }
}

impl fmt::Display for CallFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call failed: {}", self.code)
    }
}

/// A successful `Register` answer, the parts the machine needs.
#[derive(Clone, PartialEq, Eq)]
pub struct Granted {
    /// The credential token.
    pub token: String,
    /// The heartbeat interval the gateway asks for, in seconds (`<= 0`:
    /// use the configured default).
    pub heartbeat_interval_sec: i64,
}

impl fmt::Debug for Granted {
    // The token is a credential: never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Granted")
            .field("token", &"<redacted>")
            .field("heartbeat_interval_sec", &self.heartbeat_interval_sec)
            .finish()
    }
}

/// A successful `Heartbeat` answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeartbeatAnswer {
    /// The agent's policy changed.
    pub policy_updated: bool,
    /// The gateway holds the agent suspended (a level, not an edge).
    pub should_suspend: bool,
}

/// One message of the control stream, as the driver decoded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlCommand {
    /// `suspend`.
    Suspend,
    /// `resume`.
    Resume,
    /// `policy_update`.
    PolicyUpdate,
    /// `kill`.
    Kill,
    /// A message with no command this build knows.
    Unknown,
}

/// What the agent is told to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentCommandKind {
    /// Suspend every op.
    Suspend,
    /// Resume after a suspend.
    Resume,
    /// Stop for good.
    Kill,
    /// The policy changed: cached decisions are stale.
    PolicyUpdated,
}

/// A command for the agent, numbered in emission order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgentCommand {
    /// 1 for the first command, then strictly increasing by 1.
    pub sequence: u64,
    /// What to do.
    pub kind: AgentCommandKind,
}

/// What the registration machine asks its driver to do.
#[derive(Clone, PartialEq, Eq)]
pub enum RegistrationAction {
    /// Call `RequestChallenge`; answer with
    /// [`on_challenge`](super::Registration::on_challenge).
    RequestChallenge {
        /// The attempt the answer must name.
        attempt: AttemptId,
    },
    /// Sign `nonce` and call `Register`; answer with
    /// [`on_registered`](super::Registration::on_registered).
    Register {
        /// The attempt the answer must name.
        attempt: AttemptId,
        /// The nonce to sign and send.
        nonce: Vec<u8>,
    },
    /// A new credential token: present it on every call from now on.
    TokenIssued {
        /// Its generation.
        generation: Generation,
        /// The token.
        token: String,
    },
    /// The gateway no longer knows this token: stop presenting it, and end
    /// its generation's heartbeat and control stream (their later reports
    /// are stale). A new registration follows.
    TokenLost {
        /// Its generation.
        generation: Generation,
    },
    /// Call `Heartbeat` with this generation's token; answer with
    /// [`on_heartbeat_answer`](super::Registration::on_heartbeat_answer).
    SendHeartbeat {
        /// The token's generation.
        generation: Generation,
    },
    /// Open `ControlStream` with this generation's token; report with
    /// `on_control_opened`, `on_control_command`, `on_control_closed`.
    OpenControl {
        /// The token's generation.
        generation: Generation,
    },
    /// Call `Deregister` with this generation's token; answer with
    /// [`on_deregistered`](super::Registration::on_deregistered).
    Deregister {
        /// The token's generation.
        generation: Generation,
    },
    /// Tell the agent.
    Agent(AgentCommand),
    /// Use a new key pair (and agent id) before the next `RequestChallenge`
    /// (only with `fresh_key_per_registration`).
    RotateKey,
    /// The machine is done: nothing more will be requested.
    Stopped,
}

impl fmt::Debug for RegistrationAction {
    // Tokens are credentials: never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistrationAction::RequestChallenge { attempt } => {
                write!(f, "RequestChallenge({})", attempt.0)
            }
            RegistrationAction::Register { attempt, nonce } => {
                write!(f, "Register({}, {} nonce bytes)", attempt.0, nonce.len())
            }
            RegistrationAction::TokenIssued { generation, .. } => {
                write!(f, "TokenIssued({})", generation.0)
            }
            RegistrationAction::TokenLost { generation } => {
                write!(f, "TokenLost({})", generation.0)
            }
            RegistrationAction::SendHeartbeat { generation } => {
                write!(f, "SendHeartbeat({})", generation.0)
            }
            RegistrationAction::OpenControl { generation } => {
                write!(f, "OpenControl({})", generation.0)
            }
            RegistrationAction::Deregister { generation } => {
                write!(f, "Deregister({})", generation.0)
            }
            RegistrationAction::Agent(c) => write!(f, "Agent({:?} #{})", c.kind, c.sequence),
            RegistrationAction::RotateKey => f.write_str("RotateKey"),
            RegistrationAction::Stopped => f.write_str("Stopped"),
        }
    }
}

/// Why the registration machine wants to be woken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistrationTimer {
    /// The next challenge-and-register attempt is due.
    Retry,
    /// The next heartbeat is due.
    Heartbeat,
    /// The control stream is due to be reopened.
    ReopenControl,
    /// Shutdown stops waiting for the deregistration.
    ShutdownBound,
}

/// Where the registration stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistrationState {
    /// Not started.
    Idle,
    /// Trying to register (a call in flight or a retry pending).
    Registering {
        /// Attempts made since the last successful registration (or the
        /// start); 0 while waiting before the first.
        attempt_no: u32,
        /// Why the last attempt failed: the latest definitive refusal
        /// since the last success if there was one, else the latest
        /// failure (or the code that lost the token).
        last_failure: Option<CallFailure>,
    },
    /// Holding a token.
    Registered {
        /// The token's generation.
        generation: Generation,
    },
    /// The gateway definitively refused; the next attempt is at `next_try`.
    Refused {
        /// The refusal.
        failure: CallFailure,
        /// When the next attempt is made.
        next_try: Timestamp,
    },
    /// Shutting down: deregistering, bounded by `shutdown_bound`.
    Stopping,
    /// Done.
    Stopped,
}

/// What [`Registration::status`](super::Registration::status) reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegistrationStatus {
    /// The state.
    pub state: RegistrationState,
    /// When the machine entered this kind of state.
    pub since: Timestamp,
    /// The gateway's latest suspend level (heartbeat answer or command).
    pub suspended: bool,
    /// Whether the control stream is open (reported opened, not closed).
    pub control_stream_open: bool,
}

/// Counters of a [`Registration`](super::Registration). They saturate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegistrationStats {
    /// `RequestChallenge` actions emitted.
    pub attempts: u64,
    /// Successful registrations (tokens issued).
    pub registrations: u64,
    /// Challenge or register failures with a transient code.
    pub transient_failures: u64,
    /// Challenge or register definitive refusals.
    pub refusals: u64,
    /// Tokens lost (once per generation).
    pub tokens_lost: u64,
    /// `RotateKey` actions emitted.
    pub key_rotations: u64,
    /// `SendHeartbeat` actions emitted.
    pub heartbeats_sent: u64,
    /// Heartbeats answered with a failure that did not lose the token.
    pub heartbeat_failures: u64,
    /// `OpenControl` actions emitted.
    pub control_opens: u64,
    /// `Agent` actions emitted.
    pub agent_commands: u64,
    /// Control messages with no known command.
    pub unknown_commands: u64,
    /// Undrained agent commands folded into others of the same effect
    /// because the driver left
    /// [`MAX_UNDRAINED_COMMANDS`](super::MAX_UNDRAINED_COMMANDS) undrained
    /// (none is ever dropped).
    pub commands_coalesced: u64,
    /// Answers and reports for an attempt or generation that was not the
    /// current one (or that came when none was expected): ignored.
    pub stale_answers: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn grpc_numbers_round_trip() {
        for n in -3..40 {
            let c = CallCode::from_grpc(n);
            assert_eq!(c.to_grpc(), n);
            assert_eq!(CallCode::from_grpc(c.to_grpc()), c);
            assert_eq!(matches!(c, CallCode::Other(_)), !(1..=16).contains(&n));
        }
    }

    #[test]
    fn refusals_are_the_definitive_codes() {
        let refusals: Vec<i32> = (0..20)
            .filter(|n| CallCode::from_grpc(*n).is_refusal())
            .collect();
        assert_eq!(refusals, [3, 5, 6, 7, 9, 11, 12, 16]);
    }

    #[test]
    fn display_is_lower_case_words() {
        assert_eq!(CallCode::AlreadyExists.to_string(), "already exists");
        assert_eq!(CallCode::Unauthenticated.to_string(), "unauthenticated");
        assert_eq!(CallCode::Other(42).to_string(), "code 42");
        assert_eq!(
            CallFailure::new(CallCode::Unavailable).to_string(),
            "call failed: unavailable"
        );
    }

    #[test]
    fn debug_never_prints_a_token() {
        let g = Granted {
            token: "secret".into(),
            heartbeat_interval_sec: 1,
        };
        assert!(!alloc::format!("{g:?}").contains("secret"));
        let a = RegistrationAction::TokenIssued {
            generation: Generation(1),
            token: "secret".into(),
        };
        assert!(!alloc::format!("{a:?}").contains("secret"));
    }
}
