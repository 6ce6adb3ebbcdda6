//! The byte layout of segments and frames; see `docs/log-format.md`. Public so that fuzz
//! targets and tools can decode bytes without opening a log.
//!
//! Every decoder here is a pure function of a byte slice: it returns a [`FormatError`] for
//! any input it does not accept and never panics, whatever the bytes (a proptest and the
//! `log_frame` fuzz target check this). All integers are little-endian.
//!
//! A segment is a [`SegmentHeader`] of [`SEGMENT_HEADER_BYTES`] followed by frames. A frame
//! is one committed batch: a [`FrameHeader`] of [`FRAME_HEADER_BYTES`] and a body of
//! records, each `[len u32][crc u32][payload][zero padding to 8 bytes]` where `crc` is
//! CRC32C over the record's sequence number (u64 LE) followed by the payload. Zero bytes
//! after the last frame mark the clean end of the log. A sealed segment may have a sidecar
//! index file, a [`SegmentIndexFile`].

use std::fmt;

/// Magic bytes at the start of a segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"WRITLOG\0";
/// Magic bytes at the start of a sidecar index file.
pub const INDEX_MAGIC: [u8; 8] = *b"WRITIDX\0";
/// Magic bytes at the start of a frame.
pub const FRAME_MAGIC: [u8; 4] = *b"WFRM";
/// The format version this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;
/// Size of the segment header; the first frame starts here.
pub const SEGMENT_HEADER_BYTES: usize = 64;
/// Size of a frame header.
pub const FRAME_HEADER_BYTES: usize = 32;
/// Size of a record header (`len`, `crc`).
pub const RECORD_HEADER_BYTES: usize = 8;
/// Frames, records and payloads start at multiples of this.
pub const ALIGN: usize = 8;
/// Size of the fixed part of a sidecar index file (before the offsets).
pub const INDEX_HEADER_BYTES: usize = 32;
/// Largest segment the format can address: offsets and body lengths are u32.
pub const SEGMENT_BYTES_MAX: u64 = (u32::MAX as u64) & !(ALIGN as u64 - 1);

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// Fewer bytes than the structure needs.
    #[error("truncated: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes the structure needs.
        needed: usize,
        /// Bytes given.
        available: usize,
    },
    /// The header is all zeros: for a frame header, the clean end of the log.
    #[error("all zeros")]
    Zeroed,
    /// The magic bytes do not match.
    #[error("bad magic bytes")]
    BadMagic,
    /// A format version newer than this build reads.
    #[error("unsupported format version {version} (this build reads up to {FORMAT_VERSION})")]
    UnsupportedVersion {
        /// The version found.
        version: u32,
    },
    /// A header's CRC32C does not match its bytes.
    #[error("header checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    HeaderChecksum {
        /// The CRC stored in the header.
        stored: u32,
        /// The CRC of the bytes.
        computed: u32,
    },
    /// A frame body's (or index file's) CRC32C does not match its bytes.
    #[error("body checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    BodyChecksum {
        /// The CRC stored in the header.
        stored: u32,
        /// The CRC of the bytes.
        computed: u32,
    },
    /// A record's CRC32C does not match its sequence number and payload.
    #[error("record {seq} checksum mismatch")]
    RecordChecksum {
        /// The sequence number the record was expected to have.
        seq: u64,
    },
    /// A field holds a value the format does not allow.
    #[error("invalid {field}: {value}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
    },
}

/// Rounds `len` up to the next multiple of [`ALIGN`].
#[inline]
pub const fn padded_len(len: usize) -> usize {
    (len + (ALIGN - 1)) & !(ALIGN - 1)
}

/// Bytes a record with a payload of `payload_len` bytes takes in a frame body.
#[inline]
pub const fn encoded_record_len(payload_len: usize) -> usize {
    RECORD_HEADER_BYTES + padded_len(payload_len)
}

/// The record CRC: CRC32C over `seq` (u64 LE) followed by `payload`. Including the sequence
/// number catches a record read from the wrong place (a misdirected write or read).
#[inline]
pub fn record_crc(seq: u64, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&seq.to_le_bytes()), payload)
}

/// Appends record `seq` to `out`: header, payload and zero padding.
///
/// # Panics
/// If the payload is longer than `u32::MAX` bytes (the log refuses such records first).
#[inline]
pub fn encode_record(out: &mut Vec<u8>, seq: u64, payload: &[u8]) {
    let len = u32::try_from(payload.len()).expect("record payload longer than u32::MAX");
    let start = out.len();
    let encoded = encoded_record_len(payload.len());
    out.reserve(encoded);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&record_crc(seq, payload).to_le_bytes());
    out.extend_from_slice(payload);
    out.resize(start + encoded, 0);
}

