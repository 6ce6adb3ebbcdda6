//! Structure changes as commands: switching a read model to another projection version is
//! a command in the log, so that a restart keeps the switch and a replay switches at the
//! same point.
//!
//! - [`domain`] is a small built-in domain, [`DOMAIN`] (`$system`), that a server registers
//!   beside its own (`writ-app` does, for every server). It accepts one command,
//!   [`SwitchReadModel`] `{name, version}` (version 1, on stream `$readmodel-{name}`), and
//!   records [`ReadModelSwitched`] `{name, version}` on that stream, with the causation and
//!   correlation metadata of every event. It rejects a read model the server does not run
//!   with [`codes::UNKNOWN_READ_MODEL`] and a projection version the read model cannot
//!   build with [`codes::UNKNOWN_VERSION`]. A switch to the version the stream's last
//!   switch named is recorded again (a no-op when that version is live; a retry when its
//!   build failed): the decision reads nothing the read side holds, so it decides the
//!   same in a replay.
//! - The live read models ([`ReadModels`](crate::ReadModels)) react when their applying
//!   thread meets a `ReadModelSwitched` at position `P` (on a `$readmodel-` stream, which
//!   no other domain can own: the registry refuses overlapping prefixes): after applying
//!   the batch, and before publishing it, it starts a rebuild of that read model at the
//!   named version beside the live one, from position 1; the rebuild joins at a batch
//!   boundary past `P`, and readers swap then (see [`runtime`](crate::runtime), "joins").
//!   Until then queries answer from the old version. A rebuild running to another version
//!   is cancelled (the last switch wins); a switch to the live version with no other
//!   rebuild running does nothing.
//! - At start, [`start_versions`] reads each read model's `$readmodel-{name}` stream and
//!   starts the read model at the version its last switch named, and the live read models
//!   ignore the switches at or before that position while they replay the log. A read
//!   model snapshot written at another version is ignored at start (it is of another
//!   code; logged).
//!
//! The command's stream prefix starts with `$`, which no resource type can (their names
//! are `[a-z][a-z0-9]*`); a domain that claims a clashing name, command or stream prefix
//! is refused at start by the registry, naming both.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use writ_domain::model::{Decoded, DomainModel, EventSpec, Executor, Upcast};
use writ_domain::{
    CommandCatalog, CommandError, Decision, Domain, EventDecodeError, Refusal, Rejection, event_set,
};
use writ_engine::{Engine, ReadError};

use crate::runtime::ReadModelSpec;

/// The built-in domain's name.
pub const DOMAIN: &str = "$system";

/// How the streams of switches begin: `$readmodel-{name}`.
pub const STREAM_PREFIX: &str = "$readmodel-";

/// The command's name.
pub const SWITCH_READ_MODEL: &str = "SwitchReadModel";

/// The event's type.
pub const READ_MODEL_SWITCHED: &str = "ReadModelSwitched";

/// The stable rejection codes of [`SWITCH_READ_MODEL`].
pub mod codes {
    /// The server runs no read model of that name.
    pub const UNKNOWN_READ_MODEL: &str = "unknown_read_model";
    /// The read model cannot build that projection version.
    pub const UNKNOWN_VERSION: &str = "unknown_version";
}

/// The stream of read model `name`'s switches.
pub fn stream_name(name: &str) -> String {
    format!("{STREAM_PREFIX}{name}")
}

/// Switch read model `name` to projection `version`: readers get that version once it has
/// been built beside the live one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchReadModel {
    /// The read model (its projection's name), for example `tickets`.
    pub name: String,
    /// The projection version readers get once it is built.
    #[schemars(range(min = 1))]
    pub version: u32,
}

/// Read model `name` runs projection `version` from this point of the log on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadModelSwitched {
    /// The read model.
    pub name: String,
    /// The projection version.
    pub version: u32,
}

event_set! {
    /// The events of the built-in domain.
    #[derive(Debug, Clone, PartialEq)]
    pub enum SystemEvent {
        /// A read model switched.
        ReadModelSwitched(ReadModelSwitched),
    }
}

/// The read models a server runs, with the projection versions each can build.
type Known = HashMap<String, Vec<u32>>;

/// A decoded switch, with what the server runs (set by [`domain`]'s decoding: a typed
/// domain decides without state of its own).
#[derive(Debug)]
pub struct Switch {
    command: SwitchReadModel,
    known: Arc<Known>,
}

/// The typed domain; [`domain`] wraps it with the read models it knows.
struct System;

