//! The single writer: decides every command, in order, and encodes the journal records.
//!
//! ```text
//! submit() ──queue──▶ writer ──batches──▶ syncer
//!  (validate,          (decide in order,   (journal: append, one
//!   dedupe)             processes, timers,  fdatasync, index,
//!                       encode records)     publish, answer)
//! ```
//!
//! The writer takes every command waiting in its queue (up to a batch bound), stamps the
//! batch with one clock reading, and decides each command as soon as it has it, against
//! the stream states its executors cache: it runs ahead of durability, which is safe
//! because nothing it decides is visible to anyone before the syncer has made it durable,
//! and a failed sync stops the engine. Each command becomes one record holding the command
//! and its outcome, so one sync makes both durable.
//!
//! A command and the commands its events make processes issue form a *unit*: the writer
//! decides the issued commands right after their cause, breadth first, as ordinary
//! commands with ids derived from the events, and the syncer keeps a unit in one frame
//! whenever it fits. Timers that are due fire between batches, each as the first command
//! of a unit of its own.
//!
//! Backpressure: the channel to the syncer is bounded and its sender blocks, so a slow
//! disk fills the writer's queue, and a full queue refuses submissions at once.
//!
//! The writer's state is behind a lock that the writer thread takes only to decide a
//! batch. A submitting thread that finds the lock free and the queue empty decides its
//! command itself ([`Writer::try_decide_now`], through `Engine::submit_now`): one writer
//! at a time all the same, and in the same order, since the queue's count goes down only
//! under the lock.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::oneshot;
use uuid::Uuid;
use writ_domain::model::{Execution, Executor, VisitEvent};
use writ_domain::{Envelope, EventView, Failure, Issued, Reactions, Refusal, TimerOp};

use crate::dedupe::{self, Reserve};
use crate::error::Unavailable;
use crate::record::{self, CommandPart, CommitStatus, Origin};
use crate::registry::From;
use crate::shared::{PanicGuard, Shared};
use crate::store::Store;
use crate::syncer::SyncPath;
use crate::timers::{Timer, Timers};
use crate::types::{CommandState, CommandStatus, EventRef};

/// The writer, also when a thread that held it panicked (that poisoned the engine; what
/// follows refuses everything).
pub(crate) fn lock(cell: &Mutex<Writer>) -> MutexGuard<'_, Writer> {
    cell.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Longest rejection code kept.
const CODE_BYTES_MAX: usize = 256;
/// Longest rejection or failure message kept (longer ones are cut).
const MESSAGE_BYTES_MAX: usize = 16 * 1024;
/// Longest rejection details kept, as JSON (larger ones are left out, the message says so).
const DETAILS_BYTES_MAX: usize = 16 * 1024;
/// Longest name kept of an issued command that does not decode.
const ISSUED_NAME_BYTES_MAX: usize = u16::MAX as usize;

pub(crate) type Outcome = Result<CommandStatus, Unavailable>;

/// A client's command, validated, on its way to the writer.
pub(crate) struct Submit {
    pub id: Uuid,
    pub name: Arc<str>,
    pub version: u32,
    pub expected_version: Option<u64>,
    pub payload: Vec<u8>,
    pub domain: usize,
    pub command: Box<dyn Any + Send>,
    /// Where the final status goes once durable (the acknowledgement comes with it).
    pub reply: oneshot::Sender<Outcome>,
}

pub(crate) enum WriterMsg {
    Submit(Submit),
    /// Look again at the timers: a command decided on another thread scheduled one due
    /// before the writer thread's wait ends.
    Tick,
    Shutdown,
}

/// Why the writer woke.
enum Wake {
    Message(WriterMsg),
    TimerDue,
}

impl std::convert::From<WriterMsg> for Wake {
    fn from(msg: WriterMsg) -> Self {
        Wake::Message(msg)
    }
}

/// A command of the server's own (issued by a process, fired by a timer, or resumed at
/// open) waiting in a unit's queue.
#[derive(Debug, Clone)]
pub(crate) struct Queued {
    pub issued: Issued,
    pub origin: Origin,
    pub causation_id: Uuid,
    pub correlation_id: Uuid,
}

