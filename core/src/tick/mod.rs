//! Placeholder: replaced by the tick machine.
