//! Placeholder: replaced by the inflight input sequences and invariant checker.
