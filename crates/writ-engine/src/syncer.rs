//! The syncer: appends the writer's records to the journal, syncs once per batch, then
//! indexes, publishes the new durable end and answers. The writer does the same itself for
//! a small batch when the syncer is idle and no command waits ([`SyncPath::hand_over`]).
//!
//! Only after the `fdatasync` that covers a record does anything about its command become
//! visible: the dedupe index marks it durable, readers see its events, its client gets
//! `202` and its outcome. Everything the syncer finds waiting is written as one frame (the
//! group commit); a unit (a command and the commands its events made processes issue) is
//! not split across frames unless it is larger than a frame can be.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use writ_log::{AppendError, Log};

use crate::options::EngineOptions;
use crate::record::Origin;
use crate::shared::{PanicGuard, Shared};
use crate::types::CommandState;
use crate::writer::{Batch, Done, SyncerMsg};

/// The journal and what the syncer keeps beside it; behind [`SyncPath::journal`]'s lock.
pub(crate) struct Journal {
    log: Log,
    /// Rolls into unfilled segments already counted in the metric.
    unfilled_counted: u64,
}

/// How the writer's batches reach the disk: handed to the syncer thread (which syncs one
/// batch while the writer decides the next), or, when the syncer has nothing to do and the
/// batch is small, synced by the writer itself, which saves a lone command the hand-off
/// between the two threads (a wake-up and a context switch each way).
pub(crate) struct SyncPath {
    journal: Mutex<Journal>,
    /// Batches handed to the syncer and not yet published. Only the writer hands batches
    /// over, so when this is 0 the syncer holds no batch and will take none until the
    /// writer sends one: the writer may append to the journal itself without reordering.
    in_flight: AtomicUsize,
    tx: SyncSender<SyncerMsg>,
    /// Emptied buffers for the writer's next batches (see [`Spare`]).
    spare: Mutex<Spare>,
    /// Largest buffers kept in `spare` (a batch's bytes, a batch's records): a batch
    /// larger than batches usually are (a unit with large events, many timers due at
    /// once) is freed, not kept.
    retain: (usize, usize),
}

/// A batch's two buffers, its records and what to do once they are durable, once emptied:
/// each grows to the size batches have, once, instead of being allocated (and grown by
/// copying) on one thread and freed on the other for every batch. A batch's `Vec<Done>`
/// is tens of KiB, which the allocator would otherwise take fresh from the system (and
/// zero) every time.
#[derive(Default)]
struct Spare {
    bytes: Vec<Vec<u8>>,
    dones: Vec<Vec<Done>>,
}

/// Most emptied buffers of each kind kept for reuse (each as large as a batch has been).
const SPARE_BUFFERS_MAX: usize = 4;

/// Most records in a batch the writer syncs itself when the syncer is idle. Beyond it the
/// writer hands the batch over and goes on deciding, so that deciding and syncing overlap
/// under load. Small: a lone command, or the few that came in during the last sync.
const SELF_SYNC_RECORDS_MAX: usize = 16;

impl SyncPath {
    pub(crate) fn new(log: Log, tx: SyncSender<SyncerMsg>, options: &EngineOptions) -> Self {
        Self {
            journal: Mutex::new(Journal {
                log,
                unfilled_counted: 0,
            }),
            in_flight: AtomicUsize::new(0),
            tx,
            spare: Mutex::new(Spare::default()),
            retain: (options.batch_bytes_max, options.batch_records_max),
        }
    }

    /// Keeps emptied buffers of up to `bytes` bytes and `records` records for reuse,
    /// rather than a live batch's bounds: a replay hands over batches of several
    /// `batch_bytes_max` each, which would otherwise be allocated (and their fresh pages
    /// faulted in) anew for every batch. At most [`SPARE_BUFFERS_MAX`] of each are kept.
    pub(crate) fn retaining(mut self, bytes: usize, records: usize) -> Self {
        self.retain = (bytes, records);
        self
    }

