//! `writ verify` against a clean store and against copies of it damaged one way each: every
//! damage is found, named by file and offset; a clean store passes with its counts.

mod support;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use support::{TempDir, copy_dir, journal_name, open, open_tickets, segments};
use writ_log::inspect::scan_segment;
use writ_log::storage::FsStorage;
use writ_log::{Log, storage::Storage};
use writ_tools::verify::{Severity, VerifyReport, verify};

const COMMANDS: u64 = 2_000;

/// One store for every test, written once, copied before damage. A static is never
/// dropped, so it lives in cargo's temporary directory for integration tests (under
/// `target/`), one per process (a runner that starts a process per test, as nextest does,
/// gets one each), and the stores of processes that have ended are removed here, rather
/// than left in the system's temporary directory by every run.
fn store() -> &'static Path {
    static STORE: OnceLock<PathBuf> = OnceLock::new();
    STORE.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
        if let Ok(entries) = std::fs::read_dir(root) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let ended = name
                    .strip_prefix("verify-store-")
                    .and_then(|pid| pid.parse::<u32>().ok())
                    .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
                if ended {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = root.join(format!("verify-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let engine = open(&dir);
        open_tickets(&engine, 0, COMMANDS);
        drop(engine);
        dir
    })
}

/// A copy of the store to damage.
fn copy(name: &str) -> TempDir {
    let dir = TempDir::new(name);
    copy_dir(store(), dir.path());
    dir
}

fn flip(path: &Path, offset: u64) {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut byte = [0u8];
    file.read_at(&mut byte, offset).unwrap();
    file.write_at(&[byte[0] ^ 0x40], offset).unwrap();
}

/// The offsets of a segment's records, by the log's own scan.
fn record_offsets(path: &Path) -> Vec<u64> {
    let storage = FsStorage::new(path.parent().unwrap());
    let file = storage.open(path.file_name().unwrap().as_ref()).unwrap();
    let mut offsets = Vec::new();
    scan_segment(&*file, &mut |r| offsets.push(r.offset)).unwrap();
    offsets
}

/// The first damage, which must be in `file`.
fn first_damage<'r>(report: &'r VerifyReport, file: &str) -> &'r writ_tools::verify::Finding {
    let first = report
        .first_damage()
        .unwrap_or_else(|| panic!("no damage found: {:?}", report.findings));
    assert_eq!(first.file, file, "{:?}", report.findings);
    first
}

#[test]
fn a_clean_store_passes_with_its_counts() {
    let dir = copy("clean");
    std::fs::write(dir.path().join("README"), "mine").unwrap();
    let report = verify(dir.path(), false).unwrap();
    assert!(report.first_damage().is_none(), "{:?}", report.findings);
    assert_eq!(report.journal.commands, COMMANDS);
    assert_eq!(report.journal.events, COMMANDS);
    assert_eq!(report.journal.streams, COMMANDS);
    assert_eq!(report.journal.succeeded, COMMANDS);
    let segments = segments(dir.path()).len() as u64;
    assert!(segments >= 3, "{segments} segments");
    assert_eq!((report.segments, report.indexes), (segments, segments - 1));
    assert!(!report.live);
    // The unknown file is a note, and the only finding.
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    assert_eq!(report.findings[0].severity, Severity::Note);
    assert_eq!(report.findings[0].file, "README");
}

#[test]
fn a_flipped_byte_in_a_sealed_segment_is_found_at_its_frame() {
    let dir = copy("sealed-flip");
    let segment = &segments(dir.path())[0];
    let at = record_offsets(segment)[100] + 20;
    flip(segment, at);
    let report = verify(dir.path(), false).unwrap();
    let first = first_damage(&report, &journal_name(segment));
    let offset = first.offset.unwrap();
    assert!((64..=at).contains(&offset), "{first}");
    assert!(first.detail.contains("next segment starts"), "{first}");
}

#[test]
fn a_flipped_byte_in_the_live_segments_last_frame_is_damage() {
    let dir = copy("tail-flip");
    let last = segments(dir.path()).pop().unwrap();
    let offsets = record_offsets(&last);
    let at = offsets[offsets.len() - 1] + 9;
    flip(&last, at);
    let report = verify(dir.path(), false).unwrap();
    let first = first_damage(&report, &journal_name(&last));
    assert!(first.offset.unwrap() <= at, "{first}");
    assert!(first.detail.contains("the next open cuts it"), "{first}");
}

