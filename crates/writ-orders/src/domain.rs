use std::borrow::Cow;

use writ_domain::{CommandCatalog, Decision, Domain, Envelope, Failure, Refusal, Rejection};

use crate::commands::{
    AddItem, AddStock, CancelOrder, CreateOrder, ExpireOrder, RecordPayment, RemoveItem,
    ReserveOrder, ShipOrder, SubmitOrder,
};
use crate::events::{
    ItemAdded, ItemRemoved, Line, OrderCancelled, OrderCreated, OrderPaid, OrderReserved,
    OrderShipped, OrderSubmitted, StockAdded, StockReleased, StockReserved, StockShipped,
};
use crate::{
    CENTS_MAX, ORDER_LINES_MAX, OUT_OF_STOCK, OrderCommand, OrderEvent, OrderId, OrderState,
    OrderStatus, OrdersState, PAYMENT_TIMEOUT, ProductState, QUANTITY_MAX, Sku, codes,
};

/// The orders domain (`writ serve --domain orders`): products with stock, and orders that
/// reserve it.
///
/// An order lives on `order-{orderId}`, a product's stock on `product-{sku}`. Every
/// command's own stream (its target, the one `expectedVersion` is checked against) is
/// its order's, but `AddStock`'s, which is its product's. `ReserveOrder`, `ShipOrder`,
/// `CancelOrder` and `ExpireOrder` also change the streams of the order's products: they
/// read them and record on them in one decision, which the single writer makes atomic
/// (all the events or none, and no other command in between).
///
/// When several rules apply to a command, the first that fails decides the code, in this
/// order:
///
/// 1. existence: the order must exist (`order_not_found`), or for `CreateOrder` must not
///    (`order_exists`);
/// 2. state: the order's status must allow the command (`order_not_draft`,
///    `order_not_awaiting_payment`, `order_not_paid`, `order_cancelled`,
///    `order_shipped`, and `order_not_submitted` for the internal `ReserveOrder`);
/// 3. fields, in the payload's order: `customer_required`, `quantity_invalid` (before
///    `order_too_large`), `item_not_found`, `order_empty`, `amount_mismatch`.
///
/// Running out of stock is not a rejection: `ReserveOrder` succeeds by cancelling the
/// order with reason `out_of_stock`.
///
/// Amounts are bounded so that they stay exact everywhere, JavaScript included: a line's
/// quantity and a product's stock at most [`QUANTITY_MAX`], an order's total at most
/// [`CENTS_MAX`] cents (both 2^53 − 1), an order at most [`ORDER_LINES_MAX`] lines.
/// Beyond them a command is rejected (`quantity_invalid`, `order_too_large`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Orders;

/// The stream an order lives on: `order-{id}`.
pub fn order_stream(id: &OrderId) -> String {
    format!("order-{id}")
}

/// The stream a product's stock lives on: `product-{sku}`.
pub fn product_stream(sku: &Sku) -> String {
    format!("product-{sku}")
}

