//! End to end: the real `writ serve` on 127.0.0.1, used as a client would.

mod common;

use std::collections::HashMap;
use std::process::Command;

use common::{BOUND, Http, Server, SseReader, TempDir, add_comment, open_ticket};
use futures_util::{SinkExt, StreamExt};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

#[tokio::test]
async fn post_then_long_poll_then_read_the_stream() {
    let dir = TempDir::new("e2e-http");
    let server = Server::start(dir.path());
    let mut http = Http::connect(server.port).await;

    let id = Uuid::new_v4();
    let (status, headers, body) = http
        .call(Method::POST, "/update", Some(&open_ticket(id, "t-1")))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body, json!({"id": id, "status": "accepted"}));
    let location = headers["location"].to_str().unwrap().to_owned();
    assert_eq!(location, format!("/update/{id}"));

    let (status, _, body) = http
        .call(Method::GET, &format!("{location}?wait=30"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "succeeded");
    assert_eq!(body["events"][0]["stream"], "ticket-t-1");

    let comment = Uuid::new_v4();
    let (status, _, _) = http
        .call(
            Method::POST,
            "/update",
            Some(&add_comment(comment, "t-1", "hello")),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, _, body) = http
        .call(Method::GET, &format!("/update/{comment}?wait=30"), None)
        .await;
    assert_eq!(body["status"], "succeeded");

    let (status, _, page) = http.call(Method::GET, "/streams/ticket-t-1", None).await;
    assert_eq!(status, StatusCode::OK);
    let types: Vec<_> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].clone())
        .collect();
    assert_eq!(types, [json!("TicketOpened"), json!("CommentAdded")]);
    assert_eq!(page["events"][1]["data"]["text"], "hello");

    // The same command again: a duplicate with the first one's status.
    let (status, _, body) = http
        .call(Method::POST, "/update", Some(&open_ticket(id, "t-1")))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["duplicate"].clone(), body["status"].clone()),
        (json!(true), json!("succeeded"))
    );

    assert!(server.terminate().success());
}

