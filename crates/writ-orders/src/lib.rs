//! Writ's example domain of orders and inventory.
//!
//! Products are stocked (`AddStock`) on streams `product-{sku}`. An order is created
//! (`CreateOrder`) on `order-{orderId}`, filled while a draft (`AddItem`, `RemoveItem`),
//! submitted (`SubmitOrder`), paid (`RecordPayment`), shipped (`ShipOrder`) or cancelled
//! (`CancelOrder`). Money is integer cents. [`Orders`] is the domain: it documents its
//! streams, the order in which rules are checked, and its bounds. [`OrderEvent`] is the
//! set of events; their JSON shapes are in the table below.
//!
//! [`OrderFulfilment`] is the process that follows a submitted order: it issues the
//! internal command `ReserveOrder`, which reserves every line's stock and moves the order
//! to `awaiting_payment`, or cancels it with reason `out_of_stock` and reserves nothing;
//! then it sets a durable timer for the payment's due time, which issues the internal
//! `ExpireOrder`: an order still awaiting payment is cancelled with reason
//! `payment_timeout` and its reservation released. Payment or cancellation cancels the
//! timer. Register both, the domain and [`processes`], with the engine.
//!
//! The [`read`] module is the domain's read model for `writ-query`:
//! [`read::OrdersProjection`] folds the events into orders (by status, by customer, the
//! current ones newest first, each with its history) and products' stock (by sku), and
//! [`read::catalog`] declares the queries of query API version 1: `getOrder`,
//! `currentOrders`, `orderHistory`, `customerOrders`, `getStock` and `listStock`; their
//! answers are described there.
//!
//! A payload that does not match its command's schema (missing or unknown field, wrong
//! type, a fraction, a negative `unitPriceCents`, a bad `orderId` or `sku`) is a decoding
//! error, answered with `422`. `quantity` and `amountCents` decode any integer of the
//! signed 64-bit range, so that `0` or `-3` reach the rules. A command that decodes but
//! breaks a rule is rejected with one of the stable codes in [`codes`]. [`workload`]
//! builds the payloads of a benchmark.
//!
//! Events, at a glance (what each means, and the order a command records them in, is on
//! [`OrderEvent`]; `paymentDueAtMs` is milliseconds since the Unix epoch):
//!
//! | stream | event | data |
//! |---|---|---|
//! | `product-{sku}` | `StockAdded` | `{"sku", "name", "quantity"}` |
//! | | `StockReserved` | `{"sku", "orderId", "quantity"}` |
//! | | `StockReleased` | `{"sku", "orderId", "quantity"}` |
//! | | `StockShipped` | `{"sku", "orderId", "quantity"}` |
//! | `order-{orderId}` | `OrderCreated` | `{"orderId", "customerId", "customerName"}` |
//! | | `ItemAdded` | `{"orderId", "sku", "quantity", "unitPriceCents"}` |
//! | | `ItemRemoved` | `{"orderId", "sku"}` |
//! | | `OrderSubmitted` | `{"orderId", "lines": [{"sku", "quantity", "unitPriceCents"}], "totalCents", "paymentDueAtMs"}` |
//! | | `OrderReserved` | `{"orderId", "paymentDueAtMs"}` |
//! | | `OrderPaid` | `{"orderId", "amountCents"}` |
//! | | `OrderShipped` | `{"orderId"}` |
//! | | `OrderCancelled` | `{"orderId", "reason"}` |
//!
//! ```
//! use writ_domain::Domain;
//! use writ_domain::testing::{given, given_streams};
//! use writ_orders::{OrderEvent, Orders, codes};
//!
//! let catalog = Orders::commands();
//! let decode = |name: &str, payload: &str| {
//!     catalog.decode(name, None, payload.as_bytes()).unwrap().command
//! };
//!
//! // Five pens in stock, and a draft order for two, submitted.
//! let stock = given::<Orders>([])
//!     .when(decode("AddStock", r#"{"sku":"pen","name":"Pen","quantity":5}"#))
//!     .result()
//!     .unwrap();
//! let mut order = Vec::new();
//! for (name, payload) in [
//!     ("CreateOrder", r#"{"orderId":"o-1","customerId":"c-1","customerName":"Ada"}"#),
//!     ("AddItem", r#"{"orderId":"o-1","sku":"pen","quantity":2,"unitPriceCents":150}"#),
//!     ("SubmitOrder", r#"{"orderId":"o-1"}"#),
//! ] {
//!     let events = given::<Orders>(order.clone()).when(decode(name, payload)).result().unwrap();
//!     order.extend(events);
//! }
//!
//! // The process's ReserveOrder decides over the order and its product at once.
//! let reserved = given_streams::<Orders>([("order-o-1", order.clone()), ("product-pen", stock)])
//!     .when(decode("ReserveOrder", r#"{"orderId":"o-1"}"#))
//!     .result_on()
//!     .unwrap();
//! let recorded: Vec<(&str, &str)> = reserved
//!     .iter()
//!     .map(|(stream, event)| (stream.as_str(), writ_domain::EventSet::event_type(event)))
//!     .collect();
//! assert_eq!(recorded, [("order-o-1", "OrderReserved"), ("product-pen", "StockReserved")]);
//!
//! // A payment must match the total exactly.
//! order.push(reserved[0].1.clone());
//! given::<Orders>(order)
//!     .when(decode("RecordPayment", r#"{"orderId":"o-1","amountCents":299}"#))
//!     .then_rejected(codes::AMOUNT_MISMATCH);
//! ```