impl Domain for Orders {
    const NAME: &'static str = "orders";
    const STREAM_PREFIXES: &'static [&'static str] = &["order-", "product-"];
    type Command = OrderCommand;
    type Event = OrderEvent;
    type State = OrdersState;

    fn commands() -> CommandCatalog<OrderCommand> {
        CommandCatalog::new()
            .command("AddStock", 1, OrderCommand::AddStock)
            .command("CreateOrder", 1, OrderCommand::CreateOrder)
            .command("AddItem", 1, OrderCommand::AddItem)
            .command("RemoveItem", 1, OrderCommand::RemoveItem)
            .command("SubmitOrder", 1, OrderCommand::SubmitOrder)
            .command("RecordPayment", 1, OrderCommand::RecordPayment)
            .command("ShipOrder", 1, OrderCommand::ShipOrder)
            .command("CancelOrder", 1, OrderCommand::CancelOrder)
            .internal("ReserveOrder", 1, OrderCommand::ReserveOrder)
            .internal("ExpireOrder", 1, OrderCommand::ExpireOrder)
    }

    fn stream(command: &OrderCommand) -> Cow<'_, str> {
        let order_id = match command {
            OrderCommand::AddStock(c) => return Cow::Owned(product_stream(&c.sku)),
            OrderCommand::CreateOrder(c) => &c.order_id,
            OrderCommand::AddItem(c) => &c.order_id,
            OrderCommand::RemoveItem(c) => &c.order_id,
            OrderCommand::SubmitOrder(c) => &c.order_id,
            OrderCommand::RecordPayment(c) => &c.order_id,
            OrderCommand::ShipOrder(c) => &c.order_id,
            OrderCommand::CancelOrder(c) => &c.order_id,
            OrderCommand::ReserveOrder(c) => &c.order_id,
            OrderCommand::ExpireOrder(c) => &c.order_id,
        };
        Cow::Owned(order_stream(order_id))
    }

    fn evolve(state: &mut OrdersState, event: &OrderEvent) {
        state.apply(event);
    }

    fn decide(decision: &mut Decision<'_, Self>, command: &OrderCommand) -> Result<(), Refusal> {
        let state = decision.state();
        let event = match command {
            OrderCommand::AddStock(c) => add_stock(state, c)?,
            OrderCommand::CreateOrder(c) => create(state, c)?,
            OrderCommand::AddItem(c) => add_item(state, c)?,
            OrderCommand::RemoveItem(c) => remove_item(state, c)?,
            OrderCommand::SubmitOrder(c) => submit(state, c, decision.envelope())?,
            OrderCommand::RecordPayment(c) => pay(state, c)?,
            OrderCommand::ShipOrder(c) => return ship(decision, c),
            OrderCommand::CancelOrder(c) => return cancel(decision, c),
            OrderCommand::ReserveOrder(c) => return reserve(decision, c),
            OrderCommand::ExpireOrder(c) => return expire(decision, c),
        };
        decision.record(event);
        Ok(())
    }
}

fn add_stock(state: &OrdersState, c: &AddStock) -> Result<OrderEvent, Refusal> {
    let on_hand = match state {
        OrdersState::Empty => 0,
        OrdersState::Product(product) => product.on_hand(),
        OrdersState::Order(_) => return Err(wrong_kind(&product_stream(&c.sku), "a product")),
    };
    let quantity = positive_quantity(c.quantity)?;
    if on_hand.saturating_add(quantity) > QUANTITY_MAX {
        return Err(Rejection::new(
            codes::QUANTITY_INVALID,
            format!(
                "product {} would hold more than {QUANTITY_MAX} units",
                c.sku
            ),
        )
        .into());
    }
    Ok(StockAdded {
        sku: c.sku.clone(),
        name: c.name.clone(),
        quantity,
    }
    .into())
}

fn create(state: &OrdersState, c: &CreateOrder) -> Result<OrderEvent, Refusal> {
    if *state != OrdersState::Empty {
        return Err(Rejection::new(
            codes::ORDER_EXISTS,
            format!("order {} already exists", c.order_id),
        )
        .into());
    }
    if is_blank(c.customer_id.as_str()) || is_blank(&c.customer_name) {
        return Err(Rejection::new(
            codes::CUSTOMER_REQUIRED,
            "an order needs a customerId and a customerName that are not only whitespace",
        )
        .into());
    }
    Ok(OrderCreated {
        order_id: c.order_id.clone(),
        customer_id: c.customer_id.clone(),
        customer_name: c.customer_name.clone(),
    }
    .into())
}

fn add_item(state: &OrdersState, c: &AddItem) -> Result<OrderEvent, Refusal> {
    let order = existing(state, &c.order_id)?;
    draft(order, &c.order_id)?;
    let quantity = positive_quantity(c.quantity)?;
    let (line_quantity, unit_price_cents) = match order.line(&c.sku) {
        Some(line) => (
            line.quantity.saturating_add(quantity),
            line.unit_price_cents,
        ),
        None => (quantity, c.unit_price_cents),
    };
    if line_quantity > QUANTITY_MAX {
        return Err(Rejection::new(
            codes::QUANTITY_INVALID,
            format!(
                "the line of {} would hold more than {QUANTITY_MAX} units",
                c.sku
            ),
        )
        .into());
    }
    if order.line(&c.sku).is_none() && order.lines().len() >= ORDER_LINES_MAX {
        return Err(Rejection::new(
            codes::ORDER_TOO_LARGE,
            format!(
                "order {} has {ORDER_LINES_MAX} lines, the most an order may have",
                c.order_id
            ),
        )
        .into());
    }
    let total =
        u128::from(order.total_cents()) + u128::from(quantity) * u128::from(unit_price_cents);
    if total > u128::from(CENTS_MAX) {
        return Err(Rejection::new(
            codes::ORDER_TOO_LARGE,
            format!("order {}'s total would pass {CENTS_MAX} cents", c.order_id),
        )
        .into());
    }
    Ok(ItemAdded {
        order_id: c.order_id.clone(),
        sku: c.sku.clone(),
        quantity,
        unit_price_cents,
    }
    .into())
}

