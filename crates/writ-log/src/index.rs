//! The in-memory index shared by the writer and its readers.
//!
//! For each segment: its first sequence number, its file, the offset of every durable
//! record's header, and the end of its last durable frame. Only durable records are ever
//! in the index: the writer publishes a batch after its `fdatasync` returned, first into
//! the index and then into `durable`, so a reader that sees `seq < durable` finds `seq` in
//! the index.
//!
//! Locking: readers take the read lock only to look a record up and clone a few `Arc`s;
//! all I/O happens after the lock is released. The writer takes the write lock once per
//! commit to append the batch's offsets (and once per segment roll).

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::storage::{Storage, StorageFile};

/// A segment's file, opened on first use by a reader if the writer did not open it.
pub(crate) type FileCell = Arc<OnceLock<Arc<dyn StorageFile>>>;

pub(crate) struct SegmentEntry {
    pub first_seq: u64,
    pub path: Arc<Path>,
    pub file: FileCell,
    /// Offset of each durable record's header in the segment.
    pub offsets: Vec<u32>,
    /// Offset just past the last durable frame.
    pub end: u32,
}

impl SegmentEntry {
    pub fn end_seq(&self) -> u64 {
        self.first_seq + self.offsets.len() as u64
    }
}

impl fmt::Debug for SegmentEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentEntry")
            .field("first_seq", &self.first_seq)
            .field("path", &self.path)
            .field("records", &self.offsets.len())
            .field("end", &self.end)
            .finish()
    }
}

#[derive(Debug, Default)]
pub(crate) struct Index {
    /// Ordered by `first_seq`; consecutive segments have no gap.
    pub segments: Vec<SegmentEntry>,
}

impl Index {
    /// The segment holding `seq` and the record's position in it.
    pub fn locate(&self, seq: u64) -> Option<(&SegmentEntry, usize)> {
        let i = self
            .segments
            .partition_point(|s| s.first_seq <= seq)
            .checked_sub(1)?;
        let segment = &self.segments[i];
        let at = usize::try_from(seq - segment.first_seq).ok()?;
        (at < segment.offsets.len()).then_some((segment, at))
    }
}

/// Where a record is, as looked up under the read lock.
pub(crate) struct Located {
    pub path: Arc<Path>,
    pub file: FileCell,
    /// Offset of the record header.
    pub offset: u64,
    /// The record (with its padding) ends at or before this offset.
    pub bound: u64,
}

pub(crate) struct Shared {
    pub storage: Arc<dyn Storage>,
    index: RwLock<Index>,
    /// The first sequence number that is not durable.
    durable: AtomicU64,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("durable", &self.durable_seq())
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub fn new(storage: Arc<dyn Storage>, index: Index, durable: u64) -> Self {
        Shared {
            storage,
            index: RwLock::new(index),
            durable: AtomicU64::new(durable),
        }
    }

    #[inline]
    pub fn durable_seq(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Publishes a new durable end. Call after the index holds every record below it.
    #[inline]
    pub fn set_durable(&self, durable: u64) {
        debug_assert!(durable >= self.durable_seq());
        self.durable.store(durable, Ordering::Release);
    }

    /// A panic while holding the lock cannot leave a record visible that is not durable
    /// (`durable` is published after the index), so a poisoned lock is still usable.
    pub fn read_index(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn write_index(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn locate(&self, seq: u64) -> Option<Located> {
        let index = self.read_index();
        let (segment, at) = index.locate(seq)?;
        let bound = match segment.offsets.get(at + 1) {
            Some(&next) => next,
            None => segment.end,
        };
        Some(Located {
            path: Arc::clone(&segment.path),
            file: Arc::clone(&segment.file),
            offset: u64::from(segment.offsets[at]),
            bound: u64::from(bound),
        })
    }

    /// The open file in `cell`, opening `path` first if no one has.
    pub fn file(&self, path: &Path, cell: &FileCell) -> io::Result<Arc<dyn StorageFile>> {
        if let Some(file) = cell.get() {
            return Ok(Arc::clone(file));
        }
        let file = self.storage.open(path)?;
        // Another reader may have won the race; either handle is fine.
        Ok(Arc::clone(cell.get_or_init(|| file)))
    }
}
