//! Resource types at `/{resource}` (`writ serve --app DIR`): documents written by plain
//! commands and read from their read models. The server knows the generic concept only,
//! through [`Resources`], which the crate that builds the types implements (as it knows
//! read models through [`ReadSide`](crate::ReadSide)); it knows no type.
//!
//! - Writes are commands like any other, through the engine (`POST /{resource}` is the
//!   type's `Create{Title}` command, `PUT` its `Replace`, `PATCH` its `Patch`, `DELETE` its
//!   `Delete`): `202 {"id", "commandId", "status": "accepted"}` once durable, `Location`
//!   the command's status. `Idempotency-Key: <UUID>` is the command id, deduplicated as for
//!   `POST /update` (a resend answers the first answer's body, the same key with another
//!   body `409`); `If-Match: "<version>"` is `expectedVersion`.
//! - Reads answer from the type's read model, `?after=` as for queries: `GET
//!   /{resource}/{id}` with `ETag: "<stream version>"`, `GET /{resource}` pages of live
//!   documents, oldest first.

use std::fmt;

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use uuid::Uuid;
use writ_engine::Submission;
use writ_query::{QueryError, Snapshots};

use crate::AppState;
use crate::access::{self, Caller};
use crate::commands::{body_error, first_command_status};
use crate::connections::ConnectionId;
use crate::params;
use crate::problem::{ApiError, Problem, ProblemKind};
use crate::queries::{POSITION_HEADER, position, read_side, repeated, wait_after};
use crate::state::Acknowledged;
use crate::wire::{AcceptedState, json_response, location};

/// The resource types a server serves at `/{resource}`, as the crate that builds them
/// offers them to the server.
pub trait Resources: Send + Sync + 'static {
    /// The types' names, as their routes spell them.
    fn names(&self) -> Vec<String>;

    /// The commands of type `name`; `None` for a type the server does not serve.
    fn commands(&self, name: &str) -> Option<ResourceCommands>;

    /// The live document `id` of type `name` in `snapshots` (the read models at one
    /// position), with its `id` as a member, and its stream's version; `None` when there is
    /// none (never created, or deleted).
    fn get(
        &self,
        snapshots: &Snapshots,
        name: &str,
        id: &str,
    ) -> Result<Option<(Value, u64)>, QueryError>;

    /// A page of the live documents of type `name`, oldest first: `{"items", "cursor",
    /// ...}`. `args` hold `limit` and `cursor` as the query string gives them.
    fn list(
        &self,
        snapshots: &Snapshots,
        name: &str,
        args: &Map<String, Value>,
    ) -> Result<Value, QueryError>;
}

impl fmt::Debug for dyn Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resources")
            .field("names", &self.names())
            .finish()
    }
}

/// The names of one type's commands: `CreateUser`, `ReplaceUser`, `PatchUser`,
/// `DeleteUser`. Their payloads are `{"id", "document"}`, `{"id", "document"}`, `{"id",
/// "patch"}` (RFC 6902 operations) or `{"id", "mergePatch"}` (RFC 7396), and `{"id"}`;
/// and its custom commands (`ApproveUser`, payload `{"id", ...}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceCommands {
    /// Creates a document.
    pub create: String,
    /// Replaces a live document.
    pub replace: String,
    /// Patches a live document.
    pub patch: String,
    /// Deletes a live document.
    pub delete: String,
    /// The custom commands, as `(verb, name)`: `("Approve", "ApproveUser")`, sent to
    /// `POST /{resource}/{id}/{verb}`.
    pub custom: Vec<(String, String)>,
}

impl ResourceCommands {
    /// The custom command a route's last segment names: its verb (`Approve`) or its whole
    /// name (`ApproveUser`).
    pub fn custom_command(&self, segment: &str) -> Option<&str> {
        self.custom
            .iter()
            .find(|(verb, name)| verb == segment || name == segment)
            .map(|(_, name)| name.as_str())
    }
}

/// The route templates of resources, for access and the request gate.
pub(crate) const RESOURCE_ROUTES: [&str; 2] = ["/{resource}", "/{resource}/{id}"];

/// The answer to a resource write once its command is durable (`202`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceAccepted {
    /// The document's id.
    pub id: String,
    /// The command's id: the `Idempotency-Key`, or one the server chose.
    pub command_id: Uuid,
    /// Always `accepted`.
    pub status: AcceptedState,
}

/// A page of documents: `GET /{resource}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ResourcePage {
    /// Live documents, each with its `id`, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Value>,
    /// How many live documents the type has.
    pub total: u64,
    /// Pass it as `cursor` for the next page; `null` on the last.
    pub cursor: Option<String>,
}

