//! The live group of read models and its threads: a reader that follows the source and
//! decodes every batch for every read model, an applying thread that applies it to all of
//! them and publishes one [`Snapshots`], and rebuilds that catch up beside them and join
//! at a batch boundary. The [module documentation](super) tells the design; this file is
//! the mechanics.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, watch};

use crate::projection::{ReplayStats, Root};
use crate::runtime::erased::{AnyProjection, Instance};
use crate::runtime::options::{
    ModelStatus, Rebuild, RebuildError, RebuildStatus, RuntimeOptions, SnapshotStatus,
};
use crate::runtime::persist::{self, Loaded, Snapshotter};
use crate::runtime::reader::{
    CatchUp, Decoded, Decoder, DecoderTable, JoinRequest, Joins, Message, READ_AHEAD_BATCHES,
    ReadBatch, ReadFailure, Reader, SPARE_BATCHES, StopOnDrop, lock, panic_message,
};
use crate::runtime::snapshots::{Published, Snapshots};
use crate::runtime::spec::ReadModelSpec;
use crate::source::{EventSource, FeedError};

/// How far behind the live reader (in batches) a rebuilt instance may be when it asks to
/// join: the live reader reads and decodes the rest for it, and the applying thread applies
/// it to the joining instance before the next batch, so the live read models pause for
/// about that many batches of one read model. Four is the live reader's own lead over the
/// applying thread (read ahead, spare, and the batch being read) plus one. See
/// [`Handover`] for when a rebuild asks with a larger gap.
const JOIN_BAND_BATCHES: u64 = 4;

/// The counter of events the live read models parked, by model (see [`super::METRICS`]).
pub(crate) const PROJECTION_EVENTS_PARKED: &str = "writ_projection_events_parked_total";

/// The read models of a server, live: what the threads share with
/// [`ReadModels`](crate::ReadModels).
pub(crate) struct Group {
    pub(crate) source: Arc<dyn EventSource>,
    pub(crate) options: RuntimeOptions,
    /// Per read model, in the order they were started (an index is a read model).
    pub(crate) models: Box<[Model]>,
    /// What readers load. Stored only by the applying thread (one publisher, no lock).
    pub(crate) current: ArcSwap<Snapshots>,
    /// Follows `current` (sent after it is stored), for waiters.
    pub(crate) progress: watch::Sender<Progress>,
    /// Why the group stopped, if on an error reading the source.
    failure: Mutex<Option<String>>,
    /// The end of the last batch the live reader handed over: where a rebuild would join.
    read_position: AtomicU64,
    /// What the live reader decodes each read model's events with.
    decoders: DecoderTable,
    /// Tells every thread (the group's and the rebuilds') to stop.
    stop: watch::Sender<bool>,
    control: Mutex<Control>,
}

/// One read model of the group.
pub(crate) struct Model {
    pub(crate) name: &'static str,
    pub(crate) spec: ReadModelSpec,
    /// Its live instance, as the applying thread last reported it.
    pub(crate) live: Mutex<Live>,
    pub(crate) rebuild_tx: watch::Sender<RebuildStatus>,
    /// What it did with snapshots.
    pub(crate) snapshots: Mutex<SnapshotStatus>,
}

pub(crate) struct Live {
    /// The live instance's projection: what a rebuild of the live version builds.
    pub(crate) projection: Arc<dyn AnyProjection>,
    stats: ReplayStats,
    applied: u64,
    /// Why it stopped.
    failure: Option<String>,
}

/// The published position, and whether the group stopped.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Progress {
    pub(crate) position: u64,
    pub(crate) stopped: bool,
}

/// Threads and rebuilds; taken briefly, never while applying or publishing.
struct Control {
    shut_down: bool,
    /// The group's thread, and those of rebuilds that ended; joined at shutdown.
    threads: Vec<JoinHandle<()>>,
    /// The running rebuild of each read model.
    rebuilding: Vec<Option<Rebuilder>>,
    /// Numbers instances, so that decoded batches, joins and statuses name the instance
    /// they are for.
    next_generation: u64,
    /// To the live reader; dropped at shutdown. Unbounded in type only: a read model has
    /// one rebuild at a time, and a rebuild sends one request, so it holds at most one per
    /// read model.
    joins: Option<mpsc::UnboundedSender<JoinRequest>>,
}

struct Rebuilder {
    generation: u64,
    root: Root,
    thread: Option<JoinHandle<()>>,
}

