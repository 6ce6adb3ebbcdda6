//! A golden data directory of resource commands: `tests/fixtures/golden/resources-v1/`
//! holds an app directory (`app/`: a `users` type with a schema, a unique field, a machine
//! with an `after` timer, a rule and a handler) and the data directory a server of this
//! build wrote for it (`data/`: the journal and its dedupe runs). Every later build must
//! open it with that app and read what it holds: the documents' events (created, patched
//! with RFC 6902 and RFC 7396, replaced, deleted, moved by the machine, changed by the
//! handler), the unique values claimed and released, and the machine's pending timer,
//! which fires when the clock reaches it. A change that can no longer read it fails here;
//! it is never rewritten (see `docs/log-format.md`, "Fixtures").
//!
//! [`write_the_resources_v1_fixture`] made it and is ignored by `cargo test`:
//!
//! ```text
//! WRIT_GOLDEN_WRITE=1 cargo test -p writ-resources --test golden -- --ignored write_the_resources_v1_fixture
//! ```
//!
//! writes it again (never do that over a committed one); without `WRIT_GOLDEN_WRITE` it
//! writes into a temporary directory and checks that copy as the committed one is checked.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use uuid::Uuid;
use writ_engine::{
    CommandState, DEDUPE_DIR, Engine, EngineOptions, JOURNAL_DIR, ManualClock, Registry,
    Submission, Submitted,
};
use writ_log::LogOptions;
use writ_resources::{ResourceSet, load};

mod support;
use support::TempDir;

/// The committed fixture.
fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden/resources-v1")
}

/// The fixture's clock starts here (2023-11-14T22:13:20Z).
const T0: u64 = 1_700_000_000_000;
const MINUTE: u64 = 60_000;

fn options(clock: &ManualClock) -> EngineOptions {
    EngineOptions {
        command_bytes_max: 4 << 10,
        timer_ops_bytes_max: 1 << 10,
        dedupe_spill_entries: 8,
        log: LogOptions {
            segment_bytes: 16 << 10,
            record_bytes_max: 8 << 10,
            preallocate: false,
            ..LogOptions::default()
        },
        clock: Arc::new(clock.clone()),
        ..EngineOptions::default()
    }
}

fn open(
    app: &ResourceSet,
    data: &Path,
    clock: &ManualClock,
) -> (Engine, writ_engine::RecoveryReport) {
    Engine::open_dir(data, registry(app), options(clock)).expect("the engine opens")
}

/// The app's types and their timers' processes.
fn registry(app: &ResourceSet) -> Registry {
    let mut registry = Registry::builder();
    for domain in app.domains() {
        registry = registry.domain(domain);
    }
    for process in app.processes() {
        registry = registry.process(process);
    }
    registry.build().unwrap()
}

/// A copy of `fixture`'s data directory (its journal and dedupe runs), in `copy/data`.
fn copy_data(fixture: &Path, copy: &TempDir) -> PathBuf {
    let data = copy.path().join("data");
    for dir in [JOURNAL_DIR, DEDUPE_DIR] {
        std::fs::create_dir_all(data.join(dir)).unwrap();
        for entry in std::fs::read_dir(fixture.join("data").join(dir)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), data.join(dir).join(entry.file_name())).unwrap();
        }
    }
    data
}

/// Runs command `id` to its outcome: `Ok(())` when it succeeded, the code when rejected.
fn run(engine: &Engine, id: u128, command: &str, payload: Value) -> Result<(), String> {
    run_expecting(engine, id, command, payload, None)
}

fn run_expecting(
    engine: &Engine,
    id: u128,
    command: &str,
    payload: Value,
    expected_version: Option<u64>,
) -> Result<(), String> {
    let payload = payload.to_string();
    let Submitted::New(pending) = engine
        .submit_command(&Submission {
            id: Uuid::from_u128(id),
            command,
            version: None,
            payload: payload.as_bytes(),
            expected_version,
        })
        .expect("submitted")
    else {
        panic!("command {id} is new")
    };
    match pending.blocking_outcome().expect("an outcome").state {
        CommandState::Succeeded => Ok(()),
        CommandState::Rejected { code, .. } => Err(code),
        other => panic!("command {id} ({command}): {other:?}"),
    }
}

fn user(name: &str, email: &str) -> Value {
    json!({"name": name, "email": email})
}

