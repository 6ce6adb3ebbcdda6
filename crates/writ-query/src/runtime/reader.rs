//! The reader side of the runtime's threads: a [`Reader`] follows a feed and decodes each
//! batch for every read model of a [`DecoderTable`], and the live one takes rebuilt
//! instances' join requests and reads their catch-up ([`Joins`]). What it hands the
//! applying thread, in order, are [`Message`]s.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, watch};
use writ_domain::RecordedEvent;

use crate::runtime::erased::{AnyProjection, AnySteps, Instance};
use crate::source::{EventFeed, EventSource, FeedError};

/// Batches read ahead of the one being applied. Two keep the applying thread busy while
/// bounding the memory to three batches (and the one spare below, and the one being read).
pub(crate) const READ_AHEAD_BATCHES: usize = 2;

/// Applied batches handed back to the reader thread, which reads the next batch into them
/// ([`EventFeed::next_batch_into`]) and decodes into their decoded vectors: their strings
/// and buffers are reused, so a replay allocates nothing per event to read the log, and
/// none of it is freed on the applying thread, the one that sets the pace. One is enough:
/// the reader takes it back before the applier is done with the next.
pub(crate) const SPARE_BATCHES: usize = 1;

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks leaves nothing half-done (each critical section
    // only swaps values), so a poisoned lock is still consistent.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) use crate::projection::panic_message;

/// What the live reader decodes each read model's events with: the live instance's
/// projection, or a joining one's, or nothing for a stopped read model. The reader copies
/// it when `epoch` moves, which is rare (a stop, a join), so a batch costs no lock.
pub(crate) struct DecoderTable {
    entries: Mutex<Vec<Option<Decoder>>>,
    epoch: AtomicU64,
}

#[derive(Clone)]
pub(crate) struct Decoder {
    /// The instance the decoded events are for.
    pub(crate) generation: u64,
    pub(crate) projection: Arc<dyn AnyProjection>,
}

impl DecoderTable {
    pub(crate) fn new(entries: Vec<Option<Decoder>>) -> Self {
        Self {
            entries: Mutex::new(entries),
            epoch: AtomicU64::new(1),
        }
    }

    pub(crate) fn set(&self, index: usize, decoder: Option<Decoder>) {
        let mut entries = lock(&self.entries);
        entries[index] = decoder;
        self.epoch.fetch_add(1, Ordering::Release);
    }

    /// Stops decoding for read model `index` if its decoder is still instance
    /// `generation`'s.
    pub(crate) fn clear_if(&self, index: usize, generation: u64) {
        let mut entries = lock(&self.entries);
        if entries[index]
            .as_ref()
            .is_some_and(|d| d.generation == generation)
        {
            entries[index] = None;
            self.epoch.fetch_add(1, Ordering::Release);
        }
    }

    /// Brings the reader's copy up to date.
    fn refresh(&self, copy: &mut Vec<Option<Decoder>>, seen: &mut u64) {
        let epoch = self.epoch.load(Ordering::Acquire);
        if epoch != *seen {
            copy.clone_from(&lock(&self.entries));
            *seen = epoch;
        }
    }
}

/// What a reader hands its applying thread, in order.
///
/// A join is a run of messages between two batches: `Join`, then the `CatchUp`s of the
/// events from the joining instance's position to the end of the batch before, then
/// `Joined`, or `JoinFailed` if the reader could not read or decode them. Streamed through
/// the bounded channel, a catch-up of any length holds a few batches of memory at most.
pub(crate) enum Message {
    /// Events read from the log, decoded for every read model.
    Batch(ReadBatch),
    /// A rebuilt instance starts joining at the end of the batch before.
    Join(JoinRequest),
    /// Events past the joining instance's position, decoded for it.
    CatchUp(CatchUp),
    /// The catch-up is complete: the joining instance replaces its read model's, and the
    /// batches that follow are decoded for it.
    Joined,
    /// The catch-up could not be read or decoded: the join fails, the live instance stays.
    JoinFailed(String),
    /// The reader stopped on an error.
    Failed(ReadFailure),
}

/// Events read from the log and, per read model (by index), what its projection's
/// [`decode`](crate::Projection::decode) made of them.
#[derive(Default)]
pub(crate) struct ReadBatch {
    pub(crate) events: Vec<RecordedEvent>,
    pub(crate) decoded: Vec<Decoded>,
}

/// One read model's decoded events of a batch.
#[derive(Default)]
pub(crate) struct Decoded {
    /// The instance they were decoded for; 0 for none (the read model stopped).
    pub(crate) generation: u64,
    /// A `Vec<Step<P::Decoded>>`, one step per event, refilled batch after batch.
    pub(crate) steps: Option<AnySteps>,
    /// The projection panicked decoding the batch: the instance stops.
    pub(crate) panic: Option<String>,
}

/// Events past a joining instance's position, decoded for it.
pub(crate) struct CatchUp {
    pub(crate) events: Vec<RecordedEvent>,
    pub(crate) steps: Option<AnySteps>,
}

/// A rebuilt instance that has caught up, sent to the live reader to join the group.
pub(crate) struct JoinRequest {
    pub(crate) index: usize,
    pub(crate) generation: u64,
    pub(crate) projection: Arc<dyn AnyProjection>,
    pub(crate) instance: Box<dyn Instance>,
    /// Receives the instance it replaces, so that its state is freed on the rebuild's
    /// thread rather than on the applying thread.
    pub(crate) reply: SyncSender<Box<dyn Instance>>,
}

pub(crate) enum ReadFailure {
    Feed(FeedError),
    Runtime(std::io::Error),
}

impl std::fmt::Display for ReadFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Feed(e) => e.fmt(f),
            Self::Runtime(e) => write!(f, "cannot build the reader's runtime: {e}"),
        }
    }
}

