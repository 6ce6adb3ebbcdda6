//! Rules (`rules/T.json`): business rules as data, in JSON Logic, compiled once at load
//! and evaluated by the single writer.
//!
//! ```json
//! [{"code": "name_required", "message": "a user has a name", "on": ["Create", "Replace"],
//!   "require": {"!=": [{"var": "next.name"}, ""]}}]
//! ```
//!
//! A rule applies to the commands its `on` names (`Create`, `Replace`, `Patch`, `Delete`
//! or a custom command's verb) and sees `{"state", "next", "payload"}`: the live document
//! before the command (`null` for a create), the document it would leave (`null` for a
//! delete), and the command's payload (`{"id", "document"}`, `{"id", "patch"}`, `{"id",
//! ...}` for a custom command). A command whose `require` is not truthy is rejected with
//! the rule's `code` and `message`; the rules run last, in file order, after every other
//! check passed (see `domain`).
//!
//! JSON Logic is evaluated by datalogic-rs with its core operators only: no clock, no
//! randomness, no loop but over the data's own arrays, so a rule decides the same on every
//! run and a replay of the log gives the same outcomes.

use std::fmt;
use std::path::Path;

use datalogic_rs::bumpalo::Bump;
use datalogic_rs::{Engine, Logic};
use serde_json::{Map, Value};
use writ_domain::{Failure, Refusal, Rejection};

use crate::codes;
use crate::kind::escape_pointer;
use crate::load::LoadError;

/// Most rules a type may have.
pub const RULES_MAX: usize = 256;

/// Longest rule code, in bytes.
pub const CODE_BYTES_MAX: usize = 64;

/// Longest rule message, in bytes.
pub const MESSAGE_BYTES_MAX: usize = 1_024;

/// Deepest nesting of a rule's `require`, in JSON values.
pub const REQUIRE_DEPTH_MAX: usize = 64;

/// Codes a rule may not take: the writer's own, which a client could not tell apart.
pub const RESERVED_CODES: [&str; 7] = [
    "wrong_expected_version",
    codes::NOT_FOUND,
    codes::EXISTS,
    codes::SCHEMA_VIOLATION,
    codes::NOT_UNIQUE,
    codes::PATCH_FAILED,
    codes::INVALID_TRANSITION,
];

/// One compiled rule.
struct Rule {
    code: String,
    message: String,
    /// The verbs of the commands it applies to.
    on: Vec<String>,
    /// Where it is in its file, for messages: `/2`.
    pointer: String,
    require: Logic,
    /// The members of the data its `require` reads.
    reads: Reads,
}

/// Which members of a rule's data (`{"state", "next", "payload"}`) rules read, so that
/// the writer builds only those: the others are `null` to the rules, which never look at
/// them. Found at load by walking `require`: a `var` with a literal path reads the member
/// the path begins with; any other way of reaching the data (a `var` whose path is
/// computed or empty, `val`, `exists`, `missing`, `missing_some`, `fractional`) counts as
/// reading all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Reads {
    pub(crate) state: bool,
    pub(crate) next: bool,
    pub(crate) payload: bool,
}

impl Reads {
    const ALL: Reads = Reads {
        state: true,
        next: true,
        payload: true,
    };

    fn union(self, other: Reads) -> Reads {
        Reads {
            state: self.state || other.state,
            next: self.next || other.next,
            payload: self.payload || other.payload,
        }
    }

