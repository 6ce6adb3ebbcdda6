//! `POST /admin/replay` and `GET /admin/replay` on a whole server: the replay runs beside
//! live commands and ends `done` with the report `writ replay --report` writes; one at a
//! time (`409`); with `apply`, the server switched onto the new journal with no command
//! refused; scope `admin` required.

use std::time::Duration;

use serde_json::{Value, json};
use writ_app::testing::{Body, Method, Request, StatusCode, TestServer};
use writ_app::{App, Config, Module};

fn app() -> App {
    App::new().module(Module::new::<writ_tickets::Tickets>())
}

/// With the tickets read model, whose queries a switch must rebuild.
fn app_with_read_model() -> App {
    App::new()
        .module(Module::new::<writ_tickets::Tickets>().read_model(writ_tickets::read::read_model()))
}

fn open(id: &str) -> Value {
    json!({"ticketId": id, "title": "Printer on fire", "reporter": "ann", "priority": "high"})
}

/// Opens tickets `t-{i}` (command ids `i + 1`), each to its success.
async fn open_tickets(server: &TestServer, tickets: std::ops::Range<u128>) {
    for i in tickets {
        let status = server
            .send(i + 1, "OpenTicket", open(&format!("t-{i}")))
            .await
            .ok();
        assert_eq!(status["status"], "succeeded");
    }
}

/// Polls `GET /admin/replay` until the replay has ended (a bound, not a timing claim).
async fn ended(server: &TestServer) -> Value {
    for _ in 0..6_000 {
        let status = server.get("/admin/replay").await.ok();
        if status["phase"] == "done" || status["phase"] == "failed" {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the replay did not end within a minute");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_online_replay_runs_beside_commands_and_ends_with_the_report() {
    let mut server = TestServer::start(app);
    let idle = server.get("/admin/replay").await.ok();
    assert_eq!(idle["phase"], "idle");
    open_tickets(&server, 0..50).await;
    let started = server.post("/admin/replay", json!({})).await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.body);
    assert_eq!(started.headers["location"], "/admin/replay");
    assert_eq!(started.body["id"], 1);
    assert_eq!(started.body["apply"], false);
    // Live traffic goes on while it runs.
    open_tickets(&server, 50..60).await;
    let done = ended(&server).await;
    assert_eq!(done["phase"], "done", "{done}");
    assert_eq!(done["id"], 1);
    let report = &done["report"];
    assert_eq!(report["differing"], 0, "{report}");
    assert_eq!(report["source"], "journal");
    assert_eq!(report["journal"], "replay-1/journal");
    assert_eq!(report["applied"], false);
    let replayed = done["replayed"].as_u64().unwrap();
    assert!((50..=60).contains(&replayed), "{done}");
    assert_eq!(report["commands"], replayed);
    assert_eq!(report["same"], replayed);
    assert_eq!(done["liveEnd"], replayed);
    // The next one is refused while that journal, written in full and not applied, is
    // on disk: online replays keep at most one beside the live journal.
    let refused = server.call(Method::POST, "/admin/replay", None).await;
    let problem = refused.problem(StatusCode::CONFLICT, "replay_unapplied");
    assert!(
        problem["detail"].as_str().unwrap().contains("replay-1"),
        "{problem}"
    );
    assert!(!server.state().engine().is_replaying());
    // Once it is deleted (here only its mark of a whole replay, which makes it a
    // directory the next replay writes over), the next one starts and sees every command.
    use writ_log::storage::Storage;
    server
        .storage()
        .remove(std::path::Path::new("replay-1/REPLAYED"))
        .unwrap();
    assert_eq!(server.state().engine().unapplied_replay(), None);
    let second = server.call(Method::POST, "/admin/replay", None).await;
    assert_eq!(second.status, StatusCode::ACCEPTED, "{}", second.body);
    let done = ended(&server).await;
    assert_eq!(done["id"], 2);
    assert_eq!(done["report"]["journal"], "replay-1/journal");
    assert_eq!(done["report"]["commands"], 60);
    // Nothing was switched: after a restart the live journal is the same, whole.
    server.restart(Duration::from_secs(1));
    assert_eq!(
        server.state().engine().journal_dir(),
        std::path::Path::new("journal")
    );
    assert_eq!(server.report().commands, 60);
    let t = server.get("/streams/ticket-t-59").await.ok();
    assert_eq!(t["events"][0]["type"], "TicketOpened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_replay_while_one_runs_is_refused_with_409() {
    let server = TestServer::start(app);
    for i in 0..5u128 {
        server
            .send(i + 1, "OpenTicket", open(&format!("t-{i}")))
            .await
            .ok();
    }
    // A replay held in its first progress report, until the test lets it go.
    let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
    let (held_tx, held_rx) = std::sync::mpsc::channel::<()>();
    let engine = server.state().engine();
    let holder = std::thread::spawn(move || {
        let mut first = true;
        engine
            .replay_online(false, &mut |_| {
                if std::mem::take(&mut first) {
                    held_tx.send(()).unwrap();
                    hold_rx.recv().unwrap();
                }
            })
            .map(|replayed| replayed.report.differing())
    });
    held_rx.recv().unwrap();
    let refused = server.post("/admin/replay", json!({"apply": false})).await;
    let problem = refused.problem(StatusCode::CONFLICT, "replay_running");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("GET /admin/replay"),
        "{problem}"
    );
    // Commands are not held up by a replay.
    let status = server.send(100, "OpenTicket", open("t-live")).await.ok();
    assert_eq!(status["status"], "succeeded");
    hold_tx.send(()).unwrap();
    assert_eq!(holder.join().unwrap().expect("replayed"), 0);
    // The held replay's journal is kept; once it is gone, the next starts.
    server
        .post("/admin/replay", json!({}))
        .await
        .problem(StatusCode::CONFLICT, "replay_unapplied");
    use writ_log::storage::Storage;
    server
        .storage()
        .remove(std::path::Path::new("replay-1/REPLAYED"))
        .unwrap();
    let started = server.post("/admin/replay", json!({})).await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.body);
    let done = ended(&server).await;
    assert_eq!(done["phase"], "done", "{done}");
    assert_eq!(done["report"]["journal"], "replay-1/journal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applied_online_replay_switches_the_server_onto_the_new_journal_refusing_no_command() {
    let server = TestServer::start(app_with_read_model);
    open_tickets(&server, 0..50).await;
    let started = server.post("/admin/replay", json!({"apply": true})).await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.body);
    assert_eq!(started.body["apply"], true);
    // A client that keeps sending all through the replay and the switch: every command
    // is answered with its outcome, none refused (those that met the pause are held and
    // decided by the new engine).
    let stop = std::sync::atomic::AtomicBool::new(false);
    let client = async {
        let mut sent = Vec::new();
        let mut id = 1_000u128;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            id += 1;
            let answer = server
                .send(id, "OpenTicket", open(&format!("live-{id}")))
                .await
                .ok();
            assert_eq!(answer["status"], "succeeded", "{answer}");
            sent.push(id);
        }
        sent
    };
    let watch = async {
        let done = ended(&server).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        done
    };
    let (sent, done) = tokio::join!(client, watch);
    eprintln!(
        "commands sent during the replay and the switch: {}",
        sent.len()
    );
    assert_eq!(done["phase"], "done", "{done}");
    assert_eq!(done["apply"], true);
    let report = &done["report"];
    assert_eq!(report["applied"], true, "{report}");
    assert_eq!(report["journal"], "replay-1/journal");
    assert_eq!(report["differing"], 0, "{report}");
    // The server runs on the new journal now: every command is there, also those sent
    // during the switch, and the read models were rebuilt from it.
    assert_eq!(
        server.state().engine().journal_dir(),
        std::path::Path::new("replay-1/journal")
    );
    for id in &sent {
        let status = server
            .get(&format!("/update/{}", uuid::Uuid::from_u128(*id)))
            .await
            .ok();
        assert_eq!(status["status"], "succeeded", "{status}");
    }
    let stats = server.get("/query/v1/ticketStats").await.ok();
    assert_eq!(stats["total"], 50 + sent.len(), "{stats}");
    let after = server
        .send(5_000_000, "OpenTicket", open("after"))
        .await
        .ok();
    assert_eq!(after["status"], "succeeded");
    let t = server.get("/streams/ticket-t-7").await.ok();
    assert_eq!(t["events"][0]["type"], "TicketOpened");
    // A replay of the new journal starts (the applied one is live, not a leftover).
    assert_eq!(server.state().engine().unapplied_replay(), None);
}

