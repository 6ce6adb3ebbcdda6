//! A store whose journal's old segments were archived (`writ_engine::archive`), on the real
//! file system: `writ verify` and `writ backup` need the archive, say so without it, and
//! with it check and copy the whole journal (the copy opens without an archive); a segment
//! in both places is a note when the bytes are the same and damage when not; archiving a
//! store a server holds is refused.

mod support;

use std::path::Path;
use std::time::Duration;

use support::{TempDir, open, open_tickets, options, registry};
use writ_engine::archive::{ArchiveError, archive_data_dir};
use writ_engine::{Engine, EngineOptions, OpenError};
use writ_log::LogOptions;
use writ_tools::backup::{backup, backup_with_archive};
use writ_tools::verify::{Severity, verify, verify_with_archive};

fn segment_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wlog"))
        .collect();
    names.sort();
    names
}

#[test]
fn verify_and_backup_of_an_archived_store_need_the_archive_and_copy_it_whole() {
    let dir = TempDir::new("archive-store");
    let out = TempDir::new("archive-out");
    let archive = out.path().join("archive");
    let engine = open(dir.path());
    open_tickets(&engine, 0, 2_500);
    std::thread::sleep(Duration::from_millis(20));
    let last = open_tickets(&engine, 2_500, 1);

    // A server holds it: refused, nothing moved.
    let refused = archive_data_dir(
        dir.path(),
        &archive,
        Duration::from_millis(5),
        LogOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(refused, ArchiveError::Open(OpenError::Locked { .. })),
        "{refused}"
    );
    drop(engine);

    let archived = archive_data_dir(
        dir.path(),
        &archive,
        Duration::from_millis(5),
        LogOptions::default(),
    )
    .unwrap();
    assert!(archived.moved.len() >= 3, "{archived:?}");
    assert_eq!(segment_names(&archive), archived.moved);
    let journal = dir.path().join("journal");
    assert!(
        segment_names(&journal)
            .iter()
            .all(|n| !archived.moved.contains(n))
    );
    // Idempotent.
    let again = archive_data_dir(
        dir.path(),
        &archive,
        Duration::from_millis(5),
        LogOptions::default(),
    )
    .unwrap();
    assert!(again.moved.is_empty(), "{again:?}");

    // Without the archive: damage that says what to give.
    let alone = verify(dir.path(), false).unwrap();
    let first = alone.first_damage().expect("records 0.. are missing");
    assert!(first.detail.contains("--archive-dir"), "{first}");
    // With it: the whole journal, clean.
    let whole = verify_with_archive(dir.path(), Some(&archive), false).unwrap();
    assert!(whole.findings.is_empty(), "{:?}", whole.findings);
    assert_eq!(whole.journal.commands, 2_501);

    // Backup: refused without the archive, whole with it.
    let to = out.path().join("copy");
    let err = backup(dir.path(), &to, false).unwrap_err();
    assert!(err.contains("--archive-dir"), "{err}");
    assert!(!to.exists());
    let report = backup_with_archive(dir.path(), Some(&archive), &to, false).unwrap();
    assert_eq!(report.archived_segments, archived.moved.len());
    assert_eq!(report.commands(), 2_501);
    let copy = verify(&to, false).unwrap();
    assert!(copy.findings.is_empty(), "{:?}", copy.findings);
    // The copy opens without an archive and reads the first ticket (archived) and the last.
    let (copy_engine, _) = Engine::open_dir(&to, registry(), options()).unwrap();
    assert_eq!(
        copy_engine.read_stream("ticket-t-0", 1, 10).unwrap().len(),
        1
    );
    assert_eq!(copy_engine.status(last[0]).unwrap().unwrap().id, last[0]);
    drop(copy_engine);

    // The engine opens the store with the archive and reads both ends.
    let with_archive = EngineOptions {
        log: LogOptions {
            archive_dir: Some(archive.clone()),
            ..options().log
        },
        ..options()
    };
    let (engine, _) = Engine::open_dir(dir.path(), registry(), with_archive).unwrap();
    assert_eq!(engine.read_stream("ticket-t-0", 1, 10).unwrap().len(), 1);
    assert_eq!(engine.read_all(1, 10_000).unwrap().len(), 2_501);
    drop(engine);

    // A segment in both places: the same bytes are a note, other bytes damage.
    let name = &archived.moved[0];
    std::fs::copy(archive.join(name), journal.join(name)).unwrap();
    let both = verify_with_archive(dir.path(), Some(&archive), false).unwrap();
    assert!(both.first_damage().is_none(), "{:?}", both.findings);
    assert!(
        both.findings
            .iter()
            .any(|f| f.severity == Severity::Note && f.detail.contains("same bytes")),
        "{:?}",
        both.findings
    );
    let mut bytes = std::fs::read(journal.join(name)).unwrap();
    bytes[200] ^= 1;
    std::fs::write(journal.join(name), bytes).unwrap();
    let differs = verify_with_archive(dir.path(), Some(&archive), false).unwrap();
    let damage = differs.first_damage().expect("other bytes");
    assert!(damage.detail.contains("other bytes"), "{damage}");
}
