//! Several domains in one server, as the contract's version 2 describes it and an outside
//! suite checks it over HTTP: `writ serve --domain tickets --domain orders` (the binary's
//! modules through `writ_app::App`, called through the router) serves both, `GET /domains`
//! and `/openapi.json` describe both, query code sees both at one position, the tickets
//! contract still holds to the letter beside orders; a command, stream prefix or query
//! name claimed by two domains stops the start naming both.

mod support;

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::marker::PhantomData;

use axum::http::StatusCode;
use serde_json::{Value, json};
use support::{Harness, binary_app, call, get};
use writ_app::{App, Config, Module, Store};
use writ_domain::{CommandCatalog, Decision, Domain, Refusal};
use writ_log::storage::SimStorage;
use writ_query::{ApplyError, Projection, QueryCatalog, ReadModelSpec, RecordedEvent};

fn both() -> Harness {
    Harness::start(&["tickets", "orders"])
}

fn open_ticket(ticket: &str) -> Value {
    json!({"ticketId": ticket, "title": "Printer on fire", "reporter": "ann", "priority": "high"})
}

fn names(values: &Value) -> BTreeSet<String> {
    values
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap_or_else(|| v["name"].as_str().unwrap()))
        .map(str::to_owned)
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

#[tokio::test]
async fn both_domains_take_their_commands_into_one_global_order() {
    let h = both();
    h.ok("OpenTicket", open_ticket("t-1")).await;
    h.add_stock("pen", 5).await;
    h.ok(
        "AddComment",
        json!({"ticketId": "t-1", "author": "bob", "text": "on it"}),
    )
    .await;
    h.draft("o-1", "c-1", &[("pen", 2, 150)]).await;
    h.submit_order("o-1", None).await;

    let events = h.events().await;
    let positions: Vec<u64> = events
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, (1..=events.len() as u64).collect::<Vec<_>>());
    let streams: Vec<&str> = events
        .iter()
        .map(|e| e["stream"].as_str().unwrap())
        .collect();
    assert_eq!(
        streams,
        [
            "ticket-t-1",
            "product-pen",
            "ticket-t-1",
            "order-o-1",
            "order-o-1",
            "order-o-1",
            "order-o-1",
            "product-pen",
        ]
    );
    assert_eq!(h.order_status("o-1").await, "awaiting_payment");
    let ticket = h.query_ok("getTicket?id=t-1").await;
    assert_eq!(ticket["comments"][0]["text"], "on it");
}

