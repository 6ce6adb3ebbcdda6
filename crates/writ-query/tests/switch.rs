//! Structure changes as commands (`writ_query::switch`): the built-in domain decides
//! `SwitchReadModel` in the engine's writer, and the live read models switch when they
//! meet its event, and start at the last switch's version after a restart.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use uuid::Uuid;
use writ_domain::model::domain;
use writ_engine::{CommandState, CommandStatus, Engine, Registry, Submitted};
use writ_fixtures::Counters;
use writ_log::storage::{SimStorage, Storage};
use writ_query::switch::{self, READ_MODEL_SWITCHED, SWITCH_READ_MODEL, codes};
use writ_query::{QueryError, ReadModels, RebuildStatus};

mod support;

use support::{WAIT, counts, options, populate, run, small_batches};

fn open(storage: &Arc<SimStorage>) -> Arc<Engine> {
    let registry = Registry::builder()
        .domain(domain::<Counters>())
        .domain(switch::domain(&[counts(1)]))
        .build()
        .unwrap();
    let storage: Arc<dyn Storage> = storage.clone();
    Arc::new(Engine::open(storage, registry, options()).unwrap().0)
}

fn submit(engine: &Engine, id: Uuid, payload: Value) -> CommandStatus {
    let payload = serde_json::to_vec(&payload).unwrap();
    let Submitted::New(pending) = engine
        .submit(id, SWITCH_READ_MODEL, None, &payload)
        .unwrap()
    else {
        unreachable!("a fresh id")
    };
    pending.blocking_outcome().unwrap()
}