/// Sets the watch on drop: however the applying side leaves, its reader stops.
pub(crate) struct StopOnDrop(pub(crate) watch::Sender<bool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.send_replace(true);
    }
}

/// A reader thread: the feed's batches, decoded for every read model of `decoders`, into
/// the channel, each read into a spare batch when the applying thread has handed one back,
/// until told to stop, the applying thread is done, or the feed ends. The live reader also
/// takes join requests.
pub(crate) struct Reader<'a> {
    pub(crate) feed: Box<dyn EventFeed>,
    /// The position the feed starts after: the read models' least position at start.
    pub(crate) after: u64,
    pub(crate) decoders: &'a DecoderTable,
    pub(crate) batch_max: usize,
    pub(crate) stop: watch::Receiver<bool>,
    pub(crate) done: watch::Receiver<bool>,
    pub(crate) batches: SyncSender<Message>,
    pub(crate) spare: Receiver<ReadBatch>,
    pub(crate) joins: Option<Joins<'a>>,
}

/// The live reader's side of joins.
pub(crate) struct Joins<'a> {
    pub(crate) source: &'a dyn EventSource,
    /// Where the reader is: the end of the last batch it handed over.
    pub(crate) read_position: &'a AtomicU64,
    pub(crate) requests: mpsc::UnboundedReceiver<JoinRequest>,
    /// Requests from instances ahead of the reader, until it reaches them.
    pub(crate) pending: Vec<JoinRequest>,
}

/// What woke the reader.
enum Wake {
    Stop,
    Join(JoinRequest),
    Read(Result<(), FeedError>),
}

impl Reader<'_> {
    pub(crate) fn run(self) {
        let Reader {
            mut feed,
            after,
            decoders,
            batch_max,
            mut stop,
            mut done,
            batches,
            spare,
            mut joins,
        } = self;
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = batches.send(Message::Failed(ReadFailure::Runtime(e)));
                return;
            }
        };
        let mut copy = Vec::new();
        let mut seen = 0;
        // The end of the last batch handed over.
        let mut read_to = after;
        let mut next: Option<ReadBatch> = None;
        loop {
            if let Some(joins) = &mut joins
                && !joins.send_ready(&rt, read_to, batch_max, &mut stop, decoders, &batches)
            {
                return;
            }
            let batch = next.get_or_insert_with(|| spare.try_recv().unwrap_or_default());
            let requests = joins.as_mut().map(|joins| &mut joins.requests);
            let wake = rt.block_on(async {
                tokio::select! {
                    biased;
                    _ = stop.wait_for(|stop| *stop) => Wake::Stop,
                    _ = done.wait_for(|done| *done) => Wake::Stop,
                    Some(request) = next_request(requests) => Wake::Join(request),
                    read = feed.next_batch_into(batch_max, &mut batch.events) => Wake::Read(read),
                }
            });
            match wake {
                Wake::Stop => return,
                Wake::Join(request) => {
                    // The read was dropped (feeds are cancel-safe); the batch is read into
                    // again next time.
                    if let Some(joins) = &mut joins {
                        joins.pending.push(request);
                    }
                    continue;
                }
                Wake::Read(Err(e)) => {
                    let _ = batches.send(Message::Failed(ReadFailure::Feed(e)));
                    return;
                }
                Wake::Read(Ok(())) => {}
            }
            let mut batch = next.take().expect("filled above");
            let Some(last) = batch.events.last() else {
                // A feed always delivers at least one event; read again if not.
                next = Some(batch);
                continue;
            };
            read_to = last.position;
            decoders.refresh(&mut copy, &mut seen);
            decode(&copy, decoders, &mut batch);
            if let Some(joins) = &joins {
                joins.read_position.store(read_to, Ordering::Release);
            }
            if batches.send(Message::Batch(batch)).is_err() {
                return;
            }
        }
    }
}

