//! The read model's queries as given/when/then tables, and its indexes against a
//! brute-force scan on random events.

use std::collections::BTreeSet;

use proptest::prelude::*;
use serde_json::{Value, json};
use uuid::Uuid;
use writ_domain::EventSet;
use writ_query::{Budget, Projection, QueryError, RecordedEvent, Replay, Snapshot};

use super::*;
use crate::{
    CommentAdded, Priority, TicketAssigned, TicketClosed, TicketEvent, TicketId, TicketOpened,
    TicketReopened, stream_name,
};

// ----- the given/when/then kit -----

/// 2026-12-24T18:34:00.000Z; event `p` is recorded `p` seconds later.
const T0_MS: u64 = 1_798_137_240_000;

fn at(position: u64) -> String {
    format!("2026-12-24T18:34:{position:02}.000Z")
}

fn id(s: &str) -> TicketId {
    TicketId::new(s).unwrap()
}

fn opened(ticket: &str, title: &str, priority: Priority) -> TicketEvent {
    TicketEvent::TicketOpened(TicketOpened {
        ticket_id: id(ticket),
        title: title.into(),
        description: None,
        reporter: "ann".into(),
        priority,
    })
}

fn assigned(ticket: &str, assignee: &str) -> TicketEvent {
    TicketEvent::TicketAssigned(TicketAssigned {
        ticket_id: id(ticket),
        assignee: assignee.into(),
    })
}

fn commented(ticket: &str, comment: u128, author: &str, text: &str) -> TicketEvent {
    TicketEvent::CommentAdded(CommentAdded {
        ticket_id: id(ticket),
        comment_id: Uuid::from_u128(comment),
        author: author.into(),
        text: text.into(),
    })
}

fn closed(ticket: &str, resolution: &str) -> TicketEvent {
    TicketEvent::TicketClosed(TicketClosed {
        ticket_id: id(ticket),
        resolution: resolution.into(),
    })
}

fn reopened(ticket: &str, reason: &str) -> TicketEvent {
    TicketEvent::TicketReopened(TicketReopened {
        ticket_id: id(ticket),
        reason: reason.into(),
    })
}

fn ticket_of(event: &TicketEvent) -> &TicketId {
    match event {
        TicketEvent::TicketOpened(e) => &e.ticket_id,
        TicketEvent::TicketAssigned(e) => &e.ticket_id,
        TicketEvent::CommentAdded(e) => &e.ticket_id,
        TicketEvent::TicketClosed(e) => &e.ticket_id,
        TicketEvent::TicketReopened(e) => &e.ticket_id,
    }
}

/// The events as the log records them: positions from 1, one second apart.
fn recorded(events: &[TicketEvent]) -> Vec<RecordedEvent> {
    events
        .iter()
        .enumerate()
        .map(|(i, event)| {
            let position = i as u64 + 1;
            let mut data = Vec::new();
            event.encode_data(&mut data).unwrap();
            RecordedEvent {
                position,
                stream: stream_name(ticket_of(event)),
                version: 0, // not read by the projection
                event_type: event.event_type().to_owned(),
                data,
                command_id: Uuid::from_u128(u128::from(position)),
                correlation_id: Uuid::from_u128(u128::from(position)),
                recorded_at_ms: T0_MS + position * 1000,
                schema_version: 1,
                recorded_schema_version: 1,
            }
        })
        .collect()
}

fn build(events: &[TicketEvent], projection_version: u32) -> Snapshot<TicketsView> {
    let mut replay = Replay::new(TicketsProjection::with_version(projection_version).unwrap());
    replay.apply(&recorded(events));
    assert_eq!(replay.stats().errors, 0, "{:?}", replay.stats().last_error);
    replay.snapshot()
}

struct Given(Snapshot<TicketsView>);

fn given(events: &[TicketEvent]) -> Given {
    Given(build(events, TicketsProjection::CURRENT_VERSION))
}

