//! The layer every routed request passes: admission under `requests_max` (requests that
//! wait, under `waits_max`), and the request metrics.
//!
//! Under [`serve`](crate::serve) a request reaches the gate with its body read whole
//! (`connections.rs`, under `body_timeout`), so a slow client never holds a place here.
//!
//! Written as a plain tower layer rather than `middleware::from_fn` because it sits on the
//! hot path: `from_fn` clones the route's boxed service and boxes a future per request,
//! which measured as a tenth of the server's time per `POST /update`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::extract::{MatchedPath, Request};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tower::{Layer, Service};

use crate::params::StatusParams;
use crate::problem::ApiError;
use crate::resources::RESOURCE_ROUTES;
use crate::telemetry::{method_label, record_request};

/// The operations routes: outside the request bound, so they answer under overload.
pub(crate) const OPERATIONS: [&str; 4] = ["/health", "/metrics", "/openapi.json", "/domains"];

/// The route whose `?wait=` makes a long poll.
pub(crate) const STATUS_ROUTE: &str = "/update/{id}";

/// The routes whose `?after=` waits for the read model.
pub(crate) const QUERY_ROUTES: [&str; 2] = ["/query/{version}/{name}", "/query/{version}"];

/// Admits API requests while fewer than the bound are in progress (beyond it they are
/// answered `503` at once; operations always answer), and counts and times every request
/// by method, route template and status. Requests that wait (long polls, queries with
/// `?after=`) are admitted under a bound of their own, so that waiting clients never take
/// the places of commands. The route is the matched template (`/update/{id}`), never the
/// raw URI, so the number of series stays bounded.
#[derive(Debug, Clone)]
pub(crate) struct GateLayer {
    requests: Arc<Semaphore>,
    waits: Arc<Semaphore>,
}

impl GateLayer {
    pub(crate) fn new(requests: Arc<Semaphore>, waits: Arc<Semaphore>) -> Self {
        Self { requests, waits }
    }
}

impl<S> Layer<S> for GateLayer {
    type Service = Gate<S>;

    fn layer(&self, inner: S) -> Gate<S> {
        Gate {
            inner,
            requests: Arc::clone(&self.requests),
            waits: Arc::clone(&self.waits),
        }
    }
}

/// See [`GateLayer`].
#[derive(Debug, Clone)]
pub(crate) struct Gate<S> {
    inner: S,
    requests: Arc<Semaphore>,
    waits: Arc<Semaphore>,
}

impl<S> Service<Request> for Gate<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = Infallible;
    type Future = GateFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let method = method_label(request.method());
        let route = request.extensions().get::<MatchedPath>().cloned();
        let bounded = route
            .as_ref()
            .is_some_and(|r| !OPERATIONS.contains(&r.as_str()));
        let mut permit = None;
        if bounded {
            let (places, detail) = if route
                .as_ref()
                .is_some_and(|r| waits(r.as_str(), request.uri()))
            {
                (
                    &self.waits,
                    "too many requests are waiting (long polls, ?after=)",
                )
            } else {
                (&self.requests, "too many requests are in progress")
            };
            match Arc::clone(places).try_acquire_owned() {
                Ok(admitted) => permit = Some(admitted),
                Err(_) => {
                    let shed = ApiError::overloaded(detail).into_response();
                    return GateFuture {
                        inner: None,
                        shed: Some(shed),
                        permit: None,
                        started,
                        method,
                        route,
                    };
                }
            }
        }
        GateFuture {
            inner: Some(self.inner.call(request)),
            shed: None,
            permit,
            started,
            method,
            route,
        }
    }
}

/// Whether a request to `route` may wait: `GET /update/{id}` with a `wait` above 0 (a
/// long poll; a malformed `wait` is answered `400` at once, so it is no wait), or a query
/// with an `after` parameter (whatever its value: a malformed one is answered at once).
fn waits(route: &str, uri: &Uri) -> bool {
    let Some(query) = uri.query() else {
        return false;
    };
    if route == STATUS_ROUTE {
        StatusParams::from_uri(uri)
            .ok()
            .and_then(|params| params.wait)
            .is_some_and(|wait| wait > 0)
    } else if QUERY_ROUTES.contains(&route) || RESOURCE_ROUTES.contains(&route) {
        query
            .split('&')
            .any(|pair| pair.split('=').next() == Some("after"))
    } else {
        false
    }
}

