//! The edge: the accept loop, and what a connection may cost before it has sent a request.
//!
//! Each accepted connection is served by hyper's HTTP/1.1 connection (with upgrades, for
//! `/ws`) on a task of its own, under three deadlines:
//!
//! - **head** (`head_timeout`): a connection must send a whole request head within it,
//!   counted from its accept for the first request and from the head's first byte for the
//!   next ones; otherwise it is closed without an answer. A head is at most
//!   [`HEAD_BYTES_MAX`].
//! - **body** (`body_timeout`): a request's body must arrive whole within it, counted from
//!   the end of the head. The body is read here, before the request reaches the router and
//!   its gate, so a request takes a request place only once it is whole; a late body is
//!   answered `408` and its connection closed.
//! - **idle** (`idle_timeout`): after a response, the next request's first byte must come
//!   within it; otherwise the connection is closed.
//!
//! A request in progress (its handler running, its response being written, a server-sent
//! event stream, a long poll) has no deadline here: those keep their own bounds. A
//! connection upgraded to a WebSocket leaves the edge's clock for the socket's pings and
//! idle bound.
//!
//! The head and idle deadlines are kept by the connection's reads ([`TimedIo`]): while
//! hyper waits for bytes that do not come, the read also waits on one timer, moved only
//! when the connection's state changes, and fails with `TimedOut` when it fires, which
//! ends hyper's connection. So a slow or silent client costs a socket and a few KiB for at
//! most the deadline, and no task wakes for it in between.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header, request};
use axum::response::{IntoResponse, Response};
use axum::routing::future::RouteFuture;
use futures_util::task::AtomicWaker;
use http_body_util::combinators::Collect;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;

use crate::access::{self, Caller, Tokens};
use crate::listener::{self, Connection};
use crate::options::ServerOptions;
use crate::problem::{ApiError, ProblemKind};
use crate::telemetry::{self, Closed, OpenGauge};
use crate::tls;
use crate::workers::Workers;

/// The largest request head (request line and headers); a larger one is answered `431`.
/// With the head deadline, it bounds what a slow head holds.
pub(crate) const HEAD_BYTES_MAX: usize = 64 << 10;

