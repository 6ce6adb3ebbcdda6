//! `migrations/T.js` and `"x-writ-version"` through the engine: events recorded at one
//! schema version read at a later one through the migrations' steps (documents, patches,
//! handlers' patches, commands logged at an older version), the read model and the start's
//! check of live documents, a migration that throws, and bad files refused at load.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use support::{TempDir, engine, refusal, run};
use uuid::Uuid;
use writ_engine::{CommandState, Engine, Submission, Submitted};
use writ_log::storage::SimStorage;
use writ_query::{ReadModels, RuntimeOptions};
use writ_resources::{ResourceSet, load};

const V1: &str = r#"{
    "title": "User", "type": "object", "required": ["name", "email"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "email": {"type": "string", "format": "email"},
        "status": {"enum": ["pending", "approved"]}
    },
    "additionalProperties": false
}"#;

/// `name` renamed `fullName`.
const V2: &str = r#"{
    "title": "User", "type": "object", "required": ["fullName", "email"],
    "x-writ-version": 2,
    "properties": {
        "fullName": {"type": "string", "minLength": 1},
        "email": {"type": "string", "format": "email"},
        "status": {"enum": ["pending", "approved"]}
    },
    "additionalProperties": false
}"#;

/// `fullName` split into `first` and `last`.
const V3: &str = r#"{
    "title": "User", "type": "object", "required": ["first", "last", "email"],
    "x-writ-version": 3,
    "properties": {
        "first": {"type": "string", "minLength": 1},
        "last": {"type": "string"},
        "email": {"type": "string", "format": "email"},
        "status": {"enum": ["pending", "approved"]}
    },
    "additionalProperties": false
}"#;

const MIGRATIONS: &str = r#"// users: 1 -> 2 renames name to fullName; 2 -> 3 splits it.
function split(fullName) {
  const words = String(fullName).split(' ');
  return {first: words[0], last: words.slice(1).join(' ')};
}

function document(doc, fromVersion) {
  if (fromVersion === 1) {
    const {name, ...rest} = doc;
    return {...rest, fullName: name};
  }
  if (fromVersion === 2) {
    const {fullName, ...rest} = doc;
    return {...rest, ...split(fullName)};
  }
  throw new Error('no step from version ' + fromVersion);
}

function patch(ops, fromVersion) {
  return ops.flatMap((op) => {
    if (fromVersion === 1 && op.path === '/name') return [{...op, path: '/fullName'}];
    if (fromVersion === 2 && op.path === '/fullName') {
      const {first, last} = split(op.value);
      return [{op: 'replace', path: '/first', value: first}, {op: 'replace', path: '/last', value: last}];
    }
    return [op];
  });
}
"#;

/// Only the first step: enough for version 2.
const MIGRATIONS_TO_2: &str = r#"
function document(doc, fromVersion) { const {name, ...rest} = doc; return {...rest, fullName: name}; }
function patch(ops, fromVersion) {
  return ops.map((op) => op.path === '/name' ? {...op, path: '/fullName'} : op);
}
"#;

const HANDLERS: &str = r#"
function Approve(state) {
  return {event: 'UserApproved', patch: [{op: 'add', path: '/status', value: 'approved'}]};
}
"#;

