//! A resource type as a domain built at run time: its commands decoded and checked against
//! the schema, and the executor the single writer decides them with.
//!
//! # Uniqueness
//!
//! A value of a unique field is claimed in a stream of its own, `T~{field}~{sha256}`
//! (see [`ResourceType::claim_stream`]), by a `{Title}UniqueClaimed {"field", "value",
//! "id"}` event, and given up by `{Title}UniqueReleased` with the same data. A command
//! that gives a document a unique value reads that value's claim stream: held by another
//! document, the command is rejected `not_unique`; otherwise the document's event and the
//! claim (and the release of the value it had) are one decision, recorded atomically in
//! the command's record. The single writer decides commands one at a time, so two
//! creators of one value cannot both pass; and the claims are events like any other, read
//! back from the log when a claim stream is first needed, so uniqueness holds across
//! restarts and replays with no index to build at start.
//!
//! A field that is absent or `null` claims nothing: any number of documents may lack it.
//! Values are compared as their JSON text with object members sorted (`1` and `1.0` are
//! two values).

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use json_patch::{Patch, PatchOperation};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use writ_domain::model::{
    CommandSpec, Decoded, DomainModel, EventSpec, Execution, Executor, Upcast,
};
use writ_domain::{CommandError, Envelope, EventDecodeError, Failure, Refusal, Rejection};

use crate::custom::HandlerError;
use crate::kind::{Action, CLAIMED, RELEASED, ResourceType};
use crate::machine::Machine;
use crate::rules::rule_data;

/// The rejection codes of resource commands, besides `wrong_expected_version`.
pub mod codes {
    /// `Replace`, `Patch` or `Delete` of an id with no live document.
    pub const NOT_FOUND: &str = "not_found";
    /// `Create` of an id whose document is live.
    pub const EXISTS: &str = "exists";
    /// The document a `Patch` gives does not fit the schema (`errors` lists where).
    pub const SCHEMA_VIOLATION: &str = "schema_violation";
    /// A value of a unique field is another live document's (`field`, `value`, `heldBy`).
    pub const NOT_UNIQUE: &str = "not_unique";
    /// An RFC 6902 operation of a `Patch` does not apply to the current document (a
    /// `test` that fails, a path that is not there).
    pub const PATCH_FAILED: &str = "patch_failed";
    /// The command would move the machine's field (`machines/T.json`) other than through
    /// a listed transition from the document's state: a `Create` that sets another value
    /// than `initial`, a `Replace` or `Patch` that changes it, a transition's command from a
    /// state it does not leave.
    pub const INVALID_TRANSITION: &str = "invalid_transition";
}

/// A decoded resource command.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Command {
    pub(crate) id: String,
    pub(crate) change: Change,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Change {
    Create(Value),
    Replace(Value),
    Patch(Patch),
    MergePatch(Value),
    Delete,
    /// A custom command (`{verb}{Title}`): its verb and its payload's members besides `id`.
    Custom {
        verb: String,
        payload: Map<String, Value>,
    },
}

impl Change {
    /// The verb of the command, as rules' `on` names it.
    fn verb(&self) -> &str {
        match self {
            Change::Create(_) => Action::Create.verb(),
            Change::Replace(_) => Action::Replace.verb(),
            Change::Patch(_) | Change::MergePatch(_) => Action::Patch.verb(),
            Change::Delete => Action::Delete.verb(),
            Change::Custom { verb, .. } => verb,
        }
    }
}

/// The [`DomainModel`] of one resource type.
#[derive(Debug)]
pub(crate) struct ResourceDomain {
    pub(crate) ty: Arc<ResourceType>,
}

/// A payload as sent: every field optional, to say precisely what is missing.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    id: Option<String>,
    document: Option<Value>,
    patch: Option<Value>,
    #[serde(rename = "mergePatch")]
    merge_patch: Option<Value>,
}

impl ResourceDomain {
    fn action(&self, name: &str) -> Option<Action> {
        Action::ALL
            .into_iter()
            .find(|action| name.strip_prefix(action.verb()) == Some(self.ty.title.as_str()))
    }

