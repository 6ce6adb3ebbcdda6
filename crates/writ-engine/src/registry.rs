//! The domains and processes an engine runs: checked once, looked up by name on every
//! command.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use writ_domain::model::{CommandSpec, Decoded, DomainModel, ProcessModel, Upcast};
use writ_domain::{CommandError, EventDecodeError, EventView, Reactions};

/// The domains and processes of one engine: one command log, one writer, one event log
/// for all of them.
///
/// Built with [`Registry::builder`], which refuses a command name, a stream prefix or a
/// process name claimed twice, naming both claimants.
///
/// ```
/// use writ_engine::Registry;
/// use writ_domain::model::domain;
/// use writ_fixtures::Counters;
/// let registry = Registry::builder().domain(domain::<Counters>()).build().unwrap();
/// assert_eq!(registry.domain_names(), ["counters"]);
/// let twice = Registry::builder()
///     .domain(domain::<Counters>())
///     .domain(domain::<Counters>())
///     .build();
/// assert!(twice.unwrap_err().to_string().contains("counters"));
/// ```
#[derive(Clone)]
pub struct Registry {
    domains: Vec<Arc<dyn DomainModel>>,
    /// Command name → (domain index, its specs' versions that are internal).
    commands: HashMap<String, CommandEntry>,
    prefixes: Vec<(String, usize)>,
    processes: Vec<Arc<dyn ProcessModel>>,
    /// Event type → the processes that react to it, in registration order.
    reactions: HashMap<String, Vec<usize>>,
    /// Event types some domain records in a schema version other than 1: an event of
    /// another type recorded at version 1 reads as recorded, without asking its domain.
    versioned_event_types: std::collections::HashSet<String>,
}

#[derive(Debug, Clone)]
struct CommandEntry {
    /// The name, shared by every record of the command the writer builds.
    name: Arc<str>,
    domain: usize,
    /// `(version, internal)` of each declared version.
    versions: Vec<(u32, bool)>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("domains", &self.domain_names())
            .field(
                "processes",
                &self.processes.iter().map(|p| p.name()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Why a set of domains and processes cannot run together. Each variant names both
/// claimants; rename one of them (or leave one domain out).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Two domains have the same name.
    #[error("two domains are named {name:?}")]
    DomainTwice {
        /// The name.
        name: String,
    },
    /// Two domains declare a command of the same name.
    #[error("command {command:?} is declared by domain {first:?} and by domain {second:?}")]
    CommandClash {
        /// The command.
        command: String,
        /// The domain registered first.
        first: String,
        /// The other.
        second: String,
    },
    /// A stream prefix of one domain is a prefix of (or equal to) one of another's, so a
    /// stream name could belong to both.
    #[error(
        "stream prefix {first_prefix:?} of domain {first:?} and {second_prefix:?} of domain {second:?} overlap"
    )]
    PrefixClash {
        /// The domain registered first.
        first: String,
        /// Its prefix.
        first_prefix: String,
        /// The other.
        second: String,
        /// Its prefix.
        second_prefix: String,
    },
    /// A domain declares no stream prefix, or an empty one.
    #[error("domain {domain:?} must declare at least one non-empty stream prefix")]
    NoPrefix {
        /// The domain.
        domain: String,
    },
    /// Two processes have the same name (it is part of the ids they issue).
    #[error("two processes are named {name:?}")]
    ProcessTwice {
        /// The name.
        name: String,
    },
    /// A process reacts to an event type no domain records (a typo, or its domain is not
    /// registered): it would never run.
    #[error(
        "process {process:?} reacts to event type {event_type:?}, which no registered domain records"
    )]
    UnknownEventType {
        /// The process.
        process: String,
        /// The event type.
        event_type: String,
    },
}

/// Builds a [`Registry`]; see there.
#[derive(Default)]
pub struct RegistryBuilder {
    domains: Vec<Arc<dyn DomainModel>>,
    processes: Vec<Arc<dyn ProcessModel>>,
}

impl fmt::Debug for RegistryBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryBuilder")
            .field("domains", &self.domains.len())
            .field("processes", &self.processes.len())
            .finish()
    }
}

impl RegistryBuilder {
    /// Adds a domain.
    pub fn domain(mut self, domain: Arc<dyn DomainModel>) -> Self {
        self.domains.push(domain);
        self
    }

    /// Adds a process.
    pub fn process(mut self, process: Arc<dyn ProcessModel>) -> Self {
        self.processes.push(process);
        self
    }

