//! I/O faults seen through HTTP, each by name: a failed write, a failed fsync, a full disk,
//! short writes and failed segment rolls, on the journal.
//!
//! Every poisoning fault is run through the same scenario ([`poisoned_by`]), which checks:
//! - the command in flight gets `503` with `Retry-After` and a problem+json body (its
//!   record, command and outcome together, was not made durable, so it was never
//!   acknowledged); every later `POST /update` gets `503`;
//! - reads keep working: earlier commands' statuses, `/streams`, `/events`, and `/health`
//!   answers `503` naming the journal and the cause;
//! - nothing durable is changed: every file's durable bytes before the fault are still
//!   there, after the fault and after recovery;
//! - a restart on what a power cut leaves (`SimStorage::crash`) recovers cleanly: every
//!   command that got `202` is there with the same final status, the addition counts are
//!   right, the refused command is unknown and can be sent again, and new commands are
//!   accepted.
//!
//! Faults are armed on the storage and hit "the next write", "the next sync", and so on.
//! One command is in flight at a time and the segments are large enough that the
//! background preallocator stays idle, so every write and sync is the command's own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::json;
use uuid::Uuid;
use writ_engine::{Engine, EngineOptions, RecoveryReport};
use writ_fixtures::Counters;
use writ_log::LogOptions;
use writ_log::storage::{SimOp, SimStorage};
use writ_server::wire::{CommandStatusBody, EventsPage, StatusName, StreamPage};
use writ_server::{AppState, ServerOptions, router};

mod support;
use support::{Answer, small_engine_options as options};

/// 64 KiB segments, preallocated on the background thread as in production: a few
/// commands fill one, so a test reaches a segment roll (and a full disk) quickly.
fn small_segments() -> EngineOptions {
    EngineOptions {
        command_bytes_max: 16 << 10,
        timer_ops_bytes_max: 4 << 10,
        log: LogOptions {
            segment_bytes: 64 << 10,
            record_bytes_max: 32 << 10,
            preallocate: true,
            ..LogOptions::default()
        },
        ..EngineOptions::default()
    }
}

/// An engine and its router on a storage.
struct Node {
    app: Router,
    engine: Arc<Engine>,
    storage: SimStorage,
    report: RecoveryReport,
}

impl Node {
    fn open(storage: SimStorage, options: EngineOptions) -> Node {
        let (engine, report) = support::open_domain::<Counters>(Arc::new(storage.clone()), options)
            .expect("the engine opens");
        let engine = Arc::new(engine);
        let app = router(AppState::new(Arc::clone(&engine), ServerOptions::default()));
        Node {
            app,
            engine,
            storage,
            report,
        }
    }

    /// Shuts the engine down (a poisoned one too) without hanging.
    async fn stop(self) {
        let engine = Arc::clone(&self.engine);
        drop(self);
        support::shut_down(engine).await;
    }

    async fn call(&self, request: Request<Body>) -> Answer {
        support::call(&self.app, request).await
    }

    async fn post(&self, command: &Command) -> Answer {
        self.call(support::post_json("/update", command.body.clone()))
            .await
    }