/// One command to decide.
struct Item {
    id: Uuid,
    name: Arc<str>,
    version: u32,
    expected_version: Option<u64>,
    payload: Vec<u8>,
    origin: Origin,
    causation_id: Option<Uuid>,
    correlation_id: Uuid,
    /// The decoded command and its domain, or why it failed before deciding.
    command: Result<(usize, Box<dyn Any + Send>), String>,
    reply: Option<oneshot::Sender<Outcome>>,
}

/// Records encoded back to back, with what to do once they are durable.
pub(crate) struct Batch {
    pub bytes: Vec<u8>,
    pub done: Vec<Done>,
}

/// One record of a [`Batch`].
pub(crate) struct Done {
    /// End of this record in [`Batch::bytes`].
    pub end: usize,
    /// The first record of a unit: the syncer keeps a unit in one frame when it fits.
    pub unit_start: bool,
    pub first_position: u64,
    pub status: CommandStatus,
    pub reply: Option<oneshot::Sender<Outcome>>,
}

pub(crate) enum SyncerMsg {
    Batch(Batch),
    Shutdown,
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    /// The writer thread has stopped: nothing more may be decided (the syncer is gone).
    stopped: bool,
    executors: Vec<Box<dyn Executor>>,
    timers: Timers,
    next_seq: u64,
    next_position: u64,
    last_recorded_ms: u64,
    batch: Batch,
    sync: Arc<SyncPath>,
    /// The record being built.
    scratch: Vec<u8>,
    /// Where the events of the record being built are in `scratch`.
    events: Vec<EventAt>,
    reactions: Reactions,
    failures: Vec<(String, String)>,
}

/// An event of the record being built: byte ranges into the scratch buffer.
#[derive(Debug, Clone, Copy)]
struct EventAt {
    stream: (usize, usize),
    event_type: (usize, usize),
    data: (usize, usize),
    version: u64,
    position: u64,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("next_seq", &self.next_seq)
            .field("next_position", &self.next_position)
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

impl Writer {
    pub(crate) fn new(
        shared: Arc<Shared>,
        timers: Timers,
        next_seq: u64,
        last_recorded_ms: u64,
        sync: Arc<SyncPath>,
    ) -> Self {
        let executors = shared
            .registry
            .domains()
            .iter()
            .map(|d| d.executor())
            .collect();
        let next_position = shared.store.last_position() + 1;
        Self {
            shared,
            stopped: false,
            executors,
            timers,
            next_seq,
            next_position,
            last_recorded_ms,
            batch: Batch {
                bytes: Vec::new(),
                done: Vec::new(),
            },
            sync,
            scratch: Vec::new(),
            events: Vec::new(),
            reactions: Reactions::new(),
            failures: Vec::new(),
        }
    }

