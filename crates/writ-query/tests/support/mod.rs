//! Engines on simulated storage and commands to fill them, shared by the runtime's tests.

// Each test file uses its own share of these.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use uuid::Uuid;
use writ_domain::model::domain;
use writ_engine::{CommandState, Engine, EngineOptions, RecordedEvent, Registry, Submitted};
use writ_log::LogOptions;
use writ_log::storage::{SimStorage, Storage};
use writ_query::{ApplyError, Projection, Replay};
use writ_tickets::Tickets;
use writ_tickets::read::{TicketsProjection, TicketsView};

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
        .domain(domain::<Tickets>())
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

pub fn open_ticket(engine: &Engine, n: u64) -> u64 {
    let priority = ["low", "normal", "high", "urgent"][n as usize % 4];
    run(
        engine,
        "OpenTicket",
        json!({"ticketId": format!("t-{n}"), "title": format!("Ticket {n} printer"), "reporter": "ann",
               "priority": priority}),
    )
}

pub fn comment(engine: &Engine, n: u64, text: &str) -> u64 {
    run(
        engine,
        "AddComment",
        json!({"ticketId": format!("t-{n}"), "author": "bob", "text": text}),
    )
}

/// A mixed history: opens, comments, assignments, closes and reopens.
pub fn populate(engine: &Engine, tickets: u64) -> u64 {
    let mut last = 0;
    for n in 0..tickets {
        last = open_ticket(engine, n);
    }
    for n in 0..tickets {
        last = comment(engine, n, &format!("first look at {n}"));
        if n % 3 == 0 {
            last = run(
                engine,
                "AssignTicket",
                json!({"ticketId": format!("t-{n}"), "assignee": "cy"}),
            );
        }
        if n % 4 == 0 {
            last = run(
                engine,
                "CloseTicket",
                json!({"ticketId": format!("t-{n}"), "resolution": "fixed"}),
            );
        }
        if n % 8 == 0 {
            last = run(
                engine,
                "ReopenTicket",
                json!({"ticketId": format!("t-{n}"), "reason": "again"}),
            );
        }
    }
    last
}

/// The read model a fresh projection builds from the engine's log up to `position`.
pub fn fresh(engine: &Engine, projection: TicketsProjection, position: u64) -> TicketsView {
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

/// Counts comments; fails on comments saying "boom", panics on "panic" unless tolerant;
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
        &["CommentAdded"]
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
