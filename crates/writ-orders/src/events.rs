//! The events the orders domain records; [`OrderEvent`] documents their JSON shapes.

use serde::{Deserialize, Serialize};

use crate::{CustomerId, OrderId, Sku};

/// One line of an order: a sku, how many units, and the price of one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    /// The product.
    pub sku: Sku,
    /// How many units; at least 1.
    pub quantity: u64,
    /// The price of one unit, in cents.
    pub unit_price_cents: u64,
}

impl Line {
    /// `quantity × unitPriceCents`, saturating (the rules keep it far below).
    pub fn total_cents(&self) -> u64 {
        self.quantity.saturating_mul(self.unit_price_cents)
    }
}

/// A product's stock grew; the first one creates the product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StockAdded {
    /// The product.
    pub sku: Sku,
    /// Its name from now on.
    pub name: String,
    /// How many units arrived.
    pub quantity: u64,
}

/// Units of a product were reserved for an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StockReserved {
    /// The product.
    pub sku: Sku,
    /// The order that holds them.
    pub order_id: OrderId,
    /// How many units.
    pub quantity: u64,
}

/// An order's reservation of a product was released: the order was cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StockReleased {
    /// The product.
    pub sku: Sku,
    /// The order that held them.
    pub order_id: OrderId,
    /// How many units.
    pub quantity: u64,
}

/// Reserved units of a product left the warehouse with an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StockShipped {
    /// The product.
    pub sku: Sku,
    /// The order shipped.
    pub order_id: OrderId,
    /// How many units.
    pub quantity: u64,
}

/// A draft order was opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCreated {
    /// The order.
    pub order_id: OrderId,
    /// Who ordered.
    pub customer_id: CustomerId,
    /// The customer's name.
    pub customer_name: String,
}

/// Units of a sku were added to a draft order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemAdded {
    /// The order.
    pub order_id: OrderId,
    /// The product.
    pub sku: Sku,
    /// How many units were added to the sku's line (a new line when there was none).
    pub quantity: u64,
    /// The line's unit price: the price the sku was first added at, which a later
    /// `AddItem` of the same sku does not change.
    pub unit_price_cents: u64,
}

/// A sku's line was removed from a draft order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemRemoved {
    /// The order.
    pub order_id: OrderId,
    /// The line's product.
    pub sku: Sku,
}

/// A draft order was submitted: its lines and total are final.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderSubmitted {
    /// The order.
    pub order_id: OrderId,
    /// Its lines, in the order their skus were first added.
    pub lines: Vec<Line>,
    /// The sum of the lines' totals, in cents: what `RecordPayment` must pay.
    pub total_cents: u64,
    /// When the payment is due (ms since the Unix epoch): the submission's time plus
    /// `paymentDueSeconds`.
    pub payment_due_at_ms: u64,
}

/// Every line of a submitted order was reserved; the order awaits its payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderReserved {
    /// The order.
    pub order_id: OrderId,
    /// When the payment is due (ms since the Unix epoch), as submitted: the process sets
    /// its timer for it.
    pub payment_due_at_ms: u64,
}

/// An order awaiting payment was paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderPaid {
    /// The order.
    pub order_id: OrderId,
    /// What was paid, in cents: the order's total.
    pub amount_cents: u64,
}

/// A paid order was shipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderShipped {
    /// The order.
    pub order_id: OrderId,
}

/// An order was cancelled: by its customer, for want of stock, or for want of payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCancelled {
    /// The order.
    pub order_id: OrderId,
    /// The order's `cancelReason`: the client's reason, or
    /// [`OUT_OF_STOCK`](crate::OUT_OF_STOCK), or [`PAYMENT_TIMEOUT`](crate::PAYMENT_TIMEOUT).
    pub reason: String,
}

