//! An archive directory: sealed segments moved out of a log directory, still part of the
//! log.
//!
//! A log opened with [`LogOptions::archive_dir`](crate::LogOptions::archive_dir) reads its
//! sealed segments from both directories (see the recovery table in
//! `docs/log-format.md`) and never writes into the archive. [`move_segment`] is the one
//! thing that writes there: it moves a sealed segment and its sidecar index so that a crash
//! at any point leaves the segment whole in the log directory, in the archive, or in both
//! with the same bytes (which open accepts, reading the log directory's copy).
//!
//! The move of one file: copy it to `ARCHIVE/name.tmp`, sync it, rename it to
//! `ARCHIVE/name`; once the segment and its index are both renamed, sync the archive
//! directory; only then remove them from the log directory and sync it.

use std::io;
use std::path::{Path, PathBuf};

use crate::segment::{FileKind, TMP_SUFFIX, classify, index_name, remove_if_exists};
use crate::storage::{Storage, read_full_at, write_all_at};

pub use crate::segment::segment_name;

/// Bytes copied or compared at once.
const CHUNK_BYTES: usize = 1 << 20;

/// Why a segment could not be moved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MoveError {
    /// The file system failed on `path`.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The archive already holds a file of this name with other bytes: it belongs to
    /// another log (one archive directory per log), or one of the two is damaged.
    #[error(
        "{archived} is already in the archive with bytes other than {local}: an archive \
         directory holds the segments of one log only"
    )]
    Differs {
        /// The file in the log directory.
        local: PathBuf,
        /// The file of the same name in the archive.
        archived: PathBuf,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> MoveError + '_ {
    move |source| MoveError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether two files hold the same bytes (and are of the same length).
pub fn same_bytes(storage: &dyn Storage, a: &Path, b: &Path) -> io::Result<bool> {
    let fa = storage.open(a)?;
    let fb = storage.open(b)?;
    let len = fa.len()?;
    if fb.len()? != len {
        return Ok(false);
    }
    let mut ba = vec![0u8; CHUNK_BYTES];
    let mut bb = vec![0u8; CHUNK_BYTES];
    let mut at = 0u64;
    while at < len {
        let want = CHUNK_BYTES.min(usize::try_from(len - at).unwrap_or(CHUNK_BYTES));
        let na = read_full_at(&*fa, &mut ba[..want], at)?;
        let nb = read_full_at(&*fb, &mut bb[..want], at)?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na < want {
            break;
        }
        at += want as u64;
    }
    Ok(true)
}

/// Makes the archive directory ready for [`move_segment`]: creates it if missing (its
/// entry synced in its parent, so that it is durable before a segment in it is), and
/// removes its `*.tmp` files (copies a crash cut short; never part of the log: open
/// ignores them). Returns how many were removed.
pub fn prepare(storage: &dyn Storage, archive: &Path) -> io::Result<usize> {
    storage.create_dir_all(archive)?;
    let parent = archive.parent().unwrap_or(Path::new(""));
    storage.sync_dir(parent)?;
    let mut removed = 0;
    for name in storage.list(archive)? {
        if classify(&name) == FileKind::Temp {
            storage.remove(&archive.join(&name))?;
            removed += 1;
        }
    }
    if removed > 0 {
        storage.sync_dir(archive)?;
    }
    Ok(removed)
}

/// What [`move_segment`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Moved {
    /// Bytes removed from the log directory (the segment and its index).
    pub bytes: u64,
    /// Whether the archive already held the segment with the same bytes (a move a crash
    /// cut short after its copy): only the log directory's copy was removed.
    pub already_archived: bool,
}

