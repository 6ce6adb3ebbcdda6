//! Crash consistency on `SimStorage`: what a power cut, a torn write, bit rot or a failed
//! I/O call leaves, and what opening the log again makes of it.

mod common;

use std::io;
use std::path::Path;

use common::*;
use writ_log::format::{SEGMENT_HEADER_BYTES, encoded_record_len};
use writ_log::storage::{SimOp, SimStorage, Storage};
use writ_log::{AppendError, CommitError, OpenError, ReadError, TailDamage};

/// The offset of the last non-zero byte of `path` at or after `from`, as a crash now leaves
/// it.
fn last_nonzero_durable(sim: &SimStorage, path: &Path, from: u64) -> Option<u64> {
    let bytes = sim.read_durable(path).unwrap();
    bytes[from as usize..]
        .iter()
        .rposition(|&b| b != 0)
        .map(|i| from + i as u64)
}

fn flip_byte(sim: &SimStorage, path: &Path, offset: u64) {
    let bytes = sim.read_written(path).unwrap();
    sim.corrupt(path, offset, &[bytes[offset as usize] ^ 0x5a])
        .unwrap();
}

#[test]
fn crash_after_append_before_commit_loses_only_unacknowledged() {
    let sim = SimStorage::new();
    let (mut log, _) = open(&sim, options(16 << 10, false));
    let mut acked = commit_batch(&mut log, &[10, 0, 300]);
    acked.extend(commit_batch(&mut log, &[5]));
    for i in 0..4 {
        log.append(&payload(100 + i, 50)).unwrap();
    }
    assert_eq!(log.pending_records(), 4);
    assert_eq!(log.durable_seq(), 4);
    let crashed = sim.crash();
    drop(log);

    let (mut log, report) = open(&crashed, options(16 << 10, false));
    assert_eq!(report.records, 4);
    assert_eq!(report.truncated, None);
    assert_eq!(read_all(&log.reader()), acked);
    assert_eq!(log.next_seq(), 4);
    assert_eq!(log.append(b"next").unwrap(), 4);
}

#[test]
fn crash_after_commit_keeps_every_acknowledged_record() {
    for preallocate in [false, true] {
        let sim = SimStorage::new();
        let (mut log, _) = open(&sim, options(8 << 10, preallocate));
        let mut acked = Vec::new();
        for batch in 0..60usize {
            let sizes: Vec<usize> = (0..1 + batch % 4)
                .map(|i| (batch * 37 + i * 101) % 900)
                .collect();
            acked.extend(commit_batch(&mut log, &sizes));
            if batch % 7 == 3 || batch == 59 {
                // A power cut right after the commit returned.
                let crashed = sim.crash();
                let (recovered, report) = open(&crashed, options(8 << 10, preallocate));
                assert_eq!(report.records, acked.len() as u64, "batch {batch}");
                assert_eq!(report.truncated, None);
                assert_eq!(read_all(&recovered.reader()), acked, "batch {batch}");
                // Leftovers of the crashed process were removed at open, and the spare
                // the new preallocator may have made is removed when the log is dropped.
                drop(recovered);
                assert!(
                    crashed
                        .file_names(dir())
                        .iter()
                        .all(|n| !n.ends_with(".tmp")),
                    "temporary files left: {:?}",
                    crashed.file_names(dir())
                );
            }
        }
        assert!(
            segment_names(&sim).len() >= 4,
            "the test must roll segments"
        );
    }
}