/// How the group's applying thread ended.
enum Exit {
    /// Told to stop.
    Stopped,
    /// The source shut down.
    SourceClosed,
    /// Reading failed, or the thread itself panicked.
    Failed(String),
}

impl Group {
    /// Publishes every read model's initial state at position 0 and starts the applying
    /// thread (`writ-apply`), which starts the reader (`writ-read`) and replays the source
    /// from position 1 into every read model, then follows it.
    pub(crate) fn start(
        source: Arc<dyn EventSource>,
        specs: Vec<ReadModelSpec>,
        options: RuntimeOptions,
    ) -> std::io::Result<Arc<Self>> {
        // Each read model from its newest valid snapshot, if snapshots are on.
        let mut loaded: Vec<Option<Loaded>> = Vec::with_capacity(specs.len());
        let mut statuses: Vec<SnapshotStatus> = Vec::with_capacity(specs.len());
        for spec in &specs {
            let mut status = SnapshotStatus::default();
            loaded.push(options.snapshots.as_ref().and_then(|snapshots| {
                persist::load(&*source, snapshots, &spec.projection, &mut status)
            }));
            statuses.push(status);
        }
        let positions: Vec<u64> = loaded
            .iter()
            .map(|loaded| loaded.as_ref().map_or(0, |l| l.position))
            .collect();
        // The feed starts after the least of them; read models loaded further on skip
        // what they hold already, and nothing is published until all are past it.
        let start = positions.iter().copied().min().unwrap_or(0);
        let ahead = positions.iter().copied().max().unwrap_or(0);
        let models: Box<[Model]> = specs
            .into_iter()
            .zip(statuses)
            .zip(&positions)
            .map(|((spec, status), position)| Model {
                name: spec.name(),
                live: Mutex::new(Live {
                    projection: Arc::clone(&spec.projection),
                    stats: ReplayStats::default(),
                    applied: *position,
                    failure: None,
                }),
                rebuild_tx: watch::Sender::new(RebuildStatus::Idle),
                snapshots: Mutex::new(status),
                spec,
            })
            .collect();
        // All at one position: each read model's own state there (the initial states at
        // 0). Otherwise the initial states at 0, until the group has caught up with the
        // read model furthest on.
        let published = if start == ahead { start } else { 0 };
        let initial = Snapshots {
            position: published,
            models: models
                .iter()
                .zip(&loaded)
                .map(|(model, loaded)| Published {
                    name: model.name,
                    root: model.spec.projection.root(),
                    snapshot: match loaded {
                        Some(loaded) if published > 0 => Arc::clone(&loaded.snapshot),
                        _ => model.spec.projection.initial(),
                    },
                    position: published,
                    stopped: false,
                })
                .collect(),
        };
        let slots: Vec<Slot> = (1..)
            .zip(&models)
            .zip(loaded)
            .map(|((generation, model), loaded)| Slot {
                instance: Some(match loaded {
                    Some(loaded) => loaded.instance,
                    None => model.spec.projection.start(),
                }),
                generation,
                projection: Arc::clone(&model.spec.projection),
            })
            .collect();
        let decoders = DecoderTable::new(slots.iter().map(Slot::decoder).collect());
        let (joins_tx, joins) = mpsc::unbounded_channel();
        let count = models.len();
        let group = Arc::new(Self {
            source,
            options,
            models,
            current: ArcSwap::from_pointee(initial),
            progress: watch::Sender::new(Progress {
                position: published,
                stopped: false,
            }),
            failure: Mutex::new(None),
            read_position: AtomicU64::new(start),
            decoders,
            stop: watch::Sender::new(false),
            control: Mutex::new(Control {
                shut_down: false,
                threads: Vec::new(),
                rebuilding: (0..count).map(|_| None).collect(),
                next_generation: count as u64 + 1,
                joins: Some(joins_tx),
            }),
        });
        let snapshotter = match Snapshotter::start(&group, &positions) {
            Ok(Some((snapshotter, thread))) => {
                lock(&group.control).threads.push(thread);
                Some(snapshotter)
            }
            Ok(None) => None,
            Err(e) => {
                // Nothing was started but this thread, which ends with its channel.
                return Err(e);
            }
        };
        let at = Start {
            position: start,
            ahead,
        };
        let thread = {
            let group = Arc::clone(&group);
            std::thread::Builder::new()
                .name("writ-apply".to_owned())
                .spawn(move || {
                    group.schedule_this_thread("writ-apply");
                    let exit = catch_unwind(AssertUnwindSafe(|| {
                        run_live(&group, slots, joins, at, snapshotter)
                    }))
                    .unwrap_or_else(|panic| {
                        Exit::Failed(format!(
                            "the applying thread panicked: {}",
                            panic_message(&*panic)
                        ))
                    });
                    group.finish(exit);
                })?
        };
        lock(&group.control).threads.push(thread);
        Ok(group)
    }

