//! The projection runtime: keeps a projection up to date with the global log on its own
//! thread and publishes immutable snapshots; rebuilds beside the live one and switches.
//!
//! # Threads, not tasks
//!
//! Each projection instance runs on a dedicated OS thread (`writ-projection-{name}`, and
//! `writ-rebuild-{name}` while a rebuild catches up), fed by a reader thread of its own
//! (`writ-read-{name}`) through a channel of two batches, so that reading the log and
//! decoding its events ([`Projection::decode`]: parsing bodies, allocating the strings the
//! state keeps) overlap with applying them; applied batches go back to the reader, which
//! reads the next events into them (`Subscription::next_batch_into`), so replaying
//! allocates nothing per event to read the log and frees nothing of it on the applying
//! thread, the one that sets the pace. [`Replay`] hands the projection each run of 32 events to [`Projection::warm`]
//! before applying them. Applying events is CPU-bound, a catch-up replays millions of
//! them in one go, and the engine's subscription reads the
//! log with blocking file reads: on a tokio worker that would stall every request task
//! queued behind it (tokio cannot preempt), and on this 2-core machine it would take half
//! of the server. A thread also makes the runtime independent of the caller's runtime:
//! tests, tools and the server start it the same way. The thread drives the subscription's
//! `next_batch` future on a current-thread tokio runtime of its own, so waiting for new
//! events costs no polling.
//!
//! # Publishing
//!
//! After each batch (at most [`RuntimeOptions::batch_events_max`] events) that leaves it
//! caught up with the source (the batch was not full, or nothing more is durable), the
//! thread publishes `Arc<Snapshot>` through an [`ArcSwap`]:
//! readers load it without locks and never see half a batch, and a reader holding one
//! keeps it unchanged. While it is catching up, it publishes at most every
//! [`RuntimeOptions::catch_up_publish_interval`], because every publish makes the next
//! change to each node of the state copy that node. The position then goes out on a watch
//! channel that [`ProjectionRuntime::wait_for`] awaits.
//!
//! # Errors
//!
//! An event the projection cannot apply is recorded (a counter and the last failure, in
//! [`RuntimeStatus`]) and skipped; the projection goes on. One bad event must not stop all
//! reads: the read model keeps serving everything else, and the counter, which the server
//! exports, makes the failure visible. The fix is a corrected projection; it is applied
//! at the next start, which rebuilds (see below), or by [`ProjectionRuntime::rebuild_with`].
//! A failure to read the log, or a panic in the projection, stops that instance visibly
//! instead: readers keep the last published snapshot, waits answer
//! [`WaitError::Stopped`] at once, and [`RuntimeStatus::failure`] says why; a rebuild that
//! catches up replaces it.
//!
//! # No checkpoint: every start rebuilds
//!
//! Nothing is persisted: [`ProjectionRuntime::start`] replays the log from position 1.
//! On this 2-core machine a runtime replays a million tickets events (100k tickets, 900k
//! comments) from the engine's log in 0.85 s (the median of 5 runs in one process;
//! `cargo bench -p writ-query --bench replay`): its applying thread takes 0.54 s of CPU
//! and its reader thread, which reads the log and decodes the events, 0.25 s, side by
//! side. The first of those runs took 1.7 s (0.78 s and 0.62 s of CPU): it touches the
//! read model's ~290 MiB of fresh memory, which later runs reuse from the allocator; so
//! a start costs about 1 to 2 s per million events of the log. In
//! exchange there is no checkpoint format to version, no state to recover or distrust
//! after a crash, and a projection whose version changed never needs a migration: the new
//! binary simply builds the new structure at its start. Automatic rebuilds on a version
//! change are therefore moot. A checkpoint (the state serialized with its position and
//! root, loaded at start, then the log replayed from there) becomes worthwhile once starts
//! take more than several seconds, that is past a few million events.
//!
//! # Rebuilding without downtime
//!
//! [`ProjectionRuntime::rebuild_with`] starts a second instance, possibly of a new
//! projection version, from position 1 on its own thread. Readers keep the live snapshots
//! meanwhile. After each of its batches the new instance compares its position with the
//! live one; once it has caught up it takes the publishing lock, publishes its snapshot,
//! and becomes the live instance in the same step; the old instance is told to stop and
//! its state is dropped with its last snapshot's readers. Published positions never go
//! backwards, across the switch too.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::watch;
use writ_engine::{RecordedEvent, SubscriptionError};

