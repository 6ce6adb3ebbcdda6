//! `migrations/T.js` end to end, as a client and an operator see it: an app started at
//! schema version 1 records documents; restarted at version 2 with a migration, it answers
//! them in the new shape, takes patches against it and shows the recorded version in
//! `/streams`; restarted at version 2 without the migration, it refuses to start and names
//! the documents that do not fit.

use std::sync::Arc;
use std::time::Duration;

mod support;
use support::AppDir;

use serde_json::{Value, json};
use writ_app::testing::{Body, Method, Request, StatusCode, TestResponse, TestServer};
use writ_app::{App, Config, Store};

const V1: &str = r#"{
    "title": "Person", "type": "object", "required": ["name", "email"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "email": {"type": "string", "format": "email"}
    },
    "additionalProperties": false
}"#;

/// `name` split into `first` and `last`.
const V2: &str = r#"{
    "title": "Person", "type": "object", "required": ["first", "last", "email"],
    "x-writ-version": 2,
    "properties": {
        "first": {"type": "string", "minLength": 1},
        "last": {"type": "string"},
        "email": {"type": "string", "format": "email"}
    },
    "additionalProperties": false
}"#;

const MIGRATION: &str = r#"// people: version 1 -> 2 splits name into first and last.
function split(name) {
  const words = String(name).split(' ');
  return {first: words[0], last: words.slice(1).join(' ')};
}

function document(doc, fromVersion) {
  const {name, ...rest} = doc;
  return {...rest, ...split(name)};
}

function patch(ops, fromVersion) {
  return ops.flatMap((op) => {
    if (op.path !== '/name') return [op];
    const {first, last} = split(op.value);
    return [{op: 'replace', path: '/first', value: first}, {op: 'replace', path: '/last', value: last}];
  });
}
"#;

async fn send(server: &TestServer, method: Method, uri: &str, ct: &str, body: Value) -> Value {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", ct)
        .body(Body::from(body.to_string()))
        .unwrap();
    let accepted: TestResponse = server.request(request).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.body);
    let location = accepted.headers["location"].to_str().unwrap().to_owned();
    let outcome = server.get(&format!("{location}?wait=30")).await.ok();
    assert_eq!(outcome["status"], "succeeded", "{outcome}");
    outcome
}

async fn post(server: &TestServer, uri: &str, body: Value) -> Value {
    send(server, Method::POST, uri, "application/json", body).await
}

async fn patch(server: &TestServer, uri: &str, ops: Value) -> Value {
    send(
        server,
        Method::PATCH,
        uri,
        "application/json-patch+json",
        ops,
    )
    .await
}

