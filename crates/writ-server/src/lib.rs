//! Writ's HTTP server: the only crate that knows HTTP, JSON wire shapes and WebSocket.
//!
//! It puts an [`Engine`] for any [`Domain`] behind the public HTTP contract
//! (`shared/CONTRACT.md`):
//!
//! - **Commands**: `POST /update` answers `202` once the command is durable in the command
//!   log; `GET /update/{id}` tells where it stands, as a long poll (`?wait=`) or a stream of
//!   server-sent events; `GET /ws` carries many commands in flight on one WebSocket.
//! - **Reads**: `GET /streams/{stream}`, `GET /events` (pages, or a live tail as
//!   server-sent events that resumes from `Last-Event-ID`).
//! - **Queries** (with a [`ReadSide`], see [`AppState::with_read_side`]):
//!   `GET /query/v{N}/{name}` runs a named query of query API version N,
//!   `POST /query/v{N}` runs client JavaScript in the sandbox against one snapshot, both
//!   with `?after=POSITION` for reading one's writes; `GET /projections` and
//!   `POST /projections/{name}/rebuild` show and rebuild the read model.
//! - **Operations**: `GET /health`, `GET /metrics` (Prometheus), `GET /openapi.json`
//!   (generated from the handlers and the wire types in [`wire`]).
//!
//! Every error is `application/problem+json`; [`problem`] holds the one table of problem
//! kinds and their status codes. Everything that grows has a bound in [`ServerOptions`]:
//! a full bound answers `503` with `Retry-After` at once instead of queueing.
//!
//! [`AppState`] holds the engine and the limits, [`router`] builds the service (tests
//! drive it without a socket), and [`serve`] binds, announces the address, serves, and on
//! shutdown drains connections and shuts the engine down.
//!
//! ```
//! use std::sync::Arc;
//! use axum::body::Body;
//! use axum::http::{Request, StatusCode};
//! use tower::ServiceExt;
//! use writ_engine::{Engine, EngineOptions};
//! use writ_log::storage::SimStorage;
//! use writ_server::{AppState, ServerOptions, router};
//! use writ_tickets::Tickets;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let (engine, _) = Engine::<Tickets>::open(Arc::new(SimStorage::new()), EngineOptions::default()).unwrap();
//! let app = router(AppState::new(Arc::new(engine), ServerOptions::default()));
//! let request = Request::post("/update")
//!     .header("content-type", "application/json")
//!     .body(Body::from(r#"{"id": "0b0e5b4c-9a53-4c9a-9d7c-6a3f0c2f7a10", "command": "OpenTicket",
//!         "payload": {"ticketId": "t-1", "title": "Printer on fire", "reporter": "ann"}}"#))
//!     .unwrap();
//! let response = app.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), StatusCode::ACCEPTED); // durable in the command log
//! assert_eq!(response.headers()["location"], "/update/0b0e5b4c-9a53-4c9a-9d7c-6a3f0c2f7a10");
//! # });
//! ```

mod backend;
mod commands;
mod gate;
mod listener;
mod ops;
mod params;
pub mod problem;
mod queries;
mod reads;
pub use writ_query::rfc3339;
mod telemetry;
pub mod wire;
mod ws;

use std::fmt;
use std::future::{Future, IntoFuture};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use writ_domain::Domain;
use writ_engine::{CommandStatus, Engine, WaitError, WaitFor};
use writ_query::QueryService;
use writ_sandbox::Sandbox;

use crate::backend::Backend;
use crate::problem::{ApiError, ProblemKind};

pub use crate::ops::ApiDoc;
pub use crate::queries::{
    POSITION_HEADER, ProjectionState, Projections, QueryAnswer, QueryCode, RebuildPhase,
    RebuildRequest, RebuildState,
};
pub use crate::telemetry::prometheus;

