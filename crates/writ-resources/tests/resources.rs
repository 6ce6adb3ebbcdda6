//! Resource types through the real engine (its single writer, its log on in-memory
//! storage): the commands' outcomes in the contract's order, the events they record,
//! uniqueness under concurrent creators and across a restart, and the read model.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use writ_domain::CommandError;
use writ_engine::{CommandState, CommandStatus, SubmitError};
use writ_log::storage::SimStorage;
use writ_query::{ReadModels, RuntimeOptions};
use writ_resources::{ResourceSet, load};

use support::{TempDir, engine, refusal, rejected, run, stream, submit, user};

const USERS: &str = r#"{
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "User",
    "type": "object",
    "required": ["name", "email"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "email": {"type": "string", "format": "email"},
        "age": {"type": "integer", "minimum": 0}
    },
    "additionalProperties": false,
    "x-writ-unique": ["email"]
}"#;

fn users() -> (TempDir, ResourceSet) {
    let dir = TempDir::new("users");
    dir.write("resources/users.json", USERS);
    let set = load(dir.path()).unwrap();
    (dir, set)
}

#[test]
fn crud_records_the_contracts_events_and_refuses_in_its_order() {
    let (_dir, set) = users();
    let engine = engine(&set, &SimStorage::new());
    let ann = user("Ann", "ann@example.com");
    let created = run(
        &engine,
        1,
        "CreateUser",
        json!({"id": "u1", "document": ann}),
    );
    assert_eq!(created.state, CommandState::Succeeded);
    assert_eq!(created.events[0].stream, "users-u1");
    assert_eq!(created.events[0].event_type, "UserCreated");
    // The claim of the email is in the same command, on a stream of its own.
    assert_eq!(created.events[1].event_type, "UserUniqueClaimed");
    assert!(created.events[1].stream.starts_with("users~email~"));

    let again = run(
        &engine,
        2,
        "CreateUser",
        json!({"id": "u1", "document": ann}),
    );
    assert_eq!(rejected(&again), "exists");
    let missing = run(
        &engine,
        3,
        "ReplaceUser",
        json!({"id": "u2", "document": ann}),
    );
    assert_eq!(rejected(&missing), "not_found");
    for (n, command) in [(4, "PatchUser"), (5, "DeleteUser")] {
        let payload = if command == "PatchUser" {
            json!({"id": "nobody", "patch": []})
        } else {
            json!({"id": "nobody"})
        };
        assert_eq!(rejected(&run(&engine, n, command, payload)), "not_found");
    }
    // wrong_expected_version comes first, before exists.
    let stale = submit(
        &engine,
        6,
        "CreateUser",
        json!({"id": "u1", "document": ann}),
        Some(0),
    )
    .unwrap();
    assert_eq!(rejected(&stale), "wrong_expected_version");

    let replaced = submit(
        &engine,
        7,
        "ReplaceUser",
        json!({"id": "u1", "document": {"name": "Ann B", "email": "ann@example.com", "age": 40}}),
        Some(1),
    )
    .unwrap();
    assert_eq!(replaced.state, CommandState::Succeeded);
    // The email did not change: no claim.
    assert_eq!(replaced.events.len(), 1);

    let patched = run(
        &engine,
        8,
        "PatchUser",
        json!({"id": "u1", "patch": [{"op": "replace", "path": "/age", "value": 41}]}),
    );
    assert_eq!(patched.state, CommandState::Succeeded);
    let merged = run(
        &engine,
        9,
        "PatchUser",
        json!({"id": "u1", "mergePatch": {"name": "Ann C", "age": null}}),
    );
    assert_eq!(merged.state, CommandState::Succeeded);
    let events = stream(&engine, "users-u1");
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        ["UserCreated", "UserReplaced", "UserPatched", "UserPatched"]
    );
    assert_eq!(events[0].1, json!({"document": ann}));
    // A merge patch is recorded as the RFC 6902 operations it applied.
    let mut ops = events[3].1["patch"].as_array().unwrap().clone();
    ops.sort_by_key(|op| op["path"].as_str().unwrap().to_owned());
    assert_eq!(
        ops,
        [
            json!({"op": "remove", "path": "/age"}),
            json!({"op": "replace", "path": "/name", "value": "Ann C"})
        ]
    );

    // A patch whose result breaks the schema, and one that does not apply.
    let broken = run(
        &engine,
        10,
        "PatchUser",
        json!({"id": "u1", "patch": [{"op": "replace", "path": "/email", "value": "not-an-email"}]}),
    );
    assert_eq!(rejected(&broken), "schema_violation");
    let CommandState::Rejected { details, .. } = &broken.state else {
        unreachable!()
    };
    assert_eq!(details["errors"][0]["pointer"], "/email");
    let removed = run(
        &engine,
        11,
        "PatchUser",
        json!({"id": "u1", "mergePatch": {"name": null}}),
    );
    assert_eq!(rejected(&removed), "schema_violation");
    let failing = run(
        &engine,
        12,
        "PatchUser",
        json!({"id": "u1", "patch": [{"op": "test", "path": "/name", "value": "Bob"}]}),
    );
    assert_eq!(rejected(&failing), "patch_failed");

    // Delete, then create the same id again, with the same email.
    let deleted = run(&engine, 13, "DeleteUser", json!({"id": "u1"}));
    assert_eq!(deleted.state, CommandState::Succeeded);
    assert_eq!(deleted.events[0].event_type, "UserDeleted");
    assert_eq!(deleted.events[1].event_type, "UserUniqueReleased");
    let gone = run(&engine, 14, "DeleteUser", json!({"id": "u1"}));
    assert_eq!(rejected(&gone), "not_found");
    let reborn = run(
        &engine,
        15,
        "CreateUser",
        json!({"id": "u1", "document": ann}),
    );
    assert_eq!(reborn.state, CommandState::Succeeded);
    assert_eq!(reborn.events[0].version, 6);
}

