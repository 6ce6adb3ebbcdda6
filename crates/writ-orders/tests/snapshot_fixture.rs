//! A read model snapshot file written by the first build of the orders format
//! (`tests/fixtures/orders-v1-format1.snap`): every later build must decode its header and
//! load its state equal to the one a replay of the same events builds, or bump the
//! snapshot format (and keep this file, under a test that says it is ignored).
//!
//! `WRIT_WRITE_FIXTURES=1 cargo test -p writ-orders --test snapshot_fixture` writes it
//! again; never do that for a format already released.

use serde_json::{Value, json};
use writ_orders::read::{OrdersProjection, catalog};
use writ_query::snapshot::{Reader, SnapshotHeader, Writer};
use writ_query::{JournalMark, Projection, RecordedEvent, Replay, Snapshot};

const FIXTURE: &str = "tests/fixtures/orders-v1-format1.snap";

/// Two products; an order in each status: a draft with a line removed, one awaiting
/// payment, one paid, one shipped, one cancelled by its customer after its reservation,
/// and one cancelled for want of stock.
fn events() -> Vec<RecordedEvent> {
    let line =
        |sku: &str, quantity: u64| json!({"sku": sku, "quantity": quantity, "unitPriceCents": 250});
    let mut steps: Vec<(&str, String, Value)> = vec![
        (
            "StockAdded",
            "product-pen".into(),
            json!({"sku": "pen", "name": "Pen", "quantity": 10}),
        ),
        (
            "StockAdded",
            "product-ink".into(),
            json!({"sku": "ink", "name": "Ink", "quantity": 1}),
        ),
    ];
    let mut order = |id: &str, customer: &str, lines: &[(&str, u64)], fate: &str| {
        let stream = format!("order-{id}");
        steps.push(("OrderCreated", stream.clone(),
            json!({"orderId": id, "customerId": customer, "customerName": format!("Customer {customer}")})));
        for (sku, quantity) in lines {
            steps.push((
                "ItemAdded",
                stream.clone(),
                json!({"orderId": id, "sku": sku, "quantity": quantity, "unitPriceCents": 250}),
            ));
        }
        if fate == "draft" {
            steps.push((
                "ItemRemoved",
                stream.clone(),
                json!({"orderId": id, "sku": lines[0].0}),
            ));
            return;
        }
        let total: u64 = lines.iter().map(|(_, q)| q * 250).sum();
        let due = 1_800_000_900_000_u64;
        steps.push((
            "OrderSubmitted",
            stream.clone(),
            json!({"orderId": id,
            "lines": lines.iter().map(|(sku, q)| line(sku, *q)).collect::<Vec<_>>(),
            "totalCents": total, "paymentDueAtMs": due}),
        ));
        if fate == "out_of_stock" {
            steps.push((
                "OrderCancelled",
                stream.clone(),
                json!({"orderId": id, "reason": "out_of_stock"}),
            ));
            return;
        }
        for (sku, q) in lines {
            steps.push((
                "StockReserved",
                format!("product-{sku}"),
                json!({"sku": sku, "orderId": id, "quantity": q}),
            ));
        }
        steps.push((
            "OrderReserved",
            stream.clone(),
            json!({"orderId": id, "paymentDueAtMs": due}),
        ));
        match fate {
            "awaiting" => {}
            "cancelled" => {
                steps.push((
                    "OrderCancelled",
                    stream.clone(),
                    json!({"orderId": id, "reason": "changed my mind"}),
                ));
                for (sku, q) in lines {
                    steps.push((
                        "StockReleased",
                        format!("product-{sku}"),
                        json!({"sku": sku, "orderId": id, "quantity": q}),
                    ));
                }
            }
            _ => {
                steps.push((
                    "OrderPaid",
                    stream.clone(),
                    json!({"orderId": id, "amountCents": total}),
                ));
                if fate == "shipped" {
                    steps.push(("OrderShipped", stream.clone(), json!({"orderId": id})));
                    for (sku, q) in lines {
                        steps.push((
                            "StockShipped",
                            format!("product-{sku}"),
                            json!({"sku": sku, "orderId": id, "quantity": q}),
                        ));
                    }
                }
            }
        }
    };
    order("o-1", "c-1", &[("pen", 1), ("ink", 1)], "draft");
    order("o-2", "c-1", &[("pen", 2)], "awaiting");
    order("o-3", "c-2", &[("pen", 1)], "paid");
    order("o-4", "c-1", &[("pen", 3), ("ink", 1)], "shipped");
    order("o-5", "c-2", &[("pen", 1)], "cancelled");
    order("o-6", "c-3", &[("ink", 5)], "out_of_stock");
    let mut events: Vec<RecordedEvent> = Vec::new();
    for (event_type, stream, data) in steps {
        let position = events.len() as u64 + 1;
        let version = events.iter().filter(|e| e.stream == stream).count() as u64 + 1;
        events.push(RecordedEvent {
            position,
            stream,
            version,
            event_type: event_type.into(),
            data: serde_json::to_vec(&data).unwrap(),
            recorded_at_ms: 1_800_000_000_000 + position * 1000,
            schema_version: 1,
            recorded_schema_version: 1,
            ..RecordedEvent::default()
        });
    }
    events
}

