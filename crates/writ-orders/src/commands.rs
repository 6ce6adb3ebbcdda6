//! The commands' payloads, one struct per command (each in version 1), and
//! [`OrderCommand`], the form the rules decide on.
//!
//! Every payload refuses unknown fields, so a typo in a field name is a decoding error
//! (`422`) rather than a silently ignored field. Numbers are JSON integers: a fraction
//! (`1.5`, also `1.0`) or a string is a decoding error. `quantity` and `amountCents` take
//! any integer of the signed 64-bit range, so that `0` or `-3` reach the rules and are
//! rejected with a code (`quantity_invalid`, `amount_mismatch`); `unitPriceCents` and
//! `paymentDueSeconds` cannot be negative (a negative one is a decoding error).
//!
//! The payload types' documentation is also the description of their JSON Schemas
//! (`GET /domains`, `/openapi.json`), so it is written for clients, without links.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{CustomerId, OrderId, Sku};

/// How long an order waits for its payment when `SubmitOrder` does not say: 900 s.
pub const PAYMENT_DUE_SECONDS_DEFAULT: u32 = 900;

fn payment_due_seconds_default() -> u32 {
    PAYMENT_DUE_SECONDS_DEFAULT
}

/// `AddStock` version 1: puts `quantity` units of a product in stock, on stream
/// `product-{sku}`.
///
/// The first `AddStock` of a sku creates the product; a later one adds to its stock and
/// renames it to `name`. Rejected with `quantity_invalid` when `quantity` is below 1 or
/// the stock would pass 2^53 - 1 units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddStock {
    /// The product; the command addresses stream `product-{sku}`.
    pub sku: Sku,
    /// The product's name, as shown by `getStock`.
    pub name: String,
    /// How many units arrive; at least 1.
    pub quantity: i64,
}

/// `CreateOrder` version 1: opens a draft order for a customer.
///
/// Rejected with `order_exists` when the stream already holds an order, and with
/// `customer_required` when `customerId` or `customerName` is empty or only whitespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateOrder {
    /// The new order's id; the command addresses stream `order-{orderId}`.
    pub order_id: OrderId,
    /// Who orders.
    pub customer_id: CustomerId,
    /// The customer's name, for people.
    pub customer_name: String,
}

/// `AddItem` version 1: adds `quantity` units of `sku` to a draft order.
///
/// A sku already in the order adds to its line's quantity; the line keeps the price it
/// was first added at. Rejected with `order_not_found`, `order_not_draft`,
/// `quantity_invalid` (below 1, or the line would pass 2^53 - 1 units), and
/// `order_too_large` (a 101st line, or a total beyond 2^53 - 1 cents).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddItem {
    /// The order.
    pub order_id: OrderId,
    /// The product; it need not be in stock (a sku never stocked counts as stock 0 when
    /// the order is reserved).
    pub sku: Sku,
    /// How many units; at least 1.
    pub quantity: i64,
    /// The price of one unit, in cents.
    pub unit_price_cents: u64,
}

/// `RemoveItem` version 1: removes a sku's line, whatever its quantity, from a draft order.
///
/// Rejected with `order_not_found`, `order_not_draft`, and `item_not_found` when the
/// order has no line of that sku.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemoveItem {
    /// The order.
    pub order_id: OrderId,
    /// The line to remove.
    pub sku: Sku,
}

/// `SubmitOrder` version 1: submits a draft order. The order's process then reserves its
/// stock and waits `paymentDueSeconds` for the payment.
///
/// `paymentDueSeconds` is optional, 900 when absent. The logged payload always spells
/// it out, so a payload without it and one with `"paymentDueSeconds": 900` are the same
/// command; an explicit `null` is a decoding error. Rejected with `order_not_found`,
/// `order_not_draft` and `order_empty`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubmitOrder {
    /// The order.
    pub order_id: OrderId,
    /// How long the customer has to pay, from the submission, in seconds.
    #[serde(default = "payment_due_seconds_default")]
    pub payment_due_seconds: u32,
}

/// `RecordPayment` version 1: the customer paid an order that awaits payment.
///
/// Rejected with `order_not_found`, `order_not_awaiting_payment`, and `amount_mismatch`
/// unless `amountCents` is exactly the order's total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordPayment {
    /// The order.
    pub order_id: OrderId,
    /// What was paid, in cents.
    pub amount_cents: i64,
}

