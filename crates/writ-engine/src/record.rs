//! The records the engine keeps in its two logs, byte by byte (see `docs/log-format.md`,
//! "Engine records"). Decoders are pure functions on byte slices that never panic: they
//! are fuzzed, because a log can hand back any bytes.
//!
//! - A [`CommandRecord`] in the command log: one accepted command, as the client sent it
//!   (payload in canonical form).
//! - A [`CommitRecord`] in the event log: the outcome of executing one command, with the
//!   events it recorded. Every logged command gets exactly one commit, in command log order,
//!   so the commit of command `n` is record `n` of the event log. A commit is one record, so
//!   a command's events and its outcome become durable together or not at all.

use uuid::Uuid;

/// First byte of a command record.
pub const COMMAND_TAG: u8 = b'C';
/// First byte of a commit record.
pub const COMMIT_TAG: u8 = b'E';
/// Format version of both record kinds.
pub const RECORD_FORMAT: u8 = 1;

/// Why bytes are not a valid record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} record: {detail}")]
pub struct RecordError {
    /// `command` or `commit`.
    pub kind: &'static str,
    /// What is wrong.
    pub detail: &'static str,
}

/// A command as the command log stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRecord<'a> {
    /// The id the client chose.
    pub id: Uuid,
    /// When intake recorded it (ms since the Unix epoch); never decreases along the log.
    pub recorded_at_ms: u64,
    /// The command name.
    pub name: &'a str,
    /// The payload version it was decoded as.
    pub version: u32,
    /// The canonical JSON payload.
    pub payload: &'a [u8],
}

impl CommandRecord<'_> {
    /// Appends the encoded record to `out`.
    ///
    /// Layout: tag `C` (1), format (1), id (16), recorded_at_ms (u64 LE), version (u32 LE),
    /// name length (u16 LE), name (UTF-8), payload (the rest).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let name_len = u16::try_from(self.name.len()).expect("command names are short");
        out.reserve(32 + self.name.len() + self.payload.len());
        out.push(COMMAND_TAG);
        out.push(RECORD_FORMAT);
        out.extend_from_slice(self.id.as_bytes());
        out.extend_from_slice(&self.recorded_at_ms.to_le_bytes());
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(self.payload);
    }

    /// Decodes a record produced by [`CommandRecord::encode`].
    pub fn decode(bytes: &[u8]) -> Result<CommandRecord<'_>, RecordError> {
        let err = |detail| RecordError {
            kind: "command",
            detail,
        };
        let mut r = Cursor(bytes);
        if r.u8().ok_or(err("empty"))? != COMMAND_TAG {
            return Err(err("wrong tag"));
        }
        if r.u8().ok_or(err("truncated"))? != RECORD_FORMAT {
            return Err(err("unknown format version"));
        }
        let id = r.uuid().ok_or(err("truncated id"))?;
        let recorded_at_ms = r.u64().ok_or(err("truncated time"))?;
        let version = r.u32().ok_or(err("truncated version"))?;
        let name_len = r.u16().ok_or(err("truncated name length"))?;
        let name = r.str(usize::from(name_len)).ok_or(err("bad name"))?;
        Ok(CommandRecord {
            id,
            recorded_at_ms,
            name,
            version,
            payload: r.0,
        })
    }
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommitStatus {
    /// The handler ran and recorded its events.
    Succeeded,
    /// A business rule said no.
    Rejected,
    /// The handler errored.
    Failed,
}

impl CommitStatus {
    fn to_byte(self) -> u8 {
        match self {
            CommitStatus::Succeeded => 1,
            CommitStatus::Rejected => 2,
            CommitStatus::Failed => 3,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(CommitStatus::Succeeded),
            2 => Some(CommitStatus::Rejected),
            3 => Some(CommitStatus::Failed),
            _ => None,
        }
    }
}

/// One event inside a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitEvent<'a> {
    /// The stream.
    pub stream: &'a str,
    /// Its version in the stream (1 for a stream's first event).
    pub version: u64,
    /// The event type.
    pub event_type: &'a str,
    /// The JSON body.
    pub data: &'a [u8],
}

