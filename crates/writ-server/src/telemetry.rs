//! Metrics: the process's Prometheus recorder (installed once), the HTTP request metrics
//! middleware, and gauges of open streams and sockets.
//!
//! The engine emits through the `metrics` facade too (intake queue depth, commands
//! accepted, outcomes, batch sizes and sync times); whatever recorder is installed here
//! collects both, and `GET /metrics` renders them.

use std::cell::RefCell;
use std::sync::OnceLock;
use std::time::Duration;

use axum::http::Method;
use metrics::{
    Counter, Gauge, Histogram, Label, counter, describe_counter, describe_gauge,
    describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests answered, by method, route template and status.
pub const HTTP_REQUESTS: &str = "writ_http_requests_total";
/// Time to the response head, by method and route template.
pub const HTTP_REQUEST_DURATION: &str = "writ_http_request_duration_seconds";
/// Server-sent event streams open now.
pub const SSE_STREAMS_OPEN: &str = "writ_http_sse_streams_open";
/// WebSockets open now.
pub const WEBSOCKETS_OPEN: &str = "writ_http_websockets_open";
/// Requests, and WebSocket command frames, refused by the access check, by reason
/// (`unauthorized`: no token or an unknown one; `forbidden`: a scope or command the token
/// does not allow).
pub const HTTP_REFUSED: &str = "writ_http_refused_total";
/// Bytes reserved by request bodies being read (bounded by `body_reading_bytes_max`).
pub const BODY_READING_BYTES: &str = "writ_http_body_reading_bytes";
/// Requests answered `503` at the edge because the bodies being read took all their room.
pub const BODIES_REFUSED: &str = "writ_http_bodies_refused_total";
/// HTTP connections open now (WebSockets included).
pub const CONNECTIONS_OPEN: &str = "writ_http_connections_open";
/// HTTP connections each worker thread serves now, by `worker` (0 to `--http-threads` - 1):
/// a lasting imbalance shows a worker whose connections cannot move to an idle one.
pub const WORKER_CONNECTIONS_OPEN: &str = "writ_http_worker_connections_open";
/// Connections the server closed on its own, by reason: `head_timeout` (no whole request
/// head in time), `body_timeout` (no whole body in time; answered `408`), `idle` (no next
/// request in time), `address_max` (over `connections_per_address_max`).
pub const CONNECTIONS_CLOSED: &str = "writ_http_connections_closed_total";

/// The engine's histograms of batch sizes (records per sync).
const RECORD_HISTOGRAMS: [&str; 1] = [writ_engine::JOURNAL_BATCH_RECORDS];
/// The engine's histograms of sync times.
const SYNC_HISTOGRAMS: [&str; 1] = [writ_engine::JOURNAL_SYNC_SECONDS];

/// How often histograms are drained into their buckets when nobody scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The handle of the process's Prometheus recorder, installing it on first use.
///
/// A process has one global recorder, so this installs it once and every server (and every
/// test) in the process shares it. When another recorder was installed first, the handle
/// renders a recorder of its own that nothing records into, and a warning says so.
pub fn prometheus() -> &'static PrometheusHandle {
    PROMETHEUS.get_or_init(|| {
        let records: Vec<f64> = (0..=13).map(|i| f64::from(1u32 << i)).collect(); // 1 .. 8192
        let sync_seconds = [
            0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
        ];
        let request_seconds = [
            0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            30.0, 60.0,
        ];
        let mut builder = PrometheusBuilder::new();
        let set = |builder: PrometheusBuilder, name: &str, buckets: &[f64]| {
            builder
                .set_buckets_for_metric(Matcher::Full(name.to_owned()), buckets)
                .expect("bucket lists are not empty")
        };
        for name in RECORD_HISTOGRAMS {
            builder = set(builder, name, &records);
        }
        for name in SYNC_HISTOGRAMS {
            builder = set(builder, name, &sync_seconds);
        }
        builder = set(builder, HTTP_REQUEST_DURATION, &request_seconds);
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if let Err(error) = metrics::set_global_recorder(recorder) {
            tracing::warn!(%error, "a metrics recorder was already installed; /metrics shows none of its metrics");
        }
        describe();
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("writ-metrics-upkeep".to_owned())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_INTERVAL);
                    upkeep.run_upkeep();
                }
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "could not start the metrics upkeep thread; histograms drain only when scraped");
        }
        handle
    })
}

fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route template and status"
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        metrics::Unit::Seconds,
        "Time from a request to its response head, by method and route template"
    );
    describe_gauge!(SSE_STREAMS_OPEN, "Server-sent event streams open");
    describe_gauge!(
        WORKER_CONNECTIONS_OPEN,
        "HTTP connections each worker thread of its own serves now (--http-threads), by worker"
    );
    describe_gauge!(WEBSOCKETS_OPEN, "WebSockets open");
    describe_counter!(
        HTTP_REFUSED,
        "Requests and WebSocket command frames refused by the access check, by reason"
    );
    describe_gauge!(
        BODY_READING_BYTES,
        "Bytes reserved by request bodies being read (at most body_reading_bytes_max)"
    );
    describe_counter!(
        BODIES_REFUSED,
        "Requests answered 503 before their body was read: the bodies being read took all the room body_reading_bytes_max gives them"
    );
    describe_gauge!(
        CONNECTIONS_OPEN,
        "HTTP connections open, WebSockets included"
    );
    describe_counter!(
        CONNECTIONS_CLOSED,
        "Connections the server closed on its own, by reason: head_timeout, body_timeout, idle, address_max"
    );
}

