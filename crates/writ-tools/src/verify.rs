//! `writ verify`: checks every file of a data directory, without opening an engine and
//! without writing anything.
//!
//! What it checks, by the rules of `docs/log-format.md` and with the code that enforces
//! them (`writ_log::inspect`, `writ_engine::check`):
//! - the data directory's entries: `writ.lock` (a file; whether a process holds it),
//!   `CURRENT` (which journal is live: `journal/`, or a replay's `replay-{n}/journal/`),
//!   the live journal and its dedupe runs, replays and journals that are not live (notes),
//!   and the two-log layout the engine refuses; anything else is reported;
//! - every segment of the journal: its header and name, its size, every frame (header CRC,
//!   body CRC, every record's length, CRC and padding), the chain of segments (each starts
//!   where the one before it ends), the zeros after the last frame, and a damaged tail of
//!   the last segment with recovery's decision (cut, or refuse because a later frame
//!   exists);
//! - each sealed segment's sidecar `.idx` against the segment, byte for byte;
//! - the engine checkpoints of the live journal (`checkpoints/`): each decodes whole, its
//!   name says its `seq`, its build is this one's and it does not reach past the journal's
//!   records; what fails is a note (the engine ignores a checkpoint at open and scans the
//!   journal);
//! - the journal's records in order: each decodes, positions and each stream's versions are
//!   gap-free, time never goes back (`writ_engine::check::JournalCheck`).
//!
//! A finding is **damage** (the engine refuses to open, would cut records, or a file is not
//! what the engine wrote: the exit status is non-zero) or a **note** (a leftover or a
//! missing hint that the next open cleans up, an unknown file). When `writ.lock` is free,
//! verify holds it while it reads, so that no server starts on the store meanwhile; when a
//! server holds it, the store is live, and the last segment's end may be mid-write: what
//! is found there is a note.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;
use writ_engine::check::{JournalCheck, JournalSummary};
use writ_engine::checkpoint::{
    CHECKPOINT_BUILD, CHECKPOINT_DIR, Checkpoint, CheckpointError, parse_checkpoint_name,
};
use writ_engine::current::{self, CURRENT_FILE, CURRENT_TMP, REPLAYED_FILE};
use writ_engine::{DEDUPE_DIR, JOURNAL_DIR, LOCK_FILE};
use writ_log::format::SegmentIndexFile;
use writ_log::inspect::{
    self, FileKind, ScanError, ScanStop, SegmentScan, index_name, segment_name,
};
use writ_log::storage::{FsStorage, StorageFile};

use crate::progress::Progress;

/// `writ verify`'s arguments.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The data directory to check (a server's, stopped or running, or a backup).
    #[arg(long, env = "WRIT_DATA_DIR", default_value = "writ-data")]
    data_dir: PathBuf,
    /// The archive directory of the journal's sealed segments (`writ archive --to`):
    /// checked with the journal, as the engine reads it. Needed once segments were
    /// archived: without it the journal is missing its first records.
    #[arg(long, env = "WRIT_ARCHIVE_DIR", value_name = "DIR")]
    archive_dir: Option<PathBuf>,
    /// Print the report as one JSON object instead of lines.
    #[arg(long)]
    json: bool,
}

/// Checks the data directory, prints the report, and fails when it found damage.
pub fn run(args: VerifyArgs) -> Result<(), String> {
    let report = verify_with_archive(&args.data_dir, args.archive_dir.as_deref(), true)?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        report.print();
    }
    match report.first_damage() {
        None => Ok(()),
        Some(first) => Err(format!(
            "{} is damaged ({} findings of damage); the first: {first}",
            args.data_dir.display(),
            report.damage_count()
        )),
    }
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The engine refuses to open the store, would cut records, or a file is not what the
    /// engine wrote.
    Damage,
    /// Something the next open cleans up or ignores.
    Note,
}

