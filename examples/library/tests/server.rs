//! End to end: the library's module started by `App::start` as `main` registers it, on
//! in-memory storage (`SimStorage`), and called through the server's router without a
//! socket, as a client would call it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use writ_app::{App, Config, Module, Started, Store};
use writ_example_library::{Library, Reminders, read};
use writ_log::storage::SimStorage;

/// The module as `src/main.rs` registers it.
fn app() -> App {
    App::new().module(
        Module::new::<Library>()
            .process::<Reminders>()
            .read_model(read::read_model()),
    )
}

fn start(storage: &SimStorage) -> Started {
    let store = Store::Storage(Arc::new(storage.clone()));
    app().start(Config::new(store)).expect("the library starts")
}

/// A bound on what should happen soon; never a timing assertion.
const BOUND: Duration = Duration::from_secs(30);

async fn call(router: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = tokio::time::timeout(BOUND, router.clone().oneshot(request))
        .await
        .expect("the router answers")
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&body)));
    (status, json)
}

async fn get(router: &Router, uri: &str) -> Value {
    let (status, body) = call(router, Request::get(uri).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "GET {uri}: {body}");
    body
}

/// `POST /update?wait=10`: the command's final status.
async fn send(router: &Router, id: u128, command: &str, version: u32, payload: Value) -> Value {
    let (status, body) = post(router, id, command, version, payload).await;
    assert_eq!(status, StatusCode::OK, "{command}: {body}");
    body
}

async fn post(
    router: &Router,
    id: u128,
    command: &str,
    version: u32,
    payload: Value,
) -> (StatusCode, Value) {
    let body = json!({
        "id": uuid::Uuid::from_u128(id),
        "command": command,
        "version": version,
        "payload": payload,
    });
    let request = Request::post("/update?wait=10")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    call(router, request).await
}

/// Sends a command that must succeed; its final status.
async fn ok(router: &Router, id: u128, command: &str, version: u32, payload: Value) -> Value {
    let status = send(router, id, command, version, payload).await;
    assert_eq!(status["status"], "succeeded", "{status}");
    status
}

