//! The orders read model on the real engine (on `SimStorage`), kept up to date by
//! `writ_query`'s runtime: the benchmark mix replayed, its figures checked against what
//! the mix implies, and pages that go on across live snapshots while orders and stock
//! keep coming.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use uuid::Uuid;
use writ_domain::model::domain;
use writ_engine::{CommandState, Engine, EngineOptions, Registry, Submitted};
use writ_log::storage::SimStorage;
use writ_orders::Orders;
use writ_orders::read::{self, OrdersProjection};
use writ_orders::workload::{self, Expected, Fate};
use writ_query::{ProjectionRuntime, QueryError, Replay, RuntimeOptions, rfc3339};

const WAIT: Duration = Duration::from_secs(30);

fn engine() -> Arc<Engine> {
    let registry = writ_orders::processes()
        .into_iter()
        .fold(
            Registry::builder().domain(domain::<Orders>()),
            |builder, process| builder.process(process),
        )
        .build()
        .expect("the orders domain and its process register");
    let options = EngineOptions {
        log: writ_log::LogOptions {
            segment_bytes: 8 << 20,
            record_bytes_max: 2 << 20,
            ..writ_log::LogOptions::default()
        },
        ..EngineOptions::default()
    };
    let storage = Arc::new(SimStorage::new());
    Arc::new(
        Engine::open(storage, registry, options)
            .expect("engine opens")
            .0,
    )
}

/// Runs a command that must succeed; the position that includes its events.
fn run(engine: &Engine, command: &str, payload: Value) -> u64 {
    let payload = serde_json::to_vec(&payload).unwrap();
    let Submitted::New(pending) = engine
        .submit(Uuid::new_v4(), command, None, &payload)
        .unwrap()
    else {
        unreachable!("a fresh id")
    };
    let status = pending.blocking_outcome().unwrap();
    assert_eq!(
        status.state,
        CommandState::Succeeded,
        "{command} {status:?}"
    );
    status.position.unwrap()
}

/// Waits (at most [`WAIT`]) for what the engine does on its own.
fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn args(value: Value) -> Map<String, Value> {
    value.as_object().expect("arguments are an object").clone()
}