#[tokio::test]
async fn replay_bodies_are_checked() {
    let server = TestServer::start(app);
    server
        .post("/admin/replay", json!({"aply": false}))
        .await
        .problem(StatusCode::BAD_REQUEST, "malformed");
    server
        .post("/admin/replay", json!([1]))
        .await
        .problem(StatusCode::BAD_REQUEST, "malformed");
    let text = Request::builder()
        .method(Method::POST)
        .uri("/admin/replay")
        .header("content-type", "text/plain")
        .body(Body::from("{}"))
        .unwrap();
    server
        .request(text)
        .await
        .problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    // Nothing started.
    assert_eq!(server.get("/admin/replay").await.ok()["phase"], "idle");
    let openapi = server.get("/openapi.json").await.ok();
    let path = &openapi["paths"]["/admin/replay"];
    assert!(path["post"]["responses"]["409"].is_object(), "{path}");
    assert!(path["get"]["responses"]["200"].is_object(), "{path}");
    assert!(openapi["components"]["schemas"]["ReplayStatus"].is_object());
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replay_routes_need_the_admin_scope() {
    let tokens = format!(
        r#"[
        {{"token_sha256": "{}", "name": "ops", "scopes": ["admin"]}},
        {{"token_sha256": "{}", "name": "reader", "scopes": ["queries", "commands"]}}
    ]"#,
        sha256_hex("0ps"),
        sha256_hex("r3ader")
    );
    let server = TestServer::start_with(app, move |config: &mut Config| {
        config.tokens =
            Some(writ_server::access::Tokens::parse(tokens.as_bytes(), "tokens.json").unwrap());
    });
    let call = |method: Method, token: Option<&str>| {
        let mut request = Request::builder().method(method).uri("/admin/replay");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        request.body(Body::empty()).unwrap()
    };
    for method in [Method::GET, Method::POST] {
        server
            .request(call(method.clone(), None))
            .await
            .problem(StatusCode::UNAUTHORIZED, "unauthorized");
        server
            .request(call(method.clone(), Some("wrong")))
            .await
            .problem(StatusCode::UNAUTHORIZED, "unauthorized");
        server
            .request(call(method, Some("r3ader")))
            .await
            .problem(StatusCode::FORBIDDEN, "forbidden");
    }
    let started = server.request(call(Method::POST, Some("0ps"))).await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.body);
    loop {
        let status = server.request(call(Method::GET, Some("0ps"))).await.ok();
        if status["phase"] == "done" {
            assert_eq!(status["report"]["differing"], 0);
            break;
        }
        assert_ne!(status["phase"], "failed", "{status}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