impl Domain for System {
    const NAME: &'static str = DOMAIN;
    const STREAM_PREFIXES: &'static [&'static str] = &[STREAM_PREFIX];
    type Command = Switch;
    type Event = SystemEvent;
    type State = ();

    fn commands() -> CommandCatalog<Switch> {
        CommandCatalog::new().command(SWITCH_READ_MODEL, 1, |command: SwitchReadModel| Switch {
            command,
            known: Arc::default(),
        })
    }

    fn stream(switch: &Switch) -> Cow<'_, str> {
        Cow::Owned(stream_name(&switch.command.name))
    }

    fn evolve(_: &mut (), _: &SystemEvent) {}

    fn decide(decision: &mut Decision<'_, Self>, switch: &Switch) -> Result<(), Refusal> {
        let SwitchReadModel { name, version } = &switch.command;
        let Some(versions) = switch.known.get(name) else {
            let mut known: Vec<&str> = switch.known.keys().map(String::as_str).collect();
            known.sort_unstable();
            return Err(Rejection::new(
                codes::UNKNOWN_READ_MODEL,
                format!("there is no read model {name:?}; this server runs {known:?}"),
            )
            .into());
        };
        if !versions.contains(version) {
            return Err(Rejection::new(
                codes::UNKNOWN_VERSION,
                format!(
                    "read model {name:?} has no projection version {version}; it can build {versions:?}"
                ),
            )
            .with_detail("versions", versions.clone())
            .into());
        }
        decision.record(SystemEvent::ReadModelSwitched(ReadModelSwitched {
            name: name.clone(),
            version: *version,
        }));
        Ok(())
    }
}

/// The built-in domain ([`DOMAIN`]) for a server that runs the read models of `specs`.
pub fn domain(specs: &[ReadModelSpec]) -> Arc<dyn DomainModel> {
    let known: Known = specs
        .iter()
        .map(|spec| (spec.name().to_owned(), spec.projection_versions().to_vec()))
        .collect();
    Arc::new(SystemDomain {
        inner: writ_domain::model::domain::<System>(),
        known: Arc::new(known),
    })
}

/// [`System`] with the read models it knows, handed to every command it decodes.
struct SystemDomain {
    inner: Arc<dyn DomainModel>,
    known: Arc<Known>,
}

impl DomainModel for SystemDomain {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn stream_prefixes(&self) -> Vec<String> {
        self.inner.stream_prefixes()
    }

    fn commands(&self) -> Vec<writ_domain::model::CommandSpec> {
        self.inner.commands()
    }

    fn event_types(&self) -> Vec<String> {
        self.inner.event_types()
    }

    fn events(&self) -> Vec<EventSpec> {
        self.inner.events()
    }

    fn upcast_event(
        &self,
        event_type: &str,
        version: u32,
        data: &[u8],
    ) -> Result<Option<Upcast>, EventDecodeError> {
        self.inner.upcast_event(event_type, version, data)
    }

    fn decode(
        &self,
        name: &str,
        version: Option<u32>,
        payload: &[u8],
    ) -> Result<Decoded, CommandError> {
        let mut decoded = self.inner.decode(name, version, payload)?;
        if let Some(switch) = decoded.command.downcast_mut::<Switch>() {
            switch.known = Arc::clone(&self.known);
        }
        Ok(decoded)
    }

    fn executor(&self) -> Box<dyn Executor> {
        self.inner.executor()
    }
}

/// A switch read from the log: the version, and the position of its event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switched {
    /// The projection version it named.
    pub version: u32,
    /// Its event's global position.
    pub position: u64,
}

/// The last switch of read model `name` in `engine`'s log, if any.
pub fn last_switch(engine: &Engine, name: &str) -> Result<Option<Switched>, ReadError> {
    let stream = stream_name(name);
    let version = engine.stream_version(&stream);
    if version == 0 {
        return Ok(None);
    }
    let events = engine.read_stream(&stream, version, 1)?;
    Ok(events.last().and_then(switched_by))
}

/// The switch an event records, if it is one: a [`READ_MODEL_SWITCHED`] on a
/// [`STREAM_PREFIX`] stream whose body decodes. Its `name` is the event's.
pub fn switch_of(event: &writ_domain::RecordedEvent) -> Option<ReadModelSwitched> {
    if event.event_type != READ_MODEL_SWITCHED || !event.stream.starts_with(STREAM_PREFIX) {
        return None;
    }
    serde_json::from_slice(&event.data).ok()
}

fn switched_by(event: &writ_domain::RecordedEvent) -> Option<Switched> {
    switch_of(event).map(|switch| Switched {
        version: switch.version,
        position: event.position,
    })
}

/// Each read model of `specs` at the version its last switch in `engine`'s log named,
/// set to follow only the switches after it ([`ReadModelSpec::switched_at`]); the others
/// as they are. A switch to a version this build cannot build is logged and left out (the
/// read model starts as it would without it).
pub fn start_versions(
    engine: &Engine,
    specs: Vec<ReadModelSpec>,
) -> Result<Vec<ReadModelSpec>, ReadError> {
    let mut started = Vec::with_capacity(specs.len());
    for spec in specs {
        let Some(switched) = last_switch(engine, spec.name())? else {
            started.push(spec);
            continue;
        };
        let name = spec.name();
        let given = spec.version();
        if !spec.projection_versions().contains(&switched.version) {
            tracing::warn!(
                read_model = name,
                version = switched.version,
                position = switched.position,
                versions = ?spec.projection_versions(),
                "the log switched this read model to a projection version this build cannot build; it starts at version {given}"
            );
            started.push(spec);
            continue;
        }
        if given != switched.version {
            tracing::info!(
                read_model = name,
                version = switched.version,
                position = switched.position,
                instead_of = given,
                "the read model starts at the projection version its last switch in the log named"
            );
        }
        let spec = spec
            .starting_at(switched.version)
            .expect("a listed version can be built")
            .switched_at(switched.position);
        started.push(spec);
    }
    Ok(started)
}