fn remove_item(state: &OrdersState, c: &RemoveItem) -> Result<OrderEvent, Refusal> {
    let order = existing(state, &c.order_id)?;
    draft(order, &c.order_id)?;
    if order.line(&c.sku).is_none() {
        return Err(Rejection::new(
            codes::ITEM_NOT_FOUND,
            format!("order {} has no line of {}", c.order_id, c.sku),
        )
        .into());
    }
    Ok(ItemRemoved {
        order_id: c.order_id.clone(),
        sku: c.sku.clone(),
    }
    .into())
}

fn submit(
    state: &OrdersState,
    c: &SubmitOrder,
    envelope: &Envelope,
) -> Result<OrderEvent, Refusal> {
    let order = existing(state, &c.order_id)?;
    draft(order, &c.order_id)?;
    if order.lines().is_empty() {
        return Err(Rejection::new(
            codes::ORDER_EMPTY,
            format!("order {} has no lines", c.order_id),
        )
        .into());
    }
    Ok(OrderSubmitted {
        order_id: c.order_id.clone(),
        lines: order.lines().to_vec(),
        total_cents: order.total_cents(),
        payment_due_at_ms: envelope
            .recorded_at_ms
            .saturating_add(u64::from(c.payment_due_seconds) * 1000),
    }
    .into())
}

fn pay(state: &OrdersState, c: &RecordPayment) -> Result<OrderEvent, Refusal> {
    let order = existing(state, &c.order_id)?;
    if order.status() != OrderStatus::AwaitingPayment {
        return Err(not_awaiting_payment(&c.order_id, order.status()));
    }
    let total = order.total_cents();
    if u64::try_from(c.amount_cents) != Ok(total) {
        return Err(Rejection::new(
            codes::AMOUNT_MISMATCH,
            format!(
                "order {} totals {total} cents; the payment was {} cents",
                c.order_id, c.amount_cents
            ),
        )
        .with_detail("totalCents", total)
        .with_detail("amountCents", c.amount_cents)
        .into());
    }
    Ok(OrderPaid {
        order_id: c.order_id.clone(),
        amount_cents: total,
    }
    .into())
}

fn ship(decision: &mut Decision<'_, Orders>, c: &ShipOrder) -> Result<(), Refusal> {
    let order = existing(decision.state(), &c.order_id)?;
    if order.status() != OrderStatus::Paid {
        return Err(Rejection::new(
            codes::ORDER_NOT_PAID,
            format!("order {} is {}, not paid", c.order_id, order.status()),
        )
        .into());
    }
    let lines = order.lines().to_vec();
    check_reserved(decision, &c.order_id, &lines)?;
    decision.record(
        OrderShipped {
            order_id: c.order_id.clone(),
        }
        .into(),
    );
    for line in lines {
        decision.record_on(
            product_stream(&line.sku),
            StockShipped {
                sku: line.sku,
                order_id: c.order_id.clone(),
                quantity: line.quantity,
            }
            .into(),
        );
    }
    Ok(())
}

fn cancel(decision: &mut Decision<'_, Orders>, c: &CancelOrder) -> Result<(), Refusal> {
    let order = existing(decision.state(), &c.order_id)?;
    match order.status() {
        OrderStatus::Cancelled => Err(Rejection::new(
            codes::ORDER_CANCELLED,
            format!("order {} is already cancelled", c.order_id),
        )
        .into()),
        OrderStatus::Shipped => Err(Rejection::new(
            codes::ORDER_SHIPPED,
            format!("order {} has shipped", c.order_id),
        )
        .into()),
        status => {
            let held = if status.holds_reservation() {
                order.lines().to_vec()
            } else {
                Vec::new()
            };
            cancel_releasing(decision, &c.order_id, &c.reason, held)
        }
    }
}

