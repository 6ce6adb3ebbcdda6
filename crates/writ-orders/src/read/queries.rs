//! The named queries over the [`OrdersView`] and their JSON shapes; the module
//! documentation of [`read`](super) describes them for clients.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use writ_query::paging::{Cursor, CursorKey, Order as Listing, Page, Paging};
use writ_query::{Args, QueryCatalog, QueryError, rfc3339};

use super::view::{CurrentFilter, HistoryEvent, Item, Order, OrdersView, Product};
use crate::OrderStatus;

/// `getOrder`.
pub const GET_ORDER: &str = "getOrder";
/// `currentOrders`.
pub const CURRENT_ORDERS: &str = "currentOrders";
/// `orderHistory`.
pub const ORDER_HISTORY: &str = "orderHistory";
/// `customerOrders`.
pub const CUSTOMER_ORDERS: &str = "customerOrders";
/// `getStock`.
pub const GET_STOCK: &str = "getStock";
/// `listStock`.
pub const LIST_STOCK: &str = "listStock";

/// The default `limit` of `currentOrders` and `listStock`.
pub const PAGE_LIMIT_DEFAULT: u64 = 50;
/// The largest `limit` of `currentOrders` and `listStock`; more is a `bad_argument`.
pub const PAGE_LIMIT_MAX: u64 = 1000;

/// `currentOrders`' `limit` and `cursor`, newest first; it takes no `order`. Cursors are
/// row numbers of the orders table, so they stay valid across snapshots.
const CURRENT_PAGING: Paging = Paging::new(PAGE_LIMIT_DEFAULT as usize, PAGE_LIMIT_MAX as usize)
    .in_order(Listing::NEWEST_FIRST);

/// `listStock`'s `limit` and `cursor`, by sku; it takes no `order`. Cursors are a sku and a
/// row number of the products table.
const STOCK_PAGING: Paging = Paging::new(PAGE_LIMIT_DEFAULT as usize, PAGE_LIMIT_MAX as usize);

/// The orders queries of query API version 1, over the view.
pub fn catalog() -> QueryCatalog<OrdersView> {
    let mut catalog = QueryCatalog::new();
    let _ = catalog
        .version(1)
        .query(GET_ORDER, &["id"], get_order)
        .query(
            CURRENT_ORDERS,
            &["status", "customerId", "limit", "cursor"],
            current_orders,
        )
        .query(ORDER_HISTORY, &["id"], order_history)
        .query(CUSTOMER_ORDERS, &["customerId"], customer_orders)
        .query(GET_STOCK, &["sku"], get_stock)
        .query(
            LIST_STOCK,
            &["belowAvailable", "limit", "cursor"],
            list_stock,
        );
    catalog
}

fn found_order<'v>(view: &'v OrdersView, args: &Args<'_>) -> Result<&'v Order, QueryError> {
    let id = args.required_str("id")?;
    view.order(id)
        .ok_or_else(|| QueryError::not_found(format!("there is no order `{id}`")))
}

fn get_order(view: &OrdersView, args: &Args<'_>) -> Result<Value, QueryError> {
    Ok(order(found_order(view, args)?))
}

fn current_orders(view: &OrdersView, args: &Args<'_>) -> Result<Value, QueryError> {
    // An empty value means the same as leaving the argument out (`?status=` from a form).
    let given = |name: &str| -> Result<Option<&str>, QueryError> {
        Ok(args.str(name)?.filter(|value| !value.is_empty()))
    };
    let status = given("status")?
        .map(|name| {
            OrderStatus::parse(name).ok_or_else(|| {
                QueryError::bad_argument(
                    "status",
                    "must be draft, submitted, awaiting_payment, paid, shipped or cancelled",
                )
            })
        })
        .transpose()?;
    let request = CURRENT_PAGING.request::<()>(args)?;
    if status.is_some_and(OrderStatus::is_final) {
        // A status no current order has: an empty last page, not an error.
        return Ok(json!({"items": [], "cursor": null}));
    }
    let filter = CurrentFilter {
        status,
        customer_id: given("customerId")?.map(str::to_owned),
    };
    Ok(items_and_cursor(
        view.current_orders(&filter, &request),
        order,
    ))
}