impl Given {
    fn when(&self, version: u32, query: &str, args: Value) -> Result<Value, QueryError> {
        let args = args.as_object().expect("arguments are an object").clone();
        catalog().call(version, query, &self.0, args)
    }
}

#[track_caller]
fn then_error(result: Result<Value, QueryError>, code: &str) {
    match result {
        Err(e) => assert_eq!(e.code(), code, "{e}"),
        Ok(v) => panic!("expected {code}, got {v}"),
    }
}

fn ids(items: &Value) -> Vec<&str> {
    items
        .as_array()
        .expect("an array of tickets")
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect()
}

// ----- getTicket -----

#[test]
fn get_ticket_v1_is_the_ticket_with_its_comments() {
    let given = given(&[
        opened("t-1", "Printer on fire", Priority::High),
        assigned("t-1", "bob"),
        commented("t-1", 7, "bob", "On it"),
    ]);
    let v1 = given.when(1, "getTicket", json!({"id": "t-1"})).unwrap();
    assert_eq!(
        v1,
        json!({
            "id": "t-1", "title": "Printer on fire", "description": null, "reporter": "ann",
            "priority": "high", "status": "open", "assignee": "bob", "commentCount": 1,
            "createdAt": at(1), "createdPosition": 1, "updatedAt": at(3), "updatedPosition": 3,
            "comments": [{"id": "00000000-0000-0000-0000-000000000007", "author": "bob",
                          "text": "On it", "position": 3, "recordedAt": at(3)}],
        })
    );
}

#[test]
fn get_ticket_v2_adds_the_status_history() {
    let given = given(&[
        opened("t-1", "Printer on fire", Priority::Normal),
        closed("t-1", "fixed"),
        reopened("t-1", "on fire again"),
    ]);
    let v2 = given.when(2, "getTicket", json!({"id": "t-1"})).unwrap();
    assert_eq!(
        v2["history"],
        json!([
            {"status": "open", "at": at(1), "position": 1},
            {"status": "closed", "at": at(2), "position": 2, "resolution": "fixed"},
            {"status": "open", "at": at(3), "position": 3, "reason": "on fire again"},
        ])
    );
    let mut v1 = given.when(1, "getTicket", json!({"id": "t-1"})).unwrap();
    assert!(v1.get("history").is_none());
    // v1 is v2 without the history, field for field.
    let mut v2 = v2;
    v2.as_object_mut().unwrap().remove("history");
    v1.as_object_mut().unwrap().sort_keys();
    v2.as_object_mut().unwrap().sort_keys();
    assert_eq!(v1, v2);
}

#[test]
fn get_ticket_from_query_code_stops_at_the_budget() {
    let mut events = vec![opened("t-1", "Chatty", Priority::Normal)];
    events.extend((0..1_000).map(|n| commented("t-1", n, "bob", "me too")));
    let given = given(&events);
    let args = json!({"id": "t-1"}).as_object().unwrap().clone();
    let call = |budget: &Budget| {
        catalog().call_within(2, "getTicket", &given.0, args.clone(), Some(budget))
    };
    // A thousand comments of about 150 bytes of JSON each.
    let small = Budget::new(10_000, None);
    then_error(call(&small), "over_budget");
    assert!(
        small.spent() < 11_000,
        "it stopped at the budget: {}",
        small.spent()
    );
    let ample = Budget::new(1 << 20, None);
    let ticket = call(&ample).unwrap();
    assert_eq!(ticket["comments"].as_array().unwrap().len(), 1_000);
    // The charge estimates the answer's JSON.
    let json = ticket.to_string().len();
    assert!(
        (json / 2..json * 2).contains(&ample.spent()),
        "{} for {json}",
        ample.spent()
    );
}

