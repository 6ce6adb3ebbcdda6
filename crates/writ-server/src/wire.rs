//! The JSON wire shapes of the HTTP and WebSocket API, and their conversions from the
//! engine's types. The OpenAPI schemas are derived from these very types.
//!
//! Also here, for tools and the fuzz targets: the decoders the server reads requests with,
//! [`UpdateRequest::parse`] for commands, and [`PageParams`], [`StatusParams`],
//! [`last_event_id`], [`is_json`] and [`wants_event_stream`] for query strings and headers.

use std::borrow::Cow;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;
use uuid::Uuid;
use writ_engine::{CommandState, CommandStatus, EventRef, Origin, RecordedEvent};

use crate::problem::{ApiError, ProblemKind};
use crate::rfc3339;

pub use crate::params::{PageParams, StatusParams, is_json, last_event_id, wants_event_stream};

/// The `error.code` of a command whose handler failed.
pub const COMMAND_FAILED: &str = "command_failed";

/// A command, as `POST /update` and WebSocket text frames carry it.
//
// Read with `UpdateRequest::parse`, which borrows the payload's bytes from the body so that
// they reach the engine without being parsed into a tree and written again.
#[derive(Debug, ToSchema)]
#[schema(example = json!({
    "id": "0b0e5b4c-9a53-4c9a-9d7c-6a3f0c2f7a10",
    "command": "CreateCounter",
    "version": 2,
    "payload": {"counterId": "c-1", "title": "Visitors", "owner": "ann", "start": 10}
}))]
pub struct UpdateRequest<'a> {
    /// The command's id, a UUID the client chooses. Sending it again within the dedupe
    /// window is idempotent: nothing is logged or run twice.
    pub id: Uuid,
    /// The command's name, for example `CreateCounter`.
    #[schema(value_type = String)]
    pub command: Cow<'a, str>,
    /// The payload's version; the newest when absent.
    #[schema(value_type = Option<u32>, minimum = 1)]
    pub version: Option<u32>,
    /// The command's payload, a JSON object checked against the command version's schema.
    #[schema(value_type = Object)]
    pub payload: &'a RawValue,
    /// The version the command's target stream must be at when it runs (`0`: the stream
    /// must not exist yet); otherwise the command is `rejected` with
    /// `wrong_expected_version`. Part of the command: the same id with another
    /// `expectedVersion` is a conflict.
    #[schema(value_type = Option<u64>, minimum = 0, rename = "expectedVersion")]
    pub expected_version: Option<u64>,
}

/// Why a body is not an [`UpdateRequest`]: a `400`, or an `invalid` WebSocket frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedUpdate {
    /// The id, when it could be read.
    pub id: Option<Uuid>,
    /// What is wrong.
    pub detail: String,
}

impl From<MalformedUpdate> for ApiError {
    fn from(error: MalformedUpdate) -> Self {
        ApiError::malformed(error.detail)
    }
}

/// The fields as they come, each checked on its own for a precise answer.
#[derive(Deserialize)]
struct UpdateFields<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    command: Option<&'a RawValue>,
    #[serde(borrow, default)]
    version: Option<&'a RawValue>,
    #[serde(borrow, default)]
    payload: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "expectedVersion")]
    expected_version: Option<&'a RawValue>,
}

/// The fields of a well-formed command in one pass: `id` and `command` are strings without
/// escapes, borrowed from the body. Anything else is left to [`UpdateFields`].
#[derive(Deserialize)]
struct PlainFields<'a> {
    #[serde(borrow)]
    id: Option<&'a str>,
    #[serde(borrow)]
    command: Option<&'a str>,
    version: Option<u32>,
    #[serde(borrow)]
    payload: Option<&'a RawValue>,
    #[serde(rename = "expectedVersion")]
    expected_version: Option<u64>,
}