fn order_history(view: &OrdersView, args: &Args<'_>) -> Result<Value, QueryError> {
    let order = found_order(view, args)?;
    // A history grows without bound: within the budget of query code (see `Args::array`).
    let mut events = Vec::new();
    for event in order.history.iter() {
        let event = history_event(event)?;
        args.charge(&event)?;
        events.push(event);
    }
    Ok(json!({"id": &*order.id, "events": events}))
}

fn customer_orders(view: &OrdersView, args: &Args<'_>) -> Result<Value, QueryError> {
    let customer_id = args.required_str("customerId")?;
    let mut total_spent_cents = 0u64;
    // A customer's orders grow without bound: within the budget of query code.
    let mut orders = Vec::new();
    for order in view.customer_orders(customer_id) {
        total_spent_cents = total_spent_cents.saturating_add(order.spent_cents());
        let summary = json!({
            "id": &*order.id,
            "status": order.status.as_str(),
            "totalCents": order.total_cents,
        });
        args.charge(&summary)?;
        orders.push(summary);
    }
    Ok(json!({
        "customerId": customer_id,
        "orderCount": orders.len(),
        "totalSpentCents": total_spent_cents,
        "orders": orders,
    }))
}

fn get_stock(view: &OrdersView, args: &Args<'_>) -> Result<Value, QueryError> {
    let sku = args.required_str("sku")?;
    let product = view
        .product(sku)
        .ok_or_else(|| QueryError::not_found(format!("product `{sku}` was never stocked")))?;
    Ok(stock(product))
}

fn list_stock(view: &OrdersView, args: &Args<'_>) -> Result<Value, QueryError> {
    let below_available = args.u64("belowAvailable")?;
    let request = STOCK_PAGING.request::<Arc<str>>(args)?;
    Ok(items_and_cursor(
        view.stock(below_available, &request),
        stock,
    ))
}

// ----- shapes -----

/// A page as the contract's listings answer it: `{"items": [...], "cursor": "..." | null}`
/// (no total: the contract has none).
fn items_and_cursor<T, K: CursorKey>(page: Page<&T, K>, item: impl Fn(&T) -> Value) -> Value {
    json!({
        "items": page.items.into_iter().map(item).collect::<Vec<_>>(),
        "cursor": page.next.as_ref().map(Cursor::encode),
    })
}

fn time(ms: u64) -> Value {
    Value::String(rfc3339::format_millis(ms))
}

/// An order: what `getOrder` answers and `currentOrders` lists.
fn order(o: &Order) -> Value {
    json!({
        "id": &*o.id,
        "customerId": &*o.customer_id,
        "customerName": &*o.customer_name,
        "status": o.status.as_str(),
        "items": o.items.iter().map(item).collect::<Vec<_>>(),
        "totalCents": o.total_cents,
        "cancelReason": o.cancel_reason.as_deref(),
        "paymentDueAt": o.payment_due_at_ms.map(time),
        "createdAt": time(o.created.recorded_at_ms),
        "updatedAt": time(o.updated.recorded_at_ms),
    })
}

fn item(i: &Item) -> Value {
    json!({"sku": &*i.sku, "quantity": i.quantity, "unitPriceCents": i.unit_price_cents})
}

fn history_event(event: &HistoryEvent) -> Result<Value, QueryError> {
    let data: Map<String, Value> = serde_json::from_str(&event.data).map_err(|e| {
        QueryError::failed(format!(
            "the body of event {} does not parse: {e}",
            event.at.position
        ))
    })?;
    Ok(json!({
        "type": event.event_type,
        "position": event.at.position,
        "recordedAt": time(event.at.recorded_at_ms),
        "data": data,
    }))
}

/// A product's stock: what `getStock` answers and `listStock` lists.
fn stock(p: &Product) -> Value {
    json!({
        "sku": &*p.sku,
        "name": &*p.name,
        "onHand": p.on_hand,
        "reserved": p.reserved,
        "available": p.available(),
    })
}
