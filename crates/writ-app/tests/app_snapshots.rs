//! `writ serve --app DIR` with snapshots: a restart over the same data loads the app's read
//! models (a type's documents, a `projections/P.js`'s tables) from the snapshots written at
//! the clean shutdown and answers the same; a projection whose source changed, or a type
//! whose schema and migration changed, ignores its snapshot as other code and replays from
//! position 1, answering per the new files; a damaged snapshot is ignored and the read
//! model replayed.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

mod support;
use support::AppDir;

use serde_json::{Map, Value, json};
use uuid::Uuid;
use writ_app::{App, Config, Module, Started, Store};
use writ_engine::Submitted;
use writ_log::storage::SimStorage;
use writ_query::{ModelStatus, SnapshotOptions};

const WAIT: Duration = Duration::from_secs(30);

const NOTES: &str = r#"{
    "title": "Note", "type": "object", "required": ["text"],
    "properties": {"text": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}},
    "additionalProperties": false
}"#;

/// `text` becomes `body`, with its length.
const NOTES_V2: &str = r#"{
    "title": "Note", "type": "object", "required": ["body", "chars"],
    "x-writ-version": 2,
    "properties": {"body": {"type": "string"}, "chars": {"type": "integer"},
                   "tags": {"type": "array", "items": {"type": "string"}}},
    "additionalProperties": false
}"#;

const MIGRATION: &str = r#"function document(doc, fromVersion) {
  const {text, ...rest} = doc;
  return {...rest, body: text, chars: text.length};
}
function patch(ops, fromVersion) {
  return ops.flatMap((op) => op.path !== '/text' ? [op] : [
    {op: 'replace', path: '/body', value: op.value},
    {op: 'replace', path: '/chars', value: op.value.length},
  ]);
}
"#;

/// Notes per tag, and the totals; `SCALE` words per word.
const STATS: &str = r#"const SCALE = 1;
function NoteCreated(event, ctx) {
  const doc = event.data.document;
  const words = String(doc.text === undefined ? doc.body : doc.text).split(' ').length * SCALE;
  ctx.put('notes', event.id, {words, tags: doc.tags || []});
  for (const tag of doc.tags || []) {
    const row = ctx.get('tags', tag) || {count: 0};
    ctx.put('tags', tag, {count: row.count + 1});
  }
  const total = ctx.get('totals', 'all') || {count: 0, words: 0};
  ctx.put('totals', 'all', {count: total.count + 1, words: total.words + words});
}
function NoteDeleted(event, ctx) {
  const note = ctx.get('notes', event.id);
  ctx.delete('notes', event.id);
  for (const tag of note.tags) {
    const row = ctx.get('tags', tag);
    if (row.count === 1) ctx.delete('tags', tag); else ctx.put('tags', tag, {count: row.count - 1});
  }
  const total = ctx.get('totals', 'all');
  ctx.put('totals', 'all', {count: total.count - 1, words: total.words - note.words});
}
const queries = {
  totals({}, ctx) { return ctx.get('totals', 'all'); },
  tag({name}, ctx) { return ctx.get('tags', name); },
};
"#;

/// An app directory with the notes type and the stats projection.
fn notes_app_dir() -> AppDir {
    let dir = AppDir::new("snapshots");
    dir.write("resources/notes.json", NOTES);
    dir.write("projections/stats.js", STATS);
    dir
}

/// The app of `dir` on `storage`, with snapshots (written at the clean shutdown only).
fn start(dir: &AppDir, storage: &Arc<SimStorage>) -> Started {
    start_beside(dir, storage, &[])
}

/// [`start`], serving the compiled domains `domains` beside the app (of `orders`).
fn start_beside(dir: &AppDir, storage: &Arc<SimStorage>, domains: &[&str]) -> Started {
    let mut config = Config::new(Store::Storage(storage.clone()));
    config.app = Some(dir.path().to_owned());
    config.domains = domains.iter().map(|d| (*d).to_owned()).collect();
    config.runtime.snapshots = Some(SnapshotOptions::new(storage.clone()));
    let app = App::new().module(
        Module::new::<writ_orders::Orders>()
            .process::<writ_orders::OrderFulfilment>()
            .read_model(writ_orders::read::read_model()),
    );
    let started = app.start(config).expect("starts");
    let last = started.state.engine().last_position();
    read_models(&started).blocking_wait_for(last, WAIT).unwrap();
    started
}

