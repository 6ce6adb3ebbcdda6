//! Read model snapshots in the runtime: a start loads the newest valid one and applies
//! only the events after it; damaged ones, ones of other code and ones of another journal
//! are ignored and the read model replayed; crashes while one is written leave the one
//! before. All on `SimStorage`, the engine's and the snapshots' alike.

use std::path::Path;
use std::sync::Arc;

use writ_engine::Engine;
use writ_fixtures::read::{CountersProjection, read_model};
use writ_log::storage::{SimOp, SimStorage, Storage};
use writ_query::collections::{Row, Table};
use writ_query::snapshot::{Codec, Reader, SnapshotError, SnapshotHeader, SnapshotStore, Writer};
use writ_query::{
    ApplyError, EventSource, ModelStatus, Projection, QueryCatalog, ReadModelSpec, ReadModels,
    RecordedEvent, Replay, RuntimeOptions, SnapshotOptions,
};

mod support;

use support::{WAIT, add, create, fresh, open, populate};

/// Events per stream: a table of streams with their event counts, snapshotted.
#[derive(Debug, Clone)]
struct Streams {
    version: u32,
    /// Its [`Projection::code_tag`].
    tag: Option<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Stream {
    name: Arc<str>,
    events: u64,
    last_position: u64,
}

impl Row for Stream {
    fn key(&self) -> &str {
        &self.name
    }
}

impl Codec for Stream {
    fn save(&self, out: &mut Writer) {
        self.name.save(out);
        self.events.save(out);
        self.last_position.save(out);
    }
    fn load(input: &mut Reader<'_>) -> Result<Self, SnapshotError> {
        Ok(Self {
            name: Codec::load(input)?,
            events: Codec::load(input)?,
            last_position: Codec::load(input)?,
        })
    }
}

impl Projection for Streams {
    type State = Table<Stream>;
    type Decoded = ();

    fn name(&self) -> &'static str {
        "streams"
    }
    fn version(&self) -> u32 {
        self.version
    }
    fn event_types(&self) -> &[&'static str] {
        &[
            "CounterCreated",
            "Added",
            "Transferred",
            "CounterClosed",
            "CounterReopened",
        ]
    }
    fn initial_state(&self) -> Table<Stream> {
        Table::new()
    }
    fn decode(&self, _: &RecordedEvent) -> Result<(), ApplyError> {
        Ok(())
    }
    fn apply(
        &self,
        table: &mut Table<Stream>,
        event: &RecordedEvent,
        _: (),
    ) -> Result<(), ApplyError> {
        match table.get_mut(&event.stream) {
            Some(stream) => {
                stream.events += 1;
                stream.last_position = event.position;
            }
            None => {
                let _ = table.insert(Stream {
                    name: event.stream.as_str().into(),
                    events: 1,
                    last_position: event.position,
                });
            }
        }
        Ok(())
    }
    fn snapshot_format(&self) -> Option<u32> {
        Some(1)
    }
    fn code_tag(&self) -> Option<String> {
        self.tag.map(str::to_owned)
    }
    fn save(&self, table: &Table<Stream>, out: &mut Writer) {
        table.save(out);
    }
    fn load(&self, input: &mut Reader<'_>) -> Result<Table<Stream>, SnapshotError> {
        Table::load(input)
    }
}

fn streams(version: u32) -> ReadModelSpec {
    ReadModelSpec::new(Streams { version, tag: None }, QueryCatalog::new())
}

/// Version 1 with a code tag.
fn tagged(tag: &'static str) -> ReadModelSpec {
    ReadModelSpec::new(
        Streams {
            version: 1,
            tag: Some(tag),
        },
        QueryCatalog::new(),
    )
}

fn with_snapshots(storage: &Arc<SimStorage>, every_events: u64, build: &str) -> RuntimeOptions {
    let mut snapshots = SnapshotOptions::new(storage.clone() as Arc<dyn Storage>);
    snapshots.every_events = every_events;
    snapshots.build = build.to_owned();
    RuntimeOptions {
        snapshots: Some(snapshots),
        ..RuntimeOptions::default()
    }
}

