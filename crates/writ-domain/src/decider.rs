use std::borrow::Cow;
use std::fmt::Debug;

use serde_json::{Map, Value};

use crate::{CommandCatalog, Envelope, EventSet};

/// A domain: its commands, its events, and the rules that connect them.
///
/// Every command names one stream as its own, its *target* ([`Domain::stream`]): the
/// stream its `expectedVersion` is checked against and the one [`Decision::record`]
/// writes to. Writ keeps the state of each stream by folding its events with
/// [`Domain::evolve`], and asks [`Domain::decide`] what a command records. A decision may
/// read and change other streams of the same domain too ([`Decision::state_of`],
/// [`Decision::record_on`]): the single writer runs one command at a time, so what it read
/// is exactly what it changes, and all its events become durable together or not at all.
/// All three must be deterministic and free of I/O.
pub trait Domain: Send + Sync + Sized + 'static {
    /// The domain's name, as `writ serve --domain NAME` spells it.
    const NAME: &'static str;
    /// How the names of the domain's streams begin, for example `["ticket-"]`. A server
    /// refuses to start when two domains claim overlapping prefixes, and a decision may
    /// read and write only streams with one of these prefixes.
    const STREAM_PREFIXES: &'static [&'static str];
    /// The newest form of every command; older versions are upcast into it by the catalog.
    type Command: Debug + Send + 'static;
    /// The events the domain records.
    type Event: EventSet;
    /// The state of one stream, rebuilt from its events. The engine caches one per stream,
    /// so keep it small. A domain with several kinds of streams (orders and products, say)
    /// makes it an enum or a struct that covers them all.
    type State: Default + Clone + Debug + Send + Sync + 'static;

    /// Every accepted command name and version, with how to decode and upcast it.
    fn commands() -> CommandCatalog<Self::Command>;

    /// The command's target stream.
    fn stream(command: &Self::Command) -> Cow<'_, str>;

    /// Applies one recorded event to the state of its stream.
    fn evolve(state: &mut Self::State, event: &Self::Event);

    /// Decides what the command records, reading the state of its target stream (and of
    /// any other stream of the domain it needs), or refuses it.
    fn decide(decision: &mut Decision<'_, Self>, command: &Self::Command) -> Result<(), Refusal>;
}

/// Where a [`Decision`] finds the streams it reads beyond its target: the engine's state
/// cache and log, or a test's given events.
pub trait Streams<D: Domain> {
    /// The state and version of `stream` before the command being decided (version 0 and
    /// the default state for a stream without events), or why it cannot be read.
    fn load(&mut self, stream: &str) -> Result<(&D::State, u64), String>;
}

/// One command being decided: what it may read, and the events it records.
///
/// Reads see the streams as they were before the command: the events a decision records
/// are applied once it has succeeded (a decider's usual reading). Events are recorded in
/// the order of the calls, which is the order of their global positions.
///
/// ```
/// # use std::borrow::Cow;
/// # use serde::{Deserialize, Serialize};
/// # use writ_domain::{CommandCatalog, Decision, Domain, Refusal, Rejection, event_set};
/// # #[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
/// # struct Move { from: String, to: String, amount: u64 }
/// # #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// # struct Debited { amount: u64 }
/// # #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// # struct Credited { amount: u64 }
/// # event_set! { #[derive(Debug, Clone, PartialEq)] enum Event { Debited(Debited), Credited(Credited) } }
/// struct Accounts;
/// impl Domain for Accounts {
///     const NAME: &'static str = "accounts";
///     const STREAM_PREFIXES: &'static [&'static str] = &["account-"];
///     type Command = Move;
///     type Event = Event;
///     type State = u64; // the balance
///     fn commands() -> CommandCatalog<Move> {
///         CommandCatalog::new().command("Move", 1, |m: Move| m)
///     }
///     fn stream(m: &Move) -> Cow<'_, str> {
///         Cow::Owned(format!("account-{}", m.from))
///     }
///     fn evolve(balance: &mut u64, event: &Event) {
///         match event {
///             Event::Debited(d) => *balance -= d.amount,
///             Event::Credited(c) => *balance += c.amount,
///         }
///     }
///     fn decide(decision: &mut Decision<'_, Self>, m: &Move) -> Result<(), Refusal> {
///         if *decision.state() < m.amount {
///             return Err(Rejection::new("insufficient_funds", "not enough money").into());
///         }
///         decision.record(Event::Debited(Debited { amount: m.amount }));
///         decision.record_on(format!("account-{}", m.to), Event::Credited(Credited { amount: m.amount }));
///         Ok(())
///     }
/// }
/// ```
pub struct Decision<'a, D: Domain> {
    envelope: &'a Envelope,
    target: &'a str,
    state: &'a D::State,
    version: u64,
    streams: &'a mut dyn Streams<D>,
    recorded: Vec<(Option<String>, D::Event)>,
}

impl<D: Domain> std::fmt::Debug for Decision<'_, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decision")
            .field("envelope", self.envelope)
            .field("target", &self.target)
            .field("version", &self.version)
            .field("recorded", &self.recorded.len())
            .finish_non_exhaustive()
    }
}