fn read_models(started: &Started) -> std::sync::Arc<writ_query::ReadModels> {
    std::sync::Arc::clone(&started.state.read_side().expect("a read side").models)
}

fn run(started: &Started, id: u128, command: &str, payload: Value) -> u64 {
    let payload = serde_json::to_vec(&payload).unwrap();
    let engine = started.state.engine();
    match engine
        .submit(Uuid::from_u128(id), command, None, &payload)
        .unwrap()
    {
        Submitted::New(pending) => {
            let outcome = pending.blocking_outcome().unwrap();
            assert_eq!(
                outcome.state,
                writ_engine::CommandState::Succeeded,
                "{command}"
            );
        }
        Submitted::Duplicate => panic!("duplicate"),
    }
    let last = engine.last_position();
    read_models(started).blocking_wait_for(last, WAIT).unwrap();
    last
}

/// Four notes, one patched, one deleted: the position after them.
fn history(started: &Started) -> u64 {
    let note = |text: &str, tags: &[&str]| json!({"text": text, "tags": tags});
    run(
        started,
        1,
        "CreateNote",
        json!({"id": "n1", "document": note("buy milk", &["home"])}),
    );
    run(
        started,
        2,
        "CreateNote",
        json!({"id": "n2", "document": note("call the bank today", &["home", "money"])}),
    );
    run(
        started,
        3,
        "CreateNote",
        json!({"id": "n3", "document": note("ünïcode ✓ text", &[])}),
    );
    run(
        started,
        4,
        "PatchNote",
        json!({"id": "n1", "patch": [{"op": "replace", "path": "/text", "value": "buy oat milk"}]}),
    );
    run(
        started,
        5,
        "CreateNote",
        json!({"id": "n4", "document": note("gone soon", &["money"])}),
    );
    run(started, 6, "DeleteNote", json!({"id": "n4"}))
}

/// What the app's read models answer: every note, the list, and the projection's queries.
fn answers(dir: &AppDir, started: &Started) -> Value {
    let set = writ_resources::load(dir.path()).unwrap();
    let models = read_models(started);
    let snapshots = models.snapshots();
    let notes: Vec<Value> = ["n1", "n2", "n3", "n4"]
        .iter()
        .map(|id| {
            set.get(&snapshots, "notes", id).unwrap().map_or(
                Value::Null,
                |found| json!({"document": found.document, "version": found.version}),
            )
        })
        .collect();
    let list = set.list(&snapshots, "notes", &Map::new()).unwrap();
    let query = |name: &str, args: Value| {
        models
            .call(1, name, args.as_object().unwrap().clone())
            .map_or_else(|e| json!(e.to_string()), |(answer, _)| answer)
    };
    json!({
        "notes": notes,
        "list": list,
        "totals": query("totals", json!({})),
        "home": query("tag", json!({"name": "home"})),
        "money": query("tag", json!({"name": "money"})),
    })
}

fn status(started: &Started, model: &str) -> ModelStatus {
    read_models(started).status(model).expect("the read model")
}

/// Whether `status` replayed every event from position 1.
fn replayed_all(status: &ModelStatus, last: u64) -> bool {
    status.snapshots.loaded.is_none()
        && status.stats.events_applied + status.stats.events_ignored + status.stats.errors == last
}

fn setup() -> (AppDir, Arc<SimStorage>) {
    (notes_app_dir(), Arc::new(SimStorage::new()))
}

#[test]
fn a_restart_loads_both_read_models_from_their_snapshots_and_answers_the_same() {
    let (dir, storage) = setup();
    let started = start(&dir, &storage);
    let last = history(&started);
    let before = answers(&dir, &started);
    assert_eq!(before["totals"], json!({"count": 3, "words": 9}));
    assert_eq!(before["home"], json!({"count": 2}));
    assert_eq!(before["money"], json!({"count": 1}));
    assert_eq!(before["notes"][0]["document"]["text"], "buy oat milk");
    assert_eq!(before["notes"][3], Value::Null);
    drop(started);

    let started = start(&dir, &storage);
    for model in ["notes", "stats"] {
        let status = status(&started, model);
        assert_eq!(status.snapshots.loaded, Some(last), "{model}");
        assert!(status.snapshots.ignored.is_empty(), "{model}");
        assert_eq!(status.stats.events_applied, 0, "{model}: nothing replayed");
    }
    assert_eq!(answers(&dir, &started), before);

    // The loaded states go on with new events as replayed ones would.
    let more = run(
        &started,
        7,
        "CreateNote",
        json!({"id": "n5", "document": {"text": "one more", "tags": ["home"]}}),
    );
    let after = answers(&dir, &started);
    assert_eq!(after["totals"], json!({"count": 4, "words": 11}));
    assert_eq!(after["home"], json!({"count": 3}));
    assert_eq!(status(&started, "stats").stats.events_applied, 1);
    drop(started);
    let started = start(&dir, &storage);
    assert_eq!(status(&started, "notes").snapshots.loaded, Some(more));
    assert_eq!(answers(&dir, &started), after);
}

