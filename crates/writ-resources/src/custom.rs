//! Custom commands: `{Command}{Title}` (`ApproveUser`) with the payload `{"id",
//! ...payload}`, declared by a machine's transitions (`machines/T.json`) or by a handler
//! (`handlers/T.js`); a name neither declares is an unknown command.
//!
//! # The seam for handlers
//!
//! A type's handlers are a [`Handlers`] (on [`ResourceType`](crate::ResourceType), set by
//! the loader from `handlers/T.js`); the writer calls [`Handlers::run`] at the third step
//! of the contract's order, after `wrong_expected_version` and `not_found`, before the
//! machine's `invalid_transition`. What it returns ([`Handled`]: an event type and RFC 6902
//! operations) becomes the command's event `{"patch"}`; a [`HandlerError::Rejected`] is
//! the command's rejection with the handler's own code, a [`HandlerError::Failed`] makes
//! it `failed`. A command that is also a transition's moves the machine's field to the
//! transition's `to` after the handler's patch (the recorded patch says so).

use std::fmt;

use json_patch::Patch;
use serde_json::{Value, json};
use writ_domain::Envelope;

use crate::kind::{ID_PATTERN, ResourceType};

/// What a handler decided: the event to record and the operations it applies.
#[derive(Debug, Clone, PartialEq)]
pub struct Handled {
    /// The event type (`UserApproved`): one of [`Handlers::event_types`].
    pub event: String,
    /// RFC 6902 operations on the current document.
    pub patch: Patch,
}

/// Why a handler gave no [`Handled`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandlerError {
    /// It called `reject(code, message)`: the command is rejected with that code.
    Rejected {
        /// The handler's code.
        code: String,
        /// For people.
        message: String,
    },
    /// It threw, broke a limit or answered what is not a [`Handled`]: the command fails.
    Failed {
        /// What happened, for the command's status.
        message: String,
    },
}

/// A type's custom command handlers (`handlers/T.js`), as the writer calls them. Must be
/// deterministic: the same `state`, `payload` and envelope give the same answer on every
/// run (a replay runs them again).
pub trait Handlers: Send + Sync + fmt::Debug + 'static {
    /// The verbs of the commands it handles (`Approve`), each once.
    fn commands(&self) -> Vec<String>;

    /// Every event type its handlers may record.
    fn event_types(&self) -> Vec<String>;

    /// Runs the handler of command `verb` on the live document `state` with the command's
    /// `payload` (`{"id", ...}`); `envelope` gives `ctx.now` (`recorded_at_ms`) and
    /// `ctx.commandId`.
    fn run(
        &self,
        verb: &str,
        state: &Value,
        payload: &Value,
        envelope: &Envelope,
    ) -> Result<Handled, HandlerError>;
}

impl ResourceType {
    /// The verbs of the type's custom commands (a machine's, then a handler's not yet
    /// listed), each once.
    pub fn custom_commands(&self) -> Vec<String> {
        let mut verbs: Vec<String> = self
            .machine
            .as_ref()
            .map(|m| m.commands().into_iter().map(str::to_owned).collect())
            .unwrap_or_default();
        if let Some(handlers) = &self.handlers {
            for verb in handlers.commands() {
                if !verbs.contains(&verb) {
                    verbs.push(verb);
                }
            }
        }
        verbs
    }

    /// The verb of custom command `name` (`Approve` for `ApproveUser`), if it is one.
    pub(crate) fn custom_verb(&self, name: &str) -> Option<String> {
        let verb = name.strip_suffix(self.title.as_str())?;
        let declared = self.machine.as_ref().is_some_and(|m| m.has_command(verb))
            || self
                .handlers
                .as_ref()
                .is_some_and(|h| h.commands().iter().any(|c| c == verb));
        declared.then(|| verb.to_owned())
    }

    /// Whether custom command `verb` has a handler.
    pub(crate) fn handles(&self, verb: &str) -> bool {
        self.handlers
            .as_ref()
            .is_some_and(|h| h.commands().iter().any(|c| c == verb))
    }

    /// The event types custom commands record: the machine's transitions' and the
    /// handlers', each once.
    pub fn custom_events(&self) -> Vec<String> {
        let mut events: Vec<String> = self
            .machine
            .as_ref()
            .map(|m| m.events().into_iter().map(str::to_owned).collect())
            .unwrap_or_default();
        if let Some(handlers) = &self.handlers {
            for event in handlers.event_types() {
                if !events.contains(&event) {
                    events.push(event);
                }
            }
        }
        events
    }

    /// The payload schema of custom command `verb`: `{"id", ...}`, members besides `id`
    /// free (the handler and the rules read them).
    pub fn custom_payload_schema(&self, verb: &str) -> Value {
        let moves = self.machine.as_ref().map(|m| {
            let sources = m.sources(verb);
            let to: Vec<&str> = m
                .transitions
                .iter()
                .filter(|t| t.command == verb)
                .map(|t| t.to.as_str())
                .collect();
            (m.field.clone(), sources, to)
        });
        let mut description = format!("Custom command {verb} of {}.", self.name);
        if let Some((field, from, to)) = moves.filter(|(_, from, _)| !from.is_empty()) {
            description.push_str(&format!(
                " Moves `{field}` from {from:?} to {to:?} (else `invalid_transition`)."
            ));
        }
        if self.handles(verb) {
            description.push_str(" Runs its handler.");
        }
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": format!("{verb}{}", self.title),
            "description": description,
            "type": "object",
            "required": ["id"],
            "properties": {
                "id": {
                    "type": "string",
                    "pattern": ID_PATTERN,
                    "description": "The document's id: its stream is `T-{id}`.",
                },
            },
            "additionalProperties": true,
        })
    }
}