#[tokio::test]
async fn the_tickets_contract_holds_to_the_letter_beside_orders() {
    let h = both();
    h.ok("OpenTicket", open_ticket("t-open")).await;
    h.ok("OpenTicket", open_ticket("t-closed")).await;
    h.ok(
        "CloseTicket",
        json!({"ticketId": "t-closed", "resolution": "fixed"}),
    )
    .await;
    // Version 1 of OpenTicket reads as priority normal.
    let v1 = h
        .post(
            &json!({"id": uuid::Uuid::new_v4(), "command": "OpenTicket", "version": 1,
            "payload": {"ticketId": "t-v1", "title": "Old client", "reporter": "ann"}}),
        )
        .await;
    assert_eq!(v1.status, StatusCode::ACCEPTED);

    let cases = [
        ("OpenTicket", open_ticket("t-open"), "ticket_exists"),
        (
            "OpenTicket",
            json!({"ticketId": "t-new", "title": " ", "reporter": "ann"}),
            "title_required",
        ),
        (
            "AssignTicket",
            json!({"ticketId": "t-none", "assignee": "cy"}),
            "ticket_not_found",
        ),
        (
            "AssignTicket",
            json!({"ticketId": "t-closed", "assignee": "cy"}),
            "ticket_closed",
        ),
        (
            "AddComment",
            json!({"ticketId": "t-none", "author": "bob", "text": "hi"}),
            "ticket_not_found",
        ),
        (
            "AddComment",
            json!({"ticketId": "t-open", "author": "bob", "text": ""}),
            "text_required",
        ),
        (
            "CloseTicket",
            json!({"ticketId": "t-none", "resolution": "x"}),
            "ticket_not_found",
        ),
        (
            "CloseTicket",
            json!({"ticketId": "t-closed", "resolution": "x"}),
            "ticket_closed",
        ),
        (
            "ReopenTicket",
            json!({"ticketId": "t-none", "reason": "x"}),
            "ticket_not_found",
        ),
        (
            "ReopenTicket",
            json!({"ticketId": "t-open", "reason": "x"}),
            "ticket_open",
        ),
    ];
    for (command, payload, code) in cases {
        assert_eq!(
            h.rejected(command, payload.clone()).await,
            code,
            "{command} {payload}"
        );
    }
    let (status, _) = h
        .refused(&json!({"id": uuid::Uuid::new_v4(), "command": "OpenTicket",
            "payload": {"ticketId": "t-x", "title": "T", "reporter": "ann", "priority": "asap"}}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let ticket = h.query_ok("getTicket?id=t-v1").await;
    assert_eq!(ticket["priority"], "normal");
    assert_eq!(ticket["comments"], json!([]));
    assert_eq!(
        h.query(1, "getTicket?id=t-none").await.status,
        StatusCode::NOT_FOUND
    );
    let found = h.query_ok("searchTickets?status=closed").await;
    assert_eq!(
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|t| &t["id"])
            .collect::<Vec<_>>(),
        ["t-closed"]
    );
    let stats = h.query_ok("ticketStats").await;
    assert_eq!((&stats["open"], &stats["closed"]), (&json!(2), &json!(1)));
    assert_eq!(
        h.code_ok(
            "[getTicket(args.id).status, searchTickets({priority: 'high'}).length, ticketStats().closed]",
            json!({"id": "t-closed"})
        )
        .await,
        json!(["closed", 2, 1])
    );
}

#[tokio::test]
async fn domains_lists_each_domain_with_its_commands_schemas_events_and_queries() {
    let h = both();
    let answer = call(&h.app, get("/domains")).await;
    assert_eq!(answer.status, StatusCode::OK);
    let document = answer.json();
    let domains = document["domains"].as_array().unwrap();
    assert_eq!(names(&document["domains"]), set(&["orders", "tickets"]));
    let domain = |name: &str| {
        domains
            .iter()
            .find(|d| d["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {document}"))
            .clone()
    };
    let tickets = domain("tickets");
    let orders = domain("orders");

    // Commands with each version's payload schema: its fields, which are required.
    let schema_of = |domain: &Value, command: &str, version: u64| -> Value {
        let entry = domain["commands"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == command)
            .unwrap_or_else(|| panic!("{command} in {domain}"));
        entry["versions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["version"] == version)
            .unwrap_or_else(|| panic!("{command} v{version} in {entry}"))["schema"]
            .clone()
    };
    let fields = |schema: &Value| -> (BTreeSet<String>, BTreeSet<String>) {
        let properties = schema["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("an object schema: {schema}"));
        let required = schema["required"]
            .as_array()
            .map(|r| r.iter().map(|f| f.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        (properties.keys().cloned().collect(), required)
    };
    let public = |domain: &Value| -> BTreeSet<String> {
        domain["commands"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["internal"] != true)
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        public(&tickets),
        set(&[
            "OpenTicket",
            "AssignTicket",
            "AddComment",
            "CloseTicket",
            "ReopenTicket"
        ])
    );
    let ticket_commands: [(&str, u64, &[&str], &[&str]); 6] = [
        (
            "OpenTicket",
            1,
            &["ticketId", "title", "description", "reporter"],
            &["ticketId", "title", "reporter"],
        ),
        (
            "OpenTicket",
            2,
            &["ticketId", "title", "description", "reporter", "priority"],
            &["ticketId", "title", "reporter"],
        ),
        (
            "AssignTicket",
            1,
            &["ticketId", "assignee"],
            &["ticketId", "assignee"],
        ),
        (
            "AddComment",
            1,
            &["ticketId", "author", "text"],
            &["ticketId", "author", "text"],
        ),
        (
            "CloseTicket",
            1,
            &["ticketId", "resolution"],
            &["ticketId", "resolution"],
        ),
        (
            "ReopenTicket",
            1,
            &["ticketId", "reason"],
            &["ticketId", "reason"],
        ),
    ];
    for (command, version, all, required) in ticket_commands {
        let schema = schema_of(&tickets, command, version);
        assert_eq!(
            fields(&schema),
            (set(all), set(required)),
            "{command} v{version}: {schema}"
        );
    }
    assert_eq!(
        public(&orders),
        set(&[
            "AddStock",
            "CreateOrder",
            "AddItem",
            "RemoveItem",
            "SubmitOrder",
            "RecordPayment",
            "ShipOrder",
            "CancelOrder"
        ])
    );
    let order_commands: [(&str, &[&str], &[&str]); 8] = [
        (
            "AddStock",
            &["sku", "name", "quantity"],
            &["sku", "name", "quantity"],
        ),
        (
            "CreateOrder",
            &["orderId", "customerId", "customerName"],
            &["orderId", "customerId", "customerName"],
        ),
        (
            "AddItem",
            &["orderId", "sku", "quantity", "unitPriceCents"],
            &["orderId", "sku", "quantity", "unitPriceCents"],
        ),
        ("RemoveItem", &["orderId", "sku"], &["orderId", "sku"]),
        (
            "SubmitOrder",
            &["orderId", "paymentDueSeconds"],
            &["orderId"],
        ),
        (
            "RecordPayment",
            &["orderId", "amountCents"],
            &["orderId", "amountCents"],
        ),
        ("ShipOrder", &["orderId"], &["orderId"]),
        (
            "CancelOrder",
            &["orderId", "reason"],
            &["orderId", "reason"],
        ),
    ];
    for (command, all, required) in order_commands {
        let schema = schema_of(&orders, command, 1);
        assert_eq!(
            fields(&schema),
            (set(all), set(required)),
            "{command}: {schema}"
        );
    }
    let item = schema_of(&orders, "AddItem", 1);
    assert_eq!(item["properties"]["quantity"]["type"], "integer", "{item}");
    assert_eq!(item["properties"]["unitPriceCents"]["type"], "integer");
    assert_eq!(item["properties"]["unitPriceCents"]["minimum"], 0, "{item}");

    // Event types.
    assert_eq!(
        names(&tickets["eventTypes"]),
        set(&[
            "TicketOpened",
            "TicketAssigned",
            "CommentAdded",
            "TicketClosed",
            "TicketReopened"
        ])
    );
    assert_eq!(
        names(&orders["eventTypes"]),
        set(&[
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
            "OrderCancelled"
        ])
    );

    // Query API versions and query names.
    assert_eq!(tickets["queryVersions"], json!([1, 2]));
    assert_eq!(orders["queryVersions"], json!([1]));
    let queries = |domain: &Value, version: u64| -> BTreeSet<String> {
        domain["queries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|q| q["version"] == version)
            .map(|q| q["name"].as_str().unwrap().to_owned())
            .collect()
    };
    for version in [1, 2] {
        assert_eq!(
            queries(&tickets, version),
            set(&["getTicket", "searchTickets", "ticketStats"])
        );
    }
    assert_eq!(
        queries(&orders, 1),
        set(&[
            "getOrder",
            "currentOrders",
            "orderHistory",
            "customerOrders",
            "getStock",
            "listStock"
        ])
    );
}

#[tokio::test]
async fn openapi_carries_the_payload_schema_of_every_command_version() {
    let h = both();
    let domains = call(&h.app, get("/domains")).await.json();
    let openapi = call(&h.app, get("/openapi.json")).await;
    assert_eq!(openapi.status, StatusCode::OK);
    let openapi = openapi.json();
    let components: Vec<&Value> = openapi["components"]["schemas"]
        .as_object()
        .unwrap()
        .values()
        .collect();
    let mut seen = 0;
    for domain in domains["domains"].as_array().unwrap() {
        for command in domain["commands"].as_array().unwrap() {
            for version in command["versions"].as_array().unwrap() {
                assert!(
                    components.contains(&&version["schema"]),
                    "{} v{}'s schema is in /openapi.json",
                    command["name"],
                    version["version"]
                );
                seen += 1;
            }
        }
    }
    assert!(seen >= 6 + 8, "every public command version: {seen}");
}

#[tokio::test]
async fn openapi_names_the_command_fields_as_the_wire_spells_them() {
    let h = both();
    let openapi = call(&h.app, get("/openapi.json")).await.json();
    let update = &openapi["components"]["schemas"]["UpdateRequest"]["properties"];
    let mut names: Vec<&str> = update
        .as_object()
        .expect("UpdateRequest has properties")
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["command", "expectedVersion", "id", "payload", "version"]
    );
}

/// Every `$ref` in `value`.
fn refs<'v>(value: &'v Value, out: &mut Vec<&'v str>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(target)) => out.push(target),
                    _ => refs(value, out),
                }
            }
        }
        Value::Array(values) => values.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// The value a local JSON pointer (`#/a/b`) names in `document`.
fn resolve<'v>(document: &'v Value, reference: &str) -> Option<&'v Value> {
    document.pointer(reference.strip_prefix('#')?)
}