    /// Puts the calling thread, one of the read side's, under the scheduling the options
    /// ask for ([`RuntimeOptions::batch_scheduling`]).
    fn schedule_this_thread(&self, thread: &str) {
        if self.options.batch_scheduling {
            writ_engine::priority::batch_this_thread(thread);
        }
    }

    /// Records how the applying thread ended.
    fn finish(&self, exit: Exit) {
        match exit {
            Exit::Stopped => {}
            Exit::SourceClosed => self.progress.send_modify(|p| p.stopped = true),
            Exit::Failed(detail) => {
                *lock(&self.failure) = Some(detail);
                self.progress.send_modify(|p| p.stopped = true);
            }
        }
    }

    /// Where read model `index` stands.
    pub(crate) fn status(&self, index: usize) -> ModelStatus {
        let model = &self.models[index];
        let (stats, applied, failure) = {
            let live = lock(&model.live);
            (live.stats.clone(), live.applied, live.failure.clone())
        };
        let snapshots = self.current.load();
        let published = &snapshots.models[index];
        let group_stopped = self.progress.borrow().stopped;
        let last_position = self.source.last_position();
        ModelStatus {
            name: model.name,
            root: published.root,
            projection_versions: model.spec.versions.clone(),
            query_versions: model.spec.catalog.versions(),
            position: published.position,
            applied: applied.max(published.position),
            last_position,
            lag: last_position.saturating_sub(published.position),
            stats,
            snapshots: lock(&model.snapshots).clone(),
            // A failure is recorded just before the snapshots that mark the model stopped
            // are published: it already counts.
            stopped: published.stopped || failure.is_some() || group_stopped,
            failure: failure.or_else(|| lock(&self.failure).clone()),
            rebuild: model.rebuild_tx.borrow().clone(),
        }
    }

    /// Builds `projection` from position 1 on threads of its own, beside the live group,
    /// and has it join the group in place of read model `index` once it has caught up.
    pub(crate) fn rebuild(
        self: &Arc<Self>,
        index: usize,
        projection: Arc<dyn AnyProjection>,
    ) -> Result<Rebuild, RebuildError> {
        let mut control = lock(&self.control);
        if control.shut_down {
            return Err(RebuildError::ShutDown);
        }
        if let Some(running) = &control.rebuilding[index] {
            return Err(RebuildError::AlreadyRunning { root: running.root });
        }
        control.reap_finished();
        let generation = control.next_generation;
        control.next_generation += 1;
        let root = projection.root();
        let model = &self.models[index];
        model.rebuild_tx.send_replace(RebuildStatus::Running {
            root,
            position: 0,
            target: self.current.load().position,
        });
        let status = model.rebuild_tx.subscribe();
        // The thread cannot end the rebuild before it is recorded: that takes this lock.
        match spawn_rebuild(self, index, generation, projection) {
            Ok(thread) => {
                control.rebuilding[index] = Some(Rebuilder {
                    generation,
                    root,
                    thread: Some(thread),
                });
                Ok(Rebuild { status })
            }
            Err(e) => {
                model.rebuild_tx.send_replace(RebuildStatus::Failed {
                    root,
                    detail: e.to_string(),
                });
                Err(RebuildError::Spawn(e))
            }
        }
    }

    /// The generation and root of read model `index`'s running rebuild, if any.
    fn running_rebuild(&self, index: usize) -> Option<(u64, Root)> {
        lock(&self.control).rebuilding[index]
            .as_ref()
            .map(|running| (running.generation, running.root))
    }

    /// A rebuild reports its progress; `false` when it is no longer the running rebuild
    /// of its read model (cancelled).
    fn rebuild_progress(&self, index: usize, generation: u64, position: u64) -> bool {
        let control = lock(&self.control);
        let Some(running) = control.rebuilding[index]
            .as_ref()
            .filter(|r| r.generation == generation)
        else {
            return false;
        };
        self.models[index]
            .rebuild_tx
            .send_replace(RebuildStatus::Running {
                root: running.root,
                position,
                target: self.current.load().position,
            });
        true
    }

