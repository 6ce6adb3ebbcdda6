use serde_json::{Map, Value};
use uuid::Uuid;

pub use crate::record::Origin;

/// Where a command stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandState {
    /// Logged and synced; not yet executed.
    Accepted,
    /// Executed; its events are durable.
    Succeeded,
    /// A business rule said no; no events.
    Rejected {
        /// The domain's stable code, for example `counter_closed`.
        code: String,
        /// For people.
        message: String,
        /// Structured facts beside the code (for `wrong_expected_version`: `expected` and
        /// `actual`); empty for most rejections.
        details: Map<String, Value>,
    },
    /// The handler errored; no events.
    Failed {
        /// What went wrong.
        message: String,
    },
}

impl CommandState {
    /// Whether this is a final status (succeeded, rejected or failed).
    pub fn is_final(&self) -> bool {
        !matches!(self, CommandState::Accepted)
    }

    /// The contract's name for the status: `accepted`, `succeeded`, `rejected`, `failed`.
    pub fn name(&self) -> &'static str {
        match self {
            CommandState::Accepted => "accepted",
            CommandState::Succeeded => "succeeded",
            CommandState::Rejected { .. } => "rejected",
            CommandState::Failed { .. } => "failed",
        }
    }
}

/// An event a command recorded, without its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRef {
    /// The stream.
    pub stream: String,
    /// Its version in the stream (the stream's first event has version 1).
    pub version: u64,
    /// The event type.
    pub event_type: String,
    /// Its position in the global log (the first event has position 1).
    pub position: u64,
}

/// What Writ knows of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandStatus {
    /// The command's id: the client's, or derived from the event that caused it.
    pub id: Uuid,
    /// The command's name.
    pub command: String,
    /// Where it stands.
    pub state: CommandState,
    /// Its sequence number in the journal.
    pub sequence: u64,
    /// For final statuses, the global log position that includes the command's effects:
    /// its last event's position, or for a command without events the last position
    /// recorded before it was decided (0 when the log was empty). A read model at this
    /// position reflects the command.
    pub position: Option<u64>,
    /// The events it recorded (succeeded only).
    pub events: Vec<EventRef>,
    /// Where the command came from.
    pub origin: Origin,
    /// The id of the command that started its chain (its own for a client's command).
    pub correlation_id: Uuid,
    /// The command whose event caused it, for commands of processes and timers.
    pub causation_id: Option<Uuid>,
}

pub use writ_domain::RecordedEvent;
