//! Resource types without code (`writ serve --app DIR`), as a client sees them, through the
//! router on in-memory storage: every route and status, `422` pointers, idempotency keys,
//! `If-Match`, merge patches recorded as RFC 6902 operations, delete and create again,
//! uniqueness under concurrent creators and across a restart, paging, access scopes,
//! `/domains` and `/openapi.json`, and what `--app` serves beside `--domain`.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;
use writ_app::testing::{Body, Method, Request, StatusCode, TestResponse, TestServer};
use writ_app::{App, Config, Module};

/// The shipped example, `examples/users`.
fn users_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/users")
}

fn app() -> App {
    App::new()
        .module(Module::new::<writ_tickets::Tickets>().read_model(writ_tickets::read::read_model()))
        .default_domains(&["tickets"])
}

fn users_server() -> TestServer {
    TestServer::start_with(app, |config: &mut Config| {
        config.app = Some(users_dir());
    })
}

/// A request with a JSON body (of `content_type`) and extra headers.
async fn send(
    server: &TestServer,
    method: Method,
    uri: &str,
    content_type: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> TestResponse {
    let mut request = Request::builder().method(method).uri(uri);
    if body.is_some() {
        request = request.header("content-type", content_type);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    server.request(request.body(body).unwrap()).await
}

async fn json(
    server: &TestServer,
    method: Method,
    uri: &str,
    body: Value,
    headers: &[(&str, &str)],
) -> TestResponse {
    send(server, method, uri, "application/json", Some(body), headers).await
}

/// The final status of the command a `202` names.
async fn outcome(server: &TestServer, accepted: &TestResponse) -> Value {
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.body);
    let location = accepted.headers["location"].to_str().unwrap();
    assert_eq!(
        location,
        format!("/update/{}", accepted.body["commandId"].as_str().unwrap())
    );
    server.get(&format!("{location}?wait=30")).await.ok()
}

/// `GET uri` once the read models include `position`.
async fn read(server: &TestServer, uri: &str, position: &Value) -> TestResponse {
    let join = if uri.contains('?') { '&' } else { '?' };
    server.get(&format!("{uri}{join}after={position}")).await
}

fn ann() -> Value {
    json!({"name": "Ann", "email": "ann@example.com"})
}

#[tokio::test]
async fn every_route_writes_and_reads_documents() {
    let server = users_server();
    // POST with an id.
    let created = json(
        &server,
        Method::POST,
        "/users",
        json!({"id": "ann", "name": "Ann", "email": "ann@example.com"}),
        &[],
    )
    .await;
    assert_eq!(created.body["id"], "ann");
    assert_eq!(created.body["status"], "accepted");
    let status = outcome(&server, &created).await;
    assert_eq!(status["status"], "succeeded");
    assert_eq!(status["command"], "CreateUser");
    let got = read(&server, "/users/ann", &status["position"]).await;
    assert_eq!(got.status, StatusCode::OK);
    // machines/users.json: a created user starts `pending`.
    assert_eq!(
        got.body,
        json!({"id": "ann", "name": "Ann", "email": "ann@example.com", "status": "pending"})
    );
    assert_eq!(got.headers["etag"], "\"1\"");

    // PUT replaces.
    let replaced = json(
        &server,
        Method::PUT,
        "/users/ann",
        json!({"name": "Ann B", "email": "ann@example.com"}),
        &[],
    )
    .await;
    let status = outcome(&server, &replaced).await;
    assert_eq!(status["status"], "succeeded");
    let got = read(&server, "/users/ann", &status["position"]).await;
    assert_eq!(got.body["name"], "Ann B");
    assert_eq!(got.headers["etag"], "\"2\"");

    // PATCH with RFC 6902 operations, then with a merge patch.
    let ops = json!([{"op": "replace", "path": "/name", "value": "Ann C"}]);
    let patched = send(
        &server,
        Method::PATCH,
        "/users/ann",
        "application/json-patch+json",
        Some(ops),
        &[],
    )
    .await;
    assert_eq!(outcome(&server, &patched).await["status"], "succeeded");
    let merge = json!({"email": "ann@new.example"});
    let merged = send(
        &server,
        Method::PATCH,
        "/users/ann",
        "application/merge-patch+json",
        Some(merge),
        &[],
    )
    .await;
    let status = outcome(&server, &merged).await;
    assert_eq!(status["status"], "succeeded");
    let got = read(&server, "/users/ann", &status["position"]).await;
    assert_eq!(
        got.body,
        json!({"id": "ann", "name": "Ann C", "email": "ann@new.example", "status": "pending"})
    );
    // The stored event holds the RFC 6902 operations the merge patch applied.
    let stream = server.get("/streams/users-ann").await.ok();
    let types: Vec<&str> = stream["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["UserCreated", "UserReplaced", "UserPatched", "UserPatched"]
    );
    let mut created = ann();
    created["status"] = json!("pending");
    assert_eq!(stream["events"][0]["data"], json!({"document": created}));
    assert_eq!(
        stream["events"][3]["data"],
        json!({"patch": [{"op": "replace", "path": "/email", "value": "ann@new.example"}]})
    );

    // DELETE, then the document is gone, and its id may be created again.
    let deleted = send(&server, Method::DELETE, "/users/ann", "", None, &[]).await;
    let status = outcome(&server, &deleted).await;
    assert_eq!(status["status"], "succeeded");
    read(&server, "/users/ann", &status["position"])
        .await
        .problem(StatusCode::NOT_FOUND, "not_found");
    let again = json(&server, Method::DELETE, "/users/ann", json!({}), &[]).await;
    assert_eq!(outcome(&server, &again).await["error"]["code"], "not_found");
    let replace_gone = json(&server, Method::PUT, "/users/ann", ann(), &[]).await;
    assert_eq!(
        outcome(&server, &replace_gone).await["error"]["code"],
        "not_found"
    );
    let reborn = json(
        &server,
        Method::POST,
        "/users",
        json!({"id": "ann", "name": "Ann", "email": "ann@example.com"}),
        &[],
    )
    .await;
    let status = outcome(&server, &reborn).await;
    assert_eq!(status["status"], "succeeded");
    let got = read(&server, "/users/ann", &status["position"]).await;
    assert_eq!(got.headers["etag"], "\"6\"");
    let exists = json(
        &server,
        Method::POST,
        "/users",
        json!({"id": "ann", "name": "A", "email": "a@example.com"}),
        &[],
    )
    .await;
    assert_eq!(outcome(&server, &exists).await["error"]["code"], "exists");

    // POST without an id: one derived from the command id.
    let anonymous = json(
        &server,
        Method::POST,
        "/users",
        json!({"name": "Bob", "email": "bob@example.com"}),
        &[],
    )
    .await;
    let id = anonymous.body["id"].as_str().unwrap().to_owned();
    assert_ne!(id, anonymous.body["commandId"]);
    let status = outcome(&server, &anonymous).await;
    assert_eq!(
        read(&server, &format!("/users/{id}"), &status["position"])
            .await
            .ok()["name"],
        "Bob"
    );

    // The same commands through POST /update.
    let sent = server
        .send(
            7,
            "CreateUser",
            json!({"id": "cat", "document": {"name": "Cat", "email": "cat@example.com"}}),
        )
        .await
        .ok();
    assert_eq!(sent["status"], "succeeded");
    let sent = server
        .send(
            8,
            "PatchUser",
            json!({"id": "cat", "patch": [{"op": "replace", "path": "/name", "value": "Kat"}]}),
        )
        .await
        .ok();
    let got = read(&server, "/users/cat", &sent["position"]).await.ok();
    assert_eq!(got["name"], "Kat");
}

#[tokio::test]
async fn custom_commands_move_the_machine_and_rules_reject_through_their_route() {
    let server = users_server();
    let created = json(
        &server,
        Method::POST,
        "/users",
        json!({"id": "ann", "name": "Ann", "email": "ann@example.com"}),
        &[],
    )
    .await;
    assert_eq!(outcome(&server, &created).await["status"], "succeeded");
    // POST /users/{id}/{Command}: 202, then the outcome; no body is an empty payload.
    let key = "0b4f0e36-5d5e-4f0a-9d38-3f0f5c8a9e01";
    let activate = send(
        &server,
        Method::POST,
        "/users/ann/Activate",
        "",
        None,
        &[("idempotency-key", key)],
    )
    .await;
    assert_eq!(activate.body["id"], "ann");
    assert_eq!(activate.body["commandId"], key);
    let status = outcome(&server, &activate).await;
    assert_eq!(status["status"], "succeeded", "{status}");
    assert_eq!(status["command"], "ActivateUser");
    assert_eq!(status["events"][0]["type"], "UserActivated");
    let got = read(&server, "/users/ann", &status["position"]).await;
    assert_eq!(got.body["status"], "active");
    assert_eq!(got.headers["etag"], "\"2\"");
    // A resend with the same key answers the first answer.
    let again = send(
        &server,
        Method::POST,
        "/users/ann/Activate",
        "",
        None,
        &[("idempotency-key", key)],
    )
    .await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.body, activate.body);
    // The same key with another command is a conflict.
    send(
        &server,
        Method::POST,
        "/users/ann/Suspend",
        "",
        None,
        &[("idempotency-key", key)],
    )
    .await
    .problem(StatusCode::CONFLICT, "conflict");

    // A rule on the custom command's payload.
    let unreasoned = json(&server, Method::POST, "/users/ann/Suspend", json!({}), &[]).await;
    let status = outcome(&server, &unreasoned).await;
    assert_eq!(status["status"], "rejected");
    assert_eq!(status["error"]["code"], "reason_required");
    // If-Match is the expected version, checked when the command runs.
    let stale = json(
        &server,
        Method::POST,
        "/users/ann/Suspend",
        json!({"reason": "spam"}),
        &[("if-match", "\"1\"")],
    )
    .await;
    assert_eq!(
        outcome(&server, &stale).await["error"]["code"],
        "wrong_expected_version"
    );
    let suspended = json(
        &server,
        Method::POST,
        "/users/ann/SuspendUser",
        json!({"reason": "spam"}),
        &[("if-match", "\"2\"")],
    )
    .await;
    let status = outcome(&server, &suspended).await;
    assert_eq!(status["status"], "succeeded", "{status}");
    // Not a state Activate leaves.
    let wrong = send(&server, Method::POST, "/users/ann/Activate", "", None, &[]).await;
    assert_eq!(
        outcome(&server, &wrong).await["error"]["code"],
        "invalid_transition"
    );
    let nobody = send(&server, Method::POST, "/users/bob/Activate", "", None, &[]).await;
    assert_eq!(
        outcome(&server, &nobody).await["error"]["code"],
        "not_found"
    );

    // Refused before anything is logged.
    send(&server, Method::POST, "/users/ann/Approve", "", None, &[])
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY, "unknown_command");
    send(&server, Method::POST, "/nobody/ann/Approve", "", None, &[])
        .await
        .problem(StatusCode::NOT_FOUND, "not_found");
    json(
        &server,
        Method::POST,
        "/users/ann/Reinstate",
        json!({"id": "bob"}),
        &[],
    )
    .await
    .problem(StatusCode::BAD_REQUEST, "malformed");
    send(
        &server,
        Method::POST,
        "/users/ann/Reinstate",
        "text/plain",
        Some(json!("x")),
        &[],
    )
    .await
    .problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");

    // The same command through POST /update: {Command}{Title} with {"id", ...payload}.
    let sent = server
        .send(9, "ReinstateUser", json!({"id": "ann", "by": "ops"}))
        .await
        .ok();
    assert_eq!(sent["status"], "succeeded", "{sent}");
    let got = read(&server, "/users/ann", &sent["position"]).await.ok();
    assert_eq!(got["status"], "active");
    // Its events are the transitions', read back in the stream.
    let stream = server.get("/streams/users-ann").await.ok();
    let types: Vec<&str> = stream["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "UserCreated",
            "UserActivated",
            "UserSuspended",
            "UserReinstated"
        ]
    );
    assert_eq!(
        stream["events"][2]["data"],
        json!({"command": "Suspend", "from": "active", "to": "suspended"})
    );
    // A rule of Create: the name is not the email.
    let odd = json(
        &server,
        Method::POST,
        "/users",
        json!({"name": "eve@example.com", "email": "eve@example.com"}),
        &[],
    )
    .await;
    assert_eq!(
        outcome(&server, &odd).await["error"]["code"],
        "name_is_not_email"
    );
}

