//! Golden data directories: data directories written by earlier builds, committed under
//! `tests/fixtures/golden/` and named by the journal record format that wrote them. Every
//! later build must open each of them and read what it holds, so a change that can no
//! longer read one fails here. None is ever deleted or rewritten; a format change adds a
//! directory of its own (see `docs/log-format.md`, "Fixtures").
//!
//! `journal-v3/` (see its README.md) was written by
//! [`write_the_journal_v3_fixture`], which is ignored by `cargo test`. It is kept to show
//! how the fixture was made, not to be run again over it: run as
//!
//! ```text
//! WRIT_GOLDEN_WRITE=1 cargo test -p writ-engine --test golden -- --ignored write_the_journal_v3_fixture
//! ```
//!
//! it writes the directory again (this build's bytes, which a later build must not put in
//! place of the old ones); without `WRIT_GOLDEN_WRITE` it writes into a temporary
//! directory and checks that copy as the committed one is checked.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use uuid::Uuid;
use writ_domain::model::{domain, process};
use writ_engine::{
    CommandState, CommandStatus, DEDUPE_DIR, Engine, EngineOptions, JOURNAL_DIR, ManualClock,
    Origin, RecoveryReport, Registry, Submission, Submitted,
};
use writ_fixtures::Counters;
use writ_fixtures::people::{after, before};
use writ_log::storage::SimStorage;
use writ_log::{LogOptions, TailDamage};

mod support;
use support::{Alarm, Relay, Relaying, changed_range, run_json as run, wait_until};

/// The committed fixture of journal record format 3.
fn journal_v3() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden/journal-v3")
}

/// The fixture's clock starts here (2023-11-14T22:13:20Z).
const T0: u64 = 1_700_000_000_000;
const MINUTE: u64 = 60_000;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// The id of the command whose frame the fixture tears.
const TORN_ID: u128 = 999;

/// The domains of the fixture: counters, relay (with its processes `relay` and `alarm`)
/// and people in its before build (`PersonNamed` at version 1) or its after build.
fn registry(people_after: bool) -> Registry {
    let builder = Registry::builder()
        .domain(domain::<Counters>())
        .domain(domain::<Relay>())
        .process(process::<Relaying>())
        .process(process::<Alarm>());
    let builder = if people_after {
        builder.domain(domain::<after::People>())
    } else {
        builder.domain(domain::<before::People>())
    };
    builder.build().expect("the fixture's domains register")
}

fn succeeded(status: &CommandStatus) {
    assert_eq!(status.state, CommandState::Succeeded, "{status:?}");
}

fn rejected(status: &CommandStatus, code: &str) {
    match &status.state {
        CommandState::Rejected { code: got, .. } => assert_eq!(got, code, "{status:?}"),
        other => panic!("rejected {code} expected: {other:?}"),
    }
}

/// The smallest journal segments the options allow (a segment holds a record of
/// `record_bytes_max` and 4 KiB more; a record, a command of `command_bytes_max` with its
/// timer changes and 1 KiB more), holes rather than zeros, and a dedupe run every 16 ids:
/// a fixture of several segments and a run in a few tens of KiB.
fn generation_options(clock: &ManualClock) -> EngineOptions {
    EngineOptions {
        command_bytes_max: 2 << 10,
        timer_ops_bytes_max: 1 << 10,
        dedupe_spill_entries: 16,
        log: LogOptions {
            segment_bytes: 8 << 10,
            record_bytes_max: 4 << 10,
            preallocate: false,
            ..LogOptions::default()
        },
        clock: Arc::new(clock.clone()),
        ..EngineOptions::default()
    }
}

