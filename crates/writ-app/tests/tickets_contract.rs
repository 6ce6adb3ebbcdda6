//! The tickets domain's contract (`../shared/CONTRACT.md`, "The example domain:
//! `tickets`") through the router of an `App` that serves it: its commands' payload
//! schemas in `/openapi.json`, and its named queries in both query API versions. The
//! server's own behaviour (statuses, long polls, reads, query code, rebuilds) is tested in
//! writ-server on a neutral domain; these are the checks of that suite that are about the
//! tickets domain itself.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;
use writ_app::{App, Config, Module, Store};
use writ_engine::EngineOptions;
use writ_log::LogOptions;
use writ_log::storage::SimStorage;

/// A bound for answers that should come at once; never a timing assertion.
const BOUND: Duration = Duration::from_secs(30);

/// The router of an app serving the tickets domain with its read model, on simulated
/// storage with small log segments.
fn app() -> Router {
    let app = App::new().module(
        Module::new::<writ_tickets::Tickets>().read_model(writ_tickets::read::read_model()),
    );
    let mut config = Config::new(Store::Storage(Arc::new(SimStorage::new())));
    config.engine = EngineOptions {
        log: LogOptions {
            segment_bytes: 4 << 20,
            record_bytes_max: 2 << 20,
            ..LogOptions::default()
        },
        ..EngineOptions::default()
    };
    writ_server::router(app.start(config).expect("the app starts").state)
}

/// Sends `request` and reads the whole answer: its status and its body as JSON.
async fn call(app: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = tokio::time::timeout(BOUND, app.clone().oneshot(request))
        .await
        .expect("the router answers")
        .unwrap();
    let status = response.status();
    let body = tokio::time::timeout(BOUND, response.into_body().collect())
        .await
        .expect("the body ends")
        .unwrap()
        .to_bytes();
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&body)));
    (status, json)
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

/// The JSON of a `200` to `GET uri`.
async fn ok(app: &Router, uri: &str) -> Value {
    let (status, body) = call(app, get(uri)).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    body
}

/// Runs a command to its final status (`POST /update?wait=`), which must be a success;
/// returns its position.
async fn run(app: &Router, command: &str, payload: Value) -> u64 {
    let body = json!({"id": Uuid::new_v4(), "command": command, "payload": payload});
    let request = Request::post("/update?wait=30")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let (status, outcome) = call(app, request).await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(outcome["status"], "succeeded", "{outcome}");
    outcome["position"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_carries_the_tickets_payload_schemas() {
    let app = app();
    let document = ok(&app, "/openapi.json").await;
    let schemas = &document["components"]["schemas"];
    let open_v2 = &schemas["OpenTicket.v2"];
    assert_eq!(open_v2["type"], "object");
    assert_eq!(open_v2["additionalProperties"], false);
    let priorities: Vec<&Value> = open_v2["properties"]["priority"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["const"])
        .collect();
    assert_eq!(
        priorities,
        [
            &json!("low"),
            &json!("normal"),
            &json!("high"),
            &json!("urgent")
        ]
    );
    assert_eq!(
        open_v2["required"],
        json!(["ticketId", "title", "reporter"])
    );
    for name in [
        "OpenTicket.v1",
        "AssignTicket.v1",
        "AddComment.v1",
        "CloseTicket.v1",
        "ReopenTicket.v1",
    ] {
        assert_eq!(schemas[name]["type"], "object", "{name}");
    }
    let description = document["info"]["description"].as_str().unwrap();
    assert!(description.contains("`tickets`"), "{description}");
    assert!(
        description.contains("`OpenTicket` version 2"),
        "{description}"
    );
}

/// Two tickets, one commented and closed; returns the last position, once the read
/// model has it.
async fn populate(app: &Router) -> u64 {
    let open = |id: &str, title: &str| json!({"ticketId": id, "title": title, "reporter": "ann", "priority": "high"});
    run(app, "OpenTicket", open("t-1", "Printer on fire")).await;
    run(app, "OpenTicket", open("t-2", "Coffee machine leaks")).await;
    run(
        app,
        "AddComment",
        json!({"ticketId": "t-1", "author": "bob", "text": "Extinguisher found"}),
    )
    .await;
    let last = run(
        app,
        "CloseTicket",
        json!({"ticketId": "t-1", "resolution": "fixed"}),
    )
    .await;
    ok(app, &format!("/query/v1/ticketStats?after={last}")).await;
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_queries_answer_in_both_versions() {
    let app = app();
    populate(&app).await;

    let v1 = ok(&app, "/query/v1/getTicket?id=t-1").await;
    assert_eq!(v1["title"], "Printer on fire");
    assert_eq!(v1["status"], "closed");
    assert_eq!(v1["comments"][0]["text"], "Extinguisher found");
    assert!(v1.get("history").is_none(), "v1 has no history: {v1}");

    let v2 = ok(&app, "/query/v2/getTicket?id=t-1").await;
    let history: Vec<&str> = v2["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| change["status"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["open", "closed"]);
    // v1 is v2 without the history.
    let mut stripped = v2.clone();
    stripped.as_object_mut().unwrap().remove("history");
    assert_eq!(stripped, v1);

    let v1 = ok(&app, "/query/v1/searchTickets?status=open").await;
    assert_eq!(v1.as_array().unwrap().len(), 1);
    assert_eq!(v1[0]["id"], "t-2");
    let v2 = ok(&app, "/query/v2/searchTickets?text=printer&limit=5").await;
    assert_eq!(v2["total"], 1);
    assert_eq!(v2["items"][0]["id"], "t-1");
    assert_eq!(v2["cursor"], Value::Null);

    let stats = ok(&app, "/query/v1/ticketStats").await;
    assert_eq!(stats, json!({"open": 1, "closed": 1, "total": 2}));
    let stats = ok(&app, "/query/v2/ticketStats").await;
    assert_eq!(stats["byPriority"]["high"], 2);

    for (uri, status, code) in [
        (
            "/query/v1/getTicket?id=t-9",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "/query/v1/searchTickets?priority=whenever",
            StatusCode::BAD_REQUEST,
            "bad_argument",
        ),
    ] {
        let (answered, problem) = call(&app, get(uri)).await;
        assert_eq!(answered, status, "{uri}: {problem}");
        assert_eq!(
            problem["type"],
            format!("https://writ.dev/problems/{code}"),
            "{uri}"
        );
    }
}
