//! Writ's HTTP server: the only crate that knows HTTP, JSON wire shapes and WebSocket.
//!
//! It puts a [`writ_engine::Engine`] for any [`writ_domain::Domain`] behind the public
//! HTTP contract (`shared/CONTRACT.md`):
//!
//! - **Commands**: `POST /update` answers `202` once the command is durable in the journal;
//!   `GET /update/{id}` tells where it stands, as a long poll (`?wait=`) or a stream of
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
//! - **Administration** ([`admin`]): `POST /admin/replay` replays the command log beside
//!   live traffic and reports what this build decides differently; `GET /admin/replay`
//!   follows it.
//! - **Access** (with [`AppState::with_tokens`]): every route but `/health` needs a bearer
//!   token whose scopes cover it, checked before anything else ([`access`]); without
//!   tokens the server is open. [`serve_with`] serves HTTPS and WSS with a [`Tls`].
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
//! use writ_fixtures::Counters;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let registry = writ_engine::Registry::builder()
//!     .domain(writ_domain::model::domain::<Counters>())
//!     .build()
//!     .unwrap();
//! let (engine, _) = Engine::open(Arc::new(SimStorage::new()), registry, EngineOptions::default()).unwrap();
//! let app = router(AppState::new(Arc::new(engine), ServerOptions::default()));
//! let request = Request::post("/update")
//!     .header("content-type", "application/json")
//!     .body(Body::from(r#"{"id": "0b0e5b4c-9a53-4c9a-9d7c-6a3f0c2f7a10", "command": "CreateCounter",
//!         "payload": {"counterId": "c-1", "title": "Visitors", "owner": "ann"}}"#))
//!     .unwrap();
//! let response = app.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), StatusCode::ACCEPTED); // durable in the command log
//! assert_eq!(response.headers()["location"], "/update/0b0e5b4c-9a53-4c9a-9d7c-6a3f0c2f7a10");
//! # });
//! ```

pub mod access;
pub mod admin;
mod commands;
mod connections;
pub mod domains;
mod gate;
mod listener;
mod ops;
mod options;
mod params;
pub mod problem;
mod queries;
mod reads;
pub mod resources;
mod state;
pub use writ_query::rfc3339;
mod telemetry;
mod tls;
pub mod wire;
mod workers;
mod ws;

use std::future::Future;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tokio::time::Instant;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::workers::Workers;

pub use crate::listener::{
    OpenFiles, accept as accept_connection, bind as bind_listener, raise_open_files_limit,
};
pub use crate::ops::ApiDoc;
pub use crate::options::ServerOptions;
pub use crate::queries::{
    POSITION_HEADER, ParkPhase, ParkedState, ProjectionState, Projections, QueryAnswer, QueryCode,
    RebuildPhase, RebuildRequest, RebuildState, SnapshotState,
};
pub use crate::resources::{ResourceAccepted, ResourceCommands, Resources};
pub(crate) use crate::state::StreamGuard;
pub use crate::state::{AppState, ReadSide, Switcher};
pub use crate::telemetry::prometheus;
pub use crate::tls::{HANDSHAKE_MAX, Tls, TlsError};