/// The events of `stream`: type and data.
fn events(engine: &Engine, stream: &str) -> Vec<(String, Value)> {
    engine
        .read_stream(stream, 1, usize::MAX)
        .expect("the stream reads")
        .into_iter()
        .map(|e| (e.event_type, serde_json::from_slice(&e.data).expect("JSON")))
        .collect()
}

fn types(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(t, _)| t.as_str()).collect()
}

/// Writes the fixture's data directory into `data` (which must not exist); returns how
/// many records its journal holds.
fn write_resources_v1(app: &Path, data: &Path) -> u64 {
    let set = load(app).expect("the fixture's app loads");
    let clock = ManualClock::at_ms(T0);
    let (engine, _) = open(&set, data, &clock);
    let mut id = 0;
    let mut next = |command: &str, payload: Value| {
        id += 1;
        clock.advance(Duration::from_secs(1));
        run(&engine, id, command, payload)
    };
    next(
        "CreateUser",
        json!({"id": "u-1", "document": user("Ann", "ann@example.com")}),
    )
    .unwrap();
    next(
        "CreateUser",
        json!({"id": "u-2", "document": user("Bob", "bob@example.com")}),
    )
    .unwrap();
    next(
        "PatchUser",
        json!({"id": "u-1", "patch": [{"op": "replace", "path": "/name", "value": "Ann B"}]}),
    )
    .unwrap();
    assert_eq!(
        next(
            "CreateUser",
            json!({"id": "u-3", "document": user("Cy", "ann@example.com")})
        ),
        Err("not_unique".into())
    );
    next("ActivateUser", json!({"id": "u-1"})).unwrap();
    next("VerifyUser", json!({"id": "u-1", "by": "ops"})).unwrap();
    assert_eq!(
        next("VerifyUser", json!({"id": "u-1", "by": "ops"})),
        Err("already_verified".into())
    );
    next("ActivateUser", json!({"id": "u-2"})).unwrap();
    next("SuspendUser", json!({"id": "u-2"})).unwrap();
    next(
        "PatchUser",
        json!({"id": "u-2", "mergePatch": {"name": "Robert"}}),
    )
    .unwrap();
    next(
        "ReplaceUser",
        json!({"id": "u-1", "document": user("Ann C", "ann.c@example.com")}),
    )
    .unwrap();
    next(
        "CreateUser",
        json!({"id": "u-4", "document": user("Dan", "dan@example.com")}),
    )
    .unwrap();
    next("DeleteUser", json!({"id": "u-4"})).unwrap();
    assert_eq!(
        next(
            "CreateUser",
            json!({"id": "u-5", "document": user("eve@example.com", "eve@example.com")})
        ),
        Err("name_is_not_email".into())
    );
    assert_eq!(engine.timers_pending(), 1, "u-2's Reinstate is pending");
    engine.shutdown();
    drop(engine);
    std::fs::remove_file(data.join("writ.lock")).ok();
    id as u64
}

