//! The layer every routed request passes: admission under `requests_max`, and the request
//! metrics.
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
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tower::{Layer, Service};

use crate::problem::ApiError;
use crate::telemetry::{method_label, record_request};

/// The operations routes: outside the request bound, so they answer under overload.
pub(crate) const OPERATIONS: [&str; 3] = ["/health", "/metrics", "/openapi.json"];

/// Admits API requests while fewer than the bound are in progress (beyond it they are
/// answered `503` at once; operations always answer), and counts and times every request
/// by method, route template and status. The route is the matched template
/// (`/update/{id}`), never the raw URI, so the number of series stays bounded.
#[derive(Debug, Clone)]
pub(crate) struct GateLayer {
    requests: Arc<Semaphore>,
}

impl GateLayer {
    pub(crate) fn new(requests: Arc<Semaphore>) -> Self {
        Self { requests }
    }
}

impl<S> Layer<S> for GateLayer {
    type Service = Gate<S>;

    fn layer(&self, inner: S) -> Gate<S> {
        Gate {
            inner,
            requests: Arc::clone(&self.requests),
        }
    }
}

/// See [`GateLayer`].
#[derive(Debug, Clone)]
pub(crate) struct Gate<S> {
    inner: S,
    requests: Arc<Semaphore>,
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
            match Arc::clone(&self.requests).try_acquire_owned() {
                Ok(admitted) => permit = Some(admitted),
                Err(_) => {
                    let shed =
                        ApiError::overloaded("too many requests are in progress").into_response();
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
