use std::borrow::Cow;

use writ_domain::{CommandCatalog, Decision, Domain, Envelope, Refusal, Rejection};

use crate::commands::{
    AddComment, AssignTicket, CloseTicket, OpenTicket, OpenTicketV1, ReopenTicket,
};
use crate::events::{CommentAdded, TicketAssigned, TicketClosed, TicketOpened, TicketReopened};
use crate::{TicketCommand, TicketEvent, TicketId, TicketState, TicketStatus, codes};

/// The tickets domain (`writ serve --domain tickets`).
///
/// Each ticket lives on its own stream, `ticket-{ticketId}`. When several rules apply to a
/// command, the first that fails decides the code, in this order: the ticket must exist
/// (`ticket_not_found`), then be in the right state (`ticket_exists`, `ticket_closed`,
/// `ticket_open`), then the fields must make sense (`title_required`, `text_required`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Tickets;

/// The stream a ticket lives on: `ticket-{id}`.
pub fn stream_name(id: &TicketId) -> String {
    format!("ticket-{id}")
}

impl Domain for Tickets {
    const NAME: &'static str = "tickets";
    const STREAM_PREFIXES: &'static [&'static str] = &["ticket-"];
    type Command = TicketCommand;
    type Event = TicketEvent;
    type State = TicketState;

    fn commands() -> CommandCatalog<TicketCommand> {
        CommandCatalog::new()
            .command("OpenTicket", 1, |v1: OpenTicketV1| {
                TicketCommand::OpenTicket(v1.into())
            })
            .command("OpenTicket", 2, TicketCommand::OpenTicket)
            .command("AssignTicket", 1, TicketCommand::AssignTicket)
            .command("AddComment", 1, TicketCommand::AddComment)
            .command("CloseTicket", 1, TicketCommand::CloseTicket)
            .command("ReopenTicket", 1, TicketCommand::ReopenTicket)
    }

    fn stream(command: &TicketCommand) -> Cow<'_, str> {
        Cow::Owned(stream_name(command.ticket_id()))
    }

    fn evolve(state: &mut TicketState, event: &TicketEvent) {
        state.apply(event);
    }

    fn decide(decision: &mut Decision<'_, Self>, command: &TicketCommand) -> Result<(), Refusal> {
        let state = decision.state();
        let event = match command {
            TicketCommand::OpenTicket(c) => open(state, c)?,
            TicketCommand::AssignTicket(c) => assign(state, c)?,
            TicketCommand::AddComment(c) => comment(state, c, decision.envelope())?,
            TicketCommand::CloseTicket(c) => close(state, c)?,
            TicketCommand::ReopenTicket(c) => reopen(state, c)?,
        };
        decision.record(event);
        Ok(())
    }
}

fn open(state: &TicketState, c: &OpenTicket) -> Result<TicketEvent, Rejection> {
    if state.exists() {
        return Err(Rejection::new(
            codes::TICKET_EXISTS,
            format!("ticket {} already exists", c.ticket_id),
        ));
    }
    if is_blank(&c.title) {
        return Err(Rejection::new(
            codes::TITLE_REQUIRED,
            "a ticket needs a title that is not only whitespace",
        ));
    }
    Ok(TicketEvent::TicketOpened(TicketOpened {
        ticket_id: c.ticket_id.clone(),
        title: c.title.clone(),
        description: c.description.clone(),
        reporter: c.reporter.clone(),
        priority: c.priority,
    }))
}

fn assign(state: &TicketState, c: &AssignTicket) -> Result<TicketEvent, Rejection> {
    match state.status() {
        TicketStatus::Absent => Err(not_found(&c.ticket_id)),
        TicketStatus::Closed => Err(closed(&c.ticket_id)),
        TicketStatus::Open => Ok(TicketEvent::TicketAssigned(TicketAssigned {
            ticket_id: c.ticket_id.clone(),
            assignee: c.assignee.clone(),
        })),
    }
}

