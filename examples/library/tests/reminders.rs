//! The reminders process, one event at a time (`testing::react`), and its timer's command
//! through the rules (`Given::when_issued`).

use uuid::Uuid;
use writ_domain::Issued;
use writ_domain::testing::{DEFAULT_ENVELOPE, decode_issued, given, react};
use writ_example_library::codes::{BOOK_NOT_ON_LOAN, LOAN_NOT_DUE};
use writ_example_library::{
    BookAdded, BookLent, BookOverdue, BookReturned, Id, Library, LibraryCommand, LibraryEvent,
    MarkOverdue, ReminderEvent, Reminders,
};

const LOAN: Uuid = Uuid::from_u128(7);
const DUE: u64 = DEFAULT_ENVELOPE.recorded_at_ms + 14 * 86_400_000;

fn id(s: &str) -> Id {
    Id::new(s).unwrap()
}

fn lent() -> BookLent {
    BookLent {
        book_id: id("b-1"),
        member_id: id("m-1"),
        loan_id: LOAN,
        due_at_ms: DUE,
    }
}

fn returned() -> BookReturned {
    BookReturned {
        book_id: id("b-1"),
        member_id: id("m-1"),
        loan_id: LOAN,
    }
}

/// The book's stream while the loan is out.
fn book() -> [LibraryEvent; 2] {
    let added = BookAdded {
        book_id: id("b-1"),
        title: "Middlemarch".into(),
    };
    [
        LibraryEvent::BookAdded(added),
        LibraryEvent::BookLent(lent()),
    ]
}

/// The timer the loan sets: when it fires and the command it issues.
fn timer() -> (u64, Issued) {
    let reactions = react::<Reminders>(&ReminderEvent::BookLent(lent()));
    let [(_, at_ms, command)] = reactions.scheduled().collect::<Vec<_>>()[..] else {
        panic!("one timer: {reactions:?}");
    };
    (at_ms, command.clone())
}

#[test]
fn a_loan_sets_a_timer_at_its_due_time_that_marks_it_overdue() {
    let reactions = react::<Reminders>(&ReminderEvent::BookLent(lent()));
    assert!(reactions.issued().is_empty(), "nothing now");
    let timers: Vec<_> = reactions.scheduled().collect();
    let [(key, at_ms, command)] = timers[..] else {
        panic!("one timer: {timers:?}");
    };
    assert_eq!((key, at_ms), (LOAN.to_string().as_str(), DUE));
    // The payload is one the domain's catalog decodes: the timer's command will run.
    let mark = MarkOverdue {
        book_id: id("b-1"),
        loan_id: LOAN,
    };
    assert_eq!(
        decode_issued::<Library>(command),
        LibraryCommand::MarkOverdue(mark)
    );
}

#[test]
fn a_return_cancels_the_loans_timer() {
    let reactions = react::<Reminders>(&ReminderEvent::BookReturned(returned()));
    assert!(reactions.cancelled().eq([LOAN.to_string().as_str()]));
    assert_eq!(reactions.scheduled().count(), 0);
    assert!(reactions.issued().is_empty());
}

#[test]
fn the_timers_command_marks_the_loan_overdue_when_it_fires() {
    let (due, mark) = timer();
    let overdue = LibraryEvent::BookOverdue(BookOverdue {
        book_id: id("b-1"),
        member_id: id("m-1"),
        loan_id: LOAN,
    });
    // The engine records a timer's command at its time, or later if the server was down.
    for at_ms in [due, due + 86_400_000] {
        given::<Library>(book())
            .when_issued(&mark, at_ms)
            .then([overdue.clone()]);
    }
    // The rule checks the time too: early, the command is refused.
    given::<Library>(book())
        .when_issued(&mark, due - 1)
        .then_rejected(LOAN_NOT_DUE);
    // A book that came back before its timer fired: nothing to mark.
    let [added, lent] = book();
    let came_back = [added, lent, LibraryEvent::BookReturned(returned())];
    given::<Library>(came_back)
        .when_issued(&mark, due)
        .then_rejected(BOOK_NOT_ON_LOAN);
}
