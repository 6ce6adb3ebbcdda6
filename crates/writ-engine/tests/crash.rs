//! Crash consistency of the engine, each scenario by name, on storage that keeps written and
//! durable bytes apart (`SimStorage`): a crash keeps only what was synced, plus exactly the
//! torn or corrupt bytes a test chooses.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use uuid::Uuid;
use writ_engine::{
    CommandState, CommandStatus, Engine, EngineOptions, OpenError, SubmitError, Submitted,
    Unavailable,
};
use writ_log::LogOptions;
use writ_log::storage::{SimOp, SimStorage};
use writ_tickets::Tickets;

/// Small segments, no background preallocation: every sync in a test is one the test
/// can count (the command log's, then the event log's, per command).
fn options() -> EngineOptions {
    EngineOptions {
        command_bytes_max: 16 * 1024,
        log: LogOptions {
            segment_bytes: 64 * 1024,
            record_bytes_max: 32 * 1024,
            preallocate: false,
        },
        ..EngineOptions::default()
    }
}

fn open(storage: &SimStorage) -> (Engine<Tickets>, writ_engine::RecoveryReport) {
    Engine::<Tickets>::open(Arc::new(storage.clone()), options()).expect("engine opens")
}

fn try_open(storage: &SimStorage) -> Result<Engine<Tickets>, OpenError> {
    Engine::<Tickets>::open(Arc::new(storage.clone()), options()).map(|(e, _)| e)
}

