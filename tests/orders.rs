//! End to end: the real `writ serve` with the orders domain on 127.0.0.1: a payment
//! deadline that passes while the server is down fires once when it starts again (after
//! SIGTERM and after SIGKILL), both example domains in one server, and which domains a
//! server serves.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{BOUND, Http, Server, TempDir, open_ticket};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Waits (bounded) until `stream` holds an event of `event_type`.
async fn wait_for_event(http: &mut Http, stream: &str, event_type: &str) {
    let deadline = Instant::now() + BOUND;
    loop {
        let page = http.get_ok(&format!("/streams/{stream}")).await;
        if page["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == event_type)
        {
            return;
        }
        assert!(Instant::now() < deadline, "no {event_type} on {stream}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The event types of a stream.
async fn event_types(http: &mut Http, stream: &str) -> Vec<String> {
    let page = http.get_ok(&format!("/streams/{stream}")).await;
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

/// A named query of version 1 with its query string (`getOrder?id=o-1`), once the read
/// models hold everything durable so far.
async fn query(http: &mut Http, query: &str) -> (StatusCode, Value) {
    let after = http.get_ok("/health").await["position"].as_u64().unwrap();
    let (status, _, body) = http
        .call(
            Method::GET,
            &format!("/query/v1/{query}&after={after}"),
            None,
        )
        .await;
    (status, body)
}

/// Stock of 5 pens and order `o-1` for 2 of them, submitted with a payment due in
/// `payment_due_seconds`; returns when the payment is due (ms since the Unix epoch, from
/// the `OrderSubmitted` event) once the order awaits payment.
async fn order_awaiting_payment(http: &mut Http, payment_due_seconds: u32) -> u64 {
    http.ok(
        "AddStock",
        json!({"sku": "pen", "name": "Pen", "quantity": 5}),
    )
    .await;
    http.ok(
        "CreateOrder",
        json!({"orderId": "o-1", "customerId": "c-1", "customerName": "Ada"}),
    )
    .await;
    http.ok(
        "AddItem",
        json!({"orderId": "o-1", "sku": "pen", "quantity": 2, "unitPriceCents": 150}),
    )
    .await;
    http.ok(
        "SubmitOrder",
        json!({"orderId": "o-1", "paymentDueSeconds": payment_due_seconds}),
    )
    .await;
    wait_for_event(http, "order-o-1", "OrderReserved").await;
    let (status, stock) = query(http, "getStock?sku=pen").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&stock["onHand"], &stock["reserved"]),
        (&json!(5), &json!(2))
    );
    let page = http.get_ok("/streams/order-o-1").await;
    let submitted = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "OrderSubmitted")
        .unwrap()
        .clone();
    submitted["data"]["paymentDueAtMs"].as_u64().unwrap()
}

/// The order `o-1` was cancelled once for want of payment and its stock released.
async fn cancelled_once_for_payment_timeout(http: &mut Http) {
    let types = event_types(http, "order-o-1").await;
    assert_eq!(
        types.iter().filter(|t| *t == "OrderCancelled").count(),
        1,
        "{types:?}"
    );
    let (status, order) = query(http, "getOrder?id=o-1").await;
    assert_eq!(status, StatusCode::OK, "{order}");
    assert_eq!(order["status"], "cancelled");
    assert_eq!(order["cancelReason"], "payment_timeout");
    let (_, stock) = query(http, "getStock?sku=pen").await;
    assert_eq!(
        stock,
        json!({"sku": "pen", "name": "Pen", "onHand": 5, "reserved": 0, "available": 5})
    );
    assert_eq!(
        event_types(http, "product-pen").await,
        ["StockAdded", "StockReserved", "StockReleased"]
    );
}

/// Submits an order with a payment due in a few seconds, stops the server with `stop`
/// before it is due, waits past the due time, and starts the server again on the same
/// data directory: the order is cancelled for want of payment once, and a further restart
/// does not cancel it again.
async fn a_deadline_passed_while_down_fires_once_at_the_start(
    name: &str,
    stop: fn(Server) -> std::process::ExitStatus,
) {
    let dir = TempDir::new(name);
    let flags = ["--domain", "orders"];
    let server = Server::start_with(dir.path(), &flags);
    let mut http = Http::connect(server.port).await;
    // Long enough for the steps above to run before it; the test waits it out.
    let due_ms = order_awaiting_payment(&mut http, 5).await;
    assert!(
        !event_types(&mut http, "order-o-1")
            .await
            .contains(&"OrderCancelled".to_owned())
    );
    assert!(
        now_ms() < due_ms,
        "precondition: the server stops before the payment is due (raise paymentDueSeconds)"
    );
    drop(http);
    tokio::task::spawn_blocking(move || stop(server))
        .await
        .unwrap();

    // Down while the payment falls due.
    while now_ms() <= due_ms + 200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let server = Server::start_with(dir.path(), &flags);
    let mut http = Http::connect(server.port).await;
    wait_for_event(&mut http, "order-o-1", "OrderCancelled").await;
    cancelled_once_for_payment_timeout(&mut http).await;
    let late = http
        .run(
            "RecordPayment",
            json!({"orderId": "o-1", "amountCents": 300}),
        )
        .await;
    assert_eq!(
        late["error"]["code"], "order_not_awaiting_payment",
        "{late}"
    );
    drop(http);
    assert!(
        tokio::task::spawn_blocking(move || server.terminate())
            .await
            .unwrap()
            .success()
    );

    // Once more: nothing fires again.
    let server = Server::start_with(dir.path(), &flags);
    let mut http = Http::connect(server.port).await;
    cancelled_once_for_payment_timeout(&mut http).await;
    assert!(
        tokio::task::spawn_blocking(move || server.terminate())
            .await
            .unwrap()
            .success()
    );
}

#[tokio::test]
async fn a_payment_due_while_the_server_was_stopped_cancels_the_order_once_when_it_starts() {
    a_deadline_passed_while_down_fires_once_at_the_start("e2e-orders-sigterm", |server| {
        let status = server.terminate();
        assert!(status.success(), "{status:?}");
        status
    })
    .await;
}

#[tokio::test]
async fn a_payment_due_while_the_server_was_killed_cancels_the_order_once_when_it_starts() {
    a_deadline_passed_while_down_fires_once_at_the_start("e2e-orders-sigkill", Server::kill).await;
}

#[tokio::test]
async fn tickets_and_orders_are_served_side_by_side() {
    let dir = TempDir::new("e2e-two-domains");
    let server = Server::start_with(dir.path(), &["--domain", "tickets", "--domain", "orders"]);
    let mut http = Http::connect(server.port).await;

    let (status, _, _) = http
        .call(
            Method::POST,
            "/update",
            Some(&open_ticket(Uuid::new_v4(), "t-1")),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    http.ok(
        "AddComment",
        json!({"ticketId": "t-1", "author": "bob", "text": "smoke rising"}),
    )
    .await;
    order_awaiting_payment(&mut http, 900).await;
    let paid = http
        .ok(
            "RecordPayment",
            json!({"orderId": "o-1", "amountCents": 300}),
        )
        .await;
    let rejected = http
        .run("CloseTicket", json!({"ticketId": "t-2", "resolution": "x"}))
        .await;
    assert_eq!(rejected["error"]["code"], "ticket_not_found");

    let (status, ticket) = query(&mut http, "getTicket?id=t-1").await;
    assert_eq!(status, StatusCode::OK, "{ticket}");
    assert_eq!(ticket["comments"][0]["text"], "smoke rising");
    let (status, order) = query(&mut http, "getOrder?id=o-1").await;
    assert_eq!(status, StatusCode::OK, "{order}");
    assert_eq!(order["status"], "paid");

    let position = paid["position"].as_u64().unwrap();
    let code = json!({"code": "[getTicket('t-1').commentCount, getOrder('o-1').status, customerOrders('c-1').totalSpentCents]"});
    let (status, _, answer) = http
        .call(
            Method::POST,
            &format!("/query/v1?after={position}"),
            Some(&code.to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["result"], json!([1, "paid", 300]));

    let domains = http.get_ok("/domains").await;
    let names: Vec<&Value> = domains["domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["name"])
        .collect();
    assert_eq!(names, ["tickets", "orders"]);

    assert!(
        tokio::task::spawn_blocking(move || server.terminate())
            .await
            .unwrap()
            .success()
    );
}

#[tokio::test]
async fn writ_serve_alone_serves_tickets_and_domain_orders_alone_serves_orders() {
    for (flags, served, unknown) in [
        (&[][..], "OpenTicket", "AddStock"),
        (&["--domain", "orders"][..], "AddStock", "OpenTicket"),
    ] {
        let dir = TempDir::new("e2e-one-domain");
        let server = Server::start_with(dir.path(), flags);
        let mut http = Http::connect(server.port).await;
        let payload = |command: &str| {
            if command == "OpenTicket" {
                json!({"ticketId": "t-1", "title": "Printer on fire", "reporter": "ann"})
            } else {
                json!({"sku": "pen", "name": "Pen", "quantity": 1})
            }
        };
        http.ok(served, payload(served)).await;
        let body = json!({"id": Uuid::new_v4(), "command": unknown, "payload": payload(unknown)});
        let (status, headers, problem) = http
            .call(Method::POST, "/update", Some(&body.to_string()))
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{flags:?}: {problem}"
        );
        assert_eq!(headers["content-type"], "application/problem+json");
        assert_eq!(problem["type"], "https://writ.dev/problems/unknown_command");
        let other_query = if unknown == "AddStock" {
            "getStock?sku=pen"
        } else {
            "getTicket?id=t-1"
        };
        let (status, _) = query(&mut http, other_query).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{flags:?} {other_query}");
        assert!(
            tokio::task::spawn_blocking(move || server.terminate())
                .await
                .unwrap()
                .success()
        );
    }
}