/// The whole HTTP service over `state`: every route, the OpenAPI document, the request
/// limits and metrics. Serve it with [`serve`], or call it directly in tests.
pub fn router(state: AppState) -> Router {
    let api = OpenApiRouter::with_openapi(ApiDoc::openapi())
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
        .routes(routes!(domains::get_domains))
        .routes(routes!(admin::post_replay, admin::get_replay));
    // Only a server with resource types has `/{resource}` routes: without them every path
    // that is no other route stays a `404` of the fallback.
    let api = if state.resources().is_some() {
        api.routes(routes!(resources::list_resources, resources::post_resource))
            .routes(routes!(
                resources::get_resource,
                resources::put_resource,
                resources::patch_resource,
                resources::delete_resource
            ))
            .routes(routes!(resources::post_custom))
    } else {
        api
    };
    let (api, openapi) = api.split_for_parts();
    debug_assert!(
        gate::OPERATIONS
            .iter()
            .chain([&gate::STATUS_ROUTE])
            .chain(&gate::QUERY_ROUTES)
            .all(|route| openapi.paths.paths.contains_key(*route))
    );
    let document = ops::OpenApiDocument::new(openapi, &state.engine(), state.tokens().is_some());
    let domains = domains::DomainsDocument::new(&state);
    let api = api
        .layer(axum::Extension(document))
        .layer(axum::Extension(domains))
        .layer(DefaultBodyLimit::max(state.options().body_bytes_max))
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(gate::GateLayer::new(
            Arc::clone(&state.inner.requests),
            Arc::clone(&state.inner.waits),
        ));
    // Outside the gate: a request without a valid token is refused before it takes a
    // place there, and before its body is read. Without tokens there is no check at all.
    let api = match state.tokens() {
        Some(tokens) => api.layer(access::AccessLayer::new(tokens.clone())),
        None => api,
    };
    api.with_state(state)
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
///
/// The connections are served on the runtime this runs on, or, with
/// [`ServerOptions::http_threads`] above 0, on that many worker threads of their own, each
/// connection on one from its accept to its close (`workers.rs`).
///
/// Connections are held to [`ServerOptions::head_timeout`], `body_timeout` and
/// `idle_timeout`, and a request's body is read whole before the request is admitted (see
/// `connections.rs`). The process's soft limit on open files is raised to its hard limit
/// first ([`raise_open_files_limit`]), with a warning when that is below
/// [`ServerOptions::connections_max`].
pub async fn serve(
    address: &str,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    serve_with(address, state, None, shutdown).await
}

/// As [`serve`], with HTTPS (and WSS) on the same port when `tls` is given: then the line
/// printed is `listening on https://HOST:PORT`. The head deadline starts once the TLS
/// handshake is done (a handshake has its own bound).
pub async fn serve_with(
    address: &str,
    state: AppState,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let connections_max = state.options().connections_max;
    match raise_open_files_limit() {
        Ok(files) if files.soft < connections_max as u64 + FILES_RESERVED => tracing::warn!(
            open_files_max = files.soft,
            connections_max,
            "the limit on open files is below --connections-max; accepts will fail sooner"
        ),
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "cannot read or raise the limit on open files"),
    }
    // Room in the listen backlog for as many connections as may be open.
    let backlog = u32::try_from(state.options().connections_max).unwrap_or(u32::MAX);
    let tcp = listener::bind(address, backlog)
        .await
        .map_err(|source| ServeError::Bind {
            address: address.to_owned(),
            source,
        })?;
    let limited = listener::Limited::new(tcp, connections_max);
    // With `http_threads`, workers of their own (stopped when dropped, at the end); else
    // the caller's runtime serves.
    let workers = match state.options().http_threads {
        0 => None,
        threads => Some(Workers::start(threads)?),
    };
    serve_on(limited, tls, workers.as_ref(), state, shutdown).await
}

/// Serves on `listener` until `shutdown`, then drains and shuts the engine down.
async fn serve_on(
    listener: listener::Limited,
    tls: Option<Tls>,
    workers: Option<&Workers>,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let local = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    // Polled once before the announcement, so that whatever it sets up (signal handlers)
    // is in place when a script that read the address signals the server.
    let mut shutdown = Box::pin(shutdown);
    let signalled =
        std::future::poll_fn(|cx| Poll::Ready(shutdown.as_mut().poll(cx).is_ready())).await;
    announce(scheme, local)?;
    match state.tokens() {
        Some(tokens) => tracing::info!(
            address = %local,
            domains = ?state.engine().registry().domain_names(),
            tokens = tokens.names().len(),
            "listening; every route but /health needs a bearer token"
        ),
        None => tracing::warn!(
            address = %local,
            domains = ?state.engine().registry().domain_names(),
            "listening with open access: no tokens (--tokens), so every route answers anyone who can connect"
        ),
    }

    let grace = state.options().shutdown_grace;
    let (deadline_tx, deadline_rx) = tokio::sync::oneshot::channel::<Instant>();
    let draining = {
        let state = state.clone();
        async move {
            if !signalled {
                shutdown.await;
            }
            tracing::info!(
                grace_s = grace.as_secs_f64(),
                "shutting down: no new connections; finishing requests"
            );
            let _ = deadline_tx.send(Instant::now() + grace);
            state.begin_shutdown();
        }
    };
    if let Some(workers) = workers {
        tracing::info!(
            workers = workers.len(),
            "HTTP worker threads of their own, a connection on one from accept to close"
        );
    }
    let server = connections::serve(
        listener,
        tls.as_ref().map(Tls::acceptor),
        workers,
        router(state.clone()),
        state.tokens().cloned(),
        state.options(),
        draining,
    );
    let mut server = std::pin::pin!(server);
    let mut deadline_rx = std::pin::pin!(deadline_rx);
    let deadline = tokio::select! {
        () = &mut server => {
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
    let engine = state.engine();
    let read = state.read_side();
    tokio::task::spawn_blocking(move || {
        engine.shutdown();
        if let Some(read) = read {
            read.models.shutdown();
        }
    })
    .await
    .map_err(io::Error::other)?;
    tracing::info!("engine shut down; every accepted command is synced");
    Ok(())
}

/// Descriptors the process needs besides its connections: the data directory's files,
/// the listener, logs.
const FILES_RESERVED: u64 = 64;

/// Prints the one line that tells scripts and tests where the server listens.
fn announce(scheme: &str, address: SocketAddr) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "listening on {scheme}://{address}")?;
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