/// Serves `router` on the connections `listener` accepts until `signal` resolves; then
/// stops accepting, lets each connection finish its request in progress (idle ones close
/// at once), and returns once every connection has closed. Dropping the future closes
/// them all.
///
/// Each connection is served, from its TLS handshake when `tls` is given to its close, on
/// a task of its own: on one of `workers` (the one with the fewest open) when given, else
/// on this runtime.
pub(crate) async fn serve(
    mut listener: listener::Limited,
    tls: Option<TlsAcceptor>,
    workers: Option<&Workers>,
    router: Router,
    tokens: Option<Tokens>,
    options: &ServerOptions,
    signal: impl Future<Output = ()>,
) {
    telemetry::register_connection_metrics();
    let edge = Edge {
        router,
        deadlines: Deadlines {
            head: options.head_timeout,
            idle: options.idle_timeout,
        },
        body_timeout: options.body_timeout,
        body_bytes_max: options.body_bytes_max,
        reading: Arc::new(Semaphore::new(
            options
                .body_reading_bytes_max
                .max(options.body_bytes_max)
                .min(Semaphore::MAX_PERMITS),
        )),
        tokens,
    };
    let addresses = (options.connections_per_address_max > 0)
        .then(|| Arc::new(PerAddress::new(options.connections_per_address_max)));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut signal = pin!(signal);
    loop {
        tokio::select! {
            (stream, address, permit) = listener.accept() => {
                let slot = match &addresses {
                    None => None,
                    Some(addresses) => match PerAddress::take(addresses, address) {
                        Some(slot) => Some(slot),
                        None => {
                            Closed::AddressMax.record();
                            continue; // dropped: closed
                        }
                    },
                };
                // Handed to a worker, the stream leaves this runtime's reactor for the
                // worker's, so that its readiness wakes that worker alone.
                let (stream, worker) = match workers {
                    None => (Stream::Here(stream), None),
                    Some(workers) => match stream.into_std() {
                        Ok(stream) => (Stream::Moved(stream), Some(workers.pick())),
                        Err(error) => {
                            tracing::debug!(%address, %error, "cannot hand the connection to a worker; closed");
                            continue;
                        }
                    },
                };
                let served = served_connection(
                    stream,
                    permit,
                    address,
                    tls.clone(),
                    slot,
                    edge.clone(),
                    shutdown_rx.clone(),
                );
                match worker {
                    None => {
                        connections.spawn(served);
                    }
                    Some((worker, placed)) => {
                        connections.spawn_on(
                            async move {
                                let _placed = placed;
                                served.await;
                            },
                            worker,
                        );
                    }
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = &mut signal => break,
        }
    }
    drop(listener);
    shutdown_tx.send_replace(true);
    while connections.join_next().await.is_some() {}
}

/// A connection's stream: registered with this runtime's reactor, or, handed to a worker,
/// not yet registered with any (it joins the reactor of the runtime its task runs on).
enum Stream {
    Here(tokio::net::TcpStream),
    Moved(std::net::TcpStream),
}

/// A connection on its task: its stream registered where the task runs, its TLS handshake
/// when `tls` is given (given up on at shutdown), then served.
async fn served_connection(
    stream: Stream,
    permit: OwnedSemaphorePermit,
    address: SocketAddr,
    tls: Option<TlsAcceptor>,
    slot: Option<AddressSlot>,
    edge: Edge,
    mut shutdown: watch::Receiver<bool>,
) {
    let stream = match stream {
        Stream::Here(stream) => stream,
        Stream::Moved(stream) => match tokio::net::TcpStream::from_std(stream) {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!(%address, %error, "cannot serve the connection on its worker; closed");
                return;
            }
        },
    };
    let io = Connection::new(stream, permit);
    match tls {
        None => connection(io, slot, edge, shutdown).await,
        Some(acceptor) => {
            let shaken = tokio::select! {
                shaken = tls::handshake(&acceptor, io, address) => shaken,
                _ = shutdown.wait_for(|down| *down) => None,
            };
            if let Some(io) = shaken {
                connection(io, slot, edge, shutdown).await;
            }
        }
    }
}

/// Serves one connection to its end, or until shutdown and its request in progress ends.
async fn connection<I>(
    io: I,
    slot: Option<AddressSlot>,
    edge: Edge,
    mut shutdown: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let clock = Arc::new(Clock::new());
    let io = TimedIo {
        io,
        clock: Arc::clone(&clock),
        deadlines: edge.deadlines,
        timer: None,
        _slot: slot,
        _open: OpenGauge::connection(),
    };
    let service = EdgeService {
        edge,
        clock,
        id: ConnectionId::next(),
    };
    let mut builder = http1::Builder::new();
    // The head deadline is kept by `TimedIo`, which tells a first head from an idle wait.
    builder
        .header_read_timeout(None)
        .max_header_size(HEAD_BYTES_MAX);
    let mut served = pin!(
        builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades()
    );
    tokio::select! {
        result = served.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
            }
            return;
        }
        _ = shutdown.wait_for(|down| *down) => {}
    }
    served.as_mut().graceful_shutdown();
    if let Err(error) = served.await {
        tracing::debug!(%error, "connection ended with an error");
    }
}

/// The head and idle deadlines.
#[derive(Debug, Clone, Copy)]
struct Deadlines {
    head: Duration,
    idle: Duration,
}

