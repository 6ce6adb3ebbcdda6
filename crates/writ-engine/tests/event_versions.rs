//! Event schema versions across builds: a journal written by one build of the fixtures'
//! `people` domain, opened by the other on the same storage. Events recorded in an older
//! version read upcast in the writer (the state a decision reads) and in reads; an event
//! of a newer build is a clear error; a format 2 journal (builds before schema versions)
//! opens and reads at version 1.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};
use uuid::Uuid;
use writ_domain::EventDecodeError;
use writ_domain::model::domain;
use writ_engine::record::{CommitStatus, JournalRecord, Origin, RecordEvent};
use writ_engine::{CommandState, Engine, JOURNAL_DIR, ReadError, Registry};
use writ_fixtures::people::{self, after, before};
use writ_log::Log;
use writ_log::storage::SimStorage;

mod support;
use support::{run_json as run, small_options as options};

fn open_before(storage: &SimStorage) -> Engine {
    let registry = Registry::builder()
        .domain(domain::<before::People>())
        .build()
        .unwrap();
    Engine::open(Arc::new(storage.clone()), registry, options())
        .expect("the before build opens")
        .0
}

fn open_after(storage: &SimStorage) -> Engine {
    let registry = Registry::builder()
        .domain(domain::<after::People>())
        .build()
        .unwrap();
    Engine::open(Arc::new(storage.clone()), registry, options())
        .expect("the after build opens")
        .0
}

fn data(event: &writ_engine::RecordedEvent) -> Value {
    serde_json::from_slice(&event.data).unwrap()
}

