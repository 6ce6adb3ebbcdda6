use std::path::PathBuf;

use uuid::Uuid;
use writ_domain::CommandError;

use crate::record::RecordError;

/// Why a submission was refused. Nothing was logged; the client may fix the request or
/// retry as each variant says.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// Unknown command or version, or a payload that does not fit the command's schema.
    /// Do not retry unchanged.
    #[error(transparent)]
    Invalid(#[from] CommandError),
    /// The canonical payload exceeds `command_bytes_max`. Do not retry unchanged.
    #[error("command payload of {size} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// The payload's size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The id was seen within the dedupe window with another command or payload. Use a
    /// fresh id for a different command.
    #[error("command id {id} was already used for a different command or payload")]
    Conflict {
        /// The reused id.
        id: Uuid,
    },
    /// A bound was reached; retry after a short pause.
    #[error("overloaded: {0}")]
    Overloaded(Overload),
    /// The engine does not accept writes now; see the reason.
    #[error("unavailable: {0}")]
    Unavailable(Unavailable),
    /// The dedupe index could not tell whether the id was seen: reading a run or the
    /// journal record it names failed. Retry shortly (a damaged run is rebuilt from the
    /// journal in the background).
    #[error("the dedupe index could not be read: {0}")]
    Read(ReadError),
}

/// Which bound refused a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Overload {
    /// The intake queue is full: the command log cannot keep up.
    #[error("the intake queue is full")]
    IntakeQueueFull,
    /// The dedupe index's hot map holds `dedupe_entries_max` ids: spilling them to disk
    /// fell behind or failed (a full disk; the server's log says which).
    #[error(
        "the dedupe index's hot map is full (dedupe_entries_max): spilling to disk fell behind or failed"
    )]
    DedupeIndexFull,
    /// Too many callers wait on statuses.
    #[error("too many status waiters")]
    WaitersFull,
    /// `timers_max` durable timers are pending: new commands could schedule more.
    #[error("the durable timers are at their bound (timers_max); retry once some have fired")]
    TimersFull,
}

/// Why the engine does not accept writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unavailable {
    /// A write or sync of a log failed; the engine refuses writes until it is restarted
    /// (a retried fsync could report success for data that never reached the disk). Reads
    /// keep working. Fix the cause (disk full, failing device) and restart.
    #[error("the store is poisoned by an I/O failure and refuses writes until restart: {detail}")]
    Poisoned {
        /// The failure.
        detail: String,
    },
    /// The engine is shutting down.
    #[error("the engine is shutting down")]
    ShuttingDown,
    /// An online replay made another journal live ([`Engine::replay_online`] with
    /// `apply`): this engine decides nothing more, and a command it refused this way was
    /// never logged. Submit it again to the engine opened on the new journal
    /// ([`Engine::reopen`]).
    ///
    /// [`Engine::replay_online`]: crate::Engine::replay_online
    /// [`Engine::reopen`]: crate::Engine::reopen
    #[error("the journal was switched by a replay; submit again to the engine on the new one")]
    Switched,
}

/// Why an engine could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The file system failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The options are out of bounds; fix the configuration.
    #[error("invalid engine options: {detail}")]
    InvalidOptions {
        /// Which bound, and why.
        detail: String,
    },
    /// The data directory holds the two logs (`commands/`, `events/`) of a build before
    /// the journal; this build does not read them. Use the build that wrote them, or
    /// start on a new data directory.
    #[error(
        "the data directory holds a {dir}/ log of the two-log layout of an earlier build, which this build does not open; use that build, or a new data directory"
    )]
    OldLayout {
        /// `commands` or `events`.
        dir: String,
    },
    /// Another process holds the data directory.
    #[error("{path} is locked by another process; stop it or use another data directory")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// The journal could not be opened or recovered.
    #[error("{log}: {source}")]
    Log {
        /// `journal`.
        log: &'static str,
        /// The log's error, which says what to do.
        #[source]
        source: writ_log::OpenError,
    },
    /// A record could not be read back.
    #[error("{log}: {source}")]
    Read {
        /// `journal`.
        log: &'static str,
        /// The error.
        #[source]
        source: ReadError,
    },
    /// `CURRENT` names no journal this build opens: not `journal` nor
    /// `replay-N/journal`, or a replay that was not written in full (no `REPLAYED` beside
    /// its journal). `writ replay --apply` never writes such a `CURRENT`: check the file,
    /// or remove it to open `journal/`.
    #[error("the live journal cannot be told: {detail}")]
    Current {
        /// What is wrong with `CURRENT`.
        detail: String,
    },
    /// The journal holds what no crash can produce: positions that do not follow each
    /// other. Restore it from a backup.
    #[error("the journal is inconsistent: {detail}")]
    Inconsistent {
        /// What disagrees.
        detail: String,
    },
}

/// Why events could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The log failed to read or found a corrupt record.
    #[error(transparent)]
    Log(#[from] writ_log::ReadError),
    /// A run of the dedupe index failed its checks; it is rebuilt from the journal in
    /// the background. Retry shortly.
    #[error("dedupe run {run}: {detail}")]
    DedupeRun {
        /// The run's file name.
        run: String,
        /// What failed.
        detail: String,
    },
    /// A record's content is not what the engine wrote.
    #[error("record {seq}: {source}")]
    Record {
        /// The record's sequence number.
        seq: u64,
        /// What is wrong.
        #[source]
        source: RecordError,
    },
    /// An event does not read in this build: it was recorded in a schema version this
    /// build does not declare (a newer build recorded it), or its body does not decode as
    /// that version. Run a build that declares the version, with an upcast.
    #[error("event at position {position}: {source}")]
    Event {
        /// The event's position.
        position: u64,
        /// Why it does not read.
        #[source]
        source: writ_domain::EventDecodeError,
    },
}

/// Why a subscription ended.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubscriptionError {
    /// The engine shut down; every durable event up to then was delivered.
    #[error("the engine shut down")]
    Closed,
    /// Reading the log failed.
    #[error(transparent)]
    Read(#[from] ReadError),
}