#[test]
fn get_ticket_refusals() {
    let given = given(&[opened("t-1", "A", Priority::Normal)]);
    for version in [1, 2] {
        then_error(
            given.when(version, "getTicket", json!({"id": "t-2"})),
            "not_found",
        );
        then_error(given.when(version, "getTicket", json!({})), "bad_argument");
        then_error(
            given.when(version, "getTicket", json!({"id": 1})),
            "bad_argument",
        );
        then_error(
            given.when(version, "getTicket", json!({"id": "t-1", "x": 1})),
            "bad_argument",
        );
        then_error(
            given.when(version, "getTickets", json!({})),
            "unknown_query",
        );
    }
    then_error(
        given.when(3, "getTicket", json!({"id": "t-1"})),
        "unknown_version",
    );
}

// ----- searchTickets -----

fn five_tickets() -> Given {
    given(&[
        opened("t-1", "Printer on fire", Priority::High),
        opened("t-2", "Network down", Priority::Urgent),
        opened("t-3", "Printer jams", Priority::Low),
        opened("t-4", "Coffee machine", Priority::Normal),
        opened("t-5", "Printer offline", Priority::High),
        assigned("t-1", "bob"),
        assigned("t-3", "bob"),
        assigned("t-3", "cy"),
        commented("t-3", 1, "cy", "paper is ON FIRE now"),
        closed("t-2", "rebooted"),
        closed("t-5", "duplicate"),
    ])
}

#[test]
fn search_tickets_filters_table() {
    let given = five_tickets();
    let cases: &[(Value, &[&str])] = &[
        (json!({}), &["t-1", "t-2", "t-3", "t-4", "t-5"]),
        (json!({"status": "open"}), &["t-1", "t-3", "t-4"]),
        (json!({"status": "closed"}), &["t-2", "t-5"]),
        (json!({"priority": "high"}), &["t-1", "t-5"]),
        (json!({"priority": "high", "status": "open"}), &["t-1"]),
        // Reassigned: bob no longer holds t-3.
        (json!({"assignee": "bob"}), &["t-1"]),
        (json!({"assignee": "cy"}), &["t-3"]),
        (json!({"assignee": "zed"}), &[]),
        (json!({"text": "printer"}), &["t-1", "t-3", "t-5"]),
        // Tokens match across title and comments, case-insensitively.
        (json!({"text": "PRINTER fire!"}), &["t-1", "t-3"]),
        (json!({"text": "printer fire", "assignee": "cy"}), &["t-3"]),
        (json!({"text": "printers"}), &[]),
        // No tokens, empty values: no filter.
        (
            json!({"text": "?!", "status": "", "priority": ""}),
            &["t-1", "t-2", "t-3", "t-4", "t-5"],
        ),
        (json!({"limit": 2}), &["t-1", "t-2"]),
        (json!({"limit": "2", "status": "open"}), &["t-1", "t-3"]),
        (json!({"limit": 0}), &[]),
    ];
    for (args, expected) in cases {
        let v1 = given.when(1, "searchTickets", args.clone()).unwrap();
        assert_eq!(ids(&v1), *expected, "v1 {args}");
        let v2 = given.when(2, "searchTickets", args.clone()).unwrap();
        assert_eq!(ids(&v2["items"]), *expected, "v2 {args}");
        // v1's items are v2's items.
        assert_eq!(v1, v2["items"], "{args}");
    }
}

#[test]
fn search_tickets_items_are_summaries() {
    let v1 = five_tickets()
        .when(1, "searchTickets", json!({"assignee": "cy"}))
        .unwrap();
    assert_eq!(
        v1,
        json!([{
            "id": "t-3", "title": "Printer jams", "description": null, "reporter": "ann",
            "priority": "low", "status": "open", "assignee": "cy", "commentCount": 1,
            "createdAt": at(3), "createdPosition": 3, "updatedAt": at(9), "updatedPosition": 9,
        }])
    );
}