    /// The writer thread: decides commands until told to stop, first `resume` (a unit a
    /// crash cut short), then whatever arrives on `rx` and whatever timers come due. It
    /// waits without holding the writer's lock and decides holding it, so that a thread
    /// with a command to submit may decide it itself while the writer thread has nothing
    /// to do ([`Writer::try_decide_now`]).
    pub(crate) fn run_thread(
        cell: Arc<Mutex<Writer>>,
        shared: Arc<Shared>,
        rx: Receiver<WriterMsg>,
    ) {
        let _guard = PanicGuard(&shared, "writer");
        let options = shared.options.clone();
        // Below the HTTP workers, so that under load they read the requests in hand first
        // and each batch here is larger (see the `priority` module).
        crate::priority::lower_this_thread(options.writer_nice, "writ-writer");
        let clock = Arc::clone(&options.clock);
        let mut submits: Vec<Submit> = Vec::with_capacity(options.batch_records_max);
        let mut shutdown = false;
        while !shutdown {
            // The next timer as the last batch (here or on another thread) published it;
            // a batch elsewhere that schedules an earlier one sends a Tick.
            let first = match shared.next_timer_ms.load(Ordering::Acquire) {
                u64::MAX => rx.recv().unwrap_or(WriterMsg::Shutdown).into(),
                at => {
                    let mut wait = Duration::from_millis(at.saturating_sub(clock.now_ms()));
                    if let Some(within) = clock.recheck_within() {
                        wait = wait.min(within);
                    }
                    match rx.recv_timeout(wait) {
                        Ok(msg) => Wake::Message(msg),
                        Err(RecvTimeoutError::Timeout) => Wake::TimerDue,
                        Err(RecvTimeoutError::Disconnected) => Wake::Message(WriterMsg::Shutdown),
                    }
                }
            };
            let mut bytes = 0;
            match first {
                Wake::Message(WriterMsg::Submit(s)) => {
                    bytes += s.payload.len();
                    submits.push(s);
                }
                Wake::Message(WriterMsg::Shutdown) => shutdown = true,
                Wake::Message(WriterMsg::Tick) | Wake::TimerDue => {}
            }
            while !shutdown
                && submits.len() < options.batch_records_max
                && bytes < options.batch_bytes_max
            {
                match rx.try_recv() {
                    Ok(WriterMsg::Submit(s)) => {
                        bytes += s.payload.len();
                        submits.push(s);
                    }
                    Ok(WriterMsg::Tick) => {}
                    Ok(WriterMsg::Shutdown) | Err(TryRecvError::Disconnected) => shutdown = true,
                    Err(TryRecvError::Empty) => break,
                }
            }
            let mut writer = lock(&cell);
            // Counted down only under the lock: a thread that holds it and finds the
            // count at zero knows no command is waiting to be decided before its own
            // (nor is one being decided: the lock is held until it is handed to be synced).
            if !submits.is_empty() {
                let depth =
                    shared.queued.fetch_sub(submits.len(), Ordering::AcqRel) - submits.len();
                shared.metrics.intake_queue_depth.set(depth as f64);
            }
            writer.decide_batch(&mut submits);
        }
        let mut writer = lock(&cell);
        writer.stopped = true;
        // Commands that raced in behind the shutdown are refused, not silently dropped.
        while let Ok(msg) = rx.try_recv() {
            if let WriterMsg::Submit(s) = msg {
                shared.queued.fetch_sub(1, Ordering::Relaxed);
                shared.dedupe.release(s.id);
                let _ = s.reply.send(Err(shared.unavailable()));
            }
        }
        writer.sync.shut_down();
    }

    /// Decides `submit` on the calling thread when the writer has nothing else to do:
    /// it holds the writer's lock (the writer thread is waiting) and no command is
    /// queued before it. Then the command, and its sync when the syncer is idle, run
    /// here and its answers are ready on return: a lone command crosses no thread.
    /// Otherwise gives `submit` back, to be queued.
    pub(crate) fn try_decide_now(
        cell: &Mutex<Writer>,
        submit: Submit,
        tick: &SyncSender<WriterMsg>,
    ) -> Result<(), Submit> {
        // A poisoned lock: a batch panicked halfway; the writer thread poisons the engine.
        let Ok(mut writer) = cell.try_lock() else {
            return Err(submit);
        };
        let shared = Arc::clone(&writer.shared);
        // A due timer is the writer thread's to fire (it is waking for it), not this
        // caller's: its chain of commands would run ahead of the caller's own.
        if writer.stopped
            || shared.switched.load(Ordering::Acquire)
            || shared.queued.load(Ordering::Acquire) != 0
            || writer
                .timers
                .next_due_ms()
                .is_some_and(|at| at <= shared.options.clock.now_ms())
        {
            return Err(submit);
        }
        let _guard = PanicGuard(&shared, "writer");
        let next_timer = shared.next_timer_ms.load(Ordering::Acquire);
        shared
            .stats
            .decided_on_submit
            .fetch_add(1, Ordering::Relaxed);
        shared.metrics.decided_on_submit.increment(1);
        writer.decide_batch(&mut vec![submit]);
        drop(writer);
        if shared.next_timer_ms.load(Ordering::Acquire) < next_timer {
            // The writer thread waits for the old first timer, or for nothing.
            let _ = tick.try_send(WriterMsg::Tick);
        }
        Ok(())
    }

    /// At open, before anything else is decided: completes the unit a crash cut short (its
    /// remaining process commands, `resumed_count` of its records decided already), and
    /// publishes the timers.
    pub(crate) fn start(&mut self, resume: Vec<Queued>, resumed_count: usize) {
        if !resume.is_empty() {
            self.last_recorded_ms = self
                .shared
                .options
                .clock
                .now_ms()
                .max(self.last_recorded_ms);
            let queue = resume
                .into_iter()
                .filter_map(|q| self.queued_item(q))
                .collect();
            self.run_unit(queue, resumed_count);
            self.flush();
        }
        self.publish_timers();
    }

