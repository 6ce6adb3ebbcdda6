//! The builder: modules in, a server out.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use writ_engine::{Engine, EngineOptions, OpenError, RecoveryReport, Registry, RegistryError};
use writ_query::{EventSource, ReadModelSpec, ReadModels, RuntimeOptions, SnapshotOptions};
use writ_sandbox::{Sandbox, SandboxOptions};
use writ_server::access::Tokens;
use writ_server::{AppState, ReadSide, ServerOptions, Tls};

use crate::cli::{ServeArgs, check_open_listen, init_logging, log_recovery};
use crate::module::Module;
use crate::replay::ReplayArgs;

/// The modules a binary can serve; see the crate documentation.
#[derive(Debug, Default)]
pub struct App {
    modules: Vec<Module>,
    defaults: Option<Vec<String>>,
}

/// Where the store lives.
#[derive(Clone)]
pub enum Store {
    /// A data directory, created if missing and locked while the server runs.
    Dir(PathBuf),
    /// Any storage (tests use `writ_log::storage::SimStorage`).
    Storage(Arc<dyn writ_log::storage::Storage>),
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Store::Dir(dir) => f.debug_tuple("Dir").field(dir).finish(),
            Store::Storage(storage) => f.debug_tuple("Storage").field(storage).finish(),
        }
    }
}

/// Everything [`App::start`] needs beyond the modules.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the store lives.
    pub store: Store,
    /// The domains to serve; empty for the defaults ([`App::default_domains`], or all),
    /// or for none when `app` is given.
    pub domains: Vec<String>,
    /// An app directory of resource types without code (`--app`), served beside the
    /// domains; see `writ_resources`.
    pub app: Option<PathBuf>,
    /// `MODEL=N` or `N`: the projection version read models start with, unless the log
    /// switched them (`writ_query::switch`: the last switch's version wins).
    pub projection_versions: Vec<String>,
    /// The engine's bounds.
    pub engine: EngineOptions,
    /// The HTTP server's bounds.
    pub server: ServerOptions,
    /// The read models' runtime.
    pub runtime: RuntimeOptions,
    /// The query sandbox's bounds.
    pub sandbox: SandboxOptions,
    /// The tokens every request but `GET /health` must carry one of; `None`: open.
    pub tokens: Option<Tokens>,
}

impl Config {
    /// Defaults everywhere, on `store`.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            domains: Vec::new(),
            app: None,
            projection_versions: Vec::new(),
            engine: EngineOptions::default(),
            server: ServerOptions::default(),
            runtime: RuntimeOptions::default(),
            sandbox: SandboxOptions::default(),
            tokens: None,
        }
    }

    /// The configuration `serve`'s flags describe.
    pub fn from_args(args: &ServeArgs) -> Self {
        let mut config = Self::new(Store::Dir(args.data_dir.clone()));
        config.domains.clone_from(&args.domains);
        config.app.clone_from(&args.app);
        config
            .projection_versions
            .clone_from(&args.projection_versions);
        config.engine.dedupe_window = args.dedupe_window;
        // Each bound is range-checked by clap, so it fits a usize.
        config.engine.timers_max = usize::try_from(args.timers_max).unwrap_or(usize::MAX);
        config.engine.dedupe_entries_max =
            usize::try_from(args.dedupe_entries_max).unwrap_or(usize::MAX);
        // A hot map bounded below the spill size spills at its bound.
        config.engine.dedupe_spill_entries = usize::try_from(args.dedupe_spill_entries)
            .unwrap_or(usize::MAX)
            .min(config.engine.dedupe_entries_max);
        config.engine.log.open_segments_max =
            usize::try_from(args.open_segments_max).unwrap_or(usize::MAX);
        config.engine.log.archive_dir = args.archive_dir.as_deref().map(crate::cli::archive_path);
        config.engine.checkpoint_every_records = args.checkpoint_every_records;
        config.engine.writer_nice = args.writer_nice;
        config.runtime.batch_scheduling = args.read_side_sched == crate::cli::ReadSideSched::Batch;
        if !args.no_snapshots {
            let storage = Arc::new(writ_log::storage::FsStorage::new(&args.data_dir));
            let mut snapshots = SnapshotOptions::new(storage);
            snapshots.every_events = args.snapshot_every_events;
            snapshots.time_share = args.snapshot_time_share;
            config.runtime.snapshots = Some(snapshots);
        }
        config.server.requests_max = usize::try_from(args.requests_max).unwrap_or(usize::MAX);
        config.server.waits_max = usize::try_from(args.waits_max).unwrap_or(usize::MAX);
        config.server.connections_max = usize::try_from(args.connections_max).unwrap_or(usize::MAX);
        config.server.after_wait_max = args.after_wait_max;
        config.server.query_answer_bytes_max =
            usize::try_from(args.query_answer_bytes_max).unwrap_or(usize::MAX);
        config.server.connections_per_address_max =
            usize::try_from(args.connections_per_address_max).unwrap_or(usize::MAX);
        config.server.head_timeout = args.head_timeout;
        config.server.body_timeout = args.body_timeout;
        config.server.body_reading_bytes_max =
            usize::try_from(args.body_reading_bytes_max).unwrap_or(usize::MAX);
        config.server.idle_timeout = args.idle_timeout;
        config.server.http_threads = usize::try_from(args.http_threads).unwrap_or(usize::MAX);
        config
    }
}