/// What the deadlines of one connection are counted from. Written by the connection's
/// reads and by its requests, both on the connection's task (and by an upgraded socket's
/// reads, which no longer look at it); atomics only to share it.
#[derive(Debug)]
struct Clock {
    accepted: Instant,
    /// A request is in progress: its head is read, its response not yet all written.
    busy: AtomicBool,
    /// A request head was read on this connection.
    served: AtomicBool,
    /// The connection was upgraded (`101 Switching Protocols`): it keeps no deadline here.
    upgraded: AtomicBool,
    /// When the last response ended, in nanoseconds since `accepted`.
    idle_since_ns: AtomicU64,
    /// When the first byte of the next head arrived, in nanoseconds since `accepted`;
    /// [`Clock::NONE`] while none has.
    head_since_ns: AtomicU64,
    /// The connection's read, when it waits without a deadline (during a request): woken
    /// when the request ends, so that the wait goes on under the idle deadline. (hyper
    /// reads again only when the socket is readable.)
    reader: AtomicWaker,
}

impl Clock {
    const NONE: u64 = u64::MAX;

    fn new() -> Self {
        Self {
            accepted: Instant::now(),
            busy: AtomicBool::new(false),
            served: AtomicBool::new(false),
            upgraded: AtomicBool::new(false),
            idle_since_ns: AtomicU64::new(0),
            head_since_ns: AtomicU64::new(Self::NONE),
            reader: AtomicWaker::new(),
        }
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.accepted.elapsed().as_nanos()).unwrap_or(Self::NONE - 1)
    }

    fn at(&self, ns: u64) -> Instant {
        self.accepted + Duration::from_nanos(ns)
    }

    /// Bytes came in. Outside a request they begin the next head. (Within one they are its
    /// body, or a pipelined next request, which then waits under the idle deadline.)
    fn bytes_arrived(&self) {
        if !self.busy.load(Ordering::Relaxed)
            && self.head_since_ns.load(Ordering::Relaxed) == Self::NONE
        {
            self.head_since_ns.store(self.now_ns(), Ordering::Relaxed);
        }
    }

    /// A request head was read.
    fn request_began(&self) {
        self.busy.store(true, Ordering::Relaxed);
        self.served.store(true, Ordering::Relaxed);
        self.head_since_ns.store(Self::NONE, Ordering::Relaxed);
    }

    /// The request's response was written whole, or the request was dropped.
    fn request_ended(&self) {
        self.idle_since_ns.store(self.now_ns(), Ordering::Relaxed);
        self.head_since_ns.store(Self::NONE, Ordering::Relaxed);
        self.busy.store(false, Ordering::Relaxed);
        self.reader.wake();
    }

    /// The deadline the connection's reads are under now, if any, and what passing it
    /// means.
    fn deadline(&self, deadlines: Deadlines) -> Option<(Instant, Closed)> {
        if self.busy.load(Ordering::Relaxed) || self.upgraded.load(Ordering::Relaxed) {
            return None;
        }
        let head_since = self.head_since_ns.load(Ordering::Relaxed);
        if !self.served.load(Ordering::Relaxed) {
            Some((self.accepted + deadlines.head, Closed::HeadTimeout))
        } else if head_since != Self::NONE {
            Some((self.at(head_since) + deadlines.head, Closed::HeadTimeout))
        } else {
            let idle_since = self.idle_since_ns.load(Ordering::Relaxed);
            Some((self.at(idle_since) + deadlines.idle, Closed::Idle))
        }
    }
}

/// An accepted connection whose reads keep the head and idle deadlines: a read that waits
/// past the deadline fails with `TimedOut`.
struct TimedIo<I> {
    io: I,
    clock: Arc<Clock>,
    deadlines: Deadlines,
    /// Armed at the first read that waits; moved when the deadline moves.
    timer: Option<Pin<Box<Sleep>>>,
    _slot: Option<AddressSlot>,
    _open: OpenGauge,
}

