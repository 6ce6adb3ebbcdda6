//! Payloads for `writ bench engine --domain orders`: a deterministic mix of clients'
//! commands, the JSON bytes a client would send, already canonical (decoding one through
//! the catalog re-encodes it to the very same bytes).
//!
//! # The mix
//!
//! A run of `N` orders has two parts.
//!
//! 1. **Stock**, [`stock_steps`]`(N)`: one `AddStock` for each of the [`PRODUCTS`] skus
//!    `sku-0` … `sku-99`, named `Product {k}`, with [`initial_stock`]`(N)` = 3·N units:
//!    more than all orders together can reserve, since an order holds at most 3 units of
//!    a sku.
//! 2. **Orders**, [`order_steps`]`(n)` for `n` in `0..N`, order `o-{n}` of customer
//!    `c-{n % 1000}`:
//!    - every 10th order (`n % 10 == 0`) starts with a restock: `AddStock` of 10 units of
//!      `sku-{(n / 10) % 100}`;
//!    - `CreateOrder`;
//!    - 1 to 4 `AddItem`s (from a hash of `n`), of consecutive skus from a hashed one,
//!      1 to 3 units each, at the sku's price [`unit_price_cents`]`(k)` (100 to 9,999
//!      cents);
//!    - every 8th order (`n % 8 == 3`) adds one more sku and removes it again
//!      (`AddItem`, `RemoveItem`);
//!    - then its [`Fate`], by `n % 20`:
//!
//! | `n % 20` | share | fate | client commands after the items |
//! |---|---|---|---|
//! | 0–11 | 60% | [`Fate::Shipped`] | `SubmitOrder`, `RecordPayment`, `ShipOrder` |
//! | 12–13 | 10% | [`Fate::Paid`] | `SubmitOrder`, `RecordPayment` |
//! | 14 | 5% | [`Fate::CancelledAwaitingPayment`] | `SubmitOrder`, `CancelOrder` (releases) |
//! | 15 | 5% | [`Fate::CancelledPaid`] | `SubmitOrder`, `RecordPayment`, `CancelOrder` (releases) |
//! | 16 | 5% | [`Fate::CancelledDraft`] | `CancelOrder` (never submitted) |
//! | 17–18 | 10% | [`Fate::TimedOut`] | `SubmitOrder` with `paymentDueSeconds` = [`TIMEOUT_SECONDS`] (1), then nothing: the timer cancels it |
//! | 19 | 5% | [`Fate::OutOfStock`] | `SubmitOrder`; its last line is of [`UNSTOCKED_SKU`], never stocked, so the process cancels it |
//!
//! Other orders submit with the default 900 s. Orders that pay and have `n % 25 == 7`
//! first send a `RecordPayment` of one cent too much, rejected `amount_mismatch` (the
//! only rejections of the mix: 3 in 100 orders, about 0.4% of the client commands); every
//! other client command succeeds. Every submitted order makes the process issue one
//! `ReserveOrder`; every timed-out order makes a timer fire one `ExpireOrder`.
//! [`expected_counts`] gives the totals.
//!
//! # How to send it
//!
//! Use a fresh data directory (the ids are the same in every run). Send the stock steps
//! first; they need not have finished when the orders start, only have been submitted
//! before them to the in-process engine (its single writer decides in intake order).
//! Send each order's steps in sequence: the next once the previous has been submitted
//! (in-process) or has its outcome (over the network, where separate connections do not
//! keep an order). Many orders may be in flight at once, interleaved in any way. A
//! `SubmitOrder`'s `ReserveOrder` runs right after it, before any other client command,
//! so the order's payment may follow at once. When every outcome is in, wait until the
//! engine has no pending timer: the timed-out orders' timers fire 1 s after their
//! submission, and every other timer was cancelled or never set. Then the engine's counts
//! are [`expected_counts`]`(N)`, and each step's outcome is its [`Step::expected`].
//!
//! ```
//! use writ_domain::Domain;
//! use writ_orders::{Orders, workload};
//!
//! let steps = workload::order_steps(0);
//! assert_eq!(steps[1].command, "CreateOrder");
//! assert_eq!(
//!     steps[1].payload,
//!     br#"{"orderId":"o-0","customerId":"c-0","customerName":"Customer 0"}"#
//! );
//! let decoded = Orders::commands().decode(steps[1].command, Some(1), &steps[1].payload).unwrap();
//! assert_eq!(decoded.canonical_payload, steps[1].payload);
//! assert_eq!(Orders::stream(&decoded.command), "order-o-0");
//!
//! let counts = workload::expected_counts(1_000);
//! assert!(counts.client_rejected * 20 <= counts.client_commands); // at least 95% succeed
//! ```