/// A server ready to serve: its state (hand it to `writ_server::router` or
/// `writ_server::serve`) and what opening the store found.
#[derive(Debug)]
pub struct Started {
    /// The HTTP layer's state: engine, read models, sandbox, bounds.
    pub state: AppState,
    /// What recovery found and did.
    pub report: RecoveryReport,
}

/// Why [`App::start`] did not start. Each message says what to change; nothing was
/// opened or created when it is a configuration mistake (every variant but `Open` and
/// `ReadModels`'s spawn failures).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// `--domain` names a domain the binary does not have.
    #[error("unknown domain {name:?}; known domains: {}", known.join(", "))]
    UnknownDomain {
        /// The name given.
        name: String,
        /// The domains the binary has.
        known: Vec<String>,
    },
    /// Two domains (or processes) claim the same name, command or stream prefix.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Two read models have the same name.
    #[error("two read models are named {name:?} (in domains {first:?} and {second:?})")]
    ReadModelTwice {
        /// The name.
        name: String,
        /// The domain of the first.
        first: String,
        /// The domain of the second.
        second: String,
    },
    /// Two domains' read models declare the same query name in one query API version.
    #[error(
        "query {query:?} of query API version {version} is declared by domain {first:?} (read model {first_model:?}) and by domain {second:?} (read model {second_model:?})"
    )]
    QueryClash {
        /// The query's name.
        query: String,
        /// The query API version.
        version: u32,
        /// The domain whose read model declares it first.
        first: String,
        /// That read model.
        first_model: String,
        /// The other domain.
        second: String,
        /// Its read model.
        second_model: String,
    },
    /// A `--projection-version` no read model has, or that does not parse.
    #[error("--projection-version {given}: {detail}")]
    ProjectionVersion {
        /// The flag's value.
        given: String,
        /// What is wrong.
        detail: String,
    },
    /// The store could not be opened.
    #[error("cannot open the store: {0}")]
    Open(#[from] OpenError),
    /// The read models could not start (a query name claimed by two of them, or a thread
    /// could not be spawned).
    #[error("cannot start the read models: {0}")]
    ReadModels(#[from] writ_query::StartError),
    /// The read models' switches could not be read from the log.
    #[error("cannot read the read models' switches from the log: {0}")]
    Switches(#[from] writ_engine::ReadError),
    /// The query sandbox could not start.
    #[error("cannot start the query sandbox: {0}")]
    Sandbox(#[from] writ_sandbox::StartError),
    /// The app directory (`--app`) was refused: the message names the file and the place.
    #[error("--app: {0}")]
    App(#[from] writ_resources::LoadError),
    /// The store holds documents of `--app`'s types that do not fit their current schemas
    /// (read through their migrations), or events its migrations cannot read: the report
    /// names them. The server does not serve; fix the app and start again.
    #[error("--app: {0}")]
    Stored(String),
}

#[derive(Debug, Parser)]
#[command(about = "A Writ server: command-first CQRS and event sourcing")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API on a data directory.
    Serve(ServeArgs),
    /// Run every command of the command log again through this build's handlers, into a
    /// new journal beside the live one, and report what differs; `--apply` makes it live.
    Replay(ReplayArgs),
}

impl App {
    /// No modules yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a module the binary can serve.
    pub fn module(mut self, module: Module) -> Self {
        self.modules.push(module);
        self
    }

    /// The domains served when `--domain` is not given (by default, all).
    pub fn default_domains(mut self, names: &[&str]) -> Self {
        self.defaults = Some(names.iter().map(|n| (*n).to_owned()).collect());
        self
    }

    /// The names of the domains the binary has.
    pub fn domain_names(&self) -> Vec<String> {
        self.modules.iter().map(|m| m.name().to_owned()).collect()
    }

    /// A whole `main`: parses `serve` (or `replay`) and its flags from the command line,
    /// logs to stderr, and serves until SIGTERM or SIGINT (or replays); an error is
    /// printed as one readable line.
    pub fn run(self) -> ExitCode {
        let cli = Cli::parse();
        let result = init_logging().and_then(|()| match cli.command {
            Command::Serve(args) => self.serve(&args),
            Command::Replay(args) => self.replay(&args),
        });
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("error: {message}");
                ExitCode::FAILURE
            }
        }
    }

    /// Serves on `args` until SIGTERM or SIGINT: reads the tokens file and the TLS
    /// certificate and key, refuses an open server (no `--tokens`) beyond loopback unless
    /// `--insecure-open`, opens the store, starts the read models and the sandbox, prints
    /// `listening on http://HOST:PORT` (`https://` with TLS), and on the signal drains and
    /// syncs. Logging must be set up already ([`init_logging`]).
    pub fn serve(self, args: &ServeArgs) -> Result<(), String> {
        // Every check of the flags comes before the store is opened or created.
        let mut config = Config::from_args(args);
        if let Some(file) = &args.tokens {
            let tokens = Tokens::load(file).map_err(|e| e.to_string())?;
            tracing::info!(file = %file.display(), tokens = ?tokens.names(), "access: every route but /health needs one of these tokens");
            config.tokens = Some(tokens);
        }
        check_open_listen(&args.listen, args.tokens.is_some(), args.insecure_open)?;
        if args.tokens.is_none() && args.insecure_open {
            tracing::warn!(listen = %args.listen, "--insecure-open: open access (no --tokens) on an address others may reach");
        }
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => {
                Some(Tls::from_pem_files(cert, key).map_err(|e| e.to_string())?)
            }
            _ => None,
        };
        let started = self.start(config).map_err(|e| e.to_string())?;
        // With `--http-threads N`, `writ_server::serve_with` starts N workers of their own
        // and this thread only accepts, waits for the signal and drains; without, this
        // runtime's workers (one per core) serve the connections too.
        let runtime = if args.http_threads == 0 {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("writ-http")
                .build()
        } else {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        }
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
        runtime.block_on(async {
            let shutdown = async {
                writ_server::shutdown_signal().await;
                // A second signal does not wait for the drain. Nothing acknowledged is
                // lost: acknowledged commands are in the journal with their outcomes.
                tokio::spawn(async {
                    writ_server::shutdown_signal().await;
                    tracing::warn!("second signal: exiting without draining");
                    std::process::exit(130);
                });
            };
            writ_server::serve_with(&args.listen, started.state, tls, shutdown)
                .await
                .map_err(|e| e.to_string())
        })
    }

    /// Opens the store and starts everything but the listener: the engine over the chosen
    /// domains and their processes, the read models, the sandbox. Every check that can
    /// fail on the configuration runs before the store is opened or created.
    pub fn start(self, config: Config) -> Result<Started, StartError> {
        let Registered {
            registry,
            specs,
            owners,
            resources,
        } = self.registry(&config.domains, config.app.as_deref())?;
        let specs = apply_projection_versions(specs, &config.projection_versions)?;
        ReadModels::check(&specs).map_err(|e| name_domains(e, &owners))?;
        let reopen = Reopen {
            specs: specs.clone(),
            runtime: config.runtime.clone(),
        };
        // Before the engine opens, so that what it reports during recovery is recorded.
        writ_server::prometheus();
        let domains = registry.domain_names().join(", ");
        let (engine, report) = match &config.store {
            Store::Dir(dir) => {
                tracing::info!(data_dir = %dir.display(), %domains, "opening the store");
                Engine::open_dir(dir, registry, config.engine)?
            }
            Store::Storage(storage) => Engine::open(Arc::clone(storage), registry, config.engine)?,
        };
        log_recovery(&report);
        let engine = Arc::new(engine);
        // Each read model at the version its last switch in the log named, whatever
        // `--projection-version` says (logged when they differ).
        let specs = writ_query::switch::start_versions(&engine, specs)?;
        let models = ReadModels::start(
            Arc::clone(&engine) as Arc<dyn EventSource>,
            specs,
            config.runtime,
        )?;
        if let Some(resources) = &resources
            && let Err(error) = crate::resources::check_stored(&engine, &models, resources)
        {
            models.shutdown();
            engine.shutdown();
            return Err(error);
        }
        let sandbox = Sandbox::new(config.sandbox)?;
        let read = ReadSide {
            models: Arc::new(models),
            sandbox: Arc::new(sandbox),
            domain_of_model: owners,
        };
        let mut state = AppState::new(engine, config.server)
            .with_read_side(read)
            .with_switcher(Arc::new(reopen));
        if let Some(resources) = resources {
            let names: Vec<&str> = resources.types().iter().map(|t| t.name()).collect();
            tracing::info!(types = ?names, "serving resource types at /{{type}}");
            state = state.with_resources(Arc::new(crate::resources::Served(resources)));
        }
        if let Some(tokens) = config.tokens {
            let engine = state.engine();
            let commands = engine.registry().commands();
            for name in tokens.listed_commands() {
                if !commands.iter().any(|(_, spec)| spec.name == name) {
                    tracing::warn!(
                        command = name,
                        "the tokens file lists a command no domain of this server has"
                    );
                }
            }
            state = state.with_tokens(tokens);
        }
        Ok(Started { state, report })
    }

    /// The registry of the domains `names` (or the defaults, unless an app directory is
    /// given) and their processes, with the resource types of the app directory `app`,
    /// their read models and each read model's domain. The app directory is checked whole
    /// here, before anything opens.
    pub(crate) fn registry(
        self,
        names: &[String],
        app: Option<&std::path::Path>,
    ) -> Result<Registered, StartError> {
        let resources = match app {
            None => None,
            Some(path) => Some(load_app(path)?),
        };
        let mut modules = self.select(names, resources.is_some())?;
        if let Some(resources) = &resources {
            resources.check_neighbours(&neighbours(&modules))?;
            for ty in resources.types() {
                let mut module = Module::from_model(writ_resources::ResourceSet::domain(ty))
                    .read_model(writ_resources::ResourceSet::read_model(ty));
                // A machine's `after` transitions fire through a process of the type.
                if let Some(timers) = writ_resources::ResourceSet::timers(ty) {
                    module = module.process_model(timers);
                }
                modules.push(module);
            }
            // The app's projections read the events of every domain and type served; a
            // function for a type no domain served records applies nothing (`profiles.js`
            // reads orders' events, with or without `--domain orders`).
            let known: Vec<String> = modules
                .iter()
                .flat_map(|module| module.domain.event_types())
                .collect();
            for warning in resources.unknown_projection_events(&known) {
                tracing::warn!("{warning}");
            }
            // The compiled domains served beside them (their upcasts shape the events the
            // projections are given) are part of their snapshots' code tags.
            let compiled: Vec<String> = modules
                .iter()
                .map(|module| module.name().to_owned())
                .filter(|name| resources.resource_type(name).is_none())
                .collect();
            // Listed under the app's first type (there is one: an app without types is
            // refused when it loads).
            if let Some(first) = modules
                .iter_mut()
                .find(|module| resources.resource_type(module.name()).is_some())
            {
                for spec in resources.projection_read_models_beside(&compiled) {
                    first.read_models.push(spec);
                }
            }
        }
        let mut registry = Registry::builder();
        let mut specs: Vec<ReadModelSpec> = Vec::new();
        let mut owners: HashMap<String, String> = HashMap::new();
        for module in modules {
            let domain = module.domain.name().to_owned();
            registry = registry.domain(module.domain);
            for process in module.processes {
                registry = registry.process(process);
            }
            for spec in module.read_models {
                if let Some(first) = owners.insert(spec.name().to_owned(), domain.clone()) {
                    return Err(StartError::ReadModelTwice {
                        name: spec.name().to_owned(),
                        first,
                        second: domain,
                    });
                }
                specs.push(spec);
            }
        }
        // The built-in domain whose command switches a read model to another projection
        // version (`writ_query::switch`), on every server: registered last, so that a
        // domain claiming its name, command or stream prefix is refused naming both.
        registry = registry.domain(writ_query::switch::domain(&specs));
        Ok(Registered {
            registry: registry.build()?,
            specs,
            owners,
            resources,
        })
    }

    /// The modules `--domain` names (or the defaults, unless an app directory is given),
    /// in the order given, each once.
    fn select(self, names: &[String], app: bool) -> Result<Vec<Module>, StartError> {
        let known = self.domain_names();
        if let Some(name) = known
            .iter()
            .enumerate()
            .find_map(|(at, name)| known[..at].contains(name).then_some(name))
        {
            return Err(RegistryError::DomainTwice { name: name.clone() }.into());
        }
        let wanted: Vec<String> = if names.is_empty() && app {
            Vec::new()
        } else if names.is_empty() {
            self.defaults.clone().unwrap_or_else(|| known.clone())
        } else {
            names.to_vec()
        };
        let mut modules: Vec<Option<Module>> = self.modules.into_iter().map(Some).collect();
        let mut selected = Vec::new();
        for name in wanted {
            let Some(at) = known.iter().position(|k| *k == name) else {
                return Err(StartError::UnknownDomain { name, known });
            };
            if let Some(module) = modules[at].take() {
                selected.push(module);
            }
        }
        Ok(selected)
    }
}