/// Decodes the record at the start of `bytes`, which must be record `seq`, and checks its
/// CRC. Returns the payload and the record's encoded length (header, payload, padding).
/// Padding bytes are not checked here: they are covered by the frame's body CRC.
pub fn decode_record(bytes: &[u8], seq: u64) -> Result<(&[u8], usize), FormatError> {
    let len = read_u32(bytes, 0)? as usize;
    let stored = read_u32(bytes, 4)?;
    let available = bytes.len() - RECORD_HEADER_BYTES;
    if len > available {
        return Err(FormatError::Truncated {
            needed: RECORD_HEADER_BYTES.saturating_add(len),
            available: bytes.len(),
        });
    }
    let payload = &bytes[RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + len];
    let encoded = encoded_record_len(len);
    if encoded > bytes.len() {
        return Err(FormatError::Truncated {
            needed: encoded,
            available: bytes.len(),
        });
    }
    if record_crc(seq, payload) != stored {
        return Err(FormatError::RecordChecksum { seq });
    }
    Ok((payload, encoded))
}

/// The fixed header at the start of every segment file.
///
/// ```text
///  0..8   magic          "WRITLOG\0"
///  8..12  version        u32 = 1
/// 12..16  header_bytes   u32 = 64
/// 16..24  first_seq      u64  sequence number of the segment's first record
/// 24..32  segment_bytes  u64  preallocated size of the file
/// 32..60  reserved       zero
/// 60..64  header_crc     u32  CRC32C of bytes 0..60
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Sequence number of the first record in the segment (also the file's name).
    pub first_seq: u64,
    /// The segment's preallocated size in bytes, header included.
    pub segment_bytes: u64,
}

impl SegmentHeader {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_BYTES] {
        let mut out = [0u8; SEGMENT_HEADER_BYTES];
        out[0..8].copy_from_slice(&SEGMENT_MAGIC);
        out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        out[12..16].copy_from_slice(&(SEGMENT_HEADER_BYTES as u32).to_le_bytes());
        out[16..24].copy_from_slice(&self.first_seq.to_le_bytes());
        out[24..32].copy_from_slice(&self.segment_bytes.to_le_bytes());
        let crc = crc32c::crc32c(&out[..60]);
        out[60..64].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// The header's CRC as stored in its encoding; a sidecar index names the segment
    /// header it belongs to by this value.
    pub fn checksum(&self) -> u32 {
        let bytes = self.encode();
        u32::from_le_bytes([bytes[60], bytes[61], bytes[62], bytes[63]])
    }

    /// Decodes and checks a segment header from the first [`SEGMENT_HEADER_BYTES`] of
    /// `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<SegmentHeader, FormatError> {
        let bytes = prefix(bytes, SEGMENT_HEADER_BYTES)?;
        if is_zero(bytes) {
            return Err(FormatError::Zeroed);
        }
        if bytes[0..8] != SEGMENT_MAGIC {
            return Err(FormatError::BadMagic);
        }
        let version = read_u32(bytes, 8)?;
        if version == 0 || version > FORMAT_VERSION {
            return Err(FormatError::UnsupportedVersion { version });
        }
        let stored = read_u32(bytes, 60)?;
        let computed = crc32c::crc32c(&bytes[..60]);
        if stored != computed {
            return Err(FormatError::HeaderChecksum { stored, computed });
        }
        let header_bytes = read_u32(bytes, 12)?;
        if header_bytes as usize != SEGMENT_HEADER_BYTES {
            return Err(FormatError::Invalid {
                field: "segment header_bytes",
                value: u64::from(header_bytes),
            });
        }
        if !is_zero(&bytes[32..60]) {
            return Err(FormatError::Invalid {
                field: "segment header reserved bytes",
                value: 1,
            });
        }
        let first_seq = read_u64(bytes, 16)?;
        let segment_bytes = read_u64(bytes, 24)?;
        let min = (SEGMENT_HEADER_BYTES + FRAME_HEADER_BYTES + RECORD_HEADER_BYTES) as u64;
        if segment_bytes < min
            || segment_bytes > SEGMENT_BYTES_MAX
            || !segment_bytes.is_multiple_of(ALIGN as u64)
        {
            return Err(FormatError::Invalid {
                field: "segment_bytes",
                value: segment_bytes,
            });
        }
        Ok(SegmentHeader {
            first_seq,
            segment_bytes,
        })
    }
}