    /// Whether nothing is left to do by the clock: nothing queued, no timer due, every
    /// record decided durable and the syncer done with it. Called holding the writer, so
    /// nothing is being decided.
    pub(crate) fn is_idle(&self) -> bool {
        let shared = &self.shared;
        shared.queued.load(Ordering::Acquire) == 0
            && self
                .timers
                .next_due_ms()
                .is_none_or(|at| at > shared.options.clock.now_ms())
            && self.next_seq <= shared.store.durable()
            && self.sync.is_idle()
    }

    /// Whether everything decided is durable and published and the syncer holds
    /// nothing: called holding the writer, the journal's published end is final until it
    /// is let go.
    pub(crate) fn is_settled(&self) -> bool {
        self.next_seq <= self.shared.store.durable() && self.sync.is_idle()
    }

    /// Decides one batch, holding the writer: fires the timers that are due, decides
    /// `submits` (emptied) in order, publishes what the writer holds, and hands the
    /// records to be synced.
    fn decide_batch(&mut self, submits: &mut Vec<Submit>) {
        let shared = Arc::clone(&self.shared);
        if shared.is_poisoned() || shared.switched.load(Ordering::Acquire) {
            // Refused, never logged (no timer fires either): a switched engine's journal
            // is no longer the live one.
            let reason = shared.unavailable();
            for s in submits.drain(..) {
                shared.dedupe.release(s.id);
                let _ = s.reply.send(Err(reason.clone()));
            }
            shared.waiters.wake_all();
            return;
        }
        // One clock reading per batch, never going back: handlers see time that only
        // moves forward along the journal.
        let now = shared.options.clock.now_ms();
        self.last_recorded_ms = now.max(self.last_recorded_ms);
        self.fire_due(now);
        for s in submits.drain(..) {
            let item = Item {
                id: s.id,
                name: s.name,
                version: s.version,
                expected_version: s.expected_version,
                payload: s.payload,
                origin: Origin::Client,
                causation_id: None,
                correlation_id: s.id,
                command: Ok((s.domain, s.command)),
                reply: Some(s.reply),
            };
            self.run_unit(VecDeque::from([item]), 0);
        }
        self.end_batch();
    }

    /// Fires, each as a unit of its own, the timers due at `now`.
    fn fire_due(&mut self, now: u64) {
        while let Some(timer) = self.timers.pop_due(now) {
            self.fire(timer);
        }
    }

    /// After a batch is decided: publishes the timers, hands the records to be synced and
    /// trims the executors' caches of states that can be read back.
    fn end_batch(&mut self) {
        self.publish_timers();
        self.flush();
        let durable = self.shared.store.last_position();
        let cache_max = self.shared.options.state_cache_streams_max;
        for executor in &mut self.executors {
            executor.trim(durable, cache_max);
        }
    }

    /// Publishes how many timers are pending and when the first is due (for the writer
    /// thread's wait and the metric).
    fn publish_timers(&self) {
        let pending = self.timers.len();
        self.shared.next_timer_ms.store(
            self.timers.next_due_ms().unwrap_or(u64::MAX),
            Ordering::Release,
        );
        self.shared.timers_pending.store(pending, Ordering::Relaxed);
        self.shared.metrics.timers_pending.set(pending as f64);
    }

    /// Makes the records decided so far durable (see [`SyncPath::flush`]).
    fn flush(&mut self) {
        self.sync.flush(&self.shared, &mut self.batch);
    }

    /// A timer is due: its command is the first of a unit of its own.
    fn fire(&mut self, timer: Timer) {
        self.shared
            .stats
            .timers_fired
            .fetch_add(1, Ordering::Relaxed);
        let queued = Queued {
            issued: timer.command,
            origin: Origin::Timer,
            causation_id: timer.causation_id,
            correlation_id: timer.correlation_id,
        };
        if let Some(item) = self.queued_item(queued) {
            self.run_unit(VecDeque::from([item]), 0);
        }
    }

