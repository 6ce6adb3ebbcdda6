//! Event schema versions through the router: a journal written by the before build of
//! the fixtures' `people` domain, served by the after build on the same storage, shows
//! its events in the current shape with the version they were recorded in (`/streams`,
//! `/events`), decides and projects from the upcast shape, and lists the versions in
//! `/domains` and `/openapi.json`; the before build, given an event of the after build,
//! answers a problem that says so.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;
use writ_domain::Domain;
use writ_engine::Engine;
use writ_fixtures::people::{after, before};
use writ_log::storage::SimStorage;
use writ_query::{EventSource, ReadModels, RuntimeOptions};
use writ_sandbox::{Sandbox, SandboxOptions};
use writ_server::{AppState, ReadSide, ServerOptions, router};

mod support;
use support::{Answer, call, get, small_engine_options};

/// A server of one build of `people` on `storage`, with the after build's read model.
struct Node {
    app: Router,
    engine: Arc<Engine>,
}

impl Node {
    fn open<D: Domain>(storage: &SimStorage, with_read_model: bool) -> Node {
        let (engine, _) =
            support::open_domain::<D>(Arc::new(storage.clone()), small_engine_options())
                .expect("the engine opens");
        let engine = Arc::new(engine);
        let mut state = AppState::new(Arc::clone(&engine), ServerOptions::default());
        if with_read_model {
            let models = ReadModels::start(
                Arc::clone(&engine) as Arc<dyn EventSource>,
                [after::read_model()],
                RuntimeOptions::default(),
            )
            .unwrap();
            let sandbox = Sandbox::new(SandboxOptions {
                time_limit: Duration::from_secs(2),
                memory_bytes_max: 16 << 20,
                pool_size: 1,
                ..SandboxOptions::default()
            })
            .unwrap();
            state = state.with_read_side(ReadSide {
                models: Arc::new(models),
                sandbox: Arc::new(sandbox),
                domain_of_model: [("people".to_owned(), "people".to_owned())].into(),
            });
        }
        Node {
            app: router(state),
            engine,
        }
    }

    async fn get(&self, uri: &str) -> Answer {
        call(&self.app, get(uri)).await
    }

    async fn ok(&self, uri: &str) -> Value {
        let answer = self.get(uri).await;
        assert_eq!(answer.status, StatusCode::OK, "{uri}: {}", answer.text());
        answer.json()
    }