/// The fixed header of a frame (one committed batch).
///
/// ```text
///  0..4   magic         "WFRM"
///  4..8   header_crc    u32  CRC32C of bytes 8..32
///  8..12  body_len      u32  bytes of records after the header; multiple of 8, > 0
/// 12..16  record_count  u32  > 0
/// 16..24  first_seq     u64  sequence number of the first record
/// 24..28  body_crc      u32  CRC32C of the body
/// 28..32  reserved      zero
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Sequence number of the frame's first record; the others follow without gaps.
    pub first_seq: u64,
    /// Number of records in the body.
    pub record_count: u32,
    /// Bytes of the body.
    pub body_len: u32,
    /// CRC32C of the body.
    pub body_crc: u32,
}

impl FrameHeader {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; FRAME_HEADER_BYTES] {
        let mut out = [0u8; FRAME_HEADER_BYTES];
        out[0..4].copy_from_slice(&FRAME_MAGIC);
        out[8..12].copy_from_slice(&self.body_len.to_le_bytes());
        out[12..16].copy_from_slice(&self.record_count.to_le_bytes());
        out[16..24].copy_from_slice(&self.first_seq.to_le_bytes());
        out[24..28].copy_from_slice(&self.body_crc.to_le_bytes());
        let crc = crc32c::crc32c(&out[8..]);
        out[4..8].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Bytes of the whole frame, header included.
    #[inline]
    pub fn frame_len(&self) -> u64 {
        FRAME_HEADER_BYTES as u64 + u64::from(self.body_len)
    }

    /// Decodes and checks the frame header at the start of `bytes`: magic, header CRC,
    /// reserved bytes, and that `body_len` and `record_count` are consistent. All zeros give
    /// [`FormatError::Zeroed`] (the clean end of a log). Cheap enough to try at every 8-byte
    /// boundary, which recovery does.
    pub fn decode(bytes: &[u8]) -> Result<FrameHeader, FormatError> {
        let bytes = prefix(bytes, FRAME_HEADER_BYTES)?;
        if is_zero(bytes) {
            return Err(FormatError::Zeroed);
        }
        if bytes[0..4] != FRAME_MAGIC {
            return Err(FormatError::BadMagic);
        }
        let stored = read_u32(bytes, 4)?;
        let computed = crc32c::crc32c(&bytes[8..]);
        if stored != computed {
            return Err(FormatError::HeaderChecksum { stored, computed });
        }
        let body_len = read_u32(bytes, 8)?;
        let record_count = read_u32(bytes, 12)?;
        let first_seq = read_u64(bytes, 16)?;
        let body_crc = read_u32(bytes, 24)?;
        let reserved = read_u32(bytes, 28)?;
        if reserved != 0 {
            return Err(FormatError::Invalid {
                field: "frame reserved",
                value: u64::from(reserved),
            });
        }
        if record_count == 0 {
            return Err(FormatError::Invalid {
                field: "frame record_count",
                value: 0,
            });
        }
        let min_body = u64::from(record_count) * RECORD_HEADER_BYTES as u64;
        if !(body_len as usize).is_multiple_of(ALIGN) || u64::from(body_len) < min_body {
            return Err(FormatError::Invalid {
                field: "frame body_len",
                value: u64::from(body_len),
            });
        }
        if first_seq.checked_add(u64::from(record_count)).is_none() {
            return Err(FormatError::Invalid {
                field: "frame first_seq",
                value: first_seq,
            });
        }
        Ok(FrameHeader {
            first_seq,
            record_count,
            body_len,
            body_crc,
        })
    }
}

/// One record of a checked frame body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// The record's sequence number.
    pub seq: u64,
    /// Offset of the record's header from the start of the body.
    pub offset: usize,
    /// The payload.
    pub payload: &'a [u8],
}

/// The records of a frame body that [`decode_frame_body`] checked.
#[derive(Clone)]
pub struct FrameRecords<'a> {
    body: &'a [u8],
    offset: usize,
    seq: u64,
    remaining: u32,
}

impl fmt::Debug for FrameRecords<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameRecords")
            .field("body_len", &self.body.len())
            .field("offset", &self.offset)
            .field("seq", &self.seq)
            .field("remaining", &self.remaining)
            .finish()
    }
}

