//! [`LibraryState`]: what the rules need to know of one stream, folded from its events.

use uuid::Uuid;

use crate::{Id, LibraryEvent};

/// The state of one stream: nothing yet, a book, or a member. Kept small (the engine
/// caches one per stream): titles and names stay in the events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LibraryState {
    /// A stream without events.
    #[default]
    Empty,
    /// A `book-` stream.
    Book(BookState),
    /// A `member-` stream.
    Member(MemberState),
}

/// A book: on the shelf, or on loan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BookState {
    /// The current loan, if the book is out.
    pub loan: Option<Loan>,
}

/// A book's current loan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loan {
    /// The loan's id.
    pub loan_id: Uuid,
    /// Who has the book.
    pub member_id: Id,
    /// When it is due back, ms since the Unix epoch.
    pub due_at_ms: u64,
    /// Whether it was marked overdue.
    pub overdue: bool,
}

/// A member: how many books they have, and may have.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberState {
    /// Books on loan to them now.
    pub loans: u32,
    /// The most books they may have at once.
    pub loans_max: u32,
}

impl LibraryState {
    /// The book, if the stream holds one.
    pub fn book(&self) -> Option<&BookState> {
        match self {
            Self::Book(book) => Some(book),
            _ => None,
        }
    }

    /// The member, if the stream holds one.
    pub fn member(&self) -> Option<&MemberState> {
        match self {
            Self::Member(member) => Some(member),
            _ => None,
        }
    }

    /// Applies one recorded event. Never panics: the log is the truth, even where the
    /// rules would not have recorded an event.
    pub(crate) fn apply(&mut self, event: &LibraryEvent) {
        match (self, event) {
            (state, LibraryEvent::BookAdded(_)) => *state = Self::Book(BookState::default()),
            (state, LibraryEvent::MemberRegistered(e)) => {
                *state = Self::Member(MemberState {
                    loans: 0,
                    loans_max: e.loans_max,
                });
            }
            (Self::Book(book), LibraryEvent::BookLent(e)) => {
                book.loan = Some(Loan {
                    loan_id: e.loan_id,
                    member_id: e.member_id.clone(),
                    due_at_ms: e.due_at_ms,
                    overdue: false,
                });
            }
            (Self::Book(book), LibraryEvent::BookReturned(_)) => book.loan = None,
            (Self::Book(book), LibraryEvent::BookOverdue(e)) => {
                if let Some(loan) = book.loan.as_mut().filter(|l| l.loan_id == e.loan_id) {
                    loan.overdue = true;
                }
            }
            (Self::Member(member), LibraryEvent::LoanOpened(_)) => {
                member.loans = member.loans.saturating_add(1);
            }
            (Self::Member(member), LibraryEvent::LoanClosed(_)) => {
                member.loans = member.loans.saturating_sub(1);
            }
            _ => {}
        }
    }
}
