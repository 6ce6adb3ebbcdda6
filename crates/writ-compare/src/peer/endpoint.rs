//! The peer behind HTTP, for `--over http`: a minimal `POST /update` over
//! [`CqrsFramework::execute_with_metadata`](cqrs_es::CqrsFramework::execute_with_metadata),
//! served by axum (the framework Writ's server is built on) on `127.0.0.1`.
//!
//! It takes the body Writ's `POST /update` takes, `{"id","command","version","payload"}`
//! (`OpenTicket` version 2, `AddComment` version 1; the version may be left out), and
//! answers only once `execute` returned, which is after PostgreSQL committed the command's
//! events: `200` with `{"id","command","status":"succeeded"}`, or `"rejected"` with the
//! rule's `error.code`, as Writ answers a final status. The `wait` query parameter is
//! accepted and has nothing to change: every answer is final.
//!
//! | what came | answer |
//! |---|---|
//! | the events committed | `200`, `status: succeeded` |
//! | a rule said no | `200`, `status: rejected`, `error: {code, message}` |
//! | not JSON, no id, a payload that does not decode | `400` |
//! | another command or version | `422` |
//! | PostgreSQL failed, or a concurrent command won the stream | `500`, `status: failed`: nothing is known to be committed |
//!
//! What it leaves out that Writ's server does, each in the peer's favour: JSON Schema
//! checks of payloads, dedupe of ids, the events in the answer, a read model, metrics,
//! admission bounds.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use cqrs_es::AggregateError;
use postgres_es::PostgresCqrs;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use uuid::Uuid;
use writ_tickets::workload as payloads;
use writ_tickets::{AddComment, OpenTicket};

use super::{TicketAggregate, TicketCommand, comment_id};

/// The request body: the contract's fields (`expectedVersion` is not part of this
/// workload).
#[derive(Debug, Deserialize)]
struct UpdateRequest {
    id: Uuid,
    command: String,
    version: Option<u32>,
    payload: serde_json::Value,
}

/// The answer: the fields of Writ's status body that the comparison reads, and the error.
#[derive(Debug, Serialize)]
struct StatusBody<'a> {
    id: Uuid,
    command: &'a str,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorBody>,
}

#[derive(Debug, Serialize)]
struct ErrorBody {
    code: String,
    message: String,
}

/// The router: `POST /update` on `cqrs`.
pub fn router(cqrs: Arc<PostgresCqrs<TicketAggregate>>) -> Router {
    Router::new()
        .route("/update", post(post_update))
        .with_state(cqrs)
}

async fn post_update(
    State(cqrs): State<Arc<PostgresCqrs<TicketAggregate>>>,
    body: Bytes,
) -> Response {
    let request: UpdateRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return plain(StatusCode::BAD_REQUEST, format!("not an update: {e}")),
    };
    let (command, ticket) = match decode(&request) {
        Ok(decoded) => decoded,
        Err((status, text)) => return plain(status, text),
    };
    // Writ records each event's command id; so does the peer, as metadata.
    let metadata = HashMap::from([("command_id".to_owned(), request.id.to_string())]);
    let (code, status, error) = match cqrs.execute_with_metadata(&ticket, command, metadata).await {
        Ok(()) => (StatusCode::OK, "succeeded", None),
        Err(AggregateError::UserError(rejection)) => (
            StatusCode::OK,
            "rejected",
            Some(ErrorBody {
                code: rejection.code.to_owned(),
                message: rejection.message,
            }),
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "failed",
            Some(ErrorBody {
                code: "command_failed".to_owned(),
                message: e.to_string(),
            }),
        ),
    };
    let body = StatusBody {
        id: request.id,
        command: &request.command,
        status,
        error,
    };
    let json = serde_json::to_vec(&body).expect("a status body always serializes");
    (code, [(header::CONTENT_TYPE, "application/json")], json).into_response()
}

/// The command and its aggregate id (the ticket id), or the status and text that refuse it.
fn decode(request: &UpdateRequest) -> Result<(TicketCommand, String), (StatusCode, String)> {
    let bad_payload = |e: serde_json::Error| (StatusCode::BAD_REQUEST, format!("the payload: {e}"));
    match (request.command.as_str(), request.version) {
        (payloads::OPEN_TICKET, None | Some(payloads::OPEN_TICKET_VERSION)) => {
            let open: OpenTicket =
                serde_json::from_value(request.payload.clone()).map_err(bad_payload)?;
            let ticket = open.ticket_id.as_str().to_owned();
            Ok((TicketCommand::OpenTicket(open), ticket))
        }
        (payloads::ADD_COMMENT, None | Some(payloads::ADD_COMMENT_VERSION)) => {
            let comment: AddComment =
                serde_json::from_value(request.payload.clone()).map_err(bad_payload)?;
            let ticket = comment.ticket_id.as_str().to_owned();
            let command = TicketCommand::AddComment {
                comment,
                comment_id: comment_id(request.id),
            };
            Ok((command, ticket))
        }
        (name, version) => Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "the peer knows OpenTicket version 2 and AddComment version 1, not {name} version {version:?}"
            ),
        )),
    }
}

