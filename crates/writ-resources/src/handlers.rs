//! `handlers/T.js`: a type's custom commands in JavaScript, run by the single writer in
//! writ-sandbox's deterministic [`Script`] engine behind the [`Handlers`] seam.
//!
//! # What the file declares
//!
//! Every top-level `function` whose name is a verb (an uppercase letter, then letters and
//! digits: `Approve`) is the handler of custom command `{Verb}{Title}` (`ApproveUser`);
//! other functions (`function fullName(user)`) are helpers. A handler is called as
//! `Approve(state, payload, ctx)`: `state` the live document (without its `id`), `payload`
//! the command's payload (`{"id", ...}`), `ctx` `{"now", "commandId"}` from the command's
//! envelope only (`now` RFC 3339 in UTC with milliseconds). It returns
//! `{"event": "UserApproved", "patch": [RFC 6902 operations]}` or calls
//! `reject(code, message)`, which ends it with that rejection code.
//!
//! The events a type records are known when the server starts (its read model and the
//! registry list them), so a handler's event is one that the file names in a string
//! literal: `"{Title}..."` (`"UserApproved"`), a title and then an uppercase letter,
//! letters and digits, not one of the type's own document events (`UserCreated`,
//! `UserPatched`...). An event computed at run time (`'User' + verb`) that the file does
//! not spell out fails the command and says so.
//!
//! Whatever else a handler does ends its command `failed` with a message, never the
//! server: throwing, breaking a limit ([`ScriptLimits`]), answering something that is not
//! an event and a patch, or a code that is not a code (`[a-z][a-z0-9_]*`, at most
//! [`CODE_BYTES_MAX`] bytes, not one of the writer's own [`RESERVED_CODES`]).

use std::path::Path;

use json_patch::Patch;
use serde_json::{Value, json};
use writ_domain::Envelope;
use writ_sandbox::{CompileError, Script, ScriptError, ScriptLimits, ScriptOptions};

use crate::bundle::AppFiles;
use crate::custom::{Handled, HandlerError, Handlers};
use crate::kind::{Action, CLAIMED, RELEASED, ResourceType};
use crate::load::LoadError;
use crate::rules::{CODE_BYTES_MAX, RESERVED_CODES};

/// The limits of one handler call: the script engine's defaults (1,000 steps of 10,000
/// checks, 16 MiB, a 256 KiB stack, a 1 MiB answer, a 5 s safety net).
pub const HANDLER_LIMITS: ScriptLimits = ScriptLimits {
    steps_max: 1_000,
    memory_bytes_max: 16 << 20,
    stack_bytes_max: 256 << 10,
    result_bytes_max: 1 << 20,
    source_bytes_max: 1 << 20,
    time_limit: std::time::Duration::from_secs(5),
};

/// A type's `handlers/T.js`, compiled.
#[derive(Debug)]
pub struct ScriptHandlers {
    script: Script,
    /// The verbs, in declaration order.
    verbs: Vec<String>,
    /// The events the file names, in order of appearance.
    events: Vec<String>,
}

impl ScriptHandlers {
    /// Compiles `body`, the file `file` (shown in messages as `label`, e.g.
    /// `handlers/users.js`), as the handlers of `ty`; refuses a file that is not UTF-8, a
    /// syntax error, a top level that throws or breaks a limit, and a verb the type's own
    /// commands have (`Create`, `Replace`, `Patch`, `Delete`), naming the file and the place.
    pub fn load(
        file: &Path,
        body: &[u8],
        label: &str,
        ty: &ResourceType,
    ) -> Result<Self, LoadError> {
        let source = crate::load::script_source(file, body)?;
        Self::compile(label, source, ty).map_err(|error| LoadError::Script {
            file: file.to_owned(),
            line: error.line,
            column: error.column,
            detail: error.message,
        })
    }

    /// Compiles `source` as the handlers of `ty`; see [`ScriptHandlers::load`].
    pub fn compile(label: &str, source: &str, ty: &ResourceType) -> Result<Self, CompileError> {
        let options = ScriptOptions {
            limits: HANDLER_LIMITS,
            ..ScriptOptions::handler()
        };
        let script = Script::compile(label, source, options)?;
        let verbs: Vec<String> = script
            .functions()
            .iter()
            .filter(|name| is_verb(name))
            .cloned()
            .collect();
        if let Some(verb) = verbs
            .iter()
            .find(|verb| Action::ALL.iter().any(|a| a.verb() == verb.as_str()))
        {
            let (line, column) = place_of(source, &format!("function {verb}"));
            return Err(CompileError {
                file: label.to_owned(),
                line,
                column,
                message: format!(
                    "{verb}{} is one of the type's own commands: a handler cannot replace it; name the function otherwise",
                    ty.title
                ),
            });
        }
        let own: Vec<String> = ty
            .event_types()
            .into_iter()
            .chain([
                format!("{}{CLAIMED}", ty.title),
                format!("{}{RELEASED}", ty.title),
            ])
            .collect();
        let events = named_events(source, &ty.title)
            .into_iter()
            .filter(|event| !own.contains(event))
            .collect();
        Ok(Self {
            script,
            verbs,
            events,
        })
    }
}

impl Handlers for ScriptHandlers {
    fn commands(&self) -> Vec<String> {
        self.verbs.clone()
    }

    fn event_types(&self) -> Vec<String> {
        self.events.clone()
    }

