//! Crash consistency of the engine, each scenario by name, on storage that keeps written and
//! durable bytes apart (`SimStorage`): a crash keeps only what was synced, plus exactly the
//! torn or corrupt bytes a test chooses.
//!
//! The engine keeps one journal: a command and its outcome are one record, made durable by
//! one sync. So the orderings to cover are those of one file (a crash before the sync, a
//! torn write, damage after it) and those of units: a command and the commands its events
//! make processes issue, which span frames when they do not fit in one, and timers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use uuid::Uuid;
use writ_engine::{
    CommandState, CommandStatus, Engine, EngineOptions, OpenError, Origin, Registry, SubmitError,
    Submitted, Unavailable,
};
use writ_fixtures::Counters;
use writ_log::LogOptions;
use writ_log::storage::{SimOp, SimStorage};

/// The registry of the counters domain alone.
fn counters() -> writ_engine::Registry {
    writ_engine::Registry::builder()
        .domain(writ_domain::model::domain::<Counters>())
        .build()
        .expect("one domain")
}

mod support;
use support::{changed_range, now_ms, submit_now, submit_now_when_idle, wait_until};

/// Small segments, no background preallocation: every sync in a test is one the test
/// can count (one per batch).
fn options() -> EngineOptions {
    EngineOptions {
        command_bytes_max: 28 * 1024,
        timer_ops_bytes_max: 4 * 1024,
        log: LogOptions {
            segment_bytes: 64 * 1024,
            record_bytes_max: 60 * 1024,
            preallocate: false,
            ..LogOptions::default()
        },
        ..EngineOptions::default()
    }
}

fn open(storage: &SimStorage) -> (Engine, writ_engine::RecoveryReport) {
    open_with(storage, counters())
}

fn open_with(storage: &SimStorage, registry: Registry) -> (Engine, writ_engine::RecoveryReport) {
    Engine::open(Arc::new(storage.clone()), registry, options()).expect("engine opens")
}

fn try_open(storage: &SimStorage) -> Result<Engine, OpenError> {
    Engine::open(Arc::new(storage.clone()), counters(), options()).map(|(e, _)| e)
}

