//! Placeholder: replaced by the inflight machine.