use std::io::Write;

use crate::{OUT_OF_STOCK, OrderStatus, PAYMENT_TIMEOUT, codes};

/// How many products are stocked: skus `sku-0` to `sku-99`.
pub const PRODUCTS: u64 = 100;

/// The sku of the last line of every [`Fate::OutOfStock`] order; never stocked.
pub const UNSTOCKED_SKU: &str = "sku-unstocked";

/// The price of one unit of [`UNSTOCKED_SKU`], in cents.
pub const UNSTOCKED_PRICE_CENTS: u64 = 500;

/// The `paymentDueSeconds` of [`Fate::TimedOut`] orders.
pub const TIMEOUT_SECONDS: u32 = 1;

/// The `paymentDueSeconds` of every other submitted order (the default).
pub const PAYMENT_DUE_SECONDS: u32 = crate::PAYMENT_DUE_SECONDS_DEFAULT;

/// The units of a restock (`n % 10 == 0`).
pub const RESTOCK_QUANTITY: u64 = 10;

/// The reason of the mix's `CancelOrder`s.
pub const CANCEL_REASON: &str = "changed my mind";

/// What becomes of an order of the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fate {
    /// Submitted, paid and shipped.
    Shipped,
    /// Submitted and paid.
    Paid,
    /// Submitted, then cancelled by the client while awaiting payment: its reservation is
    /// released.
    CancelledAwaitingPayment,
    /// Submitted, paid, then cancelled by the client: its reservation is released.
    CancelledPaid,
    /// Cancelled by the client while a draft.
    CancelledDraft,
    /// Submitted with a 1 s payment time and never paid: the timer cancels it
    /// (`payment_timeout`) and releases its reservation.
    TimedOut,
    /// Submitted with a line of a sku never stocked: the process cancels it
    /// (`out_of_stock`) and reserves nothing.
    OutOfStock,
}

impl Fate {
    /// The fate of order `n`, by `n % 20` (see the module documentation).
    pub fn of(n: u64) -> Self {
        match n % 20 {
            0..=11 => Self::Shipped,
            12 | 13 => Self::Paid,
            14 => Self::CancelledAwaitingPayment,
            15 => Self::CancelledPaid,
            16 => Self::CancelledDraft,
            17 | 18 => Self::TimedOut,
            _ => Self::OutOfStock,
        }
    }

    /// The order's final status.
    pub fn status(self) -> OrderStatus {
        match self {
            Self::Shipped => OrderStatus::Shipped,
            Self::Paid => OrderStatus::Paid,
            _ => OrderStatus::Cancelled,
        }
    }

    /// The order's final `cancelReason`, if it ends cancelled.
    pub fn cancel_reason(self) -> Option<&'static str> {
        match self {
            Self::Shipped | Self::Paid => None,
            Self::CancelledAwaitingPayment | Self::CancelledPaid | Self::CancelledDraft => {
                Some(CANCEL_REASON)
            }
            Self::TimedOut => Some(PAYMENT_TIMEOUT),
            Self::OutOfStock => Some(OUT_OF_STOCK),
        }
    }

    fn submits(self) -> bool {
        self != Self::CancelledDraft
    }

    fn pays(self) -> bool {
        matches!(self, Self::Shipped | Self::Paid | Self::CancelledPaid)
    }

    /// Whether the order holds a reservation at some point.
    fn reserves(self) -> bool {
        self.submits() && self != Self::OutOfStock
    }
}

/// What a step's outcome should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// `succeeded`.
    Succeeded,
    /// `rejected` with this code.
    Rejected(&'static str),
}

/// One client command of the mix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The command's name.
    pub command: &'static str,
    /// Its version (1 for every orders command).
    pub version: u32,
    /// Its canonical JSON payload.
    pub payload: Vec<u8>,
    /// Its outcome when the mix is sent as the module documentation says.
    pub expected: Expected,
}

