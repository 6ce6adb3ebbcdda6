//! `replay` through the App API, on a data directory of the file system: the summary,
//! the JSON report, `--apply`, and the refusal of a data directory a server holds.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use uuid::Uuid;
use writ_app::{App, Config, Module, ReplayConfig, Store};
use writ_engine::{EngineOptions, Submitted};

fn app() -> App {
    App::new().module(Module::new::<writ_tickets::Tickets>())
}

/// A data directory that does not exist yet, under the system's temporary directory.
fn fresh_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "writ-app-replay-{name}-{}-{}",
        std::process::id(),
        Uuid::new_v4()
    ))
}

/// Removes the directory when the test ends, passed or not.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(state: &writ_server::AppState, id: u128, command: &str, payload: Value) {
    let payload = serde_json::to_vec(&payload).unwrap();
    match state
        .engine()
        .submit(Uuid::from_u128(id), command, None, &payload)
        .unwrap()
    {
        Submitted::New(pending) => {
            pending.blocking_outcome().unwrap();
        }
        Submitted::Duplicate => panic!("duplicate"),
    }
}

/// Three tickets' commands, one of them rejected (closing a closed ticket).
fn tickets(dir: &Path) -> writ_app::Started {
    let started = app()
        .start(Config::new(Store::Dir(dir.to_owned())))
        .expect("starts");
    let open = |id: &str| json!({"ticketId": id, "title": "Printer on fire", "reporter": "ann", "priority": "high"});
    run(&started.state, 1, "OpenTicket", open("t-1"));
    run(&started.state, 2, "OpenTicket", open("t-2"));
    let close = json!({"ticketId": "t-1", "resolution": "fixed"});
    run(&started.state, 3, "CloseTicket", close.clone());
    run(&started.state, 4, "CloseTicket", close);
    started
}

fn replay(
    dir: &Path,
    apply: bool,
    report: Option<PathBuf>,
) -> Result<writ_engine::replay::Replayed, writ_app::ReplayError> {
    app().replay_with(ReplayConfig {
        store: Store::Dir(dir.to_owned()),
        domains: Vec::new(),
        app: None,
        engine: EngineOptions::default(),
        apply,
        report,
        progress: false,
    })
}

#[test]
fn replay_of_a_data_directory_reports_in_a_summary_and_as_json_and_applies() {
    let dir = fresh_dir("summary");
    let _cleanup = Cleanup(dir.clone());
    drop(tickets(&dir));
    let report_file = dir.join("report.json");
    let replayed = replay(&dir, false, Some(report_file.clone())).expect("replayed");
    let summary = replayed.report.summary(5);
    assert!(
        summary.starts_with("commands=4 same=4 differing=0"),
        "{summary}"
    );
    assert!(summary.contains("by kind: status=0 code=0 events=0 timers=0 missing=0 added=0"));
    let json: Value = serde_json::from_slice(&std::fs::read(&report_file).unwrap()).unwrap();
    assert_eq!(json["commands"], 4);
    assert_eq!(json["same"], 4);
    assert_eq!(json["differing"], 0);
    assert_eq!(json["differences"], json!([]));
    assert_eq!(json["source"], "journal");
    assert_eq!(json["journal"], "replay-1/journal");
    assert_eq!(json["applied"], false);
    assert!(dir.join("replay-1/journal").is_dir());
    assert!(!dir.join("CURRENT").exists(), "not applied");

    // Applied: the second replay is the live one, and a server opens on it.
    let replayed = replay(&dir, true, None).expect("replayed and applied");
    assert_eq!(replayed.journal, Path::new("replay-2/journal"));
    assert_eq!(
        std::fs::read_to_string(dir.join("CURRENT")).unwrap(),
        "replay-2/journal\n"
    );
    let started = app()
        .start(Config::new(Store::Dir(dir.clone())))
        .expect("starts on the replay");
    assert_eq!(started.report.commands, 4);
    assert_eq!(started.state.engine().stream_version("ticket-t-1"), 2);
}

