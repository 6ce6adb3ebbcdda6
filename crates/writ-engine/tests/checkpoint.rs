//! Engine checkpoints (`checkpoints/{seq:020}.ckpt`) on the simulated storage: the
//! `writ-checkpoint` thread writes one every `checkpoint_every_records` records and at a
//! clean shutdown, keeps the newest two, and what it writes is the state the engine
//! serves (every stream's positions, the last position, the records, the pending timers).
//!
//! Checkpoint crash tests (docs/log-format.md, "Checkpoint decision table"), by name:
//! - `a_start_from_a_checkpoint_reads_exactly_what_a_full_scan_reads` (reads, stream
//!   versions, timers, dedupe answers, the next position, on the same data);
//! - `a_crash_while_a_checkpoint_is_written_leaves_a_torn_tmp_that_is_removed`;
//! - `a_crash_before_the_rename_keeps_the_previous_checkpoint`;
//! - `a_crash_after_the_rename_before_the_dir_sync_keeps_the_previous_checkpoint`;
//! - `a_crash_after_the_dir_sync_loads_the_new_checkpoint`;
//! - `a_checkpoint_past_a_torn_journal_tail_is_ignored_and_removed`;
//! - `a_damaged_checkpoint_is_ignored_and_the_one_before_loads` (a bit flip, and a file
//!   whose name became durable before its data);
//! - `a_checkpoint_of_another_journal_is_ignored_after_replay_apply`;
//! - `a_checkpoint_of_another_build_or_format_is_ignored_and_kept`.

use std::path::Path;
use std::sync::Arc;

use uuid::Uuid;
use writ_engine::checkpoint::{CHECKPOINT_BUILD, CHECKPOINT_DIR, Checkpoint, checkpoint_name};
use writ_engine::replay;
use writ_engine::{Engine, EngineOptions, ManualClock, SubmitError, Submitted};
use writ_log::storage::{SimOp, SimStorage, Storage};

mod support;
use support::{changed_range, now_ms, ping, remind, wait_until};

fn options(every: u64) -> EngineOptions {
    EngineOptions {
        checkpoint_every_records: every,
        ..support::small_options()
    }
}

fn open(storage: &SimStorage, every: u64) -> (Engine, writ_engine::RecoveryReport) {
    Engine::open(
        Arc::new(storage.clone()),
        support::relay_and_counters(),
        options(every),
    )
    .expect("engine opens")
}

/// Submits `n` commands from id `first`: pings with one hop (each issues a process
/// command) and, every fifth, a reminder an hour away (a pending timer).
fn submit(engine: &Engine, first: u128, n: u128) {
    let mut pending = Vec::new();
    for i in first..first + n {
        let (command, payload) = if i % 5 == 0 {
            (
                "Remind",
                remind(&format!("r{}", i % 7), now_ms() + 3_600_000),
            )
        } else {
            ("Ping", ping(&format!("r{}", i % 7), 1))
        };
        match engine
            .submit(Uuid::from_u128(i), command, None, &payload)
            .expect("submits")
        {
            Submitted::New(p) => pending.push(p),
            Submitted::Duplicate => panic!("a fresh id"),
        }
    }
    for p in pending {
        p.blocking_outcome().expect("decided");
    }
}

fn checkpoints(storage: &SimStorage) -> Vec<String> {
    let mut names: Vec<String> = storage
        .file_names(Path::new(CHECKPOINT_DIR))
        .into_iter()
        .filter(|n| n.ends_with(".ckpt"))
        .collect();
    names.sort();
    names
}

fn read(storage: &SimStorage, name: &str) -> Checkpoint {
    let bytes = storage
        .read_written(&Path::new(CHECKPOINT_DIR).join(name))
        .expect("reads");
    Checkpoint::decode(&bytes).expect("a valid checkpoint")
}

