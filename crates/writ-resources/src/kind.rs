//! One resource type: its name, its schema compiled, the names of its commands, events and
//! streams, and the checks of documents and ids.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use writ_domain::Violation;

use crate::custom::Handlers;
use crate::machine::Machine;
use crate::migrations::Migrations;
use crate::rules::Rules;

/// Longest document id, in bytes.
pub const ID_BYTES_MAX: usize = 200;

/// Most violations a document's check reports (the first ones, in the validator's order).
pub const VIOLATIONS_MAX: usize = 32;

/// What a document id may be: 1 to [`ID_BYTES_MAX`] bytes of letters, digits and
/// `_ . ~ : @ -`, beginning with a letter or digit. Ids go into URL paths (`/users/{id}`)
/// and stream names (`users-{id}`) as they are: nothing to escape, and never `.` or `..`,
/// which clients rewrite in paths.
pub const ID_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9_.~:@-]{0,199}$";

/// One resource type, as `resources/T.json` declares it. See the crate documentation.
pub struct ResourceType {
    /// `T`, also the name of its domain and of its read model. Leaked once per load: the
    /// read model runtime takes names as `&'static str`.
    pub(crate) name: &'static str,
    /// The schema's `title`, which names the commands and events (`User`).
    pub(crate) title: String,
    /// The file it was loaded from, for messages.
    pub(crate) file: PathBuf,
    /// The schema as written.
    pub(crate) schema: Value,
    pub(crate) validator: jsonschema::Validator,
    /// `x-writ-unique`: top-level fields whose values are unique among live documents.
    pub(crate) unique: Vec<String>,
    /// The event types the read model applies, leaked with `name`.
    pub(crate) document_events: &'static [&'static str],
    /// `machines/T.json`, if any.
    pub(crate) machine: Option<Machine>,
    /// `rules/T.json` (none without it).
    pub(crate) rules: Rules,
    /// `handlers/T.js`, if any: see [`Handlers`].
    pub(crate) handlers: Option<Arc<dyn Handlers>>,
    /// `x-writ-version` (1 without it): the schema version its documents' events and its
    /// commands are recorded with.
    pub(crate) version: u32,
    /// `migrations/T.js`, if any: how older versions read under this one.
    pub(crate) migrations: Option<Arc<Migrations>>,
    /// The code tag of its read model's snapshots: the digest of the files that determine
    /// it (see the `snapshot` module).
    pub(crate) code_tag: String,
}

impl fmt::Debug for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourceType")
            .field("name", &self.name)
            .field("title", &self.title)
            .field("file", &self.file)
            .field("unique", &self.unique)
            .field("machine", &self.machine)
            .field("rules", &self.rules)
            .field("handlers", &self.handlers)
            .field("version", &self.version)
            .field("migrations", &self.migrations)
            .finish_non_exhaustive()
    }
}

/// What a command does to a document; with the type's title, the names of its command
/// (`Create{Title}`) and event (`{Title}Created`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `Create{Title}` `{"id", "document"}`: a document where there is none (never was, or
    /// was deleted). Event `{Title}Created {"document"}`.
    Create,
    /// `Replace{Title}` `{"id", "document"}`: a live document's whole content. Event
    /// `{Title}Replaced {"document"}`.
    Replace,
    /// `Patch{Title}` `{"id", "patch"}` (RFC 6902 operations) or `{"id", "mergePatch"}`
    /// (RFC 7396). Event `{Title}Patched {"patch"}`: the RFC 6902 operations applied.
    Patch,
    /// `Delete{Title}` `{"id"}`. Event `{Title}Deleted {}`.
    Delete,
}

impl Action {
    /// Every action, in the order commands are listed.
    pub const ALL: [Action; 4] = [
        Action::Create,
        Action::Replace,
        Action::Patch,
        Action::Delete,
    ];

    /// The verb of the command's name.
    pub const fn verb(self) -> &'static str {
        match self {
            Action::Create => "Create",
            Action::Replace => "Replace",
            Action::Patch => "Patch",
            Action::Delete => "Delete",
        }
    }

    /// The past tense of the event's name.
    pub const fn event_suffix(self) -> &'static str {
        match self {
            Action::Create => "Created",
            Action::Replace => "Replaced",
            Action::Patch => "Patched",
            Action::Delete => "Deleted",
        }
    }
}

/// The event of a claim on a unique value: `{Title}UniqueClaimed`.
pub(crate) const CLAIMED: &str = "UniqueClaimed";
/// The event of a claim given up: `{Title}UniqueReleased`.
pub(crate) const RELEASED: &str = "UniqueReleased";