impl<I: AsyncRead + Unpin> AsyncRead for TimedIo<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let filled = buf.filled().len();
        if let Poll::Ready(result) = Pin::new(&mut this.io).poll_read(cx, buf) {
            if buf.filled().len() > filled {
                this.clock.bytes_arrived();
            }
            return Poll::Ready(result);
        }
        let Some((deadline, reason)) = this.clock.deadline(this.deadlines) else {
            if !this.clock.upgraded.load(Ordering::Relaxed) {
                this.clock.reader.register(cx.waker());
            }
            return Poll::Pending;
        };
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        reason.record();
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            match reason {
                Closed::Idle => "no request within the idle deadline",
                _ => "no whole request head within the head deadline",
            },
        )))
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for TimedIo<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// What every connection's service shares.
#[derive(Clone)]
struct Edge {
    router: Router,
    deadlines: Deadlines,
    body_timeout: Duration,
    body_bytes_max: usize,
    /// Bytes of bodies being read (see [`ServerOptions::body_reading_bytes_max`]).
    reading: Arc<Semaphore>,
    /// With `--tokens`, the tokens: a request without a valid one has its body left
    /// unread (the access check answers `401` without it), so that strangers cannot spend
    /// the room of the bodies being read.
    tokens: Option<Tokens>,
}

/// One connection's service: reads each request's body under the body deadline, then
/// hands the whole request to the router, its [`ConnectionId`] in its extensions; marks
/// the connection busy until the response is written.
struct EdgeService {
    edge: Edge,
    clock: Arc<Clock>,
    id: ConnectionId,
}

/// Which connection a request came on, in its extensions: the server's connections are
/// numbered from 1 as they open. [`AppState::alone`](crate::state::AppState::alone) tells
/// a lone client, whose requests all come on one connection, from several clients served
/// one after the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnectionId(pub(crate) u64);

