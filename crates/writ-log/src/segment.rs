//! Segment files on storage: names, creation (preallocation) and installation, sidecar
//! index files.
//!
//! A segment comes into being in two steps so that a crash never leaves a segment name
//! pointing at a file whose header or size is not durable:
//! 1. [`prepare_file`] creates a temporary file (`*.tmp`), sizes it with `set_len`, fills
//!    it with real zero writes (unless preallocation is off, or a hurry flag stops the fill
//!    early and leaves the rest a hole) and syncs it. This is the slow part; the
//!    preallocator thread does it ahead of time.
//! 2. [`install_segment`] writes the header, syncs, renames the file to its final name and
//!    syncs the directory. Only then may a record be written into it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::format::SegmentHeader;
use crate::storage::{Storage, StorageFile, write_all_at};

/// File extension of segments.
pub(crate) const SEGMENT_EXT: &str = ".wlog";
/// File extension of sidecar index files.
pub(crate) const INDEX_EXT: &str = ".idx";
/// Suffix of temporary files; every one found at open is a leftover and removed.
pub(crate) const TMP_SUFFIX: &str = ".tmp";
/// The preallocator's next segment, prepared ahead of time.
pub(crate) const SPARE_NAME: &str = "spare.wlog.tmp";
/// Digits in a segment's name.
const NAME_DIGITS: usize = 20;
/// Size of the zero writes that preallocate a segment.
const ZERO_CHUNK: usize = 1 << 20;
/// Preallocation syncs every this many bytes so that it never queues a large flush in front
/// of the writer's `fdatasync` (measured with batches of 128 records of 200 bytes: the
/// slowest commit during fills took 11-13 ms at 8 MiB, 6-7 ms at 2 MiB, the same
/// throughput).
const ZERO_SYNC_EVERY: u64 = 2 << 20;

/// The name of the segment whose first record is `first_seq`: `00000000000000000042.wlog`.
pub fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}{SEGMENT_EXT}")
}

/// The name of the sidecar index of the segment whose first record is `first_seq`:
/// `00000000000000000042.idx`.
pub fn index_name(first_seq: u64) -> String {
    format!("{first_seq:020}{INDEX_EXT}")
}

/// What a file name in a log directory is (the table "Files of a log directory" in
/// `docs/log-format.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileKind {
    /// A segment, with its first sequence number.
    Segment(u64),
    /// A sidecar index, with its segment's first sequence number.
    Index(u64),
    /// A `.wlog` file whose name is not 20 digits: open refuses it.
    BadSegmentName,
    /// A `*.tmp` file: never part of the log, removed at open.
    Temp,
    /// Anything else: ignored by the log.
    Other,
}

/// What the file `name` of a log directory is.
pub fn classify(name: &str) -> FileKind {
    if name.ends_with(TMP_SUFFIX) {
        FileKind::Temp
    } else if let Some(stem) = name.strip_suffix(SEGMENT_EXT) {
        parse_seq(stem).map_or(FileKind::BadSegmentName, FileKind::Segment)
    } else if let Some(stem) = name.strip_suffix(INDEX_EXT) {
        parse_seq(stem).map_or(FileKind::Other, FileKind::Index)
    } else {
        FileKind::Other
    }
}

