//! Property test against a reference model: random appends (including empty records),
//! commits, failed commits, crashes (optionally keeping part of the unsynced bytes, a torn
//! write) and reopens on small segments, so that rolls happen. After every reopen every
//! acknowledged record is there, byte for byte, the sequence has no gap, and nothing that
//! was never appended appears. A batch whose commit failed may be there whole or not at
//! all.

mod common;

use std::path::PathBuf;

use common::{dir, open, payload, read_all};
use proptest::prelude::*;
use writ_log::storage::SimStorage;
use writ_log::{AppendError, CommitError, Log, LogOptions};

#[derive(Debug, Clone)]
enum Op {
    Append(usize),
    Commit,
    /// A commit whose sync fails after persisting this many dirty pages.
    FailedSync(usize),
    /// A commit whose write fails.
    FailedWrite,
    /// A power cut; with `Some((start, len))` (per mille of the unsynced span of the active
    /// segment) those unsynced bytes reach the disk too.
    Crash(Option<(u16, u16)>),
    /// Drop and open again without a power cut.
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => prop_oneof![Just(0usize), 0usize..64, 0usize..2048].prop_map(Op::Append),
        5 => Just(Op::Commit),
        1 => (0usize..4).prop_map(Op::FailedSync),
        1 => Just(Op::FailedWrite),
        2 => proptest::option::of((0u16..1000, 0u16..=1000)).prop_map(Op::Crash),
        1 => Just(Op::Reopen),
    ]
}

struct Harness {
    sim: SimStorage,
    options: LogOptions,
    log: Option<Log>,
    /// Acknowledged (or recovered) records: the log must hold exactly these.
    acked: Vec<Vec<u8>>,
    /// Appended, not committed.
    pending: Vec<Vec<u8>>,
    /// The batch of a failed commit: there whole or not at all.
    in_doubt: Option<Vec<Vec<u8>>>,
    /// Makes every appended payload unique, so a misplaced record is caught.
    counter: u64,
}

impl Harness {
    fn log(&mut self) -> &mut Log {
        self.log.as_mut().expect("open")
    }

    fn append(&mut self, len: usize) -> Result<(), TestCaseError> {
        self.counter += 1;
        let record = payload(self.counter * 7919, len);
        if self.log().is_poisoned() {
            prop_assert!(matches!(
                self.log().append(&record),
                Err(AppendError::Poisoned)
            ));
            return Ok(());
        }
        let expected = (self.acked.len() + self.pending.len()) as u64;
        match self.log().append(&record) {
            Ok(seq) => prop_assert_eq!(seq, expected),
            Err(AppendError::BatchFull { .. }) => {
                self.commit()?;
                let seq = self.log().append(&record).expect("fits in an empty batch");
                prop_assert_eq!(seq, self.acked.len() as u64);
            }
            Err(e) => return Err(TestCaseError::fail(format!("append: {e}"))),
        }
        self.pending.push(record);
        Ok(())
    }

    fn commit(&mut self) -> Result<(), TestCaseError> {
        if self.log().is_poisoned() {
            prop_assert!(matches!(self.log().commit(), Err(CommitError::Poisoned)));
            return Ok(());
        }
        let durable = self
            .log()
            .commit()
            .map_err(|e| TestCaseError::fail(format!("commit: {e}")))?;
        self.acked.append(&mut self.pending);
        prop_assert_eq!(durable, self.acked.len() as u64);
        Ok(())
    }

    fn failed_commit(&mut self, arm: impl FnOnce(&SimStorage)) -> Result<(), TestCaseError> {
        // With the preallocator thread the fault could hit its I/O instead; only inject
        // faults without it. And a poisoned log or an empty batch does no I/O.
        if self.options.preallocate || self.log().is_poisoned() || self.pending.is_empty() {
            return self.commit();
        }
        arm(&self.sim);
        let result = self.log().commit();
        self.sim.clear_faults();
        prop_assert!(
            matches!(result, Err(CommitError::Io { .. })),
            "{:?}",
            result
        );
        prop_assert!(self.log().is_poisoned());
        self.in_doubt = Some(std::mem::take(&mut self.pending));
        Ok(())
    }

    fn crash(&mut self, torn: Option<(u16, u16)>) -> Result<(), TestCaseError> {
        let active: PathBuf = self.log().active_segment().to_path_buf();
        let crashed = match torn {
            Some((start, len)) if self.in_doubt.is_some() => {
                let unsynced = self.sim.unsynced_ranges(&active).unwrap_or_default();
                match (unsynced.first(), unsynced.last()) {
                    (Some(first), Some(last)) => {
                        let span = last.end - first.start;
                        let from = first.start + span * u64::from(start) / 1000;
                        let to = from + (last.end - from) * u64::from(len) / 1000;
                        self.sim
                            .crash_keeping(&active, from..to)
                            .map_err(|e| TestCaseError::fail(e.to_string()))?
                    }
                    _ => self.sim.crash(),
                }
            }
            _ => self.sim.crash(),
        };
        self.log = None;
        self.sim = crashed;
        self.reopen()
    }

    fn reopen(&mut self) -> Result<(), TestCaseError> {
        self.log = None;
        let (log, report) = open(&self.sim, self.options.clone());
        let got = read_all(&log.reader());
        self.pending.clear();
        match self.in_doubt.take() {
            None => prop_assert_eq!(&got, &self.acked),
            Some(batch) => {
                let with: Vec<Vec<u8>> = self.acked.iter().chain(&batch).cloned().collect();
                prop_assert!(
                    got == self.acked || got == with,
                    "after a failed commit of {} records: recovered {} records, acknowledged {}",
                    batch.len(),
                    got.len(),
                    self.acked.len()
                );
                self.acked = got;
            }
        }
        prop_assert_eq!(report.records, self.acked.len() as u64);
        prop_assert_eq!(log.next_seq(), self.acked.len() as u64);
        prop_assert!(!log.is_poisoned());
        self.log = Some(log);
        Ok(())
    }
}

fn run(ops: Vec<Op>, segment_bytes: u64, preallocate: bool) -> Result<(), TestCaseError> {
    let options = LogOptions {
        segment_bytes,
        record_bytes_max: 2048,
        preallocate,
        ..LogOptions::default()
    };
    let sim = SimStorage::new();
    let (log, _) = open(&sim, options.clone());
    let mut h = Harness {
        sim,
        options,
        log: Some(log),
        acked: Vec::new(),
        pending: Vec::new(),
        in_doubt: None,
        counter: 0,
    };
    for op in ops {
        match op {
            Op::Append(len) => h.append(len)?,
            Op::Commit => h.commit()?,
            Op::FailedSync(pages) => h.failed_commit(|s| s.fail_next_sync_persisting(pages))?,
            Op::FailedWrite => h.failed_commit(SimStorage::fail_next_write)?,
            Op::Crash(torn) => h.crash(torn)?,
            Op::Reopen => h.reopen()?,
        }
    }
    h.crash(None)?;
    // No temporary file outlives an open log's drop.
    h.log = None;
    prop_assert!(h.sim.file_names(dir()).iter().all(|n| !n.ends_with(".tmp")));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 128,
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn acknowledged_records_survive_crashes_and_reopens(
        ops in proptest::collection::vec(op(), 1..150),
        segment_kib in 8u64..=16,
        preallocate in any::<bool>(),
    ) {
        run(ops, segment_kib << 10, preallocate)?;
    }
}