    async fn get(&self, uri: &str) -> Answer {
        self.call(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    /// The command's status after waiting (bounded) for a final one.
    async fn wait_status(&self, id: Uuid) -> CommandStatusBody {
        self.get(&format!("/update/{id}?wait=30"))
            .await
            .status_body()
    }

    /// Submits and waits for the final status.
    async fn run(&self, command: &Command) -> CommandStatusBody {
        let answer = self.post(command).await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text());
        let status = self.wait_status(command.id).await;
        assert!(status.status.is_final(), "{status:?}");
        status
    }

    /// The stream's events, all of them.
    async fn stream(&self, stream: &str) -> StreamPage {
        let answer = self.get(&format!("/streams/{stream}?limit=1000")).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        serde_json::from_slice(&answer.body).unwrap()
    }

    /// The global log's positions, paging through all of it.
    async fn positions(&self) -> Vec<u64> {
        let mut positions = Vec::new();
        let mut from = 1;
        loop {
            let answer = self.get(&format!("/events?from={from}&limit=1000")).await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
            let page: EventsPage = serde_json::from_slice(&answer.body).unwrap();
            if page.events.is_empty() {
                return positions;
            }
            positions.extend(page.events.iter().map(|e| e.position));
            from = page.next;
        }
    }
}

impl Answer {
    /// Checks that this is the `503` of a store that refuses writes: problem+json of type
    /// `unavailable`, with `Retry-After`, naming the poisoning. Returns the detail.
    fn unavailable(&self) -> String {
        assert_eq!(
            self.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            self.text()
        );
        assert_eq!(
            self.headers
                .get(header::CONTENT_TYPE)
                .map(|v| v.to_str().unwrap()),
            Some("application/problem+json")
        );
        let retry_after = self
            .headers
            .get(header::RETRY_AFTER)
            .expect("Retry-After on 503");
        assert!(
            retry_after.to_str().unwrap().parse::<u32>().unwrap() > 0,
            "{retry_after:?}"
        );
        let problem = self.json();
        assert_eq!(problem["status"], 503);
        assert_eq!(problem["type"], "https://writ.dev/problems/unavailable");
        assert!(problem["title"].is_string());
        let detail = problem["detail"].as_str().unwrap().to_owned();
        assert!(detail.contains("poisoned"), "{detail}");
        detail
    }
}

/// A command the test sends, with what it should come to.
#[derive(Debug, Clone)]
struct Command {
    id: Uuid,
    body: String,
    /// `Some(counter)` for an addition that succeeds on that counter.
    adds_to: Option<&'static str>,
}

fn create(counter: &'static str) -> Command {
    let id = Uuid::new_v4();
    Command {
        id,
        body: json!({"id": id, "command": "CreateCounter", "version": 2,
            "payload": {"counterId": counter, "title": "Visitors", "owner": "ann", "start": 10}})
        .to_string(),
        adds_to: None,
    }
}

/// An addition to `counter`, which is open.
fn add(counter: &'static str, note: &str) -> Command {
    let id = Uuid::new_v4();
    Command {
        id,
        body: json!({"id": id, "command": "Add",
            "payload": {"counterId": counter, "amount": 1, "note": note}})
        .to_string(),
        adds_to: Some(counter),
    }
}

/// An addition to a counter that does not exist: rejected with `counter_not_found`.
fn add_to_nothing(note: &str) -> Command {
    Command {
        adds_to: None,
        ..add("c-404", note)
    }
}

/// A fault scenario: how to arm it, which commands to send from then on (the `n`th), and
/// what `/health` must say.
struct Fault {
    options: EngineOptions,
    arm: Box<dyn FnOnce(&SimStorage)>,
    next: Box<dyn FnMut(usize) -> Command>,
    /// Most commands to send before the fault must have hit.
    limit: usize,
    /// Part of the cause `/health` must name.
    cause: &'static str,
}

impl Fault {
    /// A fault armed before one addition to the open counter.
    fn on_one_addition(arm: impl FnOnce(&SimStorage) + 'static, cause: &'static str) -> Fault {
        Fault {
            options: options(),
            arm: Box::new(arm),
            next: Box::new(|n| add("c-1", &format!("in flight {n}"))),
            limit: 1,
            cause,
        }
    }
}

/// The durable bytes of every log file except temporary ones.
fn durable_files(storage: &SimStorage) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    for dir in ["journal"] {
        for name in storage.durable_file_names(Path::new(dir)) {
            if name.ends_with(".tmp") {
                continue;
            }
            let path = Path::new(dir).join(&name);
            let bytes = storage.read_durable(&path).unwrap();
            files.insert(path, bytes);
        }
    }
    files
}