impl<'a> Iterator for FrameRecords<'a> {
    type Item = RecordRef<'a>;

    fn next(&mut self) -> Option<RecordRef<'a>> {
        if self.remaining == 0 {
            return None;
        }
        // The body was checked by `decode_frame_body`; decoding again cannot fail, but
        // stay total rather than panic.
        let bytes = self.body.get(self.offset..)?;
        let len = read_u32(bytes, 0).ok()? as usize;
        let payload = bytes.get(RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + len)?;
        let record = RecordRef {
            seq: self.seq,
            offset: self.offset,
            payload,
        };
        self.offset += encoded_record_len(len);
        self.seq += 1;
        self.remaining -= 1;
        Some(record)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining as usize, Some(self.remaining as usize))
    }
}

impl ExactSizeIterator for FrameRecords<'_> {}

/// Checks a frame body against its header: length, body CRC, then every record (length,
/// CRC with its sequence number, zero padding), and that the records fill the body exactly.
/// On success the returned iterator yields the records.
pub fn decode_frame_body<'a>(
    header: &FrameHeader,
    body: &'a [u8],
) -> Result<FrameRecords<'a>, FormatError> {
    if body.len() != header.body_len as usize {
        return Err(FormatError::Truncated {
            needed: header.body_len as usize,
            available: body.len(),
        });
    }
    let computed = crc32c::crc32c(body);
    if computed != header.body_crc {
        return Err(FormatError::BodyChecksum {
            stored: header.body_crc,
            computed,
        });
    }
    let mut offset = 0usize;
    for i in 0..header.record_count {
        let seq = header.first_seq + u64::from(i);
        let rest = body.get(offset..).unwrap_or_default();
        let (payload, encoded) = decode_record(rest, seq)?;
        if !is_zero(&rest[RECORD_HEADER_BYTES + payload.len()..encoded]) {
            return Err(FormatError::Invalid {
                field: "record padding",
                value: seq,
            });
        }
        offset += encoded;
    }
    if offset != body.len() {
        return Err(FormatError::Invalid {
            field: "frame body_len (records end before the body)",
            value: offset as u64,
        });
    }
    Ok(FrameRecords {
        body,
        offset: 0,
        seq: header.first_seq,
        remaining: header.record_count,
    })
}

/// Decodes one whole frame at the start of `bytes`: header, then body. Returns the header
/// and the records. For tools and fuzzing; recovery reads header and body separately.
pub fn decode_frame(bytes: &[u8]) -> Result<(FrameHeader, FrameRecords<'_>), FormatError> {
    let header = FrameHeader::decode(bytes)?;
    let end = usize::try_from(header.frame_len()).map_err(|_| FormatError::Invalid {
        field: "frame body_len",
        value: u64::from(header.body_len),
    })?;
    if bytes.len() < end {
        return Err(FormatError::Truncated {
            needed: end,
            available: bytes.len(),
        });
    }
    let records = decode_frame_body(&header, &bytes[FRAME_HEADER_BYTES..end])?;
    Ok((header, records))
}

/// The sidecar index of a sealed segment: the offset of every record, so that opening a
/// log need not scan sealed segments.
///
/// ```text
///  0..8    magic               "WRITIDX\0"
///  8..12   version             u32 = 1
/// 12..16   record_count        u32  n
/// 16..24   first_seq           u64  the segment's first sequence number
/// 24..28   end_offset          u32  offset just past the segment's last frame
/// 28..32   segment_header_crc  u32  header_crc of the segment this index describes
/// 32..32+4n offsets            u32 each: offset of record i's header in the segment
/// then     crc                 u32  CRC32C of all preceding bytes
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentIndexFile {
    /// The segment's first sequence number.
    pub first_seq: u64,
    /// The `header_crc` of the segment header this index belongs to.
    pub segment_header_crc: u32,
    /// Offset just past the last frame of the segment.
    pub end_offset: u32,
    /// Offset of each record's header, in sequence order.
    pub offsets: Vec<u32>,
}

impl SegmentIndexFile {
    /// Encodes the index file.
    pub fn encode(&self) -> Vec<u8> {
        Self::encode_parts(
            self.first_seq,
            self.segment_header_crc,
            self.end_offset,
            &self.offsets,
        )
    }

