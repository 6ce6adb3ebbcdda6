use std::fmt;

/// One accepted command name and version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommandInfo {
    /// The command's name, for example `OpenTicket`.
    pub name: &'static str,
    /// The payload version, starting at 1.
    pub version: u32,
    /// Issued only by the domain's processes and timers: clients cannot send it (they get
    /// [`CommandError::Internal`]), but it is logged, decided and answered like any other.
    pub internal: bool,
}

type DecodeFn<C> = Box<dyn Fn(&[u8]) -> Result<(C, Vec<u8>), serde_json::Error> + Send + Sync>;
type DecodeLoggedFn<C> = Box<dyn Fn(&[u8]) -> Result<C, serde_json::Error> + Send + Sync>;

struct Entry<C> {
    info: CommandInfo,
    /// The payload's JSON Schema (draft 2020-12, subschemas inlined), derived from `P`.
    schema: serde_json::Value,
    /// Decodes a client's payload, returning the upcast command and the canonical payload.
    decode: DecodeFn<C>,
    /// Decodes a canonical payload read back from the command log.
    decode_logged: DecodeLoggedFn<C>,
}

/// Every command a domain accepts: name, version, payload type, and the upcast from each
/// version's payload to the domain's newest command type `C`.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use writ_domain::CommandCatalog;
///
/// #[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
/// struct RenameV1 { name: String }
/// #[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
/// struct Rename { name: String, reason: String }
///
/// let catalog = CommandCatalog::new()
///     .command("Rename", 1, |v1: RenameV1| Rename { name: v1.name, reason: "none".into() })
///     .command("Rename", 2, |v2: Rename| v2);
/// let decoded = catalog.decode("Rename", None, br#"{"reason":"typo", "name":"x"}"#).unwrap();
/// assert_eq!(decoded.version, 2); // the newest when no version is given
/// assert_eq!(decoded.canonical_payload, br#"{"name":"x","reason":"typo"}"#);
/// let old = catalog.decode("Rename", Some(1), br#"{"name":"y"}"#).unwrap();
/// assert_eq!(old.command.reason, "none");
/// // The payload schema comes from the type.
/// let schema = catalog.schema("Rename", 2).unwrap();
/// assert_eq!(schema["required"], serde_json::json!(["name", "reason"]));
/// ```
pub struct CommandCatalog<C> {
    entries: Vec<Entry<C>>,
}

impl<C> fmt::Debug for CommandCatalog<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| e.info))
            .finish()
    }
}

impl<C> Default for CommandCatalog<C> {
    fn default() -> Self {
        Self::new()
    }
}

/// A client's command, decoded and upcast to the domain's newest command type.
#[derive(Debug)]
pub struct DecodedCommand<C> {
    /// The command, upcast to the newest version.
    pub command: C,
    /// The command name as declared in the catalog.
    pub name: &'static str,
    /// The version the payload was decoded as (the newest when the client gave none).
    pub version: u32,
    /// The payload re-encoded from its typed form: fields in declaration order, no
    /// whitespace, unknown fields refused. Two payloads that mean the same thing have the
    /// same canonical bytes; this is what the command log stores and what duplicates are
    /// compared by.
    pub canonical_payload: Vec<u8>,
}

/// Why a command could not be decoded. The server maps every variant to `422`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The command is issued only by the domain's processes and timers; clients cannot send
    /// it.
    #[error("command `{name}` is issued by the server's processes only")]
    Internal {
        /// The command's name.
        name: String,
    },
    /// No command of this name: the client should check the name against the catalog.
    #[error("unknown command `{name}`")]
    UnknownCommand {
        /// The name the client sent.
        name: String,
    },
    /// The command exists but not in this version.
    #[error("command `{name}` has no version {version} (known versions: {known:?})")]
    UnknownVersion {
        /// The command's name.
        name: String,
        /// The version the client asked for.
        version: u32,
        /// The versions that exist.
        known: Vec<u32>,
    },
    /// The payload does not match the command version's schema.
    #[error("invalid payload for `{name}` version {version}: {detail}")]
    InvalidPayload {
        /// The command's name.
        name: String,
        /// The version the payload was checked against.
        version: u32,
        /// What is wrong, with the field where the decoder knows it.
        detail: String,
    },
    /// The payload's document does not fit its JSON Schema (a domain built at run time,
    /// such as a resource type, checks documents when it decodes them): each violation
    /// with the JSON pointer of its place in the document.
    #[error("invalid document for `{name}`: {}", describe(violations))]
    SchemaViolation {
        /// The command's name.
        name: String,
        /// Every place the document breaks its schema, in document order where known.
        violations: Vec<Violation>,
    },
}