#[test]
fn documents_that_break_the_schema_are_refused_before_anything_is_logged() {
    let (_dir, set) = users();
    let engine = engine(&set, &SimStorage::new());
    let violations = |payload: Value| match submit(&engine, 1, "CreateUser", payload, None) {
        Err(SubmitError::Invalid(CommandError::SchemaViolation { violations, .. })) => violations
            .into_iter()
            .map(|v| v.pointer)
            .collect::<Vec<_>>(),
        other => panic!("expected a schema violation, got {other:?}"),
    };
    assert_eq!(
        violations(json!({"id": "u1", "document": {"name": "Ann"}})),
        ["/email"]
    );
    assert_eq!(
        violations(json!({"id": "u1", "document": {"name": "Ann", "email": "not-an-email"}})),
        ["/email"]
    );
    let mut both =
        violations(json!({"id": "u1", "document": {"name": "", "email": "a@b.c", "age": -1}}));
    both.sort();
    assert_eq!(both, ["/age", "/name"]);
    assert_eq!(
        violations(json!({"id": "u1", "document": {"id": "u1", "name": "A", "email": "a@b.c"}})),
        ["/id"]
    );
    for (payload, expected) in [
        (json!({"document": user("A", "a@b.c")}), "`id` is missing"),
        (
            json!({"id": "../x", "document": user("A", "a@b.c")}),
            "`id`",
        ),
        (json!({"id": "u1"}), "`document` is missing"),
        (
            json!({"id": "u1", "document": user("A", "a@b.c"), "x": 1}),
            "unknown field",
        ),
    ] {
        match submit(&engine, 2, "CreateUser", payload, None) {
            Err(SubmitError::Invalid(CommandError::InvalidPayload { detail, .. })) => {
                assert!(detail.contains(expected), "{detail}");
            }
            other => panic!("expected an invalid payload, got {other:?}"),
        }
    }
    match submit(
        &engine,
        3,
        "PatchUser",
        json!({"id": "u1", "patch": [{"op": "jump"}]}),
        None,
    ) {
        Err(SubmitError::Invalid(CommandError::InvalidPayload { detail, .. })) => {
            assert!(detail.contains("RFC 6902"), "{detail}");
        }
        other => panic!("expected an invalid payload, got {other:?}"),
    }
    assert_eq!(engine.last_position(), 0, "nothing was logged");
}

