//! Read model snapshots: a read model's state written to a file with the position and
//! the journal it stands for, so that a start loads it and replays only the events after
//! it instead of the whole log.
//!
//! - [`Codec`], [`Writer`] and [`Reader`]: the bytes of a state. The
//!   [collections](crate::collections) implement [`Codec`], so a projection's
//!   [`save`](crate::Projection::save) and [`load`](crate::Projection::load) write and
//!   read its blocks in a few lines; loading builds each block directly (a dense set's
//!   words, a table's row vector bottom up), not by inserting item by item where that
//!   can be avoided.
//! - [`SnapshotHeader`]: the file, its header and CRC (`docs/log-format.md`, "A read
//!   model snapshot file", has it byte by byte).
//! - [`SnapshotStore`]: the files of a data directory, `snapshots/{model}/`
//!   `{position:020}.snap`, written durably on a `writ_log` [`Storage`](writ_log::storage::Storage)
//!   (so the crash tests run on `SimStorage`).
//!
//! The runtime ([`ReadModels`](crate::ReadModels), with
//! [`RuntimeOptions::snapshots`](crate::RuntimeOptions::snapshots)) writes them on a
//! thread of its own and loads them at start; the [`runtime`](crate::runtime) module
//! says when and what it checks.

mod codec;
mod file;
mod store;

pub use codec::{Codec, Reader, SnapshotError, Writer};
pub use file::{
    SNAPSHOT_FILE_VERSION, SNAPSHOT_MAGIC, SNAPSHOT_NAME_BYTES_MAX, SnapshotFileError,
    SnapshotHeader,
};
pub use store::{Listing, SNAPSHOTS_DIR, SNAPSHOTS_KEPT, SnapshotStore, is_model_name};
