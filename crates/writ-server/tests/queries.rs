//! The read side through the router, without a socket: named queries in both API versions,
//! query code in the sandbox and its limits, `?after=` (read your writes, `504`), and a
//! structure change (a rebuild to a new projection version) while queries keep answering.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use uuid::Uuid;
use writ_engine::EngineOptions;
use writ_fixtures::{Counters, read::CountersProjection};
use writ_log::storage::SimStorage;
use writ_query::{
    ApplyError, BoxFuture, EventFeed, EventSource, FeedError, Projection, QueryCatalog,
    ReadModelSpec, ReadModels, RecordedEvent, RuntimeOptions,
};
use writ_sandbox::{Sandbox, SandboxOptions};
use writ_server::{AppState, ReadSide, ServerOptions, router};

mod support;
use support::{Answer, BOUND, call, get, small_engine_options};

fn app(projection_version: u32, options: ServerOptions) -> Router {
    let engine_options = small_engine_options();
    let spec = writ_fixtures::read::read_model_with(
        CountersProjection::with_version(projection_version).unwrap(),
    );
    // With the built-in domain, as writ-app serves: a structure change is logged.
    let engine = Arc::new(support::open_with_switches::<Counters>(
        Arc::new(SimStorage::new()),
        engine_options,
        std::slice::from_ref(&spec),
    ));
    app_on(engine, spec, options)
}

/// A server on `engine` whose one read model is `spec`.
fn app_on(engine: Arc<writ_engine::Engine>, spec: ReadModelSpec, options: ServerOptions) -> Router {
    let read_model = ReadModels::start(
        Arc::clone(&engine) as Arc<dyn EventSource>,
        [spec],
        RuntimeOptions::default(),
    )
    .unwrap();
    let sandbox = Sandbox::new(SandboxOptions {
        // Generous: QuickJS is slow in test builds and tests run side by side.
        time_limit: Duration::from_secs(2),
        memory_bytes_max: 16 << 20,
        pool_size: 2,
        ..SandboxOptions::default()
    })
    .unwrap();
    router(AppState::new(engine, options).with_read_side(ReadSide {
        models: Arc::new(read_model),
        sandbox: Arc::new(sandbox),
        domain_of_model: [("counters".to_owned(), "counters".to_owned())].into(),
    }))
}

