//! `writ replay` on the engine's side (`writ_engine::replay`): an unchanged build writes
//! the journal again byte for byte; a changed build's report names exactly the commands
//! whose outcome changed; `apply` makes the new journal live; and crashes during the
//! replay and at each step of the switch, on storage that keeps written and durable bytes
//! apart, always leave one complete journal named live.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;
use writ_engine::replay::{self, DifferenceKind, Phase, ReplayError, Replayed};
use writ_engine::{CommandState, Engine, EngineOptions, ManualClock, Origin, Registry, Submitted};
use writ_fixtures::tally;
use writ_log::LogOptions;
use writ_log::storage::{SimOp, SimStorage, Storage};

mod support;
use support::{tally_after, tally_before, wait_until};

/// Small segments (a replay rolls several), small batches (a replay syncs several), no
/// background preallocation, and the given clock.
fn options(clock: &ManualClock) -> EngineOptions {
    EngineOptions {
        command_bytes_max: 28 * 1024,
        timer_ops_bytes_max: 4 * 1024,
        batch_bytes_max: 1024,
        log: LogOptions {
            segment_bytes: 64 * 1024,
            record_bytes_max: 60 * 1024,
            preallocate: false,
            ..LogOptions::default()
        },
        clock: Arc::new(clock.clone()),
        ..EngineOptions::default()
    }
}