    fn decode_command(&self, action: Action, payload: &[u8]) -> Result<Command, CommandError> {
        let name = self.ty.command(action);
        let invalid = |detail: String| CommandError::InvalidPayload {
            name: name.clone(),
            version: 1,
            detail,
        };
        if payload.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(invalid("the payload must be a JSON object".to_owned()));
        }
        let payload: Payload =
            serde_json::from_slice(payload).map_err(|e| invalid(e.to_string()))?;
        let id = payload
            .id
            .ok_or_else(|| invalid("`id` is missing".to_owned()))?;
        ResourceType::check_id(&id).map_err(|e| invalid(format!("`id`: {e}")))?;
        let allowed: &[&str] = match action {
            Action::Create | Action::Replace => &["document"],
            Action::Patch => &["patch", "mergePatch"],
            Action::Delete => &[],
        };
        for (field, present) in [
            ("document", payload.document.is_some()),
            ("patch", payload.patch.is_some()),
            ("mergePatch", payload.merge_patch.is_some()),
        ] {
            if present && !allowed.contains(&field) {
                return Err(invalid(format!("`{field}` is not a field of {name}")));
            }
        }
        let change = match action {
            Action::Create | Action::Replace => {
                let document = payload
                    .document
                    .ok_or_else(|| invalid("`document` is missing".to_owned()))?;
                // A document that leaves out the machine's field gets it in the writer
                // (`initial` for a create, the current state for a replace): checked here
                // as a created one would be.
                let violations = match (&self.ty.machine, &document) {
                    (Some(machine), Value::Object(members))
                        if !members.contains_key(&machine.field) =>
                    {
                        let mut filled = members.clone();
                        filled.insert(
                            machine.field.clone(),
                            Value::String(machine.initial.clone()),
                        );
                        self.ty.check(&Value::Object(filled))
                    }
                    _ => self.ty.check(&document),
                };
                if !violations.is_empty() {
                    return Err(CommandError::SchemaViolation {
                        name: name.clone(),
                        violations,
                    });
                }
                if action == Action::Create {
                    Change::Create(document)
                } else {
                    Change::Replace(document)
                }
            }
            Action::Patch => match (payload.patch, payload.merge_patch) {
                (Some(ops), None) => Change::Patch(
                    serde_json::from_value(ops)
                        .map_err(|e| invalid(format!("`patch` is not RFC 6902 operations: {e}")))?,
                ),
                (None, Some(merge)) => Change::MergePatch(merge),
                (None, None) => {
                    return Err(invalid(
                        "`patch` (RFC 6902 operations) or `mergePatch` (RFC 7396) is missing"
                            .to_owned(),
                    ));
                }
                (Some(_), Some(_)) => {
                    return Err(invalid("give `patch` or `mergePatch`, not both".to_owned()));
                }
            },
            Action::Delete => Change::Delete,
        };
        Ok(Command { id, change })
    }

    /// Decodes custom command `verb`: `{"id", ...payload}`.
    fn decode_custom(&self, verb: String, payload: &[u8]) -> Result<Command, CommandError> {
        let name = format!("{verb}{}", self.ty.title);
        let invalid = |detail: String| CommandError::InvalidPayload {
            name: name.clone(),
            version: 1,
            detail,
        };
        let Ok(Value::Object(mut members)) = serde_json::from_slice::<Value>(payload) else {
            return Err(invalid("the payload must be a JSON object".to_owned()));
        };
        let id = match members.remove("id") {
            Some(Value::String(id)) => id,
            Some(_) => return Err(invalid("`id` must be a string".to_owned())),
            None => return Err(invalid("`id` is missing".to_owned())),
        };
        ResourceType::check_id(&id).map_err(|e| invalid(format!("`id`: {e}")))?;
        Ok(Command {
            id,
            change: Change::Custom {
                verb,
                payload: members,
            },
        })
    }
}

impl ResourceDomain {
    /// The payload of CRUD command `action` logged at schema `version` (below the
    /// current), its document or patch migrated to the current shape (as it is, without
    /// `migrations/T.js`).
    fn migrate_payload(
        &self,
        action: Action,
        version: u32,
        payload: &[u8],
    ) -> Result<Vec<u8>, CommandError> {
        let ty = &self.ty;
        let invalid = |detail: String| CommandError::InvalidPayload {
            name: ty.command(action),
            version,
            detail,
        };
        let Some(migrations) = &ty.migrations else {
            return Ok(payload.to_vec());
        };
        let Ok(Value::Object(mut members)) = serde_json::from_slice::<Value>(payload) else {
            return Err(invalid("the payload must be a JSON object".to_owned()));
        };
        if let Some(document) = members.remove("document") {
            let document = migrations
                .document(document, version, ty.version)
                .map_err(invalid)?;
            members.insert("document".to_owned(), document);
        }
        if let Some(ops) = members.remove("patch") {
            let ops = migrations
                .patch(ops, version, ty.version)
                .map_err(invalid)?;
            members.insert("patch".to_owned(), ops);
        }
        if members.contains_key("mergePatch") {
            return Err(invalid(format!(
                "a merge patch of schema version {version} cannot be migrated to version {} ({} migrates RFC 6902 operations): send `patch`",
                ty.version,
                migrations.file().display()
            )));
        }
        Ok(serde_json::to_vec(&Value::Object(members)).expect("a JSON value serializes"))
    }
}

