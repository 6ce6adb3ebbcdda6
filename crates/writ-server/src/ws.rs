//! `GET /ws`: many commands in flight on one WebSocket.
//!
//! Each text frame holds the JSON of a `POST /update`. Each command gets
//! `{"id", "status": "accepted"}` once it is durable, then its final status; a duplicate
//! gets its first command's status with `"duplicate": true`, then the final status if that
//! was not final yet. A frame that cannot be taken gets `{"id"?, "status": "invalid",
//! "error": {"code", "message"}}` and the socket stays open.
//!
//! Bounds: at most `socket_in_flight_max` commands in flight (at the bound the server
//! stops reading frames, which pushes back on the client through TCP), at most
//! `socket_outgoing_max` frames waiting to be written (when full, the commands' tasks
//! wait, so their places in flight are not given back and reading stops too). The server
//! pings every `socket_ping_interval` and closes a socket it heard nothing from for
//! `socket_idle_max`.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::response::Response;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::{Instant, MissedTickBehavior};
use uuid::Uuid;
use writ_engine::{CommandStatus, Engine, Pending, SubmitError, Submitted, WaitFor};

use crate::access::{self, Caller};
use crate::commands::first_command_status;
use crate::problem::{ApiError, Problem};
use crate::state::Acknowledged;
use crate::wire::{Accepted, AcceptedState, CommandStatusBody, InvalidFrame, UpdateRequest};
use crate::{AppState, StreamGuard};

/// Most bytes tungstenite buffers for writing before it refuses; far above what
/// `socket_outgoing_max` frames of statuses take.
const WRITE_BUFFER_BYTES_MAX: usize = 16 << 20;

/// Frames the writer takes from its queue per flush.
const WRITE_BATCH_FRAMES: usize = 64;

/// Submit commands over a WebSocket.
///
/// Send text frames holding the same JSON as `POST /update` (`UpdateRequest`); many may be
/// in flight. Each is answered with `Accepted` once durable, then with its final status
/// (`CommandStatusBody`); a duplicate is answered with the first command's status and
/// `"duplicate": true`. A frame that cannot be taken (malformed, binary, unknown command,
/// invalid payload, conflict, too large, overloaded, unavailable) is answered with an
/// `InvalidFrame` whose `error.code` names the problem, and the socket stays open (with
/// `--tokens`, a command the token's `commands` list does not name is such a frame, code
/// `forbidden`, and is not logged). At most
/// 1,024 commands are in flight per socket: beyond, the server reads no more frames until
/// some complete. The server pings every 30 s and closes a socket silent for 90 s.
#[utoipa::path(
    get,
    path = "/ws",
    tag = "commands",
    responses(
        (status = 101, description = "Switching to the WebSocket protocol."),
        (status = 400, description = "Not a WebSocket upgrade request.",
            body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too many streams and sockets open, or shutting down.",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    )
)]
pub(crate) async fn socket(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let caller = caller.map(|Extension(caller)| caller);
    let upgrade = upgrade.map_err(|r| ApiError::malformed(r.body_text()))?;
    let guard = StreamGuard::websocket(&state)?;
    let message_max = state.options().body_bytes_max;
    Ok(upgrade
        .max_message_size(message_max)
        .max_frame_size(message_max)
        .max_write_buffer_size(WRITE_BUFFER_BYTES_MAX)
        .on_upgrade(move |socket| run(state, socket, guard, caller)))
}

/// Reads frames until the client leaves, goes silent, or the server shuts down.
async fn run(state: AppState, socket: WebSocket, _guard: StreamGuard, caller: Option<Caller>) {
    let options = state.options().clone();
    let (sink, mut frames) = socket.split();
    let (out, out_rx) = mpsc::channel(options.socket_outgoing_max);
    let writer = tokio::spawn(write_frames(sink, out_rx));
    let in_flight = Arc::new(Semaphore::new(options.socket_in_flight_max));
    let mut shutdown = state.shutdown_receiver();
    let mut ping = tokio::time::interval_at(
        Instant::now() + options.socket_ping_interval,
        options.socket_ping_interval,
    );
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut heard = Instant::now();

    let close = 'read: loop {
        // Backpressure: no place in flight, no reading.
        let permit = tokio::select! {
            permit = Arc::clone(&in_flight).acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = shutdown.wait_for(|down| *down) => break 'read Some((close_code::AWAY, "the server is shutting down")),
        };
        let frame = loop {
            tokio::select! {
                frame = frames.next() => break frame,
                _ = ping.tick() => {
                    if heard.elapsed() >= options.socket_idle_max {
                        break 'read Some((close_code::POLICY, "idle for too long"));
                    }
                    // A full queue means frames are going out anyway.
                    let _ = out.try_send(Message::Ping(Default::default()));
                }
                _ = shutdown.wait_for(|down| *down) => break 'read Some((close_code::AWAY, "the server is shutting down")),
            }
        };
        heard = Instant::now();
        match frame {
            Some(Ok(Message::Text(text))) => {
                take_command(&state, caller.as_ref(), text, permit, &out).await;
            }
            Some(Ok(Message::Binary(_))) => {
                let error = ApiError::malformed(
                    "binary frames are not read; send commands as JSON text frames",
                );
                send(&out, &InvalidFrame::new(None, &error)).await;
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(Message::Close(_))) | None => break None,
            Some(Err(error)) => {
                tracing::debug!(%error, "WebSocket read failed");
                break None;
            }
        }
    };

    if let Some((code, reason)) = close {
        // Answer what is in flight before closing, within the grace period.
        let all = u32::try_from(options.socket_in_flight_max).expect("checked in AppState::new");
        let _ = tokio::time::timeout(options.shutdown_grace, in_flight.acquire_many(all)).await;
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        let _ = out.send(Message::Close(Some(frame))).await;
    }
    drop(out);
    let _ = writer.await;
}

