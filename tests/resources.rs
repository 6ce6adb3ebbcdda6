//! End to end: `writ serve --app examples/users` on 127.0.0.1, used as the README's
//! walk-through uses it, across a restart; and a bad app directory refused at startup.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::{Http, Server, TempDir};
use http_body_util::BodyExt;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

fn users_dir() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples/users")
        .display()
        .to_string()
}

/// Sends a request with headers and reads the whole answer.
async fn call(
    http: &mut Http,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (StatusCode, hyper::HeaderMap, Value) {
    let response = http.send(method, path, headers, body).await;
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (parts.status, parts.headers, json)
}

#[tokio::test]
async fn users_are_written_read_and_kept_across_a_restart() {
    let dir = TempDir::new("e2e-resources");
    let app = users_dir();
    let server = Server::start_with(dir.path(), &["--app", &app]);
    let mut http = Http::connect(server.port).await;

    let (status, headers, body) = call(
        &mut http,
        Method::POST,
        "/users",
        &[],
        Some(r#"{"name": "Ann", "email": "ann@example.com"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let location = headers["location"].to_str().unwrap().to_owned();
    let outcome = http.get_ok(&format!("{location}?wait=30")).await;
    assert_eq!(outcome["status"], "succeeded");
    let position = outcome["position"].as_u64().unwrap();

    let (status, headers, user) = call(
        &mut http,
        Method::GET,
        &format!("/users/{id}?after={position}"),
        &[],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // machines/users.json: a created user starts `pending`.
    assert_eq!(
        user,
        json!({"id": id, "name": "Ann", "email": "ann@example.com", "status": "pending"})
    );
    assert_eq!(headers["etag"], "\"1\"");

    let (status, headers, body) = call(
        &mut http,
        Method::PATCH,
        &format!("/users/{id}"),
        &[
            ("content-type", "application/merge-patch+json"),
            ("if-match", "\"1\""),
        ],
        Some(r#"{"name": "Ann Lee"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let location = headers["location"].to_str().unwrap().to_owned();
    let patched = http.get_ok(&format!("{location}?wait=30")).await;
    assert_eq!(patched["status"], "succeeded");
    let (status, _, problem) = call(
        &mut http,
        Method::POST,
        "/users",
        &[],
        Some(r#"{"name": "Bob", "email": "not-an-email"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["pointer"], "/email");

    // As the README walks through: a transition, then a rule's rejection, then the same
    // transition refused from the state it led to.
    let mut send = async |path: &str, body: Option<&str>| {
        let headers: &[(&str, &str)] = if body.is_some() {
            &[("content-type", "application/json")]
        } else {
            &[]
        };
        let (status, headers, body) = call(&mut http, Method::POST, path, headers, body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let location = headers["location"].to_str().unwrap().to_owned();
        http.get_ok(&format!("{location}?wait=30")).await
    };
    let activated = send(&format!("/users/{id}/Activate"), None).await;
    assert_eq!(activated["command"], "ActivateUser");
    assert_eq!(activated["events"][0]["type"], "UserActivated");
    let unreasoned = send(&format!("/users/{id}/Suspend"), Some("{}")).await;
    assert_eq!(unreasoned["error"]["code"], "reason_required");
    let again = send(&format!("/users/{id}/Activate"), None).await;
    assert_eq!(again["error"]["code"], "invalid_transition");
    assert_eq!(
        again["error"]["message"],
        format!(
            "ActivateUser moves status from [\"pending\"] only; User \"{id}\" is at \"active\""
        )
    );
    let position = again["position"].as_u64().unwrap();
    assert!(server.terminate().success());

    // The same data directory again: the document and the claim on its email are there.
    let server = Server::start_with(dir.path(), &["--app", &app]);
    let mut http = Http::connect(server.port).await;
    let user = http.get_ok(&format!("/users/{id}?after={position}")).await;
    assert_eq!(user["name"], "Ann Lee");
    assert_eq!(user["status"], "active");
    let (status, headers, _) = call(
        &mut http,
        Method::POST,
        "/users",
        &[],
        Some(r#"{"name": "Eve", "email": "ann@example.com"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let location = headers["location"].to_str().unwrap().to_owned();
    let outcome = http.get_ok(&format!("{location}?wait=30")).await;
    assert_eq!(outcome["error"]["code"], "not_unique");
    let page = http.get_ok("/users?limit=10").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert!(server.terminate().success());
}

#[test]
fn a_bad_app_directory_stops_the_server_before_it_opens_the_store() {
    let dir = TempDir::new("e2e-resources-bad");
    let app = dir.path().join("app");
    std::fs::create_dir_all(app.join("resources")).unwrap();
    std::fs::write(
        app.join("resources/users.json"),
        r#"{"title": "User", "type": "object", "x-writ-unique": ["email"]}"#,
    )
    .unwrap();
    let data = dir.path().join("data");
    let output = Command::new(env!("CARGO_BIN_EXE_writ"))
        .args(["serve", "--listen", "127.0.0.1:0", "--app"])
        .arg(&app)
        .arg("--data-dir")
        .arg(&data)
        .env_remove("RUST_LOG")
        .env_remove("WRIT_TOKENS")
        .env("LOG_LEVEL", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("the binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("resources/users.json"), "{stderr}");
    assert!(stderr.contains("/x-writ-unique/0"), "{stderr}");
    assert!(!data.exists(), "the store was not created");
}
