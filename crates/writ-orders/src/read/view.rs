//! The orders read model: orders and products, built of `writ_query`'s
//! [collections](writ_query::collections).
//!
//! - a [`Table`] of orders keyed by id, numbered in creation order, each with its items
//!   and a [`List`] of its events (its history);
//! - an array of [`NumberSet`]s of orders by status (six statuses: an array indexed by
//!   the enum, no hashing), and one of the *current* orders, those not shipped and not
//!   cancelled, which `currentOrders` pages newest first;
//! - an [`Index`] of orders by customer id: `customerOrders`, and the `customerId` filter
//!   of `currentOrders`;
//! - a [`Table`] of products keyed by sku, and a [`SortedIndex`] of them by sku, which
//!   `listStock` pages in sku order.
//!
//! A clone (a published snapshot) costs a few reference counts, and a change after it
//! copies only the rows and the small nodes it touches. Every change checks what it needs
//! before it changes anything, so an event that does not fit leaves the view as it was.

use std::fmt;
use std::sync::Arc;

use writ_domain::EventSet;
use writ_query::ApplyError;
use writ_query::collections::{Index, List, NumberSet, Row, Selection, SortedIndex, Table};
use writ_query::paging::{Cursor, Order as Listing, Page, PageRequest};
use writ_query::snapshot::{Codec, Reader, SnapshotError, Writer};

use crate::{OrderEvent, OrderStatus};

/// When something happened: the event's position and its `recordedAt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The event's position in the global log.
    pub position: u64,
    /// When its command was recorded (ms since the Unix epoch).
    pub recorded_at_ms: u64,
}

/// One line of an order: a sku, how many units, and the price of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The product.
    pub sku: Arc<str>,
    /// How many units.
    pub quantity: u64,
    /// The price of one unit, in cents: the price the sku was first added at.
    pub unit_price_cents: u64,
}

impl Item {
    /// `quantity × unitPriceCents`, saturating (the domain keeps it far below).
    pub fn total_cents(&self) -> u64 {
        self.quantity.saturating_mul(self.unit_price_cents)
    }
}

/// One event of an order's stream, as `orderHistory` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEvent {
    /// The event type, for example `OrderCreated`.
    pub event_type: &'static str,
    /// When it was recorded.
    pub at: Stamp,
    /// Its body, the JSON object the log holds.
    pub data: Arc<str>,
}

/// One order as the read model keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Its id.
    pub id: Arc<str>,
    /// Who ordered.
    pub customer_id: Arc<str>,
    /// The customer's name, as the order was created with it.
    pub customer_name: Arc<str>,
    /// Where it is in its life.
    pub status: OrderStatus,
    /// Its lines, in the order their skus were first added. At most
    /// [`ORDER_LINES_MAX`](crate::ORDER_LINES_MAX), which the domain enforces: a
    /// plain vector, copied whole when a shared order changes.
    pub items: Vec<Item>,
    /// The sum of the lines' totals, in cents; from submission on, the submitted total.
    pub total_cents: u64,
    /// Why it was cancelled, once cancelled.
    pub cancel_reason: Option<Arc<str>>,
    /// When its payment is due (ms since the Unix epoch), once submitted.
    pub payment_due_at_ms: Option<u64>,
    /// When it was created.
    pub created: Stamp,
    /// When the last event of its stream was recorded.
    pub updated: Stamp,
    /// The events of its stream, oldest first.
    pub history: List<HistoryEvent>,
}

impl Row for Order {
    fn key(&self) -> &str {
        &self.id
    }
}

impl Order {
    /// What the order counts towards its customer's `totalSpentCents`: its total once paid
    /// or shipped, otherwise 0.
    pub fn spent_cents(&self) -> u64 {
        match self.status {
            OrderStatus::Paid | OrderStatus::Shipped => self.total_cents,
            _ => 0,
        }
    }

    /// Whether it is current: neither shipped nor cancelled.
    pub fn is_current(&self) -> bool {
        !self.status.is_final()
    }
}

