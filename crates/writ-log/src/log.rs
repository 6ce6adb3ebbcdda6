//! The writer: staging records, group commit, segment rolls.
//!
//! Commit protocol (see `docs/log-format.md` for the argument why an acknowledged record
//! survives a crash):
//! 1. `append` encodes each record straight into the pending frame buffer (header, CRC over
//!    sequence number and payload, padding): no allocation per record.
//! 2. `commit` fills in the frame header (body CRC computed once over the contiguous body),
//!    rolls to a new segment first if the frame does not fit, writes the frame with one
//!    positional write (looping only over short writes) into the preallocated segment,
//!    with the zeros after it to the end of its last page (so that the kernel never reads
//!    a page it is about to overwrite), and calls `sync_data` once.
//! 3. Only after the sync returned are the batch's offsets published to the index and the
//!    durable end advanced; readers never see a record before it is durable.
//! 4. Any write or sync error poisons the log: a retried `fsync` may report success for
//!    pages the kernel already dropped, so the only safe continuation is a reopen, whose
//!    recovery decides from the disk what survived.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{AppendError, CommitError, OpenError};
use crate::format::{
    self, FRAME_HEADER_BYTES, FrameHeader, SEGMENT_HEADER_BYTES, SegmentHeader, SegmentIndexFile,
};
use crate::index::{Index, SegmentEntry, SegmentFile, Shared};
use crate::options::{LogOptions, OpenReport};
use crate::prealloc::Preallocator;
use crate::reader::LogReader;
use crate::recovery::{self, ActiveSegment};
use crate::segment::{SPARE_NAME, install_segment, prepare_file, write_index_file};
use crate::storage::{self, Storage, write_all_at};

/// Capacity of the frame buffer kept between commits; a larger one (after a huge batch) is
/// shrunk back to this.
const FRAME_BUF_RETAIN_BYTES: usize = 8 << 20;

/// The single writer of one log directory. See the crate documentation.
pub struct Log {
    shared: Arc<Shared>,
    dir: PathBuf,
    options: LogOptions,
    active: ActiveSegment,
    /// The pending frame: a header placeholder, then the encoded records.
    frame: Vec<u8>,
    /// Offset of each pending record's header from the start of the frame.
    pending: Vec<u32>,
    durable_seq: u64,
    poisoned: bool,
    prealloc: Option<Preallocator>,
    /// The index file of a segment sealed by the current commit's roll, written (without
    /// a preallocator thread) once the commit is durable.
    sidecar: Option<(u64, Vec<u8>)>,
    /// The largest frame a segment of `options.segment_bytes` holds.
    max_frame_bytes: usize,
    /// Rolls that took a spare whose zero fill had not finished (see [`Log::unfilled_rolls`]).
    unfilled_rolls: u64,
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.dir)
            .field("segment", &self.active.path)
            .field("write_offset", &self.active.write_offset)
            .field("durable_seq", &self.durable_seq)
            .field("pending_records", &self.pending.len())
            .field("poisoned", &self.poisoned)
            .field("prealloc", &self.prealloc)
            .finish_non_exhaustive()
    }
}

impl Log {
    /// Opens the log in `dir` (relative to the storage root), creating it if missing, and
    /// recovers it: a torn or corrupt tail is truncated and reported; damage before the tail
    /// is refused with [`OpenError::Corrupt`].
    pub fn open(
        storage: Arc<dyn Storage>,
        dir: &Path,
        options: LogOptions,
    ) -> Result<(Log, OpenReport), OpenError> {
        options
            .validate()
            .map_err(|detail| OpenError::InvalidOptions { detail })?;
        let recovered = recovery::recover(&*storage, dir, &options)?;
        let shared = Arc::new(Shared::new(
            Arc::clone(&storage),
            Index {
                segments: recovered.segments,
            },
            recovered.next_seq,
            options.open_segments_max,
        ));
        // Without the thread (it could not be spawned, or preallocation is off) segments
        // are prepared inline when the writer rolls.
        let prealloc = if options.preallocate {
            Preallocator::start(storage, dir.to_path_buf()).ok()
        } else {
            None
        };
        let max_frame_bytes = (options.segment_bytes as usize) - SEGMENT_HEADER_BYTES;
        let mut frame = Vec::with_capacity(64 << 10);
        frame.resize(FRAME_HEADER_BYTES, 0);
        let mut log = Log {
            shared,
            dir: dir.to_path_buf(),
            options,
            active: recovered.active,
            frame,
            pending: Vec::new(),
            durable_seq: recovered.next_seq,
            poisoned: false,
            prealloc,
            sidecar: None,
            max_frame_bytes,
            unfilled_rolls: 0,
        };
        log.maybe_request_spare();
        Ok((log, recovered.report))
    }