impl<'a> UpdateRequest<'a> {
    /// Reads a command from JSON bytes. Fields other than the five are ignored; `null` is
    /// the same as absent.
    pub fn parse(body: &'a [u8]) -> Result<Self, MalformedUpdate> {
        // The common case in one pass; whatever it does not take is read again field by
        // field, which accepts the same commands and says precisely what is wrong. Only
        // objects: serde would read the struct from an array too.
        if first_non_whitespace(body) == Some(b'{')
            && let Ok(PlainFields {
                id: Some(id),
                command: Some(command),
                version,
                payload: Some(payload),
                expected_version,
            }) = serde_json::from_slice::<PlainFields<'a>>(body)
            && version != Some(0)
            && payload.get().starts_with('{')
            && let Ok(id) = Uuid::parse_str(id)
        {
            return Ok(Self {
                id,
                command: Cow::Borrowed(command),
                version,
                payload,
                expected_version,
            });
        }
        Self::parse_by_field(body)
    }

    /// The command as the engine takes it.
    pub fn submission(&self) -> writ_engine::Submission<'_> {
        writ_engine::Submission {
            id: self.id,
            command: &self.command,
            version: self.version,
            payload: self.payload.get().as_bytes(),
            expected_version: self.expected_version,
        }
    }

    /// [`UpdateRequest::parse`] one field at a time, without the one-pass shortcut: what
    /// `parse` must agree with on every input (its tests and fuzz target check that).
    #[doc(hidden)]
    pub fn parse_by_field(body: &'a [u8]) -> Result<Self, MalformedUpdate> {
        let malformed = |id, detail: String| MalformedUpdate { id, detail };
        if first_non_whitespace(body) != Some(b'{') {
            return Err(malformed(None, "the body must be a JSON object".to_owned()));
        }
        let fields: UpdateFields<'a> = serde_json::from_slice(body)
            .map_err(|e| malformed(None, format!("malformed JSON: {e}")))?;
        let id = match fields.id {
            None => return Err(malformed(None, "`id` is missing".to_owned())),
            Some(raw) => {
                let text = serde_json::from_str::<Cow<'_, str>>(raw.get()).map_err(|_| {
                    malformed(None, "`id` must be a string holding a UUID".to_owned())
                })?;
                Uuid::parse_str(&text)
                    .map_err(|e| malformed(None, format!("`id` is not a UUID: {e}")))?
            }
        };
        let command = match fields.command {
            None => return Err(malformed(Some(id), "`command` is missing".to_owned())),
            Some(raw) => serde_json::from_str::<Cow<'a, str>>(raw.get())
                .map_err(|_| malformed(Some(id), "`command` must be a string".to_owned()))?,
        };
        let version = match fields.version {
            None => None,
            Some(raw) => match serde_json::from_str::<u32>(raw.get()) {
                Ok(version) if version >= 1 => Some(version),
                _ => {
                    return Err(malformed(
                        Some(id),
                        "`version` must be a positive integer".to_owned(),
                    ));
                }
            },
        };
        let payload = match fields.payload {
            None => return Err(malformed(Some(id), "`payload` is missing".to_owned())),
            Some(raw) if raw.get().starts_with('{') => raw,
            Some(_) => {
                return Err(malformed(
                    Some(id),
                    "`payload` must be a JSON object".to_owned(),
                ));
            }
        };
        let expected_version = match fields.expected_version {
            None => None,
            Some(raw) if raw.get() == "null" => None,
            Some(raw) => Some(serde_json::from_str::<u64>(raw.get()).map_err(|_| {
                malformed(
                    Some(id),
                    "`expectedVersion` must be a non-negative integer".to_owned(),
                )
            })?),
        };
        Ok(Self {
            id,
            command,
            version,
            payload,
            expected_version,
        })
    }
}

fn first_non_whitespace(bytes: &[u8]) -> Option<u8> {
    bytes.iter().copied().find(|b| !b.is_ascii_whitespace())
}

/// Always `accepted`: in the command log, synced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AcceptedState {
    /// In the command log, synced to disk.
    Accepted,
}

/// The answer to a new command once it is durable in the command log (`202`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    /// The command's id.
    pub id: Uuid,
    /// Always `accepted`.
    pub status: AcceptedState,
}

/// Where a command stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StatusName {
    /// Logged and synced; not yet executed.
    Accepted,
    /// Executed; its events are durable.
    Succeeded,
    /// A business rule said no; no events. See `error.code`.
    Rejected,
    /// The handler errored; no events.
    Failed,
}