impl<'a, D: Domain> Decision<'a, D> {
    /// A decision of a command whose target stream `target` is at `version` with `state`;
    /// other streams come from `streams`. Engines and the test kit make these.
    pub fn new(
        envelope: &'a Envelope,
        target: &'a str,
        state: &'a D::State,
        version: u64,
        streams: &'a mut dyn Streams<D>,
    ) -> Self {
        Self {
            envelope,
            target,
            state,
            version,
            streams,
            recorded: Vec::new(),
        }
    }

    /// The command's id, the time it was recorded, its sequence and its correlation.
    pub fn envelope(&self) -> &Envelope {
        self.envelope
    }

    /// The target stream's name.
    pub fn stream(&self) -> &str {
        self.target
    }

    /// The target stream's state (borrowed for the whole decision, so it may be held while
    /// reading other streams and recording).
    pub fn state(&self) -> &'a D::State {
        self.state
    }

    /// The target stream's version: how many events it holds.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The state of any stream of the domain before this command (the target's own
    /// state for the target). Fails the command (`failed`) when the stream is not one of
    /// the domain's or cannot be read.
    pub fn state_of(&mut self, stream: &str) -> Result<&D::State, Refusal> {
        if stream == self.target {
            return Ok(self.state);
        }
        check_prefix::<D>(stream)?;
        self.streams
            .load(stream)
            .map(|(state, _)| state)
            .map_err(|message| Failure { message }.into())
    }

    /// The version of any stream of the domain before this command; see
    /// [`Decision::state_of`].
    pub fn version_of(&mut self, stream: &str) -> Result<u64, Refusal> {
        if stream == self.target {
            return Ok(self.version);
        }
        check_prefix::<D>(stream)?;
        self.streams
            .load(stream)
            .map(|(_, version)| version)
            .map_err(|message| Failure { message }.into())
    }

    /// Records an event on the target stream.
    pub fn record(&mut self, event: D::Event) {
        self.recorded.push((None, event));
    }

    /// Records an event on `stream`, which must be one of the domain's (the engine fails
    /// the command otherwise).
    pub fn record_on(&mut self, stream: impl Into<String>, event: D::Event) {
        let stream = stream.into();
        let stream = (stream != self.target).then_some(stream);
        self.recorded.push((stream, event));
    }

    /// The events recorded so far, each with its stream (`None`: the target).
    pub fn recorded(&self) -> &[(Option<String>, D::Event)] {
        &self.recorded
    }

    /// The events recorded, for the engine to encode and apply.
    pub fn into_recorded(self) -> Vec<(Option<String>, D::Event)> {
        self.recorded
    }
}

/// A failure unless `stream` begins with one of the domain's prefixes.
fn check_prefix<D: Domain>(stream: &str) -> Result<(), Refusal> {
    if owns_stream(D::STREAM_PREFIXES, stream) {
        Ok(())
    } else {
        Err(Failure {
            message: format!(
                "stream {stream:?} is not one of domain {}'s (its streams begin with {:?})",
                D::NAME,
                D::STREAM_PREFIXES
            ),
        }
        .into())
    }
}

/// Whether a domain with these stream prefixes owns `stream`: it begins with one of them
/// and has more after it.
pub fn owns_stream<S: AsRef<str>>(prefixes: &[S], stream: &str) -> bool {
    prefixes.iter().any(|p| {
        let p = p.as_ref();
        stream.len() > p.len() && stream.starts_with(p)
    })
}

/// A business rule said no. The code is stable and part of the domain's public contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Stable, machine-readable, `snake_case`: for example `ticket_closed`.
    pub code: Cow<'static, str>,
    /// For people; may change between releases.
    pub message: Cow<'static, str>,
    /// Structured facts beside the code, shown in the command's `error` object next to
    /// `code` and `message` (for `wrong_expected_version`: `expected` and `actual`). Keep
    /// it small; it is stored with the outcome.
    pub details: Map<String, Value>,
}

impl Rejection {
    /// A rejection with a stable code and a message for people.
    pub fn new(code: impl Into<Cow<'static, str>>, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            details: Map::new(),
        }
    }

    /// Adds a structured detail (`code`, `message` and `status` are reserved).
    pub fn with_detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        debug_assert!(
            !matches!(key, "code" | "message" | "status"),
            "reserved key {key}"
        );
        self.details.insert(key.to_owned(), value.into());
        self
    }

    /// The rejection of a command whose `expectedVersion` does not match its target
    /// stream's version: code `wrong_expected_version`, details `expected` and `actual`.
    pub fn wrong_expected_version(expected: u64, actual: u64) -> Self {
        Self::new(
            WRONG_EXPECTED_VERSION,
            format!("the command expected its stream at version {expected}; it is at {actual}"),
        )
        .with_detail("expected", expected)
        .with_detail("actual", actual)
    }
}

/// The code of a command refused because its target stream was not at the version it
/// expected.
pub const WRONG_EXPECTED_VERSION: &str = "wrong_expected_version";

/// The handler could not decide: a bug or an impossible state, not a business rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What went wrong, for the operator.
    pub message: String,
}

/// Why a command recorded no events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A business rule said no: the command's status becomes `rejected`.
    Rejected(Rejection),
    /// The handler errored: the command's status becomes `failed`.
    Failed(Failure),
}

impl From<Rejection> for Refusal {
    fn from(rejection: Rejection) -> Self {
        Refusal::Rejected(rejection)
    }
}

impl From<Failure> for Refusal {
    fn from(failure: Failure) -> Self {
        Refusal::Failed(failure)
    }
}
