//! A lending library served by Writ: the example that `docs/guide.md` builds step by step,
//! written as a crate of one's own would be, against the platform's public API.
//!
//! - [`Library`] is the domain: books on streams `book-{bookId}`, members on
//!   `member-{memberId}`. Commands: `AddBook`, `RegisterMember`, `LendBook` (version 1,
//!   upcast to version 2 with a loan of [`LOAN_DAYS_DEFAULT`] days), `ReturnBook`, and the
//!   internal `MarkOverdue`. Rejections carry the stable codes of [`codes`].
//! - [`Reminders`] is the process: on `BookLent` a durable timer at the loan's due time
//!   that issues `MarkOverdue`; on `BookReturned` it cancels it.
//! - [`read`] is the `loans` read model: `memberLoans` in query API versions 2 and 1 (a
//!   transformer of 2), and `overdueLoans` in version 2.
//!
//! `src/main.rs` serves them: `cargo run -p writ-example-library -- serve`.
//!
//! ```
//! use writ_domain::testing::given;
//! use writ_example_library::{Library, codes};
//!
//! given::<Library>([])
//!     .when_json("AddBook", None, serde_json::json!({"bookId": "b-1", "title": " "}))
//!     .then_rejected(codes::TITLE_REQUIRED);
//! ```

mod commands;
mod domain;
mod events;
mod id;
pub mod read;
mod reminders;
mod state;

pub use commands::{
    AddBook, LOAN_DAYS_DEFAULT, LendBook, LendBookV1, LibraryCommand, MarkOverdue, RegisterMember,
    ReturnBook,
};
pub use domain::{Library, book_stream, member_stream};
pub use events::{
    BookAdded, BookLent, BookOverdue, BookReturned, LOANS_MAX_BEFORE_V2, LibraryEvent, LoanClosed,
    LoanOpened, MemberRegistered, MemberRegisteredV1,
};
pub use id::Id;
pub use reminders::{ReminderEvent, Reminders};
pub use state::{BookState, LibraryState, Loan, MemberState};

/// The longest loan, in days.
pub const LOAN_DAYS_MAX: u32 = 60;

/// The most books a member registered now may have at once (recorded in their
/// `MemberRegistered`).
pub const LOANS_MAX: u32 = 5;

/// The library's stable rejection codes: part of its public contract.
pub mod codes {
    /// `AddBook` of a book that exists.
    pub const BOOK_EXISTS: &str = "book_exists";
    /// `AddBook` whose title is empty or only whitespace.
    pub const TITLE_REQUIRED: &str = "title_required";
    /// `RegisterMember` of a member who exists.
    pub const MEMBER_EXISTS: &str = "member_exists";
    /// `RegisterMember` whose name is empty or only whitespace.
    pub const NAME_REQUIRED: &str = "name_required";
    /// `LendBook`, `ReturnBook` or `MarkOverdue` of a book never added.
    pub const BOOK_NOT_FOUND: &str = "book_not_found";
    /// `LendBook` to a member never registered.
    pub const MEMBER_NOT_FOUND: &str = "member_not_found";
    /// `LendBook` of a book that is out.
    pub const BOOK_ON_LOAN: &str = "book_on_loan";
    /// `LendBook` to a member who has [`LOANS_MAX`](crate::LOANS_MAX) books.
    pub const LOAN_LIMIT_REACHED: &str = "loan_limit_reached";
    /// `LendBook` for more than [`LOAN_DAYS_MAX`](crate::LOAN_DAYS_MAX) days.
    pub const DAYS_INVALID: &str = "days_invalid";
    /// `ReturnBook` of a book on the shelf; `MarkOverdue` of a loan that has ended.
    pub const BOOK_NOT_ON_LOAN: &str = "book_not_on_loan";
    /// `MarkOverdue` before the loan's due time.
    pub const LOAN_NOT_DUE: &str = "loan_not_due";
}