    /// An empty buffer for a batch's records: an emptied one when there is one.
    pub(crate) fn buffer(&self) -> Vec<u8> {
        self.spare()
            .bytes
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(64 * 1024))
    }

    /// An empty list for a batch's [`Done`]s: an emptied one when there is one.
    pub(crate) fn done_buffer(&self) -> Vec<Done> {
        self.spare().dones.pop().unwrap_or_default()
    }

    fn spare(&self) -> std::sync::MutexGuard<'_, Spare> {
        self.spare
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes back the record buffers of `batches` once they are appended.
    fn recycle(&self, batches: &mut [Batch]) {
        let mut spare = self.spare();
        for batch in batches {
            let capacity = batch.bytes.capacity();
            if spare.bytes.len() < SPARE_BUFFERS_MAX && capacity > 0 && capacity <= self.retain.0 {
                let mut bytes = std::mem::take(&mut batch.bytes);
                bytes.clear();
                spare.bytes.push(bytes);
            }
        }
    }

    /// Takes back an emptied list of [`Done`]s.
    fn recycle_dones(&self, dones: Vec<Done>) {
        debug_assert!(dones.is_empty());
        let mut spare = self.spare();
        let capacity = dones.capacity();
        if spare.dones.len() < SPARE_BUFFERS_MAX && capacity > 0 && capacity <= self.retain.1 {
            spare.dones.push(dones);
        }
    }

    /// Hands the records decided so far in `batch` over to be made durable (nothing when
    /// there are none), leaving it empty, with buffers kept from earlier batches.
    pub(crate) fn flush(&self, shared: &Shared, batch: &mut Batch) {
        if batch.done.is_empty() {
            return;
        }
        let full = std::mem::replace(
            batch,
            Batch {
                bytes: self.buffer(),
                done: self.done_buffer(),
            },
        );
        self.hand_over(shared, full);
    }

    /// Makes `batch` durable and answers it: at once on this thread when the syncer is
    /// idle, the batch small and no command is waiting to be decided, else through the
    /// syncer. With commands waiting, a sync here would stop the writer for its whole
    /// length (hundreds of microseconds) while they queue up; handed over, the writer goes
    /// on deciding them while the syncer syncs.
    fn hand_over(&self, shared: &Shared, batch: Batch) {
        if batch.done.is_empty() {
            return;
        }
        if batch.done.len() <= SELF_SYNC_RECORDS_MAX
            && self.in_flight.load(Ordering::Acquire) == 0
            && shared.queued.load(Ordering::Acquire) == 0
            && let Ok(mut journal) = self.journal.try_lock()
        {
            shared.stats.writer_syncs.fetch_add(1, Ordering::Relaxed);
            journal.sync(shared, &mut vec![batch], self);
            return;
        }
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        if self.tx.send(SyncerMsg::Batch(batch)).is_err() {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            shared.poison("internal error: the syncer thread is gone".to_owned());
        }
    }

    /// Whether the syncer holds no batch: everything handed over is published and the
    /// syncer has let go of the journal, so the writer's next small batch is synced on
    /// its own thread. (`durable` moves before this: the syncer publishes, then counts.)
    pub(crate) fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    /// Tells the syncer to stop once it has synced what it was handed.
    pub(crate) fn shut_down(&self) {
        let _ = self.tx.send(SyncerMsg::Shutdown);
    }
}

pub(crate) fn run_syncer(shared: Arc<Shared>, path: Arc<SyncPath>, rx: Receiver<SyncerMsg>) {
    let _guard = PanicGuard(&shared, "syncer");
    let bytes_max = shared.options.batch_bytes_max;
    let mut batches: Vec<Batch> = Vec::new();
    let mut shutdown = false;
    while !shutdown {
        let mut bytes = 0;
        match rx.recv() {
            Ok(SyncerMsg::Batch(b)) => {
                bytes += b.bytes.len();
                batches.push(b);
            }
            Ok(SyncerMsg::Shutdown) | Err(_) => shutdown = true,
        }
        while !shutdown && bytes < bytes_max {
            match rx.try_recv() {
                Ok(SyncerMsg::Batch(b)) => {
                    bytes += b.bytes.len();
                    batches.push(b);
                }
                Ok(SyncerMsg::Shutdown) | Err(TryRecvError::Disconnected) => shutdown = true,
                Err(TryRecvError::Empty) => break,
            }
        }
        if batches.is_empty() {
            continue;
        }
        let handed = batches.len();
        path.journal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .sync(&shared, &mut batches, &path);
        path.in_flight.fetch_sub(handed, Ordering::AcqRel);
    }
}

impl Journal {
    /// Appends and commits the batches, then publishes and answers what became durable;
    /// on a failure, poisons the engine and refuses the rest.
    fn sync(&mut self, shared: &Shared, batches: &mut Vec<Batch>, path: &SyncPath) {
        let log = &mut self.log;
        let sync_started = Instant::now();
        let first_seq = log.durable_seq();
        let appended = append(log, batches);
        path.recycle(batches);
        let metrics = &shared.metrics;
        metrics
            .journal_sync_seconds
            .record(sync_started.elapsed().as_secs_f64());
        metrics
            .journal_batch_records
            .record((log.durable_seq() - first_seq) as f64);
        let rolls = log.unfilled_rolls();
        if rolls > self.unfilled_counted {
            metrics
                .journal_unfilled_rolls
                .increment(rolls - self.unfilled_counted);
            self.unfilled_counted = rolls;
        }
        // Whatever became durable is published and answered, also when a later part of
        // the batch failed (a unit too large for one frame took several syncs).
        let mut failed = publish(shared, log, batches, path);
        if let Err(detail) = appended {
            shared.poison(detail);
            let reason = shared.unavailable();
            for done in failed.drain(..) {
                shared.dedupe.release(done.status.id);
                if let Some(reply) = done.reply {
                    let _ = reply.send(Err(reason.clone()));
                }
            }
            shared.waiters.wake_all();
        }
        debug_assert!(failed.is_empty());
    }
}

