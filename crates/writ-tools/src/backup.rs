//! `writ backup`: a consistent copy of a data directory, taken while a server runs on it,
//! without its lock and without disturbing it.
//!
//! Why the copy is consistent (`docs/log-format.md`, "Backup"): the journal's segments are
//! append-only files of checksummed frames, and a sealed segment never changes. The copy:
//! 1. lists the live journal's segments (`journal/`, or the replay `CURRENT` names, which
//!    the copy holds as its own `journal/`), then copies each into a directory beside the
//!    destination (`DEST.incomplete-…`, so that a backup cut short never looks complete),
//!    reading the live (last) segment while the server appends to it;
//! 2. scans each copy with the log's own recovery scan (`writ_log::inspect`) and cuts the
//!    copy of the live segment at its valid end, the end of its last whole frame: a commit
//!    boundary. A frame the server was writing while it was read is torn in the copy and
//!    cut. A torn frame with a whole frame after it (the later part of the file was read
//!    after the server finished both) is copied again from the tear until it is whole;
//! 3. lists the segments again: when the server rolled to a new segment meanwhile, the
//!    segment it sealed is copied again from the cut (it is final now) and the new one
//!    copied, until the list is stable;
//! 4. writes each sealed segment's sidecar index from its scan, and an empty `writ.lock`,
//!    syncs every file and directory, checks the copy with [`verify`], and renames it to
//!    the destination (then syncs the destination's parent).
//!
//! Only the journal is copied. The dedupe runs and the engine checkpoints (`dedupe/`,
//! `checkpoints/`) are not: both are hints that the engine rebuilds from the journal, and
//! a checkpoint would not load in the copy anyway when it covers records past where the
//! copy was cut, or names the replay's journal directory (`replay-{n}/journal`) that the
//! copy holds as `journal/` (its journal's mark differs). The first start of a restored
//! copy scans the whole journal once and writes its own checkpoints from then on.
//!
//! A command acknowledged before the backup began was synced in a frame of a segment
//! listed in step 1 (or of an earlier one) before the copy read it, so the copy holds it
//! whole. The copy may hold more: frames written while it ran, up to where it ended, which
//! the output gives (segment and offset, last record and position).

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use writ_engine::{JOURNAL_DIR, LOCK_FILE};
use writ_log::format::is_zero;
use writ_log::inspect::{self, FileKind, ScanStop, SegmentScan, index_name, segment_name};
use writ_log::storage::FsStorage;

use crate::progress::Progress;
use crate::verify::{LocalFile, VerifyReport, verify};

/// Bytes copied at once.
const CHUNK_BYTES: usize = 1 << 20;
/// Most passes over the segment list: each copies what the server wrote during the pass
/// before, so only a server that writes faster than the copy reads keeps it from ending.
const ROUNDS_MAX: u32 = 1_000;
/// Most times a torn frame with a whole frame after it is copied again (it is whole once
/// the server's write of it is done; one that stays torn is damage).
const RETRIES_MAX: u32 = 100;

/// `writ backup`'s arguments.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The data directory of the store to copy (a server may be running on it).
    #[arg(long, env = "WRIT_DATA_DIR", default_value = "writ-data")]
    data_dir: PathBuf,
    /// Where to put the copy: a directory that does not exist yet, or is empty, outside
    /// the data directory.
    #[arg(long)]
    to: PathBuf,
    /// The archive directory of the journal's sealed segments (`writ archive --to`): its
    /// segments are copied into the copy's `journal/` with the others, so that the copy is
    /// whole and opens without an archive. Needed once segments were archived.
    #[arg(long, env = "WRIT_ARCHIVE_DIR", value_name = "DIR")]
    archive_dir: Option<PathBuf>,
    /// Print the report as one JSON object instead of a line.
    #[arg(long)]
    json: bool,
}

