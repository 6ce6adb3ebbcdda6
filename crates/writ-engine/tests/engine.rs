//! The engine's behaviour through its public API, on in-memory storage.

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;
use writ_engine::{
    CommandState, CommandStatus, Engine, EngineOptions, SubmitError, Submitted, SubscriptionError,
    WaitFor,
};
use writ_fixtures::Counters;
use writ_log::storage::SimStorage;

/// The registry of the counters domain alone.
fn counters() -> writ_engine::Registry {
    writ_engine::Registry::builder()
        .domain(writ_domain::model::domain::<Counters>())
        .build()
        .expect("one domain")
}

/// Defaults, but segments of 4 MiB: zero-filling two 64 MiB segments per test in a debug
/// build costs seconds and proves nothing here.
fn options() -> EngineOptions {
    EngineOptions {
        log: writ_log::LogOptions {
            segment_bytes: 4 << 20,
            record_bytes_max: 2 << 20,
            ..writ_log::LogOptions::default()
        },
        ..EngineOptions::default()
    }
}

fn open(storage: &SimStorage) -> Engine {
    open_with(storage, options())
}

fn open_with(storage: &SimStorage, options: EngineOptions) -> Engine {
    Engine::open(Arc::new(storage.clone()), counters(), options)
        .expect("engine opens")
        .0
}

