//! End to end: `writ serve`'s access flags. An open server refuses to listen beyond
//! loopback, a bad tokens file stops the start with a message naming it, and with
//! `--tls-cert`/`--tls-key` the same port speaks HTTPS and WSS (a rustls client that trusts
//! only the test's self-signed certificate).

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use common::{BOUND, Server, TempDir};
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use uuid::Uuid;

const TOKEN: &str = "e2e-writer-and-reader";

/// Runs `writ serve ARGS` to its end (it must end by itself: a refused start).
fn refused_start(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_writ"))
        .arg("serve")
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("WRIT_LISTEN")
        .env_remove("WRIT_TOKENS")
        .env_remove("WRIT_INSECURE_OPEN")
        .env("LOG_LEVEL", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let deadline = std::time::Instant::now() + BOUND;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("writ serve {args:?} did not stop by itself");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn write_tokens(dir: &Path) -> String {
    let digest: String = Sha256::digest(TOKEN.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let file = dir.join("tokens.json");
    let entries =
        json!([{"token_sha256": digest, "name": "e2e", "scopes": ["commands", "queries"]}]);
    std::fs::write(&file, entries.to_string()).unwrap();
    file.to_str().unwrap().to_owned()
}

#[test]
fn an_open_server_refuses_to_listen_beyond_loopback() {
    let dir = TempDir::new("e2e-open-beyond-loopback");
    let data = dir.path().join("data");
    let output = refused_start(&[
        "--listen",
        "0.0.0.0:0",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0") && stderr.contains("without --tokens"),
        "{stderr}"
    );
    assert!(stderr.contains("--insecure-open"), "{stderr}");
    assert!(!data.exists(), "nothing is created before the refusal");
}

#[test]
fn an_open_server_beyond_loopback_serves_with_insecure_open() {
    let dir = TempDir::new("e2e-insecure-open");
    // `Server` listens on 127.0.0.1:0; the later --listen wins only if given once, so this
    // one runs the binary itself.
    let mut child = Command::new(env!("CARGO_BIN_EXE_writ"))
        .args([
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--insecure-open",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .env_remove("RUST_LOG")
        .env_remove("WRIT_TOKENS")
        .env("LOG_LEVEL", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.contains("listening on http://"))
    });
    let deadline = std::time::Instant::now() + BOUND;
    while !line.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let line = line.join().unwrap().expect("it listens");
    assert!(line.contains("listening on http://0.0.0.0:"), "{line}");
}

#[test]
fn a_bad_tokens_file_stops_the_start_naming_the_file_and_the_place() {
    let dir = TempDir::new("e2e-bad-tokens");
    let data = dir.path().join("data");
    let file = dir.path().join("tokens.json");
    let cases = [
        ("[{\"name\": ", "line 1 column 10"),
        (
            r#"[{"token_sha256": "00", "name": "a", "scopes": []}]"#,
            "is not 64 hex digits",
        ),
        (
            &format!(
                r#"[{{"token_sha256": "{}",
                     "name": "a", "scopes": ["everything"]}}]"#,
                "0".repeat(64)
            ),
            "unknown variant `everything`",
        ),
    ];
    for (text, expected) in cases {
        std::fs::write(&file, text).unwrap();
        let output = refused_start(&[
            "--listen",
            "127.0.0.1:0",
            "--tokens",
            file.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ]);
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(file.to_str().unwrap()), "{stderr}");
        assert!(stderr.contains(expected), "{text}: {stderr}");
        assert!(!data.exists(), "nothing is created before the refusal");
    }
}

/// A self-signed certificate for `localhost` and 127.0.0.1, written as PEM files; the
/// client configuration that trusts it alone.
fn certificate(dir: &Path) -> (String, String, Arc<ClientConfig>) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(certified.cert.der().to_vec()))
        .unwrap();
    #[allow(deprecated)] // ring, as the server: see writ-server's tls.rs
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (
        cert.to_str().unwrap().to_owned(),
        key.to_str().unwrap().to_owned(),
        Arc::new(config),
    )
}

async fn tls_connect(port: u16, config: &Arc<ClientConfig>) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(
        BOUND,
        TlsConnector::from(Arc::clone(config)).connect(name, tcp),
    )
    .await
    .expect("the handshake ends")
    .expect("the server's certificate is the trusted one")
}

/// An HTTP/1.1 client over a TLS connection to the server, its connection driven on a task.
async fn https_sender(port: u16, config: &Arc<ClientConfig>) -> http1::SendRequest<Full<Bytes>> {
    let (sender, connection) = http1::handshake(TokioIo::new(tls_connect(port, config).await))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    sender
}

async fn https_call(
    sender: &mut http1::SendRequest<Full<Bytes>>,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = request.body(Full::new(Bytes::from(body))).unwrap();
    let response = tokio::time::timeout(BOUND, async {
        sender.ready().await.unwrap();
        sender.send_request(request).await.unwrap()
    })
    .await
    .expect("the server answers");
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, json)
}

