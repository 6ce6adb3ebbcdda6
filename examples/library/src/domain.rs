//! [`Library`]: the domain, its command catalog and its rules.

use std::borrow::Cow;

use writ_domain::{CommandCatalog, Decision, Domain, Refusal, Rejection};

use crate::commands::{
    AddBook, LendBook, LendBookV1, LibraryCommand, MarkOverdue, RegisterMember, ReturnBook,
};
use crate::events::{
    BookAdded, BookLent, BookOverdue, BookReturned, LibraryEvent, LoanClosed, LoanOpened,
    MemberRegistered,
};
use crate::state::{BookState, LibraryState, MemberState};
use crate::{Id, LOAN_DAYS_MAX, LOANS_MAX, codes};

/// A day in milliseconds.
const DAY_MS: u64 = 86_400_000;

/// The library (`--domain library`): books on `book-{bookId}`, members on
/// `member-{memberId}`.
///
/// When several rules fail, the first in this order gives the code: what the command
/// names must exist (`book_not_found`, `member_not_found`) or not yet (`book_exists`,
/// `member_exists`); then its state must allow it (`book_on_loan`, `loan_limit_reached`,
/// `book_not_on_loan`, `loan_not_due`); then the fields must make sense
/// (`title_required`, `name_required`, `days_invalid`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Library;

/// The stream a book lives on.
pub fn book_stream(id: &Id) -> String {
    format!("book-{id}")
}

/// The stream a member lives on.
pub fn member_stream(id: &Id) -> String {
    format!("member-{id}")
}

impl Domain for Library {
    const NAME: &'static str = "library";
    const STREAM_PREFIXES: &'static [&'static str] = &["book-", "member-"];
    type Command = LibraryCommand;
    type Event = LibraryEvent;
    type State = LibraryState;

    fn commands() -> CommandCatalog<LibraryCommand> {
        CommandCatalog::new()
            .command("AddBook", 1, LibraryCommand::AddBook)
            .command("RegisterMember", 1, LibraryCommand::RegisterMember)
            .command("LendBook", 1, |v1: LendBookV1| {
                LibraryCommand::LendBook(v1.into())
            })
            .command("LendBook", 2, LibraryCommand::LendBook)
            .command("ReturnBook", 1, LibraryCommand::ReturnBook)
            .internal("MarkOverdue", 1, LibraryCommand::MarkOverdue)
    }

    fn stream(command: &LibraryCommand) -> Cow<'_, str> {
        Cow::Owned(match command {
            LibraryCommand::RegisterMember(c) => member_stream(&c.member_id),
            LibraryCommand::AddBook(AddBook { book_id, .. })
            | LibraryCommand::LendBook(LendBook { book_id, .. })
            | LibraryCommand::ReturnBook(ReturnBook { book_id })
            | LibraryCommand::MarkOverdue(MarkOverdue { book_id, .. }) => book_stream(book_id),
        })
    }

    fn evolve(state: &mut LibraryState, event: &LibraryEvent) {
        state.apply(event);
    }

    fn decide(decision: &mut Decision<'_, Self>, command: &LibraryCommand) -> Result<(), Refusal> {
        match command {
            LibraryCommand::AddBook(c) => add_book(decision, c),
            LibraryCommand::RegisterMember(c) => register(decision, c),
            LibraryCommand::LendBook(c) => lend(decision, c),
            LibraryCommand::ReturnBook(c) => return_book(decision, c),
            LibraryCommand::MarkOverdue(c) => mark_overdue(decision, c),
        }
    }
}

fn add_book(decision: &mut Decision<'_, Library>, c: &AddBook) -> Result<(), Refusal> {
    if *decision.state() != LibraryState::Empty {
        let message = format!("book {} exists", c.book_id);
        return Err(reject(codes::BOOK_EXISTS, message));
    }
    if c.title.trim().is_empty() {
        return Err(reject(codes::TITLE_REQUIRED, "a book needs a title"));
    }
    decision.record(LibraryEvent::BookAdded(BookAdded {
        book_id: c.book_id.clone(),
        title: c.title.clone(),
    }));
    Ok(())
}

