//! `writ archive` on the engine's side (`writ_engine::archive`), on `SimStorage`: sealed
//! journal segments out of the dedupe window move to an archive directory; an engine opened
//! with it reads every event and stream back, a replay from it finds no difference, an
//! engine opened without it is refused saying so, a move cut short opens, and segments
//! within the window stay.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use writ_domain::RecordedEvent;
use writ_engine::archive::{self, Archived};
use writ_engine::{Engine, EngineOptions, ManualClock, replay};
use writ_log::storage::{SimOp, SimStorage};
use writ_log::{Log, LogOptions};

mod support;

const START_MS: u64 = 1_700_000_000_000;
const WINDOW: Duration = Duration::from_secs(2);
const COMMANDS: u128 = 240;
/// Relays (streams) the commands go round.
const RELAYS: u128 = 7;

fn archive_dir() -> PathBuf {
    PathBuf::from("archive")
}

/// Small segments, a short window, no checkpoints (every open reads the whole journal).
fn options(clock: &ManualClock, archive: Option<PathBuf>) -> EngineOptions {
    EngineOptions {
        command_bytes_max: 28 * 1024,
        timer_ops_bytes_max: 4 * 1024,
        dedupe_window: WINDOW,
        checkpoint_every_records: 0,
        log: LogOptions {
            archive_dir: archive,
            ..support::tiny_segments()
        },
        clock: Arc::new(clock.clone()),
        ..EngineOptions::default()
    }
}

/// A journal of `COMMANDS` pings (some making chains), 100 ms apart, across many
/// segments. Returns every event, and every stream's events.
fn journal(storage: &SimStorage) -> (Vec<RecordedEvent>, Vec<Vec<RecordedEvent>>) {
    let clock = ManualClock::at_ms(START_MS);
    let (engine, _) = Engine::open(
        Arc::new(storage.clone()),
        support::relay(),
        options(&clock, None),
    )
    .expect("engine opens");
    for id in 1..=COMMANDS {
        support::submit_now(&engine, id, "Ping", &payload(id))
            .blocking_outcome()
            .expect("outcome");
        clock.advance(Duration::from_millis(100));
    }
    let read = everything(&engine);
    drop(engine);
    read
}

/// Command `id`'s payload: one in ten makes a chain of two.
fn payload(id: u128) -> Vec<u8> {
    let relay = format!("r{}", id % RELAYS);
    support::padded_ping(&relay, u32::from(id.is_multiple_of(10)), 1_500)
}

fn streams() -> Vec<String> {
    (0..RELAYS)
        .flat_map(|r| [format!("r{r}"), format!("r{r}+")])
        .map(|relay| support::stream(&relay))
        .collect()
}

fn everything(engine: &Engine) -> (Vec<RecordedEvent>, Vec<Vec<RecordedEvent>>) {
    let all = engine.read_all(1, 100_000).expect("read all");
    let streams = streams()
        .iter()
        .map(|s| engine.read_stream(s, 1, 100_000).expect("read stream"))
        .collect();
    (all, streams)
}

fn segments(storage: &SimStorage, dir: &str) -> Vec<u64> {
    writ_log::archive::list_segments(storage, Path::new(dir)).unwrap_or_default()
}

fn archive(storage: &SimStorage) -> Archived {
    archive::archive_journal(
        Arc::new(storage.clone()),
        &archive_dir(),
        WINDOW,
        support::tiny_segments(),
    )
    .expect("archived")
}

/// Every record of the journal, with the archive, as bytes and times.
fn records(storage: &SimStorage, dir: &str) -> Vec<Vec<u8>> {
    let options = LogOptions {
        archive_dir: Some(archive_dir()),
        ..support::tiny_segments()
    };
    support::log_records(storage, dir, options)
}

fn time(record: &[u8]) -> u64 {
    writ_engine::record::id_and_time(record).unwrap().1
}

#[test]
fn an_archived_journal_reads_every_event_and_stream_back_and_keeps_the_window() {
    let storage = SimStorage::new();
    let (all, by_stream) = journal(&storage);
    assert!(all.len() as u128 > COMMANDS, "chains add events");
    let before = segments(&storage, "journal");
    assert!(before.len() >= 6, "{before:?}");

    let archived = archive(&storage);
    assert!(
        !archived.moved.is_empty() && archived.bytes_freed > 0,
        "{archived:?}"
    );
    assert!(archived.kept_in_window >= 1, "{archived:?}");
    let moved = segments(&storage, "archive");
    assert_eq!(moved, before[..archived.moved.len()]);
    let left = segments(&storage, "journal");
    assert_eq!(left, before[archived.moved.len()..]);
    assert_eq!(archived.archived_records, left[0]);
    assert_eq!(archived.cutoff_ms, archived.last_recorded_ms - 2_000);

    // What moved is out of the window; the first segment left has a record within it.
    let records = records(&storage, "journal");
    assert_eq!(records.len() as u64, archived.records);
    let last = time(records.last().unwrap());
    let cutoff = last - WINDOW.as_millis() as u64;
    for record in &records[..left[0] as usize] {
        assert!(time(record) < cutoff);
    }
    assert!(time(&records[left[1] as usize - 1]) >= cutoff);

    // Run again: nothing more to move.
    let again = archive(&storage);
    assert!(again.moved.is_empty(), "{again:?}");
    assert_eq!(segments(&storage, "archive"), moved);

    // Opened with the archive, after a power cut: every event and stream.
    let crashed = storage.crash();
    let clock = ManualClock::at_ms(last + 10);
    let (engine, report) = Engine::open(
        Arc::new(crashed.clone()),
        support::relay(),
        options(&clock, Some(archive_dir())),
    )
    .expect("opens with the archive");
    assert_eq!(report.commands, records.len() as u64);
    assert_eq!(everything(&engine), (all.clone(), by_stream));
    // It goes on, and a resent command within the window is still a duplicate.
    let pending = support::submit_now(&engine, 10_000, "Ping", &support::ping("r1", 0));
    pending.blocking_outcome().unwrap();
    let resent = engine
        .submit(
            uuid::Uuid::from_u128(COMMANDS),
            "Ping",
            None,
            &payload(COMMANDS),
        )
        .unwrap();
    assert!(matches!(resent, writ_engine::Submitted::Duplicate));
    drop(engine);

    // Without the archive: refused, saying which records are missing and what to give.
    let refused = Engine::open(Arc::new(crashed), support::relay(), options(&clock, None))
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains(&format!("records 0..{} are missing", left[0]))
            && refused.contains("--archive-dir"),
        "{refused}"
    );
}

