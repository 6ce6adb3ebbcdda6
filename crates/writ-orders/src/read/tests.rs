//! The read model's queries as given/when/then, fed with the events the domain decides:
//! a small shop run in memory (each command decided by [`Orders`] through
//! `writ_domain::testing`, the process's commands run right after the command that caused
//! them, as the engine runs them), its log replayed into the view. And events that do not
//! fit, refused without changing the view.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde_json::{Value, json};
use uuid::Uuid;
use writ_domain::testing::{given_streams, react_at};
use writ_domain::{Domain, Envelope, EventSet, Issued, Refusal, TimerOp};
use writ_query::{Budget, Projection, QueryError, RecordedEvent, Replay, Snapshot};

use super::*;
use crate::{FulfilmentEvent, OrderEvent, OrderFulfilment, OrderStatus, Orders};

// ----- the shop: the write side in memory -----

/// 2026-12-24T18:34:00.000Z; command `n` (from 1) is recorded `n` seconds later.
const T0_MS: u64 = 1_798_137_240_000;

/// When command `n` (below 60) was recorded, as the queries spell it.
fn at(n: u64) -> String {
    assert!(n < 60, "at() spells the first minute only");
    format!("2026-12-24T18:34:{n:02}.000Z")
}

/// When the payment of an order submitted by command `n` (below 60) with the default
/// 900 s is due, as the queries spell it.
fn due(n: u64) -> String {
    assert!(n < 60, "due() spells the first minute only");
    format!("2026-12-24T18:49:{n:02}.000Z")
}

/// [`due`] in ms since the Unix epoch, as the events carry it.
fn due_ms(n: u64) -> u64 {
    T0_MS + n * 1000 + 900_000
}

/// The streams, the log and the pending timers of a shop whose commands the domain
/// decides, one second apart.
#[derive(Default)]
struct Shop {
    streams: HashMap<String, Vec<OrderEvent>>,
    log: Vec<RecordedEvent>,
    commands: u64,
    /// The process's pending timers by key (the order id).
    timers: BTreeMap<String, Issued>,
}

impl Shop {
    /// A shop with these products in stock, `(sku, quantity)`, named after their skus.
    fn stocked(products: &[(&str, u64)]) -> Self {
        let mut shop = Self::default();
        for (sku, quantity) in products {
            shop.add_stock(sku, *quantity);
        }
        shop
    }

    /// Runs a client's command, then what the process issues in reaction, each right
    /// after the command that caused it; the code if the client's command is rejected.
    fn run(&mut self, name: &str, payload: Value) -> Result<(), String> {
        let payload = serde_json::to_vec(&payload).unwrap();
        let issued = self.decide(name, &payload)?;
        self.run_issued(issued);
        Ok(())
    }

    #[track_caller]
    fn ok(&mut self, name: &str, payload: Value) {
        if let Err(code) = self.run(name, payload.clone()) {
            panic!("{name} {payload}: rejected {code}");
        }
    }

    fn run_issued(&mut self, issued: Vec<Issued>) {
        let mut queue = VecDeque::from(issued);
        while let Some(command) = queue.pop_front() {
            let more = self
                .decide(&command.command, &command.payload)
                .unwrap_or_else(|code| panic!("{}: rejected {code}", command.command));
            queue.extend(more);
        }
    }

    /// Decides one command against the streams, records its events in the log and the
    /// streams, and gives what the process issues for them; keeps its timers.
    fn decide(&mut self, name: &str, payload: &[u8]) -> Result<Vec<Issued>, String> {
        let command = Orders::commands()
            .decode(name, None, payload)
            .unwrap_or_else(|e| panic!("{name} does not decode: {e}"))
            .command;
        self.commands += 1;
        let n = self.commands;
        let envelope = Envelope {
            command_id: Uuid::from_u128(u128::from(n)),
            recorded_at_ms: T0_MS + n * 1000,
            sequence: n,
            correlation_id: Uuid::from_u128(u128::from(n)),
        };
        let recorded = given_streams::<Orders>(self.streams.clone())
            .with_envelope(envelope)
            .when(command)
            .result_on()
            .map_err(|refusal| match refusal {
                Refusal::Rejected(rejection) => rejection.code.into_owned(),
                Refusal::Failed(failure) => panic!("{name} failed: {failure:?}"),
            })?;
        let mut issued = Vec::new();
        for (stream, event) in recorded {
            let mut data = Vec::new();
            event.encode_data(&mut data).unwrap();
            let events = self.streams.entry(stream.clone()).or_default();
            events.push(event.clone());
            self.log.push(RecordedEvent {
                position: self.log.len() as u64 + 1,
                stream: stream.clone(),
                version: events.len() as u64,
                event_type: event.event_type().to_owned(),
                data,
                command_id: envelope.command_id,
                correlation_id: envelope.correlation_id,
                recorded_at_ms: envelope.recorded_at_ms,
                schema_version: 1,
                recorded_schema_version: 1,
            });
            if let Some(event) = FulfilmentEvent::of(&event) {
                let (now, timers) =
                    react_at::<OrderFulfilment>(&event, &stream, envelope.recorded_at_ms).take();
                issued.extend(now);
                for op in timers {
                    match op {
                        TimerOp::Schedule { key, command, .. } => {
                            self.timers.insert(key, command);
                        }
                        TimerOp::Cancel { key, .. } => {
                            self.timers.remove(&key);
                        }
                    }
                }
            }
        }
        Ok(issued)
    }