#[test]
fn the_committed_snapshot_fixture_keeps_loading() {
    let projection = OrdersProjection;
    let mut replay = Replay::new(projection);
    replay.apply(&events());
    assert_eq!(replay.stats().errors, 0, "{:?}", replay.stats().last_error);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
    if std::env::var_os("WRIT_WRITE_FIXTURES").is_some() {
        let mut out = Writer::new();
        projection.save(replay.state(), &mut out);
        let file = SnapshotHeader {
            model: "orders".into(),
            projection_version: 1,
            format: 1,
            build: "fixture".into(),
            position: replay.position(),
            journal: JournalMark([0x4f; JournalMark::BYTES]),
        }
        .encode(&out.into_vec());
        std::fs::write(&path, file).unwrap();
    }
    let file = std::fs::read(&path).unwrap();
    let (header, body) = SnapshotHeader::decode(&file).expect("the fixture decodes");
    assert_eq!(
        (
            header.model.as_str(),
            header.projection_version,
            header.format,
            header.build.as_str(),
            header.position
        ),
        ("orders", 1, 1, "fixture", replay.position())
    );
    assert_eq!(header.journal, JournalMark([0x4f; JournalMark::BYTES]));
    assert_eq!(projection.snapshot_format(), Some(header.format));
    let mut input = Reader::new(body);
    let loaded = projection
        .load(&mut input)
        .expect("the fixture's state loads");
    input.finish().unwrap();
    assert!(&loaded == replay.state());

    let snapshot = Snapshot {
        state: loaded,
        position: header.position,
        root: projection.root(),
    };
    let catalog = catalog();
    let call = |name, args: Value| {
        catalog
            .call(1, name, &snapshot, args.as_object().unwrap().clone())
            .unwrap()
    };
    let statuses: Vec<Value> = (1..=6)
        .map(|n| call("getOrder", json!({"id": format!("o-{n}")}))["status"].clone())
        .collect();
    assert_eq!(
        statuses,
        [
            "draft",
            "awaiting_payment",
            "paid",
            "shipped",
            "cancelled",
            "cancelled"
        ]
    );
    let pen = call("getStock", json!({"sku": "pen"}));
    assert_eq!(
        (&pen["onHand"], &pen["reserved"]),
        (&json!(7), &json!(3)),
        "{pen}"
    );
    let spent = call("customerOrders", json!({"customerId": "c-1"}));
    assert_eq!(spent["totalSpentCents"], 1000, "{spent}");
    assert_eq!(
        call("orderHistory", json!({"id": "o-5"}))["events"]
            .as_array()
            .map(Vec::len),
        Some(5)
    );
}
