//! [`SimStorage`]: an in-memory file system that models what a power cut keeps.
//!
//! The model:
//! - Every file (inode) has *written* bytes, what reads see (the page cache), and
//!   *durable* bytes, what survives a crash. `write_at` and `set_len` change written bytes
//!   and mark the touched 4 KiB pages dirty; `sync_data` copies the dirty pages and the size
//!   to durable.
//! - Every directory has a *live* entry map (what `list` and `open` see) and a *durable*
//!   one. `create`, `rename`, `remove` and `create_dir_all` change the live map; only
//!   `sync_dir` of that directory copies it to the durable map. A new directory therefore
//!   survives a crash only once its parent directory has been synced.
//! - [`SimStorage::crash`] builds the storage a power cut leaves: durable directory entries
//!   pointing to durable bytes. Handles opened before the crash keep working on the old
//!   state, which the crashed storage no longer shares.
//! - Faults are armed on the storage and hit the next matching call on any file: a failed
//!   write (nothing written), a failed sync (some, all or none of the dirty pages persisted,
//!   and the rest marked clean as Linux does after an `fsync` error, so a retried sync
//!   "succeeds" without persisting them), a short write, a failed directory operation, and
//!   a capacity beyond which growing a file fails with `StorageFull` (ENOSPC).
//!
//! - Every open handle is counted ([`SimStorage::open_files`]) until it is dropped, and
//!   every `open` too ([`SimStorage::files_opened`]): tests bound the descriptors a log
//!   keeps.
//!
//! Files are stored sparsely in 4 KiB pages: a preallocated segment of zeros costs no
//! memory, so tests can use the default 64 MiB segments.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{Storage, StorageFile};

const PAGE: usize = 4096;

/// An operation of [`SimStorage`] that a fault can be armed for with
/// [`SimStorage::fail_next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum SimOp {
    /// `StorageFile::write_at`: fails with EIO and writes nothing.
    Write,
    /// `StorageFile::sync_data`: fails with EIO and persists nothing.
    Sync,
    /// `StorageFile::set_len`: fails with EIO.
    SetLen,
    /// `Storage::create`: fails with EIO.
    Create,
    /// `Storage::rename`: fails with EIO; nothing renamed.
    Rename,
    /// `Storage::remove`: fails with EIO; nothing removed.
    Remove,
    /// `Storage::sync_dir`: fails with EIO; the directory's entries stay as durable as they
    /// were.
    SyncDir,
}

/// An in-memory file system for tests; see the module documentation.
#[derive(Clone, Default)]
pub struct SimStorage {
    state: Arc<Mutex<State>>,
    handles: Arc<Handles>,
}

/// The handles of one storage (a crashed copy starts with none).
#[derive(Debug, Default)]
struct Handles {
    /// Handles alive now.
    open: AtomicUsize,
    /// The most ever alive at once.
    peak: AtomicUsize,
    /// Calls to `open` that succeeded.
    opened: AtomicU64,
}

impl Handles {
    fn new_file(self: &Arc<Self>, state: &Arc<Mutex<State>>, ino: u64) -> Arc<dyn StorageFile> {
        let open = self.open.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(open, Ordering::SeqCst);
        Arc::new(SimFile {
            state: Arc::clone(state),
            handles: Arc::clone(self),
            ino,
        })
    }
}

impl fmt::Debug for SimStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("SimStorage")
            .field("dirs", &state.dirs.len())
            .field("inodes", &state.inodes.len())
            .finish_non_exhaustive()
    }
}

impl SimStorage {
    /// An empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The storage a power cut would leave now: the durable directory entries, each file
    /// holding its durable bytes. Armed faults are not carried over; the capacity is.
    pub fn crash(&self) -> SimStorage {
        let state = self.lock();
        SimStorage {
            state: Arc::new(Mutex::new(state.crashed())),
            handles: Arc::default(),
        }
    }

