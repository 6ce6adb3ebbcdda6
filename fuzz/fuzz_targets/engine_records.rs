//! The engine's journal record decoder on arbitrary bytes: it must never panic, and
//! whatever decodes must encode back to the very same bytes (so a record is never silently
//! reinterpreted).
#![no_main]

use libfuzzer_sys::fuzz_target;
use writ_engine::record::JournalRecord;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = JournalRecord::decode(data) {
        let mut again = Vec::new();
        record.encode(&mut again);
        assert_eq!(again, data);
    }
});
