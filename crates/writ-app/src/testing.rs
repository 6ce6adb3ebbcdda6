//! Tests of a whole server without a socket or a disk: [`TestServer`] starts an [`App`] on
//! in-memory storage ([`SimStorage`]) with a clock the test moves ([`ManualClock`]), and
//! calls the HTTP routes as a client would, through the router.
//!
//! ```
//! use serde_json::json;
//! use writ_app::testing::TestServer;
//! use writ_app::{App, Module};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let server = TestServer::start(|| App::new().module(Module::new::<writ_tickets::Tickets>()));
//! let payload = json!({"ticketId": "t-1", "title": "Printer on fire", "reporter": "ann"});
//! let status = server.send(1, "OpenTicket", payload).await.ok();
//! assert_eq!(status["status"], "succeeded");
//! let events = server.get("/streams/ticket-t-1").await.ok();
//! assert_eq!(events["events"][0]["type"], "TicketOpened");
//! # }
//! ```
//!
//! Moving the clock fires the timers that fall due, and a crash keeps only what was synced:
//! see [`TestServer::clock`] and [`TestServer::crash`].
//!
//! The HTTP types its calls and answers use ([`StatusCode`], [`Method`], [`Request`],
//! [`Body`], [`HeaderMap`]) are re-exported here, so a test needs no HTTP crate of its own.

use std::sync::Arc;
use std::time::Duration;