/// A product's stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// The product.
    pub sku: Arc<str>,
    /// The name its last `StockAdded` gave it.
    pub name: Arc<str>,
    /// Units in the warehouse, reserved or not.
    pub on_hand: u64,
    /// Units held by orders awaiting payment or paid.
    pub reserved: u64,
}

impl Row for Product {
    fn key(&self) -> &str {
        &self.sku
    }
}

impl Product {
    /// Units an order may still reserve: `onHand − reserved`, never negative.
    pub fn available(&self) -> u64 {
        self.on_hand.saturating_sub(self.reserved)
    }
}

/// Which current orders a page lists: every given criterion must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CurrentFilter {
    /// Only orders with this status (a final status selects nothing: those orders are
    /// not current).
    pub status: Option<OrderStatus>,
    /// Only orders of this customer.
    pub customer_id: Option<String>,
}

/// How an event changes an order, decoded ahead of applying.
#[derive(Debug)]
pub(crate) enum OrderUpdate {
    /// Units added to a sku's line (a new line when it has none).
    ItemAdded(Item),
    /// A sku's line removed.
    ItemRemoved(Box<str>),
    /// Submitted: the lines and total are final.
    Submitted {
        items: Vec<Item>,
        total_cents: u64,
        payment_due_at_ms: u64,
    },
    /// Reserved: awaiting payment.
    Reserved {
        payment_due_at_ms: u64,
    },
    Paid,
    Shipped,
    Cancelled {
        reason: Arc<str>,
    },
}

/// How an event changes a product's stock, decoded ahead of applying.
#[derive(Debug)]
pub(crate) enum StockUpdate {
    /// Units arrived; the product is named `name` from now on (and created, the first
    /// time).
    Added {
        name: Arc<str>,
        quantity: u64,
    },
    Reserved(u64),
    Released(u64),
    Shipped(u64),
}

/// The orders read model. See the [module documentation](super) for the queries over it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OrdersView {
    /// The orders by id, numbered in creation order. Its key index changes only when an
    /// order is created.
    orders: Table<Order>,
    /// Orders by status, indexed by [`slot`].
    by_status: [NumberSet; 6],
    /// Orders neither shipped nor cancelled.
    current: NumberSet,
    by_customer: Index<Arc<str>>,
    /// The products by sku, numbered in the order they were first stocked.
    products: Table<Product>,
    by_sku: SortedIndex<Arc<str>>,
}

impl fmt::Debug for OrdersView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrdersView")
            .field("orders", &self.orders.len())
            .field("current", &self.current.len())
            .field("customers", &self.by_customer.len())
            .field("products", &self.products.len())
            .finish_non_exhaustive()
    }
}

/// The place of a status in [`OrdersView::by_status`].
fn slot(status: OrderStatus) -> usize {
    match status {
        OrderStatus::Draft => 0,
        OrderStatus::Submitted => 1,
        OrderStatus::AwaitingPayment => 2,
        OrderStatus::Paid => 3,
        OrderStatus::Shipped => 4,
        OrderStatus::Cancelled => 5,
    }
}

impl OrdersView {
    /// An empty read model.
    pub fn new() -> Self {
        Self::default()
    }

    // ----- reads -----

    /// The order `id`.
    pub fn order(&self, id: &str) -> Option<&Order> {
        self.orders.get(id)
    }

    /// Every order, in creation order.
    pub fn orders(&self) -> impl DoubleEndedIterator<Item = &Order> {
        self.orders.rows()
    }

