use std::sync::Arc;
use std::time::Duration;

use writ_log::LogOptions;

use crate::clock::{Clock, SystemClock};

/// Limits and tunables of an engine. Every queue and index has a bound here.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How long a command id is remembered for dedupe and status lookups. Default 24 h.
    pub dedupe_window: Duration,
    /// Most ids the dedupe index's hot map holds in memory (about 40-70 bytes each): those
    /// reserved and not yet durable, and the durable ones not yet spilled to a run. At the
    /// bound intake answers overload (`503`) instead of forgetting ids early; it is reached
    /// only when spilling falls behind or fails (a full disk), since the hot map spills at
    /// `dedupe_spill_entries`. It does not bound the window: ids in runs cost about 1.35
    /// bytes of memory and 25 bytes of disk each. Default 10,000,000.
    pub dedupe_entries_max: usize,
    /// Hot ids at which the `writ-dedupe` thread writes them to a run file in `dedupe/`
    /// (at most `dedupe_entries_max`). A spill holds about 24 bytes per id more while it
    /// sorts them. Default 4,000,000.
    pub dedupe_spill_entries: usize,
    /// Commands validated and waiting for the writer. When full, submissions are refused at
    /// once with an overload error. Default 16,384.
    pub intake_queue_max: usize,
    /// Most clients' commands the writer takes in one batch. Default 4,096.
    pub batch_records_max: usize,
    /// Most payload bytes the writer takes in one batch, and most record bytes the syncer
    /// gathers before one sync (a bigger batch still goes in one frame when the writer
    /// made it so). Default 1 MiB.
    pub batch_bytes_max: usize,
    /// Largest canonical command payload accepted. Default 1 MiB.
    pub command_bytes_max: usize,
    /// Most stream states the writer keeps in memory; beyond it, states whose events are all
    /// durable are dropped and reloaded from the log when needed. Default 1,000,000.
    pub state_cache_streams_max: usize,
    /// Most callers waiting on command statuses at once. Default 100,000.
    pub waiters_max: usize,
    /// Most pending durable timers. At the bound the engine refuses new clients' commands
    /// (overload, `503`) until timers fire or are cancelled; the commands of processes and
    /// timers already on their way may still schedule, so the set can pass the bound by
    /// what they schedule. About 150 bytes per timer plus its command's name and payload:
    /// the default, 1,000,000, is about 250 MB with small payloads.
    pub timers_max: usize,
    /// Most commands in one unit: a client's command (or a timer's) and, breadth first,
    /// every command its events make processes issue, and theirs. Commands issued beyond
    /// it are recorded `failed` without running, so a process that issues in a loop ends.
    /// Default 1,000.
    pub process_chain_max: usize,
    /// Most bytes of timer changes one command's events may cause (they are stored in its
    /// record); changes beyond it are dropped and counted as failed reactions. Default
    /// 256 KiB. A record's events may take `log.record_bytes_max` minus this.
    pub timer_ops_bytes_max: usize,
    /// Journal records between two engine checkpoints (`checkpoints/`, written by the
    /// `writ-checkpoint` thread, and one more at a clean shutdown); `0`: none. A
    /// checkpoint costs about 1-2 bytes per record and per event on disk (two are kept),
    /// and the thread keeps its own copy of the indexes and timers in memory (about 16
    /// bytes per event and per record, plus each stream's name). Default 1,000,000.
    pub checkpoint_every_records: u64,
    /// Nice levels the `writ-writer` thread runs below the rest of the process (at most to
    /// nice 19; Linux only; `0`: the same priority). Under load the HTTP workers then read
    /// the requests in hand before the writer decides, so the writer takes fewer, larger
    /// batches (more commands per second at 64 connections, no change for a lone client:
    /// the README's "Measuring" has the figures). The cost: while threads at the
    /// process's priority keep every core busy (heavy query code, say), the writer gets a
    /// smaller share of the CPU (about a tenth of theirs at 10). Default 10.
    pub writer_nice: u8,
    /// Segment size, record bound and open segment files of the journal.
    pub log: LogOptions,
    /// Where the engine reads the time: commands' `recorded_at`, timers, the dedupe
    /// window. The system clock; tests may move a [`ManualClock`](crate::ManualClock).
    pub clock: Arc<dyn Clock>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            dedupe_window: Duration::from_secs(24 * 60 * 60),
            dedupe_entries_max: 10_000_000,
            dedupe_spill_entries: 4_000_000,
            intake_queue_max: 16_384,
            batch_records_max: 4_096,
            batch_bytes_max: 1 << 20,
            command_bytes_max: 1 << 20,
            state_cache_streams_max: 1_000_000,
            waiters_max: 100_000,
            timers_max: 1_000_000,
            process_chain_max: 1_000,
            timer_ops_bytes_max: 256 * 1024,
            checkpoint_every_records: 1_000_000,
            writer_nice: 10,
            log: LogOptions::default(),
            clock: Arc::new(SystemClock),
        }
    }
}

impl EngineOptions {
    /// Checks the bounds: none is zero, and a command with its timer changes fits a record.
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("dedupe_entries_max", self.dedupe_entries_max),
            ("dedupe_spill_entries", self.dedupe_spill_entries),
            ("intake_queue_max", self.intake_queue_max),
            ("batch_records_max", self.batch_records_max),
            ("batch_bytes_max", self.batch_bytes_max),
            ("command_bytes_max", self.command_bytes_max),
            ("state_cache_streams_max", self.state_cache_streams_max),
            ("waiters_max", self.waiters_max),
            ("timers_max", self.timers_max),
            ("process_chain_max", self.process_chain_max),
        ] {
            if value == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        if self.dedupe_spill_entries > self.dedupe_entries_max {
            return Err(format!(
                "dedupe_spill_entries ({}) must be at most dedupe_entries_max ({}): the hot map spills at the first and refuses new commands at the second",
                self.dedupe_spill_entries, self.dedupe_entries_max
            ));
        }
        if self.dedupe_window.is_zero() {
            return Err("dedupe_window must be longer than zero".to_owned());
        }
        self.log.validate()?;
        // A record holds its command, its events and its timer changes; the fixed fields and
        // names take well under 1 KiB.
        if self.command_bytes_max + self.timer_ops_bytes_max + 1024 > self.log.record_bytes_max {
            return Err(format!(
                "command_bytes_max ({}) + timer_ops_bytes_max ({}) + 1 KiB must fit log.record_bytes_max ({})",
                self.command_bytes_max, self.timer_ops_bytes_max, self.log.record_bytes_max
            ));
        }
        Ok(())
    }
}
