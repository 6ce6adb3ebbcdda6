//! Opening a log directory: find the segments, check them, rebuild the in-memory index and
//! cut off a torn or corrupt tail. The rules (and why they are safe) are the decision table
//! in `docs/log-format.md`; each rule below names its row.
//!
//! In short: sealed segments are trusted through their sidecar index when it is valid and
//! consistent with the next segment, and scanned otherwise; the last segment is always
//! scanned frame by frame, then the rest of it checked for non-zero bytes. A damaged frame
//! is the torn tail of an unacknowledged commit, and is zeroed, only if nothing written
//! after it exists: no later frame header (at any 8-byte boundary) naming later records, and
//! no later segment. Otherwise records that were acknowledged are damaged, and open refuses
//! with [`OpenError::Corrupt`].

use std::collections::BTreeSet;
use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::archive::same_bytes;
use crate::error::{OpenError, TailDamage};
use crate::format::{
    self, FRAME_HEADER_BYTES, FRAME_MAGIC, FormatError, FrameHeader, SEGMENT_HEADER_BYTES,
    SegmentHeader, SegmentIndexFile, decode_frame_body,
};
use crate::index::{SegmentEntry, SegmentFile};
use crate::inspect::RecordAt;
use crate::options::{LogOptions, OpenReport, TailTruncation};
use crate::segment::{
    FileKind, TMP_SUFFIX, classify, index_name, install_segment, prepare_file, segment_name,
    write_index_file,
};
use crate::storage::{Storage, StorageFile, read_full_at, write_all_at};

/// Bytes recovery reads at once.
const SCAN_CHUNK_BYTES: usize = 1 << 20;

/// The segment the writer continues in.
pub(crate) struct ActiveSegment {
    pub first_seq: u64,
    pub path: Arc<Path>,
    pub file: Arc<dyn StorageFile>,
    /// The segment's size from its header.
    pub size: u64,
    /// Where the next frame goes: just past the last valid frame.
    pub write_offset: u64,
    pub header_crc: u32,
    /// Records in the segment.
    pub records: u64,
}