async fn next_request(
    requests: Option<&mut mpsc::UnboundedReceiver<JoinRequest>>,
) -> Option<JoinRequest> {
    match requests {
        Some(requests) => requests.recv().await,
        None => std::future::pending().await,
    }
}

/// Decodes `batch` for each read model of `decoders`, each in turn; a projection that
/// panics is marked in its entry and decoded for no more.
fn decode(decoders: &[Option<Decoder>], table: &DecoderTable, batch: &mut ReadBatch) {
    let ReadBatch { events, decoded } = batch;
    decoded.resize_with(decoders.len(), Decoded::default);
    for (index, (decoder, entry)) in decoders.iter().zip(decoded.iter_mut()).enumerate() {
        entry.panic = None;
        let Some(decoder) = decoder else {
            entry.generation = 0;
            continue;
        };
        entry.generation = decoder.generation;
        // A panic here is the projection's, as in `apply`: it stops the read model.
        let decoding = catch_unwind(AssertUnwindSafe(|| {
            decoder.projection.decode(events, &mut entry.steps);
        }));
        if let Err(panic) = decoding {
            entry.panic = Some(panic_message(&*panic));
            table.clear_if(index, decoder.generation);
        }
    }
}

impl Joins<'_> {
    /// Sends every pending join whose instance the reader has reached (`read_to`), each
    /// followed by the events from the instance's position to `read_to`, read again and
    /// decoded for it, and decodes for the joining instance from then on. `false` when
    /// the reader must stop.
    fn send_ready(
        &mut self,
        rt: &tokio::runtime::Runtime,
        read_to: u64,
        batch_max: usize,
        stop: &mut watch::Receiver<bool>,
        decoders: &DecoderTable,
        batches: &SyncSender<Message>,
    ) -> bool {
        let ready: Vec<JoinRequest> = self
            .pending
            .extract_if(.., |request| request.instance.position() <= read_to)
            .collect();
        for request in ready {
            let (index, generation) = (request.index, request.generation);
            let projection = Arc::clone(&request.projection);
            let from = request.instance.position();
            if batches.send(Message::Join(request)).is_err() {
                return false;
            }
            let read = self.catch_up(rt, &*projection, (from, read_to), batch_max, stop, batches);
            match read {
                CatchUpEnd::Complete => {}
                CatchUpEnd::Stop => return false,
                CatchUpEnd::Failed(detail) => {
                    if batches.send(Message::JoinFailed(detail)).is_err() {
                        return false;
                    }
                    continue;
                }
            }
            decoders.set(
                index,
                Some(Decoder {
                    generation,
                    projection,
                }),
            );
            if batches.send(Message::Joined).is_err() {
                return false;
            }
        }
        true
    }

    /// Reads the events after `from` up to `to`, decodes them for `projection`, and sends
    /// them in parts of at most a batch.
    fn catch_up(
        &self,
        rt: &tokio::runtime::Runtime,
        projection: &dyn AnyProjection,
        (from, to): (u64, u64),
        batch_max: usize,
        stop: &mut watch::Receiver<bool>,
        batches: &SyncSender<Message>,
    ) -> CatchUpEnd {
        let mut at = from;
        if at == to {
            return CatchUpEnd::Complete;
        }
        let mut feed = self.source.subscribe(at + 1);
        while at < to {
            let mut events = Vec::new();
            let max = usize::try_from(to - at).map_or(batch_max, |left| left.min(batch_max));
            let read = rt.block_on(async {
                tokio::select! {
                    biased;
                    _ = stop.wait_for(|stop| *stop) => None,
                    read = feed.next_batch_into(max, &mut events) => Some(read),
                }
            });
            match read {
                None => return CatchUpEnd::Stop,
                Some(Err(e)) => {
                    return CatchUpEnd::Failed(format!(
                        "reading the log after position {at} to join failed: {e}"
                    ));
                }
                Some(Ok(())) => {}
            }
            let (Some(first), Some(last)) = (events.first(), events.last()) else {
                continue;
            };
            if first.position != at + 1 || last.position > to {
                return CatchUpEnd::Failed(format!(
                    "the source answered positions {}..={} for {}..={to}",
                    first.position,
                    last.position,
                    at + 1
                ));
            }
            at = last.position;
            let mut steps = None;
            let decoded = catch_unwind(AssertUnwindSafe(|| projection.decode(&events, &mut steps)));
            if let Err(panic) = decoded {
                return CatchUpEnd::Failed(format!(
                    "the projection panicked: {}",
                    panic_message(&*panic)
                ));
            }
            if batches
                .send(Message::CatchUp(CatchUp { events, steps }))
                .is_err()
            {
                return CatchUpEnd::Stop;
            }
        }
        CatchUpEnd::Complete
    }
}

/// How a catch-up ended.
enum CatchUpEnd {
    Complete,
    /// Told to stop, or the applying thread is gone.
    Stop,
    Failed(String),
}
