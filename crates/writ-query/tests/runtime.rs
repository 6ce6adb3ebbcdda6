//! The projection runtime against real engines on simulated storage: publishing per batch,
//! snapshot isolation, restarts, read-your-writes waits, rebuilds racing live writes, and
//! projection failures.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Map, json};
use writ_engine::{Engine, RecordedEvent};
use writ_fixtures::read::{CountersProjection, CountersView, catalog};
use writ_log::storage::SimStorage;
use writ_query::{
    ApplyError, Budget, EventSource, Projection, ProjectionRuntime, QueryError, ReadModels,
    RebuildStatus, RootId, RuntimeOptions, WaitError,
};

mod support;

use support::{Fragile, WAIT, add, args, create, engine, fresh, open, populate, run};

#[test]
fn snapshots_are_published_per_batch_never_half_a_batch() {
    let engine = engine();
    let last = populate(&engine, 20);
    let runtime = ProjectionRuntime::start(
        engine.clone(),
        CountersProjection::current(),
        RuntimeOptions {
            batch_events_max: 3,
            catch_up_publish_interval: Duration::ZERO,
            ..RuntimeOptions::default()
        },
    )
    .unwrap();
    // Every event was durable before the start, so batches are exactly 3 events: any
    // position a reader sees ends a batch.
    let mut seen = Vec::new();
    loop {
        let snapshot = runtime.snapshot();
        seen.push(snapshot.position);
        if snapshot.position == last {
            break;
        }
        std::thread::yield_now();
    }
    assert!(
        seen.iter().all(|p| p % 3 == 0 || *p == last),
        "positions seen: {seen:?}"
    );
    let snapshot = runtime.snapshot();
    assert_eq!(
        snapshot.state,
        fresh(&engine, CountersProjection::current(), last)
    );
    let status = runtime.status();
    assert_eq!(
        (status.position, status.applied, status.lag),
        (last, last, 0)
    );
    assert_eq!(status.stats.events_applied, last);
    assert_eq!(status.root, CountersProjection::current().root());
}

#[test]
fn a_held_snapshot_never_changes_while_the_projection_advances() {
    let engine = engine();
    let before = populate(&engine, 5);
    let runtime = ProjectionRuntime::start(
        engine.clone(),
        CountersProjection::current(),
        RuntimeOptions::default(),
    )
    .unwrap();
    let held = runtime.blocking_wait_for(before, WAIT).unwrap();
    let copy = held.state.clone();
    let catalog = catalog();
    let answer = |snapshot: &writ_query::Snapshot<CountersView>| {
        (
            catalog
                .call(2, "counterStats", snapshot, Map::new())
                .unwrap(),
            catalog
                .call(2, "getCounter", snapshot, args(json!({"id": "c-1"})))
                .unwrap(),
        )
    };
    let answered = answer(&held);

    for n in 5..30 {
        create(&engine, n);
        add(&engine, 1, &format!("more {n}"));
        run(
            &engine,
            "CloseCounter",
            json!({"counterId": format!("c-{n}"), "reason": "done"}),
        );
    }
    let after = runtime
        .blocking_wait_for(engine.last_position(), WAIT)
        .unwrap();
    assert!(after.position > held.position);
    assert_ne!(answer(&after), answered);
    // The held snapshot is as it was.
    assert_eq!(held.position, before);
    assert_eq!(held.state, copy);
    assert_eq!(answer(&held), answered);
    assert_eq!(
        held.state,
        fresh(&engine, CountersProjection::current(), before)
    );
}

