//! The read side: `GET /query/v{N}/{name}` (named queries), `POST /query/v{N}` (query code
//! in the sandbox), and the projections' status and rebuilds (`GET /projections`,
//! `POST /projections/{name}/rebuild`).
//!
//! Every query may carry `?after=POSITION` (read your writes): it waits, at most
//! [`ServerOptions::after_wait_max`](crate::ServerOptions::after_wait_max), until the read
//! model has applied that position, and answers `504` when it does not get there in time.
//! The answer reads one snapshot at a position at least `after`; named queries give that
//! position in the `Writ-Position` header, query code in the body's `position`.

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;
use writ_engine::{CommandState, Submission, Submitted};
use writ_query::{ModelStatus, ParkStage, ParkedEvent, RebuildStatus, SnapshotStatus, switch};

use crate::params;
use crate::problem::{ApiError, Problem, ProblemKind};
use crate::state::Reading;
use crate::wire::json_response;
use crate::{AppState, ReadSide};

/// The header that carries the position of the snapshot a named query read.
pub const POSITION_HEADER: HeaderName = HeaderName::from_static("writ-position");

/// The body of `POST /query/v{N}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"code": "listCounters({status: args.status}).length", "args": {"status": "open"}}))]
pub struct QueryCode {
    /// JavaScript: an expression whose value is the result, or a function body that
    /// `return`s it. The version's library functions and `args` are in scope.
    pub code: String,
    /// Arguments, in scope as `args` (deeply frozen); `{}` when absent.
    #[serde(default)]
    pub args: Option<Map<String, Value>>,
}

/// The answer of query code.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueryAnswer {
    /// The JSON of the value the code returned (`null` for `undefined`).
    pub result: Value,
    /// The position of the snapshot the code read.
    pub position: u64,
}

/// The body of `POST /projections/{name}/rebuild` (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RebuildRequest {
    /// The projection version to build; the live version when absent. Another version is
    /// a structure change: readers switch to it once it has caught up.
    #[serde(default)]
    pub version: Option<u32>,
}

/// The projections a server runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct Projections {
    /// One entry per read model.
    pub projections: Vec<ProjectionState>,
}

/// Where a projection stands.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectionState {
    /// The projection's name, for example `counters`.
    pub name: String,
    /// The live version: the read model's structure.
    pub version: u32,
    /// The versions a rebuild can build.
    pub versions: Vec<u32>,
    /// The query API versions served, oldest first.
    pub query_versions: Vec<u32>,
    /// The position of the snapshot readers get.
    pub position: u64,
    /// The last position the live instance applied (ahead of `position` while it catches
    /// up and publishes only now and then).
    pub applied: u64,
    /// The global log's last durable position.
    pub last_position: u64,
    /// Events readers do not see yet: `lastPosition - position`.
    pub lag: u64,
    /// Events the projection could not apply and skipped.
    pub skipped: u64,
    /// Events the projection panicked on (decoding or applying them): each is parked for
    /// this read model, which went on with the next event. Fix the projection and rebuild
    /// to apply them.
    pub parked: u64,
    /// The last event parked, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_parked: Option<ParkedState>,
    /// Whether the live instance stopped (a failure outside the projection's decode and
    /// apply, which only park events; or shutdown).
    pub stopped: bool,
    /// Why it stopped, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The last rebuild.
    pub rebuild: RebuildState,
    /// Its snapshots on disk: the one loaded at start, those ignored, the last written.
    pub snapshots: SnapshotState,
}

/// What a read model did with its snapshots on disk (written in the background, loaded
/// at start so that only the journal's tail is replayed).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotState {
    /// The position of the snapshot loaded at start; absent when the read model replayed
    /// the journal from its first position.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loaded: Option<u64>,
    /// Snapshots found at start and not loaded, newest first, each with why (another
    /// build's code, damaged, another journal).
    pub ignored: Vec<String>,
    /// Snapshots written since the start.
    pub written: u64,
    /// The position of the last one written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_written: Option<u64>,
    /// The size of the last one written, in bytes.
    pub last_bytes: u64,
    /// Snapshots that could not be written (each is logged).
    pub failures: u64,
}

impl From<SnapshotStatus> for SnapshotState {
    fn from(status: SnapshotStatus) -> Self {
        Self {
            loaded: status.loaded,
            ignored: status.ignored,
            written: status.written,
            last_written: status.last_written,
            last_bytes: status.last_bytes,
            failures: status.failures,
        }
    }
}

