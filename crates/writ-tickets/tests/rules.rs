//! The tickets domain's public contract: every rule and rejection code, JSON decoding of
//! every command version, and the schema failures that are decoding errors (`422`).

use serde_json::{Value, json};
use uuid::Uuid;
use writ_domain::testing::{DEFAULT_ENVELOPE, decode_error, given};
use writ_domain::{CommandError, CommandInfo, Domain, Envelope, EventSet, Refusal};
use writ_tickets::{
    AddComment, AssignTicket, CloseTicket, CommentAdded, OpenTicket, Priority, ReopenTicket,
    TicketAssigned, TicketClosed, TicketCommand, TicketEvent, TicketId, TicketOpened,
    TicketReopened, TicketState, TicketStatus, Tickets,
};

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

const T: &str = "t-1";

fn id(s: &str) -> TicketId {
    TicketId::new(s).unwrap()
}

fn opened_with(priority: Priority) -> TicketEvent {
    TicketOpened {
        ticket_id: id(T),
        title: "Printer on fire".into(),
        description: Some("Third floor".into()),
        reporter: "ada".into(),
        priority,
    }
    .into()
}

fn opened() -> TicketEvent {
    opened_with(Priority::Normal)
}

fn assigned(assignee: &str) -> TicketEvent {
    TicketAssigned {
        ticket_id: id(T),
        assignee: assignee.into(),
    }
    .into()
}

fn commented(envelope: &Envelope, text: &str) -> TicketEvent {
    CommentAdded {
        ticket_id: id(T),
        comment_id: envelope.derive_id(0),
        author: "bo".into(),
        text: text.into(),
    }
    .into()
}

fn closed() -> TicketEvent {
    TicketClosed {
        ticket_id: id(T),
        resolution: "extinguished".into(),
    }
    .into()
}

fn reopened() -> TicketEvent {
    TicketReopened {
        ticket_id: id(T),
        reason: "smoking again".into(),
    }
    .into()
}

fn open(title: &str) -> TicketCommand {
    open_with(title, Priority::Normal)
}

fn open_with(title: &str, priority: Priority) -> TicketCommand {
    OpenTicket {
        ticket_id: id(T),
        title: title.into(),
        description: Some("Third floor".into()),
        reporter: "ada".into(),
        priority,
    }
    .into()
}

fn assign(assignee: &str) -> TicketCommand {
    AssignTicket {
        ticket_id: id(T),
        assignee: assignee.into(),
    }
    .into()
}

fn comment(text: &str) -> TicketCommand {
    AddComment {
        ticket_id: id(T),
        author: "bo".into(),
        text: text.into(),
    }
    .into()
}

fn close() -> TicketCommand {
    CloseTicket {
        ticket_id: id(T),
        resolution: "extinguished".into(),
    }
    .into()
}

fn reopen() -> TicketCommand {
    ReopenTicket {
        ticket_id: id(T),
        reason: "smoking again".into(),
    }
    .into()
}

/// Histories that leave the ticket open.
fn open_histories() -> Vec<(&'static str, Vec<TicketEvent>)> {
    vec![
        ("opened", vec![opened()]),
        ("assigned", vec![opened(), assigned("bo")]),
        ("reopened", vec![opened(), closed(), reopened()]),
    ]
}

/// Histories that leave the ticket closed.
fn closed_histories() -> Vec<(&'static str, Vec<TicketEvent>)> {
    vec![
        ("closed", vec![opened(), closed()]),
        (
            "assigned then closed",
            vec![opened(), assigned("bo"), closed()],
        ),
        (
            "closed again",
            vec![opened(), closed(), reopened(), closed()],
        ),
    ]
}

fn existing_histories() -> Vec<(&'static str, Vec<TicketEvent>)> {
    let mut all = open_histories();
    all.extend(closed_histories());
    all
}

const BLANKS: [&str; 6] = ["", " ", "   ", "\t", "\r\n", "\u{a0}\u{3000}"];