/// The totals of a run of the mix.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Clients' commands, the stock steps included.
    pub client_commands: u64,
    /// Clients' commands rejected (all `amount_mismatch`); the rest succeed.
    pub client_rejected: u64,
    /// Commands the process issues (`ReserveOrder`, origin `process`), all succeed.
    pub process_commands: u64,
    /// Commands timers fire (`ExpireOrder`, origin `timer`), all succeed.
    pub timer_commands: u64,
    /// Events recorded by all of them.
    pub events: u64,
}

/// The order id of order `n`: `o-{n}`.
pub fn order_id(n: u64) -> String {
    format!("o-{n}")
}

/// The stream of order `n`: `order-o-{n}`.
pub fn order_stream(n: u64) -> String {
    format!("order-o-{n}")
}

/// The sku of product `k`: `sku-{k}`.
pub fn sku(k: u64) -> String {
    format!("sku-{k}")
}

/// The stream of product `k`: `product-sku-{k}`.
pub fn product_stream(k: u64) -> String {
    format!("product-sku-{k}")
}

/// The price of one unit of product `k`, in cents: 100 to 9,999.
pub fn unit_price_cents(k: u64) -> u64 {
    100 + (k * 37) % 9_900
}

/// The units each product is stocked with before a run of `orders` orders: 3 per order
/// (at least 3), since an order holds at most 3 units of a sku.
pub fn initial_stock(orders: u64) -> u64 {
    3 * orders.max(1)
}

/// The stock steps of a run of `orders` orders: one `AddStock` per product.
pub fn stock_steps(orders: u64) -> Vec<Step> {
    (0..PRODUCTS)
        .map(|k| add_stock(k, initial_stock(orders)))
        .collect()
}

/// A line of a planned order: the sku (`None`: [`UNSTOCKED_SKU`]) and the units.
#[derive(Debug, Clone, Copy)]
struct PlannedLine {
    product: Option<u64>,
    quantity: u64,
}

impl PlannedLine {
    fn price(self) -> u64 {
        self.product.map_or(UNSTOCKED_PRICE_CENTS, unit_price_cents)
    }
}

/// What order `n` does, before it is spelled as payloads.
#[derive(Debug, Clone)]
struct Plan {
    fate: Fate,
    restock: Option<u64>,
    lines: Vec<PlannedLine>,
    /// A product added and removed again while a draft.
    removed: Option<u64>,
    /// Whether a wrong payment precedes the right one.
    wrong_payment: bool,
}

impl Plan {
    fn of(n: u64) -> Self {
        let fate = Fate::of(n);
        let hash = mix(n);
        let count = 1 + hash % 4;
        let first = (hash >> 8) % PRODUCTS;
        let mut lines: Vec<PlannedLine> = (0..count)
            .map(|i| PlannedLine {
                product: Some((first + i) % PRODUCTS),
                quantity: 1 + (hash >> (16 + 2 * i)) % 3,
            })
            .collect();
        if fate == Fate::OutOfStock
            && let Some(last) = lines.last_mut()
        {
            last.product = None;
        }
        Self {
            fate,
            restock: n.is_multiple_of(10).then_some((n / 10) % PRODUCTS),
            lines,
            removed: (n % 8 == 3).then_some((first + count) % PRODUCTS),
            wrong_payment: fate.pays() && n % 25 == 7,
        }
    }

    fn total_cents(&self) -> u64 {
        self.lines.iter().map(|l| l.quantity * l.price()).sum()
    }

    fn counts(&self) -> Counts {
        let lines = self.lines.len() as u64;
        let mut c = Counts::default();
        // A client's command that succeeds with `events` events.
        let mut client = |events: u64| {
            c.client_commands += 1;
            c.events += events;
        };
        if self.restock.is_some() {
            client(1); // AddStock
        }
        client(1); // CreateOrder
        for _ in 0..lines {
            client(1); // AddItem
        }
        if self.removed.is_some() {
            client(1); // AddItem
            client(1); // RemoveItem
        }
        client(1); // SubmitOrder, or a draft's CancelOrder (nothing to release)
        if self.fate.pays() {
            client(1); // RecordPayment
        }
        match self.fate {
            Fate::Shipped => client(1 + lines), // ShipOrder: OrderShipped, StockShipped per line
            Fate::CancelledAwaitingPayment | Fate::CancelledPaid => client(1 + lines), // CancelOrder: OrderCancelled, StockReleased per line
            _ => {}
        }
        if self.wrong_payment {
            c.client_commands += 1;
            c.client_rejected += 1;
        }
        if self.fate.submits() {
            // ReserveOrder: OrderReserved and a StockReserved per line, or OrderCancelled.
            c.process_commands += 1;
            c.events += if self.fate.reserves() { 1 + lines } else { 1 };
        }
        if self.fate == Fate::TimedOut {
            // ExpireOrder: OrderCancelled and a StockReleased per line.
            c.timer_commands += 1;
            c.events += 1 + lines;
        }
        c
    }
}

