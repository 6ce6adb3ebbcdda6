//! The write side of resource types beyond CRUD, through the real engine on in-memory
//! storage: custom commands, a machine's transitions and its `after` timers (across a
//! restart), rules, every rejection code in the contract's order, and the refusals of bad
//! `machines/` and `rules/` files naming the file and the place.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;
use writ_domain::CommandError;
use writ_engine::{CommandState, EngineOptions, ManualClock, Origin, SubmitError};
use writ_log::storage::SimStorage;
use writ_resources::{ResourceSet, load, parse_duration};

use support::{TempDir, engine, engine_with, refusal, rejected, run, stream, submit};

const USERS: &str = r#"{
    "title": "User",
    "type": "object",
    "required": ["name", "email"],
    "properties": {
        "name": {"type": "string"},
        "email": {"type": "string", "format": "email"},
        "note": {"type": "string"},
        "status": {"enum": ["pending", "active", "suspended", "expired"]}
    },
    "additionalProperties": false,
    "x-writ-unique": ["email"]
}"#;

const MACHINE: &str = r#"{
    "field": "status",
    "initial": "pending",
    "transitions": [
        {"command": "Activate", "from": ["pending", "suspended"], "to": "active", "event": "UserActivated"},
        {"command": "Suspend", "from": ["active"], "to": "suspended"},
        {"command": "Archive", "from": ["suspended"], "to": "archived"},
        {"command": "Expire", "from": ["pending"], "to": "expired", "after": "PT15M"}
    ]
}"#;

const RULES: &str = r#"[
    {"code": "name_required", "message": "a user has a name", "on": ["Create", "Replace"],
     "require": {"!=": [{"var": "next.name"}, ""]}},
    {"code": "name_kept", "message": "a patch keeps the name", "on": ["Patch"],
     "require": {"==": [{"var": "state.name"}, {"var": "next.name"}]}},
    {"code": "reason_required", "message": "a suspension has a reason", "on": ["Suspend"],
     "require": {"!!": {"var": "payload.reason"}}},
    {"code": "no_test_domain", "message": "no test addresses", "on": ["Create"],
     "require": {"!": {"in": ["@test.invalid", {"var": "next.email"}]}}}
]"#;

fn users() -> (TempDir, ResourceSet) {
    let dir = TempDir::new("write");
    dir.write("resources/users.json", USERS);
    dir.write("machines/users.json", MACHINE);
    dir.write("rules/users.json", RULES);
    let set = load(dir.path()).unwrap();
    (dir, set)
}

fn create(name: &str, email: &str) -> Value {
    json!({"name": name, "email": email})
}

