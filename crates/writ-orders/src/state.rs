use std::fmt;

use crate::events::Line;
use crate::{OrderEvent, Sku};

/// Where an order is in its life. Spelled in `snake_case` by [`OrderStatus::as_str`]:
/// `draft`, `submitted`, `awaiting_payment`, `paid`, `shipped`, `cancelled`.
///
/// ```text
/// draft ──SubmitOrder──▶ submitted ──ReserveOrder──▶ awaiting_payment ──RecordPayment──▶ paid ──ShipOrder──▶ shipped
///   │                        │ (out of stock)            │ (ExpireOrder: payment_timeout)   │
///   └────────CancelOrder─────┴───────────▶ cancelled ◀───┴────────────CancelOrder──────────┘
/// ```
///
/// `submitted` lasts from `SubmitOrder` until the process's `ReserveOrder`, which the
/// engine runs right after it, before any other client's command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    /// Open for `AddItem` and `RemoveItem`.
    Draft,
    /// Submitted; its stock is being reserved.
    Submitted,
    /// Its stock is reserved; waiting for `RecordPayment` until the payment is due.
    AwaitingPayment,
    /// Paid; its stock is still reserved, until it ships.
    Paid,
    /// Shipped: its units left the stock. Final.
    Shipped,
    /// Cancelled; it holds no stock. Final.
    Cancelled,
}

impl OrderStatus {
    /// Every status, in the order of an order's life (the two final ones last).
    pub const ALL: [OrderStatus; 6] = [
        Self::Draft,
        Self::Submitted,
        Self::AwaitingPayment,
        Self::Paid,
        Self::Shipped,
        Self::Cancelled,
    ];

    /// The contract's name for the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Submitted => "submitted",
            Self::AwaitingPayment => "awaiting_payment",
            Self::Paid => "paid",
            Self::Shipped => "shipped",
            Self::Cancelled => "cancelled",
        }
    }

    /// The status the contract names `name` (`draft`, ..., `cancelled`).
    ///
    /// ```
    /// use writ_orders::OrderStatus;
    /// assert_eq!(OrderStatus::parse("awaiting_payment"), Some(OrderStatus::AwaitingPayment));
    /// assert_eq!(OrderStatus::parse("Paid"), None);
    /// ```
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == name)
    }

    /// Whether no command moves an order on from this status: `shipped` or `cancelled`.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Shipped | Self::Cancelled)
    }

    /// Whether an order in this status holds a reservation of its lines' stock.
    pub fn holds_reservation(self) -> bool {
        matches!(self, Self::AwaitingPayment | Self::Paid)
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the rules need to know about one order: its status, its lines and when its
/// payment is due. The customer and the cancel reason stay in the events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderState {
    status: OrderStatus,
    lines: Vec<Line>,
    payment_due_at_ms: Option<u64>,
}

impl Default for OrderState {
    fn default() -> Self {
        Self {
            status: OrderStatus::Draft,
            lines: Vec::new(),
            payment_due_at_ms: None,
        }
    }
}

impl OrderState {
    /// Where the order is in its life.
    pub fn status(&self) -> OrderStatus {
        self.status
    }

    /// Its lines, in the order their skus were first added (at most one per sku).
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// The line of `sku`, if the order has one.
    pub fn line(&self, sku: &Sku) -> Option<&Line> {
        self.lines.iter().find(|l| l.sku == *sku)
    }

    /// The sum of the lines' totals, in cents.
    pub fn total_cents(&self) -> u64 {
        self.lines
            .iter()
            .fold(0u64, |sum, l| sum.saturating_add(l.total_cents()))
    }

    /// When the payment is due (ms since the Unix epoch), once submitted.
    pub fn payment_due_at_ms(&self) -> Option<u64> {
        self.payment_due_at_ms
    }

