//! Run files on storage: writing one durably (`.tmp`, synced, renamed, directory synced),
//! opening one (its tail into memory), looking an id up (filter, fence, one block read),
//! reading one in order and merging several, and building runs from journal records.
//! The byte format is [`crate::dedupe_run`].

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use uuid::Uuid;
use writ_log::storage::{Storage, StorageFile, read_full_at, write_all_at};

use crate::dedupe_run::{
    BLOCK_BYTES, FOOTER_BYTES, RunEncoder, RunError, RunFooter, RunTail, filter_blocks_for,
};

/// The dedupe index's directory in the data directory.
pub const DEDUPE_DIR: &str = "dedupe";

/// Bytes of entry blocks written (or read, when merging) at a time.
const CHUNK_BYTES: usize = 1 << 20;

/// A run's file name: the range of journal records it covers.
pub(crate) fn run_name(first_seq: u64, last_seq: u64) -> String {
    format!("{first_seq:020}-{last_seq:020}.ids")
}

/// The range a run's file name states, if it is one.
pub(crate) fn parse_run_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(".ids")?;
    let (first, last) = stem.split_once('-')?;
    let digits = |s: &str| s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(first) || !digits(last) {
        return None;
    }
    Some((first.parse().ok()?, last.parse().ok()?))
}

pub(crate) fn run_path(name: &str) -> PathBuf {
    Path::new(DEDUPE_DIR).join(name)
}

/// Why a run could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunFileError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Format(#[from] RunError),
}

/// An open run: its tail in memory, its blocks on disk.
#[derive(Debug)]
pub(crate) struct Run {
    pub name: String,
    pub tail: RunTail,
    file: Arc<dyn StorageFile>,
    damaged: AtomicBool,
}

impl Run {
    /// Opens `dedupe/{name}` and checks its tail (footer, CRC, length, and that the
    /// footer's range is the name's).
    pub fn open(storage: &dyn Storage, name: &str) -> Result<Run, RunFileError> {
        let file = storage.open(&run_path(name))?;
        let len = file.len()?;
        let format = |detail| RunFileError::Format(RunError { detail });
        if len < FOOTER_BYTES as u64 {
            return Err(format("shorter than a footer"));
        }
        let mut footer = [0u8; FOOTER_BYTES];
        read_exact(&*file, &mut footer, len - FOOTER_BYTES as u64)?;
        let footer = RunFooter::decode(&footer)?;
        if footer.file_bytes() != len {
            return Err(format("file length does not fit the footer"));
        }
        if parse_run_name(name) != Some((footer.first_seq, footer.last_seq)) {
            return Err(format("the footer's range is not the file name's"));
        }
        let mut tail = vec![0u8; footer.tail_bytes() as usize];
        read_exact(&*file, &mut tail, footer.tail_offset())?;
        let tail = RunTail::decode(&tail)?;
        Ok(Run {
            name: name.to_owned(),
            tail,
            file,
            damaged: AtomicBool::new(false),
        })
    }

    pub fn footer(&self) -> &RunFooter {
        &self.tail.footer
    }

    /// Whether the filter lets `id` through; no I/O.
    pub fn may_contain(&self, id: Uuid) -> bool {
        self.tail.may_contain(id.as_u128())
    }

    /// The sequence the run holds for `id`: the filter, then the one block the fences
    /// name, read and checked. A block that fails its checks marks the run damaged.
    pub fn find(&self, id: Uuid) -> Result<Option<u64>, RunFileError> {
        let id = id.as_u128();
        if !self.tail.may_contain(id) {
            return Ok(None);
        }
        let Some(index) = self.tail.block_of(id) else {
            return Ok(None);
        };
        let mut block = vec![0u8; BLOCK_BYTES];
        let found = read_exact(
            &*self.file,
            &mut block,
            u64::from(index) * BLOCK_BYTES as u64,
        )
        .map_err(RunFileError::from)
        .and_then(|()| Ok(self.tail.decode_block(index, &block)?));
        match found {
            Ok(entries) => Ok(entries
                .binary_search_by_key(&id, |e| e.0)
                .ok()
                .map(|i| entries[i].1)),
            Err(e) => {
                self.damaged.store(true, Ordering::Release);
                Err(e)
            }
        }
    }

    pub fn is_damaged(&self) -> bool {
        self.damaged.load(Ordering::Acquire)
    }

    /// Bytes the run holds in memory: filter, fences, footer.
    pub fn memory_bytes(&self) -> usize {
        self.tail.memory_bytes() + std::mem::size_of::<Self>() + self.name.capacity()
    }

    /// The run's entries in id order, read in chunks.
    pub fn entries(&self) -> RunEntries<'_> {
        RunEntries {
            run: self,
            next_block: 0,
            buffer: Vec::new(),
            at: 0,
        }
    }
}

fn read_exact(file: &dyn StorageFile, buf: &mut [u8], offset: u64) -> io::Result<()> {
    if read_full_at(file, buf, offset)? < buf.len() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "a dedupe run is shorter than its footer says",
        ));
    }
    Ok(())
}