/// Writes queued frames, flushing once per batch.
async fn write_frames(mut sink: SplitSink<WebSocket, Message>, mut queue: mpsc::Receiver<Message>) {
    let mut batch = Vec::with_capacity(WRITE_BATCH_FRAMES);
    while queue.recv_many(&mut batch, WRITE_BATCH_FRAMES).await > 0 {
        for frame in batch.drain(..) {
            let closing = matches!(frame, Message::Close(_));
            if sink.feed(frame).await.is_err() {
                return;
            }
            if closing {
                let _ = sink.close().await;
                return;
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
    let _ = sink.close().await;
}

/// Queues a frame; `false` once the socket is gone.
async fn send<T: Serialize>(out: &mpsc::Sender<Message>, frame: &T) -> bool {
    let text = serde_json::to_string(frame).expect("wire types serialize");
    out.send(Message::Text(text.into())).await.is_ok()
}

/// Submits one command; its answers come from a task of its own that holds the place in
/// flight until the final status is queued.
async fn take_command(
    state: &AppState,
    caller: Option<&Caller>,
    frame: Utf8Bytes,
    permit: OwnedSemaphorePermit,
    out: &mpsc::Sender<Message>,
) {
    let text = frame.as_str();
    let update = match UpdateRequest::parse(text.as_bytes()) {
        Ok(update) => update,
        Err(malformed) => {
            let id = malformed.id;
            send(out, &InvalidFrame::new(id, &malformed.into())).await;
            return;
        }
    };
    let id = update.id;
    // A command the token may not send never reaches the engine: nothing is logged.
    if let Err(refused) = access::check_command(caller, &update.command) {
        send(out, &InvalidFrame::new(Some(id), &refused)).await;
        return;
    }
    let engine = state.engine();
    let submitted = engine.submit_command(&update.submission());
    match submitted {
        Ok(Submitted::New(pending)) => {
            // The frame's text goes with the command (moved, not copied), should the
            // engine refuse it after all because an online replay switched it off.
            drop(update);
            tokio::spawn(follow_new(
                state.clone(),
                engine,
                frame,
                pending,
                out.clone(),
                permit,
            ));
        }
        Err(SubmitError::Unavailable(_)) if engine.is_switched() => {
            // Refused unlogged by an engine an online replay switched off: submitted
            // again to the next one (which holds this socket's reading for the pause).
            drop(update);
            resubmit(state.clone(), frame, id, out.clone(), permit).await;
        }
        Ok(Submitted::Duplicate) => {
            tokio::spawn(follow_duplicate(state.clone(), id, out.clone(), permit));
        }
        Err(error) => {
            send(out, &InvalidFrame::new(Some(id), &error.into())).await;
        }
    }
}

/// Answers a new command submitted to `engine`: `frame` is its text, submitted again
/// should that engine refuse it once an online replay switched it off (it was then never
/// logged). Holds `permit` until the final status is queued.
async fn follow_new(
    state: AppState,
    engine: Arc<Engine>,
    frame: Utf8Bytes,
    mut pending: Pending,
    out: mpsc::Sender<Message>,
    permit: OwnedSemaphorePermit,
) {
    let id = pending.id();
    match pending.accepted().await {
        Ok(_) => answer(pending, &out).await,
        // Rare, and boxed so that every command's task stays as small as it was.
        Err(_) if engine.is_switched() => {
            Box::pin(resubmit(state, frame, id, out.clone(), permit)).await;
        }
        Err(error) => {
            send(&out, &InvalidFrame::new(Some(id), &error.into())).await;
        }
    }
}

/// A command the engine refused because an online replay switched it off (never logged),
/// submitted again to the engine that serves next, and answered.
async fn resubmit(
    state: AppState,
    frame: Utf8Bytes,
    id: Uuid,
    out: mpsc::Sender<Message>,
    permit: OwnedSemaphorePermit,
) {
    let update = UpdateRequest::parse(frame.as_bytes()).expect("parsed before");
    match state.submit_acknowledged(&update.submission(), false).await {
        Ok(Acknowledged::New(pending)) => {
            let _permit = permit;
            answer(pending, &out).await;
        }
        Ok(Acknowledged::Duplicate) => follow_duplicate(state, id, out, permit).await,
        Err(error) => {
            send(&out, &InvalidFrame::new(Some(id), &error)).await;
        }
    }
}

/// Queues the acknowledgement of a command that has one, then its final status.
async fn answer(pending: Pending, out: &mpsc::Sender<Message>) {
    let id = pending.id();
    let accepted = Accepted {
        id,
        status: AcceptedState::Accepted,
    };
    if !send(out, &accepted).await {
        return;
    }
    match pending.outcome().await {
        Ok(status) => send(out, &CommandStatusBody::from(status)).await,
        Err(error) => send(out, &InvalidFrame::new(Some(id), &error.into())).await,
    };
}

async fn follow_duplicate(
    state: AppState,
    id: Uuid,
    out: mpsc::Sender<Message>,
    _permit: OwnedSemaphorePermit,
) {
    let first: CommandStatus = match first_command_status(&state, id).await {
        Ok(status) => status,
        Err(error) => {
            send(&out, &InvalidFrame::new(Some(id), &error)).await;
            return;
        }
    };
    let done = first.state.is_final();
    let mut body = CommandStatusBody::from(first);
    body.duplicate = true;
    if !send(&out, &body).await || done {
        return;
    }
    match state.wait(id, WaitFor::Final).await {
        Ok(Some(status)) => send(&out, &CommandStatusBody::from(status)).await,
        Ok(None) => true,
        Err(error) => send(&out, &InvalidFrame::new(Some(id), &error.into())).await,
    };
}
