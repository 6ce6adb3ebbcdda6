//! Every HTTP error the server gives, as RFC 9457 `application/problem+json`, and the one
//! table that maps each kind of problem to its status code, `type` URI, title and the code
//! WebSocket clients see.

use std::fmt;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use writ_domain::{CommandError, Violation};
use writ_engine::{Overload, ReadError, SubmitError, Unavailable, WaitError};
use writ_query::{BudgetExceeded, QueryError, RebuildError, WaitError as QueryWaitError};
use writ_sandbox::SandboxError;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The challenge a `401` carries (RFC 6750).
pub const BEARER_CHALLENGE: &str = "Bearer realm=\"writ\"";

/// Where the problem type URIs live; the code is appended.
const TYPE_BASE: &str = "https://writ.dev/problems/";

/// The kinds of problem the server reports. The code of each is stable: it is the last
/// segment of the problem's `type` URI and the `error.code` WebSocket clients get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The request is not what the endpoint reads: malformed JSON, a missing or mistyped
    /// field, a bad id or query parameter. Fix the request.
    Malformed,
    /// The body is not JSON (`Content-Type` is not `application/json` or `+json`).
    UnsupportedMediaType,
    /// The command, or the route, does not exist.
    NotFound,
    /// The route exists but not for this method.
    MethodNotAllowed,
    /// The domain has no such command, or not in that version.
    UnknownCommand,
    /// The payload does not fit the command's schema.
    InvalidPayload,
    /// A document does not fit its resource type's JSON Schema; `errors` lists each place
    /// (`pointer`) and what is wrong there. Nothing was logged: fix the document.
    SchemaViolation,
    /// The id was already used for another command or payload.
    Conflict,
    /// The body or the command is larger than the limit.
    TooLarge,
    /// A bound was reached (intake queue, requests, streams, waiters): retry shortly.
    Overloaded,
    /// The store refuses writes (poisoned by an I/O failure) or the server is shutting down.
    Unavailable,
    /// A bug or a failed read; the details are in the server's log.
    Internal,
    /// A query argument (or a rebuild's version) is missing, unknown, of the wrong type or
    /// out of range.
    BadArgument,
    /// `?after=POSITION`: the read model did not reach the position within the bounded
    /// wait. Retry, or check that the position exists.
    Timeout,
    /// Query code ran longer than the sandbox's time limit and was interrupted.
    TimeLimit,
    /// Query code allocated more than the sandbox's memory limit, or a library function's
    /// answer was larger than the limit allows one answer.
    MemoryLimit,
    /// Query code recursed deeper than the sandbox's stack limit.
    StackLimit,
    /// Query code returned more JSON than the sandbox's result limit.
    ResultTooLarge,
    /// Query code is longer than the sandbox's code limit; it was not run.
    CodeTooLarge,
    /// Query code did not compile, or threw an error it did not catch.
    ScriptError,
    /// A projection rebuild is already running; wait for it to finish.
    RebuildRunning,
    /// An online replay (`POST /admin/replay`) is already running; wait for it to finish
    /// (`GET /admin/replay`).
    ReplayRunning,
    /// `POST /admin/replay` while an earlier replay's journal, written in full and not
    /// applied, is on disk: online replays keep at most one. Delete its `replay-{n}/`
    /// (or apply a replay offline) first.
    ReplayUnapplied,
    /// `POST /admin/replay` with `apply`: an online replay does not switch the running
    /// server onto the new journal. Replay without it for the report, and switch offline
    /// with `writ replay --apply` (the server stopped).
    ApplyOffline,
    /// The server runs with `--tokens` and the request carries no `Authorization: Bearer`
    /// token, or one it does not know. Send a valid token.
    Unauthorized,
    /// The token is valid but its scopes do not cover the route, or its `commands` list
    /// does not name the command. Use a token that may, or ask for the scope.
    Forbidden,
    /// The request's body did not arrive whole within the server's body deadline; the
    /// connection is closed. Send the body at once (or faster) and retry.
    BodyTimeout,
    /// An event of the log does not read in this build: it was recorded in an event
    /// schema version this build does not declare (a newer build recorded it). Run a build
    /// that reads it.
    EventUnreadable,
}

