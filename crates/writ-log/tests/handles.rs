//! Open segment files: a log holds its live segment's file and at most
//! `LogOptions::open_segments_max` sealed segments' files, however many segments it has and
//! however its readers jump between them (`SimStorage` counts the handles alive).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use common::*;
use writ_log::storage::SimStorage;
use writ_log::{Log, LogOptions};

/// 8 KiB segments, no preallocated spare (its handle would be one more to count), and
/// `open_segments_max` sealed files.
fn bounded(open_segments_max: usize) -> LogOptions {
    LogOptions {
        open_segments_max,
        ..options(8 << 10, false)
    }
}

/// Commits one 400-byte record per batch until the log has at least `segments` segments;
/// returns the records' payloads.
fn fill(log: &mut Log, sim: &SimStorage, segments: usize) -> Vec<Vec<u8>> {
    let mut records = Vec::new();
    while segment_names(sim).len() < segments {
        records.extend(commit_batch(log, &[400]));
    }
    records
}

/// A deterministic scattered order of `0..n`, visiting every index `passes` times.
fn scattered(n: u64, passes: u64) -> impl Iterator<Item = u64> {
    // A multiplier coprime with n permutes 0..n; a prime larger than any n here is.
    (0..n * passes).map(move |i| (i * 7_919 + i / n * 13) % n)
}

#[test]
fn scattered_reads_hold_at_most_the_bound_of_sealed_files() {
    let bound = 4;
    let sim = SimStorage::new();
    let (mut log, _) = open(&sim, bounded(bound));
    let records = fill(&mut log, &sim, 40);
    let segments = segment_names(&sim).len();
    // The writer's handles of the segments it sealed went into the cache as well.
    assert!(
        sim.open_files() <= bound + 1,
        "{} files open after writing",
        sim.open_files()
    );
    assert!(log.open_segment_files() <= bound + 1);

    let reader = log.reader();
    let opened_before = sim.files_opened();
    let opens_before = reader.segment_opens();
    let mut buf = Vec::new();
    for seq in scattered(records.len() as u64, 3) {
        reader.read(seq, &mut buf).unwrap();
        assert!(buf == records[seq as usize], "record {seq} reads back");
        assert!(
            sim.open_files() <= bound + 1,
            "{} files open after reading record {seq}; the bound is {bound} sealed and the live one",
            sim.open_files()
        );
        assert_eq!(reader.open_segment_files(), sim.open_files());
    }
    let opens = reader.segment_opens() - opens_before;
    assert_eq!(
        opens,
        sim.files_opened() - opened_before,
        "every open is counted"
    );
    assert!(
        opens > segments as u64,
        "scattered reads over {segments} segments with {bound} open reopen files: {opens} opens"
    );
    assert_eq!(read_all(&reader), records);
}

#[test]
fn a_reopened_log_holds_only_its_live_segment_open_until_read() {
    let bound = 3;
    let sim = SimStorage::new();
    let (mut log, _) = open(&sim, bounded(bound));
    let records = fill(&mut log, &sim, 12);
    drop(log);
    assert_eq!(sim.open_files(), 0, "a dropped log closes every file");

    let (log, report) = open(&sim, bounded(bound));
    assert_eq!(report.records, records.len() as u64);
    assert_eq!(
        sim.open_files(),
        1,
        "recovery closes the sealed segments it read"
    );
    assert_eq!(log.open_segment_files(), 1);
    let mut buf = Vec::new();
    for seq in scattered(records.len() as u64, 2) {
        log.reader().read(seq, &mut buf).unwrap();
        assert!(buf == records[seq as usize], "record {seq} reads back");
        assert!(sim.open_files() <= bound + 1);
    }
    assert_eq!(log.open_segment_files(), bound + 1);
}

#[test]
fn reads_work_with_a_bound_of_one() {
    let sim = SimStorage::new();
    let (mut log, _) = open(&sim, bounded(1));
    let records = fill(&mut log, &sim, 6);
    let reader = log.reader();
    let last = records.len() as u64 - 1;
    let mut buf = Vec::new();
    // Back and forth between the first two segments and the live one: each jump between
    // sealed segments reopens one.
    let opens_before = reader.segment_opens();
    for _ in 0..5 {
        for seq in [0, 20, last] {
            reader.read(seq, &mut buf).unwrap();
            assert!(buf == records[seq as usize], "record {seq} reads back");
            assert!(sim.open_files() <= 2, "{} files open", sim.open_files());
        }
    }
    assert!(
        reader.segment_opens() - opens_before >= 10,
        "two sealed segments in turn with one place reopen each time"
    );
    for seq in scattered(records.len() as u64, 2) {
        reader.read(seq, &mut buf).unwrap();
        assert!(buf == records[seq as usize], "record {seq} reads back");
        assert!(sim.open_files() <= 2);
    }
    assert_eq!(read_all(&reader), records);
}