/// The body of an event of `ty`'s document streams recorded at schema `version` (below the
/// current), in the current shape: a document through `migrations/T.js`'s `document`, a
/// patch through its `patch`; an event without either (deleted, a transition's own) as it
/// is, and every event as it is without the file.
fn upcast_data(
    ty: &ResourceType,
    event_type: &str,
    version: u32,
    data: &[u8],
) -> Result<Vec<u8>, String> {
    let Some(migrations) = &ty.migrations else {
        return Ok(data.to_vec());
    };
    let Ok(Value::Object(mut members)) = serde_json::from_slice::<Value>(data) else {
        return Err("the body is not a JSON object".to_owned());
    };
    let suffix = event_type
        .strip_prefix(ty.title.as_str())
        .unwrap_or_default();
    match suffix {
        "Created" | "Replaced" => {
            let document = members
                .remove("document")
                .ok_or_else(|| "the body has no `document`".to_owned())?;
            let document = migrations.document(document, version, ty.version)?;
            members.insert("document".to_owned(), document);
        }
        "Deleted" => return Ok(data.to_vec()),
        // `{Title}Patched`, and a handler's event (a transition's own has no `patch`).
        _ => match members.remove("patch") {
            Some(ops) => {
                let ops = migrations.patch(ops, version, ty.version)?;
                members.insert("patch".to_owned(), ops);
            }
            None if suffix == "Patched" => return Err("the body has no `patch`".to_owned()),
            None => return Ok(data.to_vec()),
        },
    }
    Ok(serde_json::to_vec(&Value::Object(members)).expect("a JSON value serializes"))
}

impl Command {
    /// The payload in canonical form: what the command log stores and duplicates are
    /// compared by.
    fn canonical_payload(&self) -> Vec<u8> {
        let value = match &self.change {
            Change::Create(document) | Change::Replace(document) => {
                json!({"id": self.id, "document": crate::kind::canonical(document)})
            }
            Change::Patch(patch) => json!({"id": self.id, "patch": patch}),
            Change::MergePatch(merge) => {
                json!({"id": self.id, "mergePatch": crate::kind::canonical(merge)})
            }
            Change::Delete => json!({"id": self.id}),
            Change::Custom { .. } => crate::kind::canonical(&self.payload()),
        };
        serde_json::to_vec(&value).expect("a JSON value serializes")
    }

    /// The payload as rules and handlers see it: `{"id", "document"}`, `{"id", "patch"}`
    /// (or `mergePatch`), `{"id"}`, or a custom command's `{"id", ...}`.
    fn payload(&self) -> Value {
        match &self.change {
            Change::Create(document) | Change::Replace(document) => {
                json!({"id": self.id, "document": document})
            }
            Change::Patch(patch) => json!({"id": self.id, "patch": patch}),
            Change::MergePatch(merge) => json!({"id": self.id, "mergePatch": merge}),
            Change::Delete => json!({"id": self.id}),
            Change::Custom { payload, .. } => {
                let mut members = payload.clone();
                members.insert("id".to_owned(), Value::String(self.id.clone()));
                Value::Object(members)
            }
        }
    }
}

impl DomainModel for ResourceDomain {
    fn name(&self) -> &str {
        self.ty.name
    }

    fn stream_prefixes(&self) -> Vec<String> {
        vec![self.ty.document_prefix(), self.ty.claim_prefix()]
    }

    fn commands(&self) -> Vec<CommandSpec> {
        // Every version of the CRUD commands reads: an older one's document or patch is
        // migrated (`migrations/T.js`) to the current shape when it is decoded.
        let mut commands: Vec<CommandSpec> = Action::ALL
            .iter()
            .flat_map(|action| {
                (1..=self.ty.version).map(|version| CommandSpec {
                    name: self.ty.command(*action),
                    version,
                    internal: false,
                    schema: self.ty.payload_schema_of_version(*action, version),
                })
            })
            .collect();
        for verb in self.ty.custom_commands() {
            commands.push(CommandSpec {
                name: format!("{verb}{}", self.ty.title),
                version: 1,
                internal: false,
                schema: self.ty.custom_payload_schema(&verb),
            });
        }
        commands
    }

    fn event_types(&self) -> Vec<String> {
        self.ty.event_types()
    }

    fn events(&self) -> Vec<EventSpec> {
        let claims = [self.ty.claim_event(true), self.ty.claim_event(false)];
        self.ty
            .event_types()
            .into_iter()
            .map(|name| {
                // A claim holds a field's value, not a document: always version 1.
                let version = if claims.contains(&name) {
                    1
                } else {
                    self.ty.version
                };
                EventSpec {
                    name,
                    version,
                    versions: (1..=version).collect(),
                }
            })
            .collect()
    }

