//! Several read models in one runtime (`ReadModels`), against real engines on simulated
//! storage: one position in every published snapshot under concurrent writes, query code
//! and named queries over all of them, name clashes, per-model rebuilds that join while
//! writes go on, a model whose projection panics parking the event, waits, and a source that is not the
//! engine.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Map, json};
use writ_engine::Engine;
use writ_fixtures::read::{CountersProjection, CountersView, Status, read_model, read_model_with};
use writ_query::{
    BoxFuture, Budget, EventFeed, EventSource, FeedError, ParkStage, Projection, QueryCatalog,
    QueryError, ReadModelSpec, ReadModels, RebuildError, RebuildStatus, RecordedEvent, RootId,
    RuntimeOptions, Snapshots, StartError, WaitError,
};
use writ_sandbox::{Sandbox, SandboxError, SandboxOptions};

mod support;

use support::{
    Counts, Fragile, Tally, WAIT, add, args, counts, create, engine, fresh, populate, run,
    small_batches,
};

/// A fragile read model with a query, rebuildable as a tolerant version 2.
fn fragile(in_decode: bool) -> ReadModelSpec {
    let mut catalog = QueryCatalog::new();
    catalog
        .version(1)
        .query("fragileCount", &[], |count: &u64, _| Ok(json!(count)));
    let projection = Fragile {
        tolerant: false,
        in_decode,
    };
    ReadModelSpec::new(projection, catalog).with_versions([1, 2], move |version| {
        (1..=2).contains(&version).then_some(Fragile {
            tolerant: version == 2,
            in_decode,
        })
    })
}

/// Asserts that the counters and counts read models of `snapshots` are both at its
/// position and agree: as many counters as creations, as many additions. Returns the
/// counters read model's projection version.
fn assert_one_position(snapshots: &Snapshots) -> u32 {
    let counters = snapshots.get::<CountersView>("counters").unwrap();
    let tally = snapshots.get::<Tally>("counts").unwrap();
    assert_eq!(counters.position, snapshots.position(), "{snapshots:?}");
    assert_eq!(tally.position, snapshots.position(), "{snapshots:?}");
    assert_eq!(
        counters.state.len() as u64,
        tally.state.created,
        "{snapshots:?}"
    );
    let additions: u64 = counters
        .state
        .counters()
        .map(|counter| counter.additions)
        .sum();
    assert_eq!(additions, tally.state.additions, "{snapshots:?}");
    counters.root.version
}