    /// Ends rebuild `generation` of read model `index` with `status`, unless it has ended
    /// already (switched, failed or cancelled: the first word stands).
    fn end_rebuild(&self, index: usize, generation: u64, status: RebuildStatus) {
        let mut control = lock(&self.control);
        if let Some(mut ended) = control.rebuilding[index].take_if(|r| r.generation == generation) {
            control.threads.extend(ended.thread.take());
            self.models[index].rebuild_tx.send_replace(status);
        }
    }

    /// Stops every thread and waits for them. Readers keep the last snapshots; waits
    /// answer that the read models stopped; running rebuilds are cancelled. Idempotent.
    pub(crate) fn shutdown(&self) {
        let (threads, cancelled) = {
            let mut control = lock(&self.control);
            if control.shut_down {
                return;
            }
            control.shut_down = true;
            control.joins = None;
            self.stop.send_replace(true);
            let mut threads = std::mem::take(&mut control.threads);
            let mut cancelled = Vec::new();
            for (index, rebuilder) in control.rebuilding.iter_mut().enumerate() {
                if let Some(mut rebuilder) = rebuilder.take() {
                    threads.extend(rebuilder.thread.take());
                    cancelled.push((index, rebuilder.root));
                }
            }
            (threads, cancelled)
        };
        // Join outside the lock: the threads take it to report.
        for thread in threads {
            let _ = thread.join();
        }
        self.progress.send_modify(|p| p.stopped = true);
        for (index, root) in cancelled {
            self.models[index]
                .rebuild_tx
                .send_replace(RebuildStatus::Cancelled { root });
        }
    }
}

impl Control {
    /// Joins threads of ended rebuilds, so they do not pile up across rebuilds.
    fn reap_finished(&mut self) {
        let (finished, running) = std::mem::take(&mut self.threads)
            .into_iter()
            .partition::<Vec<_>, _>(JoinHandle::is_finished);
        self.threads = running;
        for thread in finished {
            let _ = thread.join();
        }
    }
}

/// A rebuilt instance being caught up on the applying thread.
struct Joining {
    request: JoinRequest,
    /// Its projection panicked on the catch-up.
    failure: Option<String>,
}

/// One read model on the applying thread.
struct Slot {
    /// `None` once it stopped: its last published snapshot stays frozen.
    instance: Option<Box<dyn Instance>>,
    generation: u64,
    projection: Arc<dyn AnyProjection>,
}

impl Slot {
    fn decoder(&self) -> Option<Decoder> {
        self.instance.as_ref().map(|_| Decoder {
            generation: self.generation,
            projection: Arc::clone(&self.projection),
        })
    }
}

/// Where the live group starts: after `position`, the least position its read models were
/// loaded at (0: replayed); `ahead` is the greatest.
#[derive(Debug, Clone, Copy)]
struct Start {
    position: u64,
    ahead: u64,
}

/// The group's applying thread: starts the reader, then applies what it hands over.
fn run_live(
    group: &Arc<Group>,
    slots: Vec<Slot>,
    requests: mpsc::UnboundedReceiver<JoinRequest>,
    start: Start,
    snapshotter: Option<Snapshotter>,
) -> Exit {
    let batch_max = group.options.batch_events_max.max(1);
    let feed = group.source.subscribe(start.position + 1);
    let (batches_tx, batches) = sync_channel::<Message>(READ_AHEAD_BATCHES);
    let (spare_tx, spare) = sync_channel::<ReadBatch>(SPARE_BATCHES);
    let (done_tx, done) = watch::channel(false);
    let reader = Reader {
        feed,
        after: start.position,
        decoders: &group.decoders,
        batch_max,
        stop: group.stop.subscribe(),
        done,
        batches: batches_tx,
        spare,
        joins: Some(Joins {
            source: &*group.source,
            read_position: &group.read_position,
            requests,
            pending: Vec::new(),
        }),
    };
    std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new()
            .name("writ-read".to_owned())
            .spawn_scoped(scope, move || {
                group.schedule_this_thread("writ-read");
                reader.run()
            });
        if let Err(e) = spawned {
            return Exit::Failed(format!("cannot spawn the reader thread: {e}"));
        }
        // However this thread leaves (returning or unwinding), the reader stops, so the
        // scope can join it.
        let _done = StopOnDrop(done_tx);
        let mut applier = Applier {
            group,
            slots,
            joining: None,
            batch_max,
            position: start.position,
            ahead: start.ahead,
            published_at: Instant::now(),
            snapshotter,
        };
        let exit = applier.run(&batches, &spare_tx);
        // The reader may be blocked sending a batch into the full channel: dropping the
        // receiver here (the closure owns it, so unwinding drops it too) wakes it with an
        // error, and the scope can join it. Held by `run_live` instead, it would deadlock.
        drop(batches);
        drop(spare_tx);
        exit
    })
}

