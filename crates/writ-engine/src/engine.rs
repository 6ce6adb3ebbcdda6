use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::oneshot;
use uuid::Uuid;
use writ_domain::{CommandCatalog, Domain};
use writ_log::storage::{FsStorage, Storage};
use writ_log::{Log, LogReader, TailTruncation};

use crate::dedupe::{self, DedupeIndex, PENDING, Reserve, Slot, Waiters};
use crate::error::{OpenError, Overload, ReadError, SubmitError, Unavailable};
use crate::metrics::Metrics;
use crate::options::EngineOptions;
use crate::pipeline::{
    self, Accepted, CommitterMsg, IntakeMsg, Outcome, Submit, Work, Writer, WriterMsg,
};
use crate::record::{CommandRecord, CommitRecord};
use crate::store::Store;
use crate::subscription::Subscription;
use crate::types::{CommandStatus, RecordedEvent};

/// Counters of what the engine did since it opened.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub commands_accepted: AtomicU64,
    pub duplicates: AtomicU64,
    pub command_batches: AtomicU64,
    pub event_batches: AtomicU64,
    pub succeeded: AtomicU64,
    pub rejected: AtomicU64,
    pub failed: AtomicU64,
}

/// A snapshot of the engine's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct EngineStats {
    /// Commands logged and acknowledged.
    pub commands_accepted: u64,
    /// Submissions answered as duplicates.
    pub duplicates: u64,
    /// Command log syncs.
    pub command_batches: u64,
    /// Event log syncs.
    pub event_batches: u64,
    /// Outcomes by status.
    pub succeeded: u64,
    /// Outcomes by status.
    pub rejected: u64,
    /// Outcomes by status.
    pub failed: u64,
    /// Ids in the dedupe index.
    pub dedupe_entries: usize,
    /// Commands waiting in the intake queue.
    pub intake_queue_depth: usize,
}

/// State shared by the engine handle and its threads.
pub(crate) struct Shared<D: Domain> {
    pub catalog: CommandCatalog<D::Command>,
    pub options: EngineOptions,
    pub dedupe: DedupeIndex,
    pub waiters: Waiters,
    pub store: Store,
    pub stats: Stats,
    pub metrics: Metrics,
    /// Commands in the intake queue (incremented before `try_send`, decremented by intake).
    pub queued: AtomicUsize,
    poisoned: AtomicBool,
    poison_detail: Mutex<Option<String>>,
    accepting: AtomicBool,
}

impl<D: Domain> std::fmt::Debug for Shared<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("domain", &D::NAME)
            .field("options", &self.options)
            .field("poisoned", &self.is_poisoned())
            .finish_non_exhaustive()
    }
}

impl<D: Domain> Shared<D> {
    pub(crate) fn poison(&self, detail: String) {
        let mut slot = self.poison_detail.lock().expect("poison lock");
        if slot.is_none() {
            *slot = Some(detail);
        }
        self.poisoned.store(true, Ordering::Release);
        self.metrics.store_poisoned.set(1.0);
        drop(slot);
        self.waiters.wake_all();
    }

    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    pub(crate) fn unavailable(&self) -> Unavailable {
        let detail = self.poison_detail.lock().expect("poison lock").clone();
        match detail {
            Some(detail) => Unavailable::Poisoned { detail },
            None => Unavailable::ShuttingDown,
        }
    }
}

/// What opening an engine found and did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Commands in the command log.
    pub commands: u64,
    /// Commands with a durable outcome.
    pub executed: u64,
    /// Commands that were logged but had no durable outcome; they run again now, in order.
    pub reexecuted: u64,
    /// Events in the event log.
    pub events: u64,
    /// Ids loaded into the dedupe index (those within the window).
    pub dedupe_entries: usize,
    /// Torn or corrupt tails cut off by recovery (never acknowledged records).
    pub truncated: Vec<(&'static str, TailTruncation)>,
    /// How long opening took.
    pub elapsed: Duration,
}

