//! Group-commit throughput of `Log` against the floor the disk sets.
//!
//! For batches of 1, 16, 128 and 1024 records of 200 bytes, this measures
//! (a) `Log::append` × N + `Log::commit` in a loop on `FsStorage`, and
//! (b) the reference: one `pwrite` of the same payload bytes + `fdatasync` per batch into a
//!     pre-zeroed file on the same disk (wrapping around at its end): `writ_log::reference`,
//!     the loop `writ-compare --over http` measures too,
//!
//! each for about `WRIT_BENCH_SECS` seconds (default 2), 5 runs per variant, interleaved,
//! and prints the medians. Every log run starts from a fresh log directory (opened outside
//! the timed loop) with the default options: 64 MiB segments, prepared by the background
//! preallocator, so segment rolls and their zero fills are part of the measured cost.
//!
//! A third variant separates the commit path from the cost of preparing space: (c) the same
//! log loop in one 1 GiB segment zero-filled when the log is opened (outside the timed
//! loop), each run capped at 96 MiB of frames so that the five runs stay below the point
//! where the next segment is prepared. The reference loop never pays for zeroing its file;
//! (a) does, once per byte of log, which (c) leaves out.
//!
//! A fourth variant is the plain loop as most programs write it: (d) one `pwrite` at the end
//! of a new file + `fdatasync` per batch, the file growing as it goes. Like (a) it pays for
//! the space it writes into (block allocation and its journal commit on each sync), where
//! (a) pays with zero fills; (b) pays nothing for space and is the stricter reference.
//!
//! Directory: a fresh one in `WRIT_BENCH_DIR` (the disk to measure), or else under
//! `std::env::temp_dir()`; it is removed afterwards.
//!
//! Run with `cargo bench -p writ-log --bench append`.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use writ_log::format::encoded_record_len;
use writ_log::reference::PrezeroedFile;
use writ_log::storage::FsStorage;
use writ_log::{Log, LogOptions};

mod common;

const RECORD_BYTES: usize = 200;
const BATCH_SIZES: [usize; 4] = [1, 16, 128, 1024];
const RUNS: usize = 5;
/// Size of the reference loop's pre-zeroed file.
const PLAIN_FILE_BYTES: u64 = 256 << 20;

#[derive(Debug, Clone, Copy)]
struct Sample {
    batches: u64,
    elapsed: Duration,
}

impl Sample {
    fn batches_per_sec(&self) -> f64 {
        self.batches as f64 / self.elapsed.as_secs_f64()
    }
}

fn median(samples: &[Sample]) -> f64 {
    common::median(samples.iter().map(Sample::batches_per_sec))
}

/// Appends and commits batches for `budget` or until `max_bytes` of frames are written.
fn log_loop(
    log: &mut Log,
    batch: usize,
    record: &[u8],
    budget: Duration,
    max_bytes: u64,
) -> Sample {
    let frame = (32 + batch * encoded_record_len(record.len())) as u64;
    let start = Instant::now();
    let mut batches = 0u64;
    while start.elapsed() < budget && (batches + 1) * frame <= max_bytes {
        for _ in 0..batch {
            log.append(record).expect("append");
        }
        log.commit().expect("commit");
        batches += 1;
    }
    Sample {
        batches,
        elapsed: start.elapsed(),
    }
}

/// (a): a fresh log with the default options.
fn run_log(base: &Path, run: usize, batch: usize, record: &[u8], budget: Duration) -> Sample {
    let name = format!("log-{batch}-{run}");
    let storage = Arc::new(FsStorage::new(base));
    let (mut log, _) =
        Log::open(storage, Path::new(&name), LogOptions::default()).expect("open log");
    let sample = log_loop(&mut log, batch, record, budget, u64::MAX);
    drop(log);
    std::fs::remove_dir_all(base.join(&name)).expect("remove log dir");
    sample
}

const PREPARED_SEGMENT_BYTES: u64 = 1 << 30;
const PREPARED_RUN_BYTES: u64 = 96 << 20;

/// (c): a log whose one segment was zero-filled when it was opened.
fn open_prepared(base: &Path, batch: usize) -> Log {
    let storage = Arc::new(FsStorage::new(base));
    let options = LogOptions {
        segment_bytes: PREPARED_SEGMENT_BYTES,
        ..LogOptions::default()
    };
    let (log, _) = Log::open(storage, Path::new(&format!("prepared-{batch}")), options)
        .expect("open prepared log");
    log
}