    /// A command of the server's own, decoded and its id reserved; `None` when its id is
    /// taken (logged: a client used an id the server derives, or a resumed command ran).
    fn queued_item(&mut self, q: Queued) -> Option<Item> {
        let shared = &self.shared;
        let issued = q.issued;
        let decoded = shared.registry.decode(
            &issued.command,
            issued.version,
            &issued.payload,
            From::Server,
        );
        let (name, version, payload, command): (Arc<str>, u32, Vec<u8>, _) = match decoded {
            Ok((domain, decoded)) => (
                shared.registry.command_name(&issued.command),
                decoded.version,
                decoded.canonical_payload,
                Ok((domain, decoded.command)),
            ),
            Err(e) => (
                Arc::from(cut(&issued.command, ISSUED_NAME_BYTES_MAX)),
                issued.version.unwrap_or(0),
                issued.payload,
                Err(format!("the command a process issued does not decode: {e}")),
            ),
        };
        if payload.len() > shared.options.command_bytes_max {
            // Cannot be logged whole; its id is still answered, as failed.
            return self.oversized(
                q.origin,
                issued.id,
                q.causation_id,
                q.correlation_id,
                name,
                payload.len(),
            );
        }
        let fingerprint = dedupe::fingerprint(&name, version, issued.expected_version, &payload);
        match shared.dedupe.reserve_issued(issued.id, fingerprint) {
            Reserve::Reserved => {}
            Reserve::Duplicate | Reserve::Conflict | Reserve::Full => {
                tracing_skip(&issued.id, &name);
                return None;
            }
        }
        Some(Item {
            id: issued.id,
            name,
            version,
            expected_version: issued.expected_version,
            payload,
            origin: q.origin,
            causation_id: Some(q.causation_id),
            correlation_id: q.correlation_id,
            command,
            reply: None,
        })
    }

    fn oversized(
        &mut self,
        origin: Origin,
        id: Uuid,
        causation_id: Uuid,
        correlation_id: Uuid,
        name: Arc<str>,
        size: usize,
    ) -> Option<Item> {
        let fingerprint = dedupe::fingerprint(&name, 0, None, b"{}");
        if self.shared.dedupe.reserve_issued(id, fingerprint) != Reserve::Reserved {
            tracing_skip(&id, &name);
            return None;
        }
        Some(Item {
            id,
            name,
            version: 0,
            expected_version: None,
            payload: b"{}".to_vec(),
            origin,
            causation_id: Some(causation_id),
            correlation_id,
            command: Err(format!(
                "the command's payload takes {size} bytes, more than the maximum of {}",
                self.shared.options.command_bytes_max
            )),
            reply: None,
        })
    }

    /// Decides a unit: the items queued, then, breadth first, every command their events
    /// make processes issue, at most `process_chain_max` commands in all (`decided` of
    /// which ran before a crash cut the unit short).
    fn run_unit(&mut self, mut queue: VecDeque<Item>, mut decided: usize) {
        let chain_max = self.shared.options.process_chain_max;
        let mut unit_start = decided == 0;
        while let Some(item) = queue.pop_front() {
            let item = if decided >= chain_max && item.origin == Origin::Process {
                Item {
                    command: Err(format!(
                        "the chain of commands started by {} exceeded {chain_max} commands (process_chain_max); this one was not run",
                        item.correlation_id
                    )),
                    ..item
                }
            } else {
                item
            };
            decided += 1;
            let issued = self.execute(item, unit_start);
            unit_start = false;
            for q in issued {
                if let Some(item) = self.queued_item(q) {
                    self.shared
                        .stats
                        .commands_issued
                        .fetch_add(1, Ordering::Relaxed);
                    queue.push_back(item);
                }
            }
        }
    }

