//! The read side of the journal: in-memory indexes, and reads of streams, of the global log
//! and of command statuses.
//!
//! Indexes (rebuilt at open by one scan of the journal):
//! - `commit_first_position[n]`: the first position of record `n` (8 bytes per command);
//!   the record holding position `p` is found by binary search.
//! - `streams[name][v - 1]`: the position of version `v` of the stream (8 bytes per event).
//!
//! The syncer thread extends the indexes after each sync and only then publishes the new
//! end (`durable`, `last_position`), so a reader never finds a published position that the
//! indexes do not cover, nor a record that is not durable.
//!
//! Every event read leaves in its type's current shape: one recorded in an older schema
//! version is upcast by the domain that owns its stream ([`Registry::upcast_event`]), so
//! the writer, the read models and the server's reads all see the same shape.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::watch;
use writ_log::LogReader;

use crate::error::ReadError;
use crate::record::{CommitStatus, JournalRecord, RecordEvent};
use crate::registry::Registry;
use crate::types::{CommandState, CommandStatus, EventRef, RecordedEvent};

/// Sends `position` to the subscriptions when it is past the one they have: positions
/// woken out of order (one deferred by [`Store::notify_after_caller`], one at once) never
/// go back.
fn wake_at(tx: &watch::Sender<u64>, position: u64) {
    tx.send_if_modified(|sent| {
        let newer = position > *sent;
        if newer {
            *sent = position;
        }
        newer
    });
}

/// [`wake_at`] at once outside a tokio runtime, else in a task spawned on the caller's
/// runtime (see [`Store::notify_after_caller`]).
fn wake_after_caller(tx: &watch::Sender<u64>, position: u64) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            let wake = WakeOnDrop {
                tx: tx.clone(),
                position,
            };
            drop(runtime.spawn(async move { drop(wake) }));
        }
        Err(_) => wake_at(tx, position),
    }
}

/// A deferred [`wake_at`], done when dropped: when its task has run, or when the runtime
/// drops the task unrun.
struct WakeOnDrop {
    tx: watch::Sender<u64>,
    position: u64,
}

impl Drop for WakeOnDrop {
    fn drop(&mut self) {
        wake_at(&self.tx, self.position);
    }
}

#[derive(Debug, Default)]
pub(crate) struct Indexes {
    commit_first_position: Vec<u64>,
    streams: HashMap<Box<str>, Vec<u64>>,
}

#[derive(Debug)]
pub(crate) struct Store {
    pub(crate) journal: LogReader,
    /// Upcasts the events read.
    registry: Registry,
    indexes: RwLock<Indexes>,
    /// Records that are durable and indexed (= the next sequence to be made durable).
    durable: AtomicU64,
    /// The last durable, indexed position (0 before the first event).
    last_position: AtomicU64,
    position_tx: watch::Sender<u64>,
    closed: AtomicBool,
}

impl Store {
    pub(crate) fn new(journal: LogReader, registry: Registry) -> Self {
        Self {
            journal,
            registry,
            indexes: RwLock::new(Indexes::default()),
            durable: AtomicU64::new(0),
            last_position: AtomicU64::new(0),
            position_tx: watch::Sender::new(0),
            closed: AtomicBool::new(false),
        }
    }

    /// Number of records (commands with their outcomes) durable and indexed.
    pub(crate) fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// The last durable, indexed position.
    pub(crate) fn last_position(&self) -> u64 {
        self.last_position.load(Ordering::Acquire)
    }

    pub(crate) fn watch_position(&self) -> watch::Receiver<u64> {
        self.position_tx.subscribe()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Ends every subscription once it has delivered what is durable.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.position_tx.send_modify(|_| {});
    }

