//! Replay: every client's command of the live journal run again, in order, through the
//! handlers of this build, into a new journal beside it (`replay-{n}/journal/`), and a
//! report of each command whose outcome differs ([`report`]). [`apply`] makes the new
//! journal the live one (`CURRENT`, see [`crate::current`]).
//!
//! The decisions are the writer's own (`Writer::replay_command`, `Writer::replay_timers`):
//! the same executors, processes, timers and record encoding, on a writer with no intake
//! and no dedupe thread, whose clock is the replayed journal's; a syncer thread of its own
//! appends and syncs while the next records are decided:
//!
//! - A client's command is decided at the time the journal logged it, as a unit of its
//!   own; the commands its events make processes issue follow it, with ids derived from
//!   the events as live. Commands of origin `process` and `timer` in the old journal are
//!   not copied: this build's processes and timers produce theirs again.
//! - Where the old journal has a timer that fired, the replay fires its own timers due by
//!   that record's time, all of them as the writer thread does at a batch's start. Before
//!   a client's command at time *t* it fires those due by *t* that the old journal does
//!   not hold pending at that point with the same id and time (a timer of this build's
//!   own, which the old journal will never fire): so an unchanged build fires every timer
//!   where the old journal did, and a changed one fires its new timers when the replay's
//!   clock reaches them. Timers still pending at the end stay pending in the new journal.
//! - Records are handed to the syncer in batches of [`SYNC_BATCHES`] × `batch_bytes_max`
//!   bytes (one `fdatasync` each, at most two batches ahead of the disk), the
//!   new journal's directories synced as the log creates them, then `REPLAYED` is written
//!   beside the journal, durably: only a replay with it can be applied.
//!
//! The dedupe index of the replay holds the ids within the window of the replay's clock
//! (evicted as the clock moves, after each sync), so that a process's command whose id is
//! taken is skipped as it was live. It spills to runs in `replay-{n}/dedupe/` as a live
//! engine's does (after each sync, once `dedupe_spill_entries` ids are durable since the
//! last run), so a replay holds about as many ids in memory as a live engine; an engine
//! opens those runs once the replay is live, and rebuilds the rest from the journal.

pub mod report;

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use writ_log::storage::{FsStorage, Storage};
use writ_log::{Log, LogOptions, LogReader};

use crate::clock::ManualClock;
use crate::current::{self, REPLAYED_FILE};
use crate::dedupe;
use crate::dedupe::runs::DEDUPE_DIR;
use crate::error::{OpenError, ReadError};
use crate::options::EngineOptions;
use crate::record::{JournalRecord, Origin};
use crate::recovery::{self, JOURNAL_DIR};
use crate::registry::Registry;
use crate::shared::Shared;
use crate::store::Store;
use crate::syncer::{self, SyncPath};
use crate::timers::Timers;
use crate::writer::Writer;

pub use report::{Difference, DifferenceKind, LoggedOutcome, ReplayReport};

/// Bytes of records decided before the replay syncs them (one `fdatasync`), in
/// `batch_bytes_max` (1 MiB by default): 8 MiB.
pub const SYNC_BATCHES: usize = 8;

/// Why a replay (or its apply) did not complete. The live journal is unchanged
/// whichever it is; a replay cut short leaves a `replay-{n}/` without `REPLAYED`, which
/// the next replay writes over.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The data directory could not be opened: locked by a running server
    /// ([`OpenError::Locked`]: stop it first), a `CURRENT` this build does not read, or
    /// the live journal could not be recovered.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The data directory holds no journal.
    #[error("{path} holds no journal: not a Writ data directory")]
    NoJournal {
        /// The data directory.
        path: PathBuf,
    },
    /// A record of the live journal could not be read or decoded.
    #[error("the live journal: {0}")]
    Read(#[from] ReadError),
    /// Writing the new journal failed (a full disk, a failing device); nothing was
    /// switched.
    #[error("writing the replay: {detail}")]
    Write {
        /// What failed.
        detail: String,
    },
    /// An online replay ([`crate::Engine::replay_online`]) is already running on this
    /// engine: one at a time.
    #[error("a replay is already running; wait for it to finish")]
    Running,
    /// An online replay's journal from before, written in full and not applied, is on
    /// disk (`dir`): an online replay writes a whole journal, so one at most is kept.
    /// Apply it offline (`writ replay --apply` replays again and switches) or delete it.
    #[error(
        "{dir} holds a replay written in full and not applied; delete it (or apply a replay offline) before the next"
    )]
    Unapplied {
        /// The replay's directory, relative to the data directory.
        dir: PathBuf,
    },
    /// The engine an online replay ran beside shut down, or refuses writes after an I/O
    /// failure, before the replay was written in full: it was given up (its
    /// `replay-{n}/` has no `REPLAYED`, and the next replay writes over it).
    #[error("the replay was given up: {detail}")]
    Stopped {
        /// Why.
        detail: String,
    },
    /// The file system failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> ReplayError + '_ {
    move |source| ReplayError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where the replay is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Deciding the live journal's records again.
    Replaying,
    /// Beside a running engine: deciding the records the live writer appended while
    /// the replay went through the ones before ([`CATCH_UP_ROUNDS`]).
    CatchingUp,
    /// Comparing the two journals' outcomes.
    Comparing,
}