/// The chosen domains registered, with their read models.
pub(crate) struct Registered {
    /// The domains and their processes.
    pub registry: Registry,
    /// Their read models.
    pub specs: Vec<ReadModelSpec>,
    /// Each read model's domain, by the read model's name.
    pub owners: HashMap<String, String>,
    /// The resource types of the app directory, when one was given.
    pub resources: Option<writ_resources::ResourceSet>,
}

/// What serves after an online replay switched the journal (`POST /admin/replay` with
/// `apply`): the engine reopened on the journal `CURRENT` names, and the read models
/// started again on it, each at the version of its last switch in that journal, from its
/// position 1 (their snapshots are of the other journal, unless the two are the same byte
/// for byte); the sandbox and the names stay. The start's check of `--app`'s stored
/// documents is not made again: the journal is live already, and a read model that cannot
/// apply an event counts it in its status, as after any start.
struct Reopen {
    specs: Vec<writ_query::ReadModelSpec>,
    runtime: writ_query::RuntimeOptions,
}

impl writ_server::Switcher for Reopen {
    fn reopen(
        &self,
        old: &Engine,
        old_read: Option<&ReadSide>,
    ) -> Result<(Arc<Engine>, Option<ReadSide>), String> {
        let (engine, report) = old
            .reopen()
            .map_err(|e| format!("the store on the new journal did not open: {e}"))?;
        log_recovery(&report);
        let engine = Arc::new(engine);
        let Some(old_read) = old_read else {
            return Ok((engine, None));
        };
        let specs = writ_query::switch::start_versions(&engine, self.specs.clone())
            .map_err(|e| format!("the read models' versions could not be read: {e}"))?;
        let models = ReadModels::start(
            Arc::clone(&engine) as Arc<dyn EventSource>,
            specs,
            self.runtime.clone(),
        )
        .map_err(|e| format!("the read models did not start: {e}"))?;
        Ok((
            engine,
            Some(ReadSide {
                models: Arc::new(models),
                sandbox: Arc::clone(&old_read.sandbox),
                domain_of_model: old_read.domain_of_model.clone(),
            }),
        ))
    }
}