use crate::projection::{Projection, Replay, ReplayStats, Root, Snapshot, Step};
use crate::source::EventSource;

/// Limits of a [`ProjectionRuntime`].
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Most events read from the log and applied in one go (the subscription's batch).
    /// Default 4,096.
    pub batch_events_max: usize,
    /// While catching up (the last batch was full and the source has more), publish a
    /// snapshot at most this often. A projection that keeps up publishes after every batch,
    /// so this only delays snapshots during a replay or a burst, where it saves most of
    /// the copying: each publish shares the state's nodes with readers, and the first
    /// change to each shared node (and each shared ticket, comment list...) copies it.
    /// Measured on the tickets replay of 1M events (100k tickets): a snapshot per
    /// 4,096-event batch costs about 40% of the replay speed (2.2 s of CPU instead of
    /// 1.4 s), because the round-robin workload touches every ticket between two
    /// snapshots; one per second or per 2 s costs next to nothing.
    /// [`RuntimeStatus::applied`] shows the progress in between. Default 2 s.
    pub catch_up_publish_interval: Duration,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            batch_events_max: 4_096,
            catch_up_publish_interval: Duration::from_secs(2),
        }
    }
}

/// Why a runtime could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The projection thread could not be spawned (the process is out of threads or
    /// memory). Retry later or raise the limits.
    #[error("cannot spawn the projection thread: {0}")]
    Spawn(#[source] std::io::Error),
}

/// Why [`ProjectionRuntime::wait_for`] returned without a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WaitError {
    /// The read model did not reach the position in time (the server answers `504`).
    /// Retry, or check that the position exists.
    #[error("the read model did not reach position {wanted} in time; it is at {position}")]
    Timeout {
        /// The position waited for.
        wanted: u64,
        /// The position published when the wait ended.
        position: u64,
    },
    /// The projection stopped (the engine shut down, or the projection failed; see
    /// [`RuntimeStatus::failure`]) before reaching the position. Waiting longer cannot help.
    #[error("the projection stopped at position {position} before reaching {wanted}")]
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
    /// A rebuild is running; wait for it ([`Rebuild::finished`]) first.
    #[error("a rebuild to {root} is already running")]
    AlreadyRunning {
        /// What it rebuilds.
        root: Root,
    },
    /// The runtime has shut down.
    #[error("the projection runtime has shut down")]
    ShutDown,
    /// The rebuild's thread could not be spawned. Retry later.
    #[error("cannot spawn the rebuild thread: {0}")]
    Spawn(#[source] std::io::Error),
}

/// Where the last rebuild stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RebuildStatus {
    /// No rebuild was started.
    Idle,
    /// Catching up: it has applied up to `position` and will switch once it reaches the
    /// live position, `target` (which moves while writes go on). Draw `position / target`.
    Running {
        /// What it builds.
        root: Root,
        /// The last position it applied.
        position: u64,
        /// The live position it must reach.
        target: u64,
    },
    /// It caught up at `position`, and readers now get its snapshots.
    Switched {
        /// What it built, now live.
        root: Root,
        /// The position at which it switched.
        position: u64,
    },
    /// It failed before switching; the live instance was not touched.
    Failed {
        /// What it was building.
        root: Root,
        /// Why it failed.
        detail: String,
    },
    /// The runtime shut down before it switched.
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

/// A rebuild started by [`ProjectionRuntime::rebuild_with`]: watch its progress, or wait
/// for its end.
#[derive(Debug)]
pub struct Rebuild {
    status: watch::Receiver<RebuildStatus>,
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

/// What a runtime is doing, for health checks, metrics and the CLI.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RuntimeStatus {
    /// The live read model's structure.
    pub root: Root,
    /// The last position published.
    pub position: u64,
    /// The last position the live instance applied: ahead of `position` while it catches
    /// up and publishes only now and then (see
    /// [`RuntimeOptions::catch_up_publish_interval`]).
    pub applied: u64,
    /// The source's last durable position.
    pub last_position: u64,
    /// `last_position - position`: events the readers do not see yet.
    pub lag: u64,
    /// The live instance's counters, including skipped events and the last failure.
    pub stats: ReplayStats,
    /// Why the live instance stopped, if it stopped on an error or a panic.
    pub failure: Option<String>,
    /// Whether the live instance stopped (the source closed, a failure, or shutdown).
    pub stopped: bool,
    /// The last rebuild.
    pub rebuild: RebuildStatus,
}

