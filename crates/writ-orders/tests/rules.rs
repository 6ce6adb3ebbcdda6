//! The orders domain's public contract: every rule and rejection code, the decisions over
//! an order and its products, the fulfilment process's reactions, JSON decoding of every
//! command, and the schema failures that are decoding errors (`422`).

use serde_json::{Value, json};
use writ_domain::testing::{DEFAULT_ENVELOPE, decode_error, given, given_streams, react};
use writ_domain::{
    CommandError, CommandInfo, Domain, Envelope, EventSet, Process, Refusal, TimerOp,
};
use writ_orders::{
    AddItem, AddStock, CENTS_MAX, CancelOrder, CreateOrder, CustomerId, ExpireOrder,
    FulfilmentEvent, ItemAdded, ItemRemoved, Line, ORDER_LINES_MAX, OrderCancelled, OrderCommand,
    OrderCreated, OrderEvent, OrderFulfilment, OrderId, OrderPaid, OrderReserved, OrderShipped,
    OrderStatus, OrderSubmitted, Orders, OrdersState, QUANTITY_MAX, RecordPayment, RemoveItem,
    ReserveOrder, ShipOrder, Sku, StockAdded, StockReleased, StockReserved, StockShipped,
    SubmitOrder, codes,
};

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

const O: &str = "o-1";
const ORDER: &str = "order-o-1";
const PEN: &str = "pen";
const INK: &str = "ink";
/// When the scenarios' commands are recorded.
const NOW: u64 = DEFAULT_ENVELOPE.recorded_at_ms;
/// When a payment is due by default.
const DUE: u64 = NOW + 900_000;

fn oid() -> OrderId {
    OrderId::new(O).unwrap()
}

fn sku(s: &str) -> Sku {
    Sku::new(s).unwrap()
}

fn product(s: &str) -> String {
    format!("product-{s}")
}

fn line(s: &str, quantity: u64, unit_price_cents: u64) -> Line {
    Line {
        sku: sku(s),
        quantity,
        unit_price_cents,
    }
}

// Events of the order.

fn created() -> OrderEvent {
    OrderCreated {
        order_id: oid(),
        customer_id: CustomerId::new("c-1").unwrap(),
        customer_name: "Ada".into(),
    }
    .into()
}

fn item_added(s: &str, quantity: u64, unit_price_cents: u64) -> OrderEvent {
    ItemAdded {
        order_id: oid(),
        sku: sku(s),
        quantity,
        unit_price_cents,
    }
    .into()
}

fn item_removed(s: &str) -> OrderEvent {
    ItemRemoved {
        order_id: oid(),
        sku: sku(s),
    }
    .into()
}

/// The lines of [`draft`]: 2 pens at 150 and 1 ink at 300, 600 cents in all.
fn lines() -> Vec<Line> {
    vec![line(PEN, 2, 150), line(INK, 1, 300)]
}

const TOTAL: u64 = 600;

fn submitted() -> OrderEvent {
    OrderSubmitted {
        order_id: oid(),
        lines: lines(),
        total_cents: TOTAL,
        payment_due_at_ms: DUE,
    }
    .into()
}

fn reserved() -> OrderEvent {
    OrderReserved {
        order_id: oid(),
        payment_due_at_ms: DUE,
    }
    .into()
}

fn paid() -> OrderEvent {
    OrderPaid {
        order_id: oid(),
        amount_cents: TOTAL,
    }
    .into()
}

fn shipped() -> OrderEvent {
    OrderShipped { order_id: oid() }.into()
}

fn cancelled(reason: &str) -> OrderEvent {
    OrderCancelled {
        order_id: oid(),
        reason: reason.into(),
    }
    .into()
}

// Events of products.

fn stock_added(s: &str, quantity: u64) -> OrderEvent {
    StockAdded {
        sku: sku(s),
        name: format!("The {s}"),
        quantity,
    }
    .into()
}

fn stock_reserved(s: &str, quantity: u64) -> OrderEvent {
    StockReserved {
        sku: sku(s),
        order_id: oid(),
        quantity,
    }
    .into()
}

fn stock_released(s: &str, quantity: u64) -> OrderEvent {
    StockReleased {
        sku: sku(s),
        order_id: oid(),
        quantity,
    }
    .into()
}

fn stock_shipped(s: &str, quantity: u64) -> OrderEvent {
    StockShipped {
        sku: sku(s),
        order_id: oid(),
        quantity,
    }
    .into()
}

// Order histories, by status.

fn draft() -> Vec<OrderEvent> {
    vec![created(), item_added(PEN, 2, 150), item_added(INK, 1, 300)]
}

fn submitted_history() -> Vec<OrderEvent> {
    let mut h = draft();
    h.push(submitted());
    h
}

fn awaiting_payment() -> Vec<OrderEvent> {
    let mut h = submitted_history();
    h.push(reserved());
    h
}

fn paid_history() -> Vec<OrderEvent> {
    let mut h = awaiting_payment();
    h.push(paid());
    h
}

fn shipped_history() -> Vec<OrderEvent> {
    let mut h = paid_history();
    h.push(shipped());
    h
}

fn cancelled_histories() -> Vec<(&'static str, Vec<OrderEvent>)> {
    let with = |mut h: Vec<OrderEvent>, reason: &str| {
        h.push(cancelled(reason));
        h
    };
    vec![
        ("cancelled draft", with(draft(), "changed my mind")),
        (
            "out of stock",
            with(submitted_history(), writ_orders::OUT_OF_STOCK),
        ),
        (
            "payment timeout",
            with(awaiting_payment(), writ_orders::PAYMENT_TIMEOUT),
        ),
        ("cancelled paid", with(paid_history(), "refund")),
    ]
}

/// Every history with an order, named, with the order's status.
fn histories() -> Vec<(&'static str, OrderStatus, Vec<OrderEvent>)> {
    let mut all = vec![
        ("draft", OrderStatus::Draft, draft()),
        ("empty draft", OrderStatus::Draft, vec![created()]),
        ("submitted", OrderStatus::Submitted, submitted_history()),
        (
            "awaiting payment",
            OrderStatus::AwaitingPayment,
            awaiting_payment(),
        ),
        ("paid", OrderStatus::Paid, paid_history()),
        ("shipped", OrderStatus::Shipped, shipped_history()),
    ];
    for (name, history) in cancelled_histories() {
        all.push((name, OrderStatus::Cancelled, history));
    }
    all
}

fn histories_except(keep: &[OrderStatus]) -> Vec<(&'static str, Vec<OrderEvent>)> {
    histories()
        .into_iter()
        .filter(|(_, status, _)| !keep.contains(status))
        .map(|(name, _, history)| (name, history))
        .collect()
}