impl Answer {
    /// The JSON of a `200`.
    fn ok(&self) -> Value {
        assert_eq!(
            self.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        self.json()
    }

    /// Checks that this is a problem of `status` with the type code `code`.
    fn problem(&self, status: StatusCode, code: &str) -> Value {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(
            self.headers[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let problem = self.json();
        assert_eq!(
            problem["type"],
            format!("https://writ.dev/problems/{code}"),
            "{problem}"
        );
        assert_eq!(problem["status"], status.as_u16());
        assert_eq!(
            self.headers.contains_key(header::RETRY_AFTER),
            status == StatusCode::SERVICE_UNAVAILABLE
        );
        problem
    }

    fn position(&self) -> u64 {
        self.headers["writ-position"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    }
}

fn post_json(uri: &str, body: &Value) -> Request<Body> {
    support::post_json(uri, body.to_string())
}

fn code(version: u32, code: &str, args: Value) -> Request<Body> {
    post_json(
        &format!("/query/v{version}"),
        &json!({"code": code, "args": args}),
    )
}

/// Runs a command through HTTP and returns the position of its final status.
async fn run(app: &Router, command: &str, payload: Value) -> u64 {
    let id = Uuid::new_v4();
    let body = json!({"id": id, "command": command, "payload": payload});
    let accepted = call(app, post_json("/update", &body)).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED);
    let status = call(app, get(&format!("/update/{id}?wait=30"))).await.ok();
    assert_eq!(status["status"], "succeeded", "{status}");
    status["position"].as_u64().unwrap()
}

/// Two counters of two owners, one added to and closed, applied by the read model;
/// returns the last position.
async fn populate(app: &Router) -> u64 {
    let create = |id: &str, title: &str, owner: &str| json!({"counterId": id, "title": title, "owner": owner});
    run(app, "CreateCounter", create("c-1", "Visitors", "ann")).await;
    run(app, "CreateCounter", create("c-2", "Coffees", "bob")).await;
    run(
        app,
        "Add",
        json!({"counterId": "c-1", "amount": 5, "note": "Doors open"}),
    )
    .await;
    let last = run(
        app,
        "CloseCounter",
        json!({"counterId": "c-1", "reason": "done"}),
    )
    .await;
    // Read your writes: later queries without `after` see at least this.
    call(app, get(&format!("/query/v1/counterStats?after={last}")))
        .await
        .ok();
    last
}

#[tokio::test]
async fn named_queries_answer_in_both_versions_after_the_position_asked_for() {
    let app = app(2, ServerOptions::default());
    let last = populate(&app).await;

    let v1 = call(
        &app,
        get(&format!("/query/v1/getCounter?id=c-1&after={last}")),
    )
    .await;
    assert!(v1.position() >= last);
    let v1 = v1.ok();
    assert_eq!(v1["title"], "Visitors");
    assert_eq!(v1["status"], "closed");
    assert_eq!((&v1["value"], &v1["additions"]), (&json!(5), &json!(1)));
    assert!(v1.get("history").is_none(), "v1 has no history: {v1}");

    let v2 = call(&app, get("/query/v2/getCounter?id=c-1")).await.ok();
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

    let v1 = call(&app, get("/query/v1/listCounters?status=open"))
        .await
        .ok();
    assert_eq!(v1.as_array().unwrap().len(), 1);
    assert_eq!(v1[0]["id"], "c-2");
    let v2 = call(&app, get("/query/v2/listCounters?owner=ann&limit=5"))
        .await
        .ok();
    assert_eq!(v2["total"], 1);
    assert_eq!(v2["items"][0]["id"], "c-1");
    assert_eq!(v2["cursor"], Value::Null);

    let stats = call(&app, get("/query/v1/counterStats")).await.ok();
    assert_eq!(stats, json!({"open": 1, "closed": 1, "total": 2}));
    let stats = call(&app, get("/query/v2/counterStats")).await.ok();
    assert_eq!(stats["owners"], 2);
}

#[tokio::test]
async fn named_query_errors_are_problems_with_their_statuses() {
    let app = app(2, ServerOptions::default());
    populate(&app).await;
    let cases = [
        (
            "/query/v1/getCounter?id=c-9",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "/query/v3/getCounter?id=c-1",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "/query/x1/getCounter?id=c-1",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "/query/v01/getCounter?id=c-1",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        ("/query/v1/noSuchQuery", StatusCode::NOT_FOUND, "not_found"),
        (
            "/query/v1/listCounters?limit=many",
            StatusCode::BAD_REQUEST,
            "bad_argument",
        ),
        (
            "/query/v1/listCounters?status=whenever",
            StatusCode::BAD_REQUEST,
            "bad_argument",
        ),
        (
            "/query/v1/listCounters?status=open&status=closed",
            StatusCode::BAD_REQUEST,
            "bad_argument",
        ),
        (
            "/query/v1/getCounter?id=c-1&colour=red",
            StatusCode::BAD_REQUEST,
            "bad_argument",
        ),
        (
            "/query/v1/getCounter?id=c-1&after=soon",
            StatusCode::BAD_REQUEST,
            "malformed",
        ),
        (
            "/query/v1/getCounter?id=c-1&after=1&after=2",
            StatusCode::BAD_REQUEST,
            "bad_argument",
        ),
    ];
    for (uri, status, code) in cases {
        let problem = call(&app, get(uri)).await.problem(status, code);
        assert!(!problem["detail"].as_str().unwrap().is_empty(), "{uri}");
    }
}

#[tokio::test]
async fn a_position_beyond_the_log_is_waited_for_then_504() {
    let app = app(
        2,
        ServerOptions {
            after_wait_max: std::time::Duration::from_millis(200),
            ..ServerOptions::default()
        },
    );
    let last = populate(&app).await;
    let far = last + 1_000;
    let problem = call(&app, get(&format!("/query/v1/counterStats?after={far}")))
        .await
        .problem(StatusCode::GATEWAY_TIMEOUT, "timeout");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains(&far.to_string()),
        "{problem}"
    );
    let request = post_json(
        &format!("/query/v1?after={far}"),
        &json!({"code": "counterStats()"}),
    );
    call(&app, request)
        .await
        .problem(StatusCode::GATEWAY_TIMEOUT, "timeout");
    // A position already applied answers at once.
    let request = post_json(
        &format!("/query/v1?after={last}"),
        &json!({"code": "counterStats().total"}),
    );
    assert_eq!(
        call(&app, request).await.ok(),
        json!({"result": 2, "position": last})
    );
}

/// A source whose feed never delivers an event, though its log goes on: a stalled read
/// model, as far as `?after=` can tell.
struct Stalled(Arc<writ_engine::Engine>);

struct NeverFeed;

impl EventFeed for NeverFeed {
    fn next_batch_into<'a>(
        &'a mut self,
        _: usize,
        _: &'a mut Vec<RecordedEvent>,
    ) -> BoxFuture<'a, Result<(), FeedError>> {
        Box::pin(std::future::pending())
    }
}

impl EventSource for Stalled {
    fn subscribe(&self, _: u64) -> Box<dyn EventFeed> {
        Box::new(NeverFeed)
    }
    fn last_position(&self) -> u64 {
        self.0.last_position()
    }
}

#[tokio::test]
async fn a_position_the_read_model_does_not_reach_in_time_is_504() {
    let (engine, _) =
        support::open_domain::<Counters>(Arc::new(SimStorage::new()), EngineOptions::default())
            .unwrap();
    let engine = Arc::new(engine);
    let read_model = ReadModels::start(
        Arc::new(Stalled(Arc::clone(&engine))),
        [writ_fixtures::read::read_model()],
        RuntimeOptions::default(),
    )
    .unwrap();
    let sandbox = Sandbox::new(SandboxOptions::default()).unwrap();
    let options = ServerOptions {
        after_wait_max: Duration::from_millis(50),
        ..ServerOptions::default()
    };
    let app = router(AppState::new(engine, options).with_read_side(ReadSide {
        models: Arc::new(read_model),
        sandbox: Arc::new(sandbox),
        domain_of_model: Default::default(),
    }));
    let create = json!({"counterId": "c-1", "title": "Visitors", "owner": "ann"});
    let position = run(&app, "CreateCounter", create).await;
    let problem = call(
        &app,
        get(&format!("/query/v1/counterStats?after={position}")),
    )
    .await
    .problem(StatusCode::GATEWAY_TIMEOUT, "timeout");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("did not reach position"),
        "{problem}"
    );
    let request = post_json(
        &format!("/query/v2?after={position}"),
        &json!({"code": "1"}),
    );
    call(&app, request)
        .await
        .problem(StatusCode::GATEWAY_TIMEOUT, "timeout");
    // Without `after` the stalled read model still answers from what it has.
    let stats = call(&app, get("/query/v1/counterStats")).await.ok();
    assert!(stats["total"].as_u64().unwrap() <= 1, "{stats}");
}