#[test]
fn a_created_document_starts_at_the_initial_state_and_moves_only_by_transitions() {
    let (_dir, set) = users();
    let engine = engine(&set, &SimStorage::new());
    // Created without the field: it starts at `initial`, which the event records.
    let created = run(
        &engine,
        1,
        "CreateUser",
        json!({"id": "u1", "document": create("Ann", "ann@example.com")}),
    );
    assert_eq!(created.state, CommandState::Succeeded);
    assert_eq!(
        stream(&engine, "users-u1")[0].1["document"]["status"],
        "pending"
    );
    // Created at another state: invalid_transition.
    let elsewhere = run(
        &engine,
        2,
        "CreateUser",
        json!({"id": "u2", "document": {"name": "Bo", "email": "bo@example.com", "status": "active"}}),
    );
    assert_eq!(rejected(&elsewhere), "invalid_transition");
    // Created at `initial` explicitly is fine.
    let explicit = run(
        &engine,
        3,
        "CreateUser",
        json!({"id": "u3", "document": {"name": "Cy", "email": "cy@example.com", "status": "pending"}}),
    );
    assert_eq!(explicit.state, CommandState::Succeeded);

    // A transition command without a handler: its own event, {"command", "from", "to"}.
    let activated = run(&engine, 4, "ActivateUser", json!({"id": "u1"}));
    assert_eq!(activated.state, CommandState::Succeeded);
    assert_eq!(activated.events[0].event_type, "UserActivated");
    let events = stream(&engine, "users-u1");
    assert_eq!(
        events[1].1,
        json!({"command": "Activate", "from": "pending", "to": "active"})
    );
    // Not from a state it leaves.
    let again = run(&engine, 5, "ActivateUser", json!({"id": "u1"}));
    assert_eq!(rejected(&again), "invalid_transition");

    // A patch or a replace may not move the field; a replace that omits it keeps it.
    let patched = run(
        &engine,
        6,
        "PatchUser",
        json!({"id": "u1", "patch": [{"op": "replace", "path": "/status", "value": "pending"}]}),
    );
    assert_eq!(rejected(&patched), "invalid_transition");
    let removed = run(
        &engine,
        7,
        "PatchUser",
        json!({"id": "u1", "mergePatch": {"status": null}}),
    );
    assert_eq!(rejected(&removed), "invalid_transition");
    let replaced_to = run(
        &engine,
        8,
        "ReplaceUser",
        json!({"id": "u1", "document": {"name": "Ann", "email": "ann@example.com", "status": "pending"}}),
    );
    assert_eq!(rejected(&replaced_to), "invalid_transition");
    let replaced = run(
        &engine,
        9,
        "ReplaceUser",
        json!({"id": "u1", "document": {"name": "Ann B", "email": "ann@example.com"}}),
    );
    assert_eq!(replaced.state, CommandState::Succeeded);
    let events = stream(&engine, "users-u1");
    assert_eq!(
        events[2].1["document"],
        json!({"name": "Ann B", "email": "ann@example.com", "status": "active"})
    );
    let noted = run(
        &engine,
        10,
        "PatchUser",
        json!({"id": "u1", "mergePatch": {"note": "hi"}}),
    );
    assert_eq!(noted.state, CommandState::Succeeded);

    // The default event of a transition, with the rule on the custom command's payload.
    let unreasoned = run(&engine, 11, "SuspendUser", json!({"id": "u1"}));
    assert_eq!(rejected(&unreasoned), "reason_required");
    let suspended = run(
        &engine,
        12,
        "SuspendUser",
        json!({"id": "u1", "reason": "spam"}),
    );
    assert_eq!(suspended.state, CommandState::Succeeded);
    assert_eq!(suspended.events[0].event_type, "UserTransitioned");
    // A transition to a state the schema does not allow: schema_violation of the result.
    let archived = run(&engine, 13, "ArchiveUser", json!({"id": "u1"}));
    assert_eq!(rejected(&archived), "schema_violation");
    // Back through a second `from` state of the same command.
    let back = run(&engine, 14, "ActivateUser", json!({"id": "u1"}));
    assert_eq!(back.state, CommandState::Succeeded);
    let last = stream(&engine, "users-u1").pop().unwrap();
    assert_eq!(
        last.1,
        json!({"command": "Activate", "from": "suspended", "to": "active"})
    );
}

