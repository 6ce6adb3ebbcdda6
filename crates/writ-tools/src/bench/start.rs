//! `writ bench start`: how long a server takes from its spawn until its read model answers
//! a query at the log's last position, on a log of `--events` tickets events, printing a
//! machine-readable last line `events=N open_ms=X open_full_replay_ms=Y`.
//!
//! 1. **The log, once.** When `DIR/data` holds no store, the tickets workload is written
//!    into it through the engine in-process (as `writ bench engine` does: one `OpenTicket`
//!    per ticket, then `AddComment`s round-robin, one event each), and `DIR/bench-start.txt`
//!    records how many events it holds. Later runs on the same `DIR` reuse it (a log of
//!    10 million events takes a minute or so to write; a start is what is timed).
//! 2. **Starts.** `--rounds` times: `writ serve --data-dir DIR/data` is spawned, and the
//!    clock runs until `GET /query/v1/ticketStats?after=N` answers `200`, N being the
//!    log's last position. Not the `listening` line: the server listens before its read
//!    models have replayed the log, and a start is over only when a reader sees all of
//!    it. Each round prints the server's own figures beside it: `listening_ms` (spawn to
//!    the `listening` line, the engine's recovery included) and `store_open_ms` (the
//!    engine's recovery alone, from its `store open` line). The server is killed (SIGKILL)
//!    after each round; it wrote nothing, so the next start does the same work.
//! 3. **Cold and warm.** Before the first round the bench asks the kernel to drop its page
//!    cache (`/proc/sys/vm/drop_caches`, which needs root); when it could, that round is a
//!    cold start, reported apart (`cold_open_ms`) and left out of the median, and the bench
//!    says so either way.
//!
//! `open_ms` is a start from the read model's snapshot at the log's end, and
//! `open_full_replay_ms` one with `--no-snapshots`, which replays the whole journal; each
//! round times both, the snapshot start first, and each figure is the median of the warm
//! rounds. Before the rounds the bench makes sure the snapshot exists: when
//! `DIR/data/snapshots/tickets/` holds none at the log's last position, a server started
//! with `--snapshot-every-events 1` writes it (the bench waits until a query sees the
//! last position, then stops the server cleanly, which writes the snapshot of its last
//! state). The timed starts run with `--snapshot-every-events 0`, so they write
//! nothing.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use hyper::{Method, StatusCode};

use crate::client::{Client, Target};
use crate::server::ServerProcess;

/// `writ bench start`'s arguments.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Events in the log (one per command: the tickets workload). The log is written once
    /// into `DIR/data` and kept for later runs.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Tickets the log's events are spread over (default: a tenth of `--events`, at most
    /// 100,000).
    #[arg(long)]
    tickets: Option<u64>,
    /// Directory for the log (`DIR/data`) and its description (`DIR/bench-start.txt`);
    /// kept, so that reruns time starts only.
    #[arg(long)]
    data_dir: PathBuf,
    /// Starts timed.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// The `writ` binary to start (default: this one).
    #[arg(long)]
    binary: Option<PathBuf>,
    /// Do not try to drop the page cache before the first round.
    #[arg(long)]
    no_drop_caches: bool,
}

/// The file in `--data-dir` that says what the log holds.
const DESCRIPTION: &str = "bench-start.txt";
/// The longest one start may take before the bench gives up.
const START_MAX: Duration = Duration::from_secs(1_800);

pub fn run(args: StartArgs) -> Result<(), String> {
    if args.events == 0 || args.rounds == 0 {
        return Err("--events and --rounds must be at least 1".into());
    }
    let tickets = args
        .tickets
        .unwrap_or_else(|| (args.events / 10).clamp(1, 100_000));
    if tickets == 0 || tickets > args.events {
        return Err("--tickets must be at least 1 and at most --events".into());
    }
    let binary = match &args.binary {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .map_err(|e| format!("cannot find this executable (pass --binary): {e}"))?,
    };
    let data = args.data_dir.join("data");
    prepare(&args.data_dir, &data, args.events, tickets)?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    write_snapshot(&runtime, &binary, &data, args.events)?;
    let mut warm = Vec::with_capacity(args.rounds);
    let mut warm_full = Vec::with_capacity(args.rounds);
    let mut cold = None;
    for round in 1..=args.rounds {
        let dropped = round == 1 && !args.no_drop_caches && drop_page_cache(round);
        let timed = time_start(
            &runtime,
            &binary,
            &data,
            args.events,
            &["--snapshot-every-events", "0"],
        )?;
        let full = time_start(&runtime, &binary, &data, args.events, &["--no-snapshots"])?;
        println!(
            "round={round} cold={} listening_ms={} store_open_ms={} open_ms={} open_full_replay_ms={}",
            if dropped { "yes" } else { "no" },
            timed.listening.as_millis(),
            timed
                .store_open_ms
                .map_or_else(|| "?".to_owned(), |ms| ms.to_string()),
            timed.answered.as_millis(),
            full.answered.as_millis(),
        );
        if dropped {
            cold = Some(timed.answered);
        } else {
            warm.push(timed.answered);
        }
        // The full replay ran after the snapshot start: its cache is warm.
        warm_full.push(full.answered);
    }
    if let Some(cold) = cold {
        println!("cold_open_ms={}", cold.as_millis());
    }
    if warm.is_empty() {
        return Err("every round was a cold start; run with --rounds 2 or more".into());
    }
    eprintln!(
        "open_ms: from the snapshot (median of {} warm rounds); open_full_replay_ms: --no-snapshots (median of {})",
        warm.len(),
        warm_full.len()
    );
    println!(
        "events={} open_ms={} open_full_replay_ms={}",
        args.events,
        median(&mut warm),
        median(&mut warm_full)
    );
    Ok(())
}