/// The events of `stream` once it holds `count` (the engine works on its own: timers).
async fn events_when(router: &Router, stream: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + BOUND;
    loop {
        let events = get(router, &format!("/streams/{stream}")).await["events"].clone();
        let events = events.as_array().unwrap().clone();
        if events.len() >= count {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "{stream} never held {count} events"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn shelve(router: &Router) {
    ok(
        router,
        1,
        "AddBook",
        1,
        json!({"bookId": "b-1", "title": "Middlemarch"}),
    )
    .await;
    ok(
        router,
        2,
        "AddBook",
        1,
        json!({"bookId": "b-2", "title": "Persuasion"}),
    )
    .await;
    ok(
        router,
        3,
        "RegisterMember",
        1,
        json!({"memberId": "ann", "name": "Ann"}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_loan_due_at_once_is_marked_overdue_by_its_timer_and_both_query_versions_show_it() {
    let storage = SimStorage::new();
    let started = start(&storage);
    let engine = Arc::clone(started.state.engine());
    let router = writ_server::router(started.state);
    shelve(&router).await;

    // Version 1: 14 days. One decision, two streams.
    let lend = json!({"bookId": "b-1", "memberId": "ann"});
    let status = ok(&router, 10, "LendBook", 1, lend).await;
    let recorded: Vec<(&str, &str)> = status["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["stream"].as_str().unwrap(), e["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        recorded,
        [("book-b-1", "BookLent"), ("member-ann", "LoanOpened")]
    );
    assert_eq!(engine.timers_pending(), 1, "b-1's reminder");

    // Version 2, 0 days: due at once, so the timer fires right away.
    let lend_id = uuid::Uuid::from_u128(11);
    let lend = json!({"bookId": "b-2", "memberId": "ann", "days": 0});
    ok(&router, 11, "LendBook", 2, lend).await;
    let events = events_when(&router, "book-b-2", 3).await;
    let overdue = &events[2];
    assert_eq!(overdue["type"], "BookOverdue");

    // The timer's command, by its id: an ordinary command, origin `timer`, caused by the
    // lending, in its chain.
    let id = overdue["metadata"]["commandId"].as_str().unwrap();
    let mark = get(&router, &format!("/update/{id}")).await;
    assert_eq!(mark["command"], "MarkOverdue");
    assert_eq!(mark["status"], "succeeded");
    assert_eq!(mark["origin"], "timer");
    assert_eq!(mark["causationId"], json!(lend_id));
    assert_eq!(mark["correlationId"], json!(lend_id));
    assert_eq!(engine.timers_pending(), 1, "b-2's fired, b-1's waits");

    // Both query versions, once the read model holds the overdue mark.
    let after = overdue["position"].as_u64().unwrap();
    let v2 = get(
        &router,
        &format!("/query/v2/memberLoans?memberId=ann&after={after}"),
    )
    .await;
    let loans = v2["loans"].as_array().unwrap();
    let shown: Vec<(&str, bool)> = loans
        .iter()
        .map(|l| {
            (
                l["bookId"].as_str().unwrap(),
                l["overdue"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(shown, [("b-2", true), ("b-1", false)], "earliest due first");
    assert_eq!(loans[0]["dueAt"], loans[0]["lentAt"], "due at once");
    let v1 = get(
        &router,
        &format!("/query/v1/memberLoans?memberId=ann&after={after}"),
    )
    .await;
    assert_eq!(
        v1,
        json!([
            {"bookId": "b-2", "title": "Persuasion", "dueAt": loans[0]["dueAt"]},
            {"bookId": "b-1", "title": "Middlemarch", "dueAt": loans[1]["dueAt"]},
        ])
    );
    let overdue_loans = get(&router, &format!("/query/v2/overdueLoans?after={after}")).await;
    assert_eq!(overdue_loans["total"], 1);
    assert_eq!(overdue_loans["items"][0]["bookId"], "b-2");

    // Returning b-1 cancels its timer.
    ok(&router, 12, "ReturnBook", 1, json!({"bookId": "b-1"})).await;
    assert_eq!(engine.timers_pending(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn rejections_carry_their_codes_and_internal_commands_are_not_for_clients() {
    let started = start(&SimStorage::new());
    let router = writ_server::router(started.state);
    shelve(&router).await;

    let too_long = json!({"bookId": "b-1", "memberId": "ann", "days": 61});
    let status = send(&router, 10, "LendBook", 2, too_long).await;
    assert_eq!(status["status"], "rejected");
    assert_eq!(status["error"]["code"], "days_invalid");
    let status = send(&router, 11, "ReturnBook", 1, json!({"bookId": "b-1"})).await;
    assert_eq!(status["error"]["code"], "book_not_on_loan");

    let mark = json!({"bookId": "b-1", "loanId": uuid::Uuid::nil()});
    let (code, problem) = post(&router, 12, "MarkOverdue", 1, mark).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let (code, problem) = post(
        &router,
        13,
        "AddBook",
        1,
        json!({"bookId": "", "title": "x"}),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_loans_timer_survives_a_restart() {
    let storage = SimStorage::new();
    let started = start(&storage);
    let router = writ_server::router(started.state);
    shelve(&router).await;
    let lend = json!({"bookId": "b-1", "memberId": "ann", "days": 30});
    let lent = ok(&router, 10, "LendBook", 2, lend).await;
    drop(router);

    // What a power cut leaves: the durable bytes only. The timer is in the command log.
    let started = start(&storage.crash());
    assert_eq!(started.report.timers_pending, 1);
    let engine = Arc::clone(started.state.engine());
    let router = writ_server::router(started.state);
    let after = lent["position"].as_u64().unwrap();
    let v2 = get(
        &router,
        &format!("/query/v2/memberLoans?memberId=ann&after={after}"),
    )
    .await;
    assert_eq!(v2["loans"][0]["bookId"], "b-1", "rebuilt from the log");
    ok(&router, 11, "ReturnBook", 1, json!({"bookId": "b-1"})).await;
    assert_eq!(engine.timers_pending(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn domains_shows_the_commands_their_versions_the_queries_and_the_process() {
    let started = start(&SimStorage::new());
    let router = writ_server::router(started.state);
    let domains = get(&router, "/domains").await;
    let library = &domains["domains"][0];
    assert_eq!(library["name"], "library");
    assert_eq!(library["streamPrefixes"], json!(["book-", "member-"]));
    let commands: Vec<(&str, bool, Vec<u64>)> = library["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let versions = c["versions"].as_array().unwrap();
            (
                c["name"].as_str().unwrap(),
                c["internal"].as_bool().unwrap(),
                versions
                    .iter()
                    .map(|v| v["version"].as_u64().unwrap())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        commands,
        [
            ("AddBook", false, vec![1]),
            ("RegisterMember", false, vec![1]),
            ("LendBook", false, vec![1, 2]),
            ("ReturnBook", false, vec![1]),
            ("MarkOverdue", true, vec![1]),
        ]
    );
    assert_eq!(library["readModels"], json!(["loans"]));
    assert_eq!(library["queryVersions"], json!([1, 2]));
    let queries: Vec<(u64, &str)> = library["queries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| (q["version"].as_u64().unwrap(), q["name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        queries,
        [(1, "memberLoans"), (2, "memberLoans"), (2, "overdueLoans")]
    );
    assert_eq!(domains["processes"][0]["name"], "reminders");
}