    /// How many orders there are.
    pub fn len(&self) -> usize {
        self.orders.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    /// How many orders have this status (O(1): the index's size).
    pub fn count(&self, status: OrderStatus) -> usize {
        self.by_status[slot(status)].len()
    }

    /// How many orders are current: neither shipped nor cancelled (O(1)).
    pub fn current_count(&self) -> usize {
        self.current.len()
    }

    /// A page of the current orders matching `filter`, in `request`'s order of creation
    /// (`currentOrders` asks newest first), with how many match in all. The cursor is a
    /// row number: orders created after the first page are newer than it, so paging newest
    /// first on never shows them, nor repeats or skips an order that stays current.
    pub fn current_orders(&self, filter: &CurrentFilter, request: &PageRequest) -> Page<&Order> {
        let mut selection = Selection::from(&self.current);
        if let Some(status) = filter.status {
            selection.and(&self.by_status[slot(status)]);
        }
        if let Some(customer_id) = &filter.customer_id {
            selection.and(self.by_customer.get(customer_id.as_str()));
        }
        self.orders.page(&selection, request)
    }

    /// The orders of customer `customer_id`, in creation order (none for a customer
    /// without orders).
    pub fn customer_orders(&self, customer_id: &str) -> impl Iterator<Item = &Order> {
        self.by_customer
            .get(customer_id)
            .into_iter()
            .flat_map(NumberSet::iter)
            .filter_map(|number| self.orders.row(number))
    }

    /// The product `sku`, if it was ever stocked.
    pub fn product(&self, sku: &str) -> Option<&Product> {
        self.products.get(sku)
    }

    /// Every product, in sku order.
    pub fn products(&self) -> impl Iterator<Item = &Product> {
        self.by_sku
            .iter(Listing::Ascending, None)
            .filter_map(|(_, number)| self.products.row(number))
    }

    /// A page of the products in sku order (`request`'s order), keeping only those with
    /// fewer than `below_available` units available when it is given, with how many are
    /// kept in all. The cursor is a sku and a row number: products stocked meanwhile show
    /// up on later pages when their sku comes after it.
    ///
    /// Without `below_available`, a page of the sorted index: O(limit · log products).
    /// With it, the products it leaves out are walked too, and the total counts every
    /// product: O(products).
    pub fn stock(
        &self,
        below_available: Option<u64>,
        request: &PageRequest<Arc<str>>,
    ) -> Page<&Product, Arc<str>> {
        let Some(below) = below_available else {
            return self.products.page_sorted(&self.by_sku, request);
        };
        let kept = |product: &Product| product.available() < below;
        // The products kept, in order from the cursor, with their keys for the next one.
        let mut listed = self
            .by_sku
            .iter(request.order, request.cursor.as_ref())
            .filter_map(|(sku, number)| Some((sku, number, self.products.row(number)?)))
            .filter(|(_, _, product)| kept(product));
        let mut items = Vec::new();
        let mut last = None;
        while items.len() < request.limit {
            let Some((sku, number, product)) = listed.next() else {
                break;
            };
            items.push(product);
            last = Some((sku, number));
        }
        let next = match last {
            Some((sku, number)) if listed.next().is_some() => {
                Some(Cursor::new(Arc::clone(sku), number))
            }
            _ => None,
        };
        Page {
            items,
            total: self.products.rows().filter(|product| kept(product)).count(),
            next,
        }
    }

    /// Reads ahead the orders that events about orders `ids` (in order, at most
    /// [`WARM_KEYS_MAX`](writ_query::collections::WARM_KEYS_MAX)) will change, and the end
    /// of their histories, so that applying them one by one then finds them in the cache.
    /// Changes nothing; unknown ids are skipped. See
    /// [`Projection::warm`](writ_query::Projection::warm).
    pub(crate) fn warm<'a>(&self, ids: impl Iterator<Item = &'a str>) {
        let orders = self.orders.warm(ids);
        // What was read, so that the reads are not optimized away.
        let mut sink = 0usize;
        for order in orders.iter() {
            sink ^= order.id.len() ^ order.items.len();
            sink ^= order.history.last().map_or(0, |event| event.data.len());
        }
        std::hint::black_box(sink);
    }

    // ----- changes, one per event; each checks before it changes anything -----

