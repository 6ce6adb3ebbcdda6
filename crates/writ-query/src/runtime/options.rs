//! The runtime's vocabulary: its options, its errors, and what it reports.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use writ_log::storage::Storage;

use crate::projection::{ReplayStats, Root};
use crate::snapshot::SnapshotStore;

/// Limits of a [`ReadModels`](crate::ReadModels) (and of a
/// [`ProjectionRuntime`](crate::ProjectionRuntime)).
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Most events read from the log and applied in one go (the feed's batch). Default
    /// 4,096.
    pub batch_events_max: usize,
    /// While catching up (the last batch was full and the source has more), publish a
    /// snapshot at most this often. Read models that keep up publish after every batch,
    /// so this only delays snapshots during a replay or a burst, where it saves most of
    /// the copying: each publish shares the states' nodes with readers, and the first
    /// change to each shared node (and each shared row, list...) copies it. Measured on
    /// a replay of 1M events over 100k rows: a snapshot per 4,096-event batch costs about
    /// 40% of the replay speed (2.2 s of CPU instead of 1.4 s), because the round-robin
    /// workload touches every row between two snapshots; one per second or per 2 s costs
    /// next to nothing.
    /// [`ModelStatus::applied`] shows the progress in between. Default 2 s.
    pub catch_up_publish_interval: Duration,
    /// Where and when read models whose projection has a snapshot format
    /// ([`Projection::snapshot_format`](crate::Projection::snapshot_format)) write
    /// snapshots, and load them at start. `None` (the default): none is written or
    /// loaded, and every start replays every read model from position 1.
    pub snapshots: Option<SnapshotOptions>,
    /// The reading and applying threads (the live ones and a rebuild's) run under Linux's
    /// `SCHED_BATCH` policy ([`writ_engine::priority::batch_this_thread`]): their wake-ups
    /// do not preempt the thread running on a core, so the engine's writer and syncer,
    /// which wake the read side after every sync, are not put off by it between two
    /// syncs; their share of the CPU under load is the same. What it costs: on a busy
    /// machine a read model publishes up to a scheduler slice (milliseconds) later.
    /// `false`: the threads keep the process's policy. Default `true` (nothing changes
    /// elsewhere than on Linux).
    pub batch_scheduling: bool,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            batch_events_max: 4_096,
            catch_up_publish_interval: Duration::from_secs(2),
            snapshots: None,
            batch_scheduling: true,
        }
    }
}

/// The read models' snapshots: written by a thread of their own (`writ-snapshot`, one for
/// all read models) from a published [`Snapshots`](crate::Snapshots), loaded at start.
/// See the [`runtime`](crate::runtime) module.
///
/// What they cost: on disk, [`SNAPSHOTS_KEPT`](crate::snapshot::SNAPSHOTS_KEPT) files per
/// read model of about the state's encoded size (the README gives the figure of an
/// example domain's read model); in time, encoding the state and writing it on the
/// snapshot thread (a second core's work, not the applying thread's), and the copies the
/// applying thread makes of the nodes it changes while the snapshot thread still holds
/// the state it encodes (as after any publish).
#[derive(Debug, Clone)]
pub struct SnapshotOptions {
    /// The files: `snapshots/` of the data directory.
    pub store: SnapshotStore,
    /// Write a snapshot of every read model that has a snapshot format once this many
    /// events were applied since the last one (or since the start), at the next publish;
    /// and one at a clean shutdown, when anything was applied since the last. `0`: never
    /// write (existing snapshots are still loaded). Default 1,000,000.
    pub every_events: u64,
    /// The most of its time the snapshot thread spends writing, in `(0, 1]`: after a
    /// write that took `d`, the next is offered no sooner than `d × (1 / share − 1)` after
    /// it ended, however many events were applied meanwhile. A read model's snapshot costs
    /// time in proportion to its size, so a model that keeps growing (every comment a
    /// ticket ever had) would otherwise, at a fixed interval of events, come to spend a
    /// core writing snapshots and the applying thread copying the nodes they hold. The
    /// cost: a start may replay more than `every_events` events, about `1 / share − 1`
    /// times the write's duration of them, which for a large model is a fraction of the
    /// time it takes to load the snapshot. `1.0` (or any value outside `(0, 1]`, which
    /// `writ serve` refuses): no such bound. Default 0.05.
    pub time_share: f64,
    /// Whether a start loads snapshots (default `true`); `false` replays every read model
    /// from position 1 and still writes snapshots.
    pub load: bool,
    /// Which build wrote a snapshot: one written by another build is not loaded. Default
    /// the crate's version; a binary may put its own release or commit here.
    pub build: String,
}

