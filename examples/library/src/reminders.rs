//! [`Reminders`]: the process that marks loans overdue.

use writ_domain::{Process, Reaction};

use crate::commands::MarkOverdue;
use crate::events::{BookLent, BookReturned};

writ_domain::event_set! {
    /// The events [`Reminders`] reacts to; the engine gives it only these types.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum ReminderEvent {
        /// See [`BookLent`].
        BookLent(BookLent),
        /// See [`BookReturned`].
        BookReturned(BookReturned),
    }
}

/// Marks a loan overdue when it falls due with the book still out.
///
/// | event | reaction |
/// |---|---|
/// | `BookLent` | a durable timer, keyed by the loan, that issues `MarkOverdue {bookId, loanId}` at `dueAtMs` |
/// | `BookReturned` | cancels the loan's timer |
///
/// The process keeps no state: the due time travels in `BookLent`. The command the timer
/// issues has an id derived from the event and the key, so it runs once, whatever
/// crashes and restarts happen meanwhile; a timer whose time passed while the server was
/// down fires at the next start.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reminders;

impl Process for Reminders {
    const NAME: &'static str = "reminders";
    type Event = ReminderEvent;

    fn react(event: &ReminderEvent, reaction: &mut Reaction<'_>) {
        match event {
            ReminderEvent::BookLent(lent) => {
                let command = MarkOverdue {
                    book_id: lent.book_id.clone(),
                    loan_id: lent.loan_id,
                };
                let key = lent.loan_id.to_string();
                reaction.schedule(&key, lent.due_at_ms, "MarkOverdue", &command);
            }
            ReminderEvent::BookReturned(returned) => {
                reaction.cancel(&returned.loan_id.to_string());
            }
        }
    }
}
