//! The `loans` read model: who has which book, until when, and what is overdue.
//!
//! [`LoansProjection`] folds the book events into a [`LoansView`] built of `writ-query`'s
//! persistent collections; [`catalog`] declares its named queries; [`read_model`] puts the
//! two together for `Module::read_model`.
//!
//! # Queries
//!
//! Version 2 (the newest, over the view):
//!
//! - `memberLoans?memberId=`: `{"memberId", "loans": [{"bookId", "title", "memberId",
//!   "lentAt", "dueAt", "overdue"}]}`, the books the member has, earliest due first (a
//!   member nobody lent to has none; it is not a `404`). Times are RFC 3339 in UTC.
//! - `overdueLoans?limit=&cursor=&order=`: a page of the overdue loans, in the order the
//!   books were added, `{"items": [loan, ...], "total", "cursor"}`; pass `cursor` back for
//!   the next page (`null` on the last).
//!
//! Version 1 (the first published; a transformer of version 2):
//!
//! - `memberLoans?memberId=`: a bare array of `{"bookId", "title", "dueAt"}`.
//!
//! `overdue` comes from `BookOverdue` events, not from a clock: a query, like a decision,
//! reads only what the log says, so the same snapshot always answers the same.

use std::sync::Arc;

use serde_json::{Value, json};
use writ_domain::EventSet;
use writ_query::collections::{Index, NumberSet, Row, Selection, Table};
use writ_query::paging::Paging;
use writ_query::{
    ApplyError, Args, Projection, QueryCatalog, QueryError, ReadModelSpec, RecordedEvent, rfc3339,
};

use crate::events::{BookAdded, BookLent, BookOverdue, BookReturned, LibraryEvent};

/// `memberLoans`.
pub const MEMBER_LOANS: &str = "memberLoans";
/// `overdueLoans`.
pub const OVERDUE_LOANS: &str = "overdueLoans";

/// `overdueLoans`' pages: 50 loans unless asked otherwise, at most 1,000.
const PAGING: Paging = Paging::new(50, 1000);

/// The `loans` read model, for `Module::read_model`.
pub fn read_model() -> ReadModelSpec {
    ReadModelSpec::new(LoansProjection, catalog())
}

/// A book as the read model keeps it: a row of [`LoansView`]'s table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Book {
    /// The book's id: the row's key.
    pub id: Arc<str>,
    /// Its title.
    pub title: Arc<str>,
    /// Its loan, while it is out.
    pub loan: Option<Loan>,
}

/// A book's current loan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loan {
    /// Who has the book.
    pub member_id: Arc<str>,
    /// When it was lent (when `BookLent` was recorded), ms since the Unix epoch.
    pub lent_at_ms: u64,
    /// When it is due back.
    pub due_at_ms: u64,
    /// Whether `BookOverdue` was recorded for it.
    pub overdue: bool,
}

impl Row for Book {
    fn key(&self) -> &str {
        &self.id
    }
}

/// The state of the read model: persistent collections, so that the clone the runtime
/// publishes after every batch costs a few reference counts.
#[derive(Debug, Clone, Default)]
pub struct LoansView {
    /// Every book, numbered in the order it was added.
    books: Table<Book>,
    /// Member id → the numbers of the books they have.
    by_member: Index<Arc<str>>,
    /// The numbers of the books whose loan is overdue.
    overdue: NumberSet,
}

/// The projection: how book events change the [`LoansView`].
#[derive(Debug, Clone, Copy, Default)]
pub struct LoansProjection;

impl Projection for LoansProjection {
    type State = LoansView;
    type Decoded = LibraryEvent;

    fn name(&self) -> &'static str {
        "loans"
    }

    fn version(&self) -> u32 {
        1
    }

    fn event_types(&self) -> &[&'static str] {
        &["BookAdded", "BookLent", "BookReturned", "BookOverdue"]
    }

    fn initial_state(&self) -> LoansView {
        LoansView::default()
    }

    /// Reads the body with the domain's own event types: the read model reads exactly
    /// what the rules recorded.
    fn decode(&self, event: &RecordedEvent) -> Result<LibraryEvent, ApplyError> {
        LibraryEvent::decode(&event.event_type, &event.data).map_err(|e| ApplyError::InvalidData {
            detail: e.to_string(),
        })
    }

    fn apply(
        &self,
        view: &mut LoansView,
        event: &RecordedEvent,
        decoded: LibraryEvent,
    ) -> Result<(), ApplyError> {
        match decoded {
            LibraryEvent::BookAdded(e) => view.added(e),
            LibraryEvent::BookLent(e) => view.lent(e, event.recorded_at_ms),
            LibraryEvent::BookReturned(e) => view.returned(e),
            LibraryEvent::BookOverdue(e) => view.overdue(e),
            _ => Ok(()),
        }
    }
}

impl LoansView {
    /// The book with `id`, if it was added.
    pub fn book(&self, id: &str) -> Option<&Book> {
        self.books.get(id)
    }