/// An event a projection panicked on, parked for its read model.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParkedState {
    /// The event's position in the global log.
    pub position: u64,
    /// Its stream.
    pub stream: String,
    /// Its type.
    pub event_type: String,
    /// Where the projection panicked: `decode` (the read model is untouched) or `apply`
    /// (what it changed before the panic stays).
    pub stage: ParkPhase,
    /// The panic's message (at most 1 KiB).
    pub message: String,
}

/// Where a projection panicked on a parked event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ParkPhase {
    /// Decoding the event.
    Decode,
    /// Applying it to the read model.
    Apply,
}

impl From<&ParkedEvent> for ParkedState {
    fn from(parked: &ParkedEvent) -> Self {
        Self {
            position: parked.position,
            stream: parked.stream.clone(),
            event_type: parked.event_type.clone(),
            stage: match parked.stage {
                ParkStage::Decode => ParkPhase::Decode,
                _ => ParkPhase::Apply,
            },
            message: parked.message.clone(),
        }
    }
}

/// Where the last rebuild stands.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RebuildState {
    /// `idle` (none started), `running`, `switched` (readers now get it), `failed` or
    /// `cancelled`.
    pub state: RebuildPhase,
    /// The projection version it builds or built.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// Running: the last position it applied; switched: where it switched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// Running: the live position it must reach (it moves while writes go on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<u64>,
    /// Failed: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The phases of a rebuild.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RebuildPhase {
    /// No rebuild was started.
    Idle,
    /// Catching up beside the live instance.
    Running,
    /// Caught up; readers get its snapshots.
    Switched,
    /// Failed before switching; the live instance is untouched.
    Failed,
    /// The server shut down before it switched.
    Cancelled,
}

impl From<RebuildStatus> for RebuildState {
    fn from(status: RebuildStatus) -> Self {
        let mut state = Self {
            state: RebuildPhase::Idle,
            version: None,
            position: None,
            target: None,
            detail: None,
        };
        match status {
            RebuildStatus::Running {
                root,
                position,
                target,
            } => {
                state.state = RebuildPhase::Running;
                state.version = Some(root.version);
                state.position = Some(position);
                state.target = Some(target);
            }
            RebuildStatus::Switched { root, position } => {
                state.state = RebuildPhase::Switched;
                state.version = Some(root.version);
                state.position = Some(position);
            }
            RebuildStatus::Failed { root, detail } => {
                state.state = RebuildPhase::Failed;
                state.version = Some(root.version);
                state.detail = Some(detail);
            }
            RebuildStatus::Cancelled { root } => {
                state.state = RebuildPhase::Cancelled;
                state.version = Some(root.version);
            }
            _ => {}
        }
        state
    }
}

impl ProjectionState {
    fn new(status: ModelStatus) -> Self {
        Self {
            name: status.name.to_owned(),
            version: status.root.version,
            versions: status.projection_versions,
            query_versions: status.query_versions,
            position: status.position,
            applied: status.applied,
            last_position: status.last_position,
            lag: status.lag,
            skipped: status.stats.errors,
            parked: status.stats.parked,
            last_parked: status.stats.last_parked().map(ParkedState::from),
            stopped: status.stopped,
            failure: status.failure,
            rebuild: status.rebuild.into(),
            snapshots: status.snapshots.into(),
        }
    }
}

