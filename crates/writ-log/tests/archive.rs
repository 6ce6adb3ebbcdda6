//! Sealed segments moved to an archive directory (`writ_log::archive`), on `SimStorage`:
//! the log opened with the archive reads them as its own; without it, it is refused; a
//! move a crash or a failure cuts short at any step opens whole, and a second move
//! finishes it. The rows "archive ..." of the recovery table in `docs/log-format.md`.

mod common;

use std::path::Path;

use common::*;
use writ_log::archive::{self, MoveError};
use writ_log::storage::{SimOp, SimStorage, Storage};
use writ_log::{LogOptions, OpenError};

const SEGMENT_BYTES: u64 = 8 << 10;

fn archive_dir() -> &'static Path {
    Path::new("archive")
}

fn with_archive() -> LogOptions {
    LogOptions {
        archive_dir: Some(archive_dir().to_path_buf()),
        ..options(SEGMENT_BYTES, false)
    }
}

/// A log of several segments; returns its records.
fn several_segments(sim: &SimStorage) -> Vec<Vec<u8>> {
    let (mut log, _) = open(sim, options(SEGMENT_BYTES, false));
    let mut acked = Vec::new();
    for batch in 0..90usize {
        acked.extend(commit_batch(&mut log, &[300 + batch * 7, 120]));
    }
    assert!(segment_names(sim).len() >= 5, "{:?}", segment_names(sim));
    acked
}

fn segments(sim: &SimStorage, dir: &Path) -> Vec<u64> {
    archive::list_segments(sim, dir).unwrap()
}

/// Moves the first `n` segments of the log to the archive.
fn archive_first(sim: &SimStorage, n: usize) -> Vec<u64> {
    archive::prepare(sim, archive_dir()).unwrap();
    let moved: Vec<u64> = segments(sim, dir()).into_iter().take(n).collect();
    for &seq in &moved {
        archive::move_segment(sim, dir(), archive_dir(), seq).unwrap();
    }
    moved
}

#[test]
fn archived_segments_read_back_as_the_log_and_the_log_goes_on() {
    let sim = SimStorage::new();
    let mut acked = several_segments(&sim);
    let before = segments(&sim, dir());
    let moved = archive_first(&sim, 3);
    assert_eq!(segments(&sim, archive_dir()), moved);
    assert_eq!(segments(&sim, dir()), before[3..]);
    assert!(
        sim.file_names(archive_dir())
            .iter()
            .any(|n| n.ends_with(".idx"))
    );

    let (mut log, report) = open(&sim, with_archive());
    assert_eq!(report.archived_segments, 3);
    assert_eq!(
        report.scanned_segments, 1,
        "archived indexes are used: {report:?}"
    );
    assert_eq!(read_all(&log.reader()), acked);
    acked.extend(commit_batch(&mut log, &[50, 60]));
    drop(log);

    // A power cut keeps the move (every directory was synced).
    let crashed = sim.crash();
    let (log, report) = open(&crashed, with_archive());
    assert_eq!(report.archived_segments, 3);
    assert_eq!(read_all(&log.reader()), acked);
    // Nothing was written into the archive.
    assert!(
        crashed
            .file_names(archive_dir())
            .iter()
            .all(|n| !n.ends_with(".tmp"))
    );
    assert_eq!(segments(&crashed, archive_dir()), moved);
}

#[test]
fn a_log_whose_first_segment_was_archived_is_refused_without_the_archive() {
    let sim = SimStorage::new();
    several_segments(&sim);
    let moved = archive_first(&sim, 2);
    let first_local = segments(&sim, dir())[0];
    let err = try_open(&sim, options(SEGMENT_BYTES, false)).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, OpenError::MissingStart { first_seq, .. } if first_seq == first_local),
        "{err:?}"
    );
    assert!(
        text.contains(&format!("records 0..{first_local} are missing"))
            && text.contains("--archive-dir"),
        "{text}"
    );
    // Nothing was created or removed: the archive option opens it.
    assert_eq!(segments(&sim, archive_dir()), moved);
    open(&sim, with_archive());
}

#[test]
fn an_archive_that_does_not_exist_holds_nothing_and_is_named_when_records_are_missing() {
    let sim = SimStorage::new();
    let acked = several_segments(&sim);
    // Nothing archived yet: the log opens, and nothing is created in the archive's place.
    let (log, report) = open(&sim, with_archive());
    assert_eq!(report.archived_segments, 0);
    assert_eq!(read_all(&log.reader()), acked);
    drop(log);
    assert!(sim.list(archive_dir()).is_err());
    // Archived, then the archive gone (an unmounted disk, a wrong path): refused.
    let moved = archive_first(&sim, 2);
    for seq in &moved {
        sim.remove(&archive_dir().join(archive::segment_name(*seq)))
            .unwrap();
    }
    let err = try_open(&sim, with_archive()).unwrap_err();
    assert!(matches!(err, OpenError::MissingStart { .. }), "{err:?}");
    assert!(err.to_string().contains("nor the archive archive"), "{err}");
}