    /// Like [`crash`](Self::crash), but the bytes of `range` of the file `path` (as
    /// written, synced or not) are kept as well: a torn write in which only those sectors
    /// reached the disk. The range is clipped to the file's written size.
    pub fn crash_keeping(&self, path: &Path, range: Range<u64>) -> io::Result<SimStorage> {
        let mut state = self.lock().clone_state();
        let ino = state.file_ino(path)?;
        let inode = state.inode_mut(ino)?;
        let end = range.end.min(inode.written.len);
        if range.start < end {
            let mut bytes = vec![0u8; (end - range.start) as usize];
            inode.written.read(range.start, &mut bytes);
            inode.durable.write(range.start, &bytes);
        }
        Ok(SimStorage {
            state: Arc::new(Mutex::new(state.crashed())),
            handles: Arc::default(),
        })
    }

    /// File handles of this storage alive now (created or opened, and not yet dropped),
    /// as a process's open file descriptors. A crashed copy counts its own.
    pub fn open_files(&self) -> usize {
        self.handles.open.load(Ordering::SeqCst)
    }

    /// The most file handles of this storage ever alive at once.
    pub fn open_files_peak(&self) -> usize {
        self.handles.peak.load(Ordering::SeqCst)
    }

    /// Starts [`open_files_peak`](Self::open_files_peak) again from the handles alive now.
    pub fn reset_open_files_peak(&self) {
        self.handles.peak.store(self.open_files(), Ordering::SeqCst);
    }

    /// Calls to `Storage::open` of this storage that succeeded (`create` not counted).
    pub fn files_opened(&self) -> u64 {
        self.handles.opened.load(Ordering::SeqCst)
    }

    /// Overwrites `bytes` at `offset` of the file `path` in both its written and durable
    /// bytes, as bit rot or a misdirected write would: the damage survives a crash and is
    /// seen by reads at once. Fails with `NotFound` if `path` is not a file.
    pub fn corrupt(&self, path: &Path, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.lock();
        let ino = state.file_ino(path)?;
        let inode = state.inode_mut(ino)?;
        inode.written.write(offset, bytes);
        inode.durable.write(offset, bytes);
        Ok(())
    }