    /// Stages one record in the pending batch and returns its sequence number. Not durable
    /// until [`Log::commit`] returns.
    pub fn append(&mut self, record: &[u8]) -> Result<u64, AppendError> {
        if self.poisoned {
            return Err(AppendError::Poisoned);
        }
        if record.len() > self.options.record_bytes_max {
            return Err(AppendError::RecordTooLarge {
                size: record.len(),
                max: self.options.record_bytes_max,
            });
        }
        let encoded = format::encoded_record_len(record.len());
        if self.frame.len() + encoded > self.max_frame_bytes {
            return Err(AppendError::BatchFull {
                pending_bytes: self.pending_bytes(),
            });
        }
        let seq = self.next_seq();
        // The frame is at most a segment, which u32 addresses.
        let offset = self.frame.len() as u32;
        format::encode_record(&mut self.frame, seq, record);
        self.pending.push(offset);
        debug_assert_eq!(self.frame.len() % format::ALIGN, 0);
        Ok(seq)
    }

    /// Writes the pending batch as one frame and syncs it. Returns the durable end: every
    /// record with a smaller sequence number is durable. With nothing pending it returns at
    /// once without I/O. On error the log is poisoned.
    pub fn commit(&mut self) -> Result<u64, CommitError> {
        if self.poisoned {
            return Err(CommitError::Poisoned);
        }
        if self.pending.is_empty() {
            return Ok(self.durable_seq);
        }
        let first_seq = self.durable_seq;
        let count = self.pending.len();
        let body = &self.frame[FRAME_HEADER_BYTES..];
        let header = FrameHeader {
            first_seq,
            record_count: count as u32,
            body_len: body.len() as u32,
            body_crc: crc32c::crc32c(body),
        };
        self.frame[..FRAME_HEADER_BYTES].copy_from_slice(&header.encode());
        let frame_len = self.frame.len() as u64;
        debug_assert!(frame_len <= self.max_frame_bytes as u64);

        if self.active.write_offset + frame_len > self.active.size
            && let Err((path, source)) = self.roll(first_seq)
        {
            self.poisoned = true;
            return Err(CommitError::Io { path, source });
        }
        let offset = self.active.write_offset;
        debug_assert!(offset + frame_len <= self.active.size);
        // The write runs on with zeros to the end of the frame's last page (within the
        // segment). Past the log's end a segment holds zeros (preallocated, or zeroed by
        // recovery), so no byte changes and that page is written back at this sync anyway;
        // but a page written whole is not read first. The pages ahead of the end are not
        // in the page cache (the zero fill goes around it), so without this the first frame
        // into each page would wait inside the write for that page to be read from disk.
        let padded_end = (offset + frame_len)
            .next_multiple_of(storage::page_bytes())
            .min(self.active.size);
        self.frame.resize(
            self.frame.len() + (padded_end - offset - frame_len) as usize,
            0,
        );
        let file = &*self.active.file;
        if let Err(source) = write_all_at(file, &self.frame, offset).and_then(|()| file.sync_data())
        {
            // Never retry: after a failed fsync the kernel may have dropped the dirty pages
            // and a second fsync would report success. Recovery at the next open decides.
            self.poisoned = true;
            return Err(CommitError::Io {
                path: self.active.path.to_path_buf(),
                source,
            });
        }

        // Durable: publish to the index first, then the durable end.
        let durable = first_seq + count as u64;
        let end = offset + frame_len;
        {
            let mut index = self.shared.write_index();
            if let Some(segment) = index.segments.last_mut() {
                debug_assert_eq!(segment.first_seq, self.active.first_seq);
                debug_assert_eq!(segment.end_seq(), first_seq);
                let base = offset as u32;
                segment
                    .offsets
                    .extend(self.pending.iter().map(|&at| base + at));
                segment.end = end as u32;
            }
        }
        self.shared.set_durable(durable);
        self.durable_seq = durable;
        self.active.write_offset = end;
        self.active.records += count as u64;

        self.frame.truncate(FRAME_HEADER_BYTES);
        if self.frame.capacity() > FRAME_BUF_RETAIN_BYTES {
            self.frame.shrink_to(FRAME_BUF_RETAIN_BYTES);
        }
        self.pending.clear();
        self.write_pending_sidecar();
        self.maybe_request_spare();
        Ok(durable)
    }