impl SnapshotOptions {
    /// The default interval (1,000,000 events).
    pub const EVERY_EVENTS_DEFAULT: u64 = 1_000_000;

    /// The default share of the snapshot thread's time spent writing (5%).
    pub const TIME_SHARE_DEFAULT: f64 = 0.05;

    /// Snapshots in `snapshots/` of `storage`'s root (the data directory), with the
    /// defaults.
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Self {
            store: SnapshotStore::new(storage),
            every_events: Self::EVERY_EVENTS_DEFAULT,
            time_share: Self::TIME_SHARE_DEFAULT,
            load: true,
            build: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// Why the read models could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A thread could not be spawned (the process is out of threads or memory). Retry
    /// later or raise the limits.
    #[error("cannot spawn the read models' thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// Two read models have the same name (their projections' name), which routes
    /// rebuilds and statuses. Leave one out or rename a projection.
    #[error("two read models are named {name:?}")]
    ModelTwice {
        /// The name.
        name: String,
    },
    /// Two read models declare a query of the same name in the same query API version, so
    /// `GET /query/v{version}/{name}` and query code could not tell which to call. Rename
    /// one of the queries.
    #[error(
        "query {name:?} of query API version {version} is declared by read model {first:?} and by read model {second:?}"
    )]
    QueryClash {
        /// The query API version.
        version: u32,
        /// The query's name.
        name: String,
        /// The read model listed first.
        first: String,
        /// The other.
        second: String,
    },
}

/// Why a wait for a position returned without it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WaitError {
    /// The read models did not reach the position in time (the server answers `504`).
    /// Retry, or check that the position exists.
    #[error("the read model did not reach position {wanted} in time; it is at {position}")]
    Timeout {
        /// The position waited for.
        wanted: u64,
        /// The position published when the wait ended.
        position: u64,
    },
    /// The read models stopped (the source shut down or could not be read, or they were
    /// shut down), or the one read model waited for stopped (see
    /// [`ModelStatus::failure`]), before reaching the position. Waiting longer cannot help.
    #[error("the read model stopped at position {position} before reaching {wanted}")]
    Stopped {
        /// The position waited for.
        wanted: u64,
        /// The last position published.
        position: u64,
    },
}

/// Why a rebuild did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RebuildError {
    /// There is no read model of this name. Ask for one of `known`.
    #[error("there is no read model {name:?}; known: {known:?}")]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// The read models' names.
        known: Vec<String>,
    },
    /// The read model cannot build this projection version. Ask for one of `known`.
    #[error(
        "read model {model:?} cannot build projection version {version}; known versions: {known:?}"
    )]
    UnknownVersion {
        /// The read model.
        model: String,
        /// The version asked for.
        version: u32,
        /// The versions it can build.
        known: Vec<u32>,
    },
    /// A rebuild of this read model is running; wait for it ([`Rebuild::finished`]) first.
    #[error("a rebuild to {root} is already running")]
    AlreadyRunning {
        /// What it rebuilds.
        root: Root,
    },
    /// The runtime has shut down.
    #[error("the read models have shut down")]
    ShutDown,
    /// The rebuild's thread could not be spawned. Retry later.
    #[error("cannot spawn the rebuild thread: {0}")]
    Spawn(#[source] std::io::Error),
}