    /// Inverts every bit of the `len` bytes at `offset` of the file `path` (its written
    /// bytes' complement, into both its written and durable bytes, as
    /// [`corrupt`](Self::corrupt) does): damage sure to change those bytes whatever they
    /// held, where a fixed value written over bytes that may already hold it (a random id,
    /// say) is sometimes no damage at all. Fails with `NotFound` if `path` is not a file,
    /// and `InvalidInput` if the range passes its written end.
    pub fn flip(&self, path: &Path, offset: u64, len: usize) -> io::Result<()> {
        let written = self.read_written(path)?;
        let range = usize::try_from(offset)
            .ok()
            .and_then(|start| Some(start..start.checked_add(len)?))
            .filter(|range| range.end <= written.len())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{}: {len} bytes at {offset} pass its end ({} bytes)",
                        path.display(),
                        written.len()
                    ),
                )
            })?;
        let flipped: Vec<u8> = written[range].iter().map(|byte| !byte).collect();
        self.corrupt(path, offset, &flipped)
    }

    /// Arms a failure of the next write on any file: it returns EIO and writes nothing.
    pub fn fail_next_write(&self) {
        self.fail_next(SimOp::Write);
    }

    /// Arms a failure of the next `sync_data` on any file: it returns EIO, persists none of
    /// the dirty pages, and marks them clean (so a retried sync would not persist them).
    pub fn fail_next_sync(&self) {
        self.fail_next_sync_persisting(0);
    }

    /// Arms a failure of the next `sync_data` that persists the first `pages` dirty 4 KiB
    /// pages (in offset order; `usize::MAX` for all, and the size with them) before it
    /// returns EIO. The other dirty pages are marked clean without being persisted.
    pub fn fail_next_sync_persisting(&self, pages: usize) {
        let mut state = self.lock();
        state.faults.sync_persist = Some(pages);
        state.faults.sync_skip = 0;
    }

    /// Arms a failure of the next call of `op` on any file or directory.
    pub fn fail_next(&self, op: SimOp) {
        self.fail_nth(op, 0);
    }

    /// Arms a failure of the call of `op` after `skip` more successful ones (`skip == 0`
    /// is the next call). A failed sync persists nothing. One armed failure per operation.
    pub fn fail_nth(&self, op: SimOp, skip: usize) {
        let mut state = self.lock();
        match op {
            SimOp::Sync => {
                state.faults.sync_persist = Some(0);
                state.faults.sync_skip = skip;
            }
            other => {
                state.faults.ops.insert(other, skip);
            }
        }
    }

    /// Makes the next `write_at` on any file write at most `max_bytes` bytes (a short
    /// write). With `max_bytes == 0` it returns `Ok(0)`.
    pub fn short_write_next(&self, max_bytes: usize) {
        self.short_write_nth(max_bytes, 0);
    }

    /// Like [`short_write_next`](Self::short_write_next), for the `write_at` after `skip`
    /// more whole ones (`skip == 0` is the next). Writes failed by an armed
    /// [`SimOp::Write`] fault are not counted. One armed short write at a time: arming
    /// replaces the previous one. Use it to reach a later writer, for example the event
    /// log's write that follows the command log's in the engine.
    pub fn short_write_nth(&self, max_bytes: usize, skip: usize) {
        self.lock().faults.short_write = Some(ShortWrite { max_bytes, skip });
    }

    /// Limits the total size of all files. A `write_at` or `set_len` that would grow the
    /// total beyond it fails with `StorageFull` (ENOSPC) and changes nothing; writes inside
    /// a file's current size (such as into a preallocated segment) still succeed.
    /// `u64::MAX` removes the limit.
    pub fn set_capacity(&self, bytes: u64) {
        self.lock().capacity = bytes;
    }

    /// The total size of the files that have a live directory entry: what
    /// [`set_capacity`](Self::set_capacity) limits. `set_capacity(used_bytes())` makes
    /// the disk full from now on: writes into the space files already have still succeed,
    /// anything that grows a file fails.
    pub fn used_bytes(&self) -> u64 {
        self.lock().used_bytes()
    }

    /// Disarms every armed fault (not the capacity).
    pub fn clear_faults(&self) {
        self.lock().faults = Faults::default();
    }

    /// The names of the files in `dir` as reads see them (live entries), sorted. Empty if
    /// `dir` does not exist.
    pub fn file_names(&self, dir: &Path) -> Vec<String> {
        let state = self.lock();
        state.names(dir, false)
    }

    /// The names of the files in `dir` that a crash now would leave (durable entries),
    /// sorted.
    pub fn durable_file_names(&self, dir: &Path) -> Vec<String> {
        let state = self.lock();
        state.names(dir, true)
    }

    /// The bytes a crash now would leave at `path`: the durable bytes of the file its
    /// durable directory entry names. `NotFound` if a crash would leave no file there.
    pub fn read_durable(&self, path: &Path) -> io::Result<Vec<u8>> {
        let state = self.lock();
        let (dir, name) = split(path)?;
        let entry = state
            .dirs
            .get(&dir)
            .and_then(|d| d.durable.get(&name))
            .ok_or_else(|| not_found(path))?;
        match entry {
            Entry::File(ino) => Ok(state.inode(*ino)?.durable.to_vec()),
            Entry::Dir => Err(is_a_directory(path)),
        }
    }

    /// The bytes reads of `path` see now (written, synced or not).
    pub fn read_written(&self, path: &Path) -> io::Result<Vec<u8>> {
        let state = self.lock();
        let ino = state.file_ino(path)?;
        Ok(state.inode(ino)?.written.to_vec())
    }

    /// The byte ranges of `path` whose written bytes differ from its durable bytes (what a
    /// crash now would lose), merged and sorted. A size difference is included as the
    /// range between the two sizes when the bytes there differ.
    pub fn unsynced_ranges(&self, path: &Path) -> io::Result<Vec<Range<u64>>> {
        let state = self.lock();
        let ino = state.file_ino(path)?;
        let inode = state.inode(ino)?;
        Ok(diff_ranges(&inode.written, &inode.durable))
    }
}