impl ProblemKind {
    /// The one table: status, code, title, and `Retry-After` seconds where a retry helps.
    const fn entry(self) -> (StatusCode, &'static str, &'static str, Option<u32>) {
        use ProblemKind::*;
        match self {
            Malformed => (
                StatusCode::BAD_REQUEST,
                "malformed",
                "Malformed request",
                None,
            ),
            UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
                None,
            ),
            NotFound => (StatusCode::NOT_FOUND, "not_found", "Not found", None),
            MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
                None,
            ),
            UnknownCommand => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_command",
                "Unknown command",
                None,
            ),
            InvalidPayload => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_payload",
                "Invalid payload",
                None,
            ),
            SchemaViolation => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "schema_violation",
                "The document does not fit its schema",
                None,
            ),
            Conflict => (
                StatusCode::CONFLICT,
                "conflict",
                "Command id already used",
                None,
            ),
            TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "Too large",
                None,
            ),
            Overloaded => (
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "Overloaded",
                Some(1),
            ),
            Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Unavailable",
                Some(5),
            ),
            Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
                None,
            ),
            BadArgument => (
                StatusCode::BAD_REQUEST,
                "bad_argument",
                "Bad argument",
                None,
            ),
            Timeout => (
                StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                "The read model did not reach the position in time",
                None,
            ),
            TimeLimit => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "time_limit",
                "Query time limit exceeded",
                None,
            ),
            MemoryLimit => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "memory_limit",
                "Query memory limit exceeded",
                None,
            ),
            StackLimit => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "stack_limit",
                "Query stack limit exceeded",
                None,
            ),
            ResultTooLarge => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "result_too_large",
                "Query result limit exceeded",
                None,
            ),
            CodeTooLarge => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "code_too_large",
                "Query code limit exceeded",
                None,
            ),
            ScriptError => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "script_error",
                "Query code failed",
                None,
            ),
            RebuildRunning => (
                StatusCode::CONFLICT,
                "rebuild_running",
                "A rebuild is already running",
                None,
            ),
            ReplayRunning => (
                StatusCode::CONFLICT,
                "replay_running",
                "A replay is already running",
                None,
            ),
            ReplayUnapplied => (
                StatusCode::CONFLICT,
                "replay_unapplied",
                "A replay's journal is on disk, not applied",
                None,
            ),
            ApplyOffline => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "apply_offline",
                "A replay is applied offline",
                None,
            ),
            Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "A valid bearer token is required",
                None,
            ),
            Forbidden => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "The token does not allow this",
                None,
            ),
            BodyTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                "The request body did not arrive in time",
                None,
            ),
            EventUnreadable => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "event_unreadable",
                "Event unreadable by this build",
                None,
            ),
        }
    }

    /// Every kind, for tests and documentation.
    pub const ALL: [ProblemKind; 28] = [
        ProblemKind::Malformed,
        ProblemKind::UnsupportedMediaType,
        ProblemKind::NotFound,
        ProblemKind::MethodNotAllowed,
        ProblemKind::UnknownCommand,
        ProblemKind::InvalidPayload,
        ProblemKind::SchemaViolation,
        ProblemKind::Conflict,
        ProblemKind::TooLarge,
        ProblemKind::Overloaded,
        ProblemKind::Unavailable,
        ProblemKind::Internal,
        ProblemKind::BadArgument,
        ProblemKind::Timeout,
        ProblemKind::TimeLimit,
        ProblemKind::MemoryLimit,
        ProblemKind::StackLimit,
        ProblemKind::ResultTooLarge,
        ProblemKind::CodeTooLarge,
        ProblemKind::ScriptError,
        ProblemKind::RebuildRunning,
        ProblemKind::ReplayRunning,
        ProblemKind::ReplayUnapplied,
        ProblemKind::ApplyOffline,
        ProblemKind::Unauthorized,
        ProblemKind::Forbidden,
        ProblemKind::BodyTimeout,
        ProblemKind::EventUnreadable,
    ];

    /// The HTTP status.
    pub const fn status(self) -> StatusCode {
        self.entry().0
    }

    /// The stable code, for example `conflict`.
    pub const fn code(self) -> &'static str {
        self.entry().1
    }

    /// A short summary that does not change between occurrences.
    pub const fn title(self) -> &'static str {
        self.entry().2
    }

    /// Seconds a client should wait before retrying, for the problems a retry can fix.
    pub const fn retry_after_s(self) -> Option<u32> {
        self.entry().3
    }

    /// The problem's `type` URI.
    pub fn type_uri(self) -> String {
        format!("{TYPE_BASE}{}", self.code())
    }
}

/// An RFC 9457 problem document, the body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
#[schema(example = json!({
    "type": "https://writ.dev/problems/conflict",
    "title": "Command id already used",
    "status": 409,
    "detail": "command id 0b0e5b4c-9a53-4c9a-9d7c-6a3f0c2f7a10 was already used for a different command or payload"
}))]
pub struct Problem {
    /// A URI naming the kind of problem; its last segment is a stable code.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this occurrence.
    pub detail: String,
    /// `schema_violation` only: each place the document breaks its schema, as a JSON
    /// pointer into the document (a missing required member at its own pointer, such as
    /// `/email`) and a message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub errors: Vec<Violation>,
}