    fn upcast_event(
        &self,
        event_type: &str,
        version: u32,
        data: &[u8],
    ) -> Result<Option<Upcast>, EventDecodeError> {
        let ty = &self.ty;
        let claim = event_type == ty.claim_event(true) || event_type == ty.claim_event(false);
        let current = if claim { 1 } else { ty.version };
        if version == current {
            return Ok(None);
        }
        if version == 0 || version > current {
            return Err(EventDecodeError::unknown_version(
                event_type,
                version,
                &(1..current).collect::<Vec<_>>(),
                current,
            ));
        }
        let upcast = upcast_data(ty, event_type, version, data).map_err(|detail| {
            EventDecodeError::InvalidData {
                event_type: event_type.to_owned(),
                detail,
            }
        })?;
        Ok(Some(Upcast {
            version: current,
            data: upcast,
        }))
    }

    fn decode(
        &self,
        name: &str,
        version: Option<u32>,
        payload: &[u8],
    ) -> Result<Decoded, CommandError> {
        let action = self.action(name);
        let custom = match action {
            Some(_) => None,
            None => {
                Some(
                    self.ty
                        .custom_verb(name)
                        .ok_or_else(|| CommandError::UnknownCommand {
                            name: name.to_owned(),
                        })?,
                )
            }
        };
        // The CRUD commands are at the schema's version; custom commands' payloads are
        // their handlers', at version 1.
        let current = if action.is_some() { self.ty.version } else { 1 };
        if let Some(version) = version.filter(|v| !(1..=current).contains(v)) {
            return Err(CommandError::UnknownVersion {
                name: name.to_owned(),
                version,
                known: (1..=current).collect(),
            });
        }
        let migrated;
        let payload = match (action, version) {
            (Some(action), Some(version)) if version < current => {
                migrated = self.migrate_payload(action, version, payload)?;
                migrated.as_slice()
            }
            _ => payload,
        };
        let command = match (action, custom) {
            (Some(action), _) => self.decode_command(action, payload)?,
            (None, Some(verb)) => self.decode_custom(verb, payload)?,
            (None, None) => unreachable!("one or the other"),
        };
        let canonical_payload = command.canonical_payload();
        Ok(Decoded {
            command: Box::new(command),
            version: current,
            canonical_payload,
        })
    }

    fn executor(&self) -> Box<dyn Executor> {
        Box::new(ResourceExecutor {
            ty: Arc::clone(&self.ty),
            documents: HashMap::new(),
            claims: HashMap::new(),
        })
    }
}

/// A cached stream: its state, version, and the position of its last event.
#[derive(Debug, Clone)]
struct Cached<S> {
    state: S,
    version: u64,
    last_position: u64,
}

/// The part of the single writer that decides one type's commands: the cached states of
/// its documents' streams (the live document, or none) and of its claim streams (the id
/// that holds the value, or none), each folded from the log when first needed.
struct ResourceExecutor {
    ty: Arc<ResourceType>,
    documents: HashMap<Box<str>, Cached<Option<Value>>>,
    claims: HashMap<Box<str>, Cached<Option<String>>>,
}

fn failed(message: String) -> Refusal {
    Refusal::Failed(Failure { message })
}

/// The body of a `{Title}Created` or `{Title}Replaced` event.
#[derive(Deserialize)]
struct DocumentData {
    document: Value,
}

/// The body of a `{Title}Patched` event.
#[derive(Deserialize)]
struct PatchData {
    patch: Patch,
}

/// The body of a claim event.
#[derive(Deserialize)]
struct ClaimData {
    id: String,
}

/// Folds one event of a document's stream into its document.
pub(crate) fn fold_document(
    ty: &ResourceType,
    document: &mut Option<Value>,
    event_type: &str,
    data: &[u8],
) -> Result<(), String> {
    let bad = |e: &dyn std::fmt::Display| format!("event {event_type}: {e}");
    // A custom event may have any name (`UserApproved`, `Activated`).
    let suffix = event_type
        .strip_prefix(ty.title.as_str())
        .unwrap_or_default();
    match suffix {
        "Created" | "Replaced" => {
            let data: DocumentData = serde_json::from_slice(data).map_err(|e| bad(&e))?;
            *document = Some(data.document);
        }
        "Patched" => {
            let data: PatchData = serde_json::from_slice(data).map_err(|e| bad(&e))?;
            let current = document
                .as_mut()
                .ok_or_else(|| bad(&"a patch of no document"))?;
            json_patch::patch(current, &data.patch).map_err(|e| bad(&e))?;
        }
        "Deleted" => *document = None,
        _ => fold_custom(ty, document, data).map_err(|e| bad(&e))?,
    }
    Ok(())
}