pub(crate) struct Recovered {
    pub segments: Vec<SegmentEntry>,
    pub next_seq: u64,
    pub active: ActiveSegment,
    pub report: OpenReport,
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> OpenError + '_ {
    move |source| OpenError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Recovers the log in `dir`, creating it if it does not exist.
pub(crate) fn recover(
    storage: &dyn Storage,
    dir: &Path,
    options: &LogOptions,
) -> Result<Recovered, OpenError> {
    storage.create_dir_all(dir).map_err(io_error(dir))?;
    // The log directory's own entry must be durable before any record in it is.
    let parent = dir.parent().unwrap_or(Path::new(""));
    storage.sync_dir(parent).map_err(io_error(parent))?;

    let mut report = OpenReport::default();
    let mut segment_seqs = Vec::new();
    let mut index_seqs = BTreeSet::new();
    for name in storage.list(dir).map_err(io_error(dir))? {
        match classify(&name) {
            FileKind::Segment(seq) => segment_seqs.push(seq),
            FileKind::Index(seq) => {
                index_seqs.insert(seq);
            }
            FileKind::Temp => {
                // Row "leftover temporary file": never part of the log.
                let path = dir.join(&name);
                storage.remove(&path).map_err(io_error(&path))?;
                report.removed_temp_files += 1;
            }
            FileKind::BadSegmentName => {
                return Err(OpenError::Format {
                    path: dir.join(&name),
                    detail: "a segment's name must be its first sequence number in 20 digits"
                        .into(),
                });
            }
            FileKind::Other => {}
        }
    }
    segment_seqs.sort_unstable();

    // Index files without their segment are stale.
    for &seq in &index_seqs {
        if segment_seqs.binary_search(&seq).is_err() {
            let path = dir.join(index_name(seq));
            storage.remove(&path).map_err(io_error(&path))?;
        }
    }

    // Sealed segments moved to the archive (never written to; see the rows "archive ...").
    let archive = options.archive_dir.as_deref();
    let mut archived: BTreeSet<u64> = BTreeSet::new();
    let mut archive_index_seqs = BTreeSet::new();
    let mut archive_missing = false;
    if let Some(archive) = archive {
        // Row "archive directory missing": nothing archived. A log that needs it is
        // refused below for the records it misses, naming the archive.
        let names = match storage.list(archive) {
            Ok(names) => names,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                archive_missing = true;
                Vec::new()
            }
            Err(source) => {
                return Err(OpenError::Io {
                    path: archive.to_path_buf(),
                    source,
                });
            }
        };
        for name in names {
            match classify(&name) {
                FileKind::Segment(seq) => {
                    if segment_seqs.binary_search(&seq).is_ok() {
                        // Row "segment in both the log directory and the archive".
                        let local = dir.join(segment_name(seq));
                        let other = archive.join(&name);
                        if !same_bytes(storage, &local, &other).map_err(io_error(&other))? {
                            return Err(OpenError::Corrupt {
                                path: local.clone(),
                                offset: 0,
                                seq,
                                detail: format!(
                                    "the segment is both here and in the archive as {}, with \
                                     other bytes",
                                    other.display()
                                ),
                            });
                        }
                        report.archive_duplicates += 1;
                    } else {
                        archived.insert(seq);
                    }
                }
                FileKind::Index(seq) => {
                    archive_index_seqs.insert(seq);
                }
                FileKind::BadSegmentName => {
                    return Err(OpenError::Archive {
                        path: archive.join(&name),
                        detail: "a segment's name must be its first sequence number in 20 \
                                 digits"
                            .into(),
                    });
                }
                // Row "`*.tmp` in the archive": a copy a crash cut short; ignored here (open
                // never writes into the archive), removed by the next `writ archive`.
                FileKind::Temp | FileKind::Other => {}
            }
        }
        let last_local = segment_seqs.last().copied();
        if let Some(&last_archived) = archived.last()
            && last_local.is_none_or(|local| last_archived > local)
        {
            // Row "the log's last segment is in the archive".
            return Err(OpenError::Archive {
                path: archive.join(segment_name(last_archived)),
                detail: format!(
                    "the archive holds segment {} but the log directory {} holds no later \
                     one: the last segment must stay in the log directory (move it back)",
                    segment_name(last_archived),
                    dir.display()
                ),
            });
        }
    }

    if segment_seqs.is_empty() {
        // A new log: segment 0, installed durably before anything is written into it.
        let tmp = dir.join(format!("{}{TMP_SUFFIX}", segment_name(0)));
        let file = prepare_file(
            storage,
            &tmp,
            options.segment_bytes,
            options.preallocate,
            None,
            None,
        )
        .map_err(io_error(&tmp))?
        .file;
        let header = SegmentHeader {
            first_seq: 0,
            segment_bytes: options.segment_bytes,
        };
        install_segment(storage, dir, &tmp, &*file, &header)
            .map_err(|(path, source)| OpenError::Io { path, source })?;
        segment_seqs.push(0);
    }

    // Every segment, sorted, with the directory holding it.
    let mut all: Vec<(u64, &Path)> = segment_seqs.iter().map(|&seq| (seq, dir)).collect();
    if let Some(archive) = archive {
        all.extend(archived.iter().map(|&seq| (seq, archive)));
        all.sort_unstable_by_key(|&(seq, _)| seq);
    }

