use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::{Serialize, Serializer};

/// A ticket's id, as clients send it in `ticketId`: a non-empty string of at most
/// [`TicketId::MAX_LEN`] bytes (UTF-8) with no control characters.
///
/// The id is checked while the payload is decoded, so a bad id is a decoding error (the
/// server answers `422`) and never reaches the rules: no command can address a stream named
/// `ticket-` or one with a newline in its name.
///
/// ```
/// use writ_tickets::TicketId;
///
/// let id = TicketId::new("t-1").unwrap();
/// assert_eq!(id.as_str(), "t-1");
/// assert!(TicketId::new("").is_err());
/// assert!(TicketId::new("a\nb").is_err());
/// assert!(TicketId::new("x".repeat(201)).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TicketId(String);

/// A string of 1 to [`TicketId::MAX_LEN`] bytes without control characters (the length is
/// checked in bytes, which JSON Schema cannot say; the schema gives the character bound
/// that no valid id exceeds).
impl schemars::JsonSchema for TicketId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TicketId".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "minLength": 1,
            "maxLength": TicketId::MAX_LEN,
            "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]+$",
            "description": "A ticket's id: 1 to 200 bytes of UTF-8 without control characters.",
        })
    }
}

/// Why a string is not a [`TicketId`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidTicketId {
    /// The id is the empty string.
    Empty,
    /// The id is longer than [`TicketId::MAX_LEN`] bytes.
    TooLong {
        /// The id's length in bytes.
        len: usize,
    },
    /// The id holds a control character (`char::is_control`: C0, DEL or C1).
    ControlCharacter {
        /// The byte offset of the first control character.
        at: usize,
    },
}

impl fmt::Display for InvalidTicketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("ticketId must not be empty"),
            Self::TooLong { len } => write!(
                f,
                "ticketId must be at most {} bytes, got {len}",
                TicketId::MAX_LEN
            ),
            Self::ControlCharacter { at } => {
                write!(
                    f,
                    "ticketId must not contain control characters (byte {at})"
                )
            }
        }
    }
}

impl std::error::Error for InvalidTicketId {}

impl TicketId {
    /// The longest accepted id, in bytes.
    pub const MAX_LEN: usize = 200;

    /// Checks `id` and wraps it.
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidTicketId> {
        let id = id.into();
        check(&id)?;
        Ok(Self(id))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

fn check(id: &str) -> Result<(), InvalidTicketId> {
    if id.is_empty() {
        return Err(InvalidTicketId::Empty);
    }
    if id.len() > TicketId::MAX_LEN {
        return Err(InvalidTicketId::TooLong { len: id.len() });
    }
    match id.char_indices().find(|(_, c)| c.is_control()) {
        Some((at, _)) => Err(InvalidTicketId::ControlCharacter { at }),
        None => Ok(()),
    }
}

impl fmt::Display for TicketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for TicketId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TicketId {
    type Error = InvalidTicketId;

    fn try_from(id: String) -> Result<Self, Self::Error> {
        Self::new(id)
    }
}

impl TryFrom<&str> for TicketId {
    type Error = InvalidTicketId;

    fn try_from(id: &str) -> Result<Self, Self::Error> {
        check(id)?;
        Ok(Self(id.to_owned()))
    }
}

impl std::str::FromStr for TicketId {
    type Err = InvalidTicketId;

    fn from_str(id: &str) -> Result<Self, Self::Err> {
        Self::try_from(id)
    }
}

impl From<TicketId> for String {
    fn from(id: TicketId) -> Self {
        id.0
    }
}

impl Serialize for TicketId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TicketId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_string(TicketIdVisitor)
    }
}

/// Checks the id before copying it, and reuses the decoder's buffer when it hands one over.
struct TicketIdVisitor;

impl Visitor<'_> for TicketIdVisitor {
    type Value = TicketId;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a ticket id: a non-empty string of at most {} bytes without control characters",
            TicketId::MAX_LEN
        )
    }

    fn visit_str<E: de::Error>(self, id: &str) -> Result<TicketId, E> {
        TicketId::try_from(id).map_err(E::custom)
    }

    fn visit_string<E: de::Error>(self, id: String) -> Result<TicketId, E> {
        TicketId::new(id).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_ids_are_accepted() {
        for ok in [
            "t",
            "t-1",
            "ticket 42",
            "é",
            "日本語",
            "a/b:c?d#e",
            " padded ",
        ] {
            assert_eq!(TicketId::new(ok).unwrap().as_str(), ok, "{ok:?}");
        }
    }

    #[test]
    fn the_length_limit_counts_bytes_not_characters() {
        assert!(TicketId::new("x".repeat(200)).is_ok());
        assert!(TicketId::new("é".repeat(100)).is_ok()); // 200 bytes
        assert_eq!(
            TicketId::new("é".repeat(101)),
            Err(InvalidTicketId::TooLong { len: 202 })
        );
        assert_eq!(
            TicketId::new("x".repeat(201)),
            Err(InvalidTicketId::TooLong { len: 201 })
        );
    }

    #[test]
    fn empty_and_control_characters_are_refused() {
        assert_eq!(TicketId::new(""), Err(InvalidTicketId::Empty));
        for (bad, at) in [
            ("a\nb", 1),
            ("\0", 0),
            ("tab\t", 3),
            ("del\u{7f}", 3),
            ("éc1\u{85}", 4),
            ("\u{1b}[31m", 0),
        ] {
            assert_eq!(
                TicketId::new(bad),
                Err(InvalidTicketId::ControlCharacter { at }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn json_round_trip_is_a_plain_string() {
        let id: TicketId = serde_json::from_str(r#""t-\u0031""#).unwrap();
        assert_eq!(id.as_str(), "t-1");
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""t-1""#);
        // Escaped control characters are refused after unescaping.
        let err = serde_json::from_str::<TicketId>(r#""a\nb""#).unwrap_err();
        assert!(err.to_string().contains("control characters"), "{err}");
        assert!(serde_json::from_str::<TicketId>("1").is_err());
        assert!(serde_json::from_str::<TicketId>("null").is_err());
    }
}