    /// A draft order was created.
    pub(crate) fn create_order(
        &mut self,
        id: Arc<str>,
        customer_id: Arc<str>,
        customer_name: Arc<str>,
        event: HistoryEvent,
    ) -> Result<(), ApplyError> {
        let mut history = List::new();
        let at = event.at;
        history.push(event);
        let order = Order {
            id,
            customer_id: Arc::clone(&customer_id),
            customer_name,
            status: OrderStatus::Draft,
            items: Vec::new(),
            total_cents: 0,
            cancel_reason: None,
            payment_due_at_ms: None,
            created: at,
            updated: at,
            history,
        };
        let number = self
            .orders
            .insert(order)
            .map_err(|duplicate| ApplyError::Inconsistent {
                detail: format!("order `{}` was already created", duplicate.row.id),
            })?;
        self.by_status[slot(OrderStatus::Draft)].insert_new(number);
        self.current.insert_new(number);
        self.by_customer.insert(customer_id, number);
        Ok(())
    }

    /// An event of order `id`'s stream after its creation.
    pub(crate) fn update_order(
        &mut self,
        id: &str,
        update: OrderUpdate,
        event: HistoryEvent,
    ) -> Result<(), ApplyError> {
        let number = self
            .orders
            .number(id)
            .ok_or_else(|| ApplyError::Inconsistent {
                detail: format!("no order `{id}` was created"),
            })?;
        let order = self.orders.row(number).expect("a number of the table");
        if let OrderUpdate::ItemRemoved(sku) = &update
            && !order.items.iter().any(|item| *item.sku == **sku)
        {
            return Err(ApplyError::Inconsistent {
                detail: format!("order `{id}` has no line of `{sku}` to remove"),
            });
        }
        // Checked: from here on, nothing fails.
        let order = self.orders.row_mut(number).expect("a number of the table");
        let old = order.status;
        match update {
            OrderUpdate::ItemAdded(added) => {
                match order.items.iter_mut().find(|item| item.sku == added.sku) {
                    Some(item) => item.quantity = item.quantity.saturating_add(added.quantity),
                    None => order.items.push(added),
                }
                order.total_cents = total_cents(&order.items);
            }
            OrderUpdate::ItemRemoved(sku) => {
                order.items.retain(|item| *item.sku != *sku);
                order.total_cents = total_cents(&order.items);
            }
            OrderUpdate::Submitted {
                items,
                total_cents,
                payment_due_at_ms,
            } => {
                order.items = items;
                order.total_cents = total_cents;
                order.payment_due_at_ms = Some(payment_due_at_ms);
                order.status = OrderStatus::Submitted;
            }
            OrderUpdate::Reserved { payment_due_at_ms } => {
                order.payment_due_at_ms = Some(payment_due_at_ms);
                order.status = OrderStatus::AwaitingPayment;
            }
            OrderUpdate::Paid => order.status = OrderStatus::Paid,
            OrderUpdate::Shipped => order.status = OrderStatus::Shipped,
            OrderUpdate::Cancelled { reason } => {
                order.cancel_reason = Some(reason);
                order.status = OrderStatus::Cancelled;
            }
        }
        order.updated = event.at;
        order.history.push(event);
        let new = order.status;
        if new != old {
            self.by_status[slot(old)].remove(number);
            self.by_status[slot(new)].insert(number);
            if new.is_final() && !old.is_final() {
                self.current.remove(number);
            } else if old.is_final() && !new.is_final() {
                self.current.insert(number);
            }
        }
        Ok(())
    }