/// Options whose dedupe index spills every four ids.
fn spilling(clock: &ManualClock) -> EngineOptions {
    EngineOptions {
        dedupe_spill_entries: 4,
        dedupe_entries_max: 64,
        ..options(clock)
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

/// Every record of the log in `dir`, as bytes.
fn records(storage: &SimStorage, dir: &str) -> Vec<Vec<u8>> {
    support::log_records(storage, dir, support::tiny_segments())
}

const START_MS: u64 = 1_700_000_000_000;

/// A journal of the counters (a transfer over two streams, rejections) and the relay
/// (a chain of process commands; a timer that fired, one cancelled, one still pending),
/// written by an engine on a manual clock.
fn counters_and_relay(storage: &SimStorage) -> u64 {
    let clock = ManualClock::at_ms(START_MS);
    let (engine, _) = Engine::open(
        Arc::new(storage.clone()),
        support::relay_and_counters(),
        options(&clock),
    )
    .expect("engine opens");
    let create = |id: &str| serde_json::json!({"counterId": id, "title": "T", "owner": "ann"});
    let add = |id: &str, amount: u64| serde_json::json!({"counterId": id, "amount": amount});
    assert!(run(&engine, 1, "CreateCounter", create("a")).is_final());
    run(&engine, 2, "CreateCounter", create("b"));
    run(&engine, 3, "Add", add("a", 10));
    clock.advance(Duration::from_millis(3));
    let transfer = serde_json::json!({"counterId": "a", "to": "b", "amount": 4});
    assert_eq!(
        run(&engine, 4, "Transfer", transfer),
        CommandState::Succeeded
    );
    let too_much = serde_json::json!({"counterId": "a", "to": "b", "amount": 400});
    assert!(matches!(
        run(&engine, 5, "Transfer", too_much),
        CommandState::Rejected { .. }
    ));
    assert!(matches!(
        run(&engine, 6, "Add", add("nobody", 1)),
        CommandState::Rejected { .. }
    ));
    run(
        &engine,
        7,
        "CloseCounter",
        serde_json::json!({"counterId": "b"}),
    );
    run(&engine, 8, "Add", add("b", 1));
    // A chain of three: Ping x, then the relay process's Ping x+ and x++.
    run(
        &engine,
        9,
        "Ping",
        serde_json::json!({"relay": "x", "hops": 2}),
    );
    // Timers: r1 fires, r2 is cancelled, r3 is still pending at the end.
    let remind = |relay: &str, at_ms: u64| serde_json::json!({"relay": relay, "atMs": at_ms});
    run(&engine, 10, "Remind", remind("r1", START_MS + 1_000));
    run(&engine, 11, "Remind", remind("r2", START_MS + 2_000));
    run(&engine, 12, "Remind", remind("r3", START_MS + 60_000));
    run(&engine, 13, "Forget", serde_json::json!({"relay": "r2"}));
    clock.advance(Duration::from_millis(5_000));
    wait_until(|| engine.stream_version(&support::stream("r1!")) == 1);
    wait_until(|| engine.is_idle());
    clock.advance(Duration::from_millis(7));
    run(
        &engine,
        14,
        "Ping",
        serde_json::json!({"relay": "y", "hops": 1}),
    );
    run(&engine, 15, "Add", add("a", 1));
    assert_eq!(engine.timers_pending(), 1, "r3");
    let commands = engine.stats().succeeded + engine.stats().rejected + engine.stats().failed;
    drop(engine);
    commands
}

#[test]
fn an_unchanged_build_replays_the_journal_byte_for_byte() {
    let storage = SimStorage::new();
    let commands = counters_and_relay(&storage);
    let live = records(&storage, "journal");
    assert_eq!(live.len() as u64, commands);
    let mut phases = Vec::new();
    let replayed = replay::replay(
        Arc::new(storage.clone()),
        support::relay_and_counters(),
        options(&ManualClock::at_ms(0)),
        &mut |p| phases.push((p.phase, p.done, p.total)),
    )
    .expect("replayed");
    assert_eq!(replayed.source, Path::new("journal"));
    assert_eq!(replayed.journal, Path::new("replay-1/journal"));
    assert_eq!(replayed.timers_pending, 1, "r3 is still pending");
    let again = records(&storage, "replay-1/journal");
    assert_eq!(again.len(), live.len());
    for (seq, (a, b)) in live.iter().zip(&again).enumerate() {
        assert!(a == b, "record {seq} differs");
    }
    let report = &replayed.report;
    assert!(report.differences.is_empty(), "{}", report.summary(10));
    assert_eq!(report.commands, commands);
    assert_eq!(report.same, commands);
    assert_eq!(
        (report.live_records, report.replayed_records),
        (commands, commands)
    );
    assert_eq!(phases.last(), Some(&(Phase::Comparing, commands, commands)));
    assert!(phases.contains(&(Phase::Replaying, commands, commands)));
    // The replay is marked written in full; the live journal is still `journal/`.
    assert!(
        storage
            .file_names(Path::new("replay-1"))
            .contains(&"REPLAYED".to_owned())
    );
    assert!(
        storage
            .file_names(Path::new(""))
            .iter()
            .all(|n| n != "CURRENT")
    );
}

fn count(id: &str, amount: u64) -> serde_json::Value {
    serde_json::json!({"tallyId": id, "amount": amount})
}

/// The before build's journal: ids 3 and 6 count more than the after build allows, 4
/// follows 3 on its tally, and 6 takes tally t1 past the milestone (a `Celebrate`).
fn tallies(storage: &SimStorage, options: EngineOptions) {
    let (engine, _) =
        Engine::open(Arc::new(storage.clone()), tally_before(), options).expect("opens");
    run(
        &engine,
        1,
        "OpenTally",
        serde_json::json!({"tallyId": "t1"}),
    );
    run(&engine, 2, "Count", count("t1", 50));
    run(&engine, 3, "Count", count("t1", 500));
    run(&engine, 4, "Count", count("t1", 20));
    run(
        &engine,
        5,
        "OpenTally",
        serde_json::json!({"tallyId": "t2"}),
    );
    run(&engine, 6, "Count", count("t1", 600));
    run(&engine, 7, "Count", count("t2", 10));
    run(
        &engine,
        8,
        "OpenTally",
        serde_json::json!({"tallyId": "t2"}),
    );
    assert_eq!(
        engine.stream_version(&tally::stream_name("t1")),
        6,
        "celebrated"
    );
    if engine.options().dedupe_spill_entries < 9 {
        wait_until(|| engine.stats().dedupe_runs > 0);
    }
    drop(engine);
}

fn totals(engine: &Engine, id: &str) -> Vec<serde_json::Value> {
    engine
        .read_stream(&tally::stream_name(id), 1, 100)
        .unwrap()
        .iter()
        .map(|e| serde_json::from_slice::<serde_json::Value>(&e.data).unwrap()["total"].clone())
        .filter(|total| !total.is_null())
        .collect()
}

fn replay_after(storage: &SimStorage) -> Result<Replayed, ReplayError> {
    replay::replay(
        Arc::new(storage.clone()),
        tally_after(),
        options(&ManualClock::at_ms(0)),
        &mut |_| {},
    )
}

#[test]
fn a_changed_handler_reports_exactly_the_commands_it_changes_and_what_follows_from_them() {
    let storage = SimStorage::new();
    tallies(&storage, options(&ManualClock::at_ms(START_MS)));
    let replayed = replay_after(&storage).expect("replayed");
    let report = &replayed.report;
    let listed: Vec<(Option<u128>, &str, Origin, &[DifferenceKind])> = report
        .differences
        .iter()
        .map(|d| {
            let client = (d.origin == Origin::Client).then(|| d.id.as_u128());
            (client, d.command.as_str(), d.origin, d.kinds.as_slice())
        })
        .collect();
    use DifferenceKind::*;
    assert_eq!(
        listed,
        [
            (Some(3), "Count", Origin::Client, &[Status, Events][..]),
            // t1 holds 70 where it held 570, one version earlier.
            (Some(4), "Count", Origin::Client, &[Events][..]),
            (Some(6), "Count", Origin::Client, &[Status, Events][..]),
            // 6 no longer takes t1 past the milestone: no Celebrate.
            (None, "Celebrate", Origin::Process, &[Missing][..]),
        ],
        "{}",
        report.summary(10)
    );
    let rejected = report.differences[0].replayed.as_ref().unwrap();
    assert_eq!(rejected.code, tally::AMOUNT_TOO_LARGE);
    assert!(rejected.events.is_empty());
    let four = &report.differences[1];
    let (was, is) = (four.live.as_ref().unwrap(), four.replayed.as_ref().unwrap());
    assert_eq!((was.events[0].version, is.events[0].version), (4, 3));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&is.events[0].data).unwrap()["total"],
        70
    );
    assert_eq!((report.live_records, report.replayed_records), (9, 8));
    assert_eq!((report.commands, report.same), (9, 5));
    assert_eq!(report.count(Status), 2);
    assert_eq!(report.count(Missing), 1);
    assert_eq!(report.count(Added), 0);
    let json = report.to_json();
    assert_eq!(json["differing"], 4);
    assert_eq!(json["byKind"]["events"], 3);
    assert_eq!(json["differences"][0]["replay"]["code"], "amount_too_large");
    assert_eq!(json["differences"][3]["replay"], serde_json::Value::Null);
    let summary = report.summary(2);
    assert!(
        summary.starts_with("commands=9 same=5 differing=4"),
        "{summary}"
    );
    assert!(summary.contains("... and 2 more"), "{summary}");
}

