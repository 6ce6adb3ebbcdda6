//! The engine's record decoder on arbitrary and damaged bytes (the fuzz target
//! `engine_records` runs the same properties for longer).

use proptest::prelude::*;
use uuid::Uuid;
use writ_engine::record::{
    CommitStatus, JournalRecord, Origin, RECORD_FORMAT_2, RecordEvent, RecordTimerOp,
    ScheduledCommand,
};

/// Whatever decodes encodes back to the very same bytes, in its own format (3, or 2 for
/// the records of builds before event schema versions).
fn reencodes_identically(data: &[u8]) {
    if let Ok(record) = JournalRecord::decode(data) {
        let mut again = Vec::new();
        if data[1] == RECORD_FORMAT_2 {
            assert!(record.events.iter().all(|e| e.schema_version == 1));
            record.encode_format_2(&mut again);
        } else {
            record.encode(&mut again);
        }
        assert_eq!(again, data);
    }
}

type Event = (String, u64, String, u32, Vec<u8>);

fn record_bytes(events: &[Event], seq: u64, timers: usize, format_2: bool) -> Vec<u8> {
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
            .map(
                |(stream, version, event_type, schema_version, data)| RecordEvent {
                    stream,
                    version: *version,
                    event_type,
                    schema_version: if format_2 { 1 } else { *schema_version },
                    data,
                },
            )
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
    if format_2 {
        record.encode_format_2(&mut bytes);
    } else {
        record.encode(&mut bytes);
    }
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
        events in prop::collection::vec(("[a-z-]{1,12}", 1u64..99, "[A-Za-z]{1,12}", 1u32..4, prop::collection::vec(any::<u8>(), 0..40)), 0..4),
        seq in 0u64..1000,
        timers in 0usize..3,
        format_2 in any::<bool>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let bytes = record_bytes(&events, seq, timers, format_2);
        let decoded = JournalRecord::decode(&bytes).expect("an encoded record decodes");
        prop_assert_eq!(decoded.events.len(), events.len());
        for (read, written) in decoded.events.iter().zip(&events) {
            prop_assert_eq!(read.schema_version, if format_2 { 1 } else { written.3 });
        }
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