    /// An event of product `sku`'s stream. Like the domain's state it trusts the log's
    /// figures (a release of more than is reserved leaves 0), but a product must have been
    /// stocked before anything else happens to it.
    pub(crate) fn update_stock(
        &mut self,
        sku: &str,
        update: StockUpdate,
    ) -> Result<(), ApplyError> {
        let Some(product) = self.products.get_mut(sku) else {
            let StockUpdate::Added { name, quantity } = update else {
                return Err(ApplyError::Inconsistent {
                    detail: format!("product `{sku}` was never stocked"),
                });
            };
            let sku: Arc<str> = Arc::from(sku);
            let product = Product {
                sku: Arc::clone(&sku),
                name,
                on_hand: quantity,
                reserved: 0,
            };
            let number = self
                .products
                .insert(product)
                .expect("no product has this sku: looked up above");
            self.by_sku.insert(sku, number);
            return Ok(());
        };
        match update {
            StockUpdate::Added { name, quantity } => {
                product.name = name;
                product.on_hand = product.on_hand.saturating_add(quantity);
            }
            StockUpdate::Reserved(quantity) => {
                product.reserved = product.reserved.saturating_add(quantity);
            }
            StockUpdate::Released(quantity) => {
                product.reserved = product.reserved.saturating_sub(quantity);
            }
            StockUpdate::Shipped(quantity) => {
                product.on_hand = product.on_hand.saturating_sub(quantity);
                product.reserved = product.reserved.saturating_sub(quantity);
            }
        }
        Ok(())
    }
}

/// The sum of the items' totals, saturating.
fn total_cents(items: &[Item]) -> u64 {
    items
        .iter()
        .fold(0u64, |sum, item| sum.saturating_add(item.total_cents()))
}

// ----- snapshots -----
//
// The view as `OrdersProjection::save` writes it (snapshot format 1): the orders (each with
// its lines and history; an event type as its place in `OrderEvent::EVENT_TYPES`), the
// sets by status and of current orders, the index by customer, the products, and the
// index by sku. The indexes are written rather than derived, so that loading builds each
// set directly.

impl Stamp {
    fn save(&self, out: &mut Writer) {
        out.varint(self.position);
        out.varint(self.recorded_at_ms);
    }

    fn load(input: &mut Reader<'_>) -> Result<Self, SnapshotError> {
        Ok(Self {
            position: input.varint()?,
            recorded_at_ms: input.varint()?,
        })
    }
}

fn load_status(input: &mut Reader<'_>) -> Result<OrderStatus, SnapshotError> {
    OrderStatus::ALL
        .get(usize::from(input.u8()?))
        .copied()
        .ok_or_else(|| input.invalid("an order status other than 0 to 5"))
}