/// Keeps a projection up to date with an [`EventSource`] and publishes its snapshots. See
/// the module documentation for threads, publishing, errors and rebuilds.
///
/// Dropping it stops its threads (see [`ProjectionRuntime::shutdown`]).
pub struct ProjectionRuntime<P: Projection> {
    shared: Arc<Shared<P>>,
}

impl<P: Projection> std::fmt::Debug for ProjectionRuntime<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let snapshot = self.shared.current.load();
        f.debug_struct("ProjectionRuntime")
            .field("root", &snapshot.root)
            .field("position", &snapshot.position)
            .finish_non_exhaustive()
    }
}

/// The published position, and whether the live instance stopped.
#[derive(Debug, Clone, Copy)]
struct Live {
    position: u64,
    stopped: bool,
}

struct Shared<P: Projection> {
    source: Arc<dyn EventSource>,
    options: RuntimeOptions,
    /// What readers load. Stored only under `control`'s lock, by the live instance.
    current: ArcSwap<Snapshot<P::State>>,
    /// Follows `current` (sent after it is stored), for waiters.
    live_tx: watch::Sender<Live>,
    rebuild_tx: watch::Sender<RebuildStatus>,
    /// The publishing lock: which instance is live. Readers never take it.
    control: Mutex<Control<P>>,
}

struct Control<P: Projection> {
    live: Worker<P>,
    rebuilding: Option<Worker<P>>,
    /// Threads of instances that were replaced or failed; joined at shutdown.
    retired: Vec<JoinHandle<()>>,
    next_generation: u64,
    shut_down: bool,
}