#[test]
fn a_restart_rebuilds_the_same_state() {
    let storage = Arc::new(SimStorage::new());
    let engine = open(&storage);
    let last = populate(&engine, 30);
    let start = |engine: &Arc<Engine>| {
        let source: Arc<dyn EventSource> = engine.clone();
        let runtime = ProjectionRuntime::start(
            source,
            CountersProjection::current(),
            RuntimeOptions::default(),
        )
        .unwrap();
        let snapshot = runtime.blocking_wait_for(last, WAIT).unwrap();
        runtime.shutdown();
        snapshot
    };
    let first = start(&engine);
    // The same engine, a new runtime.
    let second = start(&engine);
    assert_eq!((first.position, second.position), (last, last));
    assert_eq!(first.state, second.state);
    // The whole process again: engine and runtime reopened on the same storage.
    engine.shutdown();
    drop(engine);
    let engine = open(&storage);
    assert_eq!(engine.last_position(), last);
    let third = start(&engine);
    assert_eq!(first.state, third.state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_returns_at_the_position_and_times_out_otherwise() {
    let engine = engine();
    let runtime = Arc::new(
        ProjectionRuntime::start(
            engine.clone(),
            CountersProjection::current(),
            RuntimeOptions::default(),
        )
        .unwrap(),
    );
    // A waiter for a position not yet written is woken by the write.
    let waiter = {
        let runtime = runtime.clone();
        tokio::spawn(async move { runtime.wait_for(1, WAIT).await })
    };
    let engine2 = engine.clone();
    let written = tokio::task::spawn_blocking(move || create(&engine2, 1))
        .await
        .unwrap();
    assert_eq!(written, 1);
    let snapshot = waiter.await.unwrap().unwrap();
    assert!(snapshot.position >= written);
    assert!(snapshot.state.counter("c-1").is_some());

    // Read your writes: the snapshot for a command's position includes its effects.
    let engine2 = engine.clone();
    let written = tokio::task::spawn_blocking(move || add(&engine2, 1, "hello"))
        .await
        .unwrap();
    let snapshot = runtime.wait_for(written, WAIT).await.unwrap();
    assert_eq!(snapshot.state.counter("c-1").unwrap().additions, 1);

    // A position that never comes: timeout, with where the read model is.
    let err = runtime
        .wait_for(written + 10, Duration::from_millis(50))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        WaitError::Timeout {
            wanted: written + 10,
            position: written
        }
    );

    // Once the engine shuts down, waiting cannot help: answered at once.
    engine.shutdown();
    let err = runtime.wait_for(written + 10, WAIT).await.unwrap_err();
    assert_eq!(
        err,
        WaitError::Stopped {
            wanted: written + 10,
            position: written
        }
    );
    assert!(runtime.status().stopped);
    assert!(runtime.status().failure.is_none());
}

#[test]
fn rebuild_to_a_new_version_racing_live_writes_ends_identical_to_a_fresh_build() {
    let engine = engine();
    populate(&engine, 200);
    let runtime = Arc::new(
        ProjectionRuntime::start(
            engine.clone(),
            CountersProjection::with_version(1).unwrap(),
            RuntimeOptions {
                batch_events_max: 16,
                ..RuntimeOptions::default()
            },
        )
        .unwrap(),
    );
    let catalog = Arc::new(catalog());
    let old = runtime
        .blocking_wait_for(engine.last_position(), WAIT)
        .unwrap();
    assert_eq!(old.root.version, 1);
    assert!(matches!(
        catalog.bind(2, old.clone()),
        Err(QueryError::Unavailable {
            version: 2,
            needs: 2,
            ..
        })
    ));
    let v1_before = catalog
        .call(1, "getCounter", &old, args(json!({"id": "c-8"})))
        .unwrap();

    // Writes keep coming from another thread while the rebuild runs.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let engine = engine.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 1000;
            while !stop.load(Ordering::Relaxed) {
                create(&engine, n);
                add(&engine, n, &format!("live {n}"));
                if n % 5 == 0 {
                    run(
                        &engine,
                        "CloseCounter",
                        json!({"counterId": format!("c-{n}"), "reason": "raced"}),
                    );
                }
                n += 1;
            }
            n - 1000
        })
    };
    let mut rebuild = runtime.rebuild_with(CountersProjection::current()).unwrap();
    assert!(matches!(
        runtime.rebuild_with(CountersProjection::current()),
        Err(writ_query::RebuildError::AlreadyRunning { .. })
    ));
    let ended = rebuild.blocking_finished();
    let RebuildStatus::Switched { root, position } = ended else {
        panic!("the rebuild ended with {ended:?}")
    };
    assert_eq!(root, CountersProjection::current().root());
    // A few more writes after the switch, then stop.
    let switched_at = engine.last_position();
    while engine.last_position() < switched_at + 20 {
        std::thread::sleep(Duration::from_millis(1));
    }
    stop.store(true, Ordering::Relaxed);
    let raced = writer.join().unwrap();
    assert!(raced > 0);

    let last = engine.last_position();
    let live = runtime.blocking_wait_for(last, WAIT).unwrap();
    assert!(position <= live.position);
    assert_eq!(live.root, CountersProjection::current().root());
    assert_eq!(
        live.state,
        fresh(&engine, CountersProjection::current(), live.position)
    );
    assert_eq!(runtime.status().rebuild, ended);

    // The new root answers v2 with history; v1 answers the same as before, through the
    // transformers, for data written before the switch.
    let library = catalog.bind(2, live.clone()).unwrap();
    assert_eq!(library.root(), RootId::of_library("counters", 2, 2));
    let unlimited = Budget::unlimited();
    let c8 = library
        .call("getCounter", args(json!({"id": "c-8"})), &unlimited)
        .unwrap();
    assert_eq!(c8["history"].as_array().unwrap().len(), 3, "{c8}");
    let v1_after = catalog
        .call(1, "getCounter", &live, args(json!({"id": "c-8"})))
        .unwrap();
    assert_eq!(v1_after, v1_before);
    // A reader holding the old root's snapshot still has it.
    assert_eq!(old.root.version, 1);
    assert_eq!(
        catalog
            .call(1, "getCounter", &old, args(json!({"id": "c-8"})))
            .unwrap(),
        v1_before
    );
}