impl ConnectionId {
    fn next() -> Self {
        static OPENED: AtomicU64 = AtomicU64::new(0);
        Self(OPENED.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

impl hyper::service::Service<hyper::Request<Incoming>> for EdgeService {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = EdgeFuture;

    fn call(&self, request: hyper::Request<Incoming>) -> EdgeFuture {
        self.clock.request_began();
        let busy = Busy(Arc::clone(&self.clock));
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(self.id);
        let max = self.edge.body_bytes_max;
        let step = if body.is_end_stream() {
            Step::Routing(route(&self.edge.router, parts, Body::new(body)))
        } else if self.edge.stranger(&mut parts) {
            Step::Routing(route(&self.edge.router, parts, Body::empty()))
        } else if body.size_hint().lower() > max as u64 {
            Step::Answered(Some(too_large(max)))
        } else if let Some(reserved) = self.edge.reserve(&body) {
            Step::Reading(Box::new(Reading {
                _reserved: reserved,
                parts: Some(parts),
                body: Limited::new(body, max).collect(),
                deadline: Instant::now() + self.edge.body_timeout,
                timer: None,
                router: self.edge.router.clone(),
                body_bytes_max: max,
            }))
        } else {
            telemetry::record_bodies_refused();
            Step::Answered(Some(
                ApiError::overloaded(
                    "the bodies being read take all the server's room for them; retry shortly",
                )
                .into_response(),
            ))
        };
        EdgeFuture {
            step,
            busy: Some(busy),
        }
    }
}

impl Edge {
    /// Whether the server wants tokens and this request carries no valid one: its body is
    /// not read (the access check refuses it whatever the body). A valid one's grant goes
    /// into the request as its [`Caller`], so that the access check does not hash the token
    /// again.
    fn stranger(&self, parts: &mut request::Parts) -> bool {
        let Some(tokens) = &self.tokens else {
            return false;
        };
        match access::bearer_token(&parts.headers).and_then(|token| tokens.grant(token)) {
            Some(grant) => {
                parts.extensions.insert(Caller(Arc::clone(grant)));
                false
            }
            None => true,
        }
    }

    /// Reserves room for `body`'s bytes: its exact length when the head names one, else the
    /// bound on a body. `None` when it does not fit now.
    fn reserve(&self, body: &Incoming) -> Option<ReadingPermit> {
        let hint = body.size_hint();
        let bytes = hint
            .upper()
            .filter(|&upper| upper == hint.lower())
            .unwrap_or(self.body_bytes_max as u64)
            .min(self.body_bytes_max as u64);
        let bytes = u32::try_from(bytes).unwrap_or(u32::MAX).max(1);
        let permit = Arc::clone(&self.reading)
            .try_acquire_many_owned(bytes)
            .ok()?;
        Some(ReadingPermit::new(permit))
    }
}

/// Bytes reserved for a body being read, shown in `writ_http_body_reading_bytes`.
struct ReadingPermit {
    permit: OwnedSemaphorePermit,
}

impl ReadingPermit {
    fn new(permit: OwnedSemaphorePermit) -> Self {
        telemetry::body_reading_bytes(permit.num_permits() as f64);
        Self { permit }
    }
}

impl Drop for ReadingPermit {
    fn drop(&mut self) {
        telemetry::body_reading_bytes(-(self.permit.num_permits() as f64));
    }
}

fn route(router: &Router, parts: request::Parts, body: Body) -> RouteFuture<Infallible> {
    let mut router = router.clone();
    tower::Service::call(&mut router, Request::from_parts(parts, body))
}

/// A request's way through [`EdgeService`].
enum Step {
    /// Its body is on its way.
    Reading(Box<Reading>),
    /// Whole, with the router.
    Routing(RouteFuture<Infallible>),
    /// Answered at the edge (`408`, `413`, `400`).
    Answered(Option<Response>),
}

struct Reading {
    /// The body's bytes under [`Edge::reading`], given back when the body is whole (or the
    /// request ends): from then on its request is bounded by the gate.
    _reserved: ReadingPermit,
    parts: Option<request::Parts>,
    body: Collect<Limited<Incoming>>,
    deadline: Instant,
    /// Armed only when the body is not there at the first read.
    timer: Option<Pin<Box<Sleep>>>,
    router: Router,
    body_bytes_max: usize,
}

impl Reading {
    /// The request to route once the body is whole, or the answer that ends it.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<RouteFuture<Infallible>, Response>> {
        match Pin::new(&mut self.body).poll(cx) {
            Poll::Ready(Ok(collected)) => {
                let parts = self.parts.take().expect("routed once");
                let body = Body::from(collected.to_bytes());
                Poll::Ready(Ok(route(&self.router, parts, body)))
            }
            Poll::Ready(Err(error)) if error.is::<LengthLimitError>() => {
                Poll::Ready(Err(too_large(self.body_bytes_max)))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(ApiError::malformed(format!(
                "cannot read the body: {error}"
            ))
            .into_response())),
            Poll::Pending => {
                let deadline = self.deadline;
                let timer = self
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                ready!(timer.as_mut().poll(cx));
                Closed::BodyTimeout.record();
                let mut response = ApiError::new(
                    ProblemKind::BodyTimeout,
                    "the body did not arrive whole within the body deadline",
                )
                .into_response();
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                Poll::Ready(Err(response))
            }
        }
    }
}

fn too_large(max: usize) -> Response {
    ApiError::new(
        ProblemKind::TooLarge,
        format!("the body exceeds {max} bytes"),
    )
    .into_response()
}

/// The response of [`EdgeService`].
struct EdgeFuture {
    step: Step,
    /// Handed to the response body, which holds it until it is written whole.
    busy: Option<Busy>,
}

impl Future for EdgeFuture {
    type Output = Result<Response<TrackedBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            let response = match &mut this.step {
                Step::Reading(reading) => {
                    match ready!(reading.poll(cx)) {
                        Ok(routing) => this.step = Step::Routing(routing),
                        Err(answer) => this.step = Step::Answered(Some(answer)),
                    }
                    continue;
                }
                Step::Routing(routing) => match ready!(Pin::new(routing).poll(cx)) {
                    Ok(response) => response,
                    Err(never) => match never {},
                },
                Step::Answered(answer) => answer.take().expect("answered once"),
            };
            let busy = this.busy.take().expect("answered once");
            if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                busy.0.upgraded.store(true, Ordering::Relaxed);
            }
            return Poll::Ready(Ok(response.map(|body| TrackedBody { body, _busy: busy })));
        }
    }
}

