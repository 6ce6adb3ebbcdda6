//! The bytes of an engine checkpoint file (`checkpoints/{seq:020}.ckpt`); the layout is in
//! `docs/log-format.md` ("An engine checkpoint file"). [`Checkpoint::decode`] never panics
//! on arbitrary bytes (the fuzz target `engine_checkpoint` checks it) and what it accepts
//! encodes back to the same bytes.

use uuid::Uuid;
use writ_domain::model::STREAM_NAME_BYTES_MAX;

/// The first 8 bytes of a checkpoint file: `"WRITCKPT"`.
pub const CHECKPOINT_MAGIC: [u8; 8] = *b"WRITCKPT";

/// The layout this build writes and reads.
pub const CHECKPOINT_VERSION: u32 = 1;

/// Bytes of a journal's mark (see [`Checkpoint::mark`]).
pub const MARK_BYTES: usize = 32;

/// The longest build tag a file holds, in bytes.
pub const BUILD_BYTES_MAX: usize = 255;

/// Bytes before the build tag: magic, version, reserved, seq, last position, last time,
/// unit start, mark.
const FIXED_BYTES: usize = 8 + 4 + 4 + 8 + 8 + 8 + 8 + MARK_BYTES;

/// The fewest bytes a timer takes: six empty strings or byte strings (1 byte each), `at_ms`,
/// the id, version, expected version, causation and correlation.
const TIMER_BYTES_MIN: usize = 6 + 8 + 16 + 4 + 8 + 16 + 16;

/// What this build writes as its build tag.
pub const CHECKPOINT_BUILD: &str = concat!("writ-engine ", env!("CARGO_PKG_VERSION"));

/// Why bytes are not a checkpoint this build reads: the first thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// Shorter than a header, or not starting with the magic.
    #[error("not a checkpoint file")]
    NotCheckpoint,
    /// A layout this build does not know (a newer build wrote it).
    #[error("checkpoint format version {version}; this build reads {CHECKPOINT_VERSION}")]
    Version {
        /// The file's version.
        version: u32,
    },
    /// The CRC does not match: the file is torn or damaged.
    #[error("the checkpoint's checksum does not match")]
    Checksum,
    /// The CRC matches but a field is wrong: written by broken code.
    #[error("invalid checkpoint: {0}")]
    Invalid(&'static str),
}

/// A pending timer as a checkpoint holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointTimer {
    /// The process that scheduled it.
    pub process: String,
    /// Its key within the process.
    pub key: String,
    /// When it fires (ms since the Unix epoch).
    pub at_ms: u64,
    /// The id of the command it issues (the timer's id).
    pub id: Uuid,
    /// The command's name.
    pub command: String,
    /// The command's payload version; `None`: the newest.
    pub version: Option<u32>,
    /// The version the command's stream must be at.
    pub expected_version: Option<u64>,
    /// The command's JSON payload.
    pub payload: Vec<u8>,
    /// The command whose event scheduled it.
    pub causation_id: Uuid,
    /// That command's chain.
    pub correlation_id: Uuid,
}

/// A decoded checkpoint file: what a start otherwise rebuilds from journal records
/// `[0, seq)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Journal records covered: `[0, seq)`.
    pub seq: u64,
    /// The last event of those records (0: none).
    pub last_position: u64,
    /// Record `seq - 1`'s `recorded_at_ms`.
    pub last_recorded_ms: u64,
    /// The sequence of the last record of origin `client` or `timer` (0: none).
    pub unit_start: u64,
    /// The journal's mark at `seq`: what tells this journal from another.
    pub mark: [u8; MARK_BYTES],
    /// The build that wrote it.
    pub build: String,
    /// The first position of each record, `seq` of them.
    pub commit_first_position: Vec<u64>,
    /// Each stream's positions (version `v` at index `v - 1`), by name in byte order.
    pub streams: Vec<(String, Vec<u64>)>,
    /// The pending timers, in the order they fire.
    pub timers: Vec<CheckpointTimer>,
}

/// What a checkpoint says of itself, before its indexes and timers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointHeader {
    /// Journal records covered: `[0, seq)`.
    pub seq: u64,
    /// The last event of those records.
    pub last_position: u64,
    /// Record `seq - 1`'s `recorded_at_ms`.
    pub last_recorded_ms: u64,
    /// The start of the last unit.
    pub unit_start: u64,
    /// The journal's mark at `seq`.
    pub mark: [u8; MARK_BYTES],
    /// The build that wrote it.
    pub build: String,
}

