//! An engine checkpoint file written by the first build of the format
//! (`tests/fixtures/checkpoint-v1.ckpt`): every later build must decode it to the same
//! state and encode that state to the same bytes, or bump the checkpoint format (and keep
//! this file, under a test that says it is ignored).
//!
//! `WRIT_WRITE_FIXTURES=1 cargo test -p writ-engine --test checkpoint_fixture` writes it
//! again; never do that for a format already released.

use uuid::Uuid;
use writ_engine::checkpoint::{
    CHECKPOINT_VERSION, Checkpoint, CheckpointError, CheckpointHeader, CheckpointTimer,
};

const FIXTURE: &str = "tests/fixtures/checkpoint-v1.ckpt";

/// 40 records over 7 streams (one record without events, one with three), a stream
/// name of non-ASCII UTF-8, and three pending timers (two due at the same time, one with
/// a version and an expected version).
fn state() -> Checkpoint {
    let mut commit_first_position = Vec::new();
    let mut streams: Vec<(String, Vec<u64>)> = [
        "counter-a",
        "counter-b",
        "counter-c",
        "order-1",
        "order-2",
        "ticket-z",
        "ticket-é",
    ]
    .iter()
    .map(|s| (s.to_string(), Vec::new()))
    .collect();
    let mut next = 1u64;
    for record in 0..40u64 {
        commit_first_position.push(next);
        let events = match record {
            7 => 0,
            20 => 3,
            _ => 1,
        };
        for i in 0..events {
            streams[((record + i) % 7) as usize].1.push(next);
            next += 1;
        }
    }
    let timer = |process: &str, key: &str, at_ms: u64, id: u128| CheckpointTimer {
        process: process.to_owned(),
        key: key.to_owned(),
        at_ms,
        id: Uuid::from_u128(id),
        command: "Remind".to_owned(),
        version: None,
        expected_version: None,
        payload: format!(r#"{{"key":"{key}"}}"#).into_bytes(),
        causation_id: Uuid::from_u128(id + 1000),
        correlation_id: Uuid::from_u128(id + 2000),
    };
    let mut versioned = timer("payments", "order-2", 1_700_000_090_000, 3);
    versioned.version = Some(2);
    versioned.expected_version = Some(4);
    Checkpoint {
        seq: 40,
        last_position: next - 1,
        last_recorded_ms: 1_700_000_000_040,
        unit_start: 38,
        mark: std::array::from_fn(|i| i as u8 * 7),
        build: "writ-engine 0.1.0".to_owned(),
        commit_first_position,
        streams,
        timers: vec![
            timer("reminders", "counter-a", 1_700_000_060_000, 1),
            timer("reminders", "counter-b", 1_700_000_060_000, 2),
            versioned,
        ],
    }
}

#[test]
fn the_first_checkpoint_format_still_decodes_and_encodes_to_the_same_bytes() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
    if std::env::var_os("WRIT_WRITE_FIXTURES").is_some() {
        std::fs::write(&path, state().encode()).unwrap();
    }
    let bytes = std::fs::read(&path).expect("the fixture is committed");
    let (header, _) = CheckpointHeader::decode(&bytes).unwrap();
    assert_eq!(header.seq, 40);
    assert_eq!(header.last_position, 41);
    assert_eq!(header.build, "writ-engine 0.1.0");
    let decoded = Checkpoint::decode(&bytes).unwrap();
    assert_eq!(decoded, state());
    assert_eq!(
        decoded.encode(),
        bytes,
        "format {CHECKPOINT_VERSION} is fixed"
    );
    assert_eq!(decoded.streams[6].0, "ticket-é");
    assert_eq!(decoded.timers[2].version, Some(2));
    assert_eq!(decoded.timers[2].expected_version, Some(4));
    assert_eq!(
        decoded.commit_first_position[8],
        decoded.commit_first_position[7]
    );
}

#[test]
fn a_checkpoint_of_a_later_format_is_refused_by_version() {
    let mut bytes = state().encode();
    bytes[8] = 2;
    assert_eq!(
        Checkpoint::decode(&bytes),
        Err(CheckpointError::Version { version: 2 })
    );
}