pub use axum::body::Body;
use axum::http::header;
pub use axum::http::{HeaderMap, Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;
use writ_engine::{ManualClock, RecoveryReport};
use writ_log::storage::SimStorage;
use writ_server::AppState;

use crate::{App, Config, Started, Store};

/// Most bytes of an answer a test reads.
const ANSWER_BYTES_MAX: usize = 64 << 20;

/// How long a call may take before the test fails: a bound on something that should
/// happen soon, never a timing assertion.
const CALL_BOUND: Duration = Duration::from_secs(60);

/// A server of an [`App`] on in-memory storage and a [`ManualClock`], called through its
/// router. Restarts ([`TestServer::restart`], [`TestServer::crash`]) build the app again
/// with the function it was started with.
pub struct TestServer {
    app: Box<dyn Fn() -> App + Send + Sync>,
    configure: Box<dyn Fn(&mut Config) + Send + Sync>,
    storage: SimStorage,
    clock: ManualClock,
    started: Started,
    /// The started server's router, built once per start (it is cheap to clone; building
    /// it is not: it assembles the OpenAPI and domains documents).
    router: axum::Router,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl TestServer {
    /// Starts `app()` with the default configuration (its default domains) on fresh
    /// storage, its clock at the system's time and moved only by the test.
    ///
    /// # Panics
    ///
    /// When the app does not start; the message says why.
    pub fn start(app: impl Fn() -> App + Send + Sync + 'static) -> Self {
        Self::start_with(app, |_| {})
    }

    /// As [`TestServer::start`], with `configure` applied to the configuration first (at
    /// every start): domains, bounds, projection versions. The store and the clock are the
    /// test server's.
    ///
    /// # Panics
    ///
    /// When the app does not start; the message says why.
    pub fn start_with(
        app: impl Fn() -> App + Send + Sync + 'static,
        configure: impl Fn(&mut Config) + Send + Sync + 'static,
    ) -> Self {
        let storage = SimStorage::new();
        let clock = ManualClock::starting_now();
        let started = boot(&app, &configure, &storage, &clock);
        let router = writ_server::router(started.state.clone());
        Self {
            app: Box::new(app),
            configure: Box::new(configure),
            storage,
            clock,
            started,
            router,
        }
    }

    /// The clock the engine reads: [`ManualClock::advance`] it to make timers fall due
    /// (they fire within a few milliseconds) and ids leave the dedupe window.
    pub fn clock(&self) -> &ManualClock {
        &self.clock
    }

    /// Moves the clock on by `by` and waits until what fell due is done: the timers due by
    /// then have fired, their commands (and what processes issued in turn) are durable, and
    /// the read models include them ([`TestServer::settle`]).
    pub async fn advance(&self, by: Duration) {
        self.clock.advance(by);
        self.settle().await;
    }

    /// Waits until the server has nothing left to do by its clock: no command waits for
    /// the writer, no timer is due, everything decided is durable, and the read models
    /// include the end of the log. What a query answers after this is the whole effect of
    /// what was sent and of the time that passed.
    ///
    /// # Panics
    ///
    /// When that takes more than a minute.
    pub async fn settle(&self) {
        let engine = self.started.state.engine();
        let waited = tokio::time::timeout(CALL_BOUND, async {
            while !engine.is_idle() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await;
        assert!(waited.is_ok(), "the server did not settle within a minute");
        if let Some(read) = self.started.state.read_side() {
            read.models
                .wait_for(engine.last_position(), CALL_BOUND)
                .await
                .unwrap_or_else(|e| panic!("the read models did not catch up: {e}"));
        }
    }

    /// What opening the store found the last time the server started.
    pub fn report(&self) -> &RecoveryReport {
        &self.started.report
    }

    /// The storage, to look at or damage files.
    pub fn storage(&self) -> &SimStorage {
        &self.storage
    }

    /// The server's state: the engine, the read models.
    pub fn state(&self) -> &AppState {
        &self.started.state
    }

    /// Stops the server cleanly (everything acknowledged is synced), moves the clock on by
    /// `down` while it is stopped, and starts it again on the same storage.
    pub fn restart(&mut self, down: Duration) {
        self.started.state.engine().shutdown();
        self.clock.advance(down);
        self.started = boot(&self.app, &self.configure, &self.storage, &self.clock);
        self.router = writ_server::router(self.started.state.clone());
    }

    /// Cuts the power: only what was synced survives. The clock moves on by `down` while
    /// the server is down; then it starts again on what the disk kept, as after `kill -9`
    /// or a power cut (timers that fell due meanwhile fire at the start).
    pub fn crash(&mut self, down: Duration) {
        let kept = self.storage.crash();
        self.started.state.engine().shutdown();
        self.storage = kept;
        self.clock.advance(down);
        self.started = boot(&self.app, &self.configure, &self.storage, &self.clock);
        self.router = writ_server::router(self.started.state.clone());
    }

    /// `POST /update?wait=10` with a command of the newest version: its final status
    /// (`200`), or the refusal. `id` becomes the command's UUID.
    pub async fn send(&self, id: u128, command: &str, payload: Value) -> TestResponse {
        self.send_body(json!({
            "id": Uuid::from_u128(id),
            "command": command,
            "payload": payload,
        }))
        .await
    }

    /// [`TestServer::send`] with the payload's `version`.
    pub async fn send_version(
        &self,
        id: u128,
        command: &str,
        version: u32,
        payload: Value,
    ) -> TestResponse {
        self.send_body(json!({
            "id": Uuid::from_u128(id),
            "command": command,
            "version": version,
            "payload": payload,
        }))
        .await
    }

    /// `POST /update?wait=10` with a whole body (to give `version` or `expectedVersion`).
    pub async fn send_body(&self, body: Value) -> TestResponse {
        self.post("/update?wait=10", body).await
    }

    /// `GET uri`.
    pub async fn get(&self, uri: &str) -> TestResponse {
        self.call(Method::GET, uri, None).await
    }

    /// `POST uri` with a JSON body.
    pub async fn post(&self, uri: &str, body: Value) -> TestResponse {
        self.call(Method::POST, uri, Some(body)).await
    }

    /// Any request, with an optional JSON body.
    ///
    /// # Panics
    ///
    /// When the router does not answer within a minute.
    pub async fn call(&self, method: Method, uri: &str, body: Option<Value>) -> TestResponse {
        let mut request = Request::builder().method(method).uri(uri);
        let body = match body {
            Some(json) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        self.request(request.body(body).expect("a valid request"))
            .await
    }

    /// A request as built by the test.
    ///
    /// # Panics
    ///
    /// When the router does not answer within a minute.
    pub async fn request(&self, request: Request<Body>) -> TestResponse {
        let response = tokio::time::timeout(CALL_BOUND, self.router.clone().oneshot(request))
            .await
            .expect("the server answers within a minute")
            .expect("the router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), ANSWER_BYTES_MAX)
            .await
            .expect("the answer's body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        TestResponse {
            status,
            headers,
            body,
        }
    }
}

fn boot(
    app: &(impl Fn() -> App + ?Sized),
    configure: &(impl Fn(&mut Config) + ?Sized),
    storage: &SimStorage,
    clock: &ManualClock,
) -> Started {
    let mut config = Config::new(Store::Storage(Arc::new(storage.clone())));
    configure(&mut config);
    config.store = Store::Storage(Arc::new(storage.clone()));
    config.engine.clock = Arc::new(clock.clone());
    app()
        .start(config)
        .unwrap_or_else(|e| panic!("the app does not start: {e}"))
}

/// An answer: its status, headers and body (JSON; a string when it is not JSON; `null`
/// when empty).
#[derive(Debug, Clone)]
pub struct TestResponse {
    /// The status code.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Value,
}

impl TestResponse {
    /// The body of a `2xx` answer.
    ///
    /// # Panics
    ///
    /// On any other status, with the body in the message.
    #[track_caller]
    pub fn ok(self) -> Value {
        assert!(
            self.status.is_success(),
            "expected a 2xx answer, got {}: {}",
            self.status,
            self.body
        );
        self.body
    }

    /// The problem document (`application/problem+json`) of an answer with `status`,
    /// whose `type` ends in `/{code}`.
    ///
    /// # Panics
    ///
    /// On another status or code, with the body in the message.
    #[track_caller]
    pub fn problem(self, status: StatusCode, code: &str) -> Value {
        assert_eq!(self.status, status, "{}", self.body);
        let kind = self.body["type"].as_str().unwrap_or_default();
        assert!(
            kind.rsplit('/').next() == Some(code),
            "expected a problem of type .../{code}: {}",
            self.body
        );
        self.body
    }
}
