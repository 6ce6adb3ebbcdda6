//! Reading a log's files without opening the log, for tools that copy or check a log
//! directory, also while its writer runs (`writ backup`, `writ verify`). Nothing here
//! writes, and the rules are recovery's own, from the same code (`recovery.rs`): what
//! [`scan_segment`] accepts is what opening the log accepts.
//!
//! - [`classify`] says what a file of a log directory is ([`FileKind`]); [`segment_name`]
//!   and [`index_name`] are the names the log gives its files.
//! - [`scan_segment`] reads one segment's header and frames from the first, as recovery
//!   does, and stops at the first that is not a whole, valid frame with the expected
//!   records: [`SegmentScan::end`] is the **valid end** of the segment image, the end of its
//!   last whole frame, a commit boundary. A copy of a segment that a writer was appending
//!   to while it was read is therefore consistent up to `end`.
//! - [`last_nonzero`] and [`later_frame`] are recovery's two checks after the last frame:
//!   bytes that should be zero, and a valid frame header past damage (proof that records
//!   after the damage were acknowledged).
//!
//! ```
//! use std::sync::Arc;
//! use writ_log::inspect::{ScanStop, scan_segment, segment_name};
//! use writ_log::storage::{SimStorage, Storage};
//! use writ_log::{Log, LogOptions};
//!
//! let storage = Arc::new(SimStorage::new());
//! let (mut log, _) = Log::open(storage.clone(), "journal".as_ref(), LogOptions::default()).unwrap();
//! log.append(b"one").unwrap();
//! log.append(b"two").unwrap();
//! log.commit().unwrap();
//! let file = storage.open(&std::path::Path::new("journal").join(segment_name(0))).unwrap();
//! let mut payloads = Vec::new();
//! let scan = scan_segment(&*file, &mut |record| payloads.push(record.payload.to_vec())).unwrap();
//! assert_eq!((scan.end_seq, scan.frames), (2, 1));
//! assert!(matches!(scan.stop, ScanStop::End));
//! assert_eq!(payloads, [b"one".to_vec(), b"two".to_vec()]);
//! ```

use std::io;

use crate::error::TailDamage;
use crate::format::{FormatError, SEGMENT_HEADER_BYTES, SegmentHeader, SegmentIndexFile};
use crate::recovery::{self, ChunkReader, Stop};
use crate::storage::{StorageFile, read_full_at};

pub use crate::segment::{FileKind, classify, index_name, segment_name};

/// One record of a valid frame, as [`scan_segment`] hands it over.
#[derive(Debug, Clone, Copy)]
pub struct RecordAt<'a> {
    /// Its sequence number.
    pub seq: u64,
    /// The offset of its record header in the segment.
    pub offset: u64,
    /// Its payload.
    pub payload: &'a [u8],
}

/// Why [`scan_segment`] stopped at [`SegmentScan::end`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScanStop {
    /// An all-zero frame header, or no room left for one: the clean end, provided the rest
    /// of the segment is zero (see [`last_nonzero`]).
    End,
    /// The bytes at `end` are not a valid frame. In the last segment this is a tail
    /// recovery cuts, unless [`later_frame`] finds a frame written after it.
    Damaged {
        /// Recovery's diagnosis.
        damage: TailDamage,
        /// What is wrong.
        detail: String,
    },
    /// A valid frame header at `end` names records after the expected one: records are
    /// missing.
    Ahead {
        /// The first record that frame names.
        found: u64,
    },
}

/// What [`scan_segment`] found in one segment.
#[derive(Debug, Clone)]
pub struct SegmentScan {
    /// The segment header.
    pub header: SegmentHeader,
    /// Valid frames, from the first.
    pub frames: u64,
    /// The offset of every record of those frames.
    pub offsets: Vec<u32>,
    /// Offset just past the last valid frame: the valid end of the segment.
    pub end: u64,
    /// The sequence number after the last valid record.
    pub end_seq: u64,
    /// Why the scan stopped at `end`.
    pub stop: ScanStop,
}

