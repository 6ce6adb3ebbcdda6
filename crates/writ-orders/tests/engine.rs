//! The orders domain and its process on the real engine, on in-memory storage
//! (`SimStorage`): the whole flow of an order, out of stock, a payment timeout, a deadline
//! that passes while the engine is down, causation, `expectedVersion`, and the benchmark
//! mix.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use uuid::Uuid;
use writ_domain::model::domain;
use writ_domain::{CommandError, EventSet};
use writ_engine::{
    CommandState, CommandStatus, Engine, EngineOptions, Origin, RecordedEvent, RecoveryReport,
    Registry, Submission, SubmitError, Submitted,
};
use writ_log::storage::SimStorage;
use writ_orders::workload::{self, Expected};
use writ_orders::{OrderEvent, OrderStatus, Orders, OrdersState, ProductState, codes};

fn registry() -> Registry {
    writ_orders::processes()
        .into_iter()
        .fold(
            Registry::builder().domain(domain::<Orders>()),
            |builder, process| builder.process(process),
        )
        .build()
        .expect("the orders domain and its process register")
}

fn options() -> EngineOptions {
    EngineOptions {
        log: writ_log::LogOptions {
            segment_bytes: 8 << 20,
            record_bytes_max: 2 << 20,
            ..writ_log::LogOptions::default()
        },
        ..EngineOptions::default()
    }
}

fn open(storage: &SimStorage) -> (Engine, RecoveryReport) {
    Engine::open(Arc::new(storage.clone()), registry(), options()).expect("engine opens")
}

fn submit(engine: &Engine, submission: Submission<'_>) -> CommandStatus {
    match engine.submit_command(&submission).expect("submit") {
        Submitted::New(mut pending) => {
            pending.blocking_accepted().expect("accepted");
            pending.blocking_outcome().expect("outcome")
        }
        Submitted::Duplicate => panic!("duplicate"),
    }
}

fn run_expecting(
    engine: &Engine,
    id: u128,
    command: &str,
    payload: Value,
    expected_version: Option<u64>,
) -> CommandStatus {
    let payload = serde_json::to_vec(&payload).unwrap();
    submit(
        engine,
        Submission {
            id: Uuid::from_u128(id),
            command,
            version: None,
            payload: &payload,
            expected_version,
        },
    )
}

fn run(engine: &Engine, id: u128, command: &str, payload: Value) -> CommandStatus {
    run_expecting(engine, id, command, payload, None)
}

/// Runs a command that must succeed.
fn ok(engine: &Engine, id: u128, command: &str, payload: Value) -> CommandStatus {
    let status = run(engine, id, command, payload);
    assert_eq!(status.state, CommandState::Succeeded, "{status:?}");
    status
}