/// What a checkpoint holds is what the engine serves at its `seq`.
fn assert_matches_engine(checkpoint: &Checkpoint, engine: &Engine, durable: u64) {
    assert_eq!(checkpoint.seq, durable);
    assert_eq!(checkpoint.build, CHECKPOINT_BUILD);
    assert_eq!(checkpoint.last_position, engine.last_position());
    assert_eq!(checkpoint.commit_first_position.len() as u64, durable);
    for (stream, positions) in &checkpoint.streams {
        let read: Vec<u64> = engine
            .read_stream(stream, 1, 10_000)
            .expect("reads")
            .iter()
            .map(|e| e.position)
            .collect();
        assert_eq!(&read, positions, "stream {stream}");
        assert_eq!(engine.stream_version(stream), positions.len() as u64);
    }
    let events: usize = checkpoint.streams.iter().map(|(_, p)| p.len()).sum();
    assert_eq!(events as u64, engine.last_position());
    assert_eq!(checkpoint.timers.len(), engine.timers_pending());
}

#[test]
fn the_thread_writes_every_n_records_keeps_two_and_one_more_at_shutdown() {
    let storage = SimStorage::new();
    let (engine, _) = open(&storage, 20);
    let durable =
        |engine: &Engine| engine.stats().commands_accepted + engine.stats().commands_issued;
    let mut written = Vec::new();
    for round in 0..3 {
        // 30 clients' commands and 24 process commands: 54 records, past the interval.
        submit(&engine, 1 + round * 100, 30);
        let end = durable(&engine);
        wait_until(|| {
            checkpoints(&storage)
                .last()
                .is_some_and(|n| *n == checkpoint_name(end))
        });
        written.push(checkpoint_name(end));
        let names = checkpoints(&storage);
        assert!(names.len() <= 2, "the newest two kept: {names:?}");
        if round > 0 {
            // The one before is the previous round's or one the thread wrote on its way.
            assert!(names[0] >= written[written.len() - 2], "{names:?}");
        }
    }
    let at = read(&storage, written.last().unwrap());
    assert_eq!(at.commit_first_position.len() as u64, at.seq);
    submit(&engine, 1_000, 3);
    let durable = durable(&engine);
    engine.shutdown();
    let names = checkpoints(&storage);
    assert_eq!(
        names,
        [written[2].clone(), checkpoint_name(durable)],
        "one more at shutdown"
    );
    assert_eq!(
        storage.durable_file_names(Path::new(CHECKPOINT_DIR)),
        storage.file_names(Path::new(CHECKPOINT_DIR)),
        "every checkpoint written is durable, and nothing else is left"
    );
    // The same journal scanned whole serves what the checkpoint holds.
    let (engine, report) = open(&without_checkpoints(&storage), 0);
    assert_eq!(report.commands, durable);
    let last = read(&storage, &names[1]);
    assert_matches_engine(&last, &engine, durable);
}

#[test]
fn no_checkpoint_is_written_with_every_zero() {
    let storage = SimStorage::new();
    let (engine, _) = open(&storage, 0);
    submit(&engine, 1, 10);
    engine.shutdown();
    assert!(checkpoints(&storage).is_empty());
}

#[test]
fn a_restart_continues_from_the_newest_checkpoint_and_writes_at_the_next_interval() {
    let storage = SimStorage::new();
    let (engine, _) = open(&storage, 1_000);
    submit(&engine, 1, 10);
    engine.shutdown();
    let first = checkpoints(&storage);
    assert_eq!(first.len(), 1, "one at shutdown");
    let (engine, _) = open(&storage, 1_000);
    submit(&engine, 100, 10);
    engine.shutdown();
    let (engine, report) = open(&storage, 0);
    let names = checkpoints(&storage);
    assert_eq!(names.len(), 2);
    assert_eq!(names[0], first[0]);
    assert_matches_engine(&read(&storage, &names[1]), &engine, report.commands);
}