impl SegmentScan {
    /// Records in the valid frames.
    pub fn records(&self) -> u64 {
        self.offsets.len() as u64
    }

    /// The sidecar index file of the segment, as the log writes it when it seals the
    /// segment at `end`.
    pub fn index_file(&self) -> Vec<u8> {
        SegmentIndexFile::encode_parts(
            self.header.first_seq,
            self.header.checksum(),
            u32::try_from(self.end).unwrap_or(u32::MAX),
            &self.offsets,
        )
    }
}

/// Why a segment could not be scanned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// Reading the file failed.
    #[error("read failed: {0}")]
    Io(#[from] io::Error),
    /// The segment header is not valid (recovery refuses such a segment).
    #[error("segment header: {0}")]
    Header(FormatError),
}

/// Scans a segment as recovery does: its header, then its frames from offset 64 (header
/// CRC, expected first record, body CRC, every record's length, CRC and padding), stopping
/// at the first that is not valid. `visit` sees every record of every valid frame, in
/// order. It reads up to the valid end, not the rest of the segment. The caller checks the
/// header's `first_seq` against the file's name.
pub fn scan_segment(
    file: &dyn StorageFile,
    visit: &mut dyn FnMut(RecordAt<'_>),
) -> Result<SegmentScan, ScanError> {
    let mut bytes = [0u8; SEGMENT_HEADER_BYTES];
    let n = read_full_at(file, &mut bytes, 0)?;
    let header = SegmentHeader::decode(&bytes[..n]).map_err(ScanError::Header)?;
    let mut reader = ChunkReader::new(file, header.segment_bytes);
    let scan = recovery::scan_frames(&mut reader, &header, visit)?;
    let stop = match scan.stop {
        Stop::End => ScanStop::End,
        Stop::Damaged { kind, detail } => ScanStop::Damaged {
            damage: kind,
            detail,
        },
        Stop::Ahead { found } => ScanStop::Ahead { found },
    };
    Ok(SegmentScan {
        header,
        frames: scan.frames,
        offsets: scan.offsets,
        end: scan.end,
        end_seq: scan.end_seq,
        stop,
    })
}

/// The offset of the last non-zero byte of `file` in `[from, to)` (bytes past the end of
/// the file read as zeros). Everything after a log's last frame is zero: recovery treats
/// non-zero bytes there as a torn write.
pub fn last_nonzero(file: &dyn StorageFile, from: u64, to: u64) -> io::Result<Option<u64>> {
    recovery::last_nonzero_in(&mut ChunkReader::new(file, to), from, to)
}

/// A frame header with a valid CRC at an 8-byte boundary in `[from, to)` whose first record
/// is after `expected`, as `(offset, first record)`: recovery's proof that damage before it
/// hit acknowledged records, since the writer writes a frame only after every earlier one
/// was acknowledged. `from` must be a multiple of 8.
pub fn later_frame(
    file: &dyn StorageFile,
    from: u64,
    to: u64,
    expected: u64,
) -> io::Result<Option<(u64, u64)>> {
    recovery::find_later_frame(&mut ChunkReader::new(file, to), from, to, expected)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::storage::{SimStorage, Storage};
    use crate::{Log, LogOptions};

    fn options() -> LogOptions {
        LogOptions {
            segment_bytes: 16 << 10,
            record_bytes_max: 4 << 10,
            preallocate: false,
            ..LogOptions::default()
        }
    }

    fn segment(storage: &SimStorage, seq: u64) -> Arc<dyn StorageFile> {
        storage
            .open(&Path::new("log").join(segment_name(seq)))
            .unwrap()
    }

    /// A log of `batches` frames of three 100-byte records each; returns its durable end.
    fn write(storage: &Arc<SimStorage>, batches: u64) -> u64 {
        let (mut log, _) = Log::open(storage.clone(), Path::new("log"), options()).unwrap();
        let mut end = 0;
        for b in 0..batches {
            for r in 0..3u8 {
                log.append(&[b as u8 ^ r; 100]).unwrap();
            }
            end = log.commit().unwrap();
        }
        end
    }

    #[test]
    fn the_valid_end_of_a_clean_segment_is_its_last_frame() {
        let storage = Arc::new(SimStorage::new());
        assert_eq!(write(&storage, 4), 12);
        let mut seen = Vec::new();
        let scan = scan_segment(&*segment(&storage, 0), &mut |r| seen.push(r.seq)).unwrap();
        assert_eq!(scan.stop, ScanStop::End);
        assert_eq!((scan.frames, scan.records(), scan.end_seq), (4, 12, 12));
        assert_eq!(seen, (0..12).collect::<Vec<_>>());
        assert_eq!(scan.end, 64 + 4 * (32 + 3 * 112));
        let file = segment(&storage, 0);
        assert_eq!(last_nonzero(&*file, scan.end, 16 << 10).unwrap(), None);
    }

    #[test]
    fn a_half_written_last_frame_ends_the_scan_where_it_starts() {
        let storage = Arc::new(SimStorage::new());
        write(&storage, 3);
        let file = segment(&storage, 0);
        let whole = scan_segment(&*file, &mut |_| {}).unwrap();
        // A frame that is being written, as a concurrent reader may see it: its header and
        // the first half of its body.
        let mut frame = Vec::new();
        let body: Vec<u8> = {
            let mut body = Vec::new();
            crate::format::encode_record(&mut body, 9, &[7; 100]);
            body
        };
        let header = crate::format::FrameHeader {
            first_seq: 9,
            record_count: 1,
            body_len: body.len() as u32,
            body_crc: crc32c::crc32c(&body),
        };
        frame.extend_from_slice(&header.encode());
        frame.extend_from_slice(&body[..body.len() / 2]);
        file.write_at(&frame, whole.end).unwrap();

        let mut records = 0;
        let scan = scan_segment(&*file, &mut |_| records += 1).unwrap();
        assert_eq!((scan.end, scan.end_seq, records), (whole.end, 9, 9));
        assert!(
            matches!(
                scan.stop,
                ScanStop::Damaged {
                    damage: TailDamage::Torn,
                    ..
                }
            ),
            "{:?}",
            scan.stop
        );
        assert_eq!(
            later_frame(&*file, scan.end + 8, 16 << 10, scan.end_seq).unwrap(),
            None
        );
        // Its index file is the one the log writes when it seals the segment there.
        let index = SegmentIndexFile::decode(&scan.index_file()).unwrap();
        assert_eq!(index.offsets, whole.offsets);
        assert_eq!(u64::from(index.end_offset), whole.end);
    }

    #[test]
    fn a_damaged_middle_frame_is_found_and_so_is_the_frame_after_it() {
        let storage = Arc::new(SimStorage::new());
        write(&storage, 3);
        let file = segment(&storage, 0);
        let second = 64 + 32 + 3 * 112;
        file.write_at(&[0xff], second + 40).unwrap();
        let scan = scan_segment(&*file, &mut |_| {}).unwrap();
        assert_eq!((scan.end, scan.end_seq), (second, 3));
        assert!(matches!(scan.stop, ScanStop::Damaged { .. }));
        let later = later_frame(&*file, scan.end + 8, 16 << 10, scan.end_seq).unwrap();
        assert_eq!(later, Some((second + 32 + 3 * 112, 6)));
    }

    #[test]
    fn a_damaged_header_is_an_error() {
        let storage = Arc::new(SimStorage::new());
        write(&storage, 1);
        let file = segment(&storage, 0);
        file.write_at(&[0xff], 20).unwrap();
        assert!(matches!(
            scan_segment(&*file, &mut |_| {}),
            Err(ScanError::Header(FormatError::HeaderChecksum { .. }))
        ));
    }
}
