//! Feeds arbitrary bytes to the engine checkpoint's decoders (`writ_engine::checkpoint`).
//! They must return `Err` for anything they do not accept and never panic; a checkpoint
//! they accept encodes back to the same bytes and holds its own invariants.
//!
//! Run from `fuzz/`: `RUSTC_BOOTSTRAP=1 cargo fuzz run engine_checkpoint corpus/engine_checkpoint seeds/engine_checkpoint`
//! (the fixture `crates/writ-engine/tests/fixtures/checkpoint-v1.ckpt` is a good seed).

#![no_main]

use libfuzzer_sys::fuzz_target;
use writ_engine::checkpoint::{Checkpoint, CheckpointHeader};

fuzz_target!(|data: &[u8]| {
    if let Ok((header, _)) = CheckpointHeader::decode(data) {
        assert!(header.seq > header.unit_start);
    }
    if let Ok(checkpoint) = Checkpoint::decode(data) {
        assert_eq!(checkpoint.encode(), data);
        assert_eq!(
            checkpoint.commit_first_position.len() as u64,
            checkpoint.seq
        );
        let events: usize = checkpoint.streams.iter().map(|(_, p)| p.len()).sum();
        assert_eq!(events as u64, checkpoint.last_position);
        assert!(
            checkpoint
                .timers
                .windows(2)
                .all(|w| w[0].at_ms <= w[1].at_ms)
        );
    }
});
