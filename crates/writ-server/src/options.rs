//! The server's limits and timings.

use std::time::Duration;

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
    /// Open connections from one client address (IP); beyond it a new connection is closed
    /// as soon as it is accepted. 0, the default, for no such bound: clients behind a proxy
    /// or a NAT share one address.
    pub connections_per_address_max: usize,
    /// How long a connection may take to send a whole request head: from its accept for
    /// the first request, from the head's first byte for the next ones. Then it is closed
    /// without an answer. Until then a slow or silent client holds one socket and its read
    /// buffer (a head is at most 64 KiB), never a request place. Default 10 s.
    pub head_timeout: Duration,
    /// How long a request's body may take to arrive whole, from the end of its head. The
    /// body is read before the request is admitted under `requests_max`, so a trickled body
    /// holds a socket and its bytes so far (at most `body_bytes_max`), never a request
    /// place; once it is late the answer is `408` and the connection is closed. Default
    /// 10 s.
    pub body_timeout: Duration,
    /// Most bytes of request bodies being read at once, over all connections. A body
    /// reserves its `Content-Length` (or `body_bytes_max` when it names none) before it is
    /// read; when the reservation does not fit, the request is answered `503` with
    /// `Retry-After` at once, its body unread. So bodies on their way cost at most this much
    /// memory, however many connections trickle them. Default 256 MiB (about a million
    /// 200-byte commands, or 240 bodies of unknown length).
    pub body_reading_bytes_max: usize,
    /// How long a keep-alive connection may wait, after its last response, for the first
    /// byte of its next request; then it is closed. An idle connection costs its socket and
    /// a few KiB; closing it costs its client a new connection, or a retry when a request
    /// crossed the close. 60 s, as common load balancers' idle timeouts, keeps clients that
    /// come back within a minute on warm connections. Default 60 s.
    pub idle_timeout: Duration,
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
    /// Most bytes of JSON a named query (`GET /query/v{N}/{name}`) may build for its
    /// answer; a query that would build more (every item of a huge list) stops and
    /// answers `422` (`memory_limit`) naming the bound, so one request never makes the
    /// server allocate without limit. Default 32 MiB, what query code gets for one library
    /// answer with the sandbox's default memory limit.
    pub query_answer_bytes_max: usize,
    /// HTTP worker threads of their own: with N above 0, each of N threads serves the
    /// connections it is given (the one with the fewest open gets the next), from accept
    /// to close, on a runtime of its own, and the runtime `serve` runs on only accepts.
    /// Each costs a thread and its stack. 0, the default, for none: the connections are
    /// served on the runtime `serve` runs on, whose workers share them.
    pub http_threads: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            body_bytes_max: (1 << 20) + (64 << 10),
            requests_max: 4_096,
            waits_max: 4_096,
            connections_max: 8_192,
            connections_per_address_max: 0,
            head_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            body_reading_bytes_max: 256 << 20,
            idle_timeout: Duration::from_secs(60),
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
            query_answer_bytes_max: 32 << 20,
            http_threads: 0,
        }
    }
}
