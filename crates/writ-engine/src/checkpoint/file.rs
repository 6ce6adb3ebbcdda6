//! The files of `checkpoints/`: one written durably (`.tmp`, synced, renamed, the
//! directory synced), all but the newest two removed, and the choice at a start by the
//! checkpoint decision table of `docs/log-format.md`.

use std::io;
use std::path::{Path, PathBuf};

use writ_log::LogReader;
use writ_log::storage::{Storage, read_full_at, write_all_at};

use super::codec::{CHECKPOINT_BUILD, Checkpoint, CheckpointError, CheckpointHeader};
use super::journal_mark;

/// The checkpoints' directory under the engine's storage root (beside `journal/`).
pub const CHECKPOINT_DIR: &str = "checkpoints";

/// Checkpoints kept: the newest and the one before it.
pub(crate) const CHECKPOINTS_KEPT: usize = 2;

/// The file name of the checkpoint of records `[0, seq)`.
pub fn checkpoint_name(seq: u64) -> String {
    format!("{seq:020}.ckpt")
}

/// The `seq` a checkpoint's file name says, if it is one's.
pub fn parse_checkpoint_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".ckpt")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn path_of(name: &str) -> PathBuf {
    Path::new(CHECKPOINT_DIR).join(name)
}

/// Writes a checkpoint file durably and removes all but the newest
/// [`CHECKPOINTS_KEPT`]: `.tmp` (one left over removed first), `sync_data`, rename,
/// directory sync. On an error the `.tmp` is removed and the checkpoints are as before.
pub(crate) fn write_checkpoint(storage: &dyn Storage, seq: u64, bytes: &[u8]) -> io::Result<()> {
    let dir = Path::new(CHECKPOINT_DIR);
    let name = checkpoint_name(seq);
    let tmp = path_of(&format!("{name}.tmp"));
    let written = (|| {
        if !storage
            .list(Path::new(""))?
            .iter()
            .any(|n| n == CHECKPOINT_DIR)
        {
            storage.create_dir_all(dir)?;
            storage.sync_dir(Path::new(""))?;
        }
        match storage.remove(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let file = storage.create(&tmp)?;
        write_all_at(&*file, bytes, 0)?;
        file.sync_data()?;
        storage.rename(&tmp, &path_of(&name))?;
        storage.sync_dir(dir)
    })();
    if written.is_err() {
        let _ = storage.remove(&tmp);
        return written;
    }
    prune(storage)
}

/// Removes all but the newest [`CHECKPOINTS_KEPT`] checkpoints (and syncs the directory
/// when it removed one).
pub(crate) fn prune(storage: &dyn Storage) -> io::Result<()> {
    let mut seqs: Vec<u64> = storage
        .list(Path::new(CHECKPOINT_DIR))?
        .iter()
        .filter_map(|n| parse_checkpoint_name(n))
        .collect();
    seqs.sort_unstable();
    let old = seqs.len().saturating_sub(CHECKPOINTS_KEPT);
    for seq in &seqs[..old] {
        remove_if_there(storage, &path_of(&checkpoint_name(*seq)))?;
    }
    if old > 0 {
        storage.sync_dir(Path::new(CHECKPOINT_DIR))?;
    }
    Ok(())
}

fn remove_if_there(storage: &dyn Storage, path: &Path) -> io::Result<()> {
    match storage.remove(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Reads a whole file.
pub(crate) fn read_file(storage: &dyn Storage, path: &Path) -> io::Result<Vec<u8>> {
    let file = storage.open(path)?;
    let len = usize::try_from(file.len()?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "a file too large"))?;
    let mut bytes = vec![0; len];
    let read = read_full_at(&*file, &mut bytes, 0)?;
    bytes.truncate(read);
    Ok(bytes)
}

/// Why a checkpoint file was not loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ignored {
    /// Torn, damaged, not a checkpoint, or a field out of bounds (removed).
    Damaged(String),
    /// Written in another format version (kept).
    OtherFormat(u32),
    /// Written by another build (kept).
    OtherBuild(String),
    /// It covers records past the journal's durable end (removed).
    PastEnd {
        /// Its `seq`.
        seq: u64,
        /// The journal's durable end.
        durable: u64,
    },
    /// The journal's mark at its `seq` differs: another journal (removed).
    OtherJournal,
    /// The journal's records the mark needs did not read (kept: the next start tries again).
    MarkUnreadable(String),
    /// A `.tmp`: a write a crash cut before its rename (removed).
    Unfinished,
}

impl std::fmt::Display for Ignored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Damaged(why) => write!(f, "damaged: {why}"),
            Self::OtherFormat(v) => write!(f, "other_format: format version {v}"),
            Self::OtherBuild(b) => write!(f, "other_build: written by {b:?}"),
            Self::PastEnd { seq, durable } => write!(
                f,
                "past_end: it covers {seq} records, the journal holds {durable}"
            ),
            Self::OtherJournal => write!(f, "other_journal: the journal's mark differs"),
            Self::MarkUnreadable(e) => write!(f, "unreadable: the journal's mark: {e}"),
            Self::Unfinished => write!(f, "unfinished: a write a crash cut before its rename"),
        }
    }
}