fn reserve(decision: &mut Decision<'_, Orders>, c: &ReserveOrder) -> Result<(), Refusal> {
    let order = existing(decision.state(), &c.order_id)?;
    if order.status() != OrderStatus::Submitted {
        return Err(Rejection::new(
            codes::ORDER_NOT_SUBMITTED,
            format!("order {} is {}, not submitted", c.order_id, order.status()),
        )
        .into());
    }
    let payment_due_at_ms = order.payment_due_at_ms().ok_or_else(|| Failure {
        message: format!("submitted order {} has no payment due time", c.order_id),
    })?;
    let lines = order.lines().to_vec();
    // All lines or none: look at every product before recording anything. An order has
    // one line per sku, so no product is counted twice.
    for line in &lines {
        let available = decision
            .state_of(&product_stream(&line.sku))?
            .product()
            .map_or(0, ProductState::available);
        if available < line.quantity {
            decision.record(
                OrderCancelled {
                    order_id: c.order_id.clone(),
                    reason: OUT_OF_STOCK.to_owned(),
                }
                .into(),
            );
            return Ok(());
        }
    }
    decision.record(
        OrderReserved {
            order_id: c.order_id.clone(),
            payment_due_at_ms,
        }
        .into(),
    );
    for line in lines {
        decision.record_on(
            product_stream(&line.sku),
            StockReserved {
                sku: line.sku,
                order_id: c.order_id.clone(),
                quantity: line.quantity,
            }
            .into(),
        );
    }
    Ok(())
}

fn expire(decision: &mut Decision<'_, Orders>, c: &ExpireOrder) -> Result<(), Refusal> {
    let order = existing(decision.state(), &c.order_id)?;
    if order.status() != OrderStatus::AwaitingPayment {
        return Err(not_awaiting_payment(&c.order_id, order.status()));
    }
    let held = order.lines().to_vec();
    cancel_releasing(decision, &c.order_id, PAYMENT_TIMEOUT, held)
}

/// Records `OrderCancelled` with `reason`, then releases what the order held.
fn cancel_releasing(
    decision: &mut Decision<'_, Orders>,
    order_id: &OrderId,
    reason: &str,
    held: Vec<Line>,
) -> Result<(), Refusal> {
    check_reserved(decision, order_id, &held)?;
    decision.record(
        OrderCancelled {
            order_id: order_id.clone(),
            reason: reason.to_owned(),
        }
        .into(),
    );
    for line in held {
        decision.record_on(
            product_stream(&line.sku),
            StockReleased {
                sku: line.sku,
                order_id: order_id.clone(),
                quantity: line.quantity,
            }
            .into(),
        );
    }
    Ok(())
}

/// Fails (the log disagrees with the rules) unless every product of `lines` holds the
/// line's quantity reserved and on hand: what an order that holds a reservation may
/// release or ship.
fn check_reserved(
    decision: &mut Decision<'_, Orders>,
    order_id: &OrderId,
    lines: &[Line],
) -> Result<(), Refusal> {
    for line in lines {
        let stream = product_stream(&line.sku);
        let (reserved, on_hand) = decision
            .state_of(&stream)?
            .product()
            .map_or((0, 0), |p| (p.reserved(), p.on_hand()));
        if reserved < line.quantity || on_hand < line.quantity {
            return Err(Failure {
                message: format!(
                    "order {order_id} holds {} units of {}, but the product has {reserved} reserved and {on_hand} on hand",
                    line.quantity, line.sku
                ),
            }
            .into());
        }
    }
    Ok(())
}

/// The order of an order's stream, or `order_not_found`.
fn existing<'s>(state: &'s OrdersState, id: &OrderId) -> Result<&'s OrderState, Refusal> {
    match state {
        OrdersState::Order(order) => Ok(order),
        OrdersState::Empty => {
            Err(Rejection::new(codes::ORDER_NOT_FOUND, format!("no order {id}")).into())
        }
        OrdersState::Product(_) => Err(wrong_kind(&order_stream(id), "an order")),
    }
}