/// Copies the store, prints where the copy ends.
pub fn run(args: BackupArgs) -> Result<(), String> {
    let report = backup_with_archive(&args.data_dir, args.archive_dir.as_deref(), &args.to, true)?;
    let (file, offset) = &report.end;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "to": report.to,
                "commands": report.commands(),
                "lastSequence": report.commands().checked_sub(1),
                "lastPosition": report.verify.journal.events,
                "end": {"file": file, "offset": offset},
                "segments": report.verify.segments,
                "logBytes": report.verify.log_bytes,
                "copiedBytes": report.copied_bytes,
                "rounds": report.rounds,
                "archivedSegments": report.archived_segments,
                "elapsedMs": report.elapsed.as_millis() as u64,
            })
        );
    } else {
        println!(
            "backup of {} in {}: {} commands, {} events, ends at {file} byte {offset}",
            args.data_dir.display(),
            report.to.display(),
            report.commands(),
            report.verify.journal.events,
        );
        if report.archived_segments > 0 {
            println!(
                "with {} archived segments copied from {} into the copy's {JOURNAL_DIR}/ (the copy needs no archive)",
                report.archived_segments,
                args.archive_dir
                    .as_deref()
                    .unwrap_or(Path::new(""))
                    .display(),
            );
        }
        println!(
            "backup=ok commands={} last_sequence={} last_position={} end={file}@{offset} segments={} log_bytes={} copied_bytes={} rounds={} elapsed_s={:.3}",
            report.commands(),
            report
                .commands()
                .checked_sub(1)
                .map_or("none".to_owned(), |s| s.to_string()),
            report.verify.journal.events,
            report.verify.segments,
            report.verify.log_bytes,
            report.copied_bytes,
            report.rounds,
            report.elapsed.as_secs_f64(),
        );
    }
    Ok(())
}

/// What a backup made.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BackupReport {
    /// The copy.
    pub to: PathBuf,
    /// Where its journal ends: the last segment (relative to the copy) and its valid end.
    pub end: (String, u64),
    /// Bytes read from the store (all-zero stretches are read but not written: the copy's
    /// segments are sparse there).
    pub copied_bytes: u64,
    /// Passes over the segment list (1 when no segment was added during the copy).
    pub rounds: u32,
    /// Segments copied from the archive directory (into the copy's `journal/`).
    pub archived_segments: usize,
    /// How long it took, the check of the copy included.
    pub elapsed: Duration,
    /// The check of the copy: its counts, and the records it holds.
    pub verify: VerifyReport,
}

impl BackupReport {
    /// Commands in the copy.
    pub fn commands(&self) -> u64 {
        self.verify.journal.commands
    }
}

/// Copies the store in `dir` to `to`; see the module documentation. An error is a sentence
/// for the user; nothing is left at `to` then (a directory `to.incomplete-…` beside it
/// is removed, unless removing it failed too).
pub fn backup(dir: &Path, to: &Path, show_progress: bool) -> Result<BackupReport, String> {
    backup_with_archive(dir, None, to, show_progress)
}