#[test]
fn a_gap_in_the_archive_is_corrupt() {
    let sim = SimStorage::new();
    several_segments(&sim);
    let moved = archive_first(&sim, 3);
    let gone = archive_dir().join(archive::segment_name(moved[1]));
    sim.remove(&gone).unwrap();
    let err = try_open(&sim, with_archive()).unwrap_err();
    match &err {
        OpenError::Corrupt { path, detail, .. } => {
            assert_eq!(
                path,
                &archive_dir().join(archive::segment_name(moved[0])),
                "{err}"
            );
            assert!(detail.contains("starts at record"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_temporary_file_in_the_archive_is_ignored_and_removed_by_the_next_move() {
    let sim = SimStorage::new();
    let acked = several_segments(&sim);
    archive_first(&sim, 1);
    let tmp = archive_dir().join(format!("{}.tmp", archive::segment_name(99_999)));
    sim.create(&tmp).unwrap();
    let (log, _) = open(&sim, with_archive());
    assert_eq!(read_all(&log.reader()), acked);
    drop(log);
    assert!(
        sim.file_names(archive_dir())
            .iter()
            .any(|n| n.ends_with(".tmp"))
    );
    assert_eq!(archive::prepare(&sim, archive_dir()).unwrap(), 1);
    assert!(
        sim.file_names(archive_dir())
            .iter()
            .all(|n| !n.ends_with(".tmp"))
    );
}

#[test]
fn the_last_segment_in_the_archive_is_refused() {
    let sim = SimStorage::new();
    several_segments(&sim);
    let all = segments(&sim, dir());
    // By hand (`writ archive` never moves the last one).
    archive_first(&sim, all.len());
    let err = try_open(&sim, with_archive()).unwrap_err();
    assert!(matches!(err, OpenError::Archive { .. }), "{err:?}");
    assert!(err.to_string().contains("last segment"), "{err}");
}

#[test]
fn a_segment_in_both_places_with_other_bytes_is_corrupt_naming_both() {
    let sim = SimStorage::new();
    several_segments(&sim);
    let first = segments(&sim, dir())[0];
    let name = archive::segment_name(first);
    sim.create_dir_all(archive_dir()).unwrap();
    let copy = sim.create(&archive_dir().join(&name)).unwrap();
    let mut bytes = sim.read_written(&dir().join(&name)).unwrap();
    bytes[200] ^= 0x5a;
    writ_log::storage::write_all_at(&*copy, &bytes, 0).unwrap();
    drop(copy);
    let err = try_open(&sim, with_archive()).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, OpenError::Corrupt { .. }), "{err:?}");
    assert!(
        text.contains(&dir().join(&name).display().to_string())
            && text.contains(&archive_dir().join(&name).display().to_string()),
        "{text}"
    );
    // The move refuses too, and removes nothing.
    let refused = archive::move_segment(&sim, dir(), archive_dir(), first).unwrap_err();
    assert!(matches!(refused, MoveError::Differs { .. }), "{refused:?}");
    assert!(sim.file_names(dir()).contains(&name));
}

/// Every step of a move failing (and the power cut after it): the log opens with every
/// record, the segment in the log directory, the archive or both; a second move finishes.
#[test]
fn crash_or_failure_at_any_step_of_a_move_opens_whole_and_a_second_move_finishes_it() {
    let ops = [
        SimOp::Create,
        SimOp::Write,
        SimOp::SetLen,
        SimOp::Sync,
        SimOp::Rename,
        SimOp::SyncDir,
        SimOp::Remove,
    ];
    let mut states = std::collections::BTreeSet::new();
    for op in ops {
        for nth in 0..4 {
            let sim = SimStorage::new();
            let acked = several_segments(&sim);
            archive::prepare(&sim, archive_dir()).unwrap();
            let first = segments(&sim, dir())[0];
            sim.fail_nth(op, nth);
            let result = archive::move_segment(&sim, dir(), archive_dir(), first);
            sim.clear_faults();
            for storage in [sim.crash(), sim.clone()] {
                let in_log = segments(&storage, dir()).contains(&first);
                let in_archive = segments(&storage, archive_dir()).contains(&first);
                assert!(in_log || in_archive, "{op:?} {nth}: the segment is lost");
                states.insert((in_log, in_archive));
                let (log, report) = open(&storage, with_archive());
                assert_eq!(read_all(&log.reader()), acked, "{op:?} {nth} {result:?}");
                assert_eq!(
                    report.archive_duplicates,
                    usize::from(in_log && in_archive),
                    "{op:?} {nth}"
                );
                drop(log);
                archive::prepare(&storage, archive_dir()).unwrap();
                archive::move_segment(&storage, dir(), archive_dir(), first).unwrap();
                assert_eq!(segments(&storage, archive_dir()), [first]);
                assert!(!segments(&storage, dir()).contains(&first));
                let (log, report) = open(&storage.crash(), with_archive());
                assert_eq!(read_all(&log.reader()), acked, "{op:?} {nth} again");
                assert_eq!(report.archive_duplicates, 0);
            }
        }
    }
    // The runs went through the three states a move can leave.
    for state in [(true, false), (true, true), (false, true)] {
        assert!(states.contains(&state), "{state:?} never seen: {states:?}");
    }
}
