//! `writ-tools`: the tools of the `writ` command apart from the server it runs: load,
//! proof and client tools that measure Writ or drive a running server from outside.
//!
//! Each command group is a clap type to put in a command line, and a `run` function that
//! runs a parsed command to its end, printing its figures on stdout (the last line
//! machine-readable, `key=value` fields) and progress on stderr. An `Err` is a sentence for
//! the user.
//!
//! - [`bench`](mod@bench): [`BenchCommand`](bench::BenchCommand) with `writ bench engine` (the
//!   engine in-process), `writ bench http` (the load tool: the tickets workload against a
//!   running server over HTTP/1.1 or WebSockets) and `writ bench query` (the read side of a
//!   running server); [`bench::run`].
//! - [`proof`]: [`ProofCommand`](proof::ProofCommand) with `writ proof crash` (SIGKILL the
//!   real server under load, restart it, check that nothing acknowledged was lost and
//!   nothing ran twice), `writ proof overload` (quick `503`s beyond what the server
//!   absorbs, nothing acknowledged lost), `writ proof soak` (a steady rate for long:
//!   nothing refused, what grows per interval) and `writ proof slow-clients` (thousands of
//!   half-open heads and trickled bodies cut within their deadlines, the benchmark's rate
//!   held); [`proof::run`].
//! - [`rebuild`]: [`RebuildArgs`](rebuild::RebuildArgs), a running server's projection
//!   rebuilt without downtime, with a progress bar; [`rebuild::run`].
//! - [`backup`]: [`BackupArgs`](backup::BackupArgs), a consistent copy of a data directory
//!   taken while a server runs on it; [`backup::run`], and [`backup::backup`] for tests.
//! - [`verify`]: [`VerifyArgs`](verify::VerifyArgs), every file of a data directory checked
//!   (segments, frames, records, sidecar indexes, the journal's invariants) without
//!   opening it; [`verify::run`], and [`verify::verify`] for tests.
//! - [`null_server`]: a server that answers every request at once and does nothing else
//!   (or, with a file, syncs each command's body first), the floor under the proofs' and
//!   the load tool's figures on the machine they run on (the `null_server` example).
//!
//! `backup` and `verify` work on local files and show their progress on stderr: a bar on
//! a terminal, otherwise a plain line every two seconds.
//!
//! The tools that talk to a server share an HTTP/1.1 client of their own (one write per
//! request, answers parsed with `httparse`), so that the load tool spends little of the CPU
//! it shares with the server it measures. It is public, [`client`], with [`server`] that
//! runs the real `writ serve` as a child process: `writ-compare --over http` measures Writ
//! and its peer with the same client.
//!
//! Two tools start the `writ` binary as a child process: the proofs run `BINARY serve`
//! (their `--binary`, or else the current executable), and `writ bench query` loads its
//! data with `writ bench http`, run by the current executable. A binary that offers these
//! commands must therefore be `writ` itself, or pass `--binary` to the proofs.
//!
//! # Example
//!
//! The `writ` binary's command line, in brief:
//!
//! ```
//! use clap::{Parser, Subcommand};
//!
//! #[derive(Debug, Parser)]
//! #[command(name = "writ")]
//! struct Cli {
//!     #[command(subcommand)]
//!     command: Command,
//! }
//!
//! #[derive(Debug, Subcommand)]
//! enum Command {
//!     Rebuild(writ_tools::rebuild::RebuildArgs),
//!     #[command(subcommand)]
//!     Bench(writ_tools::bench::BenchCommand),
//!     #[command(subcommand)]
//!     Proof(writ_tools::proof::ProofCommand),
//! }
//!
//! let cli = Cli::try_parse_from(["writ", "bench", "engine", "--commands", "20000"])?;
//! assert!(matches!(
//!     cli.command,
//!     Command::Bench(writ_tools::bench::BenchCommand::Engine(_))
//! ));
//!
//! // `main` runs what it parsed.
//! fn run(command: Command) -> Result<(), String> {
//!     match command {
//!         Command::Rebuild(args) => writ_tools::rebuild::run(args),
//!         Command::Bench(command) => writ_tools::bench::run(command),
//!         Command::Proof(command) => writ_tools::proof::run(command),
//!     }
//! }
//! # let _ = run;
//! # Ok::<(), clap::Error>(())
//! ```

pub mod backup;
pub mod bench;
pub mod client;
pub mod null_server;
mod progress;
pub mod proof;
pub mod rebuild;
pub mod server;
pub mod verify;