/// The entries of a run in id order; see [`Run::entries`].
#[derive(Debug)]
pub(crate) struct RunEntries<'a> {
    run: &'a Run,
    next_block: u32,
    buffer: Vec<(u128, u64)>,
    at: usize,
}

impl Iterator for RunEntries<'_> {
    type Item = Result<(u128, u64), RunFileError>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.at == self.buffer.len() {
            let blocks = self.run.footer().block_count;
            if self.next_block >= blocks {
                return None;
            }
            let count = (blocks - self.next_block).min((CHUNK_BYTES / BLOCK_BYTES) as u32);
            let mut bytes = vec![0u8; count as usize * BLOCK_BYTES];
            let offset = u64::from(self.next_block) * BLOCK_BYTES as u64;
            if let Err(e) = read_exact(&*self.run.file, &mut bytes, offset) {
                self.next_block = blocks;
                return Some(Err(e.into()));
            }
            self.buffer.clear();
            self.at = 0;
            for (i, block) in bytes.chunks_exact(BLOCK_BYTES).enumerate() {
                match self
                    .run
                    .tail
                    .decode_block(self.next_block + i as u32, block)
                {
                    Ok(entries) => self.buffer.extend(entries),
                    Err(e) => {
                        self.run.damaged.store(true, Ordering::Release);
                        self.next_block = blocks;
                        return Some(Err(e.into()));
                    }
                }
            }
            self.next_block += count;
        }
        self.at += 1;
        Some(Ok(self.buffer[self.at - 1]))
    }
}

/// What a run covers besides its entries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunRange {
    pub first_seq: u64,
    pub last_seq: u64,
    pub oldest_recorded_at_ms: u64,
    pub newest_recorded_at_ms: u64,
}

