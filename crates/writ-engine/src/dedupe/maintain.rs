//! The `writ-dedupe` thread: keeps the dedupe index within its bounds, off the writer's and
//! the syncer's paths. Each pass (about once a second, at once when the hot map is due to
//! spill or a run was found damaged):
//! 1. forgets hot ids whose record left the window (reading the journal from its cursor);
//! 2. spills the hot map's durable ids to a run once there are `dedupe_spill_entries`;
//! 3. merges the newest pair of consecutive runs of similar size, while there is one;
//! 4. deletes the runs whose newest record left the window;
//! 5. rebuilds a damaged run from the journal;
//! 6. sets the gauges.
//!
//! A spill that fails (a full disk) keeps the hot map, logs an error, counts
//! `writ_dedupe_spill_failures_total` and is tried again a second later; intake refuses
//! new commands only once the hot map reaches `dedupe_entries_max`.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use writ_log::LogReader;
use writ_log::storage::Storage;

use super::runs::{self, DEDUPE_DIR, Run, RunBuilder, RunFileError, RunRange};
use crate::record::{self, JournalRecord};
use crate::shared::Shared;

/// What the thread is told.
#[derive(Debug)]
pub(crate) enum Msg {
    /// The hot map is due to spill, or a run was found damaged.
    Wake,
    /// The engine shuts down.
    Stop,
}

/// Runs whose sizes are within this ratio are merged (so sizes about double, and a
/// lookup probes about log2(ids / spill size) runs per span).
const MERGE_RATIO: (u64, u64) = (5, 4);
/// A merged run spans at most this part of the window, so that an id is kept at most
/// the window and a quarter.
const MERGE_SPAN_PARTS: u64 = 4;
/// How long a failed spill waits before it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

pub(crate) fn run(
    shared: Arc<Shared>,
    storage: Arc<dyn Storage>,
    journal: LogReader,
    mut cursor: u64,
    messages: Receiver<Msg>,
) {
    let poll = shared
        .options
        .clock
        .recheck_within()
        .map_or(Duration::from_secs(1), |d| d.min(Duration::from_secs(1)));
    let mut retry_at: Option<Instant> = None;
    loop {
        match messages.recv_timeout(poll) {
            Ok(Msg::Wake) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Ok(Msg::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                spill_at_shutdown(&shared, storage.as_ref(), &journal);
                return;
            }
        }
        let dedupe = &shared.dedupe;
        cursor = evict_hot(&shared, &journal, cursor);
        if dedupe.spill_due() && retry_at.is_none_or(|t| Instant::now() >= t) {
            match spill(&shared, storage.as_ref(), &journal) {
                Ok(()) => retry_at = None,
                Err(e) => {
                    tracing::error!(error = %e, hot_entries = dedupe.len(), entries_max = shared.options.dedupe_entries_max,
                        "the dedupe index could not spill to disk (is the disk full?); its ids stay in memory, and new commands are refused with 503 once dedupe_entries_max are held");
                    count_spill_failure(&shared);
                    retry_at = Some(Instant::now() + RETRY_AFTER);
                }
            }
        }
        if retry_at.is_none() {
            while merge_once(&shared, storage.as_ref()) {}
        }
        expire(&shared, storage.as_ref());
        rebuild_damaged(&shared, storage.as_ref(), &journal);
        set_gauges(&shared);
    }
}

/// At a clean shutdown (the writer and the syncer stopped), the hot map's durable ids go
/// to a run, however few, so that the next start finds the whole window in runs and
/// reads no record for dedupe. A failure is logged: the next start reads those records
/// from the journal instead.
fn spill_at_shutdown(shared: &Shared, storage: &dyn Storage, journal: &LogReader) {
    let dedupe = &shared.dedupe;
    let spilled_end = dedupe
        .spilled_end
        .load(std::sync::atomic::Ordering::Acquire);
    if dedupe.marked_end() <= spilled_end {
        return;
    }
    if let Err(error) = spill(shared, storage, journal) {
        tracing::warn!(%error, "the dedupe index's hot ids could not be spilled at shutdown; the next start reads them from the journal");
        shared.metrics.dedupe_spill_failures.increment(1);
    }
}