#[test]
fn torn_write_mid_batch_is_truncated_and_reported() {
    let sizes_b = [1500usize; 6];
    // How much of batch B's frame reached the disk: part of the header, the header and
    // some records, all but the last bytes.
    let fb = frame_len(&sizes_b);
    for kept in [16u64, 5000, fb - 100] {
        let sim = SimStorage::new();
        let (mut log, _) = open(&sim, options(64 << 10, false));
        let a = commit_batch(&mut log, &[100, 200]);
        let seg = log.active_segment().to_path_buf();
        let b_offset = first_frame() + frame_len(&[100, 200]);
        for (i, &len) in sizes_b.iter().enumerate() {
            log.append(&payload(2 + i as u64, len)).unwrap();
        }
        sim.fail_next_sync();
        assert!(matches!(log.commit(), Err(CommitError::Io { .. })));
        assert!(log.is_poisoned());
        let unsynced = sim.unsynced_ranges(&seg).unwrap();
        assert_eq!(unsynced.first().map(|r| r.start), Some(b_offset));

        let crashed = sim.crash_keeping(&seg, b_offset..b_offset + kept).unwrap();
        drop(log);
        let last = last_nonzero_durable(&crashed, &seg, b_offset).expect("torn bytes kept");
        let (mut log, report) = open(&crashed, options(64 << 10, false));
        assert_eq!(report.records, 2, "kept {kept}");
        let truncated = report.truncated.expect("the torn tail is reported");
        assert_eq!(truncated.path, seg);
        assert_eq!(truncated.offset, b_offset);
        assert_eq!(truncated.damage, TailDamage::Torn, "kept {kept}");
        assert_eq!(truncated.discarded_bytes, last + 1 - b_offset);
        let durable = crashed.read_durable(&seg).unwrap();
        assert!(
            durable[b_offset as usize..].iter().all(|&b| b == 0),
            "the torn bytes are zeroed on disk"
        );
        assert_eq!(read_all(&log.reader()), a);

        // The log goes on where it was cut, and the next open finds it clean.
        let c = commit_batch(&mut log, &[42]);
        drop(log);
        let (log, report) = open(&crashed.crash(), options(64 << 10, false));
        assert_eq!(report.truncated, None);
        assert_eq!(read_all(&log.reader()), [a, c].concat());
    }
}

#[test]
fn torn_write_keeping_the_whole_frame_recovers_the_batch() {
    // The frame reached the disk whole although the sync failed: the batch was not
    // acknowledged, and recovery may keep it because it is complete and valid.
    let sim = SimStorage::new();
    let (mut log, _) = open(&sim, options(64 << 10, false));
    let a = commit_batch(&mut log, &[100]);
    let seg = log.active_segment().to_path_buf();
    let b: Vec<Vec<u8>> = (1..4).map(|s| payload(s, 700)).collect();
    for p in &b {
        log.append(p).unwrap();
    }
    sim.fail_next_sync();
    assert!(log.commit().is_err());
    let range = sim.unsynced_ranges(&seg).unwrap();
    let whole = range.first().unwrap().start..range.last().unwrap().end;
    let crashed = sim.crash_keeping(&seg, whole).unwrap();
    drop(log);
    let (log, report) = open(&crashed, options(64 << 10, false));
    assert_eq!(report.truncated, None);
    assert_eq!(read_all(&log.reader()), [a, b].concat());
}

#[test]
fn corrupt_tail_is_truncated_and_reported() {
    let sim = SimStorage::new();
    let (mut log, _) = open(&sim, options(64 << 10, false));
    let a = commit_batch(&mut log, &[100, 200]);
    commit_batch(&mut log, &[300, 50]);
    let seg = log.active_segment().to_path_buf();
    drop(log);
    let b_offset = first_frame() + frame_len(&[100, 200]);
    // Bit rot in the payload of B's second record.
    let target = b_offset + 32 + encoded_record_len(300) as u64 + 8 + 10;
    flip_byte(&sim, &seg, target);
    let last = last_nonzero_durable(&sim, &seg, b_offset).unwrap();

    let (log, report) = open(&sim, options(64 << 10, false));
    assert_eq!(report.records, 2);
    let truncated = report.truncated.expect("reported");
    assert_eq!(truncated.path, seg);
    assert_eq!(truncated.offset, b_offset);
    assert_eq!(truncated.damage, TailDamage::ChecksumMismatch);
    assert_eq!(truncated.discarded_bytes, last + 1 - b_offset);
    assert!(
        sim.read_durable(&seg).unwrap()[b_offset as usize..]
            .iter()
            .all(|&b| b == 0)
    );
    assert_eq!(read_all(&log.reader()), a);
}