#[tokio::test]
async fn the_status_stream_ends_with_the_final_status() {
    let dir = TempDir::new("e2e-sse-status");
    let server = Server::start(dir.path());
    let mut http = Http::connect(server.port).await;
    let id = Uuid::new_v4();
    let (status, _, _) = http
        .call(Method::POST, "/update", Some(&open_ticket(id, "t-1")))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let response = http
        .send(
            Method::GET,
            &format!("/update/{id}"),
            &[("accept", "text/event-stream")],
            None,
        )
        .await;
    let mut events = SseReader::new(response);
    let mut statuses = Vec::new();
    while let Some(event) = events.next().await {
        assert_eq!(event.event.as_deref(), Some("status"));
        statuses.push(event.data["status"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        statuses.last().map(String::as_str),
        Some("succeeded"),
        "{statuses:?}"
    );
    assert!(statuses.len() <= 2);
}

#[tokio::test]
async fn the_live_tail_resumes_after_last_event_id() {
    let dir = TempDir::new("e2e-tail");
    let server = Server::start(dir.path());
    let mut tail_connection = Http::connect(server.port).await;
    let mut writer = Http::connect(server.port).await;

    let response = tail_connection
        .send(
            Method::GET,
            "/events?from=1",
            &[("accept", "text/event-stream")],
            None,
        )
        .await;
    let mut tail = SseReader::new(response);
    for (i, body) in [
        open_ticket(Uuid::new_v4(), "t-1"),
        add_comment(Uuid::new_v4(), "t-1", "one"),
        add_comment(Uuid::new_v4(), "t-1", "two"),
    ]
    .iter()
    .enumerate()
    {
        let (status, _, _) = writer.call(Method::POST, "/update", Some(body)).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let event = tail.next().await.expect("the tail stays open");
        let position = i as u64 + 1;
        assert_eq!(event.id.as_deref(), Some(position.to_string().as_str()));
        assert_eq!(event.data["position"], position);
    }
    drop(tail);

    // Reconnect as an EventSource would: Last-Event-ID wins over `from`.
    let mut reconnect = Http::connect(server.port).await;
    let response = reconnect
        .send(
            Method::GET,
            "/events?from=1",
            &[("accept", "text/event-stream"), ("last-event-id", "2")],
            None,
        )
        .await;
    let mut tail = SseReader::new(response);
    let event = tail.next().await.unwrap();
    assert_eq!(event.id.as_deref(), Some("3"));
    assert_eq!(event.data["data"]["text"], "two");
    let (status, _, _) = writer
        .call(
            Method::POST,
            "/update",
            Some(&add_comment(Uuid::new_v4(), "t-1", "three")),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let event = tail.next().await.unwrap();
    assert_eq!(event.id.as_deref(), Some("4"));

    // An open tail does not hold shutdown back.
    assert!(server.terminate().success());
}

/// Reads WebSocket answers until `done` says enough, bounded.
async fn read_answers<S>(socket: &mut S, mut done: impl FnMut(&Value) -> bool)
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let message = tokio::time::timeout(BOUND, socket.next())
            .await
            .expect("the server answers")
            .expect("the socket stays open")
            .unwrap();
        let Message::Text(text) = message else {
            continue;
        };
        if done(&serde_json::from_str(&text).unwrap()) {
            return;
        }
    }
}

#[tokio::test]
async fn a_websocket_carries_many_commands_and_survives_bad_frames() {
    let dir = TempDir::new("e2e-ws");
    let server = Server::start(dir.path());
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/ws", server.port))
            .await
            .expect("the upgrade succeeds");

    // Open the ticket first, then many comments in flight at once.
    let open = Uuid::new_v4();
    socket
        .send(Message::text(open_ticket(open, "t-ws")))
        .await
        .unwrap();
    read_answers(&mut socket, |answer| {
        answer["id"] == json!(open) && answer["status"] == "succeeded"
    })
    .await;

    let comments: Vec<Uuid> = (0..300).map(|_| Uuid::new_v4()).collect();
    for (i, id) in comments.iter().enumerate() {
        socket
            .feed(Message::text(add_comment(
                *id,
                "t-ws",
                &format!("comment {i}"),
            )))
            .await
            .unwrap();
    }
    // Bad frames in the middle: each answered, the socket stays open.
    socket.feed(Message::text("{not json")).await.unwrap();
    socket.feed(Message::binary(vec![1, 2, 3])).await.unwrap();
    socket
        .feed(Message::text(add_comment(
            open,
            "t-ws",
            "reuses the open's id",
        )))
        .await
        .unwrap();
    socket
        .feed(Message::text(
            json!({"id": Uuid::new_v4(), "command": "Nope", "payload": {}}).to_string(),
        ))
        .await
        .unwrap();
    socket.flush().await.unwrap();

    let mut seen: HashMap<Uuid, Vec<String>> = HashMap::new();
    let mut invalid = Vec::new();
    read_answers(&mut socket, |answer| {
        if answer["status"] == "invalid" {
            invalid.push(answer["error"]["code"].as_str().unwrap().to_owned());
        } else {
            let id: Uuid = serde_json::from_value(answer["id"].clone()).unwrap();
            seen.entry(id)
                .or_default()
                .push(answer["status"].as_str().unwrap().to_owned());
        }
        invalid.len() == 4 && seen.len() == comments.len() && seen.values().all(|s| s.len() == 2)
    })
    .await;
    invalid.sort();
    assert_eq!(
        invalid,
        ["conflict", "malformed", "malformed", "unknown_command"]
    );
    for id in &comments {
        assert_eq!(seen[id], ["accepted", "succeeded"], "{id}");
    }

    // A duplicate: the first command's status, marked.
    socket
        .send(Message::text(open_ticket(open, "t-ws")))
        .await
        .unwrap();
    read_answers(&mut socket, |answer| {
        assert_eq!(answer["id"], json!(open));
        assert_eq!(answer["duplicate"], true);
        assert_eq!(answer["status"], "succeeded");
        true
    })
    .await;

    let mut http = Http::connect(server.port).await;
    let (_, _, page) = http
        .call(Method::GET, "/streams/ticket-t-ws?limit=1000", None)
        .await;
    assert_eq!(page["events"].as_array().unwrap().len(), 1 + comments.len());

    // Shutdown closes the socket cleanly and the process exits 0.
    let exit = tokio::task::spawn_blocking(move || server.terminate());
    let closed = tokio::time::timeout(BOUND, async {
        while let Some(message) = socket.next().await {
            if matches!(message, Ok(Message::Close(_)) | Err(_)) {
                break;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server closes the socket");
    assert!(exit.await.unwrap().success());
}

#[tokio::test]
async fn a_restart_keeps_tickets_outcomes_and_the_dedupe_window() {
    let dir = TempDir::new("e2e-restart");
    let open = Uuid::new_v4();
    let rejected = Uuid::new_v4();
    let comment = Uuid::new_v4();
    {
        let server = Server::start(dir.path());
        let mut http = Http::connect(server.port).await;
        for body in [
            open_ticket(open, "t-1"),
            add_comment(rejected, "t-missing", "nobody here"),
            add_comment(comment, "t-1", "before the restart"),
        ] {
            let (status, _, _) = http.call(Method::POST, "/update", Some(&body)).await;
            assert_eq!(status, StatusCode::ACCEPTED);
        }
        // SIGTERM right away: what was accepted is finished and synced before the exit.
        let status = tokio::task::spawn_blocking(move || server.terminate())
            .await
            .unwrap();
        assert!(status.success(), "{status:?}");
    }

    let server = Server::start(dir.path());
    let mut http = Http::connect(server.port).await;
    let (status, _, body) = http
        .call(Method::GET, &format!("/update/{open}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "succeeded");
    let (_, _, body) = http
        .call(Method::GET, &format!("/update/{rejected}?wait=30"), None)
        .await;
    assert_eq!(body["status"], "rejected");
    assert_eq!(body["error"]["code"], "ticket_not_found");
    let (_, _, page) = http.call(Method::GET, "/streams/ticket-t-1", None).await;
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    assert_eq!(page["events"][1]["data"]["text"], "before the restart");

    // Old ids are still deduplicated: same command → duplicate, other payload → 409.
    let (status, _, body) = http
        .call(
            Method::POST,
            "/update",
            Some(&add_comment(comment, "t-1", "before the restart")),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["duplicate"], true);
    let (status, headers, body) = http
        .call(
            Method::POST,
            "/update",
            Some(&add_comment(comment, "t-1", "changed")),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(body["status"], 409);
    let (_, _, page) = http.call(Method::GET, "/events", None).await;
    assert_eq!(
        page["events"].as_array().unwrap().len(),
        2,
        "nothing ran twice"
    );
    assert_eq!(page["next"], 3);

    assert!(
        tokio::task::spawn_blocking(move || server.terminate())
            .await
            .unwrap()
            .success()
    );
}

#[tokio::test]
async fn queries_read_the_writes_named_and_as_code_and_again_after_a_restart() {
    let dir = TempDir::new("e2e-queries");
    let open = Uuid::new_v4();
    let comment = Uuid::new_v4();
    for round in 0..2 {
        let server = Server::start(dir.path());
        let mut http = Http::connect(server.port).await;
        if round == 0 {
            for body in [
                open_ticket(open, "t-1"),
                add_comment(comment, "t-1", "smoke rising"),
            ] {
                let (status, _, _) = http.call(Method::POST, "/update", Some(&body)).await;
                assert_eq!(status, StatusCode::ACCEPTED);
            }
        }
        // The final status carries the position to pass as `after`.
        let (_, _, status) = http
            .call(Method::GET, &format!("/update/{comment}?wait=30"), None)
            .await;
        let position = status["position"].as_u64().unwrap();
        let (status, headers, ticket) = http
            .call(
                Method::GET,
                &format!("/query/v1/getTicket?id=t-1&after={position}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{ticket}");
        assert!(
            headers["writ-position"]
                .to_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
                >= position
        );
        assert_eq!(ticket["comments"][0]["text"], "smoke rising");
        let (status, _, found) = http
            .call(Method::GET, "/query/v1/searchTickets?text=smoke", None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(found[0]["id"], "t-1");
        let code = json!({"code": "getTicket(args.id).commentCount", "args": {"id": "t-1"}});
        let (status, _, answer) = http
            .call(
                Method::POST,
                &format!("/query/v2?after={position}"),
                Some(&code.to_string()),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["result"], 1);
        assert!(answer["position"].as_u64().unwrap() >= position);
        let code = json!({"code": "for (;;) {}"});
        let (status, headers, problem) = http
            .call(Method::POST, "/query/v2", Some(&code.to_string()))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(headers["content-type"], "application/problem+json");
        assert_eq!(problem["type"], "https://writ.dev/problems/time_limit");
        assert!(
            tokio::task::spawn_blocking(move || server.terminate())
                .await
                .unwrap()
                .success()
        );
    }
}

#[tokio::test]
async fn sigterm_with_an_idle_keep_alive_connection_exits_zero() {
    let dir = TempDir::new("e2e-sigterm");
    let server = Server::start(dir.path());
    let mut http = Http::connect(server.port).await;
    let (status, _, health) = http.call(Method::GET, "/health", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["status"], "ok");
    // The connection stays open and idle while the server shuts down: it does not hold
    // the exit back.
    assert!(server.terminate().success());
    drop(http);
}

#[test]
fn unknown_domains_and_bad_windows_are_refused_with_a_readable_error() {
    let dir = TempDir::new("e2e-args");
    let output = Command::new(env!("CARGO_BIN_EXE_writ"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--domain",
            "shipping",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown domain") && stderr.contains("tickets, orders"),
        "{stderr}"
    );

    let output = Command::new(env!("CARGO_BIN_EXE_writ"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--dedupe-window",
            "soon",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("90s, 15m, 24h or 1d"), "{stderr}");

    // Each bad value is refused with a message naming the flag and what is wrong.
    for (flag, value, says) in [
        ("--snapshot-time-share", "0", "above 0 and at most 1"),
        ("--snapshot-time-share", "1.5", "above 0 and at most 1"),
        (
            "--snapshot-time-share",
            "five percent",
            "above 0 and at most 1",
        ),
        ("--writer-nice", "20", "invalid value"),
        ("--writer-nice", "-1", "invalid value"),
        ("--writer-nice", "ten", "invalid value"),
        ("--read-side-sched", "idle", "invalid value"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_writ"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            // `=`: a separate `-1` would read as a flag of its own.
            .arg(format!("{flag}={value}"))
            .output()
            .unwrap();
        assert!(!output.status.success(), "{flag} {value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(flag) && stderr.contains(says),
            "{flag} {value}: {stderr}"
        );
    }

    // An unknown projection version is refused before the store is opened.
    let fresh = dir.path().join("never-created");
    let output = Command::new(env!("CARGO_BIN_EXE_writ"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--projection-version",
            "3",
            "--data-dir",
        ])
        .arg(&fresh)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("versions 1 to 2, not 3"), "{stderr}");
    assert!(!fresh.exists(), "nothing was created");
}

/// `GET /projections` says what each read model did with its snapshots: the first run
/// writes one (every event is due with `--snapshot-every-events 1`), the next start loads
/// it and replays only what came after.
#[tokio::test]
async fn projections_show_the_snapshot_written_and_the_one_loaded_at_start() {
    let dir = TempDir::new("e2e-snapshots");
    let flags = ["--snapshot-every-events", "1"];
    let server = Server::start_with(dir.path(), &flags);
    let mut http = Http::connect(server.port).await;
    let open = Uuid::new_v4();
    let (status, _, _) = http
        .call(Method::POST, "/update", Some(&open_ticket(open, "t-1")))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, _, outcome) = http
        .call(Method::GET, &format!("/update/{open}?wait=30"), None)
        .await;
    let position = outcome["position"].as_u64().expect("a position");
    // The snapshot thread writes in the background: wait until it says so.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let written = loop {
        let projections = http.get_ok("/projections").await;
        let tickets = projections["projections"]
            .as_array()
            .and_then(|all| all.iter().find(|p| p["name"] == "tickets"))
            .cloned()
            .expect("the tickets read model is listed");
        let snapshots = &tickets["snapshots"];
        assert_eq!(snapshots["failures"], 0, "{tickets}");
        assert!(
            snapshots.get("loaded").is_none(),
            "a fresh store loads none: {tickets}"
        );
        if snapshots["lastWritten"].as_u64() >= Some(position) {
            assert!(snapshots["written"].as_u64() >= Some(1), "{tickets}");
            assert!(snapshots["lastBytes"].as_u64() > Some(0), "{tickets}");
            break snapshots["lastWritten"].as_u64().expect("checked");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no snapshot written at {position} within 30 s: {tickets}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(
        tokio::task::spawn_blocking(move || server.terminate())
            .await
            .unwrap()
            .success()
    );

    let server = Server::start_with(dir.path(), &flags);
    let mut http = Http::connect(server.port).await;
    let projections = http.get_ok("/projections").await;
    let tickets = projections["projections"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["name"] == "tickets"))
        .cloned()
        .expect("the tickets read model is listed");
    assert_eq!(tickets["snapshots"]["loaded"], written, "{tickets}");
    assert_eq!(tickets["snapshots"]["ignored"], json!([]), "{tickets}");
    assert!(
        tokio::task::spawn_blocking(move || server.terminate())
            .await
            .unwrap()
            .success()
    );
}

/// The allocator does not ask for transparent huge pages (mimalloc's `no_thp`, in the root
/// `Cargo.toml`): with the kernel's usual `madvise` setting, a server that has started and
/// served a few hundred commands holds no anonymous huge page. (Asked for, mimalloc's
/// arenas held 18 MiB of them before the first request, and every 4 KiB range it gave back
/// to the system and touched again faulted in a zeroed 2 MiB page.)
#[tokio::test]
async fn the_server_holds_no_transparent_huge_page_the_allocator_asked_for() {
    let setting =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    if !setting.contains("[madvise]") {
        eprintln!(
            "skipped: transparent huge pages are not set to `madvise` here ({}), so whether \
             the allocator asks for them does not show in the process's memory",
            setting.trim()
        );
        return;
    }
    let dir = TempDir::new("e2e-no-thp");
    let server = Server::start(dir.path());
    let mut http = Http::connect(server.port).await;
    for n in 0..300 {
        let (status, _, body) = http
            .call(
                Method::POST,
                "/update",
                Some(&open_ticket(Uuid::new_v4(), &format!("t-{n}"))),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    let rollup = std::fs::read_to_string(format!("/proc/{}/smaps_rollup", server.pid()))
        .expect("the server's memory map is readable");
    let huge_kib: u64 = rollup
        .lines()
        .find_map(|line| line.strip_prefix("AnonHugePages:"))
        .expect("smaps_rollup has an AnonHugePages line")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .expect("a number of kB");
    assert_eq!(huge_kib, 0, "anonymous huge pages in the server:\n{rollup}");
}

/// With `--http-threads N` the server runs N HTTP worker threads of its own; connections
/// spread over them (each new one to the worker with the fewest open, as the gauge by
/// worker shows), and each serves commands, their outcomes and a WebSocket; the shutdown
/// drains them all.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn http_threads_of_their_own_serve_connections_spread_over_them() {
    let dir = TempDir::new("e2e-http-threads");
    let server = Server::start_with(dir.path(), &["--http-threads", "3"]);
    let mut connections = Vec::new();
    for i in 0..4 {
        let mut http = Http::connect(server.port).await;
        http.ok(
            "OpenTicket",
            json!({"ticketId": format!("t-{i}"), "title": "On a worker", "reporter": "ann"}),
        )
        .await;
        connections.push(http);
    }
    let workers = thread_nices(server.pid())
        .into_iter()
        .filter(|(name, _)| name == "writ-http")
        .count();
    assert_eq!(workers, 3, "one thread per worker, no shared runtime's");

    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/ws", server.port))
            .await
            .expect("the upgrade succeeds");
    let id = Uuid::new_v4();
    socket
        .send(Message::text(add_comment(id, "t-0", "over a socket")))
        .await
        .unwrap();
    read_answers(&mut socket, |answer| {
        answer["id"] == json!(id) && answer["status"] == "succeeded"
    })
    .await;

    // The four connections, and the one asking: two, two and one.
    let mut metrics = Http::connect(server.port).await;
    let text = metrics.metrics_text().await;
    let mut open: Vec<u64> = text
        .lines()
        .filter(|l| l.starts_with("writ_http_worker_connections_open{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    open.sort_unstable();
    assert_eq!(open, [1, 2, 2], "{text}");
    assert!(
        text.contains("# HELP writ_http_worker_connections_open "),
        "{text}"
    );

    for http in &mut connections {
        let page = http.get_ok("/streams/ticket-t-0").await;
        assert_eq!(page["events"].as_array().unwrap().len(), 2, "{page}");
    }
    drop(socket);
    assert!(server.terminate().success());
}

/// With one HTTP worker, several clients' requests are read one after the other, and each
/// finds none other in progress (the others wait unread). They must still be queued for
/// the writer, to be synced in batches: taken for a lone client's, each was decided and
/// synced on the worker by itself, holding the others unread for the whole sync (a sync
/// per command, a quarter of the rate).
#[tokio::test]
async fn one_http_worker_serving_several_clients_queues_their_commands() {
    const CLIENTS: usize = 8;
    const EACH: usize = 25;
    let dir = TempDir::new("e2e-one-worker");
    let server = Server::start_with(dir.path(), &["--http-threads", "1"]);
    let clients = (0..CLIENTS).map(|client| {
        let port = server.port;
        async move {
            let mut http = Http::connect(port).await;
            let ticket = format!("t-{client}");
            for n in 0..EACH {
                let body = if n == 0 {
                    open_ticket(Uuid::new_v4(), &ticket)
                } else {
                    add_comment(Uuid::new_v4(), &ticket, "one of many")
                };
                let (status, _, answer) = http
                    .call(Method::POST, "/update?wait=10", Some(&body))
                    .await;
                assert_eq!(status, StatusCode::OK, "{answer}");
                assert_eq!(answer["status"], "succeeded", "{answer}");
            }
        }
    });
    futures_util::future::join_all(clients).await;

    let mut http = Http::connect(server.port).await;
    let text = http.metrics_text().await;
    let decided_on_submit: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("writ_commands_decided_on_submit_total "))
        .expect("the counter is exported")
        .parse()
        .unwrap();
    assert!(
        decided_on_submit < (CLIENTS * EACH / 2) as u64,
        "{decided_on_submit} of {} commands decided each on its own request",
        CLIENTS * EACH
    );
    for client in 0..CLIENTS {
        let page = http.get_ok(&format!("/streams/ticket-t-{client}")).await;
        assert_eq!(page["events"].as_array().unwrap().len(), EACH, "{page}");
    }
    assert!(server.terminate().success());
}

/// Field `field` (numbered from 1) of a `/proc/.../stat` line, as a number: the name in
/// field 2 may hold spaces and parentheses, so fields are counted after its last `)`.
#[cfg(target_os = "linux")]
fn field_in_stat(stat: &str, field: usize) -> i32 {
    let (_, rest) = stat.rsplit_once(") ").expect("a stat line");
    // `rest` starts at field 3.
    let value = rest.split(' ').nth(field - 3).expect("the field");
    value.parse().expect("a number")
}

/// The nice value in a `/proc/.../stat` line (field 19).
#[cfg(target_os = "linux")]
fn nice_in_stat(stat: &str) -> i32 {
    field_in_stat(stat, 19)
}

/// Each thread of process `pid`, by name (`/proc/PID/task/*/comm`), with `of` its `stat`
/// line.
#[cfg(target_os = "linux")]
fn threads_with(pid: u32, of: impl Fn(&str) -> i32) -> Vec<(String, i32)> {
    let mut threads = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("the server's threads") {
        let path = task.unwrap().path();
        let (Ok(name), Ok(stat)) = (
            std::fs::read_to_string(path.join("comm")),
            std::fs::read_to_string(path.join("stat")),
        ) else {
            continue; // a thread that ended meanwhile
        };
        threads.push((name.trim_end().to_owned(), of(&stat)));
    }
    threads
}

/// A server started with `flags` on `dir` that has answered a command, so that every
/// thread has started and set its own priority and policy (or is about to).
#[cfg(target_os = "linux")]
async fn started_with_a_command(dir: &TempDir, flags: &[&str]) -> Server {
    let server = Server::start_with(dir.path(), flags);
    let mut http = Http::connect(server.port).await;
    http.ok(
        "OpenTicket",
        json!({"ticketId": "t", "title": "Printer on fire", "reporter": "ann", "priority": "urgent"}),
    )
    .await;
    server
}

/// The values of the threads named `name` among `threads` (as [`threads_with`] gives them).
#[cfg(target_os = "linux")]
fn named(threads: &[(String, i32)], name: &str) -> Vec<i32> {
    threads
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, value)| *value)
        .collect()
}

/// Each thread of process `pid`, by name, with its nice value.
#[cfg(target_os = "linux")]
fn thread_nices(pid: u32) -> Vec<(String, i32)> {
    threads_with(pid, nice_in_stat)
}

/// The writer runs `--writer-nice` levels below the rest of the server (10 by default), the
/// checkpoint thread at the lowest priority, and every other thread (the HTTP workers, the
/// syncer, and any thread the writer starts) at the server's own.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_writer_runs_below_the_http_workers_by_the_nice_levels_asked() {
    for (flags, levels) in [
        (&[][..], 10),
        (&["--writer-nice", "3"][..], 3),
        (&["--writer-nice", "0"][..], 0),
    ] {
        let dir = TempDir::new("e2e-writer-nice");
        let server = started_with_a_command(&dir, flags).await;
        let base =
            nice_in_stat(&std::fs::read_to_string(format!("/proc/{}/stat", server.pid())).unwrap());
        let writer_nice = (base + levels).min(19);
        // Each thread lowers itself as it starts, and the command may have been decided
        // on an HTTP worker before the writer thread first ran: wait for them (bounded).
        let deadline = std::time::Instant::now() + BOUND;
        let threads = loop {
            let now = thread_nices(server.pid());
            if named(&now, "writ-writer") == [writer_nice] && named(&now, "writ-checkpoint") == [19]
                || std::time::Instant::now() > deadline
            {
                break now;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert_eq!(named(&threads, "writ-writer"), [writer_nice], "{flags:?}");
        let workers = named(&threads, "writ-http");
        assert!(
            !workers.is_empty() && workers.iter().all(|&n| n == base),
            "{workers:?}"
        );
        assert_eq!(named(&threads, "writ-syncer"), [base], "{flags:?}");
        assert_eq!(named(&threads, "writ-checkpoint"), [19], "{flags:?}");
        // No other thread inherited the writer's priority (a thread inherits its
        // creator's nice value) or lowered itself.
        let others: Vec<_> = threads
            .iter()
            .filter(|(name, _)| name != "writ-writer" && name != "writ-checkpoint")
            .collect();
        assert!(
            others.iter().all(|(_, nice)| *nice == base),
            "{flags:?}: {others:?}"
        );
    }
}

/// The read models' threads run under `SCHED_BATCH` (policy 3 in `stat`'s field 41) by
/// default and under the server's own policy (0, `SCHED_OTHER`) with `--read-side-sched
/// normal`; no other thread changes its policy.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_read_sides_threads_run_under_the_batch_policy_unless_told_otherwise() {
    const OTHER: i32 = 0;
    const BATCH: i32 = 3;
    for (flags, read_side) in [
        (&[][..], BATCH),
        (&["--read-side-sched", "batch"][..], BATCH),
        (&["--read-side-sched", "normal"][..], OTHER),
    ] {
        let dir = TempDir::new("e2e-read-side-sched");
        let server = started_with_a_command(&dir, flags).await;
        let policies = |name: &str| {
            named(
                &threads_with(server.pid(), |stat| field_in_stat(stat, 41)),
                name,
            )
        };
        // Each thread sets its policy as it starts: wait for them (bounded).
        let deadline = std::time::Instant::now() + BOUND;
        while (policies("writ-read") != [read_side] || policies("writ-apply") != [read_side])
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(policies("writ-read"), [read_side], "{flags:?}");
        assert_eq!(policies("writ-apply"), [read_side], "{flags:?}");
        let others: Vec<_> = threads_with(server.pid(), |stat| field_in_stat(stat, 41))
            .into_iter()
            .filter(|(name, _)| name != "writ-read" && name != "writ-apply")
            .collect();
        assert!(
            !others.is_empty() && others.iter().all(|(_, policy)| *policy == OTHER),
            "{flags:?}: {others:?}"
        );
        assert!(server.terminate().success());
    }
}