#[test]
fn a_sequential_scan_opens_each_sealed_segment_once_even_with_a_bound_of_one() {
    let sim = SimStorage::new();
    let (mut log, _) = open(&sim, bounded(1));
    let records = fill(&mut log, &sim, 10);
    drop(log);
    let (log, _) = open(&sim, bounded(1));
    let sealed = segment_names(&sim).len() as u64 - 1;
    let reader = log.reader();

    let mut iter = reader.iter_from(0);
    let mut seq = 0;
    while let Some(next) = iter.next_record() {
        let (at, bytes) = next.unwrap();
        assert_eq!(at, seq);
        assert!(bytes == records[seq as usize], "record {seq} reads back");
        assert!(sim.open_files() <= 2, "{} files open", sim.open_files());
        seq += 1;
    }
    assert_eq!(seq, records.len() as u64);
    assert_eq!(
        reader.segment_opens(),
        sealed,
        "the iterator holds the segment it is in"
    );

    // Point reads in order stay in one segment for many reads as well.
    let mut buf = Vec::new();
    for seq in 0..records.len() as u64 {
        reader.read(seq, &mut buf).unwrap();
        assert!(buf == records[seq as usize], "record {seq} reads back");
    }
    assert_eq!(reader.segment_opens(), 2 * sealed);
}

#[test]
fn reads_racing_evictions_from_several_threads_stay_correct() {
    let bound = 2;
    let threads = 4;
    let sim = SimStorage::new();
    let (mut log, _) = open(&sim, bounded(bound));
    let records = Arc::new(fill(&mut log, &sim, 30));
    let reader = log.reader();
    sim.reset_open_files_peak();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let reader = reader.clone();
            let records = Arc::clone(&records);
            thread::spawn(move || {
                let n = records.len() as u64;
                let mut buf = Vec::new();
                for (i, seq) in scattered(n, 4).enumerate() {
                    // Each thread starts at another place of the same order.
                    let seq = (seq + t * n / 4) % n;
                    if i % 97 == 0 {
                        // Now and then a short sequential read from here.
                        let mut iter = reader.iter_from(seq);
                        for expected in seq..(seq + 30).min(n) {
                            let (at, bytes) = iter.next_record().unwrap().unwrap();
                            assert_eq!(at, expected);
                            assert!(bytes == records[at as usize], "record {at} iterates back");
                        }
                    }
                    reader.read(seq, &mut buf).unwrap();
                    assert!(buf == records[seq as usize], "record {seq} reads back");
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    // Each thread may hold one file the cache closed while it read, and an open puts the
    // cache one over its bound until it closes the least recently used (under its lock).
    let peak = sim.open_files_peak();
    assert!(
        peak <= bound + 1 + 1 + threads as usize,
        "at most {} files open at once, {peak} seen",
        bound + 2 + threads as usize
    );
    assert!(sim.open_files() <= bound + 1);
    assert_eq!(reader.open_segment_files(), sim.open_files());
}

#[test]
fn reads_racing_the_writer_rolls_and_evictions_stay_correct() {
    let bound = 2;
    let sim = SimStorage::new();
    let (mut log, _) = open(&sim, bounded(bound));
    let mut records = fill(&mut log, &sim, 10);
    let reader = log.reader();
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3u64)
        .map(|t| {
            let reader = reader.clone();
            let done = Arc::clone(&done);
            thread::spawn(move || {
                let mut buf = Vec::new();
                let mut reads = 0u64;
                let mut i = t;
                while !done.load(Ordering::Relaxed) || reads < 1_000 {
                    let durable = reader.durable_seq();
                    let seq = (i * 7_919) % durable;
                    reader.read(seq, &mut buf).unwrap();
                    // The same content `commit_batch` wrote for this record.
                    assert!(buf == payload(seq, 400), "record {seq} reads back");
                    reads += 1;
                    i += 1;
                }
            })
        })
        .collect();
    // The writer goes on through ten more segments meanwhile, each roll handing the sealed
    // segment's file to the cache.
    let segments = segment_names(&sim).len();
    while segment_names(&sim).len() < segments + 10 {
        records.extend(commit_batch(&mut log, &[400]));
    }
    done.store(true, Ordering::Relaxed);
    for handle in readers {
        handle.join().unwrap();
    }
    assert!(sim.open_files() <= bound + 1);
    assert_eq!(read_all(&reader), records);
}

#[test]
fn open_segments_max_of_zero_is_refused() {
    let sim = SimStorage::new();
    let err = try_open(&sim, bounded(0)).unwrap_err();
    assert!(
        err.to_string().contains("open_segments_max"),
        "the error names the option: {err}"
    );
}

#[test]
fn the_least_recently_read_sealed_file_is_the_one_closed() {
    let sim = SimStorage::new();
    let (mut log, _) = open(&sim, bounded(2));
    let records = fill(&mut log, &sim, 5);
    drop(log);
    let (log, _) = open(&sim, bounded(2));
    let reader = log.reader();
    let per_segment = ((8 << 10) - first_frame()) / frame_len(&[400]);
    let [a, b, c] = [0, 1, 2].map(|segment| segment * per_segment + 1);
    assert!(
        c < records.len() as u64 - per_segment,
        "{a}, {b}, {c} are sealed"
    );
    let mut buf = Vec::new();
    let mut read = |seq: u64| {
        let before = reader.segment_opens();
        reader.read(seq, &mut buf).unwrap();
        assert!(buf == records[seq as usize], "record {seq} reads back");
        reader.segment_opens() - before
    };
    assert_eq!(read(a), 1);
    assert_eq!(read(b), 1);
    assert_eq!(read(a), 0, "a is open");
    // Opening c closes b: a was read after b was opened.
    assert_eq!(read(c), 1);
    assert_eq!(read(a), 0, "a stayed open");
    assert_eq!(read(b), 1, "b was closed");
}
