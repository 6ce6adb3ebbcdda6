//! Engine checkpoints: what a start rebuilds from the journal (the store's indexes, the
//! pending timers, the last position and time, the start of the last unit), saved as of
//! a durable end so that a start scans only the journal after it. `docs/log-format.md`
//! ("An engine checkpoint file") has the layout, the decision table and why a checkpoint
//! never makes a start wrong.
//!
//! - `codec`'s [`Checkpoint`]: the file's bytes (public, for tools and the fuzz target).
//! - `file`: the files in `checkpoints/` (written durably, pruned, chosen at a start).
//! - `thread`: the `writ-checkpoint` thread that folds the journal as it grows and writes
//!   one every `checkpoint_every_records` records and at a clean shutdown.
//!
//! ```
//! use writ_engine::checkpoint::{Checkpoint, CHECKPOINT_BUILD};
//!
//! let checkpoint = Checkpoint {
//!     seq: 2,
//!     last_position: 1,
//!     last_recorded_ms: 1_000,
//!     unit_start: 1,
//!     mark: [0; 32],
//!     build: CHECKPOINT_BUILD.to_owned(),
//!     commit_first_position: vec![1, 1],
//!     streams: vec![("counter-c-1".to_owned(), vec![1])],
//!     timers: Vec::new(),
//! };
//! assert_eq!(Checkpoint::decode(&checkpoint.encode()).unwrap(), checkpoint);
//! ```

mod codec;
pub(crate) mod file;
pub(crate) mod thread;

use std::collections::HashMap;
use std::path::Path;

pub use codec::{
    BUILD_BYTES_MAX, CHECKPOINT_BUILD, CHECKPOINT_MAGIC, CHECKPOINT_VERSION, Checkpoint,
    CheckpointError, CheckpointHeader, CheckpointTimer, MARK_BYTES,
};
pub use file::{CHECKPOINT_DIR, checkpoint_name, parse_checkpoint_name};
use writ_domain::Issued;
use writ_log::LogReader;

use crate::error::{OpenError, ReadError};
use crate::record::{JournalRecord, Origin};
use crate::recovery::fold_timers;
use crate::store::Indexes;
use crate::timers::{Timer, Timers};

/// The journal's mark at `seq` (at least 1): record `seq - 1`'s id and time and a CRC32C
/// of its bytes, and a CRC32C of the journal's directory and of the records at
/// `seq / 8 × i` for `i` in 1..8. See the format's notes.
pub(crate) fn journal_mark(
    journal: &LogReader,
    journal_dir: &Path,
    seq: u64,
) -> Result<[u8; MARK_BYTES], ReadError> {
    assert!(seq > 0, "a mark of at least one record");
    let mut buf = Vec::new();
    journal.read(seq - 1, &mut buf)?;
    let (id, time) = crate::record::id_and_time(&buf).map_err(|source| ReadError::Record {
        seq: seq - 1,
        source,
    })?;
    let mut mark = [0; MARK_BYTES];
    mark[..16].copy_from_slice(id.as_bytes());
    mark[16..24].copy_from_slice(&time.to_le_bytes());
    mark[24..28].copy_from_slice(&crc32c::crc32c(&buf).to_le_bytes());
    let mut samples = crc32c::crc32c(journal_dir.to_string_lossy().as_bytes());
    let mut previous = 0;
    for i in 1..8 {
        let at = seq / 8 * i;
        if at == previous || at >= seq {
            continue;
        }
        previous = at;
        journal.read(at, &mut buf)?;
        samples = crc32c::crc32c_append(samples, &at.to_le_bytes());
        samples = crc32c::crc32c_append(samples, &buf);
    }
    mark[28..32].copy_from_slice(&samples.to_le_bytes());
    Ok(mark)
}

/// What a checkpoint holds, kept as the journal is folded record by record: by open's scan
/// and by the checkpoint thread, with the same code.
#[derive(Debug, Default)]
pub(crate) struct Folded {
    /// Records folded: `[0, seq)`.
    pub seq: u64,
    pub indexes: Indexes,
    pub timers: Timers,
    /// The last position folded (0: none).
    pub last_position: u64,
    pub last_recorded_ms: u64,
    /// The last record of origin `client` or `timer`.
    pub unit_start: u64,
}

impl Folded {
    /// Folds record `seq` (the next one) in: checks it starts where the last ended,
    /// indexes it, folds its timers.
    pub(crate) fn fold(&mut self, seq: u64, record: &JournalRecord<'_>) -> Result<(), OpenError> {
        debug_assert_eq!(seq, self.seq);
        if record.first_position != self.last_position + 1 {
            return Err(OpenError::Inconsistent {
                detail: format!(
                    "journal record {seq} starts at position {}, expected {}",
                    record.first_position,
                    self.last_position + 1
                ),
            });
        }
        self.indexes.push(
            record.first_position,
            record.events.iter().map(|e| (e.stream, e.version)),
        );
        self.last_position += record.events.len() as u64;
        if record.origin != Origin::Process {
            self.unit_start = seq;
        }
        fold_timers(&mut self.timers, record);
        self.last_recorded_ms = record.recorded_at_ms;
        self.seq = seq + 1;
        Ok(())
    }