/// Run a named query.
///
/// The query string holds the query's arguments (see each query's documentation), plus
/// `after`. The body is the query's result as JSON; the `Writ-Position` header is the
/// position of the snapshot it read. Older query API versions answer through transformers
/// of the newest one's answers.
#[utoipa::path(
    get,
    path = "/query/{version}/{name}",
    tag = "queries",
    params(
        ("version" = String, Path, pattern = "^v[1-9][0-9]{0,8}$", description = "The query API version, `v1`, `v2`, ..."),
        ("name" = String, Path, description = "The query, for example `getCounter`, `listCounters`, `counterStats`"),
        ("after" = Option<u64>, Query, minimum = 0, description = "Answer only once the read model includes this position (a final command status carries it); bounded wait"),
    ),
    responses(
        (status = 200, description = "The query's result.", body = Value,
            headers(("Writ-Position" = u64, description = "The position of the snapshot the query read"))),
        (status = 400, description = "A query argument, or `after`, is missing, unknown, repeated or invalid.",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such query API version or query, or what the query looks up does not exist.",
            body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The answer would be larger than the server's bound on a named query's answer (`memory_limit`); ask for less (a page, a count).",
            body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The query failed (a bug).",
            body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Overloaded, or the live read model cannot answer this version yet.",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
        (status = 504, description = "`after`: the read model did not reach the position in time.",
            body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_query(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path((version, name)) = path.map_err(|r| ApiError::malformed(r.body_text()))?;
    let read = read_side(&state)?;
    let version = api_version(&version)?;
    let Query(pairs) = query.map_err(params::query_error)?;
    let mut args = Map::new();
    let mut after = None;
    for (key, value) in pairs {
        if key == "after" {
            if after.is_some() {
                return Err(repeated("after"));
            }
            after = Some(position(&value)?);
        } else if args.insert(key.clone(), Value::String(value)).is_some() {
            return Err(repeated(&key));
        }
    }
    wait_after(&state, &read, after).await?;
    let budget = writ_query::Budget::new(state.options().query_answer_bytes_max, None);
    let (result, position) = read.models.call_within(version, &name, args, &budget)?;
    let mut response = json_response(StatusCode::OK, &result);
    response
        .headers_mut()
        .insert(POSITION_HEADER, HeaderValue::from(position));
    Ok(response)
}

/// `?after=` of `POST /query/v{N}`.
#[derive(Debug, Deserialize)]
pub(crate) struct AfterQuery {
    after: Option<String>,
}

/// Run query code in the sandbox.
///
/// The code runs against one immutable snapshot with the version's library functions
/// (the named queries, as functions: `getCounter(id)`, `listCounters({...})`,
/// `counterStats()`) and `args` in scope, and nothing else: no I/O, no clock, no other
/// request's state. The time, memory, stack, code and result limits each answer `422`
/// with a problem type naming the limit; they never affect other queries.
#[utoipa::path(
    post,
    path = "/query/{version}",
    tag = "queries",
    params(
        ("version" = String, Path, pattern = "^v[1-9][0-9]{0,8}$", description = "The query API version, `v1`, `v2`, ..."),
        ("after" = Option<u64>, Query, minimum = 0, description = "Run only once the read model includes this position; bounded wait"),
    ),
    request_body(content = QueryCode, content_type = "application/json"),
    responses(
        (status = 200, description = "The code's result and the snapshot's position.", body = QueryAnswer),
        (status = 400, description = "Malformed body or `after`, or a library function refused its arguments.",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such query API version, or a library function found nothing and the code did not catch it.",
            body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "The body did not arrive whole within the body deadline (`--body-timeout`); the connection is closed.",
            body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large.",
            body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not declared JSON.",
            body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A sandbox limit was exceeded (problem types `time_limit`, `memory_limit`, `stack_limit`, `result_too_large`, `code_too_large`), or the code failed (`script_error`).",
            body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "A library function or the sandbox failed (a bug).",
            body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The sandbox's queue is full, the server is overloaded, or the live read model cannot answer this version yet.",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
        (status = 504, description = "`after`: the read model did not reach the position in time.",
            body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn post_query(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<AfterQuery>, QueryRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let Path(version) = path.map_err(|r| ApiError::malformed(r.body_text()))?;
    let read = read_side(&state)?;
    let version = api_version(&version)?;
    let Query(query) = query.map_err(params::query_error)?;
    let after = query.after.as_deref().map(position).transpose()?;
    let body: QueryCode = json_body(&state, request).await?;
    wait_after(&state, &read, after).await?;
    let library = read.models.library(version)?;
    let args = Value::Object(body.args.unwrap_or_default());
    let (tx, rx) = tokio::sync::oneshot::channel();
    read.sandbox
        .submit(library, &body.code, args, move |result| {
            // The client may have gone; then no one waits for the answer.
            let _ = tx.send(result);
        })?;
    let outcome = rx.await.map_err(|_| {
        ApiError::new(
            ProblemKind::Internal,
            "the sandbox worker stopped before answering",
        )
    })??;
    Ok(json_response(
        StatusCode::OK,
        &QueryAnswer {
            result: outcome.result,
            position: outcome.position,
        },
    ))
}

/// The projections and where they stand.
#[utoipa::path(
    get,
    path = "/projections",
    tag = "queries",
    responses(
        (status = 200, description = "Every projection's position, lag, skipped and parked events, and last rebuild.", body = Projections),
        (status = 404, description = "This server runs no read model.",
            body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Overloaded.", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    )
)]
pub(crate) async fn get_projections(State(state): State<AppState>) -> Result<Response, ApiError> {
    let read = read_side(&state)?;
    let projections = read
        .models
        .statuses()
        .into_iter()
        .map(ProjectionState::new)
        .collect();
    Ok(json_response(StatusCode::OK, &Projections { projections }))
}

/// Rebuild a projection without downtime.
///
/// Builds the projection from position 1 beside the live one; readers keep the live
/// snapshots until it has caught up, then switch to it atomically. With a `version` other
/// than the live one this is a structure change, and a command in the log: the server
/// submits `SwitchReadModel {name, version}` (domain `$system`), whose event
/// `ReadModelSwitched` on stream `$readmodel-{name}` the read side follows (it builds the
/// version beside the live one and swaps readers at a batch boundary past the event), so
/// that a restart keeps the switch and `writ replay` replays it at the same point; the
/// answer comes once the read side has applied the event. Query API versions that need
/// the new structure answer once it has switched, older ones keep answering throughout.
/// Follow the progress with `GET /projections` (`rebuild.position` of `rebuild.target`).
#[utoipa::path(
    post,
    path = "/projections/{name}/rebuild",
    tag = "queries",
    params(("name" = String, Path, description = "The projection, for example `counters`")),
    request_body(content = Option<RebuildRequest>, content_type = "application/json",
        description = "Optional: the projection version to build"),
    responses(
        (status = 202, description = "The rebuild started (for another version: its switch is logged, and the read side has applied it unless that took longer than the `?after=` bound).", body = ProjectionState,
            headers(("Location" = String, description = "Where to follow it: `/projections`"))),
        (status = 400, description = "Malformed body, or a version the projection does not have (the switch is rejected with `unknown_version`).",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such projection.",
            body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "The body did not arrive whole within the body deadline (`--body-timeout`); the connection is closed.",
            body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A rebuild is already running.",
            body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large.",
            body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "A body that is not declared JSON.",
            body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The rebuild could not start, or the switch failed.",
            body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Overloaded, the store is unavailable, or the server is shutting down.",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    )
)]
pub(crate) async fn post_rebuild(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let Path(name) = path.map_err(|r| ApiError::malformed(r.body_text()))?;
    let read = read_side(&state)?;
    if read.models.status(&name).is_none() {
        return Err(ApiError::new(
            ProblemKind::NotFound,
            format!(
                "there is no projection {name:?}; this server runs {:?}",
                read.models.names()
            ),
        ));
    }
    let body = match body_bytes(&state, request).await? {
        None => RebuildRequest::default(),
        Some(bytes) => parse(&bytes)?,
    };
    let live = read
        .models
        .status(&name)
        .map_or(0, |status| status.root.version);
    let engine = state.engine();
    let logged = engine.registry().domain_names().contains(&switch::DOMAIN);
    // The version the log names, when it names one: a restart starts there.
    let named = if logged {
        switch::last_switch(&engine, &name)
            .map_err(|e| ApiError::read(&e))?
            .map(|switched| switched.version)
    } else {
        None
    };
    match body.version {
        // A structure change: a command in the log, which the read side follows. Also
        // the live version when the log names another (its build failed), so that the log
        // names what runs; the read side then only rebuilds it, as asked.
        Some(version)
            if logged && (version != live || named.is_some_and(|named| named != version)) =>
        {
            switch_read_model(&state, &read, &name, version).await?;
            if version == live {
                let rebuild = read.models.rebuild(&name, Some(version))?;
                tracing::info!(projection = %name, status = ?rebuild.status(), "rebuild started");
            }
        }
        // The live version built again (or a server without the built-in domain, whose
        // switches are not logged): the read side alone.
        version => {
            let rebuild = read.models.rebuild(&name, version)?;
            tracing::info!(projection = %name, status = ?rebuild.status(), "rebuild started");
        }
    }
    let status = read
        .models
        .status(&name)
        .expect("the read model was found above");
    let mut response = json_response(StatusCode::ACCEPTED, &ProjectionState::new(status));
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("/projections"));
    Ok(response)
}

/// Submits `SwitchReadModel {name, version}` (see [`writ_query::switch`]) and waits, at
/// most [`ServerOptions::after_wait_max`](crate::ServerOptions::after_wait_max), until the
/// read models have applied its event, so that the answer shows the rebuild it started.
/// `409` while a rebuild of the read model runs; the writer's rejections as `404`
/// (`unknown_read_model`) and `400` (`unknown_version`).
async fn switch_read_model(
    state: &AppState,
    read: &ReadSide,
    name: &str,
    version: u32,
) -> Result<(), ApiError> {
    if let Some(status) = read.models.status(name)
        && let RebuildStatus::Running { root, .. } = status.rebuild
    {
        return Err(writ_query::RebuildError::AlreadyRunning { root }.into());
    }
    let payload = serde_json::to_vec(&switch::SwitchReadModel {
        name: name.to_owned(),
        version,
    })
    .expect("a switch serializes");
    let id = Uuid::new_v4();
    let submitted = state.engine().submit_command(&Submission {
        id,
        command: switch::SWITCH_READ_MODEL,
        version: Some(1),
        payload: &payload,
        expected_version: None,
    })?;
    let Submitted::New(pending) = submitted else {
        unreachable!("a fresh random id is no duplicate")
    };
    let outcome = pending.outcome().await?;
    let position = match outcome.state {
        CommandState::Succeeded => outcome.position.unwrap_or(0),
        CommandState::Rejected { code, message, .. } => {
            let kind = match code.as_str() {
                switch::codes::UNKNOWN_READ_MODEL => ProblemKind::NotFound,
                switch::codes::UNKNOWN_VERSION => ProblemKind::BadArgument,
                _ => ProblemKind::Internal,
            };
            return Err(ApiError::new(kind, message));
        }
        other => {
            return Err(ApiError::new(
                ProblemKind::Internal,
                format!("the switch of projection {name:?} to version {version} failed: {other:?}"),
            ));
        }
    };
    tracing::info!(projection = %name, version, position, command_id = %id, "switch logged");
    // The read side starts the rebuild when it applies the switch, before it publishes
    // that position. A read side that does not get there in time still will: the switch
    // is in the log.
    if let Err(e) = read
        .models
        .wait_for(position, state.options().after_wait_max)
        .await
    {
        tracing::warn!(projection = %name, version, position, "the switch is logged; the read models have not applied it yet: {e}");
    }
    Ok(())
}

/// The read side, or `404` on a server that runs none.
pub(crate) fn read_side(state: &AppState) -> Result<Reading, ApiError> {
    state.reading().ok_or_else(|| {
        ApiError::new(
            ProblemKind::NotFound,
            "this server runs no read model: there are no queries",
        )
    })
}

/// `v2` → 2.
fn api_version(text: &str) -> Result<u32, ApiError> {
    text.strip_prefix('v')
        .filter(|digits| !digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|digits| digits.parse::<u32>().ok())
        .ok_or_else(|| {
            ApiError::new(
                ProblemKind::NotFound,
                format!("{text:?} is not a query API version; versions look like v1, v2"),
            )
        })
}

pub(crate) fn position(text: &str) -> Result<u64, ApiError> {
    params::number("after", Some(text)).map(|after| after.unwrap_or(0))
}

pub(crate) fn repeated(name: &str) -> ApiError {
    ApiError::new(
        ProblemKind::BadArgument,
        format!("the query string gives `{name}` more than once"),
    )
}

/// Waits until the read models include `after`, bounded by `after_wait_max` (then `504`).
///
/// A position beyond the end of the log is waited for like any other, as the contract
/// says: on a follower positions come from the leader before this node has them, and a
/// client may ask for the position of a command it has just been told is final on another
/// node. Such a wait holds one place among the waiting requests (`--waits-max`) for at
/// most the bound.
pub(crate) async fn wait_after(
    state: &AppState,
    read: &Reading,
    after: Option<u64>,
) -> Result<(), ApiError> {
    // After a switch, also a query without `after` waits for the rebuilt read models to
    // include the new journal as it was at the switch, so none answers half rebuilt.
    let after = match after {
        Some(after) => after.max(read.floor),
        None if read.floor > 0 => read.floor,
        None => return Ok(()),
    };
    read.models
        .wait_for(after, state.options().after_wait_max)
        .await?;
    Ok(())
}

/// A JSON body: `415` unless declared JSON, `413` over the body limit, `400` when it does
/// not parse as `T`.
async fn json_body<T: serde::de::DeserializeOwned>(
    state: &AppState,
    request: Request,
) -> Result<T, ApiError> {
    match body_bytes(state, request).await? {
        Some(bytes) => parse(&bytes),
        None => Err(ApiError::malformed(
            "the body is empty; it must be a JSON object",
        )),
    }
}

/// The body, `None` when empty: `415` when there is one not declared JSON, `413` over the
/// body limit.
async fn body_bytes(state: &AppState, request: Request) -> Result<Option<Bytes>, ApiError> {
    let json = params::is_json(request.headers());
    let body = Bytes::from_request(request, state)
        .await
        .map_err(|rejection| crate::commands::body_error(state, rejection))?;
    if body.is_empty() {
        return Ok(None);
    }
    if !json {
        return Err(ApiError::new(
            ProblemKind::UnsupportedMediaType,
            "the body must be JSON: Content-Type application/json",
        ));
    }
    Ok(Some(body))
}

/// A body that must be a JSON object (serde would also read a struct from an array).
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::malformed(format!("the body: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::malformed("the body must be a JSON object"));
    }
    serde_json::from_value(value).map_err(|e| ApiError::malformed(format!("the body: {e}")))
}