fn ids(items: &Value) -> Vec<String> {
    items
        .as_array()
        .expect("an array")
        .iter()
        .map(|item| {
            item.get("id")
                .unwrap_or_else(|| &item["sku"])
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

// ----- the benchmark mix -----

/// Sends the mix of `orders` orders as `writ bench engine` does (the stock first, then
/// every order's steps in sequence, all orders in flight at once) and waits until every
/// command, the process's and the timers' included, has its outcome.
fn send_the_mix(engine: &Engine, orders: u64) {
    let expected = workload::expected_counts(orders);
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
            Submitted::New(pending) => (pending, step.expected),
            Submitted::Duplicate => unreachable!("fresh ids"),
        }
    };
    let mut pending: Vec<_> = workload::stock_steps(orders)
        .iter()
        .map(&mut send)
        .collect();
    let scripts: Vec<Vec<workload::Step>> = (0..orders).map(workload::order_steps).collect();
    for round in 0..scripts.iter().map(Vec::len).max().unwrap_or(0) {
        for script in &scripts {
            if let Some(step) = script.get(round) {
                pending.push(send(step));
            }
        }
    }
    for (pending, expected) in pending {
        let status = pending.blocking_outcome().expect("outcome");
        match expected {
            Expected::Succeeded => assert_eq!(status.state, CommandState::Succeeded),
            Expected::Rejected(_) => {
                assert!(matches!(status.state, CommandState::Rejected { .. }))
            }
        }
    }
    // The timed-out orders' timers fire a second after their submission.
    let commands = expected.client_commands + expected.process_commands + expected.timer_commands;
    wait_until(|| {
        let stats = engine.stats();
        stats.succeeded + stats.rejected + stats.failed == commands
    });
    assert_eq!(engine.last_position(), expected.events);
}

/// One order of the mix as its payloads say it ends.
struct Planned {
    id: String,
    customer: String,
    fate: Fate,
    /// `(sku, quantity, unitPriceCents)` in the order the skus were first added.
    lines: Vec<(String, u64, u64)>,
}

impl Planned {
    fn total_cents(&self) -> u64 {
        self.lines.iter().map(|(_, q, price)| q * price).sum()
    }
}

/// What the mix of `orders` orders implies: every order, and every product's figures
/// `(onHand, reserved)` by sku.
fn implied(orders: u64) -> (Vec<Planned>, BTreeMap<String, (u64, u64)>) {
    let mut products: BTreeMap<String, (u64, u64)> = (0..workload::PRODUCTS)
        .map(|k| (workload::sku(k), (workload::initial_stock(orders), 0)))
        .collect();
    let mut planned = Vec::new();
    for n in 0..orders {
        let mut lines: Vec<(String, u64, u64)> = Vec::new();
        for step in workload::order_steps(n) {
            let payload: Value = serde_json::from_slice(&step.payload).unwrap();
            let sku = || payload["sku"].as_str().unwrap().to_owned();
            let number = |field: &str| payload[field].as_u64().unwrap();
            match step.command {
                "AddStock" => products.get_mut(&sku()).unwrap().0 += number("quantity"),
                "AddItem" => lines.push((sku(), number("quantity"), number("unitPriceCents"))),
                "RemoveItem" => lines.retain(|(s, _, _)| *s != sku()),
                _ => {}
            }
        }
        let fate = Fate::of(n);
        for (sku, quantity, _) in &lines {
            match fate {
                Fate::Shipped => products.get_mut(sku).unwrap().0 -= quantity,
                Fate::Paid => products.get_mut(sku).unwrap().1 += quantity,
                _ => {}
            }
        }
        planned.push(Planned {
            id: workload::order_id(n),
            customer: format!("c-{}", n % 1000),
            fate,
            lines,
        });
    }
    (planned, products)
}

#[test]
fn the_workload_mix_replays_into_the_figures_it_implies() {
    const ORDERS: u64 = 2_000;
    let engine = engine();
    send_the_mix(&engine, ORDERS);
    let runtime = ProjectionRuntime::start(
        engine.clone(),
        read::OrdersProjection,
        RuntimeOptions::default(),
    )
    .unwrap();
    let catalog = read::catalog();
    let snapshot = runtime
        .blocking_wait_for(engine.last_position(), WAIT)
        .unwrap();
    let status = runtime.status();
    assert_eq!(
        (status.stats.errors, status.stats.events_ignored),
        (0, 0),
        "{:?}",
        status.stats.last_error
    );
    let call = |query: &str, arguments: Value| catalog.call(1, query, &snapshot, args(arguments));
    let (planned, products) = implied(ORDERS);

    // Every order: its figures, and its history as the engine has its stream.
    for order in &planned {
        let answer = call("getOrder", json!({"id": order.id})).unwrap();
        let items: Vec<Value> = order
            .lines
            .iter()
            .map(|(sku, q, price)| json!({"sku": sku, "quantity": q, "unitPriceCents": price}))
            .collect();
        let history = engine
            .read_stream(&format!("order-{}", order.id), 1, 100)
            .unwrap();
        let time = |event: &writ_query::RecordedEvent| rfc3339::format_millis(event.recorded_at_ms);
        let first = history.first().unwrap();
        let last = history.last().unwrap();
        // Due as submitted; never, for an order cancelled as a draft.
        let due = history
            .iter()
            .find(|e| e.event_type == "OrderSubmitted")
            .map(|e| {
                let data: Value = serde_json::from_slice(&e.data).unwrap();
                rfc3339::format_millis(data["paymentDueAtMs"].as_u64().unwrap())
            });
        assert_eq!(due.is_none(), order.fate == Fate::CancelledDraft);
        assert_eq!(
            answer,
            json!({
                "id": order.id,
                "customerId": order.customer,
                "customerName": format!("Customer {}", &order.customer[2..]),
                "status": order.fate.status().as_str(),
                "items": items,
                "totalCents": order.total_cents(),
                "cancelReason": order.fate.cancel_reason(),
                "paymentDueAt": due,
                "createdAt": time(first),
                "updatedAt": time(last),
            }),
            "{}",
            order.id
        );
        let events: Vec<Value> = history
            .iter()
            .map(|e| {
                let data: Value = serde_json::from_slice(&e.data).unwrap();
                json!({"type": e.event_type, "position": e.position, "recordedAt": time(e), "data": data})
            })
            .collect();
        assert_eq!(
            call("orderHistory", json!({"id": order.id})).unwrap(),
            json!({"id": order.id, "events": events}),
            "{}",
            order.id
        );
    }

    // Counts by status: 60% shipped, 10% paid, the rest cancelled; nothing in between.
    let view = &snapshot.state;
    let count = |fates: &[Fate]| planned.iter().filter(|o| fates.contains(&o.fate)).count();
    let cancelled = [
        Fate::CancelledAwaitingPayment,
        Fate::CancelledPaid,
        Fate::CancelledDraft,
        Fate::TimedOut,
        Fate::OutOfStock,
    ];
    let counts: Vec<(&str, usize)> = writ_orders::OrderStatus::ALL
        .into_iter()
        .map(|status| (status.as_str(), view.count(status)))
        .collect();
    assert_eq!(
        counts,
        [
            ("draft", 0),
            ("submitted", 0),
            ("awaiting_payment", 0),
            ("paid", count(&[Fate::Paid])),
            ("shipped", count(&[Fate::Shipped])),
            ("cancelled", count(&cancelled)),
        ]
    );
    assert_eq!(
        (count(&[Fate::Shipped]), count(&[Fate::Paid])),
        (1_200, 200)
    );

    // The current orders are the paid ones, newest first, page after page.
    let mut current = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let page = call("currentOrders", json!({"limit": 30, "cursor": cursor})).unwrap();
        current.extend(ids(&page["items"]));
        cursor = page["cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    let created = |id: &str| view.order(id).unwrap().created.position;
    assert!(
        current.windows(2).all(|w| created(&w[0]) > created(&w[1])),
        "newest first"
    );
    let mut paid: Vec<&str> = planned
        .iter()
        .filter(|o| o.fate == Fate::Paid)
        .map(|o| o.id.as_str())
        .collect();
    let mut listed: Vec<&str> = current.iter().map(String::as_str).collect();
    paid.sort_unstable();
    listed.sort_unstable();
    assert_eq!(listed, paid);

    // Every customer's orders, and what they spent: their paid and shipped orders.
    let mut by_customer: HashMap<&str, Vec<&Planned>> = HashMap::new();
    for order in &planned {
        by_customer.entry(&order.customer).or_default().push(order);
    }
    for (customer, orders) in &by_customer {
        let answer = call("customerOrders", json!({"customerId": customer})).unwrap();
        let spent: u64 = orders
            .iter()
            .filter(|o| matches!(o.fate, Fate::Paid | Fate::Shipped))
            .map(|o| o.total_cents())
            .sum();
        let mut listed: Vec<Value> = orders
            .iter()
            .map(|o| json!({"id": o.id, "status": o.fate.status().as_str(), "totalCents": o.total_cents()}))
            .collect();
        listed.sort_by_key(|o| created(o["id"].as_str().unwrap()));
        assert_eq!(
            answer,
            json!({"customerId": customer, "orderCount": 2, "totalSpentCents": spent, "orders": listed}),
            "{customer}"
        );
    }

    // Every product's stock, by sku and page after page; the unstocked sku is no product.
    let stock = |sku: &str, (on_hand, reserved): (u64, u64)| {
        json!({"sku": sku, "name": format!("Product {}", &sku[4..]), "onHand": on_hand,
               "reserved": reserved, "available": on_hand - reserved})
    };
    let expected: Vec<Value> = products
        .iter()
        .map(|(sku, figures)| stock(sku, *figures))
        .collect();
    for (sku, figures) in &products {
        assert_eq!(
            call("getStock", json!({"sku": sku})).unwrap(),
            stock(sku, *figures),
            "{sku}"
        );
    }
    let list = |below: Option<u64>| {
        let mut items = Vec::new();
        let mut cursor = Value::Null;
        loop {
            let page = call(
                "listStock",
                json!({"belowAvailable": below, "limit": 7, "cursor": cursor}),
            )
            .unwrap();
            items.extend(page["items"].as_array().unwrap().iter().cloned());
            cursor = page["cursor"].clone();
            if cursor.is_null() {
                return items;
            }
        }
    };
    assert_eq!(list(None), expected);
    let mut available: Vec<u64> = products.values().map(|(h, r)| h - r).collect();
    available.sort_unstable();
    let median = available[available.len() / 2];
    let below: Vec<Value> = expected
        .iter()
        .filter(|s| s["available"].as_u64().unwrap() < median)
        .cloned()
        .collect();
    assert!(!below.is_empty() && below.len() < expected.len());
    assert_eq!(list(Some(median)), below);
    assert!(matches!(
        call("getStock", json!({"sku": workload::UNSTOCKED_SKU})),
        Err(QueryError::NotFound { .. })
    ));

    // The runtime's view is the one a replay of the log builds.
    let mut replay = Replay::new(OrdersProjection);
    while replay.position() < engine.last_position() {
        replay.apply(&engine.read_all(replay.position() + 1, 1000).unwrap());
    }
    assert!(replay.state() == view);
}

// ----- pages across live snapshots -----

#[test]
fn pages_go_on_across_live_snapshots_without_repeats_or_gaps() {
    let engine = engine();
    for k in (0..24).step_by(2) {
        run(
            &engine,
            "AddStock",
            json!({"sku": format!("s-{k:02}"), "name": format!("Stock {k}"), "quantity": 10}),
        );
    }
    let create = |id: &str| {
        run(
            &engine,
            "CreateOrder",
            json!({"orderId": id, "customerId": "c-1", "customerName": "Ada"}),
        )
    };
    let mut position = 0;
    for n in 0..30 {
        position = create(&format!("o-{n:02}"));
    }
    let runtime = ProjectionRuntime::start(
        engine.clone(),
        read::OrdersProjection,
        RuntimeOptions::default(),
    )
    .unwrap();
    let catalog = read::catalog();
    let page = |query: &str, arguments: Value, at: u64| {
        let snapshot = runtime.blocking_wait_for(at, WAIT).unwrap();
        catalog.call(1, query, &snapshot, args(arguments)).unwrap()
    };

    // currentOrders, 7 at a time, newest first. Between pages a new order comes (never
    // listed: newer than the first page), and two orders are cancelled: one listed, one
    // not yet listed (then never listed).
    let mut listed: Vec<String> = Vec::new();
    let mut cursor = Value::Null;
    let mut cancelled = Vec::new();
    for round in 0.. {
        let answer = page(
            "currentOrders",
            json!({"limit": 7, "cursor": cursor}),
            position,
        );
        listed.extend(ids(&answer["items"]));
        cursor = answer["cursor"].clone();
        if cursor.is_null() {
            break;
        }
        position = create(&format!("new-{round}"));
        for id in [listed[round].clone(), format!("o-{:02}", 2 * round)] {
            position = run(
                &engine,
                "CancelOrder",
                json!({"orderId": id, "reason": "changed my mind"}),
            );
            cancelled.push(id);
        }
    }
    let expected: Vec<String> = (0..30)
        .rev()
        .map(|n| format!("o-{n:02}"))
        .filter(|id| listed.contains(id) || !cancelled.contains(id))
        .collect();
    assert_eq!(listed, expected);
    assert!(listed.iter().all(|id| id.starts_with("o-")));

    // listStock, 5 at a time, by sku. Between pages products are stocked: before the
    // cursor (never listed), after it (listed in place), and one already listed again.
    let mut listed: Vec<String> = Vec::new();
    let mut cursor = Value::Null;
    for round in 0.. {
        let answer = page("listStock", json!({"limit": 5, "cursor": cursor}), position);
        listed.extend(ids(&answer["items"]));
        cursor = answer["cursor"].clone();
        if cursor.is_null() {
            break;
        }
        for sku in [
            "s-01".to_owned(),
            format!("s-{:02}", 11 + 6 * round),
            listed[0].clone(),
        ] {
            position = run(
                &engine,
                "AddStock",
                json!({"sku": sku, "name": "More", "quantity": 1}),
            );
        }
    }
    assert_eq!(
        listed,
        [
            "s-00", "s-02", "s-04", "s-06", "s-08", "s-10", "s-11", "s-12", "s-14", "s-16", "s-17",
            "s-18", "s-20", "s-22"
        ]
    );
}