#[test]
fn rebuild_of_the_same_root_switches_and_keeps_serving() {
    let engine = engine();
    let last = populate(&engine, 50);
    let runtime = ProjectionRuntime::start(
        engine.clone(),
        CountersProjection::current(),
        RuntimeOptions::default(),
    )
    .unwrap();
    let before = runtime.blocking_wait_for(last, WAIT).unwrap();
    let mut rebuild = runtime.rebuild().unwrap();
    let ended = rebuild.blocking_finished();
    assert!(
        matches!(ended, RebuildStatus::Switched { position, .. } if position == last),
        "{ended:?}"
    );
    let after = runtime.snapshot();
    assert!(
        !Arc::ptr_eq(&before, &after),
        "readers moved to the new instance"
    );
    assert_eq!(before.state, after.state);
    assert_eq!(after.root, before.root);
    // The new instance follows new writes.
    let written = create(&engine, 999);
    let snapshot = runtime.blocking_wait_for(written, WAIT).unwrap();
    assert!(snapshot.state.counter("c-999").is_some());
    assert_eq!(runtime.status().stats.events_applied, written);
}

#[test]
fn an_event_the_projection_cannot_apply_is_counted_and_skipped() {
    for in_decode in [false, true] {
        an_event_that_fails(in_decode);
    }
}

fn an_event_that_fails(in_decode: bool) {
    let engine = engine();
    create(&engine, 1);
    add(&engine, 1, "fine");
    let boom = add(&engine, 1, "boom");
    let last = add(&engine, 1, "fine again");
    let runtime = ProjectionRuntime::start(
        engine.clone(),
        Fragile {
            tolerant: false,
            in_decode,
        },
        RuntimeOptions::default(),
    )
    .unwrap();
    let snapshot = runtime.blocking_wait_for(last, WAIT).unwrap();
    assert_eq!(snapshot.state, 2);
    let status = runtime.status();
    assert_eq!(status.stats.errors, 1);
    assert_eq!(
        status.stats.events_ignored, 1,
        "CounterCreated is not handled"
    );
    let failure = status.stats.last_error.unwrap();
    assert_eq!(
        (failure.position, failure.event_type.as_str()),
        (boom, "Added")
    );
    assert!(!status.stopped);
}

#[test]
fn a_panicking_projection_parks_the_event_visibly_and_a_rebuild_applies_it() {
    for in_decode in [false, true] {
        a_panicking_projection(in_decode);
    }
}

