//! The engine's record decoder on arbitrary and damaged bytes (the fuzz target
//! `engine_records` runs the same properties for longer).

use proptest::prelude::*;
use uuid::Uuid;
use writ_engine::record::{
    CommitStatus, JournalRecord, Origin, RecordEvent, RecordTimerOp, ScheduledCommand,
};

fn reencodes_identically(data: &[u8]) {
    if let Ok(record) = JournalRecord::decode(data) {
        let mut again = Vec::new();
        record.encode(&mut again);
        assert_eq!(again, data);
    }
}

fn record_bytes(events: &[(String, u64, String, Vec<u8>)], seq: u64, timers: usize) -> Vec<u8> {
    let record = JournalRecord {
        id: Uuid::from_u128(u128::from(seq) * 7),
        correlation_id: Uuid::from_u128(u128::from(seq) * 7),
        causation_id: None,
        origin: Origin::Client,
        recorded_at_ms: 1_700_000_000_000 + seq,
        name: "Add",
        version: 1,
        expected_version: seq.is_multiple_of(2).then_some(seq),
        payload: br#"{"counterId":"c"}"#,
        status: CommitStatus::Succeeded,
        first_position: seq + 1,
        events: events
            .iter()
            .map(|(stream, version, event_type, data)| RecordEvent {
                stream,
                version: *version,
                event_type,
                data,
            })
            .collect(),
        code: "",
        message: "",
        details: b"",
        timers: (0..timers)
            .map(|i| {
                if i.is_multiple_of(2) {
                    RecordTimerOp::Schedule {
                        process: "reminders",
                        key: "counter-1",
                        at_ms: seq,
                        command: ScheduledCommand {
                            id: Uuid::from_u128(i as u128),
                            name: "CloseCounter",
                            version: None,
                            expected_version: None,
                            payload: br#"{"counterId":"1"}"#,
                        },
                    }
                } else {
                    RecordTimerOp::Cancel {
                        process: "reminders",
                        key: "counter-1",
                    }
                }
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
    fn the_decoder_never_panics_and_reencodes_identically(data in prop::collection::vec(any::<u8>(), 0..300)) {
        reencodes_identically(&data);
    }

    #[test]
    fn damaged_records_never_panic(
        events in prop::collection::vec(("[a-z-]{1,12}", 1u64..99, "[A-Za-z]{1,12}", prop::collection::vec(any::<u8>(), 0..40)), 0..4),
        seq in 0u64..1000,
        timers in 0usize..3,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let bytes = record_bytes(&events, seq, timers);
        let decoded = JournalRecord::decode(&bytes).expect("an encoded record decodes");
        prop_assert_eq!(decoded.events.len(), events.len());
        prop_assert_eq!(decoded.timers.len(), timers);
        let mut damaged = bytes.clone();
        for (at, value) in flips {
            let i = at.index(damaged.len());
            damaged[i] ^= value;
        }
        reencodes_identically(&damaged);
        reencodes_identically(&bytes[..cut.index(bytes.len() + 1)]);
    }
}