/// Where the last rebuild of a read model stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RebuildStatus {
    /// No rebuild was started.
    Idle,
    /// Catching up: it has applied up to `position` and will join the live read models
    /// once it reaches their position, `target` (which moves while writes go on). Draw
    /// `position / target`.
    Running {
        /// What it builds.
        root: Root,
        /// The last position it applied.
        position: u64,
        /// The live position it must reach.
        target: u64,
    },
    /// It joined the live read models at `position`, and readers now get its snapshots.
    Switched {
        /// What it built, now live.
        root: Root,
        /// The position at which it joined.
        position: u64,
    },
    /// It failed before joining; the live instance was not touched.
    Failed {
        /// What it was building.
        root: Root,
        /// Why it failed.
        detail: String,
    },
    /// The runtime shut down before it joined.
    Cancelled {
        /// What it was building.
        root: Root,
    },
}

impl RebuildStatus {
    /// Whether the rebuild has ended (switched, failed or cancelled) or none was started.
    pub fn is_finished(&self) -> bool {
        !matches!(self, Self::Running { .. })
    }
}

/// A rebuild started by [`ReadModels::rebuild`](crate::ReadModels::rebuild): watch its
/// progress, or wait for its end.
#[derive(Debug)]
pub struct Rebuild {
    pub(crate) status: watch::Receiver<RebuildStatus>,
}

impl Rebuild {
    /// Where it stands now.
    pub fn status(&self) -> RebuildStatus {
        self.status.borrow().clone()
    }

    /// Waits until it has switched, failed or been cancelled, and returns how it ended.
    pub async fn finished(&mut self) -> RebuildStatus {
        // The sender lives as long as the runtime; if it is gone, the status is final.
        let finished = self
            .status
            .wait_for(RebuildStatus::is_finished)
            .await
            .map(|status| status.clone());
        finished.unwrap_or_else(|_| self.status())
    }

    /// [`Rebuild::finished`] for threads outside an async runtime (it builds a small one;
    /// calling it from inside a tokio runtime panics).
    pub fn blocking_finished(&mut self) -> RebuildStatus {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .map(|rt| rt.block_on(self.finished()))
            .unwrap_or_else(|_| self.status())
    }
}

/// What one read model is doing, for health checks, metrics and the CLI.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ModelStatus {
    /// The read model's name (its projection's).
    pub name: &'static str,
    /// The live structure: the projection's name and version.
    pub root: Root,
    /// The projection versions a rebuild can build, oldest first.
    pub projection_versions: Vec<u32>,
    /// The query API versions it has queries in, oldest first.
    pub query_versions: Vec<u32>,
    /// The position of its last published snapshot: the read models' position, or where
    /// it stopped.
    pub position: u64,
    /// The last position its live instance applied: ahead of `position` while the read
    /// models catch up and publish only now and then (see
    /// [`RuntimeOptions::catch_up_publish_interval`]).
    pub applied: u64,
    /// The source's last durable position.
    pub last_position: u64,
    /// `last_position - position`: events its readers do not see yet.
    pub lag: u64,
    /// The live instance's counters, including skipped events (`errors`) and the last
    /// of them, and parked events (`parked`, the last few in `parked_recent`: its
    /// projection panicked on them, and it went on).
    pub stats: ReplayStats,
    /// Whether it stopped: something panicked on its applying thread outside its
    /// projection's `decode` and `apply` (a panic in those parks the event instead), or all
    /// the read models stopped (the source shut down or failed, or shutdown).
    pub stopped: bool,
    /// Why it stopped, if on a panic or an error reading the source.
    pub failure: Option<String>,
    /// Its last rebuild.
    pub rebuild: RebuildStatus,
    /// Its snapshots: the one loaded at start, those ignored, the last written.
    pub snapshots: SnapshotStatus,
}

/// What a read model did with snapshots (see [`SnapshotOptions`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SnapshotStatus {
    /// The position of the snapshot loaded at start; `None` when it replayed from
    /// position 1.
    pub loaded: Option<u64>,
    /// The snapshots found at start and not loaded, newest first, each with why.
    pub ignored: Vec<String>,
    /// Snapshots written since the start.
    pub written: u64,
    /// The position of the last one written.
    pub last_written: Option<u64>,
    /// Its size in bytes.
    pub last_bytes: u64,
    /// Snapshots that could not be written (each logged).
    pub failures: u64,
}
