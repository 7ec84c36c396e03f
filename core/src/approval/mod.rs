//! Placeholder: replaced by the approval machine.