impl Storage for SimStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let dir = normalize(dir)?;
        let mut state = self.lock();
        let mut current = PathBuf::new();
        for component in dir.iter() {
            let name = component.to_string_lossy().into_owned();
            let child = current.join(&name);
            if !state.dirs.contains_key(&child) {
                let parent = state
                    .dirs
                    .get_mut(&current)
                    .ok_or_else(|| not_found(&current))?;
                if parent.live.contains_key(&name) {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{} exists and is not a directory", child.display()),
                    ));
                }
                parent.live.insert(name, Entry::Dir);
                state.dirs.insert(child.clone(), Dir::default());
            }
            current = child;
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let dir = normalize(dir)?;
        let state = self.lock();
        let d = state.dirs.get(&dir).ok_or_else(|| not_found(&dir))?;
        Ok(d.live
            .iter()
            .filter(|(_, e)| matches!(e, Entry::File(_)))
            .map(|(n, _)| n.clone())
            .collect())
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let ino = self.lock().file_ino(path)?;
        self.handles.opened.fetch_add(1, Ordering::SeqCst);
        Ok(self.handles.new_file(&self.state, ino))
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let (dir, name) = split(path)?;
        let mut state = self.lock();
        state.take_fault(SimOp::Create)?;
        let ino = state.next_ino;
        let d = state.dirs.get_mut(&dir).ok_or_else(|| not_found(&dir))?;
        if d.live.contains_key(&name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists", path.display()),
            ));
        }
        d.live.insert(name, Entry::File(ino));
        state.next_ino += 1;
        state.inodes.insert(ino, Inode::default());
        drop(state);
        Ok(self.handles.new_file(&self.state, ino))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (from_dir, from_name) = split(from)?;
        let (to_dir, to_name) = split(to)?;
        let mut state = self.lock();
        state.take_fault(SimOp::Rename)?;
        let ino = state.file_ino(from)?;
        match state.dirs.get(&to_dir) {
            None => return Err(not_found(&to_dir)),
            Some(d) if matches!(d.live.get(&to_name), Some(Entry::Dir)) => {
                return Err(is_a_directory(to));
            }
            Some(_) => {}
        }
        if let Some(d) = state.dirs.get_mut(&from_dir) {
            d.live.remove(&from_name);
        }
        if let Some(d) = state.dirs.get_mut(&to_dir) {
            d.live.insert(to_name, Entry::File(ino));
        }
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let (dir, name) = split(path)?;
        let mut state = self.lock();
        state.take_fault(SimOp::Remove)?;
        state.file_ino(path)?;
        if let Some(d) = state.dirs.get_mut(&dir) {
            d.live.remove(&name);
        }
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let dir = normalize(dir)?;
        let mut state = self.lock();
        state.take_fault(SimOp::SyncDir)?;
        let d = state.dirs.get_mut(&dir).ok_or_else(|| not_found(&dir))?;
        d.durable = d.live.clone();
        Ok(())
    }
}

/// An open file of a [`SimStorage`].
struct SimFile {
    state: Arc<Mutex<State>>,
    handles: Arc<Handles>,
    ino: u64,
}

impl Drop for SimFile {
    fn drop(&mut self) {
        self.handles.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl fmt::Debug for SimFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimFile").field("ino", &self.ino).finish()
    }
}