/// The server's limits and timings. Each bound answers `503` (with `Retry-After`) when
/// reached, or applies backpressure where the client is the one producing.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Largest request body, and largest WebSocket message. A little above the engine's
    /// `command_bytes_max` (1 MiB), so an oversized command is refused by the engine with a
    /// precise answer and anything larger is cut off at the door. Default 1 MiB + 64 KiB.
    pub body_bytes_max: usize,
    /// Requests being handled at once, those that wait apart (streams and sockets count
    /// once set up). Beyond it, requests are answered `503` at once. Default 4,096.
    pub requests_max: usize,
    /// Requests that wait, handled at once: long polls (`GET /update/{id}?wait=` above 0,
    /// up to `wait_max` each) and queries with `?after=` (up to `after_wait_max`). They
    /// have a bound of their own, so that waiting clients never take the places of
    /// commands under `requests_max`. Beyond it, `503` at once. Default 4,096.
    pub waits_max: usize,
    /// Open connections. At the bound, new connections wait in the listen backlog until one
    /// closes. Default 8,192.
    pub connections_max: usize,
    /// Open server-sent event streams and WebSockets together. Beyond it, `503`. Default
    /// 4,096.
    pub streams_max: usize,
    /// Longest long poll (`GET /update/{id}?wait=`); larger waits are cut to it. Default 60 s.
    pub wait_max: Duration,
    /// How long a resubmitted id waits for its first command to reach the command log
    /// before answering `503`. Default 10 s.
    pub duplicate_wait_max: Duration,
    /// Commands in flight on one WebSocket; at the bound the server stops reading frames
    /// until some complete. Default 1,024.
    pub socket_in_flight_max: usize,
    /// Frames waiting to be written to one WebSocket; when full, the commands that produce
    /// them wait, and so does reading. Default 1,024.
    pub socket_outgoing_max: usize,
    /// How often the server pings a WebSocket. Default 30 s.
    pub socket_ping_interval: Duration,
    /// A WebSocket that sent nothing (not even a pong) for this long is closed. Default 90 s.
    pub socket_idle_max: Duration,
    /// How often an idle server-sent event stream gets a keep-alive comment. Default 15 s.
    pub sse_keep_alive: Duration,
    /// Most events one live tail reads from the log at a time: the stream's buffer.
    /// Default 256.
    pub sse_batch_events_max: usize,
    /// Events on a page when the client names no `limit`. Default 100.
    pub page_events_default: usize,
    /// Most events on a page; larger `limit`s are cut to it. Default 1,000.
    pub page_events_max: usize,
    /// After a shutdown signal, how long in-flight requests, streams and sockets get to
    /// finish before they are closed. Default 10 s.
    pub shutdown_grace: Duration,
    /// Longest wait of a query's `?after=POSITION` for the read model to reach the
    /// position; then `504`. Default 10 s.
    pub after_wait_max: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            body_bytes_max: (1 << 20) + (64 << 10),
            requests_max: 4_096,
            waits_max: 4_096,
            connections_max: 8_192,
            streams_max: 4_096,
            wait_max: Duration::from_secs(60),
            duplicate_wait_max: Duration::from_secs(10),
            socket_in_flight_max: 1_024,
            socket_outgoing_max: 1_024,
            socket_ping_interval: Duration::from_secs(30),
            socket_idle_max: Duration::from_secs(90),
            sse_keep_alive: Duration::from_secs(15),
            sse_batch_events_max: 256,
            page_events_default: 100,
            page_events_max: 1_000,
            shutdown_grace: Duration::from_secs(10),
            after_wait_max: Duration::from_secs(10),
        }
    }
}

