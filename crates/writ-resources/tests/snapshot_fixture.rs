//! The snapshots of an app's read models: a type's documents and a `projections/P.js`'s
//! tables save and load back equal; damaged bytes fail without panicking; and the files
//! written by the first build of their format (`tests/fixtures/notes-format1.snap`,
//! `tests/fixtures/stats-format1.snap`) keep loading, equal to the state a replay of the
//! same events builds, or the format is bumped (and the files kept, under a test that says
//! they are ignored).
//!
//! `WRIT_WRITE_FIXTURES=1 cargo test -p writ-resources --test snapshot_fixture` writes them
//! again; never do that for a format already released.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use writ_query::snapshot::{Reader, SnapshotHeader, Writer};
use writ_query::{JournalMark, Projection, RecordedEvent, Replay};
use writ_resources::{AppFiles, ResourceSet, load_files};

const SCHEMA: &str = r#"{"title": "Note", "type": "object", "required": ["text"],
    "properties": {"text": {"type": "string"}, "tags": {"type": "array"},
                   "score": {"type": "number"}, "meta": {"type": "object"}}}"#;

const STATS: &str = r#"// Notes by tag, and the totals.
function NoteCreated(event, ctx) {
  const doc = event.data.document;
  const words = String(doc.text).split(' ').length;
  ctx.put('notes', event.id, {words, tags: doc.tags || [], score: doc.score || 0});
  for (const tag of doc.tags || []) {
    const row = ctx.get('tags', tag) || {count: 0};
    row.count += 1;
    ctx.put('tags', tag, row);
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

fn app() -> ResourceSet {
    let mut files = BTreeMap::new();
    files.insert(
        "resources/notes.json".to_owned(),
        SCHEMA.as_bytes().to_vec(),
    );
    files.insert("projections/stats.js".to_owned(), STATS.as_bytes().to_vec());
    load_files(&AppFiles::new(PathBuf::from("fixture"), files).unwrap()).unwrap()
}

/// `notes` notes created, every third patched, every fifth deleted; fixed times and ids.
fn events(notes: u64) -> Vec<RecordedEvent> {
    let mut events: Vec<RecordedEvent> = Vec::new();
    let mut push = |stream: String, event_type: &str, data: Value| {
        let position = events.len() as u64 + 1;
        let version = events.iter().filter(|e| e.stream == stream).count() as u64 + 1;
        events.push(RecordedEvent {
            position,
            stream,
            version,
            event_type: event_type.into(),
            data: serde_json::to_vec(&data).unwrap(),
            recorded_at_ms: 1_800_000_000_000 + position,
            schema_version: 1,
            recorded_schema_version: 1,
            ..RecordedEvent::default()
        });
    };
    for n in 0..notes {
        let tags: Vec<String> = (0..n % 4).map(|t| format!("tag-{t}")).collect();
        push(
            format!("notes-n{n}"),
            "NoteCreated",
            json!({"document": {
                "text": format!("note number {n} — ünïcode ✓"),
                "tags": tags,
                "score": n as f64 / 3.0,
                "meta": {"big": u64::MAX - n, "neg": -(n as i64) - 1, "deep": [[[{"x": null}]]], "ok": n % 2 == 0}
            }}),
        );
    }
    for n in (0..notes).step_by(3) {
        push(
            format!("notes-n{n}"),
            "NotePatched",
            json!({"patch": [{"op": "replace", "path": "/text", "value": format!("patched {n}")}]}),
        );
    }
    for n in (0..notes).step_by(5) {
        push(format!("notes-n{n}"), "NoteDeleted", json!({}));
    }
    events
}

fn replayed<P: Projection>(projection: P, events: &[RecordedEvent]) -> P::State {
    let mut replay = Replay::new(projection);
    replay.apply(events);
    assert_eq!(replay.stats().errors, 0, "{:?}", replay.stats().last_error);
    assert_eq!(replay.stats().parked, 0);
    replay.into_state()
}

fn saved<P: Projection>(projection: &P, state: &P::State) -> Vec<u8> {
    let mut out = Writer::new();
    projection.save(state, &mut out);
    out.into_vec()
}

fn loaded<P: Projection>(projection: &P, body: &[u8]) -> P::State {
    let mut input = Reader::new(body);
    let state = projection.load(&mut input).expect("the state loads");
    input.finish().expect("and is read whole");
    state
}

#[test]
fn documents_and_tables_load_back_equal_and_answer_the_same() {
    let set = app();
    let documents = ResourceSet::documents_projection(&set.types()[0]);
    let stats = set.projections()[0].projection();
    for notes in [0, 1, 7, 60] {
        let events = events(notes);
        let state = replayed(documents.clone(), &events);
        let back = loaded(&documents, &saved(&documents, &state));
        assert!(back == state, "{notes} notes");
        assert_eq!(back.len(), (notes - notes.div_ceil(5)) as usize);

        let tables = replayed(stats.clone(), &events);
        let back = loaded(&stats, &saved(&stats, &tables));
        assert!(back == tables, "{notes} notes");
        assert_eq!(back.get("totals", "all"), tables.get("totals", "all"));
        assert_eq!(back.len("notes"), tables.len("notes"));
        // A loaded state goes on as the replayed one does.
        let more = {
            let mut all = events.clone();
            let position = all.len() as u64 + 1;
            all.push(RecordedEvent {
                position,
                stream: "notes-late".into(),
                version: 1,
                event_type: "NoteCreated".into(),
                data: br#"{"document": {"text": "a late note", "tags": ["tag-0"]}}"#.to_vec(),
                schema_version: 1,
                recorded_schema_version: 1,
                ..RecordedEvent::default()
            });
            all
        };
        let mut resumed = Replay::resume(stats.clone(), back, events.len() as u64);
        resumed.apply(&more[events.len()..]);
        assert!(*resumed.state() == replayed(stats.clone(), &more));
    }
}

#[test]
fn damaged_bytes_fail_without_panicking() {
    let set = app();
    let documents = ResourceSet::documents_projection(&set.types()[0]);
    let stats = set.projections()[0].projection();
    let events = events(7);
    let bodies = [
        saved(&documents, &replayed(documents.clone(), &events)),
        saved(&stats, &replayed(stats.clone(), &events)),
    ];
    for body in &bodies {
        for cut in 0..body.len() {
            let mut input = Reader::new(&body[..cut]);
            let documents = documents.load(&mut input).and_then(|_| input.finish());
            let mut input = Reader::new(&body[..cut]);
            let stats = stats.load(&mut input).and_then(|_| input.finish());
            assert!(documents.is_err() && stats.is_err(), "cut at {cut}");
        }
        for at in 0..body.len() {
            for flip in [0x01, 0x20, 0x80, 0xff] {
                let mut damaged = body.clone();
                damaged[at] ^= flip;
                let _ = documents.load(&mut Reader::new(&damaged));
                let _ = stats.load(&mut Reader::new(&damaged));
            }
        }
    }
    // What the queries rely on is checked: a key out of bounds, a table of no documents,
    // keys out of order, a document without its id.
    let key = "k".repeat(writ_resources::KEY_BYTES_MAX + 1);
    for bad in [
        json_tables(&[("t", &[(&key, 0)])]),
        json_tables(&[("t", &[])]),
        json_tables(&[("t", &[("b", 0), ("a", 0)])]),
        json_tables(&[("b", &[("a", 0)]), ("a", &[("a", 0)])]),
        json_tables(&[("", &[("a", 0)])]),
    ] {
        assert!(stats.load(&mut Reader::new(&bad)).is_err());
    }
    assert!(
        stats
            .load(&mut Reader::new(&json_tables(&[("t", &[("a", 0)])])))
            .is_ok()
    );
    let mut document = Writer::new();
    document.len_prefix(1);
    document.u8(1);
    document.str("n1");
    document.u8(8); // an object
    document.len_prefix(0); // without its id
    document.varint(1);
    document.varint(1);
    assert!(
        documents
            .load(&mut Reader::new(&document.into_vec()))
            .is_err()
    );
}

/// Tables as [`Tables`](writ_resources::Tables) saves them, each document a null.
fn json_tables(tables: &[(&str, &[(&str, u8)])]) -> Vec<u8> {
    let mut out = Writer::new();
    out.len_prefix(tables.len());
    for (name, rows) in tables {
        out.str(name);
        out.len_prefix(rows.len());
        for (key, _) in *rows {
            out.str(key);
            out.u8(0);
        }
    }
    out.into_vec()
}

/// Writes (with `WRIT_WRITE_FIXTURES`) or reads the fixture `name`: the state saved in a
/// snapshot file of model `model`.
fn fixture(name: &str, model: &str, position: u64, body: &[u8]) -> (SnapshotHeader, Vec<u8>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    if std::env::var_os("WRIT_WRITE_FIXTURES").is_some() {
        let file = SnapshotHeader {
            model: model.into(),
            projection_version: 1,
            format: 1,
            build: "fixture".into(),
            position,
            journal: JournalMark([0x5a; JournalMark::BYTES]),
        }
        .encode(body);
        std::fs::write(&path, file).unwrap();
    }
    let file = std::fs::read(&path).unwrap();
    let (header, body) = SnapshotHeader::decode(&file).expect("the fixture decodes");
    assert_eq!(
        (
            header.model.as_str(),
            header.projection_version,
            header.format,
            header.build.as_str(),
            header.position
        ),
        (model, 1, 1, "fixture", position)
    );
    assert_eq!(header.journal, JournalMark([0x5a; JournalMark::BYTES]));
    let body = body.to_vec();
    (header, body)
}

#[test]
fn the_committed_snapshot_fixtures_keep_loading() {
    let set = app();
    let events = events(12);
    let position = events.len() as u64;

    let documents = ResourceSet::documents_projection(&set.types()[0]);
    assert_eq!(documents.snapshot_format(), Some(1));
    let state = replayed(documents.clone(), &events);
    let (_, body) = fixture(
        "notes-format1.snap",
        "notes",
        position,
        &saved(&documents, &state),
    );
    assert!(loaded(&documents, &body) == state);

    let stats = set.projections()[0].projection();
    assert_eq!(stats.snapshot_format(), Some(1));
    let tables = replayed(stats.clone(), &events);
    let (_, body) = fixture(
        "stats-format1.snap",
        "stats",
        position,
        &saved(&stats, &tables),
    );
    let back = loaded(&stats, &body);
    assert!(back == tables);
    assert_eq!(
        back.get("totals", "all"),
        Some(&json!({"count": 9, "words": 54}))
    );
    assert_eq!(back.get("tags", "tag-2"), Some(&json!({"count": 3})));
}

#[test]
fn the_code_tag_covers_the_files_that_determine_each_read_model() {
    let tags = |extra: &[(&str, &str)]| {
        let mut files = BTreeMap::new();
        files.insert(
            "resources/notes.json".to_owned(),
            SCHEMA.as_bytes().to_vec(),
        );
        files.insert("projections/stats.js".to_owned(), STATS.as_bytes().to_vec());
        for (path, text) in extra {
            files.insert((*path).to_owned(), text.as_bytes().to_vec());
        }
        let set = load_files(&AppFiles::new(PathBuf::from("app"), files).unwrap()).unwrap();
        let documents = ResourceSet::documents_projection(&set.types()[0]).code_tag();
        let stats = set
            .projections()
            .iter()
            .find(|p| p.name() == "stats")
            .unwrap()
            .projection()
            .code_tag();
        (documents.unwrap(), stats.unwrap())
    };
    let (documents, stats) = tags(&[]);
    assert!(
        documents.starts_with("app-") && documents.len() == 4 + 64,
        "{documents}"
    );
    assert_ne!(documents, stats);
    // The same files give the same tags.
    assert_eq!(tags(&[]), (documents.clone(), stats.clone()));
    // Rules decide commands only: neither changes.
    let rules = r#"[{"on": ["Create"], "require": {"!!": {"var": "next.text"}}, "code": "no_text", "message": "text"}]"#;
    assert_eq!(
        tags(&[("rules/notes.json", rules)]),
        (documents.clone(), stats.clone())
    );
    // Another projection beside it: neither changes.
    let other = "function NoteCreated(event, ctx) { ctx.put('a', 'b', 1); }";
    assert_eq!(
        tags(&[("projections/other.js", other)]),
        (documents.clone(), stats.clone())
    );
    // A handler (its custom events are folded): the type's changes, not the projection's.
    let handler = "function Archive(state) { return {event: 'NoteArchived', patch: [{op: 'add', path: '/archived', value: true}]}; }";
    let (with_handler, stats_beside) = tags(&[("handlers/notes.js", handler)]);
    assert_ne!(with_handler, documents);
    assert_eq!(stats_beside, stats);
}
