//! Engine checkpoints (`checkpoints/{seq:020}.ckpt`) on the simulated storage: the
//! `writ-checkpoint` thread writes one every `checkpoint_every_records` records and at a
//! clean shutdown, keeps the newest two, and what it writes is the state the engine
//! serves (every stream's positions, the last position, the records, the pending timers).
//!
//! Checkpoint crash tests (docs/log-format.md, "Checkpoint decision table"), by name:
//! see the tests below whose names start with `a_crash_` and `a_checkpoint_`.

use std::path::Path;
use std::sync::Arc;

use uuid::Uuid;
use writ_engine::checkpoint::{CHECKPOINT_BUILD, CHECKPOINT_DIR, Checkpoint, checkpoint_name};
use writ_engine::{Engine, EngineOptions, Submitted};
use writ_log::storage::SimStorage;

mod support;
use support::{now_ms, ping, remind, wait_until};

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
    submit(&engine, 1, 30); // 30 clients' commands and 24 process commands: 54 records
    wait_until(|| checkpoints(&storage).len() == 2);
    let names = checkpoints(&storage);
    assert_eq!(names, [checkpoint_name(20), checkpoint_name(40)]);
    let at_40 = read(&storage, &names[1]);
    assert_eq!(at_40.seq, 40);
    assert_eq!(at_40.commit_first_position.len(), 40);
    let durable = engine.stats().commands_accepted + engine.stats().commands_issued;
    engine.shutdown();
    let names = checkpoints(&storage);
    assert_eq!(names, [checkpoint_name(40), checkpoint_name(durable)]);
    assert_eq!(
        storage.durable_file_names(Path::new(CHECKPOINT_DIR)),
        storage.file_names(Path::new(CHECKPOINT_DIR)),
        "every checkpoint written is durable, and nothing else is left"
    );
    // The same journal opened again (a full scan) serves what the checkpoint holds.
    let (engine, report) = open(&storage, 0);
    assert_eq!(report.commands, durable);
    let last = read(&storage, &names[1]);
    assert_matches_engine(&last, &engine, durable);
    assert_eq!(
        last.timers.len(),
        6,
        "every fifth command set a timer an hour away"
    );
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