#[test]
fn corrupt_middle_refuses_to_open() {
    // Damage to B's body, to B's header, and a zeroed B header: C after it proves B was
    // acknowledged, so truncating would lose acknowledged records.
    let b_offset = first_frame() + frame_len(&[100, 200]);
    let damages: [(&str, u64, &[u8]); 3] = [
        ("body", b_offset + 32 + 8 + 5, &[]),
        ("header", b_offset + 10, &[]),
        ("zeroed header", b_offset, &[0u8; 32]),
    ];
    for (what, at, bytes) in damages {
        let sim = SimStorage::new();
        let (mut log, _) = open(&sim, options(64 << 10, false));
        commit_batch(&mut log, &[100, 200]);
        commit_batch(&mut log, &[300, 50]);
        commit_batch(&mut log, &[10]);
        let seg = log.active_segment().to_path_buf();
        drop(log);
        if bytes.is_empty() {
            flip_byte(&sim, &seg, at);
        } else {
            sim.corrupt(&seg, at, bytes).unwrap();
        }
        let before = sim.read_durable(&seg).unwrap();

        let err = try_open(&sim, options(64 << 10, false)).expect_err(what);
        let message = err.to_string();
        match err {
            OpenError::Corrupt {
                path, offset, seq, ..
            } => {
                assert_eq!(path, seg, "{what}");
                assert_eq!(offset, b_offset, "{what}");
                assert_eq!(seq, 2, "{what}");
            }
            other => panic!("{what}: expected Corrupt, got {other:?}"),
        }
        assert!(message.contains("00000000000000000000.wlog"), "{message}");
        assert!(message.contains(&format!("byte {b_offset}")), "{message}");
        assert!(message.contains("Restore"), "{message}");
        assert_eq!(
            sim.read_durable(&seg).unwrap(),
            before,
            "a refused open changes nothing"
        );
    }
}