/// One projection instance and its thread.
struct Worker<P: Projection> {
    generation: u64,
    projection: P,
    stats: Arc<Mutex<WorkerStats>>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct WorkerStats {
    replay: ReplayStats,
    applied: u64,
    failure: Option<String>,
}

/// How a worker's loop ended.
enum Exit {
    /// Told to stop, or replaced.
    Stopped,
    /// The source shut down.
    SourceClosed,
    /// Reading failed, or the projection panicked.
    Failed(String),
}

enum Switch {
    Done,
    NotYet,
    Superseded,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks leaves nothing half-done (each critical section
    // only swaps values), so a poisoned lock is still consistent.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<P: Projection> ProjectionRuntime<P> {
    /// Publishes the projection's initial state at position 0 and starts its thread, which
    /// replays the source from position 1 and then follows it.
    pub fn start(
        source: Arc<dyn EventSource>,
        projection: P,
        options: RuntimeOptions,
    ) -> Result<Self, StartError> {
        let initial = Snapshot {
            state: projection.initial_state(),
            position: 0,
            root: projection.root(),
        };
        let live = Worker::new(1, projection.clone());
        let shared = Arc::new(Shared {
            source,
            options,
            current: ArcSwap::from_pointee(initial),
            live_tx: watch::Sender::new(Live {
                position: 0,
                stopped: false,
            }),
            rebuild_tx: watch::Sender::new(RebuildStatus::Idle),
            control: Mutex::new(Control {
                live,
                rebuilding: None,
                retired: Vec::new(),
                next_generation: 2,
                shut_down: false,
            }),
        });
        {
            let mut control = lock(&shared.control);
            let thread = spawn_worker(&shared, &control.live, projection, true)
                .map_err(StartError::Spawn)?;
            control.live.thread = Some(thread);
        }
        Ok(Self { shared })
    }

    /// The newest published snapshot. Never blocks; hold the `Arc` as long as needed.
    pub fn snapshot(&self) -> Arc<Snapshot<P::State>> {
        self.shared.current.load_full()
    }

    /// The last position published.
    pub fn position(&self) -> u64 {
        self.shared.current.load().position
    }

    /// Events durable in the source but not yet published.
    pub fn lag(&self) -> u64 {
        self.shared
            .source
            .last_position()
            .saturating_sub(self.position())
    }

    /// The live read model's structure.
    pub fn root(&self) -> Root {
        self.shared.current.load().root
    }

    /// Returns the newest snapshot as soon as its position is at least `position` (read
    /// your writes: pass the position of a command's status). Costs no polling: it awaits
    /// the runtime's watch channel. Needs a tokio runtime with timers when it must wait.
    pub async fn wait_for(
        &self,
        position: u64,
        timeout: Duration,
    ) -> Result<Arc<Snapshot<P::State>>, WaitError> {
        let snapshot = self.snapshot();
        if snapshot.position >= position {
            return Ok(snapshot);
        }
        let mut live = self.shared.live_tx.subscribe();
        let waited = tokio::time::timeout(
            timeout,
            live.wait_for(|live| live.position >= position || live.stopped),
        )
        .await;
        // `current` is stored before the watch is sent, so it is at least as new.
        let snapshot = self.snapshot();
        if snapshot.position >= position {
            return Ok(snapshot);
        }
        let (wanted, published) = (position, snapshot.position);
        Err(match waited {
            Err(_elapsed) => WaitError::Timeout {
                wanted,
                position: published,
            },
            Ok(_) => WaitError::Stopped {
                wanted,
                position: published,
            },
        })
    }

    /// [`ProjectionRuntime::wait_for`] for threads outside an async runtime (it builds a
    /// small one; calling it from inside a tokio runtime panics).
    pub fn blocking_wait_for(
        &self,
        position: u64,
        timeout: Duration,
    ) -> Result<Arc<Snapshot<P::State>>, WaitError> {
        let snapshot = self.snapshot();
        if snapshot.position >= position {
            return Ok(snapshot);
        }
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime with only a timer builds")
            .block_on(self.wait_for(position, timeout))
    }

    /// Rebuilds the live projection from position 1 beside the live instance and switches
    /// to it once it has caught up. See [`ProjectionRuntime::rebuild_with`].
    pub fn rebuild(&self) -> Result<Rebuild, RebuildError> {
        let projection = lock(&self.shared.control).live.projection.clone();
        self.rebuild_with(projection)
    }

    /// Builds `projection` (possibly a new version: a new root) from position 1 on a
    /// thread of its own, beside the live instance. Readers keep the live snapshots until
    /// it has caught up with the live position; then the runtime switches them to it
    /// atomically and drops the old instance. Follow it with the returned [`Rebuild`] or
    /// [`ProjectionRuntime::rebuild_status`].
    pub fn rebuild_with(&self, projection: P) -> Result<Rebuild, RebuildError> {
        let mut control = lock(&self.shared.control);
        if control.shut_down {
            return Err(RebuildError::ShutDown);
        }
        if let Some(running) = &control.rebuilding {
            return Err(RebuildError::AlreadyRunning {
                root: running.projection.root(),
            });
        }
        control.reap_finished();
        let generation = control.next_generation;
        control.next_generation += 1;
        let mut worker = Worker::new(generation, projection.clone());
        self.shared.rebuild_tx.send_replace(RebuildStatus::Running {
            root: projection.root(),
            position: 0,
            target: self.position(),
        });
        let status = self.shared.rebuild_tx.subscribe();
        match spawn_worker(&self.shared, &worker, projection.clone(), false) {
            Ok(thread) => worker.thread = Some(thread),
            Err(e) => {
                self.shared.rebuild_tx.send_replace(RebuildStatus::Failed {
                    root: projection.root(),
                    detail: e.to_string(),
                });
                return Err(RebuildError::Spawn(e));
            }
        }
        control.rebuilding = Some(worker);
        Ok(Rebuild { status })
    }

    /// Where the last rebuild stands.
    pub fn rebuild_status(&self) -> RebuildStatus {
        self.shared.rebuild_tx.borrow().clone()
    }

    /// Position, lag, counters and failures of the live instance, and the last rebuild.
    pub fn status(&self) -> RuntimeStatus {
        let (stats, applied, failure) = {
            let control = lock(&self.shared.control);
            let stats = lock(&control.live.stats);
            (stats.replay.clone(), stats.applied, stats.failure.clone())
        };
        let snapshot = self.shared.current.load();
        let last_position = self.shared.source.last_position();
        RuntimeStatus {
            root: snapshot.root,
            position: snapshot.position,
            applied: applied.max(snapshot.position),
            last_position,
            lag: last_position.saturating_sub(snapshot.position),
            stats,
            failure,
            stopped: self.shared.live_tx.borrow().stopped,
            rebuild: self.rebuild_status(),
        }
    }

    /// Stops every projection thread and waits for them. Readers keep the last snapshot;
    /// waits answer [`WaitError::Stopped`]; a running rebuild is cancelled. Idempotent;
    /// also run on drop.
    pub fn shutdown(&self) {
        let (threads, cancelled) = {
            let mut control = lock(&self.shared.control);
            if control.shut_down {
                return;
            }
            control.shut_down = true;
            let mut threads = std::mem::take(&mut control.retired);
            control.live.stop.send_replace(true);
            threads.extend(control.live.thread.take());
            let cancelled = control.rebuilding.take().map(|mut worker| {
                worker.stop.send_replace(true);
                threads.extend(worker.thread.take());
                worker.projection.root()
            });
            (threads, cancelled)
        };
        // Join outside the lock: a thread finishing its batch publishes under it.
        for thread in threads {
            let _ = thread.join();
        }
        self.shared.live_tx.send_modify(|live| live.stopped = true);
        if let Some(root) = cancelled {
            self.shared
                .rebuild_tx
                .send_replace(RebuildStatus::Cancelled { root });
        }
    }
}

impl<P: Projection> Drop for ProjectionRuntime<P> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl<P: Projection> Worker<P> {
    fn new(generation: u64, projection: P) -> Self {
        Self {
            generation,
            projection,
            stats: Arc::default(),
            stop: watch::Sender::new(false),
            thread: None,
        }
    }
}

impl<P: Projection> Control<P> {
    /// Joins retired threads that have ended, so they do not pile up across rebuilds.
    fn reap_finished(&mut self) {
        let (finished, running) = std::mem::take(&mut self.retired)
            .into_iter()
            .partition::<Vec<_>, _>(JoinHandle::is_finished);
        self.retired = running;
        for thread in finished {
            let _ = thread.join();
        }
    }
}

fn spawn_worker<P: Projection>(
    shared: &Arc<Shared<P>>,
    worker: &Worker<P>,
    projection: P,
    live: bool,
) -> std::io::Result<JoinHandle<()>> {
    let name = format!(
        "writ-{}-{}",
        if live { "projection" } else { "rebuild" },
        projection.name()
    );
    let shared = Arc::clone(shared);
    let generation = worker.generation;
    let stats = Arc::clone(&worker.stats);
    let stop = worker.stop.subscribe();
    std::thread::Builder::new().name(name).spawn(move || {
        let exit = catch_unwind(AssertUnwindSafe(|| {
            run(&shared, generation, projection, &stats, stop, live)
        }))
        .unwrap_or_else(|panic| {
            Exit::Failed(format!(
                "the projection panicked: {}",
                panic_message(&*panic)
            ))
        });
        shared.finish(generation, &stats, exit);
    })
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".to_owned())
}

/// What the reader thread hands the applying thread: events read from the log, and what
/// [`Projection::decode`] made of each.
struct ReadBatch<D> {
    events: Vec<RecordedEvent>,
    steps: Vec<Step<D>>,
}

impl<D> Default for ReadBatch<D> {
    fn default() -> Self {
        Self {
            events: Vec::new(),
            steps: Vec::new(),
        }
    }
}

/// Why the reader thread stopped handing batches over.
enum ReadFailure {
    /// Reading the log failed, or the source closed.
    Subscription(SubscriptionError),
    /// [`Projection::decode`] panicked.
    Panicked(String),
}

type Batch<D> = Result<ReadBatch<D>, ReadFailure>;

/// The applying thread's ends: batches from the reader, spares back to it.
type Channels<'a, D> = (
    &'a mpsc::Receiver<Batch<D>>,
    &'a mpsc::SyncSender<ReadBatch<D>>,
);

/// Batches read ahead of the one being applied. Two keep the applying thread busy while
/// bounding the memory to three batches (and the one spare below, and the one being read).
const READ_AHEAD_BATCHES: usize = 2;

/// Applied batches handed back to the reader thread, which reads the next batch into them
/// ([`writ_engine::Subscription::next_batch_into`]): their strings and buffers are reused,
/// so a replay allocates nothing per event to read the log, and none of it is freed on the
/// applying thread, the one that sets the pace. One is enough: the reader takes it
/// back before the applier is done with the next.
const SPARE_BATCHES: usize = 1;

/// A projection instance: a reader thread follows the source, decodes each batch
/// ([`Projection::decode`]) and hands it over a bounded channel to this thread, which
/// applies it and publishes (or, while rebuilding, tries to switch), until told to stop.
/// Reading the log (decoding commit records into events) and decoding the events overlap
/// with applying, so a replay uses both of this machine's cores.
fn run<P: Projection>(
    shared: &Shared<P>,
    generation: u64,
    projection: P,
    stats: &Mutex<WorkerStats>,
    stop: watch::Receiver<bool>,
    live: bool,
) -> Exit {
    let batch_max = shared.options.batch_events_max.max(1);
    let subscription = shared.source.subscribe(1);
    let (batches_tx, batches) = mpsc::sync_channel::<Batch<P::Decoded>>(READ_AHEAD_BATCHES);
    let (spare_tx, spare) = mpsc::sync_channel::<ReadBatch<P::Decoded>>(SPARE_BATCHES);
    let (done_tx, done) = watch::channel(false);
    let decoder = projection.clone();
    std::thread::scope(|scope| {
        let reader = std::thread::Builder::new()
            .name(format!("writ-read-{}", projection.name()))
            .spawn_scoped(scope, move || {
                read(
                    subscription,
                    &decoder,
                    batch_max,
                    (stop, done),
                    batches_tx,
                    spare,
                );
            });
        if let Err(e) = reader {
            return Exit::Failed(format!("cannot spawn the reader thread: {e}"));
        }
        // However this thread leaves (returning or unwinding), the reader stops, so the
        // scope can join it.
        let _done = StopOnDrop(done_tx);
        let exit = apply(
            shared,
            generation,
            projection,
            stats,
            (&batches, &spare_tx),
            live,
        );
        // The reader may be blocked sending a batch into the full channel: dropping the
        // receiver here (the closure owns it, so unwinding drops it too) wakes it with an
        // error, and the scope can join it. Held by `run` instead, it would deadlock.
        drop(batches);
        drop(spare_tx);
        exit
    })
}

struct StopOnDrop(watch::Sender<bool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.send_replace(true);
    }
}

