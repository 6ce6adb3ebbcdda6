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
}

/// Which bound refused a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Overload {
    /// The intake queue is full: the command log cannot keep up.
    #[error("the intake queue is full")]
    IntakeQueueFull,
    /// The dedupe index holds `dedupe_entries_max` ids within the window.
    #[error("the dedupe index is full; raise dedupe_entries_max or shorten the dedupe window")]
    DedupeIndexFull,
    /// Too many callers wait on statuses.
    #[error("too many status waiters")]
    WaitersFull,
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
    /// Another process holds the data directory.
    #[error("{path} is locked by another process; stop it or use another data directory")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// One of the logs could not be opened or recovered.
    #[error("{log} log: {source}")]
    Log {
        /// `command` or `event`.
        log: &'static str,
        /// The log's error, which says what to do.
        #[source]
        source: writ_log::OpenError,
    },
    /// A log record could not be read back.
    #[error("{log} log: {source}")]
    Read {
        /// `command` or `event`.
        log: &'static str,
        /// The error.
        #[source]
        source: ReadError,
    },
    /// The two logs disagree in a way no crash can produce: for example the event log holds
    /// outcomes of commands the command log lacks. Restore both logs from one backup.
    #[error("the command and event logs are inconsistent: {detail}")]
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
    /// A record's content is not what the engine wrote.
    #[error("record {seq}: {source}")]
    Record {
        /// The record's sequence number.
        seq: u64,
        /// What is wrong.
        #[source]
        source: RecordError,
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
