use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::oneshot;
use uuid::Uuid;
use writ_log::storage::{FsStorage, Storage};

use crate::checkpoint;
use crate::dedupe::{self, PENDING, Reserve, Waiters};
use crate::error::{OpenError, Overload, ReadError, SubmitError, Unavailable};
use crate::options::EngineOptions;
use crate::recovery::{self, RecoveryReport};
use crate::registry::{From, Registry};
use crate::shared::Shared;
use crate::subscription::Subscription;
use crate::syncer;
use crate::types::{CommandStatus, RecordedEvent};
use crate::writer::{Outcome, Submit, Writer, WriterMsg};

/// The lock file in the data directory, held (`flock`) by [`Engine::open_dir`] while the
/// engine lives.
pub const LOCK_FILE: &str = "writ.lock";

/// A snapshot of the engine's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct EngineStats {
    /// Clients' commands logged and acknowledged.
    pub commands_accepted: u64,
    /// Commands processes issued.
    pub commands_issued: u64,
    /// Timers that fired.
    pub timers_fired: u64,
    /// Submissions answered as duplicates.
    pub duplicates: u64,
    /// Journal syncs.
    pub batches: u64,
    /// Journal syncs made without the syncer thread, the syncer being idle: by the writer
    /// thread, or by a submitting thread ([`Engine::submit_now`]); see `SyncPath`.
    pub writer_syncs: u64,
    /// Clients' commands decided on the submitting thread, the writer being idle
    /// ([`Engine::submit_now`]).
    pub decided_on_submit: u64,
    /// Outcomes by status (the commands of processes and timers included).
    pub succeeded: u64,
    /// Outcomes by status.
    pub rejected: u64,
    /// Outcomes by status.
    pub failed: u64,
    /// Reactions of processes that failed (the event is parked for that process).
    pub reactions_failed: u64,
    /// Ids in the dedupe index: in its hot map and in its runs.
    pub dedupe_entries: usize,
    /// Ids in the dedupe index's hot map (bounded by `dedupe_entries_max`).
    pub dedupe_hot_entries: usize,
    /// Run files of the dedupe index.
    pub dedupe_runs: usize,
    /// Bytes of the dedupe index's run files.
    pub dedupe_run_bytes: u64,
    /// Bytes of memory the dedupe index holds (hot map tables, runs' filters and fences).
    pub dedupe_memory_bytes: u64,
    /// Spills of the dedupe index's hot map that failed (a full disk).
    pub dedupe_spill_failures: u64,
    /// Commands waiting for the writer.
    pub intake_queue_depth: usize,
    /// Durable timers pending.
    pub timers_pending: usize,
    /// Segment files the journal holds open: the live one and at most
    /// `log.open_segments_max` sealed ones.
    pub journal_open_segment_files: usize,
    /// Sealed segments' files the journal opened for reads (first reads and reopens).
    pub journal_segment_opens: u64,
}

/// A command as a client sends it; see [`Engine::submit_command`].
#[derive(Debug, Clone, Copy)]
pub struct Submission<'a> {
    /// The id the client chose.
    pub id: Uuid,
    /// The command's name.
    pub command: &'a str,
    /// The payload version; the newest when `None`.
    pub version: Option<u32>,
    /// The JSON payload.
    pub payload: &'a [u8],
    /// The version the command's target stream must be at (`0`: it must not exist yet);
    /// otherwise the command is rejected with `wrong_expected_version`.
    pub expected_version: Option<u64>,
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

/// A new command on its way. It is decided before the sync that makes it durable, so its
/// acknowledgement and its final status come together, once that sync has returned.
#[derive(Debug)]
pub struct Pending {
    id: Uuid,
    /// Until the answer has come.
    rx: Option<oneshot::Receiver<Outcome>>,
    /// The acknowledgement, once the answer has come.
    accepted: Option<Result<u64, Unavailable>>,
    /// The final status, once the answer has come, until it is taken (boxed: a
    /// [`Submitted`] stays small).
    outcome: Option<Box<Outcome>>,
}