/// The reader thread: the subscription's batches, decoded, into the channel, each read
/// into a spare batch when the applying thread has handed one back, until the runtime
/// stops the instance, the applying thread is done, or the subscription ends.
fn read<P: Projection>(
    mut subscription: writ_engine::Subscription,
    projection: &P,
    batch_max: usize,
    (mut stop, mut done): (watch::Receiver<bool>, watch::Receiver<bool>),
    batches: mpsc::SyncSender<Batch<P::Decoded>>,
    spare: mpsc::Receiver<ReadBatch<P::Decoded>>,
) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() else {
        // Dropping `batches` ends the applying thread's loop; it reports the stop.
        return;
    };
    loop {
        let mut batch = spare.try_recv().unwrap_or_default();
        let read = rt.block_on(async {
            tokio::select! {
                biased;
                _ = stop.wait_for(|stop| *stop) => None,
                _ = done.wait_for(|done| *done) => None,
                read = subscription.next_batch_into(batch_max, &mut batch.events) => Some(read),
            }
        });
        let Some(read) = read else { return };
        let batch = read.map_err(ReadFailure::Subscription).and_then(|()| {
            // A panic here is the projection's, as in `apply`: it stops the instance
            // with the panic's message.
            catch_unwind(AssertUnwindSafe(|| {
                batch.steps.clear();
                let steps = batch.events.iter().map(|event| Step::of(projection, event));
                batch.steps.extend(steps);
            }))
            .map_err(|panic| ReadFailure::Panicked(panic_message(&*panic)))?;
            Ok(batch)
        });
        let ended = batch.is_err();
        if batches.send(batch).is_err() || ended {
            return;
        }
    }
}

