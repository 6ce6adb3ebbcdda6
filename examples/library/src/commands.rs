//! The commands' payloads, one struct per command version, and [`LibraryCommand`], the
//! newest form of every command, which the rules decide on.
//!
//! Every payload refuses unknown fields, so a misspelt field is a decoding error (`422`)
//! rather than a field silently ignored. The payload types' documentation is also the
//! description of their JSON Schemas (`GET /domains`), so it is written for clients.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Id;

/// How long a loan lasts when `LendBook` version 1 does not say: 14 days.
pub const LOAN_DAYS_DEFAULT: u32 = 14;

/// `AddBook` version 1: puts a book on the shelves, on stream `book-{bookId}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddBook {
    /// The new book's id.
    pub book_id: Id,
    /// Its title; not empty.
    pub title: String,
}

/// `RegisterMember` version 1: a reader joins the library, on stream `member-{memberId}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterMember {
    /// The new member's id.
    pub member_id: Id,
    /// Their name; not empty.
    pub name: String,
}

/// `LendBook` version 1: lends a book to a member for 14 days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LendBookV1 {
    /// The book.
    pub book_id: Id,
    /// Who borrows it.
    pub member_id: Id,
}

/// `LendBook` version 2 (the newest): lends a book to a member for `days` days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LendBook {
    /// The book.
    pub book_id: Id,
    /// Who borrows it.
    pub member_id: Id,
    /// Days until the book is due, 0 to 60. 0 makes it due at once: a loan for the reading
    /// room, marked overdue until the book comes back.
    pub days: u32,
}

/// Version 1 is version 2 with the default loan period.
impl From<LendBookV1> for LendBook {
    fn from(v1: LendBookV1) -> Self {
        Self {
            book_id: v1.book_id,
            member_id: v1.member_id,
            days: LOAN_DAYS_DEFAULT,
        }
    }
}

/// `ReturnBook` version 1: a lent book comes back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReturnBook {
    /// The book.
    pub book_id: Id,
}

/// `MarkOverdue` version 1 (internal: the reminders process's timer issues it when a loan
/// falls due; clients cannot send it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MarkOverdue {
    /// The book.
    pub book_id: Id,
    /// The loan that fell due.
    pub loan_id: Uuid,
}

/// The newest form of every library command: what the catalog upcasts payloads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LibraryCommand {
    /// `AddBook` version 1.
    AddBook(AddBook),
    /// `RegisterMember` version 1.
    RegisterMember(RegisterMember),
    /// `LendBook` version 2 (version 1 is upcast).
    LendBook(LendBook),
    /// `ReturnBook` version 1.
    ReturnBook(ReturnBook),
    /// `MarkOverdue` version 1, internal.
    MarkOverdue(MarkOverdue),
}