/// What a client can see of an engine: every event, every stream's version, the pending
/// timers, the records and the last position.
#[derive(Debug, PartialEq)]
struct Observed {
    events: Vec<(u64, String, u64, String, Vec<u8>, Uuid)>,
    versions: Vec<(String, u64)>,
    timers: usize,
    commands: u64,
    last_position: u64,
}

fn observe(engine: &Engine, commands: u64) -> Observed {
    let events: Vec<_> = engine
        .read_all(1, 1_000_000)
        .expect("reads")
        .into_iter()
        .map(|e| {
            (
                e.position,
                e.stream,
                e.version,
                e.event_type,
                e.data,
                e.command_id,
            )
        })
        .collect();
    let mut streams: Vec<String> = events.iter().map(|e| e.1.clone()).collect();
    streams.sort();
    streams.dedup();
    let versions = streams
        .into_iter()
        .map(|s| {
            let v = engine.stream_version(&s);
            (s, v)
        })
        .collect();
    Observed {
        events,
        versions,
        timers: engine.timers_pending(),
        commands,
        last_position: engine.last_position(),
    }
}

/// What the engine answers next: a duplicate, a conflict, and a new command's position
/// and events.
fn answers(engine: &Engine) -> (bool, bool, u64, Vec<String>) {
    let duplicate = matches!(
        engine.submit(Uuid::from_u128(2), "Ping", None, &ping("r2", 1)),
        Ok(Submitted::Duplicate)
    );
    let conflict = matches!(
        engine.submit(Uuid::from_u128(2), "Ping", None, &ping("other", 1)),
        Err(SubmitError::Conflict { .. })
    );
    let Submitted::New(pending) = engine
        .submit(Uuid::from_u128(9_999), "Ping", None, &ping("r3", 0))
        .expect("submits")
    else {
        panic!("a fresh id");
    };
    let status = pending.blocking_outcome().expect("decided");
    let events = status
        .events
        .iter()
        .map(|e| format!("{}@{}#{}", e.stream, e.version, e.position))
        .collect();
    (duplicate, conflict, status.sequence, events)
}

/// A copy of the storage as a crash leaves it, without its checkpoints: the full scan.
fn without_checkpoints(storage: &SimStorage) -> SimStorage {
    let copy = storage.crash();
    for name in copy.file_names(Path::new(CHECKPOINT_DIR)) {
        copy.remove(&Path::new(CHECKPOINT_DIR).join(name))
            .expect("removes");
    }
    copy
}

/// Writes records with a checkpoint at a clean shutdown, then more records without one.
fn checkpoint_then_tail(storage: &SimStorage) -> u64 {
    let (engine, _) = open(storage, 1_000_000);
    submit(&engine, 1, 30);
    engine.shutdown();
    let (engine, report) = open(storage, 0);
    assert!(report.checkpoint.is_some());
    submit(&engine, 100, 12);
    engine.shutdown();
    report.checkpoint.expect("loaded")
}

#[test]
fn a_start_from_a_checkpoint_reads_exactly_what_a_full_scan_reads() {
    let storage = SimStorage::new();
    let seq = checkpoint_then_tail(&storage);
    let full = without_checkpoints(&storage);
    let (from_checkpoint, report) = open(&storage, 0);
    assert_eq!(report.checkpoint, Some(seq));
    assert!(report.checkpoints_ignored.is_empty());
    assert!(report.commands > seq, "a tail after the checkpoint");
    let (scanned, full_report) = open(&full, 0);
    assert_eq!(full_report.checkpoint, None);
    assert_eq!(report.commands, full_report.commands);
    assert_eq!(report.events, full_report.events);
    assert_eq!(report.timers_pending, full_report.timers_pending);
    assert_eq!(report.dedupe_entries, full_report.dedupe_entries);
    assert_eq!(
        observe(&from_checkpoint, report.commands),
        observe(&scanned, full_report.commands)
    );
    let a = answers(&from_checkpoint);
    assert!(a.0 && a.1, "a duplicate and a conflict: {a:?}");
    assert_eq!(a, answers(&scanned));
}