#[tokio::test]
async fn every_reference_in_openapi_resolves_in_the_document() {
    let h = both();
    let openapi = call(&h.app, get("/openapi.json")).await.json();
    let mut found = Vec::new();
    refs(&openapi, &mut found);
    let broken: Vec<&str> = found
        .into_iter()
        .filter(|r| resolve(&openapi, r).is_none())
        .collect();
    assert!(broken.is_empty(), "unresolved: {broken:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_code_reads_both_domains_at_one_position_while_both_are_written() {
    let h = both();
    h.ok("OpenTicket", open_ticket("t-1")).await;
    h.draft("o-1", "c-1", &[("pen", 1, 100)]).await;
    let start = h.position().await;

    // Alternately one comment and one more pen: at position `start + n` the ticket has
    // ceil(n / 2) comments and the order 1 + floor(n / 2) pens.
    let pairs = 30u64;
    let writer = {
        let h = h.clone();
        tokio::spawn(async move {
            for _ in 0..pairs {
                h.ok(
                    "AddComment",
                    json!({"ticketId": "t-1", "author": "bob", "text": "more"}),
                )
                .await;
                h.ok(
                    "AddItem",
                    json!({"orderId": "o-1", "sku": "pen", "quantity": 1, "unitPriceCents": 100}),
                )
                .await;
            }
        })
    };
    let code = "[getTicket('t-1').commentCount, getOrder('o-1').items[0].quantity]";
    let mut checked = 0;
    loop {
        let done = writer.is_finished();
        let answer = call(
            &h.app,
            support::post_json(
                &format!("/query/v1?after={start}"),
                json!({"code": code, "args": {}}).to_string(),
            ),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        let answer = answer.json();
        let n = answer["position"].as_u64().unwrap() - start;
        assert_eq!(
            answer["result"],
            json!([n.div_ceil(2), 1 + n / 2]),
            "both read at position {}",
            answer["position"]
        );
        checked += 1;
        if done {
            break;
        }
    }
    writer.await.unwrap();
    assert!(checked > 1);
    assert_eq!(h.position().await, start + 2 * pairs);
}

#[tokio::test]
async fn query_code_calls_both_domains_functions_in_one_query() {
    let h = both();
    h.ok("OpenTicket", open_ticket("t-1")).await;
    h.add_stock("pen", 5).await;
    h.draft("o-1", "c-1", &[("pen", 2, 150)]).await;
    let position = h.position().await;

    let answer = h
        .code(
            1,
            "({ticket: getTicket(args.t), order: getOrder(args.o), stats: ticketStats(), stock: getStock('pen')})",
            json!({"t": "t-1", "o": "o-1"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let answer = answer.json();
    assert_eq!(answer["position"], position);
    assert_eq!(
        answer["result"],
        json!({
            "ticket": h.query_ok("getTicket?id=t-1").await,
            "order": h.query_ok("getOrder?id=o-1").await,
            "stats": h.query_ok("ticketStats").await,
            "stock": h.query_ok("getStock?sku=pen").await,
        })
    );
}

#[tokio::test]
async fn a_named_query_is_answered_by_the_domain_that_has_it_in_that_version() {
    let h = both();
    h.ok("OpenTicket", open_ticket("t-1")).await;
    h.draft("o-1", "c-1", &[]).await;
    for (version, query) in [
        (1, "getTicket?id=t-1"),
        (2, "getTicket?id=t-1"),
        (1, "getOrder?id=o-1"),
        (1, "listStock"),
    ] {
        let answer = h.query(version, query).await;
        assert_eq!(answer.status, StatusCode::OK, "v{version} {query}");
    }
    // Orders have query API version 1 only.
    for (version, query) in [
        (2, "getOrder?id=o-1"),
        (1, "getNothing"),
        (3, "ticketStats"),
    ] {
        let answer = h.query(version, query).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "v{version} {query}");
        assert_eq!(answer.content_type(), "application/problem+json");
    }
    let typeof_all = "[typeof getTicket, typeof getOrder, typeof listStock]";
    let v1 = h.code(1, typeof_all, json!({})).await.json();
    assert_eq!(v1["result"], json!(["function", "function", "function"]));
    let v2 = h.code(2, typeof_all, json!({})).await.json();
    assert_eq!(v2["result"], json!(["function", "undefined", "undefined"]));
}

#[tokio::test]
async fn projections_lists_both_read_models() {
    let h = both();
    h.ok("OpenTicket", open_ticket("t-1")).await;
    h.add_stock("pen", 5).await;
    let position = h.position().await;
    let answer = call(&h.app, get("/projections")).await;
    assert_eq!(answer.status, StatusCode::OK);
    let projections = answer.json()["projections"].clone();
    assert_eq!(names(&projections), set(&["tickets", "orders"]));
    for projection in projections.as_array().unwrap() {
        assert_eq!(projection["lastPosition"], position, "{projection}");
    }
}

#[tokio::test]
async fn each_server_serves_the_domains_it_was_given_and_tickets_by_default() {
    for (domains, served, unknown) in [
        (&[][..], "tickets", "orders"),
        (&["tickets"][..], "tickets", "orders"),
        (&["orders"][..], "orders", "tickets"),
    ] {
        let h = Harness::start(domains);
        let listed = call(&h.app, get("/domains")).await.json();
        assert_eq!(names(&listed["domains"]), set(&[served]), "{domains:?}");
        let (ticket, order) = (
            json!({"id": uuid::Uuid::new_v4(), "command": "OpenTicket", "payload": open_ticket("t-1")}),
            json!({"id": uuid::Uuid::new_v4(), "command": "AddStock",
                "payload": {"sku": "pen", "name": "Pen", "quantity": 1}}),
        );
        let (served_body, unknown_body) = if served == "tickets" {
            (ticket, order)
        } else {
            (order, ticket)
        };
        assert_eq!(h.post(&served_body).await.status, StatusCode::ACCEPTED);
        let (status, code) = h.refused(&unknown_body).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "unknown_command"),
            "{unknown} on {domains:?}"
        );
        let query = if unknown == "orders" {
            "getOrder?id=o-1"
        } else {
            "getTicket?id=t-1"
        };
        assert_eq!(h.query(1, query).await.status, StatusCode::NOT_FOUND);
    }
}

// ----- clashes: test domains that claim what tickets or orders claim -----

/// What a test domain claims: its name, stream prefix and one command.
trait Claims: Send + Sync + 'static {
    const NAME: &'static str;
    const PREFIX: &'static str;
    const COMMAND: &'static str;
}

/// A domain of one command that records what it is given.
struct Claiming<C>(PhantomData<C>);

writ_domain::event_set! {
    #[derive(Debug, Clone, PartialEq)]
    enum Noted {
        Noted(Value),
    }
}

impl<C: Claims> Domain for Claiming<C> {
    const NAME: &'static str = C::NAME;
    const STREAM_PREFIXES: &'static [&'static str] = &[C::PREFIX];
    type Command = Value;
    type Event = Noted;
    type State = ();

    fn commands() -> CommandCatalog<Value> {
        CommandCatalog::new().command(C::COMMAND, 1, |payload: Value| payload)
    }

    fn stream(_: &Value) -> Cow<'_, str> {
        Cow::Owned(format!("{}1", C::PREFIX))
    }

    fn evolve(_: &mut (), _: &Noted) {}

    fn decide(decision: &mut Decision<'_, Self>, command: &Value) -> Result<(), Refusal> {
        decision.record(Noted::Noted(command.clone()));
        Ok(())
    }
}

