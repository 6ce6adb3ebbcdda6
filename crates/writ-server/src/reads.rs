//! The read side of the log: `GET /streams/{stream}` and `GET /events` (pages, or a live
//! tail as server-sent events).

use std::convert::Infallible;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use writ_engine::{RecordedEvent, Subscription, SubscriptionError};

use crate::params::{self, PageParams};
use crate::problem::{ApiError, Problem};
use crate::wire::{Event, EventsPage, StreamPage, json_response};
use crate::{AppState, StreamGuard};

/// `limit`, defaulted and cut to the page bound.
fn page_limit(limit: Option<u64>, state: &AppState) -> usize {
    let options = state.options();
    match limit {
        None => options.page_events_default.min(options.page_events_max),
        Some(limit) => usize::try_from(limit)
            .unwrap_or(usize::MAX)
            .min(options.page_events_max),
    }
}

/// Events of one stream, in version order.
///
/// An unknown stream has no events: it answers `200` with an empty list.
#[utoipa::path(
    get,
    path = "/streams/{stream}",
    tag = "reads",
    // The integers are declared `usize` for a schema without a fixed-width `format`: the
    // server takes any run of digits, and cuts what is beyond a bound to it.
    params(
        ("stream" = String, Path, description = "The stream, for example `counter-c-1`"),
        ("from" = Option<usize>, Query, minimum = 0, description = "The first version to return (versions start at 1); default 1"),
        ("limit" = Option<usize>, Query, minimum = 0, description = "Most events to return; default 100, cut to 1000"),
    ),
    responses(
        (status = 200, description = "The stream's events from `from`.", body = StreamPage),
        (status = 400, description = "`from` or `limit` is not a non-negative integer.",
            body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "Reading the store failed.",
            body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Overloaded.", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    )
)]
pub(crate) async fn get_stream(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let Path(stream) = path.map_err(|r| ApiError::malformed(r.body_text()))?;
    let page = PageParams::from_uri(&uri)?;
    let from = page.from.unwrap_or(1).max(1);
    let limit = page_limit(page.limit, &state);
    let events = read(limit, || state.engine().read_stream(&stream, from, limit))?;
    let events = Event::from_batch(events)?;
    Ok(json_response(
        StatusCode::OK,
        &StreamPage { stream, events },
    ))
}

/// The global log in commit order: a page, or a live tail.
///
/// With `Accept: text/event-stream` the answer is a live tail from `from`: each event is
/// one server-sent event whose `id` is its position, so a reconnect with `Last-Event-ID`
/// resumes right after it (the header wins over `from`). Idle streams get a keep-alive
/// comment every 15 s.
#[utoipa::path(
    get,
    path = "/events",
    tag = "reads",
    // The integers are declared `usize` for a schema without a fixed-width `format`: the
    // server takes any run of digits, and cuts what is beyond a bound to it.
    params(
        ("from" = Option<usize>, Query, minimum = 0, description = "The first position to return (positions start at 1); default 1"),
        ("limit" = Option<usize>, Query, minimum = 0, description = "Most events on a page; default 100, cut to 1000 (pages only)"),
        ("Last-Event-ID" = Option<usize>, Header, minimum = 0, description = "Live tail: resume after this position. Pages do not use it, but refuse a malformed one"),
    ),
    responses(
        (status = 200, description = "A page of events, or with `Accept: text/event-stream` a live tail.",
            content((EventsPage = "application/json"), (String = "text/event-stream"))),
        (status = 400, description = "`from`, `limit` or `Last-Event-ID` is not a non-negative integer.",
            body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "Reading the store failed.",
            body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Overloaded: too many requests, or too many open streams.",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    )
)]
pub(crate) async fn get_events(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let page = PageParams::from_uri(&uri)?;
    // Checked on pages too: a malformed header is a malformed request wherever it is sent.
    let resume = params::last_event_id(&headers)?;
    if params::wants_event_stream(&headers) {
        let from = match resume {
            Some(last) => last.saturating_add(1),
            None => page.from.unwrap_or(1),
        };
        return tail(state, from.max(1));
    }
    let from = page.from.unwrap_or(1).max(1);
    let limit = page_limit(page.limit, &state);
    let events = read(limit, || state.engine().read_all(from, limit))?;
    let next = events.last().map_or(from, |e| e.position + 1);
    let events = Event::from_batch(events)?;
    Ok(json_response(StatusCode::OK, &EventsPage { events, next }))
}

/// Reads a page, skipping the store for an empty one.
fn read(
    limit: usize,
    read: impl FnOnce() -> Result<Vec<RecordedEvent>, writ_engine::ReadError>,
) -> Result<Vec<RecordedEvent>, ApiError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    read().map_err(|e| ApiError::read(&e))
}

/// A live tail from `from`. Its buffer is one batch of at most `sse_batch_events_max`
/// events, read from the log when the client has taken the previous one: a slow client
/// falls behind on its own, and the writer never waits for it.
fn tail(state: AppState, from: u64) -> Result<Response, ApiError> {
    let guard = StreamGuard::sse(&state)?;
    let keep_alive = KeepAlive::new().interval(state.options().sse_keep_alive);
    let tail = Tail {
        subscription: state.engine().subscribe(from),
        batch: Vec::new().into_iter(),
        batch_max: state.options().sse_batch_events_max,
        shutdown: state.shutdown_receiver(),
        _guard: guard,
    };
    Ok(Sse::new(tail_events(tail))
        .keep_alive(keep_alive)
        .into_response())
}

struct Tail {
    subscription: Subscription,
    batch: std::vec::IntoIter<RecordedEvent>,
    batch_max: usize,
    shutdown: tokio::sync::watch::Receiver<bool>,
    _guard: StreamGuard,
}

fn tail_events(tail: Tail) -> impl Stream<Item = Result<SseEvent, Infallible>> + Send {
    stream::unfold(tail, |mut tail| async move {
        loop {
            if let Some(recorded) = tail.batch.next() {
                let position = recorded.position;
                let event = Event::from_recorded(recorded).ok()?;
                let data = serde_json::to_string(&event).expect("wire types serialize");
                let sse = SseEvent::default().id(position.to_string()).data(data);
                return Some((Ok(sse), tail));
            }
            let batch = tokio::select! {
                batch = tail.subscription.next_batch(tail.batch_max) => batch,
                _ = tail.shutdown.wait_for(|down| *down) => return None,
            };
            match batch {
                Ok(events) => tail.batch = events.into_iter(),
                Err(SubscriptionError::Closed) => return None,
                Err(error) => {
                    tracing::error!(%error, position = tail.subscription.position(), "live tail ends: reading failed");
                    return None;
                }
            }
        }
    })
}
