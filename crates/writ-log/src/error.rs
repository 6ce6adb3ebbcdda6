use std::io;
use std::path::PathBuf;

/// Why a log could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The file system failed. Check the path, permissions and free space, then retry.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Damage *before* the tail: records that were once durable and acknowledged cannot be
    /// read back. Writ refuses to start rather than lose them silently. Restore the segment
    /// from a backup or replica; the message names the file, offset and sequence number.
    #[error(
        "log damaged before its tail in {path} at byte {offset} (near record {seq}): {detail}; \
         durable records after this point would be lost by truncation, so the log will not \
         open. Restore this segment from a backup, or move it and every later segment aside \
         to accept losing their records"
    )]
    Corrupt {
        /// The damaged segment.
        path: PathBuf,
        /// Byte offset of the first damaged frame in the segment.
        offset: u64,
        /// The sequence number the damaged frame should have started with.
        seq: u64,
        /// What is wrong.
        detail: String,
    },
    /// The log's first segment does not start at record 0: its first records are in
    /// neither the log directory nor the archive directory given (if any). They were
    /// archived (`writ archive`: open with the archive directory,
    /// [`LogOptions::archive_dir`](crate::LogOptions::archive_dir)) or lost (restore them
    /// from a backup). Nothing was written.
    #[error(
        "{path}: the first segment starts at record {first_seq}: records 0..{first_seq} are \
         missing (segments 0..{first_seq}); {hint}"
    )]
    MissingStart {
        /// The first segment found.
        path: PathBuf,
        /// Its first record.
        first_seq: u64,
        /// Where they were looked for, and what to do.
        hint: String,
    },
    /// The options are out of bounds (see [`LogOptions::validate`](crate::LogOptions::validate)).
    #[error("invalid log options: {detail}")]
    InvalidOptions {
        /// What is wrong.
        detail: String,
    },
    /// The archive directory ([`LogOptions::archive_dir`](crate::LogOptions::archive_dir))
    /// holds what the log cannot use: the log's last segment, a segment with a bad name.
    #[error("archive {path}: {detail}")]
    Archive {
        /// The archive directory or the file in it.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A file that is not a segment of this format, or of a newer format version.
    #[error("{path} is not a segment this build can read: {detail}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

/// Why a record could not be staged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// An earlier write or sync failed; the log refuses writes until it is opened again.
    /// Stop accepting work and restart the process after fixing the cause.
    #[error("the log is poisoned by an earlier I/O failure and refuses writes until restart")]
    Poisoned,
    /// The record is larger than `LogOptions::record_bytes_max`. Refuse it at the edge.
    #[error("record of {size} bytes exceeds the maximum of {max}")]
    RecordTooLarge {
        /// The record's size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The pending batch cannot take this record and still fit in one segment. Commit the
    /// pending batch, then append again.
    #[error("the pending batch is full ({pending_bytes} bytes); commit before appending more")]
    BatchFull {
        /// Bytes already pending, framing included.
        pending_bytes: usize,
    },
}

/// Why a batch could not be made durable. After any of these the log is poisoned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError {
    /// An earlier write or sync failed; nothing was written.
    #[error("the log is poisoned by an earlier I/O failure and refuses writes until restart")]
    Poisoned,
    /// This commit's write or sync failed. The records of the batch may or may not be on
    /// disk; the log is now poisoned. Treat the batch as not acknowledged.
    #[error("I/O error while committing to {path}: {source}")]
    Io {
        /// The segment being written.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

/// Why a record could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The record is not (yet) durable, or was never written.
    #[error("record {seq} is beyond the durable end of the log ({durable})")]
    OutOfRange {
        /// The sequence number asked for.
        seq: u64,
        /// The first sequence number that is not durable.
        durable: u64,
    },
    /// The record's checksum or framing does not match: the disk returned other bytes than
    /// were written.
    #[error("record {seq} in {path} at byte {offset} is corrupt: {detail}")]
    Corrupt {
        /// The record.
        seq: u64,
        /// Its segment.
        path: PathBuf,
        /// Its offset in the segment.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// The file system failed.
    #[error("I/O error reading {path}: {source}")]
    Io {
        /// The segment.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

/// What was wrong with a tail that recovery truncated.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TailDamage {
    /// A frame's header or body was only partly written (torn write at a crash).
    Torn,
    /// A frame's checksum did not match, with nothing valid after it.
    ChecksumMismatch,
}
