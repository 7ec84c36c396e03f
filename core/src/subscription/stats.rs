//! Counters a subscription keeps for metrics, logs and tests.

/// What a [`Subscription`](super::Subscription) has seen since it was built.
///
/// Every counter saturates at `u64::MAX`; none ever wraps or panics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SubscriptionStats {
    /// Events applied (one `Apply` each).
    pub applied: u64,
    /// `Ack` actions emitted. Acks are cumulative, one for the newest
    /// applied event of a run (see `SubscriptionConfig::ack_every`), so this
    /// is at most `applied` and, in a burst, far fewer.
    pub acks: u64,
    /// Events dropped as duplicates (`seq <= last_seq_seen` mid-stream).
    pub duplicates: u64,
    /// Streams closed because an event skipped ahead mid-stream.
    pub gaps: u64,
    /// Gateway restarts detected (first event of a stream at or below
    /// `last_seq_seen`, or a changed lifetime epoch), each answered with
    /// `InvalidateAll`.
    pub restarts: u64,
    /// Gaps the gateway could no longer replay (first event of a stream past
    /// `last_seq_seen + 1`), each answered with `InvalidateAll`.
    pub unreplayable_gaps: u64,
    /// Events dropped because no stream was open or their `seq` was 0.
    pub ignored: u64,
    /// Streams closed because the driver let the action queue fill up.
    pub backlog_closes: u64,
    /// Streams moved to a fresh connection because their peer was draining
    /// (`on_peer_draining`); each is followed by a resubscribe from
    /// `last_seq_seen`, counted in `reconnects` too.
    pub drain_swaps: u64,
    /// `Connect` actions handed to the driver after the first one.
    pub reconnects: u64,
    /// The sequence number of the last applied event (`last_seq_seen`).
    pub last_seq: u64,
}
