//! Opening an engine's store: the rows of the engine recovery table in
//! `docs/log-format.md`, one function each, run in order by [`recover`].
//!
//! 1. [`refuse_old_layout`]: a data directory of the two-log layout is not opened.
//!    `CURRENT` names the live journal ([`current::live_journal`]); the rest sees that
//!    journal's directory as its root, so that its dedupe runs are its own.
//! 2. The journal log is opened; the log engine cuts a torn or corrupt tail (never
//!    acknowledged) and refuses damage before it.
//! 3. [`load_checkpoint`]: the newest valid engine checkpoint (the checkpoint decision
//!    table) gives the indexes, timers, positions and last unit of the records it covers.
//! 4. [`scan`]: one pass over the records after it rebuilds the rest of the indexes
//!    (checking that positions follow each other), the pending timers and the clock's
//!    floor; the dedupe window's records no run covers (which may precede the checkpoint:
//!    read by their dedupe fields only) go to runs and the hot map.
//! 5. [`resume_unit`]: when a crash cut the last unit short (its first commands are durable,
//!    some of the commands their events made processes issue are not), the missing commands
//!    are decided first, before any new one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use writ_domain::{EventView, Issued, Reactions};
use writ_log::storage::Storage;
use writ_log::{Log, LogReader, TailTruncation};

use crate::checkpoint::{self, Folded};
use crate::current;
use crate::dedupe::runs::{self, Run, RunBuilder};
use crate::dedupe::{self, Slot};
use crate::error::{OpenError, ReadError};
use crate::options::EngineOptions;
use crate::record::{CommitStatus, JournalRecord, Origin, RecordTimerOp};
use crate::registry::Registry;
use crate::shared::Shared;
use crate::store::Store;
use crate::timers::{Timer, Timers};
use crate::writer::Queued;

/// The journal's directory in the data directory.
pub const JOURNAL_DIR: &str = "journal";

/// What opening an engine found and did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Commands in the journal, each with its outcome.
    pub commands: u64,
    /// Events in the journal.
    pub events: u64,
    /// Ids in the dedupe index (those within the window): in its hot map and its runs.
    pub dedupe_entries: usize,
    /// Runs of the dedupe index kept or written.
    pub dedupe_runs: usize,
    /// Runs of the dedupe index removed (unfinished, damaged, overlapping, past the
    /// journal's end or out of the window); each is logged with why.
    pub dedupe_runs_removed: usize,
    /// Runs of the dedupe index written at open from the journal (what no valid run
    /// covered, at most `dedupe_spill_entries` ids each).
    pub dedupe_runs_written: usize,
    /// Durable timers pending.
    pub timers_pending: usize,
    /// Commands of a unit a crash cut short, decided now before any new command: issued
    /// by processes in reaction to durable events, they had not reached the disk. (What
    /// their own events make processes issue follows them, in the same unit.)
    pub resumed: usize,
    /// A torn or corrupt tail cut off by recovery (never acknowledged records).
    pub truncated: Option<TailTruncation>,
    /// The engine checkpoint loaded: the journal records it covers (`[0, seq)`), which
    /// were not scanned but for the dedupe window's ids; `None`: the whole journal was
    /// scanned.
    pub checkpoint: Option<u64>,
    /// Engine checkpoint files ignored, each with why: `.tmp` files first (`unfinished: …`),
    /// then checkpoints newest first (`damaged: …`, `other_format: …`, `other_build: …`,
    /// `past_end: …`, `other_journal: …`, `unreadable: …`).
    pub checkpoints_ignored: Vec<(String, String)>,
    /// How long opening took.
    pub elapsed: Duration,
}

/// An opened store, ready for the writer and syncer.
pub(crate) struct Recovered {
    pub shared: Arc<Shared>,
    /// The live journal's directory relative to the data directory (`CURRENT`).
    pub journal_dir: PathBuf,
    /// The storage the engine sees: the live journal's directory as its root.
    pub storage: Arc<dyn Storage>,
    pub journal: Log,
    pub timers: Timers,
    pub last_recorded_ms: u64,
    /// The first record within the dedupe window (the evictor's cursor).
    pub window_start: u64,
    pub resume: Vec<Queued>,
    /// Commands of the cut unit that are durable.
    pub resumed_decided: usize,
}