/// The outcome of one command as the event log stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRecord<'a> {
    /// The command's id.
    pub command_id: Uuid,
    /// The command's sequence number in the command log (equal to this commit's own).
    pub command_seq: u64,
    /// When the command was recorded (copied from the command record).
    pub recorded_at_ms: u64,
    /// The command name.
    pub command: &'a str,
    /// How it ended.
    pub status: CommitStatus,
    /// Position of the first event; with no events, the position the next event will get.
    pub first_position: u64,
    /// Rejection code (rejected only; empty otherwise).
    pub code: &'a str,
    /// Rejection or failure message (empty for succeeded).
    pub message: &'a str,
    /// The events, in order, at positions `first_position..`.
    pub events: Vec<CommitEvent<'a>>,
}

impl CommitRecord<'_> {
    /// Appends the encoded record to `out`.
    ///
    /// Layout: tag `E` (1), format (1), command id (16), command_seq (u64), recorded_at_ms
    /// (u64), status (1: 1 succeeded, 2 rejected, 3 failed), first_position (u64), command
    /// name (u16 length + UTF-8), code (u16 length + UTF-8), message (u32 length + UTF-8),
    /// event count (u32), then per event: stream (u16 length + UTF-8), version (u64), type
    /// (u16 length + UTF-8), data (u32 length + bytes). Integers little-endian.
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode_commit_header(
            out,
            &CommitHeader {
                command_id: self.command_id,
                command_seq: self.command_seq,
                recorded_at_ms: self.recorded_at_ms,
                command: self.command,
                status: self.status,
                first_position: self.first_position,
                code: self.code,
                message: self.message,
            },
            self.events.len(),
        );
        for event in &self.events {
            let at = begin_event(out, event.stream, event.version, event.event_type);
            out.extend_from_slice(event.data);
            finish_event(out, at);
        }
    }

    /// Decodes a record produced by [`CommitRecord::encode`].
    pub fn decode(bytes: &[u8]) -> Result<CommitRecord<'_>, RecordError> {
        let err = |detail| RecordError {
            kind: "commit",
            detail,
        };
        let mut r = Cursor(bytes);
        if r.u8().ok_or(err("empty"))? != COMMIT_TAG {
            return Err(err("wrong tag"));
        }
        if r.u8().ok_or(err("truncated"))? != RECORD_FORMAT {
            return Err(err("unknown format version"));
        }
        let command_id = r.uuid().ok_or(err("truncated id"))?;
        let command_seq = r.u64().ok_or(err("truncated command seq"))?;
        let recorded_at_ms = r.u64().ok_or(err("truncated time"))?;
        let status = CommitStatus::from_byte(r.u8().ok_or(err("truncated status"))?)
            .ok_or(err("unknown status"))?;
        let first_position = r.u64().ok_or(err("truncated position"))?;
        let command = r.str16().ok_or(err("bad command name"))?;
        let code = r.str16().ok_or(err("bad code"))?;
        let message = r.str32().ok_or(err("bad message"))?;
        let count = r.u32().ok_or(err("truncated event count"))?;
        // Each event takes at least 16 bytes: refuse counts the bytes cannot hold before
        // allocating for them.
        if u64::from(count) * 16 > r.0.len() as u64 {
            return Err(err("event count exceeds record"));
        }
        if status != CommitStatus::Succeeded && count != 0 {
            return Err(err("events on a command that did not succeed"));
        }
        let mut events = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let stream = r.str16().ok_or(err("bad stream"))?;
            let version = r.u64().ok_or(err("truncated version"))?;
            let event_type = r.str16().ok_or(err("bad event type"))?;
            let len = r.u32().ok_or(err("truncated data length"))?;
            let data = r.take(len as usize).ok_or(err("truncated data"))?;
            events.push(CommitEvent {
                stream,
                version,
                event_type,
                data,
            });
        }
        if !r.0.is_empty() {
            return Err(err("trailing bytes"));
        }
        Ok(CommitRecord {
            command_id,
            command_seq,
            recorded_at_ms,
            command,
            status,
            first_position,
            code,
            message,
            events,
        })
    }
}

/// The fixed part of a commit record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CommitHeader<'a> {
    pub command_id: Uuid,
    pub command_seq: u64,
    pub recorded_at_ms: u64,
    pub command: &'a str,
    pub status: CommitStatus,
    pub first_position: u64,
    pub code: &'a str,
    pub message: &'a str,
}