/// One thing verify found.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Damage or a note.
    pub severity: Severity,
    /// The file, relative to the data directory (`journal/00000000000000000000.wlog`).
    pub file: String,
    /// Where in the file, when it is about bytes.
    pub offset: Option<u64>,
    /// The journal record, when it is about one.
    pub record: Option<u64>,
    /// What is wrong.
    pub detail: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(offset) = self.offset {
            write!(f, " at byte {offset}")?;
        }
        if let Some(record) = self.record {
            write!(f, " (record {record})")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// What verify found.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Segment files.
    pub segments: u64,
    /// Sidecar index files checked against their segments.
    pub indexes: u64,
    /// Valid frames.
    pub frames: u64,
    /// Bytes of the valid frames and segment headers (each segment up to its valid end).
    pub log_bytes: u64,
    /// Bytes of the journal's segments as files.
    pub file_bytes: u64,
    /// The records checked against the journal's invariants (up to the first violation or
    /// the first gap).
    pub journal: JournalSummary,
    /// Where the journal ends: the last segment and its valid end.
    pub end: Option<(String, u64)>,
    /// A process held `writ.lock`: the store was live while it was read.
    pub live: bool,
    /// Everything found, in the order found.
    pub findings: Vec<Finding>,
    /// How long it took.
    pub elapsed: Duration,
}

impl VerifyReport {
    /// The first finding of damage.
    pub fn first_damage(&self) -> Option<&Finding> {
        self.findings
            .iter()
            .find(|f| f.severity == Severity::Damage)
    }

    /// Findings of damage.
    pub fn damage_count(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Damage)
            .count()
    }

    fn print(&self) {
        for finding in &self.findings {
            let severity = match finding.severity {
                Severity::Damage => "damage",
                Severity::Note => "note",
            };
            println!("{severity}: {finding}");
        }
        let j = &self.journal;
        println!(
            "journal: {} commands ({} succeeded, {} rejected, {} failed; {} from clients, {} from processes, {} from timers), {} events on {} streams, {} frames in {} segments, {} bytes{}",
            j.commands,
            j.succeeded,
            j.rejected,
            j.failed,
            j.from_clients,
            j.from_processes,
            j.from_timers,
            j.events,
            j.streams,
            self.frames,
            self.segments,
            self.log_bytes,
            if self.live {
                " (live: a server holds writ.lock)"
            } else {
                ""
            }
        );
        if let Some(first) = self.first_damage() {
            println!("first damage: {first}");
        }
        let end = self
            .end
            .as_ref()
            .map_or("none".to_owned(), |(file, offset)| {
                format!("{file}@{offset}")
            });
        println!(
            "verified={} commands={} events={} streams={} segments={} indexes={} frames={} log_bytes={} damage={} notes={} end={end} live={} elapsed_s={:.3}",
            if self.first_damage().is_some() {
                "damaged"
            } else {
                "ok"
            },
            j.commands,
            j.events,
            j.streams,
            self.segments,
            self.indexes,
            self.frames,
            self.log_bytes,
            self.damage_count(),
            self.findings.len() - self.damage_count(),
            self.live,
            self.elapsed.as_secs_f64(),
        );
    }

    fn to_json(&self) -> serde_json::Value {
        let j = &self.journal;
        serde_json::json!({
            "verified": if self.first_damage().is_some() { "damaged" } else { "ok" },
            "commands": j.commands,
            "events": j.events,
            "streams": j.streams,
            "succeeded": j.succeeded,
            "rejected": j.rejected,
            "failed": j.failed,
            "fromClients": j.from_clients,
            "fromProcesses": j.from_processes,
            "fromTimers": j.from_timers,
            "segments": self.segments,
            "indexes": self.indexes,
            "frames": self.frames,
            "logBytes": self.log_bytes,
            "fileBytes": self.file_bytes,
            "end": self.end.as_ref().map(|(file, offset)| serde_json::json!({"file": file, "offset": offset})),
            "live": self.live,
            "findings": self.findings,
            "elapsedMs": self.elapsed.as_millis() as u64,
        })
    }
}

/// A file of the local file system as `writ_log`'s storage sees one: verify opens files
/// read-only, so a write through it fails.
#[derive(Debug)]
pub(crate) struct LocalFile(pub(crate) File);

impl StorageFile for LocalFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.0.write_at(buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
}

/// Checks the data directory `dir`; see the module documentation. `Err` only when it
/// cannot be read at all; damage is in the report. `show_progress` draws progress on
/// stderr.
pub fn verify(dir: &Path, show_progress: bool) -> Result<VerifyReport, String> {
    verify_with_archive(dir, None, show_progress)
}