/// Sets the dedupe gauges from the index, and the journal's open files.
pub(crate) fn set_gauges(shared: &Shared) {
    let dedupe = &shared.dedupe;
    let metrics = &shared.metrics;
    let runs = dedupe.runs();
    metrics.dedupe_entries.set(dedupe.entries() as f64);
    metrics.dedupe_hot_entries.set(dedupe.len() as f64);
    metrics.dedupe_runs.set(runs.len() as f64);
    metrics
        .dedupe_run_bytes
        .set(runs.iter().map(|r| r.footer().file_bytes()).sum::<u64>() as f64);
    metrics
        .dedupe_memory_bytes
        .set(dedupe.memory_bytes() as f64);
    // The journal's open files, on this thread's beat too: reads open them, not commits.
    let journal = &shared.store.journal;
    metrics
        .journal_open_segment_files
        .set(journal.open_segment_files() as f64);
    metrics
        .journal_segment_opens
        .absolute(journal.segment_opens());
}

/// Forgets hot ids whose record left the window, reading the journal from `cursor` (the
/// first record not yet looked at; records already in runs are skipped: they expire with
/// their run). Returns the new cursor.
pub(crate) fn evict_hot(shared: &Shared, journal: &LogReader, cursor: u64) -> u64 {
    let dedupe = &shared.dedupe;
    let horizon = dedupe.horizon_ms();
    let mut cursor = cursor.max(
        dedupe
            .spilled_end
            .load(std::sync::atomic::Ordering::Acquire),
    );
    let mut iter = journal.iter_from(cursor);
    while let Some(Ok((seq, bytes))) = iter.next_record() {
        let Ok((id, recorded_at_ms)) = record::id_and_time(bytes) else {
            break;
        };
        if recorded_at_ms >= horizon {
            break;
        }
        dedupe.evict(id, seq);
        cursor = seq + 1;
    }
    cursor
}

/// The dedupe thread's run work for a replay, which has no dedupe thread: spills the hot
/// map when [`DedupeIndex::spill_due`](super::DedupeIndex::spill_due), then merges what
/// fits, so that a replay holds at most about `dedupe_spill_entries` ids in memory, as a
/// live engine does. A failed spill keeps its ids in memory (logged and counted, as the
/// live thread does) and is tried again at the next call.
pub(crate) fn spill_for_replay(shared: &Shared, storage: &dyn Storage, journal: &LogReader) {
    if !shared.dedupe.spill_due() {
        return;
    }
    match spill(shared, storage, journal) {
        Ok(()) => while merge_once(shared, storage) {},
        Err(e) => {
            tracing::warn!(error = %e, hot_entries = shared.dedupe.len(),
                "the replay's dedupe index could not spill to disk (is the disk full?); its ids stay in memory");
            count_spill_failure(shared);
        }
    }
}

