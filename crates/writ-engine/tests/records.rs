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

/// A run file written by the first build of the format (`tests/fixtures/dedupe-run-v1.ids`,
/// 400 ids `i * 7919 + 1` at records `1000 + i`, recorded 1,700,000,000,000 to
/// 1,700,000,003,600 ms): every later build must open it and answer its lookups the same.
#[test]
fn the_committed_dedupe_run_fixture_keeps_opening_and_answering() {
    use writ_engine::dedupe_run::{
        BLOCK_BYTES, RunEncoder, RunTail, decode_run, filter_blocks_for,
    };
    let fixture = include_bytes!("fixtures/dedupe-run-v1.ids");
    let ids = |i: u64| u128::from(i) * 7919 + 1;
    // This build writes the same bytes.
    let mut encoder = RunEncoder::new(filter_blocks_for(400));
    for i in 0..400 {
        encoder.push(ids(i), 1000 + i);
    }
    let written = encoder.finish_into_vec(1000, 1399, 1_700_000_000_000, 1_700_000_003_600);
    let (footer, entries) = decode_run(fixture).expect("the fixture decodes");
    assert_eq!(
        (footer.entry_count, footer.first_seq, footer.last_seq),
        (400, 1000, 1399)
    );
    assert_eq!(
        (footer.oldest_recorded_at_ms, footer.newest_recorded_at_ms),
        (1_700_000_000_000, 1_700_000_003_600)
    );
    let tail = RunTail::decode(&fixture[footer.tail_offset() as usize..]).unwrap();
    for i in 0..400u64 {
        assert_eq!(entries[i as usize], (ids(i), 1000 + i));
        assert!(tail.may_contain(ids(i)));
        let block = tail.block_of(ids(i)).unwrap() as usize;
        let found = tail
            .decode_block(block as u32, &fixture[block * BLOCK_BYTES..][..BLOCK_BYTES])
            .unwrap();
        assert!(found.contains(&(ids(i), 1000 + i)));
    }
    assert_eq!(&written[..], &fixture[..]);
}