impl SimFile {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl StorageFile for SimFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let state = self.lock();
        Ok(state.inode(self.ino)?.written.read(offset, buf))
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        let mut state = self.lock();
        state.take_fault(SimOp::Write)?;
        let n = match state.faults.short_write.as_mut() {
            Some(short) if short.skip > 0 => {
                short.skip -= 1;
                buf.len()
            }
            Some(short) => {
                let max = short.max_bytes;
                state.faults.short_write = None;
                buf.len().min(max)
            }
            None => buf.len(),
        };
        if n == 0 {
            return Ok(0);
        }
        let end = offset
            .checked_add(n as u64)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "offset overflow"))?;
        let len = state.inode(self.ino)?.written.len;
        state.check_growth(end.saturating_sub(len))?;
        let inode = state.inode_mut(self.ino)?;
        inode.written.write(offset, &buf[..n]);
        inode.mark_dirty(offset, end);
        Ok(n)
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut state = self.lock();
        let fault = match state.faults.sync_persist {
            Some(_) if state.faults.sync_skip > 0 => {
                state.faults.sync_skip -= 1;
                None
            }
            Some(_) => state.faults.sync_persist.take(),
            None => None,
        };
        let inode = state.inode_mut(self.ino)?;
        let dirty = std::mem::take(&mut inode.dirty);
        let persist = fault.unwrap_or(usize::MAX);
        for &page in dirty.iter().take(persist) {
            inode.durable.copy_page_from(&inode.written, page);
        }
        if persist >= dirty.len() {
            inode.durable.set_len(inode.written.len);
        } else if let Some(&last) = dirty.iter().take(persist).next_back() {
            // Persisted pages carry their part of the size with them.
            let reach = ((last + 1) * PAGE as u64).min(inode.written.len);
            if reach > inode.durable.len {
                inode.durable.len = reach;
            }
        }
        match fault {
            None => Ok(()),
            Some(_) => Err(io::Error::other("injected sync failure (EIO)")),
        }
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.lock().inode(self.ino)?.written.len)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.lock();
        state.take_fault(SimOp::SetLen)?;
        let old = state.inode(self.ino)?.written.len;
        state.check_growth(len.saturating_sub(old))?;
        let inode = state.inode_mut(self.ino)?;
        inode.written.set_len(len);
        inode.mark_dirty(old.min(len), old.max(len));
        Ok(())
    }
}

#[derive(Debug, Clone, Default)]
struct Faults {
    /// Armed failures and how many calls to let through first.
    ops: BTreeMap<SimOp, usize>,
    sync_persist: Option<usize>,
    sync_skip: usize,
    short_write: Option<ShortWrite>,
}

/// An armed short write: the write after `skip` more writes `max_bytes` at most.
#[derive(Debug, Clone, Copy)]
struct ShortWrite {
    max_bytes: usize,
    skip: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    File(u64),
    Dir,
}

#[derive(Debug, Clone, Default)]
struct Dir {
    live: BTreeMap<String, Entry>,
    durable: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone, Default)]
struct Inode {
    written: Pages,
    durable: Pages,
    /// Pages whose written bytes may differ from the durable ones.
    dirty: BTreeSet<u64>,
}

impl Inode {
    fn mark_dirty(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let first = start / PAGE as u64;
        let last = (end - 1) / PAGE as u64;
        self.dirty.extend(first..=last);
    }
}

#[derive(Debug, Clone)]
struct State {
    dirs: HashMap<PathBuf, Dir>,
    inodes: HashMap<u64, Inode>,
    next_ino: u64,
    faults: Faults,
    capacity: u64,
}

impl Default for State {
    fn default() -> Self {
        let mut dirs = HashMap::new();
        dirs.insert(PathBuf::new(), Dir::default());
        State {
            dirs,
            inodes: HashMap::new(),
            next_ino: 1,
            faults: Faults::default(),
            capacity: u64::MAX,
        }
    }
}

impl State {
    fn clone_state(&self) -> State {
        self.clone()
    }

    /// What a power cut leaves: walk the durable entries from the root.
    fn crashed(&self) -> State {
        let mut out = State {
            dirs: HashMap::new(),
            inodes: HashMap::new(),
            next_ino: self.next_ino,
            faults: Faults::default(),
            capacity: self.capacity,
        };
        let mut stack = vec![PathBuf::new()];
        while let Some(path) = stack.pop() {
            let Some(dir) = self.dirs.get(&path) else {
                continue;
            };
            let mut entries = BTreeMap::new();
            for (name, entry) in &dir.durable {
                match entry {
                    Entry::File(ino) => {
                        if let Some(inode) = self.inodes.get(ino) {
                            out.inodes.entry(*ino).or_insert_with(|| Inode {
                                written: inode.durable.clone(),
                                durable: inode.durable.clone(),
                                dirty: BTreeSet::new(),
                            });
                            entries.insert(name.clone(), *entry);
                        }
                    }
                    Entry::Dir => {
                        let child = path.join(name);
                        if self.dirs.contains_key(&child) {
                            stack.push(child);
                            entries.insert(name.clone(), *entry);
                        }
                    }
                }
            }
            out.dirs.insert(
                path,
                Dir {
                    live: entries.clone(),
                    durable: entries,
                },
            );
        }
        out
    }

