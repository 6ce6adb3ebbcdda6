//! `replay`: every command of a data directory's command log run again through the
//! handlers of the domains this binary registers (`writ_engine::replay`), a summary on
//! stdout, the whole report as JSON with `--report`, progress on stderr, and with
//! `--apply` the new journal made live.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use writ_engine::EngineOptions;
use writ_engine::replay::{self, Phase, Progress, Replayed};

use crate::app::{App, StartError, Store};
use crate::cli::parse_duration;

/// `replay`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// The data directory. No server may run on it: its lock is taken for the replay.
    #[arg(long, env = "WRIT_DATA_DIR", default_value = "./writ-data")]
    pub data_dir: PathBuf,
    /// A domain whose handlers decide the commands (repeat, or separate with commas); by
    /// default the binary's defaults, as `serve`. A command of a domain not chosen fails
    /// in the replay.
    #[arg(long = "domain", env = "WRIT_DOMAIN", value_delimiter = ',')]
    pub domains: Vec<String>,
    /// The app directory of resource types the server runs with (`serve --app`), whose
    /// commands are decided by this build's generic handlers; given alone, only its types
    /// decide, as for `serve`.
    #[arg(long, env = "WRIT_APP", value_name = "DIR")]
    pub app: Option<PathBuf>,
    /// Write the whole report, every difference with both outcomes, as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Make the new journal the live one (`CURRENT`); the old one stays on disk until it
    /// is deleted by hand.
    #[arg(long)]
    pub apply: bool,
    /// How many differences the summary prints.
    #[arg(long, default_value_t = 20)]
    pub first: usize,
    /// The dedupe window the server runs with (`serve --dedupe-window`): a process's
    /// command whose id was taken within it is skipped, as it was live.
    #[arg(long, env = "WRIT_DEDUPE_WINDOW", default_value = "24h", value_parser = parse_duration)]
    pub dedupe_window: Duration,
    /// The archive directory of the live journal's sealed segments (`writ archive --to`):
    /// the replay reads the whole journal, from there and from the data directory. The
    /// new journal is written whole in the data directory (none of it archived).
    #[arg(long, env = "WRIT_ARCHIVE_DIR", value_name = "DIR")]
    pub archive_dir: Option<PathBuf>,
}

/// Everything [`App::replay_with`] needs beyond the modules.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    /// The data directory (its lock is taken), or any storage (no lock).
    pub store: Store,
    /// The domains whose handlers decide; empty for the defaults (none when `app` is
    /// given).
    pub domains: Vec<String>,
    /// The app directory of resource types, as `serve --app` takes it.
    pub app: Option<PathBuf>,
    /// The engine's options (the log's, the dedupe window, `process_chain_max`).
    pub engine: EngineOptions,
    /// Make the new journal live.
    pub apply: bool,
    /// Where the JSON report goes.
    pub report: Option<PathBuf>,
    /// Show progress on stderr.
    pub progress: bool,
}

impl ReplayConfig {
    /// `replay`'s flags as a configuration.
    pub fn from_args(args: &ReplayArgs) -> Self {
        let mut engine = EngineOptions {
            dedupe_window: args.dedupe_window,
            ..EngineOptions::default()
        };
        engine.log.archive_dir = args.archive_dir.as_deref().map(crate::cli::archive_path);
        Self {
            store: Store::Dir(args.data_dir.clone()),
            domains: args.domains.clone(),
            app: args.app.clone(),
            engine,
            apply: args.apply,
            report: args.report.clone(),
            progress: true,
        }
    }
}

