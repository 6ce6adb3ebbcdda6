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
//!
//! Open files: the live segment keeps the writer's handle. A sealed segment's file is
//! opened by the first reader that needs it and kept in a bounded cache
//! ([`OpenFiles`], `LogOptions::open_segments_max`) that closes the least recently used
//! one beyond the bound, so a log of many segments holds a bounded number of file
//! descriptors. A reader finds an open file under its segment's own shared lock; only a
//! miss (open, perhaps close) takes the cache's mutex.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::storage::{Storage, StorageFile};

/// A segment's file slot, shared by its index entry and the cache of open files.
pub(crate) type FileCell = Arc<SegmentFile>;

/// The open file of one segment, if it is open: the live segment's always (the writer's
/// handle); a sealed segment's while it is among the [`OpenFiles`] cache's, opened by the
/// first reader that needs it and closed when the cache drops it (or, if a reader still
/// holds the handle, once that reader is done).
pub(crate) struct SegmentFile {
    handle: RwLock<Option<Arc<dyn StorageFile>>>,
    /// The cache's tick when a reader last used the file.
    last_used: AtomicU64,
    /// The live segment's file: never closed by the cache, not counted in its bound.
    live: AtomicBool,
}

impl SegmentFile {
    /// The slot of the live segment, holding the writer's handle.
    pub fn live(file: Arc<dyn StorageFile>) -> FileCell {
        Arc::new(SegmentFile {
            handle: RwLock::new(Some(file)),
            last_used: AtomicU64::new(0),
            live: AtomicBool::new(true),
        })
    }

    /// The slot of a sealed segment, not open.
    pub fn sealed() -> FileCell {
        Arc::new(SegmentFile {
            handle: RwLock::new(None),
            last_used: AtomicU64::new(0),
            live: AtomicBool::new(false),
        })
    }

    /// The open handle, if any. A shared lock of this slot alone: readers of different
    /// segments never meet, and readers of one segment do not wait for each other.
    fn get(&self) -> Option<Arc<dyn StorageFile>> {
        self.handle
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, file: Option<Arc<dyn StorageFile>>) -> Option<Arc<dyn StorageFile>> {
        std::mem::replace(
            &mut *self.handle.write().unwrap_or_else(PoisonError::into_inner),
            file,
        )
    }

    /// Marks the file used at `tick`; a store only when the tick moved on, so readers of
    /// a hot segment mostly read this cache line.
    fn touch(&self, tick: u64) {
        if self.last_used.load(Ordering::Relaxed) != tick {
            self.last_used.store(tick, Ordering::Relaxed);
        }
    }
}

impl fmt::Debug for SegmentFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentFile")
            .field("open", &self.get().is_some())
            .field("live", &self.live.load(Ordering::Relaxed))
            .finish()
    }
}

/// The bounded cache of sealed segments' open files (`LogOptions::open_segments_max`).
///
/// Readers find an open file in its segment's slot without this cache's lock; only opening
/// a file (a miss) and closing one take it. The tick follows the count of opens: a reader
/// marks the slot with the tick it sees (no shared counter is written per read), and when
/// an open puts more than `max` sealed files in the cache, the one marked with the oldest
/// tick is closed: the least recently used, to within the reads between two opens.
pub(crate) struct OpenFiles {
    max: usize,
    /// The sealed segments whose file is open.
    open: Mutex<Vec<FileCell>>,
    /// `open.len()`, for gauges without the lock.
    open_count: AtomicUsize,
    /// Files opened by readers: reopens of sealed segments. Also the tick.
    opens: AtomicU64,
}

