//! Which journal is live: `CURRENT`, and the storage an engine on that journal sees.
//!
//! A data directory holds its first journal in `journal/`. `writ replay` writes a new one
//! in `replay-{n}/journal/` and, applied, names it in `CURRENT` (one line,
//! `replay-{n}/journal`), written to `CURRENT.tmp`, synced, renamed over `CURRENT` and the
//! directory synced, so that a crash leaves the old name or the new, never neither. No
//! `CURRENT` means `journal/`.
//!
//! Everything an engine keeps beside its journal is kept beside it in the same directory:
//! the dedupe runs of `replay-{n}/journal/` are in `replay-{n}/dedupe/`, those of
//! `journal/` in `dedupe/`. A run names sequence numbers of one journal, so keying runs by
//! their journal's directory makes a switch of `CURRENT` switch the runs with it, at the
//! same atomic rename: runs of the old journal are never read against the new one, however
//! a crash falls between the rename and their removal. `Scoped` is the storage an engine
//! sees: the live journal's directory as its root.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use writ_log::storage::{Storage, StorageFile, read_full_at, write_all_at};

use crate::error::OpenError;
use crate::recovery::JOURNAL_DIR;

/// The file naming the live journal, in the data directory.
pub const CURRENT_FILE: &str = "CURRENT";
/// `CURRENT` being written.
pub const CURRENT_TMP: &str = "CURRENT.tmp";
/// The marker of a replay written in full: `replay-{n}/REPLAYED`, written (synced,
/// renamed, directory synced) once its journal is synced to its end. A `replay-{n}/`
/// without it is a replay a crash or an error cut short, which the next replay writes
/// over, and which `CURRENT` never names.
pub const REPLAYED_FILE: &str = "REPLAYED";
/// Longest `CURRENT` read.
const CURRENT_BYTES_MAX: usize = 4096;

/// The directory of replay `n`, holding its journal: `replay-{n}`.
pub fn replay_dir_name(n: u64) -> String {
    format!("replay-{n}")
}

/// `n` of a `replay-{n}` name.
pub fn parse_replay_dir(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("replay-")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.starts_with('0') {
        return None;
    }
    digits.parse().ok()
}

/// The live journal's directory relative to the data directory (`journal`, or
/// `replay-{n}/journal`), as `CURRENT` names it. Refuses a `CURRENT` that names anything
/// else, or a replay that was not written in full: opening would start an empty journal
/// beside the real one.
pub fn live_journal(storage: &dyn Storage) -> Result<PathBuf, OpenError> {
    let refuse = |detail: String| OpenError::Current { detail };
    let file = match storage.open(Path::new(CURRENT_FILE)) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(PathBuf::from(JOURNAL_DIR)),
        Err(source) => {
            return Err(OpenError::Io {
                path: PathBuf::from(CURRENT_FILE),
                source,
            });
        }
    };
    let io = |source| OpenError::Io {
        path: PathBuf::from(CURRENT_FILE),
        source,
    };
    let len = file.len().map_err(io)? as usize;
    if len > CURRENT_BYTES_MAX {
        return Err(refuse(format!("{CURRENT_FILE} holds {len} bytes")));
    }
    let mut bytes = vec![0; len];
    read_full_at(&*file, &mut bytes, 0).map_err(io)?;
    let text =
        std::str::from_utf8(&bytes).map_err(|_| refuse(format!("{CURRENT_FILE} is not UTF-8")))?;
    let name = text
        .strip_suffix('\n')
        .ok_or_else(|| refuse(format!("{CURRENT_FILE} does not end its line: {text:?}")))?;
    if name == JOURNAL_DIR {
        return Ok(PathBuf::from(JOURNAL_DIR));
    }
    let replay = name
        .strip_suffix(&format!("/{JOURNAL_DIR}"))
        .filter(|dir| parse_replay_dir(dir).is_some())
        .ok_or_else(|| {
            refuse(format!(
                "{CURRENT_FILE} names {name:?}, not {JOURNAL_DIR} nor replay-N/{JOURNAL_DIR}"
            ))
        })?;
    if !is_replayed(storage, Path::new(replay)) {
        return Err(refuse(format!(
            "{CURRENT_FILE} names {name}, but {replay}/{REPLAYED_FILE} is missing: that replay was not written in full"
        )));
    }
    Ok(PathBuf::from(name))
}

