//! `writ`: the command-line front of Writ. Glue: the domains this binary serves (the
//! contract's example domains, `tickets` and `orders`) registered through `writ-app`, the
//! same API a crate of one's own uses (`serve` and `replay` are `writ-app`'s), and the
//! tools of `writ-tools`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use writ_app::{App, Module, ReplayArgs, ServeArgs};
use writ_tools::{backup, bench, proof, rebuild, verify};

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

// Parsed once per run: the size of the largest variant (`serve`'s flags) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API on a data directory.
    Serve(ServeArgs),
    /// Run every command of the command log again through this build's handlers, into a
    /// new journal beside the live one, and report what differs; `--apply` makes it live.
    Replay(ReplayArgs),
    /// Move sealed journal segments older than the dedupe window to an archive directory
    /// (offline); serve, replay, verify and backup read them with --archive-dir.
    Archive(writ_app::archive::ArchiveArgs),
    /// Rebuild a running server's read model without downtime, with a progress bar.
    Rebuild(rebuild::RebuildArgs),
    /// Apps of resource types without code: `writ app pack DIR` bundles one.
    #[command(subcommand)]
    App(writ_app::pack::AppCommand),
    /// Measure Writ's throughput and latency.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Prove the server's promises from outside: crash it under load, overload it.
    #[command(subcommand)]
    Proof(proof::ProofCommand),
    /// Copy a store, also while a server runs on it, to a copy that serves and verifies.
    Backup(backup::BackupArgs),
    /// Check every file of a store: segments, frames, records, indexes, the journal.
    Verify(verify::VerifyArgs),
}

/// The domains of this binary: `tickets` (served when no `--domain` is given) and
/// `orders`.
fn app() -> App {
    App::new()
        .module(Module::new::<writ_tickets::Tickets>().read_model(writ_tickets::read::read_model()))
        .module(
            Module::new::<writ_orders::Orders>()
                .process::<writ_orders::OrderFulfilment>()
                .read_model(writ_orders::read::read_model()),
        )
        .default_domains(&["tickets"])
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = writ_app::init_logging().and_then(|()| match cli.command {
        Command::Serve(args) => app().serve(&args),
        Command::Replay(args) => app().replay(&args),
        Command::Archive(args) => writ_app::archive::run(&args),
        Command::Rebuild(args) => rebuild::run(args),
        Command::App(command) => writ_app::pack::run(command),
        Command::Bench(command) => bench::run(command),
        Command::Proof(command) => proof::run(command),
        Command::Backup(args) => backup::run(args),
        Command::Verify(args) => verify::run(args),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_bounds_default_to_the_server_options() {
        let Command::Serve(args) = Cli::parse_from(["writ", "serve"]).command else {
            panic!("serve parses as serve");
        };
        let defaults = writ_server::ServerOptions::default();
        assert_eq!(args.requests_max, defaults.requests_max as u64);
        assert_eq!(args.waits_max, defaults.waits_max as u64);
        assert_eq!(args.connections_max, defaults.connections_max as u64);
        assert_eq!(
            args.connections_per_address_max,
            defaults.connections_per_address_max as u64
        );
        assert_eq!(args.head_timeout, defaults.head_timeout);
        assert_eq!(args.body_timeout, defaults.body_timeout);
        assert_eq!(
            args.body_reading_bytes_max,
            defaults.body_reading_bytes_max as u64
        );
        assert_eq!(
            args.query_answer_bytes_max,
            defaults.query_answer_bytes_max as u64
        );
        assert_eq!(args.idle_timeout, defaults.idle_timeout);
        assert!(args.domains.is_empty(), "the binary's defaults apply");
    }

    #[test]
    fn replay_takes_a_data_dir_domains_a_report_and_apply() {
        let Command::Replay(args) = Cli::parse_from([
            "writ",
            "replay",
            "--data-dir",
            "d",
            "--domain",
            "tickets,orders",
            "--report",
            "r.json",
            "--apply",
        ])
        .command
        else {
            panic!("replay parses as replay");
        };
        assert_eq!(args.data_dir, std::path::Path::new("d"));
        assert_eq!(args.domains, ["tickets", "orders"]);
        assert_eq!(args.report.as_deref(), Some(std::path::Path::new("r.json")));
        assert!(args.apply);
        let Command::Replay(args) = Cli::parse_from(["writ", "replay"]).command else {
            panic!("replay parses as replay");
        };
        assert!(!args.apply && args.report.is_none());
    }

    #[test]
    fn archive_takes_a_data_dir_a_target_and_a_window_and_the_others_the_archive() {
        let Command::Archive(args) = Cli::parse_from([
            "writ",
            "archive",
            "--data-dir",
            "d",
            "--to",
            "a",
            "--dedupe-window",
            "1h",
        ])
        .command
        else {
            panic!("archive parses as archive");
        };
        assert_eq!(args.data_dir, std::path::Path::new("d"));
        assert_eq!(args.to, std::path::Path::new("a"));
        assert_eq!(args.dedupe_window, std::time::Duration::from_secs(3600));
        assert!(
            Cli::try_parse_from(["writ", "archive"]).is_err(),
            "--to is needed"
        );
        for command in ["serve", "replay", "verify", "backup"] {
            let mut argv = vec!["writ", command, "--archive-dir", "a"];
            if command == "backup" {
                argv.extend(["--to", "b"]);
            }
            assert!(
                Cli::try_parse_from(&argv).is_ok(),
                "{command} --archive-dir"
            );
        }
    }

    #[test]
    fn the_binary_has_tickets_and_orders() {
        assert_eq!(app().domain_names(), ["tickets", "orders"]);
        let Command::Serve(args) =
            Cli::parse_from(["writ", "serve", "--domain", "tickets", "--domain", "orders"]).command
        else {
            panic!("serve parses as serve");
        };
        assert_eq!(args.domains, ["tickets", "orders"]);
    }
}
