//! The engine's journal record decoder on arbitrary bytes: it must never panic, and
//! whatever decodes must encode back to the very same bytes in its own format (3, or 2 for
//! the records of builds before event schema versions), so a record is never silently
//! reinterpreted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use writ_engine::record::{JournalRecord, RECORD_FORMAT_2};

fuzz_target!(|data: &[u8]| {
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
});
