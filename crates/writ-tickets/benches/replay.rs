//! Replay speed of the tickets projection: how long a start takes per million events.
//!
//! `cargo bench -p writ-tickets --bench replay [-- --tickets N --comments M --runs R --skip-engine --skip-memory]`
//!
//! 1. From memory: `--tickets` `TicketOpened` then `--comments` `CommentAdded` events
//!    (default 100k + 900k) applied by a [`Replay`] in batches of 4,096, a snapshot taken
//!    and held until the next one every 2 s (as the runtime publishes while catching up)
//!    or, for comparison, after every batch, so the copy-on-write cost is counted.
//! 2. From an engine's log on disk: the same workload submitted as commands to an engine
//!    on a temporary directory (this takes a while), then a [`ProjectionRuntime`] started on
//!    it until it has published the last position, as at a server start.
//!
//! Each prints the median of `--runs` (default 5) runs, and a last line of key=value pairs.
//! Every run also prints the CPU time it took (the applying thread's from memory; all of
//! the process's threads from the engine's log), which varies much less than wall time on
//! a machine others share, and the first memory run how much the resident set grew (about
//! the read model's size). Engine runs also print the CPU time of the runtime's reader
//! (`writ-read`) and applying (`writ-apply`) threads: the larger one bounds the
//! wall time on an idle machine. `--skip-memory` runs only the engine part, `--in-place-only`
//! only the memory run that publishes once at the end (for profiling).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use uuid::Uuid;
use writ_domain::model::domain;
use writ_engine::{Engine, EngineOptions, Pending, Registry, SubmitError, Submitted};
use writ_query::{ProjectionRuntime, RecordedEvent, Replay, RuntimeOptions};
use writ_tickets::read::{TicketsProjection, workload as read_workload};
use writ_tickets::{Tickets, workload};

struct Options {
    tickets: u64,
    comments: u64,
    runs: usize,
    engine: bool,
    memory: bool,
    /// Only the memory run that publishes one snapshot at the end (for profiling).
    in_place_only: bool,
}

fn options() -> Options {
    let mut options = Options {
        tickets: 100_000,
        comments: 900_000,
        runs: 5,
        engine: true,
        memory: true,
        in_place_only: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("{arg} needs a number"))
        };
        match arg.as_str() {
            "--tickets" => options.tickets = value(),
            "--comments" => options.comments = value(),
            "--runs" => options.runs = value() as usize,
            "--skip-engine" => options.engine = false,
            "--skip-memory" => options.memory = false,
            "--in-place-only" => options.in_place_only = true,
            _ => {} // `cargo bench` passes `--bench`
        }
    }
    options
}

/// The `writ` binary's allocator: replay allocates and frees many small nodes.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// CPU time this thread has run, from `/proc/thread-self/schedstat` (Linux; `None`
/// elsewhere). On a shared machine wall time swings with the other work; CPU time much
/// less, so each run prints both.
fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// CPU time of the whole process (every thread), from `/proc/self/stat`'s `utime` and
/// `stime` in clock ticks (assumed 100 per second, Linux's `USER_HZ` on every common
/// platform); `None` elsewhere.
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// The resident set size in bytes, from `/proc/self/statm` (assuming 4 KiB pages);
/// `None` elsewhere.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// CPU time of each of this process's threads whose name starts with one of `prefixes`
/// (names are cut to 15 bytes), from
/// `/proc/self/task/*/schedstat` (Linux; empty elsewhere): how the runtime's work splits
/// between its reader thread and its applying thread, the one that sets the pace.
fn threads_cpu(prefixes: &[&str]) -> Vec<(String, Duration)> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut threads: Vec<(String, Duration)> = tasks
        .flatten()
        .filter_map(|task| {
            let name = std::fs::read_to_string(task.path().join("comm")).ok()?;
            let name = name.trim_end();
            if !prefixes.iter().any(|prefix| name.starts_with(prefix)) {
                return None;
            }
            let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            let ns = stat.split_whitespace().next()?.parse().ok()?;
            Some((name.to_owned(), Duration::from_nanos(ns)))
        })
        .collect();
    threads.sort();
    threads
}