/// Writes the fixture into `out` (which must not exist): see `journal-v3/README.md` for
/// what it holds. Returns the journal's records (the torn one not counted).
fn write_journal_v3(out: &Path) -> u64 {
    let storage = SimStorage::new();
    let clock = ManualClock::at_ms(T0);
    let open = |people_after: bool| {
        Engine::open(
            Arc::new(storage.clone()),
            registry(people_after),
            generation_options(&clock),
        )
        .expect("the engine opens")
    };

    // The before build of people: PersonNamed at schema version 1.
    let (engine, _) = open(false);
    let create_v1 = json!({"counterId": "c-1", "title": "Apples", "owner": "ann"});
    succeeded(&run(&engine, 1, "CreateCounter", Some(1), create_v1));
    let create_v2 = json!({"counterId": "c-2", "title": "Pears", "owner": "bob", "start": 10});
    succeeded(&run(&engine, 2, "CreateCounter", None, create_v2));
    let add = json!({"counterId": "c-1", "amount": 5, "note": "first"});
    succeeded(&run(&engine, 3, "Add", None, add));
    let transfer = json!({"counterId": "c-2", "to": "c-1", "amount": 3});
    succeeded(&run(&engine, 4, "Transfer", None, transfer));
    let add_missing = json!({"counterId": "c-9", "amount": 1});
    rejected(
        &run(&engine, 5, "Add", None, add_missing),
        "counter_not_found",
    );
    let overdraw = json!({"counterId": "c-2", "to": "c-1", "amount": 100});
    rejected(&run(&engine, 6, "Transfer", None, overdraw), "insufficient");
    succeeded(&run(
        &engine,
        7,
        "CloseCounter",
        None,
        json!({"counterId": "c-2"}),
    ));
    let add_closed = json!({"counterId": "c-2", "amount": 1});
    rejected(&run(&engine, 8, "Add", None, add_closed), "counter_closed");
    let name = json!({"personId": "p-1", "name": "Ada King Lovelace"});
    succeeded(&run(&engine, 9, "NamePerson", None, name));
    // A ping with two hops: the relay process issues two more commands.
    let ping = json!({"relay": "a", "hops": 2});
    succeeded(&run(&engine, 10, "Ping", None, ping));
    // Timers: one that fires within the hour, one a month away (still pending), one
    // cancelled.
    let soon = json!({"relay": "soon", "atMs": T0 + HOUR});
    succeeded(&run(&engine, 11, "Remind", None, soon));
    let later = json!({"relay": "later", "atMs": T0 + 30 * DAY});
    succeeded(&run(&engine, 12, "Remind", None, later));
    let never = json!({"relay": "never", "atMs": T0 + 2 * HOUR});
    succeeded(&run(&engine, 13, "Remind", None, never));
    succeeded(&run(&engine, 14, "Forget", None, json!({"relay": "never"})));
    // Padding, so that the journal spans several segments.
    for n in 0..8u128 {
        let pad = json!({"relay": format!("pad-{n}"), "hops": 0, "pad": "x".repeat(1000)});
        succeeded(&run(&engine, 20 + n, "Ping", None, pad));
    }
    clock.set_ms(T0 + HOUR + MINUTE);
    wait_until(|| engine.stream_version("relay-soon!") == 1);
    wait_until(|| engine.stats().dedupe_runs >= 1);
    engine.shutdown();
    drop(engine);

    // The after build: PersonNamed at schema version 2, GreetPerson.
    clock.set_ms(T0 + 90 * MINUTE);
    let (engine, _) = open(true);
    let name_v2 = json!({"personId": "p-2", "first": "Grace", "last": "Hopper"});
    succeeded(&run(&engine, 40, "NamePerson", None, name_v2));
    let name_v1 = json!({"personId": "p-3", "name": "Alan Mathison Turing"});
    succeeded(&run(&engine, 41, "NamePerson", Some(1), name_v1));
    succeeded(&run(
        &engine,
        42,
        "GreetPerson",
        None,
        json!({"personId": "p-1"}),
    ));
    rejected(
        &run(
            &engine,
            43,
            "GreetPerson",
            None,
            json!({"personId": "p-404"}),
        ),
        "person_not_found",
    );
    let add = json!({"counterId": "c-1", "amount": 1});
    succeeded(&run(&engine, 44, "Add", None, add));
    engine.shutdown();
    drop(engine);

    // One more command, alone in the last frame, which the copy tears.
    let journal = Path::new(JOURNAL_DIR);
    let segments_before = segment_names(&storage);
    let last = journal.join(segments_before.last().expect("a segment"));
    let before_bytes = storage.read_durable(&last).unwrap();
    let (engine, report) = open(true);
    let records = report.commands;
    let torn = json!({"counterId": "c-1", "amount": 100, "note": "torn"});
    succeeded(&run(&engine, TORN_ID, "Add", None, torn));
    engine.shutdown();
    drop(engine);
    assert_eq!(
        segment_names(&storage),
        segments_before,
        "the torn command's frame is in the last segment"
    );
    let after_bytes = storage.read_durable(&last).unwrap();
    let frame = changed_range(&before_bytes, &after_bytes);

    std::fs::create_dir_all(out.join(JOURNAL_DIR)).unwrap();
    std::fs::create_dir_all(out.join(DEDUPE_DIR)).unwrap();
    for dir in [JOURNAL_DIR, DEDUPE_DIR] {
        for name in storage.file_names(Path::new(dir)) {
            let path = Path::new(dir).join(&name);
            let mut bytes = storage.read_durable(&path).unwrap();
            if path == last {
                // The frame cut in half: its second half never reached the disk.
                let half = (frame.start + frame.end) / 2;
                bytes[half as usize..frame.end as usize].fill(0);
            }
            if name.ends_with(".wlog") {
                // The zeros after the last frame are not stored; the test gives the
                // file its size back (a hole).
                let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
                bytes.truncate(end);
            }
            std::fs::write(out.join(&path), bytes).unwrap();
        }
    }
    records
}