/// Folds a custom command's event: `{"patch"}` (a handler's) or a transition's own
/// `{"command", "from", "to"}`.
fn fold_custom(ty: &ResourceType, document: &mut Option<Value>, data: &[u8]) -> Result<(), String> {
    let data: Value = serde_json::from_slice(data).map_err(|e| e.to_string())?;
    let current = document
        .as_mut()
        .ok_or_else(|| "a custom command's event on no document".to_owned())?;
    if let Some(patch) = data.get("patch") {
        let patch: Patch = serde_json::from_value(patch.clone()).map_err(|e| e.to_string())?;
        return json_patch::patch(current, &patch).map_err(|e| e.to_string());
    }
    match (&ty.machine, data.get("to"), current) {
        (Some(machine), Some(Value::String(to)), Value::Object(members)) => {
            members.insert(machine.field.clone(), Value::String(to.clone()));
            Ok(())
        }
        _ => Err("not an event of a document's stream".to_owned()),
    }
}

impl ResourceExecutor {
    fn document(
        &mut self,
        execution: &mut dyn Execution,
        stream: &str,
    ) -> Result<&Cached<Option<Value>>, String> {
        if !self.documents.contains_key(stream) {
            let mut cached = Cached {
                state: None,
                version: 0,
                last_position: 0,
            };
            let ty = &self.ty;
            execution.load(stream, &mut |event_type, data, position| {
                fold_document(ty, &mut cached.state, event_type, data)
                    .map_err(|e| format!("loading stream {stream}: event {position}: {e}"))?;
                cached.version += 1;
                cached.last_position = position;
                Ok(())
            })?;
            self.documents.insert(stream.into(), cached);
        }
        Ok(&self.documents[stream])
    }

    fn claim(
        &mut self,
        execution: &mut dyn Execution,
        stream: &str,
    ) -> Result<&Cached<Option<String>>, String> {
        if !self.claims.contains_key(stream) {
            let mut cached = Cached {
                state: None,
                version: 0,
                last_position: 0,
            };
            let title = &self.ty.title;
            execution.load(stream, &mut |event_type, data, position| {
                let bad = |e: &dyn std::fmt::Display| {
                    format!("loading stream {stream}: event {position} ({event_type}): {e}")
                };
                match event_type.strip_prefix(title.as_str()) {
                    Some(CLAIMED) => {
                        let data: ClaimData = serde_json::from_slice(data).map_err(|e| bad(&e))?;
                        cached.state = Some(data.id);
                    }
                    Some(RELEASED) => cached.state = None,
                    _ => return Err(bad(&"not an event of a claim stream")),
                }
                cached.version += 1;
                cached.last_position = position;
                Ok(())
            })?;
            self.claims.insert(stream.into(), cached);
        }
        Ok(&self.claims[stream])
    }

