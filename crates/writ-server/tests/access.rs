//! Access control (`--tokens`) through the router, without a socket: every route against
//! no token, an unknown token and a token of each scope; a token's `commands` list over
//! `POST /update` and `/ws` (a refused command is never logged); the OpenAPI document's
//! security declarations; the refusal metrics.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use uuid::Uuid;
use writ_engine::Engine;
use writ_fixtures::Counters;
use writ_log::storage::SimStorage;
use writ_query::{EventSource, ReadModels, RuntimeOptions};
use writ_sandbox::{Sandbox, SandboxOptions};
use writ_server::access::{ROUTES, Scope, Tokens};
use writ_server::{AppState, ReadSide, ServerOptions, router};

mod support;
use support::{Answer, BOUND, call, small_engine_options};

/// The tokens of these tests, by name: the token is the name with `-secret`.
const WRITER: &str = "writer-secret";
const CREATOR: &str = "creator-secret";
const READER: &str = "reader-secret";
const ADMIN: &str = "admin-secret";
const NOBODY: &str = "nobody-secret";
const OPERATOR: &str = "operator-secret";

fn sha256_hex(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn tokens() -> Tokens {
    let file = json!([
        {"token_sha256": sha256_hex(WRITER), "name": "writer", "scopes": ["commands"]},
        {"token_sha256": sha256_hex(CREATOR), "name": "creator", "scopes": ["commands"],
            "commands": ["CreateCounter"]},
        {"token_sha256": sha256_hex(READER), "name": "reader", "scopes": ["queries"]},
        {"token_sha256": sha256_hex(ADMIN), "name": "admin", "scopes": ["admin"]},
        {"token_sha256": sha256_hex(NOBODY), "name": "nobody", "scopes": []},
        {"token_sha256": sha256_hex(OPERATOR), "name": "operator", "scopes": ["commands", "admin"]},
    ]);
    Tokens::parse(file.to_string().as_bytes(), "tokens.json").unwrap()
}

struct Harness {
    app: Router,
    engine: Arc<Engine>,
    state: AppState,
}

/// A server of the counters with a read side, behind `tokens` (open with `None`).
fn harness(tokens: Option<Tokens>) -> Harness {
    let engine = Arc::new(support::open_with_switches::<Counters>(
        Arc::new(SimStorage::new()),
        small_engine_options(),
        &[writ_fixtures::read::read_model()],
    ));
    let models = ReadModels::start(
        Arc::clone(&engine) as Arc<dyn EventSource>,
        [writ_fixtures::read::read_model()],
        RuntimeOptions::default(),
    )
    .unwrap();
    let sandbox = Sandbox::new(SandboxOptions {
        time_limit: Duration::from_secs(2),
        pool_size: 1,
        ..SandboxOptions::default()
    })
    .unwrap();
    let mut state =
        AppState::new(Arc::clone(&engine), ServerOptions::default()).with_read_side(ReadSide {
            models: Arc::new(models),
            sandbox: Arc::new(sandbox),
            domain_of_model: [("counters".to_owned(), "counters".to_owned())].into(),
        });
    if let Some(tokens) = tokens {
        state = state.with_tokens(tokens);
    }
    Harness {
        app: router(state.clone()),
        engine,
        state,
    }
}

fn request(method: &Method, uri: &str, body: Option<&Value>, token: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(method.clone()).uri(uri);
    if let Some(token) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    match body {
        Some(body) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    }
}

fn create(id: Uuid, counter: &str) -> Value {
    json!({"id": id, "command": "CreateCounter",
        "payload": {"counterId": counter, "title": "Visitors", "owner": "ann"}})
}

fn add(id: Uuid, counter: &str) -> Value {
    json!({"id": id, "command": "Add", "payload": {"counterId": counter, "amount": 1}})
}

impl Answer {
    /// Checks that this is the access problem of `status` (`401` or `403`).
    fn refused(&self, status: StatusCode, what: &str) {
        assert_eq!(self.status, status, "{what}: {}", self.text());
        assert_eq!(self.content_type(), "application/problem+json", "{what}");
        let code = if status == StatusCode::UNAUTHORIZED {
            assert_eq!(
                self.headers[header::WWW_AUTHENTICATE],
                "Bearer realm=\"writ\"",
                "{what}"
            );
            "unauthorized"
        } else {
            "forbidden"
        };
        assert_eq!(
            self.json()["type"],
            format!("https://writ.dev/problems/{code}"),
            "{what}"
        );
    }
}

/// One route of the matrix: how to call it, and which scopes admit it (empty: any valid
/// token; `None`: open to all).
struct Case {
    method: Method,
    uri: String,
    body: Option<Value>,
    admits: Option<&'static [Scope]>,
}

fn case(method: Method, uri: &str, body: Option<Value>, admits: Option<&'static [Scope]>) -> Case {
    Case {
        method,
        uri: uri.to_owned(),
        body,
        admits,
    }
}

fn cases(known: Uuid) -> Vec<Case> {
    use Scope::{Admin, Commands, Queries};
    vec![
        case(Method::GET, "/health", None, None),
        case(Method::GET, "/openapi.json", None, Some(&[])),
        case(Method::GET, "/domains", None, Some(&[])),
        case(
            Method::POST,
            "/update",
            Some(create(Uuid::new_v4(), "c-matrix")),
            Some(&[Commands]),
        ),
        case(
            Method::GET,
            &format!("/update/{known}"),
            None,
            Some(&[Commands, Queries]),
        ),
        case(Method::GET, "/ws", None, Some(&[Commands])),
        case(Method::GET, "/streams/counter-c-1", None, Some(&[Queries])),
        case(Method::GET, "/events?from=1", None, Some(&[Queries])),
        case(
            Method::GET,
            "/query/v1/getCounter?id=c-1",
            None,
            Some(&[Queries]),
        ),
        case(
            Method::POST,
            "/query/v1",
            Some(json!({"code": "getCounter('c-1')"})),
            Some(&[Queries]),
        ),
        case(Method::GET, "/projections", None, Some(&[Queries])),
        case(
            Method::POST,
            "/projections/counters/rebuild",
            None,
            Some(&[Admin]),
        ),
        case(Method::GET, "/metrics", None, Some(&[Admin])),
        // No such route (404), and a route without this method (405): any valid token.
        case(Method::GET, "/no/such/route", None, Some(&[])),
        case(Method::DELETE, "/update", None, Some(&[])),
    ]
}

#[tokio::test]
async fn every_route_answers_each_token_as_documented() {
    let h = harness(Some(tokens()));
    // A command to read the status of, and a counter to read.
    let known = Uuid::new_v4();
    let answer = call(
        &h.app,
        request(
            &Method::POST,
            "/update?wait=10",
            Some(&create(known, "c-1")),
            Some(WRITER),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());

    let holders: [(&str, &[Scope]); 4] = [
        (WRITER, &[Scope::Commands]),
        (READER, &[Scope::Queries]),
        (ADMIN, &[Scope::Admin]),
        (NOBODY, &[]),
    ];
    for case in cases(known) {
        let what = format!("{} {}", case.method, case.uri);
        let send = |token: Option<&str>| {
            call(
                &h.app,
                request(&case.method, &case.uri, case.body.as_ref(), token),
            )
        };
        let Some(admits) = case.admits else {
            for token in [None, Some("wrong"), Some(READER)] {
                assert_eq!(send(token).await.status, StatusCode::OK, "{what} {token:?}");
            }
            continue;
        };
        send(None).await.refused(StatusCode::UNAUTHORIZED, &what);
        send(Some("wrong"))
            .await
            .refused(StatusCode::UNAUTHORIZED, &what);
        let digest = sha256_hex(WRITER);
        send(Some(&digest))
            .await
            .refused(StatusCode::UNAUTHORIZED, &what);
        for (token, scopes) in holders {
            let answer = send(Some(token)).await;
            let admitted = admits.is_empty() || admits.iter().any(|s| scopes.contains(s));
            if admitted {
                assert!(
                    answer.status != StatusCode::UNAUTHORIZED
                        && answer.status != StatusCode::FORBIDDEN,
                    "{what} with {token}: {} {}",
                    answer.status,
                    answer.text()
                );
            } else {
                answer.refused(StatusCode::FORBIDDEN, &format!("{what} with {token}"));
            }
        }
    }
}

#[tokio::test]
async fn the_routes_answer_what_they_answer_without_tokens_to_a_token_that_may() {
    // The check adds refusals, and changes nothing else: the same answers open and with a
    // token that may.
    let open = harness(None);
    let secured = harness(Some(tokens()));
    for (method, uri, token) in [
        (Method::GET, "/no/such/route", NOBODY),
        (Method::DELETE, "/update", NOBODY),
        (Method::GET, "/streams/counter-c-1", READER),
        (Method::GET, "/query/v1/getCounter?id=c-9", READER),
        (
            Method::GET,
            "/update/6f1c1f0e-2a8e-4d38-9a53-0c3c8a1e5b11",
            WRITER,
        ),
    ] {
        let plain = call(&open.app, request(&method, uri, None, None)).await;
        let with_token = call(&secured.app, request(&method, uri, None, Some(token))).await;
        assert_eq!(plain.status, with_token.status, "{method} {uri}");
        assert_eq!(
            plain.json()["type"],
            with_token.json()["type"],
            "{method} {uri}"
        );
    }
}

#[tokio::test]
async fn a_command_outside_the_tokens_list_is_refused_and_never_logged() {
    let h = harness(Some(tokens()));
    let created = Uuid::new_v4();
    let answer = call(
        &h.app,
        request(
            &Method::POST,
            "/update?wait=10",
            Some(&create(created, "c-1")),
            Some(CREATOR),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["status"], "succeeded");

    let refused = Uuid::new_v4();
    let before = h.engine.last_position();
    let answer = call(
        &h.app,
        request(
            &Method::POST,
            "/update",
            Some(&add(refused, "c-1")),
            Some(CREATOR),
        ),
    )
    .await;
    answer.refused(StatusCode::FORBIDDEN, "Add with creator");
    assert!(
        answer.json()["detail"]
            .as_str()
            .unwrap()
            .contains("\"Add\"")
    );

    // Not in the command log: its id is unknown, nothing was appended, and the same id is
    // free for a token that may send it.
    for token in [READER, WRITER] {
        let status = call(
            &h.app,
            request(
                &Method::GET,
                &format!("/update/{refused}"),
                None,
                Some(token),
            ),
        )
        .await;
        assert_eq!(status.status, StatusCode::NOT_FOUND, "{}", status.text());
    }
    assert!(h.engine.status(refused).unwrap().is_none());
    assert_eq!(h.engine.last_position(), before);
    let answer = call(
        &h.app,
        request(
            &Method::POST,
            "/update?wait=10",
            Some(&add(refused, "c-1")),
            Some(WRITER),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["status"], "succeeded");
}

#[tokio::test]
async fn a_switch_of_structure_needs_the_admin_scope_by_the_rebuild_route_and_by_update() {
    let h = harness(Some(tokens()));
    let stream = writ_query::switch::stream_name("counters");
    let to_v1 = json!({"version": 1});
    for token in [WRITER, READER, NOBODY] {
        call(
            &h.app,
            request(
                &Method::POST,
                "/projections/counters/rebuild",
                Some(&to_v1),
                Some(token),
            ),
        )
        .await
        .refused(StatusCode::FORBIDDEN, token);
    }
    // Through `/update`, the command needs `admin` beside `commands`; refused, it is
    // never logged.
    let switch = |id: Uuid, version: u32| {
        json!({"id": id, "command": "SwitchReadModel",
            "payload": {"name": "counters", "version": version}})
    };
    let refused = Uuid::new_v4();
    call(
        &h.app,
        request(
            &Method::POST,
            "/update?wait=10",
            Some(&switch(refused, 1)),
            Some(WRITER),
        ),
    )
    .await
    .refused(StatusCode::FORBIDDEN, "SwitchReadModel with writer");
    assert!(h.engine.status(refused).unwrap().is_none());
    assert_eq!(h.engine.stream_version(&stream), 0);

    // An admin token: `202` as for any rebuild, with the switch in the log.
    let answer = call(
        &h.app,
        request(
            &Method::POST,
            "/projections/counters/rebuild",
            Some(&to_v1),
            Some(ADMIN),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text());
    let projection = answer.json();
    assert_eq!(projection["name"], "counters");
    assert_eq!(projection["rebuild"]["version"], 1, "{projection}");
    assert_eq!(h.engine.stream_version(&stream), 1);

    // A token with both scopes may send it through `/update` too.
    let answer = call(
        &h.app,
        request(
            &Method::POST,
            "/update?wait=10",
            Some(&switch(Uuid::new_v4(), 2)),
            Some(OPERATOR),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["status"], "succeeded");
    assert_eq!(h.engine.stream_version(&stream), 2);
}

#[tokio::test]
async fn the_document_declares_the_bearer_scheme_and_the_refusals() {
    let h = harness(Some(tokens()));
    let doc = call(
        &h.app,
        request(&Method::GET, "/openapi.json", None, Some(NOBODY)),
    )
    .await
    .json();
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"],
        json!({"type": "http", "scheme": "bearer",
            "description": "A token of the server's tokens file (`--tokens`): `Authorization: Bearer TOKEN`."})
    );
    assert_eq!(doc["security"], json!([{"bearer": []}]));
    assert_eq!(doc["paths"]["/health"]["get"]["security"], json!([]));
    assert!(
        doc["paths"]["/health"]["get"]["responses"]
            .get("401")
            .is_none()
    );
    let responses = &doc["paths"]["/update"]["post"]["responses"];
    assert!(responses["401"]["headers"]["WWW-Authenticate"].is_object());
    assert!(responses["403"].is_object());
    let responses = &doc["paths"]["/domains"]["get"]["responses"];
    assert!(responses["401"].is_object() && responses.get("403").is_none());

    // Every operation the document lists is in the access table by its own method: none
    // falls to the admin-only default by being forgotten.
    let paths = doc["paths"].as_object().unwrap();
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            assert!(
                ROUTES.iter().any(|(m, r, _)| *m == method && r == path),
                "{method} {path} is not in writ_server::access::ROUTES"
            );
        }
    }
    assert_eq!(
        ROUTES.len(),
        paths
            .values()
            .map(|i| i.as_object().unwrap().len())
            .sum::<usize>(),
        "ROUTES lists only routes the server has"
    );

    // An open server's document declares none of it.
    let open = harness(None);
    let doc = call(
        &open.app,
        request(&Method::GET, "/openapi.json", None, None),
    )
    .await
    .json();
    assert!(doc.get("security").is_none());
    assert!(
        doc["paths"]["/events"]["get"]["responses"]
            .get("401")
            .is_none()
    );
}

#[tokio::test]
async fn refusals_are_counted_by_reason() {
    let h = harness(Some(tokens()));
    let metrics = |h: &Harness| {
        let app = h.app.clone();
        async move {
            let text = call(&app, request(&Method::GET, "/metrics", None, Some(ADMIN)))
                .await
                .text();
            let count = |reason: &str| {
                let prefix = format!("writ_http_refused_total{{reason=\"{reason}\"}} ");
                text.lines()
                    .find_map(|l| l.strip_prefix(&prefix))
                    .map_or(0, |n| n.trim().parse::<u64>().unwrap())
            };
            (count("unauthorized"), count("forbidden"))
        }
    };
    let (unauthorized, forbidden) = metrics(&h).await;
    call(&h.app, request(&Method::GET, "/events", None, None)).await;
    call(&h.app, request(&Method::GET, "/events", None, Some(WRITER))).await;
    call(
        &h.app,
        request(
            &Method::POST,
            "/update",
            Some(&add(Uuid::new_v4(), "c-1")),
            Some(CREATOR),
        ),
    )
    .await;
    // Tests in this file run side by side and share the process's recorder: at least.
    let (unauthorized_after, forbidden_after) = metrics(&h).await;
    assert!(unauthorized_after > unauthorized);
    assert!(forbidden_after >= forbidden + 2);
    let _ = &h.state;
}

#[tokio::test]
async fn query_code_runs_with_a_queries_token_and_cannot_send_commands() {
    let h = harness(Some(tokens()));
    // The sandbox has no function that sends a command, nor any I/O: code that looks for
    // one finds nothing, and the command log stays as it was.
    let code = json!({"code": "[typeof fetch, typeof submit, typeof send, typeof XMLHttpRequest, typeof require].join(',')"});
    let answer = call(
        &h.app,
        request(&Method::POST, "/query/v1", Some(&code), Some(READER)),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(
        answer.json()["result"],
        "undefined,undefined,undefined,undefined,undefined"
    );
    assert_eq!(h.engine.last_position(), 0);
    let answer = call(
        &h.app,
        request(&Method::POST, "/query/v1", Some(&code), Some(WRITER)),
    )
    .await;
    answer.refused(StatusCode::FORBIDDEN, "query code with a commands token");
}

async fn serve(h: &Harness) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = h.app.clone();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    address
}

async fn next_answer<S>(socket: &mut tokio_tungstenite::WebSocketStream<S>) -> Value
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let message = tokio::time::timeout(BOUND, socket.next())
            .await
            .expect("an answer comes")
            .expect("the socket stays open")
            .unwrap();
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

#[tokio::test]
async fn each_socket_frame_is_checked_against_the_tokens_list() {
    let h = harness(Some(tokens()));
    let address = serve(&h).await;
    let url = format!("ws://{address}/ws");

    // Without a token, or with a token without the scope, there is no socket.
    for (token, status) in [(None, 401), (Some(READER), 403)] {
        let mut request = url.as_str().into_client_request().unwrap();
        if let Some(token) = token {
            request.headers_mut().insert(
                header::AUTHORIZATION,
                format!("Bearer {token}").parse().unwrap(),
            );
        }
        match tokio_tungstenite::connect_async(request).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), status);
            }
            other => panic!("{token:?}: the upgrade was not refused: {other:?}"),
        }
    }

    let mut request = url.as_str().into_client_request().unwrap();
    request.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {CREATOR}").parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let created = Uuid::new_v4();
    let refused = Uuid::new_v4();
    socket
        .send(Message::text(add(refused, "c-1").to_string()))
        .await
        .unwrap();
    let answer = next_answer(&mut socket).await;
    assert_eq!(
        (
            answer["id"].clone(),
            answer["status"].clone(),
            answer["error"]["code"].clone()
        ),
        (json!(refused), json!("invalid"), json!("forbidden")),
        "{answer}"
    );
    // The socket stays open and takes the commands the token may send.
    socket
        .send(Message::text(create(created, "c-1").to_string()))
        .await
        .unwrap();
    assert_eq!(next_answer(&mut socket).await["status"], "accepted");
    assert_eq!(next_answer(&mut socket).await["status"], "succeeded");
    assert!(h.engine.status(refused).unwrap().is_none());
    assert!(h.engine.status(created).unwrap().is_some());
}