/// What a replay's progress callback is told: `done` of `total` records of the live
/// journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// The phase.
    pub phase: Phase,
    /// Records done.
    pub done: u64,
    /// Records of the live journal (as far as the replay goes: it grows while an
    /// online replay catches up).
    pub total: u64,
    /// Commands that differ among those compared so far (0 before [`Phase::Comparing`]).
    pub differences: u64,
}

/// A replay written in full.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Replayed {
    /// The journal replayed (`journal` or `replay-{m}/journal`), relative to the data
    /// directory.
    pub source: PathBuf,
    /// The new journal (`replay-{n}/journal`), relative to the data directory.
    pub journal: PathBuf,
    /// Timers pending at the new journal's end.
    pub timers_pending: usize,
    /// What differs.
    pub report: ReplayReport,
}

impl Replayed {
    /// The whole report as JSON (the file `writ replay --report` writes, and what
    /// `GET /admin/replay` shows once a replay is done): [`ReplayReport::to_json`] with
    /// the journal replayed (`source`), the new one (`journal`) and whether it was made
    /// live (`applied`).
    pub fn report_json(&self, applied: bool) -> serde_json::Value {
        let mut json = self.report.to_json();
        json["source"] = self.source.display().to_string().into();
        json["journal"] = self.journal.display().to_string().into();
        json["applied"] = applied.into();
        json
    }
}

/// Replays the data directory at `path`, holding its lock (a running server holds it:
/// [`OpenError::Locked`]), and with `apply` makes the new journal the live one.
pub fn replay_data_dir(
    path: &Path,
    registry: Registry,
    options: EngineOptions,
    apply: bool,
    progress: &mut dyn FnMut(Progress),
) -> Result<Replayed, ReplayError> {
    // Before the lock, which would leave a `writ.lock` in a directory that is no store.
    let is_store = path.join(JOURNAL_DIR).is_dir() || path.join(current::CURRENT_FILE).is_file();
    if !is_store {
        return Err(ReplayError::NoJournal {
            path: path.to_owned(),
        });
    }
    let _lock: File = crate::engine::lock_data_dir(path)?;
    let storage: Arc<dyn Storage> = Arc::new(FsStorage::new(path));
    let replayed = replay(Arc::clone(&storage), registry, options, progress)?;
    if apply {
        self::apply(storage.as_ref(), &replayed)?;
    }
    Ok(replayed)
}