/// What the handlers share: the engine, the limits, and the shutdown signal. Cheap to
/// clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Arc<dyn Backend>,
    read: Option<ReadSide>,
    options: ServerOptions,
    requests: Arc<Semaphore>,
    waits: Arc<Semaphore>,
    streams: Arc<Semaphore>,
    shutdown: watch::Sender<bool>,
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("domain", &self.inner.engine.domain())
            .field("options", &self.inner.options)
            .field("shutting_down", &*self.inner.shutdown.borrow())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// The state for an engine of any domain.
    ///
    /// # Panics
    /// If a bound in `options` is zero.
    pub fn new<D: Domain>(engine: Arc<Engine<D>>, options: ServerOptions) -> Self {
        for (name, value) in [
            ("body_bytes_max", options.body_bytes_max),
            ("requests_max", options.requests_max),
            ("waits_max", options.waits_max),
            ("connections_max", options.connections_max),
            ("streams_max", options.streams_max),
            ("socket_in_flight_max", options.socket_in_flight_max),
            ("socket_outgoing_max", options.socket_outgoing_max),
            ("sse_batch_events_max", options.sse_batch_events_max),
            ("page_events_max", options.page_events_max),
        ] {
            assert!(value > 0, "ServerOptions::{name} must be at least 1");
        }
        let u32_max = u32::MAX as usize; // waiting for all of a semaphore's permits takes a u32
        assert!(
            options.requests_max <= Semaphore::MAX_PERMITS
                && options.waits_max <= Semaphore::MAX_PERMITS
                && options.streams_max <= u32_max
                && options.socket_in_flight_max <= u32_max,
            "bounds must fit a semaphore"
        );
        // Record from now on, the engine's metrics included.
        telemetry::prometheus();
        Self {
            inner: Arc::new(Inner {
                engine,
                read: None,
                requests: Arc::new(Semaphore::new(options.requests_max)),
                waits: Arc::new(Semaphore::new(options.waits_max)),
                streams: Arc::new(Semaphore::new(options.streams_max)),
                shutdown: watch::channel(false).0,
                options,
            }),
        }
    }

    /// Serves queries from `read` too. Call it right after [`AppState::new`].
    ///
    /// # Panics
    /// If the state was cloned already (a router or server holds it).
    pub fn with_read_side(mut self, read: ReadSide) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("with_read_side is called before the state is shared")
            .read = Some(read);
        self
    }

    /// The read side, when the server has one.
    pub fn read_side(&self) -> Option<&ReadSide> {
        self.inner.read.as_ref()
    }

    /// The limits.
    pub fn options(&self) -> &ServerOptions {
        &self.inner.options
    }

    /// Tells streams and sockets to finish: live tails end, sockets stop reading and close
    /// once their commands are answered, long polls answer with the status as it is.
    pub fn begin_shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    /// Whether [`AppState::begin_shutdown`] was called.
    pub fn is_shutting_down(&self) -> bool {
        *self.inner.shutdown.borrow()
    }

    pub(crate) fn engine(&self) -> &Arc<dyn Backend> {
        &self.inner.engine
    }

    /// Waits until the command reaches `until`; `None` for an unknown id. Answers from
    /// [`Engine::status`] when that already settles it (the common case for long polls and
    /// duplicates), which costs no waiter registration.
    pub(crate) async fn wait(
        &self,
        id: Uuid,
        until: WaitFor,
    ) -> Result<Option<CommandStatus>, WaitError> {
        if let Some(status) = self.engine().status(id)?
            && (until == WaitFor::Accepted || status.state.is_final())
        {
            return Ok(Some(status));
        }
        self.engine().wait(id, until).await
    }

    /// Resolves once shutdown begins.
    pub(crate) fn shutdown_begun(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.inner.shutdown.subscribe();
        async move {
            let _ = rx.wait_for(|down| *down).await;
        }
    }

    /// Sees `true` once shutdown begins.
    pub(crate) fn shutdown_receiver(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }

    /// A place for one server-sent event stream or WebSocket, or `503`.
    pub(crate) fn open_stream(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        if self.is_shutting_down() {
            return Err(ApiError::new(
                ProblemKind::Unavailable,
                "the server is shutting down",
            ));
        }
        Arc::clone(&self.inner.streams)
            .try_acquire_owned()
            .map_err(|_| {
                ApiError::overloaded(format!(
                    "{} streams and sockets are open",
                    self.options().streams_max
                ))
            })
    }

    /// Resolves once every stream and socket has closed.
    async fn streams_closed(&self) {
        let all = u32::try_from(self.options().streams_max).expect("checked in new");
        let _ = self.inner.streams.acquire_many(all).await;
    }
}

/// What the server answers queries from: a read model (its projection kept up to date and
/// its query catalog, as a [`QueryService`]) and the sandbox that runs query code.
#[derive(Clone)]
pub struct ReadSide {
    /// The read model.
    pub service: Arc<dyn QueryService>,
    /// Runs `POST /query/v{N}` code against the read model's snapshots.
    pub sandbox: Arc<Sandbox>,
}

impl fmt::Debug for ReadSide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadSide")
            .field("root", &self.service.status().root)
            .field("versions", &self.service.versions())
            .field("sandbox", &self.sandbox)
            .finish()
    }
}

/// Holds a place under `streams_max` and counts the stream or socket in its gauge.
#[derive(Debug)]
pub(crate) struct StreamGuard {
    _permit: OwnedSemaphorePermit,
    _gauge: telemetry::OpenGauge,
}

impl StreamGuard {
    pub(crate) fn sse(state: &AppState) -> Result<Self, ApiError> {
        Ok(Self {
            _permit: state.open_stream()?,
            _gauge: telemetry::OpenGauge::sse(),
        })
    }

    pub(crate) fn websocket(state: &AppState) -> Result<Self, ApiError> {
        Ok(Self {
            _permit: state.open_stream()?,
            _gauge: telemetry::OpenGauge::websocket(),
        })
    }
}