/// [`backup`] of a store whose journal has sealed segments in `archive` (`writ archive
/// --to`): they are copied into the copy's `journal/` with the journal's own, so the copy
/// holds the whole journal from record 0 and opens (and verifies) without an archive.
pub fn backup_with_archive(
    dir: &Path,
    archive: Option<&Path>,
    to: &Path,
    show_progress: bool,
) -> Result<BackupReport, String> {
    let started = Instant::now();
    // The live journal (`CURRENT` names it after `writ replay --apply`); the copy holds it
    // as its `journal/`.
    let live = writ_engine::current::live_journal(&FsStorage::new(dir))
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let journal = dir.join(&live);
    if !journal.is_dir() {
        return Err(format!(
            "{} holds no {}/ directory: not a Writ data directory",
            dir.display(),
            live.display()
        ));
    }
    let source = dir
        .canonicalize()
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let target = resolve(to)?;
    if target.starts_with(&source) {
        return Err(format!(
            "{} is inside the data directory {}: put the backup elsewhere",
            to.display(),
            dir.display()
        ));
    }
    if target.exists() {
        let mut entries =
            std::fs::read_dir(&target).map_err(|e| format!("{}: {e}", to.display()))?;
        if entries.next().is_some() {
            return Err(format!(
                "{} exists and is not empty: give a new or empty directory",
                to.display()
            ));
        }
    }
    let (parent, name) = match (target.parent(), target.file_name()) {
        (Some(parent), Some(name)) => (parent.to_owned(), name.to_string_lossy().into_owned()),
        _ => return Err(format!("{} cannot be a backup's directory", to.display())),
    };
    std::fs::create_dir_all(&parent)
        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let partial = parent.join(format!(
        "{name}.incomplete-{}-{nanos:09}",
        std::process::id()
    ));
    std::fs::create_dir(&partial)
        .map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
    let result = copy_store(&journal, archive, &partial, show_progress, &mut || {}).and_then(|copy| {
        let verify = verify(&partial, false)?;
        if let Some(first) = verify.first_damage() {
            return Err(format!(
                "the copy does not verify, so the store itself is damaged (run `writ verify --data-dir {}`): {first}",
                dir.display()
            ));
        }
        if target.exists() {
            // Empty (checked above): the rename replaces it.
            std::fs::remove_dir(&target).map_err(|e| format!("{}: {e}", to.display()))?;
        }
        std::fs::rename(&partial, &target)
            .map_err(|e| format!("cannot rename the copy to {}: {e}", to.display()))?;
        sync_dir(&parent)?;
        Ok((copy, verify))
    });
    match result {
        Ok((copy, verify)) => Ok(BackupReport {
            to: target,
            end: copy.end,
            copied_bytes: copy.copied_bytes,
            rounds: copy.rounds,
            archived_segments: copy.archived_segments,
            elapsed: started.elapsed(),
            verify,
        }),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            Err(e)
        }
    }
}

/// `path` made absolute with its existing part's symbolic links resolved, so that
/// "inside the data directory" is decided on real paths.
fn resolve(path: &Path) -> Result<PathBuf, String> {
    let absolute = std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else {
            break;
        };
        rest.push(name.to_owned());
        existing = parent;
    }
    let mut resolved = existing
        .canonicalize()
        .map_err(|e| format!("{}: {e}", existing.display()))?;
    for name in rest.iter().rev() {
        if Path::new(name)
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(format!("{}: give a plain path", path.display()));
        }
        resolved.push(name);
    }
    Ok(resolved)
}

/// What [`copy_store`] copied.
struct Copy {
    end: (String, u64),
    copied_bytes: u64,
    rounds: u32,
    archived_segments: usize,
}

/// A segment copied so far.
struct Copied {
    file: LocalFile,
    /// The copy is whole up to here (its valid end when it was last cut).
    end: u64,
    /// Its server-side segment was sealed when it was copied: the copy is final.
    sealed: bool,
    scan: SegmentScan,
}

