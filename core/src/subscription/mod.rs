//! Placeholder: replaced by the subscription machine.