/// Products stocked for [`draft`]'s lines, 5 pens and 3 inks, and what the order holds
/// of them in `status`.
fn products_for(status: OrderStatus) -> Vec<(String, Vec<OrderEvent>)> {
    let mut pen = vec![stock_added(PEN, 5)];
    let mut ink = vec![stock_added(INK, 3)];
    if status.holds_reservation() {
        pen.push(stock_reserved(PEN, 2));
        ink.push(stock_reserved(INK, 1));
    }
    vec![(product(PEN), pen), (product(INK), ink)]
}

/// The order's stream with `history` and the products as they stand for it.
fn order_and_products(
    history: Vec<OrderEvent>,
    status: OrderStatus,
) -> Vec<(String, Vec<OrderEvent>)> {
    let mut streams = products_for(status);
    streams.push((ORDER.to_owned(), history));
    streams
}

// Commands.

fn add_stock(s: &str, quantity: i64) -> OrderCommand {
    AddStock {
        sku: sku(s),
        name: format!("The {s}"),
        quantity,
    }
    .into()
}

fn create(customer_id: &str, customer_name: &str) -> OrderCommand {
    CreateOrder {
        order_id: oid(),
        customer_id: CustomerId::new(customer_id).unwrap(),
        customer_name: customer_name.into(),
    }
    .into()
}

fn add_item(s: &str, quantity: i64, unit_price_cents: u64) -> OrderCommand {
    AddItem {
        order_id: oid(),
        sku: sku(s),
        quantity,
        unit_price_cents,
    }
    .into()
}

fn remove_item(s: &str) -> OrderCommand {
    RemoveItem {
        order_id: oid(),
        sku: sku(s),
    }
    .into()
}

fn submit(payment_due_seconds: u32) -> OrderCommand {
    SubmitOrder {
        order_id: oid(),
        payment_due_seconds,
    }
    .into()
}

fn pay(amount_cents: i64) -> OrderCommand {
    RecordPayment {
        order_id: oid(),
        amount_cents,
    }
    .into()
}

fn ship() -> OrderCommand {
    ShipOrder { order_id: oid() }.into()
}

fn cancel(reason: &str) -> OrderCommand {
    CancelOrder {
        order_id: oid(),
        reason: reason.into(),
    }
    .into()
}

fn reserve() -> OrderCommand {
    ReserveOrder { order_id: oid() }.into()
}

fn expire() -> OrderCommand {
    ExpireOrder { order_id: oid() }.into()
}

/// Every command on order `o-1`, with a payload that passes the field rules in the state
/// each needs.
fn order_commands() -> Vec<OrderCommand> {
    vec![
        add_item(PEN, 1, 150),
        remove_item(PEN),
        submit(900),
        pay(TOTAL as i64),
        ship(),
        cancel("changed my mind"),
        reserve(),
        expire(),
    ]
}

