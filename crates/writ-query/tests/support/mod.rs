//! Engines on simulated storage and commands to fill them, shared by the runtime's tests.

// Each test file uses its own share of these.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use uuid::Uuid;
use writ_domain::model::domain;
use writ_engine::{CommandState, Engine, EngineOptions, RecordedEvent, Registry, Submitted};
use writ_fixtures::Counters;
use writ_fixtures::read::{CountersProjection, CountersView};
use writ_log::LogOptions;
use writ_log::storage::{SimStorage, Storage};
use writ_query::{ApplyError, Projection, QueryCatalog, ReadModelSpec, Replay, RuntimeOptions};

pub const WAIT: Duration = Duration::from_secs(30);

pub fn options() -> EngineOptions {
    EngineOptions {
        log: LogOptions {
            segment_bytes: 4 << 20,
            record_bytes_max: 2 << 20,
            ..Default::default()
        },
        ..Default::default()
    }
}

pub fn registry() -> Registry {
    Registry::builder()
        .domain(domain::<Counters>())
        .build()
        .unwrap()
}

pub fn open(storage: &Arc<SimStorage>) -> Arc<Engine> {
    let storage: Arc<dyn Storage> = storage.clone();
    Arc::new(Engine::open(storage, registry(), options()).unwrap().0)
}

pub fn engine() -> Arc<Engine> {
    open(&Arc::new(SimStorage::new()))
}

/// Runs a command to its outcome; returns the position that includes its effects.
pub fn run(engine: &Engine, command: &str, payload: Value) -> u64 {
    let payload = serde_json::to_vec(&payload).unwrap();
    let Submitted::New(pending) = engine
        .submit(Uuid::new_v4(), command, None, &payload)
        .unwrap()
    else {
        unreachable!("a fresh id")
    };
    let status = pending.blocking_outcome().unwrap();
    assert_eq!(
        status.state,
        CommandState::Succeeded,
        "{command} {status:?}"
    );
    status.position.unwrap()
}

/// Creates counter `c-{n}`, owned by ann, bob or cy.
pub fn create(engine: &Engine, n: u64) -> u64 {
    let owner = ["ann", "bob", "cy"][n as usize % 3];
    run(
        engine,
        "CreateCounter",
        json!({"counterId": format!("c-{n}"), "title": format!("Counter {n}"), "owner": owner}),
    )
}

/// Adds 1 to counter `c-{n}`, with a note.
pub fn add(engine: &Engine, n: u64, note: &str) -> u64 {
    run(
        engine,
        "Add",
        json!({"counterId": format!("c-{n}"), "amount": 1, "note": note}),
    )
}

/// A mixed history: creations, additions, transfers (over two streams), closes and
/// reopens.
pub fn populate(engine: &Engine, counters: u64) -> u64 {
    let mut last = 0;
    for n in 0..counters {
        last = create(engine, n);
    }
    for n in 0..counters {
        last = add(engine, n, &format!("first look at {n}"));
        if n % 3 == 0 && n + 1 < counters {
            last = run(
                engine,
                "Transfer",
                json!({"counterId": format!("c-{n}"), "to": format!("c-{}", n + 1), "amount": 1}),
            );
        }
        if n % 4 == 0 {
            last = run(
                engine,
                "CloseCounter",
                json!({"counterId": format!("c-{n}"), "reason": "done"}),
            );
        }
        if n % 8 == 0 {
            last = run(
                engine,
                "ReopenCounter",
                json!({"counterId": format!("c-{n}")}),
            );
        }
    }
    last
}

/// The read model a fresh projection builds from the engine's log up to `position`.
pub fn fresh(engine: &Engine, projection: CountersProjection, position: u64) -> CountersView {
    let mut replay = Replay::new(projection);
    while replay.position() < position {
        let limit = (position - replay.position()).min(1000) as usize;
        let events = engine.read_all(replay.position() + 1, limit).unwrap();
        replay.apply(&events);
    }
    assert_eq!(replay.stats().errors, 0);
    replay.into_state()
}

pub fn args(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

/// Counts additions; fails on notes saying "boom", panics on "panic" unless tolerant;
/// in [`Projection::decode`] (on the runtime's reader thread) when `in_decode`, else in
/// [`Projection::apply`].
#[derive(Debug, Clone)]
pub struct Fragile {
    pub tolerant: bool,
    pub in_decode: bool,
}

impl Fragile {
    fn check(&self, event: &RecordedEvent) -> Result<(), ApplyError> {
        let text = String::from_utf8_lossy(&event.data);
        if text.contains("boom") {
            return Err(ApplyError::InvalidData {
                detail: "boom".into(),
            });
        }
        if text.contains("panic") && !self.tolerant {
            panic!("cannot handle {text}");
        }
        Ok(())
    }
}

impl Projection for Fragile {
    type State = u64;
    type Decoded = ();

    fn name(&self) -> &'static str {
        "fragile"
    }

    fn version(&self) -> u32 {
        u32::from(self.tolerant) + 1
    }

    fn event_types(&self) -> &[&'static str] {
        &["Added"]
    }

    fn initial_state(&self) -> u64 {
        0
    }

    fn decode(&self, event: &RecordedEvent) -> Result<(), ApplyError> {
        if self.in_decode {
            self.check(event)?;
        }
        Ok(())
    }

    fn apply(&self, count: &mut u64, event: &RecordedEvent, _: ()) -> Result<(), ApplyError> {
        if !self.in_decode {
            self.check(event)?;
        }
        *count += 1;
        Ok(())
    }
}

/// Counts created counters and additions; from version 2 on, closes too.
#[derive(Debug, Clone)]
pub struct Counts {
    pub version: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub created: u64,
    pub additions: u64,
    pub closed: u64,
}

impl Projection for Counts {
    type State = Tally;
    type Decoded = ();

    fn name(&self) -> &'static str {
        "counts"
    }

    fn version(&self) -> u32 {
        self.version
    }

    fn event_types(&self) -> &[&'static str] {
        &["CounterCreated", "Added", "CounterClosed"]
    }

    fn initial_state(&self) -> Tally {
        Tally::default()
    }

    fn decode(&self, _: &RecordedEvent) -> Result<(), ApplyError> {
        Ok(())
    }

    fn apply(&self, tally: &mut Tally, event: &RecordedEvent, _: ()) -> Result<(), ApplyError> {
        match event.event_type.as_str() {
            "CounterCreated" => tally.created += 1,
            "Added" => tally.additions += 1,
            _ if self.version >= 2 => tally.closed += 1,
            _ => {}
        }
        Ok(())
    }
}

/// `counts` in query API version 1; `closedCount` in version 2, which needs projection
/// version 2.
pub fn counts_catalog() -> QueryCatalog<Tally> {
    let mut catalog = QueryCatalog::new();
    catalog.version(1).query("counts", &[], |tally: &Tally, _| {
        Ok(json!({"created": tally.created, "additions": tally.additions}))
    });
    catalog.version(2).requires_projection_version(2).query(
        "closedCount",
        &[],
        |tally: &Tally, _| Ok(json!(tally.closed)),
    );
    catalog
}

pub fn counts(version: u32) -> ReadModelSpec {
    ReadModelSpec::new(Counts { version }, counts_catalog()).with_versions([1, 2], |version| {
        (1..=2).contains(&version).then_some(Counts { version })
    })
}

/// Publishes after every batch of a few events, so that there are many snapshots to see.
pub fn small_batches() -> RuntimeOptions {
    RuntimeOptions {
        batch_events_max: 5,
        catch_up_publish_interval: Duration::ZERO,
        ..RuntimeOptions::default()
    }
}