#[test]
fn a_replay_from_an_archived_journal_finds_no_difference() {
    let storage = SimStorage::new();
    journal(&storage);
    let archived = archive(&storage);
    assert!(!archived.moved.is_empty());
    let live = records(&storage, "journal");
    let replayed = replay::replay(
        Arc::new(storage.clone()),
        support::relay(),
        options(&ManualClock::at_ms(0), Some(archive_dir())),
        &mut |_| {},
    )
    .expect("replayed");
    let report = &replayed.report;
    assert!(report.differences.is_empty(), "{}", report.summary(10));
    assert_eq!(report.commands, live.len() as u64);
    assert_eq!(report.live_records, live.len() as u64);
    // The replay's journal is whole in its own directory, byte for byte the live one.
    let (new, _) = Log::open(
        Arc::new(storage.clone()),
        Path::new("replay-1/journal"),
        support::tiny_segments(),
    )
    .expect("the replay's journal opens without the archive");
    let mut again = Vec::new();
    let mut iter = new.reader().iter_from(0);
    while let Some(item) = iter.next_record() {
        again.push(item.unwrap().1.to_vec());
    }
    assert!(again == live, "the replay's journal differs");
}

#[test]
fn a_move_cut_short_opens_with_every_event_and_the_next_run_finishes_it() {
    let mut states = std::collections::BTreeSet::new();
    // Each failing at its first calls: in recovery's open, then in the moves.
    let cases = [SimOp::Sync, SimOp::Rename, SimOp::SyncDir, SimOp::Remove]
        .into_iter()
        .flat_map(|op| (0..5).map(move |nth| (op, nth)));
    for (op, nth) in cases {
        let storage = SimStorage::new();
        let (all, by_stream) = journal(&storage);
        let first = segments(&storage, "journal")[0];
        storage.fail_nth(op, nth);
        let cut = archive::archive_journal(
            Arc::new(storage.clone()),
            &archive_dir(),
            WINDOW,
            support::tiny_segments(),
        );
        storage.clear_faults();
        let crashed = storage.crash();
        let in_journal = segments(&crashed, "journal").contains(&first);
        let in_archive = segments(&crashed, "archive").contains(&first);
        assert!(in_journal || in_archive, "{op:?} {nth} {cut:?}");
        states.insert((in_journal, in_archive));
        let clock = ManualClock::at_ms(START_MS + 60_000);
        let (engine, _) = Engine::open(
            Arc::new(crashed.clone()),
            support::relay(),
            options(&clock, Some(archive_dir())),
        )
        .unwrap_or_else(|e| panic!("{op:?} {nth} ({in_journal}, {in_archive}): {e}"));
        assert_eq!(everything(&engine), (all.clone(), by_stream.clone()));
        drop(engine);
        let finished = archive(&crashed);
        assert!(
            !segments(&crashed, "journal").contains(&first),
            "{finished:?}"
        );
        assert!(segments(&crashed, "archive").contains(&first));
        let (engine, _) = Engine::open(
            Arc::new(crashed.crash()),
            support::relay(),
            options(&clock, Some(archive_dir())),
        )
        .expect("opens after the second run");
        assert_eq!(everything(&engine), (all.clone(), by_stream.clone()));
    }
    // Among them, a segment in both places (the crash between the archive's sync and the
    // journal's removal) and one in the journal only.
    assert!(states.contains(&(true, true)), "{states:?}");
    assert!(states.contains(&(true, false)), "{states:?}");
}

#[test]
fn nothing_within_the_window_moves() {
    let storage = SimStorage::new();
    journal(&storage);
    let before = segments(&storage, "journal");
    // A window longer than the whole journal: nothing is out of it.
    let archived = archive::archive_journal(
        Arc::new(storage.clone()),
        &archive_dir(),
        Duration::from_secs(3_600),
        support::tiny_segments(),
    )
    .unwrap();
    assert!(archived.moved.is_empty(), "{archived:?}");
    assert_eq!(archived.kept_in_window, before.len() - 1);
    assert_eq!(segments(&storage, "journal"), before);
    assert!(segments(&storage, "archive").is_empty());
}