use std::sync::Arc;

use writ_domain::model::ProcessModel;

mod commands;
mod domain;
mod events;
mod ids;
mod process;
pub mod read;
mod state;
pub mod workload;

pub use commands::{
    AddItem, AddStock, CancelOrder, CreateOrder, ExpireOrder, OrderCommand,
    PAYMENT_DUE_SECONDS_DEFAULT, RecordPayment, RemoveItem, ReserveOrder, ShipOrder, SubmitOrder,
};
pub use domain::{Orders, order_stream, product_stream};
pub use events::{
    ItemAdded, ItemRemoved, Line, OrderCancelled, OrderCreated, OrderEvent, OrderPaid,
    OrderReserved, OrderShipped, OrderSubmitted, StockAdded, StockReleased, StockReserved,
    StockShipped,
};
pub use ids::{CustomerId, ID_BYTES_MAX, InvalidId, OrderId, Sku};
pub use process::{FulfilmentEvent, OrderFulfilment};
pub use state::{OrderState, OrderStatus, OrdersState, ProductState};

/// The most units a line of an order, or a product's stock, may hold: 2^53 − 1, the
/// largest integer JavaScript (and so query code) reads exactly.
pub const QUANTITY_MAX: u64 = (1 << 53) - 1;

/// The largest total an order may have, in cents: 2^53 − 1, as [`QUANTITY_MAX`].
pub const CENTS_MAX: u64 = (1 << 53) - 1;

/// The most lines (distinct skus) an order may have: a reservation reads and writes one
/// product stream per line, in one decision.
pub const ORDER_LINES_MAX: usize = 100;

/// The `cancelReason` of an order the process cancelled because a line could not be
/// reserved.
pub const OUT_OF_STOCK: &str = "out_of_stock";

/// The `cancelReason` of an order the process cancelled because its payment did not come
/// in time.
pub const PAYMENT_TIMEOUT: &str = "payment_timeout";

/// The processes of the orders domain, for the engine's registry beside
/// `writ_domain::model::domain::<Orders>()`: [`OrderFulfilment`].
pub fn processes() -> Vec<Arc<dyn ProcessModel>> {
    vec![writ_domain::model::process::<OrderFulfilment>()]
}

/// The stable rejection codes of the orders domain, part of its public contract.
pub mod codes {
    /// `CreateOrder` on a stream that already holds an order.
    pub const ORDER_EXISTS: &str = "order_exists";
    /// `CreateOrder` whose `customerId` or `customerName` is empty or only whitespace.
    pub const CUSTOMER_REQUIRED: &str = "customer_required";
    /// Any command but `CreateOrder` and `AddStock` on a stream without an order.
    pub const ORDER_NOT_FOUND: &str = "order_not_found";
    /// `AddItem`, `RemoveItem` or `SubmitOrder` on an order that is no longer a draft.
    pub const ORDER_NOT_DRAFT: &str = "order_not_draft";
    /// `AddStock` or `AddItem` whose `quantity` is below 1, or that would take a
    /// product's stock or a line past [`QUANTITY_MAX`](crate::QUANTITY_MAX).
    pub const QUANTITY_INVALID: &str = "quantity_invalid";
    /// `RemoveItem` of a sku the order has no line of.
    pub const ITEM_NOT_FOUND: &str = "item_not_found";
    /// `SubmitOrder` of an order without lines.
    pub const ORDER_EMPTY: &str = "order_empty";
    /// `RecordPayment` on an order that is not awaiting payment; also the internal
    /// `ExpireOrder` when the order was paid or cancelled before its payment was due.
    pub const ORDER_NOT_AWAITING_PAYMENT: &str = "order_not_awaiting_payment";
    /// `RecordPayment` whose `amountCents` is not exactly the order's total (details:
    /// `totalCents`, `amountCents`).
    pub const AMOUNT_MISMATCH: &str = "amount_mismatch";
    /// `ShipOrder` on an order that is not paid.
    pub const ORDER_NOT_PAID: &str = "order_not_paid";
    /// `CancelOrder` on a cancelled order.
    pub const ORDER_CANCELLED: &str = "order_cancelled";
    /// `CancelOrder` on a shipped order.
    pub const ORDER_SHIPPED: &str = "order_shipped";
    /// Not in the contract's table (an addition): `AddItem` that would give an order more
    /// than [`ORDER_LINES_MAX`](crate::ORDER_LINES_MAX) lines or a total beyond
    /// [`CENTS_MAX`](crate::CENTS_MAX) cents.
    pub const ORDER_TOO_LARGE: &str = "order_too_large";
    /// Internal, `ReserveOrder` only: the order is not (or no longer) submitted, for
    /// example cancelled before its reservation ran.
    pub const ORDER_NOT_SUBMITTED: &str = "order_not_submitted";
}
