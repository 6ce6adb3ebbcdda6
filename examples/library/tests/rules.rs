//! The library's rules as given/when/then: given these events, when this command, then
//! these events or this rejection code. Every rule and every code has a scenario.

use serde_json::json;
use uuid::Uuid;
use writ_domain::testing::{DEFAULT_ENVELOPE, decode_error, given, given_streams};
use writ_domain::{CommandError, Envelope, EventSet};
use writ_example_library::codes::*;
use writ_example_library::{
    AddBook, BookAdded, BookLent, BookOverdue, BookReturned, Id, LOAN_DAYS_MAX, LOANS_MAX,
    LOANS_MAX_BEFORE_V2, LendBook, Library, LibraryCommand, LibraryEvent, LoanClosed, LoanOpened,
    MarkOverdue, MemberRegistered, RegisterMember, ReturnBook,
};

const DAY_MS: u64 = 86_400_000;
/// When the scenarios' commands are recorded, unless they say otherwise.
const NOW: u64 = DEFAULT_ENVELOPE.recorded_at_ms;
/// The loan of the given events (any id will do).
const LOAN: Uuid = Uuid::from_u128(7);

fn id(s: &str) -> Id {
    Id::new(s).unwrap()
}

fn added(book: &str) -> LibraryEvent {
    LibraryEvent::BookAdded(BookAdded {
        book_id: id(book),
        title: "Middlemarch".into(),
    })
}

fn registered(member: &str) -> LibraryEvent {
    LibraryEvent::MemberRegistered(registered_as(member))
}

fn registered_as(member: &str) -> MemberRegistered {
    MemberRegistered {
        member_id: id(member),
        name: "Ann".into(),
        loans_max: LOANS_MAX,
    }
}

fn lent(book: &str, member: &str, loan_id: Uuid, due_at_ms: u64) -> LibraryEvent {
    LibraryEvent::BookLent(BookLent {
        book_id: id(book),
        member_id: id(member),
        loan_id,
        due_at_ms,
    })
}

fn opened(member: &str, book: &str, loan_id: Uuid) -> LibraryEvent {
    LibraryEvent::LoanOpened(LoanOpened {
        member_id: id(member),
        book_id: id(book),
        loan_id,
    })
}

fn overdue(book: &str, member: &str, loan_id: Uuid) -> LibraryEvent {
    LibraryEvent::BookOverdue(BookOverdue {
        book_id: id(book),
        member_id: id(member),
        loan_id,
    })
}

fn returned(book: &str, member: &str, loan_id: Uuid) -> LibraryEvent {
    LibraryEvent::BookReturned(BookReturned {
        book_id: id(book),
        member_id: id(member),
        loan_id,
    })
}

fn add_book(book: &str, title: &str) -> LibraryCommand {
    LibraryCommand::AddBook(AddBook {
        book_id: id(book),
        title: title.into(),
    })
}

fn register(member: &str, name: &str) -> LibraryCommand {
    LibraryCommand::RegisterMember(RegisterMember {
        member_id: id(member),
        name: name.into(),
    })
}

fn lend(book: &str, member: &str, days: u32) -> LibraryCommand {
    LibraryCommand::LendBook(LendBook {
        book_id: id(book),
        member_id: id(member),
        days,
    })
}

fn return_book(book: &str) -> LibraryCommand {
    LibraryCommand::ReturnBook(ReturnBook { book_id: id(book) })
}

fn mark_overdue(book: &str, loan_id: Uuid) -> LibraryCommand {
    LibraryCommand::MarkOverdue(MarkOverdue {
        book_id: id(book),
        loan_id,
    })
}

/// The default envelope, recorded at `ms`.
fn at(ms: u64) -> Envelope {
    Envelope {
        recorded_at_ms: ms,
        ..DEFAULT_ENVELOPE
    }
}

#[test]
fn a_book_is_added_once_and_needs_a_title() {
    given::<Library>([])
        .when(add_book("b-1", "Middlemarch"))
        .then([added("b-1")]);
    given::<Library>([added("b-1")])
        .when(add_book("b-1", "Middlemarch"))
        .then_rejected(BOOK_EXISTS);
    given::<Library>([])
        .when(add_book("b-1", " \t"))
        .then_rejected(TITLE_REQUIRED);
}

#[test]
fn a_member_registers_once_and_needs_a_name() {
    given::<Library>([])
        .when(register("m-1", "Ann"))
        .then([registered("m-1")]);
    given::<Library>([registered("m-1")])
        .when(register("m-1", "Ann"))
        .then_rejected(MEMBER_EXISTS);
    given::<Library>([])
        .when(register("m-1", ""))
        .then_rejected(NAME_REQUIRED);
}

