//! The HTTP API through the router, without a socket: every status code of the contract,
//! long polls, server-sent events, reads and operations.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode, header};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;
use writ_engine::{Engine, EngineOptions, Submitted};
use writ_fixtures::Counters;
use writ_log::storage::SimStorage;
use writ_server::wire::{CommandStatusBody, EventsPage, StatusName, StreamPage};
use writ_server::{AppState, ServerOptions, router};

mod support;
use support::{Answer, BOUND, call, get, post_json, small_engine_options as engine_options};

struct Harness {
    app: Router,
    engine: Arc<Engine>,
    storage: SimStorage,
}

fn harness() -> Harness {
    harness_with(engine_options(), ServerOptions::default())
}

fn harness_with(engine_options: EngineOptions, server_options: ServerOptions) -> Harness {
    let storage = SimStorage::new();
    let (engine, _) =
        support::open_domain::<Counters>(Arc::new(storage.clone()), engine_options).unwrap();
    let engine = Arc::new(engine);
    let app = router(AppState::new(Arc::clone(&engine), server_options));
    Harness {
        app,
        engine,
        storage,
    }
}

impl Answer {
    /// Checks that this is a problem document of `status`, and returns it.
    fn problem(&self, status: StatusCode) -> Value {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.content_type(), "application/problem+json");
        let problem = self.json();
        assert_eq!(problem["status"], status.as_u16());
        assert!(
            problem["type"]
                .as_str()
                .unwrap()
                .starts_with("https://writ.dev/problems/")
        );
        assert!(problem["title"].is_string());
        assert!(problem["detail"].is_string());
        let retry_after = self.headers.get(header::RETRY_AFTER);
        assert_eq!(
            retry_after.is_some(),
            status == StatusCode::SERVICE_UNAVAILABLE,
            "Retry-After exactly on 503"
        );
        problem
    }
}

fn post(body: impl Into<String>) -> Request<Body> {
    post_json("/update", body.into())
}

fn get_events_stream(uri: &str, last_event_id: Option<u64>) -> Request<Body> {
    let mut request = Request::get(uri).header(header::ACCEPT, "text/event-stream");
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id.to_string());
    }
    request.body(Body::empty()).unwrap()
}

fn create(id: Uuid, counter: &str) -> String {
    json!({"id": id, "command": "CreateCounter", "version": 2,
        "payload": {"counterId": counter, "title": "Visitors", "owner": "ann", "start": 10}})
    .to_string()
}

fn add(id: Uuid, counter: &str, note: &str) -> String {
    json!({"id": id, "command": "Add", "payload": {"counterId": counter, "amount": 1, "note": note}})
        .to_string()
}