/// Opens a copy of `fixture` with its app, half an hour after its last command, and reads
/// everything it holds; then lets the machine's timer fire.
fn check_resources_v1(fixture: &Path, records: u64) {
    let app = load(&fixture.join("app")).expect("the fixture's app loads with this build");
    let copy = TempDir::new("golden");
    let data = copy_data(fixture, &copy);
    let clock = ManualClock::at_ms(T0 + 30 * MINUTE);
    let (engine, report) = open(&app, &data, &clock);
    assert_eq!(report.commands, records, "{report:?}");
    assert_eq!(report.timers_pending, 1, "{report:?}");
    assert_eq!(report.dedupe_runs_removed, 0, "{report:?}");

    let u1 = events(&engine, "users-u-1");
    assert_eq!(
        types(&u1),
        [
            "UserCreated",
            "UserPatched",
            "UserActivated",
            "UserVerified",
            "UserReplaced"
        ]
    );
    assert_eq!(
        u1[0].1["document"],
        json!({"name": "Ann", "email": "ann@example.com", "status": "pending"})
    );
    assert_eq!(
        u1[1].1["patch"],
        json!([{"op": "replace", "path": "/name", "value": "Ann B"}])
    );
    let verified = u1[3].1["patch"][0]["value"].as_str().expect("a string");
    assert!(verified.starts_with("ops at "), "{verified}");
    assert_eq!(u1[4].1["document"]["email"], "ann.c@example.com");
    assert_eq!(
        u1[4].1["document"]["status"], "active",
        "a Replace keeps the state"
    );
    let u2 = events(&engine, "users-u-2");
    assert_eq!(
        types(&u2),
        [
            "UserCreated",
            "UserActivated",
            "UserSuspended",
            "UserPatched"
        ]
    );
    assert_eq!(
        u2[3].1["patch"],
        json!([{"op": "replace", "path": "/name", "value": "Robert"}]),
        "a merge patch is recorded as the operations it applied"
    );
    assert_eq!(
        types(&events(&engine, "users-u-4")),
        ["UserCreated", "UserDeleted"]
    );
    assert!(
        events(&engine, "users-u-3").is_empty(),
        "a rejected create records nothing"
    );

    // The claims read back: ann.c@ is u-1's, ann@ and dan@ were released, and the
    // documents' versions are where the fixture left them.
    assert_eq!(
        run(
            &engine,
            101,
            "CreateUser",
            json!({"id": "u-6", "document": user("Al", "ann.c@example.com")})
        ),
        Err("not_unique".into())
    );
    run(
        &engine,
        102,
        "CreateUser",
        json!({"id": "u-7", "document": user("Ann", "ann@example.com")}),
    )
    .unwrap();
    run(
        &engine,
        103,
        "CreateUser",
        json!({"id": "u-4", "document": user("Dan", "dan@example.com")}),
    )
    .unwrap();
    assert_eq!(
        run_expecting(
            &engine,
            104,
            "PatchUser",
            json!({"id": "u-1", "mergePatch": {"name": "A"}}),
            Some(4)
        ),
        Err("wrong_expected_version".into())
    );
    run_expecting(
        &engine,
        105,
        "PatchUser",
        json!({"id": "u-1", "mergePatch": {"name": "A"}}),
        Some(5),
    )
    .unwrap();
    // The fixture's ids are still known: a resend is a duplicate, not run again.
    let again = engine
        .submit(
            Uuid::from_u128(1),
            "CreateUser",
            None,
            json!({"id": "u-1", "document": user("Ann", "ann@example.com")})
                .to_string()
                .as_bytes(),
        )
        .expect("submitted");
    assert!(matches!(again, Submitted::Duplicate));

    // The machine's timer: u-2 was suspended at T0 + 9 s; an hour later it is reinstated.
    clock.set_ms(T0 + 2 * 60 * MINUTE);
    let deadline = Instant::now() + Duration::from_secs(30);
    while types(&events(&engine, "users-u-2")).last() != Some(&"UserReinstated") {
        assert!(
            Instant::now() < deadline,
            "the Reinstate timer did not fire"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(engine.timers_pending(), 0);
    engine.shutdown();
}

#[test]
fn the_committed_resources_fixture_opens_and_reads_with_this_build() {
    check_resources_v1(&fixture(), 14);
}

/// The journal an earlier build wrote, replayed by this one with the same app, decides
/// the same: the same outcomes, events and timer operations, record by record (what a
/// change to the writer's path must keep, or every replay after an upgrade reports it).
#[test]
fn the_committed_resources_fixture_replays_without_a_difference() {
    let app = load(&fixture().join("app")).expect("the fixture's app loads with this build");
    let copy = TempDir::new("golden-replay");
    let data = copy_data(&fixture(), &copy);
    let replayed = writ_engine::replay::replay_data_dir(
        &data,
        registry(&app),
        options(&ManualClock::at_ms(T0 + 30 * MINUTE)),
        false,
        &mut |_| {},
    )
    .expect("replayed");
    assert_eq!(replayed.report.live_records, 14);
    assert!(
        replayed.report.differences.is_empty(),
        "{}",
        replayed.report.summary(20)
    );
}

#[test]
#[ignore = "writes the fixture; run by hand, never over a committed one"]
fn write_the_resources_v1_fixture() {
    let temp = TempDir::new("golden-write");
    let out = match std::env::var_os("WRIT_GOLDEN_WRITE") {
        Some(_) => fixture(),
        None => {
            let out = temp.path().join("resources-v1");
            std::fs::create_dir_all(&out).unwrap();
            copy_app(&fixture().join("app"), &out.join("app"));
            out
        }
    };
    let data = out.join("data");
    assert!(
        !data.exists(),
        "{} exists: never write over a fixture",
        data.display()
    );
    let records = write_resources_v1(&out.join("app"), &data);
    println!("{records} records written to {}", data.display());
    check_resources_v1(&out, records);
}

fn copy_app(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_app(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The committed fixture, recorded at schema version 1, opened by an app at version 2 that
/// renames `name` to `fullName` with `migrations/users.js`: every document event reads in
/// the new shape (created, patched, replaced, a handler's patch; transitions as recorded),
/// the read model's documents fit the new schema, and new commands work on them.
#[test]
fn the_committed_resources_fixture_reads_at_version_2_through_a_migration() {
    let temp = TempDir::new("golden-v2");
    let app_dir = temp.path().join("app");
    copy_app(&fixture().join("app"), &app_dir);
    let rewrite = |file: &str, from: &str, to: &str| {
        let path = app_dir.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file}");
        std::fs::write(&path, text.replace(from, to)).unwrap();
    };
    rewrite("resources/users.json", "\"name\"", "\"fullName\"");
    rewrite(
        "resources/users.json",
        "\"x-writ-unique\"",
        "\"x-writ-version\": 2,\n  \"x-writ-unique\"",
    );
    rewrite("rules/users.json", "next.name", "next.fullName");
    std::fs::create_dir_all(app_dir.join("migrations")).unwrap();
    std::fs::write(
        app_dir.join("migrations/users.js"),
        "function document(doc) { const {name, ...rest} = doc; return {...rest, fullName: name}; }\n\
         function patch(ops) { return ops.map((op) => op.path === '/name' ? {...op, path: '/fullName'} : op); }\n",
    )
    .unwrap();
    let app = load(&app_dir).expect("the version 2 app loads");
    let data = temp.path().join("data");
    for dir in [JOURNAL_DIR, DEDUPE_DIR] {
        std::fs::create_dir_all(data.join(dir)).unwrap();
        for entry in std::fs::read_dir(fixture().join("data").join(dir)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), data.join(dir).join(entry.file_name())).unwrap();
        }
    }
    let clock = ManualClock::at_ms(T0 + 30 * MINUTE);
    let (engine, report) = open(&app, &data, &clock);
    assert_eq!(report.commands, 14, "{report:?}");
    let read = engine.read_stream("users-u-1", 1, usize::MAX).unwrap();
    assert!(
        read.iter()
            .all(|e| (e.schema_version, e.recorded_schema_version) == (2, 1)),
        "{read:?}"
    );
    let u1 = events(&engine, "users-u-1");
    assert_eq!(
        u1[0].1["document"],
        json!({"fullName": "Ann", "email": "ann@example.com", "status": "pending"})
    );
    assert_eq!(
        u1[1].1["patch"],
        json!([{"op": "replace", "path": "/fullName", "value": "Ann B"}])
    );
    assert_eq!(
        u1[2].1,
        json!({"command": "Activate", "from": "pending", "to": "active"})
    );
    assert_eq!(u1[3].1["patch"][0]["path"], "/verifiedBy");
    assert_eq!(u1[4].1["document"]["fullName"], "Ann C");
    let u2 = events(&engine, "users-u-2");
    assert_eq!(
        u2[3].1["patch"],
        json!([{"op": "replace", "path": "/fullName", "value": "Robert"}])
    );

    // A patch in the new shape, and the rule reading it.
    run(
        &engine,
        101,
        "PatchUser",
        json!({"id": "u-1", "patch": [{"op": "replace", "path": "/fullName", "value": "Ann D"}]}),
    )
    .unwrap();
    assert_eq!(
        run(
            &engine,
            102,
            "PatchUser",
            json!({"id": "u-1", "mergePatch": {"fullName": "ann.c@example.com"}}),
        ),
        Err("name_is_not_email".into())
    );
    let engine = Arc::new(engine);
    let models = writ_query::ReadModels::start(
        Arc::clone(&engine) as Arc<dyn writ_query::EventSource>,
        app.read_models(),
        writ_query::RuntimeOptions::default(),
    )
    .unwrap();
    models
        .blocking_wait_for(engine.last_position(), Duration::from_secs(30))
        .unwrap();
    let snapshots = models.snapshots();
    let u1 = app.get(&snapshots, "users", "u-1").unwrap().unwrap();
    assert_eq!(u1.document["fullName"], "Ann D");
    assert_eq!(u1.document["email"], "ann.c@example.com");
    assert_eq!(u1.document["status"], "active");
    assert!(u1.document.get("name").is_none());
    assert!(app.misfits(&snapshots).unwrap().is_empty());
    models.shutdown();
}