/// The checkpoint's `seq` the next clean start loads, and what it reads.
fn assert_loads(storage: &SimStorage, seq: u64) -> writ_engine::RecoveryReport {
    let full = without_checkpoints(storage);
    let (engine, report) = open(storage, 0);
    assert_eq!(
        report.checkpoint,
        Some(seq),
        "{:?}",
        report.checkpoints_ignored
    );
    let (scanned, full_report) = open(&full, 0);
    assert_eq!(
        observe(&engine, report.commands),
        observe(&scanned, full_report.commands)
    );
    report
}

/// Two checkpoints: one at a first clean shutdown, and (after more records) the newest at
/// a second. Returns both `seq`s.
fn two_checkpoints(storage: &SimStorage) -> (u64, u64) {
    let (engine, _) = open(storage, 1_000_000);
    submit(&engine, 1, 20);
    engine.shutdown();
    let (engine, first) = open(storage, 1_000_000);
    submit(&engine, 100, 10);
    engine.shutdown();
    let (_, second) = open(storage, 0);
    (first.checkpoint.unwrap(), second.checkpoint.unwrap())
}

#[test]
fn a_crash_while_a_checkpoint_is_written_leaves_a_torn_tmp_that_is_removed() {
    let storage = SimStorage::new();
    let seq = checkpoint_then_tail(&storage);
    // The writing of the next one was cut: its `.tmp` holds the first half of a
    // checkpoint, and its entry reached the disk.
    let bytes = storage
        .read_written(&Path::new(CHECKPOINT_DIR).join(checkpoint_name(seq)))
        .unwrap();
    let tmp = Path::new(CHECKPOINT_DIR).join(format!("{}.tmp", checkpoint_name(seq + 12)));
    let file = storage.create(&tmp).unwrap();
    writ_log::storage::write_all_at(&*file, &bytes[..bytes.len() / 2], 0).unwrap();
    file.sync_data().unwrap();
    storage.sync_dir(Path::new(CHECKPOINT_DIR)).unwrap();
    let crashed = storage.crash();
    let report = assert_loads(&crashed, seq);
    assert_eq!(report.checkpoints_ignored.len(), 1);
    assert!(report.checkpoints_ignored[0].1.starts_with("unfinished"));
    assert_eq!(checkpoints(&crashed), [checkpoint_name(seq)]);
    assert!(
        !crashed
            .durable_file_names(Path::new(CHECKPOINT_DIR))
            .iter()
            .any(|n| n.ends_with(".tmp")),
        "removed, durably"
    );
}

/// Records after the newest checkpoint, then a clean shutdown whose checkpoint's write
/// fails at `op`, then a crash.
fn shutdown_failing(storage: &SimStorage, op: SimOp) -> SimStorage {
    let (engine, _) = open(storage, 1_000_000);
    submit(&engine, 200, 5);
    // The dedupe thread's spill at shutdown renames and syncs its directory first.
    storage.fail_nth(op, 1);
    engine.shutdown();
    storage.clear_faults();
    storage.crash()
}

#[test]
fn a_crash_before_the_rename_keeps_the_previous_checkpoint() {
    let storage = SimStorage::new();
    let (_, newest) = two_checkpoints(&storage);
    let crashed = shutdown_failing(&storage, SimOp::Rename);
    assert_loads(&crashed, newest);
    assert!(
        crashed.file_names(Path::new(CHECKPOINT_DIR)).len() == 2,
        "no .tmp left"
    );
}

#[test]
fn a_crash_after_the_rename_before_the_dir_sync_keeps_the_previous_checkpoint() {
    let storage = SimStorage::new();
    let (older, newest) = two_checkpoints(&storage);
    let crashed = shutdown_failing(&storage, SimOp::SyncDir);
    let report = assert_loads(&crashed, newest);
    assert!(report.checkpoints_ignored.is_empty());
    assert_eq!(
        checkpoints(&crashed),
        [checkpoint_name(older), checkpoint_name(newest)],
        "the rename was not durable"
    );
}