impl OpenFiles {
    pub fn new(max: usize) -> Self {
        assert!(max >= 1, "open_segments_max is validated to be at least 1");
        OpenFiles {
            max,
            open: Mutex::new(Vec::with_capacity(max + 1)),
            open_count: AtomicUsize::new(0),
            opens: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<FileCell>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The tick a reader marks a slot with: odd, above the even tick of the last open, so
    /// that a file read since the last open counts as used after the file that open
    /// brought in.
    fn tick(&self) -> u64 {
        2 * self.opens.load(Ordering::Relaxed) + 1
    }

    /// Sealed segments whose file the cache holds open now.
    pub fn sealed_open(&self) -> usize {
        self.open_count.load(Ordering::Relaxed)
    }

    /// Files opened by readers since the log was opened.
    pub fn opens(&self) -> u64 {
        self.opens.load(Ordering::Relaxed)
    }

    /// The open file of `slot`, opening `path` if it is not open, and closing the least
    /// recently used one if that puts the cache over its bound. The open is made under
    /// the cache's lock, so that racing readers of one closed segment open it once.
    fn open(
        &self,
        storage: &dyn Storage,
        path: &Path,
        slot: &FileCell,
    ) -> io::Result<Arc<dyn StorageFile>> {
        let mut open = self.lock();
        if let Some(file) = slot.get() {
            // Another reader opened it while this one waited for the lock.
            return Ok(file);
        }
        debug_assert!(
            !slot.live.load(Ordering::Relaxed),
            "a live file is never closed"
        );
        let file = storage.open(path)?;
        let opens = self.opens.fetch_add(1, Ordering::Relaxed) + 1;
        slot.last_used.store(2 * opens, Ordering::Relaxed);
        slot.set(Some(Arc::clone(&file)));
        open.push(Arc::clone(slot));
        self.shrink(&mut open);
        Ok(file)
    }

    /// Takes the live segment's slot into the cache: its segment was sealed by a roll.
    pub fn seal(&self, slot: &FileCell) {
        let mut open = self.lock();
        if !slot.live.swap(false, Ordering::Relaxed) {
            return;
        }
        if slot.get().is_none() {
            return;
        }
        slot.touch(self.tick());
        open.push(Arc::clone(slot));
        self.shrink(&mut open);
    }

    /// Closes the least recently used files until at most `max` are open; the newest entry
    /// (the one just opened) stays. A reader that holds a closed file's handle still
    /// finishes its read: the file closes when it lets go. The close is made under the
    /// lock (a `close` of a clean file is cheap), so that the files open never pass the
    /// bound by more than the one just opened and those readers hold.
    fn shrink(&self, open: &mut Vec<FileCell>) {
        while open.len() > self.max {
            let candidates = open.len() - 1;
            let Some(oldest) =
                (0..candidates).min_by_key(|&i| open[i].last_used.load(Ordering::Relaxed))
            else {
                break;
            };
            let slot = open.swap_remove(oldest);
            drop(slot.set(None));
        }
        self.open_count.store(open.len(), Ordering::Relaxed);
    }
}

impl fmt::Debug for OpenFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenFiles")
            .field("max", &self.max)
            .field("sealed_open", &self.sealed_open())
            .field("opens", &self.opens())
            .finish()
    }
}

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
    /// Sealed segments' open files, bounded.
    pub files: OpenFiles,
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
    pub fn new(
        storage: Arc<dyn Storage>,
        index: Index,
        durable: u64,
        open_segments_max: usize,
    ) -> Self {
        Shared {
            storage,
            index: RwLock::new(index),
            files: OpenFiles::new(open_segments_max),
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

    /// Segment files held open: the live one and the cached sealed ones.
    pub fn open_segment_files(&self) -> usize {
        self.files.sealed_open() + 1
    }

    /// The open file of a segment, opening `path` first if it is not open (which may close
    /// the least recently used sealed segment's file). The caller holds the handle while
    /// it reads; a closed file's handle stays valid for whoever holds it.
    pub fn file(&self, path: &Path, cell: &FileCell) -> io::Result<Arc<dyn StorageFile>> {
        cell.touch(self.files.tick());
        match cell.get() {
            Some(file) => Ok(file),
            None => self.files.open(&*self.storage, path, cell),
        }
    }
}
