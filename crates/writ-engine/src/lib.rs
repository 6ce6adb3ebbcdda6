//! Writ's engine: command intake, the single writer, the journal and subscriptions, for
//! the domains of a [`Registry`] on one data directory.
//!
//! A command's way through [`Engine`]:
//! 1. [`Engine::submit`] validates it against its domain's catalog, checks the dedupe index
//!    (a duplicate is answered without logging; the same id with other content is a
//!    conflict) and queues it; a full queue is refused at once.
//! 2. The single writer decides it, in order, against cached stream states (one or several
//!    streams of its domain), lets processes react to its events (the commands they issue
//!    are decided right after it, the timers they set are kept), and encodes one journal
//!    record holding the command and its outcome.
//! 3. The syncer appends the records to the **journal** and syncs once per batch (group
//!    commit); only then does it index, publish, and resolve [`Pending::accepted`] and
//!    [`Pending::outcome`]: nothing is acknowledged that a crash could lose, and a
//!    command's acknowledgement and its outcome cost one sync.
//!
//! A command is durable only together with its outcome, so after a crash nothing runs
//! again: [`Engine::open`] rebuilds the indexes, the pending timers and the dedupe window
//! from the newest engine [`checkpoint`] and the journal after it, and completes a unit a
//! crash cut short (commands processes issued in reaction to durable events), before any
//! new command.
//!
//! [`check`] holds a journal's records to the engine's invariants without opening an
//! engine, for tools that check a data directory or a copy of one.
//!
//! ```
//! use std::sync::Arc;
//! use uuid::Uuid;
//! use writ_domain::model::domain;
//! use writ_engine::{CommandState, Engine, EngineOptions, Registry, Submitted};
//! use writ_log::storage::SimStorage;
//! use writ_fixtures::Counters;
//!
//! let registry = Registry::builder().domain(domain::<Counters>()).build().unwrap();
//! let (engine, _report) = Engine::open(Arc::new(SimStorage::new()), registry, EngineOptions::default()).unwrap();
//! let id = Uuid::new_v4();
//! let payload = br#"{"counterId":"c-1","title":"Visitors","owner":"ann"}"#;
//! let Submitted::New(mut pending) = engine.submit(id, "CreateCounter", Some(1), payload).unwrap() else {
//!     unreachable!("a fresh id")
//! };
//! pending.blocking_accepted().unwrap(); // durable in the journal, with its outcome
//! let status = pending.blocking_outcome().unwrap();
//! assert_eq!(status.state, CommandState::Succeeded);
//! assert_eq!(status.events[0].stream, "counter-c-1");
//! assert_eq!(engine.read_stream("counter-c-1", 1, 10).unwrap().len(), 1);
//! ```

pub mod archive;
pub mod check;
pub mod checkpoint;
mod clock;
pub mod current;
mod dedupe;
pub mod dedupe_run;
mod engine;
mod error;
mod metrics;
mod options;
pub mod priority;
pub mod record;
mod recovery;
mod registry;
pub mod replay;
mod shared;
mod store;
mod subscription;
mod syncer;
mod timers;
mod types;
mod writer;

pub use clock::{Clock, ManualClock, SystemClock};
pub use dedupe::runs::DEDUPE_DIR;
pub use engine::{
    Engine, EngineStats, LOCK_FILE, Pending, SWITCH_TAIL_RECORDS, Submission, Submitted, WaitError,
    WaitFor,
};
pub use error::{OpenError, Overload, ReadError, SubmitError, SubscriptionError, Unavailable};
pub use metrics::{JOURNAL_BATCH_RECORDS, JOURNAL_SYNC_SECONDS, METRICS};
pub use options::EngineOptions;
pub use recovery::{JOURNAL_DIR, RecoveryReport};
pub use registry::{Registry, RegistryBuilder, RegistryError};
pub use subscription::Subscription;
pub use types::{CommandState, CommandStatus, EventRef, Origin, RecordedEvent};
pub use writ_domain::model::STREAM_NAME_BYTES_MAX;