#[test]
fn a_crash_after_the_dir_sync_loads_the_new_checkpoint() {
    let storage = SimStorage::new();
    let (_, newest) = two_checkpoints(&storage);
    let (engine, _) = open(&storage, 1_000_000);
    submit(&engine, 200, 5);
    engine.shutdown();
    let crashed = storage.crash();
    let (_, report) = open(&crashed.crash(), 0);
    assert!(report.commands > newest);
    assert_loads(&crashed, report.commands);
    assert_eq!(checkpoints(&crashed).len(), 2, "the oldest removed");
}

#[test]
fn a_checkpoint_past_a_torn_journal_tail_is_ignored_and_removed() {
    let storage = SimStorage::new();
    let (_, before_it) = two_checkpoints(&storage);
    // One more command, alone in its frame, then a checkpoint covering it at shutdown.
    let (engine, _) = open(&storage, 1_000_000);
    let segment = Path::new("journal").join(format!("{:020}.wlog", 0));
    let before = storage.read_written(&segment).unwrap();
    let Submitted::New(pending) = engine
        .submit(Uuid::from_u128(500), "Ping", None, &ping("last", 0))
        .unwrap()
    else {
        panic!("a fresh id");
    };
    let last = pending.blocking_outcome().unwrap().sequence;
    let after = storage.read_written(&segment).unwrap();
    engine.shutdown();
    let newest = checkpoints(&storage).pop().unwrap();
    assert_eq!(newest, checkpoint_name(last + 1));
    // Its frame's bytes rot: the log cuts it as a corrupt tail, below the checkpoint.
    let frame = changed_range(&before, &after);
    storage.flip(&segment, frame.start + 40, 1).unwrap();
    let crashed = storage.crash();
    let (engine, report) = open(&crashed, 0);
    assert!(report.truncated.is_some());
    assert_eq!(report.commands, last);
    assert_eq!(report.checkpoint, Some(before_it), "the one before");
    assert!(
        report
            .checkpoints_ignored
            .iter()
            .any(|(name, why)| *name == newest && why.starts_with("past_end")),
        "{:?}",
        report.checkpoints_ignored
    );
    assert!(!checkpoints(&crashed).contains(&newest), "removed");
    let full = without_checkpoints(&crashed);
    let (scanned, full_report) = open(&full, 0);
    assert_eq!(
        observe(&engine, report.commands),
        observe(&scanned, full_report.commands)
    );
}

#[test]
fn a_damaged_checkpoint_is_ignored_and_the_one_before_loads() {
    for damage in ["bit flip", "name durable before data"] {
        let storage = SimStorage::new();
        let (older, newest) = two_checkpoints(&storage);
        let path = Path::new(CHECKPOINT_DIR).join(checkpoint_name(newest));
        let len = storage.read_written(&path).unwrap().len() as u64;
        match damage {
            "bit flip" => storage.flip(&path, len / 2, 1).unwrap(),
            _ => storage
                .corrupt(&path, 100, &vec![0; (len - 100) as usize])
                .unwrap(),
        }
        let crashed = storage.crash();
        let report = assert_loads(&crashed, older);
        assert_eq!(report.checkpoints_ignored.len(), 1, "{damage}");
        assert!(
            report.checkpoints_ignored[0].1.starts_with("damaged"),
            "{damage}"
        );
        assert_eq!(checkpoints(&crashed), [checkpoint_name(older)], "removed");
    }
}