fn comment(
    state: &TicketState,
    c: &AddComment,
    envelope: &Envelope,
) -> Result<TicketEvent, Rejection> {
    // Open and closed tickets both take comments.
    if !state.exists() {
        return Err(not_found(&c.ticket_id));
    }
    if is_blank(&c.text) {
        return Err(Rejection::new(
            codes::TEXT_REQUIRED,
            "a comment needs text that is not only whitespace",
        ));
    }
    Ok(TicketEvent::CommentAdded(CommentAdded {
        ticket_id: c.ticket_id.clone(),
        comment_id: envelope.derive_id(0),
        author: c.author.clone(),
        text: c.text.clone(),
    }))
}

fn close(state: &TicketState, c: &CloseTicket) -> Result<TicketEvent, Rejection> {
    match state.status() {
        TicketStatus::Absent => Err(not_found(&c.ticket_id)),
        TicketStatus::Closed => Err(closed(&c.ticket_id)),
        TicketStatus::Open => Ok(TicketEvent::TicketClosed(TicketClosed {
            ticket_id: c.ticket_id.clone(),
            resolution: c.resolution.clone(),
        })),
    }
}

fn reopen(state: &TicketState, c: &ReopenTicket) -> Result<TicketEvent, Rejection> {
    match state.status() {
        TicketStatus::Absent => Err(not_found(&c.ticket_id)),
        TicketStatus::Open => Err(Rejection::new(
            codes::TICKET_OPEN,
            format!("ticket {} is open", c.ticket_id),
        )),
        TicketStatus::Closed => Ok(TicketEvent::TicketReopened(TicketReopened {
            ticket_id: c.ticket_id.clone(),
            reason: c.reason.clone(),
        })),
    }
}

fn not_found(id: &TicketId) -> Rejection {
    Rejection::new(codes::TICKET_NOT_FOUND, format!("no ticket {id}"))
}

fn closed(id: &TicketId) -> Rejection {
    Rejection::new(codes::TICKET_CLOSED, format!("ticket {id} is closed"))
}

/// Empty or only Unicode whitespace (`char::is_whitespace`).
fn is_blank(s: &str) -> bool {
    s.trim().is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Priority;

    fn id(s: &str) -> TicketId {
        TicketId::new(s).unwrap()
    }

    #[test]
    fn blank_means_empty_or_unicode_whitespace() {
        for blank in ["", " ", "\t\r\n", "\u{a0}", "\u{3000}\u{2003}"] {
            assert!(is_blank(blank), "{blank:?}");
        }
        for text in ["x", " x ", "\u{200b}"] {
            assert!(!is_blank(text), "{text:?}");
        }
    }

    #[test]
    fn evolve_never_panics_on_events_out_of_order() {
        let mut state = TicketState::default();
        let events: [TicketEvent; 5] = [
            TicketReopened {
                ticket_id: id("t"),
                reason: "r".into(),
            }
            .into(),
            TicketClosed {
                ticket_id: id("t"),
                resolution: "r".into(),
            }
            .into(),
            TicketAssigned {
                ticket_id: id("t"),
                assignee: "a".into(),
            }
            .into(),
            CommentAdded {
                ticket_id: id("t"),
                comment_id: uuid::Uuid::nil(),
                author: "a".into(),
                text: "t".into(),
            }
            .into(),
            TicketOpened {
                ticket_id: id("t"),
                title: "t".into(),
                description: None,
                reporter: "r".into(),
                priority: Priority::Low,
            }
            .into(),
        ];
        for event in &events {
            Tickets::evolve(&mut state, event);
        }
        // A ticket opened after stray events starts afresh.
        assert!(state.is_open());
        assert_eq!(state.assignee(), None);
        assert_eq!(state.comment_count(), 0);
        assert_eq!(state.priority(), Some(Priority::Low));
    }

    #[test]
    fn reassigning_the_same_person_keeps_the_shared_name() {
        let mut state = TicketState::default();
        let assigned: TicketEvent = TicketAssigned {
            ticket_id: id("t"),
            assignee: "bo".into(),
        }
        .into();
        Tickets::evolve(&mut state, &assigned);
        let before = state.clone();
        Tickets::evolve(&mut state, &assigned);
        assert_eq!(state, before);
        assert_eq!(state.assignee(), Some("bo"));
    }
}
