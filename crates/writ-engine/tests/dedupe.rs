//! The dedupe index at sustained peak, with tiny spill sizes: ids spilled to run files in
//! `dedupe/` stay duplicates (confirmed against the journal), a full disk refuses at the
//! hot map's bound and loses nothing, and a day of turnover with a short window on a
//! manual clock keeps every id of the window, refuses none and stays bounded.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;
use writ_engine::dedupe_run::{FOOTER_BYTES, RunFooter, RunTail};
use writ_engine::{
    CommandState, Engine, EngineOptions, ManualClock, Overload, SubmitError, Submitted,
};
use writ_fixtures::Counters;
use writ_log::storage::SimStorage;

mod support;
use support::wait_until;

fn counters() -> writ_engine::Registry {
    writ_engine::Registry::builder()
        .domain(writ_domain::model::domain::<Counters>())
        .build()
        .expect("one domain")
}

fn options(spill: usize, max: usize) -> EngineOptions {
    EngineOptions {
        dedupe_spill_entries: spill,
        dedupe_entries_max: max,
        log: writ_log::LogOptions {
            segment_bytes: 4 << 20,
            record_bytes_max: 2 << 20,
            preallocate: false,
            ..writ_log::LogOptions::default()
        },
        ..EngineOptions::default()
    }
}

fn open(storage: &SimStorage, options: EngineOptions) -> (Engine, writ_engine::RecoveryReport) {
    Engine::open(Arc::new(storage.clone()), counters(), options).expect("engine opens")
}