/// Every durable byte of `before` is still durable in `storage`: up to each file's last
/// non-zero byte (segments are zero-filled beyond their end), nothing was overwritten,
/// truncated or removed.
fn assert_nothing_durable_changed(before: &BTreeMap<PathBuf, Vec<u8>>, storage: &SimStorage) {
    for (path, old) in before {
        let new = storage
            .read_durable(path)
            .unwrap_or_else(|e| panic!("{} is gone: {e}", path.display()));
        let end = old.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        assert!(
            new.len() >= end && new[..end] == old[..end],
            "durable bytes of {} changed",
            path.display()
        );
    }
}

/// What the test knows of the commands it sent.
#[derive(Default)]
struct Ledger {
    /// Acknowledged commands and their final status, in order.
    done: Vec<(Command, CommandStatusBody)>,
}

impl Ledger {
    async fn run(&mut self, node: &Node, command: Command) {
        let status = node.run(&command).await;
        if command.adds_to.is_some() {
            assert_eq!(status.status, StatusName::Succeeded, "{status:?}");
        }
        self.done.push((command, status));
    }

    /// The ids of the succeeded additions to `counter`.
    fn additions(&self, counter: &str) -> BTreeSet<Uuid> {
        self.done
            .iter()
            .filter(|(c, _)| c.adds_to == Some(counter))
            .map(|(c, _)| c.id)
            .collect()
    }
}

/// Checks `counter`'s stream: created once, then exactly the `expected` additions, each
/// once, versions and positions without gaps.
async fn assert_additions(node: &Node, counter: &str, expected: &BTreeSet<Uuid>) {
    let page = node.stream(&format!("counter-{counter}")).await;
    let types: Vec<&str> = page.events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types.first(), Some(&"CounterCreated"), "{types:?}");
    let versions: Vec<u64> = page.events.iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=page.events.len() as u64).collect::<Vec<_>>());
    let additions: Vec<Uuid> = page.events[1..]
        .iter()
        .map(|e| {
            assert_eq!(e.event_type, "Added");
            e.metadata.command_id
        })
        .collect();
    let unique: BTreeSet<Uuid> = additions.iter().copied().collect();
    assert_eq!(unique.len(), additions.len(), "an addition recorded twice");
    assert_eq!(&unique, expected, "the additions to {counter}");
}

/// The global log's positions are 1..=n without gaps, and `/health` agrees on n.
async fn assert_positions_without_gaps(node: &Node) -> u64 {
    let positions = node.positions().await;
    let n = positions.len() as u64;
    assert_eq!(positions, (1..=n).collect::<Vec<_>>());
    assert_eq!(node.get("/health").await.json()["position"], n);
    n
}