fn resources(state: &AppState) -> Result<&dyn Resources, ApiError> {
    state.resources().ok_or_else(|| {
        ApiError::new(
            ProblemKind::NotFound,
            "this server serves no resource types",
        )
    })
}

/// The commands of type `name`, or `404`.
fn commands(state: &AppState, name: &str) -> Result<ResourceCommands, ApiError> {
    resources(state)?.commands(name).ok_or_else(|| {
        ApiError::new(
            ProblemKind::NotFound,
            format!("no resource type {name:?} (nor any other route) here"),
        )
    })
}

/// The `Idempotency-Key` (a UUID) as the command id; a fresh one without it.
fn command_id(headers: &HeaderMap) -> Result<Uuid, ApiError> {
    match headers.get("idempotency-key") {
        None => Ok(Uuid::new_v4()),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|text| Uuid::parse_str(text.trim()).ok())
            .ok_or_else(|| ApiError::malformed("Idempotency-Key must be a UUID")),
    }
}

/// `If-Match: "<version>"` as `expectedVersion`.
fn expected_version(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .map(str::trim)
        .and_then(|text| text.strip_prefix('"')?.strip_suffix('"'))
        .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|digits| digits.parse().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::malformed(
                "If-Match must be one strong entity tag holding a version, as in \"3\" (the ETag of GET)",
            )
        })
}

/// The body, read whole: `413` over the limit, `400` when it is not JSON.
async fn json_value(state: &AppState, request: Request) -> Result<Value, ApiError> {
    let body = Bytes::from_request(request, state)
        .await
        .map_err(|r| body_error(state, r))?;
    serde_json::from_slice(&body).map_err(|e| ApiError::malformed(format!("the body: {e}")))
}

/// A document's body: a JSON object (declared JSON), without its `id` member, which must
/// be `path_id` when given; and the id given in it, if any.
async fn document(
    state: &AppState,
    request: Request,
    path_id: Option<&str>,
) -> Result<(Map<String, Value>, Option<String>), ApiError> {
    if !params::is_json(request.headers()) {
        return Err(ApiError::new(
            ProblemKind::UnsupportedMediaType,
            "the body must be a JSON document: Content-Type application/json",
        ));
    }
    let Value::Object(mut document) = json_value(state, request).await? else {
        return Err(ApiError::malformed("the body must be a JSON object"));
    };
    let id = match document.remove("id") {
        None => None,
        Some(Value::String(id)) => Some(id),
        Some(_) => return Err(ApiError::malformed("`id` must be a string")),
    };
    if let (Some(given), Some(path)) = (&id, path_id)
        && given != path
    {
        return Err(ApiError::malformed(format!(
            "the body's id {given:?} is not the URL's {path:?}"
        )));
    }
    Ok((document, id))
}

/// What every resource write reads from its request before its body: the type's commands
/// (`404` for an unknown type), the caller, the command id (`Idempotency-Key`) and the
/// expected version (`If-Match`).
struct Write {
    commands: ResourceCommands,
    caller: Option<Caller>,
    /// The connection it came on ([`AppState::alone`]).
    connection: Option<ConnectionId>,
    command_id: Uuid,
    expected_version: Option<u64>,
}

impl Write {
    fn of(state: &AppState, name: &str, request: &Request) -> Result<Self, ApiError> {
        let commands = commands(state, name)?;
        let headers = request.headers();
        Ok(Self {
            commands,
            caller: request.extensions().get::<Caller>().cloned(),
            connection: request.extensions().get::<ConnectionId>().copied(),
            command_id: command_id(headers)?,
            expected_version: expected_version(headers)?,
        })
    }

    /// Submits `command` for document `id` and answers `202` once it is durable, or, for
    /// a resend of the same command id, once the first is, with the same body.
    async fn submit(
        &self,
        state: &AppState,
        command: &str,
        id: String,
        payload: Value,
    ) -> Result<Response, ApiError> {
        // A command the token may not send never reaches the engine: nothing is logged.
        access::check_command(self.caller.as_ref(), command)?;
        let payload = serde_json::to_vec(&payload).expect("a JSON value serializes");
        let submission = Submission {
            id: self.command_id,
            command,
            version: None,
            payload: &payload,
            expected_version: self.expected_version,
        };
        // As `POST /update`: decided here when alone in an idle server (see commands.rs).
        match state
            .submit_acknowledged(&submission, state.alone(self.connection))
            .await?
        {
            Acknowledged::New(_) => {}
            Acknowledged::Duplicate => {
                first_command_status(state, self.command_id).await?;
            }
        }
        let mut response = json_response(
            StatusCode::ACCEPTED,
            &ResourceAccepted {
                id,
                command_id: self.command_id,
                status: AcceptedState::Accepted,
            },
        );
        response
            .headers_mut()
            .insert(header::LOCATION, location(self.command_id));
        Ok(response)
    }
}

