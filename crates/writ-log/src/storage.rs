//! The file system as the log sees it.
//!
//! [`FsStorage`] is the real thing. [`SimStorage`] is an in-memory file system for tests
//! that keeps, for every file, the bytes *written* (what reads see, like the page cache)
//! apart from the bytes *durable* (what survives a power cut): `sync_data` moves written
//! bytes to durable, and a new file or a rename becomes durable only when its directory is
//! synced. [`SimStorage::crash`] returns the storage a power cut leaves; faults (failed
//! write, failed sync, disk full, short write) can be injected.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod sim;

pub use sim::{SimOp, SimStorage};

/// A directory tree of files. Paths are relative to the storage's root.
pub trait Storage: Send + Sync + std::fmt::Debug + 'static {
    /// Creates a directory and its parents if missing.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// The names of the files directly in `dir` (not directories), in any order.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Opens an existing file for reading and writing.
    fn open(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>>;
    /// Creates a new, empty file; fails if it exists.
    fn create(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>>;
    /// Renames a file, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries (created, renamed, removed files) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// One open file.
pub trait StorageFile: Send + Sync + std::fmt::Debug + 'static {
    /// Reads at `offset`; returns the bytes read (0 at or past the end).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Writes at `offset`; may write fewer bytes than given (a short write).
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize>;
    /// `fdatasync`: makes the file's written bytes and size durable.
    fn sync_data(&self) -> io::Result<()>;
    /// The file's current size.
    fn len(&self) -> io::Result<u64>;
    /// Whether the file's size is 0.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Sets the file's size (truncates or extends with zeros).
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Writes `len` zero bytes at `offset`, whole (a short write is continued), as
    /// [`StorageFile::write_at`] of zeros would; not durable until
    /// [`StorageFile::sync_data`]. Used to prepare segments ahead of the writer. Files on
    /// disk write aligned ranges past the page cache (see [`FsStorage`]).
    fn write_zeros_at(&self, offset: u64, len: usize) -> io::Result<()> {
        let zeros = zero_chunk();
        let mut done = 0;
        while done < len {
            let n = (len - done).min(zeros.len());
            write_all_at(self, &zeros[..n], offset + done as u64)?;
            done += n;
        }
        Ok(())
    }
}

/// Zeros written per call by [`StorageFile::write_zeros_at`], and the alignment its
/// direct writes need: a page, the largest logical block size of the disks Linux
/// supports for `O_DIRECT`.
const ZERO_CHUNK_BYTES: usize = 1 << 20;
const DIRECT_ALIGN: usize = 4096;

/// One chunk of zeros, page aligned (as `O_DIRECT` needs). A zero-initialised static
/// lives in `.bss`: it takes no room in the binary, and no memory until read.
#[repr(C, align(4096))]
struct ZeroChunk([u8; ZERO_CHUNK_BYTES]);

static ZEROS: ZeroChunk = ZeroChunk([0; ZERO_CHUNK_BYTES]);
const _: () = assert!(std::mem::align_of::<ZeroChunk>() == DIRECT_ALIGN);

fn zero_chunk() -> &'static [u8] {
    &ZEROS.0
}

/// The size of a page of the page cache: the system's page size (4 KiB where it cannot be
/// asked). The log pads each frame's write to a whole page with the zeros already there.
pub(crate) fn page_bytes() -> u64 {
    static PAGE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *PAGE.get_or_init(|| {
        #[cfg(unix)]
        {
            // SAFETY: sysconf takes and returns plain integers.
            #[allow(unsafe_code)]
            let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
            u64::try_from(page)
                .ok()
                .filter(|p| p.is_power_of_two())
                .unwrap_or(4096)
        }
        #[cfg(not(unix))]
        {
            4096
        }
    })
}

/// Real files under a root directory.
#[derive(Debug, Clone)]
pub struct FsStorage {
    root: PathBuf,
}

impl FsStorage {
    /// Storage rooted at `root` (created on first use by `create_dir_all`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn full(&self, path: &Path) -> PathBuf {
        self.root.join(path)
    }
}

impl Storage for FsStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(self.full(dir))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(self.full(dir))? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                // A name that is not UTF-8 cannot be one of the log's files.
                if let Ok(name) = entry.file_name().into_string() {
                    names.push(name);
                }
            }
        }
        Ok(names)
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.full(path))?;
        Ok(Arc::new(FsFile::new(file)))
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(self.full(path))?;
        Ok(Arc::new(FsFile::new(file)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(self.full(from), self.full(to))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(self.full(path))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(self.full(dir))?.sync_all()
    }
}

/// An open file of an [`FsStorage`]: positional reads and writes (`pread`, `pwrite`) so
/// that readers and the writer share one descriptor without a seek position.
#[derive(Debug)]
struct FsFile {
    file: File,
}

impl FsFile {
    fn new(file: File) -> Self {
        Self { file }
    }

    /// The file opened again with `O_DIRECT`, if the file system allows it (tmpfs, for
    /// one, does not). Opened through `/proc/self/fd`, so it is this very file even if
    /// its name was renamed or reused since it was opened. Not kept: a second descriptor
    /// per segment would double the files a log holds open.
    fn direct(&self) -> Option<File> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            use std::os::unix::fs::OpenOptionsExt;
            OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_DIRECT)
                .open(format!("/proc/self/fd/{}", self.file.as_raw_fd()))
                .ok()
        }
        #[cfg(not(target_os = "linux"))]
        {
            None
        }
    }
}

impl StorageFile for FsFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.file.read_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.file.write_at(buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    /// Page-aligned ranges go around the page cache (`O_DIRECT`): preparing a 64 MiB
    /// segment then costs the CPU almost nothing (no copy into the cache, no writeback)
    /// and does not push the pages readers use out of the cache. The rest, or everything
    /// where direct writes are refused, is written through the cache. Either way the
    /// bytes are durable only after `sync_data`, which flushes the disk's cache for both.
    fn write_zeros_at(&self, offset: u64, len: usize) -> io::Result<()> {
        let aligned = |n: u64| n.is_multiple_of(DIRECT_ALIGN as u64);
        let zeros = zero_chunk();
        // One direct descriptor for the whole range, through which `write_all_at` continues
        // short writes as it does for any file.
        let direct = self.direct().map(FsFile::new);
        let mut done = 0;
        while done < len {
            let at = offset + done as u64;
            let n = (len - done).min(zeros.len());
            match &direct {
                Some(direct) if aligned(at) && aligned(n as u64) => {
                    write_all_at(direct, &zeros[..n], at)?;
                }
                _ => write_all_at(self, &zeros[..n], at)?,
            }
            done += n;
        }
        Ok(())
    }
}

/// Writes all of `buf` at `offset`, looping over short writes. A write that returns 0 is
/// an error ([`io::ErrorKind::WriteZero`]); `Interrupted` is retried.
pub fn write_all_at<F: StorageFile + ?Sized>(
    file: &F,
    mut buf: &[u8],
    mut offset: u64,
) -> io::Result<()> {
    while !buf.is_empty() {
        match file.write_at(buf, offset) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "write_at wrote no bytes",
                ));
            }
            Ok(n) => {
                debug_assert!(n <= buf.len());
                buf = &buf[n.min(buf.len())..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads into `buf` at `offset` until it is full or the file ends; returns the bytes read.
pub fn read_full_at(file: &dyn StorageFile, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
