//! The OpenAPI document against what the router answers: regressions for what schemathesis
//! (`.ci/schemathesis`) found, each through the router without a socket.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use writ_fixtures::Counters;
use writ_log::storage::SimStorage;
use writ_server::{AppState, ServerOptions, router};

mod support;
use support::{call, get, small_engine_options};

fn app() -> Router {
    let (engine, _) =
        support::open_domain::<Counters>(Arc::new(SimStorage::new()), small_engine_options())
            .unwrap();
    router(AppState::new(Arc::new(engine), ServerOptions::default()))
}

async fn document(app: &Router) -> Value {
    let answer = call(app, get("/openapi.json")).await;
    assert_eq!(answer.status, StatusCode::OK);
    answer.json()
}

/// Found by schemathesis: the integer parameters were declared `format: int64`, so a
/// client (and schemathesis) took `2^63` for invalid, while the server takes any run of
/// digits and cuts what is beyond a bound. The schema now says what the server does.
#[tokio::test]
async fn integer_parameters_take_any_run_of_digits_as_documented() {
    let app = app();
    let doc = document(&app).await;
    for (path, names) in [
        ("/events", &["from", "limit", "Last-Event-ID"][..]),
        ("/streams/{stream}", &["from", "limit"][..]),
        ("/update/{id}", &["wait"][..]),
    ] {
        let parameters = doc["paths"][path]["get"]["parameters"].as_array().unwrap();
        for name in names {
            let parameter = parameters
                .iter()
                .find(|p| p["name"] == *name)
                .unwrap_or_else(|| panic!("{path} documents {name}"));
            let schema = &parameter["schema"];
            assert_eq!(schema["minimum"], 0, "{path} {name}: {schema}");
            assert!(
                schema.get("format").is_none() && schema.get("maximum").is_none(),
                "{path} {name} has no fixed width: {schema}"
            );
        }
    }
    for uri in [
        "/events?from=9223372036854775808&limit=9223372036854775808",
        "/streams/counter-c-1?from=99999999999999999999999&limit=18446744073709551616",
    ] {
        let answer = call(&app, get(uri)).await;
        assert_eq!(answer.status, StatusCode::OK, "{uri}");
        assert_eq!(answer.content_type(), "application/json");
        let page = answer.json();
        assert_eq!(page["events"], Value::Array(vec![]), "{uri}");
    }
    let status = call(
        &app,
        get("/update/0b0e5b4c-9a53-4c9a-9d7c-6a3f0c2f7a10?wait=9223372036854775808"),
    )
    .await
    .status;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "an unknown id, not a bad wait"
    );
}

/// The document said a malformed `Last-Event-ID` answers `400`, but pages ignored the
/// header whatever it held: now every `GET /events` refuses a malformed one.
#[tokio::test]
async fn a_malformed_last_event_id_is_refused_on_pages_too() {
    let app = app();
    let doc = document(&app).await;
    let bad_request = &doc["paths"]["/events"]["get"]["responses"]["400"]["description"];
    assert!(
        bad_request.as_str().unwrap().contains("Last-Event-ID"),
        "{bad_request}"
    );
    for value in ["x", "-1", "1.5", ""] {
        let request = Request::get("/events")
            .header("last-event-id", value)
            .body(Body::empty())
            .unwrap();
        let answer = call(&app, request).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{value:?}");
        assert_eq!(answer.content_type(), "application/problem+json");
        let problem = answer.json();
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("Last-Event-ID"),
            "{problem}"
        );
    }
    let request = Request::get("/events")
        .header("last-event-id", "7")
        .body(Body::empty())
        .unwrap();
    let status = call(&app, request).await.status;
    assert_eq!(status, StatusCode::OK, "a page ignores a well-formed one");
}