impl Pending {
    /// The command's id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// Resolves once the journal sync covers the command, with its sequence number.
    /// Only then may the command be acknowledged.
    pub async fn accepted(&mut self) -> Result<u64, Unavailable> {
        if let Some(rx) = self.rx.take() {
            self.keep(rx.await.unwrap_or(Err(Unavailable::ShuttingDown)));
        }
        self.accepted.clone().expect("kept above")
    }

    /// Resolves with the final status once the command's outcome is durable.
    pub async fn outcome(mut self) -> Result<CommandStatus, Unavailable> {
        match self.rx.take() {
            Some(rx) => rx.await.unwrap_or(Err(Unavailable::ShuttingDown)),
            None => self.take_outcome(),
        }
    }

    /// [`Pending::accepted`] for threads outside an async runtime.
    pub fn blocking_accepted(&mut self) -> Result<u64, Unavailable> {
        if let Some(rx) = self.rx.take() {
            self.keep(rx.blocking_recv().unwrap_or(Err(Unavailable::ShuttingDown)));
        }
        self.accepted.clone().expect("kept above")
    }

    /// [`Pending::outcome`] for threads outside an async runtime.
    pub fn blocking_outcome(mut self) -> Result<CommandStatus, Unavailable> {
        match self.rx.take() {
            Some(rx) => rx.blocking_recv().unwrap_or(Err(Unavailable::ShuttingDown)),
            None => self.take_outcome(),
        }
    }

    /// The acknowledgement if it is already there, without waiting.
    pub fn try_accepted(&mut self) -> Option<Result<u64, Unavailable>> {
        self.try_receive()?;
        self.accepted.clone()
    }

    /// The outcome if it is already there, without waiting (once: it is handed over).
    pub fn try_outcome(&mut self) -> Option<Result<CommandStatus, Unavailable>> {
        self.try_receive()?;
        Some(self.take_outcome())
    }

    /// Keeps the answer if it has come; `None` while it has not.
    fn try_receive(&mut self) -> Option<()> {
        if let Some(rx) = &mut self.rx {
            let answer = match rx.try_recv() {
                Ok(answer) => answer,
                Err(oneshot::error::TryRecvError::Empty) => return None,
                Err(oneshot::error::TryRecvError::Closed) => Err(Unavailable::ShuttingDown),
            };
            self.rx = None;
            self.keep(answer);
        }
        Some(())
    }

    fn keep(&mut self, answer: Outcome) {
        self.accepted = Some(match &answer {
            Ok(status) => Ok(status.sequence),
            Err(e) => Err(e.clone()),
        });
        self.outcome = Some(Box::new(answer));
    }