fn parse_seq(stem: &str) -> Option<u64> {
    if stem.len() != NAME_DIGITS || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Removes `path`; a missing file is not an error.
pub(crate) fn remove_if_exists(storage: &dyn Storage, path: &Path) -> io::Result<()> {
    match storage.remove(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates the temporary file `tmp` (replacing a leftover) of `size` bytes and syncs it.
/// With `zero_fill` the bytes are written as zeros in large chunks, so that later writes
/// into the file need no block allocation and `fdatasync` no metadata update; otherwise the
/// file is only extended with `set_len` (sparse). `stop` cancels a zero fill between chunks
/// (the error is `Interrupted`); `hurry` ends it early instead, leaving the rest of the file
/// a hole, synced and usable: the writer sets it when it needs the segment before the fill
/// is done, so that a writer faster than the disk's zero fill never waits for one.
pub(crate) fn prepare_file(
    storage: &dyn Storage,
    tmp: &Path,
    size: u64,
    zero_fill: bool,
    stop: Option<&AtomicBool>,
    hurry: Option<&AtomicBool>,
) -> io::Result<Prepared> {
    remove_if_exists(storage, tmp)?;
    let file = storage.create(tmp)?;
    // Full size first: whatever the fill below does not reach is a hole, which reads as
    // zeros like the rest. Writing into a hole costs an allocation (and its journal commit)
    // on the `fdatasync` that covers it; writing into written zeros does not.
    file.set_len(size)?;
    let mut zeroed = 0u64;
    if zero_fill {
        let mut since_sync = 0u64;
        while zeroed < size {
            if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                return Err(io::Error::new(
                    io::ErrorKind::Interrupted,
                    "segment preallocation cancelled",
                ));
            }
            if hurry.is_some_and(|h| h.load(Ordering::Relaxed)) {
                break;
            }
            let n = ZERO_CHUNK.min(usize::try_from(size - zeroed).unwrap_or(ZERO_CHUNK));
            file.write_zeros_at(zeroed, n)?;
            zeroed += n as u64;
            since_sync += n as u64;
            if since_sync >= ZERO_SYNC_EVERY && zeroed < size {
                file.sync_data()?;
                since_sync = 0;
            }
        }
    }
    file.sync_data()?;
    Ok(Prepared { file, zeroed })
}

/// A file made by [`prepare_file`]: full size and synced.
pub(crate) struct Prepared {
    pub file: Arc<dyn StorageFile>,
    /// How many bytes from the start were written as zeros; the rest is a hole.
    pub zeroed: u64,
}

/// Makes the prepared file `tmp` the segment described by `header`: writes and syncs the
/// header, renames the file to its segment name and syncs the directory. On return the
/// segment is durable as a file under its name; only then may records be written into it.
/// On error, returns the path the failed operation was about.
pub(crate) fn install_segment(
    storage: &dyn Storage,
    dir: &Path,
    tmp: &Path,
    file: &dyn StorageFile,
    header: &SegmentHeader,
) -> Result<PathBuf, (PathBuf, io::Error)> {
    let path = dir.join(segment_name(header.first_seq));
    let on = |p: &Path| {
        let p = p.to_path_buf();
        move |e| (p, e)
    };
    write_all_at(file, &header.encode(), 0).map_err(on(tmp))?;
    file.sync_data().map_err(on(tmp))?;
    storage.rename(tmp, &path).map_err(on(&path))?;
    storage.sync_dir(dir).map_err(on(dir))?;
    Ok(path)
}

/// Writes a sidecar index file: to a temporary name, synced, then renamed and the directory
/// synced. Best effort for the caller: an index file that is missing or invalid at open is
/// rebuilt by scanning its segment.
pub(crate) fn write_index_file(
    storage: &dyn Storage,
    dir: &Path,
    first_seq: u64,
    bytes: &[u8],
) -> io::Result<()> {
    let path = dir.join(index_name(first_seq));
    let tmp = dir.join(format!("{}{TMP_SUFFIX}", index_name(first_seq)));
    remove_if_exists(storage, &tmp)?;
    let file = storage.create(&tmp)?;
    let result = write_all_at(&*file, bytes, 0)
        .and_then(|()| file.sync_data())
        .and_then(|()| storage.rename(&tmp, &path))
        .and_then(|()| storage.sync_dir(dir));
    if result.is_err() {
        // Best effort: the temporary file is removed at the next open anyway.
        let _ = storage.remove(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(segment_name(42), "00000000000000000042.wlog");
        assert_eq!(classify(&segment_name(42)), FileKind::Segment(42));
        assert_eq!(classify(&index_name(u64::MAX)), FileKind::Index(u64::MAX));
        assert_eq!(
            classify("99999999999999999999.wlog"),
            FileKind::BadSegmentName
        );
        assert_eq!(classify("42.wlog"), FileKind::BadSegmentName);
        assert_eq!(classify(SPARE_NAME), FileKind::Temp);
        assert_eq!(classify("00000000000000000042.idx.tmp"), FileKind::Temp);
        assert_eq!(classify("README"), FileKind::Other);
    }
}