fn register(decision: &mut Decision<'_, Library>, c: &RegisterMember) -> Result<(), Refusal> {
    if *decision.state() != LibraryState::Empty {
        let message = format!("member {} exists", c.member_id);
        return Err(reject(codes::MEMBER_EXISTS, message));
    }
    if c.name.trim().is_empty() {
        return Err(reject(codes::NAME_REQUIRED, "a member needs a name"));
    }
    decision.record(LibraryEvent::MemberRegistered(MemberRegistered {
        member_id: c.member_id.clone(),
        name: c.name.clone(),
        loans_max: LOANS_MAX,
    }));
    Ok(())
}

fn lend(decision: &mut Decision<'_, Library>, c: &LendBook) -> Result<(), Refusal> {
    let book = existing_book(decision.state(), &c.book_id)?;
    // A second stream: the member's, as it is before this command.
    let member = member_stream(&c.member_id);
    let Some(&MemberState { loans, loans_max }) = decision.state_of(&member)?.member() else {
        let message = format!("no member {}", c.member_id);
        return Err(reject(codes::MEMBER_NOT_FOUND, message));
    };
    if book.loan.is_some() {
        let message = format!("book {} is on loan", c.book_id);
        return Err(reject(codes::BOOK_ON_LOAN, message));
    }
    if loans >= loans_max {
        let message = format!("member {} has {loans_max} books", c.member_id);
        return Err(reject(codes::LOAN_LIMIT_REACHED, message));
    }
    if c.days > LOAN_DAYS_MAX {
        let message = format!("a loan lasts 0 to {LOAN_DAYS_MAX} days");
        return Err(reject(codes::DAYS_INVALID, message));
    }
    // No clock and no random ids: both come from the command's envelope, so that the
    // command decided again (after a crash, or by new code) records the same events.
    let envelope = decision.envelope();
    let loan_id = envelope.derive_id(0);
    let due_at_ms = envelope.recorded_at_ms + u64::from(c.days) * DAY_MS;
    decision.record(LibraryEvent::BookLent(BookLent {
        book_id: c.book_id.clone(),
        member_id: c.member_id.clone(),
        loan_id,
        due_at_ms,
    }));
    let opened = LoanOpened {
        member_id: c.member_id.clone(),
        book_id: c.book_id.clone(),
        loan_id,
    };
    decision.record_on(member, LibraryEvent::LoanOpened(opened));
    Ok(())
}

fn return_book(decision: &mut Decision<'_, Library>, c: &ReturnBook) -> Result<(), Refusal> {
    let book = existing_book(decision.state(), &c.book_id)?;
    let Some(loan) = &book.loan else {
        let message = format!("book {} is on the shelf", c.book_id);
        return Err(reject(codes::BOOK_NOT_ON_LOAN, message));
    };
    decision.record(LibraryEvent::BookReturned(BookReturned {
        book_id: c.book_id.clone(),
        member_id: loan.member_id.clone(),
        loan_id: loan.loan_id,
    }));
    let closed = LoanClosed {
        member_id: loan.member_id.clone(),
        book_id: c.book_id.clone(),
        loan_id: loan.loan_id,
    };
    decision.record_on(
        member_stream(&loan.member_id),
        LibraryEvent::LoanClosed(closed),
    );
    Ok(())
}

fn mark_overdue(decision: &mut Decision<'_, Library>, c: &MarkOverdue) -> Result<(), Refusal> {
    let book = existing_book(decision.state(), &c.book_id)?;
    let Some(loan) = book.loan.as_ref().filter(|l| l.loan_id == c.loan_id) else {
        let message = format!("loan {} of book {} has ended", c.loan_id, c.book_id);
        return Err(reject(codes::BOOK_NOT_ON_LOAN, message));
    };
    // The timer fires at the due time; the rule still checks it, with the envelope's
    // time (the only clock a decision has).
    if decision.envelope().recorded_at_ms < loan.due_at_ms {
        let message = format!("loan {} is not due yet", c.loan_id);
        return Err(reject(codes::LOAN_NOT_DUE, message));
    }
    if !loan.overdue {
        decision.record(LibraryEvent::BookOverdue(BookOverdue {
            book_id: c.book_id.clone(),
            member_id: loan.member_id.clone(),
            loan_id: loan.loan_id,
        }));
    }
    Ok(())
}

fn existing_book<'s>(state: &'s LibraryState, id: &Id) -> Result<&'s BookState, Refusal> {
    state
        .book()
        .ok_or_else(|| reject(codes::BOOK_NOT_FOUND, format!("no book {id}")))
}

fn reject(code: &'static str, message: impl Into<Cow<'static, str>>) -> Refusal {
    Rejection::new(code, message).into()
}