struct Applier<'a> {
    group: &'a Arc<Group>,
    slots: Vec<Slot>,
    /// The instance joining, between `Message::Join` and `Joined` or `JoinFailed`.
    joining: Option<Joining>,
    batch_max: usize,
    /// The end of the last batch applied: every live instance is there, but those
    /// loaded from a snapshot further on, until it reaches `ahead`.
    position: u64,
    /// The position of the read model loaded furthest on: nothing is published before
    /// the group reaches it.
    ahead: u64,
    published_at: Instant,
    /// Hands published snapshots to the snapshot thread, when snapshots are written.
    snapshotter: Option<Snapshotter>,
}

impl Applier<'_> {
    fn run(&mut self, batches: &Receiver<Message>, spare: &SyncSender<ReadBatch>) -> Exit {
        loop {
            match batches.recv() {
                // The reader stopped: told to stop.
                Err(_) => return Exit::Stopped,
                Ok(Message::Batch(mut batch)) => {
                    self.apply(&mut batch);
                    // Back to the reader to be read into; when it has a spare already (or
                    // is gone), `try_send` hands the batch back and it is freed here.
                    drop(spare.try_send(batch));
                }
                Ok(Message::Join(request)) => {
                    debug_assert!(self.joining.is_none(), "one join at a time");
                    self.joining = Some(Joining {
                        request,
                        failure: None,
                    });
                }
                Ok(Message::CatchUp(part)) => self.catch_up(part),
                Ok(Message::Joined) => self.joined(None),
                Ok(Message::JoinFailed(detail)) => self.joined(Some(detail)),
                Ok(Message::Failed(ReadFailure::Feed(FeedError::Closed))) => {
                    return Exit::SourceClosed;
                }
                Ok(Message::Failed(failure)) => {
                    return Exit::Failed(format!(
                        "reading the log after position {} failed: {failure}",
                        self.position
                    ));
                }
            }
        }
    }

    /// Applies a batch to every live read model (an event a projection panics on is parked
    /// by its [`Replay`](crate::Replay)), stops those that panic outside a projection's
    /// `decode` and `apply`, and publishes when caught up, when the interval has passed, or
    /// when one stopped.
    fn apply(&mut self, batch: &mut ReadBatch) {
        let Some(last) = batch.events.last() else {
            return;
        };
        let end = last.position;
        let mut stopped = false;
        for (index, slot) in self.slots.iter_mut().enumerate() {
            let Some(instance) = slot.instance.as_mut() else {
                continue;
            };
            let decoded = batch
                .decoded
                .get_mut(index)
                .filter(|decoded| decoded.generation == slot.generation);
            let events = &batch.events;
            let behind = self.ahead > self.position;
            let applied = catch_unwind(AssertUnwindSafe(|| match decoded {
                Some(Decoded {
                    panic: Some(message),
                    ..
                }) => Err(std::mem::take(message)),
                // Loaded from a snapshot past the group's position: only what follows it.
                _ if behind && instance.position() >= events[0].position => {
                    let steps = match decoded {
                        Some(Decoded {
                            steps: Some(steps), ..
                        }) => Some(&mut **steps),
                        _ => None,
                    };
                    instance.apply_decoded_after(events, steps);
                    Ok(())
                }
                Some(Decoded {
                    steps: Some(steps), ..
                }) => {
                    instance.apply_decoded(events, &mut **steps);
                    Ok(())
                }
                // Decoded for another instance (a join that failed) or not at all: decode
                // here.
                _ => {
                    instance.apply(events);
                    Ok(())
                }
            }))
            .unwrap_or_else(|panic| Err(panic_message(&*panic)));
            let model = &self.group.models[index];
            match applied {
                Ok(()) => {
                    let mut live = lock(&model.live);
                    // Rare: a counter handle per batch that parked is fine.
                    let parked = instance.stats().parked.saturating_sub(live.stats.parked);
                    if parked > 0 {
                        metrics::counter!(PROJECTION_EVENTS_PARKED, "model" => model.name)
                            .increment(parked);
                    }
                    live.stats.clone_from(instance.stats());
                    live.applied = instance.position();
                }
                Err(message) => {
                    // Its state may be half-changed: dropped; readers keep its last
                    // published snapshot.
                    slot.instance = None;
                    self.group.decoders.clear_if(index, slot.generation);
                    lock(&model.live).failure = Some(format!("the projection panicked: {message}"));
                    stopped = true;
                }
            }
        }
        self.position = end;
        // Switches in the batch start their rebuilds before it is published, so a reader
        // that waited for a switch's position sees its rebuild running (or done).
        for event in &batch.events {
            if event.stream.as_bytes().first() == Some(&b'$')
                && let Some(switch) = crate::switch::switch_of(event)
            {
                self.switch(event.position, &switch);
            }
        }
        // A batch shorter than asked for held everything durable when it was read.
        let caught_up = batch.events.len() < self.batch_max
            || self.position >= self.group.source.last_position();
        if caught_up
            || stopped
            || self.published_at.elapsed() >= self.group.options.catch_up_publish_interval
        {
            self.publish();
        }
    }

    /// Reacts to read model `switch.name`'s switch at `position` (see [`crate::switch`]):
    /// unless the read model started after it, cancels a rebuild running to another
    /// version and builds the named one beside the live one, unless it is live already.
    fn switch(&mut self, position: u64, switch: &crate::switch::ReadModelSwitched) {
        let Some(index) = self.group.models.iter().position(|m| m.name == switch.name) else {
            return;
        };
        let model = &self.group.models[index];
        if position <= model.spec.switched_at {
            return;
        }
        let version = switch.version;
        let running = self.group.running_rebuild(index);
        if let Some((generation, root)) = running
            && root.version != version
        {
            tracing::info!(
                read_model = model.name,
                version,
                position,
                cancelled = root.version,
                "a switch cancels the rebuild running to another version"
            );
            self.group
                .end_rebuild(index, generation, RebuildStatus::Cancelled { root });
        }
        let live = self.slots[index].projection.root().version;
        if live == version || running.is_some_and(|(_, root)| root.version == version) {
            return;
        }
        let Some(projection) = model.spec.projection_of(version) else {
            tracing::warn!(
                read_model = model.name,
                version,
                position,
                "the log switches this read model to a projection version this build cannot build; it stays at version {live}"
            );
            return;
        };
        match self.group.rebuild(index, projection) {
            Ok(_) => tracing::info!(
                read_model = model.name,
                version,
                position,
                "switching: the new version is built beside the live one"
            ),
            Err(e) => tracing::warn!(
                read_model = model.name,
                version,
                position,
                "the switch's rebuild did not start: {e}"
            ),
        }
    }

    /// Applies part of the catch-up to the joining instance.
    fn catch_up(&mut self, mut part: CatchUp) {
        let Some(joining) = self.joining.as_mut().filter(|j| j.failure.is_none()) else {
            return;
        };
        let instance = &mut joining.request.instance;
        let applied = catch_unwind(AssertUnwindSafe(|| match part.steps.as_mut() {
            Some(steps) => instance.apply_decoded(&part.events, &mut **steps),
            None => instance.apply(&part.events),
        }));
        if let Err(panic) = applied {
            joining.failure = Some(format!(
                "the projection panicked: {}",
                panic_message(&*panic)
            ));
        }
    }

    /// Ends the join: swaps the joining instance in for its read model, at the batch
    /// boundary the reader put the join at, and publishes at once; or, on a `failure`
    /// (the reader's, or a panic in the catch-up), leaves the live instance.
    fn joined(&mut self, failure: Option<String>) {
        let Some(Joining {
            request,
            failure: panicked,
        }) = self.joining.take()
        else {
            return;
        };
        let JoinRequest {
            index,
            generation,
            projection,
            instance,
            reply,
        } = request;
        let root = projection.root();
        let cancelled = (self.group.running_rebuild(index).map(|(g, _)| g) != Some(generation))
            .then(|| "cancelled".to_owned());
        if let Some(detail) = failure.or(panicked).or(cancelled) {
            // The reader may decode for the joining instance by now: back to the live one.
            // Batches it decoded meanwhile are decoded here instead (`apply`).
            self.group.decoders.set(index, self.slots[index].decoder());
            self.group
                .end_rebuild(index, generation, RebuildStatus::Failed { root, detail });
            return;
        }
        assert_eq!(
            instance.position(),
            self.position,
            "a joining instance is caught up to the batch boundary it joins at"
        );
        {
            let mut live = lock(&self.group.models[index].live);
            live.projection = Arc::clone(&projection);
            live.stats.clone_from(instance.stats());
            live.applied = instance.position();
            live.failure = None;
        }
        let slot = &mut self.slots[index];
        let replaced = slot.instance.replace(instance);
        slot.generation = generation;
        slot.projection = projection;
        self.publish();
        self.group.end_rebuild(
            index,
            generation,
            RebuildStatus::Switched {
                root,
                position: self.position,
            },
        );
        if let Some(replaced) = replaced {
            // If the rebuild's thread is gone, it is freed here after all.
            let _ = reply.try_send(replaced);
        }
    }

    /// Publishes every read model's snapshot at `position` (a stopped one keeps its last),
    /// unless a read model loaded from a snapshot is still ahead of it.
    fn publish(&mut self) {
        let position = self.position;
        if position < self.ahead {
            return;
        }
        let models: Box<[Published]> = {
            let previous = self.group.current.load();
            self.slots
                .iter()
                .zip(previous.models.iter())
                .map(|(slot, before)| match &slot.instance {
                    Some(instance) => {
                        assert_eq!(
                            instance.position(),
                            position,
                            "every live read model is at the group's position"
                        );
                        Published {
                            name: before.name,
                            root: instance.root(),
                            snapshot: instance.snapshot(),
                            position,
                            stopped: false,
                        }
                    }
                    None => Published {
                        stopped: true,
                        ..before.clone()
                    },
                })
                .collect()
        };
        let snapshots = Arc::new(Snapshots { position, models });
        let previous = self.group.current.swap(Arc::clone(&snapshots));
        debug_assert!(previous.position <= position, "positions never go back");
        self.group.progress.send_modify(|p| p.position = position);
        self.published_at = Instant::now();
        if let Some(snapshotter) = &mut self.snapshotter {
            snapshotter.published(&snapshots);
        }
        // The old states may be freed here, after readers were moved on.
        drop(previous);
    }
}

