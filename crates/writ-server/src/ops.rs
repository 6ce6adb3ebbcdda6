//! Operations: `GET /health`, `GET /metrics`, `GET /openapi.json`, and the answers for
//! routes and methods that do not exist.

use std::fmt::Write;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;

use writ_engine::Engine;

use crate::AppState;
use crate::access;
use crate::problem::{ApiError, PROBLEM_JSON, ProblemKind};
use crate::wire::{self, Health, HealthState, json_response};

/// The OpenAPI description of the server, generated from the handlers' annotations and
/// the wire types. `GET /openapi.json` serves it with the domain's commands filled in.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Writ",
        description = "Writ, a command-first CQRS and event-sourcing server.\n\n\
            Commands are submitted with `POST /update` (or many at once over the WebSocket `GET /ws`) and \
            acknowledged once durable; their outcomes are read with `GET /update/{id}`. Events are read by \
            stream or from the global log, as pages or as a live tail. Every error is \
            `application/problem+json` (RFC 9457).",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    tags(
        (name = "commands", description = "The write side: submit commands and follow their status."),
        (name = "reads", description = "Events, by stream or from the global log."),
        (name = "operations", description = "Health, metrics and this description."),
        (name = "admin", description = "Operations on the store beside live traffic: the online replay."),
    ),
    components(schemas(wire::InvalidFrame, wire::ErrorBody)),
)]
pub struct ApiDoc;

/// The serialized description, shared by every request.
#[derive(Debug, Clone)]
pub(crate) struct OpenApiDocument(Bytes);

impl OpenApiDocument {
    /// The document for the engine's domains: their commands are listed in the
    /// description, and each command version's payload JSON Schema is a component schema
    /// named `{Command}.v{version}` (the same schemas `GET /domains` shows).
    ///
    /// With `secured` (the server has tokens), it declares the bearer security scheme,
    /// requires it everywhere but on `/health`, and adds the `401` (and, where a scope is
    /// needed, `403`) answers to each operation.
    pub(crate) fn new(
        mut openapi: utoipa::openapi::OpenApi,
        engine: &Engine,
        secured: bool,
    ) -> Self {
        let registry = engine.registry();
        let mut commands = String::new();
        let mut schemas = serde_json::Map::new();
        for (domain, spec) in registry.commands() {
            let name = format!("{}.v{}", spec.name, spec.version);
            let _ = write!(
                commands,
                "\n- `{}` version {} ({domain}{}): payload schema `#/components/schemas/{name}`",
                spec.name,
                spec.version,
                if spec.internal {
                    ", issued by processes only"
                } else if spec.name == writ_query::switch::SWITCH_READ_MODEL {
                    ", needs the admin scope; `POST /projections/{name}/rebuild` sends it"
                } else {
                    ""
                }
            );
            schemas.insert(name, spec.schema);
        }
        let description = openapi.info.description.get_or_insert_with(String::new);
        let _ = write!(
            description,
            "\n\nThis server runs the domains {}, whose commands are:{commands}",
            registry
                .domain_names()
                .iter()
                .map(|d| format!("`{d}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        // utoipa's types do not hold arbitrary JSON Schemas: the payload schemas are added
        // to the serialized document.
        let mut document = serde_json::to_value(&openapi).expect("the OpenAPI document serializes");
        if let Some(components) = document.as_object_mut().and_then(|d| {
            d.entry("components")
                .or_insert_with(|| serde_json::json!({}))
                .as_object_mut()
        }) {
            let target = components
                .entry("schemas")
                .or_insert_with(|| serde_json::json!({}));
            if let Some(target) = target.as_object_mut() {
                target.extend(schemas);
            }
        }
        if secured {
            secure(&mut document);
        }
        Self(Bytes::from(
            serde_json::to_vec(&document).expect("the OpenAPI document serializes"),
        ))
    }
}

/// The name of the bearer security scheme in the OpenAPI document.
const BEARER_SCHEME: &str = "bearer";

/// Declares the bearer token scheme in a serialized OpenAPI document, and on each
/// operation what [`access::need`] asks of it: nothing on `/health`, else a valid token
/// (`401` without one) and, where scopes are needed, `403` for a token without them.
fn secure(document: &mut serde_json::Value) {
    use serde_json::json;
    let Some(root) = document.as_object_mut() else {
        return;
    };
    if let Some(description) = root
        .get_mut("info")
        .and_then(|info| info.get_mut("description"))
        .and_then(|d| d.as_str().map(str::to_owned))
        .map(|d| d + ACCESS_DESCRIPTION)
    {
        root["info"]["description"] = json!(description);
    }
    root.insert("security".to_owned(), json!([{ BEARER_SCHEME: [] }]));
    let components = root
        .entry("components")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("components is an object");
    components.insert(
        "securitySchemes".to_owned(),
        json!({ BEARER_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": "A token of the server's tokens file (`--tokens`): `Authorization: Bearer TOKEN`.",
        }}),
    );
    let problem = |description: &str, challenge: bool| {
        let mut response = json!({
            "description": description,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        });
        if challenge {
            response["headers"] = json!({"WWW-Authenticate": {
                "description": "`Bearer realm=\"writ\"`",
                "required": true,
                "schema": {"type": "string"},
            }});
        }
        response
    };
    let Some(paths) = root.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            // A path item's other fields (`parameters`, `summary`...) are no operations.
            const OPERATIONS: [&str; 8] = [
                "get", "put", "post", "delete", "options", "head", "patch", "trace",
            ];
            if !OPERATIONS.contains(&method.as_str()) {
                continue;
            }
            let Ok(method) = Method::from_bytes(method.to_ascii_uppercase().as_bytes()) else {
                continue;
            };
            let Some(operation) = operation.as_object_mut() else {
                continue;
            };
            let scopes = match access::need(&method, Some(path)) {
                access::Need::Open => {
                    operation.insert("security".to_owned(), json!([]));
                    continue;
                }
                access::Need::AnyOf(scopes) => scopes,
            };
            let Some(responses) = operation
                .entry("responses")
                .or_insert_with(|| json!({}))
                .as_object_mut()
            else {
                continue;
            };
            responses.entry("401").or_insert_with(|| {
                problem(
                    "No `Authorization: Bearer` token, or one the server does not know.",
                    true,
                )
            });
            if !scopes.is_empty() {
                let names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
                responses.entry("403").or_insert_with(|| {
                    problem(
                        &format!(
                            "The token has not the scope this needs ({}).",
                            names.join(" or ")
                        ),
                        false,
                    )
                });
            }
        }
    }
}