/// The answer to a submission.
#[derive(Debug)]
#[must_use = "a new command is acknowledged only once `Pending::accepted` resolves"]
pub enum Submitted {
    /// A new command, on its way to the command log.
    New(Pending),
    /// The id was seen within the window with the same command and payload: nothing is
    /// logged or run again. Use [`Engine::wait`] with [`WaitFor::Accepted`] for the first
    /// command's status (it may still be on its way to the disk).
    Duplicate,
}

/// A new command on its way: first acknowledged, then executed.
#[derive(Debug)]
pub struct Pending {
    id: Uuid,
    accepted: Option<oneshot::Receiver<Accepted>>,
    accepted_result: Option<Accepted>,
    outcome: oneshot::Receiver<Outcome>,
}

impl Pending {
    /// The command's id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// Resolves once the command log sync covers the command, with its sequence number.
    /// Only then may the command be acknowledged.
    pub async fn accepted(&mut self) -> Result<u64, Unavailable> {
        if let Some(rx) = &mut self.accepted {
            let result = rx.await.unwrap_or(Err(Unavailable::ShuttingDown));
            self.accepted = None;
            self.accepted_result = Some(result);
        }
        self.accepted_result.clone().expect("set above")
    }

    /// Resolves with the final status once the command's outcome is durable.
    pub async fn outcome(self) -> Result<CommandStatus, Unavailable> {
        self.outcome.await.unwrap_or(Err(Unavailable::ShuttingDown))
    }

    /// [`Pending::accepted`] for threads outside an async runtime.
    pub fn blocking_accepted(&mut self) -> Result<u64, Unavailable> {
        if let Some(rx) = self.accepted.take() {
            self.accepted_result =
                Some(rx.blocking_recv().unwrap_or(Err(Unavailable::ShuttingDown)));
        }
        self.accepted_result.clone().expect("set above")
    }

    /// [`Pending::outcome`] for threads outside an async runtime.
    pub fn blocking_outcome(self) -> Result<CommandStatus, Unavailable> {
        self.outcome
            .blocking_recv()
            .unwrap_or(Err(Unavailable::ShuttingDown))
    }

    /// The acknowledgement if it is already there, without waiting.
    pub fn try_accepted(&mut self) -> Option<Result<u64, Unavailable>> {
        if let Some(rx) = &mut self.accepted {
            let result = match rx.try_recv() {
                Ok(result) => result,
                Err(oneshot::error::TryRecvError::Empty) => return None,
                Err(oneshot::error::TryRecvError::Closed) => Err(Unavailable::ShuttingDown),
            };
            self.accepted = None;
            self.accepted_result = Some(result);
        }
        self.accepted_result.clone()
    }

    /// The outcome if it is already there, without waiting.
    pub fn try_outcome(&mut self) -> Option<Result<CommandStatus, Unavailable>> {
        match self.outcome.try_recv() {
            Ok(outcome) => Some(outcome),
            Err(oneshot::error::TryRecvError::Empty) => None,
            Err(oneshot::error::TryRecvError::Closed) => Some(Err(Unavailable::ShuttingDown)),
        }
    }
}

/// What [`Engine::wait`] waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitFor {
    /// The command is durable in the command log (any status).
    Accepted,
    /// The command has a final status.
    Final,
}

/// Where a command id stands, including commands not yet durable.
enum Lookup {
    Unknown,
    /// Reserved by a submission, not yet durable.
    Pending,
    Known(CommandStatus),
}

/// An event-sourcing engine for one domain, on one data directory.
///
/// See the crate documentation for the flow of a command. All methods take `&self`; share
/// the engine with an `Arc`. Dropping it shuts it down (see [`Engine::shutdown`]).
#[derive(Debug)]
pub struct Engine<D: Domain> {
    shared: Arc<Shared<D>>,
    intake: SyncSender<IntakeMsg<D::Command>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    evictor_stop: Mutex<Option<mpsc::Sender<()>>>,
    _lock: Option<File>,
}

