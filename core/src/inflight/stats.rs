//! Counters and gauges of an [`InFlight`](super::InFlight).

/// A snapshot of the in-flight machine's gauges and counters. Counters
/// saturate, never overflow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InFlightStats {
    /// Drives outstanding now (a global drive included).
    pub in_flight: usize,
    /// Sessions waiting for a slot.
    pub pending: usize,
    /// Sessions waiting for a retry.
    pub retrying: usize,
    /// Drives issued.
    pub drives: u64,
    /// Pokes folded into a drive already outstanding, wanted or scheduled.
    pub coalesced: u64,
    /// Pokes (or re-drives) that did not fit the pending set and folded into
    /// the global-poke flag.
    pub overflows: u64,
    /// Drives recovered because their lease expired.
    pub lease_recoveries: u64,
    /// Failed drives scheduled for retry.
    pub retries: u64,
    /// Results, completions and renewals refused (stale, duplicate, wrong).
    pub stale: u64,
    /// Recovery polls fired while idle.
    pub recovery_polls: u64,
}

/// The counters the machine keeps (the gauges are computed on demand).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    pub(crate) drives: u64,
    pub(crate) coalesced: u64,
    pub(crate) overflows: u64,
    pub(crate) lease_recoveries: u64,
    pub(crate) retries: u64,
    pub(crate) stale: u64,
    pub(crate) recovery_polls: u64,
}

/// `*c += 1`, saturating.
pub(crate) fn bump(c: &mut u64) {
    *c = c.saturating_add(1);
}
