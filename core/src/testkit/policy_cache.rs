//! Placeholder: replaced by the policy_cache input sequences and invariant checker.
