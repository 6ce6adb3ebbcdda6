use std::sync::Arc;

use crate::{Priority, TicketEvent};

/// Where a ticket is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum TicketStatus {
    /// No ticket on this stream yet.
    #[default]
    Absent,
    /// Opened or reopened, and not closed since.
    Open,
    /// Closed, and not reopened since.
    Closed,
}

/// What the rules need to know about one ticket, folded from its events.
///
/// Deliberately small (the engine caches one per stream and clones it): the status, plus
/// the priority, the current assignee and the number of comments. Titles, descriptions and
/// comment texts stay in the events. Cloning copies a few words and bumps one reference
/// count at most.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketState {
    status: TicketStatus,
    priority: Priority,
    assignee: Option<Arc<str>>,
    comments: u64,
}

impl TicketState {
    /// Where the ticket is in its life.
    pub fn status(&self) -> TicketStatus {
        self.status
    }

    /// Whether the stream holds a ticket.
    pub fn exists(&self) -> bool {
        self.status != TicketStatus::Absent
    }

    /// Whether the ticket is open.
    pub fn is_open(&self) -> bool {
        self.status == TicketStatus::Open
    }

    /// Whether the ticket is closed.
    pub fn is_closed(&self) -> bool {
        self.status == TicketStatus::Closed
    }

    /// The ticket's priority, if there is a ticket.
    pub fn priority(&self) -> Option<Priority> {
        self.exists().then_some(self.priority)
    }

    /// Who the ticket was last assigned to, if anyone. Closing and reopening keep it.
    pub fn assignee(&self) -> Option<&str> {
        self.assignee.as_deref()
    }

    /// How many comments the ticket has.
    pub fn comment_count(&self) -> u64 {
        self.comments
    }

    /// Applies one recorded event. Never panics, even on an event the rules would not have
    /// recorded in this state: the log is the truth.
    pub(crate) fn apply(&mut self, event: &TicketEvent) {
        match event {
            TicketEvent::TicketOpened(e) => {
                *self = Self {
                    status: TicketStatus::Open,
                    priority: e.priority,
                    assignee: None,
                    comments: 0,
                };
            }
            TicketEvent::TicketAssigned(e) => {
                if self.assignee.as_deref() != Some(e.assignee.as_str()) {
                    self.assignee = Some(Arc::from(e.assignee.as_str()));
                }
            }
            TicketEvent::CommentAdded(_) => self.comments = self.comments.saturating_add(1),
            TicketEvent::TicketClosed(_) => self.status = TicketStatus::Closed,
            TicketEvent::TicketReopened(_) => self.status = TicketStatus::Open,
        }
    }
}