fn rejected_code(status: &CommandStatus) -> &str {
    match &status.state {
        CommandState::Rejected { code, .. } => code,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn events(engine: &Engine, stream: &str) -> Vec<RecordedEvent> {
    engine.read_stream(stream, 1, 10_000).unwrap()
}

fn event_types(engine: &Engine, stream: &str) -> Vec<String> {
    events(engine, stream)
        .into_iter()
        .map(|e| e.event_type)
        .collect()
}

fn decode(event: &RecordedEvent) -> OrderEvent {
    OrderEvent::decode(&event.event_type, &event.data).expect("an orders event")
}

/// The state of a stream, folded from its durable events.
fn state(engine: &Engine, stream: &str) -> OrdersState {
    let mut state = OrdersState::default();
    for event in events(engine, stream) {
        state.apply(&decode(&event));
    }
    state
}

fn status_of(engine: &Engine, order: &str) -> OrderStatus {
    state(engine, &format!("order-{order}"))
        .order()
        .expect("an order")
        .status()
}

/// `(onHand, reserved, available)` of a product.
fn stock(engine: &Engine, sku: &str) -> (u64, u64, u64) {
    let state = state(engine, &format!("product-{sku}"));
    let product = state
        .product()
        .cloned()
        .unwrap_or_else(ProductState::default);
    (product.on_hand(), product.reserved(), product.available())
}

/// The reasons of the `OrderCancelled` events of an order.
fn cancel_reasons(engine: &Engine, order: &str) -> Vec<String> {
    events(engine, &format!("order-{order}"))
        .iter()
        .filter_map(|e| match decode(e) {
            OrderEvent::OrderCancelled(c) => Some(c.reason),
            _ => None,
        })
        .collect()
}

/// The command that recorded the stream's first event of `event_type`.
fn command_of(engine: &Engine, stream: &str, event_type: &str) -> CommandStatus {
    let event = events(engine, stream)
        .into_iter()
        .find(|e| e.event_type == event_type)
        .unwrap_or_else(|| panic!("no {event_type} on {stream}"));
    engine.status(event.command_id).unwrap().expect("known")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Waits (at most 20 s) for what the engine does on its own.
fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn add_stock(engine: &Engine, id: u128, sku: &str, quantity: i64) {
    ok(
        engine,
        id,
        "AddStock",
        json!({"sku": sku, "name": format!("The {sku}"), "quantity": quantity}),
    );
}

/// Creates order `order` with lines `(sku, quantity, unitPriceCents)`, using ids from
/// `id` on.
fn draft(engine: &Engine, id: u128, order: &str, lines: &[(&str, i64, u64)]) {
    ok(
        engine,
        id,
        "CreateOrder",
        json!({"orderId": order, "customerId": "c-1", "customerName": "Ada"}),
    );
    for (i, (sku, quantity, price)) in lines.iter().enumerate() {
        ok(
            engine,
            id + 1 + i as u128,
            "AddItem",
            json!({"orderId": order, "sku": sku, "quantity": quantity, "unitPriceCents": price}),
        );
    }
}

#[test]
fn an_order_is_reserved_paid_and_shipped_and_the_stock_follows() {
    let storage = SimStorage::new();
    let (engine, _) = open(&storage);
    add_stock(&engine, 1, "pen", 5);
    add_stock(&engine, 2, "ink", 3);
    draft(
        &engine,
        10,
        "o-1",
        &[("pen", 2, 150), ("ink", 1, 300), ("pen", 1, 999)],
    );

    let submitted = ok(&engine, 20, "SubmitOrder", json!({"orderId": "o-1"}));
    let types: Vec<&str> = submitted
        .events
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(types, ["OrderSubmitted"]);
    // By the time the client hears of its SubmitOrder, the process has reserved the order.
    assert_eq!(status_of(&engine, "o-1"), OrderStatus::AwaitingPayment);
    assert_eq!(stock(&engine, "pen"), (5, 3, 2));
    assert_eq!(stock(&engine, "ink"), (3, 1, 2));
    assert_eq!(engine.timers_pending(), 1, "the payment timer");

    let wrong = run(
        &engine,
        21,
        "RecordPayment",
        json!({"orderId": "o-1", "amountCents": 749}),
    );
    assert_eq!(rejected_code(&wrong), codes::AMOUNT_MISMATCH);
    ok(
        &engine,
        22,
        "RecordPayment",
        json!({"orderId": "o-1", "amountCents": 750}),
    );
    assert_eq!(status_of(&engine, "o-1"), OrderStatus::Paid);
    assert_eq!(engine.timers_pending(), 0, "paying cancels the timer");

    let shipped = ok(&engine, 23, "ShipOrder", json!({"orderId": "o-1"}));
    let streams: Vec<(&str, &str)> = shipped
        .events
        .iter()
        .map(|e| (e.stream.as_str(), e.event_type.as_str()))
        .collect();
    assert_eq!(
        streams,
        [
            ("order-o-1", "OrderShipped"),
            ("product-pen", "StockShipped"),
            ("product-ink", "StockShipped"),
        ]
    );
    assert_eq!(status_of(&engine, "o-1"), OrderStatus::Shipped);
    assert_eq!(stock(&engine, "pen"), (2, 0, 2));
    assert_eq!(stock(&engine, "ink"), (2, 0, 2));
    assert_eq!(
        event_types(&engine, "order-o-1"),
        [
            "OrderCreated",
            "ItemAdded",
            "ItemAdded",
            "ItemAdded",
            "OrderSubmitted",
            "OrderReserved",
            "OrderPaid",
            "OrderShipped",
        ]
    );
    assert_eq!(
        event_types(&engine, "product-pen"),
        ["StockAdded", "StockReserved", "StockShipped"]
    );
    let cancel = run(
        &engine,
        24,
        "CancelOrder",
        json!({"orderId": "o-1", "reason": "late"}),
    );
    assert_eq!(rejected_code(&cancel), codes::ORDER_SHIPPED);
}

#[test]
fn an_order_that_cannot_be_reserved_whole_is_cancelled_out_of_stock_with_nothing_reserved() {
    let storage = SimStorage::new();
    let (engine, _) = open(&storage);
    add_stock(&engine, 1, "pen", 5);
    add_stock(&engine, 2, "ink", 1);
    // A line of a sku never stocked.
    draft(&engine, 10, "o-1", &[("pen", 2, 150), ("ghost", 1, 100)]);
    ok(&engine, 20, "SubmitOrder", json!({"orderId": "o-1"}));
    // A line beyond what is available.
    draft(&engine, 30, "o-2", &[("pen", 5, 150), ("ink", 2, 100)]);
    ok(&engine, 40, "SubmitOrder", json!({"orderId": "o-2"}));
    for order in ["o-1", "o-2"] {
        assert_eq!(status_of(&engine, order), OrderStatus::Cancelled);
        assert_eq!(cancel_reasons(&engine, order), [writ_orders::OUT_OF_STOCK]);
    }
    assert_eq!(stock(&engine, "pen"), (5, 0, 5));
    assert_eq!(stock(&engine, "ink"), (1, 0, 1));
    assert_eq!(event_types(&engine, "product-pen"), ["StockAdded"]);
    assert_eq!(engine.stream_version("product-ghost"), 0);
    assert_eq!(engine.timers_pending(), 0);
    let pay = run(
        &engine,
        50,
        "RecordPayment",
        json!({"orderId": "o-1", "amountCents": 400}),
    );
    assert_eq!(rejected_code(&pay), codes::ORDER_NOT_AWAITING_PAYMENT);
    // What o-2 would have taken is still there for another order.
    draft(&engine, 60, "o-3", &[("pen", 5, 150), ("ink", 1, 100)]);
    ok(&engine, 70, "SubmitOrder", json!({"orderId": "o-3"}));
    assert_eq!(status_of(&engine, "o-3"), OrderStatus::AwaitingPayment);
    assert_eq!(stock(&engine, "pen"), (5, 5, 0));
}

#[test]
fn an_order_not_paid_in_time_is_cancelled_once_and_its_reservation_released() {
    let storage = SimStorage::new();
    let (engine, _) = open(&storage);
    add_stock(&engine, 1, "pen", 5);
    draft(&engine, 10, "o-1", &[("pen", 2, 150)]);
    let submit_id = Uuid::from_u128(20);
    ok(
        &engine,
        20,
        "SubmitOrder",
        json!({"orderId": "o-1", "paymentDueSeconds": 1}),
    );
    assert_eq!(stock(&engine, "pen"), (5, 2, 3));

    wait_until(|| engine.stream_version("product-pen") == 3);
    assert_eq!(status_of(&engine, "o-1"), OrderStatus::Cancelled);
    assert_eq!(
        cancel_reasons(&engine, "o-1"),
        [writ_orders::PAYMENT_TIMEOUT]
    );
    assert_eq!(stock(&engine, "pen"), (5, 0, 5));
    assert_eq!(
        event_types(&engine, "product-pen"),
        ["StockAdded", "StockReserved", "StockReleased"]
    );
    assert_eq!(engine.timers_pending(), 0);

    // The timer's command: origin timer, caused by ReserveOrder (whose event set the
    // timer), in the chain the client's SubmitOrder started; never before its time.
    let reserve = command_of(&engine, "order-o-1", "OrderReserved");
    let expire = command_of(&engine, "order-o-1", "OrderCancelled");
    assert_eq!(expire.command, "ExpireOrder");
    assert_eq!(expire.origin, Origin::Timer);
    assert_eq!(expire.causation_id, Some(reserve.id));
    assert_eq!(expire.correlation_id, submit_id);
    let submitted = events(&engine, "order-o-1")
        .into_iter()
        .find(|e| e.event_type == "OrderSubmitted")
        .unwrap();
    let OrderEvent::OrderSubmitted(s) = decode(&submitted) else {
        unreachable!()
    };
    assert_eq!(s.payment_due_at_ms, submitted.recorded_at_ms + 1_000);
    let cancelled = events(&engine, "order-o-1").pop().unwrap();
    assert!(cancelled.recorded_at_ms >= s.payment_due_at_ms);

    // A payment now comes too late.
    let late = run(
        &engine,
        30,
        "RecordPayment",
        json!({"orderId": "o-1", "amountCents": 300}),
    );
    assert_eq!(rejected_code(&late), codes::ORDER_NOT_AWAITING_PAYMENT);
    assert_eq!(cancel_reasons(&engine, "o-1").len(), 1);
}

#[test]
fn a_payment_due_while_the_engine_was_down_fires_once_at_the_next_start() {
    let storage = SimStorage::new();
    let (engine, _) = open(&storage);
    add_stock(&engine, 1, "pen", 5);
    draft(&engine, 10, "o-1", &[("pen", 2, 150)]);
    ok(
        &engine,
        20,
        "SubmitOrder",
        json!({"orderId": "o-1", "paymentDueSeconds": 1}),
    );
    let due = match decode(&events(&engine, "order-o-1")[2]) {
        OrderEvent::OrderSubmitted(s) => s.payment_due_at_ms,
        other => panic!("{other:?}"),
    };
    assert_eq!(status_of(&engine, "o-1"), OrderStatus::AwaitingPayment);
    assert_eq!(engine.timers_pending(), 1);
    drop(engine);
    let crashed = storage.crash();

    // The engine is down when the payment falls due.
    while now_ms() <= due {
        std::thread::sleep(Duration::from_millis(due + 1 - now_ms().min(due)));
    }
    let (engine, report) = open(&crashed);
    assert_eq!(
        report.timers_pending, 1,
        "the timer survived, still pending"
    );
    wait_until(|| engine.stream_version("order-o-1") == 5);
    assert_eq!(status_of(&engine, "o-1"), OrderStatus::Cancelled);
    assert_eq!(
        cancel_reasons(&engine, "o-1"),
        [writ_orders::PAYMENT_TIMEOUT]
    );
    assert_eq!(stock(&engine, "pen"), (5, 0, 5));
    let expire = command_of(&engine, "order-o-1", "OrderCancelled");
    assert_eq!(expire.origin, Origin::Timer);
    assert_eq!(expire.correlation_id, Uuid::from_u128(20));
    assert_eq!(engine.timers_pending(), 0);
    drop(engine);

    // Another start finds nothing pending and fires nothing again.
    let (engine, report) = open(&crashed.crash());
    assert_eq!(report.timers_pending, 0);
    // A command after the start has been decided after anything due at the start.
    add_stock(&engine, 30, "ink", 1);
    assert_eq!(cancel_reasons(&engine, "o-1").len(), 1);
    assert_eq!(engine.stream_version("order-o-1"), 5);
    assert_eq!(engine.stream_version("product-pen"), 3);
    assert_eq!(engine.stats().timers_fired, 0);
}

#[test]
fn the_process_commands_answer_by_their_ids_with_their_origin_causation_and_correlation() {
    let storage = SimStorage::new();
    let (engine, _) = open(&storage);
    add_stock(&engine, 1, "pen", 5);
    draft(&engine, 10, "o-1", &[("pen", 2, 150)]);
    let submit_id = Uuid::from_u128(20);
    let submitted = ok(&engine, 20, "SubmitOrder", json!({"orderId": "o-1"}));
    assert_eq!(submitted.origin, Origin::Client);
    assert_eq!(submitted.causation_id, None);
    assert_eq!(submitted.correlation_id, submit_id);

    let reserved = events(&engine, "order-o-1").pop().unwrap();
    assert_eq!(reserved.event_type, "OrderReserved");
    let reserve = engine
        .status(reserved.command_id)
        .unwrap()
        .expect("known by its id");
    assert_eq!(reserve.command, "ReserveOrder");
    assert_eq!(reserve.state, CommandState::Succeeded);
    assert_eq!(reserve.origin, Origin::Process);
    assert_eq!(reserve.causation_id, Some(submit_id));
    assert_eq!(reserve.correlation_id, submit_id);
    assert_eq!(
        reserve.sequence,
        submitted.sequence + 1,
        "right after its cause"
    );
    let recorded: Vec<(&str, &str)> = reserve
        .events
        .iter()
        .map(|e| (e.stream.as_str(), e.event_type.as_str()))
        .collect();
    assert_eq!(
        recorded,
        [
            ("order-o-1", "OrderReserved"),
            ("product-pen", "StockReserved")
        ]
    );
    // Every event names the command that recorded it and the chain's first command.
    let stock_reserved = events(&engine, "product-pen").pop().unwrap();
    for event in [&reserved, &stock_reserved] {
        assert_eq!(event.command_id, reserve.id);
        assert_eq!(event.correlation_id, submit_id);
    }

    // The client's cancel releases the stock and cancels the timer; it starts a chain of
    // its own.
    let cancel = ok(
        &engine,
        30,
        "CancelOrder",
        json!({"orderId": "o-1", "reason": "changed my mind"}),
    );
    assert_eq!(cancel.correlation_id, Uuid::from_u128(30));
    assert_eq!(cancel.events.len(), 2);
    assert_eq!(stock(&engine, "pen"), (5, 0, 5));
    assert_eq!(engine.timers_pending(), 0);
    assert_eq!(cancel_reasons(&engine, "o-1"), ["changed my mind"]);
}

#[test]
fn internal_commands_are_refused_from_clients() {
    let storage = SimStorage::new();
    let (engine, _) = open(&storage);
    for command in ["ReserveOrder", "ExpireOrder"] {
        let refused = engine.submit(Uuid::from_u128(1), command, None, br#"{"orderId":"o-1"}"#);
        assert!(
            matches!(
                refused,
                Err(SubmitError::Invalid(CommandError::Internal { .. }))
            ),
            "{command}: {refused:?}"
        );
    }
    let bad_id = engine.submit(
        Uuid::from_u128(2),
        "CreateOrder",
        None,
        br#"{"orderId":"","customerId":"c","customerName":"C"}"#,
    );
    assert!(
        matches!(
            bad_id,
            Err(SubmitError::Invalid(CommandError::InvalidPayload { .. }))
        ),
        "{bad_id:?}"
    );
}

#[test]
fn expected_version_is_checked_against_the_commands_own_stream() {
    let storage = SimStorage::new();
    let (engine, _) = open(&storage);
    let stock_payload = json!({"sku": "pen", "name": "Pen", "quantity": 5});
    let first = run_expecting(&engine, 1, "AddStock", stock_payload.clone(), Some(0));
    assert_eq!(first.state, CommandState::Succeeded);
    let again = run_expecting(&engine, 2, "AddStock", stock_payload, Some(0));
    let CommandState::Rejected { code, details, .. } = &again.state else {
        panic!("{again:?}")
    };
    assert_eq!(code, writ_domain::WRONG_EXPECTED_VERSION);
    assert_eq!(
        (&details["expected"], &details["actual"]),
        (&json!(0), &json!(1))
    );

    draft(&engine, 10, "o-1", &[("pen", 2, 150)]);
    ok(&engine, 20, "SubmitOrder", json!({"orderId": "o-1"}));
    // The order's stream is at 4 (created, item, submitted, reserved); the product's
    // events do not count.
    let pay = json!({"orderId": "o-1", "amountCents": 300});
    let stale = run_expecting(&engine, 30, "RecordPayment", pay.clone(), Some(3));
    assert!(
        matches!(&stale.state, CommandState::Rejected { details, .. } if details["actual"] == 4),
        "{stale:?}"
    );
    let current = run_expecting(&engine, 31, "RecordPayment", pay, Some(4));
    assert_eq!(current.state, CommandState::Succeeded);
    let ship = run_expecting(&engine, 32, "ShipOrder", json!({"orderId": "o-1"}), Some(5));
    assert_eq!(ship.state, CommandState::Succeeded);
    assert_eq!(engine.stream_version("order-o-1"), 6);
    assert_eq!(engine.stream_version("product-pen"), 3);
}

#[test]
fn the_benchmark_mix_ends_as_expected_on_the_engine() {
    const ORDERS: u64 = 200;
    let storage = SimStorage::new();
    let (engine, _) = open(&storage);
    let expected = workload::expected_counts(ORDERS);
    let mut next_id = 0u128;
    let mut send = |step: &workload::Step| {
        next_id += 1;
        match engine
            .submit(
                Uuid::from_u128(next_id),
                step.command,
                Some(step.version),
                &step.payload,
            )
            .expect("submit")
        {
            Submitted::New(pending) => (pending, step.clone()),
            Submitted::Duplicate => unreachable!("fresh ids"),
        }
    };
    // The stock first, then the orders' steps, each order's in sequence and all orders
    // in flight at once (the single writer decides in intake order).
    let mut pending: Vec<_> = workload::stock_steps(ORDERS)
        .iter()
        .map(&mut send)
        .collect();
    let scripts: Vec<Vec<workload::Step>> = (0..ORDERS).map(workload::order_steps).collect();
    for round in 0..scripts.iter().map(Vec::len).max().unwrap() {
        for script in &scripts {
            if let Some(step) = script.get(round) {
                pending.push(send(step));
            }
        }
    }
    assert_eq!(pending.len() as u64, expected.client_commands);
    for (pending, step) in pending {
        let status = pending.blocking_outcome().expect("outcome");
        let what = || {
            format!(
                "{} {}",
                step.command,
                String::from_utf8_lossy(&step.payload)
            )
        };
        match step.expected {
            Expected::Succeeded => {
                assert_eq!(status.state, CommandState::Succeeded, "{}", what());
            }
            Expected::Rejected(code) => assert_eq!(rejected_code(&status), code, "{}", what()),
        }
    }
    // The timed-out orders' timers fire a second after their submission.
    let commands = expected.client_commands + expected.process_commands + expected.timer_commands;
    wait_until(|| {
        let stats = engine.stats();
        stats.succeeded + stats.rejected + stats.failed == commands
    });
    let stats = engine.stats();
    assert_eq!(stats.commands_accepted, expected.client_commands);
    assert_eq!(stats.commands_issued, expected.process_commands);
    assert_eq!(stats.timers_fired, expected.timer_commands);
    assert_eq!(stats.rejected, expected.client_rejected);
    assert_eq!(stats.failed, 0);
    assert_eq!(stats.reactions_failed, 0);
    assert_eq!(engine.timers_pending(), 0);
    assert_eq!(engine.last_position(), expected.events);
    for n in 0..ORDERS {
        let fate = workload::Fate::of(n);
        let order = format!("o-{n}");
        assert_eq!(status_of(&engine, &order), fate.status(), "{order}");
        let reasons = cancel_reasons(&engine, &order);
        assert_eq!(
            reasons.first().map(String::as_str),
            fate.cancel_reason(),
            "{order}"
        );
        assert!(reasons.len() <= 1, "{order}: {reasons:?}");
    }
}