/// The client commands of order `n`, in the order they must be sent.
pub fn order_steps(n: u64) -> Vec<Step> {
    let plan = Plan::of(n);
    let id = order_id(n);
    let mut steps = Vec::with_capacity(12);
    if let Some(k) = plan.restock {
        steps.push(add_stock(k, RESTOCK_QUANTITY));
    }
    let customer = n % 1000;
    steps.push(step(
        "CreateOrder",
        format_args!(
            r#"{{"orderId":"{id}","customerId":"c-{customer}","customerName":"Customer {customer}"}}"#
        ),
    ));
    for line in &plan.lines {
        let sku = line.product.map_or_else(|| UNSTOCKED_SKU.to_owned(), sku);
        steps.push(add_item(&id, &sku, line.quantity, line.price()));
    }
    if let Some(k) = plan.removed {
        steps.push(add_item(&id, &sku(k), 1, unit_price_cents(k)));
        steps.push(step(
            "RemoveItem",
            format_args!(r#"{{"orderId":"{id}","sku":"{}"}}"#, sku(k)),
        ));
    }
    let cancel = || {
        step(
            "CancelOrder",
            format_args!(r#"{{"orderId":"{id}","reason":"{CANCEL_REASON}"}}"#),
        )
    };
    if plan.fate == Fate::CancelledDraft {
        steps.push(cancel());
        return steps;
    }
    let due = if plan.fate == Fate::TimedOut {
        TIMEOUT_SECONDS
    } else {
        PAYMENT_DUE_SECONDS
    };
    steps.push(step(
        "SubmitOrder",
        format_args!(r#"{{"orderId":"{id}","paymentDueSeconds":{due}}}"#),
    ));
    let total = plan.total_cents();
    if plan.wrong_payment {
        let mut wrong = step(
            "RecordPayment",
            format_args!(r#"{{"orderId":"{id}","amountCents":{}}}"#, total + 1),
        );
        wrong.expected = Expected::Rejected(codes::AMOUNT_MISMATCH);
        steps.push(wrong);
    }
    if plan.fate.pays() {
        steps.push(step(
            "RecordPayment",
            format_args!(r#"{{"orderId":"{id}","amountCents":{total}}}"#),
        ));
    }
    match plan.fate {
        Fate::Shipped => steps.push(step("ShipOrder", format_args!(r#"{{"orderId":"{id}"}}"#))),
        Fate::CancelledAwaitingPayment | Fate::CancelledPaid => steps.push(cancel()),
        _ => {}
    }
    steps
}

/// The totals of a run of `orders` orders sent as the module documentation says.
pub fn expected_counts(orders: u64) -> Counts {
    let mut total = Counts {
        client_commands: PRODUCTS,
        events: PRODUCTS,
        ..Counts::default()
    };
    for n in 0..orders {
        let c = Plan::of(n).counts();
        total.client_commands += c.client_commands;
        total.client_rejected += c.client_rejected;
        total.process_commands += c.process_commands;
        total.timer_commands += c.timer_commands;
        total.events += c.events;
    }
    total
}

fn add_stock(k: u64, quantity: u64) -> Step {
    step(
        "AddStock",
        format_args!(
            r#"{{"sku":"{}","name":"Product {k}","quantity":{quantity}}}"#,
            sku(k)
        ),
    )
}

fn add_item(id: &str, sku: &str, quantity: u64, price: u64) -> Step {
    step(
        "AddItem",
        format_args!(
            r#"{{"orderId":"{id}","sku":"{sku}","quantity":{quantity},"unitPriceCents":{price}}}"#
        ),
    )
}

fn step(command: &'static str, payload: std::fmt::Arguments<'_>) -> Step {
    let mut bytes = Vec::with_capacity(96);
    bytes
        .write_fmt(payload)
        .expect("writing to a Vec never fails");
    Step {
        command,
        version: 1,
        payload: bytes,
        expected: Expected::Succeeded,
    }
}

/// SplitMix64's finalizer: a fixed, well-spread hash of the order number.
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