#[test]
fn replay_of_a_data_directory_a_server_holds_is_refused_saying_so() {
    let dir = fresh_dir("locked");
    let _cleanup = Cleanup(dir.clone());
    let serving = tickets(&dir);
    let error = replay(&dir, true, None).unwrap_err().to_string();
    assert!(error.contains("locked by another process"), "{error}");
    assert!(error.contains("writ.lock"), "{error}");
    assert!(!dir.join("replay-1").exists(), "nothing written");
    // The command says where a replay beside a running server is.
    let args = writ_app::ReplayArgs {
        data_dir: dir.clone(),
        domains: Vec::new(),
        app: None,
        report: None,
        apply: false,
        first: 20,
        dedupe_window: std::time::Duration::from_secs(60),
        archive_dir: None,
    };
    let error = app().replay(&args).unwrap_err();
    assert!(error.contains("POST /admin/replay"), "{error}");
    assert!(!dir.join("replay-1").exists(), "nothing written");
    drop(serving);
    let error = replay(&fresh_dir("missing"), false, None)
        .unwrap_err()
        .to_string();
    assert!(error.contains("not a Writ data directory"), "{error}");
    let empty = fresh_dir("empty");
    let _cleanup_empty = Cleanup(empty.clone());
    std::fs::create_dir_all(&empty).unwrap();
    let error = replay(&empty, false, None).unwrap_err().to_string();
    assert!(error.contains("not a Writ data directory"), "{error}");
    assert!(!empty.join("writ.lock").exists(), "nothing left in it");
}

#[test]
fn an_unknown_domain_is_refused_before_anything_is_written() {
    let dir = fresh_dir("unknown");
    let _cleanup = Cleanup(dir.clone());
    drop(tickets(&dir));
    let error = app()
        .replay_with(ReplayConfig {
            store: Store::Dir(dir.clone()),
            domains: vec!["shipping".to_owned()],
            app: None,
            engine: EngineOptions::default(),
            apply: false,
            report: None,
            progress: false,
        })
        .unwrap_err()
        .to_string();
    assert_eq!(error, "unknown domain \"shipping\"; known domains: tickets");
    assert!(!dir.join("replay-1").exists());
}

/// Resource types without code replay like compiled domains: the same app directory's
/// generic handlers decide every command again, uniqueness claims and rejections included.
#[test]
fn a_log_of_resource_commands_replays_without_a_difference() {
    let dir = fresh_dir("resources");
    let _cleanup = Cleanup(dir.clone());
    let users = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/users");
    let mut config = Config::new(Store::Dir(dir.clone()));
    config.app = Some(users.clone());
    let started = App::new().start(config).expect("starts with --app");
    let ann = json!({"name": "Ann", "email": "ann@example.com"});
    run(
        &started.state,
        1,
        "CreateUser",
        json!({"id": "u1", "document": ann}),
    );
    // The same email again: rejected not_unique.
    run(
        &started.state,
        2,
        "CreateUser",
        json!({"id": "u2", "document": ann}),
    );
    let patch = json!([{"op": "replace", "path": "/email", "value": "ann@example.org"}]);
    run(
        &started.state,
        3,
        "PatchUser",
        json!({"id": "u1", "patch": patch}),
    );
    // The old email is free again.
    run(
        &started.state,
        4,
        "CreateUser",
        json!({"id": "u2", "document": ann}),
    );
    run(&started.state, 5, "DeleteUser", json!({"id": "u1"}));
    let state_of = |id: u128| {
        started
            .state
            .engine()
            .status(Uuid::from_u128(id))
            .expect("reads")
            .expect("logged")
            .state
    };
    assert!(
        matches!(state_of(2), writ_engine::CommandState::Rejected { code, .. } if code == "not_unique")
    );
    assert!(matches!(state_of(4), writ_engine::CommandState::Succeeded));
    drop(started);

    let replayed = App::new()
        .replay_with(ReplayConfig {
            store: Store::Dir(dir.clone()),
            domains: Vec::new(),
            app: Some(users),
            engine: EngineOptions::default(),
            apply: false,
            report: None,
            progress: false,
        })
        .expect("replays");
    let report = &replayed.report;
    assert_eq!(report.live_records, 5);
    assert_eq!(report.replayed_records, 5);
    assert_eq!((report.commands, report.same), (5, 5));
    assert!(report.differences.is_empty(), "{:?}", report.differences);
}

