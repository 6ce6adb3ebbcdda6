//! What the contract tests share: the `writ` binary's modules started with
//! [`writ_app::App`] on in-memory storage and called through the router as a client would,
//! and the orders domain as a client sees it (commands, statuses, streams, queries).
//!
//! The calls themselves are writ-server's router test helpers, included rather than
//! copied.

// Each test file is its own crate and uses only some of these.
#![allow(dead_code)]

#[path = "../../../writ-server/tests/support/mod.rs"]
mod router;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;
use writ_app::{App, Config, ManualClock, Module, Store};
use writ_log::storage::SimStorage;
use writ_sandbox::SandboxOptions;

pub use router::{Answer, BOUND, call, get, post_json};

/// A data directory that does not exist yet, under the system's temporary directory
/// (`writ-app-{name}-...`, unique to the process and the call).
pub fn fresh_dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "writ-app-{name}-{}-{}",
        std::process::id(),
        Uuid::new_v4()
    ))
}

/// An app directory (`--app DIR`) under the system's temporary directory, with its
/// `resources/`, removed when the test ends, passed or not.
pub struct AppDir(std::path::PathBuf);

impl AppDir {
    /// A new one, empty but for `resources/` (`writ-app-{name}-...`).
    pub fn new(name: &str) -> Self {
        let dir = fresh_dir(name);
        std::fs::create_dir_all(dir.join("resources")).unwrap();
        Self(dir)
    }