#[test]
fn apply_makes_the_replay_live_and_removes_the_old_journals_dedupe_runs() {
    let storage = SimStorage::new();
    tallies(&storage, spilling(&ManualClock::at_ms(START_MS)));
    let old_runs = storage.file_names(Path::new("dedupe"));
    assert!(!old_runs.is_empty(), "the old journal's ids were spilled");
    let replayed = replay_after(&storage).expect("replayed");
    replay::apply(&storage, &replayed).expect("applied");
    assert_eq!(
        storage.read_durable(Path::new("CURRENT")).unwrap(),
        b"replay-1/journal\n"
    );
    assert!(storage.file_names(Path::new("dedupe")).is_empty());
    // The old journal stays as it was.
    assert_eq!(records(&storage, "journal").len(), 9);
    let (engine, report) = Engine::open(
        Arc::new(storage.crash()),
        tally_after(),
        spilling(&ManualClock::at_ms(START_MS + 1)),
    )
    .expect("opens");
    assert_eq!(report.commands, 8);
    assert_eq!(totals(&engine, "t1"), as_json(&NEW_T1));
    every_id_a_duplicate(&engine);
}

/// Every client's command of [`tallies`] is a duplicate when resent.
fn every_id_a_duplicate(engine: &Engine) {
    let payloads = [
        ("OpenTally", serde_json::json!({"tallyId": "t1"})),
        ("Count", count("t1", 50)),
        ("Count", count("t1", 500)),
        ("Count", count("t1", 20)),
        ("OpenTally", serde_json::json!({"tallyId": "t2"})),
        ("Count", count("t1", 600)),
        ("Count", count("t2", 10)),
        ("OpenTally", serde_json::json!({"tallyId": "t2"})),
    ];
    for (i, (command, payload)) in payloads.iter().enumerate() {
        let again = engine
            .submit(
                Uuid::from_u128(i as u128 + 1),
                command,
                None,
                &serde_json::to_vec(payload).unwrap(),
            )
            .expect("submit");
        assert!(matches!(again, Submitted::Duplicate), "id {}", i + 1);
    }
}

/// The live journal's events, read by an engine opened on `storage` (after a crash).
fn t1_after_crash(storage: &SimStorage, registry: Registry) -> (Vec<serde_json::Value>, u64) {
    let (engine, report) = Engine::open(
        Arc::new(storage.crash()),
        registry,
        spilling(&ManualClock::at_ms(START_MS + 1)),
    )
    .expect("opens: one complete journal is live");
    every_id_a_duplicate(&engine);
    (totals(&engine, "t1"), report.commands)
}