/// Replays the live journal of the data directory `storage` holds into a new journal
/// beside it and compares them. The caller holds the data directory's lock (see
/// [`replay_data_dir`]). `options` are the engine's (the log's segment size, the dedupe
/// window, `process_chain_max`, ...); their clock is not used.
pub fn replay(
    storage: Arc<dyn Storage>,
    registry: Registry,
    options: EngineOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Replayed, ReplayError> {
    options
        .validate()
        .map_err(|detail| OpenError::InvalidOptions { detail })?;
    recovery::refuse_old_layout(storage.as_ref())?;
    let source = current::live_journal(storage.as_ref())?;
    let has_journal = storage
        .list(&source)
        .is_ok_and(|names| names.iter().any(|n| n.ends_with(".wlog")));
    if !has_journal {
        return Err(ReplayError::NoJournal {
            path: source.clone(),
        });
    }
    // Opened as an engine opens it (a torn tail cut), without a spare segment prepared.
    let (old, _) = Log::open(
        Arc::clone(&storage),
        &source,
        LogOptions {
            preallocate: false,
            ..options.log.clone()
        },
    )
    .map_err(|source| OpenError::Log {
        log: "journal",
        source,
    })?;
    let old_reader = old.reader();
    let total = old_reader.durable_seq();
    let replayed = write_replay(
        storage,
        registry,
        options,
        source,
        &old_reader,
        &mut || Ok(total),
        progress,
    );
    drop(old);
    replayed
}

/// Rounds of catching up an online replay makes after its first pass over the live
/// journal: each replays what the live writer appended during the one before, which
/// takes less time as long as the replay is faster than the live writes; after the last,
/// the replay ends where the live journal's published end then was.
pub const CATCH_UP_ROUNDS: u32 = 16;

/// [`replay`] beside a running engine: the live journal is read through the engine's own
/// reader (`old_reader`, the journal in `source`) while its writer keeps appending, up to
/// the end `live_end` says is published (a unit's records are published together), again
/// and again until no record was appended meanwhile or [`CATCH_UP_ROUNDS`] rounds are
/// done. `live_end` fails to stop the replay (the engine shuts down or is poisoned).
/// Nothing of the live engine is written: the replay's journal, dedupe runs and
/// `REPLAYED` are in `replay-{n}/`, and its metrics go nowhere (the live ones are not
/// counted twice, nor its failure reported as the live store's).
pub(crate) fn replay_live(
    storage: Arc<dyn Storage>,
    registry: Registry,
    options: EngineOptions,
    source: PathBuf,
    old_reader: &LogReader,
    live_end: &mut dyn FnMut() -> Result<u64, ReplayError>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Replayed, ReplayError> {
    let noop = metrics::NoopRecorder;
    metrics::with_local_recorder(&noop, || {
        write_replay(
            storage, registry, options, source, old_reader, live_end, progress,
        )
    })
}

/// The replay proper: the records of `old_reader` (the journal in `source`) up to the
/// end `live_end` says, decided again into a fresh `replay-{n}/journal/`, compared, and
/// `REPLAYED` written.
fn write_replay(
    storage: Arc<dyn Storage>,
    registry: Registry,
    mut options: EngineOptions,
    source: PathBuf,
    old_reader: &LogReader,
    live_end: &mut dyn FnMut() -> Result<u64, ReplayError>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Replayed, ReplayError> {
    let clock = ManualClock::at_ms(0);
    options.clock = Arc::new(clock.clone());
    let mut total = live_end()?;

    let dir = fresh_replay_dir(storage.as_ref())?;
    let journal = dir.join(JOURNAL_DIR);
    storage.create_dir_all(&dir).map_err(io_error(&dir))?;
    // The new directory's entry must be durable before anything in it is.
    storage
        .sync_dir(Path::new(""))
        .map_err(io_error(Path::new("")))?;
    // A journal of its own from record 0: the archive of the one replayed is not its.
    let (new, _) = Log::open(
        Arc::clone(&storage),
        &journal,
        LogOptions {
            archive_dir: None,
            ..options.log.clone()
        },
    )
    .map_err(|source| OpenError::Log {
        log: "journal",
        source,
    })?;
    let new_reader = new.reader();
    // The replay's dedupe runs sit beside its journal (`replay-{n}/dedupe/`), where an
    // engine on that journal opens them once it is live.
    let runs_storage = current::engine_storage(Arc::clone(&storage), &journal);
    runs_storage
        .create_dir_all(Path::new(DEDUPE_DIR))
        .and_then(|()| runs_storage.sync_dir(Path::new("")))
        .map_err(io_error(&dir.join(DEDUPE_DIR)))?;
    let store = Store::new(new.reader(), registry.clone());
    let shared = Arc::new(Shared::new(registry, options, store));
    // A syncer thread of its own, as the engine's: this thread decides the next records
    // while the last ones are appended, synced and indexed (the two take about the same
    // time per command). The channel's bound holds the decisions at most two batches
    // ahead of the disk.
    let (syncer_tx, syncer_rx) = std::sync::mpsc::sync_channel(2);
    let sync_bytes = SYNC_BATCHES * shared.options.batch_bytes_max;
    // A batch's buffers are kept for the next ones: at most a few of twice the batch
    // (a `Vec` grows by doubling past it), a few tens of MiB for the whole replay.
    let sync = Arc::new(SyncPath::new(new, syncer_tx, &shared.options).retaining(
        2 * sync_bytes,
        2 * SYNC_BATCHES * shared.options.batch_records_max,
    ));
    let syncer = {
        let shared = Arc::clone(&shared);
        let sync = Arc::clone(&sync);
        std::thread::Builder::new()
            .name("writ-replay-syncer".to_owned())
            .spawn(move || syncer::run_syncer(shared, sync, syncer_rx))
            .map_err(io_error(Path::new("writ-replay-syncer")))?
    };
    let mut writer = Writer::new(
        Arc::clone(&shared),
        Timers::default(),
        0,
        0,
        Arc::clone(&sync),
    );

    // The old journal's pending timers, folded as the records go by: a replay's timer
    // pending there too (same id, same time) fires where the old journal fired it.
    let mut old_timers = Timers::default();
    let mut evicted_to = 0;
    let mut next = 0;
    let mut phase = Phase::Replaying;
    let mut failed = None;
    let mut buf = Vec::new();
    'rounds: for round in 0..=CATCH_UP_ROUNDS {
        let step = ((total - next) / 200).max(1);
        let mut iter = old_reader.iter_from_reusing(next, buf);
        while next < total {
            let Some(item) = iter.next_record() else {
                // The reader's end is at least the published one: a record missing
                // below it is a journal that failed under the replay.
                failed = Some(ReplayError::Write {
                    detail: format!("the live journal ended at record {next}, before {total}"),
                });
                break 'rounds;
            };
            let (seq, bytes) = match item {
                Ok(item) => item,
                Err(e) => {
                    failed = Some(ReadError::Log(e).into());
                    break 'rounds;
                }
            };
            let record = match JournalRecord::decode(bytes) {
                Ok(record) => record,
                Err(source) => {
                    failed = Some(ReadError::Record { seq, source }.into());
                    break 'rounds;
                }
            };
            next = seq + 1;
            let at = record.recorded_at_ms;
            match record.origin {
                Origin::Client => {
                    clock.set_ms(at);
                    writer.replay_timers(at, &|timer| {
                        !old_timers.is_pending_at(timer.command.id, timer.at_ms)
                    });
                    writer.replay_command(&record);
                }
                Origin::Timer => {
                    clock.set_ms(at);
                    writer.replay_timers(at, &|_| true);
                }
                Origin::Process => {}
            }
            recovery::fold_timers(&mut old_timers, &record);
            if writer.replay_pending_bytes() >= sync_bytes {
                writer.replay_sync();
                if shared.is_poisoned() {
                    break 'rounds;
                }
                evicted_to = dedupe::maintain::evict_hot(&shared, &new_reader, evicted_to);
                dedupe::maintain::spill_for_replay(&shared, runs_storage.as_ref(), &new_reader);
            }
            if seq % step == 0 {
                progress(Progress {
                    phase,
                    done: seq + 1,
                    total,
                    differences: 0,
                });
            }
        }
        buf = iter.into_buffer();
        if round == CATCH_UP_ROUNDS {
            break;
        }
        match live_end() {
            Ok(end) if end > total => {
                total = end;
                phase = Phase::CatchingUp;
            }
            Ok(_) => break,
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    writer.replay_sync();
    // Everything decided is handed over; the syncer stops once it has synced it.
    sync.shut_down();
    if syncer.join().is_err() {
        shared.poison("internal error: the replay's syncer thread panicked".to_owned());
    }
    if let Some(error) = failed {
        return Err(error);
    }
    progress(Progress {
        phase,
        done: total,
        total,
        differences: 0,
    });
    if shared.is_poisoned() {
        return Err(ReplayError::Write {
            detail: shared.unavailable().to_string(),
        });
    }
    // The tail's ids too, when a spill is due: less for the first open to rebuild.
    dedupe::maintain::evict_hot(&shared, &new_reader, evicted_to);
    dedupe::maintain::spill_for_replay(&shared, runs_storage.as_ref(), &new_reader);
    let timers_pending = writer.timers_pending();
    let report = report::compare(old_reader, total, &new_reader, &mut |done, differences| {
        progress(Progress {
            phase: Phase::Comparing,
            done,
            total,
            differences,
        })
    })?;
    drop(writer);
    shared.store.close();
    let marker = format!(
        "source={}\ncommands={}\n",
        source.display(),
        new_reader.durable_seq()
    );
    current::write_durably(storage.as_ref(), &dir, REPLAYED_FILE, marker.as_bytes())
        .map_err(io_error(&dir.join(REPLAYED_FILE)))?;
    Ok(Replayed {
        source,
        journal,
        timers_pending,
        report,
    })
}

/// The directory for a new replay: the first `replay-{n}` that does not exist, or that a
/// replay cut short left (no `REPLAYED`), emptied. A replay written in full is never
/// written over: it may be (or have been) the live journal.
/// A replay directory of the data directory (`replay-{n}/`) written in full (`REPLAYED`)
/// whose journal is not `live` (the live journal's directory): a replay not applied.
/// Replays take the lowest free number, so the directories are looked for in order, past
/// up to [`REPLAY_DIR_GAP_MAX`] missing ones in a row (those an operator deleted).
pub(crate) fn unapplied_replay(storage: &dyn Storage, live: &Path) -> Option<PathBuf> {
    let mut missing = 0;
    for n in 1.. {
        let dir = PathBuf::from(current::replay_dir_name(n));
        match storage.list(&dir) {
            Err(_) => {
                missing += 1;
                if missing > REPLAY_DIR_GAP_MAX {
                    return None;
                }
            }
            Ok(_) => {
                missing = 0;
                if !live.starts_with(&dir) && current::is_replayed(storage, &dir) {
                    return Some(dir);
                }
            }
        }
    }
    None
}

/// Missing `replay-{n}/` directories in a row past which [`unapplied_replay`] stops
/// looking.
const REPLAY_DIR_GAP_MAX: u32 = 16;

fn fresh_replay_dir(storage: &dyn Storage) -> Result<PathBuf, ReplayError> {
    for n in 1.. {
        let dir = PathBuf::from(current::replay_dir_name(n));
        match storage.list(&dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(dir),
            Err(e) => return Err(io_error(&dir)(e)),
            Ok(_) if current::is_replayed(storage, &dir) => continue,
            Ok(names) => {
                for sub in [JOURNAL_DIR, DEDUPE_DIR] {
                    empty_dir(storage, &dir.join(sub))?;
                }
                for name in names {
                    let path = dir.join(name);
                    storage.remove(&path).map_err(io_error(&path))?;
                }
                storage.sync_dir(&dir).map_err(io_error(&dir))?;
                return Ok(dir);
            }
        }
    }
    unreachable!("a u64 of replay directories")
}

/// Removes every file of `dir` (missing: nothing) and syncs it.
fn empty_dir(storage: &dyn Storage, dir: &Path) -> Result<(), ReplayError> {
    let names = match storage.list(dir) {
        Ok(names) => names,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error(dir)(e)),
    };
    for name in names {
        let path = dir.join(name);
        storage.remove(&path).map_err(io_error(&path))?;
    }
    storage.sync_dir(dir).map_err(io_error(dir))
}

/// Makes the replay's journal the live one: `CURRENT` names it (written to
/// `CURRENT.tmp`, synced, renamed, the data directory synced); then the dedupe runs of
/// the journal that was live are removed (they name its sequence numbers). The old
/// journal stays until it is deleted by hand.
///
/// A crash before the rename is durable leaves the old journal live; after it, the new
/// one, whose dedupe runs are its own (`replay-{n}/dedupe/`, rebuilt from it at open), so
/// runs of the old journal left by a crash before their removal are never read.
pub fn apply(storage: &dyn Storage, replayed: &Replayed) -> Result<(), ReplayError> {
    let dir = replayed.journal.parent().unwrap_or(Path::new(""));
    if !current::is_replayed(storage, dir) {
        return Err(ReplayError::Write {
            detail: format!(
                "{} has no {REPLAYED_FILE}: not a replay written in full",
                dir.display()
            ),
        });
    }
    current::write_current(storage, &replayed.journal)
        .map_err(io_error(Path::new(current::CURRENT_FILE)))?;
    // Only a hint for the old journal: a failure leaves files that are never read.
    let old_runs = replayed
        .source
        .parent()
        .unwrap_or(Path::new(""))
        .join(DEDUPE_DIR);
    if let Err(error) = empty_dir(storage, &old_runs) {
        tracing::warn!(%error, dir = %old_runs.display(), "the dedupe runs of the journal that was live could not be removed; they are never read, and may be deleted by hand");
    }
    Ok(())
}
