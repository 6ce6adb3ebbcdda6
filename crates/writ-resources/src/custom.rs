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