#[test]
fn lending_records_on_the_book_and_the_member_with_a_due_time_from_the_envelope() {
    let loan_id = DEFAULT_ENVELOPE.derive_id(0);
    given_streams::<Library>([
        ("book-b-1", vec![added("b-1")]),
        ("member-m-1", vec![registered("m-1")]),
    ])
    .when(lend("b-1", "m-1", 7))
    .then_on([
        ("book-b-1", lent("b-1", "m-1", loan_id, NOW + 7 * DAY_MS)),
        ("member-m-1", opened("m-1", "b-1", loan_id)),
    ]);
}

#[test]
fn a_loan_of_zero_days_is_due_at_once() {
    let loan_id = DEFAULT_ENVELOPE.derive_id(0);
    given_streams::<Library>([
        ("book-b-1", vec![added("b-1")]),
        ("member-m-1", vec![registered("m-1")]),
    ])
    .when(lend("b-1", "m-1", 0))
    .then_on([
        ("book-b-1", lent("b-1", "m-1", loan_id, NOW)),
        ("member-m-1", opened("m-1", "b-1", loan_id)),
    ]);
}

#[test]
fn lend_book_version_1_is_a_loan_of_14_days() {
    let loan_id = DEFAULT_ENVELOPE.derive_id(0);
    given_streams::<Library>([
        ("book-b-1", vec![added("b-1")]),
        ("member-m-1", vec![registered("m-1")]),
    ])
    .when_json(
        "LendBook",
        Some(1),
        json!({"bookId": "b-1", "memberId": "m-1"}),
    )
    .then_on([
        ("book-b-1", lent("b-1", "m-1", loan_id, NOW + 14 * DAY_MS)),
        ("member-m-1", opened("m-1", "b-1", loan_id)),
    ]);
}

#[test]
fn lending_is_refused_with_a_code_for_each_rule() {
    let to_bob = lent("b-1", "bob", LOAN, NOW);
    let book = || ("book-b-1", vec![added("b-1")]);
    let out = || ("book-b-1", vec![added("b-1"), to_bob.clone()]);
    let ann = || ("member-ann", vec![registered("ann")]);
    let full = || {
        let mut events = vec![registered("ann")];
        events.extend((0..LOANS_MAX).map(|n| opened("ann", "b-0", Uuid::from_u128(n.into()))));
        ("member-ann", events)
    };
    let too_long = LOAN_DAYS_MAX + 1;
    let cases = [
        ("no book", vec![ann()], 7, BOOK_NOT_FOUND),
        ("no member", vec![book()], 7, MEMBER_NOT_FOUND),
        ("the book is out", vec![out(), ann()], 7, BOOK_ON_LOAN),
        ("ann is full", vec![book(), full()], 7, LOAN_LIMIT_REACHED),
        ("too long", vec![book(), ann()], too_long, DAYS_INVALID),
        // Existence before state, state before fields.
        ("out, no member", vec![out()], 7, MEMBER_NOT_FOUND),
        ("out, too long", vec![out(), ann()], too_long, BOOK_ON_LOAN),
    ];
    for (case, streams, days, code) in cases {
        println!("{case}");
        given_streams::<Library>(streams)
            .when(lend("b-1", "ann", days))
            .then_rejected(code);
    }
}

