//! The three threads a command passes through, connected by bounded channels:
//!
//! ```text
//! submit() ──intake queue──▶ intake ──▶ writer ──▶ committer
//!  (validate,   (bounded,    (command    (decide,   (event log:
//!   dedupe)      try_send)    log: group  state      group commit,
//!                             commit,     cache)     index, publish,
//!                             ack)                   outcomes)
//! ```
//!
//! - **intake** owns the command log. It takes every command waiting in the queue (up to a
//!   batch bound), appends them, syncs once, and only then acknowledges them and hands them
//!   to the writer. No added wait when idle: a lone command is synced at once.
//! - **writer** is the single writer. It executes commands strictly in command log order
//!   against cached stream states, assigns stream versions and global positions, and
//!   encodes one commit record per command. It runs ahead of durability: a later command
//!   sees an earlier command's effects before they are synced, which is safe because no
//!   outcome is published before its sync and a crash re-executes, deterministically, every
//!   command whose commit was not durable.
//! - **committer** owns the event log. It appends commit records, syncs once per batch,
//!   extends the indexes, publishes the new end, and delivers outcomes.
//!
//! Backpressure: the writer and committer channels are bounded and their senders block, so
//! a slow disk fills the intake queue, and a full intake queue refuses submissions at once.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::oneshot;
use uuid::Uuid;
use writ_domain::{Domain, Envelope, EventSet, Refusal};
use writ_log::{AppendError, Log};

use crate::engine::Shared;
use crate::error::Unavailable;
use crate::record::{self, CommandRecord, CommitHeader, CommitStatus};
use crate::types::{CommandState, CommandStatus, EventRef};

/// Longest stream name a domain may use.
pub const STREAM_NAME_BYTES_MAX: usize = 1024;
/// Longest rejection code.
const CODE_BYTES_MAX: usize = 256;
/// Longest rejection or failure message kept (longer ones are cut).
const MESSAGE_BYTES_MAX: usize = 16 * 1024;

pub(crate) type Accepted = Result<u64, Unavailable>;
pub(crate) type Outcome = Result<CommandStatus, Unavailable>;

/// A validated command on its way to the command log.
pub(crate) struct Submit<C> {
    pub id: Uuid,
    pub name: &'static str,
    pub version: u32,
    pub payload: Vec<u8>,
    pub command: C,
    pub accepted: oneshot::Sender<Accepted>,
    pub outcome: oneshot::Sender<Outcome>,
}

pub(crate) enum IntakeMsg<C> {
    Submit(Submit<C>),
    Shutdown,
}

/// A durable command on its way to the writer.
pub(crate) struct Work<C> {
    pub seq: u64,
    pub id: Uuid,
    pub recorded_at_ms: u64,
    pub name: String,
    /// The command, or why this build cannot decode the logged payload (the command then
    /// fails, deterministically).
    pub command: Result<C, String>,
    pub outcome: Option<oneshot::Sender<Outcome>>,
}

pub(crate) enum WriterMsg<C> {
    Work(Vec<Work<C>>),
    Shutdown,
}

/// Commit records encoded back to back, with what to do once they are durable.
pub(crate) struct CommitBatch {
    bytes: Vec<u8>,
    done: Vec<Done>,
}

struct Done {
    /// End of this commit's record in `CommitBatch::bytes`.
    end: usize,
    first_position: u64,
    status: CommandStatus,
    outcome: Option<oneshot::Sender<Outcome>>,
}

pub(crate) enum CommitterMsg {
    Batch(CommitBatch),
    Shutdown,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Marks the engine poisoned if a pipeline thread dies of a panic, so that callers get an
/// error instead of waiting forever.
struct PanicGuard<'a, D: Domain>(&'a Shared<D>, &'static str);

impl<D: Domain> Drop for PanicGuard<'_, D> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0
                .poison(format!("internal error: the {} thread panicked", self.1));
        }
    }
}

// ---------------------------------------------------------------------------------------
// intake

