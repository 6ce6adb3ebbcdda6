//! End to end: slow and silent clients against the real `writ serve`, with short deadlines
//! (`--head-timeout`, `--body-timeout`, `--idle-timeout`) so that the tests wait little.
//! What is asserted is what happens, never how long it took; every wait is bounded by
//! `BOUND`.

mod common;

use std::time::Duration;

use common::{BOUND, Http, Server, SseReader, TempDir, open_ticket};
use futures_util::{SinkExt, StreamExt};
use hyper::{Method, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

/// Short deadlines: a test that waits past them sees what they do.
const SHORT: [&str; 6] = [
    "--head-timeout",
    "300ms",
    "--body-timeout",
    "300ms",
    "--idle-timeout",
    "300ms",
];

/// Longer than any of the short deadlines, with room for a loaded machine.
const PAST_DEADLINES: Duration = Duration::from_millis(1_500);

async fn connect(port: u16) -> TcpStream {
    tokio::time::timeout(BOUND, TcpStream::connect(("127.0.0.1", port)))
        .await
        .unwrap()
        .unwrap()
}

/// Reads until the server closes the connection; what it sent before. Panics if it is
/// still open after `BOUND`.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(BOUND, stream.read(&mut buf))
            .await
            .expect("the server closes the connection");
        match read {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&received).into_owned(),
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    }
}

/// The number after `name{labels} ` in the Prometheus text, 0 when absent.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn closed_total(port: u16, reason: &str) -> f64 {
    metric(
        &metrics_text(port).await,
        &format!("writ_http_connections_closed_total{{reason=\"{reason}\"}}"),
    )
}

