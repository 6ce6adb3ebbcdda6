//! `projections/P.js` over a replay of the log: tables changed by event functions, named
//! queries over them, a failing function that changes nothing, the same state from the same
//! log, and bad files refused at load with their place.

mod support;

use std::sync::Arc;

use serde_json::{Map, Value, json};
use support::{TempDir, engine, refusal, run};
use writ_log::storage::SimStorage;
use writ_query::{ReadModels, RuntimeOptions};
use writ_resources::load;

const SCHEMA: &str = r#"{"title": "User", "type": "object", "required": ["name"],
    "properties": {"name": {"type": "string"}, "team": {"type": "string"}}}"#;

const COUNTS: &str = r#"// Users per team.
function UserCreated(event, ctx) {
  const team = event.data.document.team || 'none';
  const row = ctx.get('teams', team) || {count: 0, members: []};
  row.count += 1;
  row.members.push(event.id);
  ctx.put('teams', team, row);
  ctx.put('members', event.id, {team});
  if (event.data.document.name === 'boom') {
    ctx.put('teams', 'poisoned', {count: -1});
    throw new Error('boom');
  }
}

function UserDeleted(event, ctx) {
  const member = ctx.get('members', event.id);
  const row = ctx.get('teams', member.team);
  row.count -= 1;
  row.members = row.members.filter((id) => id !== event.id);
  if (row.count === 0) ctx.delete('teams', member.team); else ctx.put('teams', member.team, row);
  ctx.delete('members', event.id);
}

const queries = {
  team({name}, ctx) { return ctx.get('teams', name); },
  sneaky({name}, ctx) { ctx.put('teams', name, {count: 99}); return 1; },
};
"#;

fn args(pairs: Value) -> Map<String, Value> {
    pairs.as_object().unwrap().clone()
}

#[test]
fn a_projection_folds_events_into_tables_and_answers_its_queries() {
    let dir = TempDir::new("projections");
    dir.write("resources/users.json", SCHEMA);
    dir.write("projections/teams.js", COUNTS);
    let set = load(dir.path()).unwrap();
    let projection = &set.projections()[0];
    assert_eq!(projection.name(), "teams");
    assert_eq!(projection.event_types(), ["UserCreated", "UserDeleted"]);
    assert_eq!(
        projection.queries(),
        [
            ("team".to_owned(), vec!["name".to_owned()]),
            ("sneaky".to_owned(), vec!["name".to_owned()])
        ]
    );
    let storage = SimStorage::new();
    let engine = engine(&set, &storage);
    let mut last = 0;
    for (n, (id, name, team)) in [
        ("u1", "Ann", "red"),
        ("u2", "Bob", "red"),
        ("u3", "boom", "blue"),
        ("u4", "Cid", "blue"),
    ]
    .into_iter()
    .enumerate()
    {
        let status = run(
            &engine,
            n as u128 + 1,
            "CreateUser",
            json!({"id": id, "document": {"name": name, "team": team}}),
        );
        last = status.position.unwrap();
    }
    last = run(&engine, 10, "DeleteUser", json!({"id": "u1"}))
        .position
        .unwrap()
        .max(last);

    // Twice from the same log: the same answers.
    let mut answers = Vec::new();
    for _ in 0..2 {
        let models = ReadModels::start(
            Arc::clone(&engine) as Arc<dyn writ_query::EventSource>,
            set.projection_read_models(),
            RuntimeOptions::default(),
        )
        .unwrap();
        models
            .blocking_wait_for(last, std::time::Duration::from_secs(30))
            .unwrap();
        let red = models
            .call(1, "team", args(json!({"name": "red"})))
            .unwrap()
            .0;
        assert_eq!(red, json!({"count": 1, "members": ["u2"]}));
        // The failing event changed nothing, not even what it put before it threw.
        let blue = models
            .call(1, "team", args(json!({"name": "blue"})))
            .unwrap()
            .0;
        assert_eq!(blue, json!({"count": 1, "members": ["u4"]}));
        assert!(matches!(
            models.call(1, "team", args(json!({"name": "poisoned"}))),
            Err(writ_query::QueryError::NotFound { .. })
        ));
        // Queries only read.
        let sneaky = models.call(1, "sneaky", args(json!({"name": "red"})));
        assert!(
            matches!(&sneaky, Err(writ_query::QueryError::Failed { detail }) if detail.contains("only read")),
            "{sneaky:?}"
        );
        answers.push((red, blue));
    }
    assert_eq!(answers[0], answers[1]);
}

#[test]
fn bad_projections_stop_the_load_naming_file_and_place() {
    let (_dir, message) = refusal(&[
        ("resources/users.json", SCHEMA),
        ("projections/Teams.js", "function UserCreated() {}"),
    ]);
    assert!(message.contains("not a read model name"), "{message}");
    let (_dir, message) = refusal(&[
        ("resources/users.json", SCHEMA),
        ("projections/users.js", "function UserCreated() {}"),
    ]);
    assert!(message.contains("name of a resource type"), "{message}");
    let (_dir, message) = refusal(&[
        ("resources/users.json", SCHEMA),
        (
            "projections/teams.js",
            "\nconst queries = {\n  team({name}) { return name +; },\n};\n",
        ),
    ]);
    assert!(message.contains("projections/teams.js:3:"), "{message}");

    let dir = TempDir::new("projections-events");
    dir.write("resources/users.json", SCHEMA);
    dir.write(
        "projections/teams.js",
        "\n\nfunction UserCreatd(event, ctx) {}\n",
    );
    let set = load(dir.path()).unwrap();
    let warnings = set.unknown_projection_events(&["UserCreated".to_owned()]);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("teams.js:3:1"), "{warnings:?}");
    assert!(warnings[0].contains("UserCreatd"), "{warnings:?}");
}

/// A bundle of an app with `handlers/` and `projections/` carries them: loaded from the
/// bundle, the type has the handler's command and the app its projection, as loaded from
/// the directory; a script's error names the file inside the bundle.
#[test]
fn handlers_and_projections_load_from_a_bundle_as_from_the_directory() {
    let dir = TempDir::new("bundle-scripts");
    dir.write("resources/users.json", SCHEMA);
    dir.write("projections/counts.js", COUNTS);
    dir.write(
        "handlers/users.js",
        "function Rename(state, payload, ctx) {\n  return {event: \"UserRenamed\", patch: [{op: 'replace', path: '/name', value: payload.name}]};\n}\n",
    );
    let from_dir = load(dir.path()).expect("the directory loads");
    let bundle = writ_resources::AppFiles::read(dir.path())
        .expect("read")
        .encode();
    let file = dir.path().join("app.bundle");
    std::fs::write(&file, &bundle).unwrap();
    let from_bundle = load(&file).expect("the bundle loads");
    let summary = |set: &writ_resources::ResourceSet| {
        (
            set.projections()
                .iter()
                .map(|p| p.name().to_owned())
                .collect::<Vec<_>>(),
            set.types()
                .iter()
                .map(|t| t.custom_commands())
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(summary(&from_bundle), summary(&from_dir));
    assert_eq!(
        summary(&from_bundle),
        (vec!["counts".to_owned()], vec![vec!["Rename".to_owned()]])
    );

    // A broken script in a bundle is named inside it.
    dir.write("projections/counts.js", "function UserCreated( {");
    let bundle = writ_resources::AppFiles::read(dir.path())
        .expect("read")
        .encode();
    std::fs::write(&file, &bundle).unwrap();
    let error = load(&file).unwrap_err().to_string();
    assert!(
        error.contains("app.bundle/projections/counts.js:") && error.contains("SyntaxError"),
        "{error}"
    );
}