    /// The final status, once; as a closed channel answered, after that.
    fn take_outcome(&mut self) -> Outcome {
        self.outcome
            .take()
            .map_or(Err(Unavailable::ShuttingDown), |outcome| *outcome)
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

/// A checked submission with its id claimed.
enum Prepared {
    Duplicate,
    New(Submit, Pending),
}

/// At most this many records appended since the last round of an online replay's
/// catching up, the writer is paused for the switch ([`Engine::replay_online`] with
/// `apply`): the pause lasts the replay of about this many records, plus the comparison
/// of the two journals, which reads both whole (see the format notes' "An online replay").
pub const SWITCH_TAIL_RECORDS: u64 = 1024;

/// An event-sourcing engine for the domains of a [`Registry`], on one data directory: one
/// journal, one writer, one global log.
///
/// See the crate documentation for the flow of a command. All methods take `&self`; share
/// the engine with an `Arc`. Dropping it shuts it down (see [`Engine::shutdown`]).
#[derive(Debug)]
pub struct Engine {
    shared: Arc<Shared>,
    intake: SyncSender<WriterMsg>,
    /// The single writer's state; the writer thread holds it while it decides, and so
    /// may a submitting thread when the writer is idle ([`Engine::submit_now`]).
    writer: Arc<Mutex<Writer>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Stops the `writ-dedupe` thread.
    dedupe_stop: SyncSender<dedupe::maintain::Msg>,
    /// The `writ-checkpoint` thread and what stops it (none with
    /// `checkpoint_every_records` 0); stopped after the others, when the durable end is
    /// final.
    checkpoint: Mutex<Option<(SyncSender<checkpoint::thread::Msg>, JoinHandle<()>)>>,
    /// The live journal's directory relative to the data directory.
    journal_dir: PathBuf,
    /// The data directory (not the live journal's directory an engine on a replay's
    /// journal sees as its root): where an online replay writes `replay-{n}/`.
    data_dir: Arc<dyn Storage>,
    /// Whether an online replay runs ([`Engine::replay_online`]): one at a time.
    replaying: AtomicBool,
    _lock: Mutex<Option<File>>,
}

/// Creates `path` and its missing parents, then syncs the parent of each directory it
/// created, so that a power cut cannot lose the new directory's entry (and with it every
/// acknowledged command inside): a new directory is durable only once its parent is synced.
/// The log syncs the data directory itself when it creates the journal in it.
fn create_dir_durably(path: &Path) -> Result<(), OpenError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| OpenError::Io { path, source }
    };
    let mut missing = Vec::new();
    let mut at = Some(path);
    while let Some(dir) = at.filter(|d| !d.as_os_str().is_empty()) {
        match std::fs::metadata(dir) {
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => missing.push(dir),
            Err(e) => return Err(io(dir)(e)),
        }
        at = dir.parent();
    }
    std::fs::create_dir_all(path).map_err(io(path))?;
    for dir in missing {
        let parent = dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io(parent))?;
    }
    Ok(())
}

/// Takes the data directory's lock (`writ.lock`, an exclusive `flock`), held while the
/// returned file is open; [`OpenError::Locked`] when another process holds it.
pub(crate) fn lock_data_dir(path: &Path) -> Result<File, OpenError> {
    let io = |path: PathBuf| move |source| OpenError::Io { path, source };
    let lock_path = path.join(LOCK_FILE);
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io(lock_path.clone()))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => Err(OpenError::Locked { path: lock_path }),
        Err(std::fs::TryLockError::Error(e)) => Err(io(lock_path)(e)),
    }
}

impl Engine {
    /// Opens (creating if missing) the engine's store in a directory of the file system,
    /// holding an exclusive lock on it while the engine lives. A directory it creates (and
    /// any parent it creates with it) is made durable in its parent before anything is
    /// written into it.
    pub fn open_dir(
        path: &Path,
        registry: Registry,
        options: EngineOptions,
    ) -> Result<(Self, RecoveryReport), OpenError> {
        create_dir_durably(path)?;
        let lock = lock_data_dir(path)?;
        let (mut engine, report) = Self::open(Arc::new(FsStorage::new(path)), registry, options)?;
        engine._lock = Mutex::new(Some(lock));
        Ok((engine, report))
    }