/// The applying loop of [`run`].
fn apply<P: Projection>(
    shared: &Shared<P>,
    generation: u64,
    projection: P,
    stats: &Mutex<WorkerStats>,
    (batches, spare): Channels<'_, P::Decoded>,
    mut live: bool,
) -> Exit {
    let batch_max = shared.options.batch_events_max.max(1);
    let mut replay = Replay::new(projection);
    let mut published_at = Instant::now();
    loop {
        if !live {
            match shared.try_switch(generation, &replay) {
                Switch::Done => live = true,
                Switch::NotYet => {}
                Switch::Superseded => return Exit::Stopped,
            }
        }
        let mut batch = match batches.recv() {
            // The reader stopped: the runtime stops this instance.
            Err(mpsc::RecvError) => return Exit::Stopped,
            Ok(Ok(batch)) => batch,
            Ok(Err(ReadFailure::Subscription(SubscriptionError::Closed))) => {
                return Exit::SourceClosed;
            }
            Ok(Err(ReadFailure::Subscription(e))) => {
                return Exit::Failed(format!(
                    "reading the log after position {} failed: {e}",
                    replay.position()
                ));
            }
            Ok(Err(ReadFailure::Panicked(message))) => {
                return Exit::Failed(format!("the projection panicked: {message}"));
            }
        };
        replay.apply_decoded(&batch.events, &mut batch.steps);
        let events = &batch.events;
        {
            let mut stats = lock(stats);
            stats.replay.clone_from(replay.stats());
            stats.applied = replay.position();
        }
        if live {
            // A batch shorter than asked for held everything durable when it was read.
            let caught_up =
                events.len() < batch_max || replay.position() >= shared.source.last_position();
            if caught_up || published_at.elapsed() >= shared.options.catch_up_publish_interval {
                if !shared.publish(generation, Arc::new(replay.snapshot())) {
                    return Exit::Stopped;
                }
                published_at = Instant::now();
            }
        }
        // Back to the reader to be read into; when it has a spare already (or is gone),
        // `try_send` hands the batch back and it is freed here.
        drop(spare.try_send(batch));
    }
}