    /// Extends the indexes with durable commits; see [`IndexWriter::push`].
    pub(crate) fn index<R>(&self, f: impl FnOnce(&mut IndexWriter<'_>) -> R) -> R {
        let mut indexes = self.indexes.write().expect("index lock");
        f(&mut IndexWriter {
            indexes: &mut indexes,
        })
    }

    /// Puts in the indexes a start rebuilt (from a checkpoint and the journal after it).
    pub(crate) fn set_indexes(&self, indexes: Indexes) {
        *self.indexes.write().expect("index lock") = indexes;
    }

    /// Publishes a new durable end after the indexes cover it.
    ///
    /// Readers that look see it at once; subscribers waiting for it are woken by
    /// [`Store::notify_after_caller`], which the thread that synced calls after it has
    /// answered the batch's clients, so that their answers do not wait behind the wake-ups
    /// of read models.
    pub(crate) fn publish(&self, durable: u64, last_position: u64) {
        debug_assert!(durable >= self.durable());
        debug_assert!(last_position >= self.last_position());
        self.durable.store(durable, Ordering::Release);
        self.last_position.store(last_position, Ordering::Release);
    }

    /// Wakes the subscriptions waiting for a position published since the last call.
    pub(crate) fn notify(&self) {
        wake_at(&self.position_tx, self.last_position());
    }

    /// [`Store::notify`], by the thread that synced: at once outside a tokio runtime (the
    /// writer's and the syncer's threads); on a runtime's thread, which is where a lone
    /// command is decided and synced by the task that submitted it
    /// ([`Engine::submit_now`](crate::Engine::submit_now)), in a task spawned there. That
    /// task runs once the submitting task yields, which over HTTP is after its answer is
    /// written: the answer does not wait behind the read side's wake-up (a write to its
    /// runtime's `eventfd`, a tenth of the HTTP worker's time for a lone command here).
    /// Should the task never run (the runtime shutting down), dropping it wakes them.
    pub(crate) fn notify_after_caller(&self) {
        wake_after_caller(&self.position_tx, self.last_position());
    }

    /// The current version of a stream (0 when it has no events).
    pub(crate) fn stream_version(&self, stream: &str) -> u64 {
        let indexes = self.indexes.read().expect("index lock");
        indexes.streams.get(stream).map_or(0, |p| p.len() as u64)
    }

    /// Events of `stream` from version `from_version` (1-based), at most `limit`.
    pub(crate) fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, ReadError> {
        let wanted: Vec<(u64, u64)> = {
            let indexes = self.indexes.read().expect("index lock");
            let Some(positions) = indexes.streams.get(stream) else {
                return Ok(Vec::new());
            };
            let start = from_version.max(1) - 1;
            positions
                .iter()
                .skip(usize::try_from(start).unwrap_or(usize::MAX))
                .take(limit)
                .map(|&position| (position, indexes.commit_of(position)))
                .collect()
        };
        let mut out = Vec::with_capacity(wanted.len());
        let mut buf = Vec::new();
        let mut loaded = u64::MAX;
        for (position, seq) in wanted {
            if seq != loaded {
                self.journal.read(seq, &mut buf)?;
                loaded = seq;
            }
            let commit =
                JournalRecord::decode(&buf).map_err(|source| ReadError::Record { seq, source })?;
            let i = (position - commit.first_position) as usize;
            let event = commit.events.get(i).ok_or(ReadError::Record {
                seq,
                source: crate::record::RecordError {
                    detail: "indexed position not in its record",
                },
            })?;
            let mut read = RecordedEvent::default();
            overwrite(&mut read, &commit, i, event, &self.registry)?;
            out.push(read);
        }
        Ok(out)
    }

    /// Events of the global log from `from_position` (1-based), at most `limit`, in order.
    pub(crate) fn read_all(
        &self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, ReadError> {
        let mut out = Vec::new();
        self.read_all_into(from_position, limit, &mut out)?;
        Ok(out)
    }

    /// [`Store::read_all`] into `out`, which ends up holding exactly the events read. The
    /// events `out` held are overwritten in place, so their strings and buffers are
    /// reused: a reader that passes the same vector again allocates only for bodies
    /// longer than before. On an error `out` holds some events of no meaning.
    pub(crate) fn read_all_into(
        &self,
        from_position: u64,
        limit: usize,
        out: &mut Vec<RecordedEvent>,
    ) -> Result<(), ReadError> {
        self.read_all_reusing(from_position, limit, out, &mut Vec::new())
    }

    /// [`Store::read_all_into`] reading the journal through `buf`, kept for the next call
    /// when it is at most [`KEPT_READ_BUFFER_BYTES`] (so that each of many subscriptions
    /// following the live end holds a small buffer, and none holds a catch-up's megabyte).
    pub(crate) fn read_all_reusing(
        &self,
        from_position: u64,
        limit: usize,
        out: &mut Vec<RecordedEvent>,
        buf: &mut Vec<u8>,
    ) -> Result<(), ReadError> {
        let from_position = from_position.max(1);
        let last = self.last_position();
        let durable = self.durable();
        if from_position > last || limit == 0 {
            out.clear();
            return Ok(());
        }
        let start = {
            let indexes = self.indexes.read().expect("index lock");
            indexes.commit_of(from_position)
        };
        let mut filled = 0;
        let mut iter = self.journal.iter_from_reusing(start, std::mem::take(buf));
        let read = (|| {
            'records: while let Some(item) = iter.next_record() {
                let (seq, bytes) = item?;
                if seq >= durable {
                    break;
                }
                let commit = JournalRecord::decode(bytes)
                    .map_err(|source| ReadError::Record { seq, source })?;
                for (i, event) in commit.events.iter().enumerate() {
                    let position = commit.first_position + i as u64;
                    if position >= from_position && position <= last {
                        if filled == out.len() {
                            out.push(RecordedEvent::default());
                        }
                        overwrite(&mut out[filled], &commit, i, event, &self.registry)?;
                        filled += 1;
                        if filled >= limit {
                            break 'records;
                        }
                    }
                }
            }
            Ok(())
        })();
        *buf = iter.into_buffer();
        if buf.capacity() > KEPT_READ_BUFFER_BYTES {
            // A catch-up read; a follower of the live end reads little at a time.
            *buf = Vec::new();
        }
        out.truncate(filled);
        read
    }

    /// The status of the durable command at `seq`.
    pub(crate) fn status_of(&self, seq: u64) -> Result<CommandStatus, ReadError> {
        let mut buf = Vec::new();
        self.journal.read(seq, &mut buf)?;
        let record =
            JournalRecord::decode(&buf).map_err(|source| ReadError::Record { seq, source })?;
        Ok(status_of_record(seq, &record))
    }
}

/// Largest journal read buffer a subscription keeps between batches.
pub(crate) const KEPT_READ_BUFFER_BYTES: usize = 256 * 1024;

/// Write access to the indexes, held by the committer for one batch.
#[derive(Debug)]
pub(crate) struct IndexWriter<'a> {
    indexes: &'a mut Indexes,
}