/// Starts the read models, waits for `position`, and gives their statuses.
fn start(
    engine: &Arc<Engine>,
    specs: Vec<ReadModelSpec>,
    options: RuntimeOptions,
    position: u64,
) -> (ReadModels, Vec<ModelStatus>) {
    let models = ReadModels::start(engine.clone() as Arc<dyn EventSource>, specs, options).unwrap();
    models.blocking_wait_for(position, WAIT).unwrap();
    let statuses = models.statuses();
    (models, statuses)
}

/// The streams read model a replay from position 1 builds.
fn replayed(engine: &Engine, position: u64) -> Table<Stream> {
    let mut replay = Replay::new(Streams {
        version: 1,
        tag: None,
    });
    while replay.position() < position {
        let events = engine.read_all(replay.position() + 1, 1000).unwrap();
        replay.apply(&events);
    }
    replay.into_state()
}

fn state(models: &ReadModels) -> Table<Stream> {
    models
        .snapshots()
        .get::<Table<Stream>>("streams")
        .unwrap()
        .state
        .clone()
}

fn snapshot_files(storage: &SimStorage) -> Vec<String> {
    let mut names = storage.file_names(Path::new("snapshots/streams"));
    names.sort();
    names
}

/// The positions of the `.snap` files, oldest first.
fn snapshot_positions(storage: &SimStorage) -> Vec<u64> {
    snapshot_files(storage)
        .iter()
        .filter_map(|name| name.strip_suffix(".snap")?.parse().ok())
        .collect()
}

/// An engine with `counters` counters' history, written while read models with
/// snapshots every `every` events follow it, then shut down (which writes one at the
/// end).
fn history(storage: &Arc<SimStorage>, counters: u64, every: u64) -> (Arc<Engine>, u64) {
    let engine = open(storage);
    let models = ReadModels::start(
        engine.clone() as Arc<dyn EventSource>,
        [streams(1)],
        with_snapshots(storage, every, "b1"),
    )
    .unwrap();
    let mut written = 0;
    for n in 0..counters {
        written = create(&engine, n);
        // Let the read models publish along the way.
        models.blocking_wait_for(written, WAIT).unwrap();
    }
    written = populate_from(&engine, counters, written);
    models.blocking_wait_for(written, WAIT).unwrap();
    models.shutdown();
    (engine, written)
}

/// More history on counters `c-0..c-{counters}`: an addition to each.
fn populate_from(engine: &Engine, counters: u64, mut written: u64) -> u64 {
    for n in 0..counters {
        written = add(engine, n, "more");
    }
    written
}

#[test]
fn a_start_after_a_snapshot_applies_only_the_events_after_it() {
    let storage = Arc::new(SimStorage::new());
    let (engine, written) = history(&storage, 20, 10);
    // Written while running and at shutdown; the newest two kept.
    let kept = snapshot_positions(&storage);
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert_eq!(
        *kept.last().unwrap(),
        written,
        "the shutdown wrote the last position"
    );

    let more = populate_new(&engine, 100..105);
    let (models, statuses) = start(
        &engine,
        vec![streams(1)],
        with_snapshots(&storage, 10, "b1"),
        more,
    );
    let status = &statuses[0];
    assert_eq!(status.snapshots.loaded, Some(written));
    assert!(
        status.snapshots.ignored.is_empty(),
        "{:?}",
        status.snapshots.ignored
    );
    assert_eq!(
        status.stats.events_applied,
        more - written,
        "only the events after it"
    );
    assert_eq!(state(&models), replayed(&engine, more));
    assert_eq!(models.position(), more);
}

#[test]
fn a_model_without_snapshots_replays_beside_one_loaded_from_its_snapshot() {
    let storage = Arc::new(SimStorage::new());
    let (engine, written) = history(&storage, 12, 10);
    let more = create(&engine, 100);
    let (models, statuses) = start(
        &engine,
        vec![read_model(), streams(1)],
        with_snapshots(&storage, 10, "b1"),
        more,
    );
    assert_eq!(statuses[0].snapshots.loaded, None);
    assert_eq!(
        statuses[0].stats.events_applied + statuses[0].stats.events_ignored,
        more
    );
    assert_eq!(statuses[1].snapshots.loaded, Some(written));
    assert_eq!(statuses[1].stats.events_applied, more - written);
    assert_eq!(state(&models), replayed(&engine, more));
    let counters = models
        .snapshots()
        .get::<writ_fixtures::read::CountersView>("counters")
        .unwrap();
    assert!(counters.state == fresh(&engine, CountersProjection::current(), more));
    assert_eq!(counters.position, more);
}

