//! The engine's record decoders on arbitrary and damaged bytes (the fuzz target
//! `engine_records` runs the same properties for longer).

use proptest::prelude::*;
use uuid::Uuid;
use writ_engine::record::{CommandRecord, CommitEvent, CommitRecord, CommitStatus};

fn reencodes_identically(data: &[u8]) {
    if let Ok(record) = CommandRecord::decode(data) {
        let mut again = Vec::new();
        record.encode(&mut again);
        assert_eq!(again, data);
    }
    if let Ok(record) = CommitRecord::decode(data) {
        let mut again = Vec::new();
        record.encode(&mut again);
        assert_eq!(again, data);
    }
}

fn commit_bytes(events: &[(String, u64, String, Vec<u8>)], seq: u64) -> Vec<u8> {
    let record = CommitRecord {
        command_id: Uuid::from_u128(u128::from(seq) * 7),
        command_seq: seq,
        recorded_at_ms: 1_700_000_000_000 + seq,
        command: "AddComment",
        status: CommitStatus::Succeeded,
        first_position: seq + 1,
        code: "",
        message: "",
        events: events
            .iter()
            .map(|(stream, version, event_type, data)| CommitEvent {
                stream,
                version: *version,
                event_type,
                data,
            })
            .collect(),
    };
    let mut bytes = Vec::new();
    record.encode(&mut bytes);
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn decoders_never_panic_and_reencode_identically(data in prop::collection::vec(any::<u8>(), 0..300)) {
        reencodes_identically(&data);
    }

    #[test]
    fn damaged_commit_records_never_panic(
        events in prop::collection::vec(("[a-z-]{1,12}", 1u64..99, "[A-Za-z]{1,12}", prop::collection::vec(any::<u8>(), 0..40)), 0..4),
        seq in 0u64..1000,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let bytes = commit_bytes(&events, seq);
        let decoded = CommitRecord::decode(&bytes).expect("an encoded commit decodes");
        prop_assert_eq!(decoded.events.len(), events.len());
        let mut damaged = bytes.clone();
        for (at, value) in flips {
            let i = at.index(damaged.len());
            damaged[i] ^= value;
        }
        reencodes_identically(&damaged);
        reencodes_identically(&bytes[..cut.index(bytes.len() + 1)]);
    }
}
