//! Running the real `writ` binary and talking to it as a client would.

#![allow(dead_code)] // each test file uses its own part

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

/// A bound on every wait; tests never assert on time.
pub const BOUND: Duration = Duration::from_secs(30);

/// A fresh directory under the system's temporary directory, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "writ-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `writ serve` child process, killed on drop.
#[derive(Debug)]
pub struct Server {
    child: Option<Child>,
    pub port: u16,
}

impl Server {
    /// Starts `writ serve --listen 127.0.0.1:0 --data-dir DIR` and reads the port from its
    /// `listening on http://` (or `https://`) line.
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, &[])
    }

    /// As [`Server::start`], with more flags for `serve` (`--domain orders`).
    pub fn start_with(dir: &Path, flags: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_writ"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(flags)
            .env_remove("WRIT_APP")
            .env_remove("WRIT_TOKENS")
            .env_remove("WRIT_TLS_CERT")
            .env_remove("WRIT_TLS_KEY")
            .env_remove("RUST_LOG")
            .env("LOG_LEVEL", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the binary starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let mut server = Self {
            child: Some(child),
            port: 0,
        };
        let deadline = Instant::now() + BOUND;
        loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("the server prints where it listens");
            let address = line
                .split("listening on http://")
                .nth(1)
                .or_else(|| line.split("listening on https://").nth(1));
            if let Some(address) = address {
                server.port = address.trim().rsplit(':').next().unwrap().parse().unwrap();
                assert_ne!(server.port, 0, "the real port is printed");
                return server;
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends SIGTERM and waits (bounded) for the exit.
    pub fn terminate(mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + BOUND;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the server exits after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process (SIGKILL: no drain, no final sync) and waits for it.
    pub fn kill(mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        child.kill().expect("the server can be killed");
        child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One HTTP/1.1 connection.
pub struct Http {
    sender: http1::SendRequest<Full<Bytes>>,
    port: u16,
}

impl Http {
    pub async fn connect(port: u16) -> Self {
        let tcp = tokio::time::timeout(BOUND, TcpStream::connect(("127.0.0.1", port)))
            .await
            .unwrap()
            .expect("the server accepts connections");
        let (sender, connection) = http1::handshake(TokioIo::new(tcp)).await.unwrap();
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Self { sender, port }
    }

    /// Sends a request and returns the response with its body still streaming.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Response<Incoming> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", format!("127.0.0.1:{}", self.port));
        // JSON unless the caller gives its own type (a patch's).
        if body.is_some()
            && !headers
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        {
            request = request.header("content-type", "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default().to_owned())))
            .unwrap();
        tokio::time::timeout(BOUND, async {
            self.sender.ready().await.unwrap();
            self.sender.send_request(request).await.unwrap()
        })
        .await
        .expect("the server answers")
    }

    /// Sends a request and reads the whole answer; the body as JSON (`Null` when empty).
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> (StatusCode, hyper::HeaderMap, Value) {
        let response = self.send(method, path, &[], body).await;
        let (parts, body) = response.into_parts();
        let bytes = tokio::time::timeout(BOUND, body.collect())
            .await
            .expect("the body ends")
            .unwrap()
            .to_bytes();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)))
        };
        (parts.status, parts.headers, json)
    }

    /// `GET /metrics`, which must answer `200`: the Prometheus exposition's text.
    pub async fn metrics_text(&mut self) -> String {
        let response = self.send(Method::GET, "/metrics", &[], None).await;
        assert_eq!(response.status(), StatusCode::OK, "GET /metrics");
        let body = tokio::time::timeout(BOUND, response.into_body().collect())
            .await
            .expect("the body ends")
            .unwrap()
            .to_bytes();
        String::from_utf8(body.to_vec()).expect("the metrics are text")
    }

    /// `GET path`, which must answer `200`; its JSON.
    pub async fn get_ok(&mut self, path: &str) -> Value {
        let (status, _, body) = self.call(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    /// Submits a new command (`202`) and returns its final status (`?wait=30`).
    pub async fn run(&mut self, command: &str, payload: Value) -> Value {
        let id = uuid::Uuid::new_v4();
        let body = serde_json::json!({"id": id, "command": command, "payload": payload});
        let (status, _, answer) = self
            .call(Method::POST, "/update", Some(&body.to_string()))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{command}: {answer}");
        let status = self.get_ok(&format!("/update/{id}?wait=30")).await;
        assert_ne!(status["status"], "accepted", "final within the wait");
        status
    }

    /// Runs a command that must succeed; returns its final status.
    pub async fn ok(&mut self, command: &str, payload: Value) -> Value {
        let status = self.run(command, payload).await;
        assert_eq!(status["status"], "succeeded", "{command}: {status}");
        status
    }
}

/// One server-sent event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: Value,
}

/// Reads server-sent events from a streaming body.
pub struct SseReader {
    body: http_body_util::BodyDataStream<Incoming>,
    text: String,
}

impl SseReader {
    pub fn new(response: Response<Incoming>) -> Self {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self {
            body: response.into_body().into_data_stream(),
            text: String::new(),
        }
    }

    /// The next event, or `None` when the stream ended.
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            while let Some(end) = self.text.find("\n\n") {
                let block: String = self.text.drain(..end + 2).collect();
                let mut event = SseEvent {
                    id: None,
                    event: None,
                    data: Value::Null,
                };
                let mut comment_only = true;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        event.id = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event.event = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        event.data = serde_json::from_str(v).unwrap();
                    } else {
                        continue;
                    }
                    comment_only = false;
                }
                if !comment_only {
                    return Some(event);
                }
            }
            let chunk = tokio::time::timeout(BOUND, self.body.next())
                .await
                .expect("the stream delivers or ends")?;
            self.text
                .push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        }
    }
}

pub fn open_ticket(id: uuid::Uuid, ticket: &str) -> String {
    serde_json::json!({"id": id, "command": "OpenTicket", "version": 2,
        "payload": {"ticketId": ticket, "title": "Printer on fire", "reporter": "ann", "priority": "urgent"}})
    .to_string()
}

pub fn add_comment(id: uuid::Uuid, ticket: &str, text: &str) -> String {
    serde_json::json!({"id": id, "command": "AddComment", "payload": {"ticketId": ticket, "author": "bob", "text": text}})
        .to_string()
}
