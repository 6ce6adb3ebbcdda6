//! `writ-compare`: the tickets workload through Writ and through cqrs-es + postgres-es, with
//! every command durable on both sides. In-process (the default), the last line is
//! `writ_cmds_per_s=N peer_cmds_per_s=M ratio=R`; `--over http` drives both sides with the
//! same HTTP client, one command in flight per client to its final outcome, over
//! `--rounds`, with the plain `fdatasync` loop and pgbench beside them, and its last line
//! starts `writ_outcomes_per_s=N peer_outcomes_per_s=M plain_fdatasync_per_s=P`. See the
//! library's documentation for what is compared and why it is fair.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use writ_compare::http::{self, HttpOptions};
use writ_compare::{DEFAULT_IN_FLIGHT, Options, Workload};

/// The environment variable read when `--postgres-url` is not given.
const POSTGRES_URL_ENV: &str = "WRIT_TEST_POSTGRES_URL";

/// How the two sides are reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Over {
    /// Writ's engine in this process, and cqrs-es called in this process; one side after
    /// the other.
    InProcess,
    /// The real `writ serve` and the peer behind a minimal HTTP endpoint, both driven by
    /// the same HTTP/1.1 client, one command in flight per client to its final outcome;
    /// alternating over --rounds, with the plain fdatasync loop and pgbench in each round.
    Http,
}

/// The tickets workload through Writ and through cqrs-es + postgres-es (PostgreSQL).
#[derive(Debug, Parser)]
#[command(name = "writ-compare")]
struct Args {
    /// How the sides are reached.
    #[arg(long, value_enum, default_value_t = Over::InProcess)]
    over: Over,
    /// Concurrent clients on each side.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// In-process only: commands each client keeps in flight, each on a different ticket
    /// and each waited for until durable; the same on both sides. 1: a client waits for
    /// each command before sending the next. [default: 8] (Over HTTP it is 1.)
    #[arg(long)]
    in_flight: Option<usize>,
    /// Tickets (the first commands open them). [default: 10000 in-process, 2000 over http]
    #[arg(long)]
    tickets: Option<u64>,
    /// Total commands, opens included; the rest are AddComment, round-robin. [default:
    /// 100000 in-process, 20000 over http]
    #[arg(long)]
    commands: Option<u64>,
    /// Writ's data directory (over http: the run's directory, which holds each round's
    /// data directory and the plain loop's file); must be empty or new, and not on a file
    /// system whose sync does nothing (tmpfs, ramfs). Default: a fresh directory under the
    /// system's temporary directory, removed afterwards.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The peer's PostgreSQL, for example postgres://postgres@127.0.0.1:5432/test.
    /// Default: the environment variable WRIT_TEST_POSTGRES_URL.
    #[arg(long)]
    postgres_url: Option<String>,
    /// Over http only: rounds, each side once per round on fresh state, alternating which
    /// goes first; medians are reported. [default: 5]
    #[arg(long)]
    rounds: Option<usize>,
    /// Over http only: the writ binary to run as `writ serve`. Default: `writ` next to this
    /// executable, that is target/release/writ after `cargo build --release -p writ -p
    /// writ-compare`.
    #[arg(long)]
    writ_binary: Option<PathBuf>,
    /// Over http only: seconds the plain fdatasync loop and pgbench each run per round.
    /// [default: 5]
    #[arg(long)]
    baseline_secs: Option<u64>,
    /// Over http only: one more argument for `writ serve`, after its `--listen` and
    /// `--data-dir`; repeat it for several, in order, for example `--serve-arg=--http-threads
    /// --serve-arg=2`. The report's first line lists them.
    #[arg(long = "serve-arg", value_name = "ARG", allow_hyphen_values = true)]
    serve_args: Vec<String>,
}

/// What the arguments ask for.
#[derive(Debug)]
enum Plan {
    InProcess(Options),
    Http(HttpOptions),
}