#[tokio::test]
async fn refusals_have_their_statuses() {
    let server = users_server();
    // 422 before anything is logged, a pointer per place.
    let missing = json(&server, Method::POST, "/users", json!({"name": "Ann"}), &[]).await;
    let problem = missing.problem(StatusCode::UNPROCESSABLE_ENTITY, "schema_violation");
    assert_eq!(problem["errors"][0]["pointer"], "/email");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("email")
    );
    let format = json(
        &server,
        Method::POST,
        "/users",
        json!({"name": "Ann", "email": "not-an-email"}),
        &[],
    )
    .await;
    let problem = format.problem(StatusCode::UNPROCESSABLE_ENTITY, "schema_violation");
    assert_eq!(
        problem["errors"],
        json!([{"pointer": "/email", "message": problem["errors"][0]["message"]}])
    );
    let extra = json(
        &server,
        Method::PUT,
        "/users/x",
        json!({"name": "A", "email": "a@b.co", "age": 3}),
        &[],
    )
    .await;
    extra.problem(StatusCode::UNPROCESSABLE_ENTITY, "schema_violation");
    let update = server
        .send(
            1,
            "CreateUser",
            json!({"id": "a", "document": {"name": "A"}}),
        )
        .await;
    let problem = update.problem(StatusCode::UNPROCESSABLE_ENTITY, "schema_violation");
    assert_eq!(problem["errors"][0]["pointer"], "/email");
    assert_eq!(
        server.state().engine().last_position(),
        0,
        "nothing was logged"
    );

    // A patch whose result breaks the schema is decided by the writer.
    let created = json(
        &server,
        Method::POST,
        "/users",
        json!({"id": "ann", "name": "Ann", "email": "ann@example.com"}),
        &[],
    )
    .await;
    outcome(&server, &created).await;
    let broken = send(
        &server,
        Method::PATCH,
        "/users/ann",
        "application/merge-patch+json",
        Some(json!({"email": null})),
        &[],
    )
    .await;
    let status = outcome(&server, &broken).await;
    assert_eq!(status["error"]["code"], "schema_violation");
    assert_eq!(status["error"]["errors"][0]["pointer"], "/email");

    // Malformed requests.
    for (method, uri, content_type, body, status, code) in [
        (
            Method::POST,
            "/things",
            "application/json",
            Some(ann()),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::GET,
            "/things/1",
            "",
            None,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::POST,
            "/users",
            "text/plain",
            Some(ann()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            Method::POST,
            "/users",
            "application/json",
            Some(json!([1])),
            StatusCode::BAD_REQUEST,
            "malformed",
        ),
        (
            Method::POST,
            "/users",
            "application/json",
            Some(json!({"id": 7})),
            StatusCode::BAD_REQUEST,
            "malformed",
        ),
        (
            Method::PUT,
            "/users/ann",
            "application/json",
            Some(json!({"id": "bob"})),
            StatusCode::BAD_REQUEST,
            "malformed",
        ),
        (
            Method::PATCH,
            "/users/ann",
            "application/json",
            Some(json!({})),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            Method::PATCH,
            "/users/ann",
            "application/json-patch+json",
            Some(json!({})),
            StatusCode::BAD_REQUEST,
            "malformed",
        ),
        (
            Method::PATCH,
            "/users/ann",
            "application/json-patch+json",
            Some(json!([{"op": "jump"}])),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_payload",
        ),
        (
            Method::POST,
            "/users",
            "application/json",
            Some(json!({"id": "a b", "name": "A", "email": "a@b.co"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_payload",
        ),
        (
            Method::GET,
            "/users?limit=1001",
            "",
            None,
            StatusCode::BAD_REQUEST,
            "bad_argument",
        ),
        (
            Method::GET,
            "/users?cursor=zz",
            "",
            None,
            StatusCode::BAD_REQUEST,
            "bad_argument",
        ),
        (
            Method::GET,
            "/users?colour=red",
            "",
            None,
            StatusCode::BAD_REQUEST,
            "bad_argument",
        ),
        (
            Method::GET,
            "/users/ann?after=x",
            "",
            None,
            StatusCode::BAD_REQUEST,
            "malformed",
        ),
    ] {
        send(&server, method, uri, content_type, body, &[])
            .await
            .problem(status, code);
    }
    let bad_key = json(
        &server,
        Method::POST,
        "/users",
        ann(),
        &[("idempotency-key", "k1")],
    )
    .await;
    bad_key.problem(StatusCode::BAD_REQUEST, "malformed");
    let bad_match = json(
        &server,
        Method::PUT,
        "/users/ann",
        ann(),
        &[("if-match", "W/\"1\"")],
    )
    .await;
    bad_match.problem(StatusCode::BAD_REQUEST, "malformed");
}

#[tokio::test]
async fn an_idempotency_key_is_the_command_id() {
    let server = users_server();
    let key = Uuid::new_v4().to_string();
    let headers = [("idempotency-key", key.as_str())];
    let first = json(&server, Method::POST, "/users", ann(), &headers).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    assert_eq!(first.body["commandId"], key.as_str());
    let status = outcome(&server, &first).await;
    // A resend gets the first answer's body, the derived document id included.
    let resent = json(&server, Method::POST, "/users", ann(), &headers).await;
    assert_eq!(resent.status, StatusCode::ACCEPTED);
    assert_eq!(resent.body, first.body);
    assert_eq!(resent.headers["location"], first.headers["location"]);
    // Another body with the same key.
    let other = json(
        &server,
        Method::POST,
        "/users",
        json!({"name": "Bob", "email": "bob@example.com"}),
        &headers,
    )
    .await;
    other.problem(StatusCode::CONFLICT, "conflict");
    // Nothing ran twice.
    let list = read(&server, "/users", &status["position"]).await.ok();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        server.state().engine().last_position(),
        2,
        "one document and its claim"
    );
}

#[tokio::test]
async fn if_match_is_the_expected_version() {
    let server = users_server();
    let created = json(
        &server,
        Method::POST,
        "/users",
        json!({"id": "ann", "name": "Ann", "email": "ann@example.com"}),
        &[("if-match", "\"0\"")],
    )
    .await;
    assert_eq!(outcome(&server, &created).await["status"], "succeeded");
    let stale = json(
        &server,
        Method::PUT,
        "/users/ann",
        ann(),
        &[("if-match", "\"7\"")],
    )
    .await;
    let status = outcome(&server, &stale).await;
    assert_eq!(status["status"], "rejected");
    assert_eq!(status["error"]["code"], "wrong_expected_version");
    assert_eq!(
        (
            status["error"]["expected"].clone(),
            status["error"]["actual"].clone()
        ),
        (json!(7), json!(1))
    );
    let fresh = send(
        &server,
        Method::DELETE,
        "/users/ann",
        "",
        None,
        &[("if-match", "\"1\"")],
    )
    .await;
    assert_eq!(outcome(&server, &fresh).await["status"], "succeeded");
}

#[tokio::test]
async fn of_32_concurrent_creators_of_one_email_exactly_one_succeeds() {
    let server = users_server();
    let requests = (0..32).map(|n| {
        let body = json!({"id": format!("u{n}"), "name": "Same", "email": "same@example.com"});
        let server = &server;
        async move {
            let accepted = json(server, Method::POST, "/users", body, &[]).await;
            outcome(server, &accepted).await
        }
    });
    let outcomes = futures_util::future::join_all(requests).await;
    let succeeded = outcomes
        .iter()
        .filter(|s| s["status"] == "succeeded")
        .count();
    assert_eq!(succeeded, 1);
    for status in outcomes.iter().filter(|s| s["status"] != "succeeded") {
        assert_eq!(status["error"]["code"], "not_unique", "{status}");
    }
}

#[tokio::test]
async fn a_restart_keeps_documents_and_uniqueness() {
    let mut server = users_server();
    let created = json(
        &server,
        Method::POST,
        "/users",
        json!({"id": "ann", "name": "Ann", "email": "ann@example.com"}),
        &[],
    )
    .await;
    let status = outcome(&server, &created).await;
    server.restart(Duration::from_secs(1));
    let got = read(&server, "/users/ann", &status["position"]).await.ok();
    assert_eq!(got["email"], "ann@example.com");
    let taken = json(
        &server,
        Method::POST,
        "/users",
        json!({"id": "bob", "name": "Bob", "email": "ann@example.com"}),
        &[],
    )
    .await;
    let status = outcome(&server, &taken).await;
    assert_eq!(status["error"]["code"], "not_unique");
    assert_eq!(status["error"]["heldBy"], "ann");
}

#[tokio::test]
async fn listings_page_oldest_first_by_cursor() {
    let server = users_server();
    let mut last = Value::Null;
    for n in 0..7 {
        let body =
            json!({"id": format!("u{n}"), "name": "U", "email": format!("u{n}@example.com")});
        last = outcome(
            &server,
            &json(&server, Method::POST, "/users", body, &[]).await,
        )
        .await["position"]
            .clone();
    }
    let deleted = send(&server, Method::DELETE, "/users/u2", "", None, &[]).await;
    last = outcome(&server, &deleted).await["position"]
        .clone()
        .as_u64()
        .map_or(last, Value::from);
    let mut ids = Vec::new();
    let mut uri = "/users?limit=3".to_owned();
    loop {
        let page = read(&server, &uri, &last).await;
        assert!(page.headers.contains_key("writ-position"));
        let page = page.ok();
        assert!(page["items"].as_array().unwrap().len() <= 3);
        ids.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["id"].as_str().unwrap().to_owned()),
        );
        match page["cursor"].as_str() {
            Some(cursor) => uri = format!("/users?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(ids, ["u0", "u1", "u3", "u4", "u5", "u6"]);
    let all = read(&server, "/users", &last).await.ok();
    assert_eq!(all["items"].as_array().unwrap().len(), 6);
    assert_eq!(
        all["items"][0],
        json!({"id": "u0", "name": "U", "email": "u0@example.com", "status": "pending"})
    );
}

#[tokio::test]
async fn domains_and_openapi_list_each_types_commands_with_its_schema() {
    let server = users_server();
    let domains = server.get("/domains").await.ok();
    let names: Vec<&str> = domains["domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    // `--app` alone: only its types.
    assert_eq!(names, ["users"]);
    let text = domains.to_string();
    for command in [
        "CreateUser",
        "ReplaceUser",
        "PatchUser",
        "DeleteUser",
        "ActivateUser",
        "SuspendUser",
        "ReinstateUser",
    ] {
        assert!(text.contains(command), "{command}: {text}");
    }
    let openapi = server.get("/openapi.json").await.ok();
    let create = &openapi["components"]["schemas"]["CreateUser.v1"];
    assert_eq!(
        create["properties"]["document"]["properties"]["email"]["format"],
        "email"
    );
    assert!(openapi["paths"]["/{resource}/{id}"]["patch"].is_object());
    assert!(openapi["paths"]["/{resource}/{id}/{command}"]["post"].is_object());
    let activate = &openapi["components"]["schemas"]["ActivateUser.v1"];
    assert_eq!(activate["required"], json!(["id"]), "{activate}");
    assert!(openapi["paths"]["/{resource}"]["post"].is_object());
    // Every operation of a server with resource types has its scope in the access tables.
    use writ_server::access::{RESOURCE_ROUTES, ROUTES};
    for (path, item) in openapi["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            assert!(
                ROUTES
                    .iter()
                    .chain(RESOURCE_ROUTES)
                    .any(|(m, r, _)| *m == method && r == path),
                "{method} {path} is in no access table"
            );
        }
    }
}

#[tokio::test]
async fn app_serves_beside_domains_and_clashes_name_the_file() {
    let server = TestServer::start_with(app, |config: &mut Config| {
        config.app = Some(users_dir());
        config.domains = vec!["tickets".to_owned()];
    });
    let domains = server.get("/domains").await.ok();
    let names: Vec<&str> = domains["domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["tickets", "users"]);
    // Without any flag, the default domain alone, and no resource routes.
    let plain = TestServer::start(app);
    plain
        .get("/users")
        .await
        .problem(StatusCode::NOT_FOUND, "not_found");

    let dir = std::env::temp_dir().join(format!("writ-app-clash-{}", Uuid::new_v4()));
    std::fs::create_dir_all(dir.join("resources")).unwrap();
    std::fs::write(
        dir.join("resources/ticket.json"),
        r#"{"title": "Ticket", "type": "object"}"#,
    )
    .unwrap();
    let mut config = Config::new(writ_app::Store::Storage(std::sync::Arc::new(
        writ_log::storage::SimStorage::new(),
    )));
    config.app = Some(dir.clone());
    // Alone, `ticket` is a type like any other; beside tickets its streams would overlap.
    assert!(app().start(config.clone()).is_ok());
    config.domains = vec!["tickets".to_owned()];
    let error = app().start(config.clone()).unwrap_err().to_string();
    assert!(error.contains("resources/ticket.json"), "{error}");
    assert!(error.contains("\"ticket-\""), "{error}");
    std::fs::create_dir_all(dir.join("migrations")).unwrap();
    std::fs::write(dir.join("migrations/ticket.js"), "").unwrap();
    let error = app().start(config).unwrap_err().to_string();
    assert!(error.contains("migrations/ticket.js"), "{error}");
    assert!(error.contains("nothing to migrate"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn writes_need_the_commands_scope_and_reads_the_queries_scope() {
    // printf %s 's3cret' | sha256sum, and 'r3ader'.
    let tokens = r#"[
        {"token_sha256": "1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0", "name": "writer", "scopes": ["commands"]},
        {"token_sha256": "READER", "name": "reader", "scopes": ["queries"]}
    ]"#
    .replace("READER", &sha256_hex("r3ader"));
    let server = TestServer::start_with(app, move |config: &mut Config| {
        config.app = Some(users_dir());
        config.tokens =
            Some(writ_server::access::Tokens::parse(tokens.as_bytes(), "tokens.json").unwrap());
    });
    let writer = [("authorization", "Bearer s3cret")];
    let reader = [("authorization", "Bearer r3ader")];
    let body = json!({"id": "ann", "name": "Ann", "email": "ann@example.com"});
    json(&server, Method::POST, "/users", body.clone(), &reader)
        .await
        .problem(StatusCode::FORBIDDEN, "forbidden");
    json(&server, Method::POST, "/users", body, &[])
        .await
        .problem(StatusCode::UNAUTHORIZED, "unauthorized");
    let created = json(
        &server,
        Method::POST,
        "/users",
        json!({"id": "ann", "name": "Ann", "email": "ann@example.com"}),
        &writer,
    )
    .await;
    assert_eq!(created.status, StatusCode::ACCEPTED);
    for (method, uri) in [(Method::PUT, "/users/ann"), (Method::DELETE, "/users/ann")] {
        json(&server, method, uri, ann(), &reader)
            .await
            .problem(StatusCode::FORBIDDEN, "forbidden");
    }
    send(&server, Method::GET, "/users/ann", "", None, &writer)
        .await
        .problem(StatusCode::FORBIDDEN, "forbidden");
    send(&server, Method::GET, "/users", "", None, &writer)
        .await
        .problem(StatusCode::FORBIDDEN, "forbidden");
    server.settle().await;
    let got = send(&server, Method::GET, "/users/ann", "", None, &reader).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