    let mut segments: Vec<SegmentEntry> = Vec::with_capacity(all.len());
    let mut expected = 0u64;
    let mut active = None;
    for (i, &(seq, home)) in all.iter().enumerate() {
        let path = home.join(segment_name(seq));
        let in_archive = home != dir;
        let next_first = all.get(i + 1).map(|&(seq, _)| seq);
        if seq != expected {
            let Some(prev) = segments.last() else {
                // Row "first segment does not start at 0".
                let hint = match archive {
                    None => "if they were archived (`writ archive`), open with the archive \
                             directory (`--archive-dir`); otherwise restore them from a backup"
                        .to_owned(),
                    Some(archive) => format!(
                        "they are in neither {} nor the archive {}{}: give the archive \
                         directory they were moved to, or restore them from a backup",
                        dir.display(),
                        archive.display(),
                        if archive_missing {
                            " (which does not exist)"
                        } else {
                            ""
                        }
                    ),
                };
                return Err(OpenError::MissingStart {
                    path,
                    first_seq: seq,
                    hint,
                });
            };
            // Row "sequence gap between segments".
            return Err(OpenError::Corrupt {
                path: prev.path.to_path_buf(),
                offset: u64::from(prev.end),
                seq: expected,
                detail: format!(
                    "the segment holds records up to {expected} but the next segment {} \
                     starts at record {seq}",
                    segment_name(seq)
                ),
            });
        }
        let file = storage.open(&path).map_err(io_error(&path))?;
        let header = read_segment_header(&*file, &path, seq)?;

        let Some(next_first) = next_first else {
            // The last segment: always scanned, tail recovered.
            if index_seqs.contains(&seq) {
                // Row "index file of the last segment": it will get more frames, so an
                // index file would go stale. Removed durably before anything is written.
                let idx = dir.join(index_name(seq));
                storage.remove(&idx).map_err(io_error(&idx))?;
            }
            report.scanned_segments += 1;
            let (entry, truncated) = recover_last(&path, &file, &header)?;
            report.truncated = truncated;
            expected = entry.end_seq();
            active = Some(ActiveSegment {
                first_seq: seq,
                path: Arc::clone(&entry.path),
                file,
                size: header.segment_bytes,
                write_offset: u64::from(entry.end),
                header_crc: header.checksum(),
                records: entry.offsets.len() as u64,
            });
            segments.push(entry);
            break;
        };

        // A sealed segment: the sidecar index if it is valid and agrees with the next
        // segment, else a scan.
        let has_index = if in_archive {
            report.archived_segments += 1;
            archive_index_seqs.contains(&seq)
        } else {
            index_seqs.contains(&seq)
        };
        let sidecar = has_index
            .then(|| read_sidecar(storage, home, &header, next_first))
            .flatten();
        let entry = match sidecar {
            Some(entry) => entry,
            None if in_archive => {
                // Row "archived segment whose index is missing or invalid": scanned, the
                // index not written (nothing is written into the archive).
                report.scanned_segments += 1;
                scan_sealed(&path, &*file, &header, next_first)?
            }
            None => {
                report.scanned_segments += 1;
                let entry = scan_sealed(&path, &*file, &header, next_first)?;
                let bytes = SegmentIndexFile::encode_parts(
                    seq,
                    header.checksum(),
                    entry.end,
                    &entry.offsets,
                );
                // Best effort (row "index file missing or invalid").
                if write_index_file(storage, dir, seq, &bytes).is_ok() {
                    report.rebuilt_indexes += 1;
                }
                entry
            }
        };
        expected = entry.end_seq();
        segments.push(entry);
    }

    // Always: a previous process may have renamed a segment and failed (or died) before
    // its directory sync; the name must be durable before records go into that segment.
    storage.sync_dir(dir).map_err(io_error(dir))?;
    let active = active.ok_or_else(|| OpenError::Io {
        path: dir.to_path_buf(),
        source: io::Error::other("no segment after recovery"),
    })?;
    report.records = expected;
    report.segments = segments.len();
    Ok(Recovered {
        segments,
        next_seq: expected,
        active,
        report,
    })
}