pub(crate) fn recover(
    storage: Arc<dyn Storage>,
    registry: Registry,
    options: EngineOptions,
    report: &mut RecoveryReport,
) -> Result<Recovered, OpenError> {
    refuse_old_layout(storage.as_ref())?;
    let live = current::live_journal(storage.as_ref())?;
    current::remove_current_tmp(storage.as_ref()).map_err(|source| OpenError::Io {
        path: PathBuf::from(current::CURRENT_TMP),
        source,
    })?;
    // The journal's directory as the root: its dedupe runs are beside it.
    let storage = current::engine_storage(storage, &live);
    let (journal, log_report) = Log::open(
        Arc::clone(&storage),
        Path::new(JOURNAL_DIR),
        options.log.clone(),
    )
    .map_err(|source| OpenError::Log {
        log: "journal",
        source,
    })?;
    report.truncated = log_report.truncated;
    let store = Store::new(journal.reader(), registry.clone());
    let shared = Arc::new(Shared::new(registry, options, store));
    let opened = runs::open_runs(
        storage.as_ref(),
        journal.durable_seq(),
        shared.dedupe.horizon_ms(),
    )
    .map_err(|source| OpenError::Io {
        path: PathBuf::from(runs::DEDUPE_DIR),
        source,
    })?;
    for (name, why) in &opened.removed {
        tracing::warn!(run = %name, %why, "a dedupe run was removed; what it covered within the window is rebuilt from the journal");
    }
    report.dedupe_runs_removed = opened.removed.len();
    let start = load_checkpoint(storage.as_ref(), &journal.reader(), &live, report)?;
    let scanned = scan(
        &shared,
        &journal.reader(),
        storage.as_ref(),
        opened.kept,
        start,
    )?;
    let folded = scanned.folded;
    report.dedupe_runs = shared.dedupe.runs().len();
    report.dedupe_runs_written = scanned.runs_written;
    shared.store.set_indexes(folded.indexes);
    shared
        .store
        .publish(journal.durable_seq(), folded.last_position);
    shared.store.notify();
    let unit = folded.unit_start..journal.durable_seq();
    let (resume, resumed_decided) = resume_unit(&shared, &unit, &journal.reader())?;
    report.commands = journal.durable_seq();
    report.events = folded.last_position;
    report.dedupe_entries = shared.dedupe.entries() as usize;
    if shared.dedupe.len() >= shared.options.dedupe_entries_max {
        // Every id within the window is kept (forgetting one would let its command run
        // twice): runs could not be written, so they stay in memory, and intake refuses
        // new commands until the `writ-dedupe` thread spills them.
        tracing::warn!(
            hot_entries = shared.dedupe.len(),
            entries_max = shared.options.dedupe_entries_max,
            "the dedupe index holds more ids in memory than dedupe_entries_max (writing runs failed): new commands are refused (503) until they are spilled to disk"
        );
    }
    report.timers_pending = folded.timers.len();
    report.resumed = resume.len();
    Ok(Recovered {
        shared,
        journal_dir: live,
        storage,
        journal,
        timers: folded.timers,
        last_recorded_ms: folded.last_recorded_ms,
        window_start: scanned.window_start,
        resume,
        resumed_decided,
    })
}

/// Row "`checkpoints/` holds an engine checkpoint": the newest valid one (the checkpoint
/// decision table), as the state to scan on from; none, the full scan.
fn load_checkpoint(
    storage: &dyn Storage,
    journal: &LogReader,
    journal_dir: &Path,
    report: &mut RecoveryReport,
) -> Result<Folded, OpenError> {
    let chosen = checkpoint::file::choose(storage, journal, journal_dir).map_err(|source| {
        OpenError::Io {
            path: PathBuf::from(checkpoint::CHECKPOINT_DIR),
            source,
        }
    })?;
    report.checkpoints_ignored = chosen
        .ignored
        .into_iter()
        .map(|(name, why)| (name, why.to_string()))
        .collect();
    Ok(match chosen.loaded {
        Some(loaded) => {
            tracing::info!(
                records = loaded.seq,
                position = loaded.last_position,
                "engine checkpoint loaded; the journal is scanned after it"
            );
            report.checkpoint = Some(loaded.seq);
            Folded::from_checkpoint(loaded)
        }
        None => Folded::default(),
    })
}

/// Row "a `commands/` or `events/` log of the two-log layout": refuse, since this build
/// keeps one journal and would otherwise start an empty store beside the old one.
pub(crate) fn refuse_old_layout(storage: &dyn Storage) -> Result<(), OpenError> {
    for dir in ["commands", "events"] {
        let has_segments = storage
            .list(Path::new(dir))
            .is_ok_and(|names| names.iter().any(|n| n.ends_with(".wlog")));
        if has_segments {
            return Err(OpenError::OldLayout {
                dir: dir.to_owned(),
            });
        }
    }
    Ok(())
}

/// What one pass over the journal found.
struct Scan {
    /// The indexes, timers, positions and last unit of every record.
    folded: Folded,
    window_start: u64,
    /// Dedupe runs written from the journal.
    runs_written: usize,
}

