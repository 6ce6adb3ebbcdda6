//! `handlers/T.js` as a client sees it, through the router on in-memory storage: a custom
//! command's route answers `202`, the handler's patch shows in the document, its own code
//! rejects, and a handler that loops forever or allocates without end ends `failed` while
//! the server goes on serving.

use serde_json::{Value, json};
use writ_app::testing::{Body, Method, Request, StatusCode, TestResponse, TestServer};
use writ_app::{App, Config};

const SCHEMA: &str = r#"{
    "title": "User", "type": "object", "required": ["name"],
    "properties": {
        "name": {"type": "string"},
        "status": {"enum": ["pending", "approved"]},
        "approvedAt": {"type": "string"},
        "approvedBy": {"type": "string"}
    }
}"#;

const HANDLERS: &str = r#"
function Approve(state, payload, ctx) {
  if (state.status === 'approved') reject('already_approved', 'approved once is enough');
  return {event: 'UserApproved', patch: [
    {op: 'add', path: '/status', value: 'approved'},
    {op: 'add', path: '/approvedAt', value: ctx.now},
    {op: 'add', path: '/approvedBy', value: payload.by},
  ]};
}
function Spin() { for (;;) {} }
function Hoard() { const all = []; for (;;) all.push('x'.repeat(1000) + all.length); }
function Break() { return {event: 'UserBroken', patch: [{op: 'add', path: '/status', value: 'lost'}]}; }
"#;

struct Started {
    _dir: TempDir,
    server: TestServer,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start() -> Started {
    let dir = std::env::temp_dir().join(format!(
        "writ-app-handlers-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    std::fs::create_dir_all(dir.join("resources")).unwrap();
    std::fs::create_dir_all(dir.join("handlers")).unwrap();
    std::fs::write(dir.join("resources/users.json"), SCHEMA).unwrap();
    std::fs::write(dir.join("handlers/users.js"), HANDLERS).unwrap();
    let app_dir = dir.clone();
    let server = TestServer::start_with(App::new, move |config: &mut Config| {
        config.app = Some(app_dir.clone());
    });
    Started {
        _dir: TempDir(dir),
        server,
    }
}

async fn post(server: &TestServer, uri: &str, body: Value) -> TestResponse {
    let request = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    server.request(request).await
}

/// The final status of the command a `202` names.
async fn outcome(server: &TestServer, accepted: &TestResponse) -> Value {
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.body);
    let location = accepted.headers["location"].to_str().unwrap().to_owned();
    server.get(&format!("{location}?wait=30")).await.ok()
}

#[tokio::test]
async fn custom_commands_run_their_handlers_and_a_runaway_handler_only_fails_its_command() {
    let app = start();
    let server = &app.server;
    let created = post(
        server,
        "/users",
        json!({"id": "ann", "name": "Ann", "status": "pending"}),
    )
    .await;
    assert_eq!(outcome(server, &created).await["status"], "succeeded");

    let approved = post(server, "/users/ann/Approve", json!({"by": "boss"})).await;
    let status = outcome(server, &approved).await;
    assert_eq!(status["status"], "succeeded", "{status}");
    assert_eq!(status["command"], "ApproveUser");
    let position = &status["position"];
    let user = server
        .get(&format!("/users/ann?after={position}"))
        .await
        .ok();
    assert_eq!(user["status"], "approved");
    assert_eq!(user["approvedBy"], "boss");
    assert!(
        user["approvedAt"].as_str().unwrap().ends_with('Z'),
        "{user}"
    );

    let again = post(server, "/users/ann/Approve", json!({"by": "boss"})).await;
    let status = outcome(server, &again).await;
    assert_eq!(status["status"], "rejected");
    assert_eq!(status["error"]["code"], "already_approved");

    // The patched document must fit the schema.
    let broken = post(server, "/users/ann/Break", json!({})).await;
    let status = outcome(server, &broken).await;
    assert_eq!(status["error"]["code"], "schema_violation", "{status}");

    for (command, limit) in [("Spin", "step limit"), ("Hoard", "memory limit")] {
        let runaway = post(server, &format!("/users/ann/{command}"), json!({})).await;
        let status = outcome(server, &runaway).await;
        assert_eq!(status["status"], "failed", "{status}");
        assert!(status.to_string().contains(limit), "{status}");
    }
    // The server goes on: the same command, through POST /update, still runs.
    let status = server
        .send(99, "ApproveUser", json!({"id": "ann", "by": "boss"}))
        .await
        .ok();
    assert_eq!(status["error"]["code"], "already_approved", "{status}");
    let health = server.get("/health").await;
    assert_eq!(health.status, StatusCode::OK);
}
