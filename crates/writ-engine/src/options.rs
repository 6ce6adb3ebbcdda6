use std::time::Duration;

use writ_log::LogOptions;

/// Limits and tunables of an engine. Every queue and index has a bound here.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How long a command id is remembered for dedupe and status lookups. Default 24 h.
    pub dedupe_window: Duration,
    /// Most ids the dedupe index holds (about 60 bytes each). At the bound intake answers
    /// overload instead of forgetting ids early. Default 10,000,000 (about 600 MB).
    pub dedupe_entries_max: usize,
    /// Commands validated and waiting for the command log. When full, submissions are
    /// refused at once with an overload error. Default 16,384.
    pub intake_queue_max: usize,
    /// Most commands in one command log batch (one fdatasync). Default 4,096.
    pub batch_records_max: usize,
    /// Most bytes in one command log or event log batch. Default 1 MiB.
    pub batch_bytes_max: usize,
    /// Largest canonical command payload accepted. Default 1 MiB.
    pub command_bytes_max: usize,
    /// Most stream states the writer keeps in memory; beyond it, states whose events are all
    /// durable are dropped and reloaded from the log when needed. Default 1,000,000.
    pub state_cache_streams_max: usize,
    /// Most callers waiting on command statuses at once. Default 100,000.
    pub waiters_max: usize,
    /// Segment size and record bound of both logs.
    pub log: LogOptions,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            dedupe_window: Duration::from_secs(24 * 60 * 60),
            dedupe_entries_max: 10_000_000,
            intake_queue_max: 16_384,
            batch_records_max: 4_096,
            batch_bytes_max: 1 << 20,
            command_bytes_max: 1 << 20,
            state_cache_streams_max: 1_000_000,
            waiters_max: 100_000,
            log: LogOptions::default(),
        }
    }
}