/// The median, in ms.
fn median(times: &mut [Duration]) -> u128 {
    times.sort_unstable();
    let middle = times.len() / 2;
    if times.len() % 2 == 1 {
        times[middle].as_millis()
    } else {
        (times[middle - 1].as_millis() + times[middle].as_millis()) / 2
    }
}

/// Makes sure `data` holds the tickets read model's snapshot at `last`: unless it does, a
/// server that writes one at every publish runs until the file is there.
fn write_snapshot(
    runtime: &tokio::runtime::Runtime,
    binary: &Path,
    data: &Path,
    last: u64,
) -> Result<(), String> {
    let file = data
        .join("snapshots")
        .join("tickets")
        .join(format!("{last:020}.snap"));
    if file.exists() {
        eprintln!("{} exists: starts load it", file.display());
        return Ok(());
    }
    eprintln!("writing the read model's snapshot at position {last}");
    let started = Instant::now();
    let extra = ["--snapshot-every-events".to_owned(), "1".to_owned()];
    let server = ServerProcess::start(binary, data, &extra)?;
    wait_for_position(runtime, &server, last, started)?;
    // The snapshot thread writes at a publish when it is idle: the last publish may find it
    // busy with an earlier position. A clean shutdown writes the last state whatever.
    server.terminate()?;
    if !file.exists() {
        return Err(format!(
            "{} was not written, even at the server's clean shutdown",
            file.display()
        ));
    }
    eprintln!(
        "snapshot written in {} ms (start included)",
        started.elapsed().as_millis()
    );
    Ok(())
}

/// Writes the log into `data` unless `dir`'s description says it holds `events` already.
fn prepare(dir: &Path, data: &Path, events: u64, tickets: u64) -> Result<(), String> {
    let description = dir.join(DESCRIPTION);
    let wanted = format!("events={events} tickets={tickets} workload=tickets\n");
    match std::fs::read_to_string(&description) {
        Ok(held) if held == wanted => {
            eprintln!(
                "{} holds the log already ({}); timing starts only",
                data.display(),
                held.trim()
            );
            return Ok(());
        }
        Ok(held) => {
            return Err(format!(
                "{} holds another log ({}); give another --data-dir, or the same --events and --tickets",
                dir.display(),
                held.trim()
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", description.display())),
    }
    if data.exists() {
        return Err(format!(
            "{} exists but {} does not say what it holds (a build cut short?); remove it",
            data.display(),
            description.display()
        ));
    }
    std::fs::create_dir_all(data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
    eprintln!(
        "writing {events} events over {tickets} tickets into {}",
        data.display()
    );
    super::engine::run(super::engine::EngineArgs::tickets_into(
        data.to_owned(),
        tickets,
        events,
    ))?;
    std::fs::write(&description, wanted)
        .map_err(|e| format!("cannot write {}: {e}", description.display()))?;
    Ok(())
}

/// Asks the kernel to drop its clean page cache (the log was synced as it was written);
/// says whether it could.
fn drop_page_cache(round: usize) -> bool {
    match std::fs::write("/proc/sys/vm/drop_caches", "3\n") {
        Ok(()) => {
            eprintln!("round {round}: page cache dropped: a cold start");
            true
        }
        Err(e) => {
            eprintln!(
                "round {round}: cannot drop the page cache ({e}; it needs root): a warm start"
            );
            false
        }
    }
}

/// One start's figures.
struct Timed {
    /// Spawn to the `listening` line.
    listening: Duration,
    /// The engine's recovery, as the server logged it.
    store_open_ms: Option<u64>,
    /// Spawn to the first `200` of a query at the last position.
    answered: Duration,
}

/// Starts the server on `data` with the `extra` flags, waits for a query at position
/// `last` to answer, kills it.
fn time_start(
    runtime: &tokio::runtime::Runtime,
    binary: &Path,
    data: &Path,
    last: u64,
    extra: &[&str],
) -> Result<Timed, String> {
    let started = Instant::now();
    let extra: Vec<String> = extra.iter().map(|flag| (*flag).to_owned()).collect();
    let server = ServerProcess::start(binary, data, &extra)?;
    let listening = started.elapsed();
    wait_for_position(runtime, &server, last, started)?;
    let answered = started.elapsed();
    let store_open_ms = server.log(|log| log.open_ms);
    server.kill()?;
    Ok(Timed {
        listening,
        store_open_ms,
        answered,
    })
}

/// Waits until `GET /query/v1/ticketStats?after=LAST` answers `200`.
fn wait_for_position(
    runtime: &tokio::runtime::Runtime,
    server: &ServerProcess,
    last: u64,
    started: Instant,
) -> Result<(), String> {
    let target = Target::parse(&server.url())?;
    let path = format!("/query/v1/ticketStats?after={last}");
    runtime.block_on(async {
        let mut client = Client::connect(&target).await?;
        loop {
            let (status, body) = client.send(Method::GET, &path, None).await?;
            match status {
                StatusCode::OK => return Ok(()),
                // `?after=` waits up to the server's `--after-wait-max`, then says so.
                StatusCode::GATEWAY_TIMEOUT if started.elapsed() < START_MAX => continue,
                _ => {
                    return Err(format!(
                        "GET {path} answered {status}: {}",
                        String::from_utf8_lossy(&body)
                    ));
                }
            }
        }
    })
}
