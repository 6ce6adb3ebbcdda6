//! `GET /ws` over a real socket on 127.0.0.1: backpressure, pings, the idle bound,
//! shutdown, and an online replay's switch.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use uuid::Uuid;
use writ_fixtures::Counters;
use writ_log::storage::SimStorage;
use writ_server::{AppState, ServerOptions, router};

mod support;
use support::{BOUND, small_engine_options};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn serve(options: ServerOptions) -> (SocketAddr, AppState) {
    let engine_options = small_engine_options();
    let (engine, _) =
        support::open_domain::<Counters>(Arc::new(SimStorage::new()), engine_options).unwrap();
    let state = AppState::new(Arc::new(engine), options);
    let app = router(state.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (address, state)
}

async fn connect(address: SocketAddr) -> Socket {
    let (socket, _) = tokio_tungstenite::connect_async(format!("ws://{address}/ws"))
        .await
        .unwrap();
    socket
}

/// The next text frame as JSON, answering pings on the way.
async fn next_answer(socket: &mut Socket) -> Value {
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

fn create(id: Uuid, counter: &str) -> Message {
    Message::text(
        json!({"id": id, "command": "CreateCounter", "payload": {"counterId": counter, "title": "t", "owner": "o"}})
            .to_string(),
    )
}

#[tokio::test]
async fn at_the_in_flight_bound_frames_wait_and_none_is_lost() {
    let (address, _state) = serve(ServerOptions {
        socket_in_flight_max: 1,
        socket_outgoing_max: 1,
        ..ServerOptions::default()
    })
    .await;
    let mut socket = connect(address).await;
    let ids: Vec<Uuid> = (0..50).map(|_| Uuid::new_v4()).collect();
    for (i, id) in ids.iter().enumerate() {
        socket.feed(create(*id, &format!("c-{i}"))).await.unwrap();
    }
    socket.flush().await.unwrap();
    let mut finals = 0;
    while finals < ids.len() {
        let answer = next_answer(&mut socket).await;
        assert_ne!(answer["status"], "invalid", "{answer}");
        if answer["status"] == "succeeded" {
            finals += 1;
        }
    }
}

#[tokio::test]
async fn a_live_socket_is_pinged_and_stays_open() {
    let (address, _state) = serve(ServerOptions {
        socket_ping_interval: Duration::from_millis(20),
        socket_idle_max: Duration::from_secs(60),
        ..ServerOptions::default()
    })
    .await;
    let mut socket = connect(address).await;
    loop {
        let message = tokio::time::timeout(BOUND, socket.next())
            .await
            .expect("a ping comes")
            .unwrap()
            .unwrap();
        if matches!(message, Message::Ping(_)) {
            break;
        }
    }
    let id = Uuid::new_v4();
    socket.send(create(id, "c-1")).await.unwrap();
    assert_eq!(
        next_answer(&mut socket).await,
        json!({"id": id, "status": "accepted"})
    );
}

#[tokio::test]
async fn a_silent_socket_is_closed_after_the_idle_bound() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (address, _state) = serve(ServerOptions {
        socket_ping_interval: Duration::from_millis(20),
        socket_idle_max: Duration::from_millis(50),
        ..ServerOptions::default()
    })
    .await;
    // A raw client, so that nothing answers the server's pings behind the test's back.
    let mut tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let handshake = format!(
        "GET /ws HTTP/1.1\r\nHost: {address}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    tcp.write_all(handshake.as_bytes()).await.unwrap();
    // Everything the server sends until it closes the connection: the 101, pings, a close.
    let mut bytes = Vec::new();
    tokio::time::timeout(BOUND, tcp.read_to_end(&mut bytes))
        .await
        .expect("the server closes the silent socket")
        .unwrap();
    let head_end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head")
        + 4;
    assert!(
        bytes.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&bytes[..head_end])
    );
    // Server frames are unmasked: opcode, a length below 126 for these, then the payload.
    let mut frames = &bytes[head_end..];
    let mut close = None;
    while frames.len() >= 2 {
        let (opcode, len) = (frames[0] & 0x0f, usize::from(frames[1] & 0x7f));
        let payload = &frames[2..2 + len];
        if opcode == 0x8 {
            close = Some(u16::from_be_bytes([payload[0], payload[1]]));
        }
        frames = &frames[2 + len..];
    }
    assert_eq!(close, Some(1008), "closed for policy (idle)");
}

#[tokio::test]
async fn shutdown_answers_what_is_in_flight_then_closes_with_going_away() {
    let (address, state) = serve(ServerOptions::default()).await;
    let mut socket = connect(address).await;
    let id = Uuid::new_v4();
    socket.send(create(id, "c-1")).await.unwrap();
    assert_eq!(next_answer(&mut socket).await["status"], "accepted");
    state.begin_shutdown();
    let mut statuses = Vec::new();
    let close = tokio::time::timeout(BOUND, async {
        while let Some(message) = socket.next().await {
            match message.unwrap() {
                Message::Close(frame) => return frame,
                Message::Text(text) => {
                    statuses.push(serde_json::from_str::<Value>(&text).unwrap()["status"].clone())
                }
                _ => {}
            }
        }
        None
    })
    .await
    .expect("the server closes the socket");
    assert_eq!(close.expect("a close frame").code, CloseCode::Away);
    // The command's final status came before the close (unless it had come already).
    assert!(statuses.iter().all(|s| s == "succeeded"), "{statuses:?}");
}

/// Opens the engine on the journal `CURRENT` names after a switch (no read side here).
struct Reopen;

impl writ_server::Switcher for Reopen {
    fn reopen(
        &self,
        old: &writ_engine::Engine,
        _old_read: Option<&writ_server::ReadSide>,
    ) -> Result<(Arc<writ_engine::Engine>, Option<writ_server::ReadSide>), String> {
        let (engine, _) = old.reopen().map_err(|e| e.to_string())?;
        Ok((Arc::new(engine), None))
    }
}

/// The socket stays open across an online replay's switch: every command sent before,
/// during and after it is answered (none `invalid`), and all are in the new journal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_sends_through_an_online_switch_and_every_command_is_answered() {
    let (engine, _) =
        support::open_domain::<Counters>(Arc::new(SimStorage::new()), small_engine_options())
            .unwrap();
    let state =
        AppState::new(Arc::new(engine), ServerOptions::default()).with_switcher(Arc::new(Reopen));
    let app = router(state.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    {
        let app = app.clone();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    }
    let mut socket = connect(address).await;
    // A journal to replay, then commands in flight, windows of 32, through the switch.
    let mut sent = Vec::new();
    let window = |socket_sent: &mut Vec<Uuid>| {
        let ids: Vec<Uuid> = (0..32).map(|_| Uuid::new_v4()).collect();
        socket_sent.extend(&ids);
        ids
    };
    let answer_window = async |socket: &mut Socket, ids: &[Uuid]| {
        for (i, id) in ids.iter().enumerate() {
            socket
                .feed(create(*id, &format!("c-{id}-{i}")))
                .await
                .unwrap();
        }
        socket.flush().await.unwrap();
        let mut finals = 0;
        while finals < ids.len() {
            let answer = next_answer(socket).await;
            assert_ne!(answer["status"], "invalid", "{answer}");
            if answer["status"] == "succeeded" {
                finals += 1;
            }
        }
    };
    for _ in 0..20 {
        let ids = window(&mut sent);
        answer_window(&mut socket, &ids).await;
    }
    let started = support::call(
        &app,
        support::post_json("/admin/replay", r#"{"apply": true}"#),
    )
    .await;
    assert_eq!(
        started.status,
        axum::http::StatusCode::ACCEPTED,
        "{}",
        started.text()
    );
    let mut windows = 0;
    let done = loop {
        let ids = window(&mut sent);
        answer_window(&mut socket, &ids).await;
        windows += 1;
        let status = support::call(&app, support::get("/admin/replay")).await;
        let status: Value = serde_json::from_slice(&status.body).unwrap();
        if status["phase"] == "done" || status["phase"] == "failed" {
            break status;
        }
        assert!(windows < 100_000, "the replay ended");
    };
    assert_eq!(done["phase"], "done", "{done}");
    assert_eq!(done["report"]["applied"], true, "{done}");
    eprintln!("windows of 32 commands sent during the replay and the switch: {windows}");
    // The socket stayed open, on the new engine, which holds every command.
    let ids = window(&mut sent);
    answer_window(&mut socket, &ids).await;
    let engine = state.engine();
    assert_eq!(
        engine.journal_dir(),
        std::path::Path::new("replay-1/journal")
    );
    for id in &sent {
        assert!(engine.status(*id).unwrap().is_some(), "{id}");
    }
}