#[test]
fn a_damaged_snapshot_is_ignored_for_the_one_before_then_for_a_full_replay() {
    let storage = Arc::new(SimStorage::new());
    let (engine, written) = history(&storage, 20, 10);
    let kept = snapshot_positions(&storage);
    let newest = format!("snapshots/streams/{:020}.snap", kept[1]);
    storage.flip(Path::new(&newest), 40, 1).unwrap();
    let (models, statuses) = start(
        &engine,
        vec![streams(1)],
        with_snapshots(&storage, 0, "b1"),
        written,
    );
    let status = &statuses[0];
    assert_eq!(status.snapshots.loaded, Some(kept[0]));
    assert!(
        status.snapshots.ignored[0].contains("checksum"),
        "{:?}",
        status.snapshots.ignored
    );
    assert_eq!(status.stats.events_applied, written - kept[0]);
    assert_eq!(state(&models), replayed(&engine, written));
    drop(models);

    let older = format!("snapshots/streams/{:020}.snap", kept[0]);
    storage.flip(Path::new(&older), 60, 2).unwrap();
    let (models, statuses) = start(
        &engine,
        vec![streams(1)],
        with_snapshots(&storage, 0, "b1"),
        written,
    );
    let status = &statuses[0];
    assert_eq!(status.snapshots.loaded, None);
    assert_eq!(status.snapshots.ignored.len(), 2);
    assert_eq!(status.stats.events_applied, written, "a full replay");
    assert_eq!(state(&models), replayed(&engine, written));
}

#[test]
fn a_snapshot_of_another_projection_version_or_build_is_ignored() {
    let storage = Arc::new(SimStorage::new());
    let (engine, written) = history(&storage, 10, 10);
    for (spec, build) in [(streams(2), "b1"), (streams(1), "b2")] {
        let (models, statuses) = start(
            &engine,
            vec![spec],
            with_snapshots(&storage, 0, build),
            written,
        );
        let status = &statuses[0];
        assert_eq!(status.snapshots.loaded, None, "{build}");
        assert_eq!(status.snapshots.ignored.len(), 2);
        assert!(status.snapshots.ignored[0].contains("written by projection version 1"));
        assert_eq!(status.stats.events_applied, written);
        assert_eq!(state(&models), replayed(&engine, written));
    }
    // Still there for the code that wrote them.
    let (_, statuses) = start(
        &engine,
        vec![streams(1)],
        with_snapshots(&storage, 0, "b1"),
        written,
    );
    assert_eq!(statuses[0].snapshots.loaded, Some(written));
}

#[test]
fn a_snapshot_is_loaded_only_by_a_projection_of_the_same_code_tag() {
    let storage = Arc::new(SimStorage::new());
    let engine = open(&storage);
    let models = ReadModels::start(
        engine.clone() as Arc<dyn EventSource>,
        [tagged("files-a")],
        with_snapshots(&storage, 1_000_000, "b1"),
    )
    .unwrap();
    let written = populate_new(&engine, 0..6);
    models.blocking_wait_for(written, WAIT).unwrap();
    // The shutdown writes one, the build tag and the code tag in its header.
    models.shutdown();
    let bytes = SnapshotStore::new(storage.clone() as Arc<dyn Storage>)
        .read("streams", written)
        .unwrap();
    let (header, _) = SnapshotHeader::decode(&bytes).unwrap();
    assert_eq!(header.build, "b1+files-a");

    // Other files, or none (compiled code of the same build): other code.
    for spec in [tagged("files-b"), streams(1)] {
        let (models, statuses) = start(
            &engine,
            vec![spec],
            with_snapshots(&storage, 0, "b1"),
            written,
        );
        let status = &statuses[0];
        assert_eq!(status.snapshots.loaded, None);
        assert_eq!(status.snapshots.ignored.len(), 1);
        assert!(
            status.snapshots.ignored[0].contains("build \"b1+files-a\""),
            "{:?}",
            status.snapshots.ignored
        );
        assert_eq!(status.stats.events_applied, written, "a full replay");
        assert_eq!(state(&models), replayed(&engine, written));
    }
    // Another build with the same files: other code too.
    let (_, statuses) = start(
        &engine,
        vec![tagged("files-a")],
        with_snapshots(&storage, 0, "b2"),
        written,
    );
    assert_eq!(statuses[0].snapshots.loaded, None);
    // The same files and build load it.
    let (models, statuses) = start(
        &engine,
        vec![tagged("files-a")],
        with_snapshots(&storage, 0, "b1"),
        written,
    );
    assert_eq!(statuses[0].snapshots.loaded, Some(written));
    assert_eq!(statuses[0].stats.events_applied, 0);
    assert_eq!(state(&models), replayed(&engine, written));
}

