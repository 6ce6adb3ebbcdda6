//! The seam between domains and the engine, with the domains' types erased.
//!
//! The engine runs many domains side by side on one command log and one writer, some
//! known at compile time ([`Domain`]s and [`Process`]es written in Rust), some built at
//! run time (resource types declared in files, say). It sees them all through the same
//! two object-safe traits:
//!
//! - [`DomainModel`]: a domain's name, stream prefixes, commands (with their payload
//!   schemas) and event types (with their schema versions); how to decode a command and
//!   how to upcast a recorded event to its current shape; and an [`Executor`], the part of
//!   the single writer that holds the domain's stream states and decides its commands,
//!   reading and writing through an [`Execution`] the engine provides.
//! - [`ProcessModel`]: a process's name, the event types it handles, and how it reacts.
//!
//! [`domain`] and [`process`] wrap a typed domain or process; a domain built at run time
//! implements the traits itself, against the same contract: deterministic, no I/O but
//! through [`Execution`], refusals as [`Refusal`]s.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use serde_json::Value;

use crate::decider::{Decision, Streams, owns_stream};
use crate::process::{EventView, Process, Reactions, react_to};
use crate::{
    CommandCatalog, CommandError, Domain, Envelope, EventDecodeError, EventSet, Failure, Refusal,
    Rejection,
};

/// Longest stream name a domain may use, in bytes.
pub const STREAM_NAME_BYTES_MAX: usize = 1024;

/// One command name and version a domain accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandSpec {
    /// The command's name, for example `OpenTicket`.
    pub name: String,
    /// The payload version, from 1.
    pub version: u32,
    /// Issued only by processes and timers; refused from clients.
    pub internal: bool,
    /// The payload's JSON Schema (draft 2020-12, self-contained).
    pub schema: Value,
}

/// One event type a domain records, with its schema versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSpec {
    /// The type name, for example `TicketOpened`.
    pub name: String,
    /// The schema version this build records it with (1 for a type that never changed).
    pub version: u32,
    /// Every schema version that reads, oldest first: the older ones (upcast to the
    /// current shape when read) and the current one last.
    pub versions: Vec<u32>,
}

/// A recorded event's body, upcast to its type's current schema version by
/// [`DomainModel::upcast_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upcast {
    /// The current schema version.
    pub version: u32,
    /// The body in the current shape, a JSON object.
    pub data: Vec<u8>,
}

/// A command decoded by its domain: the typed command, erased, and its canonical payload.
pub struct Decoded {
    /// The command, upcast to the domain's newest form; only the domain's own executor
    /// looks inside.
    pub command: Box<dyn Any + Send>,
    /// The version the payload was decoded as (the newest when none was given).
    pub version: u32,
    /// The payload in canonical form: what the command log stores and duplicates are
    /// compared by (see [`crate::DecodedCommand::canonical_payload`]).
    pub canonical_payload: Vec<u8>,
}

impl fmt::Debug for Decoded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoded")
            .field("version", &self.version)
            .field(
                "canonical_payload",
                &String::from_utf8_lossy(&self.canonical_payload),
            )
            .finish_non_exhaustive()
    }
}

/// A domain as the engine sees it. See the module documentation.
pub trait DomainModel: Send + Sync + 'static {
    /// The domain's name, as `--domain` spells it.
    fn name(&self) -> &str;
    /// How the names of its streams begin.
    fn stream_prefixes(&self) -> Vec<String>;
    /// Every command name and version it accepts.
    fn commands(&self) -> Vec<CommandSpec>;
    /// Every event type it records.
    fn event_types(&self) -> Vec<String>;
    /// Every event type it records, with its schema versions. By default each of
    /// [`DomainModel::event_types`] at version 1.
    fn events(&self) -> Vec<EventSpec> {
        self.event_types()
            .into_iter()
            .map(|name| EventSpec {
                name,
                version: 1,
                versions: vec![1],
            })
            .collect()
    }
    /// The body of an event of this domain recorded as `event_type` in schema `version`,
    /// in the type's current shape: `Ok(None)` when it is in it already (or the type is
    /// not one this build knows: it reads as recorded), the upcast body otherwise, or why
    /// this build cannot read it (a version it does not know, a body that does not
    /// decode). By default every event is at version 1.
    fn upcast_event(
        &self,
        event_type: &str,
        version: u32,
        data: &[u8],
    ) -> Result<Option<Upcast>, EventDecodeError> {
        let _ = data;
        if version == 1 {
            Ok(None)
        } else {
            Err(EventDecodeError::unknown_version(
                event_type,
                version,
                &[],
                1,
            ))
        }
    }
    /// Decodes a payload (JSON bytes) as command `name` in `version` (the newest when
    /// `None`).
    fn decode(
        &self,
        name: &str,
        version: Option<u32>,
        payload: &[u8],
    ) -> Result<Decoded, CommandError>;
    /// A new executor: the single writer makes one per domain and keeps it for its life.
    fn executor(&self) -> Box<dyn Executor>;
}

