//! State machines (`machines/T.json`): one field of a document that changes only through
//! listed transitions, and the durable timers that fire a transition when a document has
//! stayed in a state long enough.
//!
//! ```json
//! {"field": "status", "initial": "pending",
//!  "transitions": [
//!    {"command": "Activate", "from": ["pending"], "to": "active"},
//!    {"command": "Expire", "from": ["pending"], "to": "expired", "after": "P7D"}]}
//! ```
//!
//! A created document starts at `initial`; afterwards the field changes only through a
//! transition's command (`{Command}{Title}`, here `ActivateUser`), from one of its `from`
//! states. A transition command without a handler is a command of its own that only moves
//! the field, recorded as its `event` (default `{Title}Transitioned`) with data
//! `{"command", "from", "to"}`.
//!
//! # Timers
//!
//! A transition with `after` is also fired by the engine's durable timers, through a
//! process of the type ([`MachineTimers`], named `machine:{T}`): each event that moves a
//! document's field schedules, for every `after` transition, its command at the event's
//! time plus the duration when the new state is one of the transition's `from` states,
//! and cancels that transition's timer otherwise (a `{Title}Deleted` cancels them all).
//! Timers are keyed `{id}/{Command}`, one per document and command (a machine gives a
//! command at most one `after`), and the commands they issue have ids derived from the
//! event that scheduled them, so a timer fires once across restarts (a deadline that
//! passed while the server was down fires when it starts), and a document that left the
//! state first has no timer left to fire. An event that does not move the field (a patch
//! of other members, a transition from a state to itself) changes no timer: the document
//! is still in its state, and has been since it entered it.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use writ_domain::model::ProcessModel;
use writ_domain::{EventView, Reaction, Reactions};

use crate::kind::{Action, ResourceType, escape_pointer};
use crate::load::{LoadError, is_title};

/// Most transitions a machine may list.
pub const TRANSITIONS_MAX: usize = 256;

/// Longest state name, in bytes.
pub const STATE_BYTES_MAX: usize = 128;

/// Longest `after` a transition may have, in seconds (ten years of 366 days): a timer
/// further away is a mistake more often than a plan.
pub const AFTER_SECONDS_MAX: u64 = 10 * 366 * 86_400;

/// A type's state machine, as `machines/T.json` declares it. See the module documentation.
#[derive(Debug, Clone)]
pub struct Machine {
    /// The top-level field that holds the state.
    pub(crate) field: String,
    /// `/{field}`, as patches name it.
    pub(crate) pointer: String,
    /// Where a created document starts.
    pub(crate) initial: String,
    /// In file order.
    pub(crate) transitions: Vec<Transition>,
}

/// One transition of a [`Machine`].
#[derive(Debug, Clone)]
pub struct Transition {
    /// The command's verb (`Activate`); its name is `{verb}{Title}`.
    pub(crate) command: String,
    /// The states it leaves.
    pub(crate) from: Vec<String>,
    /// The state it enters.
    pub(crate) to: String,
    /// The event it records when no handler runs (`{Title}Transitioned` by default).
    pub(crate) event: String,
    /// Fired by a durable timer after a document stayed this long in a `from` state.
    pub(crate) after_ms: Option<u64>,
}

impl Machine {
    /// The field that holds the state.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// Where a created document starts.
    pub fn initial(&self) -> &str {
        &self.initial
    }

    /// The verbs of its commands, each once, in file order.
    pub fn commands(&self) -> Vec<&str> {
        let mut commands: Vec<&str> = Vec::new();
        for t in &self.transitions {
            if !commands.contains(&t.command.as_str()) {
                commands.push(&t.command);
            }
        }
        commands
    }

    /// The event types its transitions record, each once.
    pub(crate) fn events(&self) -> Vec<&str> {
        let mut events: Vec<&str> = Vec::new();
        for t in &self.transitions {
            if !events.contains(&t.event.as_str()) {
                events.push(&t.event);
            }
        }
        events
    }

    /// The state of `document`: its field, when a string.
    pub(crate) fn state_of<'a>(&self, document: &'a Value) -> Option<&'a str> {
        document.get(&self.field).and_then(Value::as_str)
    }

    /// The transition of command `verb` that leaves `state`.
    pub(crate) fn transition(&self, verb: &str, state: Option<&str>) -> Option<&Transition> {
        let state = state?;
        self.transitions
            .iter()
            .find(|t| t.command == verb && t.from.iter().any(|f| f == state))
    }

    /// Whether `verb` is one of its commands.
    pub(crate) fn has_command(&self, verb: &str) -> bool {
        self.transitions.iter().any(|t| t.command == verb)
    }

    /// The states command `verb` leaves, for messages.
    pub(crate) fn sources(&self, verb: &str) -> Vec<&str> {
        self.transitions
            .iter()
            .filter(|t| t.command == verb)
            .flat_map(|t| t.from.iter().map(String::as_str))
            .collect()
    }

    /// Whether any transition has an `after`.
    pub fn has_timers(&self) -> bool {
        self.transitions.iter().any(|t| t.after_ms.is_some())
    }
}