/// Submits through HTTP and waits for the final status.
async fn run(app: &Router, body: String) -> CommandStatusBody {
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let answer = call(app, post(body)).await;
    assert_eq!(
        answer.status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    call(app, get(&format!("/update/{id}?wait=30")))
        .await
        .status_body()
}

#[tokio::test]
async fn a_new_command_is_accepted_with_202_and_its_location() {
    let h = harness();
    let id = Uuid::new_v4();
    let answer = call(&h.app, post(create(id, "c-1"))).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert_eq!(answer.content_type(), "application/json");
    assert_eq!(answer.headers[header::LOCATION], format!("/update/{id}"));
    assert_eq!(answer.json(), json!({"id": id, "status": "accepted"}));
    // Acknowledged means in the engine's command log.
    assert!(h.engine.status(id).unwrap().is_some());
}

#[tokio::test]
async fn json_subtypes_are_json() {
    let h = harness();
    let request = Request::post("/update")
        .header(
            header::CONTENT_TYPE,
            "application/vnd.writ+json; charset=utf-8",
        )
        .body(Body::from(create(Uuid::new_v4(), "c-1")))
        .unwrap();
    assert_eq!(call(&h.app, request).await.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn the_same_command_again_is_a_duplicate_answered_200_with_its_status() {
    let h = harness();
    let id = Uuid::new_v4();
    let first = run(&h.app, create(id, "c-1")).await;
    assert_eq!(first.status, StatusName::Succeeded);

    let answer = call(&h.app, post(create(id, "c-1"))).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers[header::LOCATION], format!("/update/{id}"));
    let body = answer.json();
    assert_eq!(body["duplicate"], true);
    assert_eq!(body["status"], "succeeded");
    assert_eq!(body["events"][0]["type"], "CounterCreated");
    assert_eq!(
        h.engine.read_stream("counter-c-1", 1, 10).unwrap().len(),
        1,
        "run once"
    );

    // The same payload with whitespace and fields reordered is the same command.
    let reordered = format!(
        r#"{{ "payload" : {{"start":10,"owner":"ann","title":"Visitors","counterId":"c-1"}}, "version":2, "command":"CreateCounter", "id":"{id}" }}"#
    );
    assert_eq!(
        call(&h.app, post(reordered)).await.json()["duplicate"],
        true
    );
}

#[tokio::test]
async fn the_same_id_with_another_payload_is_a_409_conflict() {
    let h = harness();
    let id = Uuid::new_v4();
    run(&h.app, create(id, "c-1")).await;
    let problem = call(&h.app, post(create(id, "c-2")))
        .await
        .problem(StatusCode::CONFLICT);
    assert_eq!(problem["type"], "https://writ.dev/problems/conflict");
    let other_command = add(id, "c-1", "hi");
    call(&h.app, post(other_command))
        .await
        .problem(StatusCode::CONFLICT);
}

#[tokio::test]
async fn malformed_requests_are_400() {
    let h = harness();
    let id = Uuid::new_v4();
    let cases = [
        "{".to_owned(),
        "[]".to_owned(),
        String::new(),
        json!({"command": "CreateCounter", "payload": {}}).to_string(),
        json!({"id": "not-a-uuid", "command": "CreateCounter", "payload": {}}).to_string(),
        json!({"id": 12, "command": "CreateCounter", "payload": {}}).to_string(),
        json!({"id": id, "payload": {}}).to_string(),
        json!({"id": id, "command": 7, "payload": {}}).to_string(),
        json!({"id": id, "command": "CreateCounter"}).to_string(),
        json!({"id": id, "command": "CreateCounter", "payload": [1]}).to_string(),
        json!({"id": id, "command": "CreateCounter", "payload": "{}"}).to_string(),
        json!({"id": id, "command": "CreateCounter", "version": 0, "payload": {}}).to_string(),
        json!({"id": id, "command": "CreateCounter", "version": "2", "payload": {}}).to_string(),
        json!({"id": id, "command": "CreateCounter", "version": 1.5, "payload": {}}).to_string(),
    ];
    for body in cases {
        let problem = call(&h.app, post(body.clone()))
            .await
            .problem(StatusCode::BAD_REQUEST);
        assert_eq!(
            problem["type"], "https://writ.dev/problems/malformed",
            "{body}"
        );
    }
    assert_eq!(h.engine.stats().commands_accepted, 0);
}

#[tokio::test]
async fn bodies_not_declared_json_are_415() {
    let h = harness();
    let body = create(Uuid::new_v4(), "c-1");
    let untyped = Request::post("/update")
        .body(Body::from(body.clone()))
        .unwrap();
    call(&h.app, untyped)
        .await
        .problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let text = Request::post("/update")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(body))
        .unwrap();
    call(&h.app, text)
        .await
        .problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn unknown_commands_and_invalid_payloads_are_422() {
    let h = harness();
    let cases = [
        (
            json!({"command": "Frobnicate", "payload": {}}),
            "unknown_command",
        ),
        (
            json!({"command": "CreateCounter", "version": 9, "payload": {}}),
            "unknown_command",
        ),
        (
            json!({"command": "CreateCounter", "payload": {"counterId": "c-1"}}),
            "invalid_payload",
        ),
        (
            json!({"command": "CreateCounter", "version": 2, "payload":
                {"counterId": "c-1", "title": "x", "owner": "ann", "start": "whenever"}}),
            "invalid_payload",
        ),
        (
            json!({"command": "Add", "payload": {"counterId": "c-1", "amount": 1, "note": "b", "extra": 1}}),
            "invalid_payload",
        ),
    ];
    for (mut body, code) in cases {
        body["id"] = json!(Uuid::new_v4());
        let problem = call(&h.app, post(body.to_string()))
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            problem["type"],
            format!("https://writ.dev/problems/{code}"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let h = harness_with(
        engine_options(),
        ServerOptions {
            body_bytes_max: 4096,
            ..ServerOptions::default()
        },
    );
    let body = add(Uuid::new_v4(), "c-1", &"x".repeat(5000));
    let problem = call(&h.app, post(body))
        .await
        .problem(StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(problem["type"], "https://writ.dev/problems/too_large");
}

#[tokio::test]
async fn a_command_over_the_engines_limit_is_413() {
    let h = harness_with(
        EngineOptions {
            command_bytes_max: 1024,
            ..engine_options()
        },
        ServerOptions::default(),
    );
    let body = add(Uuid::new_v4(), "c-1", &"x".repeat(2000));
    let problem = call(&h.app, post(body))
        .await
        .problem(StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        problem["detail"].as_str().unwrap().contains("1024"),
        "{problem}"
    );
}

#[tokio::test]
async fn a_full_bound_in_the_engine_is_503_with_retry_after() {
    let h = harness_with(
        EngineOptions {
            dedupe_entries_max: 1,
            dedupe_spill_entries: 1,
            ..engine_options()
        },
        ServerOptions::default(),
    );
    // A full disk: the dedupe index cannot spill, so its hot map stays at its bound.
    h.storage.set_capacity(h.storage.used_bytes());
    run(&h.app, create(Uuid::new_v4(), "c-1")).await;
    let problem = call(&h.app, post(create(Uuid::new_v4(), "c-2")))
        .await
        .problem(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(problem["type"], "https://writ.dev/problems/overloaded");
}

#[tokio::test]
async fn a_poisoned_store_answers_503_and_keeps_serving_reads() {
    let h = harness();
    run(&h.app, create(Uuid::new_v4(), "c-1")).await;
    // The command log's next sync fails: the command is never acknowledged.
    h.storage.fail_next_sync();
    let problem = call(&h.app, post(add(Uuid::new_v4(), "c-1", "lost")))
        .await
        .problem(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(problem["type"], "https://writ.dev/problems/unavailable");
    // Every later write is refused at once.
    call(&h.app, post(add(Uuid::new_v4(), "c-1", "later")))
        .await
        .problem(StatusCode::SERVICE_UNAVAILABLE);
    let health = call(&h.app, get("/health")).await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health.json()["status"], "unavailable");
    assert!(
        health.json()["detail"]
            .as_str()
            .unwrap()
            .contains("poisoned")
    );
    let stream = call(&h.app, get("/streams/counter-c-1")).await;
    assert_eq!(stream.status, StatusCode::OK);
    assert_eq!(stream.json()["events"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_command_whose_record_cannot_be_synced_is_refused_and_long_polls_answer_at_once() {
    let h = harness();
    run(&h.app, create(Uuid::new_v4(), "c-1")).await;
    // The journal's sync fails: the command and its outcome are one record, neither durable.
    h.storage.fail_next_sync();
    let id = Uuid::new_v4();
    let answer = call(&h.app, post(add(id, "c-1", "hi"))).await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.text()
    );
    // A long poll on the refused id does not wait out its 60 s: the id is unknown.
    let status = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        call(&h.app, get(&format!("/update/{id}?wait=60"))),
    )
    .await
    .expect("the long poll answers at once");
    assert_eq!(status.status, StatusCode::NOT_FOUND, "{}", status.text());
}

/// With `requests_max` 1: sends a `POST /update` whose body never comes, which holds the
/// only place, and returns once `probe` is shed, with that answer. Abort the handle to
/// give the place back.
async fn hold_the_only_place(app: &Router, probe: &str) -> (tokio::task::AbortHandle, Answer) {
    let stuck = Request::post("/update")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(futures_util::stream::pending::<
            Result<Bytes, std::io::Error>,
        >()))
        .unwrap();
    let stuck = tokio::spawn(app.clone().oneshot(stuck)).abort_handle();
    for _ in 0..10_000 {
        let answer = call(app, get(probe)).await;
        if answer.status == StatusCode::SERVICE_UNAVAILABLE {
            return (stuck, answer);
        }
        tokio::task::yield_now().await;
    }
    panic!("{probe} is never shed while a request holds the only place");
}

#[tokio::test]
async fn a_command_alone_is_decided_on_its_request_and_one_among_others_is_queued() {
    let h = harness();
    let decided_on_submit = || h.engine.stats().decided_on_submit;
    // Alone in the server, the engine idle: decided and synced on the request's thread.
    let first = run(&h.app, create(Uuid::new_v4(), "c-1")).await;
    assert_eq!(first.status, StatusName::Succeeded);
    assert_eq!(decided_on_submit(), 1);

    // Another request in progress (its body never comes): queued for the writer.
    let (admitted, polled) = tokio::sync::oneshot::channel::<()>();
    let mut admitted = Some(admitted);
    let body = futures_util::stream::poll_fn(move |_| {
        if let Some(admitted) = admitted.take() {
            let _ = admitted.send(());
        }
        std::task::Poll::<Option<Result<Bytes, std::io::Error>>>::Pending
    });
    let stuck = Request::post("/update")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(body))
        .unwrap();
    let stuck = tokio::spawn(h.app.clone().oneshot(stuck));
    polled
        .await
        .expect("the stuck request is admitted and reads its body");
    let second = run(&h.app, create(Uuid::new_v4(), "c-2")).await;
    assert_eq!(second.status, StatusName::Succeeded);
    assert_eq!(decided_on_submit(), 1, "queued, not decided on its request");

    // Alone again once the other has ended and the crowded window (100 ms) has passed.
    stuck.abort();
    assert!(stuck.await.unwrap_err().is_cancelled());
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let third = run(&h.app, create(Uuid::new_v4(), "c-3")).await;
    assert_eq!(third.status, StatusName::Succeeded);
    assert_eq!(decided_on_submit(), 2);
}

#[tokio::test]
async fn too_many_requests_in_progress_are_shed_with_503() {
    let h = harness_with(
        engine_options(),
        ServerOptions {
            requests_max: 1,
            ..ServerOptions::default()
        },
    );
    let (stuck, shed) = hold_the_only_place(&h.app, "/events").await;
    let problem = shed.problem(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(problem["type"], "https://writ.dev/problems/overloaded");
    // Operations stay outside the bound.
    assert_eq!(call(&h.app, get("/health")).await.status, StatusCode::OK);
    stuck.abort();
}

#[tokio::test]
async fn long_polls_answer_while_requests_are_full() {
    let h = harness_with(
        engine_options(),
        ServerOptions {
            requests_max: 1,
            ..ServerOptions::default()
        },
    );
    let id = Uuid::new_v4();
    run(&h.app, create(id, "c-1")).await;
    // A status read without a wait is an ordinary request: shed.
    let (stuck, _) = hold_the_only_place(&h.app, &format!("/update/{id}")).await;
    // A long poll waits under its own bound, so it still answers.
    let status = call(&h.app, get(&format!("/update/{id}?wait=5")))
        .await
        .status_body();
    assert_eq!(status.status, StatusName::Succeeded);
    stuck.abort();
}

#[tokio::test]
async fn statuses_of_unknown_or_malformed_ids() {
    let h = harness();
    let problem = call(&h.app, get(&format!("/update/{}", Uuid::new_v4())))
        .await
        .problem(StatusCode::NOT_FOUND);
    assert_eq!(problem["type"], "https://writ.dev/problems/not_found");
    call(&h.app, get(&format!("/update/{}?wait=1", Uuid::new_v4())))
        .await
        .problem(StatusCode::NOT_FOUND);
    call(&h.app, get("/update/not-a-uuid"))
        .await
        .problem(StatusCode::BAD_REQUEST);
    let id = Uuid::new_v4();
    run(&h.app, create(id, "c-1")).await;
    for bad in ["soon", "-1", "1.5", ""] {
        call(&h.app, get(&format!("/update/{id}?wait={bad}")))
            .await
            .problem(StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn statuses_carry_position_events_and_errors() {
    let h = harness();
    let open = run(&h.app, create(Uuid::new_v4(), "c-1")).await;
    assert_eq!(open.status, StatusName::Succeeded);
    assert_eq!(open.position, Some(1));
    assert_eq!(open.events.len(), 1);
    assert_eq!(
        (
            open.events[0].stream.as_str(),
            open.events[0].version,
            open.events[0].event_type.as_str(),
            open.events[0].position
        ),
        ("counter-c-1", 1, "CounterCreated", 1)
    );
    assert!(open.error.is_none());

    let id = Uuid::new_v4();
    let rejected = run(&h.app, add(id, "c-404", "hello")).await;
    assert_eq!(rejected.status, StatusName::Rejected);
    assert_eq!(rejected.error.as_ref().unwrap().code, "counter_not_found");
    assert!(rejected.events.is_empty());
    assert_eq!(
        rejected.position,
        Some(1),
        "the last position before it was decided"
    );
    // The plain GET gives the same.
    let again = call(&h.app, get(&format!("/update/{id}")))
        .await
        .status_body();
    assert_eq!(again, rejected);
    let raw = call(&h.app, get(&format!("/update/{id}"))).await.json();
    assert_eq!(
        raw["error"],
        json!({"code": "counter_not_found", "message": rejected.error.unwrap().message})
    );
    assert!(raw.get("duplicate").is_none());
}

#[tokio::test]
async fn long_polls_answer_with_the_final_status_and_waits_are_cut_to_the_bound() {
    let h = harness();
    let id = Uuid::new_v4();
    // Submitted straight to the engine, so the poll may start before the outcome.
    let Submitted::New(mut pending) = h
        .engine
        .submit(
            id,
            "CreateCounter",
            Some(2),
            serde_json::to_string(
                &json!({"counterId": "c-1", "title": "x", "owner": "ann", "start": 0}),
            )
            .unwrap()
            .as_bytes(),
        )
        .unwrap()
    else {
        panic!("a new id")
    };
    pending.accepted().await.unwrap();
    let status = call(
        &h.app,
        get(&format!("/update/{id}?wait=9999999999999999999999")),
    )
    .await
    .status_body();
    assert_eq!(status.status, StatusName::Succeeded);
}

#[tokio::test]
async fn long_polls_and_duplicates_leave_no_waiters_behind() {
    let h = harness_with(
        EngineOptions {
            waiters_max: 4,
            ..engine_options()
        },
        ServerOptions::default(),
    );
    let id = Uuid::new_v4();
    run(&h.app, create(id, "c-1")).await;
    for i in 0..32 {
        let status = call(&h.app, get(&format!("/update/{id}?wait=30")))
            .await
            .status_body();
        assert_eq!(status.status, StatusName::Succeeded);
        assert_eq!(
            call(&h.app, post(create(id, "c-1"))).await.status,
            StatusCode::OK
        );
        // Commands on their way, waited for through acceptance to their outcome.
        let status = run(&h.app, add(Uuid::new_v4(), "c-1", &format!("c{i}"))).await;
        assert_eq!(status.status, StatusName::Succeeded);
    }
}

/// The `data` of each `event: status` in a server-sent event body.
fn status_events(body: &[u8]) -> Vec<CommandStatusBody> {
    let text = std::str::from_utf8(body).unwrap();
    let mut statuses = Vec::new();
    for block in text
        .split("\n\n")
        .filter(|b| !b.trim().is_empty() && !b.starts_with(':'))
    {
        let mut lines = block.lines();
        assert_eq!(lines.next(), Some("event: status"), "{block}");
        let data = lines.next().unwrap().strip_prefix("data: ").unwrap();
        statuses.push(serde_json::from_str(data).unwrap());
    }
    statuses
}

#[tokio::test]
async fn the_status_stream_sends_each_change_and_ends_after_the_final_status() {
    let h = harness();
    // A command still on its way: accepted, then succeeded (or already succeeded).
    let id = Uuid::new_v4();
    let body = create(id, "c-1");
    let payload = serde_json::from_str::<Value>(&body).unwrap()["payload"].to_string();
    let Submitted::New(_pending) = h
        .engine
        .submit(id, "CreateCounter", None, payload.as_bytes())
        .unwrap()
    else {
        panic!("a new id")
    };
    let answer = call(&h.app, get_events_stream(&format!("/update/{id}"), None)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.content_type(), "text/event-stream");
    let statuses = status_events(&answer.body);
    assert!(!statuses.is_empty() && statuses.len() <= 2, "{statuses:?}");
    assert_eq!(statuses.last().unwrap().status, StatusName::Succeeded);
    if statuses.len() == 2 {
        assert_eq!(statuses[0].status, StatusName::Accepted);
    }

    // A final command: one event.
    let answer = call(&h.app, get_events_stream(&format!("/update/{id}"), None)).await;
    assert_eq!(status_events(&answer.body).len(), 1);
    // Unknown ids are 404 before any stream.
    call(
        &h.app,
        get_events_stream(&format!("/update/{}", Uuid::new_v4()), None),
    )
    .await
    .problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn streams_page_by_version_and_unknown_streams_are_empty() {
    let h = harness();
    let open_id = Uuid::new_v4();
    run(&h.app, create(open_id, "c-1")).await;
    for i in 0..4 {
        run(&h.app, add(Uuid::new_v4(), "c-1", &format!("addition {i}"))).await;
    }
    let answer = call(&h.app, get("/streams/counter-c-1")).await;
    assert_eq!(answer.status, StatusCode::OK);
    let page: StreamPage = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(page.stream, "counter-c-1");
    assert_eq!(page.events.len(), 5);
    let first = &answer.json()["events"][0];
    assert_eq!(first["type"], "CounterCreated");
    assert_eq!(first["data"]["title"], "Visitors");
    assert_eq!(first["metadata"]["commandId"], open_id.to_string());
    let recorded_at = first["metadata"]["recordedAt"].as_str().unwrap();
    assert!(
        recorded_at.len() == 24 && recorded_at.ends_with('Z') && recorded_at.as_bytes()[19] == b'.',
        "{recorded_at}"
    );

    let page: StreamPage = serde_json::from_slice(
        &call(&h.app, get("/streams/counter-c-1?from=3&limit=2"))
            .await
            .body,
    )
    .unwrap();
    assert_eq!(
        page.events.iter().map(|e| e.version).collect::<Vec<_>>(),
        [3, 4]
    );
    let page: StreamPage =
        serde_json::from_slice(&call(&h.app, get("/streams/counter-c-1?limit=0")).await.body)
            .unwrap();
    assert!(page.events.is_empty());

    let unknown = call(&h.app, get("/streams/counter-nobody")).await;
    assert_eq!(unknown.status, StatusCode::OK);
    assert_eq!(
        unknown.json(),
        json!({"stream": "counter-nobody", "events": []})
    );

    for bad in ["from=x", "limit=-1", "from=1.0"] {
        call(&h.app, get(&format!("/streams/counter-c-1?{bad}")))
            .await
            .problem(StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn events_page_through_the_global_log_with_next() {
    let h = harness();
    for c in 0..3 {
        run(&h.app, create(Uuid::new_v4(), &format!("c-{c}"))).await;
        run(&h.app, add(Uuid::new_v4(), &format!("c-{c}"), "hi")).await;
    }
    let mut positions = Vec::new();
    let mut from = 1;
    loop {
        let answer = call(&h.app, get(&format!("/events?from={from}&limit=4"))).await;
        assert_eq!(answer.status, StatusCode::OK);
        let page: EventsPage = serde_json::from_slice(&answer.body).unwrap();
        if page.events.is_empty() {
            assert_eq!(page.next, from, "an empty page points at the same place");
            break;
        }
        assert!(page.events.len() <= 4);
        positions.extend(page.events.iter().map(|e| e.position));
        from = page.next;
    }
    assert_eq!(positions, (1..=6).collect::<Vec<_>>());
    let page: EventsPage =
        serde_json::from_slice(&call(&h.app, get("/events")).await.body).unwrap();
    assert_eq!((page.events.len(), page.next), (6, 7));
    call(&h.app, get("/events?from=one"))
        .await
        .problem(StatusCode::BAD_REQUEST);
}

/// Reads server-sent events from a live body until `count` events arrived.
async fn read_sse(body: Body, count: usize) -> Vec<(u64, Value)> {
    let mut stream = body.into_data_stream();
    let mut text = String::new();
    let mut events = Vec::new();
    while events.len() < count {
        let chunk = tokio::time::timeout(BOUND, stream.next())
            .await
            .expect("the tail delivers")
            .expect("the tail stays open")
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            if block.starts_with(':') {
                continue; // keep-alive
            }
            let mut id = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = Some(v.parse().unwrap());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = Some(serde_json::from_str(v).unwrap());
                }
            }
            events.push((id.unwrap(), data.unwrap()));
        }
    }
    events
}

#[tokio::test]
async fn the_live_tail_delivers_in_order_and_resumes_after_last_event_id() {
    let h = harness();
    run(&h.app, create(Uuid::new_v4(), "c-1")).await;
    run(&h.app, add(Uuid::new_v4(), "c-1", "one")).await;

    let response = h
        .app
        .clone()
        .oneshot(get_events_stream("/events?from=1", None))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let body = response.into_body();
    // Two events now, a third while the tail is open.
    let later = {
        let app = h.app.clone();
        tokio::spawn(async move { run(&app, add(Uuid::new_v4(), "c-1", "two")).await })
    };
    let events = read_sse(body, 3).await;
    later.await.unwrap();
    assert_eq!(
        events.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    for (id, event) in &events {
        assert_eq!(event["position"], *id);
        assert_eq!(event["stream"], "counter-c-1");
    }
    assert_eq!(events[2].1["data"]["note"], "two");

    // A reconnect with Last-Event-ID resumes after it, whatever `from` says.
    let response = h
        .app
        .clone()
        .oneshot(get_events_stream("/events?from=1", Some(2)))
        .await
        .unwrap();
    let events = read_sse(response.into_body(), 1).await;
    assert_eq!(events[0].0, 3);

    let bad = Request::get("/events")
        .header(header::ACCEPT, "text/event-stream")
        .header("last-event-id", "three")
        .body(Body::empty())
        .unwrap();
    call(&h.app, bad).await.problem(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn streams_beyond_the_bound_are_503() {
    let h = harness_with(
        engine_options(),
        ServerOptions {
            streams_max: 1,
            ..ServerOptions::default()
        },
    );
    let open = h
        .app
        .clone()
        .oneshot(get_events_stream("/events", None))
        .await
        .unwrap();
    assert_eq!(open.status(), StatusCode::OK);
    call(&h.app, get_events_stream("/events", None))
        .await
        .problem(StatusCode::SERVICE_UNAVAILABLE);
    drop(open);
    let again = h
        .app
        .clone()
        .oneshot(get_events_stream("/events", None))
        .await
        .unwrap();
    assert_eq!(
        again.status(),
        StatusCode::OK,
        "the place is given back when a stream closes"
    );
}

#[tokio::test]
async fn health_reports_the_position() {
    let h = harness();
    run(&h.app, create(Uuid::new_v4(), "c-1")).await;
    let answer = call(&h.app, get("/health")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.json(),
        json!({"status": "ok", "domain": "counters", "position": 1})
    );
}

#[tokio::test]
async fn metrics_render_the_request_counters_in_prometheus_text() {
    let h = harness();
    run(&h.app, create(Uuid::new_v4(), "c-1")).await;
    let answer = call(&h.app, get("/metrics")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.content_type().starts_with("text/plain"));
    let text = String::from_utf8(answer.body.to_vec()).unwrap();
    assert!(
        text.contains(r#"writ_http_requests_total{method="POST",route="/update",status="202"}"#),
        "{text}"
    );
    assert!(
        text.contains("writ_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains(r#"route="/update/{id}""#),
        "routes are templates, not raw paths: {text}"
    );
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let h = harness();
    let answer = call(&h.app, get("/openapi.json")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.content_type(), "application/json");
    let doc = answer.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/update",
        "/update/{id}",
        "/ws",
        "/streams/{stream}",
        "/events",
        "/health",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(paths.contains_key(path), "{path} missing");
    }
    let post = &doc["paths"]["/update"]["post"];
    for status in ["202", "200", "400", "409", "413", "415", "422", "503"] {
        assert!(
            post["responses"][status].is_object(),
            "POST /update {status}"
        );
    }
    assert!(post["responses"]["503"]["headers"]["Retry-After"].is_object());
    assert!(post["responses"]["400"]["content"]["application/problem+json"].is_object());
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for schema in [
        "UpdateRequest",
        "Accepted",
        "CommandStatusBody",
        "Problem",
        "Event",
        "EventsPage",
        "StreamPage",
        "Health",
    ] {
        assert!(schemas.contains_key(schema), "schema {schema} missing");
    }
    let required = schemas["UpdateRequest"]["required"].as_array().unwrap();
    for field in ["id", "command", "payload"] {
        assert!(required.contains(&json!(field)), "{field} is required");
    }
    assert!(
        doc["info"]["description"]
            .as_str()
            .unwrap()
            .contains("`CreateCounter` version 2")
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let h = harness();
    call(&h.app, get("/nowhere"))
        .await
        .problem(StatusCode::NOT_FOUND);
    let answer = call(
        &h.app,
        Request::delete("/update").body(Body::empty()).unwrap(),
    )
    .await;
    answer.problem(StatusCode::METHOD_NOT_ALLOWED);
    // Without an upgrade, /ws is a bad request.
    call(&h.app, get("/ws"))
        .await
        .problem(StatusCode::BAD_REQUEST);
}

// ---------------------------------------------------------------------------------------
// Version 2 additions: `?wait` on `POST /update`, `expectedVersion`, causation metadata,
// payload schemas.

#[tokio::test]
async fn post_with_wait_answers_the_final_status_in_one_round_trip() {
    let h = harness();
    let id = Uuid::new_v4();
    let answer = call(&h.app, post_json("/update?wait=10", create(id, "c-1"))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.headers[header::LOCATION], format!("/update/{id}"));
    let status = answer.status_body();
    assert_eq!(status.status, StatusName::Succeeded);
    assert_eq!(status.position, Some(1));
    assert_eq!(status.events.len(), 1);
    // A rejection is a final status too.
    let again = Uuid::new_v4();
    let answer = call(&h.app, post_json("/update?wait=10", create(again, "c-1"))).await;
    assert_eq!(answer.status, StatusCode::OK);
    let body = answer.json();
    assert_eq!(body["status"], "rejected");
    assert_eq!(body["error"]["code"], "counter_exists");
    // A bad wait is malformed.
    let bad = call(
        &h.app,
        post_json("/update?wait=soon", create(Uuid::new_v4(), "c-2")),
    )
    .await;
    bad.problem(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn expected_version_is_checked_when_the_command_runs() {
    let h = harness();
    let with_expected = |id: Uuid, counter: &str, expected: Value| {
        json!({"id": id, "command": "Add", "expectedVersion": expected,
            "payload": {"counterId": counter, "amount": 1, "note": "hi"}})
        .to_string()
    };
    run(&h.app, create(Uuid::new_v4(), "c-1")).await;
    let ok = run(&h.app, with_expected(Uuid::new_v4(), "c-1", json!(1))).await;
    assert_eq!(ok.status, StatusName::Succeeded);
    let stale = Uuid::new_v4();
    let answer = call(&h.app, post(with_expected(stale, "c-1", json!(1)))).await;
    assert_eq!(
        answer.status,
        StatusCode::ACCEPTED,
        "checked when it runs, not at the door"
    );
    let status = call(&h.app, get(&format!("/update/{stale}?wait=10")))
        .await
        .json();
    assert_eq!(status["status"], "rejected");
    assert_eq!(
        status["error"],
        json!({"code": "wrong_expected_version", "message": status["error"]["message"], "expected": 1, "actual": 2})
    );
    // 0: the stream must not exist yet.
    let fresh = run(&h.app, {
        let mut body: Value = serde_json::from_str(&create(Uuid::new_v4(), "c-9")).unwrap();
        body["expectedVersion"] = json!(0);
        body.to_string()
    })
    .await;
    assert_eq!(fresh.status, StatusName::Succeeded);
    // The same id with another expectedVersion is another command: 409.
    let conflict = call(&h.app, post(with_expected(stale, "c-1", json!(2)))).await;
    conflict.problem(StatusCode::CONFLICT);
    // null is absent; anything but a non-negative integer is malformed.
    for bad in [json!(-1), json!("1"), json!(1.5)] {
        let answer = call(
            &h.app,
            post(with_expected(Uuid::new_v4(), "c-1", bad.clone())),
        )
        .await;
        let problem = answer.problem(StatusCode::BAD_REQUEST);
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("expectedVersion"),
            "{bad}: {problem}"
        );
    }
    let null = run(&h.app, with_expected(Uuid::new_v4(), "c-1", Value::Null)).await;
    assert_eq!(null.status, StatusName::Succeeded);
}

#[tokio::test]
async fn statuses_and_events_name_their_causation_and_correlation() {
    let h = harness();
    let id = Uuid::new_v4();
    let status = call(&h.app, post_json("/update?wait=10", create(id, "c-1")))
        .await
        .json();
    assert_eq!(status["origin"], "client");
    assert_eq!(status["correlationId"], id.to_string());
    assert!(
        status.get("causationId").is_none(),
        "a client's command has no cause"
    );
    let stream = call(&h.app, get("/streams/counter-c-1")).await.json();
    let metadata = &stream["events"][0]["metadata"];
    assert_eq!(metadata["commandId"], id.to_string());
    assert_eq!(metadata["causationId"], id.to_string());
    assert_eq!(metadata["correlationId"], id.to_string());
    let page = call(&h.app, get("/events?from=1")).await.json();
    assert_eq!(page["events"][0]["metadata"], *metadata);
}

#[tokio::test]
async fn openapi_carries_every_command_versions_payload_schema() {
    let h = harness();
    let document = call(&h.app, get("/openapi.json")).await.json();
    let schemas = &document["components"]["schemas"];
    let create_v2 = &schemas["CreateCounter.v2"];
    assert_eq!(create_v2["type"], "object");
    assert_eq!(create_v2["additionalProperties"], false);
    let start = &create_v2["properties"]["start"];
    assert_eq!(
        (&start["type"], &start["minimum"], &start["default"]),
        (&json!("integer"), &json!(0), &json!(0)),
        "{start}"
    );
    assert_eq!(
        create_v2["required"],
        json!(["counterId", "title", "owner"])
    );
    // Version 1 is a schema of its own: no `start`.
    assert!(
        schemas["CreateCounter.v1"]["properties"]
            .get("start")
            .is_none()
    );
    for name in [
        "CreateCounter.v1",
        "Add.v1",
        "Transfer.v1",
        "CloseCounter.v1",
        "ReopenCounter.v1",
    ] {
        assert_eq!(schemas[name]["type"], "object", "{name}");
    }
    let description = document["info"]["description"].as_str().unwrap();
    assert!(description.contains("`counters`"), "{description}");
}