/// The app at `path` (a directory, or a bundle `writ app pack` made), read whole into
/// memory, its digest logged (the same for a directory and its bundle), then checked.
fn load_app(path: &std::path::Path) -> Result<writ_resources::ResourceSet, StartError> {
    let files = writ_resources::AppFiles::read(path).map_err(writ_resources::LoadError::from)?;
    let kind = if path.is_file() {
        "bundle"
    } else {
        "directory"
    };
    tracing::info!(
        app = %path.display(),
        kind,
        files = files.paths().count(),
        digest = %files.digest(),
        "the app's files (digest: SHA-256, as writ app pack prints it)"
    );
    Ok(writ_resources::load_files(&files)?)
}

/// What resource types must not share with the modules served beside them.
fn neighbours(modules: &[Module]) -> writ_resources::Neighbours {
    let mut neighbours = writ_resources::Neighbours::default();
    for module in modules {
        let domain = module.domain.name().to_owned();
        neighbours.names.push(domain.clone());
        neighbours
            .names
            .extend(module.read_models.iter().map(|spec| spec.name().to_owned()));
        for prefix in module.domain.stream_prefixes() {
            neighbours.prefixes.push((prefix, domain.clone()));
        }
        for command in module.domain.commands() {
            neighbours.commands.push((command.name, domain.clone()));
        }
    }
    neighbours
}