fn cpu_since(start: Option<Duration>, now: Option<Duration>) -> String {
    match (start, now) {
        (Some(start), Some(now)) => format!(", {:.3} s CPU", (now - start).as_secs_f64()),
        _ => String::new(),
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let options = options();
    let events = read_workload::events(options.tickets, options.comments);
    let total = events.len() as u64;
    println!(
        "replay: {} tickets, {} comments, {} events, {} runs",
        options.tickets, options.comments, total, options.runs
    );

    let batch = RuntimeOptions::default().batch_events_max;
    let interval = RuntimeOptions::default().catch_up_publish_interval;
    let mut every_batch = Vec::new();
    let mut memory = Vec::new();
    for _ in 0..options.runs * usize::from(options.memory) {
        if options.in_place_only {
            memory_run(&events, batch, Duration::MAX, "one snapshot at the end");
            continue;
        }
        every_batch.push(memory_run(
            &events,
            batch,
            Duration::ZERO,
            "snapshot per batch",
        ));
        memory.push(memory_run(
            &events,
            batch,
            interval,
            "snapshot per 2 s (the runtime's default)",
        ));
        memory_run(
            &events,
            batch,
            Duration::from_secs(1),
            "snapshot per second",
        );
        memory_run(
            &events,
            batch,
            Duration::from_millis(100),
            "snapshot per 100 ms",
        );
        memory_run(&events, batch, Duration::MAX, "one snapshot at the end");
    }
    if options.in_place_only {
        return;
    }
    let memory = if options.memory {
        println!(
            "memory median, snapshot per batch of {batch}: {:.0} events/s",
            median(every_batch)
        );
        let memory = median(memory);
        println!("memory median: {memory:.0} events/s");
        memory
    } else {
        0.0
    };
    drop(events);

    let mut engine_median = 0.0;
    if options.engine {
        let dir = std::env::temp_dir().join(format!("writ-replay-bench-{}", Uuid::new_v4()));
        let result = std::panic::catch_unwind(|| engine_runs(&dir, &options));
        let _ = std::fs::remove_dir_all(&dir);
        match result {
            Ok(value) => engine_median = value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
    println!(
        "events={total} memory_events_per_s={memory:.0} engine_events_per_s={engine_median:.0}"
    );
}

/// Applies `events` in batches, publishing a snapshot (held until the next) after a batch
/// when `interval` has passed since the last one, as the runtime does while catching up.
fn memory_run(events: &[RecordedEvent], batch: usize, interval: Duration, label: &str) -> f64 {
    let resident = resident_bytes();
    let cpu = thread_cpu();
    let started = Instant::now();
    let mut replay = Replay::new(TicketsProjection::current());
    let mut published;
    let mut published_at = Instant::now();
    let mut chunks = events.chunks(batch).peekable();
    loop {
        let chunk = chunks.next().expect("at least one batch");
        replay.apply(chunk);
        let last = chunks.peek().is_none();
        if last || published_at.elapsed() >= interval {
            // Held until the next one, as readers hold published snapshots.
            published = Arc::new(replay.snapshot());
            published_at = Instant::now();
            if last {
                break;
            }
        }
    }
    let elapsed = started.elapsed();
    let cpu = cpu_since(cpu, thread_cpu());
    // Growth of the resident set: on the first run about the read model's size; later
    // runs mostly reuse what the allocator kept from earlier ones.
    let grown = match (resident, resident_bytes()) {
        (Some(before), Some(after)) if after > before => {
            format!(", resident +{} MiB", (after - before) >> 20)
        }
        _ => String::new(),
    };
    assert_eq!(published.position, events.len() as u64);
    assert_eq!(replay.stats().errors, 0);
    let per_s = events.len() as f64 / elapsed.as_secs_f64();
    // Freeing the read model is not part of the time to a caught-up read model.
    let started = Instant::now();
    drop((replay, published));
    println!(
        "  memory, {label}: {:.3} s{cpu}, {per_s:.0} events/s (then {:.3} s to free it){grown}",
        elapsed.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    per_s
}

fn engine_runs(dir: &std::path::Path, options: &Options) -> f64 {
    let engine = Arc::new(populate(dir, options));
    let last = engine.last_position();
    assert_eq!(last, options.tickets + options.comments);

    // The engine's own read path, for comparison: the subscription without a projection.
    let cpu = thread_cpu();
    let started = Instant::now();
    let mut subscription = engine.subscribe(1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut read = 0;
    while read < last {
        read += rt
            .block_on(subscription.next_batch(RuntimeOptions::default().batch_events_max))
            .unwrap()
            .len() as u64;
    }
    let elapsed = started.elapsed();
    println!(
        "  subscription alone: {:.3} s{}, {:.0} events/s",
        elapsed.as_secs_f64(),
        cpu_since(cpu, thread_cpu()),
        last as f64 / elapsed.as_secs_f64()
    );

    let mut runs = Vec::new();
    for _ in 0..options.runs {
        let cpu = process_cpu();
        let started = Instant::now();
        let runtime = ProjectionRuntime::start(
            engine.clone(),
            TicketsProjection::current(),
            RuntimeOptions::default(),
        )
        .unwrap();
        let snapshot = runtime
            .blocking_wait_for(last, Duration::from_secs(600))
            .unwrap();
        let elapsed = started.elapsed();
        let cpu = cpu_since(cpu, process_cpu());
        // The runtime's threads are still running (following the log): their CPU so far.
        let threads: String = threads_cpu(&["writ-read", "writ-apply"])
            .iter()
            .map(|(name, cpu)| format!(", {name} {:.3} s", cpu.as_secs_f64()))
            .collect();
        assert_eq!(snapshot.state.len() as u64, options.tickets);
        assert_eq!(runtime.status().stats.errors, 0);
        let per_s = last as f64 / elapsed.as_secs_f64();
        println!(
            "  engine log → runtime: {:.3} s{cpu} (all threads{threads}), {per_s:.0} events/s",
            elapsed.as_secs_f64()
        );
        runs.push(per_s);
        drop(snapshot);
        runtime.shutdown();
    }
    let median = median(runs);
    println!("engine median: {median:.0} events/s");
    engine.shutdown();
    median
}

/// Submits the workload as commands (opens, then comments round-robin), keeping at most
/// 4,096 unacknowledged, and waits for every outcome.
fn populate(dir: &std::path::Path, options: &Options) -> Engine {
    let started = Instant::now();
    let registry = Registry::builder()
        .domain(domain::<Tickets>())
        .build()
        .unwrap();
    let (engine, _) = Engine::open_dir(dir, registry, EngineOptions::default()).unwrap();
    let commands = options.tickets + options.comments;
    let base = Uuid::new_v4().as_u128();
    let mut payload = Vec::with_capacity(256);
    let mut window: VecDeque<Pending> = VecDeque::new();
    let mut next = 0;
    while next < commands || !window.is_empty() {
        while next < commands && window.len() < 4096 {
            payload.clear();
            let (name, version) = if next < options.tickets {
                workload::write_open_ticket_payload(&mut payload, next);
                (workload::OPEN_TICKET, workload::OPEN_TICKET_VERSION)
            } else {
                let i = next - options.tickets;
                workload::write_add_comment_payload(
                    &mut payload,
                    i % options.tickets,
                    i / options.tickets,
                );
                (workload::ADD_COMMENT, workload::ADD_COMMENT_VERSION)
            };
            let id = Uuid::from_u128(base ^ u128::from(next));
            match engine.submit(id, name, Some(version), &payload) {
                Ok(Submitted::New(pending)) => {
                    window.push_back(pending);
                    next += 1;
                }
                Ok(Submitted::Duplicate) => panic!("a fresh id reported as a duplicate"),
                Err(SubmitError::Overloaded(_)) => break,
                Err(e) => panic!("submit: {e}"),
            }
        }
        if let Some(pending) = window.pop_front() {
            let status = pending.blocking_outcome().unwrap();
            assert_eq!(status.state, writ_engine::CommandState::Succeeded);
        }
    }
    println!(
        "  populated {commands} commands in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    engine
}
