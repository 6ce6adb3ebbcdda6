//! Writ's example domain: support tickets.
//!
//! A ticket is opened (`OpenTicket`, versions 1 and 2), assigned (`AssignTicket`),
//! commented on (`AddComment`), closed (`CloseTicket`) and reopened (`ReopenTicket`). Each
//! ticket lives on its own stream, `ticket-{ticketId}`, and records [`TicketEvent`]s:
//! `TicketOpened`, `TicketAssigned`, `CommentAdded`, `TicketClosed`, `TicketReopened`.
//!
//! A payload that does not match its command's schema (missing or unknown field, wrong
//! type, unknown priority, bad `ticketId`) is a decoding error, answered with `422`. A
//! command that decodes but breaks a rule is rejected with one of the stable codes in
//! [`codes`]. [`Tickets`] documents the order in which rules are checked.
//!
//! The [`read`] module is the domain's read model for `writ-query`: a projection of the
//! events with indexes, and the named queries `getTicket`, `searchTickets` and
//! `ticketStats` in query API versions 1 and 2.
//!
//! ```
//! use writ_domain::{Domain, testing::{DEFAULT_ENVELOPE, decide, given}};
//! use writ_tickets::{Priority, TicketState, Tickets};
//!
//! // Decode a version 1 payload as a client sends it; it reads as priority `normal`.
//! let open = Tickets::commands()
//!     .decode(
//!         "OpenTicket",
//!         Some(1),
//!         br#"{"ticketId":"t-1","title":"Printer on fire","reporter":"ada"}"#,
//!     )
//!     .unwrap()
//!     .command;
//! assert_eq!(Tickets::stream(&open), "ticket-t-1");
//!
//! // Decide it against the empty stream, then fold the events into the state.
//! let mut state = TicketState::default();
//! for event in decide::<Tickets>(&state, &open, &DEFAULT_ENVELOPE).unwrap() {
//!     Tickets::evolve(&mut state, &event);
//! }
//! assert!(state.is_open());
//! assert_eq!(state.priority(), Some(Priority::Normal));
//!
//! // Opening it again is refused with a stable code.
//! let opened = decide::<Tickets>(&TicketState::default(), &open, &DEFAULT_ENVELOPE).unwrap();
//! given::<Tickets>(opened).when(open).then_rejected("ticket_exists");
//! ```

mod commands;
mod domain;
mod events;
pub mod read;
mod state;
mod ticket_id;
pub mod workload;

pub use commands::{
    AddComment, AssignTicket, CloseTicket, OpenTicket, OpenTicketV1, Priority, ReopenTicket,
    TicketCommand,
};
pub use domain::{Tickets, stream_name};
pub use events::{
    CommentAdded, TicketAssigned, TicketClosed, TicketEvent, TicketOpened, TicketReopened,
};
pub use state::{TicketState, TicketStatus};
pub use ticket_id::{InvalidTicketId, TicketId};

/// The stable rejection codes of the tickets domain, part of its public contract.
pub mod codes {
    /// `OpenTicket` on a stream that already holds a ticket.
    pub const TICKET_EXISTS: &str = "ticket_exists";
    /// `OpenTicket` whose title is empty or only whitespace.
    pub const TITLE_REQUIRED: &str = "title_required";
    /// Any command but `OpenTicket` on a stream without a ticket.
    pub const TICKET_NOT_FOUND: &str = "ticket_not_found";
    /// `AssignTicket` or `CloseTicket` on a closed ticket.
    pub const TICKET_CLOSED: &str = "ticket_closed";
    /// `ReopenTicket` on an open ticket.
    pub const TICKET_OPEN: &str = "ticket_open";
    /// `AddComment` whose text is empty or only whitespace.
    pub const TEXT_REQUIRED: &str = "text_required";
}