    // Each change checks everything before it changes anything: a failed apply must
    // leave the view as it was (the runtime skips the event and records why).

    fn added(&mut self, e: BookAdded) -> Result<(), ApplyError> {
        let book = Book {
            id: e.book_id.as_str().into(),
            title: e.title.into(),
            loan: None,
        };
        match self.books.insert(book) {
            Ok(_) => Ok(()),
            Err(duplicate) => Err(inconsistent(duplicate.to_string())),
        }
    }

    fn lent(&mut self, e: BookLent, lent_at_ms: u64) -> Result<(), ApplyError> {
        let number = self.number(e.book_id.as_str())?;
        let book = self.row_mut(number);
        if book.loan.is_some() {
            return Err(inconsistent(format!("{} is lent twice", e.book_id)));
        }
        let member_id: Arc<str> = e.member_id.as_str().into();
        book.loan = Some(Loan {
            member_id: member_id.clone(),
            lent_at_ms,
            due_at_ms: e.due_at_ms,
            overdue: false,
        });
        self.by_member.insert(member_id, number);
        Ok(())
    }

    fn returned(&mut self, e: BookReturned) -> Result<(), ApplyError> {
        let number = self.number(e.book_id.as_str())?;
        let Some(loan) = self.row_mut(number).loan.take() else {
            return Err(inconsistent(format!("{} returned, never lent", e.book_id)));
        };
        self.by_member.remove(&loan.member_id, number);
        self.overdue.remove(number);
        Ok(())
    }

    fn overdue(&mut self, e: BookOverdue) -> Result<(), ApplyError> {
        let number = self.number(e.book_id.as_str())?;
        let Some(loan) = self.row_mut(number).loan.as_mut() else {
            return Err(inconsistent(format!("{} overdue, never lent", e.book_id)));
        };
        loan.overdue = true;
        self.overdue.insert(number);
        Ok(())
    }

    fn number(&self, id: &str) -> Result<u64, ApplyError> {
        self.books
            .number(id)
            .ok_or_else(|| inconsistent(format!("no book {id}")))
    }

    fn row_mut(&mut self, number: u64) -> &mut Book {
        self.books.row_mut(number).expect("a number the table gave")
    }
}

fn inconsistent(detail: String) -> ApplyError {
    ApplyError::Inconsistent { detail }
}

/// The loans queries: version 2 over the view, version 1 a transformer of version 2.
pub fn catalog() -> QueryCatalog<LoansView> {
    let mut catalog = QueryCatalog::new();
    let _ = catalog
        .version(2)
        .query(MEMBER_LOANS, &["memberId"], member_loans)
        .query(OVERDUE_LOANS, &Paging::PARAMS, overdue_loans);
    let _ = catalog.version(1).transform(
        MEMBER_LOANS,
        &["memberId"],
        (2, MEMBER_LOANS),
        member_loans_v1,
    );
    catalog
}

/// v2 `memberLoans`: the member's books, earliest due first.
fn member_loans(view: &LoansView, args: &Args<'_>) -> Result<Value, QueryError> {
    let member_id = args.required_str("memberId")?;
    let numbers = view
        .by_member
        .get(member_id)
        .into_iter()
        .flat_map(NumberSet::iter);
    let mut books: Vec<&Book> = numbers.filter_map(|n| view.books.row(n)).collect();
    books.sort_by_key(|book| book.loan.as_ref().map(|loan| loan.due_at_ms));
    let loans: Vec<Value> = books.into_iter().map(loan_json).collect();
    Ok(json!({"memberId": member_id, "loans": loans}))
}

/// v2 `overdueLoans`: a page of the overdue loans.
fn overdue_loans(view: &LoansView, args: &Args<'_>) -> Result<Value, QueryError> {
    let request = PAGING.request::<()>(args)?;
    let page = view.books.page(&Selection::from(&view.overdue), &request);
    Ok(page.to_json(|book| loan_json(book)))
}

/// v1 `memberLoans`: what version 1 answered, a bare array of `{bookId, title, dueAt}`.
fn member_loans_v1(v2: Value) -> Result<Value, QueryError> {
    let Some(loans) = v2["loans"].as_array() else {
        return Err(QueryError::failed("v2 memberLoans answered no loans"));
    };
    let v1 = loans.iter().map(|loan| {
        let field = |name: &str| loan[name].clone();
        json!({"bookId": field("bookId"), "title": field("title"), "dueAt": field("dueAt")})
    });
    Ok(v1.collect())
}

/// A lent book as the queries show it.
fn loan_json(book: &Book) -> Value {
    let loan = book.loan.as_ref();
    let time = |ms: u64| Value::String(rfc3339::format_millis(ms));
    json!({
        "bookId": &*book.id,
        "title": &*book.title,
        "memberId": loan.map(|l| &*l.member_id),
        "lentAt": loan.map(|l| time(l.lent_at_ms)),
        "dueAt": loan.map(|l| time(l.due_at_ms)),
        "overdue": loan.is_some_and(|l| l.overdue),
    })
}