/// Copies the journal `journal` into `to/journal`: steps 1 to 4 but the check.
/// `after_pass` runs after each pass over the list (tests write there).
fn copy_store(
    journal: &Path,
    archive: Option<&Path>,
    to: &Path,
    show_progress: bool,
    after_pass: &mut dyn FnMut(),
) -> Result<Copy, String> {
    // The archive's segments are sealed and do not change while a server runs (`writ
    // archive` holds the lock): listed once. A segment in both places is copied from the
    // journal's directory (open checks that the two are the same).
    let archived = match archive {
        Some(archive) => list_segments(archive)?,
        None => Vec::new(),
    };
    let local = list_segments(journal)?;
    let archived: Vec<u64> = archived
        .into_iter()
        .filter(|seq| local.binary_search(seq).is_err())
        .collect();
    let first = archived.first().or(local.first()).copied().unwrap_or(0);
    if first != 0 {
        return Err(format!(
            "{}'s first segment starts at record {first}: records 0..{first} are missing (segments 0..{first}); if they were archived (`writ archive`), give the archive (`--archive-dir`)",
            journal.display()
        ));
    }
    let into = to.join(JOURNAL_DIR);
    std::fs::create_dir(&into).map_err(|e| format!("cannot create {}: {e}", into.display()))?;
    let mut copied: BTreeMap<u64, Copied> = BTreeMap::new();
    let mut progress = Progress::new("backup", 0, show_progress);
    let mut total = 0u64;
    let mut copied_bytes = 0u64;
    let mut rounds = 0;
    loop {
        rounds += 1;
        if rounds > ROUNDS_MAX {
            return Err(format!(
                "the server rolled to new segments during {ROUNDS_MAX} passes of the copy: it writes faster than the copy reads"
            ));
        }
        let mut segments = archived.clone();
        segments.extend(list_segments(journal)?);
        segments.sort_unstable();
        segments.dedup();
        let Some(&last) = segments.last() else {
            return Err(format!("{} holds no segment", journal.display()));
        };
        for (i, &seq) in segments.iter().enumerate() {
            let sealed = i + 1 < segments.len();
            let from = match copied.get(&seq) {
                Some(copy) if copy.sealed => continue,
                Some(copy) => copy.end,
                None => 0,
            };
            let name = segment_name(seq);
            let from_dir = match archive {
                Some(archive) if archived.binary_search(&seq).is_ok() => archive,
                _ => journal,
            };
            let source = File::open(from_dir.join(&name))
                .map_err(|e| format!("cannot read {}: {e}", from_dir.join(&name).display()))?;
            let size = source
                .metadata()
                .map_err(|e| format!("cannot read {name}: {e}"))?
                .len();
            let target = match copied.remove(&seq) {
                Some(copy) => copy.file,
                None => {
                    total += size;
                    progress.set_total(total);
                    let path = into.join(&name);
                    let file = File::create_new(&path)
                        .and_then(|file| file.set_len(size).map(|()| file))
                        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                    LocalFile(file)
                }
            };
            let mut from = from;
            let mut retries = 0;
            let scan = loop {
                copied_bytes += copy_range(&source, &target, from, size, &mut progress)
                    .map_err(|e| format!("cannot copy {name}: {e}"))?;
                let scan = inspect::scan_segment(&target, &mut |_| {})
                    .map_err(|e| format!("{JOURNAL_DIR}/{name}: {e}"))?;
                // Records after the valid end: a frame torn in the copy (read while the
                // server wrote it, its header perhaps still zeros) before one read whole
                // after it, or damage.
                let records_after = match scan.stop {
                    ScanStop::End | ScanStop::Damaged { .. } => {
                        inspect::later_frame(&target, scan.end + 8, size, scan.end_seq)
                            .map_err(|e| format!("cannot read the copy of {name}: {e}"))?
                            .is_some()
                    }
                    _ => true,
                };
                if !records_after {
                    break scan;
                }
                if retries == RETRIES_MAX {
                    return Err(format!(
                        "{JOURNAL_DIR}/{name} is damaged at byte {} with records after it; the backup would lose them (run `writ verify`)",
                        scan.end
                    ));
                }
                retries += 1;
                std::thread::sleep(Duration::from_millis(1));
                cut(&target, scan.end, size)
                    .map_err(|e| format!("cannot cut the copy of {name}: {e}"))?;
                from = scan.end;
            };
            if !sealed {
                // Cut at the valid end: whatever the server was writing past it is gone
                // from the copy, which reads as zeros there (a hole).
                cut(&target, scan.end, size)
                    .map_err(|e| format!("cannot cut the copy of {name}: {e}"))?;
            }
            copied.insert(
                seq,
                Copied {
                    file: target,
                    end: scan.end,
                    sealed,
                    scan,
                },
            );
        }
        after_pass();
        // Stable when no segment came after the one copied as the last.
        let after = list_segments(journal)?;
        if after.last() == Some(&last) {
            break;
        }
    }
    progress.finish();
    let mut end = (String::new(), 0);
    for (&seq, copy) in &copied {
        if copy.sealed {
            let path = into.join(index_name(seq));
            std::fs::write(&path, copy.scan.index_file())
                .and_then(|()| File::open(&path)?.sync_all())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        } else {
            end = (format!("{JOURNAL_DIR}/{}", segment_name(seq)), copy.end);
        }
        copy.file
            .0
            .sync_all()
            .map_err(|e| format!("cannot sync the copy of {}: {e}", segment_name(seq)))?;
    }
    // The lock file every store has (empty; the engine locks it, it never holds data).
    let lock = to.join(LOCK_FILE);
    File::create_new(&lock)
        .and_then(|file| file.sync_all())
        .map_err(|e| format!("cannot create {}: {e}", lock.display()))?;
    sync_dir(&into)?;
    sync_dir(to)?;
    Ok(Copy {
        end,
        copied_bytes,
        rounds,
        archived_segments: archived.len(),
    })
}

