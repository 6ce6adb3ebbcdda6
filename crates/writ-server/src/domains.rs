//! `GET /domains`: what this server runs, for clients and tools: each domain with its
//! commands (name, versions, payload JSON Schema), event types (with their schema
//! versions), stream prefixes, and the
//! query API versions and queries of its read models; and the processes.

use std::collections::BTreeMap;

use axum::Extension;
use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::state::AppState;

/// `GET /domains`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Domains {
    /// The domains served, in the order they were registered.
    pub domains: Vec<DomainInfo>,
    /// The processes that run: each reacts to events by issuing commands.
    pub processes: Vec<ProcessInfo>,
}

/// One domain.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DomainInfo {
    /// Its name, as `--domain` spells it.
    pub name: String,
    /// How its streams' names begin.
    pub stream_prefixes: Vec<String>,
    /// Its commands.
    pub commands: Vec<CommandInfo>,
    /// The event types it records.
    pub event_types: Vec<String>,
    /// The event types it records, with their schema versions (in the order of
    /// `eventTypes`).
    pub events: Vec<EventInfo>,
    /// Its read models' names.
    pub read_models: Vec<String>,
    /// The query API versions its read models answer, oldest first.
    pub query_versions: Vec<u32>,
    /// Its read models' named queries.
    pub queries: Vec<QueryInfo>,
}

/// A command and its versions.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommandInfo {
    /// Its name.
    pub name: String,
    /// Issued by the server's processes only; clients cannot send it.
    pub internal: bool,
    /// Its payload versions, oldest first.
    pub versions: Vec<CommandVersion>,
}

/// One version of a command.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommandVersion {
    /// The version.
    pub version: u32,
    /// The payload's JSON Schema (draft 2020-12), derived from the payload type.
    #[schema(value_type = Object)]
    pub schema: Value,
}

/// An event type and its schema versions.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventInfo {
    /// Its name, the events' `type`.
    pub name: String,
    /// The schema version this server records it in, and shows every event of the type
    /// in (`schemaVersion` in `/streams` and `/events`).
    #[schema(minimum = 1)]
    pub version: u32,
    /// Every schema version that reads, oldest first (older ones are upcast to `version`).
    pub versions: Vec<u32>,
}

/// A named query.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueryInfo {
    /// The query API version.
    pub version: u32,
    /// The name: `GET /query/v{version}/{name}`, and a function in query code.
    pub name: String,
    /// Its parameters, in positional order.
    pub params: Vec<String>,
    /// The read model that answers it.
    pub read_model: String,
}

/// A process.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProcessInfo {
    /// Its name (part of the ids of the commands it issues).
    pub name: String,
    /// The event types it reacts to.
    pub event_types: Vec<String>,
}

/// The serialized answer, made once.
#[derive(Debug, Clone)]
pub(crate) struct DomainsDocument(Bytes);

impl DomainsDocument {
    pub(crate) fn new(state: &AppState) -> Self {
        let engine = state.engine();
        let registry = engine.registry();
        let read_side = state.read_side();
        let mut queries: BTreeMap<&str, Vec<QueryInfo>> = BTreeMap::new();
        let mut read_models: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        if let Some(read) = &read_side {
            for name in read.models.names() {
                if let Some(domain) = read.domain_of_model.get(name) {
                    read_models
                        .entry(domain.as_str())
                        .or_default()
                        .push(name.to_owned());
                }
            }
            for query in read.models.queries() {
                if let Some(domain) = read.domain_of_model.get(query.model) {
                    queries.entry(domain.as_str()).or_default().push(QueryInfo {
                        version: query.query.version,
                        name: query.query.name,
                        params: query.query.params,
                        read_model: query.model.to_owned(),
                    });
                }
            }
        }
        let domains = registry
            .domains()
            .iter()
            // The built-in domain of read model switches is the server's, not an app's.
            .filter(|domain| domain.name() != writ_query::switch::DOMAIN)
            .map(|domain| {
                let mut commands: Vec<CommandInfo> = Vec::new();
                for spec in domain.commands() {
                    let version = CommandVersion {
                        version: spec.version,
                        schema: spec.schema,
                    };
                    match commands.iter_mut().find(|c| c.name == spec.name) {
                        Some(command) => {
                            command.internal &= spec.internal;
                            command.versions.push(version);
                        }
                        None => commands.push(CommandInfo {
                            name: spec.name,
                            internal: spec.internal,
                            versions: vec![version],
                        }),
                    }
                }
                for command in &mut commands {
                    command.versions.sort_by_key(|v| v.version);
                }
                let queries = queries.remove(domain.name()).unwrap_or_default();
                let mut query_versions: Vec<u32> = queries.iter().map(|q| q.version).collect();
                query_versions.sort_unstable();
                query_versions.dedup();
                DomainInfo {
                    name: domain.name().to_owned(),
                    stream_prefixes: domain.stream_prefixes(),
                    commands,
                    event_types: domain.event_types(),
                    events: domain
                        .events()
                        .into_iter()
                        .map(|e| EventInfo {
                            name: e.name,
                            version: e.version,
                            versions: e.versions,
                        })
                        .collect(),
                    read_models: read_models.remove(domain.name()).unwrap_or_default(),
                    query_versions,
                    queries,
                }
            })
            .collect();
        let processes = registry
            .processes()
            .iter()
            .map(|p| ProcessInfo {
                name: p.name().to_owned(),
                event_types: p.event_types(),
            })
            .collect();
        let body = serde_json::to_vec(&Domains { domains, processes })
            .expect("the domains document serializes");
        Self(Bytes::from(body))
    }
}

/// The domains this server runs: commands with their payload schemas, events, streams,
/// read models and queries; and the processes.
#[utoipa::path(
    get,
    path = "/domains",
    tag = "operations",
    responses((status = 200, description = "Every domain served and every process that runs.", body = Domains)),
)]
pub(crate) async fn get_domains(Extension(document): Extension<DomainsDocument>) -> Response {
    let mut response = (StatusCode::OK, document.0).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
