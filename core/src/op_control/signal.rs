//! Signals as they arrive on the control stream, and what applying one did.

use super::op_id::InvalidId;

/// An `OpControlSignal` as received: the wire enum plus any value this
/// version does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Signal {
    /// `OP_CONTROL_SIGNAL_UNSPECIFIED` (0): ignored.
    Unspecified,
    /// `OP_CONTROL_SIGNAL_PAUSE` (1).
    Pause,
    /// `OP_CONTROL_SIGNAL_RESUME` (2).
    Resume,
    /// `OP_CONTROL_SIGNAL_TERMINATE` (3).
    Terminate,
    /// A value outside the enum: ignored. Whatever value it carries, it is
    /// never interpreted as one of the known signals.
    Unknown(i32),
}

impl Signal {
    /// The signal for a wire value (`0..=3`, anything else is `Unknown`).
    pub const fn from_wire(value: i32) -> Signal {
        match value {
            0 => Signal::Unspecified,
            1 => Signal::Pause,
            2 => Signal::Resume,
            3 => Signal::Terminate,
            other => Signal::Unknown(other),
        }
    }

    /// The wire value of this signal.
    pub const fn to_wire(self) -> i32 {
        match self {
            Signal::Unspecified => 0,
            Signal::Pause => 1,
            Signal::Resume => 2,
            Signal::Terminate => 3,
            Signal::Unknown(v) => v,
        }
    }

    /// The command this signal carries, if it carries one.
    pub(crate) const fn command(self) -> Option<Command> {
        match self {
            Signal::Pause => Some(Command::Pause),
            Signal::Resume => Some(Command::Resume),
            Signal::Terminate => Some(Command::Terminate),
            Signal::Unspecified | Signal::Unknown(_) => None,
        }
    }
}

/// A signal the machine acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Command {
    Pause,
    Resume,
    Terminate,
}

/// What [`OpControl::on_signal`](super::OpControl::on_signal) did with a
/// signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalOutcome {
    /// The state of the covered ops changed.
    Applied,
    /// A valid signal that changed nothing: a pause of a paused op, a resume
    /// of a running one, or a pause or resume of a terminated one
    /// (terminate is absorbing).
    Unchanged,
    /// An exact repeat of a recent `(sequence, op_id, signal)`: dropped and
    /// counted. A repeated pause or terminate that would make its ops more
    /// restricted is applied instead (see the module docs).
    Duplicate,
    /// `UNSPECIFIED` or an unknown value: ignored and counted.
    Ignored,
    /// The op id cannot name anything: refused and counted.
    Refused(InvalidId),
    /// The op was reported finished and has not been checked since: dropped
    /// and counted (it can never run again).
    LateForFinishedOp,
    /// The table had no room: the machine is saturated, and its fail-closed
    /// mode covers this signal (see [`Saturation`](super::Saturation)).
    Saturated,
}