fn rejection_code(history: Vec<TicketEvent>, command: TicketCommand) -> String {
    match given::<Tickets>(history).when(command).result() {
        Err(Refusal::Rejected(r)) => r.code.into_owned(),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn fold(events: &[TicketEvent]) -> TicketState {
    let mut state = TicketState::default();
    for event in events {
        Tickets::evolve(&mut state, event);
    }
    state
}

// ---------------------------------------------------------------------------------------
// The domain's shape
// ---------------------------------------------------------------------------------------

#[test]
fn domain_is_named_tickets() {
    assert_eq!(Tickets::NAME, "tickets");
}

#[test]
fn catalog_declares_open_ticket_v1_and_v2_and_the_others_as_v1() {
    let infos: Vec<CommandInfo> = Tickets::commands().infos().collect();
    let pairs: Vec<(&str, u32)> = infos.iter().map(|i| (i.name, i.version)).collect();
    assert_eq!(
        pairs,
        [
            ("OpenTicket", 1),
            ("OpenTicket", 2),
            ("AssignTicket", 1),
            ("AddComment", 1),
            ("CloseTicket", 1),
            ("ReopenTicket", 1),
        ]
    );
    assert_eq!(Tickets::commands().newest_version("OpenTicket"), Some(2));
}

#[test]
fn event_types_are_the_five_contract_events() {
    assert_eq!(
        TicketEvent::EVENT_TYPES,
        [
            "TicketOpened",
            "TicketAssigned",
            "CommentAdded",
            "TicketClosed",
            "TicketReopened"
        ]
    );
}

#[test]
fn every_command_addresses_stream_ticket_dash_id() {
    for command in [open("x"), assign("bo"), comment("hi"), close(), reopen()] {
        assert_eq!(Tickets::stream(&command), "ticket-t-1", "{command:?}");
        assert_eq!(command.ticket_id().as_str(), T);
    }
    assert_eq!(writ_tickets::stream_name(&id("a b")), "ticket-a b");
}

// ---------------------------------------------------------------------------------------
// OpenTicket
// ---------------------------------------------------------------------------------------

#[test]
fn open_on_empty_stream_records_ticket_opened() {
    given::<Tickets>([])
        .when(open_with("Printer on fire", Priority::High))
        .then([opened_with(Priority::High)]);
}

#[test]
fn open_records_title_as_given_without_trimming() {
    let result = given::<Tickets>([])
        .when(open("  Printer  "))
        .result()
        .unwrap();
    let [TicketEvent::TicketOpened(e)] = result.as_slice() else {
        panic!("{result:?}");
    };
    assert_eq!(e.title, "  Printer  ");
}

#[test]
fn open_on_existing_ticket_is_rejected_with_ticket_exists() {
    for (name, history) in existing_histories() {
        assert_eq!(
            rejection_code(history, open("Again")),
            "ticket_exists",
            "{name}"
        );
    }
}

#[test]
fn open_with_blank_title_is_rejected_with_title_required() {
    for title in BLANKS {
        given::<Tickets>([])
            .when(open(title))
            .then_rejected("title_required");
    }
}

#[test]
fn open_with_blank_title_on_existing_ticket_is_rejected_with_ticket_exists_first() {
    for (name, history) in existing_histories() {
        assert_eq!(
            rejection_code(history, open(" ")),
            "ticket_exists",
            "{name}"
        );
    }
}

#[test]
fn open_v1_reads_as_normal_priority() {
    given::<Tickets>([])
        .when_json(
            "OpenTicket",
            Some(1),
            json!({"ticketId": T, "title": "Printer on fire", "description": "Third floor", "reporter": "ada"}),
        )
        .then([opened_with(Priority::Normal)]);
}

#[test]
fn open_v2_records_the_given_priority() {
    for (text, priority) in [
        ("low", Priority::Low),
        ("normal", Priority::Normal),
        ("high", Priority::High),
        ("urgent", Priority::Urgent),
    ] {
        given::<Tickets>([])
            .when_json(
                "OpenTicket",
                Some(2),
                json!({
                    "ticketId": T, "title": "Printer on fire", "description": "Third floor",
                    "reporter": "ada", "priority": text
                }),
            )
            .then([opened_with(priority)]);
    }
}

#[test]
fn open_v2_without_priority_reads_as_normal_priority() {
    given::<Tickets>([])
        .when_json(
            "OpenTicket",
            Some(2),
            json!({"ticketId": T, "title": "Printer on fire", "description": "Third floor", "reporter": "ada"}),
        )
        .then([opened_with(Priority::Normal)]);
}

#[test]
fn open_without_version_decodes_as_v2() {
    given::<Tickets>([])
        .when_json(
            "OpenTicket",
            None,
            json!({
                "ticketId": T, "title": "Printer on fire", "description": "Third floor",
                "reporter": "ada", "priority": "urgent"
            }),
        )
        .then([opened_with(Priority::Urgent)]);
    let decoded = Tickets::commands()
        .decode(
            "OpenTicket",
            None,
            br#"{"ticketId":"t","title":"x","reporter":"r"}"#,
        )
        .unwrap();
    assert_eq!(decoded.version, 2);
}

#[test]
fn open_description_is_optional_absent_or_null() {
    for version in [Some(1), Some(2), None] {
        for payload in [
            json!({"ticketId": T, "title": "Printer on fire", "reporter": "ada"}),
            json!({"ticketId": T, "title": "Printer on fire", "description": null, "reporter": "ada"}),
        ] {
            given::<Tickets>([])
                .when_json("OpenTicket", version, payload)
                .then([TicketEvent::TicketOpened(TicketOpened {
                    ticket_id: id(T),
                    title: "Printer on fire".into(),
                    description: None,
                    reporter: "ada".into(),
                    priority: Priority::Normal,
                })]);
        }
    }
}

#[test]
fn open_blank_title_in_json_is_a_rejection_not_a_decoding_error() {
    for version in [Some(1), Some(2)] {
        given::<Tickets>([])
            .when_json(
                "OpenTicket",
                version,
                json!({"ticketId": T, "title": " ", "reporter": "ada"}),
            )
            .then_rejected("title_required");
    }
}

// ---------------------------------------------------------------------------------------
// AssignTicket
// ---------------------------------------------------------------------------------------

#[test]
fn assign_open_ticket_records_ticket_assigned() {
    for (name, history) in open_histories() {
        let events = given::<Tickets>(history).when(assign("cy")).result();
        assert_eq!(events, Ok(vec![assigned("cy")]), "{name}");
    }
}

#[test]
fn assign_to_current_assignee_records_the_assignment_again() {
    given::<Tickets>([opened(), assigned("bo")])
        .when(assign("bo"))
        .then([assigned("bo")]);
}

#[test]
fn assign_closed_ticket_is_rejected_with_ticket_closed() {
    for (name, history) in closed_histories() {
        assert_eq!(
            rejection_code(history, assign("cy")),
            "ticket_closed",
            "{name}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// AddComment
// ---------------------------------------------------------------------------------------

#[test]
fn comment_on_open_ticket_records_comment_added() {
    for (name, history) in open_histories() {
        let events = given::<Tickets>(history).when(comment("On it")).result();
        assert_eq!(
            events,
            Ok(vec![commented(&DEFAULT_ENVELOPE, "On it")]),
            "{name}"
        );
    }
}

#[test]
fn comment_on_closed_ticket_is_allowed() {
    for (name, history) in closed_histories() {
        let events = given::<Tickets>(history).when(comment("Thanks")).result();
        assert_eq!(
            events,
            Ok(vec![commented(&DEFAULT_ENVELOPE, "Thanks")]),
            "{name}"
        );
    }
}

#[test]
fn comment_with_blank_text_is_rejected_with_text_required() {
    for (name, history) in existing_histories() {
        for text in BLANKS {
            assert_eq!(
                rejection_code(history.clone(), comment(text)),
                "text_required",
                "{name}, {text:?}"
            );
        }
    }
}

#[test]
fn comment_id_is_derived_from_the_command_id() {
    let envelope = Envelope {
        command_id: Uuid::from_u128(0xfeed),
        recorded_at_ms: 1,
        sequence: 0,
        correlation_id: Uuid::from_u128(0xfeed),
    };
    given::<Tickets>([opened()])
        .with_envelope(envelope)
        .when(comment("hi"))
        .then([commented(&envelope, "hi")]);

    // Same command id: same comment id, whatever the time or sequence.
    let later = Envelope {
        recorded_at_ms: 99,
        sequence: 7,
        ..envelope
    };
    given::<Tickets>([opened()])
        .with_envelope(later)
        .when(comment("hi"))
        .then([commented(&envelope, "hi")]);

    // Another command id: another comment id.
    let other = Envelope {
        command_id: Uuid::from_u128(0xbeef),
        ..envelope
    };
    assert_ne!(commented(&other, "hi"), commented(&envelope, "hi"));
    given::<Tickets>([opened()])
        .with_envelope(other)
        .when(comment("hi"))
        .then([commented(&other, "hi")]);
}

// ---------------------------------------------------------------------------------------
// CloseTicket and ReopenTicket
// ---------------------------------------------------------------------------------------

#[test]
fn close_open_ticket_records_ticket_closed() {
    for (name, history) in open_histories() {
        let events = given::<Tickets>(history).when(close()).result();
        assert_eq!(events, Ok(vec![closed()]), "{name}");
    }
}

#[test]
fn close_closed_ticket_is_rejected_with_ticket_closed() {
    for (name, history) in closed_histories() {
        assert_eq!(rejection_code(history, close()), "ticket_closed", "{name}");
    }
}

#[test]
fn reopen_closed_ticket_records_ticket_reopened() {
    for (name, history) in closed_histories() {
        let events = given::<Tickets>(history).when(reopen()).result();
        assert_eq!(events, Ok(vec![reopened()]), "{name}");
    }
}

#[test]
fn reopen_open_ticket_is_rejected_with_ticket_open() {
    for (name, history) in open_histories() {
        assert_eq!(rejection_code(history, reopen()), "ticket_open", "{name}");
    }
}

// ---------------------------------------------------------------------------------------
// Missing tickets and the order of checks
// ---------------------------------------------------------------------------------------

#[test]
fn commands_on_missing_ticket_are_rejected_with_ticket_not_found() {
    // Blank comment text too: "not found" is checked before field rules.
    for command in [assign("bo"), comment("hi"), comment(""), close(), reopen()] {
        let name = command.name();
        assert_eq!(
            rejection_code(vec![], command),
            "ticket_not_found",
            "{name}"
        );
    }
}

#[test]
fn commands_on_another_ticket_stream_are_independent() {
    // A stream's state only holds its own events: a fresh stream for another id is empty.
    let other = TicketCommand::CloseTicket(CloseTicket {
        ticket_id: id("t-2"),
        resolution: "done".into(),
    });
    assert_eq!(Tickets::stream(&other), "ticket-t-2");
    given::<Tickets>([])
        .when(other)
        .then_rejected("ticket_not_found");
}

#[test]
fn every_rejection_code_of_the_contract_is_reachable() {
    let cases: [(&str, Vec<TicketEvent>, TicketCommand, &str); 10] = [
        ("open existing", vec![opened()], open("x"), "ticket_exists"),
        ("open blank title", vec![], open(""), "title_required"),
        ("assign missing", vec![], assign("bo"), "ticket_not_found"),
        (
            "assign closed",
            vec![opened(), closed()],
            assign("bo"),
            "ticket_closed",
        ),
        ("comment missing", vec![], comment("hi"), "ticket_not_found"),
        (
            "comment blank",
            vec![opened()],
            comment(" "),
            "text_required",
        ),
        ("close missing", vec![], close(), "ticket_not_found"),
        (
            "close closed",
            vec![opened(), closed()],
            close(),
            "ticket_closed",
        ),
        ("reopen missing", vec![], reopen(), "ticket_not_found"),
        ("reopen open", vec![opened()], reopen(), "ticket_open"),
    ];
    for (name, history, command, code) in cases {
        assert_eq!(rejection_code(history, command), code, "{name}");
    }
}

// ---------------------------------------------------------------------------------------
// A whole life
// ---------------------------------------------------------------------------------------

#[test]
fn open_assign_comment_close_reopen_close_evolves_state() {
    let envelope = DEFAULT_ENVELOPE;
    let mut state = TicketState::default();
    assert_eq!(state.status(), TicketStatus::Absent);
    assert!(!state.exists());
    assert_eq!(state.priority(), None);

    let mut log: Vec<TicketEvent> = Vec::new();
    let mut step = |state: &mut TicketState, command: TicketCommand| {
        let events = writ_domain::testing::decide::<Tickets>(state, &command, &envelope)
            .unwrap_or_else(|r| panic!("{} refused: {r:?}", command.name()));
        assert_eq!(events.len(), 1);
        for event in &events {
            Tickets::evolve(state, event);
        }
        log.extend(events);
    };

    step(&mut state, open_with("Printer on fire", Priority::Urgent));
    assert_eq!(state.status(), TicketStatus::Open);
    assert_eq!(state.priority(), Some(Priority::Urgent));
    assert_eq!(state.assignee(), None);
    assert_eq!(state.comment_count(), 0);

    step(&mut state, assign("bo"));
    assert!(state.is_open());
    assert_eq!(state.assignee(), Some("bo"));

    step(&mut state, comment("On it"));
    assert_eq!(state.comment_count(), 1);

    step(&mut state, close());
    assert!(state.is_closed());
    assert_eq!(state.assignee(), Some("bo"), "closing keeps the assignee");
    // What a closed ticket refuses and allows.
    assert!(writ_domain::testing::decide::<Tickets>(&state, &assign("cy"), &envelope).is_err());
    assert!(writ_domain::testing::decide::<Tickets>(&state, &close(), &envelope).is_err());
    assert!(writ_domain::testing::decide::<Tickets>(&state, &comment("late"), &envelope).is_ok());

    step(&mut state, reopen());
    assert!(state.is_open());
    assert_eq!(state.assignee(), Some("bo"), "reopening keeps the assignee");
    assert!(writ_domain::testing::decide::<Tickets>(&state, &reopen(), &envelope).is_err());

    step(&mut state, close());
    assert!(state.is_closed());
    assert_eq!(state.priority(), Some(Priority::Urgent));
    assert_eq!(state.comment_count(), 1);

    let types: Vec<&str> = log.iter().map(EventSet::event_type).collect();
    assert_eq!(
        types,
        [
            "TicketOpened",
            "TicketAssigned",
            "CommentAdded",
            "TicketClosed",
            "TicketReopened",
            "TicketClosed"
        ]
    );
    // Folding the log from scratch, as the engine does after a restart, gives the same state.
    assert_eq!(fold(&log), state);
}

// ---------------------------------------------------------------------------------------
// JSON: every command version decodes and decides like its typed form
// ---------------------------------------------------------------------------------------

/// Command name, version, history, payload, and the event it records.
type JsonCase = (
    &'static str,
    Option<u32>,
    Vec<TicketEvent>,
    Value,
    TicketEvent,
);

#[test]
fn json_commands_decide_like_their_typed_forms() {
    let cases: [JsonCase; 5] = [
        (
            "AssignTicket",
            Some(1),
            vec![opened()],
            json!({"ticketId": T, "assignee": "bo"}),
            assigned("bo"),
        ),
        (
            "AddComment",
            None,
            vec![opened()],
            json!({"ticketId": T, "author": "bo", "text": "On it"}),
            commented(&DEFAULT_ENVELOPE, "On it"),
        ),
        (
            "CloseTicket",
            Some(1),
            vec![opened()],
            json!({"ticketId": T, "resolution": "extinguished"}),
            closed(),
        ),
        (
            "ReopenTicket",
            None,
            vec![opened(), closed()],
            json!({"ticketId": T, "reason": "smoking again"}),
            reopened(),
        ),
        (
            "OpenTicket",
            Some(2),
            vec![],
            json!({
                "reporter": "ada", "priority": "low", "title": "Printer on fire",
                "ticketId": T, "description": "Third floor"
            }),
            opened_with(Priority::Low),
        ),
    ];
    for (name, version, history, payload, event) in cases {
        given::<Tickets>(history)
            .when_json(name, version, payload)
            .then([event]);
    }
}

#[test]
fn json_rejections_carry_the_contract_codes() {
    let cases: [(&str, Vec<TicketEvent>, Value, &str); 5] = [
        (
            "AssignTicket",
            vec![],
            json!({"ticketId": T, "assignee": "bo"}),
            "ticket_not_found",
        ),
        (
            "AssignTicket",
            vec![opened(), closed()],
            json!({"ticketId": T, "assignee": "bo"}),
            "ticket_closed",
        ),
        (
            "AddComment",
            vec![opened()],
            json!({"ticketId": T, "author": "bo", "text": ""}),
            "text_required",
        ),
        (
            "CloseTicket",
            vec![opened(), closed()],
            json!({"ticketId": T, "resolution": "x"}),
            "ticket_closed",
        ),
        (
            "ReopenTicket",
            vec![opened()],
            json!({"ticketId": T, "reason": "x"}),
            "ticket_open",
        ),
    ];
    for (name, history, payload, code) in cases {
        given::<Tickets>(history)
            .when_json(name, None, payload)
            .then_rejected(code);
    }
}

#[test]
fn canonical_payload_fills_in_the_default_priority_and_drops_null_description() {
    let catalog = Tickets::commands();
    let canonical = |version: Option<u32>, payload: &str| {
        catalog
            .decode("OpenTicket", version, payload.as_bytes())
            .unwrap()
            .canonical_payload
    };
    let expected = br#"{"ticketId":"t","title":"x","reporter":"r","priority":"normal"}"#;
    assert_eq!(
        canonical(None, r#"{"ticketId":"t","title":"x","reporter":"r"}"#),
        expected
    );
    assert_eq!(
        canonical(
            Some(2),
            r#" { "priority" : "normal", "reporter":"r", "description":null, "title":"x", "ticketId":"t" } "#
        ),
        expected
    );
    // Version 1's canonical payload has no priority: it is what the client sent, in v1.
    assert_eq!(
        canonical(Some(1), r#"{"reporter":"r","title":"x","ticketId":"t"}"#),
        br#"{"ticketId":"t","title":"x","reporter":"r"}"#
    );
}

#[test]
fn logged_canonical_payloads_decode_to_the_same_command() {
    let catalog = Tickets::commands();
    let payloads: [(&str, u32, Value); 7] = [
        (
            "OpenTicket",
            1,
            json!({"ticketId": T, "title": "x", "reporter": "r", "description": "d"}),
        ),
        (
            "OpenTicket",
            2,
            json!({"ticketId": T, "title": "x", "reporter": "r", "priority": "high"}),
        ),
        (
            "OpenTicket",
            2,
            json!({"ticketId": T, "title": "x", "reporter": "r"}),
        ),
        ("AssignTicket", 1, json!({"ticketId": T, "assignee": "bo"})),
        (
            "AddComment",
            1,
            json!({"ticketId": T, "author": "bo", "text": "hi"}),
        ),
        (
            "CloseTicket",
            1,
            json!({"ticketId": T, "resolution": "done"}),
        ),
        ("ReopenTicket", 1, json!({"ticketId": T, "reason": "again"})),
    ];
    for (name, version, payload) in payloads {
        let bytes = serde_json::to_vec(&payload).unwrap();
        let decoded = catalog.decode(name, Some(version), &bytes).unwrap();
        assert_eq!(decoded.command.name(), name);
        let logged = catalog
            .decode_logged(name, version, &decoded.canonical_payload)
            .unwrap();
        assert_eq!(logged, decoded.command, "{name} v{version}");
    }
}

#[test]
fn events_serialize_with_camel_case_fields_and_no_timestamps() {
    let encode = |event: &TicketEvent| {
        let mut out = Vec::new();
        event.encode_data(&mut out).unwrap();
        serde_json::from_slice::<Value>(&out).unwrap()
    };
    assert_eq!(
        encode(&opened_with(Priority::High)),
        json!({
            "ticketId": T, "title": "Printer on fire", "description": "Third floor",
            "reporter": "ada", "priority": "high"
        })
    );
    let no_description: TicketEvent = TicketOpened {
        ticket_id: id(T),
        title: "x".into(),
        description: None,
        reporter: "r".into(),
        priority: Priority::Normal,
    }
    .into();
    assert_eq!(
        encode(&no_description),
        json!({"ticketId": T, "title": "x", "reporter": "r", "priority": "normal"}),
        "description is omitted when None"
    );
    assert_eq!(
        encode(&assigned("bo")),
        json!({"ticketId": T, "assignee": "bo"})
    );
    assert_eq!(
        encode(&commented(&DEFAULT_ENVELOPE, "hi")),
        json!({
            "ticketId": T, "commentId": DEFAULT_ENVELOPE.derive_id(0).to_string(),
            "author": "bo", "text": "hi"
        })
    );
    assert_eq!(
        encode(&closed()),
        json!({"ticketId": T, "resolution": "extinguished"})
    );
    assert_eq!(
        encode(&reopened()),
        json!({"ticketId": T, "reason": "smoking again"})
    );
}

#[test]
fn priority_serializes_lowercase() {
    for (priority, text) in [
        (Priority::Low, "low"),
        (Priority::Normal, "normal"),
        (Priority::High, "high"),
        (Priority::Urgent, "urgent"),
    ] {
        assert_eq!(serde_json::to_value(priority).unwrap(), json!(text));
        assert_eq!(
            serde_json::from_value::<Priority>(json!(text)).unwrap(),
            priority
        );
    }
    assert_eq!(Priority::default(), Priority::Normal);
}

// ---------------------------------------------------------------------------------------
// Decoding errors (the server answers 422; no rule runs)
// ---------------------------------------------------------------------------------------

fn invalid_payload_detail(name: &str, version: Option<u32>, payload: Value) -> String {
    match decode_error::<Tickets>(name, version, payload.clone()) {
        CommandError::InvalidPayload { detail, .. } => detail,
        other => panic!("{name} {version:?} {payload}: expected InvalidPayload, got {other:?}"),
    }
}

/// A valid payload of every command version.
fn valid_payloads() -> Vec<(&'static str, Option<u32>, Value)> {
    vec![
        (
            "OpenTicket",
            Some(1),
            json!({"ticketId": T, "title": "x", "description": "d", "reporter": "r"}),
        ),
        (
            "OpenTicket",
            Some(2),
            json!({"ticketId": T, "title": "x", "description": "d", "reporter": "r", "priority": "high"}),
        ),
        (
            "AssignTicket",
            Some(1),
            json!({"ticketId": T, "assignee": "bo"}),
        ),
        (
            "AddComment",
            Some(1),
            json!({"ticketId": T, "author": "bo", "text": "hi"}),
        ),
        (
            "CloseTicket",
            Some(1),
            json!({"ticketId": T, "resolution": "done"}),
        ),
        (
            "ReopenTicket",
            Some(1),
            json!({"ticketId": T, "reason": "again"}),
        ),
    ]
}

#[test]
fn valid_payloads_of_every_command_version_decode() {
    let catalog = Tickets::commands();
    for (name, version, payload) in valid_payloads() {
        let bytes = serde_json::to_vec(&payload).unwrap();
        assert!(
            catalog.decode(name, version, &bytes).is_ok(),
            "{name} {version:?}"
        );
    }
}

#[test]
fn missing_required_field_is_a_decoding_error() {
    const OPTIONAL: [&str; 2] = ["description", "priority"];
    for (name, version, payload) in valid_payloads() {
        let Value::Object(fields) = &payload else {
            unreachable!()
        };
        for field in fields.keys().filter(|f| !OPTIONAL.contains(&f.as_str())) {
            let mut without = fields.clone();
            without.remove(field);
            let detail = invalid_payload_detail(name, version, Value::Object(without));
            assert!(
                detail.contains(&format!("missing field `{field}`")),
                "{name} {version:?} without {field}: {detail}"
            );
        }
    }
}

#[test]
fn unknown_field_is_a_decoding_error() {
    for (name, version, payload) in valid_payloads() {
        for unknown in ["extra", "ticket_id", "TicketId", "createdAt"] {
            let mut with = payload.clone();
            with[unknown] = json!("x");
            let detail = invalid_payload_detail(name, version, with);
            assert!(
                detail.contains(&format!("unknown field `{unknown}`")),
                "{name} {version:?} with {unknown}: {detail}"
            );
        }
    }
}

#[test]
fn priority_in_open_v1_is_a_decoding_error() {
    let detail = invalid_payload_detail(
        "OpenTicket",
        Some(1),
        json!({"ticketId": T, "title": "x", "reporter": "r", "priority": "normal"}),
    );
    assert!(detail.contains("unknown field `priority`"), "{detail}");
}

#[test]
fn wrong_field_type_is_a_decoding_error() {
    for (name, version, payload) in valid_payloads() {
        let Value::Object(fields) = &payload else {
            unreachable!()
        };
        for field in fields.keys() {
            for wrong in [json!(1), json!(true), json!(["x"]), json!({"x": 1})] {
                let mut with = payload.clone();
                with[field] = wrong.clone();
                invalid_payload_detail(name, version, with);
            }
        }
    }
}

#[test]
fn null_for_a_required_field_is_a_decoding_error() {
    for (name, version, payload) in valid_payloads() {
        let Value::Object(fields) = &payload else {
            unreachable!()
        };
        for field in fields.keys().filter(|f| *f != "description") {
            let mut with = payload.clone();
            with[field] = Value::Null;
            invalid_payload_detail(name, version, with);
        }
    }
}

#[test]
fn unknown_priority_is_a_decoding_error() {
    for bad in ["", "Normal", "NORMAL", "critical", "medium", " low"] {
        for version in [Some(2), None] {
            let detail = invalid_payload_detail(
                "OpenTicket",
                version,
                json!({"ticketId": T, "title": "x", "reporter": "r", "priority": bad}),
            );
            assert!(detail.contains("unknown variant"), "{bad:?}: {detail}");
        }
    }
}

#[test]
fn invalid_ticket_id_is_a_decoding_error() {
    let too_long = "x".repeat(201);
    let too_long_multibyte = "é".repeat(101);
    let cases: [(&str, &str); 9] = [
        ("", "must not be empty"),
        (&too_long, "at most 200 bytes"),
        (&too_long_multibyte, "at most 200 bytes"),
        ("a\nb", "control characters"),
        ("\n", "control characters"),
        ("tab\there", "control characters"),
        ("nul\0", "control characters"),
        ("del\u{7f}", "control characters"),
        ("c1\u{9b}", "control characters"),
    ];
    for (name, version, payload) in valid_payloads() {
        for (bad, expected) in cases {
            let mut with = payload.clone();
            with["ticketId"] = json!(bad);
            let detail = invalid_payload_detail(name, version, with);
            assert!(
                detail.contains(expected),
                "{name} {version:?} {bad:?}: {detail}"
            );
        }
    }
}

#[test]
fn ticket_id_of_200_bytes_is_accepted() {
    for good in ["x".repeat(200), "é".repeat(100), " ".into(), "日本".into()] {
        let result = given::<Tickets>([])
            .when_json(
                "OpenTicket",
                None,
                json!({"ticketId": good, "title": "x", "reporter": "r"}),
            )
            .result()
            .unwrap();
        let [TicketEvent::TicketOpened(e)] = result.as_slice() else {
            panic!("{result:?}")
        };
        assert_eq!(e.ticket_id.as_str(), good);
        assert_eq!(
            writ_tickets::stream_name(&e.ticket_id),
            format!("ticket-{good}")
        );
    }
}

#[test]
fn payload_that_is_not_an_object_is_a_decoding_error() {
    for (name, version, _) in valid_payloads() {
        for bad in [
            json!(null),
            json!([]),
            json!([T]),
            json!("x"),
            json!(1),
            json!(true),
        ] {
            let detail = invalid_payload_detail(name, version, bad.clone());
            assert!(detail.contains("JSON object"), "{name} {bad}: {detail}");
        }
    }
}

#[test]
fn malformed_json_is_a_decoding_error() {
    let catalog = Tickets::commands();
    for bad in [
        &b""[..],
        b"{",
        b"{\"ticketId\":",
        b"{\"ticketId\":\"t\",}",
        b"{} {}",
    ] {
        assert!(
            matches!(
                catalog.decode("CloseTicket", None, bad),
                Err(CommandError::InvalidPayload { .. })
            ),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn duplicate_field_is_a_decoding_error() {
    let catalog = Tickets::commands();
    let bad = br#"{"ticketId":"a","ticketId":"b","resolution":"done"}"#;
    assert!(matches!(
        catalog.decode("CloseTicket", Some(1), bad),
        Err(CommandError::InvalidPayload { .. })
    ));
}

#[test]
fn unknown_command_is_a_decoding_error() {
    for name in ["DeleteTicket", "openTicket", "open_ticket", ""] {
        assert_eq!(
            decode_error::<Tickets>(name, None, json!({"ticketId": T})),
            CommandError::UnknownCommand { name: name.into() }
        );
    }
}

#[test]
fn unknown_version_is_a_decoding_error() {
    let cases: [(&str, u32, Vec<u32>); 6] = [
        ("OpenTicket", 0, vec![1, 2]),
        ("OpenTicket", 3, vec![1, 2]),
        ("AssignTicket", 2, vec![1]),
        ("AddComment", 2, vec![1]),
        ("CloseTicket", 0, vec![1]),
        ("ReopenTicket", 9, vec![1]),
    ];
    for (name, version, known) in cases {
        assert_eq!(
            decode_error::<Tickets>(name, Some(version), json!({"ticketId": T})),
            CommandError::UnknownVersion {
                name: name.into(),
                version,
                known
            }
        );
    }
}