    fn apply(&mut self, event: &OrderEvent) {
        match event {
            OrderEvent::ItemAdded(e) => match self.lines.iter_mut().find(|l| l.sku == e.sku) {
                Some(line) => line.quantity = line.quantity.saturating_add(e.quantity),
                None => self.lines.push(Line {
                    sku: e.sku.clone(),
                    quantity: e.quantity,
                    unit_price_cents: e.unit_price_cents,
                }),
            },
            OrderEvent::ItemRemoved(e) => self.lines.retain(|l| l.sku != e.sku),
            OrderEvent::OrderSubmitted(e) => {
                self.status = OrderStatus::Submitted;
                self.lines.clone_from(&e.lines);
                self.payment_due_at_ms = Some(e.payment_due_at_ms);
            }
            OrderEvent::OrderReserved(e) => {
                self.status = OrderStatus::AwaitingPayment;
                self.payment_due_at_ms = Some(e.payment_due_at_ms);
            }
            OrderEvent::OrderPaid(_) => self.status = OrderStatus::Paid,
            OrderEvent::OrderShipped(_) => self.status = OrderStatus::Shipped,
            OrderEvent::OrderCancelled(_) => self.status = OrderStatus::Cancelled,
            OrderEvent::OrderCreated(_)
            | OrderEvent::StockAdded(_)
            | OrderEvent::StockReserved(_)
            | OrderEvent::StockReleased(_)
            | OrderEvent::StockShipped(_) => {}
        }
    }
}

/// What the rules need to know about one product: its name and stock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductState {
    name: String,
    on_hand: u64,
    reserved: u64,
}

impl ProductState {
    /// The name its last `AddStock` gave it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Units in the warehouse, reserved or not.
    pub fn on_hand(&self) -> u64 {
        self.on_hand
    }

    /// Units held by orders awaiting payment or paid.
    pub fn reserved(&self) -> u64 {
        self.reserved
    }

    /// Units an order may still reserve: `onHand − reserved`, never negative.
    pub fn available(&self) -> u64 {
        self.on_hand.saturating_sub(self.reserved)
    }

    fn apply(&mut self, event: &OrderEvent) {
        match event {
            OrderEvent::StockAdded(e) => {
                self.name.clone_from(&e.name);
                self.on_hand = self.on_hand.saturating_add(e.quantity);
            }
            OrderEvent::StockReserved(e) => {
                self.reserved = self.reserved.saturating_add(e.quantity)
            }
            OrderEvent::StockReleased(e) => {
                self.reserved = self.reserved.saturating_sub(e.quantity)
            }
            OrderEvent::StockShipped(e) => {
                self.on_hand = self.on_hand.saturating_sub(e.quantity);
                self.reserved = self.reserved.saturating_sub(e.quantity);
            }
            _ => {}
        }
    }
}

/// The state of one stream of the orders domain: an order (`order-{orderId}`), a product
/// (`product-{sku}`), or nothing yet.
///
/// Folded from the stream's events by [`OrdersState::apply`], which never panics, even on
/// an event the rules would not have recorded in this state: the log is the truth. An
/// order event turns the state into an order (`OrderCreated` starts a fresh one), a
/// product event into a product; the rules only ever record order events on order
/// streams and product events on product streams.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum OrdersState {
    /// A stream without events.
    #[default]
    Empty,
    /// An order's stream.
    Order(OrderState),
    /// A product's stream.
    Product(ProductState),
}

impl OrdersState {
    /// The order, if this is an order's stream.
    pub fn order(&self) -> Option<&OrderState> {
        match self {
            Self::Order(order) => Some(order),
            _ => None,
        }
    }

    /// The product, if this is a product's stream.
    pub fn product(&self) -> Option<&ProductState> {
        match self {
            Self::Product(product) => Some(product),
            _ => None,
        }
    }

    /// Applies one recorded event.
    pub fn apply(&mut self, event: &OrderEvent) {
        match event {
            OrderEvent::OrderCreated(_) => *self = Self::Order(OrderState::default()),
            OrderEvent::StockAdded(_)
            | OrderEvent::StockReserved(_)
            | OrderEvent::StockReleased(_)
            | OrderEvent::StockShipped(_) => {
                if !matches!(self, Self::Product(_)) {
                    *self = Self::Product(ProductState::default());
                }
                if let Self::Product(product) = self {
                    product.apply(event);
                }
            }
            _ => {
                if !matches!(self, Self::Order(_)) {
                    *self = Self::Order(OrderState::default());
                }
                if let Self::Order(order) = self {
                    order.apply(event);
                }
            }
        }
    }
}