/// Handlers in JavaScript replay like the rest: their events, rejections and failures (a
/// loop without end, an allocation without end, a global written, the clock read) come out
/// the same when the command log runs again on another thread, with other VMs.
#[test]
fn a_log_of_script_handler_commands_replays_without_a_difference() {
    let dir = fresh_dir("handlers");
    let app_dir = fresh_dir("handlers-app");
    let _cleanup = (Cleanup(dir.clone()), Cleanup(app_dir.clone()));
    std::fs::create_dir_all(app_dir.join("resources")).unwrap();
    std::fs::create_dir_all(app_dir.join("handlers")).unwrap();
    std::fs::write(
        app_dir.join("resources/users.json"),
        r#"{"title": "User", "type": "object", "required": ["name"],
            "properties": {"name": {"type": "string"}, "visits": {"type": "integer"},
                           "seenAt": {"type": "string"}, "by": {"type": "string"}}}"#,
    )
    .unwrap();
    std::fs::write(
        app_dir.join("handlers/users.js"),
        r#"let visits = 0;
function Visit(state, payload, ctx) {
  visits += 1;
  if (payload.nobody) reject('nobody', 'nobody visits');
  return {event: 'UserVisited', patch: [
    {op: 'add', path: '/visits', value: (state.visits || 0) + visits},
    {op: 'add', path: '/seenAt', value: ctx.now},
    {op: 'add', path: '/by', value: ctx.commandId},
  ]};
}
function Spin() { for (;;) {} }
function Hoard() { const all = []; for (;;) all.push([all.length]); }
function Leak() { leaked = 1; return {event: 'UserVisited', patch: []}; }
function Clock() { return {event: 'UserVisited', patch: [{op: 'add', path: '/seenAt', value: String(Date.now())}]}; }
"#,
    )
    .unwrap();
    let mut config = Config::new(Store::Dir(dir.clone()));
    config.app = Some(app_dir.clone());
    let started = App::new().start(config).expect("starts with --app");
    run(
        &started.state,
        1,
        "CreateUser",
        json!({"id": "u1", "document": {"name": "Ann"}}),
    );
    let commands = [
        ("VisitUser", json!({"id": "u1"})),
        ("VisitUser", json!({"id": "u1"})),
        ("VisitUser", json!({"id": "u1", "nobody": true})),
        ("SpinUser", json!({"id": "u1"})),
        ("VisitUser", json!({"id": "u1"})),
        ("HoardUser", json!({"id": "u1"})),
        ("LeakUser", json!({"id": "u1"})),
        ("ClockUser", json!({"id": "u1"})),
        ("VisitUser", json!({"id": "u1"})),
    ];
    for (n, (command, payload)) in commands.iter().enumerate() {
        run(&started.state, n as u128 + 2, command, payload.clone());
    }
    let failed = (2..=10u128)
        .filter(|id| {
            matches!(
                started
                    .state
                    .engine()
                    .status(Uuid::from_u128(*id))
                    .unwrap()
                    .unwrap()
                    .state,
                writ_engine::CommandState::Failed { .. }
            )
        })
        .count();
    assert_eq!(failed, 4, "Spin, Hoard, Leak and Clock fail");
    drop(started);

    let replayed = App::new()
        .replay_with(ReplayConfig {
            store: Store::Dir(dir.clone()),
            domains: Vec::new(),
            app: Some(app_dir.clone()),
            engine: EngineOptions::default(),
            apply: false,
            report: None,
            progress: false,
        })
        .expect("replays");
    let report = &replayed.report;
    assert_eq!((report.commands, report.same), (10, 10));
    assert!(report.differences.is_empty(), "{:?}", report.differences);
}