/// Writes a run of `entries` (ids strictly increasing) durably: to a `.tmp`, synced,
/// renamed (replacing a run of the same range), the directory synced. `filter_ids` sizes
/// the filter (at least the number of entries). On an error the `.tmp` is removed and no
/// run is left.
pub(crate) fn write_run(
    storage: &dyn Storage,
    entries: impl Iterator<Item = Result<(u128, u64), RunFileError>>,
    filter_ids: u64,
    range: RunRange,
) -> Result<Run, RunFileError> {
    let name = run_name(range.first_seq, range.last_seq);
    let path = run_path(&name);
    let tmp = run_path(&format!("{name}.tmp"));
    let written = (|| {
        match storage.remove(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let file = storage.create(&tmp)?;
        let mut encoder = RunEncoder::new(filter_blocks_for(filter_ids));
        let mut offset = 0u64;
        for entry in entries {
            let (id, seq) = entry?;
            encoder.push(id, seq);
            if encoder
                .entry_count()
                .is_multiple_of(CHUNK_BYTES as u64 / 24)
            {
                let blocks = encoder.take_blocks();
                write_all_at(&*file, &blocks, offset)?;
                offset += blocks.len() as u64;
            }
        }
        let (rest, tail) = encoder.finish(
            range.first_seq,
            range.last_seq,
            range.oldest_recorded_at_ms,
            range.newest_recorded_at_ms,
        );
        write_all_at(&*file, &rest, offset)?;
        file.sync_data()?;
        storage.rename(&tmp, &path)?;
        storage.sync_dir(Path::new(DEDUPE_DIR))?;
        Ok::<_, RunFileError>(Run {
            name: name.clone(),
            tail,
            file,
            damaged: AtomicBool::new(false),
        })
    })();
    if written.is_err() {
        let _ = storage.remove(&tmp);
    }
    written
}

/// Merges runs of consecutive ranges, oldest first, into one (a streaming k-way merge;
/// an id in several keeps its newest sequence).
pub(crate) fn merge_runs(storage: &dyn Storage, runs: &[Arc<Run>]) -> Result<Run, RunFileError> {
    let (Some(oldest), Some(newest)) = (runs.first(), runs.last()) else {
        unreachable!("a merge of no runs");
    };
    let range = RunRange {
        first_seq: oldest.footer().first_seq,
        last_seq: newest.footer().last_seq,
        oldest_recorded_at_ms: oldest.footer().oldest_recorded_at_ms,
        newest_recorded_at_ms: newest.footer().newest_recorded_at_ms,
    };
    let filter_ids = runs.iter().map(|r| r.footer().entry_count).sum();
    let mut sources: Vec<_> = runs.iter().map(|r| r.entries().peekable()).collect();
    let merged = std::iter::from_fn(move || {
        // The smallest id at the head of any source (k is a handful: a scan beats a heap).
        let mut best: Option<(u128, u64)> = None;
        for source in &mut sources {
            match source.peek() {
                Some(Ok((id, seq)))
                    if best.is_none_or(|(b, s)| *id < b || (*id == b && *seq > s)) =>
                {
                    best = Some((*id, *seq));
                }
                Some(Ok(_)) => {}
                Some(Err(_)) => return source.next(),
                None => {}
            }
        }
        let (id, _) = best?;
        for source in &mut sources {
            while matches!(source.peek(), Some(Ok((i, _))) if *i == id) {
                source.next();
            }
        }
        best.map(Ok)
    });
    write_run(storage, merged, filter_ids, range)
}

/// Builds runs from journal records taken in order (recovery's rebuild of what no valid
/// run covers, and the rebuild of a damaged run): at most `chunk_entries` ids per run.
#[derive(Debug)]
pub(crate) struct RunBuilder {
    chunk_entries: usize,
    /// Id, sequence, fingerprint.
    entries: Vec<(Uuid, u64, u64)>,
    range: Option<RunRange>,
    pub written: Vec<Run>,
    /// A write failed (a full disk): the rest stays in memory, none is written.
    pub failed: bool,
}

impl RunBuilder {
    pub fn new(chunk_entries: usize) -> Self {
        Self {
            chunk_entries: chunk_entries.max(1),
            entries: Vec::new(),
            range: None,
            written: Vec::new(),
            failed: false,
        }
    }

    /// Adds a record within the window; records come in increasing sequence.
    pub fn record(
        &mut self,
        storage: &dyn Storage,
        seq: u64,
        id: Uuid,
        recorded_at_ms: u64,
        fingerprint: u64,
    ) -> Result<(), RunFileError> {
        let range = self.range.get_or_insert(RunRange {
            first_seq: seq,
            last_seq: seq,
            oldest_recorded_at_ms: recorded_at_ms,
            newest_recorded_at_ms: recorded_at_ms,
        });
        range.last_seq = seq;
        range.newest_recorded_at_ms = recorded_at_ms;
        self.entries.push((id, seq, fingerprint));
        if self.entries.len() >= self.chunk_entries && !self.failed {
            self.flush(storage)?;
        }
        Ok(())
    }

    /// Writes what was added since the last run as a run of its own.
    pub fn flush(&mut self, storage: &dyn Storage) -> Result<(), RunFileError> {
        let Some(range) = self.range.filter(|_| !self.failed) else {
            return Ok(());
        };
        // By id, and for an id twice (accepted again after it left a shorter window) the
        // newest record only.
        self.entries
            .sort_unstable_by_key(|e| (e.0, std::cmp::Reverse(e.1)));
        self.entries.dedup_by_key(|e| e.0);
        let entries = self.entries.iter().map(|e| Ok((e.0.as_u128(), e.1)));
        let run = write_run(storage, entries, self.entries.len() as u64, range)
            .inspect_err(|_| self.failed = true)?;
        self.written.push(run);
        self.entries.clear();
        self.range = None;
        Ok(())
    }

    /// The ids added since the last run, with their sequences and fingerprints.
    pub fn into_rest(self) -> (Vec<Run>, Vec<(Uuid, u64, u64)>) {
        (self.written, self.entries)
    }
}

/// The runs a start keeps, and those it removed with why.
#[derive(Debug, Default)]
pub(crate) struct OpenedRuns {
    /// Valid runs, by their first sequence; their ranges do not overlap.
    pub kept: Vec<Run>,
    /// Removed files and why (rows of the engine recovery table).
    pub removed: Vec<(String, String)>,
}

/// Opens the runs of `dedupe/` (creating it, durably, if missing) by the rows of the engine
/// recovery table: `.tmp` files, runs that fail their checks, runs that reach past the
/// journal's end, runs whose newest record left the window, and runs whose range overlaps
/// a kept one (the one that starts first and, of those, covers most is kept) are removed.
pub(crate) fn open_runs(
    storage: &dyn Storage,
    durable_seq: u64,
    horizon_ms: u64,
) -> io::Result<OpenedRuns> {
    let dir = Path::new(DEDUPE_DIR);
    storage.create_dir_all(dir)?;
    storage.sync_dir(Path::new(""))?;
    let mut opened = OpenedRuns::default();
    let mut runs = Vec::new();
    let mut names = storage.list(dir)?;
    names.sort();
    for name in names {
        if name.ends_with(".tmp") {
            opened
                .removed
                .push((name, "an unfinished run (.tmp)".to_owned()));
            continue;
        }
        if parse_run_name(&name).is_none() {
            continue;
        }
        match Run::open(storage, &name) {
            Err(e) => opened.removed.push((name, e.to_string())),
            Ok(run) if run.footer().last_seq >= durable_seq => opened
                .removed
                .push((name, "it reaches past the journal's end".to_owned())),
            Ok(run) if run.footer().newest_recorded_at_ms < horizon_ms => opened
                .removed
                .push((name, "its newest record left the window".to_owned())),
            Ok(run) => runs.push(run),
        }
    }
    runs.sort_by_key(|r| (r.footer().first_seq, std::cmp::Reverse(r.footer().last_seq)));
    for run in runs {
        match opened.kept.last() {
            Some(kept) if run.footer().first_seq <= kept.footer().last_seq => {
                let why = format!("its range overlaps {}", kept.name);
                opened.removed.push((run.name, why));
            }
            _ => opened.kept.push(run),
        }
    }
    for (name, _) in &opened.removed {
        match storage.remove(&run_path(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    if !opened.removed.is_empty() {
        storage.sync_dir(dir)?;
    }
    Ok(opened)
}