/// Reads and checks `machines/T.json` of type `ty` (its schema and title already loaded).
pub(crate) fn parse(file: &Path, machine: &Value, ty: &ResourceType) -> Result<Machine, LoadError> {
    let at = |pointer: String, detail: String| LoadError::Definition {
        file: file.to_owned(),
        pointer,
        detail,
    };
    let Value::Object(members) = machine else {
        return Err(at(
            String::new(),
            "a machine is a JSON object: {\"field\", \"initial\", \"transitions\"}".into(),
        ));
    };
    only_keys(members, &["field", "initial", "transitions"], "", &at)?;
    let field = match members.get("field") {
        Some(Value::String(field)) => field.clone(),
        Some(other) => {
            return Err(at(
                "/field".into(),
                format!("the name of a top-level property of the schema, not {other}"),
            ));
        }
        None => return Err(at("/field".into(), "`field` is missing".into())),
    };
    let properties = ty.schema.get("properties").and_then(Value::as_object);
    if !properties.is_some_and(|p| p.contains_key(&field)) {
        return Err(at(
            "/field".into(),
            format!(
                "{field:?} is not a top-level property of {}'s schema (`properties`)",
                ty.name
            ),
        ));
    }
    if ty.unique.contains(&field) {
        return Err(at(
            "/field".into(),
            format!("{field:?} is unique (`x-writ-unique`): a state is shared by many documents"),
        ));
    }
    let initial = state(members.get("initial"), "/initial", &at)?;
    let transitions = match members.get("transitions") {
        Some(Value::Array(transitions)) if transitions.len() <= TRANSITIONS_MAX => transitions,
        Some(Value::Array(_)) => {
            return Err(at(
                "/transitions".into(),
                format!("at most {TRANSITIONS_MAX} transitions"),
            ));
        }
        Some(other) => {
            return Err(at(
                "/transitions".into(),
                format!("a list of transitions, not {other}"),
            ));
        }
        None => return Err(at("/transitions".into(), "`transitions` is missing".into())),
    };
    let own_events = ty.event_types_of_crud();
    let mut parsed: Vec<Transition> = Vec::with_capacity(transitions.len());
    for (n, transition) in transitions.iter().enumerate() {
        let place = format!("/transitions/{n}");
        let Value::Object(t) = transition else {
            return Err(at(
                place,
                "a transition is {\"command\", \"from\", \"to\", \"event\"?, \"after\"?}".into(),
            ));
        };
        only_keys(t, &["command", "from", "to", "event", "after"], &place, &at)?;
        let command = match t.get("command") {
            Some(Value::String(c)) if is_title(c) => c.clone(),
            Some(other) => {
                return Err(at(
                    format!("{place}/command"),
                    format!(
                        "a command's verb (its name is {{verb}}{}): letters and digits beginning with an uppercase letter, not {other}",
                        ty.title
                    ),
                ));
            }
            None => {
                return Err(at(
                    format!("{place}/command"),
                    "`command` is missing".into(),
                ));
            }
        };
        if Action::ALL.iter().any(|a| a.verb() == command) {
            return Err(at(
                format!("{place}/command"),
                format!(
                    "{command} is one of the commands every type has (Create, Replace, Patch, Delete): a transition needs a command of its own"
                ),
            ));
        }
        let from = match t.get("from") {
            Some(Value::Array(from)) if !from.is_empty() => {
                let mut states = Vec::with_capacity(from.len());
                for (k, s) in from.iter().enumerate() {
                    let s = state(Some(s), &format!("{place}/from/{k}"), &at)?;
                    if states.contains(&s) {
                        return Err(at(
                            format!("{place}/from/{k}"),
                            format!("{s:?} is listed twice"),
                        ));
                    }
                    if let Some((other, _)) = parsed
                        .iter()
                        .enumerate()
                        .find(|(_, p)| p.command == command && p.from.contains(&s))
                    {
                        return Err(at(
                            format!("{place}/from/{k}"),
                            format!(
                                "{command} already leaves {s:?} in /transitions/{other}: a command moves a state one way"
                            ),
                        ));
                    }
                    states.push(s);
                }
                states
            }
            Some(_) => {
                return Err(at(
                    format!("{place}/from"),
                    "a non-empty list of the states the transition leaves".into(),
                ));
            }
            None => return Err(at(format!("{place}/from"), "`from` is missing".into())),
        };
        let to = state(t.get("to"), &format!("{place}/to"), &at)?;
        let event = match t.get("event") {
            None => format!("{}Transitioned", ty.title),
            Some(Value::String(e)) if is_title(e) && !own_events.contains(e) => e.clone(),
            Some(Value::String(e)) if is_title(e) => {
                return Err(at(
                    format!("{place}/event"),
                    format!(
                        "{e} is an event every {} type records: name it otherwise",
                        ty.title
                    ),
                ));
            }
            Some(other) => {
                return Err(at(
                    format!("{place}/event"),
                    format!(
                        "an event type: letters and digits beginning with an uppercase letter, not {other}"
                    ),
                ));
            }
        };
        let after_ms = match t.get("after") {
            None => None,
            Some(Value::String(text)) => {
                let seconds =
                    parse_duration(text).map_err(|detail| at(format!("{place}/after"), detail))?;
                if let Some(other) = parsed
                    .iter()
                    .position(|p| p.command == command && p.after_ms.is_some())
                {
                    return Err(at(
                        format!("{place}/after"),
                        format!(
                            "{command} already has a timer in /transitions/{other}: a command is fired by one timer"
                        ),
                    ));
                }
                Some(seconds * 1_000)
            }
            Some(other) => {
                return Err(at(
                    format!("{place}/after"),
                    format!("an ISO 8601 duration such as \"PT15M\", not {other}"),
                ));
            }
        };
        parsed.push(Transition {
            command,
            from,
            to,
            event,
            after_ms,
        });
    }
    Ok(Machine {
        pointer: format!("/{}", escape_pointer(&field)),
        field,
        initial,
        transitions: parsed,
    })
}