fn plain(status: StatusCode, text: String) -> Response {
    (status, text).into_response()
}

/// A running endpoint; [`Endpoint::stop`] ends it.
#[derive(Debug)]
pub struct Endpoint {
    /// Where it listens, on `127.0.0.1`.
    pub address: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Endpoint {
    /// Serves [`router`] on `127.0.0.1` at a free port, on the current runtime.
    pub async fn start(cqrs: Arc<PostgresCqrs<TicketAggregate>>) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, router(cqrs))
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Self {
            address,
            stop,
            task,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Stops accepting, lets the connections close, and waits for the server's end.
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Connection as _;
    use writ_tools::client::{Bytes, Client, Method, StatusCode, Target};

    use super::*;
    use crate::http::driver::{UPDATE_PATH, request_body};
    use crate::peer;
    use crate::workload::Workload;

    /// Events of `ticket` in `schema`, counted on a connection of its own: a new session
    /// sees only what was committed.
    async fn committed_events(url: &str, schema: &str, ticket: &str) -> i64 {
        let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
        let count: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {schema}.events WHERE aggregate_id = $1"
        ))
        .bind(ticket)
        .fetch_one(&mut connection)
        .await
        .unwrap();
        connection.close().await.unwrap();
        count
    }

    async fn post(client: &mut Client, body: Bytes) -> (StatusCode, serde_json::Value) {
        let (status, answer) = client
            .send(Method::POST, UPDATE_PATH, Some(body))
            .await
            .unwrap();
        let json = serde_json::from_slice(&answer)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&answer).into()));
        (status, json)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_endpoint_answers_only_after_postgresql_committed() {
        let Some(url) = std::env::var("WRIT_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            eprintln!(
                "skipped: WRIT_TEST_POSTGRES_URL is not set (for example postgres://postgres@127.0.0.1:5432/test)"
            );
            return;
        };
        let (pool, _) = peer::connect(&url, 2).await.unwrap();
        let schema = peer::fresh_schema_name();
        peer::create_schema(&pool, &schema).await.unwrap();
        let endpoint = Endpoint::start(peer::framework(&pool, &schema))
            .await
            .unwrap();
        let mut client = Client::connect(&Target::parse(&endpoint.url()).unwrap())
            .await
            .unwrap();
        let workload = Workload::new(1, 2, 1).unwrap();
        let (open, comment) = (workload.step(0), workload.step(1));

        // Each success is visible to another session the moment its answer is in: the
        // transaction committed before the endpoint answered.
        let (status, answer) = post(&mut client, request_body(&open, Uuid::new_v4())).await;
        assert_eq!(
            (status, &answer["status"]),
            (StatusCode::OK, &"succeeded".into()),
            "{answer}"
        );
        assert_eq!(committed_events(&url, &schema, "t-0").await, 1);
        let id = Uuid::new_v4();
        let (status, answer) = post(&mut client, request_body(&comment, id)).await;
        assert_eq!(
            (status, &answer["status"]),
            (StatusCode::OK, &"succeeded".into()),
            "{answer}"
        );
        assert_eq!(answer["id"], id.to_string());
        assert_eq!(answer["command"], "AddComment");
        assert_eq!(committed_events(&url, &schema, "t-0").await, 2);

        // A rule's no is final too, with Writ's code, and records nothing.
        let (status, answer) = post(&mut client, request_body(&open, Uuid::new_v4())).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer["status"], "rejected");
        assert_eq!(answer["error"]["code"], "ticket_exists");
        assert_eq!(committed_events(&url, &schema, "t-0").await, 2);

        // Refusals before anything runs.
        let unknown = Bytes::from_static(
            br#"{"id":"00000000-0000-0000-0000-000000000001","command":"CloseTicket","version":1,"payload":{}}"#,
        );
        assert_eq!(
            post(&mut client, unknown).await.0,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let old_version = Bytes::from_static(
            br#"{"id":"00000000-0000-0000-0000-000000000002","command":"OpenTicket","version":1,"payload":{}}"#,
        );
        assert_eq!(
            post(&mut client, old_version).await.0,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            post(&mut client, Bytes::from_static(b"{\"id\":")).await.0,
            StatusCode::BAD_REQUEST
        );

        // Without its tables PostgreSQL cannot commit: no success is answered.
        peer::drop_schema(&pool, &schema).await.unwrap();
        let (status, answer) = post(&mut client, request_body(&comment, Uuid::new_v4())).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{answer}");
        assert_eq!(answer["status"], "failed");

        drop(client);
        endpoint.stop().await.unwrap();
        pool.close().await;
    }
}
