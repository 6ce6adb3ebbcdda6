//! The engine's metrics, through the `metrics` facade: whoever embeds the engine installs a
//! recorder (the server installs a Prometheus one) *before* opening it. Recorded once per
//! batch, not per command, to stay off the hot path.

use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};

/// Metric handles, created at open.
pub(crate) struct Metrics {
    pub intake_queue_depth: Gauge,
    pub commands_accepted: Counter,
    pub commands_duplicate: Counter,
    pub succeeded: Counter,
    pub rejected: Counter,
    pub failed: Counter,
    pub command_log_batch_records: Histogram,
    pub command_log_sync_seconds: Histogram,
    pub event_log_batch_records: Histogram,
    pub event_log_sync_seconds: Histogram,
    pub command_log_unfilled_rolls: Counter,
    pub event_log_unfilled_rolls: Counter,
    pub store_poisoned: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let outcome =
            |status: &'static str| counter!("writ_command_outcomes_total", "status" => status);
        Self {
            intake_queue_depth: gauge!("writ_intake_queue_depth"),
            commands_accepted: counter!("writ_commands_accepted_total"),
            commands_duplicate: counter!("writ_commands_duplicate_total"),
            succeeded: outcome("succeeded"),
            rejected: outcome("rejected"),
            failed: outcome("failed"),
            command_log_batch_records: histogram!("writ_command_log_batch_records"),
            command_log_sync_seconds: histogram!("writ_command_log_sync_seconds"),
            event_log_batch_records: histogram!("writ_event_log_batch_records"),
            event_log_sync_seconds: histogram!("writ_event_log_sync_seconds"),
            command_log_unfilled_rolls: counter!("writ_log_unfilled_rolls_total", "log" => "commands"),
            event_log_unfilled_rolls: counter!("writ_log_unfilled_rolls_total", "log" => "events"),
            store_poisoned: gauge!("writ_store_poisoned"),
        }
    }
}

/// Names and meaning of every metric, for documentation and exporters.
pub const METRICS: &[(&str, &str)] = &[
    (
        "writ_intake_queue_depth",
        "gauge: commands validated and waiting for the command log",
    ),
    (
        "writ_commands_accepted_total",
        "counter: commands logged, synced and acknowledged",
    ),
    (
        "writ_commands_duplicate_total",
        "counter: submissions answered as duplicates",
    ),
    (
        "writ_command_outcomes_total",
        "counter by status (succeeded, rejected, failed): durable outcomes",
    ),
    (
        "writ_command_log_batch_records",
        "histogram: commands per command log sync (group commit size)",
    ),
    (
        "writ_command_log_sync_seconds",
        "histogram: write + fdatasync of one command log batch",
    ),
    (
        "writ_event_log_batch_records",
        "histogram: commits per event log sync",
    ),
    (
        "writ_event_log_sync_seconds",
        "histogram: write + fdatasync of one event log batch",
    ),
    (
        "writ_log_unfilled_rolls_total",
        "counter by log (commands, events): segment rolls that took the next segment before its zero fill was done (the log writes close to the disk's bandwidth)",
    ),
    (
        "writ_store_poisoned",
        "gauge: 1 once an I/O failure poisoned the store (writes refused until restart)",
    ),
];
