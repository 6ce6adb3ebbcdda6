//! [`OrderFulfilment`]: the process that follows a submitted order.

use writ_domain::{Process, Reaction};

use crate::OrderEvent;
use crate::commands::{ExpireOrder, ReserveOrder};
use crate::events::{OrderCancelled, OrderPaid, OrderReserved, OrderSubmitted};

writ_domain::event_set! {
    /// The events [`OrderFulfilment`] reacts to: the engine gives it only these types.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum FulfilmentEvent {
        /// See [`OrderSubmitted`].
        OrderSubmitted(OrderSubmitted),
        /// See [`OrderReserved`].
        OrderReserved(OrderReserved),
        /// See [`OrderPaid`].
        OrderPaid(OrderPaid),
        /// See [`OrderCancelled`].
        OrderCancelled(OrderCancelled),
    }
}

impl FulfilmentEvent {
    /// The event as the process sees it, if it is one of its types.
    pub fn of(event: &OrderEvent) -> Option<Self> {
        match event {
            OrderEvent::OrderSubmitted(e) => Some(Self::OrderSubmitted(e.clone())),
            OrderEvent::OrderReserved(e) => Some(Self::OrderReserved(e.clone())),
            OrderEvent::OrderPaid(e) => Some(Self::OrderPaid(e.clone())),
            OrderEvent::OrderCancelled(e) => Some(Self::OrderCancelled(e.clone())),
            _ => None,
        }
    }
}

/// Follows a submitted order: reserves its stock, and cancels it when its payment does not
/// come in time.
///
/// | event | reaction |
/// |---|---|
/// | `OrderSubmitted` | issues `ReserveOrder {orderId}` (internal): reserve every line, or cancel with `out_of_stock` |
/// | `OrderReserved` | schedules `ExpireOrder {orderId}` (internal) at `paymentDueAtMs`, a durable timer keyed by the order id |
/// | `OrderPaid` | cancels the order's timer |
/// | `OrderCancelled` | cancels the order's timer (if it has none, nothing happens) |
///
/// The process keeps no state: the due time travels in `OrderReserved`, and the commands
/// it issues read the order and its products when they run. Their ids are derived from
/// the events that caused them, so each runs once across crashes; the engine records
/// them with origin `process` (or `timer`), the causing command as their `causationId`,
/// and the client's `SubmitOrder` as their `correlationId`.
///
/// Register it beside the domain (see [`crate::processes`]): without it, submitted
/// orders stay `submitted`.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrderFulfilment;

impl Process for OrderFulfilment {
    const NAME: &'static str = "order-fulfilment";
    type Event = FulfilmentEvent;

    fn react(event: &FulfilmentEvent, reaction: &mut Reaction<'_>) {
        match event {
            FulfilmentEvent::OrderSubmitted(e) => reaction.issue(
                "ReserveOrder",
                &ReserveOrder {
                    order_id: e.order_id.clone(),
                },
            ),
            FulfilmentEvent::OrderReserved(e) => reaction.schedule(
                e.order_id.as_str(),
                e.payment_due_at_ms,
                "ExpireOrder",
                &ExpireOrder {
                    order_id: e.order_id.clone(),
                },
            ),
            FulfilmentEvent::OrderPaid(OrderPaid { order_id, .. })
            | FulfilmentEvent::OrderCancelled(OrderCancelled { order_id, .. }) => {
                reaction.cancel(order_id.as_str());
            }
        }
    }
}
