//! A read model snapshot file written by the first build of the format
//! (`tests/fixtures/tickets-v2-format1.snap`): every later build must decode its header and
//! load its state equal to the one a replay of the same events builds, or bump the
//! snapshot format (and keep this file, under a test that says it is ignored).
//!
//! `WRIT_WRITE_FIXTURES=1 cargo test -p writ-tickets --test snapshot_fixture` writes it
//! again; never do that for a format already released.

use serde_json::json;
use writ_query::snapshot::{Reader, SnapshotHeader, Writer};
use writ_query::{JournalMark, Projection, RecordedEvent, Replay, Snapshot};
use writ_tickets::read::{TicketsProjection, catalog, workload};

const FIXTURE: &str = "tests/fixtures/tickets-v2-format1.snap";

/// 30 tickets with 90 comments (the benchmark workload), then an assignment, a close and
/// a reopen.
fn events() -> Vec<RecordedEvent> {
    let mut events = workload::events(30, 90);
    for (event_type, ticket, data) in [
        (
            "TicketAssigned",
            "t-1",
            json!({"ticketId": "t-1", "assignee": "bob"}),
        ),
        (
            "TicketClosed",
            "t-2",
            json!({"ticketId": "t-2", "resolution": "fixed"}),
        ),
        (
            "TicketClosed",
            "t-3",
            json!({"ticketId": "t-3", "resolution": "dup"}),
        ),
        (
            "TicketReopened",
            "t-3",
            json!({"ticketId": "t-3", "reason": "not a dup"}),
        ),
    ] {
        let position = events.len() as u64 + 1;
        let stream = format!("ticket-{ticket}");
        let version = events.iter().filter(|e| e.stream == stream).count() as u64 + 1;
        events.push(RecordedEvent {
            position,
            stream,
            version,
            event_type: event_type.into(),
            data: serde_json::to_vec(&data).unwrap(),
            recorded_at_ms: 1_800_000_000_000 + position,
            schema_version: 1,
            recorded_schema_version: 1,
            ..RecordedEvent::default()
        });
    }
    events
}

#[test]
fn the_committed_snapshot_fixture_keeps_loading() {
    let projection = TicketsProjection::current();
    let mut replay = Replay::new(projection);
    replay.apply(&events());
    assert_eq!(replay.stats().errors, 0);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
    if std::env::var_os("WRIT_WRITE_FIXTURES").is_some() {
        let mut out = Writer::new();
        projection.save(replay.state(), &mut out);
        let file = SnapshotHeader {
            model: "tickets".into(),
            projection_version: 2,
            format: 1,
            build: "fixture".into(),
            position: replay.position(),
            journal: JournalMark([0x4a; JournalMark::BYTES]),
        }
        .encode(&out.into_vec());
        std::fs::write(&path, file).unwrap();
    }
    let file = std::fs::read(&path).unwrap();
    let (header, body) = SnapshotHeader::decode(&file).expect("the fixture decodes");
    assert_eq!(
        (
            header.model.as_str(),
            header.projection_version,
            header.format,
            header.build.as_str(),
            header.position
        ),
        ("tickets", 2, 1, "fixture", 124)
    );
    assert_eq!(header.journal, JournalMark([0x4a; JournalMark::BYTES]));
    assert_eq!(projection.snapshot_format(), Some(header.format));
    let mut input = Reader::new(body);
    let loaded = projection
        .load(&mut input)
        .expect("the fixture's state loads");
    input.finish().unwrap();
    assert!(&loaded == replay.state());

    let snapshot = Snapshot {
        state: loaded,
        position: header.position,
        root: projection.root(),
    };
    let catalog = catalog();
    let call = |version, name, args: serde_json::Value| {
        catalog
            .call(version, name, &snapshot, args.as_object().unwrap().clone())
            .unwrap()
    };
    assert_eq!(
        call(2, "ticketStats", json!({})),
        json!({"open": 29, "closed": 1, "total": 30,
               "byPriority": {"low": 0, "normal": 30, "high": 0, "urgent": 0}})
    );
    let ticket = call(2, "getTicket", json!({"id": "t-3"}));
    assert_eq!(ticket["commentCount"], 3);
    assert_eq!(ticket["history"].as_array().unwrap().len(), 3);
    let found = call(2, "searchTickets", json!({"text": "comment 2 ticket 7"}));
    assert_eq!(found["total"], 1);
    assert_eq!(
        call(1, "searchTickets", json!({"assignee": "bob"}))[0]["id"],
        "t-1"
    );
}
