//! Writ as a platform: a crate of your own registers its domains, with their processes and
//! read models, and serves them, in a few lines (think `axum::Router`: a builder, then
//! serve).
//!
//! - A [`Module`] is one domain with what belongs to it: the [`Domain`] (known at compile
//!   time, [`Module::new`], or built at run time, [`Module::from_model`]), the processes
//!   that follow its events ([`Module::process`]) and its read models
//!   ([`Module::read_model`]).
//! - An [`App`] holds the modules a binary can serve; `--domain` picks among them (all of
//!   them, or [`App::default_domains`], when none is given). All the domains served share one
//!   journal, one writer and one global order; a command name, a stream prefix, a process
//!   name or a query name claimed twice stops the start with a message naming both.
//! - [`App::run`] is a whole `main`: it reads the command line (`serve` and its flags,
//!   [`ServeArgs`]), logs to stderr, opens the store and serves until SIGTERM. A binary with
//!   commands of its own calls [`App::serve`] with the [`ServeArgs`] it parsed, as the `writ`
//!   binary does; tests and embedders call [`App::start`] and get the HTTP service.
//! - `replay` ([`App::replay`], [`ReplayArgs`]) runs every command of a data directory's
//!   command log again through the handlers of the domains the binary registers, into a
//!   new journal, reports what differs, and with `--apply` makes it live; a binary of
//!   one's own gets it with [`App::run`], or calls [`App::replay`] from its own command
//!   line.
//! - [`archive`] moves sealed journal segments out of the dedupe window to an archive
//!   directory, which `serve` and `replay` read with `--archive-dir`.
//!
//! ```no_run
//! use writ_app::{App, Module};
//!
//! // A binary serving one domain with its read model (`docs/guide.md` builds one of its own).
//! fn main() -> std::process::ExitCode {
//!     App::new()
//!         .module(Module::new::<writ_tickets::Tickets>().read_model(writ_tickets::read::read_model()))
//!         .run()
//! }
//! ```

mod app;
pub mod archive;
mod cli;
mod module;
pub mod pack;
mod replay;
mod resources;
pub mod testing;

pub use app::{App, Config, StartError, Started, Store};
pub use cli::{ReadSideSched, ServeArgs, archive_path, init_logging, parse_duration};
pub use module::Module;
pub use replay::{ReplayArgs, ReplayConfig, ReplayError};
pub use writ_domain::{Domain, Process};
pub use writ_engine::{Clock, EngineOptions, ManualClock, SystemClock};
pub use writ_query::{ReadModelSpec, RuntimeOptions};
pub use writ_sandbox::SandboxOptions;
pub use writ_server::ServerOptions;