fn main() -> ExitCode {
    let args = Args::parse();
    let postgres_url = std::env::var(POSTGRES_URL_ENV).ok();
    match plan(args, postgres_url).and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("writ-compare: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Checks the arguments and fills in each mode's defaults; `env_url` is
/// `WRIT_TEST_POSTGRES_URL`, read when `--postgres-url` is not given.
fn plan(args: Args, env_url: Option<String>) -> Result<Plan, String> {
    let postgres_url = args
        .postgres_url
        .or(env_url)
        .filter(|u| !u.is_empty())
        .ok_or(
            "no PostgreSQL for the peer: pass --postgres-url or set WRIT_TEST_POSTGRES_URL \
             (for example postgres://postgres@127.0.0.1:5432/test)",
        )?;
    match args.over {
        Over::InProcess => {
            let http_only = [
                ("--rounds", args.rounds.is_some()),
                ("--writ-binary", args.writ_binary.is_some()),
                ("--baseline-secs", args.baseline_secs.is_some()),
                ("--serve-arg", !args.serve_args.is_empty()),
            ];
            if let Some((flag, _)) = http_only.iter().find(|(_, given)| *given) {
                return Err(format!("{flag} applies to --over http only"));
            }
            let workload = Workload::new(
                args.tickets.unwrap_or(10_000),
                args.commands.unwrap_or(100_000),
                args.clients,
            )
            .and_then(|w| w.with_in_flight(args.in_flight.unwrap_or(DEFAULT_IN_FLIGHT)))
            .map_err(|e| e.to_string())?;
            Ok(Plan::InProcess(Options {
                workload,
                data_dir: args.data_dir,
                postgres_url,
            }))
        }
        Over::Http => {
            if args.in_flight.is_some_and(|w| w != 1) {
                return Err("--over http keeps one command in flight per client: leave out --in-flight, and give more --clients for more concurrency".into());
            }
            let rounds = args.rounds.unwrap_or(http::DEFAULT_ROUNDS);
            if !(1..=http::ROUNDS_MAX).contains(&rounds) {
                return Err(format!(
                    "--rounds ({rounds}) must be between 1 and {}",
                    http::ROUNDS_MAX
                ));
            }
            let baseline_secs = args.baseline_secs.unwrap_or(http::DEFAULT_BASELINE_SECS);
            if !(1..=http::BASELINE_SECS_MAX).contains(&baseline_secs) {
                return Err(format!(
                    "--baseline-secs ({baseline_secs}) must be between 1 and {} (pgbench runs whole seconds)",
                    http::BASELINE_SECS_MAX
                ));
            }
            let workload = Workload::new(
                args.tickets.unwrap_or(http::DEFAULT_TICKETS),
                args.commands.unwrap_or(http::DEFAULT_COMMANDS),
                args.clients,
            )
            .map_err(|e| e.to_string())?;
            let writ_binary = match args.writ_binary {
                Some(path) => path,
                None => http::default_writ_binary()?,
            };
            Ok(Plan::Http(HttpOptions {
                workload,
                rounds,
                data_dir: args.data_dir,
                postgres_url,
                writ_binary,
                serve_args: args.serve_args,
                baseline: Duration::from_secs(baseline_secs),
            }))
        }
    }
}

fn run(plan: Plan) -> Result<(), String> {
    let lines = match plan {
        Plan::InProcess(options) => {
            let workload = options.workload;
            eprintln!(
                "writ-compare: {} tickets, {} commands, {} clients with {} in flight each: Writ first, then cqrs-es + postgres-es",
                workload.tickets(),
                workload.commands(),
                workload.clients(),
                workload.in_flight()
            );
            writ_compare::run(&options)
                .map_err(|e| e.to_string())?
                .report_lines()
        }
        Plan::Http(options) => {
            let workload = options.workload;
            eprintln!(
                "writ-compare: over HTTP, {} tickets, {} commands, {} clients with one command in flight each, {} rounds: {} serve and cqrs-es + postgres-es alternating, the plain fdatasync loop and pgbench for {} s each per round",
                workload.tickets(),
                workload.commands(),
                workload.clients(),
                options.rounds,
                options.writ_binary.display(),
                options.baseline.as_secs()
            );
            let mut progress = |line: &str| eprintln!("writ-compare: {line}");
            http::run(&options, &mut progress)
                .map_err(|e| e.to_string())?
                .report_lines()
        }
    };
    for line in lines {
        println!("{line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "postgres://postgres@127.0.0.1:5432/test";

    fn plan_of(args: &[&str]) -> Result<Plan, String> {
        let args =
            Args::try_parse_from(std::iter::once("writ-compare").chain(args.iter().copied()))
                .map_err(|e| e.to_string())?;
        plan(args, Some(URL.to_owned()))
    }

    #[test]
    fn each_mode_fills_in_its_defaults() {
        let Ok(Plan::InProcess(options)) = plan_of(&[]) else {
            panic!("in-process by default")
        };
        assert_eq!(options.workload.tickets(), 10_000);
        assert_eq!(options.workload.commands(), 100_000);
        assert_eq!(options.workload.in_flight(), DEFAULT_IN_FLIGHT);
        assert_eq!(options.postgres_url, URL);

        let Ok(Plan::Http(options)) = plan_of(&["--over", "http", "--clients", "1"]) else {
            panic!("--over http")
        };
        assert_eq!(options.workload.tickets(), http::DEFAULT_TICKETS);
        assert_eq!(options.workload.commands(), http::DEFAULT_COMMANDS);
        assert_eq!(options.workload.clients(), 1);
        assert_eq!(options.workload.in_flight(), 1);
        assert_eq!(options.rounds, http::DEFAULT_ROUNDS);
        assert_eq!(
            options.baseline,
            Duration::from_secs(http::DEFAULT_BASELINE_SECS)
        );
        assert_eq!(options.writ_binary.file_name().unwrap(), "writ");

        let Ok(Plan::Http(options)) = plan_of(&[
            "--over",
            "http",
            "--in-flight",
            "1",
            "--rounds",
            "3",
            "--writ-binary",
            "/opt/writ",
            "--baseline-secs",
            "2",
            "--postgres-url",
            "postgres://elsewhere/db",
            "--serve-arg=--http-threads",
            "--serve-arg",
            "2",
        ]) else {
            panic!("--over http with every flag")
        };
        assert_eq!(options.serve_args, ["--http-threads", "2"]);
        assert_eq!(options.rounds, 3);
        assert_eq!(options.writ_binary, PathBuf::from("/opt/writ"));
        assert_eq!(options.baseline, Duration::from_secs(2));
        assert_eq!(options.postgres_url, "postgres://elsewhere/db");
    }

    #[test]
    fn argument_errors_name_the_flag() {
        let cases: &[(&[&str], &str)] = &[
            (&["--rounds", "3"], "--rounds applies to --over http only"),
            (
                &["--writ-binary", "w"],
                "--writ-binary applies to --over http only",
            ),
            (
                &["--baseline-secs", "1"],
                "--baseline-secs applies to --over http only",
            ),
            (
                &["--serve-arg=--http-threads"],
                "--serve-arg applies to --over http only",
            ),
            (
                &["--over", "http", "--in-flight", "8"],
                "one command in flight per client",
            ),
            (
                &["--over", "http", "--rounds", "0"],
                "--rounds (0) must be between 1",
            ),
            (
                &["--over", "http", "--rounds", "101"],
                "--rounds (101) must be between 1",
            ),
            (
                &["--over", "http", "--baseline-secs", "0"],
                "--baseline-secs (0) must be between 1",
            ),
            (&["--over", "http", "--clients", "0"], "--clients (0)"),
            (
                &["--over", "http", "--tickets", "10", "--commands", "5"],
                "--commands (5) must be at least --tickets (10)",
            ),
            (&["--over", "tcp"], "invalid value 'tcp'"),
            (&["--in-flight", "0"], "--in-flight (0)"),
        ];
        for (args, expected) in cases {
            let error = plan_of(args).map(|_| ()).unwrap_err();
            assert!(error.contains(expected), "{args:?}: {error}");
        }
    }

    #[test]
    fn no_postgres_url_is_an_error() {
        let args = Args::try_parse_from(["writ-compare", "--over", "http"]).unwrap();
        let error = plan(args, None).unwrap_err();
        assert!(error.contains("--postgres-url"), "{error}");
        let args = Args::try_parse_from(["writ-compare", "--postgres-url", ""]).unwrap();
        assert!(plan(args, Some(String::new())).is_err());
    }
}
