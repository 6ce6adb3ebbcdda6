//! The floor the disk sets for a log: the plain loop, one positional write (`pwrite`) and
//! one `fdatasync` at a time, into a file zero-filled beforehand.
//!
//! A log's commit path is measured against it: `cargo bench -p writ-log --bench append`
//! (its variant (b)) and `writ-compare --over http` (a command's outcome over HTTP against
//! this loop on the same file system) both run [`PrezeroedFile::sync_loop`], so the two
//! compare with the same loop.
//!
//! The file is zero-filled and synced when it is created, so a timed write allocates no
//! block and its `fdatasync` commits no metadata: the cheapest durable write of these bytes
//! a program can make on this disk. Writes wrap around at the file's end.
//!
//! ```no_run
//! use std::time::Duration;
//! use writ_log::reference::PrezeroedFile;
//!
//! let mut file = PrezeroedFile::create("plain.dat".as_ref(), 64 << 20)?;
//! let run = file.sync_loop(&[0x5a; 200], Duration::from_secs(2))?;
//! println!("{:.0} fdatasyncs/s", run.syncs_per_s());
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Zeros written per call while filling the file.
const FILL_CHUNK_BYTES: usize = 1 << 20;

/// A file zero-filled and synced at creation, written at a moving offset that wraps at its
/// end.
#[derive(Debug)]
pub struct PrezeroedFile {
    file: File,
    file_bytes: u64,
    offset: u64,
}

/// What a timed [`PrezeroedFile::sync_loop`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncLoop {
    /// Writes, each followed by its `fdatasync`.
    pub syncs: u64,
    /// Wall time of the loop.
    pub elapsed: Duration,
}

impl SyncLoop {
    /// Writes (each synced) per second.
    pub fn syncs_per_s(&self) -> f64 {
        self.syncs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl PrezeroedFile {
    /// Creates `path` (it must not exist), writes `file_bytes` of zeros and syncs the file
    /// with its size. `file_bytes` must be above 0; it is rounded up to whole fill chunks
    /// (1 MiB).
    pub fn create(path: &Path, file_bytes: u64) -> io::Result<Self> {
        assert!(file_bytes > 0, "a pre-zeroed file needs a size");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        let zeros = vec![0u8; FILL_CHUNK_BYTES];
        let mut offset = 0;
        while offset < file_bytes {
            file.write_all_at(&zeros, offset)?;
            offset += zeros.len() as u64;
        }
        file.sync_all()?;
        Ok(Self {
            file,
            file_bytes: offset,
            offset: 0,
        })
    }

    /// The file itself, for a loop of one's own that writes into it from several threads
    /// at once (`cargo bench -p writ-log --bench overlap`).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The file's size: the size asked for, rounded up to whole fill chunks.
    pub fn file_bytes(&self) -> u64 {
        self.file_bytes
    }

    /// Writes `bytes` at the next offset (from the start again when they would pass the
    /// end) and `fdatasync`s. `bytes` must fit in the file.
    pub fn write_and_sync(&mut self, bytes: &[u8]) -> io::Result<()> {
        let len = bytes.len() as u64;
        assert!(
            len <= self.file_bytes,
            "{len} bytes into a {}-byte file",
            self.file_bytes
        );
        if self.offset + len > self.file_bytes {
            self.offset = 0;
        }
        self.file.write_all_at(bytes, self.offset)?;
        self.file.sync_data()?;
        self.offset += len;
        Ok(())
    }

    /// [`write_and_sync`](Self::write_and_sync) of `bytes` over and over, one at a time, for
    /// `budget`.
    pub fn sync_loop(&mut self, bytes: &[u8], budget: Duration) -> io::Result<SyncLoop> {
        let started = Instant::now();
        let mut syncs = 0u64;
        while started.elapsed() < budget {
            self.write_and_sync(bytes)?;
            syncs += 1;
        }
        Ok(SyncLoop {
            syncs,
            elapsed: started.elapsed(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_wrap_at_the_end_of_the_file() {
        let dir = std::env::temp_dir().join(format!(
            "writ-log-reference-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("plain.dat");
        let _ = std::fs::remove_file(&path);
        let mut file = PrezeroedFile::create(&path, 1).unwrap();
        assert_eq!(file.file_bytes, FILL_CHUNK_BYTES as u64, "rounded up");
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            FILL_CHUNK_BYTES as u64
        );
        let record = vec![7u8; 300_000];
        for _ in 0..4 {
            file.write_and_sync(&record).unwrap();
        }
        // Three fit (900,000 bytes); the fourth starts over at 0.
        assert_eq!(file.offset, 300_000);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            FILL_CHUNK_BYTES as u64,
            "the file never grows"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