#[tokio::test]
async fn a_restart_at_version_2_reads_version_1_through_the_migration_or_refuses_to_start() {
    let dir = AppDir::new("migrations");
    dir.write("resources/people.json", V1);
    let app_path = dir.path().to_owned();
    let mut server = TestServer::start_with(App::new, move |config: &mut Config| {
        config.app = Some(app_path.clone());
    });
    post(
        &server,
        "/people",
        json!({"id": "ann", "name": "Ann Lee", "email": "ann@example.com"}),
    )
    .await;
    patch(
        &server,
        "/people/ann",
        json!([{"op": "replace", "path": "/name", "value": "Ann Smith"}]),
    )
    .await;
    post(
        &server,
        "/people",
        json!({"id": "bob", "name": "Bob", "email": "bob@example.com"}),
    )
    .await;

    // Version 2 with its migration: the documents read in the new shape.
    dir.write("resources/people.json", V2);
    dir.write("migrations/people.js", MIGRATION);
    server.restart(Duration::ZERO);
    let ann = server.get("/people/ann").await.ok();
    assert_eq!(
        ann,
        json!({"id": "ann", "first": "Ann", "last": "Smith", "email": "ann@example.com"})
    );
    let bob = server.get("/people/bob").await.ok();
    assert_eq!(
        bob,
        json!({"id": "bob", "first": "Bob", "last": "", "email": "bob@example.com"})
    );
    // A patch against the new shape works; one against the old is refused.
    let done = patch(
        &server,
        "/people/ann",
        json!([{"op": "replace", "path": "/last", "value": "Jones"}]),
    )
    .await;
    let ann = server
        .get(&format!("/people/ann?after={}", done["position"]))
        .await
        .ok();
    assert_eq!(ann["last"], "Jones", "{ann}");
    let old = Request::builder()
        .method(Method::PATCH)
        .uri("/people/bob")
        .header("content-type", "application/json-patch+json")
        .body(Body::from(
            json!([{"op": "add", "path": "/name", "value": "Robert"}]).to_string(),
        ))
        .unwrap();
    let accepted = server.request(old).await;
    let location = accepted.headers["location"].to_str().unwrap().to_owned();
    let outcome = server.get(&format!("{location}?wait=30")).await.ok();
    assert_eq!(outcome["status"], "rejected", "{outcome}");
    assert_eq!(outcome["error"]["code"], "schema_violation", "{outcome}");
    // `/streams` shows the current shape with the version each event was recorded in.
    let stream = server.get("/streams/people-ann").await.ok();
    let events = stream["events"].as_array().unwrap();
    let versions: Vec<(Value, Value)> = events
        .iter()
        .map(|e| {
            (
                e["schemaVersion"].clone(),
                e["metadata"]["recordedSchemaVersion"].clone(),
            )
        })
        .collect();
    assert_eq!(
        versions,
        [
            (json!(2), json!(1)),
            (json!(2), json!(1)),
            (json!(2), json!(2))
        ]
    );
    assert_eq!(
        events[0]["data"],
        json!({"document": {"first": "Ann", "last": "Lee", "email": "ann@example.com"}})
    );
    assert_eq!(
        events[1]["data"]["patch"],
        json!([
            {"op": "replace", "path": "/first", "value": "Ann"},
            {"op": "replace", "path": "/last", "value": "Smith"},
        ])
    );
    // Both versions of the commands are listed; the events at version 2.
    let domains = server.get("/domains").await.ok().to_string();
    assert!(domains.contains("PatchPerson"), "{domains}");
    assert_eq!(server.get("/openapi.json").await.status, StatusCode::OK);
    let all = server.get("/events?from=1").await.ok();
    assert_eq!(all["events"][0]["schemaVersion"], 2, "{all}");
    assert_eq!(all["events"][0]["metadata"]["recordedSchemaVersion"], 1);

    // Version 2 without the migration: the start is refused, naming the documents.
    server.state().engine().shutdown();
    std::fs::remove_file(dir.path().join("migrations/people.js")).unwrap();
    let mut config = Config::new(Store::Storage(Arc::new(server.storage().clone())));
    config.app = Some(dir.path().to_owned());
    let error = App::new().start(config.clone()).unwrap_err().to_string();
    assert!(error.contains("people \"bob\""), "{error}");
    assert!(error.contains("recorded at schema version 1"), "{error}");
    assert!(error.contains("/first"), "{error}");
    // Ann's new patch does not apply to her unmigrated document: named by stream.
    assert!(error.contains("stream people-ann"), "{error}");
    assert!(error.contains("nothing is served"), "{error}");

    // The migration back: it starts again.
    dir.write("migrations/people.js", MIGRATION);
    let started = App::new().start(config).unwrap_or_else(|e| panic!("{e}"));
    started.state.engine().shutdown();
}

#[tokio::test]
async fn a_migration_that_throws_refuses_the_start_naming_the_file_and_the_position() {
    let dir = AppDir::new("migrations");
    dir.write("resources/people.json", V1);
    let app_path = dir.path().to_owned();
    let server = TestServer::start_with(App::new, move |config: &mut Config| {
        config.app = Some(app_path.clone());
    });
    post(
        &server,
        "/people",
        json!({"id": "ann", "name": "Ann Lee", "email": "ann@example.com"}),
    )
    .await;
    server.state().engine().shutdown();
    dir.write("resources/people.json", V2);
    dir.write(
        "migrations/people.js",
        "function document(doc) { throw new Error('cannot split ' + doc.name); }\nfunction patch(ops) { return ops; }\n",
    );
    let mut config = Config::new(Store::Storage(Arc::new(server.storage().clone())));
    config.app = Some(dir.path().to_owned());
    let error = App::new().start(config).unwrap_err().to_string();
    assert!(error.contains("migrations/people.js"), "{error}");
    assert!(error.contains("document(doc, 1)"), "{error}");
    assert!(error.contains("cannot split Ann Lee"), "{error}");
    assert!(error.contains("position 1"), "{error}");
}

#[tokio::test]
async fn a_schema_version_that_went_down_refuses_the_start() {
    let dir = AppDir::new("migrations");
    dir.write("resources/people.json", V2);
    let app_path = dir.path().to_owned();
    let server = TestServer::start_with(App::new, move |config: &mut Config| {
        config.app = Some(app_path.clone());
    });
    post(
        &server,
        "/people",
        json!({"id": "ann", "first": "Ann", "last": "Lee", "email": "ann@example.com"}),
    )
    .await;
    server.state().engine().shutdown();
    dir.write("resources/people.json", V1);
    let mut config = Config::new(Store::Storage(Arc::new(server.storage().clone())));
    config.app = Some(dir.path().to_owned());
    let error = App::new().start(config).unwrap_err().to_string();
    assert!(error.contains("PersonCreated"), "{error}");
    assert!(error.contains("schema version 2"), "{error}");
    assert!(error.contains("a newer build recorded it"), "{error}");
    assert!(error.contains("position 1"), "{error}");
}