    /// What `require` reads (see [`Reads`]).
    fn of(require: &Value) -> Reads {
        match require {
            Value::Object(members) if members.len() == 1 => {
                let (operator, arguments) = members.iter().next().expect("one member");
                match operator.as_str() {
                    "var" => {
                        let path = match arguments {
                            Value::String(path) => Some(path),
                            Value::Array(items) => match items.first() {
                                Some(Value::String(path)) => Some(path),
                                _ => None,
                            },
                            _ => None,
                        };
                        // A default (`{"var": ["a", {...}]}`) may itself read the data.
                        let default = match arguments {
                            Value::Array(items) => items
                                .iter()
                                .skip(1)
                                .fold(Reads::default(), |r, item| r.union(Reads::of(item))),
                            _ => Reads::default(),
                        };
                        let own = match path.map(|p| p.split('.').next().unwrap_or("")) {
                            Some("state") => Reads {
                                state: true,
                                ..Reads::default()
                            },
                            Some("next") => Reads {
                                next: true,
                                ..Reads::default()
                            },
                            Some("payload") => Reads {
                                payload: true,
                                ..Reads::default()
                            },
                            // A member the data does not have: `null` whatever is built.
                            Some(root) if !root.is_empty() => Reads::default(),
                            _ => Reads::ALL,
                        };
                        own.union(default)
                    }
                    // `fractional` (datalogic-rs's flagd feature) reads the root too.
                    "val" | "exists" | "missing" | "missing_some" | "fractional" => Reads::ALL,
                    _ => Reads::of(arguments),
                }
            }
            Value::Object(members) => members
                .values()
                .fold(Reads::default(), |r, v| r.union(Reads::of(v))),
            Value::Array(items) => items
                .iter()
                .fold(Reads::default(), |r, v| r.union(Reads::of(v))),
            _ => Reads::default(),
        }
    }
}

/// A type's rules, compiled, in file order. Empty without `rules/T.json`.
#[derive(Default)]
pub struct Rules {
    engine: Engine,
    rules: Vec<Rule>,
    /// The file, for messages.
    file: String,
}

impl fmt::Debug for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.rules.iter().map(|r| (&r.code, &r.on)))
            .finish()
    }
}

impl Rules {
    /// Whether any rule applies to command `verb`.
    pub fn applies_to(&self, verb: &str) -> bool {
        self.rules.iter().any(|r| r.on.iter().any(|o| o == verb))
    }

    /// What the rules of command `verb` read of their data (see [`Reads`]).
    pub(crate) fn reads(&self, verb: &str) -> Reads {
        self.rules
            .iter()
            .filter(|r| r.on.iter().any(|o| o == verb))
            .fold(Reads::default(), |reads, r| reads.union(r.reads))
    }

    /// The codes of the rules, in file order.
    pub fn codes(&self) -> Vec<&str> {
        self.rules.iter().map(|r| r.code.as_str()).collect()
    }

    /// Runs the rules of command `verb` over `data` (`{"state", "next", "payload"}`), in
    /// file order: the first whose `require` is not truthy rejects with its code. A rule
    /// that cannot be evaluated (an operator given values it cannot take) fails the
    /// command: that is the rule's fault, not the client's.
    pub(crate) fn check(&self, verb: &str, data: &Value) -> Result<(), Refusal> {
        let arena = Bump::new();
        for rule in self.rules.iter().filter(|r| r.on.iter().any(|o| o == verb)) {
            let result = self
                .engine
                .evaluate(&rule.require, data, &arena)
                .map_err(|e| {
                    Refusal::Failed(Failure {
                        message: format!(
                            "{}: rule {} ({:?}) could not be evaluated: {e}",
                            self.file, rule.pointer, rule.code
                        ),
                    })
                })?;
            if !self.engine.truthy(result) {
                return Err(Rejection::new(rule.code.clone(), rule.message.clone()).into());
            }
        }
        Ok(())
    }
}