pub(crate) fn run_intake<D: Domain>(
    shared: Arc<Shared<D>>,
    mut log: Log,
    rx: Receiver<IntakeMsg<D::Command>>,
    writer: SyncSender<WriterMsg<D::Command>>,
    mut last_recorded_ms: u64,
) {
    let _guard = PanicGuard(&shared, "intake");
    let options = &shared.options;
    let mut batch: Vec<Submit<D::Command>> = Vec::with_capacity(options.batch_records_max);
    let mut seqs: Vec<u64> = Vec::with_capacity(options.batch_records_max);
    let mut scratch = Vec::new();
    let mut unfilled_counted = 0;
    let mut shutdown = false;
    while !shutdown {
        let mut bytes = 0;
        match rx.recv() {
            Ok(IntakeMsg::Submit(s)) => {
                bytes += s.payload.len();
                batch.push(s);
            }
            Ok(IntakeMsg::Shutdown) | Err(_) => shutdown = true,
        }
        while !shutdown
            && batch.len() < options.batch_records_max
            && bytes < options.batch_bytes_max
        {
            match rx.try_recv() {
                Ok(IntakeMsg::Submit(s)) => {
                    bytes += s.payload.len();
                    batch.push(s);
                }
                Ok(IntakeMsg::Shutdown) | Err(TryRecvError::Disconnected) => shutdown = true,
                Err(TryRecvError::Empty) => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        let depth = shared.queued.fetch_sub(batch.len(), Ordering::Relaxed) - batch.len();
        shared.metrics.intake_queue_depth.set(depth as f64);
        // One clock reading per batch, never going back: handlers see time that only moves
        // forward along the log.
        let recorded_at_ms = now_ms().max(last_recorded_ms);
        last_recorded_ms = recorded_at_ms;
        let sync_started = Instant::now();
        let result = append_commands(&mut log, &batch, recorded_at_ms, &mut scratch, &mut seqs);
        match result {
            Ok(()) => {
                let metrics = &shared.metrics;
                metrics
                    .command_log_sync_seconds
                    .record(sync_started.elapsed().as_secs_f64());
                metrics.command_log_batch_records.record(batch.len() as f64);
                metrics.commands_accepted.increment(batch.len() as u64);
                count_unfilled_rolls(
                    &metrics.command_log_unfilled_rolls,
                    &log,
                    &mut unfilled_counted,
                );
                shared.stats.command_batches.fetch_add(1, Ordering::Relaxed);
                shared
                    .stats
                    .commands_accepted
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                let mut work = Vec::with_capacity(batch.len());
                for (s, &seq) in batch.iter().zip(&seqs) {
                    shared.dedupe.mark_durable(s.id, seq);
                }
                shared.waiters.wake(batch.iter().map(|s| &s.id));
                for (s, &seq) in batch.drain(..).zip(&seqs) {
                    let _ = s.accepted.send(Ok(seq));
                    work.push(Work {
                        seq,
                        id: s.id,
                        recorded_at_ms,
                        name: s.name.to_owned(),
                        command: Ok(s.command),
                        outcome: Some(s.outcome),
                    });
                }
                if writer.send(WriterMsg::Work(work)).is_err() {
                    shared.poison("internal error: the writer thread is gone".to_owned());
                }
            }
            Err(detail) => {
                shared.poison(detail);
                let reason = shared.unavailable();
                for s in batch.drain(..) {
                    shared.dedupe.release(s.id);
                    let _ = s.accepted.send(Err(reason.clone()));
                }
                shared.waiters.wake_all();
            }
        }
    }
    // Commands that raced in behind the shutdown are refused, not silently dropped.
    while let Ok(msg) = rx.try_recv() {
        if let IntakeMsg::Submit(s) = msg {
            shared.queued.fetch_sub(1, Ordering::Relaxed);
            shared.dedupe.release(s.id);
            let _ = s.accepted.send(Err(Unavailable::ShuttingDown));
        }
    }
    let _ = writer.send(WriterMsg::Shutdown);
}

/// Appends and syncs one batch of commands; on success `seqs` holds their sequence numbers.
fn append_commands<C>(
    log: &mut Log,
    batch: &[Submit<C>],
    recorded_at_ms: u64,
    scratch: &mut Vec<u8>,
    seqs: &mut Vec<u64>,
) -> Result<(), String> {
    seqs.clear();
    if log.is_poisoned() {
        return Err("the command log is poisoned".to_owned());
    }
    for s in batch {
        scratch.clear();
        CommandRecord {
            id: s.id,
            recorded_at_ms,
            name: s.name,
            version: s.version,
            payload: &s.payload,
        }
        .encode(scratch);
        let seq = match log.append(scratch) {
            Ok(seq) => seq,
            Err(AppendError::BatchFull { .. }) => {
                log.commit().map_err(|e| format!("command log: {e}"))?;
                log.append(scratch)
                    .map_err(|e| format!("command log: {e}"))?
            }
            Err(e) => return Err(format!("command log: {e}")),
        };
        seqs.push(seq);
    }
    log.commit().map_err(|e| format!("command log: {e}"))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// writer

struct Cached<S> {
    state: S,
    version: u64,
    /// Position of the stream's last event (0 if none); the entry may be dropped from the
    /// cache only once this position is durable, since reloading reads the durable log.
    last_position: u64,
}

pub(crate) struct Writer<D: Domain> {
    shared: Arc<Shared<D>>,
    cache: HashMap<Box<str>, Cached<D::State>>,
    next_position: u64,
}

impl<D: Domain> Writer<D> {
    pub(crate) fn new(shared: Arc<Shared<D>>) -> Self {
        let next_position = shared.store.last_position() + 1;
        Self {
            shared,
            cache: HashMap::new(),
            next_position,
        }
    }

    pub(crate) fn run(
        mut self,
        rx: Receiver<WriterMsg<D::Command>>,
        committer: SyncSender<CommitterMsg>,
    ) {
        let shared = Arc::clone(&self.shared);
        let _guard = PanicGuard(&shared, "writer");
        let bytes_max = shared.options.batch_bytes_max;
        let mut shutdown = false;
        while !shutdown {
            let mut batch = CommitBatch {
                bytes: Vec::with_capacity(64 * 1024),
                done: Vec::new(),
            };
            match rx.recv() {
                Ok(WriterMsg::Work(work)) => self.execute_all(work, &mut batch),
                Ok(WriterMsg::Shutdown) | Err(_) => shutdown = true,
            }
            while !shutdown && batch.bytes.len() < bytes_max {
                match rx.try_recv() {
                    Ok(WriterMsg::Work(work)) => self.execute_all(work, &mut batch),
                    Ok(WriterMsg::Shutdown) | Err(TryRecvError::Disconnected) => shutdown = true,
                    Err(TryRecvError::Empty) => break,
                }
            }
            if !batch.done.is_empty() && committer.send(CommitterMsg::Batch(batch)).is_err() {
                shared.poison("internal error: the committer thread is gone".to_owned());
                break;
            }
            self.trim_cache();
        }
        let _ = committer.send(CommitterMsg::Shutdown);
    }

    pub(crate) fn execute_all(&mut self, work: Vec<Work<D::Command>>, batch: &mut CommitBatch) {
        for item in work {
            self.execute(item, batch);
        }
    }

    /// Executes one command and appends its commit record to the batch.
    fn execute(&mut self, item: Work<D::Command>, batch: &mut CommitBatch) {
        let start = batch.bytes.len();
        let first_position = self.next_position;
        let envelope = Envelope {
            command_id: item.id,
            recorded_at_ms: item.recorded_at_ms,
            sequence: item.seq,
        };
        let header = |status, code: &'static str, message: &'static str| CommitHeader {
            command_id: item.id,
            command_seq: item.seq,
            recorded_at_ms: item.recorded_at_ms,
            command: &item.name,
            status,
            first_position,
            code,
            message,
        };
        let decided = match &item.command {
            Err(detail) => Err(Refusal::Failed(writ_domain::Failure {
                message: detail.clone(),
            })),
            Ok(command) => self.decide(
                command,
                &envelope,
                first_position,
                &mut batch.bytes,
                &header(CommitStatus::Succeeded, "", ""),
            ),
        };
        let (state, events) = match decided {
            Ok(events) => (CommandState::Succeeded, events),
            Err(refusal) => {
                batch.bytes.truncate(start);
                let state = match refusal {
                    Refusal::Rejected(r) => CommandState::Rejected {
                        code: cut(&r.code, CODE_BYTES_MAX).to_owned(),
                        message: cut(&r.message, MESSAGE_BYTES_MAX).to_owned(),
                    },
                    Refusal::Failed(f) => CommandState::Failed {
                        message: cut(&f.message, MESSAGE_BYTES_MAX).to_owned(),
                    },
                };
                let (status, code, message) = match &state {
                    CommandState::Rejected { code, message } => {
                        (CommitStatus::Rejected, code.as_str(), message.as_str())
                    }
                    CommandState::Failed { message } => {
                        (CommitStatus::Failed, "", message.as_str())
                    }
                    _ => unreachable!("refusals are rejected or failed"),
                };
                record::encode_commit_header(
                    &mut batch.bytes,
                    &CommitHeader {
                        code,
                        message,
                        status,
                        ..header(status, "", "")
                    },
                    0,
                );
                (state, Vec::new())
            }
        };
        self.next_position += events.len() as u64;
        let position = self.next_position - 1;
        batch.done.push(Done {
            end: batch.bytes.len(),
            first_position,
            status: CommandStatus {
                id: item.id,
                command: item.name,
                state,
                sequence: item.seq,
                position: Some(position),
                events,
            },
            outcome: item.outcome,
        });
    }

    /// Runs the handler and, when it records events, encodes the commit (header and events)
    /// into `out` and applies the events to the cached state. On refusal `out` may hold a
    /// partial record; the caller truncates it.
    fn decide(
        &mut self,
        command: &D::Command,
        envelope: &Envelope,
        first_position: u64,
        out: &mut Vec<u8>,
        header: &CommitHeader<'_>,
    ) -> Result<Vec<EventRef>, Refusal> {
        let failed = |message: String| Refusal::Failed(writ_domain::Failure { message });
        let stream = D::stream(command);
        if stream.is_empty() || stream.len() > STREAM_NAME_BYTES_MAX {
            return Err(failed(format!(
                "the handler addressed a stream name of {} bytes (1 to {STREAM_NAME_BYTES_MAX} allowed)",
                stream.len()
            )));
        }
        if !self.cache.contains_key(stream.as_ref()) {
            let cached = self.load(&stream).map_err(failed)?;
            self.cache.insert(stream.as_ref().into(), cached);
        }
        let cached = self.cache.get_mut(stream.as_ref()).expect("just loaded");
        let events = match catch_unwind(AssertUnwindSafe(|| {
            D::decide(&cached.state, command, envelope)
        })) {
            Ok(decision) => decision?,
            Err(panic) => {
                return Err(failed(format!(
                    "the handler panicked: {}",
                    panic_message(&panic)
                )));
            }
        };
        let start = out.len();
        record::encode_commit_header(out, header, events.len());
        let mut refs = Vec::with_capacity(events.len());
        for (i, event) in events.iter().enumerate() {
            let version = cached.version + 1 + i as u64;
            let at = record::begin_event(out, &stream, version, event.event_type());
            event.encode_data(out).map_err(|e| {
                failed(format!(
                    "event {} does not encode as JSON: {e}",
                    event.event_type()
                ))
            })?;
            record::finish_event(out, at);
            refs.push(EventRef {
                stream: stream.as_ref().to_owned(),
                version,
                event_type: event.event_type().to_owned(),
                position: first_position + i as u64,
            });
        }
        let record_max = self.shared.options.log.record_bytes_max;
        if out.len() - start > record_max {
            return Err(failed(format!(
                "the command's events take {} bytes, more than the record maximum of {record_max}",
                out.len() - start
            )));
        }
        let applied = catch_unwind(AssertUnwindSafe(|| {
            for event in &events {
                D::evolve(&mut cached.state, event);
            }
        }));
        if let Err(panic) = applied {
            // The cached state is half-applied: rebuild it from the log once everything
            // before this command is durable, then fail the command.
            let message = format!("applying the events panicked: {}", panic_message(&panic));
            self.cache.remove(stream.as_ref());
            self.wait_durable(first_position - 1);
            return Err(failed(message));
        }
        cached.version += events.len() as u64;
        if !events.is_empty() {
            cached.last_position = first_position + events.len() as u64 - 1;
        }
        Ok(refs)
    }

    /// Rebuilds a stream's state from its durable events.
    fn load(&self, stream: &str) -> Result<Cached<D::State>, String> {
        let events = self
            .shared
            .store
            .read_stream(stream, 1, usize::MAX)
            .map_err(|e| format!("loading stream {stream}: {e}"))?;
        let mut state = D::State::default();
        let mut last_position = 0;
        for recorded in &events {
            let event = D::Event::decode(&recorded.event_type, &recorded.data).map_err(|e| {
                format!("loading stream {stream}: event {}: {e}", recorded.position)
            })?;
            catch_unwind(AssertUnwindSafe(|| D::evolve(&mut state, &event))).map_err(|p| {
                format!(
                    "loading stream {stream}: applying event {} panicked: {}",
                    recorded.position,
                    panic_message(&p)
                )
            })?;
            last_position = recorded.position;
        }
        Ok(Cached {
            state,
            version: events.len() as u64,
            last_position,
        })
    }

    /// Blocks until every position up to `position` is durable (or the engine is poisoned).
    fn wait_durable(&self, position: u64) {
        let store = &self.shared.store;
        while store.last_position() < position && !self.shared.is_poisoned() {
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Keeps the state cache within its bound, dropping states whose events are durable.
    fn trim_cache(&mut self) {
        let max = self.shared.options.state_cache_streams_max;
        if self.cache.len() <= max {
            return;
        }
        let durable = self.shared.store.last_position();
        let target = max - max / 8;
        let mut excess = self.cache.len() - target;
        self.cache.retain(|_, c| {
            if excess > 0 && c.last_position <= durable {
                excess -= 1;
                false
            } else {
                true
            }
        });
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    }
}

/// `s` cut to at most `max` bytes at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

// ---------------------------------------------------------------------------------------
// committer

pub(crate) fn run_committer<D: Domain>(
    shared: Arc<Shared<D>>,
    mut log: Log,
    rx: Receiver<CommitterMsg>,
) {
    let _guard = PanicGuard(&shared, "committer");
    let bytes_max = shared.options.batch_bytes_max;
    let mut batches: Vec<CommitBatch> = Vec::new();
    let mut unfilled_counted = 0;
    let mut shutdown = false;
    while !shutdown {
        let mut bytes = 0;
        match rx.recv() {
            Ok(CommitterMsg::Batch(b)) => {
                bytes += b.bytes.len();
                batches.push(b);
            }
            Ok(CommitterMsg::Shutdown) | Err(_) => shutdown = true,
        }
        while !shutdown && bytes < bytes_max {
            match rx.try_recv() {
                Ok(CommitterMsg::Batch(b)) => {
                    bytes += b.bytes.len();
                    batches.push(b);
                }
                Ok(CommitterMsg::Shutdown) | Err(TryRecvError::Disconnected) => shutdown = true,
                Err(TryRecvError::Empty) => break,
            }
        }
        if batches.is_empty() {
            continue;
        }
        let sync_started = Instant::now();
        match append_commits(&mut log, &batches) {
            Ok(()) => {
                let metrics = &shared.metrics;
                metrics
                    .event_log_sync_seconds
                    .record(sync_started.elapsed().as_secs_f64());
                count_unfilled_rolls(
                    &metrics.event_log_unfilled_rolls,
                    &log,
                    &mut unfilled_counted,
                );
                publish(&shared, &log, &mut batches);
            }
            Err(detail) => {
                shared.poison(detail);
                let reason = shared.unavailable();
                for batch in batches.drain(..) {
                    for done in batch.done {
                        if let Some(tx) = done.outcome {
                            let _ = tx.send(Err(reason.clone()));
                        }
                    }
                }
                shared.waiters.wake_all();
            }
        }
    }
}

fn append_commits(log: &mut Log, batches: &[CommitBatch]) -> Result<(), String> {
    if log.is_poisoned() {
        return Err("the event log is poisoned".to_owned());
    }
    for batch in batches {
        let mut start = 0;
        for done in &batch.done {
            let record = &batch.bytes[start..done.end];
            start = done.end;
            let seq = match log.append(record) {
                Ok(seq) => seq,
                Err(AppendError::BatchFull { .. }) => {
                    log.commit().map_err(|e| format!("event log: {e}"))?;
                    log.append(record).map_err(|e| format!("event log: {e}"))?
                }
                Err(e) => return Err(format!("event log: {e}")),
            };
            // The invariant that lets a command's outcome be found by its sequence number.
            assert_eq!(
                seq, done.status.sequence,
                "commit n must be event log record n"
            );
        }
    }
    log.commit().map_err(|e| format!("event log: {e}"))?;
    Ok(())
}

/// After a sync: extend the indexes, publish the new end, deliver outcomes, wake waiters.
fn publish<D: Domain>(shared: &Shared<D>, log: &Log, batches: &mut Vec<CommitBatch>) {
    let store = &shared.store;
    let mut last_position = store.last_position();
    store.index(|index| {
        for batch in batches.iter() {
            for done in &batch.done {
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
        }
        debug_assert_eq!(index.commits(), log.durable_seq());
    });
    store.publish(log.durable_seq(), last_position);
    let stats = &shared.stats;
    stats.event_batches.fetch_add(1, Ordering::Relaxed);
    let (mut succeeded, mut rejected, mut failed) = (0, 0, 0);
    for batch in batches.iter() {
        for done in &batch.done {
            match done.status.state {
                CommandState::Succeeded => succeeded += 1,
                CommandState::Rejected { .. } => rejected += 1,
                _ => failed += 1,
            }
        }
    }
    stats.succeeded.fetch_add(succeeded, Ordering::Relaxed);
    stats.rejected.fetch_add(rejected, Ordering::Relaxed);
    stats.failed.fetch_add(failed, Ordering::Relaxed);
    let metrics = &shared.metrics;
    metrics.succeeded.increment(succeeded);
    metrics.rejected.increment(rejected);
    metrics.failed.increment(failed);
    metrics
        .event_log_batch_records
        .record((succeeded + rejected + failed) as f64);
    shared.waiters.wake(
        batches
            .iter()
            .flat_map(|b| b.done.iter().map(|d| &d.status.id)),
    );
    for batch in batches.drain(..) {
        for done in batch.done {
            if let Some(tx) = done.outcome {
                let _ = tx.send(Ok(done.status));
            }
        }
    }
}

/// Adds the log's rolls into unfilled spares since the last call to `counter`. Added, not
/// set: the counter is the process's, shared by every engine and every reopened log.
fn count_unfilled_rolls(counter: &metrics::Counter, log: &Log, counted: &mut u64) {
    let rolls = log.unfilled_rolls();
    if rolls > *counted {
        counter.increment(rolls - *counted);
        *counted = rolls;
    }
}
