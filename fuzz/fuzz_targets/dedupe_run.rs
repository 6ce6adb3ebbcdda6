//! Feeds arbitrary bytes to every decoder of `writ_engine::dedupe_run`, the dedupe index's
//! run files. They must return `Err` for anything they do not accept and never panic; a
//! whole run they accept encodes back to the same bytes, and answers every id it holds.
//!
//! Run from `fuzz/`: `RUSTC_BOOTSTRAP=1 cargo fuzz run dedupe_run corpus/dedupe_run seeds/dedupe_run`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use writ_engine::dedupe_run::{
    BLOCK_BYTES, FOOTER_BYTES, RunEncoder, RunFooter, RunTail, decode_run,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(footer) = RunFooter::decode(data) {
        assert!(footer.first_seq <= footer.last_seq);
    }
    if let Ok(tail) = RunTail::decode(data) {
        // Any block against this tail: refused or in order.
        let _ = tail.decode_block(0, &data[..data.len().min(BLOCK_BYTES)]);
        for id in tail.fences.iter().take(4) {
            assert_eq!(
                tail.block_of(*id).map(|b| tail.fences[b as usize]),
                Some(*id)
            );
        }
    }
    if let Ok((footer, entries)) = decode_run(data) {
        let mut encoder = RunEncoder::new(footer.filter_blocks);
        for (id, seq) in &entries {
            encoder.push(*id, *seq);
        }
        let again = encoder.finish_into_vec(
            footer.first_seq,
            footer.last_seq,
            footer.oldest_recorded_at_ms,
            footer.newest_recorded_at_ms,
        );
        assert_eq!(again, data);
        let tail = RunTail::decode(&data[footer.tail_offset() as usize..]).expect("tail");
        assert!(data.len() >= FOOTER_BYTES);
        for (id, seq) in entries.iter().take(64) {
            assert!(tail.may_contain(*id));
            let block = tail.block_of(*id).expect("a block") as usize;
            let found = tail
                .decode_block(block as u32, &data[block * BLOCK_BYTES..][..BLOCK_BYTES])
                .expect("a block of a valid run");
            assert!(found.contains(&(*id, *seq)));
        }
    }
});
