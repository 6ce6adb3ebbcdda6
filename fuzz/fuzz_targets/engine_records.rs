//! The engine's record decoders (command records, commit records) on arbitrary bytes: they
//! must never panic, and whatever decodes must encode back to the very same bytes (so a
//! record is never silently reinterpreted).
#![no_main]

use libfuzzer_sys::fuzz_target;
use writ_engine::record::{CommandRecord, CommitRecord};

fuzz_target!(|data: &[u8]| {
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
});
