//! What a log is opened with and what opening it found: the types both the writer
//! ([`Log`](crate::Log)) and recovery use.

use std::path::PathBuf;

use crate::error::TailDamage;
use crate::format::{self, SEGMENT_BYTES_MAX};

/// Room a segment must leave beyond the largest record (segment header, frame header,
/// record header, padding).
const SEGMENT_SLACK_BYTES: u64 = 4096;

/// Sizes and limits of one log. Every field has a bound; see each default.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Size of a segment file, preallocated with zeros. Default 64 MiB.
    pub segment_bytes: u64,
    /// Largest record accepted by [`Log::append`](crate::Log::append). Default 4 MiB. Must leave room for a
    /// frame in a segment: `record_bytes_max + 4 KiB <= segment_bytes`.
    pub record_bytes_max: usize,
    /// Whether to prepare the next segment (zero-filled and synced) ahead of time on a
    /// background thread. Default true. Writing into pre-zeroed files needs no metadata
    /// update per `fdatasync`, which roughly doubles small-batch sync throughput. A writer
    /// that rolls before the fill is done takes the segment as far as it is filled (the
    /// rest a hole) instead of waiting for the disk to write the zeros.
    pub preallocate: bool,
    /// Most sealed segments whose file stays open for readers. Default 64. A sealed
    /// segment's file is opened by the first read that needs it and kept open for the
    /// next; beyond this bound the least recently read one is closed (a reader still in
    /// it finishes first). Each costs one file descriptor; the live segment and the
    /// preallocated spare hold two more, whatever the bound. A smaller bound costs an
    /// `open` and a `close` for each read that comes back to a closed segment: scattered
    /// reads of old records (stream loads, `/streams` of old streams) across more
    /// segments than the bound. Sequential reads (read models' feeds, recovery) hold the
    /// segment they are in and reopen each segment once per pass. At least 1.
    pub open_segments_max: usize,
    /// A directory of the same storage holding sealed segments (and their sidecar indexes)
    /// moved out of the log directory ([`archive::move_segment`](crate::archive::move_segment),
    /// `writ archive`). Default none. With it, open lists the sealed segments of both
    /// directories, requires them to follow each other from record 0 across both, and reads
    /// an archived segment like any sealed one; nothing is ever written there (a missing or
    /// stale index of an archived segment means a scan at each open). With a
    /// [`FsStorage`](crate::storage::FsStorage) an absolute path may be anywhere. The
    /// log's last segment is never archived. Without it, a log directory whose first
    /// segment does not start at record 0 is refused, saying so.
    pub archive_dir: Option<PathBuf>,
}

impl LogOptions {
    /// Checks the bounds: `segment_bytes` a multiple of 8 and at most
    /// [`SEGMENT_BYTES_MAX`](crate::format::SEGMENT_BYTES_MAX) (offsets are u32), and
    /// `record_bytes_max + 4 KiB <= segment_bytes`, and `open_segments_max` at least 1.
    pub fn validate(&self) -> Result<(), String> {
        if self.open_segments_max == 0 {
            return Err("open_segments_max must be at least 1".into());
        }
        if !self.segment_bytes.is_multiple_of(format::ALIGN as u64) {
            return Err(format!(
                "segment_bytes ({}) must be a multiple of {}",
                self.segment_bytes,
                format::ALIGN
            ));
        }
        if self.segment_bytes > SEGMENT_BYTES_MAX {
            return Err(format!(
                "segment_bytes ({}) must be at most {SEGMENT_BYTES_MAX}",
                self.segment_bytes
            ));
        }
        let record_max = u64::try_from(self.record_bytes_max).unwrap_or(u64::MAX);
        if record_max.saturating_add(SEGMENT_SLACK_BYTES) > self.segment_bytes {
            return Err(format!(
                "record_bytes_max ({}) + {SEGMENT_SLACK_BYTES} must be at most segment_bytes ({})",
                self.record_bytes_max, self.segment_bytes
            ));
        }
        Ok(())
    }
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            segment_bytes: 64 << 20,
            record_bytes_max: 4 << 20,
            preallocate: true,
            open_segments_max: 64,
            archive_dir: None,
        }
    }
}

/// What opening a log found and did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct OpenReport {
    /// Number of durable records in the log (the next sequence number).
    pub records: u64,
    /// Number of segment files.
    pub segments: usize,
    /// A torn or corrupt tail that recovery cut off, if any.
    pub truncated: Option<TailTruncation>,
    /// Segments read frame by frame: the last one, and sealed ones whose sidecar index was
    /// missing, invalid or inconsistent.
    pub scanned_segments: usize,
    /// Sidecar index files written again after a scan of their sealed segment.
    pub rebuilt_indexes: usize,
    /// Leftover temporary files removed (an unused preallocated segment, a half-written
    /// index file or segment of a crashed process).
    pub removed_temp_files: usize,
    /// Sealed segments read from the archive directory.
    pub archived_segments: usize,
    /// Segments found in both the log directory and the archive with the same bytes (a
    /// move a crash cut short after its copy): the log directory's copy is read, and the
    /// next `writ archive` removes it.
    pub archive_duplicates: usize,
}

/// A tail cut off by recovery. Only bytes that were never acknowledged as durable can be
/// here: a batch is acknowledged after its `fdatasync`, and a damaged frame with nothing
/// valid after it is the unsynced end of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailTruncation {
    /// The segment that held the damaged tail.
    pub path: PathBuf,
    /// Where the damage began (the end of the last valid frame).
    pub offset: u64,
    /// How many bytes were discarded: from `offset` through the last non-zero byte of the
    /// segment (all of them now zero).
    pub discarded_bytes: u64,
    /// What was wrong.
    pub damage: TailDamage,
}
