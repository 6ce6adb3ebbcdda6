//! Engine checkpoints: what a start rebuilds from the journal (the store's indexes, the
//! pending timers, the last position and time, the start of the last unit), saved as of
//! a durable end so that a start scans only the journal after it. `docs/log-format.md`
//! ("An engine checkpoint file") has the layout, the decision table and why a checkpoint
//! never makes a start wrong.
//!
//! - [`codec`]'s [`Checkpoint`]: the file's bytes (public, for tools and the fuzz target).
//!
//! ```
//! use writ_engine::checkpoint::{Checkpoint, CHECKPOINT_BUILD};
//!
//! let checkpoint = Checkpoint {
//!     seq: 2,
//!     last_position: 1,
//!     last_recorded_ms: 1_000,
//!     unit_start: 1,
//!     mark: [0; 32],
//!     build: CHECKPOINT_BUILD.to_owned(),
//!     commit_first_position: vec![1, 1],
//!     streams: vec![("counter-c-1".to_owned(), vec![1])],
//!     timers: Vec::new(),
//! };
//! assert_eq!(Checkpoint::decode(&checkpoint.encode()).unwrap(), checkpoint);
//! ```

mod codec;

pub use codec::{
    BUILD_BYTES_MAX, CHECKPOINT_BUILD, CHECKPOINT_MAGIC, CHECKPOINT_VERSION, Checkpoint,
    CheckpointError, CheckpointHeader, CheckpointTimer, MARK_BYTES,
};
