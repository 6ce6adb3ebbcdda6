//! The events the library records: facts, in the past tense, with what a reader of the log
//! needs and no timestamps (every event's metadata holds `recordedAt`).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Id;

/// A book was put on the shelves (stream `book-{bookId}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookAdded {
    /// The book.
    pub book_id: Id,
    /// Its title.
    pub title: String,
}

/// `MemberRegistered` version 1: a member joined, when every member could borrow
/// [`LOANS_MAX_BEFORE_V2`] books.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberRegisteredV1 {
    /// The member.
    pub member_id: Id,
    /// Their name.
    pub name: String,
}

/// `MemberRegistered` version 2 (the current one): a member joined (stream
/// `member-{memberId}`), with the most books they may borrow at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberRegistered {
    /// The member.
    pub member_id: Id,
    /// Their name.
    pub name: String,
    /// The most books they may have at once.
    pub loans_max: u32,
}

/// The loan limit every member had before `MemberRegistered` version 2 recorded one.
pub const LOANS_MAX_BEFORE_V2: u32 = 5;

/// Version 1 is version 2 with the limit members had then.
impl From<MemberRegisteredV1> for MemberRegistered {
    fn from(v1: MemberRegisteredV1) -> Self {
        Self {
            member_id: v1.member_id,
            name: v1.name,
            loans_max: LOANS_MAX_BEFORE_V2,
        }
    }
}

/// A book was lent (on the book's stream; `LoanOpened` on the member's goes with it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookLent {
    /// The book.
    pub book_id: Id,
    /// Who borrowed it.
    pub member_id: Id,
    /// The loan, derived from the `LendBook` command's id.
    pub loan_id: Uuid,
    /// When it is due back, ms since the Unix epoch.
    pub due_at_ms: u64,
}

/// A member has one more book (on the member's stream, beside `BookLent`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoanOpened {
    /// The member.
    pub member_id: Id,
    /// The book.
    pub book_id: Id,
    /// The loan.
    pub loan_id: Uuid,
}

/// A lent book came back (on the book's stream; `LoanClosed` on the member's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookReturned {
    /// The book.
    pub book_id: Id,
    /// Who had it.
    pub member_id: Id,
    /// The loan that ended.
    pub loan_id: Uuid,
}

/// A member has one book fewer (on the member's stream, beside `BookReturned`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoanClosed {
    /// The member.
    pub member_id: Id,
    /// The book.
    pub book_id: Id,
    /// The loan.
    pub loan_id: Uuid,
}

/// A loan passed its due time with the book still out (on the book's stream).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookOverdue {
    /// The book.
    pub book_id: Id,
    /// Who has it.
    pub member_id: Id,
    /// The loan.
    pub loan_id: Uuid,
}

writ_domain::event_set! {
    /// Every event of the library; the variant's name is the event type.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum LibraryEvent {
        /// See [`BookAdded`].
        BookAdded(BookAdded),
        /// See [`MemberRegistered`]; version 1 ([`MemberRegisteredV1`]) had no limit.
        MemberRegistered(MemberRegistered) version 2 {
            1 => |v1: MemberRegisteredV1| MemberRegistered::from(v1),
        },
        /// See [`BookLent`].
        BookLent(BookLent),
        /// See [`LoanOpened`].
        LoanOpened(LoanOpened),
        /// See [`BookReturned`].
        BookReturned(BookReturned),
        /// See [`LoanClosed`].
        LoanClosed(LoanClosed),
        /// See [`BookOverdue`].
        BookOverdue(BookOverdue),
    }
}