/// One place where a document breaks its JSON Schema.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Violation {
    /// The JSON pointer (RFC 6901) of the value at fault in the document: `""` for the
    /// document itself, `/email` for its `email` member, also when that member is missing
    /// and required.
    pub pointer: String,
    /// What is wrong, for people.
    pub message: String,
}

/// `pointer: message; ...` for an error's text.
fn describe(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| {
            if v.pointer.is_empty() {
                v.message.clone()
            } else {
                format!("{}: {}", v.pointer, v.message)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl<C> CommandCatalog<C> {
    /// An empty catalog.
    pub fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Declares that `name` in `version` has payload type `P`, and how it upcasts to `C`.
    ///
    /// The canonical payload is `P` serialized again, so `P` decides what "the same
    /// payload" means. Give payload types `#[serde(deny_unknown_fields)]` (otherwise unknown
    /// fields are silently dropped from what is logged) and make optional fields skip
    /// serializing when absent (`#[serde(skip_serializing_if = "Option::is_none")]`), so
    /// that a missing field and a `null` one are the same command.
    ///
    /// The payload's JSON Schema, published in `GET /domains` and `/openapi.json`, is
    /// derived from `P` with `schemars` (`#[derive(JsonSchema)]` beside `Deserialize`):
    /// it follows the same serde attributes, so it says what the decoder accepts.
    ///
    /// # Panics
    /// If the same name and version are declared twice, or the version is 0.
    pub fn command<P>(self, name: &'static str, version: u32, upcast: fn(P) -> C) -> Self
    where
        P: serde::de::DeserializeOwned + serde::Serialize + schemars::JsonSchema + 'static,
        C: 'static,
    {
        self.declare(name, version, false, upcast)
    }

    /// Declares a command that only the domain's processes and timers issue (see
    /// [`CommandInfo::internal`]), as [`CommandCatalog::command`] does.
    ///
    /// # Panics
    /// As [`CommandCatalog::command`].
    pub fn internal<P>(self, name: &'static str, version: u32, upcast: fn(P) -> C) -> Self
    where
        P: serde::de::DeserializeOwned + serde::Serialize + schemars::JsonSchema + 'static,
        C: 'static,
    {
        self.declare(name, version, true, upcast)
    }

    fn declare<P>(
        mut self,
        name: &'static str,
        version: u32,
        internal: bool,
        upcast: fn(P) -> C,
    ) -> Self
    where
        P: serde::de::DeserializeOwned + serde::Serialize + schemars::JsonSchema + 'static,
        C: 'static,
    {
        assert!(version >= 1, "command versions start at 1");
        assert!(
            self.find(name, version).is_none(),
            "command {name} version {version} declared twice"
        );
        self.entries.push(Entry {
            info: CommandInfo {
                name,
                version,
                internal,
            },
            schema: schema_of::<P>(),
            decode: Box::new(move |bytes| {
                let payload: P = serde_json::from_slice(bytes)?;
                let canonical = serde_json::to_vec(&payload)?;
                Ok((upcast(payload), canonical))
            }),
            decode_logged: Box::new(move |bytes| serde_json::from_slice::<P>(bytes).map(upcast)),
        });
        self
    }

    /// Every declared command name and version, in declaration order.
    pub fn infos(&self) -> impl Iterator<Item = CommandInfo> + '_ {
        self.entries.iter().map(|e| e.info)
    }

    /// The payload JSON Schema of `name` in `version`.
    pub fn schema(&self, name: &str, version: u32) -> Option<&serde_json::Value> {
        self.find(name, version).map(|e| &e.schema)
    }

    /// The newest version of `name`, if the command exists.
    pub fn newest_version(&self, name: &str) -> Option<u32> {
        self.entries
            .iter()
            .filter(|e| e.info.name == name)
            .map(|e| e.info.version)
            .max()
    }

    fn find(&self, name: &str, version: u32) -> Option<&Entry<C>> {
        self.entries
            .iter()
            .find(|e| e.info.name == name && e.info.version == version)
    }

    fn resolve(&self, name: &str, version: Option<u32>) -> Result<&Entry<C>, CommandError> {
        let newest = self
            .newest_version(name)
            .ok_or_else(|| CommandError::UnknownCommand {
                name: name.to_owned(),
            })?;
        let version = version.unwrap_or(newest);
        self.find(name, version)
            .ok_or_else(|| CommandError::UnknownVersion {
                name: name.to_owned(),
                version,
                known: self
                    .entries
                    .iter()
                    .filter(|e| e.info.name == name)
                    .map(|e| e.info.version)
                    .collect(),
            })
    }

    /// Decodes a client's payload (JSON bytes) as `name` in `version`, or in the newest
    /// version when `version` is `None`, and upcasts it.
    pub fn decode(
        &self,
        name: &str,
        version: Option<u32>,
        payload: &[u8],
    ) -> Result<DecodedCommand<C>, CommandError> {
        let entry = self.resolve(name, version)?;
        let invalid = |detail: String| CommandError::InvalidPayload {
            name: entry.info.name.to_owned(),
            version: entry.info.version,
            detail,
        };
        if payload.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(invalid("the payload must be a JSON object".to_owned()));
        }
        let (command, canonical_payload) =
            (entry.decode)(payload).map_err(|e| invalid(e.to_string()))?;
        Ok(DecodedCommand {
            command,
            name: entry.info.name,
            version: entry.info.version,
            canonical_payload,
        })
    }

    /// Decodes a canonical payload read back from the command log.
    pub fn decode_logged(
        &self,
        name: &str,
        version: u32,
        payload: &[u8],
    ) -> Result<C, CommandError> {
        let entry = self.resolve(name, Some(version))?;
        (entry.decode_logged)(payload).map_err(|e| CommandError::InvalidPayload {
            name: entry.info.name.to_owned(),
            version,
            detail: e.to_string(),
        })
    }
}

/// The JSON Schema of `P` as a self-contained object: draft 2020-12, every subschema
/// inlined (no `$defs`, whose references would not resolve once the schema is embedded in
/// another document such as the OpenAPI description), without `$schema`.
fn schema_of<P: schemars::JsonSchema>() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|settings| settings.inline_subschemas = true)
        .into_generator();
    let mut schema = generator.into_root_schema_for::<P>().to_value();
    if let Some(object) = schema.as_object_mut() {
        object.remove("$schema");
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Ping {
        n: u32,
    }

    fn catalog() -> CommandCatalog<Ping> {
        CommandCatalog::new().command("Ping", 1, |p: Ping| p)
    }

    #[test]
    fn unknown_name_version_and_bad_payloads_are_distinct_errors() {
        let c = catalog();
        assert!(matches!(
            c.decode("Pong", None, b"{}"),
            Err(CommandError::UnknownCommand { .. })
        ));
        assert_eq!(
            c.decode("Ping", Some(3), b"{}").unwrap_err(),
            CommandError::UnknownVersion {
                name: "Ping".into(),
                version: 3,
                known: vec![1]
            }
        );
        for bad in [
            &b"[1]"[..],
            b"1",
            b"{}",
            b"{\"n\":1,\"x\":2}",
            b"{\"n\":-1}",
            b"{",
        ] {
            assert!(
                matches!(
                    c.decode("Ping", Some(1), bad),
                    Err(CommandError::InvalidPayload { .. })
                ),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn schemas_are_self_contained_and_follow_serde() {
        #[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
        #[serde(rename_all = "lowercase")]
        enum Level {
            Low,
            High,
        }
        #[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        struct Raise {
            ticket_id: String,
            level: Level,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            note: Option<String>,
        }
        let c = CommandCatalog::new().internal("Raise", 1, |r: Raise| r);
        let schema = c.schema("Raise", 1).unwrap();
        assert!(schema.get("$defs").is_none() && schema.get("$schema").is_none());
        assert_eq!(
            schema["properties"]["level"]["enum"],
            serde_json::json!(["low", "high"])
        );
        assert_eq!(schema["required"], serde_json::json!(["ticketId", "level"]));
        assert_eq!(schema["additionalProperties"], serde_json::json!(false));
        assert!(c.infos().all(|i| i.internal));
    }

    #[test]
    fn logged_payload_decodes_to_the_same_command() {
        let c = catalog();
        let d = c.decode("Ping", None, b" { \"n\" : 5 } ").unwrap();
        assert_eq!(d.canonical_payload, b"{\"n\":5}");
        assert_eq!(
            c.decode_logged("Ping", 1, &d.canonical_payload).unwrap(),
            d.command
        );
    }
}