/// Reads and checks the header of segment `seq`. Rows "segment header invalid" and
/// "unknown version".
fn read_segment_header(
    file: &dyn StorageFile,
    path: &Path,
    seq: u64,
) -> Result<SegmentHeader, OpenError> {
    let mut bytes = [0u8; SEGMENT_HEADER_BYTES];
    let n = read_full_at(file, &mut bytes, 0).map_err(io_error(path))?;
    let corrupt = |detail: String| OpenError::Corrupt {
        path: path.to_path_buf(),
        offset: 0,
        seq,
        detail,
    };
    let header = match SegmentHeader::decode(&bytes[..n]) {
        Ok(header) => header,
        Err(e @ (FormatError::Zeroed | FormatError::HeaderChecksum { .. })) => {
            return Err(corrupt(format!("segment header: {e}")));
        }
        Err(e) => {
            return Err(OpenError::Format {
                path: path.to_path_buf(),
                detail: format!("segment header: {e}"),
            });
        }
    };
    if header.first_seq != seq {
        return Err(corrupt(format!(
            "the segment header says the segment starts at record {}, its name says {seq}",
            header.first_seq
        )));
    }
    Ok(header)
}

/// The sidecar index of a sealed segment, if it is valid, belongs to this segment header and
/// ends where the next segment begins.
fn read_sidecar(
    storage: &dyn Storage,
    dir: &Path,
    header: &SegmentHeader,
    next_first: u64,
) -> Option<SegmentEntry> {
    let path = dir.join(index_name(header.first_seq));
    let file = storage.open(&path).ok()?;
    let len = usize::try_from(file.len().ok()?).ok()?;
    let mut bytes = vec![0u8; len];
    if read_full_at(&*file, &mut bytes, 0).ok()? != len {
        return None;
    }
    let index = SegmentIndexFile::decode(&bytes).ok()?;
    let end_seq = index.first_seq.checked_add(index.offsets.len() as u64)?;
    let consistent = index.first_seq == header.first_seq
        && index.segment_header_crc == header.checksum()
        && u64::from(index.end_offset) <= header.segment_bytes
        && end_seq == next_first;
    consistent.then(|| SegmentEntry {
        first_seq: header.first_seq,
        path: Arc::from(dir.join(segment_name(header.first_seq))),
        file: SegmentFile::sealed(),
        offsets: index.offsets,
        end: index.end_offset,
    })
}

/// Scans a sealed segment. Its frames must reach record `next_first`, where the next
/// segment begins; what follows its last frame is never read and left alone. Row "damage in
/// a sealed segment".
fn scan_sealed(
    path: &Path,
    file: &dyn StorageFile,
    header: &SegmentHeader,
    next_first: u64,
) -> Result<SegmentEntry, OpenError> {
    let mut reader = ChunkReader::new(file, header.segment_bytes);
    let scan = scan_frames(&mut reader, header, &mut |_| {}).map_err(io_error(path))?;
    let end_seq = scan.end_seq;
    if end_seq != next_first {
        let why = match &scan.stop {
            Stop::End => "its frames end".to_string(),
            Stop::Damaged { detail, .. } => detail.clone(),
            Stop::Ahead { found } => format!("a frame names record {found}"),
        };
        return Err(OpenError::Corrupt {
            path: path.to_path_buf(),
            offset: scan.end,
            seq: end_seq,
            detail: format!(
                "{why} at byte {} after record {}, but the next segment starts at record \
                 {next_first}",
                scan.end,
                end_seq.saturating_sub(1),
            ),
        });
    }
    Ok(SegmentEntry {
        first_seq: header.first_seq,
        path: Arc::from(path),
        file: SegmentFile::sealed(),
        offsets: scan.offsets,
        end: offset_u32(scan.end),
    })
}