    /// The sequence number the next appended record will get.
    pub fn next_seq(&self) -> u64 {
        self.durable_seq + self.pending.len() as u64
    }

    /// The first sequence number that is not durable.
    pub fn durable_seq(&self) -> u64 {
        self.durable_seq
    }

    /// Records staged and not yet committed.
    pub fn pending_records(&self) -> usize {
        self.pending.len()
    }

    /// Bytes staged and not yet committed, framing included.
    pub fn pending_bytes(&self) -> usize {
        if self.pending.is_empty() {
            0
        } else {
            self.frame.len()
        }
    }

    /// Whether records of these lengths, appended now, would all go into the pending frame
    /// (so that one commit makes them durable together) without a [`AppendError::BatchFull`].
    pub fn fits(&self, record_lens: impl IntoIterator<Item = usize>) -> bool {
        let mut frame = self.frame.len();
        for len in record_lens {
            frame += format::encoded_record_len(len);
            if frame > self.max_frame_bytes {
                return false;
            }
        }
        true
    }

    /// Whether an earlier I/O failure poisoned the log.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// How many segment rolls since open took a spare segment before its zero fill was done
    /// (the writer outran the disk's zero fill, so part of the segment is a hole; see
    /// [`LogOptions::preallocate`]). Frequent ones say the log writes close to the disk's
    /// bandwidth.
    pub fn unfilled_rolls(&self) -> u64 {
        self.unfilled_rolls
    }

    /// Segment files the log holds open: the live segment's and the sealed segments' in
    /// the bounded cache (at most [`LogOptions::open_segments_max`]). Not counted: the
    /// preallocated spare, and a closed file a reader still holds until its read is done.
    pub fn open_segment_files(&self) -> usize {
        self.shared.open_segment_files()
    }

    /// Sealed segments' files opened by readers since the log was opened (each a reopen
    /// once the cache closed it).
    pub fn segment_opens(&self) -> u64 {
        self.shared.files.opens()
    }

    /// A reader of this log's durable records.
    pub fn reader(&self) -> LogReader {
        LogReader::new(Arc::clone(&self.shared))
    }

    /// The options the log was opened with.
    pub fn options(&self) -> &LogOptions {
        &self.options
    }

    /// The segment file the next commit writes to (unless it rolls), relative to the
    /// storage root.
    pub fn active_segment(&self) -> &Path {
        &self.active.path
    }

    /// Asks the preallocator for the next segment once the active one is half full, so that
    /// it is ready (zero-filled and synced) by the time the writer rolls.
    fn maybe_request_spare(&mut self) {
        if let Some(prealloc) = &mut self.prealloc {
            prealloc.poll();
            if self.active.write_offset > self.active.size / 2 {
                prealloc.request_spare(self.options.segment_bytes);
            }
        }
    }