#[test]
fn a_snapshot_of_another_journal_is_ignored_and_removed() {
    let storage = Arc::new(SimStorage::new());
    let (_, written) = history(&storage, 10, 10);
    // Another journal of the same length: the same commands, other ids.
    let other = Arc::new(SimStorage::new());
    let engine = open(&other);
    let mut other_written = 0;
    for n in 0..10 {
        other_written = create(&engine, n);
    }
    assert_eq!(populate_from(&engine, 10, other_written), written);
    other
        .create_dir_all(Path::new("snapshots/streams"))
        .unwrap();
    for name in snapshot_files(&storage) {
        let path = format!("snapshots/streams/{name}");
        let bytes = storage.read_durable(Path::new(&path)).unwrap();
        let file = other.create(Path::new(&path)).unwrap();
        writ_log::storage::write_all_at(&*file, &bytes, 0).unwrap();
    }
    let (models, statuses) = start(
        &engine,
        vec![streams(1)],
        with_snapshots(&other, 0, "b1"),
        written,
    );
    let status = &statuses[0];
    assert_eq!(status.snapshots.loaded, None);
    assert!(
        status.snapshots.ignored[0].contains("another journal"),
        "{:?}",
        status.snapshots.ignored
    );
    assert_eq!(status.stats.events_applied, written);
    assert_eq!(state(&models), replayed(&engine, written));
    assert_eq!(snapshot_positions(&other), Vec::<u64>::new(), "removed");
}

/// Writes a snapshot of the streams read model at `position` as the runtime would.
fn write_snapshot(
    engine: &Engine,
    storage: &Arc<SimStorage>,
    position: u64,
) -> std::io::Result<()> {
    let mut out = Writer::new();
    Streams {
        version: 1,
        tag: None,
    }
    .save(&replayed(engine, position), &mut out);
    let file = SnapshotHeader {
        model: "streams".into(),
        projection_version: 1,
        format: 1,
        build: "b1".into(),
        position,
        journal: EventSource::mark(engine, position).unwrap(),
    }
    .encode(&out.into_vec());
    SnapshotStore::new(storage.clone()).write("streams", position, &file)
}

/// After a crash left `storage` so, the read models start from the snapshot at `expected`.
fn after_crash(crashed: SimStorage, written: u64, expected: u64) {
    let crashed = Arc::new(crashed);
    let engine = open(&crashed);
    let (models, statuses) = start(
        &engine,
        vec![streams(1)],
        with_snapshots(&crashed, 0, "b1"),
        written,
    );
    assert_eq!(statuses[0].snapshots.loaded, Some(expected));
    assert_eq!(statuses[0].snapshots.ignored, Vec::<String>::new());
    assert_eq!(state(&models), replayed(&engine, written));
    // No `.tmp` left.
    assert!(
        snapshot_files(&crashed)
            .iter()
            .all(|name| name.ends_with(".snap")),
        "{:?}",
        snapshot_files(&crashed)
    );
}

/// A history with one snapshot at `first`, and the engine still running.
fn one_snapshot() -> (Arc<SimStorage>, Arc<Engine>, u64, u64) {
    let storage = Arc::new(SimStorage::new());
    let engine = open(&storage);
    let first = populate(&engine, 6);
    write_snapshot(&engine, &storage, first).unwrap();
    let written = populate_more(&engine);
    (storage, engine, first, written)
}