#[tokio::test]
async fn query_code_runs_against_one_snapshot_with_the_library_in_scope() {
    let app = app(2, ServerOptions::default());
    let last = populate(&app).await;
    let request = post_json(
        &format!("/query/v2?after={last}"),
        &json!({
            "code": "const open = listCounters({status: 'open'}); \
                     return {titles: open.items.map(c => c.title), stats: counterStats(), \
                             first: getCounter(args.id).history.length}",
            "args": {"id": "c-1"},
        }),
    );
    let answer = call(&app, request).await.ok();
    assert_eq!(answer["position"], last);
    assert_eq!(answer["result"]["titles"], json!(["Coffees"]));
    assert_eq!(answer["result"]["stats"]["total"], 2);
    assert_eq!(answer["result"]["first"], 2);
    // v1's functions have v1's shapes.
    let answer = call(&app, code(1, "listCounters({}).length", json!({})))
        .await
        .ok();
    assert_eq!(answer["result"], 2);
    // A library error the code catches is the code's business.
    let answer = call(
        &app,
        code(
            1,
            "try { getCounter('c-9') } catch (e) { return [e.name, e.status] }",
            json!({}),
        ),
    )
    .await
    .ok();
    assert_eq!(answer["result"], json!(["LibraryError", 404]));
}