#[tokio::test]
async fn half_open_and_silent_connections_are_closed_after_the_head_deadline() {
    let dir = TempDir::new("edge-head");
    let server = Server::start_with(dir.path(), &SHORT);
    let mut silent = connect(server.port).await;
    let mut half_open = connect(server.port).await;
    half_open
        .write_all(b"POST /update HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
        .await
        .unwrap();
    // Closed without an answer: no request was read.
    assert_eq!(read_to_close(&mut half_open).await, "");
    assert_eq!(read_to_close(&mut silent).await, "");
    assert!(closed_total(server.port, "head_timeout").await >= 2.0);

    // A head that trickles in a byte at a time, past the deadline, is cut too.
    let mut trickled = connect(server.port).await;
    let head = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    let mut cut = false;
    for byte in head {
        if trickled.write_all(&[*byte]).await.is_err() {
            cut = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        cut || !read_to_close(&mut trickled).await.contains("200 OK"),
        "a head sent over 4 s is not answered"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_deadline() {
    let dir = TempDir::new("edge-idle");
    let server = Server::start_with(dir.path(), &SHORT);
    let mut stream = connect(server.port).await;
    let request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    stream.write_all(request).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(BOUND, stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200 OK"));
    // Then nothing: the server closes it.
    read_to_close(&mut stream).await;
    assert!(closed_total(server.port, "idle").await >= 1.0);

    // A client that keeps sending within the deadline keeps its connection.
    let mut http = Http::connect(server.port).await;
    for _ in 0..4 {
        let (status, _, _) = http.call(Method::GET, "/health", None).await;
        assert_eq!(status, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_trickled_body_gets_408_and_holds_no_request_place() {
    let dir = TempDir::new("edge-body");
    let flags = [
        "--requests-max",
        "1",
        "--body-timeout",
        "2s",
        "--head-timeout",
        "10s",
    ];
    let server = Server::start_with(dir.path(), &flags);
    let mut trickler = connect(server.port).await;
    trickler
        .write_all(
            b"POST /update HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 300\r\n\r\n{",
        )
        .await
        .unwrap();
    let trickling = tokio::spawn(async move {
        // A byte every 100 ms: 300 bytes would take 30 s.
        for _ in 0..300 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if trickler.write_all(b" ").await.is_err() {
                break;
            }
        }
        trickler
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The one request place is free for a whole request meanwhile.
    let mut http = Http::connect(server.port).await;
    let (status, _, answer) = http
        .call(
            Method::POST,
            "/update",
            Some(&open_ticket(Uuid::new_v4(), "t-1")),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert!(
        !trickling.is_finished(),
        "the trickled body is still on its way"
    );

    let mut trickler = trickling.await.unwrap();
    let answer = read_to_close(&mut trickler).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
    assert!(closed_total(server.port, "body_timeout").await >= 1.0);
}

#[tokio::test]
async fn streams_and_sockets_outlive_the_short_deadlines() {
    let dir = TempDir::new("edge-streams");
    let server = Server::start_with(dir.path(), &SHORT);

    // A live tail, a long poll and a WebSocket, all quiet past every deadline.
    let mut tail_connection = Http::connect(server.port).await;
    let response = tail_connection
        .send(
            Method::GET,
            "/events?from=1",
            &[("accept", "text/event-stream")],
            None,
        )
        .await;
    let mut tail = SseReader::new(response);
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/ws", server.port))
            .await
            .unwrap();
    let mut poller = Http::connect(server.port).await;
    let poll = tokio::spawn(async move {
        // Waits for position 1, which the socket's command writes later.
        poller
            .call(Method::GET, "/query/v1/getTicket?id=t-1&after=1", None)
            .await
    });
    tokio::time::sleep(PAST_DEADLINES).await;

    // The socket still carries commands.
    socket
        .send(Message::text(open_ticket(Uuid::new_v4(), "t-1")))
        .await
        .unwrap();
    loop {
        let message = tokio::time::timeout(BOUND, socket.next())
            .await
            .expect("the socket answers")
            .expect("the socket stays open")
            .unwrap();
        if let Message::Text(text) = message {
            let answer: Value = serde_json::from_str(&text).unwrap();
            if answer["status"] == "succeeded" {
                break;
            }
        }
    }
    // The tail sees the event.
    let event = tail.next().await.expect("the tail stays open");
    assert_eq!(event.data["type"], "TicketOpened");
    // The waiting query was answered, not cut.
    let (status, _, ticket) = tokio::time::timeout(BOUND, poll).await.unwrap().unwrap();
    assert_eq!(status, StatusCode::OK, "{ticket}");
}

#[tokio::test]
async fn connections_beyond_the_per_address_bound_are_closed() {
    let dir = TempDir::new("edge-address");
    let server = Server::start_with(dir.path(), &["--connections-per-address-max", "2"]);
    let mut first = Http::connect(server.port).await;
    let mut second = Http::connect(server.port).await;
    let (status, _, _) = first.call(Method::GET, "/health", None).await;
    assert_eq!(status, StatusCode::OK);
    let mut third = connect(server.port).await;
    let _ = third
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await;
    assert_eq!(read_to_close(&mut third).await, "");
    let (status, _, _) = second.call(Method::GET, "/health", None).await;
    assert_eq!(status, StatusCode::OK);
    drop(first);
    // Its place comes back (the server sees the close a moment later).
    let mut answered = false;
    for _ in 0..100 {
        let mut again = connect(server.port).await;
        let _ = again
            .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await;
        if read_to_close(&mut again).await.starts_with("HTTP/1.1 200") {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(answered, "a place is given back when its connection closes");
}

#[tokio::test]
async fn bodies_on_their_way_share_a_bounded_room_and_beyond_it_get_503_at_once() {
    let dir = TempDir::new("edge-reading");
    // Room for two 1 MiB bodies on their way, and no more.
    let flags = [
        "--body-reading-bytes-max",
        "2097152",
        "--body-timeout",
        "2s",
        "--head-timeout",
        "10s",
    ];
    let server = Server::start_with(dir.path(), &flags);
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut stream = connect(server.port).await;
        stream
            .write_all(
                b"POST /update HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n{",
            )
            .await
            .unwrap();
        slow.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A whole small command finds no room while both are on their way: 503 at once, with
    // Retry-After, and it is not executed.
    let id = Uuid::new_v4();
    let mut http = Http::connect(server.port).await;
    let (status, headers, answer) = http
        .call(Method::POST, "/update", Some(&open_ticket(id, "t-1")))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert!(headers.contains_key("retry-after"), "{headers:?}");
    let text = metrics_text(server.port).await;
    assert_eq!(
        metric(&text, "writ_http_bodies_refused_total"),
        1.0,
        "{text}"
    );
    assert!(
        metric(&text, "writ_http_body_reading_bytes") >= 2_097_152.0,
        "{text}"
    );

    // Once the slow bodies are cut (408), their room is free again.
    for mut stream in slow {
        let answer = read_to_close(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    let mut http = Http::connect(server.port).await;
    let (status, _, answer) = http
        .call(Method::POST, "/update", Some(&open_ticket(id, "t-1")))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(
        metric(
            &metrics_text(server.port).await,
            "writ_http_body_reading_bytes"
        ),
        0.0
    );
}

/// `GET /metrics` on a connection of its own.
async fn metrics_text(port: u16) -> String {
    Http::connect(port).await.metrics_text().await
}