impl IndexWriter<'_> {
    /// Adds one commit: its first position and the (stream, version) of each event in order.
    pub(crate) fn push<'s>(
        &mut self,
        first_position: u64,
        events: impl Iterator<Item = (&'s str, u64)>,
    ) {
        self.indexes.push(first_position, events);
    }

    /// Number of commits indexed.
    pub(crate) fn commits(&self) -> u64 {
        self.indexes.commit_first_position.len() as u64
    }
}

impl Indexes {
    /// Adds one commit: its first position and the (stream, version) of each event in
    /// order (the syncer through [`IndexWriter::push`], and the checkpoint thread's copy).
    pub(crate) fn push<'s>(
        &mut self,
        first_position: u64,
        events: impl Iterator<Item = (&'s str, u64)>,
    ) {
        if let Some(&last) = self.commit_first_position.last() {
            assert!(first_position >= last, "commit positions never decrease");
        }
        self.commit_first_position.push(first_position);
        for (i, (stream, version)) in events.enumerate() {
            let positions = match self.streams.get_mut(stream) {
                Some(p) => p,
                None => self.streams.entry(stream.into()).or_default(),
            };
            assert_eq!(
                positions.len() as u64 + 1,
                version,
                "versions of stream {stream} must be gap-free"
            );
            positions.push(first_position + i as u64);
        }
    }

    /// Indexes made of a checkpoint's parts.
    pub(crate) fn from_parts(
        commit_first_position: Vec<u64>,
        streams: HashMap<Box<str>, Vec<u64>>,
    ) -> Self {
        Self {
            commit_first_position,
            streams,
        }
    }

    /// The first position of each commit.
    pub(crate) fn commit_first_positions(&self) -> &[u64] {
        &self.commit_first_position
    }

    /// Each stream with its positions (version `v` at index `v - 1`), in no order.
    pub(crate) fn streams(&self) -> impl Iterator<Item = (&str, &[u64])> {
        self.streams.iter().map(|(k, v)| (&**k, v.as_slice()))
    }

