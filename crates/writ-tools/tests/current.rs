//! `writ verify` and `writ backup` of a data directory whose live journal is a replay
//! (`CURRENT` names `replay-1/journal` after `writ replay --apply`): both read the live
//! journal, and the journal that is not live any more is a note.

mod support;

use support::{TempDir, open, open_tickets, options, registry};
use writ_tools::backup::backup;
use writ_tools::verify::{Severity, verify};

/// A store of 600 tickets (several segments), replayed and applied.
fn replayed_store(name: &str) -> TempDir {
    let dir = TempDir::new(name);
    let engine = open(dir.path());
    open_tickets(&engine, 0, 600);
    drop(engine);
    let replayed =
        writ_engine::replay::replay_data_dir(dir.path(), registry(), options(), true, &mut |_| {})
            .expect("replayed and applied");
    assert!(replayed.report.differences.is_empty());
    dir
}

#[test]
fn verify_checks_the_journal_current_names_and_notes_the_old_one() {
    let dir = replayed_store("verify-current");
    let report = verify(dir.path(), false).unwrap();
    assert!(report.first_damage().is_none(), "{:?}", report.findings);
    assert_eq!(report.journal.commands, 600);
    assert!(report.segments > 1);
    let (end, _) = report.end.clone().expect("an end");
    assert!(end.starts_with("replay-1/journal/"), "{end}");
    let noted: Vec<&str> = report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Note)
        .map(|f| f.file.as_str())
        .collect();
    assert!(noted.contains(&"journal"), "{noted:?}");

    // A CURRENT that names a replay not written in full is damage: the engine refuses.
    std::fs::remove_file(dir.path().join("replay-1/REPLAYED")).unwrap();
    let report = verify(dir.path(), false).unwrap();
    assert_eq!(report.first_damage().expect("damage").file, "CURRENT");
}

#[test]
fn backup_copies_the_live_journal_as_the_copys_journal() {
    let dir = replayed_store("backup-current");
    let out = TempDir::new("backup-current-out");
    let to = out.path().join("copy");
    let report = backup(dir.path(), &to, false).expect("backed up");
    assert_eq!(report.commands(), 600);
    assert!(
        !to.join("CURRENT").exists(),
        "the copy's live journal is its journal/"
    );
    let engine = open(&to);
    assert_eq!(engine.stats().commands_accepted, 0);
    assert_eq!(engine.read_stream("ticket-t-599", 1, 10).unwrap().len(), 1);
}