/// Claims orders' `CreateOrder`.
struct Shop;
impl Claims for Shop {
    const NAME: &'static str = "shop";
    const PREFIX: &'static str = "cart-";
    const COMMAND: &'static str = "CreateOrder";
}

/// Claims streams that begin with orders' `order-`.
struct Archive;
impl Claims for Archive {
    const NAME: &'static str = "archive";
    const PREFIX: &'static str = "order-archive-";
    const COMMAND: &'static str = "ArchiveOrder";
}

/// Claims tickets' very prefix.
struct Helpdesk;
impl Claims for Helpdesk {
    const NAME: &'static str = "helpdesk";
    const PREFIX: &'static str = "ticket-";
    const COMMAND: &'static str = "RaiseIssue";
}

/// Claims nothing of the others' commands or streams; its read model (named `sales`)
/// claims orders' `getOrder`.
struct Reports;
impl Claims for Reports {
    const NAME: &'static str = "reports";
    const PREFIX: &'static str = "report-";
    const COMMAND: &'static str = "Report";
}

/// Claims the built-in domain's command (`writ_query::switch`).
struct Operator;
impl Claims for Operator {
    const NAME: &'static str = "operator";
    const PREFIX: &'static str = "operator-";
    const COMMAND: &'static str = "SwitchReadModel";
}

