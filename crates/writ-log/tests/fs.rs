//! The log on real files: `FsStorage` in a fresh directory under `std::env::temp_dir()`,
//! removed afterwards.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use writ_log::storage::{FsStorage, Storage};
use writ_log::{Log, LogOptions, TailDamage};

/// A fresh directory, removed on drop (also when the test fails).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path =
            std::env::temp_dir().join(format!("writ-log-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn record(seq: u64) -> Vec<u8> {
    let len = (seq as usize * 37) % 1500;
    (0..len).map(|i| (seq as usize + i) as u8).collect()
}

#[test]
fn fs_storage_round_trip() {
    let tmp = TempDir::new("round-trip");
    let storage = Arc::new(FsStorage::new(&tmp.0));
    let options = LogOptions {
        segment_bytes: 64 << 10,
        record_bytes_max: 4096,
        preallocate: true,
        ..LogOptions::default()
    };
    let dir = Path::new("data/cmd");
    let (mut log, report) = Log::open(storage.clone(), dir, options.clone()).expect("open");
    assert_eq!(report.records, 0);
    let mut seq = 0u64;
    for batch in 0..200u64 {
        for _ in 0..1 + batch % 5 {
            assert_eq!(log.append(&record(seq)).unwrap(), seq);
            seq += 1;
        }
        assert_eq!(log.commit().unwrap(), seq);
    }
    let reader = log.reader();
    let mut buf = Vec::new();
    for s in (0..seq).step_by(7) {
        reader.read(s, &mut buf).unwrap();
        assert_eq!(buf, record(s));
    }
    drop(log);

    let names = storage.list(dir).unwrap();
    let segments = names.iter().filter(|n| n.ends_with(".wlog")).count();
    let indexes = names.iter().filter(|n| n.ends_with(".idx")).count();
    assert!(segments >= 4, "{names:?}");
    assert_eq!(indexes, segments - 1, "{names:?}");
    assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
    for name in names.iter().filter(|n| n.ends_with(".wlog")) {
        let len = std::fs::metadata(tmp.0.join(dir).join(name)).unwrap().len();
        assert_eq!(len, options.segment_bytes, "segments are preallocated");
    }

    let (mut log, report) = Log::open(storage.clone(), dir, options.clone()).expect("reopen");
    assert_eq!(report.records, seq);
    assert_eq!(report.scanned_segments, 1);
    assert_eq!(report.truncated, None);
    let mut iter = log.reader().iter_from(0);
    let mut expected = 0;
    while let Some(next) = iter.next_record() {
        let (s, bytes) = next.unwrap();
        assert_eq!((s, bytes), (expected, &record(expected)[..]));
        expected += 1;
    }
    assert_eq!(expected, seq);

    // A torn tail on a real file: garbage after the last frame is cut at the next open.
    let tail = log.reader().durable_seq();
    log.append(&record(tail)).unwrap();
    log.commit().unwrap();
    let active = tmp.0.join(log.active_segment());
    drop(log);
    // Garbage (a torn write) far after the last frame, in the preallocated zeros.
    let garbage = b"WFRM torn frame!";
    let garbage_at = options.segment_bytes - 64;
    {
        use std::os::unix::fs::FileExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&active)
            .unwrap();
        file.write_all_at(garbage, garbage_at).unwrap();
        file.sync_data().unwrap();
    }
    let (log, report) = Log::open(storage, dir, options).expect("reopen after tear");
    let truncated = report.truncated.expect("torn tail reported");
    assert!(truncated.offset < garbage_at);
    assert_eq!(
        truncated.offset + truncated.discarded_bytes,
        garbage_at + garbage.len() as u64
    );
    assert_eq!(truncated.damage, TailDamage::Torn);
    let bytes = std::fs::read(&active).unwrap();
    assert!(bytes[truncated.offset as usize..].iter().all(|&b| b == 0));
    assert_eq!(report.records, tail + 1);
    let mut buf = Vec::new();
    log.reader().read(tail, &mut buf).unwrap();
    assert_eq!(buf, record(tail));
}