/// Why the access check refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No token, or one the server does not know: `401`.
    Unauthorized,
    /// A scope or command the token does not allow: `403`.
    Forbidden,
}

/// Counts a refusal by the access check.
pub(crate) fn record_refusal(reason: Refusal) {
    let reason = match reason {
        Refusal::Unauthorized => "unauthorized",
        Refusal::Forbidden => "forbidden",
    };
    counter!(HTTP_REFUSED, "reason" => reason).increment(1);
}

/// Why the server closed a connection on its own; the `reason` of [`CONNECTIONS_CLOSED`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closed {
    HeadTimeout,
    BodyTimeout,
    Idle,
    AddressMax,
}

impl Closed {
    pub(crate) const ALL: [Closed; 4] = [
        Closed::HeadTimeout,
        Closed::BodyTimeout,
        Closed::Idle,
        Closed::AddressMax,
    ];

    pub(crate) const fn label(self) -> &'static str {
        match self {
            Closed::HeadTimeout => "head_timeout",
            Closed::BodyTimeout => "body_timeout",
            Closed::Idle => "idle",
            Closed::AddressMax => "address_max",
        }
    }

    /// Counts one connection closed for this reason.
    pub(crate) fn record(self) {
        counter!(CONNECTIONS_CLOSED, "reason" => self.label()).increment(1);
    }
}

/// Moves the bytes reserved by bodies being read by `delta`.
pub(crate) fn body_reading_bytes(delta: f64) {
    gauge!(BODY_READING_BYTES).increment(delta);
}

/// Counts a request refused because the bodies being read took all their room.
pub(crate) fn record_bodies_refused() {
    counter!(BODIES_REFUSED).increment(1);
}

/// Shows every reason in `/metrics` from the start, at 0.
pub(crate) fn register_connection_metrics() {
    for reason in Closed::ALL {
        counter!(CONNECTIONS_CLOSED, "reason" => reason.label()).increment(0);
    }
    gauge!(CONNECTIONS_OPEN).increment(0.0);
    gauge!(BODY_READING_BYTES).increment(0.0);
    counter!(BODIES_REFUSED).increment(0);
}

/// The handles of one series of request metrics.
struct Series {
    route: Box<str>,
    method: &'static str,
    status: u16,
    duration: Histogram,
    requests: Counter,
}

thread_local! {
    /// The handles this thread has recorded into, so that a request costs a short scan of
    /// a few entries rather than building labels and finding the series in the recorder's
    /// registry, and takes no lock shared with other threads. Bounded: routes are
    /// templates, methods and statuses few.
    static SERIES: RefCell<Vec<Series>> = const { RefCell::new(Vec::new()) };
}

/// Counts a request by method, route template and status, and records its time to the
/// response head.
pub(crate) fn record_request(method: &'static str, route: &str, status: u16, seconds: f64) {
    SERIES.with_borrow_mut(|series| {
        let index = match series
            .iter()
            .position(|s| s.status == status && s.method == method && *s.route == *route)
        {
            Some(index) => index,
            None => {
                series.push(Series {
                    route: route.into(),
                    method,
                    status,
                    duration: histogram!(
                        HTTP_REQUEST_DURATION,
                        vec![
                            Label::new("method", method),
                            Label::new("route", route.to_owned()),
                        ]
                    ),
                    requests: counter!(
                        HTTP_REQUESTS,
                        vec![
                            Label::new("method", method),
                            Label::new("route", route.to_owned()),
                            Label::new("status", status.to_string()),
                        ]
                    ),
                });
                series.len() - 1
            }
        };
        let series = &series[index];
        series.duration.record(seconds);
        series.requests.increment(1);
    });
}

pub(crate) fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts one open stream or socket in a gauge while it lives.
#[derive(Debug)]
pub(crate) struct OpenGauge(Gauge);

impl OpenGauge {
    pub(crate) fn sse() -> Self {
        Self::new(gauge!(SSE_STREAMS_OPEN))
    }

    pub(crate) fn websocket() -> Self {
        Self::new(gauge!(WEBSOCKETS_OPEN))
    }

    pub(crate) fn connection() -> Self {
        Self::new(gauge!(CONNECTIONS_OPEN))
    }

    fn new(gauge: Gauge) -> Self {
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for OpenGauge {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_recorded_on_several_threads_add_up_in_one_series() {
        let handle = prometheus();
        let route = "/telemetry-test/{id}";
        record_request("POST", route, 202, 0.001);
        std::thread::spawn(move || {
            record_request("POST", route, 202, 0.002);
            record_request("POST", route, 202, 0.003);
            record_request("POST", route, 503, 0.004);
        })
        .join()
        .unwrap();
        let text = handle.render();
        assert!(
            text.contains(&format!(
                r#"writ_http_requests_total{{method="POST",route="{route}",status="202"}} 3"#
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                r#"writ_http_requests_total{{method="POST",route="{route}",status="503"}} 1"#
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                r#"writ_http_request_duration_seconds_count{{method="POST",route="{route}"}} 4"#
            )),
            "{text}"
        );
    }
}
