//! The engine's metrics, through the `metrics` facade: whoever embeds the engine installs a
//! recorder (the server installs a Prometheus one) *before* opening it. Recorded once per
//! batch, not per command, to stay off the hot path.

use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};

/// Metric handles, created at open.
pub(crate) struct Metrics {
    pub intake_queue_depth: Gauge,
    pub commands_accepted: Counter,
    pub commands_duplicate: Counter,
    pub decided_on_submit: Counter,
    pub succeeded: Counter,
    pub rejected: Counter,
    pub failed: Counter,
    pub journal_batch_records: Histogram,
    pub journal_sync_seconds: Histogram,
    pub journal_unfilled_rolls: Counter,
    pub journal_switches: Counter,
    pub journal_open_segment_files: Gauge,
    pub journal_segment_opens: Counter,
    pub store_poisoned: Gauge,
    pub timers_pending: Gauge,
    pub dedupe_entries: Gauge,
    pub dedupe_entries_max: Gauge,
    pub dedupe_hot_entries: Gauge,
    pub dedupe_runs: Gauge,
    pub dedupe_run_bytes: Gauge,
    pub dedupe_memory_bytes: Gauge,
    pub dedupe_spill_failures: Counter,
    pub checkpoints_written: Counter,
    pub checkpoint_failures: Counter,
    pub checkpoint_bytes: Gauge,
    pub checkpoint_records: Gauge,
    pub checkpoint_position: Gauge,
    pub checkpoint_seconds: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// The histogram of records per journal sync (a recorder gives it buckets by this name).
pub const JOURNAL_BATCH_RECORDS: &str = "writ_journal_batch_records";
/// The histogram of journal sync times, in seconds.
pub const JOURNAL_SYNC_SECONDS: &str = "writ_journal_sync_seconds";

impl Metrics {
    pub(crate) fn new() -> Self {
        let outcome =
            |status: &'static str| counter!("writ_command_outcomes_total", "status" => status);
        Self {
            intake_queue_depth: gauge!("writ_intake_queue_depth"),
            commands_accepted: counter!("writ_commands_accepted_total"),
            commands_duplicate: counter!("writ_commands_duplicate_total"),
            decided_on_submit: counter!("writ_commands_decided_on_submit_total"),
            succeeded: outcome("succeeded"),
            rejected: outcome("rejected"),
            failed: outcome("failed"),
            journal_batch_records: histogram!(JOURNAL_BATCH_RECORDS),
            journal_sync_seconds: histogram!(JOURNAL_SYNC_SECONDS),
            journal_unfilled_rolls: counter!("writ_log_unfilled_rolls_total", "log" => "journal"),
            journal_switches: counter!("writ_journal_switches_total"),
            journal_open_segment_files: gauge!("writ_log_open_segment_files", "log" => "journal"),
            journal_segment_opens: counter!("writ_log_segment_opens_total", "log" => "journal"),
            store_poisoned: gauge!("writ_store_poisoned"),
            timers_pending: gauge!("writ_timers_pending"),
            dedupe_entries: gauge!("writ_dedupe_entries"),
            dedupe_entries_max: gauge!("writ_dedupe_entries_max"),
            dedupe_hot_entries: gauge!("writ_dedupe_hot_entries"),
            dedupe_runs: gauge!("writ_dedupe_runs"),
            dedupe_run_bytes: gauge!("writ_dedupe_run_bytes"),
            dedupe_memory_bytes: gauge!("writ_dedupe_memory_bytes"),
            dedupe_spill_failures: counter!("writ_dedupe_spill_failures_total"),
            checkpoints_written: counter!("writ_engine_checkpoints_written_total"),
            checkpoint_failures: counter!("writ_engine_checkpoint_failures_total"),
            checkpoint_bytes: gauge!("writ_engine_checkpoint_bytes"),
            checkpoint_records: gauge!("writ_engine_checkpoint_records"),
            checkpoint_position: gauge!("writ_engine_checkpoint_position"),
            checkpoint_seconds: gauge!("writ_engine_checkpoint_seconds"),
        }
    }

