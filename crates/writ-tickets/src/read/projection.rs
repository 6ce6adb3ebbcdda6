//! [`TicketsProjection`]: how the five ticket events change the [`TicketsView`].

use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;

use serde::Deserialize;
use uuid::Uuid;
use writ_domain::EventSet;
use writ_query::snapshot::{Reader, SnapshotError, Writer};
use writ_query::{ApplyError, Projection, RecordedEvent};

use super::view::{Stamp, Status, TicketsView};
use crate::{Priority, TicketEvent};

/// The tickets projection. Its versions are structures of the [`TicketsView`]:
///
/// | version | structure |
/// |---|---|
/// | 1 | tickets, comments and indexes |
/// | 2 (current) | as 1, plus each ticket's status history |
///
/// Query API version 2 needs projection version 2 (its `getTicket` answers the history);
/// version 1 reads either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketsProjection {
    version: u32,
}

impl TicketsProjection {
    /// The projection's name, the first half of its root.
    pub const NAME: &'static str = "tickets";
    /// The newest version.
    pub const CURRENT_VERSION: u32 = 2;

    /// The newest version.
    pub fn current() -> Self {
        Self {
            version: Self::CURRENT_VERSION,
        }
    }

    /// A given version (1 or 2), for example to show an upgrade; `None` for others.
    pub fn with_version(version: u32) -> Option<Self> {
        (1..=Self::CURRENT_VERSION)
            .contains(&version)
            .then_some(Self { version })
    }
}

impl Default for TicketsProjection {
    fn default() -> Self {
        Self::current()
    }
}

// The events' bodies, borrowed from the log record where the JSON has no escapes: one
// parse, and each string copied once, into the `Arc<str>` the view keeps.
//
// Ticket events are flat objects of strings, so `decode` first tries `Flat`, a scanner of
// exactly that shape (strings without escapes, `null`s, nothing else) that is several
// times faster than serde's general path, and hands anything else to `serde_json`: so
// the result is serde's for every input, including its errors.

#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Opened<'a> {
    #[serde(borrow)]
    ticket_id: Cow<'a, str>,
    #[serde(borrow)]
    title: Cow<'a, str>,
    #[serde(default, borrow)]
    description: Option<Cow<'a, str>>,
    #[serde(borrow)]
    reporter: Cow<'a, str>,
    priority: Priority,
}

#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Assigned<'a> {
    #[serde(borrow)]
    ticket_id: Cow<'a, str>,
    #[serde(borrow)]
    assignee: Cow<'a, str>,
}

#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Commented<'a> {
    #[serde(borrow)]
    ticket_id: Cow<'a, str>,
    comment_id: Uuid,
    #[serde(borrow)]
    author: Cow<'a, str>,
    #[serde(borrow)]
    text: Cow<'a, str>,
}

#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Closed<'a> {
    #[serde(borrow)]
    ticket_id: Cow<'a, str>,
    #[serde(borrow)]
    resolution: Cow<'a, str>,
}

#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reopened<'a> {
    #[serde(borrow)]
    ticket_id: Cow<'a, str>,
    #[serde(borrow)]
    reason: Cow<'a, str>,
}

fn decode<'a, T: Deserialize<'a> + FromFlat<'a>>(
    event: &'a RecordedEvent,
) -> Result<T, ApplyError> {
    if let Some(decoded) = Flat::parse(&event.data).and_then(|flat| T::from_flat(&flat)) {
        return Ok(decoded);
    }
    serde_json::from_slice(&event.data).map_err(|e| ApplyError::InvalidData {
        detail: e.to_string(),
    })
}

/// The most members `Flat` takes.
const FLAT_MEMBERS_MAX: usize = 8;

/// A JSON object whose members are all strings without escapes or `null`s, borrowed from
/// the bytes: `(name, value)`, `None` for `null`.
struct Flat<'a> {
    members: [(&'a str, Option<&'a str>); FLAT_MEMBERS_MAX],
    len: usize,
}