    /// Decides one command into one record; returns the commands its events made
    /// processes issue.
    fn execute(&mut self, item: Item, unit_start: bool) -> Vec<Queued> {
        let seq = self.next_seq;
        let first_position = self.next_position;
        let envelope = Envelope {
            command_id: item.id,
            recorded_at_ms: self.last_recorded_ms,
            sequence: seq,
            correlation_id: item.correlation_id,
        };
        self.scratch.clear();
        self.events.clear();
        let marks = record::begin_record(
            &mut self.scratch,
            &CommandPart {
                id: item.id,
                correlation_id: item.correlation_id,
                causation_id: item.causation_id,
                origin: item.origin,
                recorded_at_ms: self.last_recorded_ms,
                name: &item.name,
                version: item.version,
                expected_version: item.expected_version,
                payload: &item.payload,
                first_position,
            },
        );
        let options = &self.shared.options;
        let limit = options
            .log
            .record_bytes_max
            .saturating_sub(options.timer_ops_bytes_max);
        let decided = match &item.command {
            Err(message) => Err(Refusal::Failed(Failure {
                message: message.clone(),
            })),
            Ok((domain, command)) => {
                let mut execution = WriterExecution {
                    envelope,
                    expected_version: item.expected_version,
                    shared: &self.shared,
                    out: &mut self.scratch,
                    events: &mut self.events,
                    next_position: first_position,
                    limit,
                    batch: &mut self.batch,
                    sync: &self.sync,
                };
                self.executors[*domain].execute(command.as_ref(), &mut execution)
            }
        };
        let mut issued = Vec::new();
        let (state, timer_ops) = match decided {
            Ok(()) => {
                let (now, timers) = self.react(&envelope);
                issued = now
                    .into_iter()
                    .map(|issued| Queued {
                        issued,
                        origin: Origin::Process,
                        causation_id: item.id,
                        correlation_id: item.correlation_id,
                    })
                    .collect();
                record::finish_outcome(
                    &mut self.scratch,
                    marks,
                    CommitStatus::Succeeded,
                    self.events.len(),
                    "",
                    "",
                    b"",
                );
                (CommandState::Succeeded, timers)
            }
            Err(refusal) => {
                self.events.clear();
                record::discard_events(&mut self.scratch, marks);
                // What the outcome may take: the record's bound less the command it holds
                // already and the fields that follow, so that a refusal always fits (a
                // record too large would poison the journal).
                let room = options
                    .log
                    .record_bytes_max
                    .saturating_sub(self.scratch.len() - marks.start + 64);
                let state = match refusal {
                    Refusal::Rejected(r) => {
                        let code = cut(&r.code, CODE_BYTES_MAX.min(room / 4)).to_owned();
                        let mut message = r.message.into_owned();
                        let mut details = r.details;
                        let size = serde_json::to_vec(&details).map_or(0, |d| d.len());
                        let details_room = DETAILS_BYTES_MAX.min(room / 2);
                        if size > details_room {
                            details.clear();
                            message.push_str(&format!(
                                " (details of {size} bytes left out, over {details_room})"
                            ));
                        }
                        let message_room = MESSAGE_BYTES_MAX
                            .min(room.saturating_sub(code.len() + size.min(details_room)));
                        CommandState::Rejected {
                            code,
                            message: cut(&message, message_room).to_owned(),
                            details,
                        }
                    }
                    Refusal::Failed(f) => CommandState::Failed {
                        message: cut(&f.message, MESSAGE_BYTES_MAX.min(room)).to_owned(),
                    },
                };
                match &state {
                    CommandState::Rejected {
                        code,
                        message,
                        details,
                    } => {
                        let details = if details.is_empty() {
                            Vec::new()
                        } else {
                            serde_json::to_vec(details).unwrap_or_default()
                        };
                        record::finish_outcome(
                            &mut self.scratch,
                            marks,
                            CommitStatus::Rejected,
                            0,
                            code,
                            message,
                            &details,
                        );
                    }
                    CommandState::Failed { message } => record::finish_outcome(
                        &mut self.scratch,
                        marks,
                        CommitStatus::Failed,
                        0,
                        "",
                        message,
                        b"",
                    ),
                    _ => unreachable!("refusals are rejected or failed"),
                }
                (state, Vec::new())
            }
        };
        record::put_timer_ops(&mut self.scratch, &timer_ops);
        for op in timer_ops {
            match op {
                TimerOp::Schedule {
                    process,
                    key,
                    at_ms,
                    command,
                } => self.timers.schedule(Timer {
                    process: process.into(),
                    key: key.into(),
                    at_ms,
                    command,
                    causation_id: item.id,
                    correlation_id: item.correlation_id,
                }),
                TimerOp::Cancel { process, key } => self.timers.cancel(&process, &key),
            }
        }
        let events: Vec<EventRef> = self
            .events
            .iter()
            .map(|e| EventRef {
                stream: self.str_at(e.stream).to_owned(),
                version: e.version,
                event_type: self.str_at(e.event_type).to_owned(),
                position: e.position,
            })
            .collect();
        self.next_seq += 1;
        self.next_position += events.len() as u64;
        self.batch.bytes.extend_from_slice(&self.scratch);
        self.batch.done.push(Done {
            end: self.batch.bytes.len(),
            unit_start,
            first_position,
            status: CommandStatus {
                id: item.id,
                command: item.name.to_string(),
                state,
                sequence: seq,
                position: Some(self.next_position - 1),
                events,
                origin: item.origin,
                correlation_id: item.correlation_id,
                causation_id: item.causation_id,
            },
            reply: item.reply,
        });
        issued
    }

