//! `writ archive`: sealed segments of the live journal whose records are all older than
//! the dedupe window moved to an archive directory, where an engine opened with
//! [`LogOptions::archive_dir`](writ_log::LogOptions::archive_dir) still reads them (the
//! journal is the event store: read models rebuild from position 1 and replays read
//! every command).
//!
//! Offline: the data directory's lock is held, so no engine writes meanwhile. The window
//! is measured back from the journal's last record's `recorded_at_ms`, not the wall
//! clock, so the same journal archives the same segments whenever it runs. A segment is
//! moved only when its last record (the newest: times never decrease along the journal)
//! is older than that, and never the journal's last segment; segments are moved oldest
//! first and the first that stays ends the run, so the archive always holds a prefix of
//! the journal. Each move is [`writ_log::archive::move_segment`]'s (copy to `.tmp`, sync,
//! rename, archive synced, then removed from the journal): a crash at any point leaves
//! every record readable, and running again finishes the move.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use writ_log::archive::{self, MoveError};
use writ_log::storage::{FsStorage, Storage};
use writ_log::{Log, LogOptions};

use crate::current;
use crate::error::OpenError;
use crate::recovery::{self, JOURNAL_DIR};

/// Why archiving stopped. Segments moved before the error stay moved (each move is
/// whole); nothing else changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// The data directory could not be opened: locked by a running server
    /// ([`OpenError::Locked`]: stop it first), a `CURRENT` this build does not read, or
    /// the journal (with the segments already archived) could not be recovered.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The data directory holds no journal.
    #[error("{path} holds no journal: not a Writ data directory")]
    NoJournal {
        /// The data directory.
        path: PathBuf,
    },
    /// The archive directory is unusable: the journal's own directory, not a directory, or
    /// not creatable.
    #[error("archive directory {path}: {detail}")]
    Archive {
        /// The archive directory.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A record's time could not be read.
    #[error("the live journal: {0}")]
    Read(String),
    /// Moving a segment failed (a full disk, a file of the same name with other bytes in
    /// the archive).
    #[error("moving a segment: {0}")]
    Move(#[from] MoveError),
}

/// What [`archive_data_dir`] did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Archived {
    /// The live journal, relative to the data directory.
    pub journal: PathBuf,
    /// Segments moved by this run (their names), oldest first.
    pub moved: Vec<String>,
    /// Bytes removed from the journal's directory (segments and their indexes).
    pub bytes_freed: u64,
    /// Records of the journal.
    pub records: u64,
    /// Records in the archive after this run (the first record left in the journal's
    /// directory).
    pub archived_records: u64,
    /// The journal's last record's time, from which the window is measured back.
    pub last_recorded_ms: u64,
    /// Records recorded before this time are out of the window.
    pub cutoff_ms: u64,
    /// Sealed segments left in the journal's directory because a record in them is within
    /// the window (the journal's last segment is always left too).
    pub kept_in_window: usize,
    /// Leftover `.tmp` files removed from the archive.
    pub removed_temp_files: usize,
}

/// Archives the data directory at `path`, holding its lock (a running server holds it:
/// [`OpenError::Locked`]). `archive` is created if missing; a relative one is taken from
/// the current directory.
pub fn archive_data_dir(
    path: &Path,
    archive: &Path,
    window: Duration,
    log: LogOptions,
) -> Result<Archived, ArchiveError> {
    let is_store = path.join(JOURNAL_DIR).is_dir() || path.join(current::CURRENT_FILE).is_file();
    if !is_store {
        return Err(ArchiveError::NoJournal {
            path: path.to_owned(),
        });
    }
    let archive_abs = std::path::absolute(archive).map_err(|e| ArchiveError::Archive {
        path: archive.to_owned(),
        detail: e.to_string(),
    })?;
    if archive_abs.exists() && !archive_abs.is_dir() {
        return Err(ArchiveError::Archive {
            path: archive.to_owned(),
            detail: "not a directory".into(),
        });
    }
    let _lock: File = crate::engine::lock_data_dir(path)?;
    let storage: Arc<dyn Storage> = Arc::new(FsStorage::new(path));
    let live = current::live_journal(storage.as_ref())?;
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same(&archive_abs, &path.join(&live)) {
        return Err(ArchiveError::Archive {
            path: archive.to_owned(),
            detail: "it is the live journal's own directory".into(),
        });
    }
    archive_journal(storage, &archive_abs, window, log)
}

/// Archives the live journal of the data directory `storage` holds into `archive` (a path
/// of the same storage; with an [`FsStorage`] an absolute one may be anywhere). The caller
/// holds the data directory's lock (see [`archive_data_dir`]).
pub fn archive_journal(
    storage: Arc<dyn Storage>,
    archive: &Path,
    window: Duration,
    log: LogOptions,
) -> Result<Archived, ArchiveError> {
    recovery::refuse_old_layout(storage.as_ref())?;
    let live = current::live_journal(storage.as_ref())?;
    let local = archive::list_segments(storage.as_ref(), &live).unwrap_or_default();
    if local.is_empty() {
        return Err(ArchiveError::NoJournal { path: live });
    }
    let removed_temp_files =
        archive::prepare(storage.as_ref(), archive).map_err(|e| ArchiveError::Archive {
            path: archive.to_owned(),
            detail: e.to_string(),
        })?;
    // Opened as recovery opens it, with what is archived already: every segment checked,
    // a torn tail cut, sealed segments' indexes written again where missing (so that they
    // move with their segment), no spare segment prepared.
    let (journal, _) = Log::open(
        Arc::clone(&storage),
        &live,
        LogOptions {
            preallocate: false,
            archive_dir: Some(archive.to_owned()),
            ..log
        },
    )
    .map_err(|source| OpenError::Log {
        log: "journal",
        source,
    })?;
    let reader = journal.reader();
    let records = reader.durable_seq();
    let time_of = |seq: u64| -> Result<u64, ArchiveError> {
        let mut buf = Vec::new();
        reader
            .read(seq, &mut buf)
            .map_err(|e| ArchiveError::Read(e.to_string()))?;
        crate::record::id_and_time(&buf)
            .map(|(_, time)| time)
            .map_err(|e| ArchiveError::Read(format!("record {seq}: {e}")))
    };
    let mut report = Archived {
        journal: live.clone(),
        removed_temp_files,
        ..Archived::default()
    };
    // The journal's segments in its directory (those already archived are not listed
    // there), after recovery.
    let local = archive::list_segments(storage.as_ref(), &live).unwrap_or_default();
    report.archived_records = local.first().copied().unwrap_or(0);
    let mut to_move = Vec::new();
    if records > 0 {
        report.last_recorded_ms = time_of(records - 1)?;
        report.cutoff_ms = report
            .last_recorded_ms
            .saturating_sub(u64::try_from(window.as_millis()).unwrap_or(u64::MAX));
        // Sealed segments only: each with the next one's first record after its last.
        let mut stopped = false;
        for pair in local.windows(2) {
            let (first, next) = (pair[0], pair[1]);
            if !stopped {
                if time_of(next - 1)? < report.cutoff_ms {
                    to_move.push((first, next));
                    continue;
                }
                stopped = true;
            }
            report.kept_in_window += 1;
        }
    }
    drop(reader);
    drop(journal);
    for (first, next) in to_move {
        let moved = archive::move_segment(storage.as_ref(), &live, archive, first)?;
        report.bytes_freed += moved.bytes;
        report.moved.push(archive::segment_name(first));
        report.archived_records = next;
    }
    report.records = records;
    Ok(report)
}