impl<'a> Flat<'a> {
    /// `None` when `data` is anything else (serde_json then decodes it, or says what is
    /// wrong): another value type, an escape, a control character, invalid UTF-8, more
    /// than eight members, a syntax error.
    fn parse(data: &'a [u8]) -> Option<Self> {
        // Checked once here, so that the strings are slices of it.
        let text = std::str::from_utf8(data).ok()?;
        let mut flat = Flat {
            members: [("", None); FLAT_MEMBERS_MAX],
            len: 0,
        };
        let mut at = skip_space(data, 0);
        if data.get(at) != Some(&b'{') {
            return None;
        }
        at = skip_space(data, at + 1);
        if data.get(at) == Some(&b'}') {
            at += 1;
        } else {
            loop {
                let (name, next) = string(text, at)?;
                at = skip_space(data, next);
                if data.get(at) != Some(&b':') {
                    return None;
                }
                at = skip_space(data, at + 1);
                let value = if data[at..].starts_with(b"null") {
                    at += 4;
                    None
                } else {
                    let (value, next) = string(text, at)?;
                    at = next;
                    Some(value)
                };
                if flat.len == FLAT_MEMBERS_MAX {
                    return None;
                }
                flat.members[flat.len] = (name, value);
                flat.len += 1;
                at = skip_space(data, at);
                match data.get(at) {
                    Some(b',') => at = skip_space(data, at + 1),
                    Some(b'}') => {
                        at += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        (skip_space(data, at) == data.len()).then_some(flat)
    }

    /// The value of member `name`: `None` when it is missing, `Some(None)` for `null`;
    /// `Err` when it is there twice (serde refuses that).
    fn get(&self, name: &str) -> Result<Option<Option<&'a str>>, ()> {
        let mut found = None;
        for (member, value) in &self.members[..self.len] {
            if *member == name {
                if found.is_some() {
                    return Err(());
                }
                found = Some(*value);
            }
        }
        Ok(found)
    }

    /// A required string member.
    fn text(&self, name: &str) -> Option<Cow<'a, str>> {
        self.get(name).ok()??.map(Cow::Borrowed)
    }
}

fn skip_space(data: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = data.get(at) {
        at += 1;
    }
    at
}

/// The string starting at byte `at` of `text` (a `"`) and the index after it, if it has
/// no escape and no control character.
fn string(text: &str, at: usize) -> Option<(&str, usize)> {
    let data = text.as_bytes();
    if data.get(at) != Some(&b'"') {
        return None;
    }
    let start = at + 1;
    let end = start + special(&data[start..])?;
    if data[end] != b'"' {
        return None;
    }
    // Both ends are at ASCII quotes, so at character boundaries.
    Some((text.get(start..end)?, end + 1))
}

/// The index of the first `"`, `\\` or control character (below 0x20) in `bytes`, found
/// eight bytes at a time: in a word, `(x - 0x01..) & !x & 0x80..` flags the bytes that
/// are zero (with false flags only above a true one), so the lowest flag of the three
/// tests is the first such byte.
fn special(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let x = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let found = zero(x ^ (ONES * u64::from(b'"')))
            | zero(x ^ (ONES * u64::from(b'\\')))
            | (x.wrapping_sub(ONES * 0x20) & !x & HIGHS);
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let rest = chunks.remainder();
    rest.iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|i| at + i)
}

/// Events `Flat` can give (when it has the members, and nothing else is wrong).
trait FromFlat<'a>: Sized {
    fn from_flat(flat: &Flat<'a>) -> Option<Self>;
}

impl<'a> FromFlat<'a> for Opened<'a> {
    fn from_flat(flat: &Flat<'a>) -> Option<Self> {
        let priority = match flat.get("priority").ok()?? {
            Some("low") => Priority::Low,
            Some("normal") => Priority::Normal,
            Some("high") => Priority::High,
            Some("urgent") => Priority::Urgent,
            _ => return None,
        };
        Some(Self {
            ticket_id: flat.text("ticketId")?,
            title: flat.text("title")?,
            description: flat.get("description").ok()?.flatten().map(Cow::Borrowed),
            reporter: flat.text("reporter")?,
            priority,
        })
    }
}