fn spawn_rebuild(
    group: &Arc<Group>,
    index: usize,
    generation: u64,
    projection: Arc<dyn AnyProjection>,
) -> std::io::Result<JoinHandle<()>> {
    let group = Arc::clone(group);
    std::thread::Builder::new()
        .name(format!("writ-rebuild-{}", group.models[index].name))
        .spawn(move || {
            group.schedule_this_thread("writ-rebuild");
            let root = projection.root();
            let ended = catch_unwind(AssertUnwindSafe(|| {
                rebuild(&group, index, generation, projection)
            }))
            .unwrap_or_else(|panic| {
                Err(format!(
                    "the projection panicked: {}",
                    panic_message(&*panic)
                ))
            });
            if let Err(detail) = ended {
                // A no-op when it ended already (cancelled, or ended by the join).
                group.end_rebuild(index, generation, RebuildStatus::Failed { root, detail });
            }
        })
}

/// A rebuild's thread: replays the source from position 1 into a new instance, fed by a
/// reader of its own (`writ-rbread-{name}`), until it has caught up with the live reader
/// (or with the source); then hands the instance to the live reader to join, and frees
/// the instance it replaced.
fn rebuild(
    group: &Group,
    index: usize,
    generation: u64,
    projection: Arc<dyn AnyProjection>,
) -> Result<(), String> {
    let batch_max = group.options.batch_events_max.max(1);
    let decoders = DecoderTable::new(vec![Some(Decoder {
        generation,
        projection: Arc::clone(&projection),
    })]);
    let (batches_tx, batches) = sync_channel::<Message>(READ_AHEAD_BATCHES);
    let (spare_tx, spare) = sync_channel::<ReadBatch>(SPARE_BATCHES);
    let (done_tx, done) = watch::channel(false);
    let reader = Reader {
        feed: group.source.subscribe(1),
        after: 0,
        decoders: &decoders,
        batch_max,
        stop: group.stop.subscribe(),
        done,
        batches: batches_tx,
        spare,
        joins: None,
    };
    let instance = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name(format!("writ-rbread-{}", group.models[index].name))
            .spawn_scoped(scope, move || {
                group.schedule_this_thread("writ-rbread");
                reader.run()
            })
            .map_err(|e| format!("cannot spawn the reader thread: {e}"))?;
        let _done = StopOnDrop(done_tx);
        let mut instance = projection.start();
        let mut handover = Handover::new(
            group.read_position.load(Ordering::Acquire),
            JOIN_BAND_BATCHES.saturating_mul(batch_max as u64),
        );
        let caught_up = loop {
            let mut batch = match batches.recv() {
                Err(_) => break Err("stopped".to_owned()),
                Ok(Message::Batch(batch)) => batch,
                Ok(Message::Failed(ReadFailure::Feed(FeedError::Closed))) => {
                    break Err("the event source shut down".to_owned());
                }
                Ok(Message::Failed(failure)) => {
                    break Err(format!(
                        "reading the log after position {} failed: {failure}",
                        instance.position()
                    ));
                }
                Ok(
                    Message::Join(_)
                    | Message::CatchUp(_)
                    | Message::Joined
                    | Message::JoinFailed(_),
                ) => unreachable!("a rebuild's reader takes no joins"),
            };
            let decoded = &mut batch.decoded[0];
            if let Some(message) = decoded.panic.take() {
                break Err(format!("the projection panicked: {message}"));
            }
            match decoded.steps.as_mut() {
                Some(steps) => instance.apply_decoded(&batch.events, &mut **steps),
                None => instance.apply(&batch.events),
            }
            let short = batch.events.len() < batch_max;
            drop(spare_tx.try_send(batch));
            if !group.rebuild_progress(index, generation, instance.position()) {
                break Err("cancelled".to_owned());
            }
            let live = group.read_position.load(Ordering::Acquire);
            if handover.ready(instance.position(), live, short) {
                break Ok(());
            }
        };
        drop(batches);
        drop(spare_tx);
        caught_up.map(|()| instance)
    })?;
    let (reply, replaced) = sync_channel(1);
    let request = JoinRequest {
        index,
        generation,
        projection,
        instance,
        reply,
    };
    let sent = lock(&group.control)
        .joins
        .as_ref()
        .is_some_and(|joins| joins.send(request).is_ok());
    if !sent {
        return Err("the read models stopped before it could join them".to_owned());
    }
    match replaced.recv() {
        Ok(replaced) => {
            drop(replaced);
            Ok(())
        }
        // Ended by the join already (switched in place of a stopped instance, or failed),
        // or the group stopped with the request.
        Err(_) => Err("the read models stopped before it could join them".to_owned()),
    }
}