fn a_panicking_projection(in_decode: bool) {
    let engine = engine();
    create(&engine, 1);
    let good = add(&engine, 1, "fine");
    let runtime = ProjectionRuntime::start(
        engine.clone(),
        Fragile {
            tolerant: false,
            in_decode,
        },
        RuntimeOptions::default(),
    )
    .unwrap();
    runtime.blocking_wait_for(good, WAIT).unwrap();
    let bad = add(&engine, 1, "panic");
    // Parked: the read model reaches the event's position without it.
    assert_eq!(runtime.blocking_wait_for(bad, WAIT).unwrap().state, 1);
    let status = runtime.status();
    assert!(!status.stopped && status.failure.is_none(), "{status:?}");
    assert_eq!(status.stats.parked, 1);
    let parked = status.stats.last_parked().unwrap();
    assert_eq!(parked.position, bad);
    assert!(parked.message.contains("cannot handle"), "{parked:?}");
    // The next event is applied.
    let after = add(&engine, 1, "after");
    assert_eq!(runtime.blocking_wait_for(after, WAIT).unwrap().state, 2);

    let mut rebuild = runtime
        .rebuild_with(Fragile {
            tolerant: true,
            in_decode,
        })
        .unwrap();
    assert!(matches!(
        rebuild.blocking_finished(),
        RebuildStatus::Switched { .. }
    ));
    let snapshot = runtime.blocking_wait_for(after, WAIT).unwrap();
    assert_eq!(snapshot.state, 3);
    let status = runtime.status();
    assert!(!status.stopped && status.stats.parked == 0, "{status:?}");
    assert_eq!(runtime.root().version, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counters_read_model_binds_libraries_per_version() {
    let engine = engine();
    let engine2 = engine.clone();
    let last = tokio::task::spawn_blocking(move || populate(&engine2, 10))
        .await
        .unwrap();
    let service = ReadModels::start(
        engine.clone(),
        [writ_fixtures::read::read_model()],
        RuntimeOptions::default(),
    )
    .unwrap();
    assert_eq!(service.versions(), [1, 2]);
    assert_eq!(service.wait_for(last, WAIT).await.unwrap(), last);

    let v1 = service.library(1).unwrap();
    let v2 = service.library(2).unwrap();
    assert_eq!((v1.position(), v2.position()), (last, last));
    assert_eq!(v1.root(), RootId::of_library("counters", 2, 1));
    assert_ne!(v1.root(), v2.root(), "two function sets, two ids");
    assert_eq!(
        v1.model(),
        RootId::of("counters", 2),
        "one model under both"
    );
    assert_eq!(v2.model(), v1.model());
    let names = |lib: &Arc<dyn writ_query::Library>| {
        lib.functions()
            .into_iter()
            .map(|f| format!("{}({})", f.name, f.params.join(",")))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&v1),
        [
            "counterStats()",
            "getCounter(id)",
            "listCounters(status,owner,limit)"
        ]
    );
    assert_eq!(
        names(&v2),
        [
            "counterStats()",
            "getCounter(id)",
            "listCounters(status,owner,limit,cursor)"
        ]
    );
    // Positional call and options-object call.
    let unlimited = Budget::unlimited();
    let by_position = v1
        .call(
            "listCounters",
            args(json!({"status": "closed"})),
            &unlimited,
        )
        .unwrap();
    let by_object = v1
        .call(
            "listCounters",
            args(json!({"status": {"status": "closed"}})),
            &unlimited,
        )
        .unwrap();
    assert_eq!(by_position, by_object);
    assert_eq!(
        by_position.as_array().unwrap().len(),
        1,
        "c-4 (c-0 and c-8 were reopened)"
    );
    assert_eq!(
        v1.call("counterStats", Map::new(), &unlimited).unwrap(),
        json!({"open": 9, "closed": 1, "total": 10})
    );
    let missing = v1
        .call("getCounter", args(json!({"id": "c-77"})), &unlimited)
        .unwrap_err();
    assert_eq!(missing.status, 404, "{missing}");
    assert!(matches!(
        service.library(3),
        Err(QueryError::UnknownVersion { version: 3 })
    ));
    assert_eq!(service.status("counters").unwrap().position, last);
    service.shutdown();
}

/// Applies slowly, so that the reader thread fills the channel and blocks sending, and
/// panics warming position 50: outside `decode` and `apply`, which would park the event,
/// so the instance stops.
#[derive(Debug, Clone)]
struct SlowThenPanics;

impl Projection for SlowThenPanics {
    type State = u64;
    type Decoded = ();

    fn name(&self) -> &'static str {
        "slow"
    }

    fn version(&self) -> u32 {
        1
    }

    fn event_types(&self) -> &[&'static str] {
        &["CounterCreated", "Added"]
    }

    fn initial_state(&self) -> u64 {
        0
    }

    fn decode(&self, _: &RecordedEvent) -> Result<(), ApplyError> {
        Ok(())
    }

    fn apply(&self, count: &mut u64, _: &RecordedEvent, _: ()) -> Result<(), ApplyError> {
        std::thread::sleep(Duration::from_millis(1));
        *count += 1;
        Ok(())
    }

    fn warm(&self, _: &u64, events: &[RecordedEvent]) {
        assert!(
            events.iter().all(|event| event.position != 50),
            "cannot handle position 50"
        );
    }
}

/// Regression: an instance whose applying thread stopped (here by a panic) while its
/// reader thread was blocked sending into a full channel never ended: the instance waited
/// for the reader, which waited for the channel's receiver, which the instance held.
#[test]
fn an_instance_stops_even_while_its_reader_waits_on_a_full_channel() {
    let engine = engine();
    create(&engine, 1);
    for n in 0..200 {
        add(&engine, 1, &format!("addition {n}"));
    }
    let runtime = ProjectionRuntime::start(
        engine.clone(),
        SlowThenPanics,
        RuntimeOptions {
            batch_events_max: 1,
            ..RuntimeOptions::default()
        },
    )
    .unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while runtime.status().failure.is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the failed instance never ended"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = runtime.status();
    assert!(status.stopped);
    assert!(status.failure.unwrap().contains("position 50"));
    runtime.shutdown();
}