impl<'a> FromFlat<'a> for Assigned<'a> {
    fn from_flat(flat: &Flat<'a>) -> Option<Self> {
        Some(Self {
            ticket_id: flat.text("ticketId")?,
            assignee: flat.text("assignee")?,
        })
    }
}

impl<'a> FromFlat<'a> for Commented<'a> {
    fn from_flat(flat: &Flat<'a>) -> Option<Self> {
        Some(Self {
            ticket_id: flat.text("ticketId")?,
            comment_id: Uuid::parse_str(&flat.text("commentId")?).ok()?,
            author: flat.text("author")?,
            text: flat.text("text")?,
        })
    }
}

impl<'a> FromFlat<'a> for Closed<'a> {
    fn from_flat(flat: &Flat<'a>) -> Option<Self> {
        Some(Self {
            ticket_id: flat.text("ticketId")?,
            resolution: flat.text("resolution")?,
        })
    }
}

impl<'a> FromFlat<'a> for Reopened<'a> {
    fn from_flat(flat: &Flat<'a>) -> Option<Self> {
        Some(Self {
            ticket_id: flat.text("ticketId")?,
            reason: flat.text("reason")?,
        })
    }
}

/// A tickets event as [`TicketsProjection`] decodes it, ahead of applying (the runtime
/// does that on its reader thread): its body parsed, the strings the read model keeps
/// already allocated, the ids it only looks up left in the event's bytes.
#[derive(Debug)]
pub struct TicketChange(Change);

#[derive(Debug)]
enum Change {
    Opened {
        id: Arc<str>,
        title: Arc<str>,
        description: Option<Arc<str>>,
        reporter: Arc<str>,
        priority: Priority,
    },
    Assigned {
        id: Text,
        assignee: Text,
    },
    Commented {
        id: Text,
        comment_id: Uuid,
        author: Text,
        text: Arc<str>,
    },
    /// Closed (`Status::Closed`, with the resolution) or reopened (`Status::Open`, with
    /// the reason); the note only when the version keeps the history.
    Status {
        id: Text,
        status: Status,
        note: Option<Arc<str>>,
    },
}

/// A string of an event's body: where it is in the event's bytes (most strings: no
/// escapes), or, decoded from escapes, its own copy.
#[derive(Debug)]
enum Text {
    At(Range<usize>),
    Owned(Box<str>),
}

impl Text {
    /// `text`, decoded from `data`.
    fn of(text: Cow<'_, str>, data: &[u8]) -> Self {
        let start = (text.as_ptr() as usize).wrapping_sub(data.as_ptr() as usize);
        match text {
            // Borrowed strings are slices of `data`; checked all the same.
            Cow::Borrowed(slice) if start <= data.len() && slice.len() <= data.len() - start => {
                Self::At(start..start + slice.len())
            }
            text => Self::Owned(text.into_owned().into_boxed_str()),
        }
    }

    /// The string, from the bytes of the event it was decoded from.
    fn get<'a>(&'a self, data: &'a [u8]) -> &'a str {
        match self {
            Self::At(range) => std::str::from_utf8(&data[range.clone()])
                .expect("a string of the event's body, checked when decoded"),
            Self::Owned(text) => text,
        }
    }
}

impl Projection for TicketsProjection {
    type State = TicketsView;
    type Decoded = TicketChange;

    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn version(&self) -> u32 {
        self.version
    }

    fn event_types(&self) -> &[&'static str] {
        TicketEvent::EVENT_TYPES
    }

    fn initial_state(&self) -> TicketsView {
        TicketsView::new(self.version >= 2)
    }

    /// Format 1: see `TicketsView::save`.
    fn snapshot_format(&self) -> Option<u32> {
        Some(1)
    }