impl StatusName {
    /// Whether the status is final.
    pub fn is_final(self) -> bool {
        self != StatusName::Accepted
    }
}

/// Why a command was rejected or failed, or why a WebSocket frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// A stable code: the domain's rejection code (for example `counter_closed`, or
    /// `wrong_expected_version`), `command_failed`, or for refused frames the problem code
    /// (`malformed`, `unknown_command`, `invalid_payload`, `conflict`, `too_large`,
    /// `overloaded`, `unavailable`).
    pub code: String,
    /// For people.
    pub message: String,
    /// The rejection's structured details beside `code`, for example `expected` and
    /// `actual` for `wrong_expected_version`.
    #[serde(flatten)]
    #[schema(value_type = Object, additional_properties = true)]
    pub details: serde_json::Map<String, serde_json::Value>,
}

/// An event a command recorded, without its body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = EventRef)]
pub struct EventRefBody {
    /// The stream.
    pub stream: String,
    /// Its version in the stream, from 1.
    pub version: u64,
    /// The event type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Its position in the global log, from 1.
    pub position: u64,
}

impl From<EventRef> for EventRefBody {
    fn from(e: EventRef) -> Self {
        Self {
            stream: e.stream,
            version: e.version,
            event_type: e.event_type,
            position: e.position,
        }
    }
}

/// What Writ knows of a command: `GET /update/{id}`, duplicates, and WebSocket outcomes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0b0e5b4c-9a53-4c9a-9d7c-6a3f0c2f7a10",
    "command": "CreateCounter",
    "status": "succeeded",
    "position": 12,
    "events": [{"stream": "counter-c-1", "version": 1, "type": "CounterCreated", "position": 12}]
}))]
pub struct CommandStatusBody {
    /// The command's id.
    pub id: Uuid,
    /// The command's name.
    pub command: String,
    /// Where it stands.
    pub status: StatusName,
    /// Final statuses only: the global log position that includes the command's effects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<u64>)]
    pub position: Option<u64>,
    /// The events it recorded (succeeded only).
    pub events: Vec<EventRefBody>,
    /// Rejected and failed only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
    /// Present (and `true`) when this answers a resubmission of a known id.
    #[serde(default, skip_serializing_if = "is_false")]
    pub duplicate: bool,
    /// Where the command came from: `client`, or `process` (issued by a process in
    /// reaction to an event) or `timer` (fired by a durable timer).
    pub origin: OriginName,
    /// The id of the command that started the chain: the command's own for a client's.
    #[serde(rename = "correlationId")]
    pub correlation_id: Uuid,
    /// The command whose event caused this one (processes and timers only).
    #[serde(
        rename = "causationId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub causation_id: Option<Uuid>,
}

/// Where a command came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OriginName {
    /// A client sent it.
    Client,
    /// A process issued it in reaction to an event.
    Process,
    /// A durable timer fired it.
    Timer,
}

