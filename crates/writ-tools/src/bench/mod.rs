//! `writ bench`: workloads that measure Writ, each printing a machine-readable last line.
//!
//! - `writ bench engine` ([`EngineArgs`]): the tickets workload through the engine
//!   in-process, no HTTP.
//! - `writ bench http` ([`HttpArgs`]): the same workload against a running server, over
//!   HTTP/1.1 or WebSockets: the load tool; with `--app DIR`, a resources workload
//!   (creates, patches, custom commands: [`Mix`]) against a server that runs with `--app`.
//! - `writ bench query` ([`QueryArgs`]): the read side of a running server.
//! - `writ bench start` ([`StartArgs`]): how long a start takes until a query sees the
//!   whole log.
//! - `writ bench replay` ([`ReplayArgs`]): `writ replay` of an existing data directory's
//!   log, not applied.

use clap::Subcommand;

mod app;
mod engine;
pub(crate) mod http;
mod query;
mod replay;
mod start;

pub use app::Mix;
pub use engine::EngineArgs;
pub use http::HttpArgs;
pub use query::QueryArgs;
pub use replay::ReplayArgs;
pub use start::StartArgs;

/// `writ bench`'s subcommands.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The tickets workload through the engine in-process (no HTTP): one OpenTicket per
    /// ticket, then AddComment round-robin. A command counts when its outcome is durable.
    Engine(EngineArgs),
    /// The same workload against a running server, over HTTP or WebSocket. A command counts
    /// when it is acknowledged (durable); every outcome is checked afterwards.
    Http(HttpArgs),
    /// The read side of a running server: named queries, query code and a projection
    /// replay, on the tickets workload (loaded first when the server lacks it).
    Query(QueryArgs),
    /// How long `writ serve` takes from its spawn until a query sees the log's last
    /// position, on a tickets log of `--events` events written once into `--data-dir`.
    Start(StartArgs),
    /// `writ replay` of an existing data directory's log (tickets or orders), not applied:
    /// how many commands per second a replay decides, syncs and compares.
    Replay(ReplayArgs),
}

/// Runs one bench to its end, printing its figures on stdout and progress on stderr. An
/// error is a sentence for the user: the bench could not run, or commands failed.
///
/// `writ bench query` loads missing data by running `writ bench http` as a child process
/// of the current executable, which must therefore be a `writ` binary.
pub fn run(command: BenchCommand) -> Result<(), String> {
    match command {
        BenchCommand::Engine(args) => engine::run(args),
        BenchCommand::Http(args) => http::run(args),
        BenchCommand::Query(args) => query::run(args),
        BenchCommand::Start(args) => start::run(args),
        BenchCommand::Replay(args) => replay::run(args),
    }
}
