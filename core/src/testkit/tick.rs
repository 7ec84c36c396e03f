//! Placeholder: replaced by the tick input sequences and invariant checker.
