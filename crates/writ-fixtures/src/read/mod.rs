//! The counters read model and its named queries, for `writ-query`.
//!
//! [`CountersProjection`] folds the counters events into a [`CountersView`]: every counter
//! with its value and (from projection version 2 on) its status history, indexed by
//! status and by owner. [`catalog`] declares the queries; [`read_model`] puts them
//! together for [`ReadModels::start`](writ_query::ReadModels::start).
//!
//! # Queries
//!
//! Arguments come from the query string (`GET /query/v1/getCounter?id=c-1`) or, in query
//! code, as positional arguments or one object (`listCounters({status: "open"})`). An
//! empty `status`, `owner` or `cursor` is the same as none. Times are RFC 3339 in UTC with
//! milliseconds; positions are global log positions.
//!
//! ## Version 2 (the newest; needs projection version 2)
//!
//! - `getCounter(id)`: `{"id", "title", "owner", "status", "value", "additions",
//!   "createdAt", "createdPosition", "updatedAt", "updatedPosition", "history"}`, or `404`
//!   (`not_found`). `history` lists the creation, then every close (with its `reason`,
//!   if any) and reopen, oldest first: `{"status", "at", "position", "reason"?}`.
//! - `listCounters({status, owner, limit, cursor})`: one page of the counters matching
//!   every given criterion, in creation order, as `{"items": [...], "total": n, "cursor":
//!   "..." | null}`; items are counters without `history`. `status`: `open` or `closed`
//!   (other values are `400`); `owner`: exact match; `limit`: 0 to 1000, default 50.
//! - `counterStats()`: `{"open": n, "closed": m, "total": t, "owners": o}`.
//!
//! ## Version 1 (transformers of version 2)
//!
//! - `getCounter(id)`: version 2's counter without `history`.
//! - `listCounters({status, owner, limit})`: version 2's first page as a bare array.
//! - `counterStats()`: `{"open": n, "closed": m, "total": t}`.
//!
//! Version 1 reads projection version 1 or 2.
//!
//! ```
//! use serde_json::json;
//! use writ_fixtures::read::{CountersProjection, catalog};
//! use writ_query::{RecordedEvent, Replay};
//!
//! let created = RecordedEvent {
//!     position: 1,
//!     stream: "counter-c-1".into(),
//!     version: 1,
//!     event_type: "CounterCreated".into(),
//!     data: br#"{"counterId":"c-1","title":"Visitors","owner":"ann","start":3}"#.to_vec(),
//!     recorded_at_ms: 1_798_137_245_123,
//!     ..RecordedEvent::default()
//! };
//! let mut replay = Replay::new(CountersProjection::current());
//! replay.apply(&[created]);
//! let snapshot = replay.snapshot();
//!
//! let catalog = catalog();
//! let args = json!({"id": "c-1"}).as_object().unwrap().clone();
//! let v2 = catalog.call(2, "getCounter", &snapshot, args.clone()).unwrap();
//! assert_eq!((v2["value"].as_u64(), &v2["history"][0]["status"]), (Some(3), &json!("open")));
//! let v1 = catalog.call(1, "getCounter", &snapshot, args).unwrap();
//! assert_eq!(v1["createdAt"], "2026-12-24T18:34:05.123Z");
//! assert!(v1.get("history").is_none());
//! assert_eq!(
//!     catalog.call(1, "counterStats", &snapshot, Default::default()).unwrap(),
//!     json!({"open": 1, "closed": 0, "total": 1})
//! );
//! ```

use writ_query::ReadModelSpec;

mod projection;
mod queries;
mod view;

pub use projection::CountersProjection;
pub use queries::{COUNTER_STATS, GET_COUNTER, LIST_COUNTERS, catalog};
pub use view::{Counter, CounterFilter, CountersView, Stamp, Status, StatusChange};

/// The counters read model for [`ReadModels::start`](writ_query::ReadModels::start): the
/// newest projection with the queries of every API version.
pub fn read_model() -> ReadModelSpec {
    read_model_with(CountersProjection::current())
}

/// The counters read model starting at `projection` (any version), with the queries of
/// every API version; a rebuild may move it to any other version.
pub fn read_model_with(projection: CountersProjection) -> ReadModelSpec {
    ReadModelSpec::new(projection, catalog()).with_versions(
        1..=CountersProjection::CURRENT_VERSION,
        CountersProjection::with_version,
    )
}