/// The segments of a journal directory, by first record.
fn list_segments(journal: &Path) -> Result<Vec<u64>, String> {
    let read = |e: io::Error| format!("cannot list {}: {e}", journal.display());
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(journal).map_err(read)? {
        let entry = entry.map_err(read)?;
        if let FileKind::Segment(seq) = inspect::classify(&entry.file_name().to_string_lossy()) {
            segments.push(seq);
        }
    }
    segments.sort_unstable();
    Ok(segments)
}

/// Copies `[from, to)` of `source` into `target`, skipping all-zero chunks: the target is
/// full size already and reads as zeros from `from` on (nothing was written there, or
/// [`cut`] zeroed it). Returns the bytes read.
fn copy_range(
    source: &File,
    target: &LocalFile,
    from: u64,
    to: u64,
    progress: &mut Progress,
) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut at = from;
    while at < to {
        let want = CHUNK_BYTES.min((to - at) as usize);
        let n = source.read_at(&mut buf[..want], at)?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        if !is_zero(chunk) {
            target.0.write_all_at(chunk, at)?;
        }
        at += n as u64;
        progress.add(n as u64);
    }
    Ok(at - from)
}

/// Zeros `[end, size)` of the copy: a hole, as after a fresh `set_len`.
fn cut(target: &LocalFile, end: u64, size: u64) -> io::Result<()> {
    target.0.set_len(end)?;
    target.0.set_len(size)
}