/// Scans the last segment and cuts off a torn or corrupt tail.
fn recover_last(
    path: &Path,
    file: &Arc<dyn StorageFile>,
    header: &SegmentHeader,
) -> Result<(SegmentEntry, Option<TailTruncation>), OpenError> {
    let size = header.segment_bytes;
    let mut reader = ChunkReader::new(&**file, size);
    let scan = scan_frames(&mut reader, header, &mut |_| {}).map_err(io_error(path))?;
    let x = scan.end;
    let end_seq = scan.end_seq;
    let corrupt = |detail: String| OpenError::Corrupt {
        path: path.to_path_buf(),
        offset: x,
        seq: end_seq,
        detail,
    };

    let (damage, detail, last_nonzero) = match scan.stop {
        Stop::Ahead { found } => {
            // Row "valid frame with later records where the next frame belongs".
            return Err(corrupt(format!(
                "the frame at this offset starts at record {found}: records \
                 {end_seq}..{found} are missing"
            )));
        }
        Stop::End => match last_nonzero_in(&mut reader, x, size).map_err(io_error(path))? {
            // Row "all-zero frame header, zeros to the end": the clean end.
            None => (None, String::new(), None),
            // Row "all-zero frame header, non-zero bytes after it".
            Some(last) => (
                Some(TailDamage::Torn),
                format!("non-zero bytes after the end of the log, up to byte {last}"),
                Some(last),
            ),
        },
        Stop::Damaged { kind, detail } => {
            let last = last_nonzero_in(&mut reader, x, size).map_err(io_error(path))?;
            (Some(kind), detail, last)
        }
    };

    // Row "last valid frame": write it again and sync. If the previous process's last
    // commit failed in `fsync`, the kernel may have marked that frame's pages clean without
    // writing them; they read back fine from the page cache but are not durable, and a
    // second `fsync` would not write them. Writing the same bytes again dirties them, so
    // this sync makes them durable. (Only the last frame can be in that state: a failed
    // commit poisons the writer.) Rewriting identical bytes is harmless if torn.
    if let Some((start, len)) = scan.last_frame {
        let bytes = reader
            .get(start, len as usize)
            .map_err(io_error(path))?
            .to_vec();
        if bytes.len() as u64 == len {
            write_all_at(&**file, &bytes, start).map_err(io_error(path))?;
            file.sync_data().map_err(io_error(path))?;
        }
    }

    let mut truncated = None;
    if let Some(damage) = damage {
        if let Some((at, later)) =
            find_later_frame(&mut reader, x + 8, size, end_seq).map_err(io_error(path))?
        {
            // Row "damaged frame followed by a valid frame with later records".
            return Err(corrupt(format!(
                "{detail}; yet a valid frame holding records from {later} follows at byte \
                 {at}, so acknowledged records were damaged"
            )));
        }
        // Row "damaged frame, nothing valid after it": the torn or corrupt tail of a commit
        // that was never acknowledged. Zero it, so the file stays preallocated and the log
        // ends cleanly at `x`.
        if let Some(last) = last_nonzero {
            let discarded = last + 1 - x;
            zero_range(&**file, x, last + 1).map_err(io_error(path))?;
            file.sync_data().map_err(io_error(path))?;
            truncated = Some(TailTruncation {
                path: path.to_path_buf(),
                offset: x,
                discarded_bytes: discarded,
                damage,
            });
        }
    }

    let entry = SegmentEntry {
        first_seq: header.first_seq,
        path: Arc::from(path),
        file: SegmentFile::live(Arc::clone(file)),
        offsets: scan.offsets,
        end: offset_u32(x),
    };
    Ok((entry, truncated))
}

fn offset_u32(offset: u64) -> u32 {
    debug_assert!(offset <= u64::from(u32::MAX));
    u32::try_from(offset).unwrap_or(u32::MAX)
}

/// Why a scan stopped at [`Scan::end`].
#[derive(Debug)]
pub(crate) enum Stop {
    /// An all-zero frame header, or no room left for one: the log's clean end, provided the
    /// rest of the segment is zero.
    End,
    /// A frame that is not valid.
    Damaged { kind: TailDamage, detail: String },
    /// A valid frame header whose first record is later than the expected one.
    Ahead { found: u64 },
}