fn create(n: u128) -> Vec<u8> {
    format!(r#"{{"counterId":"c{n}","title":"T","owner":"ann"}}"#).into_bytes()
}

fn submit(engine: &Engine, n: u128, payload: &[u8]) -> Result<Submitted, SubmitError> {
    engine.submit(Uuid::from_u128(n), "CreateCounter", None, payload)
}

/// Runs a new command to its outcome.
fn run(engine: &Engine, n: u128) {
    match submit(engine, n, &create(n)).expect("submit") {
        Submitted::New(pending) => {
            let status = pending.blocking_outcome().expect("outcome");
            assert_eq!(status.state, CommandState::Succeeded);
        }
        Submitted::Duplicate => panic!("fresh id {n} reported as a duplicate"),
    }
}

fn is_duplicate(engine: &Engine, n: u128) -> bool {
    matches!(submit(engine, n, &create(n)), Ok(Submitted::Duplicate))
}

/// Every spill that is due has happened.
fn spilled(engine: &Engine) {
    let spill = engine.options().dedupe_spill_entries;
    wait_until(|| engine.stats().dedupe_hot_entries < spill);
}

fn run_files(storage: &SimStorage) -> Vec<String> {
    let mut names: Vec<String> = storage
        .file_names(Path::new("dedupe"))
        .into_iter()
        .filter(|n| n.ends_with(".ids"))
        .collect();
    names.sort();
    names
}

/// An engine that ran ids `1..=ids` and never spilled: its journal holds them, no run.
fn journal_only(storage: &SimStorage, ids: u128) -> Engine {
    let (engine, _) = open(storage, options(1000, 1000));
    for n in 1..=ids {
        run(&engine, n);
    }
    engine
}

/// Removes the dedupe runs, as if the engine that wrote the journal had stopped without
/// spilling (a crash: a clean shutdown spills the hot map).
fn remove_runs(storage: &SimStorage) {
    for name in run_files(storage) {
        writ_log::storage::Storage::remove(storage, &Path::new("dedupe").join(name)).unwrap();
    }
    writ_log::storage::Storage::sync_dir(storage, Path::new("dedupe")).unwrap();
}

/// An engine that ran ids `1..=ids` and spilled what was due.
fn spilled_engine(storage: &SimStorage, spill: usize, ids: u128) -> Engine {
    let (engine, _) = open(storage, options(spill, 64));
    for n in 1..=ids {
        run(&engine, n);
    }
    spilled(&engine);
    engine
}

#[test]
fn ids_spilled_to_runs_stay_duplicates_conflicts_and_statuses_across_a_restart() {
    let storage = SimStorage::new();
    let engine = spilled_engine(&storage, 4, 30);
    let stats = engine.stats();
    assert!(stats.dedupe_runs >= 1, "{stats:?}");
    assert_eq!(stats.dedupe_entries, 30);
    let first = engine
        .status(Uuid::from_u128(1))
        .unwrap()
        .expect("status from a run");
    assert_eq!(first.sequence, 0);
    for n in 1..=30 {
        assert!(is_duplicate(&engine, n), "id {n} is a duplicate");
        assert!(matches!(
            submit(&engine, n, &create(n + 1000)),
            Err(SubmitError::Conflict { .. })
        ));
    }
    assert!(engine.status(Uuid::from_u128(31)).unwrap().is_none());
    engine.shutdown();
    drop(engine);

    let (engine, report) = open(&storage, options(4, 64));
    assert!(report.dedupe_runs >= 1, "{report:?}");
    assert_eq!(report.dedupe_runs_removed, 0, "{report:?}");
    assert_eq!(report.dedupe_entries, 30);
    assert!(
        engine.stats().dedupe_hot_entries < 4,
        "the bound holds at start"
    );
    assert_eq!(engine.status(Uuid::from_u128(1)).unwrap(), Some(first));
    for n in 1..=30 {
        assert!(
            is_duplicate(&engine, n),
            "id {n} is a duplicate after restart"
        );
    }
    run(&engine, 31);
}

#[test]
fn a_start_over_a_window_without_runs_spills_as_it_goes() {
    let storage = SimStorage::new();
    {
        let engine = journal_only(&storage, 50);
        assert_eq!(engine.stats().dedupe_runs, 0);
    }
    remove_runs(&storage);
    let (engine, report) = open(&storage, options(8, 16));
    assert_eq!(report.dedupe_runs_written, 6, "{report:?}");
    assert_eq!(engine.stats().dedupe_hot_entries, 2);
    for n in 1..=50 {
        assert!(is_duplicate(&engine, n), "id {n}");
    }
    run(&engine, 51);
}

#[test]
fn a_full_disk_keeps_the_ids_in_memory_refuses_at_the_hot_bound_and_loses_nothing() {
    let storage = SimStorage::new();
    let (engine, _) = open(&storage, options(2, 4));
    run(&engine, 1);
    // From now on nothing may grow: the journal writes into its segment, a run cannot.
    storage.set_capacity(storage.used_bytes());
    for n in 2..=4 {
        run(&engine, n);
    }
    wait_until(|| engine.stats().dedupe_spill_failures > 0);
    assert!(matches!(
        submit(&engine, 5, &create(5)),
        Err(SubmitError::Overloaded(Overload::DedupeIndexFull))
    ));
    for n in 1..=4 {
        assert!(is_duplicate(&engine, n), "id {n} is kept");
    }
    assert!(run_files(&storage).is_empty());
    assert!(
        storage
            .file_names(Path::new("dedupe"))
            .iter()
            .all(|n| !n.ends_with(".tmp")),
        "a failed spill leaves no .tmp"
    );
    // Room again: the next try spills, and intake takes new commands.
    storage.set_capacity(u64::MAX);
    wait_until(|| engine.stats().dedupe_hot_entries < 2);
    run(&engine, 5);
    for n in 1..=5 {
        assert!(is_duplicate(&engine, n), "id {n} is kept");
    }
}

/// A run that names, for an id never submitted, the record of another id.
fn plant_run(storage: &SimStorage, entries: &[(u128, u64)], last_seq: u64, at_ms: u64) {
    let mut encoder = writ_engine::dedupe_run::RunEncoder::new(
        writ_engine::dedupe_run::filter_blocks_for(entries.len() as u64),
    );
    for (id, seq) in entries {
        encoder.push(*id, *seq);
    }
    let bytes = encoder.finish_into_vec(0, last_seq, at_ms, at_ms);
    let path = Path::new("dedupe").join(format!("{:020}-{last_seq:020}.ids", 0));
    let file = writ_log::storage::Storage::create(storage, &path).unwrap();
    writ_log::storage::write_all_at(&*file, &bytes, 0).unwrap();
    file.sync_data().unwrap();
    writ_log::storage::Storage::sync_dir(storage, Path::new("dedupe")).unwrap();
}

#[test]
fn a_run_entry_whose_journal_record_holds_another_id_is_not_a_duplicate() {
    let storage = SimStorage::new();
    drop(journal_only(&storage, 3));
    remove_runs(&storage);
    // Records 0, 1, 2 hold ids 1, 2, 3; the run says stranger 99 is record 1.
    let now = support::now_ms();
    plant_run(&storage, &[(1, 0), (3, 2), (99, 1)], 2, now);
    let (engine, report) = open(&storage, options(1000, 1000));
    assert_eq!((report.dedupe_runs, report.dedupe_runs_removed), (1, 0));
    assert!(is_duplicate(&engine, 1), "confirmed against record 0");
    assert!(engine.status(Uuid::from_u128(99)).unwrap().is_none());
    run(&engine, 99);
    assert!(is_duplicate(&engine, 99));
}

#[test]
fn an_id_that_passes_a_filter_without_being_in_the_run_is_new() {
    let storage = SimStorage::new();
    let engine = spilled_engine(&storage, 16, 16);
    let name = &run_files(&storage)[0];
    let bytes = storage
        .read_written(&Path::new("dedupe").join(name))
        .unwrap();
    let footer = RunFooter::decode(&bytes[bytes.len() - FOOTER_BYTES..]).unwrap();
    let tail = RunTail::decode(&bytes[footer.tail_offset() as usize..]).unwrap();
    let stranger = (1000..)
        .find(|n| tail.may_contain(*n))
        .expect("some id passes the filter");
    assert!(engine.status(Uuid::from_u128(stranger)).unwrap().is_none());
    run(&engine, stranger);
}

#[test]
fn a_damaged_block_found_by_a_lookup_is_refused_then_rebuilt_from_the_journal() {
    let storage = SimStorage::new();
    let engine = spilled_engine(&storage, 8, 8);
    let name = run_files(&storage)[0].clone();
    storage
        .flip(&Path::new("dedupe").join(&name), 5, 1)
        .unwrap();
    let mut refused = false;
    for n in 1..=8 {
        match submit(&engine, n, &create(n)) {
            Err(SubmitError::Read(_)) => refused = true,
            Ok(Submitted::Duplicate) => {}
            other => panic!("id {n}: {other:?}"),
        }
    }
    assert!(refused, "the damaged block was read");
    wait_until(|| (1..=8).all(|n| is_duplicate(&engine, n)));
    assert_eq!(engine.stats().dedupe_runs, 1);
}

/// A full day at a short window: one hour of window, ids every 5 minutes of simulated time
/// for 24 hours, a spill every 6 ids.
#[test]
fn a_day_of_turnover_keeps_every_id_of_the_window_refuses_none_and_stays_bounded() {
    let storage = SimStorage::new();
    let clock = ManualClock::at_ms(1_700_000_000_000);
    let window = Duration::from_secs(3600);
    let step = Duration::from_secs(300);
    let options = EngineOptions {
        dedupe_window: window,
        clock: Arc::new(clock.clone()),
        ..options(6, 24)
    };
    let (engine, _) = open(&storage, options);
    // When each id was last accepted.
    let mut accepted_at: Vec<(u128, u64)> = Vec::new();
    let mut runs_max = 0;
    let mut memory_max = 0;
    let mut next = 1u128;
    let mut resent = 0;
    let steps = 24 * 3600 / step.as_secs();
    for _ in 0..steps {
        let now = writ_engine::Clock::now_ms(&clock);
        for _ in 0..3 {
            run(&engine, next);
            accepted_at.push((next, now));
            next += 1;
        }
        // An id from beyond the window comes back: it is new again.
        if let Some(&(old, _)) = accepted_at
            .iter()
            .find(|(_, at)| now - at > window.as_millis() as u64 + 60_000)
        {
            wait_until(|| engine.status(Uuid::from_u128(old)).unwrap().is_none());
            // A new command (the counter exists: the domain rejects it, once).
            let Ok(Submitted::New(pending)) = submit(&engine, old, &create(old)) else {
                panic!("id {old} beyond the window is new");
            };
            assert!(matches!(
                pending.blocking_outcome().unwrap().state,
                CommandState::Rejected { .. }
            ));
            resent += 1;
            accepted_at.retain(|(n, _)| *n != old);
            accepted_at.push((old, now));
        }
        spilled(&engine);
        for &(n, at) in &accepted_at {
            if now - at <= window.as_millis() as u64 {
                assert!(
                    is_duplicate(&engine, n),
                    "id {n} of {at} is within the window at {now}"
                );
            }
        }
        clock.advance(step);
        // The clock moved on: runs whose newest id left the window go.
        let horizon = writ_engine::Clock::now_ms(&clock) - window.as_millis() as u64;
        let in_window = accepted_at.iter().filter(|(_, at)| *at >= horizon).count();
        // Kept: the window's ids, and at most a run's span (a quarter of the window) more.
        wait_until(|| engine.stats().dedupe_entries <= in_window + 30);
        let stats = engine.stats();
        runs_max = runs_max.max(stats.dedupe_runs);
        memory_max = memory_max.max(stats.dedupe_memory_bytes);
    }
    let stats = engine.stats();
    assert_eq!(stats.commands_accepted, 3 * steps + resent);
    assert!(resent > 200, "{resent} ids came back after the window");
    assert_eq!(stats.dedupe_spill_failures, 0);
    println!("runs at most {runs_max}, memory at most {memory_max} bytes");
    assert!(runs_max <= 8, "at most {runs_max} runs");
    assert!(
        memory_max < 16 * 1024,
        "at most {memory_max} bytes of memory"
    );
    // Expired runs are gone from the disk too.
    assert!(run_files(&storage).len() <= 8, "{:?}", run_files(&storage));
}