/// A query clash between read models, told as one between their domains.
fn name_domains(error: writ_query::StartError, owners: &HashMap<String, String>) -> StartError {
    match error {
        writ_query::StartError::QueryClash {
            version,
            name,
            first,
            second,
        } => {
            let domain = |model: &str| owners.get(model).cloned().unwrap_or_default();
            StartError::QueryClash {
                query: name,
                version,
                first: domain(&first),
                first_model: first,
                second: domain(&second),
                second_model: second,
            }
        }
        other => other.into(),
    }
}

/// Applies `--projection-version` values: `MODEL=N` to that read model, `N` to every read
/// model that has version N (at least one must).
fn apply_projection_versions(
    mut specs: Vec<ReadModelSpec>,
    values: &[String],
) -> Result<Vec<ReadModelSpec>, StartError> {
    for given in values {
        let error = |detail: String| StartError::ProjectionVersion {
            given: given.clone(),
            detail,
        };
        let (model, version) = match given.split_once('=') {
            Some((model, version)) => (Some(model.trim()), version),
            None => (None, given.as_str()),
        };
        let version: u32 = version
            .trim()
            .parse()
            .ok()
            .filter(|v| *v >= 1)
            .ok_or_else(|| error("a version is a positive integer, as in 2 or tickets=1".into()))?;
        let mut applied = 0;
        let mut known = Vec::new();
        specs = specs
            .into_iter()
            .map(|spec| {
                let matches = model.is_none_or(|m| m == spec.name());
                known.push(format!(
                    "the {} read model has projection versions {}",
                    spec.name(),
                    describe_versions(spec.projection_versions())
                ));
                if matches && spec.projection_versions().contains(&version) {
                    applied += 1;
                    spec.starting_at(version)
                        .expect("a listed version can be built")
                } else {
                    spec
                }
            })
            .collect();
        if applied == 0 {
            return Err(error(format!("{}, not {version}", known.join("; "))));
        }
    }
    Ok(specs)
}