    /// Opens the engine on any storage (tests use [`writ_log::storage::SimStorage`]) and
    /// recovers: a torn tail cut, indexes, timers and the dedupe window rebuilt from the
    /// journal, and a unit a crash cut short completed before any new command.
    pub fn open(
        storage: Arc<dyn Storage>,
        registry: Registry,
        options: EngineOptions,
    ) -> Result<(Self, RecoveryReport), OpenError> {
        let started = Instant::now();
        options
            .validate()
            .map_err(|detail| OpenError::InvalidOptions { detail })?;
        let mut report = RecoveryReport::default();
        let data_dir = Arc::clone(&storage);
        let recovered = recovery::recover(storage, registry, options, &mut report)?;
        let shared = recovered.shared;

        let storage = Arc::clone(&recovered.storage);
        let options = &shared.options;
        let (intake_tx, intake_rx) = mpsc::sync_channel(options.intake_queue_max);
        let (syncer_tx, syncer_rx) = mpsc::sync_channel(2);
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(f)
                .map_err(|e| OpenError::Io {
                    path: PathBuf::from(name),
                    source: e,
                })
        };
        let mut threads = Vec::new();
        let sync = Arc::new(syncer::SyncPath::new(recovered.journal, syncer_tx, options));
        {
            let shared = Arc::clone(&shared);
            let sync = Arc::clone(&sync);
            threads.push(spawn(
                "writ-syncer",
                Box::new(move || syncer::run_syncer(shared, sync, syncer_rx)),
            )?);
        }
        let command_reader = shared.store.journal.clone();
        let mut writer = Writer::new(
            Arc::clone(&shared),
            recovered.timers,
            shared.store.durable(),
            recovered.last_recorded_ms,
            sync,
        );
        // Before the engine is returned, so that no command is decided ahead of it.
        writer.start(recovered.resume, recovered.resumed_decided);
        let writer = Arc::new(Mutex::new(writer));
        {
            let writer = Arc::clone(&writer);
            let shared = Arc::clone(&shared);
            threads.push(spawn(
                "writ-writer",
                Box::new(move || Writer::run_thread(writer, shared, intake_rx)),
            )?);
        }
        shared
            .metrics
            .dedupe_entries_max
            .set(shared.options.dedupe_entries_max as f64);
        dedupe::maintain::set_gauges(&shared);
        let (dedupe_tx, dedupe_rx) = mpsc::sync_channel(1);
        shared.dedupe.start_waking(dedupe_tx.clone());
        let checkpoint = if options.checkpoint_every_records > 0 {
            let (tx, rx) = mpsc::sync_channel(1);
            let shared = Arc::clone(&shared);
            let storage = Arc::clone(&storage);
            let journal = command_reader.clone();
            let journal_dir = recovered.journal_dir.clone();
            let thread = spawn(
                "writ-checkpoint",
                Box::new(move || {
                    checkpoint::thread::run(shared, storage, journal, journal_dir, rx)
                }),
            )?;
            Some((tx, thread))
        } else {
            None
        };
        {
            let shared = Arc::clone(&shared);
            let window_start = recovered.window_start;
            threads.push(spawn(
                "writ-dedupe",
                Box::new(move || {
                    dedupe::maintain::run(shared, storage, command_reader, window_start, dedupe_rx)
                }),
            )?);
        }
        report.elapsed = started.elapsed();
        Ok((
            Engine {
                shared,
                journal_dir: recovered.journal_dir,
                data_dir,
                replaying: AtomicBool::new(false),
                intake: intake_tx,
                writer,
                threads: Mutex::new(threads),
                dedupe_stop: dedupe_tx,
                checkpoint: Mutex::new(checkpoint),
                _lock: Mutex::new(None),
            },
            report,
        ))
    }

    /// The domains and processes the engine runs.
    pub fn registry(&self) -> &Registry {
        &self.shared.registry
    }

    /// The engine's options.
    pub fn options(&self) -> &EngineOptions {
        &self.shared.options
    }

    /// Validates a command and queues it for the writer. `version` `None` means the
    /// newest. Returns at once: [`Submitted::New`] carries the handles to await the
    /// acknowledgement and the outcome; nothing is acknowledged before its sync.
    pub fn submit(
        &self,
        id: Uuid,
        command: &str,
        version: Option<u32>,
        payload: &[u8],
    ) -> Result<Submitted, SubmitError> {
        self.submit_command(&Submission {
            id,
            command,
            version,
            payload,
            expected_version: None,
        })
    }

    /// [`Engine::submit`] with everything a client may say, `expectedVersion` included.
    /// Commands only processes may issue are refused ([`writ_domain::CommandError::Internal`]).
    pub fn submit_command(&self, submission: &Submission<'_>) -> Result<Submitted, SubmitError> {
        match self.prepare(submission)? {
            Prepared::Duplicate => Ok(Submitted::Duplicate),
            Prepared::New(submit, pending) => self.enqueue(submit, pending),
        }
    }

    /// [`Engine::submit_command`] for a caller that will wait for the outcome: when the
    /// writer is idle (no command queued, the writer thread waiting), the command is
    /// decided on the calling thread, and synced there too when the syncer is idle, so
    /// that its answers are ready when this returns and a lone command pays no hand-off
    /// between threads. Otherwise it is queued, exactly as `submit_command` queues it.
    ///
    /// It may block the calling thread for one journal sync (the lock is only ever taken
    /// without waiting); a caller in an async runtime holds its worker that long. The log
    /// order is the same either way: a command decided here never passes one submitted
    /// before it. Synced on a tokio runtime's thread, the command wakes the subscriptions
    /// waiting for its events from a task spawned on that runtime, which runs once the
    /// caller's task yields (over HTTP, after its answer is written): a caller that then
    /// blocks its thread waiting for a read model holds that wake-up back too.
    pub fn submit_now(&self, submission: &Submission<'_>) -> Result<Submitted, SubmitError> {
        match self.prepare(submission)? {
            Prepared::Duplicate => Ok(Submitted::Duplicate),
            Prepared::New(submit, pending) => {
                match Writer::try_decide_now(&self.writer, submit, &self.intake) {
                    Ok(()) => Ok(Submitted::New(pending)),
                    Err(submit) => self.enqueue(submit, pending),
                }
            }
        }
    }

    /// Checks a submission and claims its id: a command for the writer, or a duplicate.
    fn prepare(&self, submission: &Submission<'_>) -> Result<Prepared, SubmitError> {
        let shared = &*self.shared;
        if shared.is_poisoned() || shared.switched.load(Ordering::Acquire) {
            return Err(SubmitError::Unavailable(shared.unavailable()));
        }
        if !shared.accepting.load(Ordering::Acquire) {
            return Err(SubmitError::Unavailable(Unavailable::ShuttingDown));
        }
        let max = shared.options.command_bytes_max;
        if submission.payload.len() > max {
            return Err(SubmitError::TooLarge {
                size: submission.payload.len(),
                max,
            });
        }
        let (domain, decoded) = shared.registry.decode(
            submission.command,
            submission.version,
            submission.payload,
            From::Client,
        )?;
        if decoded.canonical_payload.len() > max {
            return Err(SubmitError::TooLarge {
                size: decoded.canonical_payload.len(),
                max,
            });
        }
        if shared.timers_pending.load(Ordering::Relaxed) >= shared.options.timers_max {
            return Err(SubmitError::Overloaded(Overload::TimersFull));
        }
        let id = submission.id;
        let name = shared.registry.command_name(submission.command);
        let fingerprint = dedupe::fingerprint(
            &name,
            decoded.version,
            submission.expected_version,
            &decoded.canonical_payload,
        );
        match shared
            .dedupe
            .reserve(id, fingerprint)
            .map_err(SubmitError::Read)?
        {
            Reserve::Reserved => {}
            Reserve::Duplicate => {
                shared.stats.duplicates.fetch_add(1, Ordering::Relaxed);
                shared.metrics.commands_duplicate.increment(1);
                return Ok(Prepared::Duplicate);
            }
            Reserve::Conflict => return Err(SubmitError::Conflict { id }),
            Reserve::Full => return Err(SubmitError::Overloaded(Overload::DedupeIndexFull)),
        }
        let (reply, rx) = oneshot::channel();
        let submit = Submit {
            id,
            name,
            version: decoded.version,
            expected_version: submission.expected_version,
            payload: decoded.canonical_payload,
            domain,
            command: decoded.command,
            reply,
        };
        let pending = Pending {
            id,
            rx: Some(rx),
            accepted: None,
            outcome: None,
        };
        Ok(Prepared::New(submit, pending))
    }

    /// Queues a prepared command for the writer thread.
    fn enqueue(&self, submit: Submit, pending: Pending) -> Result<Submitted, SubmitError> {
        let shared = &*self.shared;
        let id = submit.id;
        // Counted before it is queued: the writer counts it down when it takes it.
        shared.queued.fetch_add(1, Ordering::AcqRel);
        match self.intake.try_send(WriterMsg::Submit(submit)) {
            Ok(()) => Ok(Submitted::New(pending)),
            Err(e) => {
                shared.queued.fetch_sub(1, Ordering::Relaxed);
                shared.dedupe.release(id);
                shared.waiters.wake(std::iter::once(&id));
                Err(match e {
                    TrySendError::Full(_) => SubmitError::Overloaded(Overload::IntakeQueueFull),
                    TrySendError::Disconnected(_) => SubmitError::Unavailable(shared.unavailable()),
                })
            }
        }
    }

    fn lookup(&self, id: Uuid) -> Result<Lookup, ReadError> {
        match self.shared.dedupe.get(&id)? {
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

    /// The live journal's directory, relative to the data directory: `journal`, or
    /// `replay-{n}/journal` once a replay was applied (`CURRENT`).
    pub fn journal_dir(&self) -> &Path {
        &self.journal_dir
    }

    /// Replays the live journal beside live traffic, as `writ replay` does offline
    /// ([`crate::replay`]): every client's command decided again by this engine's
    /// handlers (its registry), in order and at its logged time, into a new
    /// `replay-{n}/journal/` of the data directory, then compared with the live journal
    /// and `REPLAYED` written. The live journal is read through the engine's own reader
    /// (reads take no lock the writer waits on) up to its published end, again until the
    /// replay has caught up with the writer (at most [`crate::replay::CATCH_UP_ROUNDS`]
    /// rounds); the report covers the live journal's first `report.live_records`
    /// records.
    ///
    /// Without `apply` nothing live changes. With `apply` the replay's journal becomes
    /// the live one, in this order:
    /// 1. once a round of catching up found at most [`SWITCH_TAIL_RECORDS`] new records (or
    ///    at the last round), the writer is paused: this thread takes it, and waits for
    ///    what it decided last to be durable, so the live journal's end is final.
    ///    Commands submitted meanwhile wait in the intake queue;
    /// 2. the last records are replayed, the journals compared, `REPLAYED` written;
    /// 3. this engine is switched off ([`Unavailable::Switched`]: the commands waiting
    ///    for the writer, and any submitted later, are refused so, never logged) and shut
    ///    down;
    /// 4. `CURRENT` names the replay's journal ([`crate::replay::apply`]).
    ///
    /// A failure before step 3 lets the writer go on: the live journal is as it was, and
    /// nothing was refused. From step 3 on, whatever the result, the engine decides
    /// nothing more ([`Engine::is_switched`]): open the one that serves next with
    /// [`Engine::reopen`], on the replay's journal, or on the old one if step 4 failed.
    /// Every command this engine acknowledged is in the journal that is live after it
    /// (they were all replayed at step 2).
    ///
    /// Runs on the calling thread (seconds to minutes: call it on a thread of its own);
    /// `progress` is told where it is. One at a time: a second call while one runs is
    /// [`ReplayError::Running`](crate::replay::ReplayError::Running). It gives up with
    /// [`ReplayError::Stopped`](crate::replay::ReplayError::Stopped) when the engine
    /// shuts down or is poisoned meanwhile (its `replay-{n}/` then has no `REPLAYED`).
    /// While it runs, the engine (and its data directory's lock) stays alive, since the
    /// caller holds it.
    pub fn replay_online(
        &self,
        apply: bool,
        progress: &mut dyn FnMut(crate::replay::Progress),
    ) -> Result<crate::replay::Replayed, crate::replay::ReplayError> {
        use crate::replay::ReplayError;
        struct Running<'a>(&'a AtomicBool);
        impl Drop for Running<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        if self.is_switched() {
            return Err(ReplayError::Stopped {
                detail: "this engine's journal was switched by an earlier replay".to_owned(),
            });
        }
        if self.replaying.swap(true, Ordering::AcqRel) {
            return Err(ReplayError::Running);
        }
        let _running = Running(&self.replaying);
        if let Some(dir) = self.unapplied_replay() {
            return Err(ReplayError::Unapplied { dir });
        }
        let shared = &*self.shared;
        // The writer, held from the pause (step 1) until this engine is switched off or
        // the replay failed.
        let mut paused: Option<MutexGuard<'_, Writer>> = None;
        let mut calls = 0;
        let mut seen = 0;
        let result = {
            let mut live_end = || {
                if shared.is_poisoned() {
                    return Err(ReplayError::Stopped {
                        detail: format!("the live store failed: {}", shared.unavailable()),
                    });
                }
                if !shared.accepting.load(Ordering::Acquire) {
                    return Err(ReplayError::Stopped {
                        detail: "the engine is shutting down".to_owned(),
                    });
                }
                // Published ends fall between units (a unit is published whole).
                let end = shared.store.durable();
                calls += 1;
                // The first call is the start; each later one follows a round.
                let last_round = calls > crate::replay::CATCH_UP_ROUNDS;
                if apply
                    && paused.is_none()
                    && calls > 1
                    && (end - seen <= SWITCH_TAIL_RECORDS || last_round)
                {
                    paused = Some(self.pause_writer());
                    if shared.is_poisoned() {
                        return Err(ReplayError::Stopped {
                            detail: format!("the live store failed: {}", shared.unavailable()),
                        });
                    }
                    return Ok(shared.store.durable());
                }
                seen = end;
                Ok(end)
            };
            crate::replay::replay_live(
                Arc::clone(&self.data_dir),
                shared.registry.clone(),
                shared.options.clone(),
                self.journal_dir.clone(),
                &shared.store.journal,
                &mut live_end,
                progress,
            )
        };
        let Some(writer) = paused else {
            debug_assert!(
                !apply || result.is_err(),
                "a replay to apply pauses the writer"
            );
            return result;
        };
        let replayed = result?; // the writer, let go, goes on
        shared.switched.store(true, Ordering::Release);
        shared.metrics.journal_switches.increment(1);
        drop(writer);
        tracing::info!(
            journal = %replayed.journal.display(),
            "online replay: this engine is switched off; the replay's journal goes live"
        );
        self.shutdown();
        crate::replay::apply(self.data_dir.as_ref(), &replayed)?;
        Ok(replayed)
    }

    /// Takes the writer and waits until what it decided is durable and published, and
    /// the syncer holds nothing (or the engine is poisoned): from then on, while the
    /// guard is held, the journal's published end does not move.
    fn pause_writer(&self) -> MutexGuard<'_, Writer> {
        let writer = crate::writer::lock(&self.writer);
        while !writer.is_settled() && !self.shared.is_poisoned() {
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
        writer
    }

    /// Whether an online replay switched this engine off
    /// ([`Engine::replay_online`] with `apply`): it decides nothing more.
    pub fn is_switched(&self) -> bool {
        self.shared.switched.load(Ordering::Acquire)
    }

    /// The engine that serves after this one was switched off: opened on the same data
    /// directory (the journal `CURRENT` names now), with the same domains and options,
    /// recovered as any start. It takes over this engine's lock on the data directory.
    /// Refused while this engine still runs (it would be two writers on one journal):
    /// [`OpenError::InvalidOptions`] saying so.
    pub fn reopen(&self) -> Result<(Engine, RecoveryReport), OpenError> {
        if !self.threads.lock().expect("threads lock").is_empty() {
            return Err(OpenError::InvalidOptions {
                detail: "reopen: the engine still runs; it must be shut down first".to_owned(),
            });
        }
        let (mut engine, report) = Engine::open(
            Arc::clone(&self.data_dir),
            self.shared.registry.clone(),
            self.shared.options.clone(),
        )?;
        engine._lock = Mutex::new(self._lock.lock().expect("lock of the lock").take());
        Ok((engine, report))
    }

    /// The directory (relative to the data directory) of a replay written in full and
    /// not applied, if one is on disk: [`Engine::replay_online`] refuses to start while
    /// there is one, so that online replays keep at most one journal beside the live one.
    pub fn unapplied_replay(&self) -> Option<PathBuf> {
        crate::replay::unapplied_replay(self.data_dir.as_ref(), &self.journal_dir)
    }

    /// Whether an online replay runs ([`Engine::replay_online`]).
    pub fn is_replaying(&self) -> bool {
        self.replaying.load(Ordering::Acquire)
    }

    /// The last durable position (0 before the first event).
    pub fn last_position(&self) -> u64 {
        self.shared.store.last_position()
    }

    /// A live subscription to the global log from `from_position`; see [`Subscription`].
    pub fn subscribe(&self, from_position: u64) -> Subscription {
        Subscription::new(
            Arc::clone(&self.shared) as Arc<dyn crate::subscription::Source>,
            from_position,
        )
    }

    /// Whether the engine has nothing to do by its clock: no command waits for the writer,
    /// no timer is due, and everything decided is durable (and published). For tests that
    /// move a [`ManualClock`](crate::ManualClock) and wait for what falls due to be done.
    pub fn is_idle(&self) -> bool {
        // The writer's lock is held while a batch is decided and handed to be synced.
        self.writer.try_lock().is_ok_and(|writer| writer.is_idle())
    }

    /// Durable timers pending.
    pub fn timers_pending(&self) -> usize {
        self.shared.timers_pending.load(Ordering::Relaxed)
    }

    /// Counters since open.
    pub fn stats(&self) -> EngineStats {
        let s = &self.shared.stats;
        let runs = self.shared.dedupe.runs();
        EngineStats {
            commands_accepted: s.commands_accepted.load(Ordering::Relaxed),
            commands_issued: s.commands_issued.load(Ordering::Relaxed),
            timers_fired: s.timers_fired.load(Ordering::Relaxed),
            duplicates: s.duplicates.load(Ordering::Relaxed),
            batches: s.batches.load(Ordering::Relaxed),
            writer_syncs: s.writer_syncs.load(Ordering::Relaxed),
            decided_on_submit: s.decided_on_submit.load(Ordering::Relaxed),
            succeeded: s.succeeded.load(Ordering::Relaxed),
            rejected: s.rejected.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            reactions_failed: s.reactions_failed.load(Ordering::Relaxed),
            dedupe_entries: self.shared.dedupe.entries() as usize,
            dedupe_hot_entries: self.shared.dedupe.len(),
            dedupe_runs: runs.len(),
            dedupe_run_bytes: runs.iter().map(|r| r.footer().file_bytes()).sum(),
            dedupe_memory_bytes: self.shared.dedupe.memory_bytes(),
            dedupe_spill_failures: s.dedupe_spill_failures.load(Ordering::Relaxed),
            intake_queue_depth: self.shared.queued.load(Ordering::Relaxed),
            timers_pending: self.shared.timers_pending.load(Ordering::Relaxed),
            journal_open_segment_files: self.shared.store.journal.open_segment_files(),
            journal_segment_opens: self.shared.store.journal.segment_opens(),
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
        let _ = self.intake.send(WriterMsg::Shutdown);
        for thread in threads {
            if thread.thread().name() == Some("writ-dedupe") {
                // After the writer and the syncer (joined before it): it spills the hot
                // map's durable ids, which are then all of them.
                let _ = self.dedupe_stop.send(dedupe::maintain::Msg::Stop);
            }
            let _ = thread.join();
        }
        if let Some((stop, thread)) = self.checkpoint.lock().expect("checkpoint lock").take() {
            let _ = stop.send(checkpoint::thread::Msg::Stop);
            let _ = thread.join();
        }
        self.shared.store.close();
        self.shared.waiters.wake_all();
    }
}

impl Drop for Engine {
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

impl crate::subscription::Source for Shared {
    fn store(&self) -> &crate::store::Store {
        &self.store
    }
}