#[derive(Debug)]
pub(crate) struct Scan {
    /// Offsets of the records of the valid frames.
    pub offsets: Vec<u32>,
    /// Valid frames.
    pub frames: u64,
    /// Offset just past the last valid frame.
    pub end: u64,
    /// Sequence number after the last valid record.
    pub end_seq: u64,
    /// Offset and length of the last valid frame.
    pub last_frame: Option<(u64, u64)>,
    pub stop: Stop,
}

/// Reads the frames of a segment from its first, stopping at the first that is not a
/// valid frame starting with the expected record. `visit` sees every record of every
/// valid frame, in order, once its frame is checked whole.
pub(crate) fn scan_frames(
    reader: &mut ChunkReader<'_>,
    header: &SegmentHeader,
    visit: &mut dyn FnMut(RecordAt<'_>),
) -> io::Result<Scan> {
    let size = header.segment_bytes;
    let mut offsets = Vec::new();
    let mut x = SEGMENT_HEADER_BYTES as u64;
    let mut seq = header.first_seq;
    let mut last_frame = None;
    let mut frames = 0;
    let stop = loop {
        if x + FRAME_HEADER_BYTES as u64 > size {
            break Stop::End;
        }
        let head = reader.get(x, FRAME_HEADER_BYTES)?;
        let frame = match FrameHeader::decode(head) {
            Ok(frame) => frame,
            Err(FormatError::Zeroed) => break Stop::End,
            Err(FormatError::Truncated { .. }) if format::is_zero(head) => break Stop::End,
            Err(e) => {
                break Stop::Damaged {
                    kind: TailDamage::Torn,
                    detail: format!("invalid frame header ({e})"),
                };
            }
        };
        if frame.first_seq != seq {
            if frame.first_seq > seq {
                break Stop::Ahead {
                    found: frame.first_seq,
                };
            }
            break Stop::Damaged {
                kind: TailDamage::ChecksumMismatch,
                detail: format!(
                    "the frame header names record {} where record {seq} belongs",
                    frame.first_seq
                ),
            };
        }
        let frame_end = x + frame.frame_len();
        if frame_end > size {
            break Stop::Damaged {
                kind: TailDamage::Torn,
                detail: format!(
                    "a frame of {} bytes runs past the end of the segment",
                    frame.frame_len()
                ),
            };
        }
        let body_len = frame.body_len as usize;
        let body = reader.get(x + FRAME_HEADER_BYTES as u64, body_len)?;
        if body.len() < body_len {
            break Stop::Damaged {
                kind: TailDamage::Torn,
                detail: "a frame runs past the end of the file".into(),
            };
        }
        match decode_frame_body(&frame, body) {
            Ok(records) => {
                let base = x + FRAME_HEADER_BYTES as u64;
                offsets.extend(records.map(|r| {
                    let offset = base + r.offset as u64;
                    visit(RecordAt {
                        seq: r.seq,
                        offset,
                        payload: r.payload,
                    });
                    offset_u32(offset)
                }));
                frames += 1;
                seq += u64::from(frame.record_count);
                last_frame = Some((x, frame.frame_len()));
                x = frame_end;
            }
            Err(e) => {
                // The trailing zeros say whether the write stopped early (a torn write) or
                // the bytes changed after being written. Only a diagnosis: both are handled
                // the same way.
                let trailing_zeros = body_len - format::last_nonzero(body).map_or(0, |i| i + 1);
                let kind = if trailing_zeros >= format::ALIGN {
                    TailDamage::Torn
                } else {
                    TailDamage::ChecksumMismatch
                };
                break Stop::Damaged {
                    kind,
                    detail: format!(
                        "the frame of records {seq}..{} is damaged ({e})",
                        seq + u64::from(frame.record_count)
                    ),
                };
            }
        }
    };
    Ok(Scan {
        offsets,
        frames,
        end: x,
        end_seq: seq,
        last_frame,
        stop,
    })
}

/// The offset of the last non-zero byte in `[from, to)`, reading it all.
pub(crate) fn last_nonzero_in(
    reader: &mut ChunkReader<'_>,
    from: u64,
    to: u64,
) -> io::Result<Option<u64>> {
    let mut last = None;
    let mut at = from;
    while at < to {
        let want = SCAN_CHUNK_BYTES.min((to - at) as usize);
        let chunk = reader.get(at, want)?;
        if chunk.is_empty() {
            break; // end of file
        }
        if let Some(i) = format::last_nonzero(chunk) {
            last = Some(at + i as u64);
        }
        at += chunk.len() as u64;
    }
    Ok(last)
}

/// Looks at every 8-byte boundary in `[from, to)` for a frame header with a valid CRC whose
/// first record is after `expected`: proof that a frame was written after the damaged one,
/// which the writer only does once the damaged one was acknowledged.
pub(crate) fn find_later_frame(
    reader: &mut ChunkReader<'_>,
    from: u64,
    to: u64,
    expected: u64,
) -> io::Result<Option<(u64, u64)>> {
    debug_assert!(from.is_multiple_of(format::ALIGN as u64));
    let mut at = from;
    while at + FRAME_HEADER_BYTES as u64 <= to {
        let want = SCAN_CHUNK_BYTES.min((to - at) as usize);
        let chunk = reader.get(at, want)?;
        if chunk.len() < FRAME_HEADER_BYTES {
            break;
        }
        let mut i = 0;
        while i + FRAME_HEADER_BYTES <= chunk.len() {
            if chunk[i..i + 4] == FRAME_MAGIC
                && let Ok(frame) = FrameHeader::decode(&chunk[i..])
                && frame.first_seq > expected
            {
                return Ok(Some((at + i as u64, frame.first_seq)));
            }
            i += format::ALIGN;
        }
        // Headers that straddle the chunk's end are looked at from the next chunk.
        at += i as u64;
    }
    Ok(None)
}

/// Overwrites `[from, to)` with zeros.
fn zero_range(file: &dyn StorageFile, from: u64, to: u64) -> io::Result<()> {
    let zeros = vec![0u8; SCAN_CHUNK_BYTES.min((to - from) as usize)];
    let mut at = from;
    while at < to {
        let n = zeros.len().min((to - at) as usize);
        write_all_at(file, &zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// Reads a file through a large buffer, so that scanning many small frames costs few
/// reads.
pub(crate) struct ChunkReader<'f> {
    file: &'f dyn StorageFile,
    /// Never read at or past this offset.
    limit: u64,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    start: u64,
    /// Valid bytes in `buf`.
    len: usize,
}

impl<'f> ChunkReader<'f> {
    pub(crate) fn new(file: &'f dyn StorageFile, limit: u64) -> Self {
        ChunkReader {
            file,
            limit,
            buf: Vec::new(),
            start: 0,
            len: 0,
        }
    }

    /// The bytes `[offset, offset + len)`, fewer if the limit or the end of the file comes
    /// first.
    pub(crate) fn get(&mut self, offset: u64, len: usize) -> io::Result<&[u8]> {
        let end = offset.saturating_add(len as u64).min(self.limit);
        if offset >= end {
            return Ok(&[]);
        }
        let buffered_end = self.start + self.len as u64;
        if offset < self.start || end > buffered_end {
            let want = ((end - offset) as usize)
                .max(SCAN_CHUNK_BYTES)
                .min((self.limit - offset) as usize);
            if self.buf.len() < want {
                self.buf.resize(want, 0);
            }
            self.len = read_full_at(self.file, &mut self.buf[..want], offset)?;
            self.start = offset;
        }
        let from = (offset - self.start) as usize;
        let to = ((end - self.start) as usize).min(self.len);
        Ok(&self.buf[from.min(to)..to])
    }
}