#[test]
fn of_32_concurrent_creators_of_one_email_exactly_one_succeeds() {
    let (_dir, set) = users();
    let engine = engine(&set, &SimStorage::new());
    let outcomes: Vec<CommandStatus> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..32u128)
            .map(|n| {
                let engine = Arc::clone(&engine);
                scope.spawn(move || {
                    run(
                        &engine,
                        100 + n,
                        "CreateUser",
                        json!({"id": format!("u{n}"), "document": user("Same", "same@example.com")}),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let succeeded = outcomes
        .iter()
        .filter(|s| s.state == CommandState::Succeeded)
        .count();
    assert_eq!(succeeded, 1);
    for status in outcomes
        .iter()
        .filter(|s| s.state != CommandState::Succeeded)
    {
        assert_eq!(rejected(status), "not_unique");
    }
}

#[test]
fn uniqueness_follows_changes_and_survives_a_restart() {
    let (_dir, set) = users();
    let storage = SimStorage::new();
    let first = engine(&set, &storage);
    run(
        &first,
        1,
        "CreateUser",
        json!({"id": "ann", "document": user("Ann", "ann@example.com")}),
    );
    run(
        &first,
        2,
        "CreateUser",
        json!({"id": "bob", "document": user("Bob", "bob@example.com")}),
    );
    // Bob cannot take Ann's email, by a replace or a patch.
    let taken = run(
        &first,
        3,
        "ReplaceUser",
        json!({"id": "bob", "document": user("Bob", "ann@example.com")}),
    );
    assert_eq!(rejected(&taken), "not_unique");
    let CommandState::Rejected { details, .. } = &taken.state else {
        unreachable!()
    };
    assert_eq!(details["heldBy"], "ann");
    // Ann moves to a new address: the old one is free for Bob.
    let moved = run(
        &first,
        4,
        "PatchUser",
        json!({"id": "ann", "mergePatch": {"email": "ann@new.example"}}),
    );
    assert_eq!(moved.state, CommandState::Succeeded);
    let types: Vec<&str> = moved.events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        ["UserPatched", "UserUniqueReleased", "UserUniqueClaimed"]
    );
    first.shutdown();

    // A new engine on the same log: claims are read back from it.
    let second = engine(&set, &storage);
    let free = run(
        &second,
        5,
        "PatchUser",
        json!({"id": "bob", "patch": [{"op": "replace", "path": "/email", "value": "ann@example.com"}]}),
    );
    assert_eq!(free.state, CommandState::Succeeded);
    let taken = run(
        &second,
        6,
        "CreateUser",
        json!({"id": "cat", "document": user("Cat", "ann@new.example")}),
    );
    assert_eq!(rejected(&taken), "not_unique");
    let taken = run(
        &second,
        7,
        "CreateUser",
        json!({"id": "cat", "document": user("Cat", "ann@example.com")}),
    );
    assert_eq!(rejected(&taken), "not_unique");
    // The documents survived too.
    let ann = run(
        &second,
        8,
        "CreateUser",
        json!({"id": "ann", "document": user("Ann", "x@example.com")}),
    );
    assert_eq!(rejected(&ann), "exists");
    second.shutdown();
}

#[test]
fn the_read_model_lists_live_documents_oldest_first_by_cursor() {
    let (_dir, set) = users();
    let engine = engine(&set, &SimStorage::new());
    for n in 0..5u128 {
        run(
            &engine,
            n + 1,
            "CreateUser",
            json!({"id": format!("u{n}"), "document": user("U", &format!("u{n}@example.com"))}),
        );
    }
    run(&engine, 10, "DeleteUser", json!({"id": "u1"}));
    let last = run(
        &engine,
        11,
        "PatchUser",
        json!({"id": "u3", "mergePatch": {"age": 3}}),
    );
    let models = ReadModels::start(
        Arc::clone(&engine) as Arc<dyn writ_query::EventSource>,
        set.read_models(),
        RuntimeOptions::default(),
    )
    .unwrap();
    models
        .blocking_wait_for(last.position.unwrap(), Duration::from_secs(30))
        .unwrap();
    let snapshots = models.snapshots();
    let found = set.get(&snapshots, "users", "u3").unwrap().unwrap();
    assert_eq!(
        found.document,
        json!({"id": "u3", "name": "U", "email": "u3@example.com", "age": 3})
    );
    assert_eq!(found.version, 2);
    assert_eq!(set.get(&snapshots, "users", "u1").unwrap(), None);
    let args = |value: Value| value.as_object().unwrap().clone();
    let page = set
        .list(&snapshots, "users", &args(json!({"limit": "2"})))
        .unwrap();
    let ids = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&page), ["u0", "u2"]);
    let cursor = page["cursor"].as_str().unwrap();
    let next = set
        .list(
            &snapshots,
            "users",
            &args(json!({"limit": "2", "cursor": cursor})),
        )
        .unwrap();
    assert_eq!(ids(&next), ["u3", "u4"]);
    assert_eq!(next["cursor"], Value::Null);
    let error = set
        .list(&snapshots, "users", &args(json!({"limit": "1001"})))
        .unwrap_err();
    assert_eq!(error.code(), "bad_argument");
    models.shutdown();
}

#[test]
fn a_bad_app_directory_is_refused_naming_the_file_and_the_place() {
    let ok = USERS;
    /// Files of the directory, what the message names, what it says.
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            vec![("resources/Users.json", ok)],
            "resources/Users.json",
            "not a type name",
        ),
        (
            vec![("resources/user-s.json", ok)],
            "resources/user-s.json",
            "no hyphen",
        ),
        (
            vec![("resources/update.json", ok)],
            "resources/update.json",
            "reserved",
        ),
        (
            vec![("resources/users.yaml", ok)],
            "resources/users.yaml",
            "T.json",
        ),
        (
            vec![("resources/users.json", "{\n  \"title\": ,\n}")],
            "resources/users.json",
            "line 2",
        ),
        (
            vec![(
                "resources/users.json",
                r#"{"title": "User", "type": "object", "properties": {"age": {"type": "integr"}}}"#,
            )],
            "resources/users.json",
            "/properties/age/type",
        ),
        (
            vec![("resources/users.json", r#"{"type": "object"}"#)],
            "resources/users.json",
            "at /title: a `title` is required",
        ),
        (
            vec![(
                "resources/users.json",
                r#"{"title": "user list", "type": "object"}"#,
            )],
            "resources/users.json",
            "at /title",
        ),
        (
            vec![("resources/users.json", r#"{"title": "User"}"#)],
            "resources/users.json",
            "at /type",
        ),
        (
            vec![(
                "resources/users.json",
                r#"{"title": "User", "type": "object", "properties": {"a": {}}, "x-writ-unique": ["email"]}"#,
            )],
            "resources/users.json",
            "at /x-writ-unique/0: \"email\" is not a top-level property",
        ),
        (
            vec![(
                "resources/users.json",
                r#"{"title": "User", "type": "object", "properties": {"a": {"type": "string", "format": "emial"}}}"#,
            )],
            "resources/users.json",
            "does not compile",
        ),
        (
            vec![(
                "resources/users.json",
                r#"{"$schema": "http://json-schema.org/draft-07/schema#", "title": "User", "type": "object"}"#,
            )],
            "resources/users.json",
            "at /$schema",
        ),
        (
            vec![(
                "resources/users.json",
                r#"{"title": "User", "type": "object", "properties": {"id": {"type": "string"}}}"#,
            )],
            "resources/users.json",
            "at /properties/id",
        ),
        (
            vec![("resources/users.json", ok), ("resources/people.json", ok)],
            "resources/users.json",
            "resources/people.json",
        ),
        (
            vec![
                ("resources/users.json", ok),
                ("handlers/users.js", "function ("),
            ],
            "handlers/users.js:1:",
            "SyntaxError",
        ),
        (
            vec![
                ("resources/users.json", ok),
                (
                    "projections/p.js",
                    "function UserCreated(event, ctx) {\n  ctx.put('t', ;\n}\n",
                ),
            ],
            "projections/p.js:2:",
            "SyntaxError",
        ),
        (
            vec![("resources/users.json", ok), ("migrations/users.js", "")],
            "migrations/users.js",
            "nothing to migrate",
        ),
        (vec![("README.md", "")], "", "no resource types"),
    ];
    for (files, names, says) in cases {
        let (_dir, error) = refusal(&files);
        assert!(error.contains(names), "{files:?}: {error}");
        assert!(error.contains(says), "{files:?}: {error}");
    }
}

#[test]
fn a_type_that_clashes_with_a_domain_beside_it_is_refused_naming_its_file() {
    let (_dir, set) = users();
    let neighbours =
        |names: &[&str], prefixes: &[&str], commands: &[&str]| writ_resources::Neighbours {
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            prefixes: prefixes
                .iter()
                .map(|p| ((*p).to_owned(), "other".to_owned()))
                .collect(),
            commands: commands
                .iter()
                .map(|c| ((*c).to_owned(), "other".to_owned()))
                .collect(),
        };
    assert!(
        set.check_neighbours(&neighbours(&["tickets"], &["ticket-"], &["OpenTicket"]))
            .is_ok()
    );
    for (n, p, c, says) in [
        (&["users"][..], &[][..], &[][..], "name of a domain"),
        (&[], &["user"], &[], "overlap the stream prefix \"user\""),
        (&[], &["users-x"], &[], "overlap"),
        (&[], &[], &["CreateUser"], "command CreateUser"),
    ] {
        let error = set
            .check_neighbours(&neighbours(n, p, c))
            .unwrap_err()
            .to_string();
        assert!(error.contains("resources/users.json"), "{error}");
        assert!(error.contains(says), "{error}");
    }
}