#[cfg(test)]
mod tests {
    //! The seam, with handlers written in Rust against [`Handlers`]: where the writer calls
    //! them in the order of checks, and what it records of their answers.

    use std::sync::Arc;

    use serde_json::json;
    use writ_engine::{CommandState, Engine, EngineOptions, Registry, Submission, Submitted};
    use writ_log::storage::SimStorage;

    use super::*;

    /// `Approve` (also a transition from `pending` to `active`) sets `approvedBy` from the
    /// payload, or rejects `no_approver`; `Rename` moves the state, which only a
    /// transition may; `Crash` fails.
    #[derive(Debug)]
    struct Approvals;

    impl Handlers for Approvals {
        fn commands(&self) -> Vec<String> {
            vec!["Approve".into(), "Rename".into(), "Crash".into()]
        }

        fn event_types(&self) -> Vec<String> {
            vec!["UserApproved".into(), "UserRenamed".into()]
        }

        fn run(
            &self,
            verb: &str,
            _state: &Value,
            payload: &Value,
            envelope: &Envelope,
        ) -> Result<Handled, HandlerError> {
            let patch = |ops: Value| serde_json::from_value::<Patch>(ops).unwrap();
            match verb {
                "Approve" => match payload.get("by") {
                    Some(by) => Ok(Handled {
                        event: "UserApproved".into(),
                        patch: patch(json!([
                            {"op": "add", "path": "/approvedBy", "value": by},
                            {"op": "add", "path": "/approvedAt", "value": envelope.recorded_at_ms},
                        ])),
                    }),
                    None => Err(HandlerError::Rejected {
                        code: "no_approver".into(),
                        message: "who approves?".into(),
                    }),
                },
                "Rename" => Ok(Handled {
                    event: "UserRenamed".into(),
                    patch: patch(json!([{"op": "replace", "path": "/status", "value": "active"}])),
                }),
                _ => Err(HandlerError::Failed {
                    message: "thrown".into(),
                }),
            }
        }
    }

    #[test]
    fn the_writer_runs_a_handler_third_and_records_its_patch_with_the_transitions_move() {
        let dir = std::env::temp_dir().join(format!(
            "writ-resources-handlers-{}-{}",
            std::process::id(),
            line!()
        ));
        std::fs::create_dir_all(dir.join("resources")).unwrap();
        std::fs::create_dir_all(dir.join("machines")).unwrap();
        std::fs::write(
            dir.join("resources/users.json"),
            r#"{"title": "User", "type": "object", "properties": {
                "name": {"type": "string"}, "status": {"type": "string"},
                "approvedBy": {"type": "string"}, "approvedAt": {"type": "integer"}}}"#,
        )
        .unwrap();
        std::fs::write(
            dir.join("machines/users.json"),
            r#"{"field": "status", "initial": "pending", "transitions": [
                {"command": "Approve", "from": ["pending"], "to": "active"}]}"#,
        )
        .unwrap();
        let mut set = crate::load(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        // As the loader will set them from handlers/T.js, before the type is finished.
        let mut ty = Arc::into_inner(set.types.remove(0)).expect("not shared yet");
        ty.handlers = Some(Arc::new(Approvals));
        set.types.insert(0, Arc::new(crate::load::finish(ty)));

        let mut registry = Registry::builder();
        for domain in set.domains() {
            registry = registry.domain(domain);
        }
        let (engine, _) = Engine::open(
            Arc::new(SimStorage::new()),
            registry.build().unwrap(),
            EngineOptions::default(),
        )
        .unwrap();
        let run = |n: u128, command: &str, payload: Value| {
            let payload = payload.to_string();
            let Submitted::New(pending) = engine
                .submit_command(&Submission {
                    id: uuid::Uuid::from_u128(n),
                    command,
                    version: None,
                    payload: payload.as_bytes(),
                    expected_version: None,
                })
                .unwrap()
            else {
                panic!("fresh")
            };
            pending.blocking_outcome().unwrap()
        };
        let code = |state: &CommandState| match state {
            CommandState::Rejected { code, .. } => code.clone(),
            CommandState::Failed { .. } => "(failed)".to_owned(),
            other => format!("{other:?}"),
        };
        run(
            1,
            "CreateUser",
            json!({"id": "u1", "document": {"name": "Ann"}}),
        );
        // The handler's own code comes before the machine's: a rejection from it wins.
        assert_eq!(
            code(&run(2, "ApproveUser", json!({"id": "u1"})).state),
            "no_approver"
        );
        assert_eq!(
            code(&run(3, "CrashUser", json!({"id": "u1"})).state),
            "(failed)"
        );
        // A handler's command that is no transition may not move the field.
        assert_eq!(
            code(&run(4, "RenameUser", json!({"id": "u1"})).state),
            "invalid_transition"
        );
        let approved = run(5, "ApproveUser", json!({"id": "u1", "by": "boss"}));
        assert_eq!(approved.state, CommandState::Succeeded);
        assert_eq!(approved.events[0].event_type, "UserApproved");
        let events = engine.read_stream("users-u1", 2, 1).unwrap();
        let data: Value = serde_json::from_slice(&events[0].data).unwrap();
        let ops = data["patch"].as_array().unwrap();
        assert_eq!(
            ops[0],
            json!({"op": "add", "path": "/approvedBy", "value": "boss"})
        );
        // The transition's move is part of the recorded patch.
        assert_eq!(
            ops[2],
            json!({"op": "add", "path": "/status", "value": "active"})
        );
        // Now active: Approve does not leave it, and the handler ran first.
        assert_eq!(
            code(&run(6, "ApproveUser", json!({"id": "u1", "by": "boss"})).state),
            "invalid_transition"
        );
    }
}