#[test]
fn search_tickets_v2_pages_with_a_cursor() {
    let given = five_tickets();
    let mut pages = Vec::new();
    let mut args = json!({"limit": 2});
    loop {
        let page = given.when(2, "searchTickets", args.clone()).unwrap();
        assert_eq!(page["total"], 5);
        pages.push(ids(&page["items"]).join(","));
        match &page["cursor"] {
            Value::Null => break,
            cursor => args = json!({"limit": 2, "cursor": cursor}),
        }
    }
    assert_eq!(pages, ["t-1,t-2", "t-3,t-4", "t-5"]);
    let open = given
        .when(2, "searchTickets", json!({"status": "open", "limit": 1}))
        .unwrap();
    assert_eq!(open["total"], 3);
    assert_eq!(ids(&open["items"]), ["t-1"]);
    let exact = given
        .when(2, "searchTickets", json!({"status": "closed", "limit": 2}))
        .unwrap();
    assert_eq!(exact["cursor"], Value::Null, "no page after the last match");
}

#[test]
fn search_tickets_refusals() {
    let given = five_tickets();
    for version in [1, 2] {
        for args in [
            json!({"status": "pending"}),
            json!({"priority": "whenever"}),
            json!({"limit": 1001}),
            json!({"limit": -1}),
            json!({"limit": "ten"}),
            json!({"assignee": 3}),
            json!({"sort": "id"}),
        ] {
            then_error(given.when(version, "searchTickets", args), "bad_argument");
        }
    }
    // Version 1 has no cursor.
    then_error(
        given.when(1, "searchTickets", json!({"cursor": "1"})),
        "bad_argument",
    );
    for cursor in ["zz", "+7", "-1", "10000000000000000", "７"] {
        then_error(
            given.when(2, "searchTickets", json!({"cursor": cursor})),
            "bad_argument",
        );
    }
    assert_eq!(
        ids(&given
            .when(2, "searchTickets", json!({"limit": 1000}))
            .unwrap()["items"])
        .len(),
        5
    );
}

// ----- ticketStats -----

#[test]
fn ticket_stats_v1_and_v2() {
    let given = five_tickets();
    assert_eq!(
        given.when(1, "ticketStats", json!({})).unwrap(),
        json!({"open": 3, "closed": 2, "total": 5})
    );
    assert_eq!(
        given.when(2, "ticketStats", json!({})).unwrap(),
        json!({"open": 3, "closed": 2, "total": 5,
               "byPriority": {"low": 1, "normal": 1, "high": 2, "urgent": 1}})
    );
    then_error(
        given.when(1, "ticketStats", json!({"x": 1})),
        "bad_argument",
    );
    assert_eq!(
        given.when(1, "ticketStats", json!({})).unwrap(),
        given
            .when(1, "ticketStats", Value::Object(Default::default()))
            .unwrap()
    );
}

// ----- structures -----

#[test]
fn projection_version_1_answers_v1_only() {
    let events = [
        opened("t-1", "Printer on fire", Priority::High),
        closed("t-1", "fixed"),
        commented("t-1", 1, "bob", "thanks"),
    ];
    let old = build(&events, 1);
    let new = build(&events, 2);
    assert!(old.state.ticket("t-1").unwrap().history.is_empty());
    let catalog = catalog();
    for (query, args) in [
        ("getTicket", json!({"id": "t-1"})),
        ("searchTickets", json!({"text": "thanks"})),
        ("ticketStats", json!({})),
    ] {
        let args = args.as_object().unwrap().clone();
        assert_eq!(
            catalog.call(1, query, &old, args.clone()).unwrap(),
            catalog.call(1, query, &new, args.clone()).unwrap(),
            "v1 {query} reads either structure alike"
        );
        let err = catalog.call(2, query, &old, args).unwrap_err();
        assert!(
            matches!(
                err,
                QueryError::Unavailable {
                    version: 2,
                    needs: 2,
                    ..
                }
            ),
            "{err}"
        );
    }
}