fn only_keys(
    members: &Map<String, Value>,
    keys: &[&str],
    place: &str,
    at: &impl Fn(String, String) -> LoadError,
) -> Result<(), LoadError> {
    match members.keys().find(|k| !keys.contains(&k.as_str())) {
        Some(key) => Err(at(
            format!("{place}/{}", escape_pointer(key)),
            format!(
                "unknown member {key:?}: the members are {}",
                keys.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

fn state(
    value: Option<&Value>,
    pointer: &str,
    at: &impl Fn(String, String) -> LoadError,
) -> Result<String, LoadError> {
    match value {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= STATE_BYTES_MAX => Ok(s.clone()),
        Some(other) => Err(at(
            pointer.to_owned(),
            format!("a state is a string of 1 to {STATE_BYTES_MAX} bytes, not {other}"),
        )),
        None => Err(at(pointer.to_owned(), "missing".into())),
    }
}

/// An ISO 8601 duration of weeks, days, hours, minutes and seconds (`P1W`, `P2DT3H`,
/// `PT15M`, `PT0.5S`), in whole seconds (a fraction of a second is refused: timers have
/// whole seconds). Years and months have no fixed length and are refused.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let bad = |why: &str| {
        format!(
            "{text:?} is not a duration this server takes ({why}): ISO 8601 as PnW, PnDTnHnMnS (\"PT15M\", \"P1DT12H\"), above zero, at most {AFTER_SECONDS_MAX} seconds"
        )
    };
    let rest = text
        .strip_prefix('P')
        .ok_or_else(|| bad("it begins with P"))?;
    if rest.is_empty() {
        return Err(bad("no amount"));
    }
    let mut seconds: u64 = 0;
    let mut in_time = false;
    let mut digits = String::new();
    let mut last_unit = 0usize;
    let mut any = false;
    for c in rest.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if c == 'T' {
            if in_time || !digits.is_empty() {
                return Err(bad("a misplaced T"));
            }
            in_time = true;
            continue;
        }
        // The units in their order: date part W, D; time part H, M, S.
        let (rank, unit) = match (in_time, c) {
            (false, 'W') => (1, 7 * 86_400),
            (false, 'D') => (2, 86_400),
            (true, 'H') => (3, 3_600),
            (true, 'M') => (4, 60),
            (true, 'S') => (5, 1),
            (false, 'Y' | 'M') => return Err(bad("years and months have no fixed length")),
            _ => return Err(bad(&format!("unexpected {c:?}"))),
        };
        if digits.is_empty() {
            return Err(bad(&format!("no number before {c}")));
        }
        if rank <= last_unit {
            return Err(bad("units out of order or repeated"));
        }
        last_unit = rank;
        let amount: u64 = digits
            .parse()
            .ok()
            .filter(|n| *n <= AFTER_SECONDS_MAX)
            .ok_or_else(|| bad("too long"))?;
        digits.clear();
        seconds = amount
            .checked_mul(unit)
            .and_then(|s| seconds.checked_add(s))
            .ok_or_else(|| bad("too long"))?;
        any = true;
    }
    if !digits.is_empty() {
        return Err(bad(
            "a number without a unit (a fraction of a second is not taken)",
        ));
    }
    if !any || (in_time && last_unit < 3) {
        return Err(bad("no amount"));
    }
    if seconds == 0 {
        return Err(bad("zero"));
    }
    if seconds > AFTER_SECONDS_MAX {
        return Err(bad("too long"));
    }
    Ok(seconds)
}

/// The process that fires a type's `after` transitions: see the module documentation.
#[derive(Debug)]
pub(crate) struct MachineTimers {
    pub(crate) ty: Arc<ResourceType>,
    pub(crate) name: String,
}

impl MachineTimers {
    pub(crate) fn new(ty: Arc<ResourceType>) -> Self {
        Self {
            name: format!("machine:{}", ty.name),
            ty,
        }
    }

    fn machine(&self) -> &Machine {
        self.ty.machine.as_ref().expect("timers exist for machines")
    }

    /// The state a document's event moves it to: `Some(Some(state))` when it moves the
    /// field, `Some(None)` when the document (or its state) is gone, `None` when the event
    /// does not move the field.
    fn moved_to(&self, event_type: &str, data: &Value) -> Option<Option<String>> {
        let machine = self.machine();
        let ty = &self.ty;
        if ty.is_event(event_type, Action::Create) {
            return Some(
                data.get("document")
                    .and_then(|d| machine.state_of(d))
                    .map(str::to_owned),
            );
        }
        if ty.is_event(event_type, Action::Delete) {
            return Some(None);
        }
        if ty.is_event(event_type, Action::Replace) || ty.is_event(event_type, Action::Patch) {
            // Neither moves the field: the writer refuses one that would.
            return None;
        }
        if let Some(ops) = data.get("patch").and_then(Value::as_array) {
            // A custom command's patch: the last operation on the field says where it is.
            let last = ops
                .iter()
                .rev()
                .find(|op| op.get("path").and_then(Value::as_str) == Some(&machine.pointer))?;
            return Some(match last.get("op").and_then(Value::as_str) {
                Some("add" | "replace") => {
                    last.get("value").and_then(Value::as_str).map(str::to_owned)
                }
                _ => None,
            });
        }
        // A transition's own event: {"command", "from", "to"}.
        let to = data.get("to").and_then(Value::as_str)?;
        if data.get("from").and_then(Value::as_str) == Some(to) {
            return None;
        }
        Some(Some(to.to_owned()))
    }
}

impl ProcessModel for MachineTimers {
    fn name(&self) -> &str {
        &self.name
    }

    fn event_types(&self) -> Vec<String> {
        let mut types = vec![self.ty.event(Action::Create), self.ty.event(Action::Delete)];
        for event in self.ty.custom_events() {
            if !types.contains(&event) {
                types.push(event);
            }
        }
        types
    }

    fn react(&self, event: &EventView<'_>, out: &mut Reactions) -> Result<(), String> {
        let Some(id) = event
            .stream
            .strip_prefix(self.ty.name)
            .and_then(|rest| rest.strip_prefix('-'))
        else {
            return Ok(()); // A claim stream's event: no document moves.
        };
        let data: Value = serde_json::from_slice(event.data)
            .map_err(|e| format!("{}: event {}: {e}", self.name, event.event_type))?;
        let Some(state) = self.moved_to(event.event_type, &data) else {
            return Ok(());
        };
        let machine = self.machine();
        // A create cancels the timers of the transitions its state does not start, though
        // none can be pending: the records stay as earlier builds wrote them, so that a
        // replay of their journals finds no difference in timers.
        let mut reaction = Reaction::new(&self.name, event, out);
        for t in &machine.transitions {
            let Some(after_ms) = t.after_ms else { continue };
            let key = format!("{id}/{}", t.command);
            if state.as_ref().is_some_and(|s| t.from.contains(s)) {
                reaction.schedule(
                    &key,
                    event.recorded_at_ms.saturating_add(after_ms),
                    &format!("{}{}", t.command, self.ty.title),
                    &json!({"id": id}),
                );
            } else {
                reaction.cancel(&key);
            }
        }
        reaction.finish()
    }
}