fn create(counter: &str) -> Vec<u8> {
    format!(r#"{{"counterId":"{counter}","title":"Title of {counter}","owner":"ann"}}"#)
        .into_bytes()
}

fn add(counter: &str, note: &str) -> Vec<u8> {
    format!(r#"{{"counterId":"{counter}","amount":1,"note":"{note}"}}"#).into_bytes()
}

/// Submits and waits for the final status.
fn run(engine: &Engine, id: impl Into<IdArg>, command: &str, payload: &[u8]) -> CommandStatus {
    let id = id.into().0;
    match engine.submit(id, command, None, payload).expect("submit") {
        Submitted::New(mut pending) => {
            pending.blocking_accepted().expect("accepted");
            pending.blocking_outcome().expect("outcome")
        }
        Submitted::Duplicate => panic!("fresh id {id} reported as duplicate"),
    }
}

/// A command id given as a `Uuid` or as a number.
struct IdArg(Uuid);

impl From<Uuid> for IdArg {
    fn from(id: Uuid) -> Self {
        IdArg(id)
    }
}

impl From<u128> for IdArg {
    fn from(n: u128) -> Self {
        IdArg(Uuid::from_u128(n))
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

#[test]
fn succeeded_command_records_events_with_versions_and_positions() {
    let storage = SimStorage::new();
    let engine = open(&storage);
    let created = run(&engine, Uuid::from_u128(1), "CreateCounter", &create("a"));
    assert_eq!(created.state, CommandState::Succeeded);
    assert_eq!(created.command, "CreateCounter");
    assert_eq!(created.position, Some(1));
    assert_eq!(created.events.len(), 1);
    assert_eq!(
        (
            created.events[0].stream.as_str(),
            created.events[0].version,
            created.events[0].position
        ),
        ("counter-a", 1, 1)
    );
    let added = run(&engine, Uuid::from_u128(2), "Add", &add("a", "hi"));
    assert_eq!(added.events[0].version, 2);
    assert_eq!(added.events[0].position, 2);
    assert_eq!(added.events[0].event_type, "Added");

    let events = engine.read_stream("counter-a", 1, 100).unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].command_id, Uuid::from_u128(2));
    let data: serde_json::Value = serde_json::from_slice(&events[1].data).unwrap();
    assert_eq!(data["note"], "hi");
    assert_eq!(engine.read_stream("counter-a", 2, 100).unwrap().len(), 1);
    assert_eq!(
        engine.read_stream("counter-missing", 1, 100).unwrap(),
        vec![]
    );
    assert_eq!(engine.stream_version("counter-a"), 2);
    assert_eq!(engine.last_position(), 2);
}

#[test]
fn rejected_command_records_no_events_and_keeps_its_code() {
    let storage = SimStorage::new();
    let engine = open(&storage);
    let status = run(&engine, Uuid::from_u128(1), "Add", &add("nope", "hi"));
    assert!(
        matches!(status.state, CommandState::Rejected { ref code, .. } if code == "counter_not_found"),
        "{status:?}"
    );
    assert!(status.events.is_empty());
    assert_eq!(status.position, Some(0));
    assert_eq!(engine.last_position(), 0);
    // Stored and found by id.
    assert_eq!(engine.status(Uuid::from_u128(1)).unwrap().unwrap(), status);
}

#[test]
fn duplicate_id_with_same_content_is_not_run_again() {
    let storage = SimStorage::new();
    let engine = open(&storage);
    let id = Uuid::from_u128(7);
    let first = run(&engine, id, "CreateCounter", &create("a"));
    // Same meaning, other spelling: key order and whitespace do not matter.
    let respelled = br#"{ "owner":"ann", "title":"Title of a", "counterId":"a" }"#;
    assert!(matches!(
        engine
            .submit(id, "CreateCounter", Some(2), respelled)
            .unwrap(),
        Submitted::Duplicate
    ));
    let status = block_on(engine.wait(id, WaitFor::Final)).unwrap().unwrap();
    assert_eq!(status, first);
    assert_eq!(
        engine.read_all(1, 100).unwrap().len(),
        1,
        "nothing ran again"
    );
    assert_eq!(engine.stats().duplicates, 1);
}

#[test]
fn same_id_with_other_content_is_a_conflict() {
    let storage = SimStorage::new();
    let engine = open(&storage);
    let id = Uuid::from_u128(7);
    run(&engine, id, "CreateCounter", &create("a"));
    assert!(matches!(
        engine.submit(id, "CreateCounter", None, &create("b")),
        Err(SubmitError::Conflict { .. })
    ));
    assert!(matches!(
        engine.submit(id, "Add", None, &add("a", "x")),
        Err(SubmitError::Conflict { .. })
    ));
    // v1 and v2 are different commands even with the same fields.
    assert!(matches!(
        engine.submit(id, "CreateCounter", Some(1), &create("a")),
        Err(SubmitError::Conflict { .. })
    ));
}

#[test]
fn invalid_commands_are_refused_before_logging() {
    let storage = SimStorage::new();
    let engine = open(&storage);
    let id = Uuid::from_u128(1);
    for (command, version, payload) in [
        ("Nope", None, &b"{}"[..]),
        ("CreateCounter", Some(9), &create("a")[..]),
        ("CreateCounter", None, b"{\"counterId\":\"a\"}"),
        ("CreateCounter", None, b"not json"),
    ] {
        assert!(
            matches!(
                engine.submit(id, command, version, payload),
                Err(SubmitError::Invalid(_))
            ),
            "{command} {version:?}"
        );
    }
    let too_big = vec![b' '; engine.options().command_bytes_max + 1];
    assert!(matches!(
        engine.submit(id, "CreateCounter", None, &too_big),
        Err(SubmitError::TooLarge { .. })
    ));
    // The id was never used, so it is still free.
    assert_eq!(engine.status(id).unwrap(), None);
    assert_eq!(
        run(&engine, id, "CreateCounter", &create("a")).state,
        CommandState::Succeeded
    );
}

#[test]
fn global_log_reads_in_commit_order_without_gaps() {
    let storage = SimStorage::new();
    let engine = open(&storage);
    for i in 0..20u128 {
        let counter = format!("c{}", i % 3);
        let payload = if i < 3 {
            create(&counter)
        } else {
            add(&counter, "x")
        };
        let command = if i < 3 { "CreateCounter" } else { "Add" };
        run(&engine, Uuid::from_u128(100 + i), command, &payload);
    }
    // A rejection in between takes no position.
    run(&engine, Uuid::from_u128(999), "Add", &add("none", "x"));
    let all = engine.read_all(1, 1000).unwrap();
    assert_eq!(all.len(), 20);
    for (i, event) in all.iter().enumerate() {
        assert_eq!(event.position, i as u64 + 1);
    }
    let page = engine.read_all(7, 5).unwrap();
    assert_eq!(
        page.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![7, 8, 9, 10, 11]
    );
    assert!(engine.read_all(21, 5).unwrap().is_empty());
    assert_eq!(engine.read_all(0, 1).unwrap()[0].position, 1);
}

#[test]
fn subscription_delivers_history_then_live_events_in_order() {
    let storage = SimStorage::new();
    let engine = Arc::new(open(&storage));
    for i in 0..5u128 {
        run(
            &engine,
            Uuid::from_u128(i),
            "CreateCounter",
            &create(&format!("c{i}")),
        );
    }
    let mut subscription = engine.subscribe(3);
    let writer = {
        let engine = Arc::clone(&engine);
        std::thread::spawn(move || {
            for i in 5..50u128 {
                run(
                    &engine,
                    Uuid::from_u128(i),
                    "CreateCounter",
                    &create(&format!("c{i}")),
                );
            }
        })
    };
    let mut seen = Vec::new();
    block_on(async {
        while seen.len() < 48 {
            let batch = subscription.next_batch(7).await.unwrap();
            assert!(!batch.is_empty() && batch.len() <= 7);
            seen.extend(batch.into_iter().map(|e| e.position));
        }
    });
    writer.join().unwrap();
    assert_eq!(seen, (3..=50).collect::<Vec<u64>>());
    assert_eq!(subscription.position(), 51);
    engine.shutdown();
    let end = block_on(subscription.next_batch(10));
    assert!(matches!(end, Err(SubscriptionError::Closed)), "{end:?}");
}

#[test]
fn next_batch_into_reuses_the_events_and_reads_the_same() {
    let storage = SimStorage::new();
    let engine = Arc::new(open(&storage));
    for i in 0..6u128 {
        run(
            &engine,
            Uuid::from_u128(i),
            "CreateCounter",
            &create(&format!("counter-with-a-longer-id-{i}")),
        );
        run(
            &engine,
            Uuid::from_u128(100 + i),
            "Add",
            &add(
                &format!("counter-with-a-longer-id-{i}"),
                &"x".repeat(i as usize + 1),
            ),
        );
    }
    let expected = engine.read_all(1, 100).unwrap();
    assert_eq!(expected.len(), 12);
    let mut subscription = engine.subscribe(1);
    // Batches of 5, 5 and 2 through one vector: longer events over shorter ones and
    // the other way round, and a shorter batch than the vector held.
    let mut events = Vec::new();
    let mut seen = Vec::new();
    block_on(async {
        while seen.len() < expected.len() {
            subscription.next_batch_into(5, &mut events).await.unwrap();
            assert!(!events.is_empty() && events.len() <= 5);
            seen.extend(events.iter().cloned());
        }
    });
    assert_eq!(seen, expected);
    assert_eq!(events.len(), 2, "the vector holds exactly the last batch");
    engine.shutdown();
    let end = block_on(subscription.next_batch_into(10, &mut events));
    assert!(matches!(end, Err(SubscriptionError::Closed)), "{end:?}");
}

#[test]
fn wait_answers_when_the_outcome_is_final() {
    let storage = SimStorage::new();
    let engine = Arc::new(open(&storage));
    let id = Uuid::from_u128(5);
    assert_eq!(
        block_on(engine.wait(id, WaitFor::Final)).unwrap(),
        None,
        "unknown ids answer at once"
    );
    let Submitted::New(_pending) = engine
        .submit(id, "CreateCounter", None, &create("w"))
        .unwrap()
    else {
        panic!("new");
    };
    let status = block_on(async {
        tokio::time::timeout(Duration::from_secs(10), engine.wait(id, WaitFor::Final))
            .await
            .expect("the outcome arrives")
    })
    .unwrap()
    .unwrap();
    assert_eq!(status.state, CommandState::Succeeded);
}

#[test]
fn restart_keeps_events_outcomes_and_dedupe() {
    let storage = SimStorage::new();
    let id = Uuid::from_u128(42);
    let first = {
        let engine = open(&storage);
        run(&engine, Uuid::from_u128(1), "CreateCounter", &create("a"));
        let status = run(&engine, id, "Add", &add("a", "hello"));
        engine.shutdown();
        status
    };
    let engine = open(&storage);
    assert_eq!(engine.status(id).unwrap().unwrap(), first);
    assert!(matches!(
        engine.submit(id, "Add", None, &add("a", "hello")).unwrap(),
        Submitted::Duplicate
    ));
    assert!(matches!(
        engine.submit(id, "Add", None, &add("a", "other")),
        Err(SubmitError::Conflict { .. })
    ));
    // State is rebuilt from the log: the counter exists, versions continue.
    let created_again = run(&engine, Uuid::from_u128(3), "CreateCounter", &create("a"));
    assert!(
        matches!(created_again.state, CommandState::Rejected { ref code, .. } if code == "counter_exists")
    );
    let next = run(&engine, Uuid::from_u128(4), "Add", &add("a", "again"));
    assert_eq!((next.events[0].version, next.events[0].position), (3, 3));
}

#[test]
fn ids_older_than_the_window_are_forgotten_at_restart() {
    let storage = SimStorage::new();
    let options = EngineOptions {
        dedupe_window: Duration::from_millis(1),
        ..options()
    };
    let id = Uuid::from_u128(42);
    {
        let engine = open_with(&storage, options.clone());
        run(&engine, id, "CreateCounter", &create("a"));
    }
    std::thread::sleep(Duration::from_millis(5));
    let engine = open_with(&storage, options);
    assert_eq!(
        engine.status(id).unwrap(),
        None,
        "outside the window the id is unknown"
    );
    // It may be used again: a new command, which here is rejected by the domain.
    let again = run(&engine, id, "CreateCounter", &create("a"));
    assert!(
        matches!(again.state, CommandState::Rejected { ref code, .. } if code == "counter_exists")
    );
}

#[test]
fn expired_ids_are_evicted_while_running() {
    let storage = SimStorage::new();
    let engine = open_with(
        &storage,
        EngineOptions {
            dedupe_window: Duration::from_millis(1),
            ..options()
        },
    );
    let id = Uuid::from_u128(42);
    run(&engine, id, "CreateCounter", &create("a"));
    // Eviction runs about once a second; wait for its effect (not a timing assertion).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while engine.stats().dedupe_entries > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the id was never evicted"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(engine.status(id).unwrap(), None);
}

#[test]
fn handler_time_comes_from_the_envelope_and_never_goes_back() {
    let storage = SimStorage::new();
    let engine = open(&storage);
    let mut last = 0;
    for i in 0..10u128 {
        run(
            &engine,
            Uuid::from_u128(i),
            "CreateCounter",
            &create(&format!("c{i}")),
        );
    }
    for event in engine.read_all(1, 100).unwrap() {
        assert!(event.recorded_at_ms >= last);
        last = event.recorded_at_ms;
    }
    assert!(
        last > 1_700_000_000_000,
        "recorded_at is wall-clock milliseconds"
    );
}

#[test]
fn waits_leave_no_registration_behind() {
    let storage = SimStorage::new();
    let engine = open_with(
        &storage,
        EngineOptions {
            waiters_max: 4,
            ..options()
        },
    );
    run(&engine, 1, "CreateCounter", &create("a"));
    let ids: Vec<Uuid> = (100..120u128).map(Uuid::from_u128).collect();
    for id in &ids {
        run(&engine, id.as_u128(), "Add", &add("a", "x"));
    }
    block_on(async {
        // Each id once: answered at once (final), or cancelled by a timeout while waiting.
        for (i, id) in ids.iter().enumerate() {
            let status = engine
                .wait(*id, WaitFor::Final)
                .await
                .expect("registrations are released");
            assert!(status.is_some());
            let _ = tokio::time::timeout(
                Duration::from_millis(1),
                engine.wait(Uuid::from_u128(1000 + i as u128), WaitFor::Final),
            )
            .await;
        }
    });
}

/// `open_dir` creates a data directory and its missing parents (syncing each new
/// directory's parent), locks it, and opens it again with what was written.
#[test]
fn open_dir_creates_missing_parents_and_reopens_with_what_was_written() {
    let root = std::env::temp_dir().join(format!("writ-open-dir-{}", Uuid::new_v4()));
    let dir = root.join("a").join("b");
    {
        let (engine, _) = Engine::open_dir(&dir, counters(), options()).unwrap();
        let status = run(&engine, Uuid::new_v4(), "CreateCounter", &create("c-1"));
        assert_eq!(
            status.state,
            writ_engine::CommandState::Succeeded,
            "{status:?}"
        );
        assert!(matches!(
            Engine::open_dir(&dir, counters(), options()),
            Err(writ_engine::OpenError::Locked { .. })
        ));
        engine.shutdown();
    }
    let (engine, report) = Engine::open_dir(&dir, counters(), options()).unwrap();
    assert_eq!(report.commands, 1);
    engine.shutdown();
    std::fs::remove_dir_all(&root).unwrap();
}