fn populate_more(engine: &Engine) -> u64 {
    populate_new(engine, 100..106)
}

/// Creates counters `c-{n}` for `n` in `range`; the position of the last.
fn populate_new(engine: &Engine, range: std::ops::Range<u64>) -> u64 {
    let mut written = 0;
    for n in range {
        written = create(engine, n);
    }
    written
}

#[test]
fn a_crash_before_the_rename_leaves_the_previous_snapshot() {
    let (storage, engine, first, written) = one_snapshot();
    storage.fail_next(SimOp::Rename);
    assert!(write_snapshot(&engine, &storage, written).is_err());
    after_crash(storage.crash(), written, first);
}

#[test]
fn a_crash_after_the_rename_before_the_directory_sync_leaves_the_previous_snapshot() {
    let (storage, engine, first, written) = one_snapshot();
    storage.fail_next(SimOp::SyncDir);
    assert!(write_snapshot(&engine, &storage, written).is_err());
    // The new name is live, not durable.
    assert_eq!(snapshot_positions(&storage), [first, written]);
    after_crash(storage.crash(), written, first);
}

#[test]
fn a_torn_tmp_is_removed_at_start_and_the_previous_snapshot_loads() {
    let (storage, engine, first, written) = one_snapshot();
    write_snapshot(&engine, &storage, written).unwrap();
    let newest = format!("snapshots/streams/{written:020}.snap");
    let bytes = storage.read_durable(Path::new(&newest)).unwrap();
    // A later write that tore: half its bytes, its entry durable.
    let torn = Path::new("snapshots/streams/00000000000000099999.snap.tmp");
    let file = storage.create(torn).unwrap();
    writ_log::storage::write_all_at(&*file, &bytes[..bytes.len() / 2], 0).unwrap();
    file.sync_data().unwrap();
    storage.sync_dir(Path::new("snapshots/streams")).unwrap();
    after_crash(storage.crash(), written, written);
    let _ = first;
}

#[test]
fn a_rebuild_still_starts_from_position_1() {
    let storage = Arc::new(SimStorage::new());
    let (engine, written) = history(&storage, 10, 10);
    let (models, statuses) = start(
        &engine,
        vec![streams(1)],
        with_snapshots(&storage, 0, "b1"),
        written,
    );
    assert_eq!(statuses[0].snapshots.loaded, Some(written));
    let mut rebuild = models.rebuild("streams", None).unwrap();
    assert!(matches!(
        rebuild.blocking_finished(),
        writ_query::RebuildStatus::Switched { .. }
    ));
    let status = models.status("streams").unwrap();
    assert_eq!(
        status.stats.events_applied, written,
        "the rebuild applied every event"
    );
    assert_eq!(state(&models), replayed(&engine, written));
}

/// `writ replay --apply` makes another journal live, whose events may differ anywhere: a
/// snapshot taken of the journal before is never loaded after the switch, even when the
/// replay wrote the journal again byte for byte (the journal's directory is in the mark).
#[test]
fn a_snapshot_taken_before_a_replay_was_applied_is_not_loaded_after_it() {
    let storage = Arc::new(SimStorage::new());
    let (engine, written) = history(&storage, 10, 10);
    assert!(!snapshot_positions(&storage).is_empty());
    engine.shutdown();
    drop(engine);

    let shared: Arc<dyn Storage> = storage.clone();
    let replay = writ_engine::replay::replay(
        Arc::clone(&shared),
        support::registry(),
        support::options(),
        &mut |_| {},
    )
    .unwrap();
    assert!(replay.report.differences.is_empty(), "an unchanged build");
    writ_engine::replay::apply(shared.as_ref(), &replay).unwrap();

    let engine = open(&storage);
    assert_eq!(engine.journal_dir(), Path::new("replay-1/journal"));
    let (models, statuses) = start(
        &engine,
        vec![streams(1)],
        with_snapshots(&storage, 0, "b1"),
        written,
    );
    let status = &statuses[0];
    assert_eq!(status.snapshots.loaded, None, "{:?}", status.snapshots);
    assert_eq!(
        status.stats.events_applied, written,
        "replayed from position 1"
    );
    assert_eq!(state(&models), replayed(&engine, written));
}
