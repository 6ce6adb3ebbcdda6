//! `writ backup` of a store an engine is writing to: the copy holds every command
//! acknowledged before the backup began, with its outcome, opens with the engine, and
//! passes verify; the store itself is undisturbed.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use support::{TempDir, open, open_tickets};
use writ_engine::CommandState;
use writ_tools::backup::backup;
use writ_tools::verify::verify;

#[test]
fn a_backup_under_load_holds_every_command_acknowledged_before_it_began() {
    let dir = TempDir::new("backup-source");
    let out = TempDir::new("backup-out");
    let to = out.path().join("copy");
    let engine = Arc::new(open(dir.path()));
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (engine, acknowledged, stop) = (engine.clone(), acknowledged.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let ids = open_tickets(&engine, n, 64);
                acknowledged.lock().unwrap().extend(ids);
                n += 64;
            }
        })
    };
    // Several segments first (about 500 commands each), then the backup while the writer
    // goes on.
    while acknowledged.lock().unwrap().len() < 3_000 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let before: Vec<_> = acknowledged.lock().unwrap().clone();
    let report = backup(dir.path(), &to, false).unwrap();
    let during = acknowledged.lock().unwrap().len() - before.len();
    // A live store verifies too: what the writer has in flight at its end is a note.
    let live = verify(dir.path(), false).unwrap();
    assert!(live.live);
    assert!(live.first_damage().is_none(), "{:?}", live.findings);
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    eprintln!(
        "acknowledged before: {}, during the backup: {during}; the copy holds {} commands in {} segments, {} rounds",
        before.len(),
        report.commands(),
        report.verify.segments,
        report.rounds
    );
    assert!(report.commands() >= before.len() as u64);
    assert!(report.verify.first_damage().is_none());
    let copy = verify(&to, false).unwrap();
    assert!(copy.findings.is_empty(), "{:?}", copy.findings);
    assert_eq!(copy.journal.commands, report.commands());

    let restored = open(&to);
    for id in &before {
        let status = restored
            .status(*id)
            .unwrap()
            .unwrap_or_else(|| panic!("command {id}, acknowledged before the backup, is missing"));
        assert_eq!(status.state, CommandState::Succeeded);
    }
    // The copy serves: it takes new commands after the ones it holds.
    open_tickets(&restored, 1_000_000, 10);
    drop(restored);

    drop(Arc::try_unwrap(engine).expect("the writer is done"));
    let (_engine, recovery) =
        writ_engine::Engine::open_dir(dir.path(), support::registry(), support::options()).unwrap();
    assert_eq!(recovery.truncated, None, "the store was left as it was");
}

#[test]
fn a_backup_refuses_a_destination_it_could_damage_or_hide_in() {
    let dir = TempDir::new("backup-refusals");
    drop(open(dir.path()));
    let full = TempDir::new("backup-full");
    std::fs::write(full.path().join("something"), "here").unwrap();
    let error = backup(dir.path(), full.path(), false).unwrap_err();
    assert!(error.contains("not empty"), "{error}");
    let error = backup(dir.path(), &dir.path().join("inside"), false).unwrap_err();
    assert!(error.contains("inside the data directory"), "{error}");
    let empty = TempDir::new("backup-no-journal");
    let error = backup(empty.path(), &full.path().join("copy"), false).unwrap_err();
    assert!(error.contains("not a Writ data directory"), "{error}");
    // An empty destination is taken, and nothing is left beside it.
    let target = TempDir::new("backup-empty-target");
    let report = backup(dir.path(), target.path(), false).unwrap();
    assert_eq!(report.commands(), 0);
    let parent = target.path().parent().unwrap();
    let leftovers = std::fs::read_dir(parent)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".incomplete-")
        })
        .count();
    assert_eq!(leftovers, 0);
}
