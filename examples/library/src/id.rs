//! [`Id`]: what clients name books and members by.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A book's or a member's id: 1 to 64 ASCII letters, digits, `.`, `_` or `-`.
///
/// Checked while the payload is decoded, so a bad id is a decoding error (`422`) that
/// never reaches the rules, and no command can name a stream `book-` or one with a
/// newline in its name.
///
/// ```
/// use writ_example_library::Id;
/// assert_eq!(Id::new("b-1").unwrap().as_str(), "b-1");
/// assert!(Id::new("").is_err());
/// assert!(Id::new("a b").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Id(String);

impl Id {
    /// The longest id, in characters.
    pub const LEN_MAX: usize = 64;

    /// Checks `id` and wraps it.
    pub fn new(id: impl Into<String>) -> Result<Self, String> {
        let id = id.into();
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if id.is_empty() || id.len() > Self::LEN_MAX || !id.chars().all(allowed) {
            return Err(format!(
                "an id is 1 to {} ASCII letters, digits, '.', '_' or '-'; got {id:?}",
                Self::LEN_MAX
            ));
        }
        Ok(Self(id))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Id {
    type Error = String;

    fn try_from(id: String) -> Result<Self, String> {
        Self::new(id)
    }
}

impl From<Id> for String {
    fn from(id: Id) -> Self {
        id.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The schema says what [`Id::new`] accepts, so `GET /domains` tells clients.
impl schemars::JsonSchema for Id {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Id".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[A-Za-z0-9._-]{1,64}$",
        })
    }
}