    fn take_fault(&mut self, op: SimOp) -> io::Result<()> {
        match self.faults.ops.get_mut(&op) {
            Some(0) => {
                self.faults.ops.remove(&op);
                Err(io::Error::other(format!("injected {op:?} failure (EIO)")))
            }
            Some(skip) => {
                *skip -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn check_growth(&self, growth: u64) -> io::Result<()> {
        if growth == 0 || self.capacity == u64::MAX {
            return Ok(());
        }
        let used = self.used_bytes();
        if used.saturating_add(growth) > self.capacity {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!(
                    "no space left on device (used {used}, growth {growth}, capacity {})",
                    self.capacity
                ),
            ));
        }
        Ok(())
    }

    /// Total size of the files that have a live directory entry.
    fn used_bytes(&self) -> u64 {
        let linked: BTreeSet<u64> = self
            .dirs
            .values()
            .flat_map(|d| d.live.values())
            .filter_map(|e| match e {
                Entry::File(ino) => Some(*ino),
                Entry::Dir => None,
            })
            .collect();
        linked
            .iter()
            .filter_map(|ino| self.inodes.get(ino))
            .map(|i| i.written.len)
            .sum()
    }

    fn file_ino(&self, path: &Path) -> io::Result<u64> {
        let (dir, name) = split(path)?;
        match self.dirs.get(&dir).and_then(|d| d.live.get(&name)) {
            Some(Entry::File(ino)) => Ok(*ino),
            Some(Entry::Dir) => Err(is_a_directory(path)),
            None => Err(not_found(path)),
        }
    }

    fn inode(&self, ino: u64) -> io::Result<&Inode> {
        self.inodes
            .get(&ino)
            .ok_or_else(|| io::Error::other(format!("inode {ino} vanished")))
    }

    fn inode_mut(&mut self, ino: u64) -> io::Result<&mut Inode> {
        self.inodes
            .get_mut(&ino)
            .ok_or_else(|| io::Error::other(format!("inode {ino} vanished")))
    }

    fn names(&self, dir: &Path, durable: bool) -> Vec<String> {
        let Ok(dir) = normalize(dir) else {
            return Vec::new();
        };
        let Some(d) = self.dirs.get(&dir) else {
            return Vec::new();
        };
        let map = if durable { &d.durable } else { &d.live };
        map.iter()
            .filter(|(_, e)| matches!(e, Entry::File(_)))
            .map(|(n, _)| n.clone())
            .collect()
    }
}

/// Sparse file bytes: pages that are absent read as zeros. No page holds data at or beyond
/// `len`.
#[derive(Debug, Clone, Default)]
struct Pages {
    len: u64,
    pages: BTreeMap<u64, Box<[u8; PAGE]>>,
}

impl Pages {
    fn read(&self, offset: u64, buf: &mut [u8]) -> usize {
        if offset >= self.len {
            return 0;
        }
        let n = buf.len().min((self.len - offset) as usize);
        let mut done = 0;
        while done < n {
            let pos = offset + done as u64;
            let page = pos / PAGE as u64;
            let within = (pos % PAGE as u64) as usize;
            let take = (PAGE - within).min(n - done);
            match self.pages.get(&page) {
                Some(p) => buf[done..done + take].copy_from_slice(&p[within..within + take]),
                None => buf[done..done + take].fill(0),
            }
            done += take;
        }
        n
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let mut done = 0;
        while done < data.len() {
            let pos = offset + done as u64;
            let page = pos / PAGE as u64;
            let within = (pos % PAGE as u64) as usize;
            let take = (PAGE - within).min(data.len() - done);
            let chunk = &data[done..done + take];
            match self.pages.get_mut(&page) {
                Some(p) => p[within..within + take].copy_from_slice(chunk),
                None if chunk.iter().all(|&b| b == 0) => {}
                None => {
                    let mut p = Box::new([0u8; PAGE]);
                    p[within..within + take].copy_from_slice(chunk);
                    self.pages.insert(page, p);
                }
            }
            done += take;
        }
        self.len = self.len.max(offset + data.len() as u64);
    }