    /// Reads and folds the journal's records from `self.seq` up to `end`.
    pub(crate) fn fold_journal(&mut self, journal: &LogReader, end: u64) -> Result<(), OpenError> {
        let read_error = |source| OpenError::Read {
            log: "journal",
            source,
        };
        let mut iter = journal.iter_from(self.seq);
        while self.seq < end {
            let Some(item) = iter.next_record() else {
                break;
            };
            let (seq, bytes) = item.map_err(|e| read_error(ReadError::Log(e)))?;
            let record = JournalRecord::decode(bytes)
                .map_err(|source| read_error(ReadError::Record { seq, source }))?;
            self.fold(seq, &record)?;
        }
        Ok(())
    }

    /// The checkpoint file of this state, with the journal's mark at `self.seq`.
    pub(crate) fn encode(&self, mark: [u8; MARK_BYTES]) -> Vec<u8> {
        let mut streams: Vec<(&str, &[u64])> = self.indexes.streams().collect();
        streams.sort_unstable_by_key(|(name, _)| *name);
        codec::encode_parts(
            &CheckpointHeader {
                seq: self.seq,
                last_position: self.last_position,
                last_recorded_ms: self.last_recorded_ms,
                unit_start: self.unit_start,
                mark,
                build: CHECKPOINT_BUILD.to_owned(),
            },
            self.indexes.commit_first_positions(),
            &streams,
            self.timers.in_order().map(|t| codec::TimerRef {
                process: &t.process,
                key: &t.key,
                at_ms: t.at_ms,
                id: t.command.id,
                command: &t.command.command,
                version: t.command.version,
                expected_version: t.command.expected_version,
                payload: &t.command.payload,
                causation_id: t.causation_id,
                correlation_id: t.correlation_id,
            }),
        )
    }

    /// The state a checkpoint holds.
    pub(crate) fn from_checkpoint(checkpoint: Checkpoint) -> Self {
        let mut timers = Timers::default();
        for t in checkpoint.timers {
            timers.schedule(Timer {
                process: t.process.into(),
                key: t.key.into(),
                at_ms: t.at_ms,
                command: Issued {
                    id: t.id,
                    command: t.command,
                    version: t.version,
                    payload: t.payload,
                    expected_version: t.expected_version,
                },
                causation_id: t.causation_id,
                correlation_id: t.correlation_id,
            });
        }
        let streams: HashMap<Box<str>, Vec<u64>> = checkpoint
            .streams
            .into_iter()
            .map(|(name, positions)| (name.into_boxed_str(), positions))
            .collect();
        Self {
            seq: checkpoint.seq,
            indexes: Indexes::from_parts(checkpoint.commit_first_position, streams),
            timers,
            last_position: checkpoint.last_position,
            last_recorded_ms: checkpoint.last_recorded_ms,
            unit_start: checkpoint.unit_start,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// The costs of a checkpoint at 1,000,000 records of one event each over 100,000
    /// streams, with 1,000 pending timers: encoding it, decoding it and turning it into
    /// the store's indexes (what a start does instead of scanning). Run in release:
    /// `cargo test --release -p writ-engine --lib checkpoint_costs -- --ignored --nocapture`.
    #[test]
    #[ignore = "a timing print, for release builds"]
    fn checkpoint_costs_at_a_million_records() {
        const RECORDS: u64 = 1_000_000;
        let names: Vec<String> = (0..100_000).map(|i| format!("ticket-{i:08}")).collect();
        let mut folded = Folded::default();
        let mut versions = vec![0u64; names.len()];
        let started = Instant::now();
        for seq in 0..RECORDS {
            let s = (seq * 7_919 % names.len() as u64) as usize;
            versions[s] += 1;
            folded
                .indexes
                .push(seq + 1, std::iter::once((names[s].as_str(), versions[s])));
        }
        let fold = started.elapsed();
        for i in 0..1_000u128 {
            folded.timers.schedule(Timer {
                process: "p".into(),
                key: format!("k{i}").into(),
                at_ms: 1_000 + i as u64,
                command: Issued {
                    id: uuid::Uuid::from_u128(i + 1),
                    command: "Remind".into(),
                    version: None,
                    payload: b"{\"x\":1}".to_vec(),
                    expected_version: None,
                },
                causation_id: uuid::Uuid::from_u128(7),
                correlation_id: uuid::Uuid::from_u128(7),
            });
        }
        folded.seq = RECORDS;
        folded.last_position = RECORDS;
        let started = Instant::now();
        let bytes = folded.encode([0; MARK_BYTES]);
        let encode = started.elapsed();
        let started = Instant::now();
        let decoded = Checkpoint::decode(&bytes).expect("decodes");
        let decode = started.elapsed();
        let started = Instant::now();
        let loaded = Folded::from_checkpoint(decoded);
        let load = started.elapsed();
        assert_eq!(
            loaded.indexes.commit_first_positions().len() as u64,
            RECORDS
        );
        println!(
            "checkpoint of {RECORDS} records: {} bytes ({:.1} per record); index push {:?} ({:.0} ns/record); encode {:?}; decode {:?}; into indexes and timers {:?}",
            bytes.len(),
            bytes.len() as f64 / RECORDS as f64,
            fold,
            fold.as_nanos() as f64 / RECORDS as f64,
            encode,
            decode,
            load
        );
    }
}