#[test]
fn bad_events_are_refused_without_changing_the_view() {
    let mut replay = Replay::new(TicketsProjection::current());
    let mut events = recorded(&[
        opened("t-1", "A", Priority::Normal),
        commented("t-9", 1, "bob", "who?"),
        opened("t-1", "again", Priority::Low),
        assigned("t-1", "bob"),
    ]);
    events.push(RecordedEvent {
        position: 5,
        event_type: "TicketAssigned".into(),
        data: br#"{"ticketId":"t-1"}"#.to_vec(),
        ..events[3].clone()
    });
    replay.apply(&events);
    let stats = replay.stats();
    assert_eq!((stats.events_applied, stats.errors), (2, 3));
    assert_eq!(stats.last_error.as_ref().unwrap().position, 5);
    let view = replay.state();
    let ticket = view.ticket("t-1").unwrap();
    assert_eq!(
        (&*ticket.title, ticket.priority, ticket.assignee.as_deref()),
        ("A", Priority::Normal, Some("bob"))
    );
    assert!(view.ticket("t-9").is_none());
    assert_eq!(view.len(), 1);
}

// ----- indexes against a brute-force scan -----

const WORDS: [&str; 8] = [
    "printer", "Fire", "FIRE!", "café", "Café", "network", "x-1", "down",
];
const PEOPLE: [&str; 3] = ["ann", "bob", "cy"];

#[derive(Debug, Clone)]
enum Op {
    Open(u8, Vec<u8>, u8),
    Assign(u8, u8),
    Comment(u8, Vec<u8>),
    Close(u8),
    Reopen(u8),
}