    /// Seals the active segment and makes a new one, starting at `first_seq`, the active
    /// one. On return the new segment is durable under its name (header synced, renamed,
    /// directory synced), so records written into it can be acknowledged.
    fn roll(&mut self, first_seq: u64) -> Result<(), (PathBuf, io::Error)> {
        debug_assert!(!self.poisoned);
        debug_assert_eq!(first_seq, self.durable_seq);
        // Every frame of the active segment was synced by its own commit, so the sealed
        // segment is complete and durable before anything goes into the next one.
        let storage = Arc::clone(&self.shared.storage);
        let size = self.options.segment_bytes;
        let spare_path = self.dir.join(SPARE_NAME);
        let spare = match self.prealloc.as_mut().and_then(Preallocator::take_spare) {
            Some(Ok(spare)) if spare.size == size => {
                if spare.zeroed < size {
                    self.unfilled_rolls += 1;
                }
                Some(spare.file)
            }
            // A failed or mis-sized spare: prepare one inline instead. Nothing durable
            // depended on it, so this is no retry of a failed sync.
            _ => None,
        };
        let file = match spare {
            Some(file) => file,
            None => {
                // No zero fill here: it would stall every commit behind this roll, the
                // very wait a hurried spare avoids. The file is a hole, as a hurried
                // spare's unfilled part is.
                if self.options.preallocate {
                    self.unfilled_rolls += 1;
                }
                let prepared = prepare_file(&*storage, &spare_path, size, false, None, None)
                    .map_err(|e| (spare_path.clone(), e))?;
                prepared.file
            }
        };
        let header = SegmentHeader {
            first_seq,
            segment_bytes: size,
        };
        let path: Arc<Path> = Arc::from(install_segment(
            &*storage,
            &self.dir,
            &spare_path,
            &*file,
            &header,
        )?);

        let sealed_empty = self.active.records == 0;
        // The sealed segment's index file, encoded under the read lock (only this writer
        // ever takes the write lock, so nothing waits for it).
        let sidecar = (!sealed_empty).then(|| {
            let index = self.shared.read_index();
            let offsets = index.segments.last().map_or(&[][..], |s| &s.offsets[..]);
            SegmentIndexFile::encode_parts(
                self.active.first_seq,
                self.active.header_crc,
                self.active.write_offset as u32,
                offsets,
            )
        });
        let sealed_file = {
            let mut index = self.shared.write_index();
            let sealed = if sealed_empty {
                // An empty segment with this same first record (smaller than the frame, from
                // older options) was replaced by the rename.
                index.segments.pop();
                None
            } else {
                index.segments.last().map(|s| Arc::clone(&s.file))
            };
            index.segments.push(SegmentEntry {
                first_seq,
                path: Arc::clone(&path),
                file: SegmentFile::live(Arc::clone(&file)),
                offsets: Vec::new(),
                end: SEGMENT_HEADER_BYTES as u32,
            });
            sealed
        };
        // The sealed segment's file (the writer's handle) joins the bounded cache of
        // sealed segments' files, which may close it or another.
        if let Some(sealed) = sealed_file {
            self.shared.files.seal(&sealed);
        }
        let sealed_seq = self.active.first_seq;
        self.active = ActiveSegment {
            first_seq,
            path,
            file,
            size,
            write_offset: SEGMENT_HEADER_BYTES as u64,
            header_crc: header.checksum(),
            records: 0,
        };
        if let Some(bytes) = sidecar {
            match &mut self.prealloc {
                Some(prealloc) => {
                    if let Err(bytes) = prealloc.write_index(sealed_seq, bytes) {
                        self.sidecar = Some((sealed_seq, bytes));
                    }
                }
                None => self.sidecar = Some((sealed_seq, bytes)),
            }
        }
        Ok(())
    }

    /// Writes the index file of the segment sealed by this commit's roll, after the
    /// commit's frame is durable so that it does not delay the batch's sync. Best effort:
    /// a missing index file is rebuilt by the next open.
    fn write_pending_sidecar(&mut self) {
        if let Some((first_seq, bytes)) = self.sidecar.take() {
            let _ = write_index_file(&*self.shared.storage, &self.dir, first_seq, &bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::storage::{SimStorage, StorageFile};

    /// Rolls into segments not zero-filled in full keep every acknowledged record through a
    /// power cut. Deterministic: the hurry flag is up before each commit, so every spare's
    /// fill stops after at most its first chunk (and a roll without a spare fills none).
    #[test]
    fn records_in_hurried_segments_survive_a_power_cut() {
        let sim = SimStorage::new();
        let options = LogOptions {
            segment_bytes: 4 << 20,
            record_bytes_max: 256 << 10,
            preallocate: true,
            ..LogOptions::default()
        };
        let dir = Path::new("log");
        let (mut log, _) = Log::open(Arc::new(sim.clone()), dir, options.clone()).unwrap();
        let record = |seq: u64| vec![(seq % 251) as u8 + 1; 200 << 10];
        let records = 60;
        for seq in 0..records {
            let prealloc = log.prealloc.as_ref().expect("preallocate is on");
            prealloc.hurry.store(true, Ordering::Relaxed);
            assert_eq!(log.append(&record(seq)).unwrap(), seq);
            log.commit().unwrap();
        }
        assert!(
            log.unfilled_rolls() >= 2,
            "the test must roll into hurried spares: {} unfilled rolls",
            log.unfilled_rolls()
        );
        // A power cut right after the last commit returned.
        let crashed = sim.crash();
        drop(log);
        assert_all_read_back(crashed, dir, options, records, record);
    }

    /// Opens the log in `dir` of `crashed` (what a power cut left) and checks that it holds
    /// `records` records, each as `record` makes it, with nothing truncated.
    fn assert_all_read_back(
        crashed: SimStorage,
        dir: &Path,
        options: LogOptions,
        records: u64,
        record: impl Fn(u64) -> Vec<u8>,
    ) {
        let (recovered, report) = Log::open(Arc::new(crashed), dir, options).unwrap();
        assert_eq!(report.records, records);
        assert_eq!(report.truncated, None);
        let reader = recovered.reader();
        let mut buf = Vec::new();
        for seq in 0..records {
            reader.read(seq, &mut buf).unwrap();
            assert!(buf == record(seq), "record {seq} reads back");
        }
    }

    /// The writes a [`Recording`] saw: offset and length.
    type Writes = Arc<std::sync::Mutex<Vec<(u64, usize)>>>;

    /// A storage that records the writes into segment files (`.wlog`, `.wlog.tmp`): offset
    /// and length.
    #[derive(Debug)]
    struct Recording {
        inner: SimStorage,
        writes: Writes,
    }

    #[derive(Debug)]
    struct RecordingFile {
        inner: Arc<dyn StorageFile>,
        writes: Option<Writes>,
    }

    impl Recording {
        fn wrap(&self, path: &Path, file: Arc<dyn StorageFile>) -> Arc<dyn StorageFile> {
            // Segments are created under a temporary name and renamed.
            let segment = path.to_string_lossy().contains(".wlog");
            Arc::new(RecordingFile {
                inner: file,
                writes: segment.then(|| Arc::clone(&self.writes)),
            })
        }
    }

    impl Storage for Recording {
        fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
            self.inner.create_dir_all(dir)
        }
        fn list(&self, dir: &Path) -> std::io::Result<Vec<String>> {
            self.inner.list(dir)
        }
        fn open(&self, path: &Path) -> std::io::Result<Arc<dyn StorageFile>> {
            Ok(self.wrap(path, self.inner.open(path)?))
        }
        fn create(&self, path: &Path) -> std::io::Result<Arc<dyn StorageFile>> {
            Ok(self.wrap(path, self.inner.create(path)?))
        }
        fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
            self.inner.rename(from, to)
        }
        fn remove(&self, path: &Path) -> std::io::Result<()> {
            self.inner.remove(path)
        }
        fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
            self.inner.sync_dir(dir)
        }
    }