/// `ShipOrder` version 1: ships a paid order, taking its units out of stock.
///
/// Rejected with `order_not_found` and `order_not_paid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShipOrder {
    /// The order.
    pub order_id: OrderId,
}

/// `CancelOrder` version 1: cancels an order that is neither shipped nor cancelled,
/// releasing its reservation if it holds one.
///
/// Rejected with `order_not_found`, `order_cancelled` and `order_shipped`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CancelOrder {
    /// The order.
    pub order_id: OrderId,
    /// Why, recorded as the order's `cancelReason`.
    pub reason: String,
}

/// `ReserveOrder` version 1, internal: issued by the `order-fulfilment` process when an
/// order is submitted. Reserves every line's stock and moves the order to
/// `awaiting_payment`, or cancels it with reason `out_of_stock` and reserves nothing.
///
/// Rejected with `order_not_found` and `order_not_submitted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReserveOrder {
    /// The order.
    pub order_id: OrderId,
}

/// `ExpireOrder` version 1, internal: fired by the payment timer of the
/// `order-fulfilment` process. Cancels an order still awaiting payment
/// with reason `payment_timeout` and releases its reservation.
///
/// Rejected with `order_not_found` and `order_not_awaiting_payment` (the order was paid
/// or cancelled in the meantime: nothing to do, and the outcome says why).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExpireOrder {
    /// The order.
    pub order_id: OrderId,
}

/// Every orders command: what the catalog decodes payloads to and what
/// [`Orders::decide`](writ_domain::Domain::decide) decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderCommand {
    /// `AddStock` version 1.
    AddStock(AddStock),
    /// `CreateOrder` version 1.
    CreateOrder(CreateOrder),
    /// `AddItem` version 1.
    AddItem(AddItem),
    /// `RemoveItem` version 1.
    RemoveItem(RemoveItem),
    /// `SubmitOrder` version 1.
    SubmitOrder(SubmitOrder),
    /// `RecordPayment` version 1.
    RecordPayment(RecordPayment),
    /// `ShipOrder` version 1.
    ShipOrder(ShipOrder),
    /// `CancelOrder` version 1.
    CancelOrder(CancelOrder),
    /// `ReserveOrder` version 1 (internal).
    ReserveOrder(ReserveOrder),
    /// `ExpireOrder` version 1 (internal).
    ExpireOrder(ExpireOrder),
}

impl OrderCommand {
    /// The order the command addresses; `None` for `AddStock`, which addresses a product.
    pub fn order_id(&self) -> Option<&OrderId> {
        match self {
            Self::AddStock(_) => None,
            Self::CreateOrder(c) => Some(&c.order_id),
            Self::AddItem(c) => Some(&c.order_id),
            Self::RemoveItem(c) => Some(&c.order_id),
            Self::SubmitOrder(c) => Some(&c.order_id),
            Self::RecordPayment(c) => Some(&c.order_id),
            Self::ShipOrder(c) => Some(&c.order_id),
            Self::CancelOrder(c) => Some(&c.order_id),
            Self::ReserveOrder(c) => Some(&c.order_id),
            Self::ExpireOrder(c) => Some(&c.order_id),
        }
    }

    /// The command's name in the catalog, for example `AddStock`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::AddStock(_) => "AddStock",
            Self::CreateOrder(_) => "CreateOrder",
            Self::AddItem(_) => "AddItem",
            Self::RemoveItem(_) => "RemoveItem",
            Self::SubmitOrder(_) => "SubmitOrder",
            Self::RecordPayment(_) => "RecordPayment",
            Self::ShipOrder(_) => "ShipOrder",
            Self::CancelOrder(_) => "CancelOrder",
            Self::ReserveOrder(_) => "ReserveOrder",
            Self::ExpireOrder(_) => "ExpireOrder",
        }
    }
}

macro_rules! impl_from_command {
    ($($variant:ident),+) => {
        $(
            impl From<$variant> for OrderCommand {
                fn from(command: $variant) -> Self {
                    Self::$variant(command)
                }
            }
        )+
    };
}

impl_from_command!(
    AddStock,
    CreateOrder,
    AddItem,
    RemoveItem,
    SubmitOrder,
    RecordPayment,
    ShipOrder,
    CancelOrder,
    ReserveOrder,
    ExpireOrder
);
