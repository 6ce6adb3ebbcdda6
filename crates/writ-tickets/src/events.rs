//! The events tickets record. Each carries its ticket's id and the facts of the command that
//! caused it; none carries a timestamp (the event store records `recordedAt` in the event's
//! metadata).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Priority, TicketId};

/// A ticket was opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketOpened {
    /// The ticket.
    pub ticket_id: TicketId,
    /// Its title, as the client sent it.
    pub title: String,
    /// Its description; omitted from the JSON when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Who reported it.
    pub reporter: String,
    /// How urgent it is.
    pub priority: Priority,
}

/// A ticket was given to someone (possibly again, to the same person).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketAssigned {
    /// The ticket.
    pub ticket_id: TicketId,
    /// Who holds it now.
    pub assignee: String,
}

/// Someone commented on a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommentAdded {
    /// The ticket.
    pub ticket_id: TicketId,
    /// The comment's id, derived from the command's id (`Envelope::derive_id(0)`), so a
    /// command re-run after a crash records the same id.
    pub comment_id: Uuid,
    /// Who wrote it.
    pub author: String,
    /// What they wrote.
    pub text: String,
}

/// A ticket was closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketClosed {
    /// The ticket.
    pub ticket_id: TicketId,
    /// How it was resolved.
    pub resolution: String,
}

/// A closed ticket was reopened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketReopened {
    /// The ticket.
    pub ticket_id: TicketId,
    /// Why it needs more work.
    pub reason: String,
}

writ_domain::event_set! {
    /// Every event the tickets domain records; the variant's name is the event type.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum TicketEvent {
        /// See [`TicketOpened`].
        TicketOpened(TicketOpened),
        /// See [`TicketAssigned`].
        TicketAssigned(TicketAssigned),
        /// See [`CommentAdded`].
        CommentAdded(CommentAdded),
        /// See [`TicketClosed`].
        TicketClosed(TicketClosed),
        /// See [`TicketReopened`].
        TicketReopened(TicketReopened),
    }
}

macro_rules! impl_from_event {
    ($($variant:ident),+) => {
        $(
            impl From<$variant> for TicketEvent {
                fn from(event: $variant) -> Self {
                    Self::$variant(event)
                }
            }
        )+
    };
}

impl_from_event!(
    TicketOpened,
    TicketAssigned,
    CommentAdded,
    TicketClosed,
    TicketReopened
);