/// When a rebuilt instance asks to join the live read models: once a batch leaves it
///
/// - caught up with the source (its batch was not full), or
/// - within `band` events of the live reader, or
/// - past where the live reader was when the rebuild started, and no closer to the live
///   reader than after the batch before.
///
/// The last rule makes every rebuild end. A rebuild that had to reach the live reader
/// would chase it for as long as writes come in about as fast as it replays (as in a
/// debug build with a writer in a tight loop, or on a loaded machine): both read the same
/// log. Once it has replayed everything that was there when it started and stops gaining,
/// waiting cannot help, so it hands the rest to the live reader, and the live read models
/// pause while the catch-up (what was written during the rebuild, at most) is applied to
/// it. When the rebuild is much faster than the writes, as it normally is, the gap shrinks
/// batch after batch and the band ends it.
#[derive(Debug)]
struct Handover {
    /// The live reader's position when the rebuild started.
    start: u64,
    band: u64,
    /// The gap after the batch before.
    gap: Option<u64>,
}

impl Handover {
    fn new(start: u64, band: u64) -> Self {
        Self {
            start,
            band,
            gap: None,
        }
    }

    /// Whether an instance at `position`, with the live reader at `live`, asks to join
    /// now; `short` when its last batch was not full.
    fn ready(&mut self, position: u64, live: u64, short: bool) -> bool {
        let gap = live.saturating_sub(position);
        let stalled = position >= self.start && self.gap.is_some_and(|before| gap >= before);
        self.gap = Some(gap);
        short || gap <= self.band || stalled
    }
}

#[cfg(test)]
mod tests {
    use super::Handover;

    #[test]
    fn a_rebuild_hands_over_within_the_band_or_once_it_stops_gaining() {
        // Gaining on the live reader: it asks only within the band.
        let mut gaining = Handover::new(1_000, 64);
        assert!(!gaining.ready(500, 2_000, false));
        assert!(!gaining.ready(1_200, 2_100, false));
        assert!(!gaining.ready(1_900, 2_200, false));
        assert!(gaining.ready(2_150, 2_210, false));
        // A short batch: caught up with the source.
        assert!(Handover::new(1_000, 64).ready(10, 5_000, true));
        // Not gaining before it replayed what was there at its start: it goes on.
        let mut slow_start = Handover::new(1_000, 64);
        assert!(!slow_start.ready(100, 2_000, false));
        assert!(!slow_start.ready(200, 2_200, false));
        // Past the start, not gaining: it asks, whatever the gap.
        let mut chasing = Handover::new(1_000, 64);
        assert!(!chasing.ready(1_100, 2_000, false));
        assert!(chasing.ready(1_200, 2_100, false));
    }
}