/// Appends a commit record's header and event count; the events follow, each written with
/// [`begin_event`], its JSON body, and [`finish_event`]. The writer encodes event bodies
/// straight into the record this way, without an intermediate copy.
pub(crate) fn encode_commit_header(out: &mut Vec<u8>, h: &CommitHeader<'_>, event_count: usize) {
    out.push(COMMIT_TAG);
    out.push(RECORD_FORMAT);
    out.extend_from_slice(h.command_id.as_bytes());
    out.extend_from_slice(&h.command_seq.to_le_bytes());
    out.extend_from_slice(&h.recorded_at_ms.to_le_bytes());
    out.push(h.status.to_byte());
    out.extend_from_slice(&h.first_position.to_le_bytes());
    put_str16(out, h.command);
    put_str16(out, h.code);
    put_bytes32(out, h.message.as_bytes());
    let count = u32::try_from(event_count).expect("event count fits u32");
    out.extend_from_slice(&count.to_le_bytes());
}

/// Starts an event: stream, version, type, and a placeholder for the body's length.
/// Returns where the placeholder is, for [`finish_event`].
pub(crate) fn begin_event(
    out: &mut Vec<u8>,
    stream: &str,
    version: u64,
    event_type: &str,
) -> usize {
    put_str16(out, stream);
    out.extend_from_slice(&version.to_le_bytes());
    put_str16(out, event_type);
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    at
}

/// Fills in the body length of the event started at `at`.
pub(crate) fn finish_event(out: &mut [u8], at: usize) {
    let len = u32::try_from(out.len() - at - 4).expect("event body fits u32");
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

fn put_str16(out: &mut Vec<u8>, s: &str) {
    let len = u16::try_from(s.len()).expect("string fits a u16 length");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_bytes32(out: &mut Vec<u8>, b: &[u8]) {
    let len = u32::try_from(b.len()).expect("bytes fit a u32 length");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(b);
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N).map(|b| b.try_into().expect("length checked"))
    }
    fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }
    fn uuid(&mut self) -> Option<Uuid> {
        self.array().map(Uuid::from_bytes)
    }
    fn str(&mut self, n: usize) -> Option<&'a str> {
        std::str::from_utf8(self.take(n)?).ok()
    }
    fn str16(&mut self) -> Option<&'a str> {
        let n = self.u16()?;
        self.str(usize::from(n))
    }
    fn str32(&mut self) -> Option<&'a str> {
        let n = self.u32()?;
        self.str(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_record_round_trips() {
        let record = CommandRecord {
            id: Uuid::from_u128(99),
            recorded_at_ms: 1_700_000_000_123,
            name: "OpenTicket",
            version: 2,
            payload: br#"{"ticketId":"t-1"}"#,
        };
        let mut bytes = Vec::new();
        record.encode(&mut bytes);
        assert_eq!(CommandRecord::decode(&bytes).unwrap(), record);
        for cut in 0..bytes.len() - record.payload.len() {
            assert!(
                CommandRecord::decode(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn commit_record_round_trips() {
        let record = CommitRecord {
            command_id: Uuid::from_u128(5),
            command_seq: 17,
            recorded_at_ms: 3,
            command: "AddComment",
            status: CommitStatus::Succeeded,
            first_position: 40,
            code: "",
            message: "",
            events: vec![
                CommitEvent {
                    stream: "ticket-1",
                    version: 2,
                    event_type: "CommentAdded",
                    data: b"{}",
                },
                CommitEvent {
                    stream: "ticket-1",
                    version: 3,
                    event_type: "CommentAdded",
                    data: b"{\"a\":1}",
                },
            ],
        };
        let mut bytes = Vec::new();
        record.encode(&mut bytes);
        assert_eq!(CommitRecord::decode(&bytes).unwrap(), record);
        for cut in 0..bytes.len() {
            assert!(CommitRecord::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let rejected = CommitRecord {
            status: CommitStatus::Rejected,
            code: "ticket_closed",
            message: "closed",
            events: vec![],
            ..record
        };
        bytes.clear();
        rejected.encode(&mut bytes);
        assert_eq!(CommitRecord::decode(&bytes).unwrap(), rejected);
    }

    #[test]
    fn huge_event_count_is_refused_without_allocating() {
        let record = CommitRecord {
            command_id: Uuid::nil(),
            command_seq: 0,
            recorded_at_ms: 0,
            command: "X",
            status: CommitStatus::Succeeded,
            first_position: 1,
            code: "",
            message: "",
            events: vec![],
        };
        let mut bytes = Vec::new();
        record.encode(&mut bytes);
        let n = bytes.len();
        bytes[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(CommitRecord::decode(&bytes).is_err());
    }
}
