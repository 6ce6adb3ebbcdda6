//! The reminders process, one event at a time (`testing::react`), and its timer's command
//! through the rules.

use uuid::Uuid;
use writ_domain::testing::{DEFAULT_ENVELOPE, given, react};
use writ_domain::{Domain, Envelope, EventSet, Issued, Reactions, TimerOp};
use writ_example_library::{
    BookAdded, BookLent, BookReturned, Id, Library, LibraryCommand, LibraryEvent, MarkOverdue,
    ReminderEvent, Reminders,
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

/// The one timer `reactions` schedule: its key, time and command.
fn scheduled(reactions: &Reactions) -> (&str, u64, &Issued) {
    match reactions.timers() {
        [
            TimerOp::Schedule {
                process,
                key,
                at_ms,
                command,
            },
        ] if process == "reminders" => (key, *at_ms, command),
        other => panic!("one timer of the reminders, not {other:?}"),
    }
}

#[test]
fn a_loan_sets_a_timer_at_its_due_time_that_marks_it_overdue() {
    let reactions = react::<Reminders>(&ReminderEvent::BookLent(lent()));
    assert!(reactions.issued().is_empty(), "nothing now");
    let (key, at_ms, command) = scheduled(&reactions);
    assert_eq!((key, at_ms), (LOAN.to_string().as_str(), DUE));
    assert_eq!(command.command, "MarkOverdue");
    // The payload is one the domain's catalog decodes: the timer's command will run.
    let decoded = Library::commands()
        .decode(&command.command, command.version, &command.payload)
        .expect("MarkOverdue decodes");
    let mark = MarkOverdue {
        book_id: id("b-1"),
        loan_id: LOAN,
    };
    assert_eq!(decoded.command, LibraryCommand::MarkOverdue(mark));
}

#[test]
fn a_return_cancels_the_loans_timer() {
    let returned = BookReturned {
        book_id: id("b-1"),
        member_id: id("m-1"),
        loan_id: LOAN,
    };
    let reactions = react::<Reminders>(&ReminderEvent::BookReturned(returned));
    let cancelled = TimerOp::Cancel {
        process: "reminders".into(),
        key: LOAN.to_string(),
    };
    assert_eq!(reactions.timers(), [cancelled]);
    assert!(reactions.issued().is_empty());
}

#[test]
fn the_timers_command_marks_the_loan_overdue_when_it_fires() {
    let reactions = react::<Reminders>(&ReminderEvent::BookLent(lent()));
    let (_, at_ms, command) = scheduled(&reactions);
    let mark = Library::commands()
        .decode(&command.command, command.version, &command.payload)
        .unwrap()
        .command;
    // The engine records a timer's command at its time or later.
    let fired = Envelope {
        command_id: command.id,
        recorded_at_ms: at_ms,
        ..DEFAULT_ENVELOPE
    };
    let book = [
        LibraryEvent::BookAdded(BookAdded {
            book_id: id("b-1"),
            title: "Middlemarch".into(),
        }),
        LibraryEvent::BookLent(lent()),
    ];
    let events = given::<Library>(book)
        .with_envelope(fired)
        .when(mark)
        .result()
        .unwrap();
    let types: Vec<&str> = events.iter().map(EventSet::event_type).collect();
    assert_eq!(types, ["BookOverdue"]);
}