/// The whole HTTP service over `state`: every route, the OpenAPI document, the request
/// limits and metrics. Serve it with [`serve`], or call it directly in tests.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(commands::post_update))
        .routes(routes!(commands::get_update))
        .routes(routes!(ws::socket))
        .routes(routes!(reads::get_stream))
        .routes(routes!(reads::get_events))
        .routes(routes!(queries::get_query))
        .routes(routes!(queries::post_query))
        .routes(routes!(queries::get_projections))
        .routes(routes!(queries::post_rebuild))
        .routes(routes!(ops::health))
        .routes(routes!(ops::metrics))
        .routes(routes!(ops::openapi_json))
        .split_for_parts();
    debug_assert!(
        gate::OPERATIONS
            .iter()
            .chain([&gate::STATUS_ROUTE])
            .chain(&gate::QUERY_ROUTES)
            .all(|route| openapi.paths.paths.contains_key(*route))
    );
    let document = ops::OpenApiDocument::new(openapi, state.engine().as_ref());
    api.layer(axum::Extension(document))
        .layer(DefaultBodyLimit::max(state.options().body_bytes_max))
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(gate::GateLayer::new(
            Arc::clone(&state.inner.requests),
            Arc::clone(&state.inner.waits),
        ))
        .with_state(state)
}

/// Why [`serve`] stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The address could not be bound: in use, not local, or not an address.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address as given.
        address: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Serving failed.
    #[error("serving failed: {0}")]
    Io(#[from] io::Error),
}

/// Binds `address` (`HOST:PORT`; port 0 picks a free one), prints one line
/// `listening on http://HOST:PORT` with the real address to stdout, and serves until
/// `shutdown` resolves. Then it stops accepting, lets in-flight requests, streams and
/// sockets finish (at most [`ServerOptions::shutdown_grace`]), and shuts the engine down,
/// which finishes and syncs every command already accepted.
pub async fn serve(
    address: &str,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    // Room in the listen backlog for as many connections as may be open.
    let backlog = u32::try_from(state.options().connections_max).unwrap_or(u32::MAX);
    let tcp = listener::bind(address, backlog)
        .await
        .map_err(|source| ServeError::Bind {
            address: address.to_owned(),
            source,
        })?;
    let local = tcp.local_addr()?;
    announce(local)?;
    tracing::info!(address = %local, domain = state.engine().domain(), "listening");

    let grace = state.options().shutdown_grace;
    let (deadline_tx, deadline_rx) = tokio::sync::oneshot::channel::<Instant>();
    let draining = {
        let state = state.clone();
        async move {
            shutdown.await;
            tracing::info!(
                grace_s = grace.as_secs_f64(),
                "shutting down: no new connections; finishing requests"
            );
            let _ = deadline_tx.send(Instant::now() + grace);
            state.begin_shutdown();
        }
    };
    let listener = listener::Limited::new(tcp, state.options().connections_max);
    let server = axum::serve(listener, router(state.clone())).with_graceful_shutdown(draining);
    let mut server = std::pin::pin!(server.into_future());
    let mut deadline_rx = std::pin::pin!(deadline_rx);
    let deadline = tokio::select! {
        result = &mut server => {
            result?;
            // The server drains only after the signal, so the deadline is there.
            deadline_rx.await.unwrap_or_else(|_| Instant::now())
        }
        deadline = &mut deadline_rx => {
            let deadline = deadline.unwrap_or_else(|_| Instant::now());
            if tokio::time::timeout_at(deadline, &mut server).await.is_err() {
                tracing::warn!("requests still in progress after the grace period; closing them");
            }
            deadline
        }
    };
    // WebSockets live outside the HTTP connections, on tasks of their own.
    if tokio::time::timeout_at(deadline, state.streams_closed())
        .await
        .is_err()
    {
        tracing::warn!("sockets still open after the grace period; closing them");
    }
    let engine = Arc::clone(state.engine());
    let read = state.read_side().cloned();
    tokio::task::spawn_blocking(move || {
        engine.shutdown();
        if let Some(read) = read {
            read.service.shutdown();
        }
    })
    .await
    .map_err(io::Error::other)?;
    tracing::info!("engine shut down; every accepted command is synced");
    Ok(())
}

/// Prints the one line that tells scripts and tests where the server listens.
fn announce(address: SocketAddr) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "listening on http://{address}")?;
    stdout.flush()
}

/// Resolves on the first SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("received SIGTERM"),
                    _ = int.recv() => tracing::info!("received SIGINT"),
                }
            }
            _ => {
                tracing::warn!("cannot install signal handlers; only Ctrl-C stops the server");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