/// [`verify`] of a data directory whose journal has sealed segments in `archive` (`writ
/// archive --to`): they are checked with the journal, as the engine reads them (segments
/// in both places must hold the same bytes; the journal's last segment must not be
/// archived); the archive's other files are notes.
pub fn verify_with_archive(
    dir: &Path,
    archive: Option<&Path>,
    show_progress: bool,
) -> Result<VerifyReport, String> {
    let started = Instant::now();
    let mut check = Check {
        report: VerifyReport {
            segments: 0,
            indexes: 0,
            frames: 0,
            log_bytes: 0,
            file_bytes: 0,
            journal: JournalSummary::default(),
            end: None,
            live: false,
            findings: Vec::new(),
            elapsed: Duration::ZERO,
        },
        journal: Some(JournalCheck::new()),
        journal_name: JOURNAL_DIR.to_owned(),
        dedupe_name: DEDUPE_DIR.to_owned(),
        checkpoint_name: CHECKPOINT_DIR.to_owned(),
        checkpoints: Vec::new(),
    };
    let metadata =
        std::fs::metadata(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    if !metadata.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    // Held until the end: no server starts on the store while it is read.
    let _lock = check.lock(dir);
    // `CURRENT` names the live journal (`journal/` without it), as the engine reads it.
    let live = match current::live_journal(&FsStorage::new(dir)) {
        Ok(live) => live,
        Err(e) => {
            check.damage(
                CURRENT_FILE,
                None,
                format!("{e}: the engine refuses to open"),
            );
            PathBuf::from(JOURNAL_DIR)
        }
    };
    let base = live.parent().unwrap_or(Path::new("")).to_owned();
    check.journal_name = live.display().to_string();
    check.dedupe_name = base.join(DEDUPE_DIR).display().to_string();
    check.checkpoint_name = base.join(CHECKPOINT_DIR).display().to_string();
    let mut has_journal = false;
    for (name, is_dir) in entries(dir)? {
        let base_is_root = base.as_os_str().is_empty();
        match (name.as_str(), is_dir) {
            (LOCK_FILE | CURRENT_FILE, false) => {}
            (CURRENT_TMP, false) => check.note(
                &name,
                None,
                "left by a switch of CURRENT that a crash cut short: it names nothing, and the next open removes it".into(),
            ),
            (JOURNAL_DIR, true) if base_is_root => has_journal = true,
            (DEDUPE_DIR, true) if base_is_root => check.dedupe_dir(&dir.join(DEDUPE_DIR))?,
            (CHECKPOINT_DIR, true) if base_is_root => {
                check.checkpoint_dir(&dir.join(CHECKPOINT_DIR))?;
            }
            (CHECKPOINT_DIR, true) => check.note(
                &name,
                None,
                "the engine checkpoints of a journal that is not live: never read, may be deleted"
                    .into(),
            ),
            (JOURNAL_DIR, true) => check.note(
                &name,
                None,
                format!("a journal that is not live ({CURRENT_FILE} names {}): never read, kept until deleted by hand", live.display()),
            ),
            (DEDUPE_DIR, true) => check.note(
                &name,
                None,
                "the dedupe runs of a journal that is not live: never read, may be deleted".into(),
            ),
            (_, true) if Path::new(&name) == base => {
                for (entry, is_dir) in entries(&dir.join(&name))? {
                    match (entry.as_str(), is_dir) {
                        (JOURNAL_DIR, true) => has_journal = true,
                        (DEDUPE_DIR, true) => check.dedupe_dir(&dir.join(&name).join(DEDUPE_DIR))?,
                        (CHECKPOINT_DIR, true) => {
                            check.checkpoint_dir(&dir.join(&name).join(CHECKPOINT_DIR))?;
                        }
                        (REPLAYED_FILE, false) => {}
                        _ => check.note(
                            &format!("{name}/{entry}"),
                            None,
                            "unknown: not part of a Writ store (the engine ignores it)".into(),
                        ),
                    }
                }
            }
            (_, true) if current::parse_replay_dir(&name).is_some() => {
                let detail = if dir.join(&name).join(REPLAYED_FILE).is_file() {
                    "a replay written in full, not live (`writ replay` without --apply, or a journal that was live before): never read, kept until deleted by hand"
                } else {
                    "a replay cut short (no REPLAYED): never live, and the next `writ replay` writes over it"
                };
                check.note(&name, None, detail.into());
            }
            ("commands" | "events", true) if has_segments(&dir.join(&name)) => check.damage(
                &name,
                None,
                "a log of the two-log layout of an earlier build, which this build refuses to open"
                    .into(),
            ),
            _ => check.note(
                &name,
                None,
                "unknown: not part of a Writ store (the engine ignores it)".into(),
            ),
        }
    }
    if has_journal {
        check.journal_dir(&dir.join(&live), archive, show_progress)?;
    } else {
        let journal = check.journal_name.clone();
        check.damage(
            &journal,
            None,
            "no journal directory: not a Writ data directory, or its journal is gone".into(),
        );
    }
    if let Some(journal) = &check.journal {
        check.report.journal = *journal.summary();
    }
    let records = check.report.journal.commands;
    for (file, seq) in std::mem::take(&mut check.checkpoints) {
        if seq > records {
            check.note(
                &file,
                None,
                format!("it covers {seq} journal records, the journal holds {records}: the engine ignores it at open and removes it (a journal cut back, a restored backup)"),
            );
        }
    }
    check.report.elapsed = started.elapsed();
    Ok(check.report)
}

/// A verify in progress.
struct Check {
    report: VerifyReport,
    /// The journal's invariants, until a violation or a gap stops them.
    journal: Option<JournalCheck>,
    /// The live journal's directory, as findings name it (`journal`, or
    /// `replay-{n}/journal` when `CURRENT` says so).
    journal_name: String,
    /// Its dedupe runs' directory, as findings name it.
    dedupe_name: String,
    /// Its engine checkpoints' directory, as findings name it.
    checkpoint_name: String,
    /// The engine checkpoints that decode, with the records each covers (checked against
    /// the journal once it is read).
    checkpoints: Vec<(String, u64)>,
}

impl Check {
    fn finding(&mut self, severity: Severity, file: &str, offset: Option<u64>, detail: String) {
        self.report.findings.push(Finding {
            severity,
            file: file.to_owned(),
            offset,
            record: None,
            detail,
        });
    }

    /// The dedupe index's runs: hints the engine checks at open and rebuilds from the
    /// journal, so what is wrong with one is a note, never damage to the store.
    fn dedupe_dir(&mut self, dir: &Path) -> Result<(), String> {
        for (name, is_dir) in entries(dir)? {
            let file = format!("{}/{name}", self.dedupe_name);
            if is_dir || !name.ends_with(".ids") {
                let detail = if name.ends_with(".tmp") {
                    "an unfinished dedupe run (the engine removes it at open)"
                } else {
                    "unknown: not part of a Writ store (the engine ignores it)"
                };
                self.note(&file, None, detail.into());
                continue;
            }
            let bytes =
                std::fs::read(dir.join(&name)).map_err(|e| format!("cannot read {file}: {e}"))?;
            if let Err(e) = writ_engine::dedupe_run::decode_run(&bytes) {
                self.note(
                    &file,
                    None,
                    format!("{e}: the engine removes this run at open and rebuilds what it covered from the journal"),
                );
            }
        }
        Ok(())
    }

    /// The engine's checkpoints: hints the engine checks at open (and ignores, with a log
    /// line, when they fail), so what is wrong with one is a note. Each is decoded whole;
    /// the journal's mark in it is not compared (the engine does that at open).
    fn checkpoint_dir(&mut self, dir: &Path) -> Result<(), String> {
        for (name, is_dir) in entries(dir)? {
            let file = format!("{}/{name}", self.checkpoint_name);
            let seq = (!is_dir).then(|| parse_checkpoint_name(&name)).flatten();
            let Some(seq) = seq else {
                let detail = if name.ends_with(".tmp") {
                    "an unfinished engine checkpoint (the engine removes it at open)"
                } else {
                    "unknown: not part of a Writ store (the engine ignores it)"
                };
                self.note(&file, None, detail.into());
                continue;
            };
            let bytes =
                std::fs::read(dir.join(&name)).map_err(|e| format!("cannot read {file}: {e}"))?;
            match Checkpoint::decode(&bytes) {
                Err(CheckpointError::Version { version }) => self.note(
                    &file,
                    None,
                    format!("an engine checkpoint of format {version}, which this build does not read: the engine ignores it (and keeps it) and scans the journal"),
                ),
                Err(e) => self.note(
                    &file,
                    None,
                    format!("{e}: the engine ignores this checkpoint at open, removes it and scans the journal"),
                ),
                Ok(checkpoint) if checkpoint.seq != seq => self.note(
                    &file,
                    None,
                    format!("it says it covers {} records, its name {seq}: the engine ignores and removes it", checkpoint.seq),
                ),
                Ok(checkpoint) if checkpoint.build != CHECKPOINT_BUILD => self.note(
                    &file,
                    None,
                    format!("written by {:?}: this build ignores it (and keeps it) and scans the journal", checkpoint.build),
                ),
                Ok(_) => self.checkpoints.push((file, seq)),
            }
        }
        Ok(())
    }

    fn damage(&mut self, file: &str, offset: Option<u64>, detail: String) {
        self.finding(Severity::Damage, file, offset, detail);
    }

    fn note(&mut self, file: &str, offset: Option<u64>, detail: String) {
        self.finding(Severity::Note, file, offset, detail);
    }

    /// Damage at the live end of a live store is a note: the writer may be writing there.
    fn tail(&mut self, file: &str, offset: u64, detail: String) {
        if self.report.live {
            self.note(
                file,
                Some(offset),
                format!("{detail} (the store is live: a frame may be mid-write)"),
            );
        } else {
            self.damage(file, Some(offset), detail);
        }
    }

    /// The journal check stops: records are missing, so what follows cannot be measured.
    fn stop_journal(&mut self) {
        if let Some(journal) = self.journal.take() {
            self.report.journal = *journal.summary();
        }
    }

    /// Takes `writ.lock` when it is free (and keeps it, returned); notes a live store.
    fn lock(&mut self, dir: &Path) -> Option<File> {
        let path = dir.join(LOCK_FILE);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.note(
                    LOCK_FILE,
                    None,
                    "missing: the engine creates it when it opens the store".into(),
                );
                return None;
            }
            Err(e) => {
                self.note(LOCK_FILE, None, format!("cannot be opened: {e}"));
                return None;
            }
        };
        match file.try_lock() {
            Ok(()) => Some(file),
            Err(std::fs::TryLockError::WouldBlock) => {
                self.report.live = true;
                self.note(
                    LOCK_FILE,
                    None,
                    "held by another process: a server runs on this store, which is read while it writes".into(),
                );
                None
            }
            Err(std::fs::TryLockError::Error(e)) => {
                self.note(LOCK_FILE, None, format!("cannot be locked: {e}"));
                None
            }
        }
    }

    fn journal_dir(
        &mut self,
        dir: &Path,
        archive: Option<&Path>,
        show_progress: bool,
    ) -> Result<(), String> {
        let mut segments = Vec::new();
        let mut indexes = Vec::new();
        for (name, is_dir) in entries(dir)? {
            let file = format!("{}/{name}", self.journal_name);
            if is_dir {
                self.note(&file, None, "unknown directory: the log ignores it".into());
                continue;
            }
            match inspect::classify(&name) {
                FileKind::Segment(seq) => segments.push(seq),
                FileKind::Index(seq) => indexes.push(seq),
                FileKind::Temp => self.note(
                    &file,
                    None,
                    "a temporary file (a spare segment, or a file whose rename never happened): removed at the next open".into(),
                ),
                FileKind::BadSegmentName => self.damage(
                    &file,
                    None,
                    "a segment whose name is not 20 digits: the log refuses to open".into(),
                ),
                _ => self.note(&file, None, "unknown: the log ignores it".into()),
            }
        }
        segments.sort_unstable();
        indexes.sort_unstable();
        for &seq in &indexes {
            if segments.binary_search(&seq).is_err() {
                self.note(
                    &format!("{}/{}", self.journal_name, index_name(seq)),
                    None,
                    "an index without its segment: removed at the next open".into(),
                );
            }
        }
        let Some(&last) = segments.last() else {
            let journal = self.journal_name.clone();
            self.damage(
                &journal,
                None,
                "no segment: a store has segment 0 from its first open, so its records are gone"
                    .into(),
            );
            self.stop_journal();
            return Ok(());
        };
        if let Some(idx) = indexes.iter().find(|&&seq| seq == last) {
            self.note(
                &format!("{}/{}", self.journal_name, index_name(*idx)),
                None,
                "an index of the last segment: removed at the next open".into(),
            );
        }
        // Every segment with the directory it is read from: the archive's (`--archive-dir`)
        // where the journal's directory does not hold it, as the log reads them.
        let mut all: Vec<(u64, Option<&Path>)> = segments.iter().map(|&s| (s, None)).collect();
        let mut archive_indexes = Vec::new();
        if let Some(archive) = archive {
            self.archive_dir(dir, archive, &segments, &mut all, &mut archive_indexes)?;
        }
        all.sort_unstable_by_key(|&(seq, _)| seq);
        if let Some(&(seq, Some(archive))) = all.last() {
            self.damage(
                &archive.join(segment_name(seq)).display().to_string(),
                None,
                "the archive holds a segment after the journal directory's last: the last segment must stay in the journal directory, and the engine refuses to open".into(),
            );
            self.stop_journal();
            return Ok(());
        }
        let home = |archived: Option<&Path>| archived.unwrap_or(dir).to_path_buf();
        let total: u64 = all
            .iter()
            .filter_map(|&(seq, archived)| {
                std::fs::metadata(home(archived).join(segment_name(seq))).ok()
            })
            .map(|m| m.len())
            .sum();
        let mut progress = Progress::new("verify", total, show_progress);
        let mut expected = 0u64;
        let journal_name = self.journal_name.clone();
        for (i, &(seq, archived)) in all.iter().enumerate() {
            let next = all.get(i + 1).map(|&(seq, _)| seq);
            let has_index = match archived {
                None => indexes.binary_search(&seq).is_ok(),
                Some(_) => archive_indexes.binary_search(&seq).is_ok(),
            };
            // Findings about an archived segment name it by the archive's path.
            if let Some(archive) = archived {
                self.journal_name = archive.display().to_string();
            }
            let end = self.segment(
                &home(archived),
                seq,
                expected,
                next,
                has_index,
                &mut progress,
            );
            self.journal_name.clone_from(&journal_name);
            let end = end?;
            expected = end.unwrap_or_else(|| next.unwrap_or(seq));
            progress.set(self.report.file_bytes);
        }
        progress.finish();
        Ok(())
    }

    /// The archive's files: its segments not in the journal's directory go into `all`
    /// (with the archive), its indexes into `archive_indexes`; a segment in both must have
    /// the same bytes.
    fn archive_dir<'a>(
        &mut self,
        dir: &Path,
        archive: &'a Path,
        segments: &[u64],
        all: &mut Vec<(u64, Option<&'a Path>)>,
        archive_indexes: &mut Vec<u64>,
    ) -> Result<(), String> {
        let shown = |name: &str| archive.join(name).display().to_string();
        if !archive.is_dir() {
            self.note(
                &archive.display().to_string(),
                None,
                "the archive directory does not exist: nothing is archived".into(),
            );
            return Ok(());
        }
        for (name, is_dir) in entries(archive)? {
            if is_dir {
                self.note(
                    &shown(&name),
                    None,
                    "unknown directory: the log ignores it".into(),
                );
                continue;
            }
            match inspect::classify(&name) {
                FileKind::Segment(seq) if segments.binary_search(&seq).is_ok() => {
                    let same = same_file_bytes(&dir.join(&name), &archive.join(&name))
                        .map_err(|e| format!("cannot read {}: {e}", shown(&name)))?;
                    if same {
                        self.note(
                            &shown(&name),
                            None,
                            format!("also in {} with the same bytes (a move a crash cut short): the journal's copy is read, and the next `writ archive` removes it", self.journal_name),
                        );
                    } else {
                        self.damage(
                            &shown(&name),
                            None,
                            format!(
                                "also in {} with other bytes: the engine refuses to open",
                                self.journal_name
                            ),
                        );
                    }
                }
                FileKind::Segment(seq) => all.push((seq, Some(archive))),
                FileKind::Index(seq) => archive_indexes.push(seq),
                FileKind::Temp => self.note(
                    &shown(&name),
                    None,
                    "a copy a crash cut short: never read, removed by the next `writ archive`"
                        .into(),
                ),
                FileKind::BadSegmentName => self.damage(
                    &shown(&name),
                    None,
                    "a segment whose name is not 20 digits: the log refuses to open".into(),
                ),
                _ => self.note(&shown(&name), None, "unknown: the log ignores it".into()),
            }
        }
        archive_indexes.sort_unstable();
        Ok(())
    }

    /// Checks segment `seq`, which should start at record `expected` and, unless it is the
    /// last, end where segment `next` starts. Returns the record after its last valid
    /// frame, `None` when its header is unreadable.
    fn segment(
        &mut self,
        dir: &Path,
        seq: u64,
        expected: u64,
        next: Option<u64>,
        has_index: bool,
        progress: &mut Progress,
    ) -> Result<Option<u64>, String> {
        let name = format!("{}/{}", self.journal_name, segment_name(seq));
        let path = dir.join(segment_name(seq));
        self.report.segments += 1;
        if seq != expected {
            let detail = if expected == 0 {
                format!(
                    "the first segment starts at record {seq}: records 0..{seq} are missing (segments 0..{seq}); if they were archived (`writ archive`), give the archive (`--archive-dir`)"
                )
            } else {
                format!(
                    "the segment starts at record {seq}, but the segment before it ends at record {expected}: records are missing or repeated"
                )
            };
            self.damage(&name, Some(0), detail);
            self.stop_journal();
        }
        let file = LocalFile(File::open(&path).map_err(|e| format!("cannot read {name}: {e}"))?);
        let file_len = file.len().map_err(|e| format!("cannot read {name}: {e}"))?;
        self.report.file_bytes += file_len;
        let base = self.report.file_bytes - file_len;

        let mut violation = None;
        let scan = {
            let journal = &mut self.journal;
            let mut visit = |record: inspect::RecordAt<'_>| {
                progress.set(base + record.offset);
                if let Some(check) = journal
                    && let Err(e) = check.record(record.seq, record.payload)
                {
                    violation = Some((record.offset, record.seq, e.to_string(), *check.summary()));
                    *journal = None;
                }
            };
            inspect::scan_segment(&file, &mut visit)
        };
        if let Some((offset, record, detail, summary)) = violation {
            self.report.journal = summary;
            self.report.findings.push(Finding {
                severity: Severity::Damage,
                file: name.clone(),
                offset: Some(offset),
                record: Some(record),
                detail: format!("{detail}; the journal's records after it are not checked"),
            });
        }
        let scan = match scan {
            Ok(scan) => scan,
            Err(ScanError::Header(e)) => {
                self.damage(&name, Some(0), format!("segment header: {e}"));
                self.stop_journal();
                return Ok(None);
            }
            Err(e) => return Err(format!("cannot read {name}: {e}")),
        };
        if scan.header.first_seq != seq {
            self.damage(
                &name,
                Some(0),
                format!(
                    "the header says the segment starts at record {}, its name says {seq}",
                    scan.header.first_seq
                ),
            );
        }
        if file_len != scan.header.segment_bytes {
            self.damage(
                &name,
                Some(file_len.min(scan.header.segment_bytes)),
                format!(
                    "the file is {file_len} bytes, its header says {} (segments are created full size)",
                    scan.header.segment_bytes
                ),
            );
        }
        self.report.frames += scan.frames;
        self.report.log_bytes += scan.end;
        match next {
            Some(next) => self.sealed(&file, &name, &scan, next, has_index, dir)?,
            None => self.last(&file, &name, &scan)?,
        }
        if scan.end_seq != next.unwrap_or(scan.end_seq) {
            // The records between are missing: the journal cannot be checked past them.
            self.stop_journal();
        }
        // The next segment is measured against its own name: a gap is reported once, here.
        Ok(Some(next.unwrap_or(scan.end_seq)))
    }

    fn sealed(
        &mut self,
        file: &LocalFile,
        name: &str,
        scan: &SegmentScan,
        next: u64,
        has_index: bool,
        dir: &Path,
    ) -> Result<(), String> {
        let size = scan.header.segment_bytes;
        if scan.end_seq != next {
            let why = match &scan.stop {
                ScanStop::End => "its frames end".to_owned(),
                ScanStop::Damaged { detail, .. } => detail.clone(),
                ScanStop::Ahead { found } => format!("a frame names record {found}"),
                _ => "its frames stop".to_owned(),
            };
            self.damage(
                name,
                Some(scan.end),
                format!(
                    "{why} after record {}, but the next segment starts at record {next}: acknowledged records are damaged or missing, and the engine refuses to open",
                    scan.end_seq.saturating_sub(1)
                ),
            );
            return Ok(());
        }
        if let Some(last) = inspect::last_nonzero(file, scan.end, size)
            .map_err(|e| format!("cannot read {name}: {e}"))?
        {
            self.note(
                name,
                Some(scan.end),
                format!(
                    "non-zero bytes after the sealed segment's last frame, up to byte {last} (never read)"
                ),
            );
        }
        let index = format!(
            "{}/{}",
            self.journal_name,
            index_name(scan.header.first_seq)
        );
        if !has_index {
            self.note(
                &index,
                None,
                "missing: the next open scans the segment and writes it".into(),
            );
            return Ok(());
        }
        self.report.indexes += 1;
        let bytes = std::fs::read(dir.join(index_name(scan.header.first_seq)))
            .map_err(|e| format!("cannot read {index}: {e}"))?;
        let expected = scan.index_file();
        if bytes != expected {
            let at = bytes
                .iter()
                .zip(&expected)
                .position(|(a, b)| a != b)
                .unwrap_or(bytes.len().min(expected.len()));
            let why = match SegmentIndexFile::decode(&bytes) {
                Err(e) => e.to_string(),
                Ok(_) => "it decodes, but describes other records than the segment holds".into(),
            };
            self.damage(
                &index,
                Some(at as u64),
                format!(
                    "does not match its segment ({why}); the next open scans the segment and writes it again"
                ),
            );
        }
        Ok(())
    }

    fn last(&mut self, file: &LocalFile, name: &str, scan: &SegmentScan) -> Result<(), String> {
        let size = scan.header.segment_bytes;
        let read = |e: io::Error| format!("cannot read {name}: {e}");
        self.report.end = Some((name.to_owned(), scan.end));
        match &scan.stop {
            ScanStop::End => {
                if let Some(last) = inspect::last_nonzero(file, scan.end, size).map_err(read)? {
                    self.tail(
                        name,
                        scan.end,
                        format!(
                            "non-zero bytes after the last frame, up to byte {last}: a torn write, which the next open cuts"
                        ),
                    );
                }
            }
            ScanStop::Damaged { detail, .. } => {
                match inspect::later_frame(file, scan.end + 8, size, scan.end_seq).map_err(read)? {
                    Some((at, first)) => self.damage(
                        name,
                        Some(scan.end),
                        format!(
                            "{detail}; a valid frame of records from {first} follows at byte {at}, so acknowledged records are damaged and the engine refuses to open"
                        ),
                    ),
                    None => self.tail(
                        name,
                        scan.end,
                        format!(
                            "{detail}, at the end of the journal: the next open cuts it (a write a crash tore, never acknowledged; or bit rot in the last frame)"
                        ),
                    ),
                }
            }
            ScanStop::Ahead { found } => self.damage(
                name,
                Some(scan.end),
                format!(
                    "the frame here starts at record {found}, where record {} belongs: records are missing",
                    scan.end_seq
                ),
            ),
            _ => self.damage(name, Some(scan.end), "the frames stop here".into()),
        }
        Ok(())
    }
}

/// The entries of `dir`, with whether each is a directory, sorted by name.
fn entries(dir: &Path) -> Result<Vec<(String, bool)>, String> {
    let read = |e: io::Error| format!("cannot list {}: {e}", dir.display());
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read)? {
        let entry = entry.map_err(read)?;
        let is_dir = entry.file_type().map_err(read)?.is_dir();
        entries.push((entry.file_name().to_string_lossy().into_owned(), is_dir));
    }
    entries.sort();
    Ok(entries)
}

/// Whether two files hold the same bytes.
fn same_file_bytes(a: &Path, b: &Path) -> io::Result<bool> {
    let (fa, fb) = (File::open(a)?, File::open(b)?);
    let len = fa.metadata()?.len();
    if fb.metadata()?.len() != len {
        return Ok(false);
    }
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut at = 0u64;
    while at < len {
        let want = ba.len().min((len - at) as usize);
        fa.read_exact_at(&mut ba[..want], at)?;
        fb.read_exact_at(&mut bb[..want], at)?;
        if ba[..want] != bb[..want] {
            return Ok(false);
        }
        at += want as u64;
    }
    Ok(true)
}

fn has_segments(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".wlog"))
    })
}