    /// Counts a reaction of `process` that failed (rare: a counter handle per call is fine).
    pub(crate) fn reaction_failed(&self, process: &str) {
        counter!("writ_process_reactions_failed_total", "process" => process.to_owned())
            .increment(1);
    }
}

/// Names and meaning of every metric, for documentation and exporters.
pub const METRICS: &[(&str, &str)] = &[
    (
        "writ_intake_queue_depth",
        "gauge: commands validated and waiting for the writer",
    ),
    (
        "writ_commands_accepted_total",
        "counter: clients' commands decided, synced and acknowledged",
    ),
    (
        "writ_commands_duplicate_total",
        "counter: submissions answered as duplicates",
    ),
    (
        "writ_commands_decided_on_submit_total",
        "counter: commands decided (and, the syncer idle, synced) on the submitting thread, the engine being idle (Engine::submit_now; over HTTP a request alone in the server), rather than queued for the writer thread",
    ),
    (
        "writ_command_outcomes_total",
        "counter by status (succeeded, rejected, failed): durable outcomes, the commands of processes and timers included",
    ),
    (
        "writ_journal_batch_records",
        "histogram: commands per journal sync (group commit size)",
    ),
    (
        "writ_journal_sync_seconds",
        "histogram: write + fdatasync of one journal batch",
    ),
    (
        "writ_log_unfilled_rolls_total",
        "counter by log (journal): segment rolls that took the next segment before its zero fill was done (the log writes close to the disk's bandwidth)",
    ),
    (
        "writ_log_open_segment_files",
        "gauge by log (journal): segment files the log holds open, one descriptor each: the live segment and the sealed ones read lately, at most open_segments_max of them (`writ serve --open-segments-max`); not counted, the preallocated spare",
    ),
    (
        "writ_log_segment_opens_total",
        "counter by log (journal): sealed segments' files opened for reads, a first read of one or a read back in one the bounded cache had closed; a fast rise says reads jump across more segments than open_segments_max",
    ),
    (
        "writ_journal_switches_total",
        "counter: online replays applied in this process (POST /admin/replay with apply): the journal went over to the replay's, the engine reopened on it",
    ),
    (
        "writ_store_poisoned",
        "gauge: 1 once an I/O failure poisoned the store (writes refused until restart)",
    ),
    (
        "writ_timers_pending",
        "gauge: durable timers scheduled and not yet fired or cancelled (bounded by timers_max)",
    ),
    (
        "writ_dedupe_entries",
        "gauge: command ids in the dedupe index, in its hot map and in its runs (those within the window, a run's until its newest id leaves it, and those reserved and not yet durable)",
    ),
    (
        "writ_dedupe_hot_entries",
        "gauge: command ids in the dedupe index's hot map (reserved, or durable and not yet spilled to a run); at writ_dedupe_entries_max new commands are refused with 503",
    ),
    (
        "writ_dedupe_entries_max",
        "gauge: the bound of the dedupe index's hot map (dedupe_entries_max, `writ serve --dedupe-entries-max`), reached only when spilling falls behind or fails",
    ),
    (
        "writ_dedupe_runs",
        "gauge: run files of the dedupe index in dedupe/ (each a sorted range of ids with a filter)",
    ),
    (
        "writ_dedupe_run_bytes",
        "gauge: bytes of the dedupe index's run files on disk (about 25 per id)",
    ),
    (
        "writ_dedupe_memory_bytes",
        "gauge: bytes of memory the dedupe index holds: the hot map's tables and the runs' filters and fences (about 1.35 per id in a run)",
    ),
    (
        "writ_dedupe_spill_failures_total",
        "counter: spills of the dedupe index's hot map to a run that failed (a full disk); the ids stay in memory, and at writ_dedupe_entries_max new commands are refused with 503",
    ),
    (
        "writ_engine_checkpoints_written_total",
        "counter: engine checkpoints written to checkpoints/ (every checkpoint_every_records records, `writ serve --checkpoint-every-records`, and at a clean shutdown)",
    ),
    (
        "writ_engine_checkpoint_failures_total",
        "counter: engine checkpoints that could not be written (a full disk), or the checkpoint thread stopping because it could not read the journal",
    ),
    (
        "writ_engine_checkpoint_bytes",
        "gauge: bytes of the last engine checkpoint written (two are kept on disk)",
    ),
    (
        "writ_engine_checkpoint_records",
        "gauge: journal records the last engine checkpoint covers (a start scans only those after it)",
    ),
    (
        "writ_engine_checkpoint_position",
        "gauge: the last global position the last engine checkpoint covers",
    ),
    (
        "writ_engine_checkpoint_seconds",
        "gauge: how long the last engine checkpoint took to encode and write (off the writer's and the syncer's paths: the thread holds none of their locks)",
    ),
    (
        "writ_process_reactions_failed_total",
        "counter by process: reactions to an event that panicked or did not decode; the event is parked for that process and the command that recorded it still succeeded",
    ),
];