/// The part of the single writer that holds a domain's stream states and decides its
/// commands.
pub trait Executor: Send {
    /// Decides one command (a [`Decoded::command`] of this domain): checks its
    /// `expectedVersion`, runs the rules, emits its events through `execution` and applies
    /// them to the cached states. On `Err` the engine discards whatever was emitted.
    fn execute(
        &mut self,
        command: &(dyn Any + Send),
        execution: &mut dyn Execution,
    ) -> Result<(), Refusal>;

    /// Keeps at most about `streams_max` cached states, dropping only states whose last
    /// event is at or before `durable_position` (those can be read back from the log).
    fn trim(&mut self, durable_position: u64, streams_max: usize);

    /// How many stream states are cached.
    fn cached_streams(&self) -> usize;
}

/// What [`Execution::load`] calls with each event of a stream: its type, body and
/// position.
pub type VisitEvent<'a> = dyn FnMut(&str, &[u8], u64) -> Result<(), String> + 'a;

/// What the engine offers an [`Executor`] deciding one command.
pub trait Execution {
    /// The command's envelope.
    fn envelope(&self) -> &Envelope;

    /// The version the command expects its target stream at, if it said.
    fn expected_version(&self) -> Option<u64>;

    /// Calls `visit(event_type, data, position)` for every durable event of `stream`, in
    /// order, each in its type's current shape (upcast by the engine through
    /// [`DomainModel::upcast_event`]).
    fn load(&mut self, stream: &str, visit: &mut VisitEvent<'_>) -> Result<(), String>;

    /// Returns once every position up to `position` is durable (so that [`load`] sees
    /// it).
    ///
    /// [`load`]: Execution::load
    fn wait_durable(&mut self, position: u64);

    /// Appends one event of the command, of `event_type` in schema version
    /// `schema_version`, its body written by `data` into the buffer it is given; returns
    /// the event's global position.
    fn emit(
        &mut self,
        stream: &str,
        version: u64,
        event_type: &str,
        schema_version: u32,
        data: &mut dyn FnMut(&mut Vec<u8>) -> Result<(), String>,
    ) -> Result<u64, String>;
}

/// A process as the engine sees it.
pub trait ProcessModel: Send + Sync + 'static {
    /// The process's name.
    fn name(&self) -> &str;
    /// The event types it reacts to.
    fn event_types(&self) -> Vec<String>;
    /// Reacts to one event of those types, adding to `out`; `Err` when the event does not
    /// decode or a payload does not serialize (the engine then drops what this reaction
    /// added and counts it).
    fn react(&self, event: &EventView<'_>, out: &mut Reactions) -> Result<(), String>;
}

/// The [`DomainModel`] of a typed [`Domain`].
pub fn domain<D: Domain>() -> Arc<dyn DomainModel> {
    Arc::new(DomainOf::<D> {
        catalog: D::commands(),
    })
}

/// The [`ProcessModel`] of a typed [`Process`].
pub fn process<P: Process>() -> Arc<dyn ProcessModel> {
    Arc::new(ProcessOf::<P>(PhantomData))
}

struct DomainOf<D: Domain> {
    catalog: CommandCatalog<D::Command>,
}

impl<D: Domain> DomainModel for DomainOf<D> {
    fn name(&self) -> &str {
        D::NAME
    }

    fn stream_prefixes(&self) -> Vec<String> {
        D::STREAM_PREFIXES.iter().map(|p| (*p).to_owned()).collect()
    }

    fn commands(&self) -> Vec<CommandSpec> {
        self.catalog
            .infos()
            .map(|info| CommandSpec {
                name: info.name.to_owned(),
                version: info.version,
                internal: info.internal,
                schema: self
                    .catalog
                    .schema(info.name, info.version)
                    .cloned()
                    .unwrap_or(Value::Null),
            })
            .collect()
    }

    fn event_types(&self) -> Vec<String> {
        D::Event::EVENT_TYPES
            .iter()
            .map(|t| (*t).to_owned())
            .collect()
    }

