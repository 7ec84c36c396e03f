//! Placeholder: replaced by the op_control machine.
