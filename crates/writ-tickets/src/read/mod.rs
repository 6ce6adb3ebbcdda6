//! The tickets read model and its named queries, for `writ-query`.
//!
//! [`TicketsProjection`] folds the five ticket events into a [`TicketsView`]: every ticket
//! with its comments and (from projection version 2) its status history, indexes by
//! status, assignee and priority (sets of ticket numbers in creation order), and a text index from
//! lowercased word to the tickets whose title or comments hold it ([`tokens`] documents the
//! tokenizer). Counts by status and priority are the indexes' sizes, kept as events arrive.
//! [`catalog`] declares the queries; [`read_model`] puts them together for
//! [`ReadModels::start`](writ_query::ReadModels::start).
//!
//! # Queries
//!
//! Arguments come from the query string (`GET /query/v1/getTicket?id=t-1`) or, in query
//! code, as positional arguments or one object (`searchTickets({status: "open"})`). An
//! empty `status`, `assignee`, `priority`, `text` or `cursor` is the same as none. Times are
//! RFC 3339 in UTC with milliseconds, like `recordedAt` in the event metadata; positions
//! are global log positions.
//!
//! ## Version 2 (the newest; needs projection version 2)
//!
//! `getTicket(id)`: the ticket, or `404` (`not_found`) when there is none.
//!
//! ```json
//! {"id": "t-1", "title": "Printer on fire", "description": null, "reporter": "ann",
//!  "priority": "high", "status": "closed", "assignee": "bob", "commentCount": 1,
//!  "createdAt": "2026-12-24T18:34:05.123Z", "createdPosition": 1,
//!  "updatedAt": "2026-12-24T18:40:00.000Z", "updatedPosition": 4,
//!  "comments": [{"id": "<uuid>", "author": "bob", "text": "On it", "position": 3,
//!                "recordedAt": "2026-12-24T18:35:00.000Z"}],
//!  "history": [{"status": "open", "at": "2026-12-24T18:34:05.123Z", "position": 1},
//!              {"status": "closed", "at": "2026-12-24T18:40:00.000Z", "position": 4,
//!               "resolution": "fixed"}]}
//! ```
//!
//! History entries: the opening, then every close (with its `resolution`) and reopen (with
//! its `reason`), oldest first.
//!
//! `searchTickets({status, assignee, priority, text, limit, cursor})`: one page of the
//! tickets matching every given criterion, in creation order (oldest first), as
//! `{"items": [...], "total": n, "cursor": "..." | null}`. Items are ticket summaries: the
//! ticket without `comments` and `history`. `total` counts all matches; `cursor` is `null`
//! on the last page, otherwise pass it back as `cursor` for the next page. The cursor is
//! opaque and stays valid across snapshots; since tickets are never removed and new ones
//! come last, paging never skips or repeats a ticket while others are opened. (Creation
//! order rather than id order: ids are chosen by clients, often random UUIDs, so their
//! order means nothing to people, and a ticket opened mid-paging with a smaller id would be
//! missed.) `status`: `open` or `closed`; `priority`: `low`,
//! `normal`, `high` or `urgent` (other values are `400`); `assignee`: exact match; `text`:
//! tickets whose title and comments together contain every token of the text (a text
//! without tokens filters nothing); `limit`: 0 to 1000, default 50 (more is `400`; 0
//! answers only `total`).
//!
//! `ticketStats()`: `{"open": n, "closed": m, "total": t, "byPriority": {"low": a,
//! "normal": b, "high": c, "urgent": d}}`.
//!
//! ## Version 1 (the contract's; transformers of version 2)
//!
//! - `getTicket(id)`: version 2's ticket without `history`.
//! - `searchTickets({status, assignee, priority, text, limit})`: version 2's first page,
//!   as a bare array of summaries (no `total`, no `cursor`).
//! - `ticketStats()`: `{"open": n, "closed": m, "total": t}`.
//!
//! Version 1 reads projection version 1 or 2: it drops the history either way.
//!
//! # Replay speed
//!
//! `cargo bench -p writ-tickets --bench replay` measures how long a start takes to build
//! this read model: 100k `TicketOpened` then 900k `CommentAdded` events (round-robin over
//! the tickets), from memory and from an engine's log. On the project's 2-core machine
//! (medians, with other work keeping the load average near 4) the projection applies them
//! from memory at 1.0 to 1.3 million events/s on one thread, and a runtime replays them
//! from an engine's log in 1.14 s (0.88 million events/s; the median of 21 runs), its
//! applying thread taking 0.74 s of CPU and its reader thread, which reads and decodes the
//! events, 0.36 s. The first replay of a process costs about twice as much: it touches the
//! read model's ~290 MiB of fresh memory. A snapshot per 4,096-event batch instead of one
//! per 2 s while catching up costs about 40% of the replay speed (2.2 s of CPU instead of
//! 1.4 s), since the round-robin workload touches every ticket between two snapshots.
//!
//! ```
//! use serde_json::json;
//! use writ_query::{Replay, RecordedEvent};
//! use writ_tickets::read::{TicketsProjection, catalog};
//!
//! let opened = RecordedEvent {
//!     position: 1,
//!     stream: "ticket-t-1".into(),
//!     version: 1,
//!     event_type: "TicketOpened".into(),
//!     data: br#"{"ticketId":"t-1","title":"Printer on fire","reporter":"ann","priority":"high"}"#.to_vec(),
//!     command_id: Default::default(),
//!     correlation_id: Default::default(),
//!     recorded_at_ms: 1_798_137_245_123,
//!     schema_version: 1,
//!     recorded_schema_version: 1,
//! };
//! let mut replay = Replay::new(TicketsProjection::current());
//! replay.apply(&[opened]);
//! let snapshot = replay.snapshot();
//!
//! let catalog = catalog();
//! let args = json!({"id": "t-1"}).as_object().unwrap().clone();
//! let v2 = catalog.call(2, "getTicket", &snapshot, args.clone()).unwrap();
//! assert_eq!(v2["history"][0]["status"], "open");
//! let v1 = catalog.call(1, "getTicket", &snapshot, args).unwrap();
//! assert_eq!(v1["createdAt"], "2026-12-24T18:34:05.123Z");
//! assert!(v1.get("history").is_none());
//! assert_eq!(
//!     catalog.call(1, "ticketStats", &snapshot, Default::default()).unwrap(),
//!     json!({"open": 1, "closed": 0, "total": 1})
//! );
//! ```

