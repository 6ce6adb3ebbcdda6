//! `writ`: the command-line front of Writ. Thin glue over the library crates.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use writ_engine::{Engine, EngineOptions, RecoveryReport};
use writ_query::{EventSource, RuntimeOptions};
use writ_sandbox::{Sandbox, SandboxOptions};
use writ_server::{AppState, ReadSide, ServerOptions};
use writ_tickets::Tickets;
use writ_tickets::read::TicketsProjection;
use writ_tools::{bench, proof, rebuild};

/// mimalloc rather than the system allocator: the HTTP path allocates on one thread and
/// frees on another, where it measured clearly cheaper (see the root `Cargo.toml`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "writ",
    version,
    about = "Command-first CQRS and event-sourcing server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API on a data directory.
    Serve(ServeArgs),
    /// Rebuild a running server's projection without downtime, with a progress bar.
    Rebuild(rebuild::RebuildArgs),
    /// Measure Writ's throughput and latency.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Prove the server's promises from outside: crash it under load, overload it.
    #[command(subcommand)]
    Proof(proof::ProofCommand),
}

/// The domains this binary serves.
const DOMAINS: [&str; 1] = ["tickets"];

#[derive(Debug, Args)]
struct ServeArgs {
    /// Data directory; created if missing.
    #[arg(long, env = "WRIT_DATA_DIR", default_value = "./writ-data")]
    data_dir: PathBuf,
    /// Address to listen on, HOST:PORT; port 0 picks a free port (the printed line shows it).
    #[arg(long, env = "WRIT_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// The domain to serve.
    #[arg(long, default_value = "tickets")]
    domain: String,
    /// How long a command id is remembered for dedupe and status lookups: a number with a
    /// unit, ms, s, m, h or d (90s, 15m, 24h, 1d).
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    dedupe_window: Duration,
    /// The read model's projection version to start with (default: the newest). An older
    /// one shows a structure change: `writ rebuild --version N` moves it on while it serves.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    projection_version: Option<u32>,
    /// Requests handled at once (those that wait apart); beyond it requests are answered
    /// 503 at once. Lower it to shed load sooner: under overload a 202 waits behind up to
    /// this many requests.
    #[arg(long, env = "WRIT_REQUESTS_MAX", default_value_t = 4_096,
        value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    requests_max: u64,
    /// Requests that wait, handled at once: long polls (`GET /update/{id}?wait=`) and
    /// queries with `?after=`, bounded apart so that they never take the places of
    /// commands; beyond it, 503 at once.
    #[arg(long, env = "WRIT_WAITS_MAX", default_value_t = 4_096,
        value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    waits_max: u64,
    /// Open connections; more wait in the listen backlog until one closes.
    #[arg(long, env = "WRIT_CONNECTIONS_MAX", default_value_t = 8_192,
        value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    connections_max: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = init_logging().and_then(|()| match cli.command {
        Command::Serve(args) => serve(args),
        Command::Rebuild(args) => rebuild::run(args),
        Command::Bench(command) => bench::run(command),
        Command::Proof(command) => proof::run(command),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr. `RUST_LOG` (full filter directives) wins over `LOG_LEVEL` (one of
/// trace, debug, info, warn, error, fatal); the default is info.
fn init_logging() -> Result<(), String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => {
            EnvFilter::try_new(&directives).map_err(|e| format!("RUST_LOG={directives:?}: {e}"))?
        }
        _ => {
            let level = std::env::var("LOG_LEVEL").unwrap_or_default();
            EnvFilter::new(log_level(&level)?)
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    Ok(())
}

/// The filter for a `LOG_LEVEL` value; `fatal` is `error`, the tracing crate's highest.
fn log_level(level: &str) -> Result<&'static str, String> {
    Ok(match level.trim().to_ascii_lowercase().as_str() {
        "" | "info" => "info",
        "trace" => "trace",
        "debug" => "debug",
        "warn" | "warning" => "warn",
        "error" | "fatal" => "error",
        _ => {
            return Err(format!(
                "LOG_LEVEL={level:?} is not a level; use trace, debug, info, warn, error or fatal"
            ));
        }
    })
}

/// A duration as `--dedupe-window` takes it: digits and a unit (ms, s, m, h, d).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let usage = "use a number and a unit (ms, s, m, h or d), as in 90s, 15m, 24h or 1d";
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("{text:?} is not a duration; {usage}")),
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration; {usage}"))?;
    let ms = number
        .checked_mul(unit_ms)
        .ok_or_else(|| format!("{text:?} is too long"))?;
    if ms == 0 {
        return Err("the duration must be longer than zero".to_owned());
    }
    Ok(Duration::from_millis(ms))
}

fn serve(args: ServeArgs) -> Result<(), String> {
    if !DOMAINS.contains(&args.domain.as_str()) {
        return Err(format!(
            "unknown domain {:?}; known domains: {}",
            args.domain,
            DOMAINS.join(", ")
        ));
    }
    let projection = match args.projection_version {
        None => TicketsProjection::current(),
        Some(version) => TicketsProjection::with_version(version).ok_or_else(|| {
            format!(
                "the tickets read model has projection versions 1 to {}, not {version}",
                TicketsProjection::CURRENT_VERSION
            )
        })?,
    };
    // Before the engine opens, so that what it reports during recovery is recorded.
    writ_server::prometheus();
    let options = EngineOptions {
        dedupe_window: args.dedupe_window,
        ..EngineOptions::default()
    };
    let dir = &args.data_dir;
    tracing::info!(data_dir = %dir.display(), domain = %args.domain, "opening the store");
    let registry = writ_engine::Registry::builder()
        .domain(writ_domain::model::domain::<Tickets>())
        .build()
        .map_err(|e| e.to_string())?;
    let (engine, report) = Engine::open_dir(dir, registry, options)
        .map_err(|e| format!("cannot open {}: {e}", dir.display()))?;
    log_recovery(&report);
    let engine = Arc::new(engine);
    let read_model = writ_tickets::read::start_with(
        Arc::clone(&engine) as Arc<dyn EventSource>,
        projection,
        RuntimeOptions::default(),
    )
    .map_err(|e| format!("cannot start the read model: {e}"))?;
    let sandbox = Sandbox::new(SandboxOptions::default())
        .map_err(|e| format!("cannot start the query sandbox: {e}"))?;
    let read = ReadSide {
        service: Arc::new(read_model),
        sandbox: Arc::new(sandbox),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("writ-http")
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        let options = ServerOptions {
            // Each is at most a million (checked by clap), which fits any usize.
            requests_max: usize::try_from(args.requests_max).unwrap_or(usize::MAX),
            waits_max: usize::try_from(args.waits_max).unwrap_or(usize::MAX),
            connections_max: usize::try_from(args.connections_max).unwrap_or(usize::MAX),
            ..ServerOptions::default()
        };
        let state = AppState::new(engine, options).with_read_side(read);
        let shutdown = async {
            writ_server::shutdown_signal().await;
            // A second signal does not wait for the drain. Nothing acknowledged is lost:
            // accepted commands are in the command log and run again at the next start.
            tokio::spawn(async {
                writ_server::shutdown_signal().await;
                tracing::warn!("second signal: exiting without draining");
                std::process::exit(130);
            });
        };
        writ_server::serve(&args.listen, state, shutdown)
            .await
            .map_err(|e| e.to_string())
    })
}