/// A timer as the encoder reads it, borrowed from whatever holds it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TimerRef<'a> {
    pub process: &'a str,
    pub key: &'a str,
    pub at_ms: u64,
    pub id: Uuid,
    pub command: &'a str,
    pub version: Option<u32>,
    pub expected_version: Option<u64>,
    pub payload: &'a [u8],
    pub causation_id: Uuid,
    pub correlation_id: Uuid,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Encodes a checkpoint file from borrowed parts: `streams` in byte order of their names,
/// `timers` in the order they fire. The caller holds the invariants the decoder checks.
pub(crate) fn encode_parts<'a>(
    header: &CheckpointHeader,
    commit_first_position: &[u64],
    streams: &[(&str, &[u64])],
    timers: impl ExactSizeIterator<Item = TimerRef<'a>>,
) -> Vec<u8> {
    assert!(header.build.len() <= BUILD_BYTES_MAX, "a build tag fits");
    let events: usize = streams.iter().map(|(_, p)| p.len()).sum();
    let mut out =
        Vec::with_capacity(FIXED_BYTES + 64 + commit_first_position.len() * 2 + events * 2);
    out.extend_from_slice(&CHECKPOINT_MAGIC);
    out.extend_from_slice(&CHECKPOINT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    for v in [
        header.seq,
        header.last_position,
        header.last_recorded_ms,
        header.unit_start,
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&header.mark);
    out.extend_from_slice(&(header.build.len() as u16).to_le_bytes());
    out.extend_from_slice(header.build.as_bytes());
    put_varint(&mut out, commit_first_position.len() as u64);
    let mut previous = 1;
    for &first in commit_first_position {
        put_varint(&mut out, first - previous);
        previous = first;
    }
    put_varint(&mut out, streams.len() as u64);
    for (name, positions) in streams {
        put_bytes(&mut out, name.as_bytes());
        put_varint(&mut out, positions.len() as u64);
        let mut previous = 0;
        for &position in *positions {
            put_varint(&mut out, position - previous);
            previous = position;
        }
    }
    put_varint(&mut out, timers.len() as u64);
    for timer in timers {
        put_bytes(&mut out, timer.process.as_bytes());
        put_bytes(&mut out, timer.key.as_bytes());
        out.extend_from_slice(&timer.at_ms.to_le_bytes());
        out.extend_from_slice(timer.id.as_bytes());
        put_bytes(&mut out, timer.command.as_bytes());
        out.extend_from_slice(&timer.version.unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&timer.expected_version.map_or(0, |v| v + 1).to_le_bytes());
        put_bytes(&mut out, timer.payload);
        out.extend_from_slice(timer.causation_id.as_bytes());
        out.extend_from_slice(timer.correlation_id.as_bytes());
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

struct Input<'a>(&'a [u8]);

type Decoded<T> = Result<T, CheckpointError>;

const fn invalid<T>(what: &'static str) -> Decoded<T> {
    Err(CheckpointError::Invalid(what))
}

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Decoded<&'a [u8]> {
        if self.0.len() < n {
            return invalid("a field runs past the end");
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Decoded<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }

    fn u64(&mut self) -> Decoded<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }

    fn uuid(&mut self) -> Decoded<Uuid> {
        Ok(Uuid::from_bytes(self.take(16)?.try_into().expect("16")))
    }

    /// A LEB128 number in its one shortest encoding.
    fn varint(&mut self) -> Decoded<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            let byte = self.take(1)?[0];
            let bits = u64::from(byte & 0x7f);
            if i == 9 && byte > 1 {
                return invalid("a varint over u64");
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                if i > 0 && byte == 0 {
                    return invalid("a varint longer than it needs");
                }
                return Ok(value);
            }
        }
        invalid("a varint over u64")
    }

    /// A count of items that take at least `min_bytes` each, checked against the bytes left.
    fn count(&mut self, min_bytes: usize) -> Decoded<usize> {
        let n = self.varint()?;
        if n > (self.0.len() / min_bytes.max(1)) as u64 {
            return invalid("a count larger than the bytes left can hold");
        }
        Ok(n as usize)
    }

    fn bytes(&mut self, max: usize) -> Decoded<&'a [u8]> {
        let len = self.varint()?;
        if len > max as u64 {
            return invalid("a string longer than allowed");
        }
        self.take(len as usize)
    }

    fn string(&mut self, max: usize) -> Decoded<String> {
        let bytes = self.bytes(max)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => invalid("a string that is not UTF-8"),
        }
    }
}