/// Create a document.
///
/// The body is the document (a JSON object), its `id` optional: without one, the document's
/// id is derived from the command id, so a resend (same `Idempotency-Key`) and a replay
/// give the same one. The document is checked against the type's schema before anything
/// is logged (`422` `schema_violation` with `errors`); whatever needs the current state is
/// decided by the writer (`exists`, `not_unique`, `wrong_expected_version`: see the
/// command's status).
#[utoipa::path(
    post,
    path = "/{resource}",
    tag = "resources",
    params(
        ("resource" = String, Path, description = "The resource type, as `resources/{resource}.json` names it"),
        ("Idempotency-Key" = Option<Uuid>, Header, description = "The command id: a resend with the same key and body answers the first answer"),
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"`: the version the document's stream must be at when the command runs (`\"0\"`: never written)"),
    ),
    request_body(content = Object, content_type = "application/json", description = "The document, with an optional `id`"),
    responses(
        (status = 202, description = "The command is durable.", body = ResourceAccepted,
            headers(("Location" = String, description = "The command's status: `/update/{commandId}`"))),
        (status = 400, description = "Malformed JSON, a body that is not an object, an `id` that is not a string, a bad `Idempotency-Key` or `If-Match`.",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such resource type.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The `Idempotency-Key` was used for another command or body.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not declared JSON.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The document does not fit the type's schema (`schema_violation`, with `errors`), or the id is not one a document may have.",
            body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Overloaded, or the store refuses writes.", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    )
)]
pub(crate) async fn post_resource(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let Path(name) = path.map_err(|r| ApiError::malformed(r.body_text()))?;
    let write = Write::of(&state, &name, &request)?;
    let (document, id) = document(&state, request, None).await?;
    let id = id.unwrap_or_else(|| writ_domain::derive_id(write.command_id, 0).to_string());
    let payload = json!({"id": id, "document": document});
    write
        .submit(&state, &write.commands.create, id, payload)
        .await
}

/// Replace a live document.
///
/// The body is the whole new document (an `id` in it must be the URL's). `not_found`
/// (in the command's status) when there is no live document.
#[utoipa::path(
    put,
    path = "/{resource}/{id}",
    tag = "resources",
    params(
        ("resource" = String, Path, description = "The resource type"),
        ("id" = String, Path, description = "The document's id"),
        ("Idempotency-Key" = Option<Uuid>, Header, description = "The command id"),
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"`: expectedVersion"),
    ),
    request_body(content = Object, content_type = "application/json", description = "The document"),
    responses(
        (status = 202, description = "The command is durable.", body = ResourceAccepted,
            headers(("Location" = String, description = "The command's status"))),
        (status = 400, description = "Malformed body or headers, or an `id` in the body that is not the URL's.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such resource type.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The `Idempotency-Key` was used for another command or body.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not declared JSON.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The document does not fit the type's schema (`schema_violation`, with `errors`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Overloaded, or the store refuses writes.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn put_resource(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let Path((name, id)) = path.map_err(|r| ApiError::malformed(r.body_text()))?;
    let write = Write::of(&state, &name, &request)?;
    let (document, _) = document(&state, request, Some(&id)).await?;
    let payload = json!({"id": id, "document": document});
    write
        .submit(&state, &write.commands.replace, id, payload)
        .await
}

/// Patch a live document.
///
/// `Content-Type: application/json-patch+json`: RFC 6902 operations, applied in order.
/// `application/merge-patch+json`: an RFC 7396 merge patch, which the writer turns into the
/// RFC 6902 operations it applies to the current document. Either way the event records
/// the operations applied, and the resulting document must fit the schema (else the
/// command is rejected `schema_violation`).
#[utoipa::path(
    patch,
    path = "/{resource}/{id}",
    tag = "resources",
    params(
        ("resource" = String, Path, description = "The resource type"),
        ("id" = String, Path, description = "The document's id"),
        ("Idempotency-Key" = Option<Uuid>, Header, description = "The command id"),
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"`: expectedVersion"),
    ),
    request_body(content(
        (Vec<Object> = "application/json-patch+json"),
        (Object = "application/merge-patch+json"),
    )),
    responses(
        (status = 202, description = "The command is durable.", body = ResourceAccepted,
            headers(("Location" = String, description = "The command's status"))),
        (status = 400, description = "Malformed body or headers.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such resource type.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The `Idempotency-Key` was used for another command or body.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Neither `application/json-patch+json` nor `application/merge-patch+json`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The operations are not RFC 6902 operations.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Overloaded, or the store refuses writes.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn patch_resource(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let Path((name, id)) = path.map_err(|r| ApiError::malformed(r.body_text()))?;
    let write = Write::of(&state, &name, &request)?;
    let media_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| params::media_type(v).to_ascii_lowercase());
    let payload = match media_type.as_deref() {
        Some("application/json-patch+json") => {
            let ops = json_value(&state, request).await?;
            if !ops.is_array() {
                return Err(ApiError::malformed(
                    "a JSON patch (application/json-patch+json) is an array of operations",
                ));
            }
            json!({"id": id, "patch": ops})
        }
        Some("application/merge-patch+json") => {
            let merge = json_value(&state, request).await?;
            json!({"id": id, "mergePatch": merge})
        }
        _ => {
            return Err(ApiError::new(
                ProblemKind::UnsupportedMediaType,
                "a patch is application/json-patch+json (RFC 6902) or application/merge-patch+json (RFC 7396)",
            ));
        }
    };
    write
        .submit(&state, &write.commands.patch, id, payload)
        .await
}

