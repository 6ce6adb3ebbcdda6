//! The orders read model and its named queries, for `writ-query`.
//!
//! [`OrdersProjection`] folds the twelve orders events into an [`OrdersView`]: every order
//! with its items and the events of its stream, indexes of orders by status and by
//! customer, the set of current orders (neither shipped nor cancelled), and every product's
//! stock, indexed by sku. [`catalog`] declares the queries of query API version 1;
//! [`read_model`] bundles both for [`writ_query::ReadModels::start`].
//!
//! # Queries (version 1)
//!
//! Arguments come from the query string (`GET /query/v1/getOrder?id=o-1`) or, in query
//! code, as positional arguments or one object (`getOrder("o-1")`,
//! `currentOrders({status: "paid"})`). Anything else is `400` (`bad_argument`, naming the
//! argument): an unknown argument, a missing `id`, `customerId` or `sku`, a `status`,
//! `limit`, `belowAvailable` or `cursor` that is not one. Money is integer cents. Times
//! are RFC 3339 in UTC with milliseconds, like `recordedAt` in the event metadata: an
//! order's `createdAt` and `updatedAt` are when its stream's first and last events were
//! recorded, `paymentDueAt` is the `paymentDueAtMs` of its `OrderSubmitted` (and
//! `OrderReserved`). Positions are global log positions.
//!
//! `getOrder(id)`: the order, or `404` (`not_found`) when there is none.
//!
//! ```json
//! {"id": "o-1", "customerId": "c-1", "customerName": "Ada", "status": "awaiting_payment",
//!  "items": [{"sku": "pen", "quantity": 2, "unitPriceCents": 150}],
//!  "totalCents": 300, "cancelReason": null, "paymentDueAt": "2026-12-24T18:49:03.000Z",
//!  "createdAt": "2026-12-24T18:34:01.000Z", "updatedAt": "2026-12-24T18:34:04.000Z"}
//! ```
//!
//! `cancelReason` is `null` unless the order is cancelled (then the client's reason,
//! `out_of_stock` or `payment_timeout`); `paymentDueAt` is `null` until it is submitted.
//! Items are the order's lines in the order their skus were first added.
//!
//! `currentOrders({status, customerId, limit, cursor})`: one page of the orders neither
//! shipped nor cancelled, newest (most recently created) first, as
//! `{"items": [order, ...], "cursor": "..." | null}`, items shaped as `getOrder` answers.
//! `status` keeps one status: `draft`, `submitted`, `awaiting_payment` or `paid` (`shipped`
//! and `cancelled` are never current: an empty page; any other value is `400`); `customerId` keeps
//! one customer's orders; `limit`: 0 to 1000, default 50. `cursor` is `null` on the last
//! page; otherwise pass it back for the next. It is opaque and stays valid across
//! snapshots: orders created after the first page are newer than it and never show up on
//! later ones, and paging on neither repeats nor skips an order that stays current. An
//! empty `status`, `customerId` or `cursor` is the same as none.
//!
//! `orderHistory(id)`: the events of the order's stream (`order-{id}`) in log order, or
//! `404`:
//!
//! ```json
//! {"id": "o-1", "events": [
//!   {"type": "OrderCreated", "position": 2, "recordedAt": "2026-12-24T18:34:01.000Z",
//!    "data": {"orderId": "o-1", "customerId": "c-1", "customerName": "Ada"}}, ...]}
//! ```
//!
//! `data` is the event's body as recorded (the shapes are on
//! [`OrderEvent`](crate::OrderEvent)). The product events a command records beside the
//! order's (`StockReserved`, ...) are on the products' streams, not here.
//!
//! `customerOrders(customerId)`: the customer's orders, oldest first, and what they spent:
//!
//! ```json
//! {"customerId": "c-1", "orderCount": 2, "totalSpentCents": 300,
//!  "orders": [{"id": "o-1", "status": "shipped", "totalCents": 300},
//!             {"id": "o-2", "status": "cancelled", "totalCents": 450}]}
//! ```
//!
//! `totalSpentCents` adds up the totals of the orders that are `paid` or `shipped` now (an
//! order paid and then cancelled no longer counts). A customer without orders has
//! `orderCount` 0, `totalSpentCents` 0 and no orders; it is not a `404`.
//!
//! `getStock(sku)`: the product's stock, or `404` if it was never stocked
//! (`available = onHand − reserved`):
//!
//! ```json
//! {"sku": "pen", "name": "Pen", "onHand": 5, "reserved": 2, "available": 3}
//! ```
//!
//! `listStock({belowAvailable, limit, cursor})`: one page of the products by sku
//! (ascending, by Unicode code points), as `{"items": [stock, ...], "cursor": "..." | null}`
//! with items shaped as `getStock` answers. `belowAvailable: n` keeps the products with
//! fewer than `n` units available; `limit` and `cursor` as for `currentOrders` (products
//! stocked meanwhile show up on a later page when their sku sorts after the cursor's).
//!
//! ```
//! use serde_json::json;
//! use writ_query::{RecordedEvent, Replay};
//! use writ_orders::read::{OrdersProjection, catalog};
//!
//! let event = |position: u64, stream: &str, event_type: &str, data: &str| RecordedEvent {
//!     position,
//!     stream: stream.into(),
//!     version: 0, // not read by the projection
//!     event_type: event_type.into(),
//!     data: data.as_bytes().to_vec(),
//!     command_id: Default::default(),
//!     correlation_id: Default::default(),
//!     recorded_at_ms: 1_798_137_240_000 + position * 1000,
//!     schema_version: 1,
//!     recorded_schema_version: 1,
//! };
//! let mut replay = Replay::new(OrdersProjection);
//! replay.apply(&[
//!     event(1, "product-pen", "StockAdded", r#"{"sku":"pen","name":"Pen","quantity":5}"#),
//!     event(2, "order-o-1", "OrderCreated", r#"{"orderId":"o-1","customerId":"c-1","customerName":"Ada"}"#),
//!     event(3, "order-o-1", "ItemAdded", r#"{"orderId":"o-1","sku":"pen","quantity":2,"unitPriceCents":150}"#),
//! ]);
//! let snapshot = replay.snapshot();
//!
//! let catalog = catalog();
//! let args = |value: serde_json::Value| value.as_object().unwrap().clone();
//! let order = catalog.call(1, "getOrder", &snapshot, args(json!({"id": "o-1"}))).unwrap();
//! assert_eq!(order["status"], "draft");
//! assert_eq!(order["totalCents"], 300);
//! assert_eq!(order["paymentDueAt"], json!(null));
//! assert_eq!(order["updatedAt"], "2026-12-24T18:34:03.000Z");
//! assert_eq!(
//!     catalog.call(1, "getStock", &snapshot, args(json!({"sku": "pen"}))).unwrap(),
//!     json!({"sku": "pen", "name": "Pen", "onHand": 5, "reserved": 0, "available": 5})
//! );
//! let current = catalog.call(1, "currentOrders", &snapshot, args(json!({"customerId": "c-1"}))).unwrap();
//! assert_eq!((current["items"][0]["id"].clone(), current["cursor"].clone()), (json!("o-1"), json!(null)));
//! let missing = catalog.call(1, "getOrder", &snapshot, args(json!({"id": "o-2"}))).unwrap_err();
//! assert_eq!(missing.code(), "not_found");
//! ```

use writ_query::ReadModelSpec;

mod projection;
mod queries;
mod view;

#[cfg(test)]
mod tests;

pub use projection::{OrderChange, OrdersProjection};
pub use queries::{
    CURRENT_ORDERS, CUSTOMER_ORDERS, GET_ORDER, GET_STOCK, LIST_STOCK, ORDER_HISTORY,
    PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX, catalog,
};
pub use view::{CurrentFilter, HistoryEvent, Item, Order, OrdersView, Product, Stamp};
// The collection the view's orders keep their history in, as their fields name it.
pub use writ_query::collections::{List, ListIter};

/// The orders read model for [`ReadModels::start`](writ_query::ReadModels::start): the
/// newest projection with the queries of query API version 1.
pub fn read_model() -> ReadModelSpec {
    ReadModelSpec::new(OrdersProjection, catalog())
}
