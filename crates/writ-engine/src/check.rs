//! The journal's invariants, checked over its records without opening an engine, for tools
//! that check a data directory (`writ verify`) or a copy of one (`writ backup`).
//!
//! [`JournalCheck`] takes the journal's records in order, as a scan of its segments yields
//! them, and holds each to what the engine's writer guarantees and its recovery relies on
//! (`docs/log-format.md`, "The journal record", Invariants):
//! - record *n* is sequence number *n*, from 0, without gaps;
//! - every record decodes (the decoder refuses what does not encode back to the same
//!   bytes, and a client's command with a causation or an issued one without);
//! - each record starts at the position where the one before it ended (positions from 1,
//!   gap-free);
//! - each stream's versions go 1, 2, 3, … without gaps;
//! - `recorded_at_ms` never decreases along the journal.
//!
//! ```
//! use uuid::Uuid;
//! use writ_engine::check::JournalCheck;
//! use writ_engine::record::{CommitStatus, JournalRecord, Origin, RecordEvent};
//!
//! let id = Uuid::new_v4();
//! let record = JournalRecord {
//!     id,
//!     correlation_id: id,
//!     causation_id: None,
//!     origin: Origin::Client,
//!     recorded_at_ms: 1_000,
//!     name: "CreateCounter",
//!     version: 1,
//!     expected_version: None,
//!     payload: b"{}",
//!     status: CommitStatus::Succeeded,
//!     first_position: 1,
//!     events: vec![RecordEvent {
//!         stream: "counter-c",
//!         version: 1,
//!         event_type: "Created",
//!         schema_version: 1,
//!         data: b"{}",
//!     }],
//!     code: "",
//!     message: "",
//!     details: b"",
//!     timers: Vec::new(),
//! };
//! let mut bytes = Vec::new();
//! record.encode(&mut bytes);
//! let mut check = JournalCheck::new();
//! check.record(0, &bytes).unwrap();
//! // The same record again starts at position 1 where position 2 belongs.
//! assert!(check.record(1, &bytes).is_err());
//! assert_eq!(check.summary().commands, 1);
//! ```

use std::collections::HashMap;

use crate::record::{CommitStatus, JournalRecord, Origin, RecordError};

/// Counts of what a [`JournalCheck`] has accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JournalSummary {
    /// Records (commands with their outcomes).
    pub commands: u64,
    /// Events; also the last position.
    pub events: u64,
    /// Streams with at least one event.
    pub streams: u64,
    /// Commands that succeeded.
    pub succeeded: u64,
    /// Commands rejected by a rule.
    pub rejected: u64,
    /// Commands that failed.
    pub failed: u64,
    /// Commands clients sent.
    pub from_clients: u64,
    /// Commands processes issued.
    pub from_processes: u64,
    /// Commands timers fired.
    pub from_timers: u64,
    /// `recorded_at_ms` of the last record (0 before the first).
    pub last_recorded_ms: u64,
}

/// A record that breaks one of the journal's invariants. The check does not go on
/// meaningfully after one: what follows is measured against a journal that is not the
/// engine's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JournalViolation {
    /// A record out of its place: records are missing, or repeated.
    #[error("record {seq} where record {expected} belongs")]
    Sequence {
        /// The record given.
        seq: u64,
        /// The record expected.
        expected: u64,
    },
    /// The record does not decode.
    #[error("record {seq}: {source}")]
    Decode {
        /// The record.
        seq: u64,
        /// What is wrong.
        source: RecordError,
    },
    /// The record does not start where the one before it ended.
    #[error("record {seq} starts at position {found}, expected {expected}")]
    Position {
        /// The record.
        seq: u64,
        /// The position expected.
        expected: u64,
        /// Its `first_position`.
        found: u64,
    },
    /// An event's stream version does not follow the stream's last one.
    #[error(
        "record {seq}: event {index} has version {found} of stream {stream}, expected {expected}"
    )]
    StreamVersion {
        /// The record.
        seq: u64,
        /// The event's index in the record.
        index: usize,
        /// The stream.
        stream: String,
        /// The version expected.
        expected: u64,
        /// The version found.
        found: u64,
    },
    /// The record's time is before the time of the record before it.
    #[error(
        "record {seq} was recorded at {recorded_at_ms} ms, before the record before it ({previous_ms} ms)"
    )]
    TimeBackwards {
        /// The record.
        seq: u64,
        /// The time of the record before it.
        previous_ms: u64,
        /// Its time.
        recorded_at_ms: u64,
    },
}

/// Checks a journal's records, in order, against the engine's invariants; see the module
/// documentation. Memory: one map entry per stream.
#[derive(Debug, Default)]
pub struct JournalCheck {
    /// Each stream's last version.
    versions: HashMap<Box<str>, u64>,
    summary: JournalSummary,
}

