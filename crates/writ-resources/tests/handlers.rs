//! `handlers/T.js` through the engine: custom commands decided by JavaScript in the single
//! writer, their rejections and failures, the resulting document checked against the
//! schema, the same outcomes on a second engine over the same commands, and bad scripts
//! refused at load with their place.

mod support;

use serde_json::{Value, json};
use support::{TempDir, engine, refusal, rejected, run, stream};
use writ_engine::CommandState;
use writ_log::storage::SimStorage;
use writ_resources::load;

const SCHEMA: &str = r#"{
    "title": "User", "type": "object", "required": ["name", "email"],
    "properties": {
        "name": {"type": "string", "maxLength": 20},
        "email": {"type": "string", "format": "email"},
        "status": {"enum": ["pending", "approved"]},
        "approvedAt": {"type": "string"},
        "approvedBy": {"type": "string"},
        "calls": {"type": "integer"}
    },
    "x-writ-unique": ["email"]
}"#;

const HANDLERS: &str = r#"// Custom commands of users.
let calls = 0;

function Approve(state, payload, ctx) {
  if (state.status === 'approved') reject('already_approved', 'approved once is enough');
  calls += 1;
  return {event: "UserApproved", patch: [
    {op: 'add', path: '/status', value: 'approved'},
    {op: 'add', path: '/approvedAt', value: ctx.now},
    {op: 'add', path: '/approvedBy', value: payload.by + ' ' + ctx.commandId},
    {op: 'add', path: '/calls', value: calls},
  ]};
}

function Rename(state, payload) {
  return {event: 'UserRenamed', patch: [{op: 'replace', path: '/name', value: payload.name}]};
}

function Spin() { for (;;) {} }

function Hoard() { const all = []; for (;;) all.push({text: 'x'.repeat(100)}); }

function Throw(state) { return state.missing.field; }

function Shout() { counter = 1; return {event: 'UserShouted', patch: []}; }

function Invent(state) { return {event: 'User' + 'Invented', patch: []}; }

function Clock() { return {event: 'UserRenamed', patch: [{op: 'replace', path: '/name', value: String(Date.now())}]}; }
"#;

fn app() -> TempDir {
    let dir = TempDir::new("handlers");
    dir.write("resources/users.json", SCHEMA);
    dir.write("handlers/users.js", HANDLERS);
    dir
}

fn state(status: &writ_engine::CommandStatus) -> String {
    match &status.state {
        CommandState::Succeeded => "succeeded".to_owned(),
        CommandState::Rejected { code, .. } => format!("rejected {code}"),
        CommandState::Failed { message } => format!("failed: {message}"),
        other => format!("{other:?}"),
    }
}

/// Every command of the scenario, in order, and what it should come to.
fn scenario() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        (
            "CreateUser",
            json!({"id": "u1", "document": {"name": "Ann", "email": "ann@example.com", "status": "pending"}}),
            "succeeded",
        ),
        (
            "ApproveUser",
            json!({"id": "u1", "by": "boss"}),
            "succeeded",
        ),
        (
            "ApproveUser",
            json!({"id": "u1", "by": "boss"}),
            "rejected already_approved",
        ),
        (
            "ApproveUser",
            json!({"id": "nobody", "by": "boss"}),
            "rejected not_found",
        ),
        (
            "RenameUser",
            json!({"id": "u1", "name": "Annabel"}),
            "succeeded",
        ),
        (
            "RenameUser",
            json!({"id": "u1", "name": "a name far too long for the schema"}),
            "rejected schema_violation",
        ),
        ("SpinUser", json!({"id": "u1"}), "failed"),
        ("HoardUser", json!({"id": "u1"}), "failed"),
        ("ThrowUser", json!({"id": "u1"}), "failed"),
        ("ShoutUser", json!({"id": "u1"}), "failed"),
        ("InventUser", json!({"id": "u1"}), "failed"),
        ("ClockUser", json!({"id": "u1"}), "failed"),
    ]
}

