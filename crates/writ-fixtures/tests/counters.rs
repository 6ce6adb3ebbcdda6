//! The fixture's rules and read model, so that the core crates' tests can rely on them.

use serde_json::{Map, Value, json};
use writ_domain::testing::{DEFAULT_ENVELOPE, decode_error, given, given_streams};
use writ_domain::{Domain, EventSet};
use writ_fixtures::read::{CountersProjection, catalog};
use writ_fixtures::{
    Added, CounterClosed, CounterCreated, CounterEvent, CounterReopened, Counters, codes,
};
use writ_query::{QueryError, RecordedEvent, Replay};

fn created(id: &str, start: u64) -> CounterEvent {
    CounterCreated {
        counter_id: id.into(),
        title: "Visitors".into(),
        owner: "ann".into(),
        start,
    }
    .into()
}

fn closed(id: &str) -> CounterEvent {
    CounterClosed {
        counter_id: id.into(),
        reason: Some("done".into()),
    }
    .into()
}

#[test]
fn the_catalog_has_create_counter_v1_and_v2_and_the_others_as_v1() {
    let infos: Vec<(&str, u32)> = Counters::commands()
        .infos()
        .map(|info| (info.name, info.version))
        .collect();
    assert_eq!(
        infos,
        [
            ("CreateCounter", 1),
            ("CreateCounter", 2),
            ("Add", 1),
            ("Transfer", 1),
            ("CloseCounter", 1),
            ("ReopenCounter", 1),
        ]
    );
    let v1 = json!({"counterId": "c-1", "title": "Visitors", "owner": "ann"});
    given::<Counters>([])
        .when_json("CreateCounter", Some(1), v1.clone())
        .then([created("c-1", 0)]);
    let mut with_start = v1;
    with_start["start"] = json!(7);
    decode_error::<Counters>("CreateCounter", Some(1), with_start.clone());
    given::<Counters>([])
        .when_json("CreateCounter", Some(2), with_start)
        .then([created("c-1", 7)]);
}

#[test]
fn every_rule_has_its_code() {
    let create = json!({"counterId": "c-1", "title": "T", "owner": "ann"});
    given::<Counters>([created("c-1", 0)])
        .when_json("CreateCounter", None, create)
        .then_rejected(codes::COUNTER_EXISTS);
    given::<Counters>([])
        .when_json(
            "CreateCounter",
            None,
            json!({"counterId": "c-1", "title": " \t", "owner": "ann"}),
        )
        .then_rejected(codes::TITLE_REQUIRED);
    let add = json!({"counterId": "c-1", "amount": 2});
    given::<Counters>([])
        .when_json("Add", None, add.clone())
        .then_rejected(codes::COUNTER_NOT_FOUND);
    given::<Counters>([created("c-1", 0), closed("c-1")])
        .when_json("Add", None, add.clone())
        .then_rejected(codes::COUNTER_CLOSED);
    given::<Counters>([created("c-1", u64::MAX - 1)])
        .when_json("Add", None, add.clone())
        .then_rejected(codes::OVERFLOW);
    given::<Counters>([created("c-1", 0)])
        .when_json("Add", None, add)
        .then([Added {
            counter_id: "c-1".into(),
            addition_id: DEFAULT_ENVELOPE.derive_id(0),
            amount: 2,
            note: None,
        }
        .into()]);
    let close = json!({"counterId": "c-1", "reason": "done"});
    given::<Counters>([created("c-1", 0), closed("c-1")])
        .when_json("CloseCounter", None, close.clone())
        .then_rejected(codes::COUNTER_CLOSED);
    given::<Counters>([created("c-1", 0)])
        .when_json("CloseCounter", None, close)
        .then([closed("c-1")]);
    let reopen = json!({"counterId": "c-1"});
    given::<Counters>([created("c-1", 0)])
        .when_json("ReopenCounter", None, reopen.clone())
        .then_rejected(codes::COUNTER_OPEN);
    given::<Counters>([created("c-1", 0), closed("c-1")])
        .when_json("ReopenCounter", None, reopen)
        .then([CounterReopened {
            counter_id: "c-1".into(),
        }
        .into()]);
}

#[test]
fn a_transfer_checks_both_counters() {
    let transfer = |amount: u64| json!({"counterId": "c-1", "to": "c-2", "amount": amount});
    let both = |from: Vec<CounterEvent>, to: Vec<CounterEvent>| {
        given_streams::<Counters>([("counter-c-1", from), ("counter-c-2", to)])
    };
    both(vec![], vec![created("c-2", 0)])
        .when_json("Transfer", None, transfer(1))
        .then_rejected(codes::COUNTER_NOT_FOUND);
    both(vec![created("c-1", 5)], vec![])
        .when_json("Transfer", None, transfer(1))
        .then_rejected(codes::COUNTER_NOT_FOUND);
    both(
        vec![created("c-1", 5)],
        vec![created("c-2", 0), closed("c-2")],
    )
    .when_json("Transfer", None, transfer(1))
    .then_rejected(codes::COUNTER_CLOSED);
    both(vec![created("c-1", 5)], vec![created("c-2", 0)])
        .when_json("Transfer", None, transfer(6))
        .then_rejected(codes::INSUFFICIENT);
    both(vec![created("c-1", 5)], vec![created("c-2", u64::MAX)])
        .when_json("Transfer", None, transfer(1))
        .then_rejected(codes::OVERFLOW);
    let events = both(vec![created("c-1", 5)], vec![created("c-2", 0)])
        .when_json("Transfer", None, transfer(5))
        .result_on()
        .unwrap();
    let streams: Vec<&str> = events.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(streams, ["counter-c-1", "counter-c-2"]);
}