#[test]
fn a_checkpoint_of_another_journal_is_ignored_after_replay_apply() {
    let storage = SimStorage::new();
    let (engine, _) = open(&storage, 1_000_000);
    submit(&engine, 1, 20);
    engine.shutdown();
    let old = checkpoints(&storage).pop().unwrap();
    let mut replay_options = options(0);
    replay_options.clock = Arc::new(ManualClock::at_ms(0));
    let replayed = replay::replay(
        Arc::new(storage.clone()),
        support::relay_and_counters(),
        replay_options,
        &mut |_| {},
    )
    .expect("replayed");
    assert!(replayed.report.differences.is_empty());
    replay::apply(&storage, &replayed).expect("applied");
    // The old journal's checkpoint copied beside the replayed journal, whose records are
    // the same bytes: only the journal's directory in the mark tells them apart.
    let bytes = storage
        .read_written(&Path::new(CHECKPOINT_DIR).join(&old))
        .unwrap();
    storage
        .create_dir_all(Path::new("replay-1/checkpoints"))
        .unwrap();
    let copy = storage
        .create(&Path::new("replay-1/checkpoints").join(&old))
        .unwrap();
    writ_log::storage::write_all_at(&*copy, &bytes, 0).unwrap();
    copy.sync_data().unwrap();
    storage.sync_dir(Path::new("replay-1/checkpoints")).unwrap();
    storage.sync_dir(Path::new("replay-1")).unwrap();
    let (engine, report) = open(&storage, 1_000_000);
    assert_eq!(report.checkpoint, None);
    assert_eq!(
        report.checkpoints_ignored,
        [(
            old.clone(),
            "other_journal: the journal's mark differs".to_owned()
        )]
    );
    assert_eq!(engine.journal_dir(), Path::new("replay-1/journal"));
    assert!(
        storage
            .file_names(Path::new("replay-1/checkpoints"))
            .is_empty(),
        "removed"
    );
    engine.shutdown();
    // The applied journal writes its own at shutdown, and the next start loads it.
    let (_, report) = open(&storage, 0);
    assert_eq!(report.checkpoint, Some(report.commands));
}

#[test]
fn a_checkpoint_of_another_build_or_format_is_ignored_and_kept() {
    for other in ["build", "format"] {
        let storage = SimStorage::new();
        let (older, newest) = two_checkpoints(&storage);
        let path = Path::new(CHECKPOINT_DIR).join(checkpoint_name(newest));
        let bytes = storage.read_written(&path).unwrap();
        let changed = match other {
            "build" => {
                let mut checkpoint = Checkpoint::decode(&bytes).unwrap();
                checkpoint.build = "writ-engine 0.0.1-other".to_owned();
                checkpoint.encode()
            }
            _ => {
                let mut bytes = bytes.clone();
                bytes[8] = 2;
                bytes
            }
        };
        storage.remove(&path).unwrap();
        let file = storage.create(&path).unwrap();
        writ_log::storage::write_all_at(&*file, &changed, 0).unwrap();
        file.sync_data().unwrap();
        storage.sync_dir(Path::new(CHECKPOINT_DIR)).unwrap();
        let crashed = storage.crash();
        let report = assert_loads(&crashed, older);
        assert!(
            report.checkpoints_ignored[0]
                .1
                .starts_with(&format!("other_{other}")),
            "{:?}",
            report.checkpoints_ignored
        );
        assert_eq!(
            checkpoints(&crashed),
            [checkpoint_name(older), checkpoint_name(newest)],
            "kept"
        );
    }
}