fn open_ticket(ticket: &str) -> Vec<u8> {
    format!(r#"{{"ticketId":"{ticket}","title":"T","reporter":"ann"}}"#).into_bytes()
}

fn comment(ticket: &str, text: &str) -> Vec<u8> {
    format!(r#"{{"ticketId":"{ticket}","author":"bob","text":"{text}"}}"#).into_bytes()
}

fn submit(
    engine: &Engine<Tickets>,
    id: u128,
    command: &str,
    payload: &[u8],
) -> writ_engine::Pending {
    match engine
        .submit(Uuid::from_u128(id), command, None, payload)
        .expect("submit")
    {
        Submitted::New(pending) => pending,
        Submitted::Duplicate => panic!("duplicate"),
    }
}

fn run(engine: &Engine<Tickets>, id: u128, command: &str, payload: &[u8]) -> CommandStatus {
    let mut pending = submit(engine, id, command, payload);
    pending.blocking_accepted().expect("accepted");
    pending.blocking_outcome().expect("outcome")
}

fn final_status(engine: &Engine<Tickets>, id: u128) -> Option<CommandStatus> {
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

/// The byte range in which two versions of a file differ.
fn changed_range(before: &[u8], after: &[u8]) -> std::ops::Range<u64> {
    let len = before.len().max(after.len());
    let at = |v: &[u8], i: usize| v.get(i).copied().unwrap_or(0);
    let start = (0..len)
        .find(|&i| at(before, i) != at(after, i))
        .expect("files differ");
    let end = (0..len)
        .rev()
        .find(|&i| at(before, i) != at(after, i))
        .unwrap()
        + 1;
    start as u64..end as u64
}

fn is_poisoned(result: Result<impl std::fmt::Debug, Unavailable>) -> bool {
    matches!(result, Err(Unavailable::Poisoned { .. }))
}

#[test]
fn crash_after_command_sync_before_execution_reruns_the_command_once() {
    let storage = SimStorage::new();
    let (engine, _) = open(&storage);
    run(&engine, 1, "OpenTicket", &open_ticket("a"));
    // The next sync (the command log's) succeeds; the one after (the event log's) fails.
    storage.fail_nth(SimOp::Sync, 1);
    let mut pending = submit(&engine, 2, "AddComment", &comment("a", "hello"));
    let seq = pending
        .blocking_accepted()
        .expect("the command is acknowledged");
    assert!(
        is_poisoned(pending.blocking_outcome()),
        "its execution did not become durable"
    );
    assert!(engine.poisoned().is_some());
    assert!(matches!(
        engine.submit(Uuid::from_u128(3), "AddComment", None, &comment("a", "x")),
        Err(SubmitError::Unavailable(Unavailable::Poisoned { .. }))
    ));
    assert_eq!(
        engine.read_stream("ticket-a", 1, 10).unwrap().len(),
        1,
        "reads keep working"
    );

    let crashed = storage.crash();
    drop(engine);
    let (engine, report) = open(&crashed);
    assert_eq!(report.reexecuted, 1);
    let status = final_status(&engine, 2).expect("the acknowledged command is known");
    assert_eq!(status.state, CommandState::Succeeded);
    assert_eq!(status.sequence, seq);
    let events = engine.read_stream("ticket-a", 1, 10).unwrap();
    assert_eq!(events.len(), 2, "executed exactly once");
    assert_eq!(events[1].command_id, Uuid::from_u128(2));
    // The re-run is the same decision: its comment id derives from the command id.
    let data: serde_json::Value = serde_json::from_slice(&events[1].data).unwrap();
    let envelope = writ_domain::Envelope {
        command_id: Uuid::from_u128(2),
        recorded_at_ms: 0,
        sequence: 0,
    };
    assert_eq!(data["commentId"], envelope.derive_id(0).to_string());

    // And a second crash after that changes nothing.
    drop(engine);
    let (engine, report) = open(&crashed.crash());
    assert_eq!(report.reexecuted, 0);
    assert_eq!(engine.read_stream("ticket-a", 1, 10).unwrap().len(), 2);
}

#[test]
fn crash_after_execution_keeps_outcomes_and_runs_nothing_again() {
    let storage = SimStorage::new();
    let (engine, _) = open(&storage);
    let statuses: Vec<_> = [
        run(&engine, 1, "OpenTicket", &open_ticket("a")),
        run(&engine, 2, "AddComment", &comment("a", "one")),
        run(&engine, 3, "AddComment", &comment("missing", "x")),
    ]
    .into();
    let crashed = storage.crash();
    drop(engine);
    let (engine, report) = open(&crashed);
    assert_eq!(
        (report.commands, report.executed, report.reexecuted),
        (3, 3, 0)
    );
    for (i, status) in statuses.iter().enumerate() {
        assert_eq!(
            &engine
                .status(Uuid::from_u128(i as u128 + 1))
                .unwrap()
                .unwrap(),
            status
        );
    }
    assert_eq!(engine.read_all(1, 10).unwrap().len(), 2);
}

#[test]
fn crash_before_command_sync_loses_only_the_unacknowledged_command() {
    let storage = SimStorage::new();
    let (engine, _) = open(&storage);
    run(&engine, 1, "OpenTicket", &open_ticket("a"));
    storage.fail_next_sync();
    let mut pending = submit(&engine, 2, "AddComment", &comment("a", "lost"));
    assert!(
        is_poisoned(pending.blocking_accepted()),
        "never acknowledged"
    );
    let crashed = storage.crash();
    drop(engine);
    let (engine, report) = open(&crashed);
    assert_eq!(report.commands, 1);
    assert_eq!(engine.status(Uuid::from_u128(2)).unwrap(), None);
    // The client retries with the same id after the restart: a new command.
    assert_eq!(
        run(&engine, 2, "AddComment", &comment("a", "lost")).state,
        CommandState::Succeeded
    );
    assert_eq!(engine.read_stream("ticket-a", 1, 10).unwrap().len(), 2);
}

#[test]
fn torn_command_log_write_is_truncated_and_reported() {
    let storage = SimStorage::new();
    let (engine, _) = open(&storage);
    run(&engine, 1, "OpenTicket", &open_ticket("a"));
    storage.fail_next_sync();
    let mut pending = submit(&engine, 2, "AddComment", &comment("a", &"x".repeat(3000)));
    assert!(is_poisoned(pending.blocking_accepted()));
    let path = segment(&storage, "commands");
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
    assert_eq!(report.truncated.len(), 1, "{:?}", report.truncated);
    assert_eq!(report.truncated[0].0, "command");
    assert_eq!(report.commands, 1);
    assert_eq!(engine.status(Uuid::from_u128(2)).unwrap(), None);
    assert_eq!(
        engine.status(Uuid::from_u128(1)).unwrap().unwrap().state,
        CommandState::Succeeded
    );
    assert_eq!(
        run(&engine, 3, "AddComment", &comment("a", "after")).sequence,
        1
    );
}

#[test]
fn corrupt_event_log_tail_is_truncated_and_its_command_runs_again() {
    let storage = SimStorage::new();
    let (engine, _) = open(&storage);
    run(&engine, 1, "OpenTicket", &open_ticket("a"));
    run(&engine, 2, "AddComment", &comment("a", "one"));
    let path = segment(&storage, "events");
    let before = storage.read_durable(&path).unwrap();
    let last = run(&engine, 3, "AddComment", &comment("a", "two"));
    let after = storage.read_durable(&path).unwrap();
    let frame = changed_range(&before, &after);
    drop(engine);
    // Flip a byte in the middle of the last frame: its checksum no longer matches.
    let middle = frame.start + (frame.end - frame.start) / 2;
    let mut byte = [after[middle as usize]];
    byte[0] ^= 0xff;
    storage.corrupt(&path, middle, &byte).unwrap();

    let (engine, report) = open(&storage);
    assert_eq!(report.truncated.len(), 1, "{:?}", report.truncated);
    assert_eq!(report.truncated[0].0, "event");
    assert_eq!(
        report.reexecuted, 1,
        "the lost commit is rebuilt from the command log"
    );
    assert_eq!(final_status(&engine, 3).unwrap(), last, "the same outcome");
    assert_eq!(engine.read_all(1, 10).unwrap().len(), 3);
}

#[test]
fn corrupt_command_log_middle_refuses_to_open() {
    let storage = SimStorage::new();
    let (engine, _) = open(&storage);
    let path = segment(&storage, "commands");
    let before = storage.read_durable(&path).unwrap();
    run(&engine, 1, "OpenTicket", &open_ticket("a"));
    let after = storage.read_durable(&path).unwrap();
    run(&engine, 2, "AddComment", &comment("a", "one"));
    run(&engine, 3, "AddComment", &comment("a", "two"));
    drop(engine);
    let frame = changed_range(&before, &after);
    storage
        .corrupt(
            &path,
            frame.start + (frame.end - frame.start) / 2,
            b"\xde\xad",
        )
        .unwrap();
    let error = try_open(&storage).expect_err("damage before the tail must not be truncated");
    let message = error.to_string();
    assert!(
        matches!(error, OpenError::Log { log: "command", .. }),
        "{message}"
    );
    assert!(message.contains(".wlog"), "names the file: {message}");
}

#[test]
fn corrupt_event_log_middle_refuses_to_open() {
    let storage = SimStorage::new();
    let (engine, _) = open(&storage);
    let path = segment(&storage, "events");
    let before = storage.read_durable(&path).unwrap();
    run(&engine, 1, "OpenTicket", &open_ticket("a"));
    let after = storage.read_durable(&path).unwrap();
    run(&engine, 2, "AddComment", &comment("a", "one"));
    drop(engine);
    let frame = changed_range(&before, &after);
    storage
        .corrupt(
            &path,
            frame.start + (frame.end - frame.start) / 2,
            b"\xde\xad",
        )
        .unwrap();
    let error = try_open(&storage).expect_err("damage before the tail must not be truncated");
    assert!(
        matches!(error, OpenError::Log { log: "event", .. }),
        "{error}"
    );
}

#[test]
fn failed_write_poisons_and_restart_recovers() {
    let storage = SimStorage::new();
    let (engine, _) = open(&storage);
    run(&engine, 1, "OpenTicket", &open_ticket("a"));
    storage.fail_next_write();
    let mut pending = submit(&engine, 2, "AddComment", &comment("a", "x"));
    assert!(is_poisoned(pending.blocking_accepted()));
    assert_eq!(
        engine.status(Uuid::from_u128(1)).unwrap().unwrap().state,
        CommandState::Succeeded
    );
    drop(engine);
    let (engine, report) = open(&storage.crash());
    assert_eq!(report.commands, 1);
    assert_eq!(
        run(&engine, 2, "AddComment", &comment("a", "x")).state,
        CommandState::Succeeded
    );
}

#[test]
fn disk_full_poisons_and_restart_recovers() {
    let storage = SimStorage::new();
    let (engine, _) = open(&storage);
    run(&engine, 1, "OpenTicket", &open_ticket("a"));
    // No room to grow: the next segment (64 KiB) cannot be made.
    storage.set_capacity(0);
    let mut acknowledged = Vec::new();
    let mut refused = false;
    for i in 2..200u128 {
        let Ok(Submitted::New(mut pending)) = engine.submit(
            Uuid::from_u128(i),
            "AddComment",
            None,
            &comment("a", &"x".repeat(2000)),
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
        run(&engine, 1, "OpenTicket", &open_ticket("a")).state,
        CommandState::Succeeded
    );
    assert!(engine.poisoned().is_none());
    drop(engine);
    let (engine, _) = open(&storage.crash());
    assert_eq!(engine.read_all(1, 10).unwrap().len(), 1);
}