fn rejection_code(history: Vec<OrderEvent>, command: OrderCommand) -> String {
    match given::<Orders>(history).when(command).result() {
        Err(Refusal::Rejected(r)) => r.code.into_owned(),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn fold(events: &[OrderEvent]) -> OrdersState {
    let mut state = OrdersState::default();
    for event in events {
        Orders::evolve(&mut state, event);
    }
    state
}

fn fold_on(events: &[(String, OrderEvent)], stream: &str, given: &[OrderEvent]) -> OrdersState {
    let mut state = fold(given);
    for (s, event) in events {
        if s == stream {
            Orders::evolve(&mut state, event);
        }
    }
    state
}

const BLANKS: [&str; 5] = ["", " ", "\t", "\r\n", "\u{a0}\u{3000}"];

// ---------------------------------------------------------------------------------------
// The domain's shape
// ---------------------------------------------------------------------------------------

#[test]
fn domain_is_named_orders_with_order_and_product_streams() {
    assert_eq!(Orders::NAME, "orders");
    assert_eq!(Orders::STREAM_PREFIXES, ["order-", "product-"]);
}

#[test]
fn catalog_declares_the_eight_client_commands_and_two_internal_ones() {
    let infos: Vec<CommandInfo> = Orders::commands().infos().collect();
    let declared: Vec<(&str, u32, bool)> = infos
        .iter()
        .map(|i| (i.name, i.version, i.internal))
        .collect();
    assert_eq!(
        declared,
        [
            ("AddStock", 1, false),
            ("CreateOrder", 1, false),
            ("AddItem", 1, false),
            ("RemoveItem", 1, false),
            ("SubmitOrder", 1, false),
            ("RecordPayment", 1, false),
            ("ShipOrder", 1, false),
            ("CancelOrder", 1, false),
            ("ReserveOrder", 1, true),
            ("ExpireOrder", 1, true),
        ]
    );
    for command in order_commands() {
        assert!(
            infos.iter().any(|i| i.name == command.name()),
            "{command:?}"
        );
    }
}

#[test]
fn event_types_are_the_twelve_events() {
    assert_eq!(
        OrderEvent::EVENT_TYPES,
        [
            "StockAdded",
            "StockReserved",
            "StockReleased",
            "StockShipped",
            "OrderCreated",
            "ItemAdded",
            "ItemRemoved",
            "OrderSubmitted",
            "OrderReserved",
            "OrderPaid",
            "OrderShipped",
            "OrderCancelled",
        ]
    );
}

#[test]
fn add_stock_addresses_its_product_and_every_other_command_its_order() {
    assert_eq!(Orders::stream(&add_stock(PEN, 1)), "product-pen");
    assert_eq!(add_stock(PEN, 1).order_id(), None);
    for command in std::iter::once(create("c", "C")).chain(order_commands()) {
        assert_eq!(Orders::stream(&command), ORDER, "{command:?}");
        assert_eq!(command.order_id(), Some(&oid()));
    }
    assert_eq!(writ_orders::order_stream(&oid()), ORDER);
    assert_eq!(writ_orders::product_stream(&sku("a b")), "product-a b");
}

// ---------------------------------------------------------------------------------------
// AddStock
// ---------------------------------------------------------------------------------------

#[test]
fn add_stock_of_a_new_product_records_stock_added() {
    given::<Orders>([])
        .when(add_stock(PEN, 5))
        .then([stock_added(PEN, 5)]);
}

#[test]
fn add_stock_of_a_known_product_adds_to_it_and_renames_it() {
    let history = vec![stock_added(PEN, 5), stock_reserved(PEN, 2)];
    let command = AddStock {
        sku: sku(PEN),
        name: "Fountain pen".into(),
        quantity: 4,
    };
    let events = given::<Orders>(history.clone())
        .when(command.into())
        .result()
        .unwrap();
    let state = fold(&[history, events].concat());
    let product = state.product().unwrap();
    assert_eq!(product.name(), "Fountain pen");
    assert_eq!(
        (product.on_hand(), product.reserved(), product.available()),
        (9, 2, 7)
    );
}

#[test]
fn add_stock_below_one_is_rejected_with_quantity_invalid() {
    for quantity in [0, -3, i64::MIN] {
        for history in [vec![], vec![stock_added(PEN, 5)]] {
            given::<Orders>(history)
                .when(add_stock(PEN, quantity))
                .then_rejected(codes::QUANTITY_INVALID);
        }
    }
}

#[test]
fn add_stock_beyond_the_quantity_bound_is_rejected_with_quantity_invalid() {
    given::<Orders>([stock_added(PEN, QUANTITY_MAX - 1)])
        .when(add_stock(PEN, 2))
        .then_rejected(codes::QUANTITY_INVALID);
    given::<Orders>([stock_added(PEN, QUANTITY_MAX - 1)])
        .when(add_stock(PEN, 1))
        .then([stock_added(PEN, 1)]);
    given::<Orders>([])
        .when(add_stock(PEN, i64::MAX))
        .then_rejected(codes::QUANTITY_INVALID);
}

// ---------------------------------------------------------------------------------------
// CreateOrder
// ---------------------------------------------------------------------------------------

#[test]
fn create_on_an_empty_stream_records_order_created() {
    given::<Orders>([])
        .when(create("c-1", "Ada"))
        .then([created()]);
    assert_eq!(
        fold(&[created()]).order().unwrap().status(),
        OrderStatus::Draft
    );
}

#[test]
fn create_on_an_existing_order_is_rejected_with_order_exists() {
    for (name, _, history) in histories() {
        assert_eq!(
            rejection_code(history, create("c-1", "Ada")),
            codes::ORDER_EXISTS,
            "{name}"
        );
    }
}

#[test]
fn create_with_a_blank_customer_is_rejected_with_customer_required() {
    for blank in BLANKS {
        given::<Orders>([])
            .when(create("c-1", blank))
            .then_rejected(codes::CUSTOMER_REQUIRED);
        // Ids cannot hold control characters, so `\t` and `\r\n` are decoding errors.
        if !blank.contains(char::is_control) {
            given::<Orders>([])
                .when(create(blank, "Ada"))
                .then_rejected(codes::CUSTOMER_REQUIRED);
        }
    }
}

#[test]
fn create_with_a_blank_customer_on_an_existing_order_is_order_exists_first() {
    given::<Orders>(draft())
        .when(create("", ""))
        .then_rejected(codes::ORDER_EXISTS);
}

#[test]
fn create_with_an_empty_customer_id_in_json_is_a_rejection_not_a_decoding_error() {
    given::<Orders>([])
        .when_json(
            "CreateOrder",
            None,
            json!({"orderId": O, "customerId": "", "customerName": "Ada"}),
        )
        .then_rejected(codes::CUSTOMER_REQUIRED);
}

// ---------------------------------------------------------------------------------------
// AddItem and RemoveItem
// ---------------------------------------------------------------------------------------

#[test]
fn add_item_to_a_draft_records_item_added() {
    given::<Orders>([created()])
        .when(add_item(PEN, 2, 150))
        .then([item_added(PEN, 2, 150)]);
}

#[test]
fn add_item_of_a_sku_in_the_order_adds_to_its_quantity_at_the_first_price() {
    let events = given::<Orders>(draft())
        .when(add_item(PEN, 3, 999))
        .result()
        .unwrap();
    assert_eq!(
        events,
        [item_added(PEN, 3, 150)],
        "the line's price is kept"
    );
    let state = fold(&[draft(), events].concat());
    let order = state.order().unwrap();
    assert_eq!(order.lines(), [line(PEN, 5, 150), line(INK, 1, 300)]);
    assert_eq!(order.total_cents(), 5 * 150 + 300);
}

#[test]
fn add_item_of_a_sku_removed_before_takes_the_new_price() {
    let mut history = draft();
    history.push(item_removed(PEN));
    given::<Orders>(history)
        .when(add_item(PEN, 1, 175))
        .then([item_added(PEN, 1, 175)]);
}

#[test]
fn add_item_at_price_zero_is_allowed() {
    given::<Orders>([created()])
        .when(add_item(PEN, 1, 0))
        .then([item_added(PEN, 1, 0)]);
}

#[test]
fn add_item_below_one_is_rejected_with_quantity_invalid() {
    for quantity in [0, -3, i64::MIN] {
        given::<Orders>(draft())
            .when(add_item(PEN, quantity, 150))
            .then_rejected(codes::QUANTITY_INVALID);
    }
}

#[test]
fn add_item_to_an_order_that_is_not_a_draft_is_rejected_with_order_not_draft() {
    for (name, history) in histories_except(&[OrderStatus::Draft]) {
        for quantity in [1, 0] {
            assert_eq!(
                rejection_code(history.clone(), add_item(PEN, quantity, 150)),
                codes::ORDER_NOT_DRAFT,
                "{name}, quantity {quantity}: the state is checked before the fields"
            );
        }
    }
}

#[test]
fn add_item_beyond_the_quantity_bound_is_rejected_with_quantity_invalid() {
    let history = vec![created(), item_added(PEN, QUANTITY_MAX - 1, 0)];
    given::<Orders>(history.clone())
        .when(add_item(PEN, 2, 0))
        .then_rejected(codes::QUANTITY_INVALID);
    given::<Orders>(history)
        .when(add_item(PEN, 1, 0))
        .then([item_added(PEN, 1, 0)]);
}

#[test]
fn add_item_beyond_the_line_bound_is_rejected_with_order_too_large() {
    let mut history = vec![created()];
    history.extend((0..ORDER_LINES_MAX).map(|i| item_added(&format!("s{i}"), 1, 1)));
    given::<Orders>(history.clone())
        .when(add_item("one-more", 1, 1))
        .then_rejected(codes::ORDER_TOO_LARGE);
    // A sku already in the order is no new line.
    given::<Orders>(history.clone())
        .when(add_item("s0", 1, 1))
        .then([item_added("s0", 1, 1)]);
    // The quantity is checked first.
    given::<Orders>(history)
        .when(add_item("one-more", 0, 1))
        .then_rejected(codes::QUANTITY_INVALID);
}

#[test]
fn add_item_beyond_the_total_bound_is_rejected_with_order_too_large() {
    let history = vec![created(), item_added(PEN, 1, CENTS_MAX - 10)];
    given::<Orders>(history.clone())
        .when(add_item(INK, 1, 11))
        .then_rejected(codes::ORDER_TOO_LARGE);
    given::<Orders>(history.clone())
        .when(add_item(INK, 1, 10))
        .then([item_added(INK, 1, 10)]);
    given::<Orders>([created()])
        .when(add_item(INK, 1 << 40, 1 << 40))
        .then_rejected(codes::ORDER_TOO_LARGE);
    given::<Orders>([created()])
        .when(add_item(INK, 1, u64::MAX))
        .then_rejected(codes::ORDER_TOO_LARGE);
}

#[test]
fn remove_item_of_a_line_records_item_removed() {
    let events = given::<Orders>(draft())
        .when(remove_item(PEN))
        .result()
        .unwrap();
    assert_eq!(events, [item_removed(PEN)]);
    let state = fold(&[draft(), events].concat());
    assert_eq!(state.order().unwrap().lines(), [line(INK, 1, 300)]);
}

#[test]
fn remove_item_of_a_sku_not_in_the_order_is_rejected_with_item_not_found() {
    let mut removed = draft();
    removed.push(item_removed(PEN));
    for (history, s) in [(vec![created()], PEN), (draft(), "pad"), (removed, PEN)] {
        given::<Orders>(history)
            .when(remove_item(s))
            .then_rejected(codes::ITEM_NOT_FOUND);
    }
}

#[test]
fn remove_item_from_an_order_that_is_not_a_draft_is_rejected_with_order_not_draft() {
    for (name, history) in histories_except(&[OrderStatus::Draft]) {
        for s in [PEN, "pad"] {
            assert_eq!(
                rejection_code(history.clone(), remove_item(s)),
                codes::ORDER_NOT_DRAFT,
                "{name} {s}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// SubmitOrder
// ---------------------------------------------------------------------------------------

#[test]
fn submit_records_the_lines_the_total_and_when_payment_is_due() {
    given::<Orders>(draft())
        .when(submit(900))
        .then([submitted()]);
    let state = fold(&submitted_history());
    let order = state.order().unwrap();
    assert_eq!(order.status(), OrderStatus::Submitted);
    assert_eq!(order.payment_due_at_ms(), Some(DUE));
}

#[test]
fn submit_takes_the_due_time_from_the_envelope_and_paymentdueseconds() {
    let envelope = Envelope {
        recorded_at_ms: 5_000,
        ..DEFAULT_ENVELOPE
    };
    for (seconds, due) in [
        (1, 6_000),
        (0, 5_000),
        (u32::MAX, 5_000 + u64::from(u32::MAX) * 1000),
    ] {
        let events = given::<Orders>(draft())
            .with_envelope(envelope)
            .when(submit(seconds))
            .result()
            .unwrap();
        let [OrderEvent::OrderSubmitted(e)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(e.payment_due_at_ms, due, "{seconds} s");
    }
}

#[test]
fn submit_without_paymentdueseconds_waits_900_seconds() {
    given::<Orders>(draft())
        .when_json("SubmitOrder", None, json!({"orderId": O}))
        .then([submitted()]);
}

#[test]
fn submit_of_an_order_without_lines_is_rejected_with_order_empty() {
    let mut emptied = draft();
    emptied.extend([item_removed(PEN), item_removed(INK)]);
    for history in [vec![created()], emptied] {
        given::<Orders>(history)
            .when(submit(900))
            .then_rejected(codes::ORDER_EMPTY);
    }
}

#[test]
fn submit_of_an_order_that_is_not_a_draft_is_rejected_with_order_not_draft() {
    for (name, history) in histories_except(&[OrderStatus::Draft]) {
        assert_eq!(
            rejection_code(history, submit(900)),
            codes::ORDER_NOT_DRAFT,
            "{name}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// ReserveOrder (internal): the order and its products in one decision
// ---------------------------------------------------------------------------------------

#[test]
fn reserve_with_enough_stock_reserves_every_line_and_awaits_payment() {
    let streams = order_and_products(submitted_history(), OrderStatus::Submitted);
    let events = given_streams::<Orders>(streams.clone())
        .when(reserve())
        .result_on()
        .unwrap();
    assert_eq!(
        events,
        [
            (ORDER.to_owned(), reserved()),
            (product(PEN), stock_reserved(PEN, 2)),
            (product(INK), stock_reserved(INK, 1)),
        ]
    );
    let order = fold_on(&events, ORDER, &submitted_history());
    assert_eq!(
        order.order().unwrap().status(),
        OrderStatus::AwaitingPayment
    );
    let pen = fold_on(&events, &product(PEN), &streams[0].1);
    let pen = pen.product().unwrap();
    assert_eq!((pen.on_hand(), pen.reserved(), pen.available()), (5, 2, 3));
}

#[test]
fn reserve_of_exactly_what_is_available_succeeds() {
    given_streams::<Orders>([
        (ORDER, submitted_history()),
        (
            &product(PEN),
            vec![stock_added(PEN, 9), stock_reserved(PEN, 7)],
        ),
        (&product(INK), vec![stock_added(INK, 1)]),
    ])
    .when(reserve())
    .then_on([
        (ORDER.to_owned(), reserved()),
        (product(PEN), stock_reserved(PEN, 2)),
        (product(INK), stock_reserved(INK, 1)),
    ]);
}

#[test]
fn reserve_when_one_line_is_short_cancels_out_of_stock_and_reserves_nothing() {
    // Pens are plenty; the ink is reserved by others (3 on hand, 3 reserved).
    given_streams::<Orders>([
        (ORDER, submitted_history()),
        (&product(PEN), vec![stock_added(PEN, 100)]),
        (
            &product(INK),
            vec![stock_added(INK, 3), stock_reserved(INK, 3)],
        ),
    ])
    .when(reserve())
    .then_on([(ORDER, cancelled(writ_orders::OUT_OF_STOCK))]);
    // The first line short, the second plenty.
    given_streams::<Orders>([
        (ORDER, submitted_history()),
        (&product(PEN), vec![stock_added(PEN, 1)]),
        (&product(INK), vec![stock_added(INK, 100)]),
    ])
    .when(reserve())
    .then_on([(ORDER, cancelled(writ_orders::OUT_OF_STOCK))]);
}

#[test]
fn reserve_of_a_sku_never_stocked_counts_it_as_zero_and_cancels_out_of_stock() {
    given_streams::<Orders>([
        (ORDER, submitted_history()),
        (&product(PEN), vec![stock_added(PEN, 100)]),
    ])
    .when(reserve())
    .then_on([(ORDER, cancelled(writ_orders::OUT_OF_STOCK))]);
}

#[test]
fn reserve_after_stock_shipped_counts_what_is_left() {
    // 3 inks arrived, 2 were reserved and shipped: 1 left, enough for the line.
    given_streams::<Orders>([
        (ORDER, submitted_history()),
        (&product(PEN), vec![stock_added(PEN, 2)]),
        (
            &product(INK),
            vec![
                stock_added(INK, 3),
                stock_reserved(INK, 2),
                stock_shipped(INK, 2),
            ],
        ),
    ])
    .when(reserve())
    .then_on([
        (ORDER.to_owned(), reserved()),
        (product(PEN), stock_reserved(PEN, 2)),
        (product(INK), stock_reserved(INK, 1)),
    ]);
}

#[test]
fn reserve_of_an_order_that_is_not_submitted_is_rejected_with_order_not_submitted() {
    for (name, history) in histories_except(&[OrderStatus::Submitted]) {
        assert_eq!(
            rejection_code(history, reserve()),
            codes::ORDER_NOT_SUBMITTED,
            "{name}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// RecordPayment
// ---------------------------------------------------------------------------------------

#[test]
fn pay_the_exact_total_records_order_paid() {
    let events = given::<Orders>(awaiting_payment())
        .when(pay(TOTAL as i64))
        .result()
        .unwrap();
    assert_eq!(events, [paid()]);
    assert_eq!(
        fold(&[awaiting_payment(), events].concat())
            .order()
            .unwrap()
            .status(),
        OrderStatus::Paid
    );
}

#[test]
fn pay_another_amount_is_rejected_with_amount_mismatch_and_both_amounts() {
    for amount in [
        TOTAL as i64 - 1,
        TOTAL as i64 + 1,
        0,
        -(TOTAL as i64),
        i64::MIN,
    ] {
        let refusal = given::<Orders>(awaiting_payment())
            .when(pay(amount))
            .result()
            .unwrap_err();
        let Refusal::Rejected(rejection) = refusal else {
            panic!("{refusal:?}")
        };
        assert_eq!(rejection.code, codes::AMOUNT_MISMATCH);
        assert_eq!(rejection.details["totalCents"], TOTAL);
        assert_eq!(rejection.details["amountCents"], amount);
    }
}

#[test]
fn pay_an_order_that_is_not_awaiting_payment_is_rejected_with_order_not_awaiting_payment() {
    for (name, history) in histories_except(&[OrderStatus::AwaitingPayment]) {
        for amount in [TOTAL as i64, 1] {
            assert_eq!(
                rejection_code(history.clone(), pay(amount)),
                codes::ORDER_NOT_AWAITING_PAYMENT,
                "{name}, {amount} cents"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// ShipOrder
// ---------------------------------------------------------------------------------------

#[test]
fn ship_a_paid_order_takes_its_units_out_of_stock() {
    let streams = order_and_products(paid_history(), OrderStatus::Paid);
    let events = given_streams::<Orders>(streams.clone())
        .when(ship())
        .result_on()
        .unwrap();
    assert_eq!(
        events,
        [
            (ORDER.to_owned(), shipped()),
            (product(PEN), stock_shipped(PEN, 2)),
            (product(INK), stock_shipped(INK, 1)),
        ]
    );
    let pen = fold_on(&events, &product(PEN), &streams[0].1);
    let pen = pen.product().unwrap();
    assert_eq!((pen.on_hand(), pen.reserved(), pen.available()), (3, 0, 3));
    let ink = fold_on(&events, &product(INK), &streams[1].1);
    let ink = ink.product().unwrap();
    assert_eq!((ink.on_hand(), ink.reserved(), ink.available()), (2, 0, 2));
}

#[test]
fn ship_an_order_that_is_not_paid_is_rejected_with_order_not_paid() {
    for (name, history) in histories_except(&[OrderStatus::Paid]) {
        assert_eq!(
            rejection_code(history, ship()),
            codes::ORDER_NOT_PAID,
            "{name}"
        );
    }
}

#[test]
fn ship_when_a_product_does_not_hold_the_reservation_fails() {
    // The log disagrees with the rules: a bug, not a business rule.
    given_streams::<Orders>(order_and_products(paid_history(), OrderStatus::Draft))
        .when(ship())
        .then_failed();
}

// ---------------------------------------------------------------------------------------
// CancelOrder
// ---------------------------------------------------------------------------------------

#[test]
fn cancel_an_order_without_a_reservation_records_order_cancelled_only() {
    for history in [vec![created()], draft(), submitted_history()] {
        given::<Orders>(history)
            .when(cancel("changed my mind"))
            .then([cancelled("changed my mind")]);
    }
}

#[test]
fn cancel_an_order_that_holds_a_reservation_releases_it() {
    for (status, history) in [
        (OrderStatus::AwaitingPayment, awaiting_payment()),
        (OrderStatus::Paid, paid_history()),
    ] {
        let streams = order_and_products(history, status);
        let events = given_streams::<Orders>(streams.clone())
            .when(cancel("refund"))
            .result_on()
            .unwrap();
        assert_eq!(
            events,
            [
                (ORDER.to_owned(), cancelled("refund")),
                (product(PEN), stock_released(PEN, 2)),
                (product(INK), stock_released(INK, 1)),
            ],
            "{status}"
        );
        let pen = fold_on(&events, &product(PEN), &streams[0].1);
        let pen = pen.product().unwrap();
        assert_eq!((pen.on_hand(), pen.reserved(), pen.available()), (5, 0, 5));
    }
}

#[test]
fn cancel_records_the_clients_reason_as_given() {
    for reason in ["", "  spaces  ", "out_of_stock", "日本語"] {
        given::<Orders>(draft())
            .when(cancel(reason))
            .then([cancelled(reason)]);
    }
}

#[test]
fn cancel_a_cancelled_order_is_rejected_with_order_cancelled() {
    for (name, history) in cancelled_histories() {
        assert_eq!(
            rejection_code(history, cancel("again")),
            codes::ORDER_CANCELLED,
            "{name}"
        );
    }
}

#[test]
fn cancel_a_shipped_order_is_rejected_with_order_shipped() {
    given::<Orders>(shipped_history())
        .when(cancel("too late"))
        .then_rejected(codes::ORDER_SHIPPED);
}

// ---------------------------------------------------------------------------------------
// ExpireOrder (internal, fired by the payment timer)
// ---------------------------------------------------------------------------------------

#[test]
fn expire_an_order_awaiting_payment_cancels_it_with_payment_timeout_and_releases() {
    given_streams::<Orders>(order_and_products(
        awaiting_payment(),
        OrderStatus::AwaitingPayment,
    ))
    .when(expire())
    .then_on([
        (ORDER.to_owned(), cancelled(writ_orders::PAYMENT_TIMEOUT)),
        (product(PEN), stock_released(PEN, 2)),
        (product(INK), stock_released(INK, 1)),
    ]);
}

#[test]
fn expire_an_order_no_longer_awaiting_payment_changes_nothing_and_says_why() {
    for (name, history) in histories_except(&[OrderStatus::AwaitingPayment]) {
        assert_eq!(
            rejection_code(history, expire()),
            codes::ORDER_NOT_AWAITING_PAYMENT,
            "{name}"
        );
    }
}

#[test]
fn a_cancelled_order_gets_exactly_one_order_cancelled() {
    // Whatever cancelled it, nothing cancels it again.
    for (name, history) in cancelled_histories() {
        for command in [cancel("again"), expire(), reserve()] {
            let result = given::<Orders>(history.clone())
                .when(command.clone())
                .result();
            assert!(
                matches!(result, Err(Refusal::Rejected(_))),
                "{name} {command:?}: {result:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Across commands
// ---------------------------------------------------------------------------------------

#[test]
fn commands_on_a_missing_order_are_rejected_with_order_not_found() {
    for command in order_commands() {
        assert_eq!(
            rejection_code(vec![], command.clone()),
            codes::ORDER_NOT_FOUND,
            "{command:?}"
        );
    }
    // Also with payloads that break field rules: existence comes first.
    for command in [add_item(PEN, 0, 1), pay(-1)] {
        assert_eq!(rejection_code(vec![], command), codes::ORDER_NOT_FOUND);
    }
}

#[test]
fn every_rejection_code_of_the_contract_is_reachable() {
    let cases: Vec<(&str, Vec<OrderEvent>, OrderCommand)> = vec![
        (codes::QUANTITY_INVALID, vec![], add_stock(PEN, 0)),
        (codes::ORDER_EXISTS, vec![created()], create("c-1", "Ada")),
        (codes::CUSTOMER_REQUIRED, vec![], create("c-1", " ")),
        (codes::ORDER_NOT_FOUND, vec![], add_item(PEN, 1, 1)),
        (
            codes::ORDER_NOT_DRAFT,
            submitted_history(),
            add_item(PEN, 1, 1),
        ),
        (codes::QUANTITY_INVALID, draft(), add_item(PEN, 0, 1)),
        (codes::ORDER_NOT_FOUND, vec![], remove_item(PEN)),
        (
            codes::ORDER_NOT_DRAFT,
            submitted_history(),
            remove_item(PEN),
        ),
        (codes::ITEM_NOT_FOUND, draft(), remove_item("pad")),
        (codes::ORDER_NOT_FOUND, vec![], submit(900)),
        (codes::ORDER_NOT_DRAFT, submitted_history(), submit(900)),
        (codes::ORDER_EMPTY, vec![created()], submit(900)),
        (codes::ORDER_NOT_FOUND, vec![], pay(1)),
        (codes::ORDER_NOT_AWAITING_PAYMENT, draft(), pay(1)),
        (codes::AMOUNT_MISMATCH, awaiting_payment(), pay(1)),
        (codes::ORDER_NOT_FOUND, vec![], ship()),
        (codes::ORDER_NOT_PAID, awaiting_payment(), ship()),
        (codes::ORDER_NOT_FOUND, vec![], cancel("x")),
        (
            codes::ORDER_CANCELLED,
            cancelled_histories().remove(0).1,
            cancel("x"),
        ),
        (codes::ORDER_SHIPPED, shipped_history(), cancel("x")),
        // Beyond the contract's table.
        (
            codes::ORDER_TOO_LARGE,
            vec![created()],
            add_item(PEN, 1, u64::MAX),
        ),
        (codes::ORDER_NOT_SUBMITTED, draft(), reserve()),
        (codes::ORDER_NOT_AWAITING_PAYMENT, paid_history(), expire()),
    ];
    for (code, history, command) in cases {
        assert_eq!(
            rejection_code(history, command.clone()),
            code,
            "{command:?}"
        );
    }
}

#[test]
fn available_is_never_negative() {
    // Even on a log the rules would not write (more reserved than on hand).
    let state = fold(&[stock_added(PEN, 1), stock_reserved(PEN, 5)]);
    let pen = state.product().unwrap();
    assert_eq!((pen.on_hand(), pen.reserved(), pen.available()), (1, 5, 0));
}

#[test]
fn a_whole_order_evolves_through_every_status() {
    let mut history = Vec::new();
    let steps: Vec<(OrderCommand, OrderStatus)> = vec![
        (create("c-1", "Ada"), OrderStatus::Draft),
        (add_item(PEN, 2, 150), OrderStatus::Draft),
        (add_item(INK, 1, 300), OrderStatus::Draft),
        (submit(900), OrderStatus::Submitted),
        (reserve(), OrderStatus::AwaitingPayment),
        (pay(TOTAL as i64), OrderStatus::Paid),
        (ship(), OrderStatus::Shipped),
    ];
    let mut before = OrderStatus::Draft;
    for (command, status) in steps {
        let streams = order_and_products(history.clone(), before);
        before = status;
        let events = given_streams::<Orders>(streams)
            .when(command.clone())
            .result_on()
            .unwrap_or_else(|r| panic!("{command:?}: {r:?}"));
        history.extend(
            events
                .into_iter()
                .filter(|(s, _)| s == ORDER)
                .map(|(_, e)| e),
        );
        assert_eq!(
            fold(&history).order().unwrap().status(),
            status,
            "{command:?}"
        );
    }
    assert_eq!(history, shipped_history());
}

// ---------------------------------------------------------------------------------------
// The fulfilment process
// ---------------------------------------------------------------------------------------

fn fulfilment(event: OrderEvent) -> FulfilmentEvent {
    FulfilmentEvent::of(&event).expect("an event of the process")
}

#[test]
fn the_process_is_named_and_handles_four_event_types() {
    assert_eq!(OrderFulfilment::NAME, "order-fulfilment");
    assert_eq!(
        FulfilmentEvent::EVENT_TYPES,
        [
            "OrderSubmitted",
            "OrderReserved",
            "OrderPaid",
            "OrderCancelled"
        ]
    );
    let others = [
        created(),
        item_added(PEN, 1, 1),
        item_removed(PEN),
        shipped(),
        stock_added(PEN, 1),
        stock_reserved(PEN, 1),
        stock_released(PEN, 1),
        stock_shipped(PEN, 1),
    ];
    for event in others {
        assert_eq!(FulfilmentEvent::of(&event), None, "{event:?}");
    }
    assert_eq!(writ_orders::processes().len(), 1);
    assert_eq!(writ_orders::processes()[0].name(), OrderFulfilment::NAME);
}

#[test]
fn on_order_submitted_the_process_issues_reserve_order() {
    let reactions = react::<OrderFulfilment>(&fulfilment(submitted()));
    assert!(reactions.timers().is_empty());
    let [issued] = reactions.issued() else {
        panic!("{reactions:?}")
    };
    assert_eq!(issued.command, "ReserveOrder");
    assert_eq!(issued.version, None);
    assert_eq!(issued.expected_version, None);
    assert_eq!(issued.payload, br#"{"orderId":"o-1"}"#);
    // It decodes as the internal command on the order's stream.
    let command = Orders::commands()
        .decode(&issued.command, None, &issued.payload)
        .unwrap()
        .command;
    assert_eq!(command, reserve());
}

#[test]
fn on_order_reserved_the_process_schedules_expire_order_when_payment_is_due() {
    let reactions = react::<OrderFulfilment>(&fulfilment(reserved()));
    assert!(reactions.issued().is_empty());
    let [
        TimerOp::Schedule {
            process,
            key,
            at_ms,
            command,
        },
    ] = reactions.timers()
    else {
        panic!("{reactions:?}")
    };
    assert_eq!(process, OrderFulfilment::NAME);
    assert_eq!(key, O, "keyed by the order id");
    assert_eq!(*at_ms, DUE);
    assert_eq!(command.command, "ExpireOrder");
    assert_eq!(command.payload, br#"{"orderId":"o-1"}"#);
    let decoded = Orders::commands()
        .decode(&command.command, None, &command.payload)
        .unwrap()
        .command;
    assert_eq!(decoded, expire());
}

#[test]
fn on_order_paid_or_cancelled_the_process_cancels_the_timer() {
    let mut events = vec![paid()];
    events.extend(
        cancelled_histories()
            .into_iter()
            .map(|(_, h)| h.last().unwrap().clone()),
    );
    for event in events {
        let reactions = react::<OrderFulfilment>(&fulfilment(event.clone()));
        assert!(reactions.issued().is_empty(), "{event:?}");
        assert_eq!(
            reactions.timers(),
            [TimerOp::Cancel {
                process: OrderFulfilment::NAME.to_owned(),
                key: O.to_owned(),
            }],
            "{event:?}"
        );
    }
}

#[test]
fn every_reaction_issues_a_command_the_domain_decides() {
    // What the process issues for an order decides on the order's history at that point.
    let submitted_reaction = react::<OrderFulfilment>(&fulfilment(submitted()));
    let reserve_payload = &submitted_reaction.issued()[0].payload;
    let command = Orders::commands()
        .decode("ReserveOrder", None, reserve_payload)
        .unwrap()
        .command;
    given_streams::<Orders>(order_and_products(
        submitted_history(),
        OrderStatus::Submitted,
    ))
    .when(command)
    .then_on([
        (ORDER.to_owned(), reserved()),
        (product(PEN), stock_reserved(PEN, 2)),
        (product(INK), stock_reserved(INK, 1)),
    ]);
    let reserved_reaction = react::<OrderFulfilment>(&fulfilment(reserved()));
    let TimerOp::Schedule { command, .. } = &reserved_reaction.timers()[0] else {
        unreachable!()
    };
    let command = Orders::commands()
        .decode(&command.command, None, &command.payload)
        .unwrap()
        .command;
    given::<Orders>(paid_history())
        .when(command)
        .then_rejected(codes::ORDER_NOT_AWAITING_PAYMENT);
}

// ---------------------------------------------------------------------------------------
// JSON: events and canonical payloads
// ---------------------------------------------------------------------------------------

fn event_json(event: &OrderEvent) -> Value {
    let mut data = Vec::new();
    event.encode_data(&mut data).unwrap();
    serde_json::from_slice(&data).unwrap()
}

#[test]
fn events_serialize_in_the_documented_shapes() {
    let cases: Vec<(OrderEvent, Value)> = vec![
        (
            stock_added(PEN, 5),
            json!({"sku": "pen", "name": "The pen", "quantity": 5}),
        ),
        (
            stock_reserved(PEN, 2),
            json!({"sku": "pen", "orderId": O, "quantity": 2}),
        ),
        (
            stock_released(PEN, 2),
            json!({"sku": "pen", "orderId": O, "quantity": 2}),
        ),
        (
            stock_shipped(PEN, 2),
            json!({"sku": "pen", "orderId": O, "quantity": 2}),
        ),
        (
            created(),
            json!({"orderId": O, "customerId": "c-1", "customerName": "Ada"}),
        ),
        (
            item_added(PEN, 2, 150),
            json!({"orderId": O, "sku": "pen", "quantity": 2, "unitPriceCents": 150}),
        ),
        (item_removed(PEN), json!({"orderId": O, "sku": "pen"})),
        (
            submitted(),
            json!({
                "orderId": O,
                "lines": [
                    {"sku": "pen", "quantity": 2, "unitPriceCents": 150},
                    {"sku": "ink", "quantity": 1, "unitPriceCents": 300},
                ],
                "totalCents": 600,
                "paymentDueAtMs": DUE,
            }),
        ),
        (reserved(), json!({"orderId": O, "paymentDueAtMs": DUE})),
        (paid(), json!({"orderId": O, "amountCents": 600})),
        (shipped(), json!({"orderId": O})),
        (
            cancelled("payment_timeout"),
            json!({"orderId": O, "reason": "payment_timeout"}),
        ),
    ];
    let mut types: Vec<&str> = Vec::new();
    for (event, expected) in cases {
        assert_eq!(event_json(&event), expected, "{}", event.event_type());
        types.push(event.event_type());
    }
    assert_eq!(
        types,
        OrderEvent::EVENT_TYPES,
        "every event type is covered"
    );
}

/// A valid payload of every command, client and internal.
fn valid_payloads() -> Vec<(&'static str, Value)> {
    vec![
        (
            "AddStock",
            json!({"sku": PEN, "name": "Pen", "quantity": 5}),
        ),
        (
            "CreateOrder",
            json!({"orderId": O, "customerId": "c-1", "customerName": "Ada"}),
        ),
        (
            "AddItem",
            json!({"orderId": O, "sku": PEN, "quantity": 2, "unitPriceCents": 150}),
        ),
        ("RemoveItem", json!({"orderId": O, "sku": PEN})),
        (
            "SubmitOrder",
            json!({"orderId": O, "paymentDueSeconds": 60}),
        ),
        ("RecordPayment", json!({"orderId": O, "amountCents": 600})),
        ("ShipOrder", json!({"orderId": O})),
        ("CancelOrder", json!({"orderId": O, "reason": "no"})),
        ("ReserveOrder", json!({"orderId": O})),
        ("ExpireOrder", json!({"orderId": O})),
    ]
}

#[test]
fn valid_payloads_decode_and_are_canonical_in_declaration_order() {
    let catalog = Orders::commands();
    for (name, payload) in valid_payloads() {
        let bytes = serde_json::to_vec(&payload).unwrap();
        let decoded = catalog.decode(name, None, &bytes).unwrap();
        assert_eq!(decoded.version, 1, "{name}");
        assert_eq!(decoded.command.name(), name);
        let canonical: Value = serde_json::from_slice(&decoded.canonical_payload).unwrap();
        assert_eq!(canonical, payload, "{name}");
        assert_eq!(
            catalog
                .decode_logged(name, 1, &decoded.canonical_payload)
                .unwrap(),
            decoded.command,
            "{name}"
        );
    }
    let pay = catalog
        .decode(
            "RecordPayment",
            None,
            br#" { "amountCents" : 600 , "orderId" : "o-1" } "#,
        )
        .unwrap();
    assert_eq!(
        pay.canonical_payload,
        br#"{"orderId":"o-1","amountCents":600}"#
    );
}

#[test]
fn canonical_submit_payload_spells_out_the_default_payment_time() {
    let catalog = Orders::commands();
    let without = catalog
        .decode("SubmitOrder", None, br#"{"orderId":"o-1"}"#)
        .unwrap();
    let with = catalog
        .decode(
            "SubmitOrder",
            None,
            br#"{"orderId":"o-1","paymentDueSeconds":900}"#,
        )
        .unwrap();
    assert_eq!(
        without.canonical_payload,
        br#"{"orderId":"o-1","paymentDueSeconds":900}"#
    );
    assert_eq!(without.canonical_payload, with.canonical_payload);
    assert_eq!(without.command, submit(900));
    let schema = catalog.schema("SubmitOrder", 1).unwrap();
    assert_eq!(schema["properties"]["paymentDueSeconds"]["default"], 900);
    assert_eq!(schema["required"], json!(["orderId"]));
}

#[test]
fn quantities_and_amounts_outside_the_rules_decode_and_reach_the_rules() {
    for quantity in [0, -3] {
        given::<Orders>([])
            .when_json(
                "AddStock",
                None,
                json!({"sku": PEN, "name": "Pen", "quantity": quantity}),
            )
            .then_rejected(codes::QUANTITY_INVALID);
        given::<Orders>(draft())
            .when_json(
                "AddItem",
                None,
                json!({"orderId": O, "sku": PEN, "quantity": quantity, "unitPriceCents": 1}),
            )
            .then_rejected(codes::QUANTITY_INVALID);
    }
    given::<Orders>(awaiting_payment())
        .when_json(
            "RecordPayment",
            None,
            json!({"orderId": O, "amountCents": -600}),
        )
        .then_rejected(codes::AMOUNT_MISMATCH);
}

// ---------------------------------------------------------------------------------------
// Decoding errors (the server answers 422; no rule runs)
// ---------------------------------------------------------------------------------------

fn invalid_payload_detail(name: &str, payload: Value) -> String {
    match decode_error::<Orders>(name, None, payload.clone()) {
        CommandError::InvalidPayload { detail, .. } => detail,
        other => panic!("{name} {payload}: expected InvalidPayload, got {other:?}"),
    }
}

#[test]
fn missing_required_field_is_a_decoding_error() {
    for (name, payload) in valid_payloads() {
        let Value::Object(fields) = &payload else {
            unreachable!()
        };
        for field in fields.keys().filter(|f| *f != "paymentDueSeconds") {
            let mut without = fields.clone();
            without.remove(field);
            let detail = invalid_payload_detail(name, Value::Object(without));
            assert!(
                detail.contains(&format!("missing field `{field}`")),
                "{name} without {field}: {detail}"
            );
        }
    }
}

#[test]
fn unknown_field_is_a_decoding_error() {
    for (name, payload) in valid_payloads() {
        for unknown in ["extra", "order_id", "OrderId", "status"] {
            let mut with = payload.clone();
            with[unknown] = json!("x");
            let detail = invalid_payload_detail(name, with);
            assert!(
                detail.contains(&format!("unknown field `{unknown}`")),
                "{name} with {unknown}: {detail}"
            );
        }
    }
}

#[test]
fn wrong_field_type_or_null_is_a_decoding_error() {
    for (name, payload) in valid_payloads() {
        let Value::Object(fields) = &payload else {
            unreachable!()
        };
        for (field, value) in fields {
            let mut wrongs = vec![json!(null), json!(true), json!(["x"]), json!({"x": 1})];
            wrongs.push(if value.is_string() {
                json!(1)
            } else {
                json!("1")
            });
            for wrong in wrongs {
                let mut with = payload.clone();
                with[field] = wrong.clone();
                invalid_payload_detail(name, with);
            }
        }
    }
}

#[test]
fn numbers_that_are_not_integers_of_their_range_are_decoding_errors() {
    let cases = [
        ("AddStock", "quantity", json!(1.5)),
        ("AddStock", "quantity", json!(1.0)),
        ("AddStock", "quantity", json!(1e3)),
        ("AddStock", "quantity", json!(u64::MAX)),
        ("AddItem", "quantity", json!(2.5)),
        ("AddItem", "unitPriceCents", json!(-1)),
        ("AddItem", "unitPriceCents", json!(1.5)),
        ("SubmitOrder", "paymentDueSeconds", json!(-1)),
        (
            "SubmitOrder",
            "paymentDueSeconds",
            json!(u64::from(u32::MAX) + 1),
        ),
        ("RecordPayment", "amountCents", json!(600.0)),
        ("RecordPayment", "amountCents", json!(u64::MAX)),
    ];
    let payloads = valid_payloads();
    for (name, field, wrong) in cases {
        let mut payload = payloads.iter().find(|(n, _)| *n == name).unwrap().1.clone();
        payload[field] = wrong.clone();
        invalid_payload_detail(name, payload);
    }
}

#[test]
fn invalid_order_ids_and_skus_are_decoding_errors() {
    let too_long = "x".repeat(201);
    let bad: [(&str, &str); 4] = [
        ("", "must not be empty"),
        ("a\nb", "control characters"),
        ("\u{7f}", "control characters"),
        (&too_long, "at most 200 bytes"),
    ];
    for (name, payload) in valid_payloads() {
        for field in ["orderId", "sku"] {
            if payload.get(field).is_none() {
                continue;
            }
            for (id, why) in bad {
                let mut with = payload.clone();
                with[field] = json!(id);
                let detail = invalid_payload_detail(name, with);
                assert!(
                    detail.contains(field) && detail.contains(why),
                    "{name} {field} {id:?}: {detail}"
                );
            }
        }
    }
}

#[test]
fn customer_ids_with_control_characters_or_too_long_are_decoding_errors() {
    for id in ["a\u{0}b".to_owned(), "x".repeat(201)] {
        let detail = invalid_payload_detail(
            "CreateOrder",
            json!({"orderId": O, "customerId": id, "customerName": "Ada"}),
        );
        assert!(detail.contains("customerId"), "{detail}");
    }
    let longest = "x".repeat(200);
    given::<Orders>([])
        .when_json(
            "CreateOrder",
            None,
            json!({"orderId": longest, "customerId": longest, "customerName": "Ada"}),
        )
        .result()
        .unwrap();
}

#[test]
fn payload_that_is_not_an_object_is_a_decoding_error() {
    for payload in [json!([]), json!("x"), json!(1), json!(null)] {
        invalid_payload_detail("ShipOrder", payload);
    }
}

#[test]
fn unknown_command_or_version_is_a_decoding_error() {
    assert!(matches!(
        decode_error::<Orders>("ShipIt", None, json!({"orderId": O})),
        CommandError::UnknownCommand { .. }
    ));
    assert!(matches!(
        decode_error::<Orders>("ShipOrder", Some(2), json!({"orderId": O})),
        CommandError::UnknownVersion { .. }
    ));
}