/// Clients that connect and never start their TLS handshake hold up neither another client
/// nor the shutdown: a handshake runs on its connection's own task (on the worker that
/// serves the connection, with `--http-threads`), and the shutdown gives it up (it would
/// otherwise wait out the handshake's bound of 10 s, as long as the shutdown's grace).
#[tokio::test]
async fn silent_tls_clients_hold_up_neither_others_nor_the_shutdown() {
    for workers in [None, Some("2")] {
        let dir = TempDir::new("e2e-tls-silent");
        let (cert, key, client) = certificate(dir.path());
        let data = dir.path().join("data");
        let mut flags = vec!["--tls-cert", &cert, "--tls-key", &key];
        if let Some(workers) = workers {
            flags.extend(["--http-threads", workers]);
        }
        let server = Server::start_with(&data, &flags);
        // More than there are workers, so that each holds one.
        let mut silent = Vec::new();
        for _ in 0..3 {
            silent.push(
                TcpStream::connect(("127.0.0.1", server.port))
                    .await
                    .unwrap(),
            );
        }
        for _ in 0..2 {
            let mut sender = https_sender(server.port, &client).await;
            let (status, body) = https_call(&mut sender, Method::GET, "/health", None, None).await;
            assert_eq!(status, StatusCode::OK, "workers {workers:?}: {body}");
        }
        let asked = std::time::Instant::now();
        let status = tokio::task::spawn_blocking(move || server.terminate())
            .await
            .unwrap();
        assert!(status.success(), "workers {workers:?}: {status:?}");
        let took = asked.elapsed();
        assert!(
            took < std::time::Duration::from_secs(5),
            "workers {workers:?}: the shutdown waited {took:?} for handshakes that never started"
        );
        drop(silent);
    }
}

#[tokio::test]
async fn https_and_wss_on_the_same_port_with_a_token() {
    let dir = TempDir::new("e2e-tls");
    let (cert, key, client) = certificate(dir.path());
    let tokens = write_tokens(dir.path());
    let data = dir.path().join("data");
    let server = Server::start_with(
        &data,
        &["--tls-cert", &cert, "--tls-key", &key, "--tokens", &tokens],
    );

    let mut sender = https_sender(server.port, &client).await;
    let (status, body) = https_call(&mut sender, Method::GET, "/health", None, None).await;
    assert_eq!(
        (status, body["status"].clone()),
        (StatusCode::OK, json!("ok"))
    );
    let (status, _) = https_call(&mut sender, Method::GET, "/events", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let id = Uuid::new_v4();
    let command = json!({"id": id, "command": "OpenTicket",
        "payload": {"ticketId": "t-tls", "title": "Over TLS", "reporter": "ann"}});
    let (status, body) = https_call(
        &mut sender,
        Method::POST,
        "/update",
        Some(TOKEN),
        Some(command),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, body) = https_call(
        &mut sender,
        Method::GET,
        &format!("/update/{id}?wait=30"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(
        (status, body["status"].clone()),
        (StatusCode::OK, json!("succeeded"))
    );

    // WSS: the upgrade over a TLS connection, with the token.
    let mut request = format!("wss://localhost:{}/ws", server.port)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let stream = tls_connect(server.port, &client).await;
    let (mut socket, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .expect("the WebSocket upgrade over TLS");
    let id = Uuid::new_v4();
    let command = json!({"id": id, "command": "AddComment",
        "payload": {"ticketId": "t-tls", "author": "bob", "text": "over wss"}});
    socket
        .send(Message::text(command.to_string()))
        .await
        .unwrap();
    let mut statuses = Vec::new();
    while statuses.last().map(String::as_str) != Some("succeeded") {
        let message = tokio::time::timeout(BOUND, socket.next())
            .await
            .expect("an answer comes")
            .expect("the socket stays open")
            .unwrap();
        if let Message::Text(text) = message {
            let answer: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(answer["id"], json!(id), "{answer}");
            statuses.push(answer["status"].as_str().unwrap().to_owned());
            assert!(statuses.len() <= 2, "{statuses:?}");
        }
    }
    assert_eq!(statuses, ["accepted", "succeeded"]);

    // Plain HTTP on the TLS port is no request at all.
    let tcp = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    let (mut plain, connection) = http1::handshake(TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = Request::get("/health")
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let answered = tokio::time::timeout(BOUND, async {
        plain.ready().await.ok()?;
        plain.send_request(request).await.ok()
    })
    .await
    .expect("the server closes the connection");
    assert!(
        answered.is_none(),
        "plain HTTP got an answer on the TLS port"
    );

    assert!(server.terminate().success());
}

/// A request without a valid token is refused before its body is read, so strangers
/// cannot spend the room that bodies on their way share (`--body-reading-bytes-max`).
#[tokio::test]
async fn a_stranger_is_refused_before_its_body_is_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = TempDir::new("e2e-stranger");
    let tokens = write_tokens(dir.path());
    let data = dir.path().join("data");
    // Room for two 1 MiB bodies on their way, and no more.
    let server = Server::start_with(
        &data,
        &[
            "--tokens",
            &tokens,
            "--body-reading-bytes-max",
            "2097152",
            "--body-timeout",
            "10s",
        ],
    );
    let mut strangers = Vec::new();
    for token in [None, Some("wrong"), None] {
        let mut stream = TcpStream::connect(("127.0.0.1", server.port))
            .await
            .unwrap();
        let authorization = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let head = format!(
            "POST /update HTTP/1.1\r\nHost: 127.0.0.1\r\n{authorization}Content-Type: application/json\r\nContent-Length: 1048576\r\n\r\n{{"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        // Answered at once, its body never waited for.
        let mut answer = vec![0u8; 4096];
        let read = tokio::time::timeout(BOUND, stream.read(&mut answer))
            .await
            .expect("answered without the body")
            .unwrap();
        let answer = String::from_utf8_lossy(&answer[..read]).into_owned();
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
        strangers.push(stream);
    }
    // The room is all there for a client with a token.
    let mut http = common::Http::connect(server.port).await;
    let authorization = format!("Bearer {TOKEN}");
    let response = http
        .send(
            Method::POST,
            "/update",
            &[("authorization", &authorization)],
            Some(&common::open_ticket(Uuid::new_v4(), "t-1")),
        )
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
}