/// Claims streams that begin with the built-in domain's `$readmodel-`.
struct Dollars;
impl Claims for Dollars {
    const NAME: &'static str = "dollars";
    const PREFIX: &'static str = "$readmodel-dollars-";
    const COMMAND: &'static str = "Spend";
}

/// Claims the built-in domain's name.
struct Impostor;
impl Claims for Impostor {
    const NAME: &'static str = "$system";
    const PREFIX: &'static str = "impostor-";
    const COMMAND: &'static str = "Pretend";
}

/// A read model without state whose query API version 1 has `getOrder`.
#[derive(Clone)]
struct Sales;

impl Projection for Sales {
    type State = ();
    type Decoded = ();
    fn name(&self) -> &'static str {
        "sales"
    }
    fn version(&self) -> u32 {
        1
    }
    fn event_types(&self) -> &[&'static str] {
        &[]
    }
    fn initial_state(&self) {}
    fn decode(&self, _: &RecordedEvent) -> Result<(), ApplyError> {
        Ok(())
    }
    fn apply(&self, _: &mut (), _: &RecordedEvent, _: ()) -> Result<(), ApplyError> {
        Ok(())
    }
}

fn sales() -> ReadModelSpec {
    let mut catalog = QueryCatalog::new();
    let _ = catalog
        .version(1)
        .query("getOrder", &["id"], |_: &(), _| Ok(Value::Null));
    ReadModelSpec::new(Sales, catalog)
}

