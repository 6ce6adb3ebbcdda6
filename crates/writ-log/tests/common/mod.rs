//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use writ_log::format::{FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES, encoded_record_len};
use writ_log::storage::SimStorage;
use writ_log::{Log, LogOptions, LogReader, OpenError, OpenReport};

/// The log directory used by the tests.
pub fn dir() -> &'static Path {
    Path::new("log")
}

/// Small segments so that tests roll often; inline segment creation unless asked.
pub fn options(segment_bytes: u64, preallocate: bool) -> LogOptions {
    LogOptions {
        segment_bytes,
        record_bytes_max: 2048,
        preallocate,
        ..LogOptions::default()
    }
}

pub fn try_open(sim: &SimStorage, options: LogOptions) -> Result<(Log, OpenReport), OpenError> {
    Log::open(Arc::new(sim.clone()), dir(), options)
}

pub fn open(sim: &SimStorage, options: LogOptions) -> (Log, OpenReport) {
    try_open(sim, options).expect("open")
}

/// Deterministic, mostly non-zero content for record `seq`.
pub fn payload(seq: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seq.wrapping_mul(131).wrapping_add(i as u64 * 7) % 251) as u8 + 1)
        .collect()
}

/// Appends records of the given sizes and commits them as one batch.
pub fn commit_batch(log: &mut Log, sizes: &[usize]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for &len in sizes {
        let seq = log.next_seq();
        let p = payload(seq, len);
        assert_eq!(log.append(&p).expect("append"), seq);
        out.push(p);
    }
    log.commit().expect("commit");
    out
}

/// Every durable record, through the iterator, checked against point reads.
pub fn read_all(reader: &LogReader) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut iter = reader.iter_from(0);
    while let Some(next) = iter.next_record() {
        let (seq, bytes) = next.expect("iterate");
        assert_eq!(seq, out.len() as u64, "gap-free sequence");
        out.push(bytes.to_vec());
    }
    let mut buf = Vec::new();
    for (seq, expected) in out.iter().enumerate() {
        reader.read(seq as u64, &mut buf).expect("read");
        assert_eq!(&buf, expected, "point read of {seq}");
    }
    out
}

/// Bytes a frame holding records of these sizes takes.
pub fn frame_len(sizes: &[usize]) -> u64 {
    (FRAME_HEADER_BYTES + sizes.iter().map(|&l| encoded_record_len(l)).sum::<usize>()) as u64
}

/// Offset of the first frame in a segment.
pub fn first_frame() -> u64 {
    SEGMENT_HEADER_BYTES as u64
}

pub fn segment_path(first_seq: u64) -> PathBuf {
    dir().join(format!("{first_seq:020}.wlog"))
}

/// Segment file names in the log directory, sorted.
pub fn segment_names(sim: &SimStorage) -> Vec<String> {
    sim.file_names(dir())
        .into_iter()
        .filter(|n| n.ends_with(".wlog"))
        .collect()
}