fn words(indexes: &[u8]) -> String {
    indexes
        .iter()
        .map(|i| WORDS[*i as usize % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

fn ticket_name(n: u8) -> String {
    format!("t-{}", n % 12)
}

fn op_event(op: &Op, n: usize) -> TicketEvent {
    match op {
        Op::Open(t, title, p) => opened(
            &ticket_name(*t),
            &format!("{} {}", words(title), n),
            PRIORITIES[*p as usize % 4],
        ),
        Op::Assign(t, who) => assigned(&ticket_name(*t), PEOPLE[*who as usize % 3]),
        Op::Comment(t, text) => commented(&ticket_name(*t), n as u128, "ann", &words(text)),
        Op::Close(t) => closed(&ticket_name(*t), "done"),
        Op::Reopen(t) => reopened(&ticket_name(*t), "again"),
    }
}

fn op() -> impl Strategy<Value = Op> {
    let text = prop::collection::vec(any::<u8>(), 0..4);
    prop_oneof![
        (any::<u8>(), text.clone(), any::<u8>()).prop_map(|(t, w, p)| Op::Open(t, w, p)),
        (any::<u8>(), any::<u8>()).prop_map(|(t, w)| Op::Assign(t, w)),
        (any::<u8>(), text).prop_map(|(t, w)| Op::Comment(t, w)),
        any::<u8>().prop_map(Op::Close),
        any::<u8>().prop_map(Op::Reopen),
    ]
}

fn filter() -> impl Strategy<Value = TicketFilter> {
    (
        prop::option::of(prop::sample::select(Status::ALL.to_vec())),
        prop::option::of(prop::sample::select(vec!["ann", "bob", "cy", "zed"])),
        prop::option::of(prop::sample::select(PRIORITIES.to_vec())),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..3)),
    )
        .prop_map(|(status, assignee, priority, text)| TicketFilter {
            status,
            assignee: assignee.map(str::to_owned),
            priority,
            text: text.map(|w| words(&w)),
        })
}

/// Whether a ticket matches, by looking at the ticket only.
fn brute_force_match(ticket: &Ticket, filter: &TicketFilter) -> bool {
    let mut text: BTreeSet<String> = tokens(&ticket.title).map(|t| t.into_owned()).collect();
    for comment in &ticket.comments {
        text.extend(tokens(&comment.text).map(|t| t.into_owned()));
    }
    filter.status.is_none_or(|s| ticket.status == s)
        && filter.priority.is_none_or(|p| ticket.priority == p)
        && filter
            .assignee
            .as_deref()
            .is_none_or(|a| ticket.assignee.as_deref() == Some(a))
        && filter
            .text
            .as_deref()
            .is_none_or(|q| tokens(q).all(|t| text.contains(t.as_ref())))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn indexes_agree_with_a_brute_force_scan(
        ops in prop::collection::vec(op(), 0..80),
        filters in prop::collection::vec(filter(), 1..8),
        page in 1usize..4,
    ) {
        let events: Vec<_> = ops.iter().enumerate().map(|(n, op)| op_event(op, n)).collect();
        let mut replay = Replay::new(TicketsProjection::current());
        replay.apply(&recorded(&events));
        let view = replay.state();

        for status in Status::ALL {
            prop_assert_eq!(view.count(status), view.tickets().filter(|t| t.status == status).count());
        }
        for priority in PRIORITIES {
            prop_assert_eq!(
                view.count_priority(priority),
                view.tickets().filter(|t| t.priority == priority).count()
            );
        }
        prop_assert!(
            view.tickets().zip(view.tickets().skip(1)).all(|(a, b)| a.created.position < b.created.position),
            "tickets are listed in creation order"
        );
        for filter in &filters {
            let expected: Vec<&str> = view
                .tickets()
                .filter(|t| brute_force_match(t, filter))
                .map(|t| &*t.id)
                .collect();
            let all = view.search(filter, None, usize::MAX);
            prop_assert_eq!(all.items.iter().map(|t| &*t.id).collect::<Vec<_>>(), expected.clone());
            prop_assert_eq!(all.total, expected.len());
            prop_assert_eq!(all.next_after, None);

            // Paging through gives the same list.
            let mut paged = Vec::new();
            let mut after: Option<u64> = None;
            loop {
                let result = view.search(filter, after, page);
                prop_assert_eq!(result.total, expected.len());
                paged.extend(result.items.iter().map(|t| t.id.to_string()));
                match result.next_after {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            prop_assert_eq!(paged, expected.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        }
    }
}

#[test]
fn search_tickets_lists_in_creation_order_and_new_tickets_come_last() {
    let mut events = vec![
        opened("zebra", "Z", Priority::Normal),
        opened("apple", "A", Priority::Normal),
        opened("mango", "M", Priority::Normal),
    ];
    let before = given(&events);
    let first = before
        .when(2, "searchTickets", json!({"limit": 2}))
        .unwrap();
    assert_eq!(ids(&first["items"]), ["zebra", "apple"]);
    // A ticket opened between two pages, whatever its id, shows up on a later page.
    events.push(opened("aardvark", "AA", Priority::Normal));
    let after = given(&events);
    let rest = after
        .when(
            2,
            "searchTickets",
            json!({"limit": 2, "cursor": first["cursor"]}),
        )
        .unwrap();
    assert_eq!(ids(&rest["items"]), ["mango", "aardvark"]);
    assert_eq!(rest["total"], 4);
}

// ----- snapshots -----

/// `view` saved and loaded again by `projection`.
fn saved_and_loaded(
    projection: TicketsProjection,
    view: &TicketsView,
) -> Result<TicketsView, writ_query::snapshot::SnapshotError> {
    let mut out = writ_query::snapshot::Writer::new();
    projection.save(view, &mut out);
    let bytes = out.into_vec();
    let mut input = writ_query::snapshot::Reader::new(&bytes);
    let loaded = projection.load(&mut input)?;
    input.finish()?;
    Ok(loaded)
}

/// Every query of every version on `snapshot`, with a few arguments each, as JSON.
fn every_answer(snapshot: &Snapshot<TicketsView>, filters: &[TicketFilter]) -> Vec<Value> {
    let catalog = catalog();
    let mut answers = Vec::new();
    for version in catalog.versions() {
        let call = |query: &str, args: Value| {
            let args = args.as_object().unwrap().clone();
            catalog
                .call(version, query, snapshot, args)
                .unwrap_or_else(|e| json!({"error": e.to_string()}))
        };
        answers.push(call("ticketStats", json!({})));
        for ticket in snapshot.state.tickets() {
            answers.push(call("getTicket", json!({"id": &*ticket.id})));
        }
        for filter in filters {
            let mut args = json!({"limit": "2"});
            if let Some(status) = filter.status {
                args["status"] = json!(status.as_str());
            }
            if let Some(assignee) = &filter.assignee {
                args["assignee"] = json!(assignee);
            }
            if let Some(priority) = filter.priority {
                args["priority"] = json!(priority_name(priority));
            }
            if let Some(text) = &filter.text {
                args["text"] = json!(text);
            }
            let first = call("searchTickets", args.clone());
            if let Some(cursor) = first.get("cursor").filter(|c| !c.is_null()) {
                args["cursor"] = cursor.clone();
                answers.push(call("searchTickets", args));
            }
            answers.push(first);
        }
    }
    answers
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_view_loaded_from_its_snapshot_answers_every_query_as_the_replayed_one(
        ops in prop::collection::vec(op(), 0..80),
        more in prop::collection::vec(op(), 0..20),
        filters in prop::collection::vec(filter(), 1..6),
        version in 1u32..=2,
    ) {
        let projection = TicketsProjection::with_version(version).unwrap();
        let events: Vec<_> = ops.iter().chain(&more).enumerate().map(|(n, op)| op_event(op, n)).collect();
        let recorded = recorded(&events);
        let (before, after) = recorded.split_at(ops.len());
        let mut replay = Replay::new(projection);
        replay.apply(before);
        let loaded = saved_and_loaded(projection, replay.state())?;
        prop_assert!(&loaded == replay.state());
        let snapshot = |state: &TicketsView, position| Snapshot {
            state: state.clone(),
            position,
            root: projection.root(),
        };
        prop_assert_eq!(
            every_answer(&snapshot(&loaded, replay.position()), &filters),
            every_answer(&replay.snapshot(), &filters)
        );
        // It goes on from there as the replay does.
        let mut resumed = Replay::resume(projection, loaded, replay.position());
        resumed.apply(after);
        replay.apply(after);
        prop_assert!(resumed.state() == replay.state());
        prop_assert_eq!(
            every_answer(&resumed.snapshot(), &filters),
            every_answer(&replay.snapshot(), &filters)
        );
    }

    #[test]
    fn any_bytes_fail_or_load_a_view_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = TicketsProjection::current().load(&mut writ_query::snapshot::Reader::new(&bytes));
    }
}

#[test]
fn a_snapshot_of_one_projection_version_does_not_load_as_the_other() {
    let events = recorded(&[
        opened("t-1", "Printer on fire", Priority::High),
        closed("t-1", "fixed"),
    ]);
    let v1 = TicketsProjection::with_version(1).unwrap();
    let mut replay = Replay::new(v1);
    replay.apply(&events);
    let mut out = writ_query::snapshot::Writer::new();
    v1.save(replay.state(), &mut out);
    let bytes = out.into_vec();
    let error = TicketsProjection::current()
        .load(&mut writ_query::snapshot::Reader::new(&bytes))
        .unwrap_err();
    assert!(
        error.to_string().contains("another projection version"),
        "{error}"
    );
    // And a cut one does not load at all.
    for len in 0..bytes.len() {
        let mut input = writ_query::snapshot::Reader::new(&bytes[..len]);
        assert!(
            v1.load(&mut input).is_err() || input.finish().is_err(),
            "cut at {len}"
        );
    }
}
