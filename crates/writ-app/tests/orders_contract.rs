//! The contract's orders section, as an outside suite checks it over HTTP: `writ serve
//! --domain orders` (the binary's modules through `writ_app::App`) on in-memory storage,
//! called through the router without a socket. Commands and every rejection code,
//! commands refused before they are logged, the process that follows a submitted order
//! (reservation, out of stock, a short `paymentDueSeconds`, payment and shipping,
//! cancellation), the six queries named and as query code, causation metadata, and
//! `expectedVersion`.

mod support;

use axum::http::StatusCode;
use serde_json::{Value, json};
use support::{Harness, call, get};
use uuid::Uuid;
use writ_query::rfc3339::format_millis;

fn orders() -> Harness {
    Harness::start(&["orders"])
}

/// `(stream, type)` of the events a command status lists.
fn recorded(status: &Value) -> Vec<(String, String)> {
    status["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["stream"].as_str().unwrap().to_owned(),
                e["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(s, t)| ((*s).to_owned(), (*t).to_owned()))
        .collect()
}

#[tokio::test]
async fn every_orders_command_succeeds_recording_the_events_of_its_streams() {
    let h = orders();
    let status = h.add_stock("pen", 5).await;
    assert_eq!(recorded(&status), pairs(&[("product-pen", "StockAdded")]));
    h.add_stock("ink", 3).await;

    let status = h
        .ok(
            "CreateOrder",
            json!({"orderId": "o-1", "customerId": "c-1", "customerName": "Ada"}),
        )
        .await;
    assert_eq!(recorded(&status), pairs(&[("order-o-1", "OrderCreated")]));
    for (sku, quantity, price) in [("pen", 2, 150), ("ink", 1, 300), ("cup", 1, 50)] {
        let status = h
            .ok(
                "AddItem",
                json!({"orderId": "o-1", "sku": sku, "quantity": quantity, "unitPriceCents": price}),
            )
            .await;
        assert_eq!(recorded(&status), pairs(&[("order-o-1", "ItemAdded")]));
    }
    let status = h
        .ok("RemoveItem", json!({"orderId": "o-1", "sku": "cup"}))
        .await;
    assert_eq!(recorded(&status), pairs(&[("order-o-1", "ItemRemoved")]));

    let status = h.submit_order("o-1", None).await;
    assert_eq!(recorded(&status), pairs(&[("order-o-1", "OrderSubmitted")]));
    assert_eq!(h.order_status("o-1").await, "awaiting_payment");

    let status = h
        .ok(
            "RecordPayment",
            json!({"orderId": "o-1", "amountCents": 600}),
        )
        .await;
    assert_eq!(recorded(&status), pairs(&[("order-o-1", "OrderPaid")]));
    assert_eq!(h.order_status("o-1").await, "paid");

    let status = h.ok("ShipOrder", json!({"orderId": "o-1"})).await;
    assert_eq!(
        recorded(&status),
        pairs(&[
            ("order-o-1", "OrderShipped"),
            ("product-pen", "StockShipped"),
            ("product-ink", "StockShipped"),
        ])
    );
    assert_eq!(h.order_status("o-1").await, "shipped");

    h.draft("o-2", "c-1", &[("pen", 1, 150)]).await;
    let status = h
        .ok(
            "CancelOrder",
            json!({"orderId": "o-2", "reason": "changed my mind"}),
        )
        .await;
    assert_eq!(recorded(&status), pairs(&[("order-o-2", "OrderCancelled")]));
    assert_eq!(h.order_status("o-2").await, "cancelled");

    // A final status carries the position that includes the command's effects.
    let last = h.events().await.last().unwrap()["position"].clone();
    assert_eq!(status["position"], last);
}

#[tokio::test]
async fn every_rejection_code_of_the_orders_table() {
    let h = orders();
    h.add_stock("pen", 10).await;
    h.draft("o-draft", "c-1", &[("pen", 1, 100)]).await;
    h.draft("o-empty", "c-1", &[]).await;
    h.draft("o-await", "c-1", &[("pen", 1, 100)]).await;
    h.submit_order("o-await", None).await;
    h.draft("o-cancel", "c-1", &[("pen", 1, 100)]).await;
    h.ok(
        "CancelOrder",
        json!({"orderId": "o-cancel", "reason": "not needed"}),
    )
    .await;
    h.draft("o-ship", "c-1", &[("pen", 1, 100)]).await;
    h.submit_order("o-ship", None).await;
    h.ok(
        "RecordPayment",
        json!({"orderId": "o-ship", "amountCents": 100}),
    )
    .await;
    h.ok("ShipOrder", json!({"orderId": "o-ship"})).await;
    let before = h.events().await.len();
    let stock_before = h.stock("pen").await;

    let item = |order: &str, sku: &str, quantity: i64| json!({"orderId": order, "sku": sku, "quantity": quantity, "unitPriceCents": 100});
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "AddStock",
            json!({"sku": "pen", "name": "Pen", "quantity": 0}),
            "quantity_invalid",
        ),
        (
            "AddStock",
            json!({"sku": "pen", "name": "Pen", "quantity": -3}),
            "quantity_invalid",
        ),
        (
            "CreateOrder",
            json!({"orderId": "o-draft", "customerId": "c-2", "customerName": "Bo"}),
            "order_exists",
        ),
        (
            "CreateOrder",
            json!({"orderId": "o-new", "customerId": "", "customerName": "Bo"}),
            "customer_required",
        ),
        (
            "CreateOrder",
            json!({"orderId": "o-new", "customerId": "c-2", "customerName": "  "}),
            "customer_required",
        ),
        ("AddItem", item("o-none", "pen", 1), "order_not_found"),
        ("AddItem", item("o-await", "pen", 1), "order_not_draft"),
        ("AddItem", item("o-draft", "pen", 0), "quantity_invalid"),
        ("AddItem", item("o-draft", "pen", -1), "quantity_invalid"),
        (
            "RemoveItem",
            json!({"orderId": "o-none", "sku": "pen"}),
            "order_not_found",
        ),
        (
            "RemoveItem",
            json!({"orderId": "o-await", "sku": "pen"}),
            "order_not_draft",
        ),
        (
            "RemoveItem",
            json!({"orderId": "o-draft", "sku": "ink"}),
            "item_not_found",
        ),
        (
            "SubmitOrder",
            json!({"orderId": "o-none"}),
            "order_not_found",
        ),
        (
            "SubmitOrder",
            json!({"orderId": "o-await"}),
            "order_not_draft",
        ),
        ("SubmitOrder", json!({"orderId": "o-empty"}), "order_empty"),
        (
            "RecordPayment",
            json!({"orderId": "o-none", "amountCents": 100}),
            "order_not_found",
        ),
        (
            "RecordPayment",
            json!({"orderId": "o-draft", "amountCents": 100}),
            "order_not_awaiting_payment",
        ),
        (
            "RecordPayment",
            json!({"orderId": "o-cancel", "amountCents": 100}),
            "order_not_awaiting_payment",
        ),
        (
            "RecordPayment",
            json!({"orderId": "o-await", "amountCents": 99}),
            "amount_mismatch",
        ),
        (
            "RecordPayment",
            json!({"orderId": "o-await", "amountCents": -100}),
            "amount_mismatch",
        ),
        ("ShipOrder", json!({"orderId": "o-none"}), "order_not_found"),
        ("ShipOrder", json!({"orderId": "o-await"}), "order_not_paid"),
        ("ShipOrder", json!({"orderId": "o-draft"}), "order_not_paid"),
        (
            "CancelOrder",
            json!({"orderId": "o-none", "reason": "r"}),
            "order_not_found",
        ),
        (
            "CancelOrder",
            json!({"orderId": "o-cancel", "reason": "r"}),
            "order_cancelled",
        ),
        (
            "CancelOrder",
            json!({"orderId": "o-ship", "reason": "r"}),
            "order_shipped",
        ),
    ];
    for (command, payload, code) in cases {
        assert_eq!(
            h.rejected(command, payload.clone()).await,
            code,
            "{command} {payload}"
        );
    }

    // Rejections change nothing.
    assert_eq!(h.events().await.len(), before);
    assert_eq!(h.stock("pen").await, stock_before);
    assert_eq!(h.order_status("o-await").await, "awaiting_payment");
    assert_eq!(
        h.query(1, "getOrder?id=o-new").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn unknown_internal_and_ill_fitting_commands_are_422_and_malformed_ones_400() {
    let h = orders();
    h.add_stock("pen", 5).await;
    h.draft("o-1", "c-1", &[("pen", 1, 100)]).await;
    h.submit_order("o-1", None).await;
    let before = h.events().await.len();

    let command = |name: &str, payload: Value| json!({"id": Uuid::new_v4(), "command": name, "payload": payload});
    let unprocessable = [
        command("Nope", json!({})),
        // The process's own commands are not the clients' to send.
        command("ReserveOrder", json!({"orderId": "o-1"})),
        command("ExpireOrder", json!({"orderId": "o-1"})),
        json!({"id": Uuid::new_v4(), "command": "AddStock", "version": 2,
            "payload": {"sku": "pen", "name": "Pen", "quantity": 1}}),
        command(
            "AddItem",
            json!({"orderId": "o-1", "sku": "pen", "quantity": 1, "unitPriceCents": -1}),
        ),
        command(
            "AddItem",
            json!({"orderId": "o-1", "sku": "pen", "quantity": "2", "unitPriceCents": 1}),
        ),
        command(
            "AddItem",
            json!({"orderId": "o-1", "sku": "pen", "quantity": 1.5, "unitPriceCents": 1}),
        ),
        command("AddStock", json!({"sku": "pen", "quantity": 1})),
        command(
            "CreateOrder",
            json!({"orderId": "o-2", "customerId": "c", "customerName": "C", "vip": true}),
        ),
        command(
            "SubmitOrder",
            json!({"orderId": "o-1", "paymentDueSeconds": -1}),
        ),
        command(
            "CreateOrder",
            json!({"orderId": "", "customerId": "c", "customerName": "C"}),
        ),
        command("RecordPayment", json!({"orderId": "o-1"})),
    ];
    for body in unprocessable {
        let (status, code) = h.refused(&body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {code}");
    }

    let id = Uuid::new_v4();
    let malformed = [
        "{not json".to_owned(),
        json!({"command": "AddStock", "payload": {"sku": "pen", "name": "Pen", "quantity": 1}})
            .to_string(),
        json!({"id": "not-a-uuid", "command": "AddStock", "payload": {}}).to_string(),
        json!({"id": id, "payload": {"sku": "pen", "name": "Pen", "quantity": 1}}).to_string(),
    ];
    for body in malformed {
        let answer = call(&h.app, support::post_json("/update", body.clone())).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer.content_type(), "application/problem+json");
    }

    assert_eq!(h.events().await.len(), before, "nothing was logged or run");
    assert_eq!(h.order_status("o-1").await, "awaiting_payment");
}

#[tokio::test]
async fn adding_a_sku_again_adds_to_its_quantity_at_the_first_price() {
    let h = orders();
    h.draft(
        "o-1",
        "c-1",
        &[("pen", 2, 150), ("ink", 1, 300), ("pen", 3, 999)],
    )
    .await;
    let order = h.query_ok("getOrder?id=o-1").await;
    assert_eq!(
        order["items"],
        json!([
            {"sku": "pen", "quantity": 5, "unitPriceCents": 150},
            {"sku": "ink", "quantity": 1, "unitPriceCents": 300},
        ])
    );
    assert_eq!(order["totalCents"], 1050);
}

#[tokio::test]
async fn a_submitted_order_reserves_every_line_and_awaits_payment() {
    let h = orders();
    h.add_stock("pen", 5).await;
    h.add_stock("ink", 3).await;
    h.draft("o-1", "c-1", &[("pen", 2, 150), ("ink", 3, 300)])
        .await;
    h.submit_order("o-1", None).await;
    assert_eq!(h.order_status("o-1").await, "awaiting_payment");
    assert_eq!(h.stock("pen").await, (5, 2, 3));
    assert_eq!(h.stock("ink").await, (3, 3, 0));
    assert_eq!(
        h.event_types("product-pen").await,
        ["StockAdded", "StockReserved"]
    );
    let order = h.query_ok("getOrder?id=o-1").await;
    assert_eq!(order["cancelReason"], Value::Null);
}

#[tokio::test]
async fn an_order_that_cannot_be_reserved_whole_is_cancelled_out_of_stock_reserving_nothing() {
    let h = orders();
    h.add_stock("pen", 5).await;
    h.add_stock("ink", 1).await;
    // One line beyond what is available: the other lines are not reserved either.
    h.draft("o-1", "c-1", &[("pen", 2, 150), ("ink", 2, 300)])
        .await;
    h.submit_order("o-1", None).await;
    // A sku never stocked counts as stock 0.
    h.draft("o-2", "c-1", &[("pen", 1, 150), ("ghost", 1, 100)])
        .await;
    h.submit_order("o-2", None).await;

    for order in ["o-1", "o-2"] {
        let answer = h.query_ok(&format!("getOrder?id={order}")).await;
        assert_eq!(answer["status"], "cancelled", "{answer}");
        assert_eq!(answer["cancelReason"], "out_of_stock", "{answer}");
        assert_eq!(h.cancellations(order).await, ["out_of_stock"]);
    }
    assert_eq!(h.stock("pen").await, (5, 0, 5));
    assert_eq!(h.stock("ink").await, (1, 0, 1));
    assert_eq!(h.event_types("product-pen").await, ["StockAdded"]);
    assert_eq!(h.event_types("product-ink").await, ["StockAdded"]);
    assert_eq!(
        h.query(1, "getStock?sku=ghost").await.status,
        StatusCode::NOT_FOUND,
        "still never stocked"
    );
    assert!(h.stream("product-ghost").await.is_empty());
}

#[tokio::test]
async fn an_order_not_paid_in_time_is_cancelled_once_for_payment_timeout_releasing_its_stock() {
    let h = orders();
    h.add_stock("pen", 5).await;
    h.draft("o-1", "c-1", &[("pen", 2, 150)]).await;
    h.submit_order("o-1", Some(1)).await;
    assert_eq!(h.order_status("o-1").await, "awaiting_payment");
    assert_eq!(h.stock("pen").await, (5, 2, 3));

    h.event("order-o-1", "OrderCancelled").await;
    let order = h.query_ok("getOrder?id=o-1").await;
    assert_eq!(order["status"], "cancelled");
    assert_eq!(order["cancelReason"], "payment_timeout");
    assert_eq!(h.stock("pen").await, (5, 0, 5));
    assert_eq!(
        h.event_types("product-pen").await,
        ["StockAdded", "StockReserved", "StockReleased"]
    );

    // Too late to pay, nothing left to cancel; still one OrderCancelled.
    assert_eq!(
        h.rejected(
            "RecordPayment",
            json!({"orderId": "o-1", "amountCents": 300})
        )
        .await,
        "order_not_awaiting_payment"
    );
    assert_eq!(
        h.rejected("CancelOrder", json!({"orderId": "o-1", "reason": "late"}))
            .await,
        "order_cancelled"
    );
    assert_eq!(h.cancellations("o-1").await, ["payment_timeout"]);
}

#[tokio::test]
async fn paying_then_shipping_lowers_on_hand_and_reserved_by_each_line() {
    let h = orders();
    h.add_stock("pen", 5).await;
    h.add_stock("ink", 3).await;
    h.draft("o-1", "c-1", &[("pen", 2, 150), ("ink", 1, 300)])
        .await;
    h.submit_order("o-1", None).await;
    h.ok(
        "RecordPayment",
        json!({"orderId": "o-1", "amountCents": 600}),
    )
    .await;
    assert_eq!(h.order_status("o-1").await, "paid");
    assert_eq!(
        h.stock("pen").await,
        (5, 2, 3),
        "paid still holds its stock"
    );
    assert_eq!(h.stock("ink").await, (3, 1, 2));

    h.ok("ShipOrder", json!({"orderId": "o-1"})).await;
    assert_eq!(h.order_status("o-1").await, "shipped");
    assert_eq!(h.stock("pen").await, (3, 0, 3));
    assert_eq!(h.stock("ink").await, (2, 0, 2));
}

#[tokio::test]
async fn whatever_ends_an_order_its_stream_gets_one_order_cancelled_at_most() {
    let h = orders();
    h.add_stock("pen", 10).await;
    // Cancelled by its customer while holding a reservation: released at once.
    h.draft("o-cancelled", "c-1", &[("pen", 2, 150)]).await;
    h.submit_order("o-cancelled", Some(3)).await;
    assert_eq!(h.stock("pen").await, (10, 2, 8));
    let status = h
        .ok(
            "CancelOrder",
            json!({"orderId": "o-cancelled", "reason": "changed my mind"}),
        )
        .await;
    assert_eq!(
        recorded(&status),
        pairs(&[
            ("order-o-cancelled", "OrderCancelled"),
            ("product-pen", "StockReleased"),
        ])
    );
    assert_eq!(h.stock("pen").await, (10, 0, 10));
    // Paid before its payment is due.
    h.draft("o-paid", "c-1", &[("pen", 1, 150)]).await;
    h.submit_order("o-paid", Some(3)).await;
    h.ok(
        "RecordPayment",
        json!({"orderId": "o-paid", "amountCents": 150}),
    )
    .await;
    // Timers fire in the order they fall due: once this order's has fired, so have the
    // (cancelled) timers of the two above.
    h.draft("o-sentinel", "c-1", &[("pen", 1, 150)]).await;
    h.submit_order("o-sentinel", Some(3)).await;
    h.event("order-o-sentinel", "OrderCancelled").await;

    assert_eq!(h.cancellations("o-cancelled").await, ["changed my mind"]);
    let order = h.query_ok("getOrder?id=o-cancelled").await;
    assert_eq!(order["cancelReason"], "changed my mind");
    assert_eq!(h.cancellations("o-paid").await, Vec::<String>::new());
    assert_eq!(h.order_status("o-paid").await, "paid");
    assert_eq!(h.cancellations("o-sentinel").await, ["payment_timeout"]);
    assert_eq!(
        h.stock("pen").await,
        (10, 1, 9),
        "only the paid order holds stock"
    );
}

#[tokio::test]
async fn cancelling_a_paid_order_releases_its_stock_and_it_no_longer_counts_as_spent() {
    let h = orders();
    h.add_stock("pen", 5).await;
    h.draft("o-1", "c-1", &[("pen", 2, 150)]).await;
    h.submit_order("o-1", None).await;
    h.ok(
        "RecordPayment",
        json!({"orderId": "o-1", "amountCents": 300}),
    )
    .await;
    let spent = h.query_ok("customerOrders?customerId=c-1").await;
    assert_eq!(spent["totalSpentCents"], 300);

    let status = h
        .ok("CancelOrder", json!({"orderId": "o-1", "reason": "refund"}))
        .await;
    assert_eq!(
        recorded(&status),
        pairs(&[
            ("order-o-1", "OrderCancelled"),
            ("product-pen", "StockReleased")
        ])
    );
    assert_eq!(h.stock("pen").await, (5, 0, 5));
    assert_eq!(
        h.query_ok("customerOrders?customerId=c-1").await,
        json!({"customerId": "c-1", "orderCount": 1, "totalSpentCents": 0,
            "orders": [{"id": "o-1", "status": "cancelled", "totalCents": 300}]})
    );
    assert_eq!(
        h.rejected("ShipOrder", json!({"orderId": "o-1"})).await,
        "order_not_paid"
    );
}

#[tokio::test]
async fn available_never_goes_below_zero() {
    let h = orders();
    h.add_stock("pen", 2).await;
    h.draft("o-1", "c-1", &[("pen", 2, 100)]).await;
    h.submit_order("o-1", None).await;
    assert_eq!(h.stock("pen").await, (2, 2, 0));
    h.draft("o-2", "c-1", &[("pen", 1, 100)]).await;
    h.submit_order("o-2", None).await;
    assert_eq!(h.order_status("o-2").await, "cancelled");
    assert_eq!(h.stock("pen").await, (2, 2, 0));
    h.add_stock("pen", 1).await;
    h.draft("o-3", "c-1", &[("pen", 1, 100)]).await;
    h.submit_order("o-3", None).await;
    assert_eq!(h.stock("pen").await, (3, 3, 0));
    h.ok(
        "RecordPayment",
        json!({"orderId": "o-1", "amountCents": 200}),
    )
    .await;
    h.ok("ShipOrder", json!({"orderId": "o-1"})).await;
    assert_eq!(h.stock("pen").await, (1, 1, 0));
    let page = h.query_ok("listStock?belowAvailable=1").await;
    assert_eq!(
        page,
        json!({"items": [{"sku": "pen", "name": "The pen", "onHand": 1, "reserved": 1, "available": 0}],
            "cursor": null})
    );
}

/// What `getOrder` must answer for `order`, built from its stream as a client reads it:
/// the lines from `ItemAdded`/`ItemRemoved` (the price of a line is its first), times
/// from the events' `recordedAt`, the due time from `OrderSubmitted`.
async fn expected_order(h: &Harness, order: &str) -> Value {
    let events = h.stream(&format!("order-{order}")).await;
    let created = &events[0];
    assert_eq!(created["type"], "OrderCreated");
    let mut items: Vec<Value> = Vec::new();
    let mut status = "draft";
    let mut cancel_reason = Value::Null;
    let mut payment_due_at = Value::Null;
    for event in &events {
        let data = &event["data"];
        match event["type"].as_str().unwrap() {
            "ItemAdded" => match items.iter_mut().find(|i| i["sku"] == data["sku"]) {
                Some(item) => {
                    item["quantity"] = json!(
                        item["quantity"].as_u64().unwrap() + data["quantity"].as_u64().unwrap()
                    )
                }
                None => items.push(json!({"sku": data["sku"], "quantity": data["quantity"],
                    "unitPriceCents": data["unitPriceCents"]})),
            },
            "ItemRemoved" => items.retain(|i| i["sku"] != data["sku"]),
            "OrderSubmitted" => {
                status = "submitted";
                payment_due_at = json!(format_millis(data["paymentDueAtMs"].as_u64().unwrap()));
            }
            "OrderReserved" => status = "awaiting_payment",
            "OrderPaid" => status = "paid",
            "OrderShipped" => status = "shipped",
            "OrderCancelled" => {
                status = "cancelled";
                cancel_reason = data["reason"].clone();
            }
            _ => {}
        }
    }
    let total: u64 = items
        .iter()
        .map(|i| i["quantity"].as_u64().unwrap() * i["unitPriceCents"].as_u64().unwrap())
        .sum();
    json!({
        "id": order,
        "customerId": created["data"]["customerId"],
        "customerName": created["data"]["customerName"],
        "status": status,
        "items": items,
        "totalCents": total,
        "cancelReason": cancel_reason,
        "paymentDueAt": payment_due_at,
        "createdAt": created["metadata"]["recordedAt"],
        "updatedAt": events.last().unwrap()["metadata"]["recordedAt"],
    })
}

#[tokio::test]
async fn get_order_answers_the_whole_order_and_404_for_none() {
    let h = orders();
    h.add_stock("pen", 5).await;
    h.add_stock("ink", 5).await;
    h.draft("o-1", "c-1", &[("pen", 2, 150), ("ink", 1, 300)])
        .await;
    let draft = h.query_ok("getOrder?id=o-1").await;
    assert_eq!(
        draft,
        json!({
            "id": "o-1", "customerId": "c-1", "customerName": "Customer c-1", "status": "draft",
            "items": [{"sku": "pen", "quantity": 2, "unitPriceCents": 150},
                      {"sku": "ink", "quantity": 1, "unitPriceCents": 300}],
            "totalCents": 600, "cancelReason": null, "paymentDueAt": null,
            "createdAt": draft["createdAt"], "updatedAt": draft["updatedAt"],
        })
    );
    assert_eq!(draft, expected_order(&h, "o-1").await);

    h.submit_order("o-1", Some(60)).await;
    let awaiting = h.query_ok("getOrder?id=o-1").await;
    assert_eq!(awaiting["status"], "awaiting_payment");
    assert_eq!(awaiting, expected_order(&h, "o-1").await);
    // Due `paymentDueSeconds` after the submission was recorded.
    let submitted = h
        .stream("order-o-1")
        .await
        .into_iter()
        .find(|e| e["type"] == "OrderSubmitted")
        .unwrap();
    let due_ms = submitted["data"]["paymentDueAtMs"].as_u64().unwrap();
    assert_eq!(
        format_millis(due_ms - 60_000),
        submitted["metadata"]["recordedAt"]
    );
    assert_eq!(awaiting["paymentDueAt"], format_millis(due_ms));

    h.ok(
        "CancelOrder",
        json!({"orderId": "o-1", "reason": "too slow"}),
    )
    .await;
    let cancelled = h.query_ok("getOrder?id=o-1").await;
    assert_eq!(cancelled, expected_order(&h, "o-1").await);
    assert_eq!(cancelled["cancelReason"], "too slow");
    assert_eq!(cancelled["createdAt"], draft["createdAt"]);

    let missing = h.query(1, "getOrder?id=o-none").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.content_type(), "application/problem+json");
}

/// Orders in every status: `o-1` draft and `o-2` awaiting payment of customer `c-1`;
/// `o-3` cancelled, `o-4` shipped, `o-5` paid and `o-6` draft of customer `c-2`. Created
/// in that order.
async fn orders_in_every_status(h: &Harness) {
    h.add_stock("pen", 100).await;
    h.draft("o-1", "c-1", &[("pen", 1, 100)]).await;
    h.draft("o-2", "c-1", &[("pen", 2, 100)]).await;
    h.draft("o-3", "c-2", &[("pen", 3, 100)]).await;
    h.draft("o-4", "c-2", &[("pen", 4, 100)]).await;
    h.draft("o-5", "c-2", &[("pen", 5, 100)]).await;
    h.draft("o-6", "c-2", &[("pen", 6, 100)]).await;
    for order in ["o-2", "o-3", "o-4", "o-5"] {
        h.submit_order(order, None).await;
    }
    h.ok("CancelOrder", json!({"orderId": "o-3", "reason": "no"}))
        .await;
    for (order, cents) in [("o-4", 400), ("o-5", 500)] {
        h.ok(
            "RecordPayment",
            json!({"orderId": order, "amountCents": cents}),
        )
        .await;
    }
    h.ok("ShipOrder", json!({"orderId": "o-4"})).await;
}

#[tokio::test]
async fn current_orders_are_those_neither_shipped_nor_cancelled_newest_first_in_pages() {
    let h = orders();
    orders_in_every_status(&h).await;
    let mut whole = Vec::new();
    for order in ["o-6", "o-5", "o-2", "o-1"] {
        whole.push(h.query_ok(&format!("getOrder?id={order}")).await);
    }

    let all = h.query_ok("currentOrders").await;
    assert_eq!(all, json!({"items": whole, "cursor": null}));

    let first = h.query_ok("currentOrders?limit=3").await;
    assert_eq!(first["items"], json!(whole[..3]));
    let cursor = first["cursor"].as_str().expect("more to come");
    let second = h
        .query_ok(&format!("currentOrders?limit=3&cursor={cursor}"))
        .await;
    assert_eq!(second, json!({"items": whole[3..], "cursor": null}));

    let paid = h.query_ok("currentOrders?status=paid").await;
    assert_eq!(paid, json!({"items": [whole[1]], "cursor": null}));
    let of_c1 = h.query_ok("currentOrders?customerId=c-1").await;
    assert_eq!(of_c1, json!({"items": whole[2..], "cursor": null}));
    let drafts_of_c2 = h
        .query_ok("currentOrders?status=draft&customerId=c-2")
        .await;
    assert_eq!(drafts_of_c2, json!({"items": [whole[0]], "cursor": null}));
}

#[tokio::test]
async fn order_history_lists_the_orders_stream_in_log_order_and_404_for_none() {
    let h = orders();
    h.add_stock("pen", 5).await;
    h.draft("o-1", "c-1", &[("pen", 2, 150)]).await;
    h.submit_order("o-1", None).await;
    h.ok(
        "RecordPayment",
        json!({"orderId": "o-1", "amountCents": 300}),
    )
    .await;

    let events: Vec<Value> = h
        .stream("order-o-1")
        .await
        .into_iter()
        .map(|e| {
            json!({"type": e["type"], "position": e["position"],
                "recordedAt": e["metadata"]["recordedAt"], "data": e["data"]})
        })
        .collect();
    let types: Vec<&Value> = events.iter().map(|e| &e["type"]).collect();
    assert_eq!(
        types,
        [
            "OrderCreated",
            "ItemAdded",
            "OrderSubmitted",
            "OrderReserved",
            "OrderPaid"
        ]
    );
    assert_eq!(
        h.query_ok("orderHistory?id=o-1").await,
        json!({"id": "o-1", "events": events})
    );
    assert_eq!(
        h.query(1, "orderHistory?id=o-none").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn customer_orders_count_every_order_and_what_paid_and_shipped_ones_spent() {
    let h = orders();
    orders_in_every_status(&h).await;
    let by_id = |mut answer: Value| {
        answer["orders"]
            .as_array_mut()
            .unwrap()
            .sort_by_key(|o| o["id"].as_str().unwrap().to_owned());
        answer
    };
    assert_eq!(
        by_id(h.query_ok("customerOrders?customerId=c-2").await),
        json!({"customerId": "c-2", "orderCount": 4, "totalSpentCents": 900, "orders": [
            {"id": "o-3", "status": "cancelled", "totalCents": 300},
            {"id": "o-4", "status": "shipped", "totalCents": 400},
            {"id": "o-5", "status": "paid", "totalCents": 500},
            {"id": "o-6", "status": "draft", "totalCents": 600},
        ]})
    );
    assert_eq!(
        by_id(h.query_ok("customerOrders?customerId=c-1").await),
        json!({"customerId": "c-1", "orderCount": 2, "totalSpentCents": 0, "orders": [
            {"id": "o-1", "status": "draft", "totalCents": 100},
            {"id": "o-2", "status": "awaiting_payment", "totalCents": 200},
        ]})
    );
}

#[tokio::test]
async fn stock_is_answered_by_sku_and_listed_by_sku_in_pages() {
    let h = orders();
    for (sku, quantity) in [("c-cup", 4), ("a-pen", 10), ("b-ink", 2)] {
        h.add_stock(sku, quantity).await;
    }
    h.draft("o-1", "c-1", &[("a-pen", 3, 100), ("c-cup", 4, 100)])
        .await;
    h.submit_order("o-1", None).await;

    let pen =
        json!({"sku": "a-pen", "name": "The a-pen", "onHand": 10, "reserved": 3, "available": 7});
    let ink =
        json!({"sku": "b-ink", "name": "The b-ink", "onHand": 2, "reserved": 0, "available": 2});
    let cup =
        json!({"sku": "c-cup", "name": "The c-cup", "onHand": 4, "reserved": 4, "available": 0});
    assert_eq!(h.query_ok("getStock?sku=a-pen").await, pen);
    assert_eq!(h.query_ok("getStock?sku=c-cup").await, cup);
    let missing = h.query(1, "getStock?sku=never").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.content_type(), "application/problem+json");

    assert_eq!(
        h.query_ok("listStock").await,
        json!({"items": [pen, ink, cup], "cursor": null})
    );
    let first = h.query_ok("listStock?limit=2").await;
    assert_eq!(first["items"], json!([pen, ink]));
    let cursor = first["cursor"].as_str().expect("more to come");
    assert_eq!(
        h.query_ok(&format!("listStock?limit=2&cursor={cursor}"))
            .await,
        json!({"items": [cup], "cursor": null})
    );
    assert_eq!(
        h.query_ok("listStock?belowAvailable=3").await,
        json!({"items": [ink, cup], "cursor": null})
    );
    // A product renamed by a later AddStock.
    h.ok(
        "AddStock",
        json!({"sku": "b-ink", "name": "Blue ink", "quantity": 1}),
    )
    .await;
    assert_eq!(
        h.query_ok("getStock?sku=b-ink").await,
        json!({"sku": "b-ink", "name": "Blue ink", "onHand": 3, "reserved": 0, "available": 3})
    );
}

#[tokio::test]
async fn the_queries_are_functions_in_query_code_answering_as_the_named_ones() {
    let h = orders();
    orders_in_every_status(&h).await;
    let cases = [
        ("getOrder(args.id)", json!({"id": "o-2"}), "getOrder?id=o-2"),
        (
            "currentOrders({status: 'awaiting_payment'})",
            json!({}),
            "currentOrders?status=awaiting_payment",
        ),
        (
            "currentOrders({customerId: args.c, limit: 1})",
            json!({"c": "c-2"}),
            "currentOrders?customerId=c-2&limit=1",
        ),
        (
            "orderHistory(args.id)",
            json!({"id": "o-4"}),
            "orderHistory?id=o-4",
        ),
        (
            "customerOrders(args.c)",
            json!({"c": "c-2"}),
            "customerOrders?customerId=c-2",
        ),
        ("getStock('pen')", json!({}), "getStock?sku=pen"),
        (
            "listStock({belowAvailable: 1000})",
            json!({}),
            "listStock?belowAvailable=1000",
        ),
    ];
    for (code, args, named) in cases {
        assert_eq!(
            h.code_ok(code, args).await,
            h.query_ok(named).await,
            "{code}"
        );
    }
    // Query code computes over them.
    assert_eq!(
        h.code_ok(
            "currentOrders({}).items.map(o => o.id).concat([getStock('pen').reserved])",
            json!({})
        )
        .await,
        json!(["o-6", "o-5", "o-2", "o-1", 7])
    );
    for code in [
        "getOrder('o-none')",
        "orderHistory('o-none')",
        "getStock('never')",
    ] {
        let answer = h.code(1, code, json!({})).await;
        assert_eq!(
            answer.status,
            StatusCode::NOT_FOUND,
            "{code}: {}",
            answer.text()
        );
        assert_eq!(answer.content_type(), "application/problem+json");
    }
}

/// The command status of the command that recorded `event`.
async fn command_of(h: &Harness, event: &Value) -> Value {
    let id: Uuid = serde_json::from_value(event["metadata"]["commandId"].clone()).unwrap();
    h.status(id).await
}

#[tokio::test]
async fn every_event_names_the_command_that_recorded_it_and_the_chain_it_belongs_to() {
    let h = orders();
    h.add_stock("pen", 5).await;
    // Reserved, then cancelled for want of payment.
    h.draft("o-late", "c-1", &[("pen", 2, 150)]).await;
    let late_submit = h.submit_order("o-late", Some(1)).await;
    h.event("order-o-late", "OrderCancelled").await;
    // Out of stock.
    h.draft("o-big", "c-1", &[("pen", 50, 150)]).await;
    let big_submit = h.submit_order("o-big", None).await;
    // Reserved, paid, shipped.
    h.draft("o-ok", "c-1", &[("pen", 1, 150)]).await;
    let ok_submit = h.submit_order("o-ok", None).await;
    h.ok(
        "RecordPayment",
        json!({"orderId": "o-ok", "amountCents": 150}),
    )
    .await;
    h.ok("ShipOrder", json!({"orderId": "o-ok"})).await;

    // Every event: its causation is the command that recorded it, whose status lists it;
    // a client's command starts its own chain.
    for event in h.events().await {
        let metadata = &event["metadata"];
        assert_eq!(metadata["causationId"], metadata["commandId"], "{event}");
        let command = command_of(&h, &event).await;
        assert_eq!(command["status"], "succeeded");
        assert!(
            command["events"].as_array().unwrap().contains(&json!({
                "stream": event["stream"], "version": event["version"],
                "type": event["type"], "position": event["position"]})),
            "{command} lists {event}"
        );
        if command["origin"] == "client" {
            assert_eq!(metadata["correlationId"], metadata["commandId"], "{event}");
        }
    }

    // The process's commands: found by the events they recorded, in the chain of the
    // client's SubmitOrder.
    for (order, submit) in [
        ("o-late", &late_submit),
        ("o-big", &big_submit),
        ("o-ok", &ok_submit),
    ] {
        let stream = h.stream(&format!("order-{order}")).await;
        let submitted = stream
            .iter()
            .find(|e| e["type"] == "OrderSubmitted")
            .unwrap();
        assert_eq!(submitted["metadata"]["commandId"], submit["id"]);
        let next = &stream[stream.iter().position(|e| e == submitted).unwrap() + 1];
        let reserve = command_of(&h, next).await;
        assert_eq!(reserve["command"], "ReserveOrder", "{reserve}");
        assert_eq!(reserve["origin"], "process");
        assert_eq!(reserve["causationId"], submit["id"]);
        assert_eq!(reserve["correlationId"], submit["id"]);
        for event in h.events().await {
            if event["metadata"]["commandId"] == reserve["id"] {
                assert_eq!(event["metadata"]["correlationId"], submit["id"], "{event}");
            }
        }
    }

    let late = h.stream("order-o-late").await;
    let reserved = late.iter().find(|e| e["type"] == "OrderReserved").unwrap();
    let cancelled = late.iter().find(|e| e["type"] == "OrderCancelled").unwrap();
    let expire = command_of(&h, cancelled).await;
    assert_eq!(expire["command"], "ExpireOrder", "{expire}");
    assert_eq!(expire["origin"], "timer");
    assert_eq!(expire["causationId"], reserved["metadata"]["commandId"]);
    assert_eq!(expire["correlationId"], late_submit["id"]);
    assert_eq!(
        recorded(&expire),
        pairs(&[
            ("order-o-late", "OrderCancelled"),
            ("product-pen", "StockReleased")
        ])
    );
    for event in h.events().await {
        if event["metadata"]["commandId"] == expire["id"] {
            assert_eq!(event["metadata"]["correlationId"], late_submit["id"]);
        }
    }
    let big = h.stream("order-o-big").await;
    assert_eq!(
        command_of(&h, big.last().unwrap()).await["command"],
        "ReserveOrder",
        "out of stock is the reservation's outcome"
    );
}

/// Submits `command` with `expectedVersion`; returns its final status.
async fn run_expecting(h: &Harness, command: &str, payload: Value, expected: u64) -> Value {
    let id = Uuid::new_v4();
    let answer = h
        .post(
            &json!({"id": id, "command": command, "payload": payload, "expectedVersion": expected}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text());
    h.status(id).await
}

fn wrong_version(status: &Value, expected: u64, actual: u64) {
    assert_eq!(status["status"], "rejected", "{status}");
    assert_eq!(
        status["error"]["code"], "wrong_expected_version",
        "{status}"
    );
    assert_eq!(status["error"]["expected"], expected, "{status}");
    assert_eq!(status["error"]["actual"], actual, "{status}");
    assert_eq!(status["events"], json!([]));
}

fn succeeded(status: &Value) {
    assert_eq!(status["status"], "succeeded", "{status}");
}

#[tokio::test]
async fn expected_version_is_checked_against_the_order_or_the_product_stream() {
    let h = orders();
    let stock = |quantity: i64| json!({"sku": "pen", "name": "Pen", "quantity": quantity});
    // AddStock targets product-{sku}; 0: the stream must not exist yet.
    succeeded(&run_expecting(&h, "AddStock", stock(5), 0).await);
    wrong_version(&run_expecting(&h, "AddStock", stock(5), 0).await, 0, 1);
    succeeded(&run_expecting(&h, "AddStock", stock(1), 1).await);

    let create = json!({"orderId": "o-1", "customerId": "c-1", "customerName": "Ada"});
    succeeded(&run_expecting(&h, "CreateOrder", create.clone(), 0).await);
    wrong_version(&run_expecting(&h, "CreateOrder", create, 0).await, 0, 1);
    let item = json!({"orderId": "o-1", "sku": "pen", "quantity": 2, "unitPriceCents": 100});
    succeeded(&run_expecting(&h, "AddItem", item.clone(), 1).await);
    wrong_version(&run_expecting(&h, "AddItem", item, 1).await, 1, 2);
    let submit = run_expecting(&h, "SubmitOrder", json!({"orderId": "o-1"}), 2).await;
    succeeded(&submit);
    h.event("order-o-1", "OrderReserved").await;
    // The order is at 4 (OrderSubmitted, OrderReserved), its product at 3.
    let pay = json!({"orderId": "o-1", "amountCents": 200});
    wrong_version(
        &run_expecting(&h, "RecordPayment", pay.clone(), 3).await,
        3,
        4,
    );
    succeeded(&run_expecting(&h, "RecordPayment", pay, 4).await);

    // ShipOrder changes the product's stream too; its target is the order's.
    let ship = json!({"orderId": "o-1"});
    assert_eq!(h.stream("product-pen").await.len(), 3);
    wrong_version(&run_expecting(&h, "ShipOrder", ship.clone(), 3).await, 3, 5);
    succeeded(&run_expecting(&h, "ShipOrder", ship, 5).await);
    assert_eq!(h.order_status("o-1").await, "shipped");
    assert_eq!(h.stream("product-pen").await.len(), 4);
    succeeded(&run_expecting(&h, "AddStock", stock(1), 4).await);
    wrong_version(
        &run_expecting(
            &h,
            "CancelOrder",
            json!({"orderId": "o-1", "reason": "r"}),
            0,
        )
        .await,
        0,
        6,
    );
}

#[tokio::test]
async fn the_same_id_with_another_expected_version_is_a_conflict() {
    let h = orders();
    let id = Uuid::new_v4();
    let payload = json!({"orderId": "o-1", "customerId": "c-1", "customerName": "Ada"});
    let body = |expected: Option<u64>| {
        let mut body = json!({"id": id, "command": "CreateOrder", "payload": payload});
        if let Some(expected) = expected {
            body["expectedVersion"] = json!(expected);
        }
        body
    };
    assert_eq!(h.post(&body(Some(0))).await.status, StatusCode::ACCEPTED);
    succeeded(&h.status(id).await);

    let again = h.post(&body(Some(0))).await;
    assert!(
        matches!(again.status, StatusCode::OK | StatusCode::ACCEPTED),
        "{}",
        again.text()
    );
    assert_eq!(again.json()["duplicate"], true);
    for other in [body(Some(1)), body(None)] {
        let answer = h.post(&other).await;
        assert_eq!(answer.status, StatusCode::CONFLICT, "{other}");
        assert_eq!(answer.content_type(), "application/problem+json");
    }
    assert_eq!(h.stream("order-o-1").await.len(), 1, "nothing ran twice");
    let status = call(&h.app, get(&format!("/update/{id}"))).await.json();
    assert_eq!(status["status"], "succeeded");
}