#[test]
fn damage_in_a_sealed_segment_is_found_by_reads_and_refused_when_scanned() {
    let sim = SimStorage::new();
    let (mut log, _) = open(&sim, options(8 << 10, false));
    let mut acked = Vec::new();
    for _ in 0..20 {
        acked.extend(commit_batch(&mut log, &[700]));
    }
    drop(log);
    let first = segment_path(0);
    // Record 1 of segment 0: its payload.
    let at = first_frame() + frame_len(&[700]) + 32 + 8 + 3;
    flip_byte(&sim, &first, at);

    // The sidecar index is trusted at open; the record CRC catches the damage on read.
    let (log, report) = open(&sim, options(8 << 10, false));
    assert_eq!(report.scanned_segments, 1);
    let mut buf = Vec::new();
    match log.reader().read(1, &mut buf) {
        Err(ReadError::Corrupt {
            seq, path, offset, ..
        }) => {
            assert_eq!((seq, path), (1, first.clone()));
            assert_eq!(offset, first_frame() + frame_len(&[700]) + 32);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    log.reader().read(0, &mut buf).unwrap();
    assert_eq!(buf, acked[0]);
    let mut iter = log.reader().iter_from(0);
    assert!(iter.next_record().unwrap().is_ok());
    assert!(matches!(
        iter.next_record(),
        Some(Err(ReadError::Corrupt { seq: 1, .. }))
    ));
    assert!(
        iter.next_record().is_none(),
        "an iterator stops after an error"
    );
    drop(log);

    // Without the sidecar the segment is scanned and the damage refused.
    sim.remove(&dir().join("00000000000000000000.idx")).unwrap();
    match try_open(&sim, options(8 << 10, false)) {
        Err(OpenError::Corrupt { path, offset, .. }) => {
            assert_eq!(path, first);
            assert_eq!(offset, first_frame() + frame_len(&[700]));
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn crash_during_segment_roll_recovers() {
    // 8 KiB segments and 1000-byte records: frames of 1040 bytes, 7 fit, the 8th rolls.
    // Each case fails one step of the roll (or of the first write into the new segment).
    let cases = [
        (SimOp::Remove, 0),
        (SimOp::Create, 0),
        (SimOp::SetLen, 0),
        (SimOp::Sync, 0),   // the new file's sync
        (SimOp::Write, 0),  // its header
        (SimOp::Sync, 1),   // the header's sync
        (SimOp::Rename, 0), // its name
        (SimOp::SyncDir, 0),
        (SimOp::Write, 1), // the first frame in the new segment
        (SimOp::Sync, 2),  // its sync
    ];
    for (op, skip) in cases {
        let case = format!("{op:?} after {skip}");
        let sim = SimStorage::new();
        let (mut log, _) = open(&sim, options(8 << 10, false));
        let mut acked = Vec::new();
        for _ in 0..7 {
            acked.extend(commit_batch(&mut log, &[1000]));
        }
        assert_eq!(segment_names(&sim).len(), 1, "{case}");
        sim.fail_nth(op, skip);
        log.append(&payload(7, 1000)).unwrap();
        assert!(
            matches!(log.commit(), Err(CommitError::Io { .. })),
            "{case}"
        );
        assert!(log.is_poisoned(), "{case}");
        let crashed = sim.crash();
        drop(log);

        let (mut log, report) = open(&crashed, options(8 << 10, false));
        assert_eq!(report.records, 7, "{case}");
        assert_eq!(report.truncated, None, "{case}");
        assert_eq!(read_all(&log.reader()), acked, "{case}");
        assert!(
            crashed
                .file_names(dir())
                .iter()
                .all(|n| !n.ends_with(".tmp")),
            "{case}: leftovers removed"
        );
        // The log rolls again and keeps everything.
        for _ in 0..10 {
            acked.extend(commit_batch(&mut log, &[1000]));
        }
        drop(log);
        let (log, report) = open(&crashed.crash(), options(8 << 10, false));
        assert_eq!(report.truncated, None, "{case}");
        assert_eq!(read_all(&log.reader()), acked, "{case}");
        assert!(segment_names(&crashed).len() >= 2, "{case}");
    }
}

#[test]
fn empty_trailing_segment_is_reused() {
    let sim = SimStorage::new();
    let (mut log, _) = open(&sim, options(8 << 10, false));
    let mut acked = Vec::new();
    for _ in 0..7 {
        acked.extend(commit_batch(&mut log, &[1000]));
    }
    // The roll completes; the first frame's sync in the new segment fails.
    sim.fail_nth(SimOp::Sync, 2);
    log.append(&payload(7, 1000)).unwrap();
    assert!(log.commit().is_err());
    let crashed = sim.crash();
    drop(log);
    assert_eq!(segment_names(&crashed).len(), 2);
    let (mut log, report) = open(&crashed, options(8 << 10, false));
    assert_eq!((report.records, report.segments), (7, 2));
    assert_eq!(log.active_segment(), segment_path(7));
    acked.extend(commit_batch(&mut log, &[1000]));
    assert_eq!(read_all(&log.reader()), acked);
}

#[test]
fn failed_sync_poisons_and_recovers_on_reopen() {
    let sim = SimStorage::new();
    let (mut log, _) = open(&sim, options(64 << 10, false));
    // A fills most of the first 4 KiB page, so that B's first page holds nothing that a
    // later sync would persist by the way.
    let a = commit_batch(&mut log, &[2000, 2000]);
    let b: Vec<Vec<u8>> = (2..5).map(|s| payload(s, 1800)).collect();
    for p in &b {
        log.append(p).unwrap();
    }
    sim.fail_next_sync();
    assert!(matches!(log.commit(), Err(CommitError::Io { .. })));
    assert!(log.is_poisoned());
    assert!(matches!(log.append(b"x"), Err(AppendError::Poisoned)));
    assert!(matches!(log.commit(), Err(CommitError::Poisoned)));
    let reader = log.reader();
    assert_eq!(reader.durable_seq(), 2);
    assert!(matches!(
        reader.read(2, &mut Vec::new()),
        Err(ReadError::OutOfRange { seq: 2, durable: 2 })
    ));

    // A power cut now: B never reached the disk.
    let (lost, report) = open(&sim.crash(), options(64 << 10, false));
    assert_eq!(report.records, 2);
    assert_eq!(read_all(&lost.reader()), a);
    drop(lost);
    drop(log);

    // Reopened without a power cut, the page cache still shows B whole, so recovery keeps
    // it. The failed fsync marked B's pages clean without writing them: recovery writes the
    // last frame again so that it really is durable, or a later crash would lose B under
    // C and refuse to open.
    let (mut log, report) = open(&sim, options(64 << 10, false));
    assert_eq!(report.records, 5);
    let c = commit_batch(&mut log, &[50]);
    drop(log);
    let (log, report) = open(&sim.crash(), options(64 << 10, false));
    assert_eq!(report.truncated, None);
    assert_eq!(read_all(&log.reader()), [a, b, c].concat());
}

#[test]
fn failed_sync_persisting_part_of_the_batch_is_all_or_nothing() {
    for pages in [0usize, 1, 2, usize::MAX] {
        let sim = SimStorage::new();
        let (mut log, _) = open(&sim, options(64 << 10, false));
        let a = commit_batch(&mut log, &[100]);
        let b: Vec<Vec<u8>> = (1..6).map(|s| payload(s, 1800)).collect();
        for p in &b {
            log.append(p).unwrap();
        }
        sim.fail_next_sync_persisting(pages);
        assert!(log.commit().is_err());
        let crashed = sim.crash();
        drop(log);
        let (log, report) = open(&crashed, options(64 << 10, false));
        let got = read_all(&log.reader());
        if pages == usize::MAX {
            assert_eq!(got, [a.clone(), b.clone()].concat());
        } else {
            assert_eq!(got, a, "persisted {pages} pages");
            if pages > 0 {
                assert!(report.truncated.is_some());
            }
        }
    }
}

#[test]
fn failed_write_poisons() {
    let sim = SimStorage::new();
    let (mut log, _) = open(&sim, options(64 << 10, false));
    let a = commit_batch(&mut log, &[100, 7]);
    log.append(&payload(2, 10)).unwrap();
    sim.fail_next_write();
    match log.commit() {
        Err(CommitError::Io { path, .. }) => assert_eq!(path, segment_path(0)),
        other => panic!("expected Io, got {other:?}"),
    }
    assert!(log.is_poisoned());
    assert!(matches!(log.append(b"x"), Err(AppendError::Poisoned)));
    assert!(matches!(log.commit(), Err(CommitError::Poisoned)));
    assert_eq!(log.durable_seq(), 2);
    assert_eq!(read_all(&log.reader()), a);
    drop(log);
    let (log, report) = open(&sim.crash(), options(64 << 10, false));
    assert_eq!(report.records, 2);
    assert_eq!(read_all(&log.reader()), a);
}

#[test]
fn disk_full_poisons() {
    let sim = SimStorage::new();
    let (mut log, _) = open(&sim, options(8 << 10, false));
    // Room for the first segment only: writes into it succeed (it is preallocated), the
    // roll cannot get a second one.
    sim.set_capacity(8 << 10);
    let mut acked = Vec::new();
    for _ in 0..7 {
        acked.extend(commit_batch(&mut log, &[1000]));
    }
    log.append(&payload(7, 1000)).unwrap();
    match log.commit() {
        Err(CommitError::Io { source, .. }) => {
            assert_eq!(source.kind(), io::ErrorKind::StorageFull)
        }
        other => panic!("expected ENOSPC, got {other:?}"),
    }
    assert!(log.is_poisoned());
    assert!(matches!(log.append(b"x"), Err(AppendError::Poisoned)));
    drop(log);

    let crashed = sim.crash();
    let (mut log, report) = open(&crashed, options(8 << 10, false));
    assert_eq!(report.records, 7);
    assert_eq!(read_all(&log.reader()), acked);
    // Space freed: the log goes on.
    crashed.set_capacity(u64::MAX);
    acked.extend(commit_batch(&mut log, &[1000]));
    assert_eq!(read_all(&log.reader()), acked);
}

#[test]
fn short_write_is_completed() {
    let sim = SimStorage::new();
    let (mut log, _) = open(&sim, options(64 << 10, false));
    let mut acked = commit_batch(&mut log, &[10]);
    sim.short_write_next(7);
    acked.extend(commit_batch(&mut log, &[500, 600]));
    assert!(!log.is_poisoned());
    assert_eq!(read_all(&log.reader()), acked);

    // A write that makes no progress at all is an error.
    log.append(b"zero").unwrap();
    sim.short_write_next(0);
    match log.commit() {
        Err(CommitError::Io { source, .. }) => {
            assert_eq!(source.kind(), io::ErrorKind::WriteZero)
        }
        other => panic!("expected WriteZero, got {other:?}"),
    }
    assert!(log.is_poisoned());
    drop(log);
    let (log, _) = open(&sim.crash(), options(64 << 10, false));
    assert_eq!(read_all(&log.reader()), acked);
}

#[test]
fn reopen_continues_sequence() {
    let sim = SimStorage::new();
    let mut acked = Vec::new();
    for round in 0..6 {
        let (mut log, report) = open(&sim, options(8 << 10, round % 2 == 1));
        assert_eq!(report.records, acked.len() as u64);
        assert_eq!(log.next_seq(), acked.len() as u64);
        assert_eq!(log.durable_seq(), acked.len() as u64);
        for _ in 0..5 {
            acked.extend(commit_batch(&mut log, &[700, 0, 33]));
        }
        assert_eq!(read_all(&log.reader()), acked);
    }
    assert!(segment_names(&sim).len() >= 3);
    let (log, report) = open(&sim.crash(), options(8 << 10, false));
    assert_eq!(report.records, acked.len() as u64);
    assert_eq!(read_all(&log.reader()), acked);
}

#[test]
fn reader_sees_only_durable_records() {
    let sim = SimStorage::new();
    let (mut log, _) = open(&sim, options(8 << 10, true));
    let reader = log.reader();
    for i in 0..3 {
        log.append(&payload(i, 10)).unwrap();
    }
    assert_eq!(reader.durable_seq(), 0);
    assert!(matches!(
        reader.read(0, &mut Vec::new()),
        Err(ReadError::OutOfRange { seq: 0, durable: 0 })
    ));
    assert!(reader.iter_from(0).next_record().is_none());
    log.commit().unwrap();
    assert_eq!(reader.durable_seq(), 3);

    // An iterator ends at the durable end fixed when it was made.
    let mut iter = reader.iter_from(1);
    commit_batch(&mut log, &[5, 5]);
    let mut seen = Vec::new();
    while let Some(r) = iter.next_record() {
        seen.push(r.unwrap().0);
    }
    assert_eq!(seen, vec![1, 2]);
    assert!(reader.iter_from(5).next_record().is_none());

    // A concurrent reader never sees a record that is not durable, and every durable one
    // is readable and intact while the writer commits and rolls segments.
    let len_of = |seq: u64| (seq as usize * 13) % 600;
    let base = log.next_seq();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let reader = log.reader();
        let stop = &stop;
        let checker = scope.spawn(move || {
            let mut buf = Vec::new();
            let mut checks = 0u64;
            loop {
                // Read before the pass, so that the last pass runs after every commit and
                // checks at least one record however the threads are scheduled.
                let stopping = stop.load(std::sync::atomic::Ordering::Acquire);
                let durable = reader.durable_seq();
                if durable > base {
                    let seq = durable - 1;
                    reader.read(seq, &mut buf).expect("durable record readable");
                    assert_eq!(buf, payload(seq, len_of(seq)));
                    checks += 1;
                }
                // A read that succeeds must be of a record durable by the time it returns.
                let probe = durable + 1;
                match reader.read(probe, &mut buf) {
                    Err(ReadError::OutOfRange { .. }) => {}
                    Ok(()) => assert!(probe < reader.durable_seq(), "read past the durable end"),
                    Err(e) => panic!("read of {probe}: {e}"),
                }
                if stopping {
                    break;
                }
            }
            checks
        });
        for _ in 0..150 {
            for _ in 0..3 {
                let seq = log.next_seq();
                log.append(&payload(seq, len_of(seq))).unwrap();
            }
            log.commit().unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Release);
        assert!(checker.join().unwrap() > 0);
    });
    assert!(segment_names(&sim).len() > 3);
}

#[test]
fn sealed_index_sidecar_is_used_and_rebuilt_when_missing() {
    for preallocate in [false, true] {
        let sim = SimStorage::new();
        let (mut log, _) = open(&sim, options(8 << 10, preallocate));
        let mut acked = Vec::new();
        for _ in 0..40 {
            acked.extend(commit_batch(&mut log, &[700, 1]));
        }
        drop(log); // joins the preallocator, which writes index files in the background
        let segments = segment_names(&sim);
        assert!(segments.len() >= 4);
        let indexes: Vec<String> = sim
            .file_names(dir())
            .into_iter()
            .filter(|n| n.ends_with(".idx"))
            .collect();
        let sealed: Vec<String> = segments[..segments.len() - 1]
            .iter()
            .map(|n| n.replace(".wlog", ".idx"))
            .collect();
        assert_eq!(
            indexes, sealed,
            "one index per sealed segment, none for the last"
        );

        // Used: only the last segment is scanned.
        let crashed = sim.crash();
        let (log, report) = open(&crashed, options(8 << 10, preallocate));
        assert_eq!(report.scanned_segments, 1);
        assert_eq!(report.rebuilt_indexes, 0);
        assert_eq!(read_all(&log.reader()), acked);
        drop(log);

        // Missing: the segment is scanned and its index written again.
        let missing = dir().join(&sealed[1]);
        crashed.remove(&missing).unwrap();
        let (log, report) = open(&crashed, options(8 << 10, preallocate));
        assert_eq!((report.scanned_segments, report.rebuilt_indexes), (2, 1));
        assert!(crashed.file_names(dir()).contains(&sealed[1]));
        assert_eq!(read_all(&log.reader()), acked);
        drop(log);

        // Invalid: likewise.
        let invalid = dir().join(&sealed[0]);
        let len = crashed.read_written(&invalid).unwrap().len() as u64;
        flip_byte(&crashed, &invalid, len / 2);
        let (log, report) = open(&crashed, options(8 << 10, preallocate));
        assert_eq!((report.scanned_segments, report.rebuilt_indexes), (2, 1));
        assert_eq!(read_all(&log.reader()), acked);
        drop(log);

        let (log, report) = open(&crashed.crash(), options(8 << 10, preallocate));
        assert_eq!((report.scanned_segments, report.rebuilt_indexes), (1, 0));
        assert_eq!(read_all(&log.reader()), acked);
    }
}

#[test]
fn stale_index_of_last_segment_is_removed() {
    // A crash after the sealed segment's index file was written but before the next
    // segment's name was durable leaves an index file for the (again) last segment.
    let sim = SimStorage::new();
    let (mut log, _) = open(&sim, options(8 << 10, false));
    let mut acked = Vec::new();
    for _ in 0..7 {
        acked.extend(commit_batch(&mut log, &[1000]));
    }
    drop(log);
    let bytes = writ_log::format::SegmentIndexFile::encode_parts(0, 0, 64, &[]);
    let f = sim.create(&dir().join("00000000000000000000.idx")).unwrap();
    f.write_at(&bytes, 0).unwrap();
    f.sync_data().unwrap();
    sim.sync_dir(dir()).unwrap();
    let (mut log, report) = open(&sim, options(8 << 10, false));
    assert_eq!(report.records, 7);
    assert!(
        !sim.durable_file_names(dir())
            .iter()
            .any(|n| n.ends_with(".idx"))
    );
    for _ in 0..3 {
        acked.extend(commit_batch(&mut log, &[1000]));
    }
    drop(log);
    let (log, _) = open(&sim.crash(), options(8 << 10, false));
    assert_eq!(read_all(&log.reader()), acked);
}

#[test]
fn batch_full_and_record_too_large() {
    let sim = SimStorage::new();
    let (mut log, _) = open(&sim, options(8 << 10, false));
    assert!(matches!(
        log.append(&[0u8; 2049]),
        Err(AppendError::RecordTooLarge {
            size: 2049,
            max: 2048
        })
    ));
    // 8 KiB segment: 64 header bytes, then frames of at most 8128 bytes.
    let mut staged = 0;
    let full = loop {
        match log.append(&[7u8; 2000]) {
            Ok(_) => staged += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(staged, 4);
    match full {
        AppendError::BatchFull { pending_bytes } => {
            assert_eq!(pending_bytes, log.pending_bytes());
            assert_eq!(pending_bytes as u64, frame_len(&[2000; 4]));
        }
        other => panic!("expected BatchFull, got {other:?}"),
    }
    assert_eq!(log.commit().unwrap(), 4);
    assert_eq!(log.pending_bytes(), 0);
    // The next full batch rolls to a new segment.
    for _ in 0..4 {
        log.append(&[8u8; 2000]).unwrap();
    }
    assert_eq!(log.commit().unwrap(), 8);
    assert_eq!(segment_names(&sim).len(), 2);
    assert_eq!(read_all(&log.reader()).len(), 8);
}

#[test]
fn empty_commit_does_no_io() {
    let sim = SimStorage::new();
    let (mut log, _) = open(&sim, options(8 << 10, false));
    sim.fail_next_write();
    sim.fail_next_sync();
    assert_eq!(log.commit().unwrap(), 0);
    assert!(!log.is_poisoned());
    sim.clear_faults();
    commit_batch(&mut log, &[1]);
    assert_eq!(log.commit().unwrap(), 1);
}

#[test]
fn leftover_and_bad_files_at_open() {
    let sim = SimStorage::new();
    let (mut log, _) = open(&sim, options(8 << 10, false));
    let acked = commit_batch(&mut log, &[1, 2, 3]);
    drop(log);
    for name in [
        "spare.wlog.tmp",
        "00000000000000000003.wlog.tmp",
        "x.idx.tmp",
    ] {
        let f = sim.create(&dir().join(name)).unwrap();
        f.write_at(b"junk", 0).unwrap();
    }
    let (log, report) = open(&sim, options(8 << 10, false));
    assert_eq!(report.removed_temp_files, 3);
    assert_eq!(read_all(&log.reader()), acked);
    drop(log);

    // A segment from a newer format version.
    let seg = segment_path(0);
    let mut header = sim.read_written(&seg).unwrap()[..SEGMENT_HEADER_BYTES].to_vec();
    header[8] = 9;
    sim.corrupt(&seg, 0, &header).unwrap();
    assert!(matches!(
        try_open(&sim, options(8 << 10, false)),
        Err(OpenError::Format { .. })
    ));
    // A damaged segment header.
    header[8] = 1;
    header[20] ^= 1;
    sim.corrupt(&seg, 0, &header).unwrap();
    assert!(matches!(
        try_open(&sim, options(8 << 10, false)),
        Err(OpenError::Corrupt { offset: 0, .. })
    ));
}

#[test]
fn missing_middle_segment_refuses_to_open() {
    let sim = SimStorage::new();
    let (mut log, _) = open(&sim, options(8 << 10, false));
    for _ in 0..30 {
        commit_batch(&mut log, &[1000]);
    }
    drop(log);
    let segments = segment_names(&sim);
    assert!(segments.len() >= 3);
    sim.remove(&dir().join(&segments[1])).unwrap();
    match try_open(&sim, options(8 << 10, false)) {
        Err(OpenError::Corrupt { path, seq, .. }) => {
            assert_eq!(path, dir().join(&segments[0]));
            assert_eq!(seq, 7);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    sim.remove(&dir().join(&segments[0])).unwrap();
    // The first segment gone: its records are missing from the start, which says so.
    let first: u64 = segments[2][..20].parse().unwrap();
    assert!(matches!(
        try_open(&sim, options(8 << 10, false)),
        Err(OpenError::MissingStart { first_seq, .. }) if first_seq == first
    ));
}

#[test]
fn invalid_options_are_refused() {
    let sim = SimStorage::new();
    for options in [
        writ_log::LogOptions {
            segment_bytes: 8 << 10,
            record_bytes_max: 8 << 10,
            preallocate: false,
            ..writ_log::LogOptions::default()
        },
        writ_log::LogOptions {
            segment_bytes: (8 << 10) + 1,
            record_bytes_max: 10,
            preallocate: false,
            ..writ_log::LogOptions::default()
        },
        writ_log::LogOptions {
            segment_bytes: 8 << 30,
            record_bytes_max: 10,
            preallocate: false,
            ..writ_log::LogOptions::default()
        },
    ] {
        assert!(matches!(
            try_open(&sim, options),
            Err(OpenError::InvalidOptions { .. })
        ));
    }
}

#[test]
fn handles_are_send_and_sync() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<writ_log::Log>();
    send_sync::<writ_log::LogReader>();
    send::<writ_log::LogIter>();
    send_sync::<SimStorage>();
    send_sync::<writ_log::storage::FsStorage>();
}

#[test]
fn segment_size_can_change_between_opens() {
    let sim = SimStorage::new();
    // A fresh log with 8 KiB segments: segment 0 is empty.
    drop(open(&sim, options(8 << 10, false)).0);
    let big = writ_log::LogOptions {
        segment_bytes: 64 << 10,
        record_bytes_max: 8 << 10,
        preallocate: false,
        ..writ_log::LogOptions::default()
    };
    let (mut log, _) = open(&sim, big.clone());
    // A batch larger than the old empty segment: it is replaced by a 64 KiB one.
    let mut acked = commit_batch(&mut log, &[7000, 7000]);
    assert_eq!(segment_names(&sim), vec!["00000000000000000000.wlog"]);
    // Back to small segments: the 64 KiB one is kept as it is, new ones are small.
    drop(log);
    let (mut log, _) = open(&sim, options(8 << 10, false));
    for _ in 0..70 {
        acked.extend(commit_batch(&mut log, &[1000]));
    }
    drop(log);
    let sizes: Vec<usize> = segment_names(&sim)
        .iter()
        .map(|n| sim.read_written(&dir().join(n)).unwrap().len())
        .collect();
    assert_eq!(sizes[0], 64 << 10);
    assert!(sizes[1..].iter().all(|&s| s == 8 << 10), "{sizes:?}");
    let (log, report) = open(&sim.crash(), big);
    assert_eq!(report.truncated, None);
    assert_eq!(read_all(&log.reader()), acked);
}

#[test]
fn large_records_round_trip() {
    let sim = SimStorage::new();
    let options = writ_log::LogOptions {
        segment_bytes: 4 << 20,
        record_bytes_max: 3 << 20,
        preallocate: true,
        ..writ_log::LogOptions::default()
    };
    let (mut log, _) = open(&sim, options.clone());
    let mut acked = Vec::new();
    for (i, len) in [(3 << 20) - 1, 5, 1 << 20, (1 << 20) + 3, 0, 2 << 20]
        .iter()
        .enumerate()
    {
        acked.extend(commit_batch(&mut log, &[*len]));
        if i == 2 {
            acked.extend(commit_batch(&mut log, &[100; 50]));
        }
    }
    assert_eq!(read_all(&log.reader()), acked);
    drop(log);
    let (log, _) = open(&sim.crash(), options);
    assert_eq!(read_all(&log.reader()), acked);
    assert!(segment_names(&sim).len() >= 3);
}