/// Delete a live document. Its id may be created again.
#[utoipa::path(
    delete,
    path = "/{resource}/{id}",
    tag = "resources",
    params(
        ("resource" = String, Path, description = "The resource type"),
        ("id" = String, Path, description = "The document's id"),
        ("Idempotency-Key" = Option<Uuid>, Header, description = "The command id"),
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"`: expectedVersion"),
    ),
    responses(
        (status = 202, description = "The command is durable.", body = ResourceAccepted,
            headers(("Location" = String, description = "The command's status"))),
        (status = 400, description = "Malformed headers.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such resource type.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The `Idempotency-Key` was used for another command.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Overloaded, or the store refuses writes.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn delete_resource(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let Path((name, id)) = path.map_err(|r| ApiError::malformed(r.body_text()))?;
    let write = Write::of(&state, &name, &request)?;
    let payload = json!({"id": id});
    write
        .submit(&state, &write.commands.delete, id, payload)
        .await
}

/// Send a custom command to a live document.
///
/// `{command}` is the command's verb as the type declares it (`Approve` for
/// `ApproveUser`: a machine's transition or a handler), or its whole name. The body, a JSON
/// object (none is `{}`), is the command's payload besides the `id`, which is the URL's
/// (an `id` in the body must be the URL's). Whatever needs the current state is decided by
/// the writer: `not_found`, the handler's own code, `invalid_transition`,
/// `schema_violation`, `not_unique` and the rules' codes (see the command's status).
#[utoipa::path(
    post,
    path = "/{resource}/{id}/{command}",
    tag = "resources",
    params(
        ("resource" = String, Path, description = "The resource type"),
        ("id" = String, Path, description = "The document's id"),
        ("command" = String, Path, description = "The custom command's verb (`Approve`), as `/domains` lists it without the title"),
        ("Idempotency-Key" = Option<Uuid>, Header, description = "The command id"),
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"`: expectedVersion"),
    ),
    request_body(content = Object, content_type = "application/json", description = "The payload besides `id` (optional: none is `{}`)"),
    responses(
        (status = 202, description = "The command is durable.", body = ResourceAccepted,
            headers(("Location" = String, description = "The command's status"))),
        (status = 400, description = "Malformed body or headers, or an `id` in the body that is not the URL's.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such resource type.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The `Idempotency-Key` was used for another command or body.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "A body that is not declared JSON.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The type has no such custom command, or the payload is not one it takes.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Overloaded, or the store refuses writes.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn post_custom(
    State(state): State<AppState>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let Path((name, id, verb)) = path.map_err(|r| ApiError::malformed(r.body_text()))?;
    let write = Write::of(&state, &name, &request)?;
    let Some(command) = write.commands.custom_command(&verb).map(str::to_owned) else {
        let known: Vec<&str> = write
            .commands
            .custom
            .iter()
            .map(|(v, _)| v.as_str())
            .collect();
        return Err(ApiError::new(
            ProblemKind::UnknownCommand,
            format!(
                "type {name} has no custom command {verb:?} (its custom commands: {})",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ),
        ));
    };
    let empty = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .is_some_and(|length| length == "0")
        || (request.headers().get(header::CONTENT_TYPE).is_none()
            && request.headers().get(header::TRANSFER_ENCODING).is_none()
            && request.headers().get(header::CONTENT_LENGTH).is_none());
    let mut payload = if empty {
        Map::new()
    } else {
        document(&state, request, Some(&id)).await?.0
    };
    payload.insert("id".to_owned(), Value::String(id.clone()));
    write
        .submit(&state, &command, id, Value::Object(payload))
        .await
}

/// `?after=` alone.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AfterOnly {
    after: Option<String>,
}

/// Read a live document.
///
/// From the type's read model; `?after=POSITION` waits until it includes that position
/// (the `position` of the command's final status), as for queries. `ETag` is the version
/// of the document's stream (for `If-Match`).
#[utoipa::path(
    get,
    path = "/{resource}/{id}",
    tag = "resources",
    params(
        ("resource" = String, Path, description = "The resource type"),
        ("id" = String, Path, description = "The document's id"),
        ("after" = Option<u64>, Query, minimum = 0, description = "Answer only once the read model includes this position; bounded wait"),
    ),
    responses(
        (status = 200, description = "The document, with its `id`.", body = Object,
            headers(
                ("ETag" = String, description = "`\"<version>\"`: the version of the document's stream"),
                ("Writ-Position" = u64, description = "The position of the snapshot read"),
            )),
        (status = 400, description = "`after` is malformed.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such resource type, or no live document (never created, or deleted).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Overloaded, or the read model stopped.", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "`after`: the read model did not reach the position in time.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_resource(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<AfterOnly>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path((name, id)) = path.map_err(|r| ApiError::malformed(r.body_text()))?;
    commands(&state, &name)?;
    let Query(query) = query.map_err(params::query_error)?;
    let after = query.after.as_deref().map(position).transpose()?;
    let read = read_side(&state)?;
    wait_after(&state, &read, after).await?;
    let snapshots = read.models.snapshots();
    let (document, version) = resources(&state)?
        .get(&snapshots, &name, &id)?
        .ok_or_else(|| {
            ApiError::new(
                ProblemKind::NotFound,
                format!("no live {name} document {id:?}"),
            )
        })?;
    let mut response = json_response(StatusCode::OK, &document);
    let headers = response.headers_mut();
    headers.insert(
        header::ETAG,
        HeaderValue::from_str(&format!("\"{version}\"")).expect("digits are a valid header"),
    );
    headers.insert(POSITION_HEADER, HeaderValue::from(snapshots.position()));
    Ok(response)
}

/// List live documents, oldest first.
///
/// `limit` (default 50, at most 1,000) documents a page; pass the answer's `cursor` for
/// the next page (`null` on the last). From the type's read model, `?after=` as for
/// queries.
#[utoipa::path(
    get,
    path = "/{resource}",
    tag = "resources",
    params(
        ("resource" = String, Path, description = "The resource type"),
        ("limit" = Option<u64>, Query, minimum = 0, maximum = 1000, description = "Documents a page (default 50)"),
        ("cursor" = Option<String>, Query, description = "The previous page's `cursor`"),
        ("after" = Option<u64>, Query, minimum = 0, description = "Answer only once the read model includes this position; bounded wait"),
    ),
    responses(
        (status = 200, description = "A page of documents.", body = ResourcePage,
            headers(("Writ-Position" = u64, description = "The position of the snapshot read"))),
        (status = 400, description = "A `limit`, `cursor` or `after` that is malformed, out of range, repeated or unknown.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such resource type.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Overloaded, or the read model stopped.", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "`after`: the read model did not reach the position in time.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_resources(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(name) = path.map_err(|r| ApiError::malformed(r.body_text()))?;
    commands(&state, &name)?;
    let Query(pairs) = query.map_err(params::query_error)?;
    let mut args = Map::new();
    let mut after = None;
    for (key, value) in pairs {
        match key.as_str() {
            "after" if after.is_some() => return Err(repeated("after")),
            "after" => after = Some(position(&value)?),
            "limit" | "cursor" => {
                if args.insert(key.clone(), Value::String(value)).is_some() {
                    return Err(repeated(&key));
                }
            }
            _ => {
                return Err(ApiError::new(
                    ProblemKind::BadArgument,
                    format!("unknown parameter `{key}`: a listing takes limit, cursor and after"),
                ));
            }
        }
    }
    let read = read_side(&state)?;
    wait_after(&state, &read, after).await?;
    let snapshots = read.models.snapshots();
    let page = resources(&state)?.list(&snapshots, &name, &args)?;
    let mut response = json_response(StatusCode::OK, &page);
    response
        .headers_mut()
        .insert(POSITION_HEADER, HeaderValue::from(snapshots.position()));
    Ok(response)
}