/// A log recorded at schema version 1 replays under version 2 with its migration
/// (`migrations/T.js`): each command, logged at version 1, is migrated before it is
/// decided, so every outcome is the same; only the events differ (recorded at version 2,
/// in its shape), and once applied the server starts on them.
#[test]
fn a_log_of_an_older_schema_version_replays_through_the_migration() {
    let dir = fresh_dir("migrations");
    let app_dir = fresh_dir("migrations-app");
    let _cleanup = (Cleanup(dir.clone()), Cleanup(app_dir.clone()));
    let write = |file: &str, text: &str| {
        let path = app_dir.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "resources/people.json",
        r#"{"title": "Person", "type": "object", "required": ["name"],
            "properties": {"name": {"type": "string"}}, "additionalProperties": false}"#,
    );
    let mut config = Config::new(Store::Dir(dir.clone()));
    config.app = Some(app_dir.clone());
    let started = App::new().start(config.clone()).expect("starts at v1");
    let person = |name: &str| json!({"name": name});
    run(
        &started.state,
        1,
        "CreatePerson",
        json!({"id": "p1", "document": person("Ann")}),
    );
    let rename = json!([{"op": "replace", "path": "/name", "value": "Ann Lee"}]);
    run(
        &started.state,
        2,
        "PatchPerson",
        json!({"id": "p1", "patch": rename}),
    );
    run(
        &started.state,
        3,
        "ReplacePerson",
        json!({"id": "p1", "document": person("Bo")}),
    );
    // Rejected: an unknown member.
    run(
        &started.state,
        4,
        "PatchPerson",
        json!({"id": "p1", "patch": [{"op": "add", "path": "/x", "value": 1}]}),
    );
    started.state.engine().shutdown();
    drop(started);

    write(
        "resources/people.json",
        r#"{"title": "Person", "type": "object", "required": ["fullName"], "x-writ-version": 2,
            "properties": {"fullName": {"type": "string"}}, "additionalProperties": false}"#,
    );
    write(
        "migrations/people.js",
        "function document(doc) { return {fullName: doc.name}; }\n\
         function patch(ops) { return ops.map((op) => op.path === '/name' ? {...op, path: '/fullName'} : op); }\n",
    );
    let replayed = App::new()
        .replay_with(ReplayConfig {
            store: Store::Dir(dir.clone()),
            domains: Vec::new(),
            app: Some(app_dir.clone()),
            engine: EngineOptions::default(),
            apply: true,
            report: None,
            progress: false,
        })
        .expect("replays");
    let report = &replayed.report;
    assert_eq!(report.commands, 4);
    // The rejection is the same; the others' events are in version 2's shape.
    assert_eq!(report.same, 1, "{:?}", report.differences);
    for difference in &report.differences {
        assert_eq!(
            difference.kinds,
            [writ_engine::replay::DifferenceKind::Events],
            "{difference:?}"
        );
    }
    let started = App::new()
        .start(config)
        .expect("starts at v2 on the replayed journal");
    let events = started
        .state
        .engine()
        .read_stream("people-p1", 1, 10)
        .unwrap();
    let recorded: Vec<(u32, Value)> = events
        .iter()
        .map(|e| {
            (
                e.recorded_schema_version,
                serde_json::from_slice(&e.data).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        recorded,
        [
            (2, json!({"document": {"fullName": "Ann"}})),
            (
                2,
                json!({"patch": [{"op": "replace", "path": "/fullName", "value": "Ann Lee"}]})
            ),
            (2, json!({"document": {"fullName": "Bo"}})),
        ]
    );
    started.state.engine().shutdown();
}

/// Every record of the journal in `dir` of `storage`, as bytes.
fn records(storage: &writ_log::storage::SimStorage, dir: &str) -> Vec<Vec<u8>> {
    let (log, _) = writ_log::Log::open(
        Arc::new(storage.clone()),
        Path::new(dir),
        EngineOptions::default().log,
    )
    .expect("log opens");
    let mut out = Vec::new();
    let mut iter = log.reader().iter_from(0);
    while let Some(item) = iter.next_record() {
        out.push(item.expect("record").1.to_vec());
    }
    out
}

/// Waits until the tickets read model runs projection `version` with no rebuild running.
fn tickets_at(state: &writ_server::AppState, version: u32) -> writ_query::ModelStatus {
    let read = state.read_side().expect("a read side");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let status = read
            .models
            .status("tickets")
            .expect("the tickets read model");
        if status.root.version == version
            && !matches!(status.rebuild, writ_query::RebuildStatus::Running { .. })
        {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "tickets never got to version {version}: {status:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// A structure change is a command in the log: a restart keeps it (a snapshot of the
/// version before is ignored), and an unchanged build replays it byte for byte, as an
/// ordinary command of the report.
#[test]
fn a_read_model_switch_is_kept_at_a_restart_and_replayed_byte_for_byte() {
    use writ_log::storage::SimStorage;
    let storage = Arc::new(SimStorage::new());
    let with_read_model = || {
        App::new().module(
            Module::new::<writ_tickets::Tickets>().read_model(writ_tickets::read::read_model()),
        )
    };
    let config = |snapshots: bool| {
        let mut config = Config::new(Store::Storage(storage.clone()));
        if snapshots {
            config.runtime.snapshots = Some(writ_query::SnapshotOptions::new(storage.clone()));
        }
        config
    };
    let open = |id: &str| json!({"ticketId": id, "title": "Printer on fire", "reporter": "ann"});

    // Version 2 (the newest) at first; its snapshot is written at the clean shutdown.
    let started = with_read_model().start(config(true)).expect("starts");
    run(&started.state, 1, "OpenTicket", open("t-1"));
    let read = started.state.read_side().expect("a read side");
    let last = started.state.engine().last_position();
    read.models
        .blocking_wait_for(last, std::time::Duration::from_secs(30))
        .unwrap();
    assert_eq!(tickets_at(&started.state, 2).root.version, 2);
    // The read side is shared: the last holder's drop shuts it down.
    drop(read);
    drop(started);

    let started = with_read_model().start(config(false)).expect("starts");
    let switch = |version: u32| json!({"name": "tickets", "version": version});
    run(&started.state, 2, "SwitchReadModel", switch(1));
    run(&started.state, 3, "OpenTicket", open("t-2"));
    // Rejected by the writer, logged with their codes.
    run(&started.state, 4, "SwitchReadModel", switch(9));
    run(
        &started.state,
        5,
        "SwitchReadModel",
        json!({"name": "nothing", "version": 1}),
    );
    let engine = started.state.engine();
    let code = |id: u128| match engine.status(Uuid::from_u128(id)).unwrap().unwrap().state {
        writ_engine::CommandState::Rejected { code, .. } => code,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (code(4), code(5)),
        (
            "unknown_version".to_owned(),
            "unknown_read_model".to_owned()
        )
    );
    let status = tickets_at(&started.state, 1);
    assert!(
        matches!(status.rebuild, writ_query::RebuildStatus::Switched { root, .. } if root.version == 1),
        "{:?}",
        status.rebuild
    );
    drop(started);

    // A restart starts at version 1, as the log says: the snapshot of version 2 is
    // ignored, and nothing is rebuilt.
    let started = with_read_model().start(config(true)).expect("starts");
    let status = tickets_at(&started.state, 1);
    assert!(matches!(status.rebuild, writ_query::RebuildStatus::Idle));
    assert_eq!(status.snapshots.loaded, None);
    assert_eq!(status.snapshots.ignored.len(), 1, "{:?}", status.snapshots);
    assert!(
        status.snapshots.ignored[0].contains("version"),
        "{:?}",
        status.snapshots.ignored
    );
    drop(started);

    let replayed = with_read_model()
        .replay_with(ReplayConfig {
            store: Store::Storage(storage.clone()),
            domains: Vec::new(),
            app: None,
            engine: EngineOptions::default(),
            apply: false,
            report: None,
            progress: false,
        })
        .expect("replayed");
    let report = &replayed.report;
    assert!(report.differences.is_empty(), "{}", report.summary(10));
    assert_eq!((report.commands, report.same), (5, 5));
    let live = records(&storage, "journal");
    let again = records(&storage, "replay-1/journal");
    assert_eq!(live.len(), 5);
    assert!(
        live == again,
        "the replayed journal is the live one, byte for byte"
    );
}