    fn str_at(&self, (start, end): (usize, usize)) -> &str {
        std::str::from_utf8(&self.scratch[start..end]).expect("written from a str")
    }

    /// Lets processes react to the events of the record being built. A reaction that
    /// fails adds nothing; it is counted and logged (the command still succeeded). Timer
    /// changes beyond `timer_ops_bytes_max` for one record are dropped the same way.
    fn react(&mut self, envelope: &Envelope) -> (Vec<Issued>, Vec<TimerOp>) {
        let registry = &self.shared.registry;
        self.reactions.clear();
        self.failures.clear();
        for (index, e) in self.events.iter().enumerate() {
            let event_type = std::str::from_utf8(&self.scratch[e.event_type.0..e.event_type.1])
                .expect("written from a str");
            if !registry.reacts_to(event_type) {
                continue;
            }
            let view = EventView {
                event_type,
                data: &self.scratch[e.data.0..e.data.1],
                stream: std::str::from_utf8(&self.scratch[e.stream.0..e.stream.1])
                    .expect("written from a str"),
                version: e.version,
                position: e.position,
                index: index as u32,
                command_id: envelope.command_id,
                correlation_id: envelope.correlation_id,
                recorded_at_ms: envelope.recorded_at_ms,
            };
            registry.react(&view, &mut self.reactions, &mut self.failures);
        }
        let (issued, mut timers) = self.reactions.take();
        let options = &self.shared.options;
        let mut bytes = 0;
        let before = timers.len();
        timers.retain(|op| {
            bytes += timer_op_bytes(op);
            bytes <= options.timer_ops_bytes_max
        });
        if timers.len() < before {
            self.failures.push((
                "(timers)".to_owned(),
                format!(
                    "{} timer changes beyond timer_ops_bytes_max ({} bytes) for one command were dropped",
                    before - timers.len(),
                    options.timer_ops_bytes_max
                ),
            ));
        }
        for (process, why) in self.failures.drain(..) {
            self.shared
                .stats
                .reactions_failed
                .fetch_add(1, Ordering::Relaxed);
            self.shared.metrics.reaction_failed(&process);
            tracing_reaction_failed(&process, envelope.command_id, &why);
        }
        (issued, timers)
    }
}

/// A replay's way in (`crate::replay`): the same decisions as the writer thread's, the
/// clock being the replayed journal's and the commands its clients' logged ones, with no
/// intake and no dedupe thread (the replay runs a syncer thread of its own).
impl Writer {
    /// Decides a client's command as the journal logged it, at its logged time, as a unit
    /// of its own (the commands its events make processes issue follow it). A command this
    /// build does not decode any more is decided as failed, saying why.
    pub(crate) fn replay_command(&mut self, logged: &record::JournalRecord<'_>) {
        self.last_recorded_ms = logged.recorded_at_ms.max(self.last_recorded_ms);
        let shared = Arc::clone(&self.shared);
        let decoded = shared.registry.decode(
            logged.name,
            Some(logged.version),
            logged.payload,
            From::Client,
        );
        let (version, payload, command) = match decoded {
            Ok((domain, decoded)) => (
                decoded.version,
                decoded.canonical_payload,
                Ok((domain, decoded.command)),
            ),
            Err(e) => (
                logged.version,
                logged.payload.to_vec(),
                Err(format!("the command does not decode in this build: {e}")),
            ),
        };
        let name = shared.registry.command_name(logged.name);
        // Its id is in the window as a client's command's is, so that a process's command
        // of the same id is skipped as it was live; a later record of an id wins.
        let fingerprint = dedupe::fingerprint(&name, version, logged.expected_version, &payload);
        shared.dedupe.insert_recovered(
            logged.id,
            dedupe::Slot {
                fingerprint,
                seq: dedupe::PENDING,
            },
        );
        let item = Item {
            id: logged.id,
            name,
            version,
            expected_version: logged.expected_version,
            payload,
            origin: Origin::Client,
            causation_id: logged.causation_id,
            correlation_id: logged.correlation_id,
            command,
            reply: None,
        };
        self.run_unit(VecDeque::from([item]), 0);
    }