writ_domain::event_set! {
    /// Every event the orders domain records; the variant's name is the event type.
    ///
    /// Each event carries the ids of what it is about and the facts of the decision, enough
    /// for a read model to answer from events alone: an order's customer, lines, total,
    /// status, cancel reason and payment due time; a product's name, stock and reservations.
    /// None carries its own timestamp: the event store records `recordedAt` in each event's
    /// metadata. The one time that is a fact of the order, when its payment is due, is
    /// `paymentDueAtMs`: milliseconds since the Unix epoch (UTC), an integer like the
    /// engine's own clock, which the process schedules on directly; a read model shows it
    /// in RFC 3339 as `paymentDueAt`.
    ///
    /// Quantities and cents are JSON integers, at most 2^53 − 1
    /// ([`QUANTITY_MAX`](crate::QUANTITY_MAX), [`CENTS_MAX`](crate::CENTS_MAX)), so they read
    /// exactly in JavaScript too.
    ///
    /// On `order-{orderId}`:
    ///
    /// | event | data |
    /// |---|---|
    /// | `OrderCreated` | `{"orderId", "customerId", "customerName"}` |
    /// | `ItemAdded` | `{"orderId", "sku", "quantity", "unitPriceCents"}`: `quantity` units added to the sku's line; `unitPriceCents` is the line's price (the first one the sku was added at) |
    /// | `ItemRemoved` | `{"orderId", "sku"}`: the whole line is gone |
    /// | `OrderSubmitted` | `{"orderId", "lines": [{"sku", "quantity", "unitPriceCents"}], "totalCents", "paymentDueAtMs"}`: status `submitted` |
    /// | `OrderReserved` | `{"orderId", "paymentDueAtMs"}`: every line's stock is reserved; status `awaiting_payment` |
    /// | `OrderPaid` | `{"orderId", "amountCents"}`: status `paid` |
    /// | `OrderShipped` | `{"orderId"}`: status `shipped` |
    /// | `OrderCancelled` | `{"orderId", "reason"}`: status `cancelled`, `reason` is the client's, or `out_of_stock`, or `payment_timeout`; exactly one per cancelled order |
    ///
    /// On `product-{sku}` (`available = onHand − reserved`):
    ///
    /// | event | data |
    /// |---|---|
    /// | `StockAdded` | `{"sku", "name", "quantity"}`: `onHand` grows by `quantity`; the product is named `name` |
    /// | `StockReserved` | `{"sku", "orderId", "quantity"}`: `reserved` grows |
    /// | `StockReleased` | `{"sku", "orderId", "quantity"}`: `reserved` shrinks (the order was cancelled) |
    /// | `StockShipped` | `{"sku", "orderId", "quantity"}`: `onHand` and `reserved` both shrink |
    ///
    /// A command that changes several streams records the event of its own stream (the
    /// order's) first, then one event per line in the order's line order: `OrderReserved`
    /// then `StockReserved`s, `OrderShipped` then `StockShipped`s, `OrderCancelled` then
    /// `StockReleased`s.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum OrderEvent {
        /// See [`StockAdded`].
        StockAdded(StockAdded),
        /// See [`StockReserved`].
        StockReserved(StockReserved),
        /// See [`StockReleased`].
        StockReleased(StockReleased),
        /// See [`StockShipped`].
        StockShipped(StockShipped),
        /// See [`OrderCreated`].
        OrderCreated(OrderCreated),
        /// See [`ItemAdded`].
        ItemAdded(ItemAdded),
        /// See [`ItemRemoved`].
        ItemRemoved(ItemRemoved),
        /// See [`OrderSubmitted`].
        OrderSubmitted(OrderSubmitted),
        /// See [`OrderReserved`].
        OrderReserved(OrderReserved),
        /// See [`OrderPaid`].
        OrderPaid(OrderPaid),
        /// See [`OrderShipped`].
        OrderShipped(OrderShipped),
        /// See [`OrderCancelled`].
        OrderCancelled(OrderCancelled),
    }
}

macro_rules! impl_from_event {
    ($($variant:ident),+) => {
        $(
            impl From<$variant> for OrderEvent {
                fn from(event: $variant) -> Self {
                    Self::$variant(event)
                }
            }
        )+
    };
}

impl_from_event!(
    StockAdded,
    StockReserved,
    StockReleased,
    StockShipped,
    OrderCreated,
    ItemAdded,
    ItemRemoved,
    OrderSubmitted,
    OrderReserved,
    OrderPaid,
    OrderShipped,
    OrderCancelled
);