#[tokio::test]
async fn query_code_errors_and_limits_are_problems_naming_them() {
    let app = app(2, ServerOptions::default());
    populate(&app).await;
    let cases = [
        (
            "while (true) {}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "time_limit",
        ),
        (
            "const a = []; while (true) a.push(new Array(1e5).fill(1))",
            StatusCode::UNPROCESSABLE_ENTITY,
            "memory_limit",
        ),
        (
            "function f(n) { return f(n + 1) + 1 } return f(0)",
            StatusCode::UNPROCESSABLE_ENTITY,
            "stack_limit",
        ),
        (
            "'x'.repeat(2 * 1024 * 1024)",
            StatusCode::UNPROCESSABLE_ENTITY,
            "result_too_large",
        ),
        (
            "this is not JavaScript",
            StatusCode::UNPROCESSABLE_ENTITY,
            "script_error",
        ),
        ("getCounter('c-9')", StatusCode::NOT_FOUND, "not_found"),
        (
            "listCounters({limit: 'many'})",
            StatusCode::BAD_REQUEST,
            "bad_argument",
        ),
        (
            "import('fs')",
            StatusCode::UNPROCESSABLE_ENTITY,
            "script_error",
        ),
    ];
    for (source, status, problem_code) in cases {
        let problem = call(&app, code(2, source, json!({})))
            .await
            .problem(status, problem_code);
        assert!(!problem["detail"].as_str().unwrap().is_empty(), "{source}");
    }
    let too_long = "1;".repeat(64 << 10);
    call(&app, code(2, &too_long, json!({})))
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY, "code_too_large");
    // And the server keeps answering.
    let answer = call(&app, code(2, "counterStats().open", json!({})))
        .await
        .ok();
    assert_eq!(answer["result"], 1);
}

#[tokio::test]
async fn a_query_at_its_limit_does_not_disturb_others_running_at_once() {
    let app = app(2, ServerOptions::default());
    populate(&app).await;
    let spinning = tokio::spawn({
        let app = app.clone();
        async move { call(&app, code(2, "while (true) {}", json!({}))).await }
    });
    for _ in 0..20 {
        let answer = call(&app, code(2, "counterStats().total", json!({})))
            .await
            .ok();
        assert_eq!(answer["result"], 2);
        let named = call(&app, get("/query/v1/counterStats")).await.ok();
        assert_eq!(named["total"], 2);
    }
    spinning
        .await
        .unwrap()
        .problem(StatusCode::UNPROCESSABLE_ENTITY, "time_limit");
}

