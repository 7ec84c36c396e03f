//! Placeholder: replaced by the approval input sequences and invariant checker.