fn create(counter: &str) -> Vec<u8> {
    format!(r#"{{"counterId":"{counter}","title":"T","owner":"ann"}}"#).into_bytes()
}

fn add(counter: &str, note: &str) -> Vec<u8> {
    format!(r#"{{"counterId":"{counter}","amount":1,"note":"{note}"}}"#).into_bytes()
}

fn submit(engine: &Engine, id: u128, command: &str, payload: &[u8]) -> writ_engine::Pending {
    match engine
        .submit(Uuid::from_u128(id), command, None, payload)
        .expect("submit")
    {
        Submitted::New(pending) => pending,
        Submitted::Duplicate => panic!("duplicate"),
    }
}

fn run(engine: &Engine, id: u128, command: &str, payload: &[u8]) -> CommandStatus {
    let mut pending = submit(engine, id, command, payload);
    pending.blocking_accepted().expect("accepted");
    pending.blocking_outcome().expect("outcome")
}

fn final_status(engine: &Engine, id: u128) -> Option<CommandStatus> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(engine.wait(Uuid::from_u128(id), writ_engine::WaitFor::Final))
        .expect("wait")
}

fn segment(storage: &SimStorage, log: &str) -> PathBuf {
    let names = storage.file_names(Path::new(log));
    let name = names
        .iter()
        .filter(|n| n.ends_with(".wlog"))
        .max()
        .unwrap_or_else(|| panic!("no segment in {log}: {names:?}"));
    Path::new(log).join(name)
}

fn is_poisoned(result: Result<impl std::fmt::Debug, Unavailable>) -> bool {
    matches!(result, Err(Unavailable::Poisoned { .. }))
}

#[test]
fn crash_before_the_journal_sync_loses_only_the_unacknowledged_command() {
    let storage = SimStorage::new();
    let (engine, _) = open(&storage);
    run(&engine, 1, "CreateCounter", &create("a"));
    storage.fail_next_sync();
    let mut pending = submit(&engine, 2, "Add", &add("a", "lost"));
    assert!(
        is_poisoned(pending.blocking_accepted()),
        "never acknowledged"
    );
    assert!(engine.poisoned().is_some());
    assert!(matches!(
        engine.submit(Uuid::from_u128(3), "Add", None, &add("a", "x")),
        Err(SubmitError::Unavailable(Unavailable::Poisoned { .. }))
    ));
    assert_eq!(
        engine.read_stream("counter-a", 1, 10).unwrap().len(),
        1,
        "reads keep working, and show nothing of the unsynced command"
    );
    let crashed = storage.crash();
    drop(engine);
    let (engine, report) = open(&crashed);
    assert_eq!(report.commands, 1);
    assert_eq!(report.resumed, 0);
    assert_eq!(engine.status(Uuid::from_u128(2)).unwrap(), None);
    // The client retries with the same id after the restart: a new command, run once.
    assert_eq!(
        run(&engine, 2, "Add", &add("a", "lost")).state,
        CommandState::Succeeded
    );
    assert_eq!(engine.read_stream("counter-a", 1, 10).unwrap().len(), 2);
}

#[test]
fn a_command_decided_on_the_submitting_thread_is_acknowledged_only_once_synced() {
    let storage = SimStorage::new();
    let (engine, _) = open(&storage);
    run(&engine, 1, "CreateCounter", &create("a"));
    // Synced on this thread before submit_now returns: a crash right after keeps it.
    let mut kept = submit_now_when_idle(&engine, 2, "Add", &add("a", "kept"));
    assert_eq!(kept.try_accepted().expect("answered on return").unwrap(), 1);
    let after_kept = storage.crash();
    // A failed sync on this thread: never acknowledged, lost in a crash, the engine stops.
    storage.fail_next_sync();
    let mut lost = submit_now_when_idle(&engine, 3, "Add", &add("a", "lost"));
    assert!(is_poisoned(lost.blocking_accepted()), "never acknowledged");
    assert!(engine.poisoned().is_some());
    let after_lost = storage.crash();
    drop(engine);
    assert_eq!(commands_held(&after_kept), 2);
    let (engine, report) = open(&after_lost);
    assert_eq!(report.commands, 2);
    assert_eq!(engine.status(Uuid::from_u128(3)).unwrap(), None);
    let kept = engine.status(Uuid::from_u128(2)).unwrap().expect("kept");
    assert_eq!(kept.state, CommandState::Succeeded);
    assert_eq!(engine.read_stream("counter-a", 1, 10).unwrap().len(), 2);
}

/// How many commands a store holds once opened.
fn commands_held(storage: &SimStorage) -> u64 {
    let (engine, report) = open(storage);
    engine.shutdown();
    report.commands
}

#[test]
fn crash_after_the_journal_sync_keeps_commands_with_their_outcomes_and_runs_nothing_again() {
    let storage = SimStorage::new();
    let (engine, _) = open(&storage);
    let statuses: Vec<_> = [
        run(&engine, 1, "CreateCounter", &create("a")),
        run(&engine, 2, "Add", &add("a", "one")),
        run(&engine, 3, "Add", &add("missing", "x")),
    ]
    .into();
    let crashed = storage.crash();
    drop(engine);
    let (engine, report) = open(&crashed);
    assert_eq!((report.commands, report.events, report.resumed), (3, 2, 0));
    for (i, status) in statuses.iter().enumerate() {
        assert_eq!(
            &engine
                .status(Uuid::from_u128(i as u128 + 1))
                .unwrap()
                .unwrap(),
            status
        );
    }
    let events = engine.read_all(1, 10).unwrap();
    assert_eq!(events.len(), 2);
    // The addition's id is derived from the command id, as when it was decided.
    let data: serde_json::Value = serde_json::from_slice(&events[1].data).unwrap();
    let envelope = writ_domain::Envelope {
        command_id: Uuid::from_u128(2),
        recorded_at_ms: 0,
        sequence: 0,
        correlation_id: Uuid::from_u128(2),
    };
    assert_eq!(data["additionId"], envelope.derive_id(0).to_string());
    // And a second crash changes nothing.
    drop(engine);
    let (engine, report) = open(&crashed.crash());
    assert_eq!((report.commands, report.resumed), (3, 0));
    assert_eq!(engine.read_all(1, 10).unwrap().len(), 2);
}

#[test]
fn torn_journal_write_is_truncated_and_reported() {
    let storage = SimStorage::new();
    let (engine, _) = open(&storage);
    run(&engine, 1, "CreateCounter", &create("a"));
    storage.fail_next_sync();
    let mut pending = submit(&engine, 2, "Add", &add("a", &"x".repeat(3000)));
    assert!(is_poisoned(pending.blocking_accepted()));
    let path = segment(&storage, "journal");
    let unsynced = storage.unsynced_ranges(&path).unwrap();
    assert!(
        !unsynced.is_empty(),
        "the failed batch was written but not synced"
    );
    // A torn write: only the first part of the batch's bytes reached the disk.
    let torn = unsynced[0].start..unsynced[0].start + (unsynced[0].end - unsynced[0].start) / 2;
    let crashed = storage.crash_keeping(&path, torn).unwrap();
    drop(engine);
    let (engine, report) = open(&crashed);
    assert!(report.truncated.is_some(), "{report:?}");
    assert_eq!(report.commands, 1);
    assert_eq!(engine.status(Uuid::from_u128(2)).unwrap(), None);
    assert_eq!(
        engine.status(Uuid::from_u128(1)).unwrap().unwrap().state,
        CommandState::Succeeded
    );
    assert_eq!(run(&engine, 3, "Add", &add("a", "after")).sequence, 1);
}

#[test]
fn corrupt_journal_tail_is_cut_and_reported() {
    // A damaged last frame with nothing after it cannot be told from a torn write (the
    // log's recovery table): it is cut and reported as a checksum mismatch, worth an alert.
    // Bit rot is detected, not prevented (assumption A3); the journal keeps one copy.
    let storage = SimStorage::new();
    let (engine, _) = open(&storage);
    run(&engine, 1, "CreateCounter", &create("a"));
    run(&engine, 2, "Add", &add("a", "one"));
    let path = segment(&storage, "journal");
    let before = storage.read_durable(&path).unwrap();
    run(&engine, 3, "Add", &add("a", "two"));
    let after = storage.read_durable(&path).unwrap();
    let frame = changed_range(&before, &after);
    drop(engine);
    // Flip a byte in the middle of the last frame: its checksum no longer matches.
    let middle = frame.start + (frame.end - frame.start) / 2;
    let mut byte = [after[middle as usize]];
    byte[0] ^= 0xff;
    storage.corrupt(&path, middle, &byte).unwrap();

    let (engine, report) = open(&storage);
    let cut = report.truncated.expect("the damaged tail is reported");
    assert_eq!(
        cut.offset, frame.start,
        "cut where the damaged frame begins"
    );
    assert_eq!(report.commands, 2);
    assert_eq!(engine.status(Uuid::from_u128(3)).unwrap(), None);
    assert_eq!(engine.read_all(1, 10).unwrap().len(), 2);
}

#[test]
fn corrupt_journal_middle_refuses_to_open() {
    let storage = SimStorage::new();
    let (engine, _) = open(&storage);
    let path = segment(&storage, "journal");
    let before = storage.read_durable(&path).unwrap();
    run(&engine, 1, "CreateCounter", &create("a"));
    let after = storage.read_durable(&path).unwrap();
    run(&engine, 2, "Add", &add("a", "one"));
    run(&engine, 3, "Add", &add("a", "two"));
    drop(engine);
    let frame = changed_range(&before, &after);
    storage
        .flip(&path, frame.start + (frame.end - frame.start) / 2, 2)
        .unwrap();
    let error = try_open(&storage).expect_err("damage before the tail must not be truncated");
    let message = error.to_string();
    assert!(
        matches!(error, OpenError::Log { log: "journal", .. }),
        "{message}"
    );
    assert!(message.contains(".wlog"), "names the file: {message}");
}

#[test]
fn a_data_directory_of_the_two_log_layout_is_refused_not_started_empty() {
    let storage = SimStorage::new();
    {
        let (log, _) = writ_log::Log::open(
            Arc::new(storage.clone()),
            Path::new("commands"),
            options().log,
        )
        .unwrap();
        drop(log);
    }
    let error = try_open(&storage).expect_err("an old store is not opened as a new one");
    assert!(matches!(error, OpenError::OldLayout { .. }), "{error}");
}

// ---------------------------------------------------------------------------------------
// Units: a command and the commands its events make processes issue.

/// Streams of the relay domain and how many events each holds.
fn relay_streams(engine: &Engine, relays: &[&str]) -> Vec<u64> {
    relays
        .iter()
        .map(|r| engine.stream_version(&support::stream(r)))
        .collect()
}

#[test]
fn a_process_command_runs_right_after_its_cause_in_one_sync() {
    let storage = SimStorage::new();
    let (engine, _) = open_with(&storage, support::relay());
    let status = run(&engine, 1, "Ping", &support::ping("a", 2));
    assert_eq!(status.state, CommandState::Succeeded);
    // The chain a -> a+ -> a++ is decided as one unit and durable once the cause is.
    assert_eq!(relay_streams(&engine, &["a", "a+", "a++"]), [1, 1, 1]);
    let events = engine.read_all(1, 10).unwrap();
    assert_eq!(events.len(), 3);
    let issued = engine
        .status(events[1].command_id)
        .unwrap()
        .expect("a process's command answers like any other");
    assert_eq!(issued.origin, Origin::Process);
    assert_eq!(issued.causation_id, Some(Uuid::from_u128(1)));
    assert_eq!(issued.correlation_id, Uuid::from_u128(1));
    assert_eq!(
        events[2].correlation_id,
        Uuid::from_u128(1),
        "the chain's first command"
    );
    assert_eq!(
        events[2].command_id,
        engine.status(events[2].command_id).unwrap().unwrap().id
    );
    assert_eq!(engine.stats().commands_issued, 2);
}

/// A `Ping` of relay `a` with one hop whose cause is durable and acknowledged and whose
/// caused command is not, then a crash: the storage as it is after the crash.
fn crashed_between_cause_and_caused_command() -> SimStorage {
    let storage = SimStorage::new();
    let (engine, _) = open_with(&storage, support::relay());
    // Each command's record takes more than half a 64 KiB segment, so the cause and the
    // command it makes the process issue go in two frames: the first frame's sync (0),
    // then a roll (1, 2) and the second frame's (3). The roll's first sync fails.
    storage.fail_nth(SimOp::Sync, 1);
    let mut pending = submit(&engine, 1, "Ping", &support::padded_ping("a", 1, 20_000));
    pending
        .blocking_accepted()
        .expect("the cause is durable and acknowledged");
    storage.crash()
}

#[test]
fn crash_after_the_causing_event_and_before_the_caused_command_runs_the_command_once_at_start() {
    let crashed = crashed_between_cause_and_caused_command();
    let (engine, report) = open_with(&crashed, support::relay());
    assert_eq!(
        report.resumed, 1,
        "the issued command was not durable: it runs at start"
    );
    wait_until(|| engine.stream_version(&support::stream("a+")) == 1);
    assert_eq!(relay_streams(&engine, &["a", "a+", "a++"]), [1, 1, 0]);
    // Once, also across another crash and start.
    drop(engine);
    let (engine, report) = open_with(&crashed.crash(), support::relay());
    assert_eq!(report.resumed, 0);
    assert_eq!(relay_streams(&engine, &["a", "a+"]), [1, 1]);
    assert_eq!(engine.read_all(1, 10).unwrap().len(), 2);
}

#[test]
fn a_unit_cut_by_a_crash_is_completed_before_any_command_submitted_after_open() {
    let crashed = crashed_between_cause_and_caused_command();
    let (engine, report) = open_with(&crashed, support::relay());
    assert_eq!(report.resumed, 1);
    // Submitted the moment the engine is open, on this thread when it can be: still
    // after the resumed command, which belongs to the unit before it.
    let next = submit_now(&engine, 2, "Ping", &support::ping("b", 0));
    assert_eq!(
        next.blocking_outcome().unwrap().state,
        CommandState::Succeeded
    );
    let streams: Vec<String> = engine
        .read_all(1, 10)
        .unwrap()
        .iter()
        .map(|e| e.stream.clone())
        .collect();
    assert_eq!(
        streams,
        [
            support::stream("a"),
            support::stream("a+"),
            support::stream("b")
        ]
    );
}

#[test]
fn a_rejection_whose_details_would_overflow_the_record_is_kept_without_them() {
    // 70 KB of details do not fit a 60 KiB record. Written as they are, the record would
    // be refused by the journal, which poisons the engine.
    let storage = SimStorage::new();
    let (engine, _) = open_with(&storage, support::relay());
    let payload =
        serde_json::to_vec(&serde_json::json!({"relay": "a", "other": "b", "pad": 70_000}))
            .unwrap();
    let status = run(&engine, 1, "Inspect", &payload);
    let CommandState::Rejected {
        code,
        message,
        details,
    } = &status.state
    else {
        panic!("{:?}", status.state);
    };
    assert_eq!(code, "empty");
    assert!(details.is_empty(), "{} details", details.len());
    assert!(message.contains("details of"), "{message}");
    assert!(engine.poisoned().is_none());
    // As the journal holds it, also after a restart.
    drop(engine);
    let (engine, _) = open_with(&storage.crash(), support::relay());
    assert_eq!(
        engine.status(Uuid::from_u128(1)).unwrap().unwrap().state,
        status.state
    );
    assert_eq!(
        run(&engine, 2, "Ping", &support::ping("a", 0)).state,
        CommandState::Succeeded
    );
}

#[test]
fn crash_during_a_chain_of_three_completes_the_chain_once() {
    // Each record of the chain a -> a+ -> a++ takes more than half a 64 KiB segment, so
    // each takes a frame, and the second and third a segment of their own. Syncs: the
    // first frame's (0); a roll (the new segment's size, 1; its header, 2), the second
    // frame's (3), the sealed segment's index file (4); a roll (5, 6), the third frame's
    // (7). Failing sync 1 leaves one frame durable, failing sync 5 two.
    for (fail, durable_frames) in [(Some(1), 1), (Some(5), 2), (None, 3)] {
        let storage = SimStorage::new();
        let (engine, _) = open_with(&storage, support::relay());
        if let Some(fail) = fail {
            storage.fail_nth(SimOp::Sync, fail);
        }
        let mut pending = submit(&engine, 1, "Ping", &support::padded_ping("a", 2, 20_000));
        pending
            .blocking_accepted()
            .expect("the first frame is durable: the cause is acknowledged");
        let crashed = storage.crash();
        drop(engine);
        let (engine, report) = open_with(&crashed, support::relay());
        assert_eq!(
            report.commands, durable_frames as u64,
            "{durable_frames} frames"
        );
        // The next link is resumed at start; the one after it is issued when it runs.
        assert_eq!(
            report.resumed,
            usize::from(durable_frames < 3),
            "after {durable_frames} frames"
        );
        wait_until(|| engine.stream_version(&support::stream("a++")) == 1);
        assert_eq!(
            relay_streams(&engine, &["a", "a+", "a++", "a+++"]),
            [1, 1, 1, 0],
            "after {durable_frames} frames: every link once"
        );
        let ids: Vec<Uuid> = engine
            .read_all(1, 10)
            .unwrap()
            .iter()
            .map(|e| e.command_id)
            .collect();
        // The ids are derived from the events, so a resumed command has the id the first
        // run would have given it.
        let first_run = {
            let storage = SimStorage::new();
            let (engine, _) = open_with(&storage, support::relay());
            run(&engine, 1, "Ping", &support::padded_ping("a", 2, 20_000));
            engine
                .read_all(1, 10)
                .unwrap()
                .iter()
                .map(|e| e.command_id)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids, first_run);
    }
}

#[test]
fn crash_after_a_timer_is_due_and_before_it_fires_fires_it_once_at_start() {
    let storage = SimStorage::new();
    let (engine, _) = open_with(&storage, support::relay());
    let due = now_ms() + 300;
    run(&engine, 1, "Remind", &support::remind("a", due));
    assert_eq!(engine.timers_pending(), 1);
    // The firing's sync fails: the timer was due, its command never became durable.
    storage.fail_next_sync();
    wait_until(|| engine.poisoned().is_some());
    let crashed = storage.crash();
    drop(engine);
    let (engine, report) = open_with(&crashed, support::relay());
    assert_eq!(report.timers_pending, 1, "still pending after the crash");
    wait_until(|| engine.stream_version(&support::stream("a!")) == 1);
    assert_eq!(engine.timers_pending(), 0);
    let fired = engine.read_stream(&support::stream("a!"), 1, 10).unwrap();
    let status = engine.status(fired[0].command_id).unwrap().unwrap();
    assert_eq!(status.origin, Origin::Timer);
    assert_eq!(status.causation_id, Some(Uuid::from_u128(1)));
    assert!(fired[0].recorded_at_ms >= due, "never before its time");
    // It fired once: another start finds nothing pending and fires nothing.
    drop(engine);
    let (engine, report) = open_with(&crashed.crash(), support::relay());
    assert_eq!(report.timers_pending, 0);
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(engine.stream_version(&support::stream("a!")), 1);
}

#[test]
fn a_cancelled_timer_stays_cancelled_across_a_restart() {
    let storage = SimStorage::new();
    let (engine, _) = open_with(&storage, support::relay());
    run(
        &engine,
        1,
        "Remind",
        &support::remind("a", now_ms() + 60_000),
    );
    run(
        &engine,
        2,
        "Remind",
        &support::remind("b", now_ms() + 60_000),
    );
    run(&engine, 3, "Forget", &support::only("a"));
    assert_eq!(engine.timers_pending(), 1);
    drop(engine);
    let (_engine, report) = open_with(&storage.crash(), support::relay());
    assert_eq!(report.timers_pending, 1);
}

#[test]
fn failed_write_poisons_and_restart_recovers() {
    let storage = SimStorage::new();
    let (engine, _) = open(&storage);
    run(&engine, 1, "CreateCounter", &create("a"));
    storage.fail_next_write();
    let mut pending = submit(&engine, 2, "Add", &add("a", "x"));
    assert!(is_poisoned(pending.blocking_accepted()));
    assert_eq!(
        engine.status(Uuid::from_u128(1)).unwrap().unwrap().state,
        CommandState::Succeeded
    );
    drop(engine);
    let (engine, report) = open(&storage.crash());
    assert_eq!(report.commands, 1);
    assert_eq!(
        run(&engine, 2, "Add", &add("a", "x")).state,
        CommandState::Succeeded
    );
}

#[test]
fn disk_full_poisons_and_restart_recovers() {
    let storage = SimStorage::new();
    let (engine, _) = open(&storage);
    run(&engine, 1, "CreateCounter", &create("a"));
    // No room to grow: the next segment (64 KiB) cannot be made.
    storage.set_capacity(0);
    let mut acknowledged = Vec::new();
    let mut refused = false;
    for i in 2..200u128 {
        let Ok(Submitted::New(mut pending)) = engine.submit(
            Uuid::from_u128(i),
            "Add",
            None,
            &add("a", &"x".repeat(2000)),
        ) else {
            refused = true;
            break;
        };
        match pending.blocking_accepted() {
            Ok(_) => acknowledged.push(i),
            Err(Unavailable::Poisoned { .. }) => {
                refused = true;
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(refused, "a full disk poisons the store");
    assert!(engine.poisoned().is_some());
    drop(engine);
    storage.set_capacity(u64::MAX);
    let (engine, _) = open(&storage.crash());
    assert!(
        !acknowledged.is_empty(),
        "some commands were acknowledged before the disk filled"
    );
    for id in acknowledged {
        assert!(
            final_status(&engine, id).unwrap().state.is_final(),
            "acknowledged {id} survives"
        );
    }
}

#[test]
fn short_writes_are_completed_without_poisoning() {
    let storage = SimStorage::new();
    let (engine, _) = open(&storage);
    storage.short_write_next(7);
    assert_eq!(
        run(&engine, 1, "CreateCounter", &create("a")).state,
        CommandState::Succeeded
    );
    assert!(engine.poisoned().is_none());
    drop(engine);
    let (engine, _) = open(&storage.crash());
    assert_eq!(engine.read_all(1, 10).unwrap().len(), 1);
}

/// Options whose dedupe index spills every four ids.
fn spilling() -> EngineOptions {
    EngineOptions {
        dedupe_spill_entries: 4,
        dedupe_entries_max: 64,
        ..options()
    }
}

fn open_spilling(storage: &SimStorage) -> (Engine, writ_engine::RecoveryReport) {
    Engine::open(Arc::new(storage.clone()), counters(), spilling()).expect("engine opens")
}

/// Puts a file into `dedupe/` durably, as a crash may have left it.
fn plant(storage: &SimStorage, name: &str, bytes: &[u8]) {
    let file = writ_log::storage::Storage::create(storage, &Path::new("dedupe").join(name))
        .expect("a new file");
    writ_log::storage::write_all_at(&*file, bytes, 0).unwrap();
    file.sync_data().unwrap();
    writ_log::storage::Storage::sync_dir(storage, Path::new("dedupe")).unwrap();
}

fn dedupe_files(storage: &SimStorage) -> Vec<String> {
    let mut names = storage.file_names(Path::new("dedupe"));
    names.sort();
    names
}

/// Runs ids `1..=n` (a counter each) and checks each is a duplicate when resent.
fn run_counters(engine: &Engine, ids: std::ops::RangeInclusive<u128>) {
    for id in ids {
        run(engine, id, "CreateCounter", &create(&format!("c{id}")));
    }
}

fn all_duplicates(engine: &Engine, ids: std::ops::RangeInclusive<u128>) {
    for id in ids {
        let again = engine
            .submit(
                Uuid::from_u128(id),
                "CreateCounter",
                None,
                &create(&format!("c{id}")),
            )
            .expect("submit");
        assert!(matches!(again, Submitted::Duplicate), "id {id}");
    }
}

#[test]
fn crash_while_writing_a_dedupe_run_before_its_rename_keeps_every_id() {
    let storage = SimStorage::new();
    let (engine, _) = open_spilling(&storage);
    storage.fail_next(SimOp::Rename);
    run_counters(&engine, 1..=4);
    wait_until(|| engine.stats().dedupe_spill_failures > 0);
    all_duplicates(&engine, 1..=4);
    // What a crash in the middle of the write leaves when the `.tmp` reached the disk.
    plant(
        &storage,
        "00000000000000000000-00000000000000000003.ids.tmp",
        b"half a run",
    );
    let crashed = storage.crash();
    drop(engine);

    let (engine, report) = open_spilling(&crashed);
    assert_eq!(report.dedupe_runs_removed, 1, "the .tmp: {report:?}");
    assert!(!dedupe_files(&crashed).iter().any(|n| n.ends_with(".tmp")));
    all_duplicates(&engine, 1..=4);
    run_counters(&engine, 5..=5);
}

#[test]
fn crash_after_a_dedupe_run_is_renamed_and_before_its_directory_is_synced_keeps_every_id() {
    let storage = SimStorage::new();
    let (engine, _) = open_spilling(&storage);
    storage.fail_next(SimOp::SyncDir);
    run_counters(&engine, 1..=4);
    wait_until(|| engine.stats().dedupe_spill_failures > 0);
    // The run is in the directory, but its entry is not durable.
    assert_eq!(dedupe_files(&storage).len(), 1);
    let crashed = storage.crash();
    drop(engine);
    assert!(dedupe_files(&crashed).is_empty());

    let (engine, report) = open_spilling(&crashed);
    assert_eq!(
        report.dedupe_runs_written, 1,
        "rebuilt from the journal: {report:?}"
    );
    all_duplicates(&engine, 1..=4);
    run_counters(&engine, 5..=5);
}

#[test]
fn a_damaged_dedupe_run_at_open_is_removed_and_rebuilt_from_the_journal() {
    let storage = SimStorage::new();
    let (engine, _) = open_spilling(&storage);
    run_counters(&engine, 1..=8);
    wait_until(|| engine.stats().dedupe_hot_entries < 4);
    let crashed = storage.crash();
    drop(engine);
    let runs = dedupe_files(&crashed);
    assert!(!runs.is_empty());
    for name in &runs {
        // The last byte: the tail's CRC.
        let path = Path::new("dedupe").join(name);
        let len = crashed.read_durable(&path).unwrap().len() as u64;
        crashed.flip(&path, len - 1, 1).unwrap();
    }

    let (engine, report) = open_spilling(&crashed);
    assert_eq!(report.dedupe_runs_removed, runs.len(), "{report:?}");
    assert!(report.dedupe_runs_written >= 1, "{report:?}");
    all_duplicates(&engine, 1..=8);
    run_counters(&engine, 9..=9);
}

#[test]
fn overlapping_dedupe_runs_left_by_a_crash_during_a_merge_keep_the_wider_one() {
    let storage = SimStorage::new();
    let (engine, _) = open_spilling(&storage);
    // Two spills of four, merged into one run of records 0..=7. Each group of four is
    // spilled before the next begins: a spill takes the ids durable when it runs, so one
    // that ran late in a single group of eight could take six and leave two below the
    // threshold.
    let spilled = || {
        let stats = engine.stats();
        stats.dedupe_hot_entries == 0 && stats.dedupe_runs == 1
    };
    run_counters(&engine, 1..=4);
    wait_until(spilled);
    run_counters(&engine, 5..=8);
    wait_until(spilled);
    engine.shutdown();
    drop(engine);
    assert_eq!(
        dedupe_files(&storage),
        ["00000000000000000000-00000000000000000007.ids"]
    );
    // A merge input the crash left behind: records 0..=3, ids 1..=4.
    let mut encoder = writ_engine::dedupe_run::RunEncoder::new(1);
    for id in 1..=4u128 {
        encoder.push(id, id as u64 - 1);
    }
    let bytes = encoder.finish_into_vec(0, 3, now_ms(), now_ms());
    plant(
        &storage,
        "00000000000000000000-00000000000000000003.ids",
        &bytes,
    );

    let (engine, report) = open_spilling(&storage);
    assert_eq!((report.dedupe_runs, report.dedupe_runs_removed), (1, 1));
    assert_eq!(
        dedupe_files(&storage),
        ["00000000000000000000-00000000000000000007.ids"]
    );
    all_duplicates(&engine, 1..=8);
}

/// A journal of many segments read back in scattered order, after a restart: the engine
/// holds at most `open_segments_max` sealed segments' files open (and says so in its
/// stats), and every event reads back.
#[test]
fn reads_across_many_journal_segments_hold_a_bounded_number_of_files_open() {
    let bound = 3;
    let bounded = || EngineOptions {
        log: LogOptions {
            open_segments_max: bound,
            ..options().log
        },
        ..options()
    };
    let storage = SimStorage::new();
    let (engine, _) =
        Engine::open(Arc::new(storage.clone()), counters(), bounded()).expect("engine opens");
    let counters_made = 40;
    let note = "n".repeat(3_000);
    let mut id = 0;
    for c in 0..counters_made {
        id += 1;
        run(&engine, id, "CreateCounter", &create(&format!("c-{c}")));
        for _ in 0..3 {
            id += 1;
            run(&engine, id, "Add", &add(&format!("c-{c}"), &note));
        }
    }
    engine.shutdown();
    drop(engine);
    let segments = storage
        .file_names(Path::new("journal"))
        .iter()
        .filter(|n| n.ends_with(".wlog"))
        .count();
    assert!(segments > 2 * bound, "{segments} segments");

    let (engine, _) =
        Engine::open(Arc::new(storage.clone()), counters(), bounded()).expect("engine opens");
    let open_at_start = storage.open_files();
    for i in 0..3 * counters_made {
        let c = (i * 17) % counters_made;
        let events = engine
            .read_stream(&format!("counter-c-{c}"), 1, 10)
            .unwrap();
        assert_eq!(events.len(), 4, "counter c-{c}");
        assert_eq!(events[0].event_type, "CounterCreated");
        assert!(
            events[1..].iter().all(|e| e.event_type == "Added"
                && std::str::from_utf8(&e.data).unwrap().contains(&note))
        );
        let stats = engine.stats();
        assert!(stats.journal_open_segment_files <= bound + 1, "{stats:?}");
        assert!(
            storage.open_files() <= open_at_start + bound,
            "{} files open, {open_at_start} at start",
            storage.open_files()
        );
    }
    let stats = engine.stats();
    assert!(
        stats.journal_segment_opens > segments as u64,
        "scattered reads over {segments} segments reopen some: {stats:?}"
    );
}
