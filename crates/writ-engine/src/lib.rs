//! Writ's engine: command intake, the single writer, the event store and subscriptions,
//! for one [`Domain`](writ_domain::Domain) on one data directory.
//!
//! A command's way through [`Engine`]:
//! 1. [`Engine::submit`] validates it against the domain's catalog, checks the dedupe index
//!    (a duplicate is answered without logging; the same id with other content is a
//!    conflict) and queues it; a full queue is refused at once.
//! 2. The intake thread appends it to the **command log** and syncs (group commit); only
//!    then does [`Pending::accepted`] resolve: nothing is acknowledged that a crash could
//!    lose.
//! 3. The single writer executes commands in log order against cached stream states and
//!    encodes one commit record per command (its events, or its rejection or failure).
//! 4. The committer appends the commits to the **event log**, syncs, indexes, publishes,
//!    and resolves [`Pending::outcome`].
//!
//! After a crash, [`Engine::open`] re-executes the logged commands whose commit was not
//! durable; handlers are deterministic, so they produce the same outcome, and nothing runs
//! twice because a command's commit is one atomic record.
//!
//! ```
//! use std::sync::Arc;
//! use uuid::Uuid;
//! use writ_engine::{CommandState, Engine, EngineOptions, Submitted};
//! use writ_log::storage::SimStorage;
//! use writ_tickets::Tickets;
//!
//! let (engine, _report) = Engine::<Tickets>::open(Arc::new(SimStorage::new()), EngineOptions::default()).unwrap();
//! let id = Uuid::new_v4();
//! let payload = br#"{"ticketId":"t-1","title":"Printer on fire","reporter":"ann"}"#;
//! let Submitted::New(mut pending) = engine.submit(id, "OpenTicket", Some(1), payload).unwrap() else {
//!     unreachable!("a fresh id")
//! };
//! pending.blocking_accepted().unwrap(); // durable in the command log
//! let status = pending.blocking_outcome().unwrap();
//! assert_eq!(status.state, CommandState::Succeeded);
//! assert_eq!(status.events[0].stream, "ticket-t-1");
//! assert_eq!(engine.read_stream("ticket-t-1", 1, 10).unwrap().len(), 1);
//! ```

mod dedupe;
mod engine;
mod error;
mod metrics;
mod options;
mod pipeline;
pub mod record;
mod store;
mod subscription;
mod types;

pub use engine::{Engine, EngineStats, Pending, RecoveryReport, Submitted, WaitError, WaitFor};
pub use error::{OpenError, Overload, ReadError, SubmitError, SubscriptionError, Unavailable};
pub use metrics::METRICS;
pub use options::EngineOptions;
pub use pipeline::STREAM_NAME_BYTES_MAX;
pub use subscription::Subscription;
pub use types::{CommandState, CommandStatus, EventRef, RecordedEvent};