    fn save(&self, view: &TicketsView, out: &mut Writer) {
        view.save(out);
    }

    fn load(&self, input: &mut Reader<'_>) -> Result<TicketsView, SnapshotError> {
        let view = TicketsView::load(input)?;
        if view.keeps_history() != (self.version >= 2) {
            return Err(input.invalid("a view of another projection version"));
        }
        Ok(view)
    }

    /// Warms the tickets the events are about, by the id in their stream's name
    /// (`ticket-{id}`), before they are applied.
    fn warm(&self, view: &TicketsView, events: &[RecordedEvent]) {
        view.warm(
            events
                .iter()
                .filter_map(|event| event.stream.strip_prefix("ticket-")),
        );
    }

    fn decode(&self, event: &RecordedEvent) -> Result<TicketChange, ApplyError> {
        let data = &event.data[..];
        let keeps_history = self.version >= 2;
        let change = match event.event_type.as_str() {
            "TicketOpened" => {
                let e: Opened<'_> = decode(event)?;
                Change::Opened {
                    id: Arc::from(e.ticket_id),
                    title: Arc::from(e.title),
                    description: e.description.map(Arc::from),
                    reporter: Arc::from(e.reporter),
                    priority: e.priority,
                }
            }
            "TicketAssigned" => {
                let e: Assigned<'_> = decode(event)?;
                Change::Assigned {
                    id: Text::of(e.ticket_id, data),
                    assignee: Text::of(e.assignee, data),
                }
            }
            "CommentAdded" => {
                let e: Commented<'_> = decode(event)?;
                Change::Commented {
                    id: Text::of(e.ticket_id, data),
                    comment_id: e.comment_id,
                    author: Text::of(e.author, data),
                    text: Arc::from(e.text),
                }
            }
            "TicketClosed" => {
                let e: Closed<'_> = decode(event)?;
                Change::Status {
                    id: Text::of(e.ticket_id, data),
                    status: Status::Closed,
                    note: keeps_history.then(|| Arc::from(e.resolution)),
                }
            }
            "TicketReopened" => {
                let e: Reopened<'_> = decode(event)?;
                Change::Status {
                    id: Text::of(e.ticket_id, data),
                    status: Status::Open,
                    note: keeps_history.then(|| Arc::from(e.reason)),
                }
            }
            other => {
                return Err(ApplyError::InvalidData {
                    detail: format!("`{other}` is not a tickets event"),
                });
            }
        };
        Ok(TicketChange(change))
    }

