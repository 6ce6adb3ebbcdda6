//! `writ-compare`: the tickets workload through Writ and through cqrs-es + postgres-es, with
//! every command durable on both sides; the last line is
//! `writ_cmds_per_s=N peer_cmds_per_s=M ratio=R`. See the library's documentation for what
//! is compared and why it is fair.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use writ_compare::{DEFAULT_IN_FLIGHT, Options, Workload};

/// The tickets workload through Writ and through cqrs-es + postgres-es (PostgreSQL).
#[derive(Debug, Parser)]
#[command(name = "writ-compare")]
struct Args {
    /// Concurrent clients on each side.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Commands each client keeps in flight, each on a different ticket and each waited
    /// for until durable; the same on both sides. 1: a client waits for each command
    /// before sending the next.
    #[arg(long, default_value_t = DEFAULT_IN_FLIGHT)]
    in_flight: usize,
    /// Tickets (the first commands open them).
    #[arg(long, default_value_t = 10_000)]
    tickets: u64,
    /// Total commands, opens included; the rest are AddComment, round-robin.
    #[arg(long, default_value_t = 100_000)]
    commands: u64,
    /// Writ's data directory; must not hold a store. Default: a fresh directory under the
    /// system's temporary directory, removed afterwards.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The peer's PostgreSQL, for example postgres://postgres@127.0.0.1:5432/test.
    #[arg(long, env = "WRIT_TEST_POSTGRES_URL")]
    postgres_url: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("writ-compare: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    let workload = Workload::new(args.tickets, args.commands, args.clients)
        .and_then(|w| w.with_in_flight(args.in_flight))
        .map_err(|e| e.to_string())?;
    let postgres_url = args.postgres_url.filter(|u| !u.is_empty()).ok_or(
        "no PostgreSQL for the peer: pass --postgres-url or set WRIT_TEST_POSTGRES_URL \
         (for example postgres://postgres@127.0.0.1:5432/test)",
    )?;
    let options = Options {
        workload,
        data_dir: args.data_dir,
        postgres_url,
    };
    eprintln!(
        "writ-compare: {} tickets, {} commands, {} clients with {} in flight each: Writ first, then cqrs-es + postgres-es",
        workload.tickets(),
        workload.commands(),
        workload.clients(),
        workload.in_flight()
    );
    let comparison = writ_compare::run(&options).map_err(|e| e.to_string())?;
    for line in comparison.report_lines() {
        println!("{line}");
    }
    Ok(())
}