/// An error answer: a kind of problem and what happened. Handlers return it; it renders
/// as `application/problem+json` with the kind's status (and `Retry-After` where a retry
/// helps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The kind.
    pub kind: ProblemKind,
    /// What went wrong in this occurrence.
    pub detail: String,
    /// The places a document breaks its schema (`schema_violation` only).
    pub errors: Vec<Violation>,
}

impl ApiError {
    /// A problem of `kind`.
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    /// A malformed request.
    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::Malformed, detail)
    }

    /// A bound was reached.
    pub fn overloaded(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::Overloaded, detail)
    }

    /// A failed read, logged here with its cause; the client sees a generic detail.
    pub fn read(error: &ReadError) -> Self {
        if let ReadError::Event { .. } = error {
            // Says only what the log holds and what this build reads.
            tracing::error!(%error, "an event does not read in this build");
            return Self::new(ProblemKind::EventUnreadable, error.to_string());
        }
        tracing::error!(%error, "read failed");
        Self::new(
            ProblemKind::Internal,
            "reading the store failed; see the server log",
        )
    }

    /// The problem document.
    pub fn problem(&self) -> Problem {
        Problem {
            problem_type: self.kind.type_uri(),
            title: self.kind.title().to_owned(),
            status: self.kind.status().as_u16(),
            detail: self.detail.clone(),
            errors: self.errors.clone(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.code(), self.detail)
    }
}

impl From<SubmitError> for ApiError {
    fn from(error: SubmitError) -> Self {
        if let SubmitError::Invalid(CommandError::SchemaViolation { violations, .. }) = &error {
            let errors = violations.clone();
            return Self {
                errors,
                ..Self::new(ProblemKind::SchemaViolation, error.to_string())
            };
        }
        let kind = match &error {
            SubmitError::Invalid(
                CommandError::UnknownCommand { .. }
                | CommandError::UnknownVersion { .. }
                | CommandError::Internal { .. },
            ) => ProblemKind::UnknownCommand,
            SubmitError::Invalid(_) => ProblemKind::InvalidPayload,
            SubmitError::TooLarge { .. } => ProblemKind::TooLarge,
            SubmitError::Conflict { .. } => ProblemKind::Conflict,
            SubmitError::Overloaded(_) => ProblemKind::Overloaded,
            SubmitError::Unavailable(_) => ProblemKind::Unavailable,
            _ => ProblemKind::Internal,
        };
        Self::new(kind, error.to_string())
    }
}

impl From<Unavailable> for ApiError {
    fn from(error: Unavailable) -> Self {
        Self::new(ProblemKind::Unavailable, error.to_string())
    }
}

impl From<Overload> for ApiError {
    fn from(error: Overload) -> Self {
        Self::new(ProblemKind::Overloaded, error.to_string())
    }
}