fn read_error(source: ReadError) -> OpenError {
    OpenError::Read {
        log: "journal",
        source,
    }
}

/// The first record recorded at or after `horizon` among `[0, end)` (`end` if none):
/// times never decrease along the journal, so a binary search of point reads finds it.
fn first_at_or_after(journal: &LogReader, end: u64, horizon: u64) -> Result<u64, OpenError> {
    let (mut low, mut high) = (0, end);
    let mut buf = Vec::new();
    while low < high {
        let mid = low + (high - low) / 2;
        journal
            .read(mid, &mut buf)
            .map_err(|e| read_error(ReadError::Log(e)))?;
        let (_, time) = crate::record::id_and_time(&buf)
            .map_err(|source| read_error(ReadError::Record { seq: mid, source }))?;
        if time >= horizon {
            high = mid;
        } else {
            low = mid + 1;
        }
    }
    Ok(low)
}

/// Rows "positions", "timers", "dedupe window", "checkpoint": one pass over the records
/// from the first the start needs. Records from `start.seq` (a loaded checkpoint's, or 0)
/// are decoded whole and folded into the indexes, timers and positions. The records
/// within the window that no kept run covers are written to runs of at most
/// `dedupe_spill_entries` ids (a gap before a kept run closes its run), and those after
/// the last run go to the hot map: a start holds no more of the window in memory than a
/// running engine does. Those of them before `start.seq` are read for their dedupe
/// fields only ([`crate::record::dedupe_fields`]), and covered ranges among them are not
/// read at all.
fn scan(
    shared: &Shared,
    journal: &LogReader,
    storage: &dyn Storage,
    kept: Vec<Run>,
    start: Folded,
) -> Result<Scan, OpenError> {
    let horizon = shared.dedupe.horizon_ms();
    let durable = journal.durable_seq();
    let covered: Vec<(u64, u64)> = kept
        .iter()
        .map(|r| (r.footer().first_seq, r.footer().last_seq))
        .collect();
    let mut next_covered = 0;
    let mut builder = RunBuilder::new(shared.options.dedupe_spill_entries);
    let build = |builder: &mut RunBuilder, result: Result<(), runs::RunFileError>| {
        if let Err(error) = result {
            tracing::error!(%error, "a dedupe run could not be written at open (is the disk full?); the window's ids stay in memory");
            builder.failed = true;
        }
    };
    let mut folded = start;
    let mut window_start = durable;
    // Where the pass starts: the checkpoint's end, or before it the window's first record.
    let mut from = folded.seq;
    if folded.seq > 0 && folded.last_recorded_ms >= horizon {
        from = first_at_or_after(journal, folded.seq, horizon)?;
    }
    let mut iter = journal.iter_from(from);
    while let Some(item) = iter.next_record() {
        let (seq, bytes) = item.map_err(|e| read_error(ReadError::Log(e)))?;
        let dedupe = if seq >= folded.seq {
            let record = JournalRecord::decode(bytes)
                .map_err(|source| read_error(ReadError::Record { seq, source }))?;
            folded.fold(seq, &record)?;
            (record.recorded_at_ms >= horizon).then(|| {
                (
                    record.id,
                    record.recorded_at_ms,
                    dedupe::fingerprint(
                        record.name,
                        record.version,
                        record.expected_version,
                        record.payload,
                    ),
                )
            })
        } else {
            let fields = crate::record::dedupe_fields(bytes)
                .map_err(|source| read_error(ReadError::Record { seq, source }))?;
            (fields.recorded_at_ms >= horizon).then(|| {
                (
                    fields.id,
                    fields.recorded_at_ms,
                    dedupe::fingerprint(
                        fields.name,
                        fields.version,
                        fields.expected_version,
                        fields.payload,
                    ),
                )
            })
        };
        let Some((id, recorded_at_ms, fingerprint)) = dedupe else {
            continue;
        };
        // Times never decrease along the journal, so the window is a suffix.
        window_start = window_start.min(seq);
        while covered.get(next_covered).is_some_and(|r| r.1 < seq) {
            next_covered += 1;
        }
        match covered.get(next_covered) {
            Some(&(first, last)) if first <= seq => {
                let flushed = builder.flush(storage);
                build(&mut builder, flushed);
                if seq < folded.seq {
                    // Covered, and folded already: not read at all.
                    let to = (last + 1).min(folded.seq);
                    if to > seq + 1 {
                        iter = journal.iter_from(to);
                    }
                }
            }
            _ => {
                let added = builder.record(storage, seq, id, recorded_at_ms, fingerprint);
                build(&mut builder, added);
            }
        }
    }
    if folded.seq != durable {
        return Err(read_error(ReadError::Record {
            seq: folded.seq,
            source: crate::record::RecordError {
                detail: "the journal ended before its durable end",
            },
        }));
    }
    let (written, hot) = builder.into_rest();
    let runs_written = written.len();
    let mut all: Vec<Arc<Run>> = kept.into_iter().chain(written).map(Arc::new).collect();
    all.sort_by_key(|r| r.footer().first_seq);
    let spilled_end = hot.iter().map(|e| e.1).min().unwrap_or_else(|| {
        all.last()
            .map_or(window_start, |r| r.footer().last_seq + 1)
            .max(window_start)
    });
    shared.dedupe.set_runs(all);
    shared
        .dedupe
        .spilled_end
        .store(spilled_end, std::sync::atomic::Ordering::Release);
    shared.dedupe.marked_through(durable);
    for (id, seq, fingerprint) in hot {
        shared
            .dedupe
            .insert_recovered(id, Slot { fingerprint, seq });
    }
    Ok(Scan {
        folded,
        window_start,
        runs_written,
    })
}

