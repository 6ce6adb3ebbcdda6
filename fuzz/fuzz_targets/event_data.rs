//! Event bodies as they come back from the event log: the domain's `EventSet::decode`
//! (what the writer folds into state) and the server's `Event::from_recorded` (what reads
//! and live tails send). The first byte picks the event type, the next 8 the recorded
//! time, the rest is the body.
//!
//! Properties: neither panics; a decoded event encodes to a body that decodes equal, and
//! that encoding is a fixed point; the server passes the stored body through unchanged
//! (less surrounding whitespace) and its JSON reads back to the same event.

#![no_main]

use libfuzzer_sys::fuzz_target;
use uuid::Uuid;
use writ_domain::{EventDecodeError, EventSet};
use writ_engine::RecordedEvent;
use writ_server::problem::ProblemKind;
use writ_server::wire::Event;
use writ_tickets::TicketEvent;

fuzz_target!(|data: &[u8]| {
    let [kind, rest @ ..] = data else { return };
    let types = TicketEvent::EVENT_TYPES;
    let event_type = types
        .get(usize::from(*kind) % (types.len() + 1))
        .copied()
        .unwrap_or("TicketDeleted");
    let (recorded_at_ms, body) = match rest.split_first_chunk::<8>() {
        Some((time, body)) => (u64::from_le_bytes(*time), body),
        None => (0, rest),
    };

    match TicketEvent::decode(event_type, body) {
        Ok(event) => {
            assert_eq!(event.event_type(), event_type);
            let mut encoded = Vec::new();
            event.encode_data(&mut encoded).unwrap();
            let again =
                TicketEvent::decode(event_type, &encoded).expect("an encoded event decodes");
            assert_eq!(again, event);
            let mut twice = Vec::new();
            again.encode_data(&mut twice).unwrap();
            assert_eq!(twice, encoded);
        }
        Err(EventDecodeError::UnknownType { .. }) => assert!(!types.contains(&event_type)),
        Err(EventDecodeError::InvalidData { .. }) => assert!(types.contains(&event_type)),
        Err(other) => panic!("a new kind of EventDecodeError: {other}; teach the fuzz target"),
    }

    let recorded = RecordedEvent {
        position: 7,
        stream: "ticket-t-1".to_owned(),
        version: 3,
        event_type: event_type.to_owned(),
        data: body.to_vec(),
        command_id: Uuid::nil(),
        correlation_id: Uuid::nil(),
        recorded_at_ms,
        schema_version: 1,
        recorded_schema_version: 1,
    };
    match Event::from_recorded(recorded) {
        Ok(event) => {
            let text = std::str::from_utf8(body).expect("JSON data is UTF-8");
            let json_whitespace = |c| matches!(c, ' ' | '\t' | '\n' | '\r');
            assert_eq!(event.data.get(), text.trim_matches(json_whitespace));
            let wire = serde_json::to_string(&event).unwrap();
            let back: Event = serde_json::from_str(&wire).expect("the wire form reads back");
            assert_eq!(back.data.get(), event.data.get());
            assert_eq!(back.metadata, event.metadata);
            assert_eq!(back.event_type, event_type);
            let at = &event.metadata.recorded_at;
            assert!(at.len() >= 24 && at.ends_with('Z'), "{at}");
        }
        Err(error) => {
            assert_eq!(error.kind, ProblemKind::Internal);
            let json = std::str::from_utf8(body)
                .ok()
                .and_then(|text| serde_json::from_str::<&serde_json::value::RawValue>(text).ok());
            assert!(json.is_none(), "refused JSON data");
        }
    }
});