impl<D: Domain> Engine<D> {
    /// Opens (creating if missing) the engine's store in a directory of the file system,
    /// holding an exclusive lock on it while the engine lives.
    pub fn open_dir(
        path: &Path,
        options: EngineOptions,
    ) -> Result<(Self, RecoveryReport), OpenError> {
        let io = |path: PathBuf| move |source| OpenError::Io { path, source };
        std::fs::create_dir_all(path).map_err(io(path.to_owned()))?;
        let lock_path = path.join("writ.lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(lock_path.clone()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(OpenError::Locked { path: lock_path });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(lock_path)(e)),
        }
        let (mut engine, report) = Self::open(Arc::new(FsStorage::new(path)), options)?;
        engine._lock = Some(lock);
        Ok((engine, report))
    }

    /// Opens the engine on any storage (tests use [`writ_log::storage::SimStorage`]) and
    /// recovers: tails cut, indexes rebuilt, the dedupe index reloaded from the command log,
    /// and commands without a durable outcome queued to run again before any new one.
    pub fn open(
        storage: Arc<dyn Storage>,
        options: EngineOptions,
    ) -> Result<(Self, RecoveryReport), OpenError> {
        let started = Instant::now();
        assert!(
            options.command_bytes_max + 4096 <= options.log.record_bytes_max,
            "command_bytes_max must leave room for the command record's header within record_bytes_max"
        );
        let mut report = RecoveryReport::default();
        let (command_log, command_report) = Log::open(
            Arc::clone(&storage),
            Path::new("commands"),
            options.log.clone(),
        )
        .map_err(|source| OpenError::Log {
            log: "command",
            source,
        })?;
        let (event_log, event_report) =
            Log::open(storage, Path::new("events"), options.log.clone()).map_err(|source| {
                OpenError::Log {
                    log: "event",
                    source,
                }
            })?;
        report
            .truncated
            .extend(command_report.truncated.map(|t| ("command", t)));
        report
            .truncated
            .extend(event_report.truncated.map(|t| ("event", t)));
        let commands = command_log.durable_seq();
        let executed = event_log.durable_seq();
        report.commands = commands;
        report.executed = executed;
        if executed > commands {
            return Err(OpenError::Inconsistent {
                detail: format!(
                    "the event log holds outcomes of {executed} commands but the command log only {commands} commands"
                ),
            });
        }

        let shared = Arc::new(Shared {
            catalog: D::commands(),
            dedupe: DedupeIndex::new(options.dedupe_entries_max),
            waiters: Waiters::new(options.waiters_max),
            store: Store::new(command_log.reader(), event_log.reader()),
            stats: Stats::default(),
            metrics: Metrics::new(),
            queued: AtomicUsize::new(0),
            poisoned: AtomicBool::new(false),
            poison_detail: Mutex::new(None),
            accepting: AtomicBool::new(true),
            options,
        });

        // Rebuild the indexes from the event log.
        let last_position = index_event_log(&shared.store, &event_log.reader())?;
        shared.store.publish(executed, last_position);
        report.events = last_position;

        // Reload the dedupe window and collect commands to run again.
        let window_ms = shared.options.dedupe_window.as_millis() as u64;
        let horizon = now_ms().saturating_sub(window_ms);
        let command_reader = command_log.reader();
        let window_start = first_recorded_at_or_after(&command_reader, horizon)?;
        let mut rerun = Vec::new();
        let mut last_recorded_ms = 0;
        let mut iter = command_reader.iter_from(window_start.min(executed));
        while let Some(item) = iter.next_record() {
            let (seq, bytes) = item.map_err(|e| OpenError::Read {
                log: "command",
                source: ReadError::Log(e),
            })?;
            let record = CommandRecord::decode(bytes).map_err(|source| OpenError::Read {
                log: "command",
                source: ReadError::Record { seq, source },
            })?;
            last_recorded_ms = record.recorded_at_ms;
            if seq >= window_start {
                shared.dedupe.insert_recovered(
                    record.id,
                    Slot {
                        fingerprint: dedupe::fingerprint(
                            record.name,
                            record.version,
                            record.payload,
                        ),
                        seq,
                    },
                );
            }
            if seq < executed {
                // Cross-check the two logs where they overlap: commit n is command n's.
                if seq + 1 == executed {
                    check_commit_matches(&shared.store, seq, record.id)?;
                }
                continue;
            }
            let command = shared
                .catalog
                .decode_logged(record.name, record.version, record.payload)
                .map_err(|e| format!("this build cannot decode the logged command: {e}"));
            rerun.push(Work {
                seq,
                id: record.id,
                recorded_at_ms: record.recorded_at_ms,
                name: record.name.to_owned(),
                command,
                outcome: None,
            });
        }
        if last_recorded_ms == 0 && commands > 0 {
            // The window holds nothing: read the last record for the clock's floor.
            let mut buf = Vec::new();
            command_reader
                .read(commands - 1, &mut buf)
                .map_err(|e| OpenError::Read {
                    log: "command",
                    source: ReadError::Log(e),
                })?;
            if let Ok(record) = CommandRecord::decode(&buf) {
                last_recorded_ms = record.recorded_at_ms;
            }
        }
        report.reexecuted = rerun.len() as u64;
        report.dedupe_entries = shared.dedupe.len();

        // Start the pipeline: committer, writer, then the commands to run again, then intake.
        let (intake_tx, intake_rx) = mpsc::sync_channel(shared.options.intake_queue_max);
        let (writer_tx, writer_rx) = mpsc::sync_channel::<WriterMsg<D::Command>>(16);
        let (committer_tx, committer_rx) = mpsc::sync_channel::<CommitterMsg>(16);
        let mut threads = Vec::new();
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(f)
                .map_err(|source| OpenError::Io {
                    path: PathBuf::from(name),
                    source,
                })
        };
        {
            let shared = Arc::clone(&shared);
            threads.push(spawn(
                "writ-committer",
                Box::new(move || pipeline::run_committer(shared, event_log, committer_rx)),
            )?);
        }
        {
            let writer = Writer::new(Arc::clone(&shared));
            threads.push(spawn(
                "writ-writer",
                Box::new(move || writer.run(writer_rx, committer_tx)),
            )?);
        }
        for chunk in rerun.chunks_mut(1024) {
            let work: Vec<_> = chunk.iter_mut().map(take_work).collect();
            writer_tx
                .send(WriterMsg::Work(work))
                .expect("the writer thread runs until told to stop");
        }
        {
            let shared = Arc::clone(&shared);
            threads.push(spawn(
                "writ-intake",
                Box::new(move || {
                    pipeline::run_intake(
                        shared,
                        command_log,
                        intake_rx,
                        writer_tx,
                        last_recorded_ms,
                    )
                }),
            )?);
        }
        let (stop_tx, stop_rx) = mpsc::channel();
        {
            let shared = Arc::clone(&shared);
            threads.push(spawn(
                "writ-dedupe-evict",
                Box::new(move || run_evictor(shared, command_reader, window_start, stop_rx)),
            )?);
        }
        report.elapsed = started.elapsed();
        Ok((
            Engine {
                shared,
                intake: intake_tx,
                threads: Mutex::new(threads),
                evictor_stop: Mutex::new(Some(stop_tx)),
                _lock: None,
            },
            report,
        ))
    }

    /// The domain's command catalog.
    pub fn catalog(&self) -> &CommandCatalog<D::Command> {
        &self.shared.catalog
    }

    /// The engine's options.
    pub fn options(&self) -> &EngineOptions {
        &self.shared.options
    }

    /// Validates a command and queues it for the command log. `version` `None` means the
    /// newest. Returns at once: [`Submitted::New`] carries the handles to await the
    /// acknowledgement and the outcome; nothing is acknowledged before its sync.
    pub fn submit(
        &self,
        id: Uuid,
        command: &str,
        version: Option<u32>,
        payload: &[u8],
    ) -> Result<Submitted, SubmitError> {
        let shared = &*self.shared;
        if shared.is_poisoned() {
            return Err(SubmitError::Unavailable(shared.unavailable()));
        }
        if !shared.accepting.load(Ordering::Acquire) {
            return Err(SubmitError::Unavailable(Unavailable::ShuttingDown));
        }
        let max = shared.options.command_bytes_max;
        if payload.len() > max {
            return Err(SubmitError::TooLarge {
                size: payload.len(),
                max,
            });
        }
        let decoded = shared.catalog.decode(command, version, payload)?;
        if decoded.canonical_payload.len() > max {
            return Err(SubmitError::TooLarge {
                size: decoded.canonical_payload.len(),
                max,
            });
        }
        let fingerprint =
            dedupe::fingerprint(decoded.name, decoded.version, &decoded.canonical_payload);
        match shared.dedupe.reserve(id, fingerprint) {
            Reserve::Reserved => {}
            Reserve::Duplicate => {
                shared.stats.duplicates.fetch_add(1, Ordering::Relaxed);
                shared.metrics.commands_duplicate.increment(1);
                return Ok(Submitted::Duplicate);
            }
            Reserve::Conflict => return Err(SubmitError::Conflict { id }),
            Reserve::Full => return Err(SubmitError::Overloaded(Overload::DedupeIndexFull)),
        }
        let (accepted_tx, accepted) = oneshot::channel();
        let (outcome_tx, outcome) = oneshot::channel();
        let msg = IntakeMsg::Submit(Submit {
            id,
            name: decoded.name,
            version: decoded.version,
            payload: decoded.canonical_payload,
            command: decoded.command,
            accepted: accepted_tx,
            outcome: outcome_tx,
        });
        shared.queued.fetch_add(1, Ordering::Relaxed);
        match self.intake.try_send(msg) {
            Ok(()) => Ok(Submitted::New(Pending {
                id,
                accepted: Some(accepted),
                accepted_result: None,
                outcome,
            })),
            Err(e) => {
                shared.queued.fetch_sub(1, Ordering::Relaxed);
                shared.dedupe.release(id);
                shared.waiters.wake(std::iter::once(&id));
                Err(match e {
                    TrySendError::Full(_) => SubmitError::Overloaded(Overload::IntakeQueueFull),
                    TrySendError::Disconnected(_) => {
                        SubmitError::Unavailable(Unavailable::ShuttingDown)
                    }
                })
            }
        }
    }

    fn lookup(&self, id: Uuid) -> Result<Lookup, ReadError> {
        match self.shared.dedupe.get(&id) {
            None => Ok(Lookup::Unknown),
            Some(slot) if slot.seq == PENDING => Ok(Lookup::Pending),
            Some(slot) => Ok(Lookup::Known(self.shared.store.status_of(slot.seq)?)),
        }
    }

    /// The status of a command seen within the dedupe window and durable; `None` for an id
    /// never seen, seen longer ago than the window, or still on its way to the disk.
    pub fn status(&self, id: Uuid) -> Result<Option<CommandStatus>, ReadError> {
        match self.lookup(id)? {
            Lookup::Known(status) => Ok(Some(status)),
            Lookup::Unknown | Lookup::Pending => Ok(None),
        }
    }

    /// Waits until the command reaches `until`, then returns its status. Returns `None` at
    /// once for an unknown id, and when a command on its way to the disk never gets there
    /// (refused, or the store failed). Cancel-safe: wrap it in a timeout for long polls.
    /// Waiting costs no thread and no polling: the pipeline wakes waiters of an id.
    pub async fn wait(&self, id: Uuid, until: WaitFor) -> Result<Option<CommandStatus>, WaitError> {
        struct Forget<'a>(&'a Waiters, Uuid);
        impl Drop for Forget<'_> {
            fn drop(&mut self) {
                self.0.forget_closed(self.1);
            }
        }
        loop {
            // Declared before the receiver, so dropped after it: the registration is
            // closed by then and `forget_closed` removes it, whichever way this returns
            // (answered, woken, or cancelled).
            let _forget = Forget(&self.shared.waiters, id);
            // Register before looking, so that a change between the look and the wait
            // still wakes us.
            let rx = self
                .shared
                .waiters
                .register(id)
                .ok_or(WaitError::Overloaded(Overload::WaitersFull))?;
            match self.lookup(id)? {
                Lookup::Unknown => return Ok(None),
                Lookup::Known(status) if until == WaitFor::Accepted || status.state.is_final() => {
                    return Ok(Some(status));
                }
                Lookup::Pending | Lookup::Known(_) => {
                    if self.shared.is_poisoned() {
                        return Err(WaitError::Unavailable(self.shared.unavailable()));
                    }
                }
            }
            let _ = rx.await;
        }
    }

    /// Events of `stream` from `from_version` (the first event has version 1), at most
    /// `limit`, durable only.
    pub fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, ReadError> {
        self.shared.store.read_stream(stream, from_version, limit)
    }

    /// The current version of `stream` (0 when it has no events).
    pub fn stream_version(&self, stream: &str) -> u64 {
        self.shared.store.stream_version(stream)
    }

    /// Events of the global log from `from_position` (the first event has position 1), in
    /// commit order, at most `limit`, durable only.
    pub fn read_all(
        &self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, ReadError> {
        self.shared.store.read_all(from_position, limit)
    }

    /// The last durable position (0 before the first event).
    pub fn last_position(&self) -> u64 {
        self.shared.store.last_position()
    }

    /// A live subscription to the global log from `from_position`; see [`Subscription`].
    pub fn subscribe(&self, from_position: u64) -> Subscription {
        Subscription::new(self.shared_store(), from_position)
    }

    fn shared_store(&self) -> Arc<dyn crate::subscription::Source> {
        Arc::clone(&self.shared) as Arc<dyn crate::subscription::Source>
    }

    /// Counters since open.
    pub fn stats(&self) -> EngineStats {
        let s = &self.shared.stats;
        EngineStats {
            commands_accepted: s.commands_accepted.load(Ordering::Relaxed),
            duplicates: s.duplicates.load(Ordering::Relaxed),
            command_batches: s.command_batches.load(Ordering::Relaxed),
            event_batches: s.event_batches.load(Ordering::Relaxed),
            succeeded: s.succeeded.load(Ordering::Relaxed),
            rejected: s.rejected.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            dedupe_entries: self.shared.dedupe.len(),
            intake_queue_depth: self.shared.queued.load(Ordering::Relaxed),
        }
    }

    /// `Some(reason)` when the engine refuses writes after an I/O failure.
    pub fn poisoned(&self) -> Option<Unavailable> {
        self.shared.is_poisoned().then(|| self.shared.unavailable())
    }

    /// Stops accepting commands, finishes every command already queued (logged, executed,
    /// synced), and stops the threads. Idempotent; also run on drop.
    pub fn shutdown(&self) {
        let threads = std::mem::take(&mut *self.threads.lock().expect("threads lock"));
        if threads.is_empty() {
            return;
        }
        self.shared.accepting.store(false, Ordering::Release);
        let _ = self.intake.send(IntakeMsg::Shutdown);
        drop(self.evictor_stop.lock().expect("evictor lock").take());
        for thread in threads {
            let _ = thread.join();
        }
        self.shared.store.close();
        self.shared.waiters.wake_all();
    }
}

