//! The online replay (`Engine::replay_online`, `POST /admin/replay`): the live journal
//! replayed beside a writer that keeps appending, caught up, compared; one at a time; and
//! failures and crashes at each of its steps, on storage that keeps written and durable
//! bytes apart, leave the live journal live and whole, with every acknowledged command.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use uuid::Uuid;
use writ_engine::replay::{self, Phase, ReplayError};
use writ_engine::{
    CommandState, Engine, EngineOptions, ManualClock, RecoveryReport, Registry, SubmitError,
    Submitted, Unavailable,
};
use writ_fixtures::tally;
use writ_log::storage::{SimOp, SimStorage, Storage};

mod support;

use support::{tally_after, tally_before};

const START_MS: u64 = 1_700_000_000_000;

/// Small segments and batches (a replay rolls and syncs several), no checkpoints and no
/// spills (so that a fault armed for the replay's sync meets no other thread's).
fn options(clock: &ManualClock) -> EngineOptions {
    EngineOptions {
        command_bytes_max: 28 * 1024,
        timer_ops_bytes_max: 4 * 1024,
        batch_bytes_max: 256,
        checkpoint_every_records: 0,
        log: support::tiny_segments(),
        clock: Arc::new(clock.clone()),
        ..EngineOptions::default()
    }
}

fn run(engine: &Engine, id: u128, command: &str, payload: serde_json::Value) -> CommandState {
    let payload = serde_json::to_vec(&payload).unwrap();
    match engine
        .submit(Uuid::from_u128(id), command, None, &payload)
        .expect("submit")
    {
        Submitted::New(pending) => pending.blocking_outcome().expect("outcome").state,
        Submitted::Duplicate => panic!("duplicate {id}"),
    }
}

fn open_tally(engine: &Engine, id: u128, tally: &str) {
    run(
        engine,
        id,
        "OpenTally",
        serde_json::json!({"tallyId": tally}),
    );
}

fn count(engine: &Engine, id: u128, tally: &str, amount: u64) -> CommandState {
    run(
        engine,
        id,
        "Count",
        serde_json::json!({"tallyId": tally, "amount": amount}),
    )
}

/// Every record of the log in `dir`, as bytes.
fn records(storage: &SimStorage, dir: &str) -> Vec<Vec<u8>> {
    support::log_records(storage, dir, support::tiny_segments())
}

/// An engine of the before build on `storage` with `tallies` tallies counted to 10 each
/// (ids from 1).
fn engine_with_tallies(storage: &SimStorage, registry: Registry, tallies: u128) -> Engine {
    let clock = ManualClock::at_ms(START_MS);
    let (engine, _) =
        Engine::open(Arc::new(storage.clone()), registry, options(&clock)).expect("opens");
    for t in 0..tallies {
        open_tally(&engine, 1 + 2 * t, &format!("t{t}"));
        count(&engine, 2 + 2 * t, &format!("t{t}"), 10);
    }
    engine
}

/// `storage` opened again with `registry` (after a crash, or by the next build), a
/// millisecond after the tallies were written.
fn open_again(storage: &SimStorage, registry: Registry) -> (Engine, RecoveryReport) {
    Engine::open(
        Arc::new(storage.clone()),
        registry,
        options(&ManualClock::at_ms(START_MS + 1)),
    )
    .expect("opens")
}

fn has_replayed(storage: &SimStorage, dir: &str) -> bool {
    storage
        .durable_file_names(Path::new(dir))
        .contains(&"REPLAYED".to_owned())
}

