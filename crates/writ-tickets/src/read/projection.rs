//! [`TicketsProjection`]: how the five ticket events change the [`TicketsView`].

use std::borrow::Cow;

use serde::Deserialize;
use uuid::Uuid;
use writ_domain::EventSet;
use writ_query::{ApplyError, Projection, RecordedEvent};

use super::view::{Stamp, Status, TicketsView};
use crate::{Priority, TicketEvent};

/// The tickets projection. Its versions are structures of the [`TicketsView`]:
///
/// | version | structure |
/// |---|---|
/// | 1 | tickets, comments and indexes |
/// | 2 (current) | as 1, plus each ticket's status history |
///
/// Query API version 2 needs projection version 2 (its `getTicket` answers the history);
/// version 1 reads either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketsProjection {
    version: u32,
}

impl TicketsProjection {
    /// The projection's name, the first half of its root.
    pub const NAME: &'static str = "tickets";
    /// The newest version.
    pub const CURRENT_VERSION: u32 = 2;

    /// The newest version.
    pub fn current() -> Self {
        Self {
            version: Self::CURRENT_VERSION,
        }
    }

    /// A given version (1 or 2), for example to show an upgrade; `None` for others.
    pub fn with_version(version: u32) -> Option<Self> {
        (1..=Self::CURRENT_VERSION)
            .contains(&version)
            .then_some(Self { version })
    }
}

impl Default for TicketsProjection {
    fn default() -> Self {
        Self::current()
    }
}

// The events' bodies, borrowed from the log record where the JSON has no escapes: one
// parse, and each string copied once, into the `Arc<str>` the view keeps.

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Opened<'a> {
    #[serde(borrow)]
    ticket_id: Cow<'a, str>,
    #[serde(borrow)]
    title: Cow<'a, str>,
    #[serde(default, borrow)]
    description: Option<Cow<'a, str>>,
    #[serde(borrow)]
    reporter: Cow<'a, str>,
    priority: Priority,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Assigned<'a> {
    #[serde(borrow)]
    ticket_id: Cow<'a, str>,
    #[serde(borrow)]
    assignee: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Commented<'a> {
    #[serde(borrow)]
    ticket_id: Cow<'a, str>,
    comment_id: Uuid,
    #[serde(borrow)]
    author: Cow<'a, str>,
    #[serde(borrow)]
    text: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Closed<'a> {
    #[serde(borrow)]
    ticket_id: Cow<'a, str>,
    #[serde(borrow)]
    resolution: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reopened<'a> {
    #[serde(borrow)]
    ticket_id: Cow<'a, str>,
    #[serde(borrow)]
    reason: Cow<'a, str>,
}

fn decode<'a, T: Deserialize<'a>>(event: &'a RecordedEvent) -> Result<T, ApplyError> {
    serde_json::from_slice(&event.data).map_err(|e| ApplyError::InvalidData {
        detail: e.to_string(),
    })
}

impl Projection for TicketsProjection {
    type State = TicketsView;

    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn version(&self) -> u32 {
        self.version
    }

    fn event_types(&self) -> &[&'static str] {
        TicketEvent::EVENT_TYPES
    }

    fn initial_state(&self) -> TicketsView {
        TicketsView::new(self.version >= 2)
    }

    fn apply(&self, view: &mut TicketsView, event: &RecordedEvent) -> Result<(), ApplyError> {
        let at = Stamp {
            position: event.position,
            recorded_at_ms: event.recorded_at_ms,
        };
        match event.event_type.as_str() {
            "TicketOpened" => {
                let e: Opened<'_> = decode(event)?;
                view.open(
                    &e.ticket_id,
                    &e.title,
                    e.description.as_deref(),
                    &e.reporter,
                    e.priority,
                    at,
                )
            }
            "TicketAssigned" => {
                let e: Assigned<'_> = decode(event)?;
                view.assign(&e.ticket_id, &e.assignee, at)
            }
            "CommentAdded" => {
                let e: Commented<'_> = decode(event)?;
                view.comment(&e.ticket_id, e.comment_id, &e.author, &e.text, at)
            }
            "TicketClosed" => {
                let e: Closed<'_> = decode(event)?;
                view.set_status(&e.ticket_id, Status::Closed, &e.resolution, at)
            }
            "TicketReopened" => {
                let e: Reopened<'_> = decode(event)?;
                view.set_status(&e.ticket_id, Status::Open, &e.reason, at)
            }
            other => Err(ApplyError::InvalidData {
                detail: format!("`{other}` is not a tickets event"),
            }),
        }
    }
}
