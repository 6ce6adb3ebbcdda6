//! The commands' payloads, one struct per command version, and [`TicketCommand`], the
//! newest form of every command that the rules decide on.
//!
//! Every payload refuses unknown fields, so a typo in a field name is a decoding error
//! (`422`) rather than a silently ignored field.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::TicketId;

/// How urgent a ticket is. Serialized in lowercase: `low`, `normal`, `high`, `urgent`.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Can wait.
    Low,
    /// The default, and what `OpenTicket` version 1 reads as.
    #[default]
    Normal,
    /// Soon.
    High,
    /// Now.
    Urgent,
}

/// `OpenTicket` version 1: opens a ticket, with no priority.
///
/// Upcast to [`OpenTicket`] with priority [`Priority::Normal`]. Sending `priority` in
/// version 1 is a decoding error (unknown field).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenTicketV1 {
    /// The new ticket's id; the command addresses stream `ticket-{ticketId}`.
    pub ticket_id: TicketId,
    /// A short summary; rejected with `title_required` when empty or only whitespace.
    pub title: String,
    /// Optional details; absent and `null` both mean none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Who reported the problem.
    pub reporter: String,
}

/// `OpenTicket` version 2 (the newest): opens a ticket with a priority.
///
/// `priority` is optional: when absent it is [`Priority::Normal`], the same as version 1.
/// We chose leniency so a version 2 client that does not care about priorities may leave
/// it out; an explicit `null` or a value other than `low`, `normal`, `high` or `urgent` is
/// still a decoding error. Since the canonical payload always spells the priority out, a
/// payload without it and one with `"priority":"normal"` are the same command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenTicket {
    /// The new ticket's id; the command addresses stream `ticket-{ticketId}`.
    pub ticket_id: TicketId,
    /// A short summary; rejected with `title_required` when empty or only whitespace.
    pub title: String,
    /// Optional details; absent and `null` both mean none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Who reported the problem.
    pub reporter: String,
    /// How urgent the ticket is; [`Priority::Normal`] when absent.
    #[serde(default)]
    pub priority: Priority,
}

impl From<OpenTicketV1> for OpenTicket {
    fn from(v1: OpenTicketV1) -> Self {
        Self {
            ticket_id: v1.ticket_id,
            title: v1.title,
            description: v1.description,
            reporter: v1.reporter,
            priority: Priority::Normal,
        }
    }
}

/// `AssignTicket` version 1: gives an open ticket to someone.
///
/// Assigning an open ticket always succeeds, even to the person who already holds it: the
/// assignment is recorded again. Rejected with `ticket_closed` on a closed ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssignTicket {
    /// The ticket to assign.
    pub ticket_id: TicketId,
    /// Who takes the ticket.
    pub assignee: String,
}

/// `AddComment` version 1: comments on a ticket, open or closed.
///
/// Rejected with `text_required` when the text is empty or only whitespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddComment {
    /// The ticket to comment on.
    pub ticket_id: TicketId,
    /// Who wrote the comment.
    pub author: String,
    /// The comment itself.
    pub text: String,
}

/// `CloseTicket` version 1: closes an open ticket.
///
/// Rejected with `ticket_closed` when the ticket is already closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CloseTicket {
    /// The ticket to close.
    pub ticket_id: TicketId,
    /// How the ticket was resolved.
    pub resolution: String,
}

/// `ReopenTicket` version 1: reopens a closed ticket.
///
/// Rejected with `ticket_open` when the ticket is open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReopenTicket {
    /// The ticket to reopen.
    pub ticket_id: TicketId,
    /// Why it needs more work.
    pub reason: String,
}

/// The newest form of every tickets command: what the catalog upcasts client payloads to
/// and what [`Tickets::decide`](writ_domain::Domain::decide) decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketCommand {
    /// `OpenTicket` (version 2; version 1 is upcast).
    OpenTicket(OpenTicket),
    /// `AssignTicket` version 1.
    AssignTicket(AssignTicket),
    /// `AddComment` version 1.
    AddComment(AddComment),
    /// `CloseTicket` version 1.
    CloseTicket(CloseTicket),
    /// `ReopenTicket` version 1.
    ReopenTicket(ReopenTicket),
}

impl TicketCommand {
    /// The ticket the command addresses.
    pub fn ticket_id(&self) -> &TicketId {
        match self {
            Self::OpenTicket(c) => &c.ticket_id,
            Self::AssignTicket(c) => &c.ticket_id,
            Self::AddComment(c) => &c.ticket_id,
            Self::CloseTicket(c) => &c.ticket_id,
            Self::ReopenTicket(c) => &c.ticket_id,
        }
    }

    /// The command's name in the catalog, for example `OpenTicket`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::OpenTicket(_) => "OpenTicket",
            Self::AssignTicket(_) => "AssignTicket",
            Self::AddComment(_) => "AddComment",
            Self::CloseTicket(_) => "CloseTicket",
            Self::ReopenTicket(_) => "ReopenTicket",
        }
    }
}

macro_rules! impl_from_command {
    ($($variant:ident),+) => {
        $(
            impl From<$variant> for TicketCommand {
                fn from(command: $variant) -> Self {
                    Self::$variant(command)
                }
            }
        )+
    };
}

impl_from_command!(
    OpenTicket,
    AssignTicket,
    AddComment,
    CloseTicket,
    ReopenTicket
);

impl From<OpenTicketV1> for TicketCommand {
    fn from(v1: OpenTicketV1) -> Self {
        Self::OpenTicket(v1.into())
    }
}