    /// The commit holding `position`. Commits without events share their first position
    /// with the next commit that has events, so the last commit starting at or before the
    /// position is the one holding it.
    fn commit_of(&self, position: u64) -> u64 {
        let after = self
            .commit_first_position
            .partition_point(|&first| first <= position);
        after.saturating_sub(1) as u64
    }
}

/// Writes event `i` of `commit` into `out` (an event read before, whose allocations are
/// kept), upcast to its type's current shape.
fn overwrite(
    out: &mut RecordedEvent,
    commit: &JournalRecord<'_>,
    i: usize,
    event: &RecordEvent<'_>,
    registry: &Registry,
) -> Result<(), ReadError> {
    let position = commit.first_position + i as u64;
    let upcast = registry
        .upcast_event(
            event.stream,
            event.event_type,
            event.schema_version,
            event.data,
        )
        .map_err(|source| ReadError::Event { position, source })?;
    out.position = position;
    out.stream.clear();
    out.stream.push_str(event.stream);
    out.version = event.version;
    out.event_type.clear();
    out.event_type.push_str(event.event_type);
    out.recorded_schema_version = event.schema_version;
    match upcast {
        None => {
            out.data.clear();
            out.data.extend_from_slice(event.data);
            out.schema_version = event.schema_version;
        }
        Some(upcast) => {
            out.data = upcast.data;
            out.schema_version = upcast.version;
        }
    }
    out.command_id = commit.id;
    out.correlation_id = commit.correlation_id;
    out.recorded_at_ms = commit.recorded_at_ms;
    Ok(())
}

/// The final status a record holds.
pub(crate) fn status_of_record(seq: u64, record: &JournalRecord<'_>) -> CommandStatus {
    let state = match record.status {
        CommitStatus::Succeeded => CommandState::Succeeded,
        CommitStatus::Rejected => CommandState::Rejected {
            code: record.code.to_owned(),
            message: record.message.to_owned(),
            details: serde_json::from_slice(record.details).unwrap_or_default(),
        },
        CommitStatus::Failed => CommandState::Failed {
            message: record.message.to_owned(),
        },
    };
    let events: Vec<EventRef> = record
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| EventRef {
            stream: e.stream.to_owned(),
            version: e.version,
            event_type: e.event_type.to_owned(),
            position: record.first_position + i as u64,
        })
        .collect();
    CommandStatus {
        id: record.id,
        command: record.name.to_owned(),
        state,
        sequence: seq,
        position: Some(record.last_position()),
        events,
        origin: record.origin,
        correlation_id: record.correlation_id,
        causation_id: record.causation_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    }

    #[test]
    fn outside_a_runtime_subscribers_are_woken_at_once() {
        let (tx, mut rx) = watch::channel(0);
        wake_after_caller(&tx, 7);
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), 7);
    }

    #[test]
    fn on_a_runtime_subscribers_are_woken_once_the_caller_yields() {
        let (tx, mut rx) = watch::channel(0);
        runtime().block_on(async {
            wake_after_caller(&tx, 7);
            // The caller's task has not yielded: its answer goes out first.
            assert!(!rx.has_changed().unwrap());
            tokio::task::yield_now().await;
            assert!(rx.has_changed().unwrap());
            assert_eq!(*rx.borrow_and_update(), 7);
        });
    }

    #[test]
    fn a_wake_whose_runtime_drops_it_unrun_is_done_all_the_same() {
        let (tx, mut rx) = watch::channel(0);
        let runtime = runtime();
        runtime.block_on(async { wake_after_caller(&tx, 7) });
        assert!(!rx.has_changed().unwrap(), "not run yet");
        drop(runtime);
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), 7);
    }

    #[test]
    fn positions_woken_out_of_order_never_go_back() {
        let (tx, mut rx) = watch::channel(0);
        let runtime = runtime();
        runtime.block_on(async {
            // A lone command's wake deferred, then a later batch's at once elsewhere.
            wake_after_caller(&tx, 5);
            wake_at(&tx, 9);
            assert_eq!(*rx.borrow_and_update(), 9);
            tokio::task::yield_now().await;
        });
        assert!(!rx.has_changed().unwrap(), "the older position is not sent");
        assert_eq!(*rx.borrow(), 9);
    }
}