    fn events(&self) -> Vec<EventSpec> {
        D::Event::EVENT_TYPES
            .iter()
            .map(|&name| {
                let version = D::Event::current_version(name).unwrap_or(1);
                let mut versions = D::Event::older_versions(name).to_vec();
                versions.push(version);
                EventSpec {
                    name: name.to_owned(),
                    version,
                    versions,
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
        match D::Event::current_version(event_type) {
            None => Ok(None),
            Some(current) if current == version => Ok(None),
            Some(current) => {
                let event = D::Event::decode_version(event_type, version, data)?;
                let mut data = Vec::with_capacity(data.len() + 16);
                event
                    .encode_data(&mut data)
                    .map_err(|e| EventDecodeError::invalid_data(event_type, &e))?;
                Ok(Some(Upcast {
                    version: current,
                    data,
                }))
            }
        }
    }

    fn decode(
        &self,
        name: &str,
        version: Option<u32>,
        payload: &[u8],
    ) -> Result<Decoded, CommandError> {
        let decoded = self.catalog.decode(name, version, payload)?;
        Ok(Decoded {
            command: Box::new(decoded.command),
            version: decoded.version,
            canonical_payload: decoded.canonical_payload,
        })
    }

    fn executor(&self) -> Box<dyn Executor> {
        Box::new(TypedExecutor::<D> {
            cache: HashMap::new(),
            stale: HashMap::new(),
        })
    }
}

struct ProcessOf<P>(PhantomData<fn() -> P>);

impl<P: Process> ProcessModel for ProcessOf<P> {
    fn name(&self) -> &str {
        P::NAME
    }

    fn event_types(&self) -> Vec<String> {
        P::Event::EVENT_TYPES
            .iter()
            .map(|t| (*t).to_owned())
            .collect()
    }

    fn react(&self, event: &EventView<'_>, out: &mut Reactions) -> Result<(), String> {
        react_to::<P>(event, out)
    }
}

/// A cached stream state.
struct Cached<S> {
    state: S,
    version: u64,
    /// Position of the stream's last event (0 if none). The entry may be dropped only once
    /// this position is durable, since reloading reads the durable log.
    last_position: u64,
}

/// The executor of a typed domain: a cache of stream states in front of the log.
struct TypedExecutor<D: Domain> {
    cache: HashMap<Box<str>, Cached<D::State>>,
    /// Streams whose cached state was dropped half-applied (an `evolve` panicked): reload
    /// them only once the position of their last good event is durable.
    stale: HashMap<Box<str>, u64>,
}

fn failed(message: String) -> Refusal {
    Refusal::Failed(Failure { message })
}

/// Makes sure `stream` is in `cache`, folding its durable events if it is not.
fn ensure_loaded<D: Domain>(
    cache: &mut HashMap<Box<str>, Cached<D::State>>,
    stale: &mut HashMap<Box<str>, u64>,
    execution: &mut dyn Execution,
    stream: &str,
) -> Result<(), String> {
    if cache.contains_key(stream) {
        return Ok(());
    }
    let cached = load_stream::<D>(stale, execution, stream)?;
    cache.insert(stream.into(), cached);
    Ok(())
}

/// Takes `stream`'s state out of `cache`, leaving its entry in place with a default state
/// (so that the table is not churned by a removal and an insertion per command), or folds
/// its durable events when it is not there. The caller puts it back with [`put_back`].
fn take_loaded<D: Domain>(
    cache: &mut HashMap<Box<str>, Cached<D::State>>,
    stale: &mut HashMap<Box<str>, u64>,
    execution: &mut dyn Execution,
    stream: &str,
) -> Result<Cached<D::State>, String> {
    match cache.get_mut(stream) {
        Some(cached) => Ok(Cached {
            state: std::mem::take(&mut cached.state),
            version: cached.version,
            last_position: cached.last_position,
        }),
        None => load_stream::<D>(stale, execution, stream),
    }
}

/// Puts a state taken by [`take_loaded`] back in `cache`.
fn put_back<S>(cache: &mut HashMap<Box<str>, Cached<S>>, stream: &str, cached: Cached<S>) {
    match cache.get_mut(stream) {
        Some(slot) => *slot = cached,
        None => {
            cache.insert(stream.into(), cached);
        }
    }
}

/// Folds `stream`'s durable events into a fresh state (once a stale stream's last good
/// event is durable).
fn load_stream<D: Domain>(
    stale: &mut HashMap<Box<str>, u64>,
    execution: &mut dyn Execution,
    stream: &str,
) -> Result<Cached<D::State>, String> {
    if let Some(position) = stale.remove(stream) {
        execution.wait_durable(position);
    }
    let mut cached = Cached {
        state: D::State::default(),
        version: 0,
        last_position: 0,
    };
    execution.load(stream, &mut |event_type, data, position| {
        let event = D::Event::decode(event_type, data)
            .map_err(|e| format!("loading stream {stream}: event {position}: {e}"))?;
        catch_unwind(AssertUnwindSafe(|| D::evolve(&mut cached.state, &event))).map_err(|p| {
            format!(
                "loading stream {stream}: applying event {position} panicked: {}",
                panic_message(&*p)
            )
        })?;
        cached.version += 1;
        cached.last_position = position;
        Ok(())
    })?;
    Ok(cached)
}

/// The other streams a decision reads: the cache, loaded on demand.
struct Loader<'a, D: Domain> {
    cache: &'a mut HashMap<Box<str>, Cached<D::State>>,
    stale: &'a mut HashMap<Box<str>, u64>,
    execution: &'a mut dyn Execution,
}

impl<D: Domain> Streams<D> for Loader<'_, D> {
    fn load(&mut self, stream: &str) -> Result<(&D::State, u64), String> {
        check_stream::<D>(stream)?;
        ensure_loaded::<D>(self.cache, self.stale, self.execution, stream)?;
        let cached = &self.cache[stream];
        Ok((&cached.state, cached.version))
    }
}

/// A stream name the domain may use: one of its prefixes, and not too long.
fn check_stream<D: Domain>(stream: &str) -> Result<(), String> {
    if stream.len() > STREAM_NAME_BYTES_MAX {
        return Err(format!(
            "the handler addressed a stream name of {} bytes (at most {STREAM_NAME_BYTES_MAX})",
            stream.len()
        ));
    }
    if !owns_stream(D::STREAM_PREFIXES, stream) {
        return Err(format!(
            "stream {stream:?} is not one of domain {}'s (its streams begin with {:?})",
            D::NAME,
            D::STREAM_PREFIXES
        ));
    }
    Ok(())
}

impl<D: Domain> Executor for TypedExecutor<D> {
    fn execute(
        &mut self,
        command: &(dyn Any + Send),
        execution: &mut dyn Execution,
    ) -> Result<(), Refusal> {
        let command = command
            .downcast_ref::<D::Command>()
            .ok_or_else(|| failed(format!("a command of another domain reached {}", D::NAME)))?;
        let target = D::stream(command);
        check_stream::<D>(&target).map_err(failed)?;
        // The target's state is taken out of the cache for the whole command (one lookup
        // to take it, one to put it back), so that the decision can borrow it while other
        // streams are loaded into the cache, and the events are applied to it in place.
        let mut entry = take_loaded::<D>(&mut self.cache, &mut self.stale, execution, &target)
            .map_err(failed)?;
        match self.decide_and_apply(&target, &mut entry, command, execution) {
            Ok(()) => {
                put_back(&mut self.cache, &target, entry);
                Ok(())
            }
            Err(Outcome::Refused(refusal)) => {
                put_back(&mut self.cache, &target, entry);
                Err(refusal)
            }
            Err(Outcome::HalfApplied(refusal)) => {
                // Reload it once the events it had before this command are durable.
                self.cache.remove(target.as_ref());
                self.stale
                    .insert(target.as_ref().into(), entry.last_position);
                Err(refusal)
            }
        }
    }

