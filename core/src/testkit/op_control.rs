//! Placeholder: replaced by the op_control input sequences and invariant checker.