    fn set_len(&mut self, len: u64) {
        if len < self.len {
            let keep_pages = len.div_ceil(PAGE as u64);
            self.pages.split_off(&keep_pages);
            let within = (len % PAGE as u64) as usize;
            if within != 0
                && let Some(p) = self.pages.get_mut(&(len / PAGE as u64))
            {
                p[within..].fill(0);
            }
        }
        self.len = len;
    }

    /// Copies page `page` of `from` (its bytes below `from.len`) into `self`.
    fn copy_page_from(&mut self, from: &Pages, page: u64) {
        match from.pages.get(&page) {
            Some(p) => {
                self.pages.insert(page, p.clone());
            }
            None => {
                self.pages.remove(&page);
            }
        }
        let page_end = ((page + 1) * PAGE as u64).min(from.len);
        if page_end > self.len {
            self.len = page_end;
        }
    }

    fn to_vec(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.len as usize];
        self.read(0, &mut out);
        out
    }
}

fn diff_ranges(a: &Pages, b: &Pages) -> Vec<Range<u64>> {
    let len = a.len.max(b.len);
    let mut ranges: Vec<Range<u64>> = Vec::new();
    let candidates: BTreeSet<u64> = a.pages.keys().chain(b.pages.keys()).copied().collect();
    let mut push = |start: u64, end: u64| match ranges.last_mut() {
        Some(last) if last.end == start => last.end = end,
        _ => ranges.push(start..end),
    };
    for page in candidates {
        let base = page * PAGE as u64;
        if base >= len {
            break;
        }
        let mut pa = [0u8; PAGE];
        let mut pb = [0u8; PAGE];
        a.read(base, &mut pa);
        b.read(base, &mut pb);
        let mut i = 0;
        while i < PAGE {
            if pa[i] != pb[i] {
                let start = i;
                while i < PAGE && pa[i] != pb[i] {
                    i += 1;
                }
                push(base + start as u64, base + i as u64);
            } else {
                i += 1;
            }
        }
    }
    ranges
}

fn normalize(path: &Path) -> io::Result<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => out.push(name),
            Component::CurDir => {}
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} is not a relative path", path.display()),
                ));
            }
        }
    }
    Ok(out)
}

fn split(path: &Path) -> io::Result<(PathBuf, String)> {
    let path = normalize(path)?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty path"))?
        .to_string_lossy()
        .into_owned();
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok((dir, name))
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} not found", path.display()),
    )
}

