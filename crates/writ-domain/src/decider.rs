use std::borrow::Cow;
use std::fmt::Debug;

use crate::{CommandCatalog, Envelope, EventSet};

/// A domain: its commands, its events, and the rules that connect them.
///
/// Every command addresses exactly one stream ([`Domain::stream`]). Writ keeps the state of
/// each stream by folding its events with [`Domain::evolve`], and asks [`Domain::decide`]
/// for the events a command records on that stream. All three must be deterministic and
/// free of I/O.
pub trait Domain: Send + Sync + 'static {
    /// The domain's name, as `writ serve --domain NAME` spells it.
    const NAME: &'static str;
    /// The newest form of every command; older versions are upcast into it by the catalog.
    type Command: Debug + Send + 'static;
    /// The events the domain records.
    type Event: EventSet;
    /// The state of one stream, rebuilt from its events. The engine caches one per stream,
    /// so keep it small and cheap to clone.
    type State: Default + Clone + Debug + Send + Sync + 'static;

    /// Every accepted command name and version, with how to decode and upcast it.
    fn commands() -> CommandCatalog<Self::Command>;

    /// The stream this command addresses.
    fn stream(command: &Self::Command) -> Cow<'_, str>;

    /// Applies one recorded event to the state of its stream.
    fn evolve(state: &mut Self::State, event: &Self::Event);

    /// Decides what the command records, given the current state of its stream.
    fn decide(
        state: &Self::State,
        command: &Self::Command,
        envelope: &Envelope,
    ) -> Result<Vec<Self::Event>, Refusal>;
}

/// A business rule said no. The code is stable and part of the domain's public contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Stable, machine-readable, `snake_case`: for example `ticket_closed`.
    pub code: Cow<'static, str>,
    /// For people; may change between releases.
    pub message: Cow<'static, str>,
}

impl Rejection {
    /// A rejection with a stable code and a message for people.
    pub fn new(code: impl Into<Cow<'static, str>>, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}

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