fn rejected_code(status: &CommandStatus) -> &str {
    match &status.state {
        CommandState::Rejected { code, .. } => code,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// Waits until read model `counts` has no rebuild running; its last rebuild's status.
fn settled(models: &ReadModels) -> RebuildStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        let rebuild = models.status("counts").unwrap().rebuild;
        if !matches!(rebuild, RebuildStatus::Running { .. }) {
            return rebuild;
        }
        assert!(Instant::now() < deadline, "the switch never ended");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn the_writer_records_a_switch_and_rejects_unknown_read_models_and_versions() {
    let engine = open(&Arc::new(SimStorage::new()));
    populate(&engine, 4);

    let id = Uuid::new_v4();
    let status = submit(&engine, id, json!({"name": "counts", "version": 2}));
    assert_eq!(status.state, CommandState::Succeeded, "{status:?}");
    let position = status.position.unwrap();
    let events = engine.read_stream("$readmodel-counts", 1, 10).unwrap();
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.event_type, READ_MODEL_SWITCHED);
    assert_eq!(event.position, position);
    assert_eq!(
        serde_json::from_slice::<Value>(&event.data).unwrap(),
        json!({"name": "counts", "version": 2})
    );
    // The metadata of every event: caused by the command, in its own chain.
    assert_eq!((event.command_id, event.correlation_id), (id, id));
    assert_eq!(
        switch::last_switch(&engine, "counts").unwrap(),
        Some(switch::Switched {
            version: 2,
            position
        })
    );

    let status = submit(
        &engine,
        Uuid::new_v4(),
        json!({"name": "nothing", "version": 1}),
    );
    assert_eq!(rejected_code(&status), codes::UNKNOWN_READ_MODEL);
    let status = submit(
        &engine,
        Uuid::new_v4(),
        json!({"name": "counts", "version": 9}),
    );
    assert_eq!(rejected_code(&status), codes::UNKNOWN_VERSION);
    let CommandState::Rejected { details, .. } = &status.state else {
        unreachable!()
    };
    assert_eq!(details["versions"], json!([1, 2]));
    // The same version again is recorded again: the decision reads nothing of the read
    // side, so it decides the same in a replay.
    let status = submit(
        &engine,
        Uuid::new_v4(),
        json!({"name": "counts", "version": 2}),
    );
    assert_eq!(status.state, CommandState::Succeeded, "{status:?}");
    assert_eq!(engine.stream_version("$readmodel-counts"), 2);
    // A malformed payload is refused before the log.
    let payload = serde_json::to_vec(&json!({"name": "counts", "version": 2, "x": 1})).unwrap();
    assert!(
        engine
            .submit(Uuid::new_v4(), SWITCH_READ_MODEL, None, &payload)
            .is_err()
    );
}

#[test]
fn a_switch_in_the_log_rebuilds_the_read_model_beside_the_live_one_and_a_restart_keeps_it() {
    let storage = Arc::new(SimStorage::new());
    let engine = open(&storage);
    let last = populate(&engine, 24);
    let models = ReadModels::start(engine.clone(), [counts(1)], small_batches()).unwrap();
    models.blocking_wait_for(last, WAIT).unwrap();
    assert!(matches!(
        models.call(2, "closedCount", Map::new()),
        Err(QueryError::Unavailable { .. })
    ));

    let status = submit(
        &engine,
        Uuid::new_v4(),
        json!({"name": "counts", "version": 2}),
    );
    assert_eq!(status.state, CommandState::Succeeded, "{status:?}");
    let switched = status.position.unwrap();
    // Once the read models have applied the switch, its rebuild is running or done.
    models.blocking_wait_for(switched, WAIT).unwrap();
    let rebuild = models.status("counts").unwrap().rebuild;
    assert!(
        matches!(
            rebuild,
            RebuildStatus::Running { root, .. } | RebuildStatus::Switched { root, .. }
                if root.version == 2
        ),
        "{rebuild:?}"
    );
    // Writes go on meanwhile.
    let after = run(
        &engine,
        "CreateCounter",
        json!({"counterId": "late", "title": "Late", "owner": "ann"}),
    );
    let ended = settled(&models);
    let RebuildStatus::Switched { root, position } = ended else {
        panic!("the switch ended with {ended:?}")
    };
    assert_eq!(root.version, 2);
    assert!(position >= switched, "readers swap past the switch");
    models.blocking_wait_for(after, WAIT).unwrap();
    let status = models.status("counts").unwrap();
    assert_eq!(status.root.version, 2);
    // Counters 0, 4, 8, 12, 16 and 20 were closed (and 0, 8, 16 reopened).
    assert_eq!(
        models.call(2, "closedCount", Map::new()).unwrap().0,
        json!(6)
    );
    assert_eq!(
        models.call(1, "counts", Map::new()).unwrap().0["created"],
        json!(25)
    );
    drop(models);
    engine.shutdown();
    drop(engine);

    // A restart starts at the switch's version, and replaying the switch rebuilds nothing.
    let engine = open(&storage);
    let specs = switch::start_versions(&engine, vec![counts(1)]).unwrap();
    assert_eq!(specs[0].version(), 2);
    let models = ReadModels::start(engine.clone(), specs, small_batches()).unwrap();
    models
        .blocking_wait_for(engine.last_position(), WAIT)
        .unwrap();
    let status = models.status("counts").unwrap();
    assert_eq!(status.root.version, 2);
    assert!(
        matches!(status.rebuild, RebuildStatus::Idle),
        "{:?}",
        status.rebuild
    );
    assert_eq!(
        models.call(2, "closedCount", Map::new()).unwrap().0,
        json!(6)
    );
}

#[test]
fn the_last_switch_wins_and_a_switch_to_the_live_version_rebuilds_nothing() {
    let storage = Arc::new(SimStorage::new());
    let engine = open(&storage);
    let last = populate(&engine, 40);
    let models = ReadModels::start(engine.clone(), [counts(1)], small_batches()).unwrap();
    models.blocking_wait_for(last, WAIT).unwrap();

    // To the live version: nothing to build.
    let status = submit(
        &engine,
        Uuid::new_v4(),
        json!({"name": "counts", "version": 1}),
    );
    models
        .blocking_wait_for(status.position.unwrap(), WAIT)
        .unwrap();
    assert!(matches!(
        models.status("counts").unwrap().rebuild,
        RebuildStatus::Idle
    ));

    // To 2 and straight back to 1: whether or not the first switched, 1 is live at the end.
    submit(
        &engine,
        Uuid::new_v4(),
        json!({"name": "counts", "version": 2}),
    );
    let back = submit(
        &engine,
        Uuid::new_v4(),
        json!({"name": "counts", "version": 1}),
    );
    models
        .blocking_wait_for(back.position.unwrap(), WAIT)
        .unwrap();
    let ended = settled(&models);
    let status = models.status("counts").unwrap();
    match ended {
        // The rebuild to 2 was cancelled before it joined.
        RebuildStatus::Cancelled { root } => {
            assert_eq!(root.version, 2);
            assert_eq!(status.root.version, 1);
        }
        // It joined before the switch back was applied, which then rebuilt version 1.
        RebuildStatus::Switched { root, .. } => assert_eq!(root.version, 1),
        other => panic!("{other:?}"),
    }
    assert_eq!(status.root.version, 1);
    drop(models);
    engine.shutdown();
    drop(engine);

    let engine = open(&storage);
    let specs = switch::start_versions(&engine, vec![counts(2)]).unwrap();
    assert_eq!(specs[0].version(), 1, "the last switch named version 1");
    let models = ReadModels::start(engine.clone(), specs, small_batches()).unwrap();
    models
        .blocking_wait_for(engine.last_position(), WAIT)
        .unwrap();
    let status = models.status("counts").unwrap();
    assert_eq!(status.root.version, 1);
    assert!(matches!(status.rebuild, RebuildStatus::Idle));
}