/// The binary's modules and the test ones.
fn with_claims() -> App {
    binary_app()
        .module(Module::new::<Claiming<Shop>>())
        .module(Module::new::<Claiming<Archive>>())
        .module(Module::new::<Claiming<Helpdesk>>())
        .module(Module::new::<Claiming<Reports>>().read_model(sales()))
        .module(Module::new::<Claiming<Operator>>())
        .module(Module::new::<Claiming<Dollars>>())
        .module(Module::new::<Claiming<Impostor>>())
}

/// The message `App::start` stops with when serving `domains`.
fn start_error(config: Config) -> String {
    match with_claims().start(config) {
        Ok(_) => panic!("the start is refused"),
        Err(error) => error.to_string(),
    }
}

fn on_sim(domains: &[&str]) -> Config {
    support::config(&SimStorage::new(), domains)
}

#[test]
fn the_test_domains_start_where_nothing_clashes() {
    let started = with_claims().start(on_sim(&["tickets", "shop", "archive", "reports"]));
    assert!(started.is_ok(), "{:?}", started.err());
}

#[test]
fn a_command_claimed_by_two_domains_stops_the_start_naming_both() {
    let message = start_error(on_sim(&["orders", "shop"]));
    for name in ["CreateOrder", "orders", "shop"] {
        assert!(message.contains(name), "{name} in {message}");
    }
}