/// `1 to 2`, or `1, 3`.
fn describe_versions(versions: &[u32]) -> String {
    match versions {
        [] => "none".to_owned(),
        [only] => only.to_string(),
        [first, .., last] if versions.windows(2).all(|w| w[1] == w[0] + 1) => {
            format!("{first} to {last}")
        }
        _ => versions
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use writ_log::storage::SimStorage;

    fn app() -> App {
        App::new()
            .module(
                Module::new::<writ_tickets::Tickets>().read_model(writ_tickets::read::read_model()),
            )
            .default_domains(&["tickets"])
    }

    fn config(domains: &[&str], versions: &[&str]) -> Config {
        let mut config = Config::new(Store::Storage(Arc::new(SimStorage::new())));
        config.domains = domains.iter().map(|d| (*d).to_owned()).collect();
        config.projection_versions = versions.iter().map(|v| (*v).to_owned()).collect();
        config
    }

    #[test]
    fn versions_are_described_as_a_range_or_a_list() {
        assert_eq!(describe_versions(&[1, 2, 3]), "1 to 3");
        assert_eq!(describe_versions(&[1, 3]), "1, 3");
        assert_eq!(describe_versions(&[2]), "2");
        assert_eq!(describe_versions(&[]), "none");
    }

    #[test]
    fn open_segments_max_goes_from_its_flag_to_the_journal_options() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(["writ", "serve"].iter().chain(args)).map(|cli| {
                let Command::Serve(args) = cli.command else {
                    panic!("`writ serve` parses as serve");
                };
                Config::from_args(&args)
            })
        };
        let config = parse(&["--open-segments-max", "8"]).unwrap();
        assert_eq!(config.engine.log.open_segments_max, 8);
        let config = parse(&[]).unwrap();
        assert_eq!(
            config.engine.log.open_segments_max,
            writ_log::LogOptions::default().open_segments_max
        );
        assert!(parse(&["--open-segments-max", "0"]).is_err());
    }

    #[test]
    fn archive_dir_goes_from_its_flag_to_the_journal_options_as_an_absolute_path() {
        let parse = |args: &[&str]| {
            let cli = Cli::try_parse_from(["writ", "serve"].iter().chain(args)).unwrap();
            let Command::Serve(args) = cli.command else {
                panic!("`writ serve` parses as serve");
            };
            Config::from_args(&args)
        };
        assert_eq!(parse(&[]).engine.log.archive_dir, None);
        let config = parse(&["--archive-dir", "old-segments"]);
        let dir = config.engine.log.archive_dir.unwrap();
        assert!(dir.is_absolute(), "{}", dir.display());
        assert!(dir.ends_with("old-segments"), "{}", dir.display());
    }

    #[test]
    fn an_unknown_domain_is_refused_naming_the_known_ones() {
        let error = app().start(config(&["shipping"], &[])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown domain \"shipping\"; known domains: tickets"
        );
    }

    #[test]
    fn projection_versions_start_a_read_model_at_an_older_structure() {
        let started = app().start(config(&[], &["tickets=1"])).unwrap();
        let read = started.state.read_side().expect("a read side");
        assert_eq!(read.models.status("tickets").unwrap().root.version, 1);
        let started = app().start(config(&[], &["2"])).unwrap();
        let read = started.state.read_side().expect("a read side");
        assert_eq!(read.models.status("tickets").unwrap().root.version, 2);
        for (given, expected) in [
            (
                "3",
                "the tickets read model has projection versions 1 to 2, not 3",
            ),
            (
                "orders=1",
                "the tickets read model has projection versions 1 to 2, not 1",
            ),
            ("zero", "a version is a positive integer"),
        ] {
            let error = app().start(config(&[], &[given])).unwrap_err().to_string();
            assert!(error.contains(expected), "{given}: {error}");
        }
    }

    #[test]
    fn a_domain_registered_twice_is_refused_before_the_store_opens() {
        let twice = App::new()
            .module(Module::new::<writ_tickets::Tickets>())
            .module(Module::new::<writ_tickets::Tickets>());
        let error = twice.start(config(&[], &[])).unwrap_err();
        assert!(matches!(error, StartError::Registry(_)), "{error}");
        assert!(error.to_string().contains("tickets"), "{error}");
    }
}
