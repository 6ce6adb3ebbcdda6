//! `writ_app::testing::TestServer`: the orders domain's payment deadline of 15 minutes,
//! reached by moving the clock, with and without a crash on the way.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};
use writ_app::testing::TestServer;
use writ_app::{App, Module};

fn orders() -> App {
    App::new().module(
        Module::new::<writ_orders::Orders>()
            .process::<writ_orders::OrderFulfilment>()
            .read_model(writ_orders::read::read_model()),
    )
}

/// An order of one line, submitted with the default deadline (900 s): awaiting payment.
async fn submitted_order(server: &TestServer) {
    let steps = [
        (
            "AddStock",
            json!({"sku": "s-1", "name": "Lamp", "quantity": 5}),
        ),
        (
            "CreateOrder",
            json!({"orderId": "o-1", "customerId": "c-1", "customerName": "Ann"}),
        ),
        (
            "AddItem",
            json!({"orderId": "o-1", "sku": "s-1", "quantity": 2, "unitPriceCents": 500}),
        ),
        ("SubmitOrder", json!({"orderId": "o-1"})),
    ];
    for (id, (command, payload)) in (1..).zip(steps) {
        let status = server.send(id, command, payload).await.ok();
        assert_eq!(status["status"], "succeeded", "{command}: {status}");
    }
    let order = order_after(server, 0).await;
    assert_eq!(order["status"], "awaiting_payment");
    assert_eq!(stock(server).await["reserved"], 2);
}

/// The order once the read models include the log's current end (at least `position`).
async fn order_after(server: &TestServer, position: u64) -> Value {
    let end = server.state().engine().last_position().max(position);
    server
        .get(&format!("/query/v1/getOrder?id=o-1&after={end}"))
        .await
        .ok()
}

async fn stock(server: &TestServer) -> Value {
    let end = server.state().engine().last_position();
    server
        .get(&format!("/query/v1/getStock?sku=s-1&after={end}"))
        .await
        .ok()
}

/// Waits (a bound, not a timing assertion) until the order's stream has `version` events.
async fn order_version(server: &TestServer, version: u64) {
    let engine = server.state().engine();
    for _ in 0..2_000 {
        if engine.stream_version("order-o-1") >= version {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("order-o-1 did not reach version {version}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_payment_deadline_passes_when_the_clock_is_moved_past_it() {
    let server = TestServer::start(orders);
    submitted_order(&server).await;
    server.advance(Duration::from_secs(899)).await;
    assert_eq!(order_after(&server, 0).await["status"], "awaiting_payment");
    server.advance(Duration::from_secs(2)).await;
    let order = order_after(&server, 0).await;
    assert_eq!(order["status"], "cancelled");
    assert_eq!(order["cancelReason"], "payment_timeout");
    assert_eq!(stock(&server).await["reserved"], 0);
    // Too late to pay.
    let late = server
        .send(
            9,
            "RecordPayment",
            json!({"orderId": "o-1", "amountCents": 1000}),
        )
        .await
        .ok();
    assert_eq!(late["status"], "rejected");
    assert_eq!(late["error"]["code"], "order_not_awaiting_payment");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_that_passes_while_the_server_is_down_fires_once_after_a_crash() {
    let mut server = TestServer::start(orders);
    submitted_order(&server).await;
    let version = server.state().engine().stream_version("order-o-1");
    server.crash(Duration::from_secs(3_600));
    order_version(&server, version + 1).await;
    let order = order_after(&server, 0).await;
    assert_eq!(order["status"], "cancelled");
    assert_eq!(order["cancelReason"], "payment_timeout");
    let history = server.get("/query/v1/orderHistory?id=o-1").await.ok();
    let cancels = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "OrderCancelled")
        .count();
    assert_eq!(cancels, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_read_as_problems() {
    let server = TestServer::start(orders);
    server
        .send(1, "ReserveOrder", json!({"orderId": "o-1"}))
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY, "unknown_command");
    server
        .get("/query/v1/getOrder?id=nope")
        .await
        .problem(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_every_acknowledged_command_and_its_pending_deadline() {
    let mut server = TestServer::start(orders);
    submitted_order(&server).await;
    server.restart(Duration::from_secs(60));
    assert_eq!(order_after(&server, 0).await["status"], "awaiting_payment");
    assert_eq!(server.state().engine().timers_pending(), 1);
    let paid = server
        .send(
            9,
            "RecordPayment",
            json!({"orderId": "o-1", "amountCents": 1000}),
        )
        .await
        .ok();
    assert_eq!(paid["status"], "succeeded", "{paid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_the_journal_as_histograms_with_buckets() {
    let server = TestServer::start(orders);
    submitted_order(&server).await;
    let text = server.get("/metrics").await.ok();
    let text = text.as_str().expect("Prometheus text");
    for name in [
        "writ_journal_sync_seconds_bucket",
        "writ_journal_batch_records_bucket",
        "writ_http_request_duration_seconds_bucket",
        "writ_dedupe_entries",
        "writ_dedupe_entries_max 10000000",
        "writ_log_open_segment_files{log=\"journal\"}",
        "writ_log_segment_opens_total{log=\"journal\"}",
    ] {
        assert!(text.contains(name), "{name} in {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_after_a_position_not_yet_written_waits_for_it_then_gives_up_with_504() {
    let server = std::sync::Arc::new(TestServer::start_with(orders, |config| {
        config.server.after_wait_max = Duration::from_millis(300);
    }));
    submitted_order(&server).await;
    let end = server.state().engine().last_position();

    // Nothing more is written: the bounded wait ends in 504.
    server
        .get(&format!("/query/v1/getStock?sku=s-1&after={}", end + 5))
        .await
        .problem(StatusCode::GATEWAY_TIMEOUT, "timeout");

    // The next position arrives while the query waits for it: the answer includes it.
    let waiting = {
        let server = std::sync::Arc::clone(&server);
        tokio::spawn(async move {
            server
                .get(&format!("/query/v1/getStock?sku=s-1&after={}", end + 1))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let restock = json!({"sku": "s-1", "name": "Lamp", "quantity": 1});
    server.send(20, "AddStock", restock).await.ok();
    let answer = waiting.await.unwrap().ok();
    assert_eq!(answer["onHand"], 6, "{answer}");
}