#[test]
fn handler_commands_decide_in_the_writer_and_come_out_the_same_on_a_second_run() {
    let dir = app();
    let set = load(dir.path()).unwrap();
    let ty = set.resource_type("users").unwrap();
    assert_eq!(
        ty.custom_commands(),
        [
            "Approve", "Rename", "Spin", "Hoard", "Throw", "Shout", "Invent", "Clock"
        ]
    );
    let mut runs: Vec<Vec<String>> = Vec::new();
    for _ in 0..2 {
        let storage = SimStorage::new();
        let engine = engine(&set, &storage);
        let mut outcomes = Vec::new();
        for (n, (command, payload, expected)) in scenario().into_iter().enumerate() {
            let status = run(&engine, n as u128 + 1, command, payload);
            let outcome = state(&status);
            assert!(
                outcome.starts_with(expected),
                "{command}: {outcome}, expected {expected}"
            );
            outcomes.push(outcome);
        }
        let events = stream(&engine, "users-u1");
        let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(types, ["UserCreated", "UserApproved", "UserRenamed"]);
        let approved = &events[1].1["patch"];
        assert!(approved[1]["value"].as_str().unwrap().ends_with('Z'));
        assert_eq!(
            approved[2]["value"],
            json!(format!("boss {}", uuid::Uuid::from_u128(2)))
        );
        // A top-level `let` starts afresh on every call.
        assert_eq!(approved[3]["value"], json!(1));
        outcomes.push(events[2].1.to_string());
        runs.push(outcomes);
    }
    assert_eq!(runs[0], runs[1], "the same commands, the same outcomes");
    // The limits are named in the failures.
    assert!(runs[0][6].contains("step limit"), "{}", runs[0][6]);
    assert!(runs[0][7].contains("memory limit"), "{}", runs[0][7]);
    assert!(runs[0][9].contains("ReferenceError"), "{}", runs[0][9]);
    assert!(runs[0][10].contains("UserInvented"), "{}", runs[0][10]);
    assert!(runs[0][11].contains("no clock"), "{}", runs[0][11]);
}

#[test]
fn a_rejection_code_that_is_the_writers_own_fails_the_command() {
    let dir = TempDir::new("handlers-code");
    dir.write("resources/users.json", SCHEMA);
    dir.write(
        "handlers/users.js",
        "function Approve() { reject('not_found', 'pretending'); }\n\
         function Shout() { reject('Loud Code', 'no'); }\n",
    );
    let set = load(dir.path()).unwrap();
    let storage = SimStorage::new();
    let engine = engine(&set, &storage);
    run(
        &engine,
        1,
        "CreateUser",
        json!({"id": "u1", "document": {"name": "Ann", "email": "ann@example.com"}}),
    );
    for (n, command) in [(2, "ApproveUser"), (3, "ShoutUser")] {
        let status = run(&engine, n, command, json!({"id": "u1"}));
        assert!(
            matches!(&status.state, CommandState::Failed { message } if message.contains("not a rejection code")),
            "{:?}",
            status.state
        );
    }
    let status = run(&engine, 4, "ApproveUser", json!({"id": "nobody"}));
    assert_eq!(rejected(&status), "not_found");
}

#[test]
fn bad_handlers_stop_the_load_naming_file_and_place() {
    let (_dir, message) = refusal(&[
        ("resources/users.json", SCHEMA),
        (
            "handlers/users.js",
            "function Approve(state) {\n  return {event: 'UserApproved', patch: [};\n}\n",
        ),
    ]);
    assert!(message.contains("handlers/users.js:2:"), "{message}");
    assert!(message.contains("SyntaxError"), "{message}");

    let (_dir, message) = refusal(&[
        ("resources/users.json", SCHEMA),
        ("handlers/users.js", "\n\nfunction Create(state) {}\n"),
    ]);
    assert!(message.contains("handlers/users.js:3:1"), "{message}");
    assert!(message.contains("CreateUser"), "{message}");

    let (_dir, message) = refusal(&[
        ("resources/users.json", SCHEMA),
        ("handlers/users.js", "for (;;) {}\n"),
    ]);
    assert!(message.contains("step limit"), "{message}");

    let (_dir, message) = refusal(&[
        ("resources/users.json", SCHEMA),
        ("handlers/orders.js", "function Approve() {}\n"),
    ]);
    assert!(message.contains("handlers/orders.js"), "{message}");
}
