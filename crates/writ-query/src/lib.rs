//! Writ's query side: read models fed from the global log, immutable snapshots, named
//! queries by query API version, and the library that query code calls.
//!
//! - A [`Projection`] folds events into a state that is cheap to clone (persistent maps).
//!   [`Replay`] feeds one directly. A read model's *root* ([`Root`], [`RootId`]) is its
//!   projection's name and version: its structure.
//! - A [`QueryCatalog`] holds a read model's named queries of each query API version
//!   (`v1`, `v2`, ...). The newest version reads the state; older versions are
//!   transformers of its answers. [`QueryCatalog`] documents how a domain adds a version.
//! - A [`ReadModelSpec`] is one read model: a projection, its catalog, and the projection
//!   versions a rebuild may build. Its name is the projection's.
//! - [`ReadModels`] runs a server's read models, of any number of domains, on one
//!   [`EventSource`] (the engine, or anything that offers an [`EventFeed`] of the global
//!   log). Every published [`Snapshots`] holds all of them at one position: readers never
//!   see half a batch, nor two read models at two positions. Named queries are routed by
//!   name to the read model that has them ([`ReadModels::call`]); query code gets every
//!   read model's functions of its version over one [`Snapshots`]
//!   ([`ReadModels::library`]); [`ReadModels::wait_for`] gives read-your-writes;
//!   [`ReadModels::rebuild`] builds one read model again (perhaps a new projection
//!   version) beside the others and has it join them at a batch boundary; an event a
//!   projection panics on is parked for that read model, which goes on with the next (see
//!   [`Replay`]). The [`runtime`] module explains the threads, publishing, errors, rebuilds
//!   and joins, and how a start loads the read models' snapshots ([`snapshot`]) and replays
//!   only what follows them.
//! - [`ProjectionRuntime`] is the same runtime for one projection, typed: for tools, tests
//!   and benchmarks that need the state itself.
//! - A [`Library`] is a query API version's functions bound to one snapshot: what the
//!   sandbox (`writ-sandbox`, whose vocabulary this is) gives client code. Queries fail
//!   with a [`QueryError`]; code sees it as a [`LibraryError`] with
//!   [`QueryError::status`].
//! - A read model's state is built of [`collections`] (a [`Table`](collections::Table) of
//!   rows with its indexes), its queries page with [`paging`], and its text indexes split
//!   text with [`text`].
//!
//! Measured on the project's 2-core machine (the README's replay benchmark, medians, with
//! other work keeping the load average near 4): a read model of 100k rows with text
//! indexes applies a 1,000,000-event log (100k creations, 900k updates) from memory at 1.0
//! to 1.3 million events/s on one thread, and a runtime replays it from an engine's log in
//! 1.14 s (0.88 million events/s), its applying thread taking 0.74 s of CPU and its reader
//! thread, which reads and decodes the events, 0.36 s. The first replay of a process
//! costs more: it is the one that touches the read model's ~290 MiB of fresh memory. The
//! [`runtime`] module explains how snapshots spare a start most of that.
//!
//! Two read models, the counters one (`writ-fixtures`, the example domain of these docs)
//! and a count of additions, on one engine:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use serde_json::{Value, json};
//! use uuid::Uuid;
//! use writ_domain::model::domain;
//! use writ_engine::{Engine, EngineOptions, Registry, Submitted};
//! use writ_log::storage::SimStorage;
//! use writ_query::{
//!     ApplyError, Budget, Projection, QueryCatalog, ReadModelSpec, ReadModels, RecordedEvent,
//!     RuntimeOptions,
//! };
//!
//! /// Counts additions.
//! #[derive(Clone)]
//! struct Additions;
//!
//! impl Projection for Additions {
//!     type State = u64;
//!     type Decoded = ();
//!     fn name(&self) -> &'static str { "additions" }
//!     fn version(&self) -> u32 { 1 }
//!     fn event_types(&self) -> &[&'static str] { &["Added"] }
//!     fn initial_state(&self) -> u64 { 0 }
//!     fn decode(&self, _: &RecordedEvent) -> Result<(), ApplyError> { Ok(()) }
//!     fn apply(&self, count: &mut u64, _: &RecordedEvent, _: ()) -> Result<(), ApplyError> {
//!         *count += 1;
//!         Ok(())
//!     }
//! }
//!
//! let registry = Registry::builder().domain(domain::<writ_fixtures::Counters>()).build().unwrap();
//! let storage = Arc::new(SimStorage::new());
//! let engine = Arc::new(Engine::open(storage, registry, EngineOptions::default()).unwrap().0);
//! let run = |command: &str, payload: Value| {
//!     let payload = serde_json::to_vec(&payload).unwrap();
//!     let Submitted::New(pending) = engine.submit(Uuid::new_v4(), command, None, &payload).unwrap()
//!     else { unreachable!("a fresh id") };
//!     pending.blocking_outcome().unwrap().position.unwrap()
//! };
//! run("CreateCounter", json!({"counterId": "c-1", "title": "Visitors", "owner": "ann"}));
//! let written = run("Add", json!({"counterId": "c-1", "amount": 2}));
//!
//! let mut additions = QueryCatalog::new();
//! additions.version(1).query("additionCount", &[], |count: &u64, _| Ok(json!(count)));
//! let models = ReadModels::start(
//!     engine.clone(),
//!     [writ_fixtures::read::read_model(), ReadModelSpec::new(Additions, additions)],
//!     RuntimeOptions::default(),
//! )
//! .unwrap();
//!
//! // Read your writes: wait for the command's position.
//! models.blocking_wait_for(written, Duration::from_secs(10)).unwrap();
//! // A named query goes to the read model that has it.
//! assert_eq!(models.call(1, "additionCount", Default::default()).unwrap(), (json!(1), written));
//! // Query code sees both read models' functions, at one position.
//! let library = models.library(1).unwrap();
//! assert_eq!(library.position(), written);
//! let args = json!({"id": "c-1"}).as_object().unwrap().clone();
//! let unlimited = Budget::unlimited();
//! let counter = library.call("getCounter", args, &unlimited).unwrap();
//! assert_eq!(counter["value"], 2);
//! let additions = library.call("additionCount", Default::default(), &unlimited).unwrap();
//! assert_eq!(counter["additions"], additions);
//! ```

mod args;
mod catalog;
pub mod collections;
pub mod library;
pub mod paging;
mod projection;
pub mod rfc3339;
pub mod runtime;
pub mod snapshot;
mod source;
pub mod switch;
pub mod text;

pub use args::Args;
pub use catalog::{QueryCatalog, QueryFn, QueryInfo, QuerySource, VersionBuilder};
pub use library::{
    Budget, BudgetExceeded, FunctionSpec, Library, LibraryError, QueryError, RootId,
};
pub use projection::{
    ApplyError, PARKED_EVENTS_KEPT, ParkStage, ParkedEvent, Projection, ProjectionFailure, Replay,
    ReplayStats, Root, Snapshot,
};
pub use runtime::{
    METRICS, ModelQuery, ModelStatus, ProjectionRuntime, ReadModelSpec, ReadModels, Rebuild,
    RebuildError, RebuildStatus, RuntimeOptions, SnapshotOptions, SnapshotStatus, Snapshots,
    StartError, WaitError,
};
pub use source::{BoxFuture, EventFeed, EventSource, FeedError, JournalMark};
/// The event type projections apply (the domain kit's), re-exported so domains need not
/// name it elsewhere.
pub use writ_domain::RecordedEvent;