#[test]
fn a_member_below_the_limit_may_borrow_again() {
    let mut member = vec![registered("m-1")];
    member.extend((1..LOANS_MAX).map(|n| opened("m-1", "other", Uuid::from_u128(n.into()))));
    let result =
        given_streams::<Library>([("book-b-1", vec![added("b-1")]), ("member-m-1", member)])
            .when(lend("b-1", "m-1", LOAN_DAYS_MAX))
            .result();
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn the_loan_limit_is_the_one_recorded_with_the_member() {
    let member = |loans_max: u32, loans: u32| {
        let mut events = vec![LibraryEvent::MemberRegistered(MemberRegistered {
            loans_max,
            ..registered_as("m-1")
        })];
        events.extend((0..loans).map(|n| opened("m-1", "other", Uuid::from_u128(n.into()))));
        ("member-m-1", events)
    };
    let book = || ("book-b-1", vec![added("b-1")]);
    given_streams::<Library>([book(), member(2, 2)])
        .when(lend("b-1", "m-1", 7))
        .then_rejected(LOAN_LIMIT_REACHED);
    let result = given_streams::<Library>([book(), member(8, 7)])
        .when(lend("b-1", "m-1", 7))
        .result();
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn a_member_registered_in_version_1_has_the_limit_of_then() {
    // The body a build before `MemberRegistered` version 2 recorded reads upcast.
    let v1 = br#"{"memberId":"m-1","name":"Ann"}"#;
    let registered_v1 = LibraryEvent::decode_version("MemberRegistered", 1, v1).unwrap();
    assert_eq!(
        registered_v1,
        LibraryEvent::MemberRegistered(MemberRegistered {
            loans_max: LOANS_MAX_BEFORE_V2,
            ..registered_as("m-1")
        })
    );
    assert_eq!(LibraryEvent::current_version("MemberRegistered"), Some(2));
    let mut member = vec![registered_v1];
    member.extend(
        (0..LOANS_MAX_BEFORE_V2).map(|n| opened("m-1", "other", Uuid::from_u128(n.into()))),
    );
    given_streams::<Library>([("book-b-1", vec![added("b-1")]), ("member-m-1", member)])
        .when(lend("b-1", "m-1", 7))
        .then_rejected(LOAN_LIMIT_REACHED);
}

#[test]
fn returning_closes_the_loan_on_the_book_and_the_member() {
    given::<Library>([added("b-1"), lent("b-1", "m-1", LOAN, NOW)])
        .when(return_book("b-1"))
        .then_on([
            ("book-b-1", returned("b-1", "m-1", LOAN)),
            (
                "member-m-1",
                LibraryEvent::LoanClosed(LoanClosed {
                    member_id: id("m-1"),
                    book_id: id("b-1"),
                    loan_id: LOAN,
                }),
            ),
        ]);
    given::<Library>([])
        .when(return_book("b-1"))
        .then_rejected(BOOK_NOT_FOUND);
    given::<Library>([added("b-1")])
        .when(return_book("b-1"))
        .then_rejected(BOOK_NOT_ON_LOAN);
    given::<Library>([
        added("b-1"),
        lent("b-1", "m-1", LOAN, NOW),
        returned("b-1", "m-1", LOAN),
    ])
    .when(return_book("b-1"))
    .then_rejected(BOOK_NOT_ON_LOAN);
}

#[test]
fn an_overdue_book_is_returned_like_any_other() {
    given::<Library>([
        added("b-1"),
        lent("b-1", "m-1", LOAN, NOW),
        overdue("b-1", "m-1", LOAN),
    ])
    .when(return_book("b-1"))
    .result()
    .expect("returned");
}

#[test]
fn a_loan_is_marked_overdue_once_its_due_time_has_come() {
    let due = NOW + DAY_MS;
    let book = || [added("b-1"), lent("b-1", "m-1", LOAN, due)];
    for recorded_at_ms in [due, due + 1] {
        given::<Library>(book())
            .with_envelope(at(recorded_at_ms))
            .when(mark_overdue("b-1", LOAN))
            .then([overdue("b-1", "m-1", LOAN)]);
    }
    given::<Library>(book())
        .with_envelope(at(due - 1))
        .when(mark_overdue("b-1", LOAN))
        .then_rejected(LOAN_NOT_DUE);
}

#[test]
fn marking_overdue_a_loan_that_ended_is_refused_and_twice_records_nothing() {
    let due = NOW;
    given::<Library>([])
        .when(mark_overdue("b-1", LOAN))
        .then_rejected(BOOK_NOT_FOUND);
    given::<Library>([
        added("b-1"),
        lent("b-1", "m-1", LOAN, due),
        returned("b-1", "m-1", LOAN),
    ])
    .when(mark_overdue("b-1", LOAN))
    .then_rejected(BOOK_NOT_ON_LOAN);
    // Returned and lent again: the old loan's timer does not touch the new loan.
    given::<Library>([
        added("b-1"),
        lent("b-1", "m-1", LOAN, due),
        returned("b-1", "m-1", LOAN),
        lent("b-1", "m-2", Uuid::from_u128(8), due),
    ])
    .when(mark_overdue("b-1", LOAN))
    .then_rejected(BOOK_NOT_ON_LOAN);
    given::<Library>([
        added("b-1"),
        lent("b-1", "m-1", LOAN, due),
        overdue("b-1", "m-1", LOAN),
    ])
    .when(mark_overdue("b-1", LOAN))
    .then([]);
}

#[test]
fn what_a_payload_can_check_by_itself_is_a_decoding_error_not_a_rule() {
    let bad_id = decode_error::<Library>("AddBook", None, json!({"bookId": "", "title": "x"}));
    assert!(
        matches!(bad_id, CommandError::InvalidPayload { .. }),
        "{bad_id}"
    );
    let spaced = decode_error::<Library>(
        "RegisterMember",
        None,
        json!({"memberId": "a b", "name": "x"}),
    );
    assert!(
        matches!(spaced, CommandError::InvalidPayload { .. }),
        "{spaced}"
    );
    // Version 1 has no `days`; version 2 requires it, and a whole non-negative number.
    for (version, payload) in [
        (1, json!({"bookId": "b-1", "memberId": "m-1", "days": 3})),
        (2, json!({"bookId": "b-1", "memberId": "m-1"})),
        (2, json!({"bookId": "b-1", "memberId": "m-1", "days": -1})),
        (2, json!({"bookId": "b-1", "memberId": "m-1", "days": 1.5})),
    ] {
        let error = decode_error::<Library>("LendBook", Some(version), payload);
        assert!(
            matches!(error, CommandError::InvalidPayload { .. }),
            "{error}"
        );
    }
    let error = decode_error::<Library>("LendBook", Some(3), json!({}));
    assert!(
        matches!(error, CommandError::UnknownVersion { .. }),
        "{error}"
    );
}
