//! `writ bench engine`: the tickets workload through the engine in-process (no HTTP),
//! printing a machine-readable last line `commands_per_s=N p50_ms=X p99_ms=Y`.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use uuid::Uuid;
use writ_engine::{
    CommandState, CommandStatus, Engine, EngineOptions, Pending, Registry, SubmitError, Submitted,
    Unavailable,
};
use writ_tickets::{Tickets, workload};

/// `writ bench engine`'s arguments.
#[derive(Debug, Args)]
pub struct EngineArgs {
    /// Data directory; must not hold a store yet. Default: a fresh directory under the
    /// system's temporary directory, removed afterwards.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Number of tickets (the first commands open them).
    #[arg(long, default_value_t = 10_000)]
    tickets: u64,
    /// Total number of commands, opens included.
    #[arg(long, default_value_t = 100_000)]
    commands: u64,
    /// Most commands submitted and not yet acknowledged (durable in the command log). Each
    /// command counts, and its latency ends, when its outcome is durable.
    #[arg(long, default_value_t = 1_000)]
    in_flight: usize,
}

/// Removes the directory on drop when the bench made it.
struct TempDir(Option<PathBuf>);

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

pub fn run(args: EngineArgs) -> Result<(), String> {
    if args.tickets == 0 || args.commands < args.tickets {
        return Err("--commands must be at least --tickets, and --tickets at least 1".into());
    }
    if args.in_flight == 0 {
        return Err("--in-flight must be at least 1".into());
    }
    let (dir, _cleanup) = match args.data_dir {
        Some(dir) => {
            if dir.join("journal").exists() || dir.join("commands").exists() {
                return Err(format!(
                    "{} already holds a store; give an empty directory",
                    dir.display()
                ));
            }
            (dir, TempDir(None))
        }
        None => {
            let dir = std::env::temp_dir().join(format!(
                "writ-bench-{}-{}",
                std::process::id(),
                Uuid::new_v4()
            ));
            (dir.clone(), TempDir(Some(dir)))
        }
    };
    let options = EngineOptions {
        intake_queue_max: args.in_flight.max(16_384),
        ..EngineOptions::default()
    };
    let registry = Registry::builder()
        .domain(writ_domain::model::domain::<Tickets>())
        .build()
        .map_err(|e| e.to_string())?;
    let (engine, _) = Engine::open_dir(&dir, registry, options).map_err(|e| e.to_string())?;

    let base = Uuid::new_v4().as_u128();
    let mut payload = Vec::with_capacity(256);
    // Submitted and not yet acknowledged (durable in the command log): the window.
    let mut unacknowledged: VecDeque<(Instant, Pending)> = VecDeque::with_capacity(args.in_flight);
    // Acknowledged, outcome not yet durable.
    let mut executing: VecDeque<(Instant, Pending)> = VecDeque::new();
    let mut latencies_us: Vec<u32> = Vec::with_capacity(args.commands as usize);
    let mut failed = 0u64;
    let mut finish =
        |submitted: Instant, outcome: Result<CommandStatus, Unavailable>, now: Instant| {
            latencies_us.push(
                now.duration_since(submitted)
                    .as_micros()
                    .min(u128::from(u32::MAX)) as u32,
            );
            match outcome {
                Ok(status) if status.state == CommandState::Succeeded => {}
                _ => failed += 1,
            }
        };
    let started = Instant::now();
    let mut next = 0;
    while next < args.commands || !unacknowledged.is_empty() {
        // Fill the window.
        while next < args.commands && unacknowledged.len() < args.in_flight {
            payload.clear();
            let (name, version) = if next < args.tickets {
                workload::write_open_ticket_payload(&mut payload, next);
                (workload::OPEN_TICKET, workload::OPEN_TICKET_VERSION)
            } else {
                workload::write_add_comment_payload(
                    &mut payload,
                    next % args.tickets,
                    next / args.tickets,
                );
                (workload::ADD_COMMENT, workload::ADD_COMMENT_VERSION)
            };
            let id = Uuid::from_u128(base ^ u128::from(next));
            let submitted = Instant::now();
            match engine.submit(id, name, Some(version), &payload) {
                Ok(Submitted::New(pending)) => {
                    unacknowledged.push_back((submitted, pending));
                    next += 1;
                }
                Ok(Submitted::Duplicate) => {
                    return Err(format!("command {id} reported as a duplicate"));
                }
                // The engine's queues are full: let it drain.
                Err(SubmitError::Overloaded(_)) => break,
                Err(e) => return Err(format!("submit: {e}")),
            }
        }
        // Wait for the oldest acknowledgement (commands are acknowledged in order), then
        // move every acknowledged command out of the window.
        if let Some((_, pending)) = unacknowledged.front_mut() {
            pending
                .blocking_accepted()
                .map_err(|e| format!("a command was not acknowledged: {e}"))?;
        }
        while let Some((_, pending)) = unacknowledged.front_mut() {
            match pending.try_accepted() {
                None => break,
                Some(Ok(_)) => executing.push_back(unacknowledged.pop_front().expect("front")),
                Some(Err(e)) => return Err(format!("a command was not acknowledged: {e}")),
            }
        }
        // Collect the outcomes that are in (outcomes also arrive in order).
        let now = Instant::now();
        while let Some((submitted, pending)) = executing.front_mut() {
            match pending.try_outcome() {
                None => break,
                Some(outcome) => {
                    let submitted = *submitted;
                    executing.pop_front();
                    finish(submitted, outcome, now);
                }
            }
        }
    }
    while let Some((submitted, pending)) = executing.pop_front() {
        let outcome = pending.blocking_outcome();
        finish(submitted, outcome, Instant::now());
    }
    let elapsed = started.elapsed();
    let stats = engine.stats();
    engine.shutdown();

    latencies_us.sort_unstable();
    let pct = |p: f64| {
        let i = ((latencies_us.len() as f64 - 1.0) * p).round() as usize;
        f64::from(latencies_us[i]) / 1000.0
    };
    let per_s = args.commands as f64 / elapsed.as_secs_f64();
    println!(
        "commands={} tickets={} in_flight={} elapsed_s={:.3} failed={failed}",
        args.commands,
        args.tickets,
        args.in_flight,
        elapsed.as_secs_f64()
    );
    println!(
        "syncs={} commands_per_sync={:.1}",
        stats.batches,
        stats.commands_accepted as f64 / stats.batches.max(1) as f64,
    );
    if failed > 0 {
        return Err(format!("{failed} commands did not succeed"));
    }
    println!(
        "commands_per_s={per_s:.0} p50_ms={:.3} p99_ms={:.3}",
        pct(0.50),
        pct(0.99)
    );
    Ok(())
}