/// Marks a connection busy while it lives: from a request's head to the end of its
/// response.
struct Busy(Arc<Clock>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// A response body that keeps its connection busy until it is written whole (hyper drops
/// it then), so a server-sent event stream is never taken for an idle connection.
pub(crate) struct TrackedBody {
    body: Body,
    _busy: Busy,
}

impl hyper::body::Body for TrackedBody {
    type Data = <Body as hyper::body::Body>::Data;
    type Error = <Body as hyper::body::Body>::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Open connections by client address, under `connections_per_address_max`.
struct PerAddress {
    open: Mutex<HashMap<IpAddr, usize>>,
    max: usize,
}

impl PerAddress {
    fn new(max: usize) -> Self {
        Self {
            open: Mutex::new(HashMap::new()),
            max,
        }
    }

    /// A place for one more connection from `address`, or `None` at the bound.
    fn take(this: &Arc<Self>, address: SocketAddr) -> Option<AddressSlot> {
        let ip = address.ip();
        let mut open = this.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(ip).or_insert(0);
        if *count >= this.max {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            addresses: Arc::clone(this),
            ip,
        })
    }
}

/// One connection's place under its address's bound; given back on drop.
struct AddressSlot {
    addresses: Arc<PerAddress>,
    ip: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self
            .addresses
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEADLINES: Deadlines = Deadlines {
        head: Duration::from_secs(10),
        idle: Duration::from_secs(60),
    };

    #[test]
    fn a_new_connection_has_the_head_deadline_from_its_accept() {
        let clock = Clock::new();
        let (deadline, reason) = clock.deadline(DEADLINES).unwrap();
        assert_eq!(
            (deadline, reason),
            (clock.accepted + DEADLINES.head, Closed::HeadTimeout)
        );
        // Its first bytes do not move it.
        clock.bytes_arrived();
        assert_eq!(clock.deadline(DEADLINES), Some((deadline, reason)));
    }

    #[test]
    fn a_request_in_progress_has_no_deadline_and_then_the_idle_one() {
        let clock = Clock::new();
        clock.request_began();
        assert!(clock.deadline(DEADLINES).is_none());
        clock.bytes_arrived(); // its body
        assert!(clock.deadline(DEADLINES).is_none());
        let ended = Instant::now();
        clock.request_ended();
        let (deadline, reason) = clock.deadline(DEADLINES).unwrap();
        assert_eq!(reason, Closed::Idle);
        assert!(deadline >= ended + DEADLINES.idle);
        // The next head's first byte puts it under the head deadline.
        clock.bytes_arrived();
        let (deadline, reason) = clock.deadline(DEADLINES).unwrap();
        assert_eq!(reason, Closed::HeadTimeout);
        assert!(deadline <= Instant::now() + DEADLINES.head);
        // An upgraded connection keeps none.
        clock.upgraded.store(true, Ordering::Relaxed);
        assert!(clock.deadline(DEADLINES).is_none());
    }

    #[test]
    fn connections_per_address_are_bounded_and_given_back() {
        let addresses = Arc::new(PerAddress::new(2));
        let a: SocketAddr = "10.0.0.1:1000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:1000".parse().unwrap();
        let first = PerAddress::take(&addresses, a).unwrap();
        let _second = PerAddress::take(&addresses, a).unwrap();
        assert!(PerAddress::take(&addresses, a).is_none());
        let _other = PerAddress::take(&addresses, b).unwrap();
        drop(first);
        assert!(PerAddress::take(&addresses, a).is_some());
    }
}