impl Ignored {
    /// Whether the file is removed (it can never be loaded by any build on this journal).
    fn removed(&self) -> bool {
        !matches!(
            self,
            Self::OtherFormat(_) | Self::OtherBuild(_) | Self::MarkUnreadable(_)
        )
    }
}

/// What a start found in `checkpoints/`.
#[derive(Debug, Default)]
pub(crate) struct Chosen {
    /// The newest valid checkpoint, if any.
    pub loaded: Option<Checkpoint>,
    /// Each file ignored, with why.
    pub ignored: Vec<(String, Ignored)>,
}

/// The checkpoint decision table: `.tmp` files removed; from the newest, each file is
/// checked (decode, name, build, end, mark) until one passes; those that never can be
/// loaded on this journal are removed. The directory is synced when anything was
/// removed.
pub(crate) fn choose(
    storage: &dyn Storage,
    journal: &LogReader,
    journal_dir: &Path,
) -> io::Result<Chosen> {
    let dir = Path::new(CHECKPOINT_DIR);
    let mut chosen = Chosen::default();
    let names = match storage.list(dir) {
        Ok(names) => names,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(chosen),
        Err(e) => return Err(e),
    };
    let mut removed = false;
    for name in names.iter().filter(|n| n.ends_with(".tmp")) {
        tracing::info!(file = %name, "an unfinished engine checkpoint (.tmp) was removed");
        remove_if_there(storage, &path_of(name))?;
        removed = true;
        chosen.ignored.push((name.clone(), Ignored::Unfinished));
    }
    let mut seqs: Vec<(u64, &String)> = names
        .iter()
        .filter_map(|n| parse_checkpoint_name(n).map(|seq| (seq, n)))
        .collect();
    seqs.sort_unstable_by(|a, b| b.cmp(a));
    let durable = journal.durable_seq();
    for (seq, name) in seqs {
        let why = match check(storage, journal, journal_dir, name, seq, durable) {
            Ok(checkpoint) => {
                chosen.loaded = Some(checkpoint);
                break;
            }
            Err(why) => why,
        };
        tracing::warn!(file = %name, %why, "an engine checkpoint was ignored; an older one or the full scan of the journal is used");
        if why.removed() {
            remove_if_there(storage, &path_of(name))?;
            removed = true;
        }
        chosen.ignored.push((name.clone(), why));
    }
    if removed {
        storage.sync_dir(dir)?;
    }
    Ok(chosen)
}

fn check(
    storage: &dyn Storage,
    journal: &LogReader,
    journal_dir: &Path,
    name: &str,
    seq: u64,
    durable: u64,
) -> Result<Checkpoint, Ignored> {
    let bytes = read_file(storage, &path_of(name))
        .map_err(|e| Ignored::Damaged(format!("unreadable: {e}")))?;
    let (header, _) = match CheckpointHeader::decode(&bytes) {
        Ok(decoded) => decoded,
        Err(CheckpointError::Version { version }) => return Err(Ignored::OtherFormat(version)),
        Err(e) => return Err(Ignored::Damaged(e.to_string())),
    };
    if header.seq != seq {
        return Err(Ignored::Damaged(format!(
            "it says {} records, its name {seq}",
            header.seq
        )));
    }
    if header.build != CHECKPOINT_BUILD {
        return Err(Ignored::OtherBuild(header.build));
    }
    if seq > durable {
        return Err(Ignored::PastEnd { seq, durable });
    }
    let mark = journal_mark(journal, journal_dir, seq)
        .map_err(|e| Ignored::MarkUnreadable(e.to_string()))?;
    if mark != header.mark {
        return Err(Ignored::OtherJournal);
    }
    Checkpoint::decode(&bytes).map_err(|e| Ignored::Damaged(e.to_string()))
}