const OLD_T1: [u64; 5] = [50, 550, 570, 1170, 1170];
const NEW_T1: [u64; 2] = [50, 70];

fn as_json(totals: &[u64]) -> Vec<serde_json::Value> {
    totals.iter().map(|t| (*t).into()).collect()
}

#[test]
fn crash_during_the_replays_writing_leaves_the_live_journal_and_the_next_replay_writes_over_it() {
    let storage = SimStorage::new();
    tallies(&storage, options(&ManualClock::at_ms(START_MS)));
    let live = records(&storage, "journal");
    // Halfway through, a sync of the new journal fails: the replay stops, nothing applied.
    let mut armed = false;
    let failed = replay::replay(
        Arc::new(storage.clone()),
        tally_after(),
        EngineOptions {
            batch_bytes_max: 64,
            ..options(&ManualClock::at_ms(0))
        },
        &mut |p| {
            if p.phase == Phase::Replaying && p.done >= 4 && !armed {
                armed = true;
                storage.fail_next(SimOp::Sync);
            }
        },
    );
    assert!(
        matches!(failed, Err(ReplayError::Write { .. })),
        "{failed:?}"
    );
    let crashed = storage.crash();
    assert!(
        !crashed
            .durable_file_names(Path::new("replay-1"))
            .contains(&"REPLAYED".to_owned())
    );
    assert!(
        !records(&crashed, "replay-1/journal").is_empty(),
        "a part of the replay is durable"
    );
    assert_eq!(
        records(&crashed, "journal"),
        live,
        "the live journal is untouched"
    );
    let (t1, commands) = t1_after_crash(&crashed, tally_before());
    assert_eq!((t1, commands), (as_json(&OLD_T1), 9));
    // The next replay takes the partial directory, emptied, and completes.
    let replayed = replay_after(&crashed).expect("replayed");
    assert_eq!(replayed.journal, Path::new("replay-1/journal"));
    assert_eq!(replayed.report.differing(), 4);
    assert_eq!(records(&crashed, "replay-1/journal").len(), 8);
    replay::apply(&crashed, &replayed).expect("applied");
    let (t1, commands) = t1_after_crash(&crashed, tally_after());
    assert_eq!((t1, commands), (as_json(&NEW_T1), 8));
}

/// A data directory with the before build's journal (its ids spilled to runs) and a
/// replay of it by the after build, not yet applied.
fn replayed_tallies() -> (SimStorage, Replayed) {
    let storage = SimStorage::new();
    tallies(&storage, spilling(&ManualClock::at_ms(START_MS)));
    let replayed = replay_after(&storage).expect("replayed");
    (storage, replayed)
}

#[test]
fn crash_before_current_tmp_is_synced_leaves_the_old_journal_live() {
    let (storage, replayed) = replayed_tallies();
    storage.fail_next(SimOp::Sync);
    assert!(replay::apply(&storage, &replayed).is_err());
    assert!(
        storage
            .file_names(Path::new(""))
            .contains(&"CURRENT.tmp".to_owned())
    );
    let (t1, commands) = t1_after_crash(&storage, tally_before());
    assert_eq!((t1, commands), (as_json(&OLD_T1), 9));
    // A CURRENT.tmp a crash left durable names nothing, and open removes it.
    let crashed = storage.crash();
    let tmp = crashed.create(Path::new("CURRENT.tmp")).unwrap();
    writ_log::storage::write_all_at(&*tmp, b"replay-1/journal\n", 0).unwrap();
    tmp.sync_data().unwrap();
    crashed.sync_dir(Path::new("")).unwrap();
    let (t1, _) = t1_after_crash(&crashed, tally_before());
    assert_eq!(t1, as_json(&OLD_T1));
    let (_engine, _) = Engine::open(
        Arc::new(crashed.clone()),
        tally_before(),
        options(&ManualClock::at_ms(START_MS + 1)),
    )
    .expect("opens");
    assert!(
        !crashed
            .file_names(Path::new(""))
            .contains(&"CURRENT.tmp".to_owned())
    );
}