/// The scenario every poisoning fault goes through; see the module documentation.
async fn poisoned_by(fault: Fault) {
    let Fault {
        options: engine_options,
        arm,
        mut next,
        limit,
        cause,
    } = fault;
    let node = Node::open(SimStorage::new(), engine_options.clone());
    let mut ledger = Ledger::default();
    ledger.run(&node, create("c-1")).await;
    ledger.run(&node, add("c-1", "before one")).await;
    ledger.run(&node, add_to_nothing("before two")).await;
    ledger.run(&node, add("c-1", "before three")).await;
    let durable_before = durable_files(&node.storage);

    arm(&node.storage);
    // Send commands until one is refused, or acknowledged without an outcome.
    let mut in_flight = None;
    for n in 0..limit {
        let command = next(n);
        let answer = node.post(&command).await;
        match answer.status {
            StatusCode::ACCEPTED => {
                // A command is acknowledged with its outcome: never one without the other.
                let status = node.wait_status(command.id).await;
                assert!(
                    status.status.is_final(),
                    "{command:?} was acknowledged but has no outcome: {status:?}"
                );
                ledger.done.push((command, status));
                continue;
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                answer.unavailable();
                in_flight = Some(command);
            }
            other => panic!("{command:?} answered {other}: {}", answer.text()),
        }
        break;
    }
    let in_flight = in_flight.expect("the fault hit within the limit");
    assert!(node.engine.poisoned().is_some());

    // Every later write is refused, the command in flight sent again too.
    let again = in_flight.clone();
    for command in [add("c-1", "later"), create("c-2"), again.clone()] {
        node.post(&command).await.unavailable();
    }

    // Reads keep working.
    for (command, status) in &ledger.done {
        let now = node.get(&format!("/update/{}", command.id)).await;
        assert_eq!(&now.status_body(), status);
    }
    let now = node.get(&format!("/update/{}", in_flight.id)).await;
    assert_eq!(now.status, StatusCode::NOT_FOUND, "{}", now.text());
    assert_additions(&node, "c-1", &ledger.additions("c-1")).await;
    let position = assert_positions_without_gaps(&node).await;
    let health = node.get("/health").await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
    let health = health.json();
    assert_eq!(health["status"], "unavailable");
    assert_eq!(health["position"], position);
    let detail = health["detail"].as_str().unwrap();
    assert!(detail.contains("poisoned"), "{detail}");
    assert!(detail.contains("journal"), "names the journal: {detail}");
    assert!(
        detail.contains(cause),
        "names the cause {cause:?}: {detail}"
    );
    assert_nothing_durable_changed(&durable_before, &node.storage);

    // A power cut now, and a restart once the cause is fixed (space freed).
    let crashed = node.storage.crash();
    crashed.set_capacity(u64::MAX);
    node.stop().await;
    let node = Node::open(crashed, engine_options);
    assert!(
        node.report.truncated.is_none(),
        "{:?}",
        node.report.truncated
    );
    assert_nothing_durable_changed(&durable_before, &node.storage);
    for (command, status) in &ledger.done {
        assert_eq!(&node.wait_status(command.id).await, status, "{command:?}");
    }
    // Never acknowledged and not durable: unknown, and the client's retry is new.
    let now = node.get(&format!("/update/{}", in_flight.id)).await;
    assert_eq!(now.status, StatusCode::NOT_FOUND, "{}", now.text());
    ledger.run(&node, again).await;
    ledger.run(&node, add("c-1", "after restart")).await;
    ledger.run(&node, create("c-3")).await;
    assert_additions(&node, "c-1", &ledger.additions("c-1")).await;
    assert_positions_without_gaps(&node).await;
    let health = node.get("/health").await;
    assert_eq!(health.status, StatusCode::OK, "{}", health.text());
    assert_eq!(health.json()["status"], "ok");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_write_on_the_journal() {
    poisoned_by(Fault::on_one_addition(
        |s| s.fail_next(SimOp::Write),
        "injected Write failure",
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_fsync_on_the_journal() {
    poisoned_by(Fault::on_one_addition(
        |s| s.fail_next_sync(),
        "injected sync failure",
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_byte_write_on_the_journal() {
    // A write that writes nothing (as a full disk may answer) is an error, not a retry.
    poisoned_by(Fault::on_one_addition(
        |s| s.short_write_next(0),
        "wrote no bytes",
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_on_the_journal() {
    // Large commands that are rejected: the journal grows fast and soon needs a new
    // segment, which the full disk refuses.
    poisoned_by(Fault {
        options: small_segments(),
        arm: Box::new(|s| s.set_capacity(s.used_bytes())),
        next: Box::new(|n| add_to_nothing(&format!("{n} {}", "x".repeat(6000)))),
        limit: 100,
        cause: "no space left on device",
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_rename_at_a_journal_segment_roll() {
    // The first rename after the setup installs the journal's next segment.
    poisoned_by(Fault {
        options: small_segments(),
        arm: Box::new(|s| s.fail_next(SimOp::Rename)),
        next: Box::new(|n| add_to_nothing(&format!("{n} {}", "x".repeat(6000)))),
        limit: 100,
        cause: "injected Rename failure",
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_directory_sync_at_a_journal_segment_roll() {
    poisoned_by(Fault {
        options: small_segments(),
        arm: Box::new(|s| s.fail_next(SimOp::SyncDir)),
        next: Box::new(|n| add("c-1", &format!("c{n}"))),
        limit: 5_000,
        cause: "injected SyncDir failure",
    })
    .await;
}

/// A failed fsync that persisted the whole batch anyway: the command was answered `503`
/// but is on disk. After a restart it is there and has run; the client's retry with the
/// same id is a duplicate, not a second addition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_fsync_that_persisted_the_command_runs_it_once() {
    let node = Node::open(SimStorage::new(), options());
    let mut ledger = Ledger::default();
    ledger.run(&node, create("c-1")).await;
    node.storage.fail_next_sync_persisting(usize::MAX);
    let refused = add("c-1", "maybe");
    node.post(&refused).await.unavailable();

    let crashed = node.storage.crash();
    node.stop().await;
    let node = Node::open(crashed, options());
    // The record holds the command with its outcome: nothing runs again at the start.
    assert_eq!((node.report.commands, node.report.resumed), (2, 0));
    let status = node.wait_status(refused.id).await;
    assert_eq!(status.status, StatusName::Succeeded);
    let retry = node.post(&refused).await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.text());
    assert_eq!(retry.json()["duplicate"], true);
    assert_eq!(retry.json()["status"], "succeeded");
    ledger.done.push((refused, status));
    assert_additions(&node, "c-1", &ledger.additions("c-1")).await;
    node.stop().await;
}

/// A short write is not a failure: the log writes the rest, nothing is poisoned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_writes_on_the_journal_are_completed() {
    let node = Node::open(SimStorage::new(), options());
    let mut ledger = Ledger::default();
    ledger.run(&node, create("c-1")).await;
    // This command's write, then the next one's.
    node.storage.short_write_next(7);
    ledger.run(&node, add("c-1", "short command")).await;
    node.storage.short_write_nth(7, 1);
    ledger.run(&node, add("c-1", "short commit")).await;
    assert!(node.engine.poisoned().is_none());
    assert_eq!(node.get("/health").await.status, StatusCode::OK);

    let crashed = node.storage.crash();
    node.stop().await;
    let node = Node::open(crashed, options());
    assert_eq!(node.report.resumed, 0, "every outcome was durable");
    for (command, status) in &ledger.done {
        assert_eq!(&node.wait_status(command.id).await, status);
    }
    assert_additions(&node, "c-1", &ledger.additions("c-1")).await;
    node.stop().await;
}

/// Many clients at once when an fsync fails: every answer is `202` or `503` (never
/// another status, never a hang), and every `202` survives a power cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_fsync_under_concurrent_load_loses_no_acknowledged_command() {
    let node = Arc::new(Node::open(SimStorage::new(), options()));
    let mut ledger = Ledger::default();
    ledger.run(&node, create("c-1")).await;
    // Some batches of both logs go through first.
    node.storage.fail_nth(SimOp::Sync, 12);
    let mut clients = Vec::new();
    for client in 0..8 {
        let node = Arc::clone(&node);
        clients.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let mut refused = 0;
            for n in 0..20 {
                let command = add("c-1", &format!("client {client} addition {n}"));
                let answer = node.post(&command).await;
                match answer.status {
                    StatusCode::ACCEPTED => acknowledged.push(command),
                    StatusCode::SERVICE_UNAVAILABLE => {
                        answer.unavailable();
                        refused += 1;
                    }
                    other => panic!("{command:?} answered {other}: {}", answer.text()),
                }
            }
            (acknowledged, refused)
        }));
    }
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    for client in clients {
        let (a, r) = client.await.unwrap();
        acknowledged.extend(a);
        refused += r;
    }
    assert!(refused > 0, "the fault hit");
    assert!(node.engine.poisoned().is_some());

    let crashed = node.storage.crash();
    let node = Arc::into_inner(node).expect("the clients are done");
    node.stop().await;
    let node = Node::open(crashed, options());
    for command in acknowledged {
        let status = node.wait_status(command.id).await;
        assert_eq!(status.status, StatusName::Succeeded, "{command:?}");
        ledger.done.push((command, status));
    }
    assert_additions(&node, "c-1", &ledger.additions("c-1")).await;
    assert_positions_without_gaps(&node).await;
    ledger.run(&node, add("c-1", "after restart")).await;
    node.stop().await;
}