    /// Decides `command`: checks in the contract's order (`wrong_expected_version`;
    /// `not_found` or `exists`; the handler's own code; `invalid_transition`;
    /// `schema_violation` of the resulting document; `not_unique`; the rules' codes in
    /// file order), then emits the document's event and the claims' events, then applies
    /// them to the cache. Nothing is applied unless every event was emitted.
    fn decide(&mut self, command: &Command, execution: &mut dyn Execution) -> Result<(), Refusal> {
        let ty = Arc::clone(&self.ty);
        let stream = ty.stream(&command.id);
        self.document(execution, &stream).map_err(failed)?;
        // Out of the cache while the command is decided (not copied): back as it was when
        // the command is refused, its next state when it succeeds.
        let (key, current) = self
            .documents
            .remove_entry(stream.as_str())
            .expect("the document's stream was just loaded");
        let decided = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.decide_over(&ty, command, execution, &stream, &current)
        }));
        match decided {
            Ok(Ok(next)) => {
                self.documents.insert(key, next);
                Ok(())
            }
            Ok(Err(refusal)) => {
                self.documents.insert(key, current);
                Err(refusal)
            }
            Err(panic) => {
                // The cache stays as it was before the command, as it did when the
                // document was copied out of it.
                self.documents.insert(key, current);
                std::panic::resume_unwind(panic)
            }
        }
    }

    /// [`ResourceExecutor::decide`] over the document's stream `stream`, whose cached state
    /// is `current`: what the stream's cache becomes.
    fn decide_over(
        &mut self,
        ty: &ResourceType,
        command: &Command,
        execution: &mut dyn Execution,
        stream: &str,
        current: &Cached<Option<Value>>,
    ) -> Result<Cached<Option<Value>>, Refusal> {
        // 1. wrong_expected_version.
        if let Some(expected) = execution.expected_version()
            && expected != current.version
        {
            return Err(Rejection::wrong_expected_version(expected, current.version).into());
        }
        let live = current.state.as_ref();
        // 2. not_found or exists.
        match (&command.change, live) {
            (Change::Create(_), Some(_)) => {
                return Err(Rejection::new(
                    codes::EXISTS,
                    format!("{} {:?} exists", ty.title, command.id),
                )
                .into());
            }
            (Change::Create(_), None) => {}
            (_, None) => {
                return Err(Rejection::new(
                    codes::NOT_FOUND,
                    format!("there is no {} {:?}", ty.title, command.id),
                )
                .into());
            }
            (_, Some(_)) => {}
        }
        // 3. The command's own step: a handler's decision, a patch's application.
        let envelope = *execution.envelope();
        let mut step = own_step(ty, command, live, &envelope)?;
        // 4. invalid_transition.
        if let Some(machine) = &ty.machine {
            machine_step(ty, machine, command, live, &mut step)?;
        }
        // 5. schema_violation of the resulting document.
        if step.recheck
            && let Some(next) = &step.next
        {
            let violations = ty.check(next);
            if !violations.is_empty() {
                let errors = serde_json::to_value(&violations).expect("violations serialize");
                return Err(Rejection::new(
                    codes::SCHEMA_VIOLATION,
                    format!(
                        "the resulting document does not fit the {} schema",
                        ty.title
                    ),
                )
                .with_detail("errors", errors)
                .into());
            }
        }
        // 6. not_unique. The claims to give up and to take: (field, value, claim stream).
        let mut releases: Vec<(&str, Value, String)> = Vec::new();
        let mut takes: Vec<(&str, Value, String)> = Vec::new();
        for field in &ty.unique {
            let old = live.and_then(|d| d.get(field)).filter(|v| !v.is_null());
            let new = step
                .next
                .as_ref()
                .and_then(|d| d.get(field))
                .filter(|v| !v.is_null());
            if old == new {
                continue;
            }
            if let Some(old) = old {
                releases.push((field, old.clone(), ty.claim_stream(field, old)));
            }
            if let Some(new) = new {
                let claim_stream = ty.claim_stream(field, new);
                let holder = self.claim(execution, &claim_stream).map_err(failed)?;
                if let Some(holder) = holder.state.as_ref().filter(|h| **h != command.id) {
                    return Err(Rejection::new(
                        codes::NOT_UNIQUE,
                        format!("{field} {new} is another {}'s ({holder:?})", ty.title),
                    )
                    .with_detail("field", field.as_str())
                    .with_detail("value", new.clone())
                    .with_detail("heldBy", holder.as_str())
                    .into());
                }
                takes.push((field, new.clone(), claim_stream));
            }
        }
        // 7. The rules, in file order, over the members of their data they read: the
        // resulting document moves into the data and back, not copied.
        let verb = command.change.verb();
        if ty.rules.applies_to(verb) {
            let reads = ty.rules.reads(verb);
            let next = if reads.next { step.next.take() } else { None };
            let had_next = next.is_some();
            let mut data = rule_data(reads, live, next, || command.payload());
            let checked = ty.rules.check(verb, &data);
            if had_next {
                step.next = data.get_mut("next").map(Value::take);
            }
            checked?;
        }
        // Emit: the document's event, then the releases, then the claims.
        let position = emit(
            execution,
            stream,
            current.version + 1,
            (&step.event_type, ty.version),
            &mut |out| match &step.recorded {
                // `{"document": next}`, written from the document itself.
                Recorded::Document => {
                    out.extend_from_slice(b"{\"document\":");
                    serde_json::to_writer(&mut *out, &step.next)?;
                    out.push(b'}');
                    Ok(())
                }
                Recorded::Patch(ops) => serde_json::to_writer(out, &json!({"patch": ops})),
                Recorded::Deleted => serde_json::to_writer(out, &json!({})),
                Recorded::Transition { from, to } => {
                    serde_json::to_writer(out, &json!({"command": verb, "from": from, "to": to}))
                }
            },
        )?;
        let mut claims_after: Vec<(String, Cached<Option<String>>)> = Vec::new();
        for (claimed, (field, value, claim_stream)) in releases
            .iter()
            .map(|r| (false, r))
            .chain(takes.iter().map(|t| (true, t)))
        {
            let before = match claims_after.iter().find(|(s, _)| s == claim_stream) {
                Some((_, cached)) => cached.clone(),
                None => self.claim(execution, claim_stream).map_err(failed)?.clone(),
            };
            let data = json!({"field": field, "value": value, "id": command.id});
            let at = emit(
                execution,
                claim_stream,
                before.version + 1,
                (&ty.claim_event(claimed), 1),
                &mut |out| serde_json::to_writer(out, &data),
            )?;
            let after = Cached {
                state: claimed.then(|| command.id.clone()),
                version: before.version + 1,
                last_position: at,
            };
            match claims_after.iter_mut().find(|(s, _)| s == claim_stream) {
                Some((_, cached)) => *cached = after,
                None => claims_after.push((claim_stream.clone(), after)),
            }
        }
        // Every event is emitted: apply.
        for (claim_stream, cached) in claims_after {
            self.claims.insert(claim_stream.into(), cached);
        }
        Ok(Cached {
            state: step.next,
            version: current.version + 1,
            last_position: position,
        })
    }
}

