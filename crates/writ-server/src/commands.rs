//! The write side: `POST /update` and `GET /update/{id}` (plain, long poll, or a stream of
//! server-sent events).

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use uuid::Uuid;
use writ_engine::{CommandStatus, WaitError, WaitFor};

use crate::access::{self, Caller};
use crate::connections::ConnectionId;
use crate::params::{self, StatusParams};
use crate::problem::{ApiError, Problem, ProblemKind};
use crate::state::Acknowledged;
use crate::wire::{
    Accepted, CommandStatusBody, UpdateRequest, accepted_response, json_response, location,
};
use crate::{AppState, StreamGuard};

/// Submit a command.
///
/// Answers `202` once the command is in the journal and the journal is synced to disk:
/// nothing is acknowledged that a crash right after could lose. The same id again within
/// the dedupe window, with the same command and payload, answers `200` with the first
/// command's status and `"duplicate": true`; nothing is logged or run again.
///
/// `?wait=SECONDS` (at most 60): answer with the command's final status instead of `202`
/// (`200`, the same body as `GET /update/{id}`), in one round trip. Writ decides a command
/// before the sync that makes it durable, so the final status comes with the
/// acknowledgement (`202` only if the store failed after acknowledging it).
#[utoipa::path(
    post,
    path = "/update",
    tag = "commands",
    params(
        ("wait" = Option<usize>, Query, description = "Seconds (at most 60) to wait for the final status: answer `200` with it instead of `202`"),
    ),
    request_body(content = UpdateRequest<'static>, content_type = "application/json"),
    responses(
        (status = 202, description = "The command is durable in the journal.", body = Accepted,
            headers(("Location" = String, description = "Where its status is: `/update/{id}`"))),
        (status = 200, description = "A duplicate: the first command's current status, with `duplicate: true`; or, with `wait`, the command's final status.",
            body = CommandStatusBody,
            headers(("Location" = String, description = "Where its status is: `/update/{id}`"))),
        (status = 400, description = "Malformed JSON; `id` missing or not a UUID; `command` missing or not a string; `payload` missing or not an object; `version` not a positive integer.",
            body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "The body did not arrive whole within the body deadline (`--body-timeout`); the connection is closed.",
            body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The id was already used for a different command or payload.",
            body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body or the command is too large.",
            body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not declared JSON.",
            body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "With `--tokens`: the token has no `commands` scope, or its `commands` list does not name this command (which is then not logged).",
            body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown command or version, or a payload that does not fit the command's schema.",
            body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The intake queue is full, the server is overloaded, or the store refuses writes.",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    )
)]
pub(crate) async fn post_update(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let wait = StatusParams::from_uri(request.uri())?.wait.unwrap_or(0);
    if !params::is_json(request.headers()) {
        return Err(ApiError::new(
            ProblemKind::UnsupportedMediaType,
            "the body must be JSON: Content-Type application/json",
        ));
    }
    let caller = request.extensions().get::<Caller>().cloned();
    let connection = request.extensions().get::<ConnectionId>().copied();
    let body = Bytes::from_request(request, &state)
        .await
        .map_err(|r| body_error(&state, r))?;
    let update = UpdateRequest::parse(&body)?;
    // A command the token may not send never reaches the engine: nothing is logged.
    access::check_command(caller.as_ref(), &update.command)?;
    let id = update.id;
    // A request alone in the server is decided (and synced) right here when the engine is
    // idle, so that a lone client's answer crosses no thread. With others in progress, or
    // lately, it is queued for the writer: a worker thread held for a sync would hold them
    // up, and a sync of one command would delay the batch of those arriving behind it.
    let submitted = state
        .submit_acknowledged(&update.submission(), state.alone(connection))
        .await?;
    match submitted {
        Acknowledged::New(pending) => {
            if wait == 0 {
                return Ok(accepted_response(id));
            }
            // The engine decides a command before the sync that makes it durable and answers
            // both at once, so the final status is here already: `wait` only asks for it
            // in the answer, and the request never waits longer than for its `202`.
            match pending.outcome().await {
                Ok(status) => {
                    let mut response =
                        json_response(StatusCode::OK, &CommandStatusBody::from(status));
                    response
                        .headers_mut()
                        .insert(header::LOCATION, location(id));
                    Ok(response)
                }
                // Acknowledged, its outcome not made durable (the store failed since).
                Err(_) => Ok(accepted_response(id)),
            }
        }
        Acknowledged::Duplicate => {
            let mut body = CommandStatusBody::from(first_command_status(&state, id).await?);
            body.duplicate = true;
            let mut response = json_response(StatusCode::OK, &body);
            response
                .headers_mut()
                .insert(header::LOCATION, location(id));
            Ok(response)
        }
    }
}

/// A body that could not be read: `413` over the limit, `400` otherwise.
pub(crate) fn body_error(state: &AppState, rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            ProblemKind::TooLarge,
            format!("the body exceeds {} bytes", state.options().body_bytes_max),
        )
    } else {
        ApiError::malformed(rejection.body_text())
    }
}

/// The status of the first command with a resubmitted id, once it is durable (bounded by
/// `duplicate_wait_max`). `503` when it does not get there: the first submission was
/// refused or the store failed, and a retry will submit the command anew.
pub(crate) async fn first_command_status(
    state: &AppState,
    id: Uuid,
) -> Result<CommandStatus, ApiError> {
    durable_status(state, id).await?.ok_or_else(|| {
        ApiError::new(
            ProblemKind::Unavailable,
            format!("command {id} did not reach the command log; retry"),
        )
    })
}