#[test]
fn a_flipped_byte_in_an_index_is_found_at_that_byte() {
    let dir = copy("idx-flip");
    let index = segments(dir.path())[1].with_extension("idx");
    flip(&index, 40);
    let report = verify(dir.path(), false).unwrap();
    let first = first_damage(&report, &journal_name(&index));
    assert_eq!(first.offset, Some(40), "{first}");
}

#[test]
fn a_truncated_segment_is_found_where_it_was_cut() {
    let dir = copy("truncated");
    let segment = &segments(dir.path())[1];
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(segment)
        .unwrap();
    file.set_len(32 << 10).unwrap();
    let report = verify(dir.path(), false).unwrap();
    let first = first_damage(&report, &journal_name(segment));
    assert_eq!(first.offset, Some(32 << 10), "{first}");
}

#[test]
fn a_missing_middle_segment_is_found_at_the_end_of_the_one_before() {
    let dir = copy("missing");
    let segments = segments(dir.path());
    std::fs::remove_file(&segments[1]).unwrap();
    std::fs::remove_file(segments[1].with_extension("idx")).unwrap();
    let report = verify(dir.path(), false).unwrap();
    let first = first_damage(&report, &journal_name(&segments[0]));
    let offsets = record_offsets(&segments[0]);
    assert!(
        first.offset.unwrap() > offsets[offsets.len() - 1],
        "{first}"
    );
    assert!(first.detail.contains("next segment starts"), "{first}");
}

#[test]
fn a_record_that_does_not_decode_is_found_at_its_offset() {
    let dir = copy("bad-record");
    let storage = std::sync::Arc::new(FsStorage::new(dir.path()));
    let (mut log, _) = Log::open(storage, "journal".as_ref(), support::options().log).unwrap();
    assert_eq!(log.append(b"not a journal record").unwrap(), COMMANDS);
    log.commit().unwrap();
    drop(log);
    let last = segments(dir.path()).pop().unwrap();
    let report = verify(dir.path(), false).unwrap();
    let first = first_damage(&report, &journal_name(&last));
    assert_eq!(first.record, Some(COMMANDS), "{first}");
    assert_eq!(
        first.offset,
        record_offsets(&last).last().copied(),
        "{first}"
    );
    assert!(first.detail.contains("invalid journal record"), "{first}");
    assert_eq!(report.journal.commands, COMMANDS, "counted up to it");
}

#[test]
fn a_directory_without_a_journal_is_damage() {
    let dir = TempDir::new("no-journal");
    let report = verify(dir.path(), false).unwrap();
    first_damage(&report, "journal");
}

#[test]
fn a_damaged_engine_checkpoint_or_one_past_the_journal_is_a_note() {
    let dir = copy("checkpoint");
    let checkpoints = dir.path().join(writ_engine::checkpoint::CHECKPOINT_DIR);
    let name = writ_engine::checkpoint::checkpoint_name(COMMANDS);
    assert!(
        checkpoints.join(&name).is_file(),
        "the store's clean shutdown wrote one"
    );
    let report = verify(dir.path(), false).unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    // A copy named past the journal's end, and the original damaged.
    let past = writ_engine::checkpoint::checkpoint_name(COMMANDS + 5);
    let mut bytes = std::fs::read(checkpoints.join(&name)).unwrap();
    let mut checkpoint = writ_engine::checkpoint::Checkpoint::decode(&bytes).unwrap();
    checkpoint.seq = COMMANDS + 5;
    checkpoint.commit_first_position.extend([COMMANDS + 1; 5]);
    std::fs::write(checkpoints.join(&past), checkpoint.encode()).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(checkpoints.join(&name), &bytes).unwrap();
    let report = verify(dir.path(), false).unwrap();
    assert!(report.first_damage().is_none(), "{:?}", report.findings);
    let notes: Vec<_> = report
        .findings
        .iter()
        .map(|f| (&f.file, &f.detail))
        .collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        notes
            .iter()
            .any(|(file, detail)| file.ends_with(&name) && detail.contains("checksum"))
    );
    assert!(
        notes
            .iter()
            .any(|(file, detail)| file.ends_with(&past) && detail.contains("journal holds"))
    );
}