#[test]
fn an_online_replay_beside_a_writer_that_keeps_writing_catches_up_and_finds_no_difference() {
    let storage = SimStorage::new();
    let engine = Arc::new(engine_with_tallies(&storage, tally_before(), 100));
    let Beside {
        replayed,
        phases,
        sent,
    } = replay_beside_writers(&engine, false);
    let replayed = replayed.expect("replayed");
    assert!(!sent.is_empty(), "the client wrote meanwhile");
    assert!(
        sent.iter().all(|(_, acked)| *acked),
        "nothing switched, nothing refused"
    );
    assert!(phases.contains(&Phase::CatchingUp), "{phases:?}");
    assert_eq!(phases.last(), Some(&Phase::Comparing));
    assert_eq!(replayed.source, Path::new("journal"));
    assert_eq!(replayed.journal, Path::new("replay-1/journal"));
    let report = &replayed.report;
    assert!(report.differences.is_empty(), "{}", report.summary(10));
    assert!(report.live_records >= 200 + 5, "{}", report.live_records);
    assert_eq!(report.replayed_records, report.live_records);
    assert_eq!(report.same, report.live_records);
    // An unchanged build writes the live journal's first records again, byte for byte.
    let live = records(&storage, "journal");
    let again = records(&storage, "replay-1/journal");
    assert_eq!(again.len() as u64, report.live_records);
    assert!(live.len() >= again.len());
    for (seq, (a, b)) in live.iter().zip(&again).enumerate() {
        assert!(a == b, "record {seq} differs");
    }
    assert!(has_replayed(&storage, "replay-1"));
    // Nothing live changed: no `CURRENT`, the engine writes on.
    assert!(
        storage
            .file_names(Path::new(""))
            .iter()
            .all(|n| n != "CURRENT")
    );
    assert_eq!(engine.journal_dir(), Path::new("journal"));
    assert_eq!(count(&engine, 30_000, "t1", 1), CommandState::Succeeded);
    assert!(engine.poisoned().is_none());
    assert!(!engine.is_replaying());
    let json = replayed.report_json(false);
    assert_eq!(json["differing"], 0);
    assert_eq!(json["applied"], false);
    assert_eq!(json["journal"], "replay-1/journal");
}

#[test]
fn an_online_replay_by_a_changed_build_reports_what_the_offline_one_does() {
    let storage = SimStorage::new();
    // The before build logs; the after build (a changed `Count`) is deployed on it.
    {
        let (engine, _) = Engine::open(
            Arc::new(storage.clone()),
            tally_before(),
            options(&ManualClock::at_ms(START_MS)),
        )
        .unwrap();
        open_tally(&engine, 1, "t1");
        count(&engine, 2, "t1", 50);
        count(&engine, 3, "t1", 500);
        count(&engine, 4, "t1", 20);
    }
    let (engine, _) = open_again(&storage, tally_after());
    let online = engine.replay_online(false, &mut |_| {}).expect("replayed");
    drop(engine);
    let offline = replay::replay(
        Arc::new(storage.clone()),
        tally_after(),
        options(&ManualClock::at_ms(0)),
        &mut |_| {},
    )
    .expect("replayed");
    assert_eq!(online.journal, Path::new("replay-1/journal"));
    assert_eq!(offline.journal, Path::new("replay-2/journal"));
    assert_eq!(online.report, offline.report);
    assert_eq!(online.report.differing(), 2, "{}", online.report.summary(5));
}

#[test]
fn a_second_online_replay_while_one_runs_is_refused() {
    let storage = SimStorage::new();
    let engine = engine_with_tallies(&storage, tally_before(), 20);
    let mut refused = None;
    engine
        .replay_online(false, &mut |_| {
            if refused.is_none() {
                assert!(engine.is_replaying());
                refused = Some(engine.replay_online(false, &mut |_| {}));
            }
        })
        .expect("the first completes");
    assert!(
        matches!(refused, Some(Err(ReplayError::Running))),
        "{refused:?}"
    );
    // Once it is done, its journal (written in full, not applied) is the one kept:
    // the next is refused until it is deleted.
    assert_eq!(engine.unapplied_replay(), Some("replay-1".into()));
    let refused = engine.replay_online(false, &mut |_| {});
    assert!(
        matches!(&refused, Err(ReplayError::Unapplied { dir }) if dir == Path::new("replay-1")),
        "{refused:?}"
    );
    assert!(!engine.is_replaying());
    storage.remove(Path::new("replay-1/REPLAYED")).unwrap();
    assert_eq!(engine.unapplied_replay(), None);
    let next = engine.replay_online(false, &mut |_| {}).expect("replayed");
    assert_eq!(next.journal, Path::new("replay-1/journal"));
}

/// An online replay (switching with `apply`) whose sync fails halfway through its first
/// pass: it is given up with [`ReplayError::Write`], and only it failed (the live store
/// is not poisoned).
fn replay_with_a_failing_sync(storage: &SimStorage, engine: &Engine, apply: bool) {
    let mut armed = false;
    let failed = engine.replay_online(apply, &mut |p| {
        if p.phase == Phase::Replaying && p.done >= 20 && !armed {
            armed = true;
            storage.fail_next(SimOp::Sync);
        }
    });
    assert!(
        matches!(failed, Err(ReplayError::Write { .. })),
        "{failed:?}"
    );
    assert!(engine.poisoned().is_none());
}