fn log_recovery(report: &RecoveryReport) {
    if let Some(cut) = &report.truncated {
        tracing::warn!(
            log = "journal",
            segment = %cut.path.display(),
            offset = cut.offset,
            discarded_bytes = cut.discarded_bytes,
            damage = ?cut.damage,
            "recovery cut a torn or corrupt tail (never acknowledged)"
        );
    }
    if report.resumed > 0 {
        tracing::info!(
            commands = report.resumed,
            "completing a unit a crash cut short: commands processes issued in reaction to durable events"
        );
    }
    tracing::info!(
        commands = report.commands,
        resumed = report.resumed,
        events = report.events,
        timers_pending = report.timers_pending,
        dedupe_entries = report.dedupe_entries,
        elapsed_ms = report.elapsed.as_millis() as u64,
        "store open"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_number_and_a_unit() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(15 * 60)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(24 * 3600)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in [
            "",
            "24",
            "h",
            "1.5h",
            "-1h",
            "1 h",
            "1H",
            "1w",
            "0s",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn serve_bounds_default_to_the_server_options() {
        let Command::Serve(args) = Cli::parse_from(["writ", "serve"]).command else {
            panic!("serve parses as serve");
        };
        let defaults = ServerOptions::default();
        assert_eq!(args.requests_max, defaults.requests_max as u64);
        assert_eq!(args.waits_max, defaults.waits_max as u64);
        assert_eq!(args.connections_max, defaults.connections_max as u64);
    }

    #[test]
    fn log_levels_include_fatal() {
        assert_eq!(log_level("fatal"), Ok("error"));
        assert_eq!(log_level("WARN"), Ok("warn"));
        assert_eq!(log_level(""), Ok("info"));
        assert!(log_level("verbose").is_err());
    }
}