impl<P: Projection> Shared<P> {
    /// Publishes a snapshot if `generation` is still the live instance.
    fn publish(&self, generation: u64, snapshot: Arc<Snapshot<P::State>>) -> bool {
        let control = lock(&self.control);
        if control.live.generation != generation {
            return false;
        }
        let position = snapshot.position;
        let previous = self.current.swap(snapshot);
        debug_assert!(previous.position <= position, "positions never go back");
        self.live_tx.send_modify(|live| live.position = position);
        drop(control);
        // The old state may be freed here, outside the lock.
        drop(previous);
        true
    }

    /// A rebuilding instance checks whether it has caught up; if so it becomes live.
    fn try_switch(&self, generation: u64, replay: &Replay<P>) -> Switch {
        let mut control = lock(&self.control);
        if control
            .rebuilding
            .as_ref()
            .is_none_or(|w| w.generation != generation)
        {
            return Switch::Superseded;
        }
        let root = replay.projection().root();
        let live_position = self.current.load().position;
        if replay.position() < live_position {
            self.rebuild_tx.send_replace(RebuildStatus::Running {
                root,
                position: replay.position(),
                target: live_position,
            });
            return Switch::NotYet;
        }
        let new = control.rebuilding.take().expect("checked above");
        let mut old = std::mem::replace(&mut control.live, new);
        old.stop.send_replace(true);
        control.retired.extend(old.thread.take());
        let snapshot = Arc::new(replay.snapshot());
        let position = snapshot.position;
        let previous = self.current.swap(snapshot);
        self.live_tx.send_modify(|live| {
            live.position = position;
            live.stopped = false;
        });
        self.rebuild_tx
            .send_replace(RebuildStatus::Switched { root, position });
        drop(control);
        drop(previous);
        Switch::Done
    }

    /// Records how an instance's thread ended.
    fn finish(&self, generation: u64, stats: &Mutex<WorkerStats>, exit: Exit) {
        let failure = match exit {
            Exit::Stopped => return,
            Exit::SourceClosed => None,
            Exit::Failed(detail) => Some(detail),
        };
        lock(stats).failure.clone_from(&failure);
        let mut control = lock(&self.control);
        if control.live.generation == generation {
            self.live_tx.send_modify(|live| live.stopped = true);
        } else if let Some(worker) = control
            .rebuilding
            .take_if(|worker| worker.generation == generation)
        {
            let mut worker = worker;
            control.retired.extend(worker.thread.take());
            self.rebuild_tx.send_replace(RebuildStatus::Failed {
                root: worker.projection.root(),
                detail: failure.unwrap_or_else(|| "the event source shut down".to_owned()),
            });
        }
    }
}