#[test]
fn a_failing_sync_of_an_online_replay_gives_it_up_and_the_live_engine_serves_on() {
    let storage = SimStorage::new();
    let engine = engine_with_tallies(&storage, tally_before(), 40);
    replay_with_a_failing_sync(&storage, &engine, false);
    // Only the replay failed: the live store is not poisoned and takes commands.
    assert!(engine.poisoned().is_none());
    assert_eq!(count(&engine, 1_000, "t1", 1), CommandState::Succeeded);
    assert!(!has_replayed(&storage, "replay-1"));
    // The next replay writes over the partial directory, and completes.
    let again = engine.replay_online(false, &mut |_| {}).expect("replayed");
    assert_eq!(again.journal, Path::new("replay-1/journal"));
    assert!(again.report.differences.is_empty());
    assert_eq!(again.report.live_records, 81);
}

#[test]
fn crash_during_an_online_replay_recovers_the_live_journal_with_every_acknowledged_command() {
    let storage = SimStorage::new();
    let engine = engine_with_tallies(&storage, tally_before(), 40);
    let mut crashed = None;
    let mut acked = 80;
    engine
        .replay_online(false, &mut |p| {
            if p.phase == Phase::Replaying && p.done >= 30 && crashed.is_none() {
                // Commands acknowledged during the replay, then the power is cut.
                for i in 0..3 {
                    count(&engine, 2_000 + i, "t2", 1);
                    acked += 1;
                }
                crashed = Some(storage.crash());
            }
        })
        .expect("replayed");
    let crashed = crashed.expect("crashed during the replay");
    assert!(!has_replayed(&crashed, "replay-1"), "cut short");
    let (engine, report) = open_again(&crashed, tally_before());
    assert_eq!(engine.journal_dir(), Path::new("journal"));
    assert_eq!(report.commands, acked);
    assert_eq!(engine.stream_version(&tally::stream_name("t2")), 2 + 3);
    // The next replay (online here) writes over the one cut short.
    let again = engine.replay_online(false, &mut |_| {}).expect("replayed");
    assert_eq!(again.journal, Path::new("replay-1/journal"));
    assert_eq!(again.report.live_records, acked);
    assert!(again.report.differences.is_empty());
}

#[test]
fn crash_after_an_online_replays_marker_keeps_the_live_journal_and_the_replay() {
    let storage = SimStorage::new();
    let engine = engine_with_tallies(&storage, tally_before(), 10);
    let replayed = engine.replay_online(false, &mut |_| {}).expect("replayed");
    assert_eq!(replayed.report.live_records, 20);
    // The live journal goes on past the replay's end; then the power is cut.
    count(&engine, 500, "t1", 1);
    let crashed = storage.crash();
    assert!(has_replayed(&crashed, "replay-1"));
    let (engine, report) = open_again(&crashed, tally_before());
    assert_eq!(engine.journal_dir(), Path::new("journal"), "never switched");
    assert_eq!(report.commands, 21);
    // A replay written in full is never written over: the next online one is refused
    // while it is on disk, and it stays whole.
    let refused = engine.replay_online(false, &mut |_| {});
    assert!(
        matches!(&refused, Err(ReplayError::Unapplied { dir }) if dir == Path::new("replay-1")),
        "{refused:?}"
    );
    assert_eq!(records(&crashed, "replay-1/journal").len(), 20);
}

#[test]
fn an_online_replay_is_given_up_when_the_engine_shuts_down() {
    let storage = SimStorage::new();
    let engine = engine_with_tallies(&storage, tally_before(), 20);
    let mut shut = false;
    let given_up = engine.replay_online(false, &mut |p| {
        if p.phase == Phase::Replaying && !shut {
            shut = true;
            engine.shutdown();
        }
    });
    assert!(
        matches!(given_up, Err(ReplayError::Stopped { .. })),
        "{given_up:?}"
    );
    assert!(!has_replayed(&storage, "replay-1"));
}