#[test]
fn a_changed_projection_source_replays_it_from_position_1() {
    let (dir, storage) = setup();
    let started = start(&dir, &storage);
    let last = history(&started);
    let before = answers(&dir, &started);
    drop(started);

    dir.write(
        "projections/stats.js",
        &STATS.replace("const SCALE = 1;", "const SCALE = 10;"),
    );
    let started = start(&dir, &storage);
    let stats = status(&started, "stats");
    assert!(replayed_all(&stats, last), "{stats:?}");
    assert_eq!(stats.snapshots.ignored.len(), 1, "{:?}", stats.snapshots);
    assert!(
        stats.snapshots.ignored[0]
            .contains("written by projection version 1, snapshot format 1, build \""),
        "other code: {:?}",
        stats.snapshots.ignored
    );
    // Answered by the new code, from every event.
    let after = answers(&dir, &started);
    assert_eq!(after["totals"], json!({"count": 3, "words": 90}));
    // The type's files did not change: its read model loaded.
    let notes = status(&started, "notes");
    assert_eq!(notes.snapshots.loaded, Some(last));
    assert_eq!(after["notes"], before["notes"]);
    assert_eq!(after["list"], before["list"]);
}

#[test]
fn a_changed_schema_and_migration_replay_the_types_read_model_from_position_1() {
    let (dir, storage) = setup();
    let started = start(&dir, &storage);
    let last = history(&started);
    drop(started);

    dir.write("resources/notes.json", NOTES_V2);
    dir.write("migrations/notes.js", MIGRATION);
    let started = start(&dir, &storage);
    // Both replay: the projection is given the type's events, upcast by the migration.
    for model in ["notes", "stats"] {
        let status = status(&started, model);
        assert!(replayed_all(&status, last), "{model}: {status:?}");
        assert!(
            status.snapshots.ignored[0].contains("build \""),
            "{model}: {:?}",
            status.snapshots.ignored
        );
    }
    let after = answers(&dir, &started);
    assert_eq!(
        after["notes"][0]["document"],
        json!({"id": "n1", "body": "buy oat milk", "chars": 12, "tags": ["home"]})
    );
    assert_eq!(after["totals"], json!({"count": 3, "words": 9}));
}

#[test]
fn a_damaged_snapshot_is_ignored_and_the_read_model_replays() {
    let (dir, storage) = setup();
    let started = start(&dir, &storage);
    let last = history(&started);
    let before = answers(&dir, &started);
    drop(started);

    for model in ["notes", "stats"] {
        let file = format!("snapshots/{model}/{last:020}.snap");
        storage.flip(Path::new(&file), 90, 2).unwrap();
    }
    let started = start(&dir, &storage);
    for model in ["notes", "stats"] {
        let status = status(&started, model);
        assert!(replayed_all(&status, last), "{model}: {status:?}");
        assert!(
            status.snapshots.ignored[0].contains("checksum"),
            "{model}: {:?}",
            status.snapshots.ignored
        );
    }
    assert_eq!(answers(&dir, &started), before);
}

#[test]
fn another_set_of_compiled_domains_beside_the_app_replays_its_projections() {
    let (dir, storage) = setup();
    let started = start_beside(&dir, &storage, &["orders"]);
    let last = history(&started);
    let before = answers(&dir, &started);
    drop(started);

    // Without orders, the orders' events would reach the projection as recorded rather
    // than upcast: its snapshot is of other code. The type's read model is not concerned.
    let started = start(&dir, &storage);
    let stats = status(&started, "stats");
    assert!(replayed_all(&stats, last), "{stats:?}");
    assert!(
        stats.snapshots.ignored[0].contains("build \""),
        "{:?}",
        stats.snapshots.ignored
    );
    assert_eq!(status(&started, "notes").snapshots.loaded, Some(last));
    assert_eq!(answers(&dir, &started), before);
}