/// Row "timer operations": folds a record into the pending timers (a fired timer
/// leaves, a schedule adds, a cancel removes).
pub(crate) fn fold_timers(timers: &mut Timers, record: &JournalRecord<'_>) {
    if record.origin == Origin::Timer {
        timers.fired(record.id);
    }
    for op in &record.timers {
        match op {
            RecordTimerOp::Schedule {
                process,
                key,
                at_ms,
                command,
            } => timers.schedule(Timer {
                process: (*process).into(),
                key: (*key).into(),
                at_ms: *at_ms,
                command: Issued {
                    id: command.id,
                    command: command.name.to_owned(),
                    version: command.version,
                    payload: command.payload.to_vec(),
                    expected_version: command.expected_version,
                },
                causation_id: record.id,
                correlation_id: record.correlation_id,
            }),
            RecordTimerOp::Cancel { process, key } => timers.cancel(process, key),
        }
    }
}

/// Row "the last unit was cut short": lets the processes react again to the events of the
/// last unit's durable records, in the order the writer did, and returns the commands they
/// issue that are not in the journal, with how many of the unit's commands are.
///
/// The writer decides a unit breadth first, each command right after the ones before it,
/// so the durable records of a unit are a prefix of what the reactions issue. When they
/// are not (the processes of this build issue other commands than the build that wrote the
/// journal), nothing is resumed: the journal is what happened.
fn resume_unit(
    shared: &Shared,
    unit: &std::ops::Range<u64>,
    journal: &LogReader,
) -> Result<(Vec<Queued>, usize), OpenError> {
    if unit.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let mut queue: std::collections::VecDeque<Queued> = Default::default();
    let mut buf = Vec::new();
    let mut reactions = Reactions::new();
    let mut failures = Vec::new();
    for seq in unit.clone() {
        journal
            .read(seq, &mut buf)
            .map_err(|e| read_error(ReadError::Log(e)))?;
        let record = JournalRecord::decode(&buf)
            .map_err(|source| read_error(ReadError::Record { seq, source }))?;
        if seq > unit.start {
            match queue.pop_front() {
                Some(expected) if expected.issued.id == record.id => {}
                _ => {
                    tracing::warn!(
                        seq,
                        "the processes of this build issue other commands than the journal holds for its last unit; nothing is resumed"
                    );
                    return Ok((Vec::new(), 0));
                }
            }
        }
        if record.status != CommitStatus::Succeeded {
            continue;
        }
        for (index, event) in record.events.iter().enumerate() {
            if !shared.registry.reacts_to(event.event_type) {
                continue;
            }
            let position = record.first_position + index as u64;
            // Processes react to the current shape, as they did when it was recorded.
            let upcast = shared
                .registry
                .upcast_event(
                    event.stream,
                    event.event_type,
                    event.schema_version,
                    event.data,
                )
                .map_err(|source| read_error(ReadError::Event { position, source }))?;
            let view = EventView {
                event_type: event.event_type,
                data: upcast.as_ref().map_or(event.data, |u| &u.data),
                stream: event.stream,
                version: event.version,
                position,
                index: index as u32,
                command_id: record.id,
                correlation_id: record.correlation_id,
                recorded_at_ms: record.recorded_at_ms,
            };
            shared.registry.react(&view, &mut reactions, &mut failures);
        }
        failures.clear();
        let (issued, _) = reactions.take();
        queue.extend(issued.into_iter().map(|issued| Queued {
            issued,
            origin: Origin::Process,
            causation_id: record.id,
            correlation_id: record.correlation_id,
        }));
    }
    let decided = (unit.end - unit.start) as usize;
    Ok((queue.into(), decided))
}