/// The response of a [`Gate`]d request; records it when it is ready.
#[derive(Debug)]
pub(crate) struct GateFuture<F> {
    inner: Option<F>,
    shed: Option<Response>,
    permit: Option<OwnedSemaphorePermit>,
    started: Instant,
    method: &'static str,
    route: Option<MatchedPath>,
}

impl<F> Future for GateFuture<F>
where
    F: Future<Output = Result<Response, Infallible>> + Unpin,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let response = match this.inner.as_mut() {
            Some(inner) => ready!(Pin::new(inner).poll(cx))?,
            None => this
                .shed
                .take()
                .expect("a shed request is polled to completion once"),
        };
        this.permit = None;
        let route = this.route.as_ref().map_or("unmatched", MatchedPath::as_str);
        record_request(
            this.method,
            route,
            response.status().as_u16(),
            this.started.elapsed().as_secs_f64(),
        );
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::Router;
    use axum::body::Body;
    use axum::http::{Method, StatusCode};
    use axum::routing::{get, post};
    use tower::ServiceExt;

    use super::*;

    /// Handlers that never answer, so an admitted request keeps its place.
    fn app(requests: usize, waits: usize) -> Router {
        Router::new()
            .route(STATUS_ROUTE, get(std::future::pending::<&'static str>))
            .route(QUERY_ROUTES[0], get(std::future::pending::<&'static str>))
            .route("/update", post(std::future::pending::<&'static str>))
            .layer(GateLayer::new(
                Arc::new(Semaphore::new(requests)),
                Arc::new(Semaphore::new(waits)),
            ))
    }

    fn request(method: Method, uri: &str) -> Request {
        Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap()
    }

    /// Sends a request that is admitted: it is still waiting for its handler when this
    /// returns, holding its place until the returned future is dropped.
    async fn admitted(
        app: &Router,
        method: Method,
        uri: &str,
    ) -> impl Future<Output = Result<Response, Infallible>> + use<> {
        let mut waiting = Box::pin(app.clone().oneshot(request(method, uri)));
        let polled = tokio::time::timeout(Duration::from_millis(20), &mut waiting).await;
        assert!(polled.is_err(), "{uri} was answered instead of admitted");
        waiting
    }

    /// Sends a request that must be shed at once; returns the problem's detail.
    async fn shed(app: &Router, method: Method, uri: &str) -> String {
        let response = tokio::time::timeout(
            Duration::from_secs(10),
            app.clone().oneshot(request(method, uri)),
        )
        .await
        .unwrap_or_else(|_| panic!("{uri} was admitted instead of shed"))
        .unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        assert!(response.headers().contains_key("retry-after"), "{uri}");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        problem["detail"].as_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn requests_that_wait_are_admitted_under_their_own_bound() {
        let app = app(1, 1);
        let id = "6f1c1f0e-2a8e-4d38-9a53-0c3c8a1e5b11";
        let poll = format!("/update/{id}?wait=30");

        // One long poll fills the places for requests that wait, and only those.
        let first_poll = admitted(&app, Method::GET, &poll).await;
        let detail = shed(&app, Method::GET, &poll).await;
        assert!(detail.contains("waiting"), "{detail}");
        let detail = shed(&app, Method::GET, "/query/v1/getCounter?id=c-1&after=7").await;
        assert!(detail.contains("waiting"), "{detail}");
        let command = admitted(&app, Method::POST, "/update").await;

        // Now requests are full too. A status read without a wait, with `wait=0` or with
        // a malformed wait (the handler's 400) is an ordinary request.
        for uri in [
            format!("/update/{id}"),
            format!("/update/{id}?wait=0"),
            format!("/update/{id}?wait=soon"),
            "/query/v1/getCounter?id=c-1".to_owned(),
            "/query/v1/getCounter?id=c-1&afterwards=7".to_owned(),
        ] {
            let detail = shed(&app, Method::GET, &uri).await;
            assert!(detail.contains("requests"), "{uri}: {detail}");
        }
        let detail = shed(&app, Method::POST, "/update").await;
        assert!(detail.contains("requests"), "{detail}");

        // Places come back when requests end.
        drop(first_poll);
        let _second_poll = admitted(&app, Method::GET, &poll).await;
        drop(command);
        let _command = admitted(&app, Method::POST, "/update").await;
    }
}