/// What a command would do, as the writer's checks build it up.
struct Step {
    /// The document it leaves (`None`: deleted).
    next: Option<Value>,
    /// The event type of the document's event.
    event_type: String,
    /// What the event records.
    recorded: Recorded,
    /// Whether `next` still has to be checked against the schema (it was not checked
    /// as it is when the command was decoded).
    recheck: bool,
}

/// The body of the document's event.
enum Recorded {
    /// `{"document"}`: the whole of `next`.
    Document,
    /// `{"patch"}`: RFC 6902 operations.
    Patch(Patch),
    /// `{}`.
    Deleted,
    /// A transition's own `{"command", "from", "to"}`.
    Transition { from: Value, to: String },
}

/// Step 3 of the order: the document a command leaves before the machine's check, and
/// the event it records. A custom command runs its handler (the seam: see `custom`); a
/// transition's command without one leaves the document as it is, for the machine's step
/// to move.
fn own_step(
    ty: &ResourceType,
    command: &Command,
    live: Option<&Value>,
    envelope: &Envelope,
) -> Result<Step, Refusal> {
    let step = |action: Action, next: Option<Value>, recorded: Recorded, recheck: bool| Step {
        next,
        event_type: ty.event(action),
        recorded,
        recheck,
    };
    Ok(match (&command.change, live) {
        (Change::Create(document), _) => step(
            Action::Create,
            Some(document.clone()),
            Recorded::Document,
            false,
        ),
        (Change::Replace(document), _) => step(
            Action::Replace,
            Some(document.clone()),
            Recorded::Document,
            false,
        ),
        (_, None) => unreachable!("not_found is decided before"),
        (Change::Patch(ops), Some(document)) => {
            let mut next = document.clone();
            json_patch::patch(&mut next, ops).map_err(|e| {
                Rejection::new(
                    codes::PATCH_FAILED,
                    format!("the patch does not apply: {e}"),
                )
            })?;
            step(
                Action::Patch,
                Some(next),
                Recorded::Patch(ops.clone()),
                true,
            )
        }
        (Change::MergePatch(merge), Some(document)) => {
            let mut next = document.clone();
            json_patch::merge(&mut next, merge);
            let ops = json_patch::diff(document, &next);
            step(Action::Patch, Some(next), Recorded::Patch(ops), true)
        }
        (Change::Delete, Some(_)) => step(Action::Delete, None, Recorded::Deleted, false),
        (Change::Custom { verb, .. }, Some(document)) => match &ty.handlers {
            Some(handlers) if ty.handles(verb) => {
                let handled = handlers
                    .run(verb, document, &command.payload(), envelope)
                    .map_err(|e| match e {
                        HandlerError::Rejected { code, message } => {
                            Refusal::Rejected(Rejection::new(code, message))
                        }
                        HandlerError::Failed { message } => failed(format!(
                            "the handler of {verb}{} failed: {message}",
                            ty.title
                        )),
                    })?;
                let mut next = document.clone();
                json_patch::patch(&mut next, &handled.patch).map_err(|e| {
                    failed(format!(
                        "the handler of {verb}{} gave a patch that does not apply: {e}",
                        ty.title
                    ))
                })?;
                Step {
                    next: Some(next),
                    event_type: handled.event,
                    recorded: Recorded::Patch(handled.patch),
                    recheck: true,
                }
            }
            _ => Step {
                // The machine's step moves the field and names the event.
                next: Some(document.clone()),
                event_type: String::new(),
                recorded: Recorded::Transition {
                    from: Value::Null,
                    to: String::new(),
                },
                recheck: true,
            },
        },
    })
}

fn invalid_transition(message: String) -> Refusal {
    Rejection::new(codes::INVALID_TRANSITION, message).into()
}