/// Counts a failed spill in the metrics and the stats.
fn count_spill_failure(shared: &Shared) {
    shared.metrics.dedupe_spill_failures.increment(1);
    shared
        .stats
        .dedupe_spill_failures
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// `recorded_at_ms` of journal record `seq`.
fn recorded_at(journal: &LogReader, seq: u64) -> Result<u64, RunFileError> {
    let mut buf = Vec::new();
    journal
        .read(seq, &mut buf)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    record::id_and_time(&buf)
        .map(|(_, ms)| ms)
        .map_err(|e| std::io::Error::other(e.to_string()).into())
}

/// Writes the hot map's durable ids as a run, publishes it, then drops them from the map.
fn spill(shared: &Shared, storage: &dyn Storage, journal: &LogReader) -> Result<(), RunFileError> {
    let dedupe = &shared.dedupe;
    let end = dedupe.marked_end();
    let from = dedupe
        .spilled_end
        .load(std::sync::atomic::Ordering::Acquire);
    let entries = dedupe.durable_before(end);
    let Some(first) = entries.iter().map(|e| e.1).min() else {
        // Every id of those records left the window before a spill (a window shorter
        // than the time `dedupe_spill_entries` records take): nothing of them is hot, so
        // they count as spilled, and the spill is no longer due for them.
        dedupe
            .spilled_end
            .fetch_max(end, std::sync::atomic::Ordering::AcqRel);
        return Ok(());
    };
    let first = first.min(from);
    let range = RunRange {
        first_seq: first,
        last_seq: end - 1,
        oldest_recorded_at_ms: recorded_at(journal, first)?,
        newest_recorded_at_ms: recorded_at(journal, end - 1)?,
    };
    let count = entries.len() as u64;
    let run = runs::write_run(storage, entries.into_iter().map(Ok), count, range)?;
    let mut list = dedupe.runs().as_ref().clone();
    list.push(Arc::new(run));
    dedupe.set_runs(list);
    dedupe
        .spilled_end
        .store(end, std::sync::atomic::Ordering::Release);
    dedupe.drop_durable_before(end);
    Ok(())
}

/// Merges the newest pair of consecutive runs of similar size whose span fits; whether it
/// merged one.
fn merge_once(shared: &Shared, storage: &dyn Storage) -> bool {
    let dedupe = &shared.dedupe;
    let span_max = shared.options.dedupe_window.as_millis() as u64 / MERGE_SPAN_PARTS;
    let list = dedupe.runs();
    for i in (1..list.len()).rev() {
        let (older, newer) = (list[i - 1].footer(), list[i].footer());
        let similar = older.entry_count * MERGE_RATIO.1 <= newer.entry_count * MERGE_RATIO.0;
        let consecutive = older.last_seq + 1 == newer.first_seq;
        let span = newer.newest_recorded_at_ms
            - older.oldest_recorded_at_ms.min(newer.newest_recorded_at_ms);
        if !similar
            || !consecutive
            || span > span_max
            || list[i - 1].is_damaged()
            || list[i].is_damaged()
        {
            continue;
        }
        match runs::merge_runs(storage, &list[i - 1..=i]) {
            Ok(merged) => {
                let mut next = list.as_ref().clone();
                next.splice(i - 1..=i, [Arc::new(merged)]);
                dedupe.set_runs(next);
                remove_files(storage, &list[i - 1..=i]);
                return true;
            }
            Err(e) => {
                tracing::error!(error = %e, older = %list[i - 1].name, newer = %list[i].name, "dedupe runs could not be merged; they stay as they are");
                return false;
            }
        }
    }
    false
}

/// Deletes the runs whose newest record left the window.
fn expire(shared: &Shared, storage: &dyn Storage) {
    let dedupe = &shared.dedupe;
    let horizon = dedupe.horizon_ms();
    let list = dedupe.runs();
    let (expired, kept): (Vec<_>, Vec<_>) = list
        .iter()
        .cloned()
        .partition(|r| r.footer().newest_recorded_at_ms < horizon);
    if expired.is_empty() {
        return;
    }
    dedupe.set_runs(kept);
    remove_files(storage, &expired);
}

/// Rebuilds each damaged run from the journal records it covers that are within the
/// window (in runs of at most the spill size), and replaces it.
fn rebuild_damaged(shared: &Shared, storage: &dyn Storage, journal: &LogReader) {
    let dedupe = &shared.dedupe;
    let list = dedupe.runs();
    let Some(damaged) = list.iter().find(|r| r.is_damaged()).cloned() else {
        return;
    };
    let footer = *damaged.footer();
    let horizon = dedupe.horizon_ms();
    let mut builder = RunBuilder::new(dedupe.spill_entries);
    let mut iter = journal.iter_from(footer.first_seq);
    let built = (|| {
        while let Some(item) = iter.next_record() {
            let (seq, bytes) = item.map_err(|e| std::io::Error::other(e.to_string()))?;
            if seq > footer.last_seq {
                break;
            }
            let record =
                JournalRecord::decode(bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
            if record.recorded_at_ms >= horizon {
                builder.record(storage, seq, record.id, record.recorded_at_ms, 0)?;
            }
        }
        builder.flush(storage)
    })();
    if let Err(e) = built {
        tracing::error!(run = %damaged.name, error = %e, "a damaged dedupe run could not be rebuilt; lookups that reach it fail until it is");
        return;
    }
    let (written, _) = builder.into_rest();
    let written: Vec<Arc<Run>> = written.into_iter().map(Arc::new).collect();
    let mut next: Vec<Arc<Run>> = Vec::with_capacity(list.len() + written.len());
    for run in list.iter() {
        if Arc::ptr_eq(run, &damaged) {
            next.extend(written.iter().cloned());
        } else {
            next.push(Arc::clone(run));
        }
    }
    dedupe.set_runs(next);
    // A rebuilt run of the same range was renamed over the damaged file.
    if !written.iter().any(|r| r.name == damaged.name) {
        remove_files(storage, &[damaged]);
    }
    tracing::warn!(
        rebuilt = written.len(),
        "a damaged dedupe run was rebuilt from the journal"
    );
}

/// Removes run files no longer in the list (best effort: a file left behind overlaps a
/// run that covers it, and the next open deletes it).
fn remove_files(storage: &dyn Storage, gone: &[Arc<Run>]) {
    for run in gone {
        if let Err(e) = storage.remove(&runs::run_path(&run.name)) {
            tracing::warn!(run = %run.name, error = %e, "a dedupe run could not be removed");
        }
    }
    let _ = storage.sync_dir(Path::new(DEDUPE_DIR));
}