#[test]
fn custom_commands_exist_only_when_declared_and_take_id_and_payload() {
    let (_dir, set) = users();
    let engine = engine(&set, &SimStorage::new());
    let unknown = submit(&engine, 1, "ApproveUser", json!({"id": "u1"}), None);
    assert!(
        matches!(unknown, Err(SubmitError::Invalid(CommandError::UnknownCommand { ref name })) if name == "ApproveUser"),
        "{unknown:?}"
    );
    for (payload, says) in [
        (json!({"reason": "x"}), "`id` is missing"),
        (json!({"id": 7}), "`id` must be a string"),
        (json!({"id": "a/b"}), "a document id"),
        (json!([1]), "JSON object"),
    ] {
        match submit(&engine, 2, "SuspendUser", payload.clone(), None) {
            Err(SubmitError::Invalid(CommandError::InvalidPayload { detail, .. })) => {
                assert!(detail.contains(says), "{payload}: {detail}")
            }
            other => panic!("{payload}: {other:?}"),
        }
    }
    // The payload's members besides id are the command's own, and part of its content.
    let spec = set.types()[0].custom_commands();
    assert_eq!(spec, ["Activate", "Suspend", "Archive", "Expire"]);
    let domain = &set.domains()[0];
    let names: Vec<String> = domain.commands().into_iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "CreateUser",
            "ReplaceUser",
            "PatchUser",
            "DeleteUser",
            "ActivateUser",
            "SuspendUser",
            "ArchiveUser",
            "ExpireUser"
        ]
    );
    let a = domain
        .decode("SuspendUser", None, br#"{"reason": "x", "id": "u1"}"#)
        .unwrap();
    let b = domain
        .decode("SuspendUser", None, br#"{"id": "u1", "reason": "x"}"#)
        .unwrap();
    assert_eq!(a.canonical_payload, b.canonical_payload);
    assert_eq!(
        serde_json::from_slice::<Value>(&a.canonical_payload).unwrap(),
        json!({"id": "u1", "reason": "x"})
    );
    assert!(domain.events().iter().any(|e| e.name == "UserActivated"));
}

#[test]
fn rejections_come_in_the_contracts_order() {
    let (_dir, set) = users();
    let engine = engine(&set, &SimStorage::new());
    let ok = run(
        &engine,
        1,
        "CreateUser",
        json!({"id": "u1", "document": create("Ann", "ann@example.com")}),
    );
    assert_eq!(ok.state, CommandState::Succeeded);
    // Each case fails several checks; the first in the contract's order gives the code.
    let cases: Vec<(&str, Value, Option<u64>, &str)> = vec![
        // wrong_expected_version before not_found.
        (
            "ActivateUser",
            json!({"id": "nobody"}),
            Some(3),
            "wrong_expected_version",
        ),
        // not_found before invalid_transition.
        ("SuspendUser", json!({"id": "nobody"}), None, "not_found"),
        // exists before invalid_transition and not_unique.
        (
            "CreateUser",
            json!({"id": "u1", "document": {"name": "", "email": "ann@example.com", "status": "active"}}),
            None,
            "exists",
        ),
        // invalid_transition before not_unique and the rules.
        (
            "CreateUser",
            json!({"id": "u2", "document": {"name": "", "email": "ann@example.com", "status": "active"}}),
            None,
            "invalid_transition",
        ),
        // invalid_transition (pending is not a state Suspend leaves) before the rule on
        // its payload.
        (
            "SuspendUser",
            json!({"id": "u1"}),
            None,
            "invalid_transition",
        ),
        // not_unique before the rules.
        (
            "CreateUser",
            json!({"id": "u2", "document": {"name": "", "email": "ann@example.com"}}),
            None,
            "not_unique",
        ),
        // The rules in file order: name_required before no_test_domain.
        (
            "CreateUser",
            json!({"id": "u2", "document": {"name": "", "email": "bo@test.invalid"}}),
            None,
            "name_required",
        ),
        (
            "CreateUser",
            json!({"id": "u2", "document": {"name": "Bo", "email": "bo@test.invalid"}}),
            None,
            "no_test_domain",
        ),
        // schema_violation of the patched document before not_unique and the rules.
        (
            "PatchUser",
            json!({"id": "u1", "patch": [{"op": "add", "path": "/age", "value": 3}, {"op": "replace", "path": "/name", "value": "X"}]}),
            None,
            "schema_violation",
        ),
        (
            "PatchUser",
            json!({"id": "u1", "patch": [{"op": "replace", "path": "/name", "value": "X"}]}),
            None,
            "name_kept",
        ),
        // patch_failed is the patch's own step, before the machine.
        (
            "PatchUser",
            json!({"id": "u1", "patch": [{"op": "test", "path": "/name", "value": "Zed"}, {"op": "replace", "path": "/status", "value": "active"}]}),
            None,
            "patch_failed",
        ),
    ];
    for (n, (command, payload, expected, code)) in cases.into_iter().enumerate() {
        let status = submit(&engine, 100 + n as u128, command, payload.clone(), expected).unwrap();
        assert_eq!(rejected(&status), code, "{command} {payload}");
        assert!(status.events.is_empty());
    }
    // A rule's message is the rejection's.
    let status = run(
        &engine,
        200,
        "CreateUser",
        json!({"id": "u3", "document": {"name": "", "email": "cy@example.com"}}),
    );
    let CommandState::Rejected { message, .. } = &status.state else {
        panic!("{status:?}")
    };
    assert_eq!(message, "a user has a name");
    // Nothing a rejection decided was recorded.
    assert_eq!(stream(&engine, "users-u1").len(), 1);
    assert!(stream(&engine, "users-u2").is_empty());
}

#[test]
fn documents_moved_by_transitions_read_back_after_a_restart() {
    let (_dir, set) = users();
    let storage = SimStorage::new();
    let engine = engine(&set, &storage);
    run(
        &engine,
        1,
        "CreateUser",
        json!({"id": "u1", "document": create("Ann", "ann@example.com")}),
    );
    run(&engine, 2, "ActivateUser", json!({"id": "u1"}));
    drop(engine);
    // Folded from the log: the document is active, so Suspend applies and Activate not.
    let engine = support::engine(&set, &storage.crash());
    assert_eq!(
        rejected(&run(&engine, 3, "ActivateUser", json!({"id": "u1"}))),
        "invalid_transition"
    );
    let suspended = run(
        &engine,
        4,
        "SuspendUser",
        json!({"id": "u1", "reason": "r"}),
    );
    assert_eq!(suspended.state, CommandState::Succeeded);
}

/// Waits (bounded) until `done`.
fn wait_until(mut done: impl FnMut() -> bool) {
    for _ in 0..1_000 {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("not done within 10 s");
}

#[test]
fn an_after_transition_due_while_the_engine_was_down_fires_once_at_the_next_start() {
    let (_dir, set) = users();
    let storage = SimStorage::new();
    let clock = ManualClock::at_ms(1_800_000_000_000);
    let options = || EngineOptions {
        clock: Arc::new(clock.clone()),
        ..EngineOptions::default()
    };
    let engine = engine_with(&set, &storage, options());
    let created = run(
        &engine,
        1,
        "CreateUser",
        json!({"id": "late", "document": create("Lu", "lu@example.com")}),
    );
    assert_eq!(created.state, CommandState::Succeeded);
    assert_eq!(engine.timers_pending(), 1, "Expire after PT15M");
    // Another leaves `pending` in time: its timer is cancelled, not fired.
    run(
        &engine,
        2,
        "CreateUser",
        json!({"id": "quick", "document": create("Qi", "qi@example.com")}),
    );
    assert_eq!(engine.timers_pending(), 2);
    run(&engine, 3, "ActivateUser", json!({"id": "quick"}));
    assert_eq!(engine.timers_pending(), 1);
    // A patch of other members does not restart the wait.
    run(
        &engine,
        4,
        "PatchUser",
        json!({"id": "late", "mergePatch": {"note": "n"}}),
    );
    assert_eq!(engine.timers_pending(), 1);
    drop(engine);
    let crashed = storage.crash();

    // Down while the 15 minutes pass.
    clock.advance(Duration::from_secs(16 * 60));
    let engine = engine_with(&set, &crashed, options());
    wait_until(|| engine.stream_version("users-late") == 3);
    let events = stream(&engine, "users-late");
    assert_eq!(events[2].0, "UserTransitioned");
    assert_eq!(
        events[2].1,
        json!({"command": "Expire", "from": "pending", "to": "expired"})
    );
    let fired = engine
        .read_stream("users-late", 3, 1)
        .unwrap()
        .pop()
        .unwrap();
    let status = engine.status(fired.command_id).unwrap().unwrap();
    assert_eq!(status.command, "ExpireUser");
    assert_eq!(status.origin, Origin::Timer);
    assert_eq!(status.correlation_id, Uuid::from_u128(1));
    assert_eq!(engine.timers_pending(), 0);
    assert_eq!(
        engine.stream_version("users-quick"),
        2,
        "quick stays active"
    );
    drop(engine);

    // Another start fires nothing again.
    let engine = engine_with(&set, &crashed.crash(), options());
    run(
        &engine,
        5,
        "PatchUser",
        json!({"id": "quick", "mergePatch": {"note": "n"}}),
    );
    assert_eq!(engine.stream_version("users-late"), 3);
    assert_eq!(engine.timers_pending(), 0);
    // Expired: Activate does not leave it.
    assert_eq!(
        rejected(&run(&engine, 6, "ActivateUser", json!({"id": "late"}))),
        "invalid_transition"
    );
}

#[test]
fn a_deleted_document_has_no_timer_left() {
    let (_dir, set) = users();
    let engine = engine(&set, &SimStorage::new());
    run(
        &engine,
        1,
        "CreateUser",
        json!({"id": "u1", "document": create("Ann", "ann@example.com")}),
    );
    assert_eq!(engine.timers_pending(), 1);
    run(&engine, 2, "DeleteUser", json!({"id": "u1"}));
    assert_eq!(engine.timers_pending(), 0);
}

#[test]
fn durations_are_iso_8601_weeks_days_hours_minutes_seconds() {
    assert_eq!(parse_duration("PT15M"), Ok(900));
    assert_eq!(parse_duration("PT1H30M"), Ok(5_400));
    assert_eq!(parse_duration("P1DT12H"), Ok(129_600));
    assert_eq!(parse_duration("P2W"), Ok(1_209_600));
    assert_eq!(parse_duration("PT45S"), Ok(45));
    for bad in [
        "",
        "P",
        "PT",
        "15M",
        "PT15",
        "P1M",
        "P1Y",
        "PT0S",
        "PT1.5S",
        "PT1M1H",
        "P1DT",
        "PT5M5M",
        "P99999999999999999999D",
        "P4000D",
        "pt15m",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn a_bad_machine_or_rule_is_refused_naming_the_file_and_the_place() {
    let machine = |text: &'static str| {
        vec![
            ("resources/users.json", USERS),
            ("machines/users.json", text),
        ]
    };
    let rules = |text: &'static str| {
        vec![
            ("resources/users.json", USERS),
            ("machines/users.json", MACHINE),
            ("rules/users.json", text),
        ]
    };
    /// Files, what the message names, what it says.
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (machine("[]"), "machines/users.json", "at the root"),
        (
            machine(r#"{"field": "state", "initial": "a", "transitions": []}"#),
            "machines/users.json",
            "at /field: \"state\" is not a top-level property",
        ),
        (
            machine(r#"{"field": "email", "initial": "a", "transitions": []}"#),
            "machines/users.json",
            "at /field: \"email\" is unique",
        ),
        (
            machine(r#"{"field": "status", "initial": 3, "transitions": []}"#),
            "machines/users.json",
            "at /initial",
        ),
        (
            machine(r#"{"field": "status", "initial": "a", "transitions": [], "colour": 1}"#),
            "machines/users.json",
            "at /colour: unknown member",
        ),
        (
            machine(
                r#"{"field": "status", "initial": "a", "transitions": [{"command": "Delete", "from": ["a"], "to": "b"}]}"#,
            ),
            "machines/users.json",
            "at /transitions/0/command",
        ),
        (
            machine(
                r#"{"field": "status", "initial": "a", "transitions": [{"command": "go", "from": ["a"], "to": "b"}]}"#,
            ),
            "machines/users.json",
            "at /transitions/0/command",
        ),
        (
            machine(
                r#"{"field": "status", "initial": "a", "transitions": [{"command": "Go", "from": ["a"], "to": "b"}, {"command": "Go", "from": ["c", "a"], "to": "d"}]}"#,
            ),
            "machines/users.json",
            "at /transitions/1/from/1: Go already leaves \"a\" in /transitions/0",
        ),
        (
            machine(
                r#"{"field": "status", "initial": "a", "transitions": [{"command": "Go", "from": [], "to": "b"}]}"#,
            ),
            "machines/users.json",
            "at /transitions/0/from",
        ),
        (
            machine(
                r#"{"field": "status", "initial": "a", "transitions": [{"command": "Go", "from": ["a"]}]}"#,
            ),
            "machines/users.json",
            "at /transitions/0/to",
        ),
        (
            machine(
                r#"{"field": "status", "initial": "a", "transitions": [{"command": "Go", "from": ["a"], "to": "b", "after": "P1M"}]}"#,
            ),
            "machines/users.json",
            "at /transitions/0/after: \"P1M\" is not a duration this server takes (years and months",
        ),
        (
            machine(
                r#"{"field": "status", "initial": "a", "transitions": [{"command": "Go", "from": ["a"], "to": "b", "after": 900}]}"#,
            ),
            "machines/users.json",
            "at /transitions/0/after",
        ),
        (
            machine(
                r#"{"field": "status", "initial": "a", "transitions": [{"command": "Go", "from": ["a"], "to": "b", "event": "UserCreated"}]}"#,
            ),
            "machines/users.json",
            "at /transitions/0/event",
        ),
        (
            machine(
                r#"{"field": "status", "initial": "a", "transitions": [{"command": "Go", "from": ["a"], "to": "b", "after": "PT1M"}, {"command": "Go", "from": ["b"], "to": "c", "after": "PT2M"}]}"#,
            ),
            "machines/users.json",
            "at /transitions/1/after",
        ),
        (
            vec![
                ("resources/users.json", USERS),
                ("machines/people.json", MACHINE),
            ],
            "machines/people.json",
            "the types are users",
        ),
        (
            rules("{}"),
            "rules/users.json",
            "at the root: rules are a list",
        ),
        (
            rules(
                r#"[{"code": "ok", "message": "m", "on": ["Create"], "require": {"and": [true, {"frobnicate": [1]}]}}]"#,
            ),
            "rules/users.json",
            "at /0/require/and/1/frobnicate: unknown operator \"frobnicate\"",
        ),
        (
            rules(
                r#"[{"code": "ok", "message": "m", "on": ["Create"], "require": true}, {"code": "ok2", "message": "m", "on": ["Approve"], "require": true}]"#,
            ),
            "rules/users.json",
            "at /1/on/0: \"Approve\" is not a command of this type",
        ),
        (
            rules(r#"[{"code": "ok", "message": "m", "on": [], "require": true}]"#),
            "rules/users.json",
            "at /0/on",
        ),
        (
            rules(r#"[{"code": "not_found", "message": "m", "on": ["Create"], "require": true}]"#),
            "rules/users.json",
            "at /0/code",
        ),
        (
            rules(r#"[{"code": "Bad Code", "message": "m", "on": ["Create"], "require": true}]"#),
            "rules/users.json",
            "at /0/code",
        ),
        (
            rules(r#"[{"code": "ok", "message": "m", "on": ["Create"]}]"#),
            "rules/users.json",
            "at /0/require: `require` is missing",
        ),
        (
            rules(
                r#"[{"code": "ok", "message": "m", "on": ["Create"], "require": {"==": [1, 1], "!=": [1, 2]}}]"#,
            ),
            "rules/users.json",
            "at /0/require: an operation is an object of one member",
        ),
        (
            rules(
                r#"[{"code": "ok", "message": "m", "on": ["Create"], "require": true, "when": 1}]"#,
            ),
            "rules/users.json",
            "at /0/when",
        ),
        (
            vec![
                ("resources/users.json", USERS),
                ("rules/users.json", "[\n  {\"code\": }\n]"),
            ],
            "rules/users.json",
            "line 2",
        ),
    ];
    for (files, names, says) in cases {
        let (_dir, error) = refusal(&files);
        assert!(error.contains(names), "{files:?}: {error}");
        assert!(error.contains(says), "{files:?}: {error}");
    }
    // A rule may name a machine's command only when the machine declares it.
    let (_dir, error) = refusal(&[
        ("resources/users.json", USERS),
        (
            "rules/users.json",
            r#"[{"code": "ok", "message": "m", "on": ["Activate"], "require": true}]"#,
        ),
    ]);
    assert!(error.contains("at /0/on/0"), "{error}");
}

/// The machine's timers process: a create schedules the timers of the initial state and
/// cancels the others (none can be pending, but earlier builds recorded those cancels, and
/// a replay of their journals compares timers); leaving a state with an `after` cancels
/// its timer.
#[test]
fn a_create_schedules_the_timers_of_its_state_and_cancels_the_others() {
    // This file's machine, with a second `after` from a state a create never starts at.
    let dir = TempDir::new("write");
    dir.write("resources/users.json", USERS);
    let machine = MACHINE.replace(
        r#"{"command": "Archive", "from": ["suspended"], "to": "archived"}"#,
        r#"{"command": "Archive", "from": ["suspended"], "to": "archived", "after": "P30D"}"#,
    );
    assert_ne!(machine, MACHINE);
    dir.write("machines/users.json", &machine);
    let set = load(dir.path()).unwrap();
    let processes = set.processes();
    let [timers] = processes.as_slice() else {
        panic!("one timers process, not {}", processes.len());
    };
    let react = |event_type: &str, data: Value| {
        let data = serde_json::to_vec(&data).unwrap();
        let event = writ_domain::EventView {
            event_type,
            data: &data,
            stream: "users-u1",
            version: 1,
            position: 1,
            index: 0,
            command_id: Uuid::from_u128(1),
            correlation_id: Uuid::from_u128(1),
            recorded_at_ms: 1_800_000_000_000,
        };
        let mut out = writ_domain::Reactions::new();
        timers.react(&event, &mut out).unwrap();
        let scheduled: Vec<String> = out.scheduled().map(|(key, ..)| key.to_owned()).collect();
        let cancelled: Vec<String> = out.cancelled().map(str::to_owned).collect();
        (scheduled, cancelled)
    };
    let created = react(
        "UserCreated",
        json!({"document": {"name": "U", "email": "u@example.com", "status": "pending"}}),
    );
    assert_eq!(
        created,
        (vec!["u1/Expire".to_owned()], vec!["u1/Archive".to_owned()])
    );
    let activated = react(
        "UserActivated",
        json!({"command": "Activate", "from": "pending", "to": "active"}),
    );
    assert_eq!(
        activated,
        (
            vec![],
            vec!["u1/Archive".to_owned(), "u1/Expire".to_owned()]
        )
    );
    let suspended = react(
        "UserSuspended",
        json!({"command": "Suspend", "from": "active", "to": "suspended"}),
    );
    assert_eq!(
        suspended,
        (vec!["u1/Archive".to_owned()], vec!["u1/Expire".to_owned()])
    );
    let deleted = react("UserDeleted", json!({}));
    assert_eq!(
        deleted,
        (
            vec![],
            vec!["u1/Archive".to_owned(), "u1/Expire".to_owned()]
        )
    );
}