/// Reads and compiles `rules/T.json`; `commands` are the verbs of the type's commands,
/// which `on` may name.
pub(crate) fn parse(file: &Path, rules: &Value, commands: &[String]) -> Result<Rules, LoadError> {
    let at = |pointer: String, detail: String| LoadError::Definition {
        file: file.to_owned(),
        pointer,
        detail,
    };
    let Value::Array(list) = rules else {
        return Err(at(
            String::new(),
            "rules are a list: [{\"code\", \"message\", \"on\", \"require\"}]".into(),
        ));
    };
    if list.len() > RULES_MAX {
        return Err(at(String::new(), format!("at most {RULES_MAX} rules")));
    }
    let engine = Engine::new();
    let mut compiled: Vec<Rule> = Vec::with_capacity(list.len());
    for (n, rule) in list.iter().enumerate() {
        let place = format!("/{n}");
        let Value::Object(members) = rule else {
            return Err(at(
                place,
                "a rule is {\"code\", \"message\", \"on\", \"require\"}".into(),
            ));
        };
        if let Some(key) = members
            .keys()
            .find(|k| !["code", "message", "on", "require"].contains(&k.as_str()))
        {
            return Err(at(
                format!("{place}/{}", escape_pointer(key)),
                format!("unknown member {key:?}: a rule has code, message, on and require"),
            ));
        }
        let code = match members.get("code") {
            Some(Value::String(code)) if is_code(code) => code.clone(),
            Some(other) => {
                return Err(at(
                    format!("{place}/code"),
                    format!(
                        "a code is snake_case (lowercase letters, digits and _, beginning with a letter), at most {CODE_BYTES_MAX} bytes, not {other}"
                    ),
                ));
            }
            None => return Err(at(format!("{place}/code"), "`code` is missing".into())),
        };
        if RESERVED_CODES.contains(&code.as_str()) {
            return Err(at(
                format!("{place}/code"),
                format!("{code} is a code of the writer's own: give the rule a code of its own"),
            ));
        }
        let message = match members.get("message") {
            Some(Value::String(m)) if m.len() <= MESSAGE_BYTES_MAX => m.clone(),
            Some(other) => {
                return Err(at(
                    format!("{place}/message"),
                    format!(
                        "a message is a string of at most {MESSAGE_BYTES_MAX} bytes, not {other}"
                    ),
                ));
            }
            None => {
                return Err(at(
                    format!("{place}/message"),
                    "`message` is missing".into(),
                ));
            }
        };
        let on = match members.get("on") {
            Some(Value::Array(on)) if !on.is_empty() => {
                let mut verbs = Vec::with_capacity(on.len());
                for (k, verb) in on.iter().enumerate() {
                    match verb.as_str() {
                        Some(verb) if commands.iter().any(|c| c == verb) => {
                            verbs.push(verb.to_owned())
                        }
                        _ => {
                            return Err(at(
                                format!("{place}/on/{k}"),
                                format!(
                                    "{verb} is not a command of this type; its commands are {}",
                                    commands.join(", ")
                                ),
                            ));
                        }
                    }
                }
                verbs
            }
            _ => {
                return Err(at(
                    format!("{place}/on"),
                    format!(
                        "a non-empty list of the commands the rule applies to, of {}",
                        commands.join(", ")
                    ),
                ));
            }
        };
        let Some(require) = members.get("require") else {
            return Err(at(
                format!("{place}/require"),
                "`require` is missing".into(),
            ));
        };
        let require_at = format!("{place}/require");
        check_operators(&engine, require, &require_at, 0)
            .map_err(|(pointer, detail)| at(pointer, detail))?;
        let reads = Reads::of(require);
        let require = engine
            .compile(require)
            .map_err(|e| at(require_at, format!("not JSON Logic this server takes: {e}")))?;
        compiled.push(Rule {
            code,
            message,
            on,
            pointer: place,
            require,
            reads,
        });
    }
    Ok(Rules {
        engine,
        rules: compiled,
        file: file.display().to_string(),
    })
}