fn segment_names(storage: &SimStorage) -> Vec<String> {
    let mut names: Vec<String> = storage
        .file_names(Path::new(JOURNAL_DIR))
        .into_iter()
        .filter(|n| n.ends_with(".wlog"))
        .collect();
    names.sort();
    names
}

/// A fresh directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path =
            std::env::temp_dir().join(format!("writ-golden-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies the fixture `from` into `to`, giving each segment its size back (the zeros
/// after its last frame, as a hole): what the build that wrote it left on disk.
fn copy_fixture(from: &Path, to: &Path) {
    for dir in [JOURNAL_DIR, DEDUPE_DIR] {
        std::fs::create_dir_all(to.join(dir)).unwrap();
        for entry in std::fs::read_dir(from.join(dir)).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(dir).join(entry.file_name());
            std::fs::copy(entry.path(), &target).unwrap();
            if entry.file_name().to_string_lossy().ends_with(".wlog") {
                let bytes = std::fs::read(&target).unwrap();
                // The segment header's `segment_bytes` (offset 24, u64 little-endian).
                let size = u64::from_le_bytes(bytes[24..32].try_into().unwrap());
                assert!(size >= bytes.len() as u64);
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&target)
                    .unwrap()
                    .set_len(size)
                    .unwrap();
            }
        }
    }
}

/// Today's defaults (no preallocated 64 MiB spares in a test, though), on a manual clock.
fn reading_options(clock: &ManualClock) -> EngineOptions {
    EngineOptions {
        log: LogOptions {
            preallocate: false,
            ..LogOptions::default()
        },
        clock: Arc::new(clock.clone()),
        ..EngineOptions::default()
    }
}

fn data(event: &writ_engine::RecordedEvent) -> Value {
    serde_json::from_slice(&event.data).unwrap()
}