impl JournalCheck {
    /// A check of a journal from its first record.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks record `seq`, whose payload is `bytes`; it must be the record after the last
    /// one accepted (0 first). On success the record is counted.
    pub fn record(&mut self, seq: u64, bytes: &[u8]) -> Result<(), JournalViolation> {
        let summary = &mut self.summary;
        if seq != summary.commands {
            return Err(JournalViolation::Sequence {
                seq,
                expected: summary.commands,
            });
        }
        let record = JournalRecord::decode(bytes)
            .map_err(|source| JournalViolation::Decode { seq, source })?;
        let expected = summary.events + 1;
        if record.first_position != expected {
            return Err(JournalViolation::Position {
                seq,
                expected,
                found: record.first_position,
            });
        }
        if record.recorded_at_ms < summary.last_recorded_ms {
            return Err(JournalViolation::TimeBackwards {
                seq,
                previous_ms: summary.last_recorded_ms,
                recorded_at_ms: record.recorded_at_ms,
            });
        }
        // Versions are checked before any is counted, so a failed record changes nothing.
        let mut next: HashMap<&str, u64> = HashMap::new();
        for (index, event) in record.events.iter().enumerate() {
            let last = match next.get(event.stream) {
                Some(&version) => version,
                None => self.versions.get(event.stream).copied().unwrap_or(0),
            };
            if event.version != last + 1 {
                return Err(JournalViolation::StreamVersion {
                    seq,
                    index,
                    stream: event.stream.to_owned(),
                    expected: last + 1,
                    found: event.version,
                });
            }
            next.insert(event.stream, event.version);
        }
        for (stream, version) in next {
            match self.versions.get_mut(stream) {
                Some(last) => *last = version,
                None => {
                    self.versions.insert(stream.into(), version);
                    summary.streams += 1;
                }
            }
        }
        summary.commands += 1;
        summary.events += record.events.len() as u64;
        summary.last_recorded_ms = record.recorded_at_ms;
        match record.status {
            CommitStatus::Succeeded => summary.succeeded += 1,
            CommitStatus::Rejected => summary.rejected += 1,
            CommitStatus::Failed => summary.failed += 1,
        }
        match record.origin {
            Origin::Client => summary.from_clients += 1,
            Origin::Process => summary.from_processes += 1,
            Origin::Timer => summary.from_timers += 1,
        }
        Ok(())
    }

    /// What the records accepted so far hold.
    pub fn summary(&self) -> &JournalSummary {
        &self.summary
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::record::RecordEvent;

    /// A client's succeeded command at `first_position` with one event per `(stream,
    /// version)`.
    fn record(first_position: u64, at_ms: u64, events: &[(&str, u64)]) -> Vec<u8> {
        let id = Uuid::new_v4();
        let record = JournalRecord {
            id,
            correlation_id: id,
            causation_id: None,
            origin: Origin::Client,
            recorded_at_ms: at_ms,
            name: "Add",
            version: 1,
            expected_version: None,
            payload: b"{}",
            status: CommitStatus::Succeeded,
            first_position,
            events: events
                .iter()
                .map(|&(stream, version)| RecordEvent {
                    stream,
                    version,
                    event_type: "Added",
                    schema_version: 1,
                    data: b"{}",
                })
                .collect(),
            code: "",
            message: "",
            details: b"",
            timers: Vec::new(),
        };
        let mut out = Vec::new();
        record.encode(&mut out);
        out
    }

    fn check(records: &[Vec<u8>]) -> Result<JournalSummary, JournalViolation> {
        let mut check = JournalCheck::new();
        for (seq, bytes) in records.iter().enumerate() {
            check.record(seq as u64, bytes)?;
        }
        Ok(*check.summary())
    }

    #[test]
    fn a_journal_the_engine_could_write_passes_with_its_counts() {
        let summary = check(&[
            record(1, 10, &[("a", 1), ("b", 1)]),
            record(3, 10, &[]),
            record(3, 11, &[("a", 2), ("a", 3)]),
        ])
        .unwrap();
        assert_eq!(
            (summary.commands, summary.events, summary.streams),
            (3, 4, 2)
        );
        assert_eq!((summary.succeeded, summary.from_clients), (3, 3));
        assert_eq!(summary.last_recorded_ms, 11);
    }

    #[test]
    fn each_broken_invariant_is_named() {
        let cases: [(&str, Vec<Vec<u8>>, &str); 5] = [
            (
                "position gap",
                vec![record(1, 0, &[("a", 1)]), record(3, 0, &[])],
                "starts at position 3, expected 2",
            ),
            (
                "version gap",
                vec![record(1, 0, &[("a", 1)]), record(2, 0, &[("a", 3)])],
                "version 3 of stream a, expected 2",
            ),
            (
                "version repeated within a record",
                vec![record(1, 0, &[("a", 1), ("a", 1)])],
                "version 1 of stream a, expected 2",
            ),
            (
                "time going back",
                vec![record(1, 5, &[]), record(1, 4, &[])],
                "recorded at 4 ms, before",
            ),
            (
                "a record that does not decode",
                vec![record(1, 0, &[]), b"J\x02 not a record".to_vec()],
                "record 1: invalid journal record",
            ),
        ];
        for (name, records, message) in cases {
            let error = check(&records).expect_err(name).to_string();
            assert!(error.contains(message), "{name}: {error}");
        }
        let mut check = JournalCheck::new();
        assert_eq!(
            check.record(1, &record(1, 0, &[])),
            Err(JournalViolation::Sequence {
                seq: 1,
                expected: 0
            })
        );
    }
}