/// Whether `dir` (a `replay-{n}`) holds a replay written in full.
pub(crate) fn is_replayed(storage: &dyn Storage, dir: &Path) -> bool {
    storage
        .list(dir)
        .is_ok_and(|names| names.iter().any(|n| n == REPLAYED_FILE))
}

/// Writes `file` in `dir` whole and durably: `{file}.tmp` written, synced, renamed over
/// `file`, then `dir` synced. A crash leaves the old `file` (or none) or the new one.
pub(crate) fn write_durably(
    storage: &dyn Storage,
    dir: &Path,
    file: &str,
    contents: &[u8],
) -> io::Result<()> {
    let tmp = dir.join(format!("{file}.tmp"));
    match storage.remove(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let handle = storage.create(&tmp)?;
    write_all_at(&*handle, contents, 0)?;
    handle.sync_data()?;
    storage.rename(&tmp, &dir.join(file))?;
    storage.sync_dir(dir)
}

/// Names `journal` (`replay-{n}/journal`) the live journal: `CURRENT` written durably.
pub(crate) fn write_current(storage: &dyn Storage, journal: &Path) -> io::Result<()> {
    let line = format!("{}\n", journal.display());
    write_durably(storage, Path::new(""), CURRENT_FILE, line.as_bytes())
}

/// Removes a `CURRENT.tmp` a crash left (it was never renamed, so it names nothing).
pub(crate) fn remove_current_tmp(storage: &dyn Storage) -> io::Result<()> {
    match storage.remove(Path::new(CURRENT_TMP)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The storage an engine on `journal` sees: rooted at the journal's parent directory
/// (the data directory itself for `journal/`).
pub(crate) fn engine_storage(storage: Arc<dyn Storage>, journal: &Path) -> Arc<dyn Storage> {
    match journal.parent() {
        Some(base) if !base.as_os_str().is_empty() => Arc::new(Scoped {
            inner: storage,
            base: base.to_owned(),
        }),
        _ => storage,
    }
}

/// A directory of another storage, as a storage of its own.
#[derive(Debug)]
pub(crate) struct Scoped {
    inner: Arc<dyn Storage>,
    base: PathBuf,
}

impl Scoped {
    fn at(&self, path: &Path) -> PathBuf {
        if path.as_os_str().is_empty() {
            self.base.clone()
        } else {
            self.base.join(path)
        }
    }
}

impl Storage for Scoped {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(&self.at(dir))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(&self.at(dir))
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        self.inner.open(&self.at(path))
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        self.inner.create(&self.at(path))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(&self.at(from), &self.at(to))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(&self.at(path))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(&self.at(dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use writ_log::storage::SimStorage;

    #[test]
    fn current_names_the_live_journal_and_refuses_anything_else() {
        let sim = SimStorage::new();
        assert_eq!(live_journal(&sim).unwrap(), Path::new("journal"));
        write_current(&sim, Path::new("replay-2/journal")).unwrap();
        let refused = live_journal(&sim).unwrap_err().to_string();
        assert!(refused.contains("REPLAYED"), "{refused}");
        sim.create_dir_all(Path::new("replay-2")).unwrap();
        write_durably(&sim, Path::new("replay-2"), REPLAYED_FILE, b"").unwrap();
        assert_eq!(live_journal(&sim).unwrap(), Path::new("replay-2/journal"));
        for bad in [
            "../journal\n",
            "replay-02/journal\n",
            "replay-2/journal",
            "dedupe\n",
        ] {
            write_durably(&sim, Path::new(""), CURRENT_FILE, bad.as_bytes()).unwrap();
            assert!(
                matches!(live_journal(&sim), Err(OpenError::Current { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn replay_dir_names_parse_back() {
        assert_eq!(parse_replay_dir(&replay_dir_name(17)), Some(17));
        assert_eq!(parse_replay_dir("replay-"), None);
        assert_eq!(parse_replay_dir("replay-x"), None);
        assert_eq!(parse_replay_dir("replay-0"), None);
    }
}