impl From<Origin> for OriginName {
    fn from(origin: Origin) -> Self {
        match origin {
            Origin::Client => OriginName::Client,
            Origin::Process => OriginName::Process,
            Origin::Timer => OriginName::Timer,
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl From<CommandStatus> for CommandStatusBody {
    fn from(s: CommandStatus) -> Self {
        let (status, error) = match s.state {
            CommandState::Accepted => (StatusName::Accepted, None),
            CommandState::Succeeded => (StatusName::Succeeded, None),
            CommandState::Rejected {
                code,
                message,
                mut details,
            } => {
                // The contract's fields win over a domain's detail of the same name.
                details.retain(|key, _| !matches!(key.as_str(), "code" | "message"));
                (
                    StatusName::Rejected,
                    Some(ErrorBody {
                        code,
                        message,
                        details,
                    }),
                )
            }
            CommandState::Failed { message } => (
                StatusName::Failed,
                Some(ErrorBody {
                    code: COMMAND_FAILED.to_owned(),
                    message,
                    details: serde_json::Map::new(),
                }),
            ),
        };
        Self {
            id: s.id,
            command: s.command,
            status,
            position: if status.is_final() { s.position } else { None },
            events: s.events.into_iter().map(EventRefBody::from).collect(),
            error,
            duplicate: false,
            origin: s.origin.into(),
            correlation_id: s.correlation_id,
            causation_id: s.causation_id,
        }
    }
}

/// Always `invalid`: the frame was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InvalidState {
    /// The frame was refused; the socket stays open.
    Invalid,
}

/// The WebSocket answer to a frame that was refused (the socket stays open).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InvalidFrame {
    /// The command's id, when the frame held a readable one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// Always `invalid`.
    pub status: InvalidState,
    /// Why.
    pub error: ErrorBody,
}

impl InvalidFrame {
    /// The frame for a problem.
    pub fn new(id: Option<Uuid>, error: &ApiError) -> Self {
        let mut details = serde_json::Map::new();
        if !error.errors.is_empty() {
            details.insert(
                "errors".to_owned(),
                serde_json::to_value(&error.errors).expect("violations serialize"),
            );
        }
        Self {
            id,
            status: InvalidState::Invalid,
            error: ErrorBody {
                code: error.kind.code().to_owned(),
                message: error.detail.clone(),
                details,
            },
        }
    }
}

/// Who recorded an event, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventMetadata {
    /// The id of the command that recorded the event.
    pub command_id: Uuid,
    /// When that command was recorded: RFC 3339, UTC, milliseconds.
    #[schema(format = DateTime, example = "2026-11-23T18:34:05.123Z")]
    pub recorded_at: String,
    /// The command that caused the event: the one that recorded it (`commandId`).
    pub causation_id: Uuid,
    /// The id of the command that started the chain the event belongs to: a client's
    /// command, whose processes' commands carry it on.
    pub correlation_id: Uuid,
    /// The schema version of the event's type the event was recorded in. When it is older
    /// than `schemaVersion`, `data` was upcast from it.
    #[schema(minimum = 1)]
    pub recorded_schema_version: u32,
}

/// An event as stored.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Event {
    /// The stream.
    pub stream: String,
    /// Its version in the stream, from 1, without gaps.
    pub version: u64,
    /// Its position in the global log, from 1, without gaps.
    pub position: u64,
    /// The event type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The schema version of the event's type that `data` is shown in: always the current
    /// one, an event recorded in an older version being upcast to it
    /// (`metadata.recordedSchemaVersion` says which it was recorded in).
    #[serde(rename = "schemaVersion")]
    #[schema(minimum = 1)]
    pub schema_version: u32,
    /// The event's body, a JSON object.
    #[schema(value_type = Object)]
    pub data: Box<RawValue>,
    /// Who recorded it, and when.
    pub metadata: EventMetadata,
}

impl Event {
    /// The wire form of an event read from the store.
    pub fn from_recorded(e: RecordedEvent) -> Result<Self, ApiError> {
        let data = String::from_utf8(e.data)
            .ok()
            .and_then(|text| RawValue::from_string(text).ok())
            .ok_or_else(|| {
                tracing::error!(position = e.position, "stored event data is not JSON");
                ApiError::new(
                    ProblemKind::Internal,
                    "a stored event is not JSON; see the server log",
                )
            })?;
        Ok(Self {
            stream: e.stream,
            version: e.version,
            position: e.position,
            event_type: e.event_type,
            schema_version: e.schema_version,
            data,
            metadata: EventMetadata {
                command_id: e.command_id,
                recorded_at: rfc3339::format_millis(e.recorded_at_ms),
                causation_id: e.command_id,
                correlation_id: e.correlation_id,
                recorded_schema_version: e.recorded_schema_version,
            },
        })
    }

    /// Converts a batch read from the store.
    pub fn from_batch(events: Vec<RecordedEvent>) -> Result<Vec<Self>, ApiError> {
        events.into_iter().map(Self::from_recorded).collect()
    }
}

/// A page of the global log: `GET /events`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventsPage {
    /// Events in commit order.
    pub events: Vec<Event>,
    /// The position to ask for next (`from=next`).
    pub next: u64,
}

/// A page of one stream: `GET /streams/{stream}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StreamPage {
    /// The stream.
    pub stream: String,
    /// Its events in version order; empty for a stream without events.
    pub events: Vec<Event>,
}