    /// Encodes an index file from its parts without building a [`SegmentIndexFile`].
    ///
    /// # Panics
    /// If there are more than `u32::MAX` offsets (a segment cannot hold that many records).
    pub fn encode_parts(
        first_seq: u64,
        segment_header_crc: u32,
        end_offset: u32,
        offsets: &[u32],
    ) -> Vec<u8> {
        let count = u32::try_from(offsets.len()).expect("more than u32::MAX records");
        let mut out = Vec::with_capacity(INDEX_HEADER_BYTES + 4 * offsets.len() + 4);
        out.extend_from_slice(&INDEX_MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&first_seq.to_le_bytes());
        out.extend_from_slice(&end_offset.to_le_bytes());
        out.extend_from_slice(&segment_header_crc.to_le_bytes());
        for offset in offsets {
            out.extend_from_slice(&offset.to_le_bytes());
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and checks an index file: magic, version, CRC, and that the offsets are
    /// increasing, 8-byte aligned and inside `[SEGMENT_HEADER_BYTES, end_offset)`.
    pub fn decode(bytes: &[u8]) -> Result<SegmentIndexFile, FormatError> {
        prefix(bytes, INDEX_HEADER_BYTES + 4)?;
        if bytes[0..8] != INDEX_MAGIC {
            return Err(FormatError::BadMagic);
        }
        let version = read_u32(bytes, 8)?;
        if version == 0 || version > FORMAT_VERSION {
            return Err(FormatError::UnsupportedVersion { version });
        }
        let count = read_u32(bytes, 12)? as usize;
        let expected_len = count
            .checked_mul(4)
            .and_then(|n| n.checked_add(INDEX_HEADER_BYTES + 4))
            .ok_or(FormatError::Invalid {
                field: "index record_count",
                value: count as u64,
            })?;
        if bytes.len() != expected_len {
            return Err(FormatError::Truncated {
                needed: expected_len,
                available: bytes.len(),
            });
        }
        let stored = read_u32(bytes, expected_len - 4)?;
        let computed = crc32c::crc32c(&bytes[..expected_len - 4]);
        if stored != computed {
            return Err(FormatError::BodyChecksum { stored, computed });
        }
        let first_seq = read_u64(bytes, 16)?;
        let end_offset = read_u32(bytes, 24)?;
        let segment_header_crc = read_u32(bytes, 28)?;
        let min_offset = (SEGMENT_HEADER_BYTES + FRAME_HEADER_BYTES) as u32;
        let mut offsets = Vec::with_capacity(count);
        let mut previous: Option<u32> = None;
        for chunk in bytes[INDEX_HEADER_BYTES..expected_len - 4].chunks_exact(4) {
            let offset = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let increasing = previous.is_none_or(|p| offset > p);
            if offset < min_offset
                || offset >= end_offset
                || !(offset as usize).is_multiple_of(ALIGN)
                || !increasing
            {
                return Err(FormatError::Invalid {
                    field: "index offset",
                    value: u64::from(offset),
                });
            }
            previous = Some(offset);
            offsets.push(offset);
        }
        if (end_offset as usize) < SEGMENT_HEADER_BYTES
            || !(end_offset as usize).is_multiple_of(ALIGN)
        {
            return Err(FormatError::Invalid {
                field: "index end_offset",
                value: u64::from(end_offset),
            });
        }
        if first_seq.checked_add(count as u64).is_none() {
            return Err(FormatError::Invalid {
                field: "index first_seq",
                value: first_seq,
            });
        }
        Ok(SegmentIndexFile {
            first_seq,
            segment_header_crc,
            end_offset,
            offsets,
        })
    }
}

/// Whether every byte is zero. Compares 16 bytes at a time.
pub fn is_zero(bytes: &[u8]) -> bool {
    let chunks = bytes.chunks_exact(16);
    let tail = chunks.remainder();
    chunks
        .map(|c| u128::from_ne_bytes(c.try_into().unwrap_or([1; 16])))
        .all(|w| w == 0)
        && tail.iter().all(|&b| b == 0)
}

/// The index of the last non-zero byte, if any.
pub fn last_nonzero(bytes: &[u8]) -> Option<usize> {
    let mut end = bytes.len();
    // Skip zero words from the back, 16 bytes at a time.
    while end >= 16 {
        let word = u128::from_ne_bytes(bytes[end - 16..end].try_into().unwrap_or([1; 16]));
        if word != 0 {
            break;
        }
        end -= 16;
    }
    bytes[..end].iter().rposition(|&b| b != 0)
}

fn prefix(bytes: &[u8], needed: usize) -> Result<&[u8], FormatError> {
    bytes.get(..needed).ok_or(FormatError::Truncated {
        needed,
        available: bytes.len(),
    })
}

fn read_u32(bytes: &[u8], at: usize) -> Result<u32, FormatError> {
    let end = at.saturating_add(4);
    match bytes.get(at..end) {
        Some(b) => Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(FormatError::Truncated {
            needed: end,
            available: bytes.len(),
        }),
    }
}

fn read_u64(bytes: &[u8], at: usize) -> Result<u64, FormatError> {
    let end = at.saturating_add(8);
    match bytes.get(at..end) {
        Some(b) => {
            let mut word = [0u8; 8];
            word.copy_from_slice(b);
            Ok(u64::from_le_bytes(word))
        }
        None => Err(FormatError::Truncated {
            needed: end,
            available: bytes.len(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(first_seq: u64, payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = vec![0u8; FRAME_HEADER_BYTES];
        for (i, p) in payloads.iter().enumerate() {
            encode_record(&mut out, first_seq + i as u64, p);
        }
        let header = FrameHeader {
            first_seq,
            record_count: payloads.len() as u32,
            body_len: (out.len() - FRAME_HEADER_BYTES) as u32,
            body_crc: crc32c::crc32c(&out[FRAME_HEADER_BYTES..]),
        };
        out[..FRAME_HEADER_BYTES].copy_from_slice(&header.encode());
        out
    }

    #[test]
    fn frame_round_trip() {
        let bytes = frame(7, &[b"", b"a", b"hello world", &[0u8; 8]]);
        let (header, records) = decode_frame(&bytes).unwrap();
        assert_eq!(header.first_seq, 7);
        assert_eq!(header.record_count, 4);
        let got: Vec<_> = records.map(|r| (r.seq, r.payload.to_vec())).collect();
        assert_eq!(
            got,
            vec![
                (7, b"".to_vec()),
                (8, b"a".to_vec()),
                (9, b"hello world".to_vec()),
                (10, vec![0u8; 8]),
            ]
        );
        assert_eq!(bytes.len() % ALIGN, 0);
    }

    #[test]
    fn record_crc_binds_sequence_number() {
        let bytes = frame(3, &[b"payload"]);
        let body = &bytes[FRAME_HEADER_BYTES..];
        assert!(decode_record(body, 3).is_ok());
        assert_eq!(
            decode_record(body, 4),
            Err(FormatError::RecordChecksum { seq: 4 })
        );
    }

    #[test]
    fn every_single_bit_flip_in_a_frame_is_detected() {
        let bytes = frame(42, &[b"abc", b"", b"0123456789abcdef0"]);
        for bit in 0..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_frame(&damaged).is_err(), "bit {bit} flip undetected");
        }
    }

    #[test]
    fn zero_header_is_clean_end() {
        assert_eq!(FrameHeader::decode(&[0u8; 32]), Err(FormatError::Zeroed));
        assert_eq!(SegmentHeader::decode(&[0u8; 64]), Err(FormatError::Zeroed));
    }

    #[test]
    fn segment_header_round_trip_and_version_check() {
        let header = SegmentHeader {
            first_seq: 12345,
            segment_bytes: 1 << 20,
        };
        let mut bytes = header.encode();
        assert_eq!(SegmentHeader::decode(&bytes), Ok(header));
        bytes[8] = 2;
        assert_eq!(
            SegmentHeader::decode(&bytes),
            Err(FormatError::UnsupportedVersion { version: 2 })
        );
    }

    #[test]
    fn index_file_round_trip_and_damage() {
        let index = SegmentIndexFile {
            first_seq: 100,
            segment_header_crc: 0xdead_beef,
            end_offset: 4096,
            offsets: vec![96, 112, 2048],
        };
        let bytes = index.encode();
        assert_eq!(SegmentIndexFile::decode(&bytes), Ok(index));
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x10;
            assert!(SegmentIndexFile::decode(&damaged).is_err(), "byte {i}");
        }
        assert!(SegmentIndexFile::decode(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn zero_scans() {
        let mut bytes = vec![0u8; 100];
        assert!(is_zero(&bytes));
        assert_eq!(last_nonzero(&bytes), None);
        bytes[37] = 1;
        assert!(!is_zero(&bytes));
        assert_eq!(last_nonzero(&bytes), Some(37));
        bytes[99] = 1;
        assert_eq!(last_nonzero(&bytes), Some(99));
    }
}