/// A writer that outruns the preallocator's zero fill gets a spare that is zeroed only in
/// part (the rest a hole, see `prepare_file`). Whatever the timing, every record written
/// into such segments reads back, and after a reopen too.
#[test]
fn records_written_into_hurried_spares_survive_a_reopen() {
    let tmp = TempDir::new("hurried");
    let storage = Arc::new(FsStorage::new(&tmp.0));
    let options = LogOptions {
        segment_bytes: 4 << 20,
        record_bytes_max: 64 << 10,
        preallocate: true,
        ..LogOptions::default()
    };
    let dir = Path::new("data/evt");
    let big = |seq: u64| -> Vec<u8> { vec![(seq % 251) as u8 + 1; 60_000] };
    let (mut log, _) = Log::open(storage.clone(), dir, options.clone()).expect("open");
    let mut seq = 0u64;
    // About 40 segments' worth, in frames of ~1.2 MiB: rolls come every few commits,
    // usually while the next spare is still being filled.
    for _ in 0..130 {
        for _ in 0..20 {
            log.append(&big(seq)).unwrap();
            seq += 1;
        }
        log.commit().unwrap();
    }
    drop(log);
    let (log, report) = Log::open(storage, dir, options).expect("reopen");
    assert_eq!(report.records, seq);
    let reader = log.reader();
    let mut buf = Vec::new();
    for s in 0..seq {
        reader.read(s, &mut buf).unwrap();
        assert_eq!(buf, big(s), "record {s}");
    }
}

/// Zeros written past the page cache (aligned ranges) and through it (the unaligned rest)
/// read back as zeros, through the descriptor the log reads with, and leave the bytes
/// around them alone; so do zeros over bytes already in the page cache.
#[test]
fn zeros_written_directly_and_through_the_cache_read_back_as_zeros() {
    let tmp = TempDir::new("zeros");
    let storage = FsStorage::new(&tmp.0);
    let file = storage.create(Path::new("z.dat")).unwrap();
    let size = 3 * (1 << 20) + 12_345;
    file.write_at(&vec![0xAB; size], 0).unwrap();
    // Aligned start, a length that ends unaligned; an unaligned start; a whole chunk.
    let ranges: [(u64, usize); 3] = [
        (4096, (1 << 20) + 100),
        (2 * (1 << 20) + 7, 5000),
        (0, 4096),
    ];
    for (offset, len) in ranges {
        file.write_zeros_at(offset, len).unwrap();
    }
    file.sync_data().unwrap();
    let mut back = vec![0u8; size];
    let mut read = 0;
    while read < size {
        let n = file.read_at(&mut back[read..], read as u64).unwrap();
        assert!(n > 0, "short file");
        read += n;
    }
    let zeroed = |i: usize| {
        ranges
            .iter()
            .any(|&(offset, len)| (offset as usize..offset as usize + len).contains(&i))
    };
    for (i, byte) in back.iter().enumerate() {
        let expected = if zeroed(i) { 0 } else { 0xAB };
        assert_eq!(*byte, expected, "byte {i}");
    }
    // The same through a fresh descriptor (what a reopened log reads).
    let again = std::fs::read(tmp.0.join("z.dat")).unwrap();
    assert_eq!(again, back);
}

/// Zeros go to the file the handle was opened on, even after its name was renamed away and
/// taken by another file (the direct descriptor is opened through the handle, not the name).
#[test]
fn zeros_go_to_the_handles_file_after_its_name_is_reused() {
    let tmp = TempDir::new("zeros-rename");
    let storage = FsStorage::new(&tmp.0);
    let file = storage.create(Path::new("a.tmp")).unwrap();
    file.write_at(&vec![0xAB; 1 << 20], 0).unwrap();
    storage
        .rename(Path::new("a.tmp"), Path::new("a.done"))
        .unwrap();
    let other = storage.create(Path::new("a.tmp")).unwrap();
    other.write_at(&vec![0xCD; 1 << 20], 0).unwrap();
    file.write_zeros_at(0, 1 << 20).unwrap();
    file.sync_data().unwrap();
    other.sync_data().unwrap();
    assert!(
        std::fs::read(tmp.0.join("a.done"))
            .unwrap()
            .iter()
            .all(|&b| b == 0)
    );
    assert!(
        std::fs::read(tmp.0.join("a.tmp"))
            .unwrap()
            .iter()
            .all(|&b| b == 0xCD)
    );
}