fn load_event_type(input: &mut Reader<'_>) -> Result<&'static str, SnapshotError> {
    let at = input.usize()?;
    OrderEvent::EVENT_TYPES
        .get(at)
        .copied()
        .ok_or_else(|| input.invalid("an event type this build does not know"))
}

impl Order {
    fn save(&self, out: &mut Writer) {
        out.str(&self.id);
        out.str(&self.customer_id);
        out.str(&self.customer_name);
        out.u8(slot(self.status) as u8);
        out.len_prefix(self.items.len());
        for item in &self.items {
            out.str(&item.sku);
            out.varint(item.quantity);
            out.varint(item.unit_price_cents);
        }
        out.varint(self.total_cents);
        self.cancel_reason.save(out);
        self.payment_due_at_ms.save(out);
        self.created.save(out);
        self.updated.save(out);
        self.history.save_with(out, |out, event| {
            let at = OrderEvent::EVENT_TYPES
                .iter()
                .position(|known| *known == event.event_type)
                .expect("the history holds only the projection's event types");
            out.varint(at as u64);
            event.at.save(out);
            out.str(&event.data);
        });
    }

    fn load(input: &mut Reader<'_>) -> Result<Self, SnapshotError> {
        let id = Arc::<str>::load(input)?;
        let customer_id = Arc::<str>::load(input)?;
        let customer_name = Arc::<str>::load(input)?;
        let status = load_status(input)?;
        let lines = input.count(1 + 1 + 1)?;
        if lines > crate::ORDER_LINES_MAX {
            return Err(input.invalid("an order with more lines than the domain allows"));
        }
        let mut items = Vec::with_capacity(lines);
        for _ in 0..lines {
            items.push(Item {
                sku: Arc::<str>::load(input)?,
                quantity: input.varint()?,
                unit_price_cents: input.varint()?,
            });
        }
        Ok(Self {
            id,
            customer_id,
            customer_name,
            status,
            items,
            total_cents: input.varint()?,
            cancel_reason: Option::<Arc<str>>::load(input)?,
            payment_due_at_ms: Option::<u64>::load(input)?,
            created: Stamp::load(input)?,
            updated: Stamp::load(input)?,
            history: List::load_with(input, 1 + 2 + 1, |input| {
                Ok(HistoryEvent {
                    event_type: load_event_type(input)?,
                    at: Stamp::load(input)?,
                    data: Arc::<str>::load(input)?,
                })
            })?,
        })
    }
}

impl Product {
    fn save(&self, out: &mut Writer) {
        out.str(&self.sku);
        out.str(&self.name);
        out.varint(self.on_hand);
        out.varint(self.reserved);
    }

    fn load(input: &mut Reader<'_>) -> Result<Self, SnapshotError> {
        Ok(Self {
            sku: Arc::<str>::load(input)?,
            name: Arc::<str>::load(input)?,
            on_hand: input.varint()?,
            reserved: input.varint()?,
        })
    }
}

impl OrdersView {
    /// Moves the first order's number from the set of its status to the next set, for
    /// the test that such a view does not load.
    #[cfg(test)]
    pub(crate) fn refile_for_test(&mut self) {
        let (number, status) = self
            .orders
            .iter()
            .map(|(number, order)| (number, order.status))
            .next()
            .expect("an order");
        self.by_status[slot(status)].remove(number);
        self.by_status[(slot(status) + 1) % 6].insert(number);
    }

    /// Writes the view for [`OrdersView::load`] (snapshot format 1).
    pub(crate) fn save(&self, out: &mut Writer) {
        self.orders.save_with(out, |out, order| order.save(out));
        for set in &self.by_status {
            set.save(out);
        }
        self.current.save(out);
        self.by_customer.save(out);
        self.products
            .save_with(out, |out, product| product.save(out));
        self.by_sku.save(out);
    }

    /// Reads a view [`OrdersView::save`] wrote, checking what the queries rely on: every
    /// order and product is there under its number (neither is ever removed), each order
    /// is in the set of its status and, unless final, in the current set, and every index
    /// lists only rows that are there.
    pub(crate) fn load(input: &mut Reader<'_>) -> Result<Self, SnapshotError> {
        let orders = Table::load_with(input, |input, _| Order::load(input))?;
        let mut by_status: [NumberSet; 6] = Default::default();
        for set in &mut by_status {
            *set = NumberSet::load(input)?;
        }
        let current = NumberSet::load(input)?;
        let by_customer = Index::<Arc<str>>::load(input)?;
        let products = Table::load_with(input, |input, _| Product::load(input))?;
        let by_sku = SortedIndex::<Arc<str>>::load(input)?;
        let complete = orders.len() as u64 == orders.next_number()
            && products.len() as u64 == products.next_number();
        let orders_end = orders.next_number();
        let within = |set: &NumberSet, end: u64| set.last().is_none_or(|last| last < end);
        let indexed = by_status.iter().all(|set| within(set, orders_end))
            && within(&current, orders_end)
            && by_customer.iter().all(|(_, set)| within(set, orders_end))
            && by_sku
                .iter(Listing::Ascending, None)
                .all(|(_, number)| number < products.next_number());
        if !complete || !indexed {
            return Err(input.invalid("an index names a row the tables do not hold"));
        }
        let filed = orders.iter().all(|(number, order)| {
            by_status[slot(order.status)].contains(number)
                && current.contains(number) == order.is_current()
        });
        let counted = by_status.iter().map(NumberSet::len).sum::<usize>() == orders.len();
        if !filed || !counted {
            return Err(input.invalid("an order is not in the set of its status"));
        }
        Ok(Self {
            orders,
            by_status,
            current,
            by_customer,
            products,
            by_sku,
        })
    }
}