/// Why a replay did not complete. Nothing was switched: the live journal is as it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// `--domain` names a domain the binary does not have, or the domains clash.
    #[error(transparent)]
    Domains(Box<StartError>),
    /// The replay failed: a data directory a server holds (stop it first), one without
    /// a journal, or an I/O failure.
    #[error("cannot replay: {0}")]
    Replay(#[from] replay::ReplayError),
    /// The JSON report could not be written (the replay itself is complete, and applied
    /// if asked).
    #[error("cannot write the report to {path}: {source}")]
    Report {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

impl From<StartError> for ReplayError {
    fn from(error: StartError) -> Self {
        ReplayError::Domains(Box::new(error))
    }
}

impl App {
    /// `replay` from its flags: replays, prints the summary on stdout and, with
    /// `--report`, writes the JSON report. Logging must be set up already.
    pub fn replay(self, args: &ReplayArgs) -> Result<(), String> {
        let first = args.first;
        let replayed = self
            .replay_with(ReplayConfig::from_args(args))
            .map_err(|e| match e {
                ReplayError::Replay(replay::ReplayError::Open(
                    writ_engine::OpenError::Locked { .. },
                )) => format!(
                    "{e}; a server runs on it: stop it first, or replay beside it with POST /admin/replay (which reports, and does not switch)"
                ),
                e => e.to_string(),
            })?;
        print!("{}", summary(&replayed, args.apply, first));
        Ok(())
    }

    /// Replays the store of `config` through the chosen domains (and their processes),
    /// applies it if asked, and writes the JSON report if asked.
    pub fn replay_with(self, config: ReplayConfig) -> Result<Replayed, ReplayError> {
        let registry = self
            .registry(&config.domains, config.app.as_deref())?
            .registry;
        let mut shown = Shown::new(config.progress);
        let mut progress = |p: Progress| shown.show(p);
        let replayed = match &config.store {
            Store::Dir(dir) => {
                tracing::info!(data_dir = %dir.display(), domains = %registry.domain_names().join(", "), "replaying");
                replay::replay_data_dir(dir, registry, config.engine, config.apply, &mut progress)?
            }
            Store::Storage(storage) => {
                let replayed =
                    replay::replay(Arc::clone(storage), registry, config.engine, &mut progress)?;
                if config.apply {
                    replay::apply(storage.as_ref(), &replayed)?;
                }
                replayed
            }
        };
        shown.finish();
        if let Some(path) = &config.report {
            let json = replayed.report_json(config.apply);
            let bytes = serde_json::to_vec_pretty(&json).expect("JSON values serialize");
            std::fs::write(path, bytes).map_err(|source| ReplayError::Report {
                path: path.clone(),
                source,
            })?;
        }
        Ok(replayed)
    }
}

/// What `replay` prints: where the replay is, the report's summary with the first
/// `first` differences, and whether it is live.
pub(crate) fn summary(replayed: &Replayed, applied: bool, first: usize) -> String {
    let dir = replayed
        .journal
        .parent()
        .map_or_else(String::new, |p| p.display().to_string());
    let mut out = format!(
        "replayed {} into {} ({} timers pending at its end)\n",
        replayed.source.display(),
        replayed.journal.display(),
        replayed.timers_pending
    );
    out.push_str(&replayed.report.summary(first));
    if applied {
        out.push_str(&format!(
            "applied: {} is the live journal; the old one stays in {} until deleted by hand\n",
            replayed.journal.display(),
            replayed.source.display()
        ));
    } else {
        out.push_str(&format!(
            "not applied: the live journal is still {}; run again with --apply to switch, or delete {dir}/ by hand\n",
            replayed.source.display()
        ));
    }
    out
}

/// Progress on stderr: a bar on a terminal, a line every few seconds otherwise.
enum Shown {
    Bar(ProgressBar, Phase),
    Plain(Instant),
    Hidden,
}

impl Shown {
    fn new(show: bool) -> Self {
        if !show {
            Shown::Hidden
        } else if std::io::stderr().is_terminal() {
            Shown::Bar(bar("replaying"), Phase::Replaying)
        } else {
            Shown::Plain(Instant::now())
        }
    }

    fn show(&mut self, p: Progress) {
        match self {
            Shown::Bar(bar, phase) => {
                if *phase != p.phase {
                    bar.finish_and_clear();
                    *bar = self::bar("comparing");
                    *phase = p.phase;
                }
                bar.set_length(p.total);
                bar.set_position(p.done);
            }
            Shown::Plain(last) if last.elapsed() >= Duration::from_secs(2) => {
                *last = Instant::now();
                let phase = match p.phase {
                    Phase::Replaying => "replaying",
                    _ => "comparing",
                };
                eprintln!("{phase}: {} of {} records", p.done, p.total);
            }
            Shown::Plain(_) | Shown::Hidden => {}
        }
    }

    fn finish(&self) {
        if let Shown::Bar(bar, _) = self {
            bar.finish_and_clear();
        }
    }
}

fn bar(label: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template(
            "{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} records ({per_sec}, {eta} left)",
        )
        .expect("a valid template"),
    );
    bar.set_message(label);
    bar
}
