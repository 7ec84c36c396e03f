//! The names of every metric tether records through the `metrics` facade.
//! Install any `metrics` recorder (for example
//! `metrics-exporter-prometheus`) to collect them.

/// Counter: invalidation events applied. Label `stream`.
pub const EVENTS_APPLIED: &str = "tether_events_applied_total";
/// Counter: duplicate events dropped. Label `stream`.
pub const DUPLICATES: &str = "tether_duplicates_total";
/// Counter: sequence gaps seen (each forces a resubscribe).
pub const GAPS: &str = "tether_gaps_total";
/// Counter: gateway restarts detected (each invalidates everything).
pub const RESTARTS: &str = "tether_gateway_restarts_total";
/// Counter: unreplayable gaps (each invalidates everything).
pub const UNREPLAYABLE_GAPS: &str = "tether_unreplayable_gaps_total";
/// Counter: stream connection attempts after the first. Label `stream`.
pub const RECONNECTS: &str = "tether_reconnects_total";
/// Counter: streams moved to a fresh connection, not after a failure.
/// Labels `stream`, `reason` (`peer_draining`: the gateway sent an HTTP/2
/// GOAWAY on the stream's connection; `checks_renewed`: under TLS, where no
/// GOAWAY can be seen, the checks moved to a new connection after the
/// stream opened). Each move's reopen also counts in
/// `tether_reconnects_total`.
pub const STREAM_SWAPS: &str = "tether_stream_swaps_total";
/// Gauge: 1 while a stream is connected. Label `stream`.
pub const CONNECTED: &str = "tether_stream_connected";
/// Histogram (seconds): push-to-apply latency of invalidation events,
/// measured from stream receipt to the cache being updated.
pub const PUSH_TO_APPLY_SECONDS: &str = "tether_push_to_apply_seconds";
/// Histogram (seconds): `check` latency. Label `verdict` (see
/// `Verdict::label`).
pub const CHECK_SECONDS: &str = "tether_check_seconds";
/// Gauge: `CheckAction` calls in flight on the checks' connection.
pub const CHECKS_IN_FLIGHT: &str = "tether_checks_in_flight";
/// Gauge: checks queued for a slot on the checks' connection.
pub const CHECKS_QUEUED: &str = "tether_checks_queued";
/// Gauge: checks waiting for a reviewer after a `PENDING` answer.
pub const CHECKS_HELD_FOR_APPROVAL: &str = "tether_checks_held_for_approval";
/// Counter: checks refused a slot. Label `reason` (`queue_full`,
/// `queue_timeout`).
pub const CHECK_SLOT_REFUSALS: &str = "tether_check_slot_refusals_total";
/// Counter: op-control signals applied. Label `signal`.
pub const OP_SIGNALS: &str = "tether_op_signals_total";
/// Gauge: 1 while the op-control table is saturated (a pause or terminate
/// found no room: ops it holds nothing for fail closed).
pub const OP_TABLE_SATURATED: &str = "tether_op_table_saturated";
/// Gauge: op-control table fill. Label `kind` (`entry`, `marker`,
/// `overflow`).
pub const OP_TABLE_ENTRIES: &str = "tether_op_table_entries";
/// Counter: UNAUTHENTICATED answers that made the client refresh its token.
pub const AUTH_REFRESHES: &str = "tether_auth_refreshes_total";
/// Counter: pokes given to the queued-work runner. Label `outcome`
/// (`driving`, `queued`, `coalesced`, `overflowed`).
pub const RUNNER_POKES: &str = "tether_runner_pokes_total";
/// Counter: runner drives that reported. Label `result` (`submitted`,
/// `idle`, `failed`, `panicked`).
pub const RUNNER_DRIVES: &str = "tether_runner_drives_total";
/// Histogram (seconds): how long one `submit_next` call took.
pub const RUNNER_DRIVE_SECONDS: &str = "tether_runner_drive_seconds";
/// Counter: drive results, completions and renewals the in-flight machine
/// refused (stale, duplicate).
pub const RUNNER_STALE_REPORTS: &str = "tether_runner_stale_reports_total";
/// Counter: finished scheduler ticks. Label `outcome` (`success`,
/// `failure`, `panic`, `timeout`, `stale`).
pub const SCHEDULER_TICKS: &str = "tether_scheduler_ticks_total";
/// Histogram (seconds): how long one tick ran.
pub const SCHEDULER_TICK_SECONDS: &str = "tether_scheduler_tick_seconds";
/// Counter: job-store operations that failed.
pub const SCHEDULER_STORE_ERRORS: &str = "tether_scheduler_store_errors_total";

/// Every metric name, for documentation and the CLI's metrics test.
pub const ALL: &[&str] = &[
    EVENTS_APPLIED,
    DUPLICATES,
    GAPS,
    RESTARTS,
    UNREPLAYABLE_GAPS,
    RECONNECTS,
    STREAM_SWAPS,
    CONNECTED,
    PUSH_TO_APPLY_SECONDS,
    CHECK_SECONDS,
    CHECKS_IN_FLIGHT,
    CHECKS_QUEUED,
    CHECKS_HELD_FOR_APPROVAL,
    CHECK_SLOT_REFUSALS,
    OP_SIGNALS,
    OP_TABLE_SATURATED,
    OP_TABLE_ENTRIES,
    AUTH_REFRESHES,
    RUNNER_POKES,
    RUNNER_DRIVES,
    RUNNER_DRIVE_SECONDS,
    RUNNER_STALE_REPORTS,
    SCHEDULER_TICKS,
    SCHEDULER_TICK_SECONDS,
    SCHEDULER_STORE_ERRORS,
];

/// The runtime client's metrics (what `Tether` records).
pub const CLIENT: &[&str] = &[
    EVENTS_APPLIED,
    DUPLICATES,
    GAPS,
    RESTARTS,
    UNREPLAYABLE_GAPS,
    RECONNECTS,
    STREAM_SWAPS,
    CONNECTED,
    PUSH_TO_APPLY_SECONDS,
    CHECK_SECONDS,
    CHECKS_IN_FLIGHT,
    CHECKS_QUEUED,
    CHECKS_HELD_FOR_APPROVAL,
    CHECK_SLOT_REFUSALS,
    OP_SIGNALS,
    OP_TABLE_SATURATED,
    OP_TABLE_ENTRIES,
    AUTH_REFRESHES,
];

/// Register every counter and gauge at zero, so a metrics endpoint lists
/// them before the first event (histograms appear with their first sample).
pub fn register_all() {
    for name in [
        EVENTS_APPLIED,
        DUPLICATES,
        GAPS,
        RESTARTS,
        UNREPLAYABLE_GAPS,
        RECONNECTS,
        STREAM_SWAPS,
        OP_SIGNALS,
        AUTH_REFRESHES,
        CHECK_SLOT_REFUSALS,
        RUNNER_POKES,
        RUNNER_DRIVES,
        RUNNER_STALE_REPORTS,
        SCHEDULER_TICKS,
        SCHEDULER_STORE_ERRORS,
    ] {
        metrics::counter!(name).increment(0);
    }
    for name in [
        CONNECTED,
        CHECKS_IN_FLIGHT,
        CHECKS_QUEUED,
        CHECKS_HELD_FOR_APPROVAL,
        OP_TABLE_SATURATED,
    ] {
        metrics::gauge!(name).set(0.0);
    }
    for kind in ["entry", "marker", "overflow"] {
        metrics::gauge!(OP_TABLE_ENTRIES, "kind" => kind).set(0.0);
    }
}