impl CheckpointHeader {
    /// Reads the header of a checkpoint file after checking its magic, version and CRC.
    /// Returns the header and the bytes after it (before the CRC).
    pub fn decode(file: &[u8]) -> Result<(Self, &[u8]), CheckpointError> {
        if file.len() < FIXED_BYTES + 2 + 4 || file[..8] != CHECKPOINT_MAGIC {
            return Err(CheckpointError::NotCheckpoint);
        }
        let version = u32::from_le_bytes(file[8..12].try_into().expect("4"));
        if version != CHECKPOINT_VERSION {
            return Err(CheckpointError::Version { version });
        }
        let (content, crc) = file.split_at(file.len() - 4);
        if crc32c::crc32c(content) != u32::from_le_bytes(crc.try_into().expect("4")) {
            return Err(CheckpointError::Checksum);
        }
        let mut input = Input(&content[12..]);
        if input.u32()? != 0 {
            return invalid("reserved bytes that are not zero");
        }
        let seq = input.u64()?;
        let last_position = input.u64()?;
        let last_recorded_ms = input.u64()?;
        let unit_start = input.u64()?;
        let mark = input.take(MARK_BYTES)?.try_into().expect("32");
        if seq == 0 {
            return invalid("a checkpoint of no record");
        }
        if unit_start >= seq {
            return invalid("a unit that starts past the records covered");
        }
        let len = u16::from_le_bytes(input.take(2)?.try_into().expect("2"));
        if usize::from(len) > BUILD_BYTES_MAX {
            return invalid("a build tag longer than 255 bytes");
        }
        let Ok(build) = std::str::from_utf8(input.take(usize::from(len))?) else {
            return invalid("a build tag that is not UTF-8");
        };
        Ok((
            Self {
                seq,
                last_position,
                last_recorded_ms,
                unit_start,
                mark,
                build: build.to_owned(),
            },
            input.0,
        ))
    }
}

