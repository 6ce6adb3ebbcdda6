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

use json_patch::Patch;
use serde::Deserialize;
use serde_json::{Value, json};
use writ_domain::model::{CommandSpec, Decoded, DomainModel, Execution, Executor};
use writ_domain::{CommandError, Failure, Refusal, Rejection};

use crate::kind::{Action, CLAIMED, RELEASED, ResourceType};

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
                let violations = self.ty.check(&document);
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
        };
        serde_json::to_vec(&value).expect("a JSON value serializes")
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
        Action::ALL
            .iter()
            .map(|action| CommandSpec {
                name: self.ty.command(*action),
                version: 1,
                internal: false,
                schema: self.ty.payload_schema(*action),
            })
            .collect()
    }

    fn event_types(&self) -> Vec<String> {
        self.ty.event_types()
    }

    fn decode(
        &self,
        name: &str,
        version: Option<u32>,
        payload: &[u8],
    ) -> Result<Decoded, CommandError> {
        let action = self
            .action(name)
            .ok_or_else(|| CommandError::UnknownCommand {
                name: name.to_owned(),
            })?;
        if let Some(version) = version.filter(|v| *v != 1) {
            return Err(CommandError::UnknownVersion {
                name: name.to_owned(),
                version,
                known: vec![1],
            });
        }
        let command = self.decode_command(action, payload)?;
        let canonical_payload = command.canonical_payload();
        Ok(Decoded {
            command: Box::new(command),
            version: 1,
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
    let suffix = event_type
        .strip_prefix(ty.title.as_str())
        .ok_or_else(|| format!("event type {event_type} is not one of type {}", ty.name))?;
    let bad = |e: &dyn std::fmt::Display| format!("event {event_type}: {e}");
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
        _ => return Err(bad(&"not an event of a document's stream")),
    }
    Ok(())
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

    /// Decides `command`: checks in the contract's order, then emits the document's event
    /// and the claims' events, then applies them to the cache. Nothing is applied unless
    /// every event was emitted.
    fn decide(&mut self, command: &Command, execution: &mut dyn Execution) -> Result<(), Refusal> {
        let ty = Arc::clone(&self.ty);
        let stream = ty.stream(&command.id);
        let current = self.document(execution, &stream).map_err(failed)?.clone();
        if let Some(expected) = execution.expected_version()
            && expected != current.version
        {
            return Err(Rejection::wrong_expected_version(expected, current.version).into());
        }
        let live = current.state.as_ref();
        let (action, next, event_data) = match (&command.change, live) {
            (Change::Create(_), Some(_)) => {
                return Err(Rejection::new(
                    codes::EXISTS,
                    format!("{} {:?} exists", ty.title, command.id),
                )
                .into());
            }
            (Change::Create(document), None) => (
                Action::Create,
                Some(document.clone()),
                json!({"document": document}),
            ),
            (
                Change::Replace(_) | Change::Patch(_) | Change::MergePatch(_) | Change::Delete,
                None,
            ) => {
                return Err(Rejection::new(
                    codes::NOT_FOUND,
                    format!("there is no {} {:?}", ty.title, command.id),
                )
                .into());
            }
            (Change::Replace(document), Some(_)) => (
                Action::Replace,
                Some(document.clone()),
                json!({"document": document}),
            ),
            (Change::Patch(ops), Some(document)) => {
                let mut next = document.clone();
                json_patch::patch(&mut next, ops).map_err(|e| {
                    Rejection::new(
                        codes::PATCH_FAILED,
                        format!("the patch does not apply: {e}"),
                    )
                })?;
                (Action::Patch, Some(next), json!({"patch": ops}))
            }
            (Change::MergePatch(merge), Some(document)) => {
                let mut next = document.clone();
                json_patch::merge(&mut next, merge);
                let ops = json_patch::diff(document, &next);
                (Action::Patch, Some(next), json!({"patch": ops}))
            }
            (Change::Delete, Some(_)) => (Action::Delete, None, json!({})),
        };
        if action == Action::Patch
            && let Some(next) = &next
        {
            let violations = ty.check(next);
            if !violations.is_empty() {
                let errors = serde_json::to_value(&violations).expect("violations serialize");
                return Err(Rejection::new(
                    codes::SCHEMA_VIOLATION,
                    format!("the patched document does not fit the {} schema", ty.title),
                )
                .with_detail("errors", errors)
                .into());
            }
        }
        // The claims to give up and to take: (field, value, claim stream).
        let mut releases: Vec<(&str, &Value, String)> = Vec::new();
        let mut takes: Vec<(&str, &Value, String)> = Vec::new();
        for field in &ty.unique {
            let old = live.and_then(|d| d.get(field)).filter(|v| !v.is_null());
            let new = next
                .as_ref()
                .and_then(|d| d.get(field))
                .filter(|v| !v.is_null());
            if old == new {
                continue;
            }
            if let Some(old) = old {
                releases.push((field, old, ty.claim_stream(field, old)));
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
                takes.push((field, new, claim_stream));
            }
        }
        // Emit: the document's event, then the releases, then the claims.
        let event_type = ty.event(action);
        let position = emit(
            execution,
            &stream,
            current.version + 1,
            &event_type,
            &event_data,
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
                &ty.claim_event(claimed),
                &data,
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
        self.documents.insert(
            stream.into(),
            Cached {
                state: next,
                version: current.version + 1,
                last_position: position,
            },
        );
        for (claim_stream, cached) in claims_after {
            self.claims.insert(claim_stream.into(), cached);
        }
        Ok(())
    }
}

/// Emits one event with `data` as its body.
fn emit(
    execution: &mut dyn Execution,
    stream: &str,
    version: u64,
    event_type: &str,
    data: &Value,
) -> Result<u64, Refusal> {
    execution
        .emit(stream, version, event_type, 1, &mut |out| {
            serde_json::to_writer(out, data).map_err(|e| e.to_string())
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
