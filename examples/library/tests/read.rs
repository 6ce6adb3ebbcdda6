//! The `loans` read model fed events directly (`Replay`), and its queries in both API
//! versions: version 2 over the view, version 1 through its transformer.

use serde_json::{Map, Value, json};
use uuid::Uuid;
use writ_domain::EventSet;
use writ_example_library::read::{LoansProjection, LoansView, catalog};
use writ_example_library::{
    BookAdded, BookLent, BookOverdue, BookReturned, Id, LibraryEvent, LoanOpened,
};
use writ_query::{RecordedEvent, Replay, Snapshot};

const DAY_MS: u64 = 86_400_000;
/// 2026-12-24T18:00:00.000Z
const T0: u64 = 1_798_135_200_000;

fn id(s: &str) -> Id {
    Id::new(s).unwrap()
}

fn loan(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// The library's events as the log would hold them, from position 1, each recorded a
/// minute after the one before.
fn recorded(events: &[LibraryEvent]) -> Vec<RecordedEvent> {
    events
        .iter()
        .zip(1..)
        .map(|(event, position)| {
            let mut data = Vec::new();
            event.encode_data(&mut data).unwrap();
            RecordedEvent {
                position,
                stream: "book-any".into(),
                version: position,
                event_type: event.event_type().into(),
                data,
                command_id: Uuid::nil(),
                correlation_id: Uuid::nil(),
                recorded_at_ms: T0 + (position - 1) * 60_000,
                schema_version: 1,
                recorded_schema_version: 1,
            }
        })
        .collect()
}

fn added(book: &str, title: &str) -> LibraryEvent {
    LibraryEvent::BookAdded(BookAdded {
        book_id: id(book),
        title: title.into(),
    })
}

fn lent(book: &str, member: &str, n: u128, due_at_ms: u64) -> LibraryEvent {
    LibraryEvent::BookLent(BookLent {
        book_id: id(book),
        member_id: id(member),
        loan_id: loan(n),
        due_at_ms,
    })
}

fn overdue(book: &str, member: &str, n: u128) -> LibraryEvent {
    LibraryEvent::BookOverdue(BookOverdue {
        book_id: id(book),
        member_id: id(member),
        loan_id: loan(n),
    })
}

fn returned(book: &str, member: &str, n: u128) -> LibraryEvent {
    LibraryEvent::BookReturned(BookReturned {
        book_id: id(book),
        member_id: id(member),
        loan_id: loan(n),
    })
}

fn snapshot(events: &[LibraryEvent]) -> Snapshot<LoansView> {
    let mut replay = Replay::new(LoansProjection);
    replay.apply(&recorded(events));
    assert_eq!(replay.stats().errors, 0, "{:?}", replay.stats().last_error);
    replay.snapshot()
}

fn args(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

/// `memberLoans` of query API `version` for `member`.
fn member_loans(version: u32, snapshot: &Snapshot<LoansView>, member: &str) -> Value {
    let args = args(json!({ "memberId": member }));
    catalog()
        .call(version, "memberLoans", snapshot, args)
        .unwrap()
}

/// Ann has two books, one overdue; Bob has one; a fourth book is on the shelf.
fn library() -> Vec<LibraryEvent> {
    vec![
        added("b-1", "Middlemarch"),
        added("b-2", "Persuasion"),
        added("b-3", "Bleak House"),
        added("b-4", "Emma"),
        lent("b-2", "ann", 2, T0 + 14 * DAY_MS),
        lent("b-1", "ann", 1, T0),
        overdue("b-1", "ann", 1),
        lent("b-3", "bob", 3, T0 + 7 * DAY_MS),
    ]
}

#[test]
fn member_loans_version_2_lists_the_members_books_earliest_due_first() {
    let snapshot = snapshot(&library());
    let answer = member_loans(2, &snapshot, "ann");
    assert_eq!(
        answer,
        json!({"memberId": "ann", "loans": [
            {"bookId": "b-1", "title": "Middlemarch", "memberId": "ann",
             "lentAt": "2026-12-24T18:05:00.000Z", "dueAt": "2026-12-24T18:00:00.000Z",
             "overdue": true},
            {"bookId": "b-2", "title": "Persuasion", "memberId": "ann",
             "lentAt": "2026-12-24T18:04:00.000Z", "dueAt": "2027-01-07T18:00:00.000Z",
             "overdue": false},
        ]})
    );
    let nobody = member_loans(2, &snapshot, "eve");
    assert_eq!(nobody, json!({"memberId": "eve", "loans": []}));
}

#[test]
fn member_loans_version_1_answers_its_older_smaller_shape_through_the_transformer() {
    let snapshot = snapshot(&library());
    let answer = member_loans(1, &snapshot, "ann");
    assert_eq!(
        answer,
        json!([
            {"bookId": "b-1", "title": "Middlemarch", "dueAt": "2026-12-24T18:00:00.000Z"},
            {"bookId": "b-2", "title": "Persuasion", "dueAt": "2027-01-07T18:00:00.000Z"},
        ])
    );
    // Version 1 never had overdueLoans.
    let missing = catalog()
        .call(1, "overdueLoans", &snapshot, Map::new())
        .unwrap_err();
    assert_eq!(missing.code(), "unknown_query");
}

#[test]
fn a_returned_book_leaves_the_members_loans_and_the_overdue_ones() {
    let mut events = library();
    events.push(returned("b-1", "ann", 1));
    let snapshot = snapshot(&events);
    let ann = member_loans(1, &snapshot, "ann");
    assert_eq!(ann.as_array().unwrap().len(), 1);
    assert_eq!(ann[0]["bookId"], "b-2");
    let overdue = catalog()
        .call(2, "overdueLoans", &snapshot, Map::new())
        .unwrap();
    assert_eq!(overdue, json!({"items": [], "total": 0, "cursor": null}));
}

#[test]
fn overdue_loans_page_with_a_cursor_that_survives_new_snapshots() {
    let mut events = library();
    events.push(overdue("b-3", "bob", 3));
    let first_snapshot = snapshot(&events);
    let first = catalog()
        .call(
            2,
            "overdueLoans",
            &first_snapshot,
            args(json!({"limit": "1"})),
        )
        .unwrap();
    assert_eq!(first["total"], 2);
    assert_eq!(first["items"][0]["bookId"], "b-1");
    let cursor = first["cursor"].as_str().expect("more follow").to_owned();

    // b-1 comes back meanwhile; the cursor still leads to b-3.
    events.push(returned("b-1", "ann", 1));
    let later = snapshot(&events);
    let next = catalog()
        .call(
            2,
            "overdueLoans",
            &later,
            args(json!({"limit": "1", "cursor": cursor})),
        )
        .unwrap();
    assert_eq!(next["items"][0]["bookId"], "b-3");
    assert_eq!(next["items"][0]["memberId"], "bob");
    assert_eq!(next["cursor"], json!(null));
}

#[test]
fn events_that_do_not_fit_the_view_are_skipped_and_counted() {
    let mut replay = Replay::new(LoansProjection);
    let stray = [
        lent("b-9", "ann", 9, T0),
        returned("b-1", "ann", 1),
        added("b-1", "Middlemarch"),
        overdue("b-1", "ann", 1),
        added("b-1", "Middlemarch"),
        LibraryEvent::LoanOpened(LoanOpened {
            member_id: id("ann"),
            book_id: id("b-1"),
            loan_id: loan(1),
        }),
    ];
    replay.apply(&recorded(&stray));
    // Four refused (lent and returned before added, overdue never lent, added twice);
    // LoanOpened is not among the projection's types.
    assert_eq!(replay.stats().errors, 4);
    assert_eq!(replay.stats().events_ignored, 1);
    assert!(replay.state().book("b-1").unwrap().loan.is_none());
}