    /// Checks for clashes and builds the registry.
    pub fn build(self) -> Result<Registry, RegistryError> {
        let mut commands: HashMap<String, CommandEntry> = HashMap::new();
        let mut prefixes: Vec<(String, usize)> = Vec::new();
        for (index, domain) in self.domains.iter().enumerate() {
            if let Some(first) = self.domains[..index]
                .iter()
                .find(|d| d.name() == domain.name())
            {
                return Err(RegistryError::DomainTwice {
                    name: first.name().to_owned(),
                });
            }
            let own = domain.stream_prefixes();
            if own.is_empty() || own.iter().any(String::is_empty) {
                return Err(RegistryError::NoPrefix {
                    domain: domain.name().to_owned(),
                });
            }
            for prefix in own {
                if let Some((other, at)) = prefixes.iter().find(|(p, at)| {
                    *at != index && (p.starts_with(&prefix) || prefix.starts_with(p.as_str()))
                }) {
                    return Err(RegistryError::PrefixClash {
                        first: self.domains[*at].name().to_owned(),
                        first_prefix: other.clone(),
                        second: domain.name().to_owned(),
                        second_prefix: prefix,
                    });
                }
                prefixes.push((prefix, index));
            }
            for spec in domain.commands() {
                let entry = commands
                    .entry(spec.name.clone())
                    .or_insert_with(|| CommandEntry {
                        name: Arc::from(spec.name.as_str()),
                        domain: index,
                        versions: Vec::new(),
                    });
                if entry.domain != index {
                    return Err(RegistryError::CommandClash {
                        command: spec.name,
                        first: self.domains[entry.domain].name().to_owned(),
                        second: domain.name().to_owned(),
                    });
                }
                entry.versions.push((spec.version, spec.internal));
            }
        }
        let recorded: std::collections::HashSet<String> =
            self.domains.iter().flat_map(|d| d.event_types()).collect();
        let mut reactions: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, process) in self.processes.iter().enumerate() {
            if self.processes[..index]
                .iter()
                .any(|p| p.name() == process.name())
            {
                return Err(RegistryError::ProcessTwice {
                    name: process.name().to_owned(),
                });
            }
            for event_type in process.event_types() {
                if !recorded.contains(&event_type) {
                    return Err(RegistryError::UnknownEventType {
                        process: process.name().to_owned(),
                        event_type,
                    });
                }
                reactions.entry(event_type).or_default().push(index);
            }
        }
        let versioned_event_types = self
            .domains
            .iter()
            .flat_map(|d| d.events())
            .filter(|e| e.version != 1)
            .map(|e| e.name)
            .collect();
        Ok(Registry {
            domains: self.domains,
            commands,
            prefixes,
            processes: self.processes,
            reactions,
            versioned_event_types,
        })
    }
}

/// How a command reached the engine, for [`Registry::decode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum From {
    /// A client: internal commands are refused.
    Client,
    /// A process or a timer.
    Server,
}

impl Registry {
    /// Starts a registry.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    /// The domains, in registration order.
    pub fn domains(&self) -> &[Arc<dyn DomainModel>] {
        &self.domains
    }

    /// The domains' names, in registration order.
    pub fn domain_names(&self) -> Vec<&str> {
        self.domains.iter().map(|d| d.name()).collect()
    }

    /// The processes, in registration order.
    pub fn processes(&self) -> &[Arc<dyn ProcessModel>] {
        &self.processes
    }

    /// Every command of every domain, with its domain's name.
    pub fn commands(&self) -> Vec<(&str, CommandSpec)> {
        self.domains
            .iter()
            .flat_map(|d| d.commands().into_iter().map(move |c| (d.name(), c)))
            .collect()
    }

    /// The domain that owns `stream`, by its prefix.
    pub fn domain_of_stream(&self, stream: &str) -> Option<&dyn DomainModel> {
        self.prefixes
            .iter()
            .find(|(p, _)| stream.len() > p.len() && stream.starts_with(p.as_str()))
            .map(|(_, at)| self.domains[*at].as_ref())
    }

    /// The body of an event recorded on `stream` as `event_type` in schema `version`, in
    /// the type's current shape: `Ok(None)` when it is in it already, or when no domain
    /// owns the stream or knows the type (it reads as recorded); see
    /// [`DomainModel::upcast_event`].
    pub fn upcast_event(
        &self,
        stream: &str,
        event_type: &str,
        version: u32,
        data: &[u8],
    ) -> Result<Option<Upcast>, EventDecodeError> {
        if version == 1 && !self.versioned_event_types.contains(event_type) {
            return Ok(None);
        }
        match self.domain_of_stream(stream) {
            Some(domain) => domain.upcast_event(event_type, version, data),
            None => Ok(None),
        }
    }

    /// The shared name of a declared command (a fresh one for a name never declared).
    pub(crate) fn command_name(&self, name: &str) -> Arc<str> {
        self.commands
            .get(name)
            .map_or_else(|| Arc::from(name), |entry| Arc::clone(&entry.name))
    }

    /// Decodes a command by name; returns its domain's index with it.
    pub(crate) fn decode(
        &self,
        name: &str,
        version: Option<u32>,
        payload: &[u8],
        from: From,
    ) -> Result<(usize, Decoded), CommandError> {
        let entry = self
            .commands
            .get(name)
            .ok_or_else(|| CommandError::UnknownCommand {
                name: name.to_owned(),
            })?;
        let decoded = self.domains[entry.domain].decode(name, version, payload)?;
        if from == From::Client
            && entry
                .versions
                .iter()
                .any(|&(v, internal)| v == decoded.version && internal)
        {
            return Err(CommandError::Internal {
                name: name.to_owned(),
            });
        }
        Ok((entry.domain, decoded))
    }

    /// Whether any process reacts to `event_type`.
    pub(crate) fn reacts_to(&self, event_type: &str) -> bool {
        !self.reactions.is_empty() && self.reactions.contains_key(event_type)
    }

    /// Lets every process that handles the event's type react, in registration order.
    /// Each reaction that fails (it panicked, the event did not decode, a payload did not
    /// serialize) adds nothing and is returned as `(process, why)`.
    pub(crate) fn react(
        &self,
        event: &EventView<'_>,
        out: &mut Reactions,
        failures: &mut Vec<(String, String)>,
    ) {
        let Some(processes) = self.reactions.get(event.event_type) else {
            return;
        };
        for &index in processes {
            let process = &self.processes[index];
            let mut own = Reactions::new();
            let reacted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                process.react(event, &mut own)
            }));
            match reacted {
                Ok(Ok(())) => out.extend(own),
                Ok(Err(why)) => failures.push((process.name().to_owned(), why)),
                Err(panic) => failures.push((
                    process.name().to_owned(),
                    format!(
                        "the process panicked: {}",
                        writ_domain::model::panic_message(&*panic)
                    ),
                )),
            }
        }
    }
}
