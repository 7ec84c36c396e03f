//! Shared proof tooling: input-sequence types and invariant checkers used by
//! both the property tests (`core/tests/prop_*.rs`) and the fuzz targets
//! (`fuzz/fuzz_targets/*.rs`), so an invariant is written once and checked
//! by both. Enabled by the `testkit` feature; never needed at run time.
//!
//! Every checker returns `Err(Violation)` naming the invariant that broke.

use alloc::string::String;
use core::fmt;

pub mod approval;
pub mod backoff;
pub mod check_slots;
pub mod contract;
pub mod inflight;
pub mod op_control;
pub mod policy_cache;
pub mod registration;
pub mod subscription;
pub mod tick;

/// How a generated input names a token of the machine under test (a drive
/// token, a run token): one that is outstanding, one that no longer is, or
/// any number at all.
#[derive(Clone, Copy, Debug, arbitrary::Arbitrary)]
pub enum Tok {
    /// The n-th outstanding token (modulo their count); a made-up token if
    /// none is outstanding.
    Live(u8),
    /// The n-th token that is no longer outstanding (stale).
    Old(u8),
    /// Any number at all.
    MadeUp(u64),
}

/// A broken invariant: its name (as listed in ARCHITECTURE.md) and what was
/// observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The invariant's name, e.g. `BACKOFF_DELAY_BOUNDED`.
    pub invariant: &'static str,
    /// What was observed.
    pub detail: String,
}

impl Violation {
    /// A violation of `invariant` with `detail`.
    pub fn new(invariant: &'static str, detail: impl Into<String>) -> Self {
        Violation {
            invariant,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invariant {} violated: {}", self.invariant, self.detail)
    }
}

/// Return `Err(Violation)` for `invariant` unless `cond` holds.
#[macro_export]
macro_rules! ensure_invariant {
    ($cond:expr, $inv:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::testkit::Violation::new($inv, alloc::format!($($fmt)+)));
        }
    };
}
