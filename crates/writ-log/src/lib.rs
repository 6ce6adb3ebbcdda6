//! Writ's log engine: an append-only, segmented, checksummed log with group commit.
//!
//! - [`Log`] is the single writer of one log directory. [`Log::append`] stages records in the
//!   pending batch; [`Log::commit`] writes the pending batch as one frame and makes it
//!   durable with one `fdatasync`. A committed batch is atomic: after a crash either all of
//!   its records are there or none is.
//! - [`LogReader`] is a cheap, cloneable, thread-safe handle that reads durable records by
//!   sequence number while the writer goes on.
//! - [`storage`] abstracts the file system: [`storage::FsStorage`] for real files,
//!   [`storage::SimStorage`] for tests, which keeps written and durable bytes apart so a test
//!   can build exactly what a crash leaves, and injects I/O faults.
//!
//! - [`archive`] moves sealed segments to an archive directory, which a log opened with
//!   [`LogOptions::archive_dir`] reads from as its own.
//! - [`format`](mod@format) is the byte layout, with pure decoders that never panic (fuzzed).
//! - [`inspect`] reads a log's files without opening the log, by recovery's rules: the
//!   valid end of a segment image, for tools that copy or check a log (backup, verify).
//! - [`reference`](mod@reference) is the floor a log is measured against: the plain `pwrite` + `fdatasync`
//!   loop into a pre-zeroed file, shared by the append benchmark and `writ-compare`.
//!
//! Records are numbered by a gap-free sequence starting at 0. After a failed write or sync
//! the log is *poisoned*: it refuses every further append and commit until it is opened
//! again, because a retried `fsync` can report success for data that never reached the disk.
//!
//! The on-disk format, the commit protocol, the argument why an acknowledged record survives
//! a crash, and recovery's decision table are in `docs/log-format.md`. In short: a log is a
//! directory of preallocated, zero-filled segment files; each commit writes one checksummed
//! frame with one positional write and one `fdatasync`; opening the log scans the last
//! segment (sealed ones have a sidecar index), cuts off a torn or corrupt tail and refuses
//! damage before it.
//!
//! ```
//! use std::sync::Arc;
//! use writ_log::{Log, LogOptions, storage::SimStorage};
//!
//! let storage = Arc::new(SimStorage::new());
//! let (mut log, _report) = Log::open(storage.clone(), "cmd".as_ref(), LogOptions::default()).unwrap();
//! assert_eq!(log.append(b"hello").unwrap(), 0);
//! assert_eq!(log.append(b"world").unwrap(), 1);
//! assert_eq!(log.commit().unwrap(), 2); // records 0 and 1 are durable
//! let mut buf = Vec::new();
//! log.reader().read(1, &mut buf).unwrap();
//! assert_eq!(buf, b"world");
//! ```

pub mod archive;
pub mod format;
pub mod inspect;
pub mod reference;
pub mod storage;

mod error;
mod index;
mod log;
mod options;
mod prealloc;
mod reader;
mod recovery;
mod segment;

pub use error::{AppendError, CommitError, OpenError, ReadError, TailDamage};
pub use log::Log;
pub use options::{LogOptions, OpenReport, TailTruncation};
pub use reader::{LogIter, LogReader};
