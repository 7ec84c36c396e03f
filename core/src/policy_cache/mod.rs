//! Placeholder: replaced by the policy_cache machine.