fn is_a_directory(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::IsADirectory,
        format!("{} is a directory", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> &Path {
        Path::new(s)
    }

    #[test]
    fn written_bytes_survive_a_crash_only_after_sync_and_dir_sync() {
        let sim = SimStorage::new();
        sim.create_dir_all(p("d")).unwrap();
        let f = sim.create(p("d/f")).unwrap();
        f.write_at(b"hello", 0).unwrap();
        f.sync_data().unwrap();
        // The directory entries are not durable yet.
        assert!(sim.crash().list(p("d")).is_err());
        sim.sync_dir(p("")).unwrap();
        assert_eq!(sim.crash().list(p("d")).unwrap(), Vec::<String>::new());
        sim.sync_dir(p("d")).unwrap();
        f.write_at(b"HELLO world", 0).unwrap();
        let crashed = sim.crash();
        assert_eq!(crashed.read_durable(p("d/f")).unwrap(), b"hello");
        assert_eq!(sim.unsynced_ranges(p("d/f")).unwrap(), vec![0..11]);
        let torn = sim.crash_keeping(p("d/f"), 0..3).unwrap();
        assert_eq!(torn.read_durable(p("d/f")).unwrap(), b"HELlo");
    }

    #[test]
    fn a_flip_changes_every_byte_it_covers_whatever_they_held() {
        let sim = SimStorage::new();
        let f = sim.create(p("f")).unwrap();
        f.write_at(&[0x00, 0xff, 0x5a, 0x01], 0).unwrap();
        f.sync_data().unwrap();
        sim.sync_dir(p("")).unwrap();
        sim.flip(p("f"), 1, 2).unwrap();
        assert_eq!(sim.read_written(p("f")).unwrap(), [0x00, 0x00, 0xa5, 0x01]);
        assert_eq!(
            sim.crash().read_durable(p("f")).unwrap(),
            [0x00, 0x00, 0xa5, 0x01]
        );
        let beyond = sim.flip(p("f"), 3, 2).unwrap_err();
        assert_eq!(beyond.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            sim.flip(p("g"), 0, 1).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn failed_sync_marks_pages_clean() {
        let sim = SimStorage::new();
        let f = sim.create(p("f")).unwrap();
        sim.sync_dir(p("")).unwrap();
        f.write_at(&[1u8; 10], 0).unwrap();
        sim.fail_next_sync();
        assert!(f.sync_data().is_err());
        // A retried sync "succeeds" and persists the size, but the data never reached the
        // disk: the file reads as zeros after a crash.
        f.sync_data().unwrap();
        assert_eq!(sim.read_durable(p("f")).unwrap(), vec![0u8; 10]);
        assert_eq!(sim.read_written(p("f")).unwrap(), vec![1u8; 10]);
    }

    #[test]
    fn capacity_short_writes_and_rename() {
        let sim = SimStorage::new();
        sim.set_capacity(100);
        let f = sim.create(p("a")).unwrap();
        f.set_len(100).unwrap();
        assert_eq!(
            f.write_at(&[7u8; 10], 95).unwrap_err().kind(),
            io::ErrorKind::StorageFull
        );
        assert_eq!(f.write_at(&[7u8; 10], 50).unwrap(), 10);
        sim.short_write_next(3);
        assert_eq!(f.write_at(&[9u8; 10], 0).unwrap(), 3);
        sim.short_write_nth(2, 1);
        assert_eq!(f.write_at(&[9u8; 4], 0).unwrap(), 4, "skipped");
        assert_eq!(f.write_at(&[9u8; 4], 0).unwrap(), 2, "the armed one");
        assert_eq!(f.write_at(&[9u8; 4], 0).unwrap(), 4, "disarmed");
        assert_eq!(sim.used_bytes(), 100);
        sim.rename(p("a"), p("b")).unwrap();
        assert_eq!(sim.file_names(p("")), vec!["b".to_string()]);
        assert!(sim.open(p("a")).is_err());
        sim.set_len_check();
    }

    #[test]
    fn handles_are_counted_until_dropped() {
        let sim = SimStorage::new();
        let created = sim.create(p("f")).unwrap();
        assert_eq!((sim.open_files(), sim.files_opened()), (1, 0));
        let a = sim.open(p("f")).unwrap();
        let b = sim.open(p("f")).unwrap();
        let a2 = Arc::clone(&a);
        assert_eq!((sim.open_files(), sim.files_opened()), (3, 2));
        drop(a);
        assert_eq!(sim.open_files(), 3, "a clone of a handle keeps it open");
        drop((a2, created));
        assert_eq!(sim.open_files(), 1);
        assert_eq!(sim.open_files_peak(), 3);
        sim.reset_open_files_peak();
        assert_eq!(sim.open_files_peak(), 1);
        assert!(sim.open(p("missing")).is_err());
        assert_eq!(sim.files_opened(), 2, "a failed open is not counted");
        let crashed = sim.crash();
        assert_eq!(
            crashed.open_files(),
            0,
            "a crashed copy counts its own handles"
        );
        drop(b);
        assert_eq!(sim.open_files(), 0);
    }

    impl SimStorage {
        fn set_len_check(&self) {
            let f = self.open(p("b")).unwrap();
            f.set_len(5).unwrap();
            f.set_len(50).unwrap();
            let bytes = self.read_written(p("b")).unwrap();
            assert_eq!(&bytes[..3], &[9, 9, 9]);
            assert!(bytes[5..].iter().all(|&b| b == 0));
        }
    }
}