    /// Fires the timers due at `now` that `fire` lets through, in the order the writer
    /// thread would, each as a unit of its own, at `now`.
    pub(crate) fn replay_timers(&mut self, now: u64, fire: &dyn Fn(&Timer) -> bool) {
        self.last_recorded_ms = now.max(self.last_recorded_ms);
        while let Some(timer) = self.timers.pop_due_where(now, fire) {
            self.fire(timer);
        }
    }

    /// Bytes of records decided and not yet synced.
    pub(crate) fn replay_pending_bytes(&self) -> usize {
        self.batch.bytes.len()
    }

    /// Hands what was decided to the syncer (one `fdatasync`, more only when it exceeds a
    /// frame); waits only when two batches are ahead of the disk already.
    pub(crate) fn replay_sync(&mut self) {
        self.end_batch();
    }

    /// The timers pending when the replay ended.
    pub(crate) fn timers_pending(&self) -> usize {
        self.timers.len()
    }
}

fn timer_op_bytes(op: &TimerOp) -> usize {
    match op {
        TimerOp::Schedule {
            process,
            key,
            command,
            ..
        } => 64 + process.len() + key.len() + command.command.len() + command.payload.len(),
        TimerOp::Cancel { process, key } => 8 + process.len() + key.len(),
    }
}

fn tracing_reaction_failed(process: &str, command_id: Uuid, why: &str) {
    tracing::warn!(%process, %command_id, %why, "a process could not react to an event; the event is parked for it (counted in writ_process_reactions_failed_total)");
}

fn tracing_skip(id: &Uuid, name: &str) {
    tracing::warn!(%id, command = %name, "a command the server issued was not run: its id is already taken within the dedupe window");
}

/// The engine's side of one command's execution.
struct WriterExecution<'a> {
    envelope: Envelope,
    expected_version: Option<u64>,
    shared: &'a Shared,
    out: &'a mut Vec<u8>,
    events: &'a mut Vec<EventAt>,
    next_position: u64,
    /// Most bytes the record may take with its events.
    limit: usize,
    batch: &'a mut Batch,
    sync: &'a SyncPath,
}

impl Execution for WriterExecution<'_> {
    fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    fn expected_version(&self) -> Option<u64> {
        self.expected_version
    }

    fn load(&mut self, stream: &str, visit: &mut VisitEvent<'_>) -> Result<(), String> {
        load_stream(&self.shared.store, stream, visit)
    }

    fn wait_durable(&mut self, position: u64) {
        // What was decided before must reach the disk first.
        self.sync.flush(self.shared, self.batch);
        while self.shared.store.last_position() < position && !self.shared.is_poisoned() {
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    fn emit(
        &mut self,
        stream: &str,
        version: u64,
        event_type: &str,
        schema_version: u32,
        data: &mut dyn FnMut(&mut Vec<u8>) -> Result<(), String>,
    ) -> Result<u64, String> {
        let stream_at = self.out.len() + 2;
        let at = record::begin_event(self.out, stream, version, event_type, schema_version);
        // The type is followed by its schema version (4 bytes), then the body's length.
        let type_end = at - 4;
        let type_start = type_end - event_type.len();
        data(self.out)?;
        record::finish_event(self.out, at);
        if self.out.len() > self.limit {
            return Err(format!(
                "the command's events take more than the record maximum of {} bytes",
                self.limit
            ));
        }
        let position = self.next_position;
        self.next_position += 1;
        self.events.push(EventAt {
            stream: (stream_at, stream_at + stream.len()),
            event_type: (type_start, type_end),
            data: (at + 4, self.out.len()),
            version,
            position,
        });
        Ok(position)
    }
}

/// Calls `visit` with every durable event of `stream`.
pub(crate) fn load_stream(
    store: &Store,
    stream: &str,
    visit: &mut VisitEvent<'_>,
) -> Result<(), String> {
    let events = store
        .read_stream(stream, 1, usize::MAX)
        .map_err(|e| format!("loading stream {stream}: {e}"))?;
    for event in &events {
        visit(&event.event_type, &event.data, event.position)?;
    }
    Ok(())
}

/// `s` cut to at most `max` bytes at a character boundary.
pub(crate) fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
