//! Readers of durable records: point reads by sequence number and sequential iteration.
//!
//! Both check every record's CRC (which covers its sequence number) on every read, so a
//! bit flip, a torn sector or a read from the wrong place is reported as
//! [`ReadError::Corrupt`], never returned as data.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::ReadError;
use crate::format::{RECORD_HEADER_BYTES, decode_record};
use crate::index::Shared;
use crate::storage::{StorageFile, read_full_at};

/// Bytes a [`LogIter`] reads at once (more when one record is larger).
const ITER_CHUNK_BYTES: usize = 1 << 20;

/// Reads durable records while the writer goes on. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct LogReader {
    shared: Arc<Shared>,
}

impl fmt::Debug for LogReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogReader")
            .field("durable_seq", &self.durable_seq())
            .finish()
    }
}

impl LogReader {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        LogReader { shared }
    }

    /// The first sequence number that is not durable: records `0..durable_seq()` can be read.
    pub fn durable_seq(&self) -> u64 {
        self.shared.durable_seq()
    }

    /// Reads record `seq` into `buf` (cleared first), checking its checksum.
    pub fn read(&self, seq: u64, buf: &mut Vec<u8>) -> Result<(), ReadError> {
        buf.clear();
        let durable = self.durable_seq();
        let out_of_range = ReadError::OutOfRange { seq, durable };
        if seq >= durable {
            return Err(out_of_range);
        }
        let Some(at) = self.shared.locate(seq) else {
            return Err(out_of_range);
        };
        let file = self
            .shared
            .file(&at.path, &at.file)
            .map_err(|source| ReadError::Io {
                path: at.path.to_path_buf(),
                source,
            })?;
        debug_assert!(at.bound > at.offset);
        let span = (at.bound - at.offset) as usize;
        buf.resize(span, 0);
        let n = read_full_at(&*file, buf, at.offset).map_err(|source| ReadError::Io {
            path: at.path.to_path_buf(),
            source,
        })?;
        match decode_record(&buf[..n], seq) {
            Ok((payload, _)) => {
                let len = payload.len();
                buf.copy_within(RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + len, 0);
                buf.truncate(len);
                Ok(())
            }
            Err(e) => {
                buf.clear();
                Err(ReadError::Corrupt {
                    seq,
                    path: at.path.to_path_buf(),
                    offset: at.offset,
                    detail: e.to_string(),
                })
            }
        }
    }

    /// Segment files the log holds open; see [`Log::open_segment_files`](crate::Log::open_segment_files).
    pub fn open_segment_files(&self) -> usize {
        self.shared.open_segment_files()
    }

    /// Sealed segments' files opened by readers; see
    /// [`Log::segment_opens`](crate::Log::segment_opens).
    pub fn segment_opens(&self) -> u64 {
        self.shared.files.opens()
    }

    /// Iterates records in order from `from` up to the durable end as of this call.
    pub fn iter_from(&self, from: u64) -> LogIter {
        self.iter_from_reusing(from, Vec::new())
    }

    /// [`LogReader::iter_from`] reading into `buf` (its contents are overwritten): a
    /// follower that hands back the buffer of its last iterator
    /// ([`LogIter::into_buffer`]) reads without allocating and zeroing one each time.
    pub fn iter_from_reusing(&self, from: u64, buf: Vec<u8>) -> LogIter {
        LogIter {
            shared: Arc::clone(&self.shared),
            next: from,
            end: self.durable_seq(),
            segment: None,
            buf,
            buf_offset: 0,
            buf_len: 0,
            failed: false,
        }
    }
}

/// The part of one segment's index an iterator walks, copied under the read lock once per
/// segment.
struct IterSegment {
    path: Arc<Path>,
    file: Arc<dyn StorageFile>,
    /// Sequence number of `offsets[0]`.
    base_seq: u64,
    offsets: Vec<u32>,
    /// The last record in `offsets` ends at or before this offset.
    bound: u64,
}

/// Sequential reader; reads segments in large chunks and checks every checksum.
///
/// After an error the iterator is finished: every later call returns `None`.
pub struct LogIter {
    shared: Arc<Shared>,
    next: u64,
    end: u64,
    segment: Option<IterSegment>,
    buf: Vec<u8>,
    /// Segment offset of `buf[0]`.
    buf_offset: u64,
    /// Valid bytes in `buf`.
    buf_len: usize,
    failed: bool,
}