/// A rule code: snake_case, at most [`CODE_BYTES_MAX`] bytes.
fn is_code(code: &str) -> bool {
    let mut bytes = code.bytes();
    code.len() <= CODE_BYTES_MAX
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Walks a rule's `require` for operators the engine does not know, so that the message
/// names the place of the first (`/0/require/and/1`), and for nesting beyond
/// [`REQUIRE_DEPTH_MAX`]. An object of one member is an operation; its arguments are
/// walked in turn.
fn check_operators(
    engine: &Engine,
    value: &Value,
    pointer: &str,
    depth: usize,
) -> Result<(), (String, String)> {
    if depth > REQUIRE_DEPTH_MAX {
        return Err((
            pointer.to_owned(),
            format!("nested deeper than {REQUIRE_DEPTH_MAX}"),
        ));
    }
    match value {
        Value::Object(members) if members.len() == 1 => {
            let (operator, arguments) = members.iter().next().expect("one member");
            let known = engine.builtin_operator_names().any(|o| o == operator);
            if !known {
                return Err((
                    format!("{pointer}/{}", escape_pointer(operator)),
                    format!(
                        "unknown operator {operator:?}; the operators are {}",
                        engine
                            .builtin_operator_names()
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                ));
            }
            check_operators(
                engine,
                arguments,
                &format!("{pointer}/{}", escape_pointer(operator)),
                depth + 1,
            )
        }
        Value::Object(members) => Err((
            pointer.to_owned(),
            format!(
                "an operation is an object of one member, {{\"operator\": [arguments]}}; this one has {}",
                members.len()
            ),
        )),
        Value::Array(items) => items.iter().enumerate().try_for_each(|(k, item)| {
            check_operators(engine, item, &format!("{pointer}/{k}"), depth + 1)
        }),
        _ => Ok(()),
    }
}

/// The data a rule sees: `{"state", "next", "payload"}`, each member built only when
/// `reads` says a rule reads it (`null` otherwise).
pub(crate) fn rule_data(
    reads: Reads,
    state: Option<&Value>,
    next: Option<Value>,
    payload: impl FnOnce() -> Value,
) -> Value {
    let mut data = Map::with_capacity(3);
    let state = state.filter(|_| reads.state).cloned();
    data.insert("state".into(), state.unwrap_or(Value::Null));
    data.insert("next".into(), next.unwrap_or(Value::Null));
    let payload = if reads.payload {
        payload()
    } else {
        Value::Null
    };
    data.insert("payload".into(), payload);
    Value::Object(data)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::Reads;

    fn reads(require: serde_json::Value) -> (bool, bool, bool) {
        let r = Reads::of(&require);
        (r.state, r.next, r.payload)
    }

    /// A rule reads the members its literal `var` paths begin with, in any operator's
    /// arguments, a `var`'s default included; any other way to the data reads all of it.
    #[test]
    fn a_rule_reads_the_members_its_paths_name_and_all_when_it_cannot_be_told() {
        let next_only = json!({"!=": [{"var": "next.name"}, {"var": "next.email"}]});
        assert_eq!(reads(next_only), (false, true, false));
        assert_eq!(
            reads(json!({"!!": {"var": "payload.reason"}})),
            (false, false, true)
        );
        let nested = json!({"and": [{"var": ["state.n", 0]}, {"in": ["a", {"var": "next"}]}]});
        assert_eq!(reads(nested), (true, true, false));
        let in_default = json!({"var": ["next.a", {"var": "payload.b"}]});
        assert_eq!(reads(in_default), (false, true, true));
        // A member the data does not have reads nothing.
        assert_eq!(
            reads(json!({"==": [{"var": "other"}, null]})),
            (false, false, false)
        );
        assert_eq!(reads(json!({"==": [1, 1]})), (false, false, false));
        for all in [
            json!({"var": ""}),
            json!({"var": {"cat": ["ne", "xt"]}}),
            json!({"var": 0}),
            json!({"var": []}),
            json!({"missing": ["next.name"]}),
            json!({"missing_some": [1, ["next.a", "payload.b"]]}),
            json!({"val": ["next", "name"]}),
            json!({"exists": "next"}),
            json!({"!": {"var": ""}}),
        ] {
            assert_eq!(reads(all.clone()), (true, true, true), "{all}");
        }
    }
}