impl ResourceType {
    /// `T`: the type's name, its route (`/T`), domain and read model.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The schema's `title`: `User`.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The file the type was loaded from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The schema, as written.
    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// The schema's version (`x-writ-version`, 1 without it): what its documents' events
    /// and its commands are recorded with.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// `migrations/T.js`, if the type has one.
    pub fn migrations(&self) -> Option<&Migrations> {
        self.migrations.as_deref()
    }

    /// The fields unique among live documents (`x-writ-unique`).
    pub fn unique_fields(&self) -> &[String] {
        &self.unique
    }

    /// The command that does `action`: `CreateUser`.
    pub fn command(&self, action: Action) -> String {
        format!("{}{}", action.verb(), self.title)
    }

    /// The event `action` records: `UserCreated`.
    pub fn event(&self, action: Action) -> String {
        format!("{}{}", self.title, action.event_suffix())
    }

    /// Whether `event_type` is the event `action` records ([`ResourceType::event`]),
    /// without making its name.
    pub(crate) fn is_event(&self, event_type: &str, action: Action) -> bool {
        event_type.strip_prefix(self.title.as_str()) == Some(action.event_suffix())
    }

    /// `{Title}UniqueClaimed` or `{Title}UniqueReleased`.
    pub(crate) fn claim_event(&self, claimed: bool) -> String {
        format!("{}{}", self.title, if claimed { CLAIMED } else { RELEASED })
    }

    /// Every event type the type records: its CRUD events, its claims' and its custom
    /// commands'.
    pub fn event_types(&self) -> Vec<String> {
        let mut types = self.event_types_of_crud();
        for event in self.custom_events() {
            if !types.contains(&event) {
                types.push(event);
            }
        }
        types
    }

    /// The event types every type records, custom commands or not.
    pub(crate) fn event_types_of_crud(&self) -> Vec<String> {
        let mut types: Vec<String> = Action::ALL.iter().map(|a| self.event(*a)).collect();
        types.push(self.claim_event(true));
        types.push(self.claim_event(false));
        types
    }

    /// The state machine, if the type has one (`machines/T.json`).
    pub fn machine(&self) -> Option<&Machine> {
        self.machine.as_ref()
    }

    /// The rules (`rules/T.json`), empty without them.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// The prefix of its documents' streams: `T-`.
    pub fn document_prefix(&self) -> String {
        format!("{}-", self.name)
    }

    /// The prefix of the streams that hold its unique values' claims: `T~`. Documents'
    /// streams are `T-{id}`, so no id can name one.
    pub fn claim_prefix(&self) -> String {
        format!("{}~", self.name)
    }

    /// The stream of document `id`: `T-{id}`.
    pub fn stream(&self, id: &str) -> String {
        format!("{}-{id}", self.name)
    }

    /// The stream that holds the claim on `value` of `field`: `T~{field}~{hex}`, where
    /// `hex` is the SHA-256 of the value's JSON text (object members sorted), so that any
    /// value, however long, names a stream of bounded length.
    pub fn claim_stream(&self, field: &str, value: &Value) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        // A string or a number (what unique fields usually hold) is its own canonical form.
        let text = match value {
            Value::Object(_) | Value::Array(_) => serde_json::to_vec(&canonical(value)),
            _ => serde_json::to_vec(value),
        }
        .expect("a JSON value serializes");
        let digest = Sha256::digest(&text);
        let mut stream = String::with_capacity(self.name.len() + field.len() + 2 + 64);
        stream.push_str(self.name);
        stream.push('~');
        stream.push_str(field);
        stream.push('~');
        for byte in digest {
            stream.push(char::from(HEX[usize::from(byte >> 4)]));
            stream.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        stream
    }