/// Whether the server takes writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthState {
    /// Serving reads and writes.
    Ok,
    /// Refusing writes (the store is poisoned); reads still work.
    Unavailable,
}

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable` with a `503`.
    pub status: HealthState,
    /// The domains served, comma-separated (see `GET /domains`).
    pub domain: String,
    /// The last durable position of the global log.
    pub position: u64,
    /// Why the server is unavailable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A JSON response with a status code.
pub fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    json_bytes_response(
        status,
        serde_json::to_vec(body).expect("wire types serialize"),
    )
}

/// A response with `bytes` as its JSON body.
fn json_bytes_response(status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The `202` of a new command, durable in the command log: [`Accepted`] as JSON, and the
/// `Location` of its status. Written out directly: it is the answer to every new command.
pub fn accepted_response(id: Uuid) -> Response {
    let mut buffer = Uuid::encode_buffer();
    let id = id.hyphenated().encode_lower(&mut buffer);
    let mut body = Vec::with_capacity(64);
    body.extend_from_slice(br#"{"id":""#);
    body.extend_from_slice(id.as_bytes());
    body.extend_from_slice(br#"","status":"accepted"}"#);
    let mut response = json_bytes_response(StatusCode::ACCEPTED, body);
    response
        .headers_mut()
        .insert(header::LOCATION, location_of(id));
    response
}

/// The `Location` of a command's status.
pub fn location(id: Uuid) -> HeaderValue {
    location_of(id.hyphenated().encode_lower(&mut Uuid::encode_buffer()))
}

/// The `Location` of the status of the command with the hyphenated id `id`.
fn location_of(id: &str) -> HeaderValue {
    let mut path = Vec::with_capacity(8 + id.len());
    path.extend_from_slice(b"/update/");
    path.extend_from_slice(id.as_bytes());
    HeaderValue::from_maybe_shared(Bytes::from(path)).expect("a UUID is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<UpdateRequest<'_>, MalformedUpdate> {
        UpdateRequest::parse(body.as_bytes())
    }

    const ID: &str = "0b0e5b4c-9a53-4c9a-9d7c-6a3f0c2f7a10";

    #[tokio::test]
    async fn the_accepted_response_is_accepted_as_json_with_its_location() {
        let id = Uuid::parse_str(ID).unwrap();
        let response = accepted_response(id);
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(
            response.headers()[header::LOCATION],
            format!("/update/{ID}")
        );
        assert_eq!(response.headers()[header::LOCATION], location(id));
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let expected = serde_json::to_vec(&Accepted {
            id,
            status: AcceptedState::Accepted,
        })
        .unwrap();
        assert_eq!(body, expected);
    }

    #[test]
    fn a_full_request_keeps_the_payload_bytes() {
        let body = format!(
            r#"{{"id":"{ID}","command":"CreateCounter","version":2,"payload": {{ "a" : 1 }} ,"extra":true}}"#
        );
        let request = parse(&body).unwrap();
        assert_eq!(request.id, Uuid::parse_str(ID).unwrap());
        assert_eq!(request.command, "CreateCounter");
        assert_eq!(request.version, Some(2));
        assert_eq!(request.payload.get(), r#"{ "a" : 1 }"#);
    }

    #[test]
    fn the_one_pass_reading_agrees_with_the_field_by_field_one() {
        let id = |body: &str| body.replace("ID", ID);
        let bodies = [
            r#"{"id":"ID","command":"CreateCounter","version":2,"payload":{"a":1}}"#,
            r#" {"payload":{"a":[1,{"b":null}]},"version":null,"command":"C","id":"ID","x":[{}]}"#,
            r#"{"id":"ID","command":"C","payload":{}}"#,
            r#"{"id":"ID","command":"C","version":4294967295,"payload":{}}"#,
            // Escapes and odd forms: left to the field-by-field reading.
            r#"{"id":"0b0e5b4c-9a53-4c9a-9d7c-6a3f0c2f7a10","command":"C","payload":{}}"#,
            r#"{"id":"\u0030b0e5b4c-9a53-4c9a-9d7c-6a3f0c2f7a10","command":"Create\u0043ounter","payload":{}}"#,
            r#"{"id":"ID","command":"C\n","payload":{}}"#,
            r#"{"id":"ID","command":"CreateCounter
","payload":{}}"#,
            r#"{"id":"ID","command":"C","version":0,"payload":{}}"#,
            r#"{"id":"ID","command":"C","version":1.0,"payload":{}}"#,
            r#"{"id":"ID","command":"C","version":-0,"payload":{}}"#,
            r#"{"id":"ID","command":"C","payload":[]}"#,
            r#"{"id":"ID","command":"C","payload":null}"#,
            r#"{"id":"ID","command":null,"payload":{}}"#,
            r#"{"id":"ID","id":"ID","command":"C","payload":{}}"#,
            r#"{"id":"ID","command":"C","payload":{"a":}}"#,
            r#"{"id":"ID","command":"C","payload":{}"#,
            r#"{"id":"ID","command":"C","payload":{}} trailing"#,
            r#"{"id":"0B0E5B4C9A534C9A9D7C6A3F0C2F7A10","command":"C","payload":{}}"#,
            r#"{"id":"{ID}","command":"C","payload":{}}"#,
            r#"{"id":"ID","command":"C","payload":"{}"}"#,
            r#"{"id":"ID","command":"C","expectedVersion":0,"payload":{}}"#,
            r#"{"id":"ID","command":"C","expectedVersion":7,"version":1,"payload":{}}"#,
            r#"{"id":"ID","command":"C","expectedVersion":null,"payload":{}}"#,
            r#"{"id":"ID","command":"C","expectedVersion":1.0,"payload":{}}"#,
            r#"{"id":"ID","command":"C","expectedVersion":"1","payload":{}}"#,
            r#"{"id":"ID","command":"C","expectedVersion":-1,"payload":{}}"#,
            r#"{"id":"ID","command":"C","expectedVersion":18446744073709551616,"payload":{}}"#,
            r#"{"id":"ID","command":"C","expectedVersion":1,"expectedVersion":2,"payload":{}}"#,
        ];
        let seen = |r: Result<UpdateRequest<'_>, MalformedUpdate>| {
            r.map(|r| {
                (
                    r.id,
                    r.command.into_owned(),
                    r.version,
                    r.expected_version,
                    r.payload.get().to_owned(),
                )
            })
        };
        let bodies = bodies.map(id);
        for body in &bodies {
            assert_eq!(
                seen(parse(body)),
                seen(UpdateRequest::parse_by_field(body.as_bytes())),
                "{body}"
            );
        }
        // Both paths are taken: the first body by the one pass, the escaped ones only by
        // the field-by-field reading, which accepts them.
        assert!(serde_json::from_slice::<PlainFields<'_>>(bodies[0].as_bytes()).is_ok());
        for escaped in &bodies[5..7] {
            assert!(serde_json::from_slice::<PlainFields<'_>>(escaped.as_bytes()).is_err());
            assert!(parse(escaped).is_ok(), "{escaped}");
        }
        assert_eq!(parse(&bodies[5]).unwrap().command, "CreateCounter");
    }

    #[test]
    fn version_is_optional_and_null_is_absent() {
        for version in ["", r#","version":null"#] {
            let body = format!(r#"{{"id":"{ID}","command":"X"{version},"payload":{{}}}}"#);
            assert_eq!(parse(&body).unwrap().version, None);
        }
    }

    #[test]
    fn malformed_requests_say_what_is_wrong() {
        let cases = [
            ("", "JSON object"),
            ("[]", "JSON object"),
            ("{", "malformed JSON"),
            (r#"{"id":"x","id":"y"}"#, "duplicate field"),
            (r#"{"command":"X","payload":{}}"#, "`id` is missing"),
            (
                r#"{"id":7,"command":"X","payload":{}}"#,
                "`id` must be a string",
            ),
            (
                r#"{"id":"not-a-uuid","command":"X","payload":{}}"#,
                "`id` is not a UUID",
            ),
        ];
        for (body, expected) in cases {
            let error = parse(body).unwrap_err();
            assert!(error.detail.contains(expected), "{body}: {}", error.detail);
            assert_eq!(error.id, None);
        }
        let with_id = [
            (r#""payload":{}"#, "`command` is missing"),
            (r#""command":1,"payload":{}"#, "`command` must be a string"),
            (r#""command":"X""#, "`payload` is missing"),
            (
                r#""command":"X","payload":[1]"#,
                "`payload` must be a JSON object",
            ),
            (
                r#""command":"X","payload":"{}""#,
                "`payload` must be a JSON object",
            ),
            (
                r#""command":"X","version":0,"payload":{}"#,
                "positive integer",
            ),
            (
                r#""command":"X","version":-1,"payload":{}"#,
                "positive integer",
            ),
            (
                r#""command":"X","version":1.5,"payload":{}"#,
                "positive integer",
            ),
            (
                r#""command":"X","version":"2","payload":{}"#,
                "positive integer",
            ),
            (
                r#""command":"X","version":4294967296,"payload":{}"#,
                "positive integer",
            ),
        ];
        for (rest, expected) in with_id {
            let body = format!(r#"{{"id":"{ID}",{rest}}}"#);
            let error = parse(&body).unwrap_err();
            assert!(error.detail.contains(expected), "{body}: {}", error.detail);
            assert_eq!(error.id, Some(Uuid::parse_str(ID).unwrap()));
        }
    }

    #[test]
    fn statuses_render_as_the_contract_says() {
        let id = Uuid::parse_str(ID).unwrap();
        let status = |state, position| CommandStatus {
            id,
            command: "Add".into(),
            state,
            sequence: 3,
            position,
            events: vec![],
            origin: Origin::Client,
            correlation_id: id,
            causation_id: None,
        };
        let json = |s| serde_json::to_value(CommandStatusBody::from(s)).unwrap();
        assert_eq!(
            json(status(CommandState::Accepted, Some(9))),
            serde_json::json!({"id": ID, "command": "Add", "status": "accepted", "events": [],
                "origin": "client", "correlationId": ID})
        );
        assert_eq!(
            json(status(
                CommandState::Rejected {
                    code: "counter_not_found".into(),
                    message: "no such counter".into(),
                    details: Default::default(),
                },
                Some(4)
            )),
            serde_json::json!({"id": ID, "command": "Add", "status": "rejected", "position": 4, "events": [],
                "error": {"code": "counter_not_found", "message": "no such counter"},
                "origin": "client", "correlationId": ID})
        );
        let mut details = serde_json::Map::new();
        details.insert("expected".into(), 0.into());
        details.insert("actual".into(), 3.into());
        details.insert(
            "code".into(),
            "a domain's detail never hides the code".into(),
        );
        assert_eq!(
            json(status(
                CommandState::Rejected {
                    code: "wrong_expected_version".into(),
                    message: "m".into(),
                    details,
                },
                Some(4)
            ))["error"],
            serde_json::json!({"code": "wrong_expected_version", "message": "m", "expected": 0, "actual": 3})
        );
        assert_eq!(
            json(status(
                CommandState::Failed {
                    message: "boom".into()
                },
                Some(0)
            ))["error"],
            serde_json::json!({"code": "command_failed", "message": "boom"})
        );
        let mut body = CommandStatusBody::from(status(CommandState::Succeeded, Some(1)));
        body.duplicate = true;
        assert_eq!(serde_json::to_value(&body).unwrap()["duplicate"], true);
    }

    #[test]
    fn events_carry_raw_data_and_metadata() {
        let event = Event::from_recorded(RecordedEvent {
            position: 7,
            stream: "counter-c-1".into(),
            version: 2,
            event_type: "Added".into(),
            data: br#"{"note":"hi"}"#.to_vec(),
            command_id: Uuid::from_u128(2),
            correlation_id: Uuid::from_u128(1),
            recorded_at_ms: 1_798_137_245_123,
            schema_version: 3,
            recorded_schema_version: 2,
        })
        .unwrap();
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"stream":"counter-c-1","version":2,"position":7,"type":"Added","schemaVersion":3,"data":{"note":"hi"},"metadata":{"commandId":"00000000-0000-0000-0000-000000000002","recordedAt":"2026-12-24T18:34:05.123Z","causationId":"00000000-0000-0000-0000-000000000002","correlationId":"00000000-0000-0000-0000-000000000001","recordedSchemaVersion":2}}"#
        );
    }
}