impl fmt::Debug for LogIter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogIter")
            .field("next", &self.next)
            .field("end", &self.end)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl LogIter {
    /// The sequence number the next call returns, if records remain.
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// The end (exclusive) fixed when the iterator was made.
    pub fn end_seq(&self) -> u64 {
        self.end
    }

    /// The iterator's read buffer, for the next one ([`LogReader::iter_from_reusing`]).
    pub fn into_buffer(self) -> Vec<u8> {
        self.buf
    }

    /// The next record as `(seq, payload)`, or `None` at the end fixed when the iterator was
    /// made. The payload borrows from the iterator's buffer.
    pub fn next_record(&mut self) -> Option<Result<(u64, &[u8]), ReadError>> {
        if self.failed || self.next >= self.end {
            return None;
        }
        match self.position() {
            Ok((start, stop)) => {
                let seq = self.next;
                let bytes = &self.buf[start..stop];
                match decode_record(bytes, seq) {
                    Ok((payload, _)) => {
                        self.next += 1;
                        Some(Ok((seq, payload)))
                    }
                    Err(e) => {
                        self.failed = true;
                        let (path, offset) = match &self.segment {
                            Some(s) => (s.path.to_path_buf(), self.buf_offset + start as u64),
                            None => (PathBuf::new(), 0),
                        };
                        Some(Err(ReadError::Corrupt {
                            seq,
                            path,
                            offset,
                            detail: e.to_string(),
                        }))
                    }
                }
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }

    /// Makes sure record `self.next` is in the buffer; returns its range there.
    fn position(&mut self) -> Result<(usize, usize), ReadError> {
        let seq = self.next;
        let reload = match &self.segment {
            Some(s) => seq < s.base_seq || seq - s.base_seq >= s.offsets.len() as u64,
            None => true,
        };
        if reload {
            self.load_segment(seq)?;
        }
        let Some(segment) = &self.segment else {
            return Err(self.out_of_range(seq));
        };
        let at = (seq - segment.base_seq) as usize;
        let offset = u64::from(segment.offsets[at]);
        let bound = segment
            .offsets
            .get(at + 1)
            .map_or(segment.bound, |&o| u64::from(o));
        let buffered =
            offset >= self.buf_offset && bound <= self.buf_offset + self.buf_len as u64 && !reload;
        if !buffered {
            // Read from this record on, a large chunk or the whole record if larger, but
            // not past the last record this iterator will return from the segment.
            let want = ((bound - offset) as usize)
                .max(ITER_CHUNK_BYTES)
                .min((segment.bound - offset) as usize);
            if self.buf.len() < want {
                self.buf.resize(want, 0);
            }
            let n =
                read_full_at(&*segment.file, &mut self.buf[..want], offset).map_err(|source| {
                    ReadError::Io {
                        path: segment.path.to_path_buf(),
                        source,
                    }
                })?;
            self.buf_offset = offset;
            self.buf_len = n;
            if (n as u64) < bound - offset {
                return Err(ReadError::Corrupt {
                    seq,
                    path: segment.path.to_path_buf(),
                    offset,
                    detail: format!(
                        "the segment ends at byte {} inside the record",
                        offset + n as u64
                    ),
                });
            }
        }
        let start = (offset - self.buf_offset) as usize;
        let stop = (bound - self.buf_offset) as usize;
        Ok((start, stop))
    }

    /// Copies the index of the segment holding `seq`, from `seq` up to `self.end`.
    fn load_segment(&mut self, seq: u64) -> Result<(), ReadError> {
        self.segment = None;
        self.buf_len = 0;
        let (path, cell, offsets, bound) = {
            let index = self.shared.read_index();
            let Some((segment, at)) = index.locate(seq) else {
                return Err(self.out_of_range(seq));
            };
            let available = segment.offsets.len() - at;
            let take = available.min(usize::try_from(self.end - seq).unwrap_or(usize::MAX));
            let offsets = segment.offsets[at..at + take].to_vec();
            let bound = segment
                .offsets
                .get(at + take)
                .copied()
                .unwrap_or(segment.end);
            (
                Arc::clone(&segment.path),
                Arc::clone(&segment.file),
                offsets,
                u64::from(bound),
            )
        };
        let file = self
            .shared
            .file(&path, &cell)
            .map_err(|source| ReadError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        self.segment = Some(IterSegment {
            path,
            file,
            base_seq: seq,
            offsets,
            bound,
        });
        Ok(())
    }

    fn out_of_range(&self, seq: u64) -> ReadError {
        ReadError::OutOfRange {
            seq,
            durable: self.shared.durable_seq(),
        }
    }
}