    /// Time passes: every pending payment timer fires.
    fn expire(&mut self) {
        let timers = std::mem::take(&mut self.timers);
        self.run_issued(timers.into_values().collect());
    }

    fn add_stock(&mut self, sku: &str, quantity: u64) {
        let name = format!("The {sku}");
        self.ok(
            "AddStock",
            json!({"sku": sku, "name": name, "quantity": quantity}),
        );
    }

    /// Creates a draft order of `customer` with lines `(sku, quantity, unitPriceCents)`.
    fn draft(&mut self, id: &str, customer: &str, lines: &[(&str, u64, u64)]) {
        let name = format!("Customer {customer}");
        self.ok(
            "CreateOrder",
            json!({"orderId": id, "customerId": customer, "customerName": name}),
        );
        for (sku, quantity, price) in lines {
            self.ok(
                "AddItem",
                json!({"orderId": id, "sku": sku, "quantity": quantity, "unitPriceCents": price}),
            );
        }
    }

    /// Submits order `id`: the process reserves it (or cancels it, out of stock).
    fn submit(&mut self, id: &str) {
        self.ok("SubmitOrder", json!({"orderId": id}));
    }

    fn pay(&mut self, id: &str, amount_cents: u64) {
        self.ok(
            "RecordPayment",
            json!({"orderId": id, "amountCents": amount_cents}),
        );
    }

    fn ship(&mut self, id: &str) {
        self.ok("ShipOrder", json!({"orderId": id}));
    }

    fn cancel(&mut self, id: &str) {
        self.ok(
            "CancelOrder",
            json!({"orderId": id, "reason": "changed my mind"}),
        );
    }

    /// The read model of the log so far.
    fn snapshot(&self) -> Snapshot<OrdersView> {
        let mut replay = Replay::new(OrdersProjection);
        replay.apply(&self.log);
        assert_eq!(replay.stats().errors, 0, "{:?}", replay.stats().last_error);
        replay.snapshot()
    }

    /// Query `name` of API version 1 over the read model of the log so far.
    fn query(&self, name: &str, args: Value) -> Result<Value, QueryError> {
        call(&self.snapshot(), name, args)
    }
}

fn call(snapshot: &Snapshot<OrdersView>, name: &str, args: Value) -> Result<Value, QueryError> {
    let args = args.as_object().expect("arguments are an object").clone();
    catalog().call(1, name, snapshot, args)
}

#[track_caller]
fn then_error(result: Result<Value, QueryError>, code: &str) {
    match result {
        Err(e) => assert_eq!(e.code(), code, "{e}"),
        Ok(v) => panic!("expected {code}, got {v}"),
    }
}

/// The fields of an object, sorted.
fn fields(object: &Value) -> Vec<&str> {
    let mut fields: Vec<&str> = object
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    fields
}

/// The `id`s of a list of orders, or the `sku`s of a list of products.
fn keys(items: &Value) -> Vec<&str> {
    items
        .as_array()
        .expect("an array")
        .iter()
        .map(|item| {
            item.get("id")
                .unwrap_or_else(|| &item["sku"])
                .as_str()
                .unwrap()
        })
        .collect()
}

// ----- getOrder and orderHistory -----

#[test]
fn get_order_follows_an_order_from_draft_to_shipped() {
    let mut shop = Shop::stocked(&[("pen", 5)]); // command 1, position 1
    shop.draft("o-1", "c-1", &[("pen", 2, 150), ("ink", 1, 75)]); // 2-4, positions 2-4
    // The same sku again adds to its line at the line's price; the ink goes.
    shop.ok(
        "AddItem",
        json!({"orderId": "o-1", "sku": "pen", "quantity": 1, "unitPriceCents": 999}),
    ); // 5
    shop.ok("RemoveItem", json!({"orderId": "o-1", "sku": "ink"})); // 6
    let draft = json!({
        "id": "o-1", "customerId": "c-1", "customerName": "Customer c-1", "status": "draft",
        "items": [{"sku": "pen", "quantity": 3, "unitPriceCents": 150}],
        "totalCents": 450, "cancelReason": null, "paymentDueAt": null,
        "createdAt": at(2), "updatedAt": at(6),
    });
    assert_eq!(shop.query("getOrder", json!({"id": "o-1"})).unwrap(), draft);

    shop.submit("o-1"); // 7, and the process's ReserveOrder: 8
    let mut awaiting = draft.clone();
    awaiting["status"] = json!("awaiting_payment");
    awaiting["paymentDueAt"] = json!(due(7));
    awaiting["updatedAt"] = json!(at(8));
    assert_eq!(
        shop.query("getOrder", json!({"id": "o-1"})).unwrap(),
        awaiting
    );

    shop.pay("o-1", 450); // 9
    shop.ship("o-1"); // 10
    let mut shipped = awaiting;
    shipped["status"] = json!("shipped");
    shipped["updatedAt"] = json!(at(10));
    assert_eq!(
        shop.query("getOrder", json!({"id": "o-1"})).unwrap(),
        shipped
    );
}