#[test]
fn events_of_the_older_build_read_upcast_in_the_writer_and_in_reads() {
    let storage = SimStorage::new();
    let engine = open_before(&storage);
    let named = run(
        &engine,
        1,
        "NamePerson",
        None,
        json!({"personId": "p-1", "name": "Ada King Lovelace"}),
    );
    assert_eq!(named.state, CommandState::Succeeded);
    engine.shutdown();

    let engine = open_after(&storage);
    // The writer rebuilds p-1's state from the version 1 event: the decision reads the
    // upcast first name.
    let greeted = run(&engine, 2, "GreetPerson", None, json!({"personId": "p-1"}));
    assert_eq!(greeted.state, CommandState::Succeeded, "{greeted:?}");
    let unnamed = run(&engine, 3, "GreetPerson", None, json!({"personId": "p-2"}));
    assert!(
        matches!(&unnamed.state, CommandState::Rejected { code, .. } if code == people::PERSON_NOT_FOUND),
        "{unnamed:?}"
    );
    let renamed = run(
        &engine,
        4,
        "NamePerson",
        None,
        json!({"personId": "p-1", "first": "Grace", "last": "Hopper"}),
    );
    assert_eq!(renamed.state, CommandState::Succeeded);

    let stream = engine
        .read_stream(&people::stream_name("p-1"), 1, 10)
        .unwrap();
    let shown: Vec<(&str, u32, u32, Value)> = stream
        .iter()
        .map(|e| {
            (
                e.event_type.as_str(),
                e.schema_version,
                e.recorded_schema_version,
                data(e),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            (
                "PersonNamed",
                2,
                1,
                json!({"personId": "p-1", "first": "Ada", "last": "King Lovelace"})
            ),
            (
                "PersonGreeted",
                1,
                1,
                json!({"personId": "p-1", "greeting": "Hello, Ada"})
            ),
            (
                "PersonNamed",
                2,
                2,
                json!({"personId": "p-1", "first": "Grace", "last": "Hopper"})
            ),
        ]
    );
    // The global log reads the same, and so does a subscription (what read models follow).
    assert_eq!(engine.read_all(1, 10).unwrap(), stream);
    let mut subscription = engine.subscribe(1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fed = runtime.block_on(subscription.next_batch(10)).unwrap();
    assert_eq!(fed, stream);
    engine.shutdown();
}

#[test]
fn an_event_of_a_newer_build_is_a_clear_error_not_a_panic() {
    let storage = SimStorage::new();
    let engine = open_after(&storage);
    for (id, person) in [(1, "p-1"), (2, "p-2")] {
        let named = run(
            &engine,
            id,
            "NamePerson",
            None,
            json!({"personId": person, "first": "Ada", "last": "Lovelace"}),
        );
        assert_eq!(named.state, CommandState::Succeeded);
    }
    engine.shutdown();

    // The before build knows `PersonNamed` at version 1 only.
    let engine = open_before(&storage);
    let error = engine
        .read_stream(&people::stream_name("p-1"), 1, 10)
        .unwrap_err();
    match &error {
        ReadError::Event {
            position: 1,
            source:
                EventDecodeError::UnknownVersion {
                    event_type,
                    version: 2,
                    known,
                },
        } => {
            assert_eq!(
                (event_type.as_str(), known.as_slice()),
                ("PersonNamed", &[1][..])
            );
        }
        other => panic!("{other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.contains("schema version 2") && message.contains("a newer build recorded it"),
        "{message}"
    );
    assert!(matches!(
        engine.read_all(1, 10),
        Err(ReadError::Event { position: 1, .. })
    ));

    // The writer cannot rebuild the stream's state: the command fails, saying why, and
    // the engine goes on.
    let failed = run(
        &engine,
        3,
        "NamePerson",
        None,
        json!({"personId": "p-1", "name": "Ada"}),
    );
    match &failed.state {
        CommandState::Failed { message } => {
            assert!(message.contains("a newer build recorded it"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let fresh = run(
        &engine,
        4,
        "NamePerson",
        None,
        json!({"personId": "p-3", "name": "Ada"}),
    );
    assert_eq!(fresh.state, CommandState::Succeeded);
    engine.shutdown();
}

#[test]
fn a_format_2_journal_opens_and_its_events_read_at_schema_version_1() {
    // The journal as builds before event schema versions wrote it.
    let storage = SimStorage::new();
    let (mut journal, _) = Log::open(
        Arc::new(storage.clone()),
        Path::new(JOURNAL_DIR),
        options().log,
    )
    .unwrap();
    let id = Uuid::from_u128(1);
    let mut bytes = Vec::new();
    JournalRecord {
        id,
        correlation_id: id,
        causation_id: None,
        origin: Origin::Client,
        recorded_at_ms: 1_798_137_245_123,
        name: "NamePerson",
        version: 1,
        expected_version: None,
        payload: br#"{"personId":"p-1","name":"Ada Lovelace"}"#,
        status: CommitStatus::Succeeded,
        first_position: 1,
        events: vec![RecordEvent {
            stream: "person-p-1",
            version: 1,
            event_type: "PersonNamed",
            schema_version: 1,
            data: br#"{"personId":"p-1","name":"Ada Lovelace"}"#,
        }],
        code: "",
        message: "",
        details: b"",
        timers: Vec::new(),
    }
    .encode_format_2(&mut bytes);
    assert_eq!(bytes[1], 2);
    journal.append(&bytes).unwrap();
    journal.commit().unwrap();
    drop(journal);

    let engine = open_after(&storage);
    let status = engine.status(id).unwrap().expect("the command is known");
    assert_eq!(status.state, CommandState::Succeeded);
    let events = engine.read_all(1, 10).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].schema_version, events[0].recorded_schema_version),
        (2, 1)
    );
    assert_eq!(
        data(&events[0]),
        json!({"personId": "p-1", "first": "Ada", "last": "Lovelace"})
    );
    let greeted = run(&engine, 2, "GreetPerson", None, json!({"personId": "p-1"}));
    assert_eq!(greeted.state, CommandState::Succeeded);
    // The new record is in format 3, after the format 2 one.
    let events = engine.read_all(2, 10).unwrap();
    assert_eq!(data(&events[0])["greeting"], "Hello, Ada");
    engine.shutdown();
}
