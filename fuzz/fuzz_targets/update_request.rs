//! The command envelope as the server reads it: the body of `POST /update` and every
//! WebSocket text frame go through `UpdateRequest::parse`, then the domain's catalog.
//!
//! Properties: parsing never panics; its one-pass shortcut answers exactly as the
//! field-by-field reading does (`UpdateRequest::parse_by_field`), errors included; what
//! parses agrees with a generic JSON reading of the same bytes, and re-encodes to an
//! envelope that parses equal; the payload then decodes in the tickets catalog with the
//! properties of `writ_fuzz::check_command`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use uuid::Uuid;
use writ_server::wire::{MalformedUpdate, UpdateRequest};

/// The envelope as a client would write it.
#[derive(Serialize)]
struct Envelope<'a> {
    id: Uuid,
    command: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u32>,
    payload: &'a RawValue,
    #[serde(rename = "expectedVersion", skip_serializing_if = "Option::is_none")]
    expected_version: Option<u64>,
}

/// What a reading gave, comparable.
type Seen = Result<(Uuid, String, Option<u32>, String, Option<u64>), MalformedUpdate>;

fn seen(read: &Result<UpdateRequest<'_>, MalformedUpdate>) -> Seen {
    read.as_ref()
        .map(|r| {
            (
                r.id,
                r.command.to_string(),
                r.version,
                r.payload.get().to_owned(),
                r.expected_version,
            )
        })
        .map_err(Clone::clone)
}

fuzz_target!(|data: &[u8]| {
    let parsed = UpdateRequest::parse(data);
    assert_eq!(
        seen(&parsed),
        seen(&UpdateRequest::parse_by_field(data)),
        "the one-pass reading and the field-by-field one disagree"
    );
    let request = match parsed {
        Ok(request) => request,
        Err(malformed) => {
            assert!(!malformed.detail.is_empty());
            return;
        }
    };
    assert!(request.payload.get().starts_with('{'));
    assert!(request.version.is_none_or(|v| v >= 1));

    // A generic reading agrees (when it reads the bytes at all: it refuses numbers out of
    // the range of f64, which the envelope parser only skips over).
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        let id = value["id"].as_str().expect("the id is a string");
        assert_eq!(Uuid::parse_str(id).unwrap(), request.id);
        assert_eq!(value["command"].as_str(), Some(&*request.command));
        match &value["version"] {
            Value::Null => assert_eq!(request.version, None),
            version => assert_eq!(version.as_u64(), request.version.map(u64::from)),
        }
        let payload: Value = serde_json::from_str(request.payload.get()).unwrap();
        assert_eq!(value["payload"], payload);
        match &value["expectedVersion"] {
            Value::Null => assert_eq!(request.expected_version, None),
            expected => assert_eq!(expected.as_u64(), request.expected_version),
        }
    }

    // Re-encoded, it parses to the same request.
    let encoded = serde_json::to_vec(&Envelope {
        id: request.id,
        command: &request.command,
        version: request.version,
        payload: request.payload,
        expected_version: request.expected_version,
    })
    .unwrap();
    let again = UpdateRequest::parse(&encoded).expect("a re-encoded request parses");
    assert_eq!(again.id, request.id);
    assert_eq!(again.command, request.command);
    assert_eq!(again.version, request.version);
    assert_eq!(again.payload.get(), request.payload.get());
    assert_eq!(again.expected_version, request.expected_version);

    let payload = request.payload.get().as_bytes();
    writ_fuzz::check_command::<writ_tickets::Tickets>(
        writ_fuzz::tickets(),
        &request.command,
        request.version,
        payload,
    );
    writ_fuzz::check_command::<writ_orders::Orders>(
        writ_fuzz::orders(),
        &request.command,
        request.version,
        payload,
    );
});