#[test]
fn order_history_lists_the_orders_events_in_log_order() {
    let mut shop = Shop::stocked(&[("pen", 5)]); // command 1: position 1
    shop.draft("o-1", "c-1", &[("pen", 2, 150)]); // 2, 3: positions 2, 3
    shop.draft("o-2", "c-2", &[("pen", 1, 150)]); // 4, 5: positions 4, 5
    shop.submit("o-1"); // 6: position 6; ReserveOrder 7: positions 7 (order), 8 (product)
    shop.pay("o-1", 300); // 8: position 9
    let event = |position: u64, command: u64, event_type: &str, data: Value| json!({"type": event_type, "position": position, "recordedAt": at(command), "data": data});
    assert_eq!(
        shop.query("orderHistory", json!({"id": "o-1"})).unwrap(),
        json!({"id": "o-1", "events": [
            event(2, 2, "OrderCreated",
                  json!({"orderId": "o-1", "customerId": "c-1", "customerName": "Customer c-1"})),
            event(3, 3, "ItemAdded",
                  json!({"orderId": "o-1", "sku": "pen", "quantity": 2, "unitPriceCents": 150})),
            event(6, 6, "OrderSubmitted",
                  json!({"orderId": "o-1", "lines": [{"sku": "pen", "quantity": 2, "unitPriceCents": 150}],
                         "totalCents": 300, "paymentDueAtMs": due_ms(6)})),
            event(7, 7, "OrderReserved", json!({"orderId": "o-1", "paymentDueAtMs": due_ms(6)})),
            event(9, 8, "OrderPaid", json!({"orderId": "o-1", "amountCents": 300})),
        ]})
    );
    let other = shop.query("orderHistory", json!({"id": "o-2"})).unwrap();
    let positions: Vec<&Value> = other["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["position"])
        .collect();
    assert_eq!(positions, [4, 5]);
}

#[test]
fn get_order_says_why_an_order_was_cancelled() {
    let mut shop = Shop::stocked(&[("pen", 5)]);
    shop.draft("by-client", "c-1", &[("pen", 1, 100)]);
    shop.cancel("by-client");
    shop.draft("no-stock", "c-1", &[("pen", 1, 100), ("ink", 1, 100)]);
    shop.submit("no-stock");
    shop.draft("too-late", "c-1", &[("pen", 2, 100)]);
    shop.submit("too-late");
    shop.draft("paid", "c-1", &[("pen", 1, 100)]);
    shop.submit("paid");
    shop.pay("paid", 100);
    shop.expire(); // only too-late's timer is left
    let cases = [
        ("by-client", "cancelled", json!("changed my mind"), false),
        ("no-stock", "cancelled", json!("out_of_stock"), true),
        ("too-late", "cancelled", json!("payment_timeout"), true),
        ("paid", "paid", Value::Null, true),
    ];
    for (id, status, reason, due) in cases {
        let order = shop.query("getOrder", json!({"id": id})).unwrap();
        assert_eq!(order["status"], status, "{id}");
        assert_eq!(order["cancelReason"], reason, "{id}");
        assert_eq!(order["paymentDueAt"].is_string(), due, "{id}");
    }
    // Whatever cancelled them, they hold no stock: the pen's only reservation is paid's.
    assert_eq!(
        shop.query("getStock", json!({"sku": "pen"})).unwrap()["reserved"],
        1
    );
}

#[test]
fn get_order_and_order_history_refusals() {
    let mut shop = Shop::default();
    shop.draft("o-1", "c-1", &[]);
    for query in ["getOrder", "orderHistory"] {
        then_error(shop.query(query, json!({"id": "o-2"})), "not_found");
        then_error(shop.query(query, json!({"id": ""})), "not_found");
        then_error(shop.query(query, json!({})), "bad_argument");
        then_error(shop.query(query, json!({"id": 1})), "bad_argument");
        then_error(
            shop.query(query, json!({"id": "o-1", "x": 1})),
            "bad_argument",
        );
        let args = json!({"id": "o-1"}).as_object().unwrap().clone();
        then_error(
            catalog().call(2, query, &shop.snapshot(), args),
            "unknown_version",
        );
    }
    then_error(shop.query("getOrders", json!({})), "unknown_query");
}

// ----- currentOrders -----

/// Orders in every status, `o-1` to `o-7` (customers `c-1`, `c-2`, `c-3`).
fn every_status() -> Shop {
    let mut shop = Shop::stocked(&[("pen", 100)]);
    shop.draft("o-1", "c-1", &[("pen", 1, 100)]); // draft
    shop.draft("o-2", "c-2", &[("pen", 1, 100)]);
    shop.submit("o-2"); // awaiting_payment
    shop.draft("o-3", "c-1", &[("pen", 1, 100)]);
    shop.submit("o-3");
    shop.pay("o-3", 100); // paid
    shop.draft("o-4", "c-1", &[("pen", 1, 100)]);
    shop.submit("o-4");
    shop.pay("o-4", 100);
    shop.ship("o-4"); // shipped
    shop.draft("o-5", "c-2", &[("pen", 1, 100)]);
    shop.cancel("o-5"); // cancelled
    shop.draft("o-6", "c-1", &[("pen", 1, 100)]);
    shop.submit("o-6"); // awaiting_payment
    shop.draft("o-7", "c-3", &[("ink", 1, 100)]);
    shop.submit("o-7"); // cancelled: out_of_stock
    shop
}

#[test]
fn current_orders_lists_live_orders_newest_first_by_status_and_customer() {
    let shop = every_status();
    let snapshot = shop.snapshot();
    let cases: &[(Value, &[&str])] = &[
        (json!({}), &["o-6", "o-3", "o-2", "o-1"]),
        (json!({"status": "draft"}), &["o-1"]),
        (json!({"status": "submitted"}), &[]), // until its reservation, right after
        (json!({"status": "awaiting_payment"}), &["o-6", "o-2"]),
        (json!({"status": "paid"}), &["o-3"]),
        // Never current: an empty page.
        (json!({"status": "shipped"}), &[]),
        (json!({"status": "cancelled", "limit": ""}), &[]),
        (json!({"customerId": "c-1"}), &["o-6", "o-3", "o-1"]),
        (
            json!({"customerId": "c-1", "status": "awaiting_payment"}),
            &["o-6"],
        ),
        (json!({"customerId": "c-3"}), &[]), // its only order is cancelled
        (json!({"customerId": "nobody"}), &[]),
        // Empty values filter nothing, as from a form.
        (
            json!({"status": "", "customerId": "", "cursor": ""}),
            &["o-6", "o-3", "o-2", "o-1"],
        ),
        (json!({"limit": 2}), &["o-6", "o-3"]),
        (json!({"limit": "2", "customerId": "c-1"}), &["o-6", "o-3"]),
        (json!({"limit": 0}), &[]),
    ];
    for (args, expected) in cases {
        let page = call(&snapshot, "currentOrders", args.clone()).unwrap();
        assert_eq!(keys(&page["items"]), *expected, "{args}");
        assert_eq!(fields(&page), ["cursor", "items"], "{args}");
    }
    // Items are orders as getOrder answers them.
    let page = call(&snapshot, "currentOrders", json!({})).unwrap();
    for item in page["items"].as_array().unwrap() {
        assert_eq!(
            *item,
            call(&snapshot, "getOrder", json!({"id": item["id"]})).unwrap()
        );
    }
    assert_eq!(page["cursor"], Value::Null);
}

#[test]
fn current_orders_refusals() {
    let shop = every_status();
    for args in [
        json!({"status": "pending"}),
        json!({"status": "Paid"}),
        json!({"status": 1}),
        json!({"customerId": 3}),
        json!({"limit": 1001}),
        json!({"limit": -1}),
        json!({"limit": "ten"}),
        json!({"cursor": "zz"}),
        json!({"cursor": "-1"}),
        json!({"cursor": 7}),
        json!({"cursor": "73.1"}), // a listStock cursor
        json!({"order": "asc"}),
    ] {
        then_error(shop.query("currentOrders", args), "bad_argument");
    }
    let most = shop.query("currentOrders", json!({"limit": 1000})).unwrap();
    assert_eq!(keys(&most["items"]).len(), 4);
}

#[test]
fn current_orders_pages_across_snapshots_without_repeating_or_skipping() {
    let mut shop = Shop::stocked(&[("pen", 100)]);
    for n in 1..=8 {
        shop.draft(&format!("o-{n}"), "c-1", &[("pen", 1, 100)]);
    }
    let first = shop.query("currentOrders", json!({"limit": 3})).unwrap();
    assert_eq!(keys(&first["items"]), ["o-8", "o-7", "o-6"]);
    // Between two pages: new orders, whatever their ids; a listed order and an order not
    // listed yet leave the current ones; another moves on but stays current.
    shop.draft("o-9", "c-1", &[]);
    shop.draft("a-0", "c-1", &[]);
    shop.cancel("o-7");
    shop.cancel("o-4");
    shop.submit("o-3");
    let second = shop
        .query(
            "currentOrders",
            json!({"limit": 3, "cursor": first["cursor"]}),
        )
        .unwrap();
    assert_eq!(keys(&second["items"]), ["o-5", "o-3", "o-2"]);
    assert_eq!(second["items"][1]["status"], "awaiting_payment");
    shop.draft("o-10", "c-1", &[]);
    let third = shop
        .query(
            "currentOrders",
            json!({"limit": 3, "cursor": second["cursor"]}),
        )
        .unwrap();
    assert_eq!(keys(&third["items"]), ["o-1"]);
    assert_eq!(third["cursor"], Value::Null);
    // A page that ends with the last order has no cursor either.
    let exact = shop
        .query(
            "currentOrders",
            json!({"limit": 1, "cursor": second["cursor"]}),
        )
        .unwrap();
    assert_eq!(
        (keys(&exact["items"]), &exact["cursor"]),
        (vec!["o-1"], &Value::Null)
    );
}

// ----- customerOrders -----

#[test]
fn customer_orders_counts_what_is_paid_or_shipped() {
    let mut shop = Shop::stocked(&[("pen", 100)]);
    shop.draft("o-1", "c-1", &[("pen", 1, 100)]); // draft: 100
    shop.draft("o-2", "c-1", &[("pen", 2, 100)]);
    shop.submit("o-2"); // awaiting_payment: 200
    shop.draft("o-3", "c-1", &[("pen", 3, 100)]);
    shop.submit("o-3");
    shop.pay("o-3", 300); // paid: 300
    shop.draft("o-4", "c-2", &[("pen", 7, 100)]);
    shop.submit("o-4");
    shop.pay("o-4", 700);
    shop.ship("o-4"); // another customer's
    shop.draft("o-5", "c-1", &[("pen", 4, 100)]);
    shop.submit("o-5");
    shop.pay("o-5", 400);
    shop.ship("o-5"); // shipped: 400
    shop.draft("o-6", "c-1", &[("pen", 5, 100)]);
    shop.submit("o-6");
    shop.pay("o-6", 500);
    shop.cancel("o-6"); // paid, then cancelled: 500, not counted
    shop.draft("o-7", "c-1", &[("ink", 1, 50)]);
    shop.submit("o-7"); // out of stock: 50
    assert_eq!(
        shop.query("customerOrders", json!({"customerId": "c-1"}))
            .unwrap(),
        json!({
            "customerId": "c-1", "orderCount": 6, "totalSpentCents": 700,
            "orders": [
                {"id": "o-1", "status": "draft", "totalCents": 100},
                {"id": "o-2", "status": "awaiting_payment", "totalCents": 200},
                {"id": "o-3", "status": "paid", "totalCents": 300},
                {"id": "o-5", "status": "shipped", "totalCents": 400},
                {"id": "o-6", "status": "cancelled", "totalCents": 500},
                {"id": "o-7", "status": "cancelled", "totalCents": 50},
            ],
        })
    );
    assert_eq!(
        shop.query("customerOrders", json!({"customerId": "c-2"}))
            .unwrap(),
        json!({"customerId": "c-2", "orderCount": 1, "totalSpentCents": 700,
               "orders": [{"id": "o-4", "status": "shipped", "totalCents": 700}]})
    );
    // A customer without orders is not a 404.
    assert_eq!(
        shop.query("customerOrders", json!({"customerId": "c-9"}))
            .unwrap(),
        json!({"customerId": "c-9", "orderCount": 0, "totalSpentCents": 0, "orders": []})
    );
    for args in [
        json!({}),
        json!({"customerId": 1}),
        json!({"customerId": "c-1", "limit": 1}),
    ] {
        then_error(shop.query("customerOrders", args), "bad_argument");
    }
}

// ----- getStock and listStock -----

#[test]
fn stock_follows_reservations_releases_shipments_and_restocks() {
    let mut shop = Shop::stocked(&[("pen", 10)]);
    let stock = |shop: &Shop| shop.query("getStock", json!({"sku": "pen"})).unwrap();
    let figures = |on_hand: u64, reserved: u64, available: u64| {
        json!({"sku": "pen", "name": "The pen", "onHand": on_hand, "reserved": reserved,
               "available": available})
    };
    assert_eq!(stock(&shop), figures(10, 0, 10));
    shop.draft("a", "c-1", &[("pen", 3, 100)]);
    assert_eq!(stock(&shop), figures(10, 0, 10), "a draft reserves nothing");
    shop.submit("a");
    assert_eq!(stock(&shop), figures(10, 3, 7));
    shop.draft("b", "c-1", &[("pen", 2, 100)]);
    shop.submit("b");
    assert_eq!(stock(&shop), figures(10, 5, 5));
    shop.cancel("a");
    assert_eq!(stock(&shop), figures(10, 2, 8), "a's reservation released");
    shop.pay("b", 200);
    assert_eq!(stock(&shop), figures(10, 2, 8));
    shop.ship("b");
    assert_eq!(stock(&shop), figures(8, 0, 8), "b's units left");
    shop.draft("c", "c-1", &[("pen", 9, 100)]);
    shop.submit("c");
    assert_eq!(
        stock(&shop),
        figures(8, 0, 8),
        "c is out of stock: nothing reserved"
    );
    shop.draft("d", "c-1", &[("pen", 8, 100)]);
    shop.submit("d");
    assert_eq!(stock(&shop), figures(8, 8, 0));
    shop.expire();
    assert_eq!(stock(&shop), figures(8, 0, 8), "d's payment timed out");
    shop.ok(
        "AddStock",
        json!({"sku": "pen", "name": "Pen, blue", "quantity": 5}),
    );
    assert_eq!(
        stock(&shop),
        json!({"sku": "pen", "name": "Pen, blue", "onHand": 13, "reserved": 0, "available": 13})
    );
}

#[test]
fn get_stock_refusals() {
    let mut shop = Shop::stocked(&[("pen", 1)]);
    // An order's line of a sku never stocked does not make it a product.
    shop.draft("o-1", "c-1", &[("ink", 1, 100)]);
    shop.submit("o-1");
    then_error(shop.query("getStock", json!({"sku": "ink"})), "not_found");
    then_error(shop.query("getStock", json!({"sku": "PEN"})), "not_found");
    then_error(shop.query("getStock", json!({})), "bad_argument");
    then_error(shop.query("getStock", json!({"sku": 7})), "bad_argument");
    then_error(shop.query("getStock", json!({"id": "pen"})), "bad_argument");
}

/// Products `b`, `d`, `a`, `c`, `e` stocked in that order, with 2, 4, 1, 3 and 5 units
/// available.
fn five_products() -> Shop {
    Shop::stocked(&[("b", 2), ("d", 4), ("a", 1), ("c", 3), ("e", 5)])
}

#[test]
fn list_stock_lists_by_sku_below_an_availability() {
    let mut shop = five_products();
    shop.draft("o-1", "c-1", &[("e", 4, 100)]);
    shop.submit("o-1"); // e: 5 on hand, 4 reserved, 1 available
    let snapshot = shop.snapshot();
    let cases: &[(Value, &[&str])] = &[
        (json!({}), &["a", "b", "c", "d", "e"]),
        (json!({"belowAvailable": 3}), &["a", "b", "e"]),
        (json!({"belowAvailable": "2"}), &["a", "e"]),
        (json!({"belowAvailable": 1}), &[]),
        (json!({"belowAvailable": 0}), &[]),
        (json!({"belowAvailable": 100}), &["a", "b", "c", "d", "e"]),
        (json!({"limit": 2}), &["a", "b"]),
        (json!({"limit": 2, "belowAvailable": 3}), &["a", "b"]),
        (json!({"limit": 0}), &[]),
        (json!({"cursor": ""}), &["a", "b", "c", "d", "e"]),
    ];
    for (args, expected) in cases {
        let page = call(&snapshot, "listStock", args.clone()).unwrap();
        assert_eq!(keys(&page["items"]), *expected, "{args}");
        assert_eq!(fields(&page), ["cursor", "items"], "{args}");
    }
    // Items are stock as getStock answers it.
    let page = call(&snapshot, "listStock", json!({"belowAvailable": 2})).unwrap();
    assert_eq!(
        page,
        json!({"items": [
            {"sku": "a", "name": "The a", "onHand": 1, "reserved": 0, "available": 1},
            {"sku": "e", "name": "The e", "onHand": 5, "reserved": 4, "available": 1},
        ], "cursor": null})
    );
}

#[test]
fn list_stock_pages_across_snapshots_by_sku() {
    let mut shop = five_products();
    let first = shop.query("listStock", json!({"limit": 2})).unwrap();
    assert_eq!(keys(&first["items"]), ["a", "b"]);
    // Stocked between pages: before the cursor (not listed) and after it (listed).
    shop.add_stock("aa", 1);
    shop.add_stock("bb", 1);
    shop.add_stock("b", 1); // more of a listed one: not again
    let second = shop
        .query("listStock", json!({"limit": 2, "cursor": first["cursor"]}))
        .unwrap();
    assert_eq!(keys(&second["items"]), ["bb", "c"]);
    let third = shop
        .query("listStock", json!({"limit": 2, "cursor": second["cursor"]}))
        .unwrap();
    assert_eq!(keys(&third["items"]), ["d", "e"]);
    assert_eq!(third["cursor"], Value::Null);

    // With a filter, the cursor goes on past the products left out.
    let low = json!({"limit": 1, "belowAvailable": 2});
    let mut listed = Vec::new();
    let mut args = low.clone();
    loop {
        let page = shop.query("listStock", args.clone()).unwrap();
        listed.extend(keys(&page["items"]).into_iter().map(str::to_owned));
        match &page["cursor"] {
            Value::Null => break,
            cursor => {
                args = low.clone();
                args["cursor"] = cursor.clone();
            }
        }
    }
    assert_eq!(listed, ["a", "aa", "bb"]);
}

#[test]
fn list_stock_refusals() {
    let shop = five_products();
    for args in [
        json!({"belowAvailable": -1}),
        json!({"belowAvailable": "few"}),
        json!({"belowAvailable": 1.5}),
        json!({"limit": 1001}),
        json!({"cursor": "zz"}),
        json!({"cursor": "7"}), // a currentOrders cursor
        json!({"cursor": "6.1"}),
        json!({"sku": "a"}),
    ] {
        then_error(shop.query("listStock", args), "bad_argument");
    }
}

// ----- the catalog as query code sees it -----

#[test]
fn query_code_calls_the_six_queries_by_position_or_with_one_object() {
    let shop = every_status();
    let library = std::sync::Arc::new(catalog())
        .bind(1, std::sync::Arc::new(shop.snapshot()))
        .unwrap();
    let functions: Vec<(String, Vec<String>)> = library
        .functions()
        .into_iter()
        .map(|f| (f.name, f.params))
        .collect();
    let expected: Vec<(String, Vec<String>)> = [
        (
            "currentOrders",
            &["status", "customerId", "limit", "cursor"][..],
        ),
        ("customerOrders", &["customerId"]),
        ("getOrder", &["id"]),
        ("getStock", &["sku"]),
        ("listStock", &["belowAvailable", "limit", "cursor"]),
        ("orderHistory", &["id"]),
    ]
    .into_iter()
    .map(|(name, params)| {
        (
            name.to_owned(),
            params.iter().map(|p| (*p).to_owned()).collect(),
        )
    })
    .collect();
    assert_eq!(functions, expected);
    let args = |value: Value| value.as_object().unwrap().clone();
    let unlimited = Budget::unlimited();
    // getOrder("o-3"): positional.
    let order = library
        .call("getOrder", args(json!({"id": "o-3"})), &unlimited)
        .unwrap();
    assert_eq!(order["status"], "paid");
    // currentOrders({status: "awaiting_payment"}): one object.
    let page = library
        .call(
            "currentOrders",
            args(json!({"status": {"status": "awaiting_payment"}})),
            &unlimited,
        )
        .unwrap();
    assert_eq!(keys(&page["items"]), ["o-6", "o-2"]);
    // currentOrders("paid", "c-1"): positional.
    let page = library
        .call(
            "currentOrders",
            args(json!({"status": "paid", "customerId": "c-1"})),
            &unlimited,
        )
        .unwrap();
    assert_eq!(keys(&page["items"]), ["o-3"]);
    assert_eq!(library.position(), shop.log.len() as u64);
}

// ----- events that do not fit -----

fn event(position: u64, stream: &str, event_type: &str, data: &str) -> RecordedEvent {
    RecordedEvent {
        position,
        stream: stream.into(),
        version: 0, // not read by the projection
        event_type: event_type.into(),
        data: data.as_bytes().to_vec(),
        command_id: Uuid::from_u128(u128::from(position)),
        correlation_id: Uuid::from_u128(u128::from(position)),
        recorded_at_ms: T0_MS + position * 1000,
        schema_version: 1,
        recorded_schema_version: 1,
    }
}

#[test]
fn events_that_do_not_fit_are_skipped_without_changing_the_view() {
    let created = r#"{"orderId":"o-1","customerId":"c-1","customerName":"Ada"}"#;
    let events = [
        event(1, "order-o-1", "OrderCreated", created),
        event(
            2,
            "product-pen",
            "StockAdded",
            r#"{"sku":"pen","name":"Pen","quantity":5}"#,
        ),
        // Refused:
        event(3, "order-o-1", "OrderCreated", created),
        event(
            4,
            "order-o-2",
            "OrderPaid",
            r#"{"orderId":"o-2","amountCents":1}"#,
        ),
        event(
            5,
            "order-o-2",
            "ItemAdded",
            r#"{"orderId":"o-1","sku":"pen","quantity":1,"unitPriceCents":1}"#,
        ),
        event(
            6,
            "order-o-1",
            "ItemRemoved",
            r#"{"orderId":"o-1","sku":"pen"}"#,
        ),
        event(
            7,
            "product-ink",
            "StockReserved",
            r#"{"sku":"ink","orderId":"o-1","quantity":1}"#,
        ),
        event(
            8,
            "order-o-1",
            "ItemAdded",
            r#"{"orderId":"o-1","sku":"pen","quantity":"two","unitPriceCents":1}"#,
        ),
        event(
            9,
            "order-o-1",
            "ItemAdded",
            r#"{"orderId":"o-1","sku":"","quantity":1,"unitPriceCents":1}"#,
        ),
        event(10, "order-o-1", "OrderPaid", "not json"),
        event(
            11,
            "product-pen",
            "StockAdded",
            r#"{"sku":"ink","name":"Ink","quantity":5}"#,
        ),
        // Applied:
        event(
            12,
            "order-o-1",
            "ItemAdded",
            r#"{"orderId":"o-1","sku":"pen","quantity":2,"unitPriceCents":150}"#,
        ),
        event(13, "order-o-1", "NotAnOrdersEvent", "{}"),
    ];
    let mut replay = Replay::new(OrdersProjection);
    replay.apply(&events);
    let stats = replay.stats();
    assert_eq!(
        (stats.events_applied, stats.errors, stats.events_ignored),
        (3, 9, 1)
    );
    assert_eq!(stats.last_error.as_ref().unwrap().position, 11);
    let view = replay.state();
    let order = view.order("o-1").unwrap();
    assert_eq!(
        (
            &*order.customer_name,
            order.total_cents,
            order.history.len()
        ),
        ("Ada", 300, 2)
    );
    assert_eq!(order.updated.position, 12);
    assert!(view.order("o-2").is_none());
    assert!(view.product("ink").is_none());
    assert_eq!(view.product("pen").unwrap().reserved, 0);
    assert_eq!((view.len(), view.products().count()), (1, 1));
}

#[test]
fn the_counts_by_status_and_the_current_set_follow_every_move() {
    let shop = every_status();
    let view = shop.snapshot().state;
    let counts: Vec<(OrderStatus, usize)> = OrderStatus::ALL
        .into_iter()
        .map(|status| (status, view.count(status)))
        .collect();
    assert_eq!(
        counts,
        [
            (OrderStatus::Draft, 1),
            (OrderStatus::Submitted, 0),
            (OrderStatus::AwaitingPayment, 2),
            (OrderStatus::Paid, 1),
            (OrderStatus::Shipped, 1),
            (OrderStatus::Cancelled, 2),
        ]
    );
    assert_eq!(view.current_count(), 4);
    assert_eq!(
        view.current_count(),
        view.orders().filter(|order| order.is_current()).count()
    );
}

#[test]
fn warming_changes_nothing_and_takes_any_id() {
    let shop = every_status();
    let view = shop.snapshot().state;
    let before = view.clone();
    view.warm(["o-1", "o-7", "", "nope", "order-o-1"].into_iter());
    assert!(view == before);
}

// ----- snapshots -----

/// `view` saved and loaded again, every byte read.
fn saved_and_loaded(view: &OrdersView) -> Result<OrdersView, writ_query::snapshot::SnapshotError> {
    let mut out = writ_query::snapshot::Writer::new();
    OrdersProjection.save(view, &mut out);
    let bytes = out.into_vec();
    let mut input = writ_query::snapshot::Reader::new(&bytes);
    let loaded = OrdersProjection.load(&mut input)?;
    input.finish()?;
    Ok(loaded)
}

/// Every query of version 1 over `snapshot`, with the ids and skus of `shop`, as JSON.
fn every_answer(snapshot: &Snapshot<OrdersView>) -> Vec<Value> {
    let answer = |name: &str, args: Value| {
        call(snapshot, name, args).unwrap_or_else(|e| json!({"error": e.to_string()}))
    };
    let mut answers = Vec::new();
    for order in snapshot.state.orders() {
        answers.push(answer("getOrder", json!({"id": &*order.id})));
        answers.push(answer("orderHistory", json!({"id": &*order.id})));
        answers.push(answer(
            "customerOrders",
            json!({"customerId": &*order.customer_id}),
        ));
    }
    for status in ["draft", "awaiting_payment", "paid"] {
        answers.push(answer(
            "currentOrders",
            json!({"status": status, "limit": 2}),
        ));
    }
    answers.push(answer("currentOrders", json!({})));
    answers.push(answer("listStock", json!({"limit": 2})));
    answers.push(answer("listStock", json!({})));
    for sku in ["pen", "ink", "nope"] {
        answers.push(answer("getStock", json!({"sku": sku})));
    }
    answers
}

#[test]
fn a_view_loaded_from_its_snapshot_answers_every_query_as_the_replayed_one_and_goes_on() {
    let mut shop = every_status();
    let at = shop.log.len();
    let replayed = shop.snapshot();
    let loaded = saved_and_loaded(&replayed.state).expect("loads");
    assert!(loaded == replayed.state);
    let from_snapshot = Snapshot {
        state: loaded.clone(),
        position: replayed.position,
        root: replayed.root,
    };
    assert_eq!(every_answer(&from_snapshot), every_answer(&replayed));

    // More moves after the snapshot: a payment, a shipment, a cancellation, a restock.
    shop.pay("o-2", 100);
    shop.ship("o-2");
    shop.cancel("o-1");
    shop.add_stock("ink", 5);
    let mut resumed = Replay::resume(OrdersProjection, loaded, replayed.position);
    resumed.apply(&shop.log[at..]);
    assert_eq!(
        resumed.stats().errors,
        0,
        "{:?}",
        resumed.stats().last_error
    );
    let live = shop.snapshot();
    assert!(resumed.state() == &live.state);
    assert_eq!(every_answer(&resumed.snapshot()), every_answer(&live));
}

#[test]
fn a_cut_or_altered_snapshot_does_not_load() {
    let view = every_status().snapshot().state;
    let mut out = writ_query::snapshot::Writer::new();
    OrdersProjection.save(&view, &mut out);
    let bytes = out.into_vec();
    for len in 0..bytes.len() {
        let mut input = writ_query::snapshot::Reader::new(&bytes[..len]);
        assert!(
            OrdersProjection.load(&mut input).is_err() || input.finish().is_err(),
            "cut at {len}"
        );
    }
    // An order filed under another status is refused, not served.
    let mut wrong = view.clone();
    wrong.refile_for_test();
    let mut out = writ_query::snapshot::Writer::new();
    OrdersProjection.save(&wrong, &mut out);
    let bytes = out.into_vec();
    let error = OrdersProjection
        .load(&mut writ_query::snapshot::Reader::new(&bytes))
        .unwrap_err();
    assert!(
        error.to_string().contains("not in the set of its status"),
        "{error}"
    );
    // Any bytes fail or load, never panic.
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for round in 0..2_000 {
        let mut noise = bytes.clone();
        for _ in 0..=(round % 8) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = (seed as usize) % noise.len();
            noise[at] = (seed >> 32) as u8;
        }
        let _ = OrdersProjection.load(&mut writ_query::snapshot::Reader::new(&noise));
    }
}