/// Checks every snapshot it loads with [`assert_one_position`] until told to stop;
/// returns the positions and the counters projection versions it saw.
fn watch_snapshots(
    models: Arc<ReadModels>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(BTreeSet<u64>, BTreeSet<u32>)> {
    std::thread::spawn(move || {
        let mut positions = BTreeSet::new();
        let mut versions = BTreeSet::new();
        let mut last = 0;
        loop {
            // Read the flag first: the snapshots loaded after it include everything
            // published before it was set.
            let stopping = stop.load(Ordering::Acquire);
            let snapshots = models.snapshots();
            assert!(snapshots.position() >= last, "positions never go back");
            last = snapshots.position();
            versions.insert(assert_one_position(&snapshots));
            positions.insert(snapshots.position());
            if stopping {
                return (positions, versions);
            }
            std::thread::yield_now();
        }
    })
}

/// Creates counters and adds to them (and closes one now and then) until told to stop;
/// returns how many counters it created.
fn write_until(engine: Arc<Engine>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut n = 1000;
        while !stop.load(Ordering::Relaxed) {
            create(&engine, n);
            add(&engine, n, &format!("live {n}"));
            if n % 3 == 0 {
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
}

#[test]
fn two_read_models_are_published_at_one_position_under_concurrent_writes() {
    let engine = engine();
    populate(&engine, 20);
    let models = Arc::new(
        ReadModels::start(engine.clone(), [read_model(), counts(1)], small_batches()).unwrap(),
    );
    assert_eq!(models.names(), ["counters", "counts"]);
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_snapshots(models.clone(), stop.clone());
    let mut last = 0;
    for n in 100..160 {
        create(&engine, n);
        add(&engine, n, "first");
        // An earlier counter, odd so never closed (populate closes every fourth).
        last = add(&engine, 1 + 2 * (n % 7), "more");
    }
    models.blocking_wait_for(last, WAIT).unwrap();
    stop.store(true, Ordering::Release);
    let (positions, _) = watcher.join().unwrap();
    assert!(positions.len() > 1, "saw {positions:?}");
    assert!(positions.contains(&last));

    let snapshots = models.snapshots();
    assert_eq!(snapshots.position(), last);
    assert_one_position(&snapshots);
    let counters = snapshots.get::<CountersView>("counters").unwrap();
    assert_eq!(
        counters.state,
        fresh(&engine, CountersProjection::current(), last)
    );
    for status in models.statuses() {
        assert_eq!((status.position, status.lag), (last, 0), "{status:?}");
        assert!(!status.stopped);
    }
    // Of another type, or unknown: none.
    assert!(snapshots.get::<Tally>("counters").is_none());
    assert!(snapshots.get::<Tally>("nothing").is_none());
}

#[test]
fn query_code_sees_every_read_models_functions_at_one_position() {
    let engine = engine();
    populate(&engine, 10);
    let models = Arc::new(
        ReadModels::start(engine.clone(), [read_model(), counts(1)], small_batches()).unwrap(),
    );
    let sandbox = Sandbox::new(SandboxOptions::default()).unwrap();
    let names = |library: &Arc<dyn writ_query::Library>| -> Vec<String> {
        library.functions().into_iter().map(|f| f.name).collect()
    };

    let v1 = models.library(1).unwrap();
    assert_eq!(
        names(&v1),
        ["counterStats", "counts", "getCounter", "listCounters"]
    );
    let roots = [
        ("counters", CountersProjection::CURRENT_VERSION),
        ("counts", 1),
    ];
    assert_eq!(v1.root(), RootId::of_library_over(&roots, 1));
    assert_eq!(v1.model(), RootId::of_models(&roots));
    let v2 = models.library(2).unwrap();
    assert_eq!(
        names(&v2),
        ["closedCount", "counterStats", "getCounter", "listCounters"]
    );
    assert_ne!(v2.root(), v1.root());
    assert_eq!(v2.model(), v1.model());
    assert!(matches!(
        models.library(3),
        Err(QueryError::UnknownVersion { version: 3 })
    ));

    // Code that reads both read models, while writes go on: every run sees them agree.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = write_until(engine.clone(), stop.clone());
    let code = "const stats = counterStats(); const tally = counts();
                return [stats.total, tally.created]";
    let mut positions = BTreeSet::new();
    while positions.len() < 5 {
        let library = models.library(1).unwrap();
        let outcome = sandbox.run(library.clone(), code, json!({})).unwrap();
        assert_eq!(outcome.position, library.position());
        assert_eq!(outcome.result[0], outcome.result[1], "{outcome:?}");
        positions.insert(outcome.position);
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();

    // A read model too old for the version: its functions answer 503, the others answer.
    let v2 = models.library(2).unwrap();
    let caught = sandbox
        .run(
            v2.clone(),
            "try { closedCount() } catch (e) { return [e.name, e.status, getCounter('c-1').id] }",
            json!({}),
        )
        .unwrap();
    assert_eq!(caught.result, json!(["LibraryError", 503, "c-1"]));
    assert_eq!(
        sandbox.run(v2, "closedCount()", json!({})).unwrap_err(),
        SandboxError::Library {
            status: 503,
            message: "query API version 2 needs projection version 2 or newer; the live read model is counts@1".into(),
        }
    );
}

#[test]
fn named_queries_are_routed_by_name() {
    let engine = engine();
    let last = populate(&engine, 10);
    let models = ReadModels::start(
        engine.clone(),
        [read_model(), counts(1)],
        RuntimeOptions::default(),
    )
    .unwrap();
    models.blocking_wait_for(last, WAIT).unwrap();
    assert_eq!(models.versions(), [1, 2]);
    let queries: Vec<(u32, String, &str)> = models
        .queries()
        .into_iter()
        .map(|q| (q.query.version, q.query.name, q.model))
        .collect();
    assert_eq!(
        queries,
        [
            (1, "counterStats".to_owned(), "counters"),
            (1, "counts".to_owned(), "counts"),
            (1, "getCounter".to_owned(), "counters"),
            (1, "listCounters".to_owned(), "counters"),
            (2, "closedCount".to_owned(), "counts"),
            (2, "counterStats".to_owned(), "counters"),
            (2, "getCounter".to_owned(), "counters"),
            (2, "listCounters".to_owned(), "counters"),
        ]
    );

    let (tally, position) = models.call(1, "counts", Map::new()).unwrap();
    assert_eq!(
        (tally, position),
        (json!({"created": 10, "additions": 10}), last)
    );
    let (counter, position) = models
        .call(2, "getCounter", args(json!({"id": "c-3"})))
        .unwrap();
    assert_eq!((counter["id"].as_str(), position), (Some("c-3"), last));
    assert!(matches!(
        models.call(1, "getCounter", args(json!({"id": "c-99"}))),
        Err(QueryError::NotFound { .. })
    ));
    assert!(matches!(
        models.call(2, "counts", Map::new()),
        Err(QueryError::UnknownQuery { version: 2, .. })
    ));
    assert!(matches!(
        models.call(7, "counts", Map::new()),
        Err(QueryError::UnknownVersion { version: 7 })
    ));
    // Version 2 of counts needs projection version 2: unavailable until a rebuild to it.
    assert!(matches!(
        models.call(2, "closedCount", Map::new()),
        Err(QueryError::Unavailable {
            version: 2,
            needs: 2,
            ..
        })
    ));
    let ended = models
        .rebuild("counts", Some(2))
        .unwrap()
        .blocking_finished();
    assert!(matches!(ended, RebuildStatus::Switched { .. }), "{ended:?}");
    let (closed, _) = models.call(2, "closedCount", Map::new()).unwrap();
    assert_eq!(closed, json!(3), "c-0, c-4 and c-8 were closed");
}

#[test]
fn a_query_name_claimed_by_two_read_models_is_refused_naming_both() {
    let engine = engine();
    let mut catalog = QueryCatalog::new();
    catalog
        .version(1)
        .query("counterStats", &[], |tally: &Tally, _| {
            Ok(json!(tally.created))
        });
    let clashing = ReadModelSpec::new(Counts { version: 1 }, catalog);
    let err = ReadModels::start(
        engine.clone(),
        [read_model(), clashing],
        RuntimeOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            &err,
            StartError::QueryClash { version: 1, name, first, second }
                if name == "counterStats" && first == "counters" && second == "counts"
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("counters") && err.to_string().contains("counts"));

    let err =
        ReadModels::start(engine, [counts(1), counts(2)], RuntimeOptions::default()).unwrap_err();
    assert!(
        matches!(&err, StartError::ModelTwice { name } if name == "counts"),
        "{err:?}"
    );
}

#[test]
fn a_rebuild_to_another_version_joins_while_writes_go_on_and_no_snapshot_mixes_positions() {
    let engine = engine();
    let last = populate(&engine, 100);
    let models = Arc::new(
        ReadModels::start(
            engine.clone(),
            [
                read_model_with(CountersProjection::with_version(1).unwrap()),
                counts(1),
            ],
            RuntimeOptions {
                batch_events_max: 16,
                ..RuntimeOptions::default()
            },
        )
        .unwrap(),
    );
    models.blocking_wait_for(last, WAIT).unwrap();
    let stop_watching = Arc::new(AtomicBool::new(false));
    let watcher = watch_snapshots(models.clone(), stop_watching.clone());
    let stop_writing = Arc::new(AtomicBool::new(false));
    let writer = write_until(engine.clone(), stop_writing.clone());

    // Both read models rebuild at once, each to version 2.
    let mut counters = models.rebuild("counters", Some(2)).unwrap();
    let mut tally = models.rebuild("counts", Some(2)).unwrap();
    assert!(matches!(
        models.rebuild("counters", None),
        Err(RebuildError::AlreadyRunning { .. })
    ));
    assert!(matches!(
        models.rebuild("nothing", None),
        Err(RebuildError::UnknownModel { .. })
    ));
    assert!(matches!(
        models.rebuild("counts", Some(9)),
        Err(RebuildError::UnknownVersion { version: 9, .. })
    ));
    let counters_ended = counters.blocking_finished();
    let RebuildStatus::Switched { root, .. } = counters_ended else {
        panic!("the counters rebuild ended with {counters_ended:?}")
    };
    assert_eq!(root, CountersProjection::current().root());
    let tally_ended = tally.blocking_finished();
    assert!(
        matches!(tally_ended, RebuildStatus::Switched { root, .. } if root.version == 2),
        "{tally_ended:?}"
    );
    // A few more writes after both switched, then stop.
    let switched_at = engine.last_position();
    while engine.last_position() < switched_at + 20 {
        std::thread::sleep(Duration::from_millis(1));
    }
    stop_writing.store(true, Ordering::Relaxed);
    assert!(writer.join().unwrap() > 0);
    let last = engine.last_position();
    models.blocking_wait_for(last, WAIT).unwrap();
    stop_watching.store(true, Ordering::Release);
    let (positions, versions) = watcher.join().unwrap();
    assert!(positions.contains(&last));
    assert_eq!(versions, BTreeSet::from([1, 2]), "the watcher saw both");

    let snapshots = models.snapshots();
    assert_one_position(&snapshots);
    let view = snapshots.get::<CountersView>("counters").unwrap();
    assert_eq!(
        view.state,
        fresh(&engine, CountersProjection::current(), last)
    );
    // Every close, counted by version 2 of counts, is in a counter's history (version 2).
    let closes = view
        .state
        .counters()
        .flat_map(|counter| counter.history.iter())
        .filter(|change| change.status == Status::Closed)
        .count();
    assert_eq!(
        models.call(2, "closedCount", Map::new()).unwrap(),
        (json!(closes), last)
    );
    let statuses = models.statuses();
    assert_eq!(statuses[0].rebuild, counters_ended);
    assert_eq!(statuses[1].rebuild, tally_ended);
    assert_eq!(
        statuses.iter().map(|s| s.root.version).collect::<Vec<_>>(),
        [2, 2]
    );
}

#[test]
fn a_read_model_whose_projection_panics_parks_the_event_and_goes_on() {
    for in_decode in [false, true] {
        a_panicking_read_model(in_decode);
    }
}

fn a_panicking_read_model(in_decode: bool) {
    let engine = engine();
    create(&engine, 1);
    let good = add(&engine, 1, "fine");
    let models = ReadModels::start(
        engine.clone(),
        [fragile(in_decode), counts(1)],
        RuntimeOptions::default(),
    )
    .unwrap();
    models.blocking_wait_for(good, WAIT).unwrap();
    let bad = add(&engine, 1, "panic");
    let after = add(&engine, 1, "after");
    // Both read models go on, the event after the panic applied.
    assert_eq!(models.blocking_wait_for(after, WAIT), Ok(after));
    let status = models.status("fragile").unwrap();
    assert!(!status.stopped && status.failure.is_none(), "{status:?}");
    assert_eq!(status.position, after);
    assert_eq!((status.stats.parked, status.stats.events_applied), (1, 2));
    let parked = status.stats.last_parked().unwrap();
    assert_eq!(parked.position, bad);
    assert_eq!(parked.event_type, "Added");
    assert_eq!(
        parked.stage,
        if in_decode {
            ParkStage::Decode
        } else {
            ParkStage::Apply
        }
    );
    assert!(parked.message.contains("cannot handle"), "{parked:?}");
    let tally = models.status("counts").unwrap();
    assert!(!tally.stopped && tally.stats.parked == 0, "{tally:?}");
    assert_eq!(tally.position, after);

    // Its queries answer, at the group's position, without the parked event.
    assert!(!models.snapshots().is_stopped("fragile"));
    assert_eq!(
        models.call(1, "fragileCount", Map::new()).unwrap(),
        (json!(2), after)
    );
    let library = models.library(1).unwrap();
    assert_eq!(
        library
            .call("fragileCount", Map::new(), &Budget::unlimited())
            .unwrap(),
        2
    );

    // A rebuild to the tolerant version applies the parked event.
    let ended = models
        .rebuild("fragile", Some(2))
        .unwrap()
        .blocking_finished();
    assert!(matches!(ended, RebuildStatus::Switched { .. }), "{ended:?}");
    let (count, position) = models.call(1, "fragileCount", Map::new()).unwrap();
    assert_eq!((count, position), (json!(3), models.position()));
    let status = models.status("fragile").unwrap();
    assert!(!status.stopped && status.stats.parked == 0, "{status:?}");
    assert_eq!(status.root.version, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_answer_at_the_position_time_out_or_stop() {
    let engine = engine();
    let models = Arc::new(
        ReadModels::start(
            engine.clone(),
            [read_model(), counts(1)],
            RuntimeOptions::default(),
        )
        .unwrap(),
    );
    // A waiter for a position not yet written is woken by the write.
    let waiter = {
        let models = models.clone();
        tokio::spawn(async move { models.wait_for(1, WAIT).await })
    };
    let engine2 = engine.clone();
    let written = tokio::task::spawn_blocking(move || create(&engine2, 1))
        .await
        .unwrap();
    assert!(waiter.await.unwrap().unwrap() >= written);
    // Read your writes: both read models have it.
    let engine2 = engine.clone();
    let written = tokio::task::spawn_blocking(move || add(&engine2, 1, "hello"))
        .await
        .unwrap();
    assert_eq!(models.wait_for(written, WAIT).await, Ok(written));
    assert_eq!(
        models.call(1, "counts", Map::new()).unwrap(),
        (json!({"created": 1, "additions": 1}), written)
    );

    // A position that never comes: timeout, with where the read models are.
    assert_eq!(
        models
            .wait_for(written + 10, Duration::from_millis(50))
            .await,
        Err(WaitError::Timeout {
            wanted: written + 10,
            position: written
        })
    );
    // Once the engine shuts down, waiting cannot help: answered at once.
    engine.shutdown();
    assert_eq!(
        models.wait_for(written + 10, WAIT).await,
        Err(WaitError::Stopped {
            wanted: written + 10,
            position: written
        })
    );
    for status in models.statuses() {
        assert!(status.stopped && status.failure.is_none(), "{status:?}");
    }
    models.shutdown();
    assert!(matches!(
        models.rebuild("counters", None),
        Err(RebuildError::ShutDown)
    ));
}

/// A global log in memory that is not the engine: the events given, then a read error.
struct FailingSource {
    events: Vec<RecordedEvent>,
}

struct FailingFeed {
    events: Vec<RecordedEvent>,
    next: u64,
}

impl EventSource for FailingSource {
    fn subscribe(&self, from_position: u64) -> Box<dyn EventFeed> {
        Box::new(FailingFeed {
            events: self.events.clone(),
            next: from_position.max(1),
        })
    }

    fn last_position(&self) -> u64 {
        self.events.len() as u64
    }
}

impl EventFeed for FailingFeed {
    fn next_batch_into<'a>(
        &'a mut self,
        max: usize,
        events: &'a mut Vec<RecordedEvent>,
    ) -> BoxFuture<'a, Result<(), FeedError>> {
        Box::pin(async move {
            let from = (self.next - 1) as usize;
            if from >= self.events.len() {
                return Err(FeedError::Failed {
                    source: "the disk is on fire".into(),
                });
            }
            let to = (from + max).min(self.events.len());
            events.clear();
            events.extend_from_slice(&self.events[from..to]);
            self.next = to as u64 + 1;
            Ok(())
        })
    }
}

#[test]
fn any_event_source_feeds_the_read_models_and_a_read_error_stops_them() {
    let events: Vec<RecordedEvent> = (1..=10)
        .map(|position| RecordedEvent {
            position,
            stream: format!("counter-c-{position}"),
            version: 1,
            event_type: "CounterCreated".into(),
            data: b"{}".to_vec(),
            ..RecordedEvent::default()
        })
        .collect();
    let models = ReadModels::start(
        Arc::new(FailingSource { events }),
        [counts(1)],
        RuntimeOptions {
            batch_events_max: 4,
            ..RuntimeOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        models.blocking_wait_for(11, WAIT),
        Err(WaitError::Stopped {
            wanted: 11,
            position: 10
        })
    );
    assert_eq!(
        models.call(1, "counts", Map::new()).unwrap(),
        (json!({"created": 10, "additions": 0}), 10)
    );
    let status = models.status("counts").unwrap();
    assert!(status.stopped);
    let failure = status.failure.unwrap();
    assert!(
        failure.contains("after position 10") && failure.contains("the disk is on fire"),
        "{failure}"
    );
}

#[test]
fn a_library_answer_of_unbounded_length_stops_at_the_query_memory_limit() {
    let engine = engine();
    let last = populate(&engine, 2);
    let mut catalog = QueryCatalog::new();
    catalog
        .version(1)
        .query("marks", &["count"], |_: &Tally, args| {
            // Without a count, a list that never ends: only the budget stops it.
            let count = args.u64("count")?.unwrap_or(u64::MAX);
            args.array((0..count).map(|n| json!({"mark": n})))
        });
    let models = ReadModels::start(
        engine,
        [ReadModelSpec::new(Counts { version: 1 }, catalog)],
        RuntimeOptions::default(),
    )
    .unwrap();
    models.blocking_wait_for(last, WAIT).unwrap();
    let limit_bytes = 4 << 20;
    let sandbox = Sandbox::new(SandboxOptions {
        memory_bytes_max: limit_bytes,
        time_limit: Duration::from_secs(20),
        pool_size: 1,
        ..SandboxOptions::default()
    })
    .unwrap();
    let library = models.library(1).unwrap();
    let error = sandbox
        .run(library.clone(), "marks().length", json!({}))
        .unwrap_err();
    assert!(
        matches!(
            &error,
            SandboxError::LibraryAnswerTooLarge { function, limit_bytes: limit, .. }
                if function == "marks" && *limit == limit_bytes
        ),
        "{error:?}"
    );
    // The worker goes on, and an answer within the budget is answered.
    let outcome = sandbox
        .run(library, "marks(10000).at(-1).mark", json!({}))
        .unwrap();
    assert_eq!(outcome.result, json!(9999));
    // A named query has no budget: the same function answers in full.
    let (answer, _) = models.call(1, "marks", args(json!({"count": 3}))).unwrap();
    assert_eq!(answer, json!([{"mark": 0}, {"mark": 1}, {"mark": 2}]));
}