/// A client thread that counts on `t7` until `stop`: each command's id, and whether it
/// was acknowledged (`true`) or refused because the journal was switched (`false`; then
/// it was never logged). Anything else fails the test.
fn switching_client(
    engine: Arc<Engine>,
    stop: Arc<AtomicBool>,
    first_id: u128,
) -> std::thread::JoinHandle<Vec<(u128, bool)>> {
    std::thread::spawn(move || {
        let mut sent = Vec::new();
        let mut id = first_id;
        let payload =
            serde_json::to_vec(&serde_json::json!({"tallyId": "t7", "amount": 1})).unwrap();
        while !stop.load(Ordering::Relaxed) {
            id += 1;
            let acked = match engine.submit(Uuid::from_u128(id), "Count", None, &payload) {
                Ok(Submitted::New(pending)) => match pending.blocking_outcome() {
                    Ok(status) => {
                        assert_eq!(status.state, CommandState::Succeeded);
                        true
                    }
                    Err(Unavailable::Switched) => false,
                    Err(other) => panic!("command {id}: {other}"),
                },
                Err(SubmitError::Unavailable(Unavailable::Switched)) => false,
                Err(other) => panic!("command {id}: {other}"),
                Ok(Submitted::Duplicate) => panic!("duplicate {id}"),
            };
            sent.push((id, acked));
            if !acked {
                break;
            }
        }
        sent
    })
}

/// Replays online (switching with `apply`) beside a client that counts on `t7` all
/// through it ([`switching_client`]) and, deterministically, 5 counts on `t3` (ids
/// 20,001 to 20,005) acknowledged while the first pass runs, which the replay must catch
/// up with (the writer is paused for a switch only after that pass). The replay's
/// result, the phases it reported, and the client's commands.
fn replay_beside_writers(engine: &Arc<Engine>, apply: bool) -> Beside {
    let stop = Arc::new(AtomicBool::new(false));
    let client = switching_client(Arc::clone(engine), Arc::clone(&stop), 1_000_000);
    let mut phases = Vec::new();
    let mut during = 0;
    let replayed = engine.replay_online(apply, &mut |p| {
        if p.phase == Phase::Replaying && during < 5 {
            during += 1;
            assert_eq!(
                count(engine, 20_000 + during, "t3", 2),
                CommandState::Succeeded
            );
        }
        phases.push(p.phase);
    });
    stop.store(true, Ordering::Relaxed);
    Beside {
        replayed,
        phases,
        sent: client.join().unwrap(),
    }
}

/// What [`replay_beside_writers`] gives.
struct Beside {
    replayed: Result<replay::Replayed, ReplayError>,
    phases: Vec<Phase>,
    /// The client's commands: id, and whether it was acknowledged.
    sent: Vec<(u128, bool)>,
}

#[test]
fn an_online_replay_applied_beside_a_writer_switches_with_every_acknowledged_command() {
    let storage = SimStorage::new();
    // The before build logged counts the after build rejects; the after build runs now.
    let before = engine_with_tallies(&storage, tally_before(), 30);
    count(&before, 900, "t1", 500);
    drop(before);
    let (engine, _) = open_again(&storage, tally_after());
    let engine = Arc::new(engine);
    let Beside {
        replayed,
        phases,
        sent,
    } = replay_beside_writers(&engine, true);
    let replayed = replayed.expect("replayed and switched");
    assert!(engine.is_switched());
    assert_eq!(replayed.journal, Path::new("replay-1/journal"));
    assert_eq!(
        replayed.report.differing(),
        1,
        "{}",
        replayed.report.summary(5)
    );
    // Switched off: it refuses, and decides nothing more.
    let refused = engine.submit(Uuid::from_u128(1), "Count", None, b"{}");
    assert!(
        matches!(
            refused,
            Err(SubmitError::Unavailable(Unavailable::Switched))
        ),
        "{refused:?}"
    );
    // The next engine opens on the replay's journal, with every command acknowledged
    // before the switch, and none of those refused.
    let (next, report) = engine.reopen().expect("reopens");
    assert_eq!(next.journal_dir(), Path::new("replay-1/journal"));
    assert_eq!(report.commands, replayed.report.live_records);
    let acked = sent.iter().filter(|(_, acked)| *acked).count() as u64;
    assert_eq!(next.stream_version(&tally::stream_name("t3")), 2 + 5);
    for id in 20_001..=20_005 {
        assert!(next.status(Uuid::from_u128(id)).unwrap().is_some());
    }
    for (id, acked) in &sent {
        let status = next.status(Uuid::from_u128(*id)).unwrap();
        assert_eq!(status.is_some(), *acked, "command {id}");
    }
    // The after build's outcome is the live one: the count of 500 was rejected.
    let rejected = next.status(Uuid::from_u128(900)).unwrap().unwrap().state;
    assert!(
        matches!(&rejected, CommandState::Rejected { code, .. } if code == tally::AMOUNT_TOO_LARGE),
        "{rejected:?}"
    );
    assert_eq!(next.stream_version(&tally::stream_name("t7")), 2 + acked);
    // A command refused by the switch is a new one to the next engine.
    if let Some((id, _)) = sent.iter().find(|(_, acked)| !acked) {
        assert_eq!(count(&next, *id, "t7", 1), CommandState::Succeeded);
    }
    assert_eq!(count(&next, 50_000, "t1", 1), CommandState::Succeeded);
    assert!(phases.contains(&Phase::Comparing), "{phases:?}");
    // The old engine gave its lock over; a reopen of it again is refused.
    drop(next);
    assert!(matches!(
        Engine::open(
            Arc::new(storage.clone()),
            tally_after(),
            options(&ManualClock::at_ms(START_MS + 2))
        )
        .map(|(e, _)| e.journal_dir().to_owned()),
        Ok(dir) if dir == Path::new("replay-1/journal")
    ));
}