#[test]
fn a_start_from_a_checkpoint_with_dedupe_runs_answers_every_id_as_a_full_scan() {
    let options = || EngineOptions {
        dedupe_spill_entries: 8,
        ..options(1_000_000)
    };
    let open = |storage: &SimStorage| {
        Engine::open(
            Arc::new(storage.clone()),
            support::relay_and_counters(),
            options(),
        )
        .expect("engine opens")
    };
    let storage = SimStorage::new();
    let (engine, _) = open(&storage);
    submit(&engine, 1, 40);
    wait_until(|| engine.stats().dedupe_runs > 0);
    engine.shutdown();
    let (engine, _) = open(&storage);
    submit(&engine, 100, 7);
    engine.shutdown();
    let full = without_checkpoints(&storage);
    let (from_checkpoint, report) = open(&storage);
    assert!(report.checkpoint.is_some());
    assert!(report.dedupe_runs > 0);
    let (scanned, full_report) = open(&full);
    assert_eq!(full_report.checkpoint, None);
    assert_eq!(report.dedupe_entries, full_report.dedupe_entries);
    for engine in [&from_checkpoint, &scanned] {
        for i in (1..41).chain(100..107) {
            let (command, payload) = if i % 5 == 0 {
                ("Remind", remind(&format!("r{}", i % 7), 0))
            } else {
                ("Ping", ping(&format!("r{}", i % 7), 1))
            };
            let answer = engine.submit(Uuid::from_u128(i), command, None, &payload);
            if i % 5 == 0 {
                // The reminder's time differs: the same id with another payload.
                assert!(matches!(answer, Err(SubmitError::Conflict { .. })), "{i}");
            } else {
                assert!(matches!(answer, Ok(Submitted::Duplicate)), "{i}");
            }
        }
    }
    assert_eq!(
        observe(&from_checkpoint, report.commands),
        observe(&scanned, full_report.commands)
    );
}

#[test]
fn a_clean_shutdown_spills_the_dedupe_hot_map_so_a_restart_reads_no_record_for_it() {
    let storage = SimStorage::new();
    let (engine, _) = open(&storage, 1_000_000);
    submit(&engine, 1, 30);
    let durable = engine.stats().commands_accepted + engine.stats().commands_issued;
    assert!(engine.stats().dedupe_hot_entries > 0);
    engine.shutdown();
    let (engine, report) = open(&storage, 1_000_000);
    assert_eq!(report.checkpoint, Some(durable));
    assert_eq!(report.dedupe_runs_written, 0, "nothing left to rebuild");
    assert_eq!(engine.stats().dedupe_hot_entries, 0, "every id is in a run");
    assert_eq!(report.dedupe_entries as u64, durable);
    assert!(matches!(
        engine.submit(Uuid::from_u128(1), "Ping", None, &ping("r1", 1)),
        Ok(Submitted::Duplicate)
    ));
}

/// The one lock the `writ-checkpoint` thread shares with the writer's path: following the
/// journal, its reader copies one segment's record offsets under the journal index's read
/// lock (the syncer takes its write lock once per commit). Times that copy for a full
/// 64 MiB segment of 200-byte records (about 240,000), the most it holds it at once, and
/// the whole pass over 1,000,000 records. Run in release:
/// `cargo test --release -p writ-engine --test checkpoint lock_hold -- --ignored --nocapture`.
#[test]
#[ignore = "a timing print, for release builds"]
fn lock_hold_of_following_the_journal_at_a_million_records() {
    let storage = Arc::new(SimStorage::new());
    let (mut log, _) = writ_log::Log::open(
        storage,
        Path::new("journal"),
        writ_log::LogOptions {
            preallocate: false,
            ..writ_log::LogOptions::default()
        },
    )
    .unwrap();
    let record = [7u8; 200];
    for _ in 0..(1_000_000 / 4_000) {
        for _ in 0..4_000 {
            log.append(&record).unwrap();
        }
        log.commit().unwrap();
    }
    let reader = log.reader();
    let mut worst = std::time::Duration::ZERO;
    let started = std::time::Instant::now();
    let mut iter = reader.iter_from(0);
    let mut count = 0u64;
    loop {
        // The step that copies a segment's offsets under the lock also reads a chunk of
        // the segment (without it): the longest step bounds the lock's hold from above.
        let step = std::time::Instant::now();
        let Some(item) = iter.next_record() else {
            break;
        };
        worst = worst.max(step.elapsed());
        item.unwrap();
        count += 1;
    }
    assert_eq!(count, 1_000_000);
    println!(
        "following 1,000,000 records: {:?}; the longest step (a segment's offsets copied under the lock, and a chunk read) {:?}",
        started.elapsed(),
        worst
    );
}