#[tokio::test]
async fn malformed_query_code_requests_are_refused() {
    let app = app(2, ServerOptions::default());
    let cases: [(Request<Body>, StatusCode, &str); 6] = [
        (
            post_json("/query/v1", &json!(["1", null])),
            StatusCode::BAD_REQUEST,
            "malformed",
        ),
        (
            Request::post("/query/v1")
                .body(Body::from(r#"{"code": "1"}"#))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            post_json("/query/v1", &json!({"code": 1})),
            StatusCode::BAD_REQUEST,
            "malformed",
        ),
        (
            post_json("/query/v1", &json!({"code": "1", "args": [1]})),
            StatusCode::BAD_REQUEST,
            "malformed",
        ),
        (
            post_json("/query/v1", &json!({"code": "1", "extra": true})),
            StatusCode::BAD_REQUEST,
            "malformed",
        ),
        (
            post_json("/query/v9", &json!({"code": "1"})),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (request, status, problem_code) in cases {
        call(&app, request).await.problem(status, problem_code);
    }
}

/// Waits until `GET /projections` shows the rebuild ended, and returns the projection.
async fn rebuilt(app: &Router) -> Value {
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let projection = call(app, get("/projections")).await.ok()["projections"][0].clone();
        if projection["rebuild"]["state"] != "running" {
            return projection;
        }
        assert!(tokio::time::Instant::now() < deadline, "the rebuild ends");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_structure_change_switches_readers_while_the_old_version_keeps_answering() {
    // The read model starts at projection version 1: no status history.
    let app = app(1, ServerOptions::default());
    let last = populate(&app).await;
    let before = call(
        &app,
        get(&format!("/query/v1/getCounter?id=c-1&after={last}")),
    )
    .await
    .ok();
    call(&app, get("/query/v2/getCounter?id=c-1"))
        .await
        .problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    call(&app, code(2, "counterStats()", json!({})))
        .await
        .problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    let projection = call(&app, get("/projections")).await.ok()["projections"][0].clone();
    assert_eq!(projection["version"], 1);
    assert_eq!(projection["versions"], json!([1, 2]));

    // Refusals first: an unknown projection, an unknown version, a body that is no object.
    call(&app, post_json("/projections/counters/rebuild", &json!([])))
        .await
        .problem(StatusCode::BAD_REQUEST, "malformed");
    call(
        &app,
        post_json("/projections/nothing/rebuild", &json!({"version": 2})),
    )
    .await
    .problem(StatusCode::NOT_FOUND, "not_found");
    call(
        &app,
        post_json("/projections/counters/rebuild", &json!({"version": 7})),
    )
    .await
    .problem(StatusCode::BAD_REQUEST, "bad_argument");

    let started = call(
        &app,
        post_json("/projections/counters/rebuild", &json!({"version": 2})),
    )
    .await;
    assert_eq!(started.status, StatusCode::ACCEPTED);
    assert_eq!(started.headers[header::LOCATION], "/projections");
    // The answer comes once the read side applied the switch: its rebuild is under way.
    let answer = started.json();
    assert_eq!(answer["rebuild"]["version"], 2, "{answer}");
    assert!(
        ["running", "switched"].contains(&answer["rebuild"]["state"].as_str().unwrap()),
        "{answer}"
    );
    // The switch is a command in the log, its event on the read model's stream.
    let switch = call(&app, get("/streams/$readmodel-counters")).await.ok();
    let events = switch["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{switch}");
    assert_eq!(events[0]["type"], "ReadModelSwitched");
    assert_eq!(events[0]["data"], json!({"name": "counters", "version": 2}));
    // Version 7, above, was rejected by the writer (`unknown_version`): no event.
    // Writes go on during the rebuild, and v1 keeps answering throughout.
    let during = run(
        &app,
        "Add",
        json!({"counterId": "c-2", "amount": 3, "note": "Morning"}),
    )
    .await;
    let v1 = call(
        &app,
        get(&format!("/query/v1/getCounter?id=c-2&after={during}")),
    )
    .await
    .ok();
    assert_eq!(v1["additions"], 1);

    let projection = rebuilt(&app).await;
    assert_eq!(projection["rebuild"]["state"], "switched", "{projection}");
    assert_eq!(projection["version"], 2);
    let v2 = call(
        &app,
        get(&format!("/query/v2/getCounter?id=c-1&after={during}")),
    )
    .await
    .ok();
    assert_eq!(v2["history"].as_array().unwrap().len(), 2);
    let after = call(&app, get("/query/v1/getCounter?id=c-1")).await.ok();
    assert_eq!(after, before, "v1 answers the same through the transformer");
    let answer = call(&app, code(2, "getCounter('c-2').additions", json!({})))
        .await
        .ok();
    assert_eq!(answer["result"], 1);

    // A rebuild of the live version with no body.
    let again = call(
        &app,
        Request::post("/projections/counters/rebuild")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(rebuilt(&app).await["rebuild"]["state"], "switched");
}

#[tokio::test]
async fn a_rebuild_of_the_live_version_is_logged_when_the_log_names_another() {
    let spec = writ_fixtures::read::read_model_with(CountersProjection::with_version(1).unwrap());
    let engine = Arc::new(support::open_with_switches::<Counters>(
        Arc::new(SimStorage::new()),
        small_engine_options(),
        std::slice::from_ref(&spec),
    ));
    // The log names version 2 while the read model runs version 1 (as after a switch
    // whose build failed).
    let payload = serde_json::to_vec(&json!({"name": "counters", "version": 2})).unwrap();
    let writ_engine::Submitted::New(pending) = engine
        .submit(Uuid::new_v4(), "SwitchReadModel", None, &payload)
        .unwrap()
    else {
        unreachable!("a fresh id")
    };
    let position = pending.outcome().await.unwrap().position.unwrap();
    let app = app_on(
        Arc::clone(&engine),
        spec.switched_at(position),
        ServerOptions::default(),
    );
    let answer = call(
        &app,
        post_json("/projections/counters/rebuild", &json!({"version": 1})),
    )
    .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text());
    // Logged, so that a restart starts at version 1, and rebuilt as asked.
    let last = writ_query::switch::last_switch(&engine, "counters").unwrap();
    assert_eq!(last.map(|s| s.version), Some(1));
    assert_eq!(engine.stream_version("$readmodel-counters"), 2);
    let projection = rebuilt(&app).await;
    assert_eq!(projection["rebuild"]["state"], "switched", "{projection}");
    assert_eq!(projection["version"], 1);
    // The live version again, as the log names it: a rebuild, not logged.
    let answer = call(
        &app,
        post_json("/projections/counters/rebuild", &json!({"version": 1})),
    )
    .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text());
    assert_eq!(engine.stream_version("$readmodel-counters"), 2);
    assert_eq!(rebuilt(&app).await["rebuild"]["state"], "switched");
}

#[tokio::test]
async fn a_server_without_a_read_model_has_no_queries() {
    let (engine, _) =
        support::open_domain::<Counters>(Arc::new(SimStorage::new()), EngineOptions::default())
            .unwrap();
    let app = router(AppState::new(Arc::new(engine), ServerOptions::default()));
    call(&app, get("/query/v1/counterStats"))
        .await
        .problem(StatusCode::NOT_FOUND, "not_found");
    call(&app, get("/projections"))
        .await
        .problem(StatusCode::NOT_FOUND, "not_found");
}

/// Counts additions; panics on one whose note says `panic`.
#[derive(Debug, Clone)]
struct Brittle;

impl Projection for Brittle {
    type State = u64;
    type Decoded = ();

    fn name(&self) -> &'static str {
        "brittle"
    }

    fn version(&self) -> u32 {
        1
    }

    fn event_types(&self) -> &[&'static str] {
        &["Added"]
    }

    fn initial_state(&self) -> u64 {
        0
    }

    fn decode(&self, _: &RecordedEvent) -> Result<(), ApplyError> {
        Ok(())
    }

    fn apply(&self, count: &mut u64, event: &RecordedEvent, _: ()) -> Result<(), ApplyError> {
        let body = String::from_utf8_lossy(&event.data);
        assert!(!body.contains("panic"), "cannot handle {body}");
        *count += 1;
        Ok(())
    }
}

/// A server whose one read model is [`Brittle`], with the queries `additions` and `marks`
/// (a list that never ends: `args.array` stops it at the budget of query code).
fn brittle_app() -> Router {
    // The recorder first, so that the read models count into it.
    writ_server::prometheus();
    let (engine, _) =
        support::open_domain::<Counters>(Arc::new(SimStorage::new()), small_engine_options())
            .unwrap();
    let engine = Arc::new(engine);
    let mut catalog = QueryCatalog::new();
    catalog
        .version(1)
        .query("additions", &[], |count: &u64, _| Ok(json!(count)))
        .query("marks", &[], |_: &u64, args| {
            args.array((0..).map(|n: u64| json!({"mark": n})))
        });
    let models = ReadModels::start(
        Arc::clone(&engine) as Arc<dyn EventSource>,
        [ReadModelSpec::new(Brittle, catalog)],
        RuntimeOptions::default(),
    )
    .unwrap();
    let sandbox = Sandbox::new(SandboxOptions {
        memory_bytes_max: 4 << 20,
        time_limit: Duration::from_secs(10),
        ..SandboxOptions::default()
    })
    .unwrap();
    router(
        AppState::new(engine, ServerOptions::default()).with_read_side(ReadSide {
            models: Arc::new(models),
            sandbox: Arc::new(sandbox),
            domain_of_model: [("brittle".to_owned(), "counters".to_owned())].into(),
        }),
    )
}

#[tokio::test]
async fn a_library_answer_over_the_memory_limit_is_422_naming_it() {
    let app = brittle_app();
    let problem = call(&app, code(1, "marks().length", json!({})))
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY, "memory_limit");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("marks") && detail.contains("memory limit of 4194304 bytes"),
        "{detail}"
    );
    // The sandbox answers the next query.
    let answer = call(&app, code(1, "additions() + 1", json!({}))).await.ok();
    assert_eq!(answer["result"], 1);
}

#[tokio::test]
async fn an_event_a_projection_panics_on_is_parked_and_shown() {
    let app = brittle_app();
    let create = json!({"counterId": "c-1", "title": "Visitors", "owner": "ann"});
    run(&app, "CreateCounter", create).await;
    let add = |note: &str| json!({"counterId": "c-1", "amount": 1, "note": note});
    let bad = run(&app, "Add", add("panic")).await;
    let after = run(&app, "Add", add("fine")).await;
    // The read model went on: the event after the panic is applied.
    let answer = call(&app, get(&format!("/query/v1/additions?after={after}"))).await;
    assert_eq!(answer.ok(), json!(1));

    let projection = call(&app, get("/projections")).await.ok()["projections"][0].clone();
    assert_eq!(projection["name"], "brittle");
    assert_eq!(projection["stopped"], false);
    assert_eq!(projection["position"], after);
    assert_eq!(projection["parked"], 1);
    let parked = &projection["lastParked"];
    assert_eq!(parked["position"], bad, "{projection}");
    assert_eq!(parked["stream"], "counter-c-1");
    assert_eq!(parked["eventType"], "Added");
    assert_eq!(parked["stage"], "apply");
    assert!(
        parked["message"]
            .as_str()
            .unwrap()
            .contains("cannot handle"),
        "{parked}"
    );
    assert!(projection.get("failure").is_none(), "{projection}");

    let text = writ_server::prometheus().render();
    assert!(
        text.contains(r#"writ_projection_events_parked_total{model="brittle"} 1"#),
        "{text}"
    );
    // The OpenAPI document describes the new fields.
    let doc = call(&app, get("/openapi.json")).await.ok();
    let schemas = &doc["components"]["schemas"];
    assert!(
        schemas["ProjectionState"]["properties"]["parked"].is_object(),
        "{schemas}"
    );
    assert!(schemas["ParkedState"]["properties"]["stage"].is_object());
}