    impl StorageFile for RecordingFile {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
            self.inner.read_at(buf, offset)
        }
        fn write_at(&self, buf: &[u8], offset: u64) -> std::io::Result<usize> {
            if let Some(writes) = &self.writes {
                writes.lock().unwrap().push((offset, buf.len()));
            }
            self.inner.write_at(buf, offset)
        }
        fn sync_data(&self) -> std::io::Result<()> {
            self.inner.sync_data()
        }
        fn len(&self) -> std::io::Result<u64> {
            self.inner.len()
        }
        fn set_len(&self, len: u64) -> std::io::Result<()> {
            self.inner.set_len(len)
        }
    }

    /// Each commit writes its frame and the zeros after it to the end of the frame's last
    /// page, so that the kernel need not read that page from the disk before the write
    /// (the zero fill leaves the pages ahead of the log's end out of the page cache); and
    /// the zeros change nothing: every record reads back, and after a power cut too.
    #[test]
    fn a_commit_writes_whole_pages_and_changes_no_byte_past_the_frame() {
        let sim = SimStorage::new();
        let writes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let storage = Recording {
            inner: sim.clone(),
            writes: Arc::clone(&writes),
        };
        let segment_bytes: u64 = 64 << 10;
        let options = LogOptions {
            segment_bytes,
            record_bytes_max: 16 << 10,
            preallocate: false,
            ..LogOptions::default()
        };
        let dir = Path::new("log");
        let (mut log, _) = Log::open(Arc::new(storage), dir, options.clone()).unwrap();
        // Records of several sizes, one to four per commit, over a few segments.
        let record = |seq: u64| vec![(seq % 251) as u8 + 1; 100 + (seq as usize * 37) % 900];
        let page = storage::page_bytes();
        let mut seq = 0;
        let mut commits = 0;
        while seq < 400 {
            for _ in 0..=(seq % 4) {
                assert_eq!(log.append(&record(seq)).unwrap(), seq);
                seq += 1;
            }
            let written_before = writes.lock().unwrap().len();
            log.commit().unwrap();
            commits += 1;
            let writes = writes.lock().unwrap();
            // The frame's write is the commit's last (a roll writes a header first).
            let &(offset, len) = writes[written_before..].last().expect("the frame's write");
            let end = offset + len as u64;
            assert!(
                end.is_multiple_of(page) || end == segment_bytes,
                "commit {commits}: the write {offset}..{end} ends inside a page of {page}"
            );
            assert!(
                end - log.active.write_offset < page,
                "padded by less than a page"
            );
        }
        assert!(log.active.first_seq > 0, "the test must roll");
        // Past the log's end the segment still reads as zeros.
        let active = sim.read_written(&log.active.path).unwrap();
        assert!(crate::format::is_zero(
            &active[usize::try_from(log.active.write_offset).unwrap()..]
        ));
        let crashed = sim.crash();
        drop(log);
        assert_all_read_back(crashed, dir, options, seq, record);
    }
}