#[test]
fn crash_after_currents_rename_before_the_directory_sync_leaves_one_journal_live() {
    let (storage, replayed) = replayed_tallies();
    storage.fail_next(SimOp::SyncDir);
    assert!(replay::apply(&storage, &replayed).is_err());
    // What is seen (not durable) is the new name; a crash keeps the old.
    assert_eq!(
        storage.read_written(Path::new("CURRENT")).unwrap(),
        b"replay-1/journal\n"
    );
    let (t1, commands) = t1_after_crash(&storage, tally_before());
    assert_eq!((t1, commands), (as_json(&OLD_T1), 9));
    // The old journal's runs are still its own.
    assert!(!storage.crash().file_names(Path::new("dedupe")).is_empty());
}

#[test]
fn crash_after_the_switch_before_the_dedupe_cleanup_never_reads_the_old_journals_runs() {
    let (storage, replayed) = replayed_tallies();
    let old_runs = storage.file_names(Path::new("dedupe"));
    // The first removal is of a CURRENT.tmp that is not there; the second, an old run's.
    storage.fail_nth(SimOp::Remove, 1);
    replay::apply(&storage, &replayed).expect("the switch is done; the cleanup is a hint");
    let crashed = storage.crash();
    assert_eq!(
        crashed.file_names(Path::new("dedupe")),
        old_runs,
        "left behind"
    );
    let (engine, report) = Engine::open(
        Arc::new(crashed.clone()),
        tally_after(),
        spilling(&ManualClock::at_ms(START_MS + 1)),
    )
    .expect("opens");
    assert_eq!(report.commands, 8);
    assert_eq!(
        report.dedupe_runs_removed, 0,
        "the old runs are not looked at"
    );
    assert_eq!(totals(&engine, "t1"), as_json(&NEW_T1));
    every_id_a_duplicate(&engine);
    drop(engine);
    assert_eq!(
        crashed.file_names(Path::new("dedupe")),
        old_runs,
        "nor touched"
    );
}

#[test]
fn a_current_naming_a_replay_not_written_in_full_is_refused() {
    let (storage, replayed) = replayed_tallies();
    replay::apply(&storage, &replayed).expect("applied");
    storage.remove(Path::new("replay-1/REPLAYED")).unwrap();
    let refused = Engine::open(
        Arc::new(storage.clone()),
        tally_after(),
        options(&ManualClock::at_ms(START_MS + 1)),
    )
    .map(|_| ())
    .unwrap_err();
    assert!(
        matches!(refused, writ_engine::OpenError::Current { .. }),
        "{refused}"
    );
}

#[test]
fn a_second_replay_takes_the_next_directory_and_replays_the_live_journal() {
    let (storage, replayed) = replayed_tallies();
    replay::apply(&storage, &replayed).expect("applied");
    // The after build again, on its own journal: nothing differs.
    let again = replay_after(&storage).expect("replayed");
    assert_eq!(again.source, Path::new("replay-1/journal"));
    assert_eq!(again.journal, Path::new("replay-2/journal"));
    assert!(
        again.report.differences.is_empty(),
        "{}",
        again.report.summary(5)
    );
    assert_eq!(
        records(&storage, "replay-1/journal"),
        records(&storage, "replay-2/journal")
    );
}

/// A replay's dedupe index spills to runs beside its journal as a live engine's does (so
/// it holds about `dedupe_spill_entries` ids in memory, not the whole window), and the
/// engine that opens the applied replay keeps those runs: none is removed, and every
/// client's id is still a duplicate.
#[test]
fn a_replay_spills_its_dedupe_runs_beside_its_journal_and_the_applied_engine_keeps_them() {
    let storage = SimStorage::new();
    tallies(&storage, spilling(&ManualClock::at_ms(START_MS)));
    let replayed = replay::replay(
        Arc::new(storage.clone()),
        tally_after(),
        spilling(&ManualClock::at_ms(0)),
        &mut |_| {},
    )
    .expect("replayed");
    let runs = storage.file_names(Path::new("replay-1/dedupe"));
    assert!(
        runs.iter().any(|name| !name.ends_with(".tmp")),
        "the replay spilled its ids: {runs:?}"
    );
    replay::apply(&storage, &replayed).expect("applied");
    let (engine, report) = Engine::open(
        Arc::new(storage.crash()),
        tally_after(),
        spilling(&ManualClock::at_ms(START_MS + 1)),
    )
    .expect("opens");
    assert_eq!(report.dedupe_runs_removed, 0, "{report:?}");
    assert!(report.dedupe_runs >= 1, "{report:?}");
    assert_eq!(totals(&engine, "t1"), as_json(&NEW_T1));
    every_id_a_duplicate(&engine);
}