    /// Runs a command through `POST /update?wait=` and returns its final status.
    async fn run(&self, command: &str, version: Option<u32>, payload: Value) -> Value {
        let mut body = json!({"id": Uuid::new_v4(), "command": command, "payload": payload});
        if let Some(version) = version {
            body["version"] = version.into();
        }
        let answer = call(
            &self.app,
            support::post_json("/update?wait=30", body.to_string()),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        answer.json()
    }

    async fn stop(self) {
        drop(self.app);
        support::shut_down(self.engine).await;
    }
}

/// What a test compares of an event: type, `schemaVersion`, recorded version, data.
fn shape(event: &Value) -> (Value, Value, Value, Value) {
    (
        event["type"].clone(),
        event["schemaVersion"].clone(),
        event["metadata"]["recordedSchemaVersion"].clone(),
        event["data"].clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_after_build_reads_what_the_before_build_recorded_in_the_current_shape() {
    let storage = SimStorage::new();
    let node = Node::open::<before::People>(&storage, false);
    let named = node
        .run(
            "NamePerson",
            None,
            json!({"personId": "p-1", "name": "Ada King Lovelace"}),
        )
        .await;
    assert_eq!(named["status"], "succeeded", "{named}");
    // The before build shows its own events at version 1.
    let stream = node.ok("/streams/person-p-1").await;
    assert_eq!(
        shape(&stream["events"][0]),
        (
            json!("PersonNamed"),
            json!(1),
            json!(1),
            json!({"personId": "p-1", "name": "Ada King Lovelace"})
        )
    );
    node.stop().await;

    let node = Node::open::<after::People>(&storage, true);
    // A decision on the upcast state.
    let greeted = node
        .run("GreetPerson", None, json!({"personId": "p-1"}))
        .await;
    assert_eq!(greeted["status"], "succeeded", "{greeted}");
    let last = greeted["position"].as_u64().unwrap();

    let upcast_named = (
        json!("PersonNamed"),
        json!(2),
        json!(1),
        json!({"personId": "p-1", "first": "Ada", "last": "King Lovelace"}),
    );
    let greeting = (
        json!("PersonGreeted"),
        json!(1),
        json!(1),
        json!({"personId": "p-1", "greeting": "Hello, Ada"}),
    );
    let stream = node.ok("/streams/person-p-1").await;
    let events: Vec<_> = stream["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(shape)
        .collect();
    assert_eq!(events, [upcast_named.clone(), greeting.clone()]);
    // The contract's fields are all there as before.
    let first = &stream["events"][0];
    assert_eq!(
        (&first["stream"], &first["version"], &first["position"]),
        (&json!("person-p-1"), &json!(1), &json!(1))
    );
    for field in ["commandId", "recordedAt", "causationId", "correlationId"] {
        assert!(first["metadata"].get(field).is_some(), "{first}");
    }
    let log = node.ok("/events?from=1&limit=10").await;
    let events: Vec<_> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(shape)
        .collect();
    assert_eq!(events, [upcast_named, greeting]);

    // The read model folded the upcast event.
    let person = node
        .ok(&format!("/query/v1/getPerson?id=p-1&after={last}"))
        .await;
    assert_eq!(
        person,
        json!({"id": "p-1", "first": "Ada", "last": "King Lovelace", "greetings": 1})
    );

    // A version 2 event of this build is shown as recorded.
    let renamed = node
        .run(
            "NamePerson",
            Some(2),
            json!({"personId": "p-2", "first": "Grace", "last": "Hopper"}),
        )
        .await;
    assert_eq!(renamed["status"], "succeeded", "{renamed}");
    let stream = node.ok("/streams/person-p-2").await;
    assert_eq!(
        shape(&stream["events"][0]),
        (
            json!("PersonNamed"),
            json!(2),
            json!(2),
            json!({"personId": "p-2", "first": "Grace", "last": "Hopper"})
        )
    );

    // `/domains` lists each event type's versions; `/openapi.json` describes the fields.
    let domains = node.ok("/domains").await;
    assert_eq!(
        domains["domains"][0]["events"],
        json!([
            {"name": "PersonNamed", "version": 2, "versions": [1, 2]},
            {"name": "PersonGreeted", "version": 1, "versions": [1]},
        ])
    );
    assert_eq!(
        domains["domains"][0]["eventTypes"],
        json!(["PersonNamed", "PersonGreeted"])
    );
    let openapi = node.ok("/openapi.json").await;
    let schemas = &openapi["components"]["schemas"];
    assert!(
        schemas["Event"]["properties"]
            .get("schemaVersion")
            .is_some(),
        "{}",
        schemas["Event"]
    );
    assert!(
        schemas["EventMetadata"]["properties"]
            .get("recordedSchemaVersion")
            .is_some(),
        "{}",
        schemas["EventMetadata"]
    );
    assert!(schemas["EventInfo"]["properties"].get("versions").is_some());
    node.stop().await;

    // The before build cannot read the after build's version 2 event, and says so.
    let node = Node::open::<before::People>(&storage, false);
    for uri in ["/streams/person-p-2", "/events?from=1"] {
        let answer = node.get(uri).await;
        assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR, "{uri}");
        let problem = answer.json();
        assert_eq!(
            problem["type"], "https://writ.dev/problems/event_unreadable",
            "{problem}"
        );
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains("PersonNamed")
                && detail.contains("schema version 2")
                && detail.contains("a newer build recorded it"),
            "{detail}"
        );
    }
    node.stop().await;
}
