//! The `writ-checkpoint` thread. It keeps a [`Folded`] state of its own, following the
//! journal up to the store's durable end (always a sync boundary) as a reader does, so it
//! takes none of the store's, the writer's or the syncer's locks; every
//! `checkpoint_every_records` records, and once at a clean shutdown, it writes that state
//! as a checkpoint. It starts from the newest valid checkpoint (chosen by the decision
//! table, as a start does), or from the journal's first record.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use writ_log::LogReader;
use writ_log::storage::Storage;

use super::{Folded, file, journal_mark};
use crate::shared::Shared;

/// What the thread is told.
#[derive(Debug)]
pub(crate) enum Msg {
    /// The engine shuts down: the writer and the syncer have stopped, so the durable end
    /// is final. Write a last checkpoint if records came since the last one.
    Stop,
}

/// How often the thread follows the journal.
const POLL: Duration = Duration::from_millis(200);

pub(crate) fn run(
    shared: Arc<Shared>,
    storage: Arc<dyn Storage>,
    journal: LogReader,
    journal_dir: PathBuf,
    messages: Receiver<Msg>,
) {
    // The lowest priority there is (see the `priority` module): folding the journal again
    // takes the CPU time the clients, the writer and the syncer leave, not theirs.
    crate::priority::lower_this_thread(crate::priority::TO_LOWEST, "writ-checkpoint");
    let every = shared.options.checkpoint_every_records;
    let mut folded = match file::choose(storage.as_ref(), &journal, &journal_dir) {
        Ok(chosen) => chosen
            .loaded
            .map(Folded::from_checkpoint)
            .unwrap_or_default(),
        Err(error) => {
            tracing::warn!(%error, "the checkpoint thread could not read checkpoints/; it folds the journal from its start");
            Folded::default()
        }
    };
    let mut written_seq = folded.seq;
    loop {
        let stop = match messages.recv_timeout(POLL) {
            Err(mpsc::RecvTimeoutError::Timeout) => false,
            Ok(Msg::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => true,
        };
        let durable = shared.store.durable();
        if let Err(error) = follow(
            &mut folded,
            &journal,
            durable,
            written_seq,
            every,
            &mut |f| {
                write(
                    &shared,
                    storage.as_ref(),
                    &journal,
                    &journal_dir,
                    f,
                    &mut written_seq,
                )
            },
        ) {
            tracing::error!(%error, "the checkpoint thread cannot follow the journal; no more engine checkpoints are written until a restart");
            shared.metrics.checkpoint_failures.increment(1);
            return;
        }
        if stop {
            if folded.seq > written_seq {
                write(
                    &shared,
                    storage.as_ref(),
                    &journal,
                    &journal_dir,
                    &folded,
                    &mut written_seq,
                );
            }
            return;
        }
    }
}

/// Folds the journal up to `durable` (the store's durable end: a sync boundary, since
/// the syncer publishes only after a frame's sync), and writes a checkpoint there once it
/// is `every` records or more past the last one. A thread catching up on a long journal
/// (a first start without a checkpoint) writes once, at the end it reaches.
fn follow(
    folded: &mut Folded,
    journal: &LogReader,
    durable: u64,
    written_seq: u64,
    every: u64,
    write: &mut dyn FnMut(&Folded),
) -> Result<(), crate::error::OpenError> {
    if folded.seq < durable {
        folded.fold_journal(journal, durable)?;
        if folded.seq >= written_seq.saturating_add(every) {
            write(folded);
        }
    }
    Ok(())
}

/// Writes `folded` as a checkpoint; a failure is logged and counted, and the next one is
/// tried at the next interval.
fn write(
    shared: &Shared,
    storage: &dyn Storage,
    journal: &LogReader,
    journal_dir: &std::path::Path,
    folded: &Folded,
    written_seq: &mut u64,
) {
    let started = Instant::now();
    let result = journal_mark(journal, journal_dir, folded.seq)
        .map_err(|e| e.to_string())
        .and_then(|mark| {
            let bytes = folded.encode(mark);
            file::write_checkpoint(storage, folded.seq, &bytes)
                .map(|()| bytes.len())
                .map_err(|e| e.to_string())
        });
    *written_seq = folded.seq;
    match result {
        Ok(bytes) => {
            let metrics = &shared.metrics;
            metrics.checkpoints_written.increment(1);
            metrics.checkpoint_bytes.set(bytes as f64);
            metrics.checkpoint_records.set(folded.seq as f64);
            metrics.checkpoint_position.set(folded.last_position as f64);
            metrics
                .checkpoint_seconds
                .set(started.elapsed().as_secs_f64());
            tracing::info!(
                records = folded.seq,
                position = folded.last_position,
                bytes,
                ms = started.elapsed().as_millis() as u64,
                "engine checkpoint written"
            );
        }
        Err(error) => {
            shared.metrics.checkpoint_failures.increment(1);
            tracing::error!(%error, records = folded.seq, "an engine checkpoint could not be written (is the disk full?); the next is tried after checkpoint_every_records more records");
        }
    }
}