fn sync_dir(dir: &Path) -> Result<(), String> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("cannot sync {}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use writ_engine::record::{CommitStatus, JournalRecord, Origin};
    use writ_log::storage::FsStorage;
    use writ_log::{Log, LogOptions};

    use super::*;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let path = std::env::temp_dir().join(format!(
                "writ-backup-{name}-{}-{}",
                std::process::id(),
                uuid::Uuid::new_v4()
            ));
            std::fs::create_dir_all(&path).unwrap();
            Self(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn log(dir: &Path) -> Log {
        let options = LogOptions {
            segment_bytes: 16 << 10,
            record_bytes_max: 4 << 10,
            preallocate: false,
            ..LogOptions::default()
        };
        Log::open(Arc::new(FsStorage::new(dir)), JOURNAL_DIR.as_ref(), options)
            .unwrap()
            .0
    }

    /// A journal record of about 200 bytes: a client's command, rejected.
    fn record() -> Vec<u8> {
        let id = uuid::Uuid::new_v4();
        let message = "no".repeat(50);
        let record = JournalRecord {
            id,
            correlation_id: id,
            causation_id: None,
            origin: Origin::Client,
            recorded_at_ms: 1,
            name: "Noop",
            version: 1,
            expected_version: None,
            payload: b"{}",
            status: CommitStatus::Rejected,
            first_position: 1,
            events: Vec::new(),
            code: "no",
            message: &message,
            details: b"",
            timers: Vec::new(),
        };
        let mut out = Vec::new();
        record.encode(&mut out);
        out
    }

    /// Commits `batches` frames of four records.
    fn write(log: &mut Log, batches: usize) -> u64 {
        let mut end = 0;
        for _ in 0..batches {
            for _ in 0..4 {
                log.append(&record()).unwrap();
            }
            end = log.commit().unwrap();
        }
        end
    }

    /// The records of a copied journal, by the log's own recovery.
    fn records(dir: &Path) -> u64 {
        log(dir).durable_seq()
    }

    #[test]
    fn segments_added_during_a_pass_are_copied_in_the_next_and_the_sealed_one_is_completed() {
        let source = TempDir::new("rolls");
        let copy = TempDir::new("rolls-copy");
        let mut writer = log(&source.0);
        let before = write(&mut writer, 10);
        let mut passes = 0;
        let mut end = 0;
        let result = copy_store(
            &source.0.join(JOURNAL_DIR),
            None,
            &copy.0,
            false,
            &mut || {
                passes += 1;
                if passes == 1 {
                    // The server goes on: rolls past the live segment twice.
                    end = write(&mut writer, 40);
                }
            },
        )
        .unwrap();
        assert_eq!(result.rounds, 2);
        assert!(end > before);
        let segments = list_segments(&copy.0.join(JOURNAL_DIR)).unwrap();
        assert!(segments.len() >= 3, "{segments:?}");
        assert_eq!(
            records(&copy.0),
            end,
            "every record up to the end of the last pass"
        );
        let report = verify(&copy.0, false).unwrap();
        assert!(report.first_damage().is_none(), "{:?}", report.findings);
        assert_eq!(report.indexes, segments.len() as u64 - 1);
    }

    #[test]
    fn a_frame_torn_in_the_copy_is_cut_at_a_commit_boundary() {
        let source = TempDir::new("torn");
        let copy = TempDir::new("torn-copy");
        let mut writer = log(&source.0);
        let end = write(&mut writer, 3);
        drop(writer);
        // A frame the server is writing, as the copy reads it: its header and half its
        // body, nothing after it.
        let path = source.0.join(JOURNAL_DIR).join(segment_name(0));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let whole = inspect::scan_segment(&LocalFile(file.try_clone().unwrap()), &mut |_| {})
            .unwrap()
            .end;
        let mut frame = vec![0u8; 32];
        writ_log::format::encode_record(&mut frame, end, &record());
        let header = writ_log::format::FrameHeader {
            first_seq: end,
            record_count: 1,
            body_len: (frame.len() - 32) as u32,
            body_crc: 0,
        };
        frame[..32].copy_from_slice(&header.encode());
        file.write_all_at(&frame[..100], whole).unwrap();
        let result = copy_store(
            &source.0.join(JOURNAL_DIR),
            None,
            &copy.0,
            false,
            &mut || {},
        )
        .unwrap();
        assert_eq!(result.end.1, whole);
        assert_eq!(records(&copy.0), end);
        let report = verify(&copy.0, false).unwrap();
        assert!(report.first_damage().is_none(), "{:?}", report.findings);
    }

    #[test]
    fn a_zeroed_frame_header_with_frames_after_it_stops_the_backup() {
        let source = TempDir::new("zeroed");
        let mut writer = log(&source.0);
        write(&mut writer, 3);
        drop(writer);
        let path = source.0.join(JOURNAL_DIR).join(segment_name(0));
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&[0; 32], 64).unwrap();
        let to = TempDir::new("zeroed-out");
        let error = backup(&source.0, &to.0.join("copy"), false).unwrap_err();
        assert!(error.contains("damaged at byte 64"), "{error}");
    }

    #[test]
    fn damage_with_records_after_it_stops_the_backup_instead_of_cutting_them() {
        let source = TempDir::new("damaged");
        let mut writer = log(&source.0);
        write(&mut writer, 3);
        drop(writer);
        let path = source.0.join(JOURNAL_DIR).join(segment_name(0));
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        // A byte of the first frame's body: the two frames after it prove it acknowledged.
        file.write_all_at(&[0xee], 64 + 32 + 8).unwrap();
        let to = TempDir::new("damaged-out");
        let error = backup(&source.0, &to.0.join("copy"), false).unwrap_err();
        assert!(error.contains("damaged at byte 64"), "{error}");
        assert!(!to.0.join("copy").exists());
        let leftovers = std::fs::read_dir(&to.0).unwrap().count();
        assert_eq!(leftovers, 0, "the incomplete copy is removed");
    }
}