/// Appends every record and commits. A unit that does not fit in what is left of the
/// pending frame starts a new frame (one more sync), unless it would not fit in any frame.
/// On an error, the records before `log.durable_seq()` are durable all the same.
fn append(log: &mut Log, batches: &[Batch]) -> Result<(), String> {
    if log.is_poisoned() {
        return Err("the journal is poisoned".to_owned());
    }
    for batch in batches {
        let mut start = 0;
        for (i, done) in batch.done.iter().enumerate() {
            if done.unit_start && log.pending_records() > 0 {
                let unit = batch.done[i..]
                    .iter()
                    .enumerate()
                    .take_while(|(j, d)| *j == 0 || !d.unit_start)
                    .scan(start, |from, (_, d)| {
                        let len = d.end - *from;
                        *from = d.end;
                        Some(len)
                    });
                if !log.fits(unit) {
                    log.commit().map_err(|e| format!("journal: {e}"))?;
                }
            }
            let record = &batch.bytes[start..done.end];
            start = done.end;
            let seq = match log.append(record) {
                Ok(seq) => seq,
                Err(AppendError::BatchFull { .. }) => {
                    log.commit().map_err(|e| format!("journal: {e}"))?;
                    log.append(record).map_err(|e| format!("journal: {e}"))?
                }
                Err(e) => return Err(format!("journal: {e}")),
            };
            // The invariant that lets a command's outcome be found by its sequence number.
            assert_eq!(
                seq, done.status.sequence,
                "command n must be journal record n"
            );
        }
    }
    log.commit().map_err(|e| format!("journal: {e}"))?;
    Ok(())
}

/// After a sync: extend the indexes, publish the new end, mark the ids durable, answer,
/// wake waiters, for every record before `log.durable_seq()`; returns the others (there
/// are some only when a sync failed).
fn publish(shared: &Shared, log: &Log, batches: &mut Vec<Batch>, path: &SyncPath) -> Vec<Done> {
    let durable = log.durable_seq();
    // All in the first batch's list (usually the only one), the others' emptied ones kept.
    let mut dones = Vec::new();
    for mut batch in batches.drain(..) {
        if dones.is_empty() {
            std::mem::swap(&mut dones, &mut batch.done);
        } else {
            dones.append(&mut batch.done);
        }
        if batch.done.capacity() > 0 {
            path.recycle_dones(batch.done);
        }
    }
    let failed = dones.split_off(dones.partition_point(|d| d.status.sequence < durable));
    if dones.is_empty() {
        return failed;
    }
    let store = &shared.store;
    let mut last_position = store.last_position();
    store.index(|index| {
        for done in &dones {
            index.push(
                done.first_position,
                done.status
                    .events
                    .iter()
                    .map(|e| (e.stream.as_str(), e.version)),
            );
            if let Some(e) = done.status.events.last() {
                last_position = e.position;
            }
        }
        debug_assert_eq!(index.commits(), durable);
    });
    store.publish(durable, last_position);
    let stats = &shared.stats;
    stats.batches.fetch_add(1, Ordering::Relaxed);
    let (mut succeeded, mut rejected, mut failures, mut clients) = (0, 0, 0, 0);
    for done in &dones {
        shared
            .dedupe
            .mark_durable(done.status.id, done.status.sequence);
        match done.status.state {
            CommandState::Succeeded => succeeded += 1,
            CommandState::Rejected { .. } => rejected += 1,
            _ => failures += 1,
        }
        if done.status.origin == Origin::Client {
            clients += 1;
        }
    }
    shared.dedupe.marked_through(durable);
    stats.succeeded.fetch_add(succeeded, Ordering::Relaxed);
    stats.rejected.fetch_add(rejected, Ordering::Relaxed);
    stats.failed.fetch_add(failures, Ordering::Relaxed);
    stats
        .commands_accepted
        .fetch_add(clients, Ordering::Relaxed);
    let metrics = &shared.metrics;
    metrics.succeeded.increment(succeeded);
    metrics.rejected.increment(rejected);
    metrics.failed.increment(failures);
    metrics.commands_accepted.increment(clients);
    // Clients first (waiters, then the submitters' answers), read models after.
    shared.waiters.wake(dones.iter().map(|d| &d.status.id));
    for done in dones.drain(..) {
        if let Some(reply) = done.reply {
            let _ = reply.send(Ok(done.status));
        }
    }
    path.recycle_dones(dones);
    store.notify_after_caller();
    failed
}