fn recorded(events: &[CounterEvent]) -> Vec<RecordedEvent> {
    events
        .iter()
        .enumerate()
        .map(|(i, event)| {
            let mut data = Vec::new();
            event.encode_data(&mut data).unwrap();
            RecordedEvent {
                position: i as u64 + 1,
                stream: format!("counter-{}", event.counter_id()),
                version: 1,
                event_type: event.event_type().into(),
                data,
                recorded_at_ms: 1_000 * (i as u64 + 1),
                ..RecordedEvent::default()
            }
        })
        .collect()
}

fn args(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

#[test]
fn the_read_model_answers_both_query_versions() {
    let mut events = vec![created("c-1", 1), created("c-2", 0)];
    events.push(
        Added {
            counter_id: "c-1".into(),
            addition_id: Default::default(),
            amount: 4,
            note: Some("door".into()),
        }
        .into(),
    );
    events.push(closed("c-1"));
    events.push(
        CounterCreated {
            counter_id: "c-3".into(),
            title: "Coffees".into(),
            owner: "bob".into(),
            start: 0,
        }
        .into(),
    );
    let mut replay = Replay::new(CountersProjection::current());
    replay.apply(&recorded(&events));
    assert_eq!(replay.stats().errors, 0);
    let snapshot = replay.snapshot();
    let catalog = catalog();

    let v2 = catalog
        .call(2, "getCounter", &snapshot, args(json!({"id": "c-1"})))
        .unwrap();
    assert_eq!(
        (v2["value"].as_u64(), v2["additions"].as_u64()),
        (Some(5), Some(1))
    );
    assert_eq!(v2["status"], "closed");
    assert_eq!(v2["updatedPosition"], 4);
    assert_eq!(
        v2["history"],
        json!([
            {"status": "open", "at": "1970-01-01T00:00:01.000Z", "position": 1},
            {"status": "closed", "at": "1970-01-01T00:00:04.000Z", "position": 4, "reason": "done"},
        ])
    );
    let v1 = catalog
        .call(1, "getCounter", &snapshot, args(json!({"id": "c-1"})))
        .unwrap();
    let mut stripped = v2.clone();
    stripped.as_object_mut().unwrap().remove("history");
    assert_eq!(v1, stripped);
    assert!(matches!(
        catalog.call(1, "getCounter", &snapshot, args(json!({"id": "c-9"}))),
        Err(QueryError::NotFound { .. })
    ));

    let page = catalog
        .call(
            2,
            "listCounters",
            &snapshot,
            args(json!({"owner": "ann", "limit": 1})),
        )
        .unwrap();
    assert_eq!(
        (page["total"].as_u64(), &page["items"][0]["id"]),
        (Some(2), &json!("c-1"))
    );
    let rest = catalog
        .call(
            2,
            "listCounters",
            &snapshot,
            args(json!({"owner": "ann", "cursor": page["cursor"]})),
        )
        .unwrap();
    assert_eq!(
        (&rest["items"][0]["id"], &rest["cursor"]),
        (&json!("c-2"), &Value::Null)
    );
    let open = catalog
        .call(
            1,
            "listCounters",
            &snapshot,
            args(json!({"status": "open"})),
        )
        .unwrap();
    let ids: Vec<&str> = open
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["c-2", "c-3"]);
    assert!(matches!(
        catalog.call(
            1,
            "listCounters",
            &snapshot,
            args(json!({"status": "gone"}))
        ),
        Err(QueryError::BadArgument { .. })
    ));
    assert_eq!(
        catalog
            .call(2, "counterStats", &snapshot, Map::new())
            .unwrap(),
        json!({"open": 2, "closed": 1, "total": 3, "owners": 2})
    );
    assert_eq!(
        catalog
            .call(1, "counterStats", &snapshot, Map::new())
            .unwrap(),
        json!({"open": 2, "closed": 1, "total": 3})
    );

    // Version 1 of the projection keeps no history, and answers query API version 1 only.
    let mut old = Replay::new(CountersProjection::with_version(1).unwrap());
    old.apply(&recorded(&events));
    let old = old.snapshot();
    assert_eq!(
        catalog
            .call(1, "getCounter", &old, args(json!({"id": "c-1"})))
            .unwrap(),
        v1
    );
    assert!(matches!(
        catalog.call(2, "getCounter", &old, args(json!({"id": "c-1"}))),
        Err(QueryError::Unavailable { .. })
    ));
}