    fn trim(&mut self, durable_position: u64, streams_max: usize) {
        self.stale
            .retain(|_, position| *position > durable_position);
        if self.cache.len() <= streams_max {
            return;
        }
        let target = streams_max - streams_max / 8;
        let mut excess = self.cache.len() - target;
        self.cache.retain(|_, c| {
            if excess > 0 && c.last_position <= durable_position {
                excess -= 1;
                false
            } else {
                true
            }
        });
    }

    fn cached_streams(&self) -> usize {
        self.cache.len()
    }
}

/// How [`TypedExecutor::decide_and_apply`] failed.
enum Outcome {
    /// Nothing was applied: the target's state is as it was.
    Refused(Refusal),
    /// Applying the events panicked: the target's state is half-applied, and its
    /// `last_position` is still the one before this command.
    HalfApplied(Refusal),
}

impl<D: Domain> TypedExecutor<D> {
    /// Checks the expected version, decides, then emits the events and applies them; the
    /// target's state `entry` is held apart from the cache by the caller.
    fn decide_and_apply(
        &mut self,
        target: &str,
        entry: &mut Cached<D::State>,
        command: &D::Command,
        execution: &mut dyn Execution,
    ) -> Result<(), Outcome> {
        if let Some(expected) = execution.expected_version()
            && expected != entry.version
        {
            let refusal = Rejection::wrong_expected_version(expected, entry.version).into();
            return Err(Outcome::Refused(refusal));
        }
        let envelope = *execution.envelope();
        let (decided, recorded) = {
            let mut loader = Loader::<D> {
                cache: &mut self.cache,
                stale: &mut self.stale,
                execution: &mut *execution,
            };
            let mut decision =
                Decision::new(&envelope, target, &entry.state, entry.version, &mut loader);
            let decided = catch_unwind(AssertUnwindSafe(|| D::decide(&mut decision, command)));
            (decided, decision.into_recorded())
        };
        match decided {
            Err(panic) => {
                return Err(Outcome::Refused(failed(format!(
                    "the handler panicked: {}",
                    panic_message(&*panic)
                ))));
            }
            Ok(Err(refusal)) => return Err(Outcome::Refused(refusal)),
            Ok(Ok(())) => {}
        }
        self.emit_and_apply(target, entry, recorded, execution)
    }

