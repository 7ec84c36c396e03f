//! Placeholder: replaced by the subscription input sequences and invariant checker.
