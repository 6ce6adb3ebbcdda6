//! [`OrdersProjection`]: how the twelve orders events change the [`OrdersView`].

use std::sync::Arc;

use writ_domain::EventSet;
use writ_query::snapshot::{Reader, SnapshotError, Writer};
use writ_query::{ApplyError, Projection, RecordedEvent};

use super::view::{HistoryEvent, Item, OrderUpdate, OrdersView, Stamp, StockUpdate};
use crate::{Line, OrderEvent, OrderId, Sku};

/// The orders projection, `orders`, at version 1: orders with their items and histories,
/// by status, current, by customer; products by sku. Query API version 1 reads it.
///
/// One version so far, so a unit struct; a second structure of the [`OrdersView`] would
/// make it carry its version, as `writ_tickets::read::TicketsProjection` does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OrdersProjection;

impl OrdersProjection {
    /// The projection's name, the first half of its root.
    pub const NAME: &'static str = "orders";
    /// Its version.
    pub const VERSION: u32 = 1;
}

/// An orders event as [`OrdersProjection`] decodes it, ahead of applying (the runtime does
/// that on its reader thread): its body parsed by the domain's own event types (so the
/// read model reads exactly what the write side records), checked against its stream, and
/// the strings the view keeps already allocated.
#[derive(Debug)]
pub struct OrderChange(Change);

#[derive(Debug)]
enum Change {
    Created {
        id: Arc<str>,
        customer_id: Arc<str>,
        customer_name: Arc<str>,
        history: History,
    },
    Order {
        id: String,
        update: OrderUpdate,
        history: History,
    },
    Stock {
        sku: String,
        update: StockUpdate,
    },
}

/// What an order's history keeps of an event, but for its stamp (the event has it).
#[derive(Debug)]
struct History {
    event_type: &'static str,
    data: Arc<str>,
}

impl History {
    fn at(self, event: &RecordedEvent) -> HistoryEvent {
        HistoryEvent {
            event_type: self.event_type,
            at: Stamp {
                position: event.position,
                recorded_at_ms: event.recorded_at_ms,
            },
            data: self.data,
        }
    }
}

/// Refuses an event of stream `stream` about `id` unless the stream is `{prefix}{id}`:
/// the domain records an order's events on its order's stream and a product's on its
/// product's, and the read model files them by the id in their body.
fn check_stream(event: &RecordedEvent, prefix: &str, id: &str) -> Result<(), ApplyError> {
    if event.stream.strip_prefix(prefix) == Some(id) {
        return Ok(());
    }
    Err(ApplyError::Inconsistent {
        detail: format!(
            "{} about `{id}` on stream `{}`, not `{prefix}{id}`",
            event.event_type, event.stream
        ),
    })
}

fn item(line: Line) -> Item {
    Item {
        sku: Arc::from(String::from(line.sku)),
        quantity: line.quantity,
        unit_price_cents: line.unit_price_cents,
    }
}

impl Projection for OrdersProjection {
    type State = OrdersView;
    type Decoded = OrderChange;

    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn version(&self) -> u32 {
        Self::VERSION
    }

    fn event_types(&self) -> &[&'static str] {
        OrderEvent::EVENT_TYPES
    }

    fn initial_state(&self) -> OrdersView {
        OrdersView::new()
    }

    fn snapshot_format(&self) -> Option<u32> {
        Some(1)
    }

    fn save(&self, view: &OrdersView, out: &mut Writer) {
        view.save(out);
    }

    fn load(&self, input: &mut Reader<'_>) -> Result<OrdersView, SnapshotError> {
        OrdersView::load(input)
    }

    /// Warms the orders the events are about, by the id in their stream's name
    /// (`order-{id}`), before they are applied. Products are few and stay in the cache.
    fn warm(&self, view: &OrdersView, events: &[RecordedEvent]) {
        view.warm(
            events
                .iter()
                .filter_map(|event| event.stream.strip_prefix("order-")),
        );
    }

