//! What the router tests share: calling the router as a client would, and reading its
//! answer. Each test file adds the checks of its own concern as further `impl Answer`
//! blocks.

// Each test file is its own crate and uses only some of these.
#![allow(dead_code)]

use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use writ_engine::EngineOptions;
use writ_log::LogOptions;
use writ_server::wire::CommandStatusBody;

/// A bound for waits that should end at once; never a timing assertion. A hang fails the
/// test with the step that hung.
pub const BOUND: Duration = Duration::from_secs(30);

/// A response, its body read to the end.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .map_or("", |v| v.to_str().unwrap())
    }

    /// The command status of a `200`.
    pub fn status_body(&self) -> CommandStatusBody {
        assert_eq!(self.status, StatusCode::OK, "{}", self.text());
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// Sends `request` through the router and reads the whole answer, each within [`BOUND`].
pub async fn call(app: &Router, request: Request<Body>) -> Answer {
    call_at_head(app, request, || ()).await.0
}

/// As [`call`], and runs `at_head` the moment the response head arrives, before the body
/// is read; returns what it returned.
pub async fn call_at_head<T>(
    app: &Router,
    request: Request<Body>,
    at_head: impl FnOnce() -> T,
) -> (Answer, T) {
    let response = tokio::time::timeout(BOUND, app.clone().oneshot(request))
        .await
        .expect("the router answers")
        .unwrap();
    let seen = at_head();
    let (parts, body) = response.into_parts();
    let body = tokio::time::timeout(BOUND, body.collect())
        .await
        .expect("the body ends")
        .unwrap()
        .to_bytes();
    let answer = Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    };
    (answer, seen)
}

pub fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

/// A `POST` of a JSON body to `uri`.
pub fn post_json(uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .unwrap()
}

/// The defaults with 4 MiB log segments: a test writes little and opens fast, and the
/// preallocator starts only once a segment is half full, which these tests never reach,
/// so every write and sync is the pipeline's own.
pub fn small_engine_options() -> EngineOptions {
    EngineOptions {
        log: LogOptions {
            segment_bytes: 4 << 20,
            record_bytes_max: 2 << 20,
            ..LogOptions::default()
        },
        ..EngineOptions::default()
    }
}

/// Shuts `engine` down (a poisoned one too) on a blocking thread, within [`BOUND`].
pub async fn shut_down(engine: std::sync::Arc<writ_engine::Engine>) {
    tokio::time::timeout(
        BOUND,
        tokio::task::spawn_blocking(move || engine.shutdown()),
    )
    .await
    .expect("the engine shuts down")
    .unwrap();
}

/// Opens an engine of domain `D` alone (writ-server's tests use writ-fixtures' counters;
/// this file is shared with writ-app's tests, which have other domains).
pub fn open_domain<D: writ_domain::Domain>(
    storage: std::sync::Arc<dyn writ_log::storage::Storage>,
    options: EngineOptions,
) -> Result<(writ_engine::Engine, writ_engine::RecoveryReport), writ_engine::OpenError> {
    let registry = writ_engine::Registry::builder()
        .domain(writ_domain::model::domain::<D>())
        .build()
        .expect("one domain");
    writ_engine::Engine::open(storage, registry, options)
}

/// Opens an engine of domain `D` with the built-in domain of read model switches
/// (`writ_query::switch`) for read models `specs`, as `writ-app` registers it.
pub fn open_with_switches<D: writ_domain::Domain>(
    storage: std::sync::Arc<dyn writ_log::storage::Storage>,
    options: EngineOptions,
    specs: &[writ_query::ReadModelSpec],
) -> writ_engine::Engine {
    let registry = writ_engine::Registry::builder()
        .domain(writ_domain::model::domain::<D>())
        .domain(writ_query::switch::domain(specs))
        .build()
        .expect("no clash");
    writ_engine::Engine::open(storage, registry, options)
        .expect("opens")
        .0
}
