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
//!
//! ```no_run
//! use writ_app::{App, Module};
//! # mod library {
//! #     use std::borrow::Cow;
//! #     use writ_domain::{CommandCatalog, Decision, Domain, Refusal, event_set};
//! #     #[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
//! #     pub struct Lend { pub book: String }
//! #     #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
//! #     pub struct Lent { pub book: String }
//! #     event_set! { #[derive(Debug, Clone, PartialEq)] pub enum Event { Lent(Lent) } }
//! #     pub struct Library;
//! #     impl Domain for Library {
//! #         const NAME: &'static str = "library";
//! #         const STREAM_PREFIXES: &'static [&'static str] = &["book-"];
//! #         type Command = Lend; type Event = Event; type State = ();
//! #         fn commands() -> CommandCatalog<Lend> { CommandCatalog::new().command("Lend", 1, |c: Lend| c) }
//! #         fn stream(c: &Lend) -> Cow<'_, str> { Cow::Owned(format!("book-{}", c.book)) }
//! #         fn evolve(_: &mut (), _: &Event) {}
//! #         fn decide(d: &mut Decision<'_, Self>, c: &Lend) -> Result<(), Refusal> {
//! #             d.record(Event::Lent(Lent { book: c.book.clone() })); Ok(())
//! #         }
//! #     }
//! # }
//!
//! fn main() -> std::process::ExitCode {
//!     App::new().module(Module::new::<library::Library>()).run()
//! }
//! ```

mod app;
mod cli;
mod module;

pub use app::{App, Config, StartError, Started, Store};
pub use cli::{ServeArgs, init_logging, parse_duration};
pub use module::Module;
pub use writ_domain::{Domain, Process};
pub use writ_query::ReadModelSpec;