fn draft(order: &OrderState, id: &OrderId) -> Result<(), Refusal> {
    if order.status() == OrderStatus::Draft {
        Ok(())
    } else {
        Err(Rejection::new(
            codes::ORDER_NOT_DRAFT,
            format!("order {id} is {}, not a draft", order.status()),
        )
        .into())
    }
}

fn not_awaiting_payment(id: &OrderId, status: OrderStatus) -> Refusal {
    Rejection::new(
        codes::ORDER_NOT_AWAITING_PAYMENT,
        format!("order {id} is {status}, not awaiting payment"),
    )
    .into()
}

/// `quantity` as a count, or `quantity_invalid` when it is below 1.
fn positive_quantity(quantity: i64) -> Result<u64, Refusal> {
    match u64::try_from(quantity) {
        Ok(quantity) if quantity >= 1 => Ok(quantity),
        _ => Err(Rejection::new(
            codes::QUANTITY_INVALID,
            format!("a quantity must be at least 1, got {quantity}"),
        )
        .into()),
    }
}

/// A stream that holds the other kind of state: impossible while only these rules write.
fn wrong_kind(stream: &str, expected: &str) -> Refusal {
    Failure {
        message: format!("stream {stream} does not hold {expected}"),
    }
    .into()
}

/// Empty or only Unicode whitespace (`char::is_whitespace`).
fn is_blank(s: &str) -> bool {
    s.trim().is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CustomerId;

    fn sku(s: &str) -> Sku {
        Sku::new(s).unwrap()
    }

    fn order_id(s: &str) -> OrderId {
        OrderId::new(s).unwrap()
    }

    #[test]
    fn evolve_never_panics_on_events_out_of_order_or_on_the_wrong_stream() {
        let events: Vec<OrderEvent> = vec![
            StockReleased {
                sku: sku("a"),
                order_id: order_id("o"),
                quantity: 5,
            }
            .into(),
            OrderPaid {
                order_id: order_id("o"),
                amount_cents: 1,
            }
            .into(),
            StockShipped {
                sku: sku("a"),
                order_id: order_id("o"),
                quantity: u64::MAX,
            }
            .into(),
            ItemAdded {
                order_id: order_id("o"),
                sku: sku("a"),
                quantity: u64::MAX,
                unit_price_cents: u64::MAX,
            }
            .into(),
            ItemAdded {
                order_id: order_id("o"),
                sku: sku("a"),
                quantity: u64::MAX,
                unit_price_cents: 1,
            }
            .into(),
            StockAdded {
                sku: sku("a"),
                name: "A".into(),
                quantity: u64::MAX,
            }
            .into(),
            StockAdded {
                sku: sku("a"),
                name: "A".into(),
                quantity: 1,
            }
            .into(),
        ];
        let mut state = OrdersState::default();
        for event in &events {
            Orders::evolve(&mut state, event);
        }
        let product = state.product().expect("the last events were a product's");
        assert_eq!(product.on_hand(), u64::MAX);
        assert_eq!(product.available(), u64::MAX);
        // An order created after stray events starts afresh.
        Orders::evolve(
            &mut state,
            &OrderCreated {
                order_id: order_id("o"),
                customer_id: CustomerId::new("c").unwrap(),
                customer_name: "C".into(),
            }
            .into(),
        );
        let order = state.order().unwrap();
        assert_eq!(order.status(), OrderStatus::Draft);
        assert!(order.lines().is_empty());
    }

    #[test]
    fn totals_saturate_instead_of_overflowing() {
        let mut state = OrdersState::default();
        for _ in 0..2 {
            Orders::evolve(
                &mut state,
                &ItemAdded {
                    order_id: order_id("o"),
                    sku: sku("a"),
                    quantity: u64::MAX / 2,
                    unit_price_cents: 3,
                }
                .into(),
            );
        }
        assert_eq!(state.order().unwrap().total_cents(), u64::MAX);
    }

    #[test]
    fn blank_means_empty_or_unicode_whitespace() {
        for blank in ["", " ", "\t\r\n", "\u{a0}", "\u{3000}"] {
            assert!(is_blank(blank), "{blank:?}");
        }
        for text in ["x", " x ", "\u{200b}"] {
            assert!(!is_blank(text), "{text:?}");
        }
    }
}