    fn apply(
        &self,
        view: &mut TicketsView,
        event: &RecordedEvent,
        decoded: TicketChange,
    ) -> Result<(), ApplyError> {
        let at = Stamp {
            position: event.position,
            recorded_at_ms: event.recorded_at_ms,
        };
        let data = &event.data[..];
        match decoded.0 {
            Change::Opened {
                id,
                title,
                description,
                reporter,
                priority,
            } => view.open(id, title, description, reporter, priority, at),
            Change::Assigned { id, assignee } => view.assign(id.get(data), assignee.get(data), at),
            Change::Commented {
                id,
                comment_id,
                author,
                text,
            } => view.comment(id.get(data), comment_id, author.get(data), text, at),
            Change::Status { id, status, note } => view.set_status(id.get(data), status, note, at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::TicketFilter;

    /// What serde_json alone makes of `data`.
    fn serde<'a, T: Deserialize<'a>>(data: &'a [u8]) -> Option<T> {
        serde_json::from_slice(data).ok()
    }

    /// `Flat` either declines or agrees with serde_json.
    fn agrees<'a, T>(data: &'a [u8]) -> bool
    where
        T: Deserialize<'a> + FromFlat<'a> + PartialEq + std::fmt::Debug,
    {
        match Flat::parse(data).and_then(|flat| T::from_flat(&flat)) {
            None => true,
            Some(fast) => {
                assert_eq!(
                    Some(&fast),
                    serde::<T>(data).as_ref(),
                    "{}",
                    String::from_utf8_lossy(data)
                );
                true
            }
        }
    }

    #[test]
    fn the_flat_path_takes_plain_events_and_agrees_with_serde() {
        let uuid = "00000000-0000-0000-0000-000000000007";
        let plain: [&[u8]; 5] = [
            br#"{"ticketId":"t-1","title":"Printer on fire","reporter":"ann","priority":"high"}"#,
            br#" { "ticketId" : "t-1" , "title":"T","description":null,"reporter":"a","priority":"low","extra":"x" } "#,
            br#"{"ticketId":"t-1","title":"T","description":"d","reporter":"a","priority":"urgent"}"#,
            br#"{"ticketId":"t-1","assignee":"bob"}"#,
            br#"{"ticketId":"t-1","resolution":"fixed"}"#,
        ];
        for data in plain {
            assert!(
                Flat::parse(data).is_some(),
                "{}",
                String::from_utf8_lossy(data)
            );
        }
        assert!(Opened::from_flat(&Flat::parse(plain[0]).unwrap()).is_some());
        assert!(Opened::from_flat(&Flat::parse(plain[1]).unwrap()).is_some());
        let comment =
            format!(r#"{{"ticketId":"t-1","commentId":"{uuid}","author":"bob","text":"On it"}}"#);
        assert!(Commented::from_flat(&Flat::parse(comment.as_bytes()).unwrap()).is_some());
        for data in plain {
            assert!(agrees::<Opened<'_>>(data));
            assert!(agrees::<Assigned<'_>>(data));
            assert!(agrees::<Closed<'_>>(data));
            assert!(agrees::<Reopened<'_>>(data));
        }
        assert!(agrees::<Commented<'_>>(comment.as_bytes()));
    }

    #[test]
    fn special_finds_the_first_quote_backslash_or_control_character() {
        let slow = |bytes: &[u8]| {
            bytes
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        };
        let mut cases: Vec<Vec<u8>> = vec![Vec::new(), b"plain text without".to_vec()];
        for len in 0..20 {
            for special_byte in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
                for at in 0..len {
                    let mut bytes: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
                    bytes[at] = special_byte;
                    // Bytes that trip naive tricks: 0x20 itself, high bytes, 0x7f.
                    if at + 1 < len {
                        bytes[at + 1] = [0x20, 0xff, 0x7f, 0x80, 0x21][at % 5];
                    }
                    cases.push(bytes);
                }
            }
        }
        cases.push("é\"ü".as_bytes().to_vec());
        cases.push(vec![
            0x20, 0x21, 0x5b, 0x5d, 0x7f, 0x80, 0xfe, 0xff, 0x23, 0x5c,
        ]);
        for bytes in cases {
            assert_eq!(special(&bytes), slow(&bytes), "{bytes:?}");
        }
    }

    #[test]
    fn the_flat_path_declines_what_it_does_not_know() {
        let declined: [&[u8]; 14] = [
            br#"{"ticketId":"t-\"1\"","assignee":"bob"}"#,
            br#"{"ticketId":"t-1","assignee":"b\u00f6b"}"#,
            br#"{"ticketId":"t-1","assignee":"bob","n":1}"#,
            br#"{"ticketId":"t-1","assignee":"bob","o":{}}"#,
            br#"{"ticketId":"t-1","assignee":"bob"} x"#,
            br#"{"ticketId":"t-1","assignee":"bob",}"#,
            br#"{"ticketId":"t-1" "assignee":"bob"}"#,
            br#"{"ticketId":"t-1","assignee":"bob""#,
            br#"["t-1","bob"]"#,
            br#"{"a":"","b":"","c":"","d":"","e":"","f":"","g":"","h":"","i":""}"#,
            b"{\"ticketId\":\"t-1\",\"assignee\":\"b\tb\"}",
            b"{\"ticketId\":\"t-1\",\"assignee\":\"b\xffb\"}",
            br#"{"ticketId":"t-1","assignee":nul}"#,
            b"",
        ];
        for data in declined {
            assert!(
                Flat::parse(data).is_none(),
                "{}",
                String::from_utf8_lossy(data)
            );
        }
        // Parsed, but not the event: serde_json decides (and refuses).
        let refused: [&[u8]; 5] = [
            br#"{"ticketId":"t-1","assignee":null}"#,
            br#"{"ticketId":"t-1"}"#,
            br#"{"ticketId":"t-1","ticketId":"t-2","assignee":"bob"}"#,
            br#"{"ticketId":"t-1","title":"T","reporter":"a","priority":"HIGH"}"#,
            br#"{"ticketId":"t-1","commentId":"nope","author":"a","text":"t"}"#,
        ];
        for data in refused {
            let flat = Flat::parse(data).expect("a flat object");
            assert!(Assigned::from_flat(&flat).is_none() || serde::<Assigned<'_>>(data).is_some());
            assert!(Opened::from_flat(&flat).is_none());
            assert!(Commented::from_flat(&flat).is_none());
            assert!(agrees::<Assigned<'_>>(data));
        }
        assert!(
            serde::<Assigned<'_>>(refused[2]).is_none(),
            "serde refuses duplicates"
        );
        assert_eq!(Flat::parse(refused[2]).unwrap().get("ticketId"), Err(()));
    }

    /// Escaped strings are decoded into copies of their own, the others read in place:
    /// both reach the view the same.
    #[test]
    fn escaped_and_plain_strings_reach_the_view_alike() {
        let events: Vec<RecordedEvent> = [
            ("TicketOpened", r#"{"ticketId":"t\u002d1","title":"Printer \"on\" fire","reporter":"ann","priority":"high"}"#),
            ("TicketAssigned", r#"{"ticketId":"t-1","assignee":"b\u00f6b"}"#),
            ("CommentAdded", r#"{"ticketId":"t\u002d1","commentId":"00000000-0000-0000-0000-000000000007","author":"b\u00f6b","text":"On it\n"}"#),
            ("CommentAdded", r#"{"ticketId":"t-1","commentId":"00000000-0000-0000-0000-000000000008","author":"ann","text":"Thanks"}"#),
            ("TicketClosed", r#"{"ticketId":"t\u002d1","resolution":"fixed \"for now\""}"#),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, (event_type, data))| RecordedEvent {
            position: i as u64 + 1,
            stream: "ticket-t-1".into(),
            version: i as u64 + 1,
            event_type: event_type.into(),
            data: data.as_bytes().to_vec(),
            command_id: Uuid::from_u128(i as u128),
            correlation_id: Uuid::from_u128(i as u128),
            recorded_at_ms: 0,
            schema_version: 1,
            recorded_schema_version: 1,
        })
        .collect();
        let mut replay = writ_query::Replay::new(TicketsProjection::current());
        replay.apply(&events);
        assert_eq!(replay.stats().errors, 0, "{:?}", replay.stats().last_error);
        let view = replay.state();
        let ticket = view.ticket("t-1").expect("opened");
        assert_eq!(&*ticket.title, "Printer \"on\" fire");
        assert_eq!(ticket.assignee.as_deref(), Some("böb"));
        let comments: Vec<(&str, &str)> = ticket
            .comments
            .iter()
            .map(|c| (&*c.author, &*c.text))
            .collect();
        assert_eq!(comments, [("böb", "On it\n"), ("ann", "Thanks")]);
        assert_eq!(ticket.status, Status::Closed);
        let note = ticket
            .history
            .last()
            .and_then(|change| change.note.as_deref());
        assert_eq!(note, Some("fixed \"for now\""));
        let plain = TicketFilter {
            text: Some("printer on".into()),
            ..TicketFilter::default()
        };
        assert_eq!(view.search(&plain, None, 10).total, 1);
    }
}