/// Moves the sealed segment `first_seq` of the log in `dir`, with its sidecar index if it
/// has one, to `archive` (which must exist, its entry durable). The caller makes sure the
/// segment is sealed (not the log's last) and that no writer runs on the log. A file the
/// archive already holds with the same bytes is not copied again; with other bytes the
/// move is refused ([`MoveError::Differs`]) and nothing is removed. A segment already
/// moved (only in the archive) is left as it is.
pub fn move_segment(
    storage: &dyn Storage,
    dir: &Path,
    archive: &Path,
    first_seq: u64,
) -> Result<Moved, MoveError> {
    let mut moved = Moved {
        already_archived: true,
        ..Moved::default()
    };
    let mut names = vec![segment_name(first_seq)];
    let idx = index_name(first_seq);
    let local_idx = dir.join(&idx);
    let local_segment = dir.join(&names[0]);
    match storage.open(&local_segment) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Moved already (a second run): at most a stale index is left to remove.
            let archived = archive.join(&names[0]);
            storage.open(&archived).map_err(io_error(&archived))?;
            remove_if_exists(storage, &local_idx).map_err(io_error(&local_idx))?;
            storage.sync_dir(dir).map_err(io_error(dir))?;
            return Ok(moved);
        }
        Err(source) => {
            return Err(MoveError::Io {
                path: local_segment,
                source,
            });
        }
    }
    match storage.open(&local_idx) {
        Ok(_) => names.push(idx),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(MoveError::Io {
                path: local_idx,
                source,
            });
        }
    }
    for name in &names {
        let local = dir.join(name);
        let archived = archive.join(name);
        let len = storage
            .open(&local)
            .and_then(|f| f.len())
            .map_err(io_error(&local))?;
        moved.bytes += len;
        match storage.open(&archived) {
            Ok(_) => {
                if same_bytes(storage, &local, &archived).map_err(io_error(&archived))? {
                    continue;
                }
                return Err(MoveError::Differs { local, archived });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(MoveError::Io {
                    path: archived,
                    source,
                });
            }
        }
        moved.already_archived = false;
        let tmp = archive.join(format!("{name}{TMP_SUFFIX}"));
        copy_file(storage, &local, &tmp)?;
        storage
            .rename(&tmp, &archived)
            .map_err(io_error(&archived))?;
    }
    // The archive's entries durable before the log directory lets go of the files.
    storage.sync_dir(archive).map_err(io_error(archive))?;
    for name in &names {
        let local = dir.join(name);
        remove_if_exists(storage, &local).map_err(io_error(&local))?;
    }
    storage.sync_dir(dir).map_err(io_error(dir))?;
    Ok(moved)
}

/// Copies `from` to the new file `to` (a leftover `to` is replaced) and syncs it; chunks of
/// zeros are not written, so they take no room.
fn copy_file(storage: &dyn Storage, from: &Path, to: &Path) -> Result<(), MoveError> {
    remove_if_exists(storage, to).map_err(io_error(to))?;
    let source = storage.open(from).map_err(io_error(from))?;
    let len = source.len().map_err(io_error(from))?;
    let target = storage.create(to).map_err(io_error(to))?;
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut at = 0u64;
    while at < len {
        let want = CHUNK_BYTES.min(usize::try_from(len - at).unwrap_or(CHUNK_BYTES));
        let n = read_full_at(&*source, &mut buf[..want], at).map_err(io_error(from))?;
        if n == 0 {
            break;
        }
        // Zeros (the unused end of a segment) are left a hole: `set_len` below makes
        // them read as zeros without taking room in the archive.
        if crate::format::last_nonzero(&buf[..n]).is_some() {
            write_all_at(&*target, &buf[..n], at).map_err(io_error(to))?;
        }
        at += n as u64;
    }
    // Same size as the source even where it ends in a hole.
    target.set_len(len).map_err(io_error(to))?;
    target.sync_data().map_err(io_error(to))?;
    Ok(())
}

/// The segments (first sequence numbers, sorted) a directory holds, sealed or not.
pub fn list_segments(storage: &dyn Storage, dir: &Path) -> io::Result<Vec<u64>> {
    let mut seqs: Vec<u64> = storage
        .list(dir)?
        .iter()
        .filter_map(|name| match classify(name) {
            FileKind::Segment(seq) => Some(seq),
            _ => None,
        })
        .collect();
    seqs.sort_unstable();
    Ok(seqs)
}
