//! The snapshot files of a data directory, on a [`Storage`]: `snapshots/{model}/`
//! `{position:020}.snap`, written to a `.tmp`, synced, renamed, the directory synced.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use writ_log::storage::{Storage, read_full_at, write_all_at};

/// The directory of the data directory that holds the read models' snapshots.
pub const SNAPSHOTS_DIR: &str = "snapshots";

/// How many snapshot files of each read model are kept: the newest and the one before,
/// so that a damaged newest still leaves one to load.
pub const SNAPSHOTS_KEPT: usize = 2;

const SUFFIX: &str = ".snap";
const TMP_SUFFIX: &str = ".snap.tmp";

/// The snapshot files of a data directory: one directory per read model, a file per
/// snapshot named by its position.
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    storage: Arc<dyn Storage>,
    root: PathBuf,
}

/// A model's snapshot files, as listed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The positions of its `.snap` files, newest first.
    pub positions: Vec<u64>,
    /// Its `.tmp` files and any other name it does not write.
    pub strays: Vec<String>,
}

/// Whether `model` can name a directory: ASCII letters, digits, `-` and `_`, 1 to 64 of
/// them. Others are not snapshotted.
pub fn is_model_name(model: &str) -> bool {
    (1..=64).contains(&model.len())
        && model
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl SnapshotStore {
    /// The snapshots under `snapshots/` of `storage`'s root (the data directory).
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Self {
            storage,
            root: PathBuf::from(SNAPSHOTS_DIR),
        }
    }

    /// The directory of `model`'s snapshots, relative to the storage's root.
    pub fn dir(&self, model: &str) -> PathBuf {
        self.root.join(model)
    }

    /// The file of `model`'s snapshot at `position`.
    pub fn path(&self, model: &str, position: u64) -> PathBuf {
        self.dir(model).join(format!("{position:020}{SUFFIX}"))
    }

    /// `model`'s files; nothing when its directory does not exist.
    pub fn list(&self, model: &str) -> io::Result<Listing> {
        let names = match self.storage.list(&self.dir(model)) {
            Ok(names) => names,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Listing::default()),
            Err(e) => return Err(e),
        };
        let mut listing = Listing::default();
        for name in names {
            let position = name
                .strip_suffix(SUFFIX)
                .filter(|digits| digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|digits| digits.parse::<u64>().ok());
            match position {
                Some(position) => listing.positions.push(position),
                None => listing.strays.push(name),
            }
        }
        listing.positions.sort_unstable_by(|a, b| b.cmp(a));
        Ok(listing)
    }

    /// The bytes of `model`'s snapshot at `position`.
    pub fn read(&self, model: &str, position: u64) -> io::Result<Vec<u8>> {
        let file = self.storage.open(&self.path(model, position))?;
        let len = usize::try_from(file.len()?)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "a snapshot past usize"))?;
        let mut bytes = vec![0; len];
        let read = read_full_at(&*file, &mut bytes, 0)?;
        bytes.truncate(read);
        Ok(bytes)
    }

    /// Writes `model`'s snapshot at `position` durably: to a `.tmp` (one left by a crash
    /// is replaced), synced, renamed over the final name, the directory synced. A crash
    /// at any point leaves the earlier files as they were and at most a `.tmp`, which
    /// [`SnapshotStore::prune`] removes. The model's directory is created (and its
    /// parents synced) on first use.
    pub fn write(&self, model: &str, position: u64, file: &[u8]) -> io::Result<()> {
        let dir = self.dir(model);
        self.create_dir(&dir)?;
        let path = self.path(model, position);
        let tmp = dir.join(format!("{position:020}{TMP_SUFFIX}"));
        match self.storage.remove(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let written = (|| {
            let out = self.storage.create(&tmp)?;
            write_all_at(&*out, file, 0)?;
            out.sync_data()
        })();
        if let Err(e) = written {
            let _ = self.storage.remove(&tmp);
            return Err(e);
        }
        self.storage.rename(&tmp, &path)?;
        self.storage.sync_dir(&dir)
    }

    /// Removes `model`'s snapshot at `position`, and syncs the directory.
    pub fn remove(&self, model: &str, position: u64) -> io::Result<()> {
        self.storage.remove(&self.path(model, position))?;
        self.storage.sync_dir(&self.dir(model))
    }

    /// Removes `model`'s strays (a `.tmp` a crash left, names it does not write) and all
    /// but its newest [`SNAPSHOTS_KEPT`] snapshots, then syncs the directory.
    pub fn prune(&self, model: &str) -> io::Result<()> {
        let listing = self.list(model)?;
        let dir = self.dir(model);
        let mut removed = false;
        for stray in &listing.strays {
            if stray.ends_with(".tmp") {
                self.storage.remove(&dir.join(stray))?;
                removed = true;
            }
        }
        for position in listing.positions.iter().skip(SNAPSHOTS_KEPT) {
            self.storage.remove(&self.path(model, *position))?;
            removed = true;
        }
        if removed {
            self.storage.sync_dir(&dir)?;
        }
        Ok(())
    }

    /// Creates `dir` and `snapshots/` if missing, and makes their entries durable.
    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        if self.storage.list(dir).is_ok() {
            return Ok(());
        }
        self.storage.create_dir_all(dir)?;
        self.storage.sync_dir(&self.root)?;
        self.storage.sync_dir(Path::new(""))
    }
}