    /// The ids of documents: [`ID_PATTERN`].
    pub fn check_id(id: &str) -> Result<(), String> {
        let mut bytes = id.bytes();
        let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
        let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || b"_.~:@-".contains(&b));
        if id.len() <= ID_BYTES_MAX && first_ok && rest_ok {
            Ok(())
        } else {
            Err(format!(
                "a document id is 1 to {ID_BYTES_MAX} letters, digits and _ . ~ : @ -, beginning with a letter or digit, not {id:?}"
            ))
        }
    }

    /// Checks a document against the type's schema: every violation (at most
    /// [`VIOLATIONS_MAX`]) with the JSON pointer of its place. A missing required member
    /// is at its own pointer (`/email`), not at its parent's. The id is carried apart, so
    /// a document holding `id` is refused too.
    pub fn check(&self, document: &Value) -> Vec<Violation> {
        let Value::Object(members) = document else {
            return vec![Violation {
                pointer: String::new(),
                message: "a document is a JSON object".to_owned(),
            }];
        };
        let mut violations = Vec::new();
        // The schema judges the rest, without the `id` (which an `additionalProperties:
        // false` would name a second time, at the document's root).
        let without_id;
        let checked = if members.contains_key("id") {
            violations.push(Violation {
                pointer: "/id".to_owned(),
                message: "the document's id is not part of the document: it is the id of its URL (or the payload's `id`)".to_owned(),
            });
            let mut rest = members.clone();
            rest.remove("id");
            without_id = Value::Object(rest);
            &without_id
        } else {
            document
        };
        // A valid document (the usual case) is told apart without collecting errors,
        // which allocates every error's path and message.
        if violations.is_empty() && self.validator.is_valid(checked) {
            return violations;
        }
        for error in self.validator.iter_errors(checked) {
            if violations.len() >= VIOLATIONS_MAX {
                break;
            }
            let mut pointer = error.instance_path().as_str().to_owned();
            if let jsonschema::error::ValidationErrorKind::Required { property } = error.kind() {
                pointer.push('/');
                pointer.push_str(&escape_pointer(property.as_str().unwrap_or_default()));
            }
            violations.push(Violation {
                pointer,
                message: error.to_string(),
            });
        }
        violations
    }

    /// The payload schema of the command that does `action` in schema `version`: the
    /// current one's ([`ResourceType::payload_schema`]), or for an older version one whose
    /// document is any object (migrated by `migrations/T.js`, then checked by the schema).
    pub fn payload_schema_of_version(&self, action: Action, version: u32) -> Value {
        let mut schema = self.payload_schema(action);
        if version < self.version
            && let Some(document) = schema.pointer_mut("/properties/document")
        {
            *document = json!({
                "type": "object",
                "description": format!("A document of schema version {version}: migrated to version {} (migrations/{}.js), then checked against the type's schema.", self.version, self.name),
            });
        }
        schema
    }

    /// The payload schema of the command that does `action`, with the type's schema inside
    /// (given an `$id` of its own when it has none, so that its `#` references resolve
    /// within it).
    pub fn payload_schema(&self, action: Action) -> Value {
        let id = json!({
            "type": "string",
            "pattern": ID_PATTERN,
            "description": "The document's id: its stream is `T-{id}`.",
        });
        let mut document = self.schema.clone();
        if let Value::Object(members) = &mut document {
            members.remove("$schema");
            members
                .entry("$id")
                .or_insert_with(|| json!(format!("urn:writ:resource:{}", self.name)));
        }
        let (properties, required, one_of) = match action {
            Action::Create | Action::Replace => (
                json!({"id": id, "document": document}),
                json!(["id", "document"]),
                None,
            ),
            Action::Patch => (
                json!({
                    "id": id,
                    "patch": {
                        "type": "array",
                        "description": "RFC 6902 operations, applied in order to the current document; the result must fit the type's schema.",
                        "items": {
                            "type": "object",
                            "required": ["op", "path"],
                            "properties": {
                                "op": {"enum": ["add", "remove", "replace", "move", "copy", "test"]},
                                "path": {"type": "string"},
                                "from": {"type": "string"},
                                "value": true,
                            },
                        },
                    },
                    "mergePatch": {
                        "description": "An RFC 7396 merge patch instead of `patch`: the writer turns it into the RFC 6902 operations it applies to the current document.",
                    },
                }),
                json!(["id"]),
                Some(json!([{"required": ["patch"]}, {"required": ["mergePatch"]}])),
            ),
            Action::Delete => (json!({"id": id}), json!(["id"]), None),
        };
        let mut schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": self.command(action),
            "type": "object",
            "required": required,
            "properties": properties,
            "additionalProperties": false,
        });
        if let Some(one_of) = one_of {
            schema["oneOf"] = one_of;
        }
        schema
    }
}

/// `value` with every object's members sorted by key, so that equal values have one text.
pub(crate) fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(members) => {
            let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                sorted
                    .into_iter()
                    .map(|(k, v)| (k.clone(), canonical(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// A member name as a JSON pointer token (RFC 6901): `~` as `~0`, `/` as `~1`.
pub(crate) fn escape_pointer(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}