/// Step 4 of the order: the machine's field moves only through a listed transition. A
/// create starts at `initial` (given it when it leaves the field out); a replace that
/// leaves it out keeps the current value; a transition's command moves it to its `to`.
fn machine_step(
    ty: &ResourceType,
    machine: &Machine,
    command: &Command,
    live: Option<&Value>,
    step: &mut Step,
) -> Result<(), Refusal> {
    let field = machine.field.as_str();
    let before = live.and_then(|d| d.get(field)).cloned();
    let Some(Value::Object(next)) = step.next.as_mut() else {
        return Ok(()); // Deleted.
    };
    match &command.change {
        Change::Create(_) => match next.get(field) {
            None => {
                next.insert(field.to_owned(), Value::String(machine.initial.clone()));
            }
            Some(Value::String(s)) if *s == machine.initial => {}
            Some(other) => {
                return Err(invalid_transition(format!(
                    "a {} starts with {field} {:?}, not {other}",
                    ty.title, machine.initial
                )));
            }
        },
        Change::Replace(_) => match (next.get(field), &before) {
            (None, Some(before)) => {
                // Checked at the edge with `initial` in its place.
                step.recheck = before.as_str() != Some(machine.initial.as_str());
                next.insert(field.to_owned(), before.clone());
            }
            (None, None) => {}
            (Some(after), before) if Some(after) == before.as_ref() => {}
            (Some(after), _) => {
                return Err(invalid_transition(format!(
                    "{field} changes only through a transition ({}), not by a replace to {after}",
                    machine.commands().join(", ")
                )));
            }
        },
        Change::Patch(_) | Change::MergePatch(_) | Change::Delete => {
            if next.get(field) != before.as_ref() {
                return Err(invalid_transition(format!(
                    "{field} changes only through a transition ({}), not by a patch",
                    machine.commands().join(", ")
                )));
            }
        }
        Change::Custom { verb, .. } => {
            let after = next.get(field).cloned();
            if !machine.has_command(verb) {
                // A handler's own command: it may not move the field.
                if after != before {
                    return Err(invalid_transition(format!(
                        "{field} changes only through a transition ({}); {verb}{} is not one",
                        machine.commands().join(", "),
                        ty.title
                    )));
                }
                return Ok(());
            }
            let state = before.as_ref().and_then(Value::as_str);
            let Some(transition) = machine.transition(verb, state) else {
                return Err(invalid_transition(format!(
                    "{verb}{} moves {field} from {:?} only; {} {:?} is at {}",
                    ty.title,
                    machine.sources(verb),
                    ty.title,
                    command.id,
                    before
                        .as_ref()
                        .map_or("no state".to_owned(), Value::to_string)
                )));
            };
            let to = Value::String(transition.to.clone());
            if after != before && after.as_ref() != Some(&to) {
                return Err(invalid_transition(format!(
                    "the handler of {verb}{} moved {field} to {}; the transition goes to {to}",
                    ty.title,
                    after.map_or("nothing".to_owned(), |a| a.to_string())
                )));
            }
            next.insert(field.to_owned(), to.clone());
            match &mut step.recorded {
                Recorded::Transition {
                    from,
                    to: recorded_to,
                } => {
                    *from = before.clone().unwrap_or(Value::Null);
                    recorded_to.clone_from(&transition.to);
                    step.event_type.clone_from(&transition.event);
                }
                Recorded::Patch(ops) => {
                    // The event says where the field went, for the fold and the timers.
                    if before.as_ref() != Some(&to) {
                        let op = json!({"op": "add", "path": machine.pointer, "value": to});
                        ops.0.push(
                            serde_json::from_value::<PatchOperation>(op)
                                .expect("a pointer built by escaping a member name"),
                        );
                    }
                }
                Recorded::Document | Recorded::Deleted => {}
            }
        }
    }
    Ok(())
}

/// Emits one event whose body `write` writes.
fn emit(
    execution: &mut dyn Execution,
    stream: &str,
    version: u64,
    (event_type, schema_version): (&str, u32),
    write: &mut dyn FnMut(&mut Vec<u8>) -> serde_json::Result<()>,
) -> Result<u64, Refusal> {
    execution
        .emit(stream, version, event_type, schema_version, &mut |out| {
            write(out).map_err(|e| e.to_string())
        })
        .map_err(|e| failed(format!("event {event_type}: {e}")))
}

impl Executor for ResourceExecutor {
    fn execute(
        &mut self,
        command: &(dyn Any + Send),
        execution: &mut dyn Execution,
    ) -> Result<(), Refusal> {
        let command = command.downcast_ref::<Command>().ok_or_else(|| {
            failed(format!(
                "a command of another domain reached resource type {}",
                self.ty.name
            ))
        })?;
        self.decide(command, execution)
    }

    fn trim(&mut self, durable_position: u64, streams_max: usize) {
        let cached = self.documents.len() + self.claims.len();
        if cached <= streams_max {
            return;
        }
        let target = streams_max - streams_max / 8;
        let mut excess = cached - target;
        let mut drop = |last_position: u64| {
            if excess > 0 && last_position <= durable_position {
                excess -= 1;
                false
            } else {
                true
            }
        };
        self.claims.retain(|_, c| drop(c.last_position));
        self.documents.retain(|_, c| drop(c.last_position));
    }

    fn cached_streams(&self) -> usize {
        self.documents.len() + self.claims.len()
    }
}