#[test]
fn a_domain_claiming_the_built_in_domains_name_command_or_streams_stops_the_start_naming_it() {
    for (domain, claimed) in [
        ("operator", "SwitchReadModel"),
        ("dollars", "$readmodel-"),
        ("$system", "two domains are named"),
    ] {
        let message = start_error(on_sim(&["tickets", domain]));
        for name in [claimed, "$system"] {
            assert!(message.contains(name), "{name} in {message}");
        }
    }
}

#[test]
fn a_stream_prefix_claimed_by_two_domains_stops_the_start_naming_both() {
    for (domains, prefix) in [
        (["orders", "archive"], "order-"),
        (["tickets", "helpdesk"], "ticket-"),
    ] {
        let message = start_error(on_sim(&domains));
        for name in [domains[0], domains[1], prefix] {
            assert!(message.contains(name), "{name} in {message}");
        }
    }
}

#[test]
fn a_query_name_claimed_by_two_domains_stops_the_start_naming_both() {
    let message = start_error(on_sim(&["orders", "reports"]));
    for name in ["getOrder", "orders", "reports"] {
        assert!(message.contains(name), "{name} in {message}");
    }
}

#[test]
fn a_command_or_prefix_clash_is_refused_before_the_store_is_created() {
    for domains in [["orders", "shop"], ["orders", "archive"]] {
        let dir = support::fresh_dir("clash");
        let mut config = on_sim(&domains);
        config.store = Store::Dir(dir.clone());
        start_error(config);
        assert!(!dir.exists(), "{domains:?}: nothing was created");
    }
}

#[test]
fn a_query_clash_is_refused_before_the_store_is_created() {
    let dir = support::fresh_dir("query-clash");
    let mut config = on_sim(&["orders", "reports"]);
    config.store = Store::Dir(dir.clone());
    start_error(config);
    let created = dir.exists();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!created, "nothing was created");
}

#[test]
fn the_same_domain_registered_twice_stops_the_start() {
    let twice = App::new()
        .module(Module::new::<writ_tickets::Tickets>())
        .module(Module::new::<writ_tickets::Tickets>());
    match twice.start(on_sim(&[])) {
        Ok(_) => panic!("two modules named tickets are refused"),
        Err(error) => assert!(error.to_string().contains("tickets"), "{error}"),
    }
}

#[tokio::test]
async fn a_named_query_whose_answer_outgrows_the_servers_bound_answers_422_naming_it() {
    let h = Harness::start_with(&["tickets"], |config| {
        config.server.query_answer_bytes_max = 4_000;
    });
    h.ok("OpenTicket", open_ticket("t-small")).await;
    h.ok("OpenTicket", open_ticket("t-big")).await;
    for i in 0..60 {
        h.ok(
            "AddComment",
            json!({"ticketId": "t-big", "author": "bob", "text": format!("comment {i}: the printer is still on fire")}),
        )
        .await;
    }
    let big = h.query(1, "getTicket?id=t-big").await;
    assert_eq!(
        big.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        big.text()
    );
    let problem = big.json();
    assert!(
        problem["type"].as_str().unwrap().ends_with("/memory_limit"),
        "{problem}"
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("4000"),
        "the bound is named: {problem}"
    );
    // A smaller answer of the same query is whole.
    let small = h.query_ok("getTicket?id=t-small").await;
    assert_eq!(small["title"], "Printer on fire", "{small}");
    assert_eq!(small["comments"], json!([]), "{small}");
}
