//! Counters and gauges of a [`TickSchedule`](super::TickSchedule).

/// A snapshot of the schedule's gauges and counters. Counters saturate,
/// never overflow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TickStats {
    /// Jobs scheduled (removed jobs excluded).
    pub jobs: usize,
    /// Removed jobs kept only because their tick is still running.
    pub detached: usize,
    /// Ticks running now.
    pub running: usize,
    /// Ticks started.
    pub runs: u64,
    /// Ticks that reported success.
    pub successes: u64,
    /// Ticks that reported failure or were given up after `run_timeout`.
    pub failures: u64,
    /// Ticks given up after `run_timeout`.
    pub timeouts: u64,
    /// Results refused: unknown, duplicate or of an old version.
    pub stale: u64,
    /// Grid slots skipped after a late wake-up ([`MissedTicks::Skip`](super::MissedTicks)).
    pub skipped: u64,
    /// `tick_now` calls folded into a run already queued behind a running
    /// tick.
    pub coalesced: u64,
}

/// The counters the schedule keeps (the gauges are computed on demand).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    pub(crate) runs: u64,
    pub(crate) successes: u64,
    pub(crate) failures: u64,
    pub(crate) timeouts: u64,
    pub(crate) stale: u64,
    pub(crate) skipped: u64,
    pub(crate) coalesced: u64,
}

/// `*c += n`, saturating.
pub(crate) fn add(c: &mut u64, n: u64) {
    *c = c.saturating_add(n);
}