fn run_plain(file: &mut PrezeroedFile, batch: usize, budget: Duration) -> Sample {
    let bytes = vec![0x5au8; batch * RECORD_BYTES];
    let run = file.sync_loop(&bytes, budget).expect("pwrite + fdatasync");
    Sample {
        batches: run.syncs,
        elapsed: run.elapsed,
    }
}

/// The plain loop appending to a new, growing file.
fn run_plain_append(path: &Path, batch: usize, budget: Duration) -> Sample {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .expect("create append file");
    let bytes = vec![0x5au8; batch * RECORD_BYTES];
    let start = Instant::now();
    let mut batches = 0u64;
    let mut offset = 0u64;
    while start.elapsed() < budget {
        file.write_all_at(&bytes, offset).expect("pwrite");
        file.sync_data().expect("fdatasync");
        offset += bytes.len() as u64;
        batches += 1;
    }
    let sample = Sample {
        batches,
        elapsed: start.elapsed(),
    };
    drop(file);
    std::fs::remove_file(path).expect("remove append file");
    sample
}

fn main() {
    let Some(budget) = common::budget("append") else {
        return;
    };
    let base = common::run_dir("append");
    println!(
        "writ-log append benchmark in {} ({} runs of {} s per variant, interleaved)",
        base.display(),
        RUNS,
        budget.as_secs_f64()
    );
    let mut plain = PrezeroedFile::create(&base.join("plain.dat"), PLAIN_FILE_BYTES)
        .expect("create reference file");
    let record: Vec<u8> = (0..RECORD_BYTES).map(|i| (i * 7 + 1) as u8).collect();

    println!();
    println!("MiB/s counts payload bytes. (a) log, default options; (b) plain pwrite+fdatasync");
    println!("into a pre-zeroed file; (c) log in a segment zero-filled before the timed loop");
    println!("(commit path alone); (d) plain pwrite+fdatasync appending to a new file.");
    println!(
        "{:>5} {:>8} {:>8} | {:>8} {:>9} {:>7} | {:>8} {:>9} {:>7} | {:>8} {:>7} | {:>8} {:>7} | {:>6} {:>6} {:>6}",
        "batch",
        "payload",
        "framed",
        "(a) b/s",
        "(a) rec/s",
        "(a)MiB",
        "(b) b/s",
        "(b) rec/s",
        "(b)MiB",
        "(c) b/s",
        "(c)MiB",
        "(d) b/s",
        "(d)MiB",
        "a/b",
        "c/b",
        "a/d"
    );
    for batch in BATCH_SIZES {
        let mut log_samples = Vec::new();
        let mut plain_samples = Vec::new();
        let mut prepared_samples = Vec::new();
        let mut append_samples = Vec::new();
        let mut prepared = open_prepared(&base, batch);
        for run in 0..RUNS {
            log_samples.push(run_log(&base, run, batch, &record, budget));
            plain_samples.push(run_plain(&mut plain, batch, budget));
            prepared_samples.push(log_loop(
                &mut prepared,
                batch,
                &record,
                budget,
                PREPARED_RUN_BYTES,
            ));
            append_samples.push(run_plain_append(&base.join("append.dat"), batch, budget));
        }
        drop(prepared);
        std::fs::remove_dir_all(base.join(format!("prepared-{batch}")))
            .expect("remove prepared log");
        let payload = batch * RECORD_BYTES;
        let framed = 32 + batch * encoded_record_len(RECORD_BYTES);
        let log_rate = median(&log_samples);
        let plain_rate = median(&plain_samples);
        let prepared_rate = median(&prepared_samples);
        let append_rate = median(&append_samples);
        let mib = |rate: f64| rate * payload as f64 / (1 << 20) as f64;
        println!(
            "{:>5} {:>8} {:>8} | {:>8.0} {:>9.0} {:>7.1} | {:>8.0} {:>9.0} {:>7.1} | {:>8.0} {:>7.1} | {:>8.0} {:>7.1} | {:>5.0}% {:>5.0}% {:>5.0}%",
            batch,
            payload,
            framed,
            log_rate,
            log_rate * batch as f64,
            mib(log_rate),
            plain_rate,
            plain_rate * batch as f64,
            mib(plain_rate),
            prepared_rate,
            mib(prepared_rate),
            append_rate,
            mib(append_rate),
            100.0 * log_rate / plain_rate,
            100.0 * prepared_rate / plain_rate,
            100.0 * log_rate / append_rate
        );
    }
    drop(plain);
    std::fs::remove_dir_all(&base).expect("remove bench dir");
}