#[test]
fn crash_right_after_an_online_switch_opens_the_replays_journal_with_every_acknowledged_command() {
    let storage = SimStorage::new();
    let engine = Arc::new(engine_with_tallies(&storage, tally_before(), 20));
    let stop = Arc::new(AtomicBool::new(false));
    let client = switching_client(Arc::clone(&engine), Arc::clone(&stop), 1_000_000);
    let replayed = engine.replay_online(true, &mut |_| {}).expect("switched");
    stop.store(true, Ordering::Relaxed);
    let sent = client.join().unwrap();
    let crashed = storage.crash();
    let (next, report) = open_again(&crashed, tally_before());
    assert_eq!(next.journal_dir(), Path::new("replay-1/journal"));
    assert_eq!(report.commands, replayed.report.live_records);
    assert!(replayed.report.differences.is_empty());
    for (id, acked) in &sent {
        let status = next.status(Uuid::from_u128(*id)).unwrap();
        assert_eq!(status.is_some(), *acked, "command {id}");
    }
}

#[test]
fn a_failing_sync_of_an_online_replay_to_apply_lets_the_writer_go_on_unswitched() {
    let storage = SimStorage::new();
    let engine = engine_with_tallies(&storage, tally_before(), 40);
    replay_with_a_failing_sync(&storage, &engine, true);
    assert!(!engine.is_switched());
    assert!(engine.poisoned().is_none());
    assert_eq!(count(&engine, 1_000, "t1", 1), CommandState::Succeeded);
    assert_eq!(engine.journal_dir(), Path::new("journal"));
    assert!(
        storage
            .file_names(Path::new(""))
            .iter()
            .all(|n| n != "CURRENT")
    );
}

#[test]
fn a_failing_rename_after_an_online_switch_reopens_whichever_journal_current_names() {
    // `REPLAYED` is renamed into place while it compares; then the engine is switched
    // off and shut down (which may rename a dedupe run into place), then `CURRENT` is
    // renamed. A failure at each in turn: the engine stays switched off, and the one
    // reopened is on the journal `CURRENT` names, whole.
    let mut current_failed = false;
    for skip in 1..=3 {
        let storage = SimStorage::new();
        let engine = engine_with_tallies(&storage, tally_before(), 20);
        let mut armed = false;
        let result = engine.replay_online(true, &mut |p| {
            if p.phase == Phase::Comparing && !armed {
                armed = true;
                storage.fail_nth(SimOp::Rename, skip);
            }
        });
        assert!(armed);
        assert!(
            engine.is_switched(),
            "switched off before CURRENT (skip {skip})"
        );
        assert!(has_replayed(&storage, "replay-1"));
        let expected = match &result {
            Ok(_) => Path::new("replay-1/journal"),
            Err(ReplayError::Io { .. }) => {
                current_failed = true;
                Path::new("journal")
            }
            Err(other) => panic!("skip {skip}: {other}"),
        };
        let (next, report) = engine.reopen().expect("reopens");
        assert_eq!(next.journal_dir(), expected, "skip {skip}");
        assert_eq!(report.commands, 40);
        assert_eq!(count(&next, 1_000, "t1", 1), CommandState::Succeeded);
        drop(next);
        let crashed = storage.crash();
        let (after_crash, _) = open_again(&crashed, tally_before());
        assert_eq!(after_crash.journal_dir(), expected, "skip {skip}");
        assert_eq!(after_crash.stream_version(&tally::stream_name("t1")), 3);
    }
    assert!(current_failed, "one of the failures was CURRENT's");
}