impl Checkpoint {
    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let streams: Vec<(&str, &[u64])> = self
            .streams
            .iter()
            .map(|(name, positions)| (name.as_str(), positions.as_slice()))
            .collect();
        encode_parts(
            &self.header(),
            &self.commit_first_position,
            &streams,
            self.timers.iter().map(|t| TimerRef {
                process: &t.process,
                key: &t.key,
                at_ms: t.at_ms,
                id: t.id,
                command: &t.command,
                version: t.version,
                expected_version: t.expected_version,
                payload: &t.payload,
                causation_id: t.causation_id,
                correlation_id: t.correlation_id,
            }),
        )
    }

    /// Its header's fields.
    pub fn header(&self) -> CheckpointHeader {
        CheckpointHeader {
            seq: self.seq,
            last_position: self.last_position,
            last_recorded_ms: self.last_recorded_ms,
            unit_start: self.unit_start,
            mark: self.mark,
            build: self.build.clone(),
        }
    }

    /// Reads a checkpoint file: the magic, the version, the CRC, then every field (see the
    /// format's notes for what is checked). Never panics.
    pub fn decode(file: &[u8]) -> Result<Self, CheckpointError> {
        let (header, body) = CheckpointHeader::decode(file)?;
        let mut input = Input(body);
        let commits = input.count(1)?;
        if commits as u64 != header.seq {
            return invalid("a record index of another length than the records covered");
        }
        let mut commit_first_position = Vec::with_capacity(commits);
        let mut previous = 1u64;
        for _ in 0..commits {
            let Some(first) = previous.checked_add(input.varint()?) else {
                return invalid("a position over u64");
            };
            commit_first_position.push(first);
            previous = first;
        }
        if previous > header.last_position.saturating_add(1) {
            return invalid("a record that starts past the last position");
        }
        let stream_count = input.count(2)?;
        let mut streams: Vec<(String, Vec<u64>)> = Vec::with_capacity(stream_count);
        let mut events = 0u64;
        for _ in 0..stream_count {
            let name = input.string(STREAM_NAME_BYTES_MAX)?;
            if streams.last().is_some_and(|(last, _)| *last >= name) {
                return invalid("stream names out of order");
            }
            let count = input.count(1)?;
            if count == 0 {
                return invalid("a stream without events");
            }
            let mut positions = Vec::with_capacity(count);
            let mut previous = 0u64;
            for _ in 0..count {
                let delta = input.varint()?;
                let Some(position) = previous.checked_add(delta) else {
                    return invalid("a position over u64");
                };
                if delta == 0 || position > header.last_position {
                    return invalid("a stream position out of order or past the last position");
                }
                positions.push(position);
                previous = position;
            }
            events += count as u64;
            streams.push((name, positions));
        }
        if events != header.last_position {
            return invalid("streams that hold another number of events than the last position");
        }
        let timer_count = input.count(TIMER_BYTES_MIN)?;
        let mut timers: Vec<CheckpointTimer> = Vec::with_capacity(timer_count);
        let mut keys = std::collections::HashSet::with_capacity(timer_count);
        let mut ids = std::collections::HashSet::with_capacity(timer_count);
        for _ in 0..timer_count {
            let process = input.string(u16::MAX as usize)?;
            let key = input.string(u16::MAX as usize)?;
            let at_ms = input.u64()?;
            let id = input.uuid()?;
            let command = input.string(u16::MAX as usize)?;
            let version = input.u32()?;
            let expected_version = input.u64()?;
            let payload = input.bytes(u32::MAX as usize)?.to_vec();
            let causation_id = input.uuid()?;
            let correlation_id = input.uuid()?;
            if timers.last().is_some_and(|last| last.at_ms > at_ms) {
                return invalid("timers out of time order");
            }
            if !keys.insert((process.clone(), key.clone())) || !ids.insert(id) {
                return invalid("a timer pending twice");
            }
            timers.push(CheckpointTimer {
                process,
                key,
                at_ms,
                id,
                command,
                version: (version != 0).then_some(version),
                expected_version: expected_version.checked_sub(1),
                payload,
                causation_id,
                correlation_id,
            });
        }
        if !input.0.is_empty() {
            return invalid("bytes after the timers");
        }
        Ok(Self {
            seq: header.seq,
            last_position: header.last_position,
            last_recorded_ms: header.last_recorded_ms,
            unit_start: header.unit_start,
            mark: header.mark,
            build: header.build,
            commit_first_position,
            streams,
            timers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            seq: 4,
            last_position: 3,
            last_recorded_ms: 1_700,
            unit_start: 2,
            mark: [9; MARK_BYTES],
            build: CHECKPOINT_BUILD.to_owned(),
            commit_first_position: vec![1, 2, 4, 4],
            streams: vec![("a-1".to_owned(), vec![1, 3]), ("b-1".to_owned(), vec![2])],
            timers: vec![CheckpointTimer {
                process: "p".to_owned(),
                key: "k".to_owned(),
                at_ms: 5_000,
                id: Uuid::from_u128(7),
                command: "Remind".to_owned(),
                version: Some(2),
                expected_version: Some(0),
                payload: b"{}".to_vec(),
                causation_id: Uuid::from_u128(8),
                correlation_id: Uuid::from_u128(9),
            }],
        }
    }

    #[test]
    fn a_checkpoint_decodes_to_itself_and_every_cut_or_flip_is_refused() {
        let checkpoint = sample();
        let bytes = checkpoint.encode();
        assert_eq!(Checkpoint::decode(&bytes).unwrap(), checkpoint);
        for len in 0..bytes.len() {
            assert!(Checkpoint::decode(&bytes[..len]).is_err(), "cut at {len}");
        }
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x10;
            assert!(Checkpoint::decode(&flipped).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn varints_have_one_encoding() {
        let mut out = Vec::new();
        for v in [0, 1, 127, 128, 300, u64::MAX] {
            out.clear();
            put_varint(&mut out, v);
            assert_eq!(Input(&out).varint().unwrap(), v);
        }
        assert!(Input(&[0x80, 0x00]).varint().is_err());
        assert!(Input(&[0xff; 10]).varint().is_err());
    }
}