impl<D: Domain> Drop for Engine<D> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Why [`Engine::wait`] could not wait.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WaitError {
    /// Too many waiters; retry shortly.
    #[error("overloaded: {0}")]
    Overloaded(Overload),
    /// The store failed while the command was on its way.
    #[error("unavailable: {0}")]
    Unavailable(Unavailable),
    /// Reading the status failed.
    #[error(transparent)]
    Read(#[from] ReadError),
}

fn take_work<C>(w: &mut Work<C>) -> Work<C> {
    Work {
        seq: w.seq,
        id: w.id,
        recorded_at_ms: w.recorded_at_ms,
        name: std::mem::take(&mut w.name),
        command: std::mem::replace(&mut w.command, Err(String::new())),
        outcome: w.outcome.take(),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Scans the event log once, rebuilding the indexes; returns the last position.
fn index_event_log(store: &Store, events: &LogReader) -> Result<u64, OpenError> {
    let read_err = |source| OpenError::Read {
        log: "event",
        source,
    };
    let mut next_position = 1;
    let mut iter = events.iter_from(0);
    store.index(|index| {
        while let Some(item) = iter.next_record() {
            let (seq, bytes) = item.map_err(|e| read_err(ReadError::Log(e)))?;
            let commit = CommitRecord::decode(bytes).map_err(|source| read_err(ReadError::Record { seq, source }))?;
            if commit.command_seq != seq || commit.first_position != next_position {
                return Err(OpenError::Inconsistent {
                    detail: format!(
                        "event log record {seq} is the commit of command {} starting at position {}, expected command {seq} at position {next_position}",
                        commit.command_seq, commit.first_position
                    ),
                });
            }
            index.push(commit.first_position, commit.events.iter().map(|e| (e.stream, e.version)));
            next_position += commit.events.len() as u64;
        }
        Ok(next_position - 1)
    })
}

/// The first command sequence whose `recorded_at` is at or after `horizon`, by binary
/// search (times never decrease along the command log).
fn first_recorded_at_or_after(commands: &LogReader, horizon: u64) -> Result<u64, OpenError> {
    let (mut lo, mut hi) = (0, commands.durable_seq());
    let mut buf = Vec::new();
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        commands.read(mid, &mut buf).map_err(|e| OpenError::Read {
            log: "command",
            source: ReadError::Log(e),
        })?;
        let record = CommandRecord::decode(&buf).map_err(|source| OpenError::Read {
            log: "command",
            source: ReadError::Record { seq: mid, source },
        })?;
        if record.recorded_at_ms < horizon {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

fn check_commit_matches(store: &Store, seq: u64, id: Uuid) -> Result<(), OpenError> {
    let status = store.status_of(seq).map_err(|source| OpenError::Read {
        log: "event",
        source,
    })?;
    if status.id != id {
        return Err(OpenError::Inconsistent {
            detail: format!(
                "event log record {seq} is the outcome of command {}, but command {seq} is {id}",
                status.id
            ),
        });
    }
    Ok(())
}

/// Forgets ids whose command left the dedupe window, reading them back from the command
/// log in order, about once a second.
fn run_evictor<D: Domain>(
    shared: Arc<Shared<D>>,
    commands: LogReader,
    mut cursor: u64,
    stop: mpsc::Receiver<()>,
) {
    let window_ms = shared.options.dedupe_window.as_millis() as u64;
    loop {
        match stop.recv_timeout(Duration::from_secs(1)) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let horizon = now_ms().saturating_sub(window_ms);
        let mut iter = commands.iter_from(cursor);
        while let Some(Ok((seq, bytes))) = iter.next_record() {
            let Ok(record) = CommandRecord::decode(bytes) else {
                break;
            };
            if record.recorded_at_ms >= horizon {
                break;
            }
            shared.dedupe.evict(record.id, seq);
            cursor = seq + 1;
        }
    }
}

impl<D: Domain> crate::subscription::Source for Shared<D> {
    fn store(&self) -> &Store {
        &self.store
    }
}