    /// Emits the decided events with their versions, then applies them to the states
    /// (the target's `entry`, the others in the cache). Events on streams other than the
    /// target are checked and loaded first.
    fn emit_and_apply(
        &mut self,
        target: &str,
        entry: &mut Cached<D::State>,
        recorded: Vec<(Option<String>, D::Event)>,
        execution: &mut dyn Execution,
    ) -> Result<(), Outcome> {
        // (stream, the version its next event gets) for every other stream written, in
        // order of first write; few, so a vector.
        let mut next: Vec<(&str, u64)> = Vec::new();
        let mut target_next = entry.version + 1;
        let mut positions = Vec::with_capacity(recorded.len());
        for (stream, event) in &recorded {
            let stream = stream.as_deref().unwrap_or(target);
            let version = if stream == target {
                target_next += 1;
                target_next - 1
            } else {
                let at = match next.iter().position(|(s, _)| *s == stream) {
                    Some(at) => at,
                    None => {
                        check_stream::<D>(stream).map_err(|e| Outcome::Refused(failed(e)))?;
                        ensure_loaded::<D>(&mut self.cache, &mut self.stale, execution, stream)
                            .map_err(|e| Outcome::Refused(failed(e)))?;
                        next.push((stream, self.cache[stream].version + 1));
                        next.len() - 1
                    }
                };
                next[at].1 += 1;
                next[at].1 - 1
            };
            let position = execution
                .emit(
                    stream,
                    version,
                    event.event_type(),
                    event.schema_version(),
                    &mut |out| event.encode_data(out).map_err(|e| e.to_string()),
                )
                .map_err(|e| {
                    Outcome::Refused(failed(format!("event {}: {e}", event.event_type())))
                })?;
            positions.push(position);
        }
        // Where each other written stream stood before this command, should applying
        // panic.
        let before: Vec<(&str, u64)> = next
            .iter()
            .map(|(s, _)| (*s, self.cache[*s].last_position))
            .collect();
        let target_before = entry.last_position;
        let cache = &mut self.cache;
        let applied = catch_unwind(AssertUnwindSafe(|| {
            for ((stream, event), position) in recorded.iter().zip(&positions) {
                let stream = stream.as_deref().unwrap_or(target);
                let cached = if stream == target {
                    &mut *entry
                } else {
                    cache.get_mut(stream).expect("loaded before emitting")
                };
                D::evolve(&mut cached.state, event);
                cached.version += 1;
                cached.last_position = *position;
            }
        }));
        if let Err(panic) = applied {
            // The states are half-applied: drop them, and reload each once the events it
            // had before this command are durable. This command fails, so its own events
            // are never written.
            for (stream, last_position) in before {
                self.cache.remove(stream);
                self.stale.insert(stream.into(), last_position);
            }
            entry.last_position = target_before;
            return Err(Outcome::HalfApplied(failed(format!(
                "applying the events panicked: {}",
                panic_message(&*panic)
            ))));
        }
        Ok(())
    }
}

/// The message of a caught panic.
pub fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    }
}
