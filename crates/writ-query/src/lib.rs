//! Writ's query side: projections fed from the engine's global log, immutable snapshots,
//! named queries by query API version, and the library that query code calls.
//!
//! - A [`Projection`] folds events into a state that is cheap to clone (persistent maps).
//!   [`Replay`] feeds one directly; a [`ProjectionRuntime`] keeps one up to date with an
//!   [`EventSource`] (the engine) on its own thread and publishes an `Arc<`[`Snapshot`]`>`
//!   after every batch. Readers never block it and never see half a batch;
//!   [`ProjectionRuntime::wait_for`] gives read-your-writes; [`ProjectionRuntime::rebuild_with`]
//!   builds another instance (possibly a new version) beside the live one and switches
//!   readers to it once it has caught up. The [`runtime`] module explains the choices:
//!   threads, skipping bad events, and rebuilding at every start instead of checkpoints.
//! - A read model's *root* ([`Root`], [`RootId`]) is its projection's name and version: its
//!   structure.
//! - A [`QueryCatalog`] holds the named queries of each query API version (`v1`, `v2`, ...).
//!   The newest version reads the state; older versions are transformers of its answers.
//!   [`QueryCatalog`] documents how a domain adds a version.
//! - A [`Library`] is one version's queries bound to one snapshot: what the sandbox gives
//!   client code ([`QueryCatalog::bind`]). Queries fail with a [`QueryError`].
//! - [`ReadModel`] puts a runtime and a catalog together; the server holds it as a
//!   `dyn` [`QueryService`].
//!
//! Measured on the project's 2-core machine (`cargo bench -p writ-query --bench replay`,
//! medians of 5 runs, load average near 4): the tickets projection applies 1,000,000
//! events (100k tickets, 900k comments) from memory with 0.70 s of CPU on one thread
//! (1.4 million events/s), and a `ProjectionRuntime` replays them from an engine's log
//! in 0.85 s (1.2 million events/s), its applying thread taking 0.54 s of CPU and its
//! reader thread, which reads and decodes the events, 0.25 s. The first replay of a
//! process costs more (1.7 s, 0.6 million events/s, in the same run): it is the one that
//! touches the read model's ~290 MiB of fresh memory. The [`runtime`] module explains why
//! every start rebuilds anyway.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use serde_json::json;
//! use uuid::Uuid;
//! use writ_domain::model::domain;
//! use writ_engine::{Engine, EngineOptions, RecordedEvent, Registry, Submitted};
//! use writ_log::storage::SimStorage;
//! use writ_query::{ApplyError, Projection, ProjectionRuntime, QueryCatalog, RuntimeOptions};
//!
//! /// Counts opened tickets.
//! #[derive(Clone)]
//! struct Opened;
//!
//! impl Projection for Opened {
//!     type State = u64;
//!     type Decoded = ();
//!     fn name(&self) -> &'static str { "opened" }
//!     fn version(&self) -> u32 { 1 }
//!     fn event_types(&self) -> &[&'static str] { &["TicketOpened"] }
//!     fn initial_state(&self) -> u64 { 0 }
//!     fn decode(&self, _: &RecordedEvent) -> Result<(), ApplyError> { Ok(()) }
//!     fn apply(&self, count: &mut u64, _: &RecordedEvent, _: ()) -> Result<(), ApplyError> {
//!         *count += 1;
//!         Ok(())
//!     }
//! }
//!
//! let storage = Arc::new(SimStorage::new());
//! let registry = Registry::builder().domain(domain::<writ_tickets::Tickets>()).build().unwrap();
//! let (engine, _) = Engine::open(storage, registry, EngineOptions::default()).unwrap();
//! let engine = Arc::new(engine);
//! let payload = br#"{"ticketId":"t-1","title":"Printer on fire","reporter":"ann"}"#;
//! let Submitted::New(pending) = engine.submit(Uuid::new_v4(), "OpenTicket", Some(1), payload).unwrap() else {
//!     unreachable!("a fresh id")
//! };
//! let written = pending.blocking_outcome().unwrap().position.unwrap();
//!
//! let runtime = ProjectionRuntime::start(engine.clone(), Opened, RuntimeOptions::default()).unwrap();
//! // Read your writes: the snapshot includes the command's events.
//! let snapshot = runtime.blocking_wait_for(written, Duration::from_secs(10)).unwrap();
//! assert_eq!(snapshot.state, 1);
//!
//! let mut catalog = QueryCatalog::new();
//! catalog.version(1).query("opened", &[], |count: &u64, _| Ok(json!(count)));
//! let library = Arc::new(catalog).bind(1, snapshot).unwrap();
//! assert_eq!(library.call("opened", Default::default()).unwrap(), json!(1));
//! assert_eq!(library.position(), written);
//! ```

mod args;
mod catalog;
pub mod library;
mod projection;
pub mod rfc3339;
pub mod runtime;
mod service;
mod source;

pub use args::Args;
pub use catalog::{QueryCatalog, QueryFn, QueryInfo, QuerySource, VersionBuilder};
pub use library::{FunctionSpec, Library, LibraryError, QueryError, RootId};
pub use projection::{
    ApplyError, Projection, ProjectionFailure, Replay, ReplayStats, Root, Snapshot,
};
pub use runtime::{
    ProjectionRuntime, Rebuild, RebuildError, RebuildStatus, RuntimeOptions, RuntimeStatus,
    StartError, WaitError,
};
pub use service::{BoxFuture, QueryService, ReadModel, RebuildRequestError};
pub use source::EventSource;
/// The event type projections apply, re-exported so domains need not name the engine.
pub use writ_engine::RecordedEvent;