fn app(schema: &str, migrations: Option<&str>) -> (TempDir, ResourceSet) {
    let dir = TempDir::new("migrations");
    dir.write("resources/users.json", schema);
    dir.write("handlers/users.js", HANDLERS);
    if let Some(migrations) = migrations {
        dir.write("migrations/users.js", migrations);
    }
    let set = load(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    (dir, set)
}

fn succeeded(status: &writ_engine::CommandStatus) -> u64 {
    assert_eq!(status.state, CommandState::Succeeded, "{status:?}");
    status.position.unwrap()
}

/// The stream's events: type, schema version, recorded schema version, data.
fn events(engine: &Engine, stream: &str) -> Vec<(String, u32, u32, Value)> {
    engine
        .read_stream(stream, 1, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|e| {
            (
                e.event_type,
                e.schema_version,
                e.recorded_schema_version,
                serde_json::from_slice(&e.data).unwrap(),
            )
        })
        .collect()
}

fn read_models(engine: &Arc<Engine>, set: &ResourceSet) -> ReadModels {
    let models = ReadModels::start(
        Arc::clone(engine) as Arc<dyn writ_query::EventSource>,
        set.read_models(),
        RuntimeOptions::default(),
    )
    .unwrap();
    models
        .blocking_wait_for(engine.last_position(), Duration::from_secs(30))
        .unwrap();
    models
}

/// Records at version 1: ann created, renamed by a patch, approved by a handler; bob
/// created, then replaced.
fn record_v1(storage: &SimStorage) {
    let (_dir, set) = app(V1, None);
    let engine = engine(&set, storage);
    let doc = |name: &str, email: &str| json!({"name": name, "email": email});
    succeeded(&run(
        &engine,
        1,
        "CreateUser",
        json!({"id": "ann", "document": doc("Ann Lee", "ann@example.com")}),
    ));
    succeeded(&run(
        &engine,
        2,
        "PatchUser",
        json!({"id": "ann", "patch": [{"op": "replace", "path": "/name", "value": "Ann Smith"}]}),
    ));
    succeeded(&run(&engine, 3, "ApproveUser", json!({"id": "ann"})));
    succeeded(&run(
        &engine,
        4,
        "CreateUser",
        json!({"id": "bob", "document": doc("Bob", "bob@example.com")}),
    ));
    succeeded(&run(
        &engine,
        5,
        "ReplaceUser",
        json!({"id": "bob", "document": doc("Bob Stone", "bob@example.com")}),
    ));
    engine.shutdown();
}

#[test]
fn events_of_version_1_read_at_version_3_through_two_steps() {
    let storage = SimStorage::new();
    record_v1(&storage);
    let (_dir, set) = app(V3, Some(MIGRATIONS));
    assert_eq!(set.types()[0].version(), 3);
    let engine = support::engine(&set, &storage);
    let ann = events(&engine, "users-ann");
    assert_eq!(
        ann,
        vec![
            (
                "UserCreated".to_owned(),
                3,
                1,
                json!({"document": {"first": "Ann", "last": "Lee", "email": "ann@example.com"}})
            ),
            (
                "UserPatched".to_owned(),
                3,
                1,
                json!({"patch": [
                    {"op": "replace", "path": "/first", "value": "Ann"},
                    {"op": "replace", "path": "/last", "value": "Smith"},
                ]})
            ),
            (
                "UserApproved".to_owned(),
                3,
                1,
                json!({"patch": [{"op": "add", "path": "/status", "value": "approved"}]})
            ),
        ]
    );
    let bob = events(&engine, "users-bob");
    assert_eq!(
        bob[1],
        (
            "UserReplaced".to_owned(),
            3,
            1,
            json!({"document": {"first": "Bob", "last": "Stone", "email": "bob@example.com"}})
        )
    );

    // The writer folds the migrated events: a patch in the new shape applies, and is
    // recorded at version 3.
    let position = succeeded(&run(
        &engine,
        10,
        "PatchUser",
        json!({"id": "ann", "patch": [{"op": "replace", "path": "/last", "value": "Jones"}]}),
    ));
    let last = events(&engine, "users-ann").pop().unwrap();
    assert_eq!((last.1, last.2), (3, 3));
    // A patch in the old shape is refused by the current schema.
    let old_shape = run(
        &engine,
        11,
        "PatchUser",
        json!({"id": "ann", "patch": [{"op": "add", "path": "/name", "value": "Ann"}]}),
    );
    assert_eq!(support::rejected(&old_shape), "schema_violation");

    // The read model has the current shape, and every live document fits.
    let models = read_models(&engine, &set);
    assert!(models.position() >= position);
    let snapshots = models.snapshots();
    let found = set.get(&snapshots, "users", "ann").unwrap().unwrap();
    assert_eq!(
        found.document,
        json!({"id": "ann", "first": "Ann", "last": "Jones", "email": "ann@example.com", "status": "approved"})
    );
    assert!(set.misfits(&snapshots).unwrap().is_empty());
    models.shutdown();
}

#[test]
fn events_of_versions_1_and_2_read_at_version_3_step_by_step() {
    let storage = SimStorage::new();
    record_v1(&storage);
    {
        let (_dir, set) = app(V2, Some(MIGRATIONS_TO_2));
        let engine = support::engine(&set, &storage);
        succeeded(&run(
            &engine,
            20,
            "PatchUser",
            json!({"id": "bob", "patch": [{"op": "replace", "path": "/fullName", "value": "Robert Stone"}]}),
        ));
        let last = events(&engine, "users-bob").pop().unwrap();
        assert_eq!((last.1, last.2), (2, 2));
        engine.shutdown();
    }
    let (_dir, set) = app(V3, Some(MIGRATIONS));
    let engine = support::engine(&set, &storage);
    let bob = events(&engine, "users-bob");
    assert_eq!(
        bob.iter().map(|e| (e.1, e.2)).collect::<Vec<_>>(),
        [(3, 1), (3, 1), (3, 2)]
    );
    assert_eq!(
        bob[2].3,
        json!({"patch": [
            {"op": "replace", "path": "/first", "value": "Robert"},
            {"op": "replace", "path": "/last", "value": "Stone"},
        ]})
    );
    let models = read_models(&engine, &set);
    let found = set
        .get(&models.snapshots(), "users", "bob")
        .unwrap()
        .unwrap();
    assert_eq!(
        found.document,
        json!({"id": "bob", "first": "Robert", "last": "Stone", "email": "bob@example.com"})
    );
    models.shutdown();
}

#[test]
fn a_command_logged_at_an_older_version_is_migrated_before_it_is_checked() {
    let (_dir, set) = app(V3, Some(MIGRATIONS));
    let engine = engine(&set, &SimStorage::new());
    let submit = |id: u128, command: &str, version: u32, payload: Value| {
        let payload = payload.to_string();
        let Submitted::New(pending) = engine
            .submit_command(&Submission {
                id: Uuid::from_u128(id),
                command,
                version: Some(version),
                payload: payload.as_bytes(),
                expected_version: None,
            })
            .unwrap()
        else {
            panic!("a fresh id")
        };
        pending.blocking_outcome().unwrap()
    };
    succeeded(&submit(
        1,
        "CreateUser",
        1,
        json!({"id": "cy", "document": {"name": "Cy Young", "email": "cy@example.com"}}),
    ));
    succeeded(&submit(
        2,
        "PatchUser",
        2,
        json!({"id": "cy", "patch": [{"op": "replace", "path": "/fullName", "value": "Cy Old"}]}),
    ));
    let cy = events(&engine, "users-cy");
    assert_eq!(
        cy[0].3,
        json!({"document": {"first": "Cy", "last": "Young", "email": "cy@example.com"}})
    );
    assert_eq!((cy[1].1, cy[1].2), (3, 3));
    // A version this build does not have is refused.
    let refused = engine.submit_command(&Submission {
        id: Uuid::from_u128(3),
        command: "CreateUser",
        version: Some(4),
        payload: br#"{"id": "dee", "document": {}}"#,
        expected_version: None,
    });
    assert!(refused.is_err());
}

#[test]
fn documents_that_do_not_fit_without_a_migration_are_reported() {
    let storage = SimStorage::new();
    record_v1(&storage);
    let (_dir, set) = app(V2, None);
    let engine = support::engine(&set, &storage);
    let models = read_models(&engine, &set);
    let misfits = set.misfits(&models.snapshots()).unwrap();
    assert_eq!(misfits.listed.len(), 2, "{misfits}");
    assert_eq!(misfits.more, 0);
    let ann = &misfits.listed[0];
    assert_eq!((ann.type_name.as_str(), ann.id.as_str()), ("users", "ann"));
    assert_eq!((ann.recorded_version, ann.version), (1, 2));
    let pointers: Vec<&str> = ann.violations.iter().map(|v| v.pointer.as_str()).collect();
    assert!(pointers.contains(&"/fullName"), "{misfits}");
    let report = misfits.to_string();
    assert!(report.contains("users \"ann\""), "{report}");
    assert!(report.contains("users \"bob\""), "{report}");
    assert!(report.contains("recorded at schema version 1"), "{report}");
    models.shutdown();
}

#[test]
fn a_migration_that_throws_or_answers_nonsense_is_an_error_naming_it() {
    let storage = SimStorage::new();
    record_v1(&storage);
    let throws = r#"
function document(doc, fromVersion) { return doc.missing.field; }
function patch(ops, fromVersion) { return ops; }
"#;
    let (_dir, set) = app(V2, Some(throws));
    let engine = support::engine(&set, &storage);
    let error = engine
        .read_stream("users-ann", 1, usize::MAX)
        .unwrap_err()
        .to_string();
    assert!(error.contains("migrations/users.js"), "{error}");
    assert!(error.contains("document(doc, 1)"), "{error}");
    assert!(error.contains("TypeError"), "{error}");
    assert!(error.contains("position 1"), "{error}");
    // A command on the document fails: its stream does not read.
    let status = run(
        &engine,
        30,
        "PatchUser",
        json!({"id": "ann", "patch": [{"op": "add", "path": "/status", "value": "pending"}]}),
    );
    assert!(
        matches!(&status.state, CommandState::Failed { message } if message.contains("migrations/users.js")),
        "{status:?}"
    );
    engine.shutdown();

    let loops = r#"
function document(doc) { return doc; }
function patch(ops) { for (;;) {} }
"#;
    let (_dir, set) = app(V2, Some(loops));
    let engine = support::engine(&set, &storage);
    let error = engine
        .read_stream("users-ann", 1, usize::MAX)
        .unwrap_err()
        .to_string();
    assert!(error.contains("patch(ops, 1)"), "{error}");
    assert!(error.contains("step limit"), "{error}");
    engine.shutdown();

    let nonsense = r#"
function document(doc) { return [doc]; }
function patch(ops) { return ops; }
"#;
    let (_dir, set) = app(V2, Some(nonsense));
    let engine = support::engine(&set, &storage);
    let error = engine
        .read_stream("users-bob", 1, usize::MAX)
        .unwrap_err()
        .to_string();
    assert!(error.contains("not a document"), "{error}");
}

#[test]
fn bad_versions_and_migrations_are_refused_naming_the_file_and_the_place() {
    let v2 = V2;
    // The files, what the message names, what it says.
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            vec![(
                "resources/users.json",
                r#"{"title": "User", "type": "object", "x-writ-version": "2"}"#,
            )],
            "resources/users.json",
            "at /x-writ-version: the schema's version is an integer",
        ),
        (
            vec![(
                "resources/users.json",
                r#"{"title": "User", "type": "object", "x-writ-version": 0}"#,
            )],
            "resources/users.json",
            "at /x-writ-version",
        ),
        (
            vec![(
                "resources/users.json",
                r#"{"title": "User", "type": "object", "x-writ-version": 1.5}"#,
            )],
            "resources/users.json",
            "at /x-writ-version",
        ),
        (
            vec![(
                "resources/users.json",
                r#"{"title": "User", "type": "object", "x-writ-version": 101}"#,
            )],
            "resources/users.json",
            "from 1 to 100",
        ),
        (
            vec![
                ("resources/users.json", V1),
                ("migrations/users.js", MIGRATIONS),
            ],
            "migrations/users.js",
            "nothing to migrate",
        ),
        (
            vec![
                ("resources/users.json", v2),
                (
                    "migrations/users.js",
                    "function document(doc) { return doc; }",
                ),
            ],
            "migrations/users.js",
            "no function patch",
        ),
        (
            vec![
                ("resources/users.json", v2),
                (
                    "migrations/users.js",
                    "function document(doc) {\n  return ;;(\n}",
                ),
            ],
            "migrations/users.js:",
            "SyntaxError",
        ),
        (
            vec![
                ("resources/users.json", v2),
                ("migrations/people.js", MIGRATIONS_TO_2),
            ],
            "migrations/people.js",
            "the types are users",
        ),
        (
            vec![
                ("resources/users.json", v2),
                (
                    "migrations/users.js",
                    "throw new Error('at the top');\nfunction document(d) { return d; }\nfunction patch(o) { return o; }",
                ),
            ],
            "migrations/users.js",
            "at the top",
        ),
    ];
    for (files, names, says) in cases {
        let (_dir, error) = refusal(&files);
        assert!(error.contains(names), "{files:?}: {error}");
        assert!(error.contains(says), "{files:?}: {error}");
    }
}

#[test]
fn an_event_of_a_newer_version_than_the_schemas_is_refused_when_read() {
    // x-writ-version went down: version 3 recorded, version 2 served.
    let storage = SimStorage::new();
    {
        let (_dir, set) = app(V3, Some(MIGRATIONS));
        let engine = support::engine(&set, &storage);
        succeeded(&run(
            &engine,
            1,
            "CreateUser",
            json!({"id": "ann", "document": {"first": "Ann", "last": "Lee", "email": "ann@example.com"}}),
        ));
        engine.shutdown();
    }
    let (_dir, set) = app(V2, Some(MIGRATIONS_TO_2));
    let engine = support::engine(&set, &storage);
    let error = engine
        .read_stream("users-ann", 1, usize::MAX)
        .unwrap_err()
        .to_string();
    assert!(error.contains("schema version 3"), "{error}");
    assert!(error.contains("a newer build recorded it"), "{error}");
}
