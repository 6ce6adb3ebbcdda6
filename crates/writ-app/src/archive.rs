//! `archive`: sealed segments of a data directory's journal moved out of it, to a directory
//! that `serve`, `replay`, `verify` and `backup` then read with `--archive-dir`
//! (`writ_engine::archive`).

use std::path::PathBuf;
use std::time::Duration;

use writ_engine::archive::{self, ArchiveError, Archived};
use writ_engine::{EngineOptions, OpenError};

use crate::cli::parse_duration;

/// `archive`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ArchiveArgs {
    /// The data directory. No server may run on it: its lock is taken while segments move.
    #[arg(long, env = "WRIT_DATA_DIR", default_value = "./writ-data")]
    pub data_dir: PathBuf,
    /// The archive directory (created if missing; one per data directory). Give it to
    /// `serve`, `replay`, `verify` and `backup` as `--archive-dir` from then on.
    #[arg(long, value_name = "ARCHIVE")]
    pub to: PathBuf,
    /// The dedupe window the server runs with (`serve --dedupe-window`): a segment moves
    /// only when all its records are older than this, measured back from the journal's
    /// last record.
    #[arg(long, env = "WRIT_DEDUPE_WINDOW", default_value = "24h", value_parser = parse_duration)]
    pub dedupe_window: Duration,
}

/// `archive` from its flags: moves what is out of the window and prints what it did.
pub fn run(args: &ArchiveArgs) -> Result<(), String> {
    let archived = archive::archive_data_dir(
        &args.data_dir,
        &args.to,
        args.dedupe_window,
        EngineOptions::default().log,
    )
    .map_err(|e| match e {
        ArchiveError::Open(OpenError::Locked { .. }) => {
            format!("{e}; a server runs on it: stop it first (archiving is offline)")
        }
        e => e.to_string(),
    })?;
    print!("{}", summary(&archived, &args.to));
    Ok(())
}

/// What `archive` prints.
pub fn summary(archived: &Archived, to: &std::path::Path) -> String {
    let mut out = String::new();
    for name in &archived.moved {
        out.push_str(&format!(
            "moved {}/{name} to {}\n",
            archived.journal.display(),
            to.display()
        ));
    }
    if archived.removed_temp_files > 0 {
        out.push_str(&format!(
            "removed {} unfinished copies (.tmp) from {}\n",
            archived.removed_temp_files,
            to.display()
        ));
    }
    out.push_str(&format!(
        "archive=ok moved_segments={} bytes_freed={} records={} archived_records={} kept_in_window={} cutoff_ms={}\n",
        archived.moved.len(),
        archived.bytes_freed,
        archived.records,
        archived.archived_records,
        archived.kept_in_window,
        archived.cutoff_ms,
    ));
    if archived.archived_records > 0 {
        out.push_str(&format!(
            "records 0..{} are in {}: serve, replay, verify and backup need --archive-dir {}\n",
            archived.archived_records,
            to.display(),
            to.display()
        ));
    }
    out
}