use writ_query::ReadModelSpec;

mod projection;
mod queries;
mod view;
pub mod workload;

#[cfg(test)]
mod tests;

pub use projection::{TicketChange, TicketsProjection};
pub use queries::{
    GET_TICKET, SEARCH_LIMIT_DEFAULT, SEARCH_LIMIT_MAX, SEARCH_TICKETS, TICKET_STATS, catalog,
};
pub use view::{
    Comment, PRIORITIES, SearchPage, Stamp, Status, StatusChange, Ticket, TicketFilter,
    TicketsView, parse_priority, priority_name,
};
// The collections and the tokenizer the view is built of, as its fields name them.
pub use writ_query::collections::{List, ListIter};
pub use writ_query::text::{TOKEN_BYTES_MAX, tokens};

/// The tickets read model for [`ReadModels::start`](writ_query::ReadModels::start): the
/// newest projection with the queries of every API version.
pub fn read_model() -> ReadModelSpec {
    read_model_with(TicketsProjection::current())
}

/// The tickets read model starting at `projection` (any version, see
/// [`TicketsProjection::with_version`]), with the queries of every API version. A rebuild
/// may move it to any other projection version: starting at version 1 and rebuilding to 2
/// shows a structure change end to end, with query API version 1 answering throughout and
/// version 2 from the switch on.
pub fn read_model_with(projection: TicketsProjection) -> ReadModelSpec {
    ReadModelSpec::new(projection, catalog()).with_versions(
        1..=TicketsProjection::CURRENT_VERSION,
        TicketsProjection::with_version,
    )
}