impl From<WaitError> for ApiError {
    fn from(error: WaitError) -> Self {
        match error {
            WaitError::Overloaded(overload) => overload.into(),
            WaitError::Unavailable(unavailable) => unavailable.into(),
            WaitError::Read(read) => Self::read(&read),
            other => Self::new(ProblemKind::Internal, other.to_string()),
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> Self {
        let kind = match &error {
            QueryError::NotFound { .. }
            | QueryError::UnknownQuery { .. }
            | QueryError::UnknownVersion { .. } => ProblemKind::NotFound,
            QueryError::BadArgument { .. } => ProblemKind::BadArgument,
            QueryError::Unavailable { .. } | QueryError::Stopped { .. } => ProblemKind::Unavailable,
            QueryError::OverBudget {
                exceeded: BudgetExceeded::Time,
            } => ProblemKind::TimeLimit,
            QueryError::OverBudget { .. } => ProblemKind::MemoryLimit,
            QueryError::Failed { .. } => {
                tracing::error!(%error, "a query failed");
                ProblemKind::Internal
            }
            _ => ProblemKind::Internal,
        };
        Self::new(kind, error.to_string())
    }
}

impl From<SandboxError> for ApiError {
    fn from(error: SandboxError) -> Self {
        let kind = match &error {
            SandboxError::TimeLimit { .. } => ProblemKind::TimeLimit,
            // A library answer counts against the memory limit: same problem, its own detail.
            SandboxError::MemoryLimit { .. } | SandboxError::LibraryAnswerTooLarge { .. } => {
                ProblemKind::MemoryLimit
            }
            SandboxError::StackLimit { .. } => ProblemKind::StackLimit,
            SandboxError::ResultTooLarge { .. } => ProblemKind::ResultTooLarge,
            SandboxError::CodeTooLarge { .. } => ProblemKind::CodeTooLarge,
            SandboxError::Script {
                line,
                column,
                message,
            } => {
                let at = match (line, column) {
                    (Some(line), Some(column)) => format!(" (line {line}, column {column})"),
                    (Some(line), None) => format!(" (line {line})"),
                    _ => String::new(),
                };
                return Self::new(ProblemKind::ScriptError, format!("{message}{at}"));
            }
            // The library's statuses are those of the named queries (see `QueryError`).
            SandboxError::Library { status, message } if *status != 500 => {
                let kind = match status {
                    400 => ProblemKind::BadArgument,
                    404 => ProblemKind::NotFound,
                    503 => ProblemKind::Unavailable,
                    _ => ProblemKind::Internal,
                };
                return Self::new(kind, message.clone());
            }
            SandboxError::Overloaded => ProblemKind::Overloaded,
            _ => {
                tracing::error!(%error, "query code failed in the sandbox");
                ProblemKind::Internal
            }
        };
        Self::new(kind, error.to_string())
    }
}

impl From<QueryWaitError> for ApiError {
    fn from(error: QueryWaitError) -> Self {
        let kind = match &error {
            QueryWaitError::Timeout { .. } => ProblemKind::Timeout,
            _ => ProblemKind::Unavailable,
        };
        Self::new(kind, error.to_string())
    }
}

impl From<RebuildError> for ApiError {
    fn from(error: RebuildError) -> Self {
        let kind = match &error {
            RebuildError::UnknownModel { .. } => ProblemKind::NotFound,
            RebuildError::UnknownVersion { .. } => ProblemKind::BadArgument,
            RebuildError::AlreadyRunning { .. } => ProblemKind::RebuildRunning,
            RebuildError::ShutDown => ProblemKind::Unavailable,
            _ => ProblemKind::Internal,
        };
        Self::new(kind, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).expect("a problem serializes");
        let mut response = (self.kind.status(), body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(seconds) = self.kind.retry_after_s() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.kind == ProblemKind::Unauthorized {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(BEARER_CHALLENGE),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_types_end_with_them() {
        let mut codes: Vec<_> = ProblemKind::ALL.iter().map(|k| k.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ProblemKind::ALL.len());
        for kind in ProblemKind::ALL {
            assert!(kind.type_uri().ends_with(&format!("/{}", kind.code())));
            assert!(kind.status().is_client_error() || kind.status().is_server_error());
        }
    }

    #[test]
    fn only_503_problems_carry_retry_after() {
        for kind in ProblemKind::ALL {
            assert_eq!(
                kind.retry_after_s().is_some(),
                kind.status() == StatusCode::SERVICE_UNAVAILABLE,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn a_library_answer_over_its_budget_is_the_memory_limit() {
        let error = ApiError::from(SandboxError::LibraryAnswerTooLarge {
            function: "getCounter".into(),
            budget_bytes: 1 << 20,
            limit_bytes: 4 << 20,
        });
        assert_eq!(error.kind, ProblemKind::MemoryLimit);
        assert_eq!(error.kind.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(error.detail.contains("getCounter"), "{}", error.detail);
        assert!(
            error.detail.contains("memory limit of 4194304 bytes"),
            "{}",
            error.detail
        );
        let over = |exceeded| ApiError::from(QueryError::OverBudget { exceeded }).kind;
        assert_eq!(
            over(BudgetExceeded::Bytes { bytes_max: 1 }),
            ProblemKind::MemoryLimit
        );
        assert_eq!(over(BudgetExceeded::Time), ProblemKind::TimeLimit);
    }

    #[test]
    fn submit_errors_map_to_the_contract_statuses() {
        let id = uuid::Uuid::nil();
        let cases = [
            (
                SubmitError::Invalid(CommandError::UnknownCommand { name: "X".into() }),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                SubmitError::Invalid(CommandError::InvalidPayload {
                    name: "X".into(),
                    version: 1,
                    detail: "no".into(),
                }),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                SubmitError::TooLarge { size: 2, max: 1 },
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
            (SubmitError::Conflict { id }, StatusCode::CONFLICT),
            (
                SubmitError::Overloaded(Overload::IntakeQueueFull),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                SubmitError::Unavailable(Unavailable::ShuttingDown),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
        ];
        for (error, status) in cases {
            assert_eq!(ApiError::from(error).kind.status(), status);
        }
    }
}