/// The status of a command once it is durable, waiting (at most `duplicate_wait_max`) for
/// one on its way to the disk; `None` for an unknown id.
async fn durable_status(state: &AppState, id: Uuid) -> Result<Option<CommandStatus>, ApiError> {
    let wait = tokio::time::timeout(
        state.options().duplicate_wait_max,
        state.wait(id, WaitFor::Accepted),
    );
    match wait.await {
        Ok(waited) => Ok(waited?),
        Err(_) => Err(ApiError::new(
            ProblemKind::Unavailable,
            format!("command {id} is not durable yet; retry"),
        )),
    }
}

/// Where a command stands.
///
/// `?wait=SECONDS` long-polls: the answer comes as soon as the status is final, or when
/// the wait ends (at most 60 s; larger waits are cut to 60) with the status as it is.
/// `Accept: text/event-stream` streams the status instead: one `event: status` per
/// change, with the same JSON as data, ending after the final status.
#[utoipa::path(
    get,
    path = "/update/{id}",
    tag = "commands",
    // `wait` is declared `usize` for a schema without a fixed-width `format`: the server
    // takes any run of digits, and cuts what is beyond the bound to it.
    params(
        ("id" = Uuid, Path, description = "The command's id"),
        ("wait" = Option<usize>, Query, minimum = 0, description = "Seconds to wait for a final status (cut to 60)"),
    ),
    responses(
        (status = 200, description = "The command's status; as server-sent events with `Accept: text/event-stream`.",
            content((CommandStatusBody = "application/json"), (String = "text/event-stream"))),
        (status = 400, description = "The id is not a UUID, or `wait` is not a non-negative integer.",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such command within the dedupe window.",
            body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "Reading the store failed.",
            body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Overloaded (too many requests in progress; with `wait` above 0, too many requests waiting), or the store failed while the command was on its way.",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    )
)]
pub(crate) async fn get_update(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path(id) = path.map_err(|r| ApiError::malformed(r.body_text()))?;
    let id = params::command_id(&id)?;
    let wait = StatusParams::from_uri(&uri)?.wait;
    if params::wants_event_stream(&headers) {
        return status_stream(state, id).await;
    }
    let status = match wait {
        None | Some(0) => current_status(&state, id)?,
        Some(seconds) => {
            let wait = Duration::from_secs(seconds).min(state.options().wait_max);
            long_poll(&state, id, wait).await?
        }
    };
    Ok(json_response(
        StatusCode::OK,
        &CommandStatusBody::from(status),
    ))
}

/// The status as it is now, or `404`.
fn current_status(state: &AppState, id: Uuid) -> Result<CommandStatus, ApiError> {
    state
        .engine()
        .status(id)
        .map_err(|e| ApiError::read(&e))?
        .ok_or_else(|| params::unknown_command(id))
}

/// Waits up to `wait` for a final status; answers the status as it is when the wait ends,
/// when the store fails, or when the server begins to shut down.
async fn long_poll(state: &AppState, id: Uuid, wait: Duration) -> Result<CommandStatus, ApiError> {
    let waited = tokio::select! {
        waited = tokio::time::timeout(wait, state.wait(id, WaitFor::Final)) => waited.ok(),
        () = state.shutdown_begun() => None,
    };
    match waited {
        Some(Ok(Some(status))) => Ok(status),
        Some(Ok(None)) => Err(params::unknown_command(id)),
        // The store failed while the command was on its way: tell what is known.
        Some(Err(WaitError::Unavailable(unavailable))) => current_status(state, id).map_err(|e| {
            if e.kind == ProblemKind::NotFound {
                unavailable.into()
            } else {
                e
            }
        }),
        Some(Err(error)) => Err(error.into()),
        None => current_status(state, id),
    }
}

/// `event: status` per change, ending after the final status.
async fn status_stream(state: AppState, id: Uuid) -> Result<Response, ApiError> {
    let first = durable_status(&state, id)
        .await?
        .ok_or_else(|| params::unknown_command(id))?;
    let guard = StreamGuard::sse(&state)?;
    let keep_alive = KeepAlive::new().interval(state.options().sse_keep_alive);
    Ok(Sse::new(status_events(state, first, guard))
        .keep_alive(keep_alive)
        .into_response())
}

enum StatusStep {
    Send(CommandStatus),
    WaitFinal(Uuid),
    Done,
}

fn status_events(
    state: AppState,
    first: CommandStatus,
    guard: StreamGuard,
) -> impl Stream<Item = Result<SseEvent, Infallible>> + Send {
    stream::unfold(StatusStep::Send(first), move |step| {
        let _open = &guard; // held as long as the stream
        let state = state.clone();
        async move {
            let status = match step {
                StatusStep::Send(status) => status,
                StatusStep::WaitFinal(id) => {
                    let waited = tokio::select! {
                        waited = state.wait(id, WaitFor::Final) => waited,
                        () = state.shutdown_begun() => return None,
                    };
                    match waited {
                        Ok(Some(status)) => status,
                        Ok(None) => return None,
                        Err(error) => {
                            tracing::debug!(%id, %error, "status stream ends without a final status");
                            return None;
                        }
                    }
                }
                StatusStep::Done => return None,
            };
            let next = if status.state.is_final() {
                StatusStep::Done
            } else {
                StatusStep::WaitFinal(status.id)
            };
            let data = serde_json::to_string(&CommandStatusBody::from(status))
                .expect("wire types serialize");
            Some((Ok(SseEvent::default().event("status").data(data)), next))
        }
    })
}