/// What the description says of access on a server with tokens.
const ACCESS_DESCRIPTION: &str = "\n\nAccess: every route but `/health` needs \
    `Authorization: Bearer TOKEN`, a token of the server's tokens file. Without one, or with \
    one the server does not know, the answer is `401`, also for paths that do not exist. \
    A token has scopes: `commands` (`POST /update`, `/ws`, `GET /update/{id}`), `queries` \
    (reads, queries, events, streams, `GET /update/{id}`, `GET /projections`), `admin` \
    (rebuilds, `/metrics`); any valid token reads `/openapi.json` and `/domains`. A route \
    outside the token's scopes, or a command its `commands` list does not name, is `403`.";

/// Whether the server takes writes, and how far the log is.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses(
        (status = 200, description = "Serving reads and writes.", body = Health),
        (status = 503, description = "The store refuses writes after an I/O failure (reads still work); restart after fixing the cause.",
            body = Health),
    )
)]
pub(crate) async fn health(State(state): State<AppState>) -> Response {
    let engine = state.engine();
    let poisoned = engine.poisoned();
    let body = Health {
        status: if poisoned.is_some() {
            HealthState::Unavailable
        } else {
            HealthState::Ok
        },
        domain: engine
            .registry()
            .domain_names()
            .into_iter()
            .filter(|name| *name != writ_query::switch::DOMAIN)
            .collect::<Vec<_>>()
            .join(","),
        position: engine.last_position(),
        detail: poisoned.map(|reason| reason.to_string()),
    };
    let status = match body.status {
        HealthState::Ok => StatusCode::OK,
        HealthState::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    };
    json_response(status, &body)
}

/// Metrics in the Prometheus text format.
///
/// The engine's (intake queue, command and event log batches and syncs, outcomes), the
/// read models' (events parked by model) and the server's (requests by route and status,
/// open streams and sockets).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4.", body = String,
        content_type = "text/plain; version=0.0.4; charset=utf-8")),
)]
pub(crate) async fn metrics() -> Response {
    let body = crate::telemetry::prometheus().render();
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// This description.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 description of every endpoint.", body = Object)),
)]
pub(crate) async fn openapi_json(Extension(document): Extension<OpenApiDocument>) -> Response {
    let mut response = document.0.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// No such route.
pub(crate) async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        ProblemKind::NotFound,
        format!("no route for {method} {}", uri.path()),
    )
}

/// The route exists, not for this method.
pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        ProblemKind::MethodNotAllowed,
        format!("{} does not take {method}", uri.path()),
    )
}