    fn decode(&self, event: &RecordedEvent) -> Result<OrderChange, ApplyError> {
        let decoded = OrderEvent::decode(&event.event_type, &event.data).map_err(|e| {
            ApplyError::InvalidData {
                detail: e.to_string(),
            }
        })?;
        let event_type = decoded.event_type();
        // Decoded above, so the body is UTF-8 JSON: kept as it is for `orderHistory`.
        let history = || -> Result<History, ApplyError> {
            let data = std::str::from_utf8(&event.data).map_err(|e| ApplyError::InvalidData {
                detail: e.to_string(),
            })?;
            Ok(History {
                event_type,
                data: Arc::from(data),
            })
        };
        let order = |id: OrderId, update: OrderUpdate| -> Result<Change, ApplyError> {
            check_stream(event, "order-", id.as_str())?;
            Ok(Change::Order {
                id: String::from(id),
                update,
                history: history()?,
            })
        };
        let stock = |sku: Sku, update: StockUpdate| -> Result<Change, ApplyError> {
            check_stream(event, "product-", sku.as_str())?;
            Ok(Change::Stock {
                sku: String::from(sku),
                update,
            })
        };
        let change = match decoded {
            OrderEvent::OrderCreated(e) => {
                check_stream(event, "order-", e.order_id.as_str())?;
                Change::Created {
                    id: Arc::from(e.order_id.as_str()),
                    customer_id: Arc::from(e.customer_id.as_str()),
                    customer_name: Arc::from(e.customer_name),
                    history: history()?,
                }
            }
            OrderEvent::ItemAdded(e) => order(
                e.order_id,
                OrderUpdate::ItemAdded(item(Line {
                    sku: e.sku,
                    quantity: e.quantity,
                    unit_price_cents: e.unit_price_cents,
                })),
            )?,
            OrderEvent::ItemRemoved(e) => order(
                e.order_id,
                OrderUpdate::ItemRemoved(String::from(e.sku).into_boxed_str()),
            )?,
            OrderEvent::OrderSubmitted(e) => order(
                e.order_id,
                OrderUpdate::Submitted {
                    items: e.lines.into_iter().map(item).collect(),
                    total_cents: e.total_cents,
                    payment_due_at_ms: e.payment_due_at_ms,
                },
            )?,
            OrderEvent::OrderReserved(e) => order(
                e.order_id,
                OrderUpdate::Reserved {
                    payment_due_at_ms: e.payment_due_at_ms,
                },
            )?,
            OrderEvent::OrderPaid(e) => order(e.order_id, OrderUpdate::Paid)?,
            OrderEvent::OrderShipped(e) => order(e.order_id, OrderUpdate::Shipped)?,
            OrderEvent::OrderCancelled(e) => order(
                e.order_id,
                OrderUpdate::Cancelled {
                    reason: Arc::from(e.reason),
                },
            )?,
            OrderEvent::StockAdded(e) => stock(
                e.sku,
                StockUpdate::Added {
                    name: Arc::from(e.name),
                    quantity: e.quantity,
                },
            )?,
            OrderEvent::StockReserved(e) => stock(e.sku, StockUpdate::Reserved(e.quantity))?,
            OrderEvent::StockReleased(e) => stock(e.sku, StockUpdate::Released(e.quantity))?,
            OrderEvent::StockShipped(e) => stock(e.sku, StockUpdate::Shipped(e.quantity))?,
        };
        Ok(OrderChange(change))
    }

    fn apply(
        &self,
        view: &mut OrdersView,
        event: &RecordedEvent,
        decoded: OrderChange,
    ) -> Result<(), ApplyError> {
        match decoded.0 {
            Change::Created {
                id,
                customer_id,
                customer_name,
                history,
            } => view.create_order(id, customer_id, customer_name, history.at(event)),
            Change::Order {
                id,
                update,
                history,
            } => view.update_order(&id, update, history.at(event)),
            Change::Stock { sku, update } => view.update_stock(&sku, update),
        }
    }
}