/// Opens a copy of the fixture in `fixture` with this build and checks what it holds.
fn check_journal_v3(fixture: &Path, records: u64) {
    let dir = TempDir::new("journal-v3");
    copy_fixture(fixture, &dir.0);
    let clock = ManualClock::at_ms(T0 + 3 * HOUR);
    let (engine, report) = Engine::open_dir(&dir.0, registry(true), reading_options(&clock))
        .expect("this build opens the fixture");
    let RecoveryReport {
        commands,
        timers_pending,
        resumed,
        truncated,
        ..
    } = &report;
    assert_eq!(*commands, records, "{report:?}");
    assert_eq!((*timers_pending, *resumed), (1, 0), "{report:?}");
    let truncated = truncated.as_ref().expect("the torn tail is cut");
    assert_eq!(truncated.damage, TailDamage::Torn, "{report:?}");
    let last_segment = std::fs::read_dir(dir.0.join(JOURNAL_DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".wlog"))
        .max()
        .unwrap();
    assert!(truncated.path.ends_with(&last_segment), "{report:?}");
    assert!(truncated.discarded_bytes > 0, "{report:?}");
    // The dedupe run is read, not rebuilt (runs are hints, but this build reads them).
    assert!(report.dedupe_runs >= 1, "{report:?}");
    assert_eq!(report.dedupe_runs_removed, 0, "{report:?}");
    assert_eq!(engine.status(Uuid::from_u128(TORN_ID)).unwrap(), None);

    // Counters: a v1 command upcast, a decision over two streams, rejections.
    let c1 = engine.read_stream("counter-c-1", 1, 100).unwrap();
    let types: Vec<&str> = c1.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["CounterCreated", "Added", "TransferredIn", "Added"]);
    assert_eq!(
        data(&c1[0]),
        json!({"counterId": "c-1", "title": "Apples", "owner": "ann", "start": 0})
    );
    assert_eq!(c1[3].recorded_at_ms, T0 + 90 * MINUTE);
    let c2 = engine.read_stream("counter-c-2", 1, 100).unwrap();
    let types: Vec<&str> = c2.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["CounterCreated", "TransferredOut", "CounterClosed"]);
    assert_eq!(
        c2[1].command_id, c1[2].command_id,
        "one Transfer, two streams"
    );
    assert_eq!(c2[1].position + 1, c1[2].position);
    for (id, code) in [
        (5, "counter_not_found"),
        (6, "insufficient"),
        (8, "counter_closed"),
        (43, "person_not_found"),
    ] {
        let status = engine.status(Uuid::from_u128(id)).unwrap().unwrap();
        rejected(&status, code);
    }

    // People: PersonNamed recorded at version 1 reads at version 2, upcast.
    let p1 = engine.read_stream("person-p-1", 1, 10).unwrap();
    assert_eq!(p1.len(), 2);
    assert_eq!(
        (p1[0].schema_version, p1[0].recorded_schema_version),
        (2, 1)
    );
    assert_eq!(
        data(&p1[0]),
        json!({"personId": "p-1", "first": "Ada", "last": "King Lovelace"})
    );
    assert_eq!(p1[1].event_type, "PersonGreeted");
    assert_eq!(
        data(&p1[1]),
        json!({"personId": "p-1", "greeting": "Hello, Ada"})
    );
    for (person, first, last) in [
        ("p-2", "Grace", "Hopper"),
        ("p-3", "Alan", "Mathison Turing"),
    ] {
        let named = engine
            .read_stream(&format!("person-{person}"), 1, 10)
            .unwrap();
        assert_eq!(named.len(), 1);
        assert_eq!(
            (named[0].schema_version, named[0].recorded_schema_version),
            (2, 2)
        );
        assert_eq!(
            data(&named[0]),
            json!({"personId": person, "first": first, "last": last})
        );
    }

    // Processes: the ping's two hops, issued by the relay process.
    let cause = engine.status(Uuid::from_u128(10)).unwrap().unwrap();
    for (n, relay) in ["relay-a+", "relay-a++"].iter().enumerate() {
        let events = engine.read_stream(relay, 1, 10).unwrap();
        assert_eq!(events.len(), 1, "{relay}");
        assert_eq!(data(&events[0])["hops"], json!(1 - n as u64));
        let status = engine.status(events[0].command_id).unwrap().unwrap();
        assert_eq!(status.origin, Origin::Process);
        assert_eq!(status.correlation_id, cause.id);
    }

    // Timers: "soon" fired, "never" was cancelled, "later" is pending.
    let fired = engine.read_stream("relay-soon!", 1, 10).unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].recorded_at_ms, T0 + HOUR + MINUTE);
    let status = engine.status(fired[0].command_id).unwrap().unwrap();
    assert_eq!(status.origin, Origin::Timer);
    assert_eq!(engine.stream_version("relay-never!"), 0);
    assert_eq!(engine.stream_version("relay-later!"), 0);
    assert_eq!(engine.timers_pending(), 1);

    // Dedupe: logged ids are duplicates (the first in the run of `dedupe/`, the last in
    // the ids loaded from the journal's records after it); the torn command's id is new.
    let create_v1 = json!({"counterId": "c-1", "title": "Apples", "owner": "ann"}).to_string();
    let again = Submission {
        id: Uuid::from_u128(1),
        command: "CreateCounter",
        version: Some(1),
        payload: create_v1.as_bytes(),
        expected_version: None,
    };
    assert!(matches!(
        engine.submit_command(&again).unwrap(),
        Submitted::Duplicate
    ));
    let add = json!({"counterId": "c-1", "amount": 1}).to_string();
    let again = Submission {
        id: Uuid::from_u128(44),
        command: "Add",
        version: None,
        payload: add.as_bytes(),
        expected_version: None,
    };
    assert!(matches!(
        engine.submit_command(&again).unwrap(),
        Submitted::Duplicate
    ));
    let torn = json!({"counterId": "c-1", "amount": 100, "note": "torn"});
    succeeded(&run(&engine, TORN_ID, "Add", None, torn));
    assert_eq!(engine.stream_version("counter-c-1"), 5);

    // The pending timer fires once the clock passes it.
    clock.set_ms(T0 + 30 * DAY + MINUTE);
    wait_until(|| engine.stream_version("relay-later!") == 1);
    assert_eq!(engine.timers_pending(), 0);
    let fired = engine.read_stream("relay-later!", 1, 1).unwrap().remove(0);
    assert_eq!(fired.recorded_at_ms, T0 + 30 * DAY + MINUTE);
    engine.shutdown();
}

/// The journal's records in the committed fixture (the torn one not counted).
const JOURNAL_V3_RECORDS: u64 = 30;

#[test]
fn the_journal_v3_fixture_opens_and_reads_as_it_was_written() {
    check_journal_v3(&journal_v3(), JOURNAL_V3_RECORDS);
}

#[test]
#[ignore = "writes the golden fixture; see the module documentation"]
fn write_the_journal_v3_fixture() {
    let temp = TempDir::new("write");
    let out = match std::env::var_os("WRIT_GOLDEN_WRITE") {
        Some(_) => {
            let out = journal_v3();
            for dir in [JOURNAL_DIR, DEDUPE_DIR] {
                let _ = std::fs::remove_dir_all(out.join(dir));
            }
            out
        }
        None => temp.0.join("journal-v3"),
    };
    let records = write_journal_v3(&out);
    println!("{records} records written to {}", out.display());
    check_journal_v3(&out, records);
}