    /// Writes `text` to `file` (a path inside the directory), its directories created.
    pub fn write(&self, file: &str, text: &str) {
        let path = self.0.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for AppDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Removes the directory when the test ends, passed or not.
pub struct Cleanup(pub std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The modules of the `writ` binary, registered as its `app()` registers them (`src/main.rs`):
/// `tickets` (the default) and `orders` with its process and read model.
pub fn binary_app() -> App {
    App::new()
        .module(Module::new::<writ_tickets::Tickets>().read_model(writ_tickets::read::read_model()))
        .module(
            Module::new::<writ_orders::Orders>()
                .process::<writ_orders::OrderFulfilment>()
                .read_model(writ_orders::read::read_model()),
        )
        .default_domains(&["tickets"])
}

/// The configuration of a test server on `storage`, serving `domains` (the defaults when
/// empty).
pub fn config(storage: &SimStorage, domains: &[&str]) -> Config {
    let mut config = Config::new(Store::Storage(Arc::new(storage.clone())));
    config.domains = domains.iter().map(|d| (*d).to_owned()).collect();
    config.engine = router::small_engine_options();
    // Generous: QuickJS is slow in test builds and tests run side by side.
    config.sandbox = SandboxOptions {
        time_limit: Duration::from_secs(2),
        memory_bytes_max: 16 << 20,
        pool_size: 2,
        ..SandboxOptions::default()
    };
    config
}

/// A server as `writ serve --domain ...` starts it, behind its router. Its engine reads a
/// [`ManualClock`] that only [`Harness::event`] moves, so that a deadline never falls due
/// while a test is still checking what holds before it, however slow the machine.
#[derive(Clone)]
pub struct Harness {
    pub app: Router,
    clock: ManualClock,
}

impl Harness {
    /// The binary's modules serving `domains` (the binary's default, `tickets`, when empty),
    /// on fresh in-memory storage.
    pub fn start(domains: &[&str]) -> Self {
        Self::start_with(domains, |_| {})
    }

    /// [`Harness::start`] with the configuration changed by `edit` first.
    pub fn start_with(domains: &[&str], edit: impl FnOnce(&mut Config)) -> Self {
        let storage = SimStorage::new();
        let clock = ManualClock::starting_now();
        let mut config = config(&storage, domains);
        config.engine.clock = Arc::new(clock.clone());
        edit(&mut config);
        let started = binary_app().start(config).expect("the server starts");
        Self {
            app: writ_server::router(started.state),
            clock,
        }
    }

    /// `POST /update` with `body`.
    pub async fn post(&self, body: &Value) -> Answer {
        call(&self.app, post_json("/update", body.to_string())).await
    }

    /// A new command, accepted (`202`); returns its id.
    pub async fn submit(&self, command: &str, payload: Value) -> Uuid {
        let id = Uuid::new_v4();
        let answer = self
            .post(&json!({"id": id, "command": command, "payload": payload}))
            .await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text());
        id
    }

    /// The command's final status (`GET /update/{id}?wait=30`), as JSON.
    pub async fn status(&self, id: Uuid) -> Value {
        let answer = call(&self.app, get(&format!("/update/{id}?wait=30"))).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        let status = answer.json();
        assert_ne!(status["status"], "accepted", "final within the wait");
        status
    }

    /// Submits a command and returns its final status.
    pub async fn run(&self, command: &str, payload: Value) -> Value {
        let id = self.submit(command, payload).await;
        self.status(id).await
    }

    /// Runs a command that must succeed; returns its final status.
    pub async fn ok(&self, command: &str, payload: Value) -> Value {
        let status = self.run(command, payload.clone()).await;
        assert_eq!(
            status["status"], "succeeded",
            "{command} {payload}: {status}"
        );
        status
    }

    /// Runs a command that must be rejected; returns its `error.code`.
    pub async fn rejected(&self, command: &str, payload: Value) -> String {
        let status = self.run(command, payload.clone()).await;
        assert_eq!(
            status["status"], "rejected",
            "{command} {payload}: {status}"
        );
        assert_eq!(status["events"], json!([]), "a rejection records nothing");
        status["error"]["code"].as_str().unwrap().to_owned()
    }

    /// A command refused before it is logged: the problem's status and `type` code.
    pub async fn refused(&self, body: &Value) -> (StatusCode, String) {
        let answer = self.post(body).await;
        assert_eq!(answer.content_type(), "application/problem+json");
        let problem = answer.json();
        assert_eq!(problem["status"], answer.status.as_u16());
        let code = problem["type"]
            .as_str()
            .and_then(|t| t.strip_prefix("https://writ.dev/problems/"))
            .unwrap_or_else(|| panic!("a problem type: {problem}"))
            .to_owned();
        if let Some(id) = body["id"].as_str() {
            let status = call(&self.app, get(&format!("/update/{id}"))).await;
            assert_eq!(status.status, StatusCode::NOT_FOUND, "nothing was logged");
        }
        (answer.status, code)
    }

    /// The events of a stream (`GET /streams/{stream}`).
    pub async fn stream(&self, stream: &str) -> Vec<Value> {
        let answer = call(&self.app, get(&format!("/streams/{stream}?limit=1000"))).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        answer.json()["events"].as_array().unwrap().clone()
    }

    /// The event types of a stream.
    pub async fn event_types(&self, stream: &str) -> Vec<String> {
        self.stream(stream)
            .await
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The whole global log (`GET /events`).
    pub async fn events(&self) -> Vec<Value> {
        let answer = call(&self.app, get("/events?from=1&limit=1000")).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        let events = answer.json()["events"].as_array().unwrap().clone();
        // One page (at most 1,000 events): a test that needs more must page with `next`.
        assert!(events.len() < 1000, "the log outgrew one page");
        events
    }

    /// The last durable position (`GET /health`).
    pub async fn position(&self) -> u64 {
        let answer = call(&self.app, get("/health")).await;
        answer.json()["position"].as_u64().unwrap()
    }

    /// Waits (bounded) until `stream` holds an event of `event_type`, moving the clock on
    /// meanwhile; returns the first.
    pub async fn event(&self, stream: &str, event_type: &str) -> Value {
        let deadline = Instant::now() + BOUND;
        loop {
            if let Some(event) = self
                .stream(stream)
                .await
                .into_iter()
                .find(|e| e["type"] == event_type)
            {
                return event;
            }
            assert!(
                Instant::now() < deadline,
                "no {event_type} on {stream} within {BOUND:?}"
            );
            // Time passes only while a test waits for something to happen.
            self.clock.advance(Duration::from_millis(250));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `GET /query/v{version}/{name_and_args}` once the read models hold everything durable
    /// so far.
    pub async fn query(&self, version: u32, name_and_args: &str) -> Answer {
        let after = self.position().await;
        let separator = if name_and_args.contains('?') {
            '&'
        } else {
            '?'
        };
        call(
            &self.app,
            get(&format!(
                "/query/v{version}/{name_and_args}{separator}after={after}"
            )),
        )
        .await
    }

    /// A named query of version 1 that must answer `200`; its JSON.
    pub async fn query_ok(&self, name_and_args: &str) -> Value {
        let answer = self.query(1, name_and_args).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        answer.json()
    }

    /// `POST /query/v{version}` with `code` and `args`, once the read models hold everything
    /// durable so far.
    pub async fn code(&self, version: u32, code: &str, args: Value) -> Answer {
        let after = self.position().await;
        call(
            &self.app,
            post_json(
                &format!("/query/v{version}?after={after}"),
                json!({"code": code, "args": args}).to_string(),
            ),
        )
        .await
    }

    /// Query code of version 1 that must answer `200`; its `result`.
    pub async fn code_ok(&self, code: &str, args: Value) -> Value {
        let answer = self.code(1, code, args).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        answer.json()["result"].clone()
    }

    // ----- the orders domain, as a client drives it -----

    /// `AddStock` of `quantity` units of `sku` (named `The {sku}`).
    pub async fn add_stock(&self, sku: &str, quantity: i64) -> Value {
        self.ok(
            "AddStock",
            json!({"sku": sku, "name": format!("The {sku}"), "quantity": quantity}),
        )
        .await
    }

    /// A draft order of customer `customer` with `lines` of `(sku, quantity, unitPriceCents)`.
    pub async fn draft(&self, order: &str, customer: &str, lines: &[(&str, i64, u64)]) {
        self.ok(
            "CreateOrder",
            json!({"orderId": order, "customerId": customer, "customerName": format!("Customer {customer}")}),
        )
        .await;
        for (sku, quantity, price) in lines {
            self.ok(
                "AddItem",
                json!({"orderId": order, "sku": sku, "quantity": quantity, "unitPriceCents": price}),
            )
            .await;
        }
    }

    /// `SubmitOrder`, then waits (bounded) for the process to move the order on from
    /// `submitted` (reserved or cancelled); returns the `SubmitOrder`'s final status.
    pub async fn submit_order(&self, order: &str, payment_due_seconds: Option<u32>) -> Value {
        let mut payload = json!({"orderId": order});
        if let Some(seconds) = payment_due_seconds {
            payload["paymentDueSeconds"] = json!(seconds);
        }
        let status = self.ok("SubmitOrder", payload).await;
        let deadline = Instant::now() + BOUND;
        while self.order_status(order).await == "submitted" {
            assert!(Instant::now() < deadline, "order {order} stays submitted");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        status
    }

    /// An order's `status` as `getOrder` answers it.
    pub async fn order_status(&self, order: &str) -> String {
        let order = self.query_ok(&format!("getOrder?id={order}")).await;
        order["status"].as_str().unwrap().to_owned()
    }

    /// `(onHand, reserved, available)` as `getStock` answers them, checking that
    /// `available = onHand - reserved`.
    pub async fn stock(&self, sku: &str) -> (u64, u64, u64) {
        let stock = self.query_ok(&format!("getStock?sku={sku}")).await;
        let figure = |name: &str| {
            stock[name]
                .as_u64()
                .unwrap_or_else(|| panic!("{name} is a count: {stock}"))
        };
        let (on_hand, reserved, available) =
            (figure("onHand"), figure("reserved"), figure("available"));
        assert_eq!(available, on_hand.saturating_sub(reserved), "{stock}");
        assert!(reserved <= on_hand, "{stock}");
        (on_hand, reserved, available)
    }

    /// The `reason`s of the `OrderCancelled` events on an order's stream.
    pub async fn cancellations(&self, order: &str) -> Vec<String> {
        self.stream(&format!("order-{order}"))
            .await
            .iter()
            .filter(|e| e["type"] == "OrderCancelled")
            .map(|e| e["data"]["reason"].as_str().unwrap().to_owned())
            .collect()
    }
}