    fn run(
        &self,
        verb: &str,
        state: &Value,
        payload: &Value,
        envelope: &Envelope,
    ) -> Result<Handled, HandlerError> {
        let failed = |message: String| HandlerError::Failed { message };
        let ctx = json!({
            "now": writ_query::rfc3339::format_millis(envelope.recorded_at_ms),
            "commandId": envelope.command_id.to_string(),
        });
        let answer = self
            .script
            .call(verb, &[state.clone(), payload.clone(), ctx], None)
            .map_err(|error| match error {
                ScriptError::Rejected { code, message } if is_code(&code) => {
                    HandlerError::Rejected { code, message }
                }
                ScriptError::Rejected { code, .. } => failed(format!(
                    "it rejected with {code:?}, which is not a rejection code (lowercase letters, digits and _, beginning with a letter, at most {CODE_BYTES_MAX} bytes, not one of {})",
                    RESERVED_CODES.join(", ")
                )),
                other => failed(other.to_string()),
            })?;
        let Value::Object(mut answer) = answer else {
            return Err(failed(format!(
                "it returned {answer}, not {{\"event\", \"patch\"}}"
            )));
        };
        let event = match answer.remove("event") {
            Some(Value::String(event)) if self.events.contains(&event) => event,
            Some(Value::String(event)) => {
                return Err(failed(format!(
                    "it returned event {event:?}, which {} does not name as a string literal \"{{Title}}...\" other than the type's own events; the events it names are {:?}",
                    self.script.file(),
                    self.events
                )));
            }
            other => {
                return Err(failed(format!(
                    "its answer's `event` is {}, not an event type",
                    other.map_or("missing".to_owned(), |v| v.to_string())
                )));
            }
        };
        let patch: Patch = match answer.remove("patch") {
            Some(ops) => serde_json::from_value(ops)
                .map_err(|e| failed(format!("its `patch` is not RFC 6902 operations: {e}")))?,
            None => return Err(failed("its answer has no `patch`".to_owned())),
        };
        if let Some(extra) = answer.keys().next() {
            return Err(failed(format!(
                "its answer has `{extra}`: a handler answers {{\"event\", \"patch\"}} only"
            )));
        }
        Ok(Handled { event, patch })
    }
}

/// Compiles `dir/handlers/T.js` for each type `T` that has one; refuses a file of
/// `handlers/` that is not `T.js` for a loaded type.
pub(crate) fn attach(files: &AppFiles, types: &mut [ResourceType]) -> Result<(), LoadError> {
    for crate::load::TypedFile { file, body, index } in
        crate::load::typed_files(files, "handlers", ".js", types, "handlers")?
    {
        let ty = &mut types[index];
        let label = format!("handlers/{}.js", ty.name);
        let handlers = ScriptHandlers::load(&file, body, &label, ty)?;
        ty.handlers = Some(std::sync::Arc::new(handlers));
    }
    Ok(())
}

/// A command's verb: an uppercase letter, then letters and digits.
fn is_verb(name: &str) -> bool {
    crate::load::is_title(name)
}

/// A rejection code a handler may give (as rules may).
fn is_code(code: &str) -> bool {
    let mut bytes = code.bytes();
    code.len() <= CODE_BYTES_MAX
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !RESERVED_CODES.contains(&code)
}

/// The string literals of `source` that are event names of `title`: `"UserApproved"`,
/// `'UserApproved'` or `` `UserApproved` ``, each once, in order of appearance.
fn named_events(source: &str, title: &str) -> Vec<String> {
    let bytes = source.as_bytes();
    let mut events: Vec<String> = Vec::new();
    for (at, quote) in source.char_indices() {
        if !matches!(quote, '"' | '\'' | '`') {
            continue;
        }
        let rest = &source[at + 1..];
        let Some(after_title) = rest.strip_prefix(title) else {
            continue;
        };
        let length = after_title
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        let name_end = at + 1 + title.len() + length;
        let closed = bytes.get(name_end) == Some(&(quote as u8));
        let suffix = &after_title[..length];
        if closed
            && suffix
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_uppercase())
        {
            let event = format!("{title}{suffix}");
            if !events.contains(&event) {
                events.push(event);
            }
        }
    }
    events
}

/// The line and column (from 1) of the first `needle` in `source`.
fn place_of(source: &str, needle: &str) -> (Option<u32>, Option<u32>) {
    let Some(at) = source.find(needle) else {
        return (None, None);
    };
    let before = &source[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |newline| newline + 1) + 1;
    (u32::try_from(line).ok(), u32::try_from(column).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_are_the_string_literals_of_the_title() {
        let source = "function Approve() { return {event: \"UserApproved\", patch: []}; }\n\
                      const other = 'UserBanned'; const not = \"Userx\"; const also = `UserLocked`;\n\
                      // \"UserRemoved\" in a comment counts too; 'Users' and 'UserThing are not events\n";
        assert_eq!(
            named_events(source, "User"),
            ["UserApproved", "UserBanned", "UserLocked", "UserRemoved"]
                .map(String::from)
                .to_vec()
        );
    }

    #[test]
    fn codes_are_checked_as_rules_codes_are() {
        assert!(is_code("not_pending"));
        assert!(!is_code("Not"));
        assert!(!is_code(""));
        assert!(!is_code("not_found"));
    }

    #[test]
    fn places_are_lines_and_columns() {
        assert_eq!(
            place_of("a\n  function Create() {}", "function Create"),
            (Some(2), Some(3))
        );
    }
}
