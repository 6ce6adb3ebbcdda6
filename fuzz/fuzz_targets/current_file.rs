//! Feeds arbitrary bytes to `writ_engine::current::live_journal` as the data directory's
//! `CURRENT` file (the name of the live journal after `writ replay --apply`). It must
//! refuse anything but `journal` or `replay-N/journal` of a replay written in full, and
//! never panic.
//!
//! Run from `fuzz/`: `RUSTC_BOOTSTRAP=1 cargo fuzz run current_file corpus/current_file seeds/current_file`.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use writ_engine::current::{CURRENT_FILE, REPLAYED_FILE, live_journal, parse_replay_dir};
use writ_log::storage::{SimStorage, Storage, write_all_at};

fuzz_target!(|data: &[u8]| {
    let storage = SimStorage::new();
    let current = storage.create(Path::new(CURRENT_FILE)).expect("sim create");
    write_all_at(&*current, data, 0).expect("sim write");
    // Replay 1 was written in full; any other replay named is not.
    storage
        .create_dir_all(Path::new("replay-1"))
        .expect("sim dir");
    storage
        .create(&Path::new("replay-1").join(REPLAYED_FILE))
        .expect("sim create");
    if let Ok(journal) = live_journal(&storage) {
        let name = journal.to_str().expect("a name CURRENT accepted is UTF-8");
        assert!(
            name == "journal" || name == "replay-1/journal",
            "CURRENT {data:?} named {name:?}"
        );
        assert_eq!(data, format!("{name}\n").as_bytes());
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Some(n) = parse_replay_dir(text)
    {
        assert_eq!(writ_engine::current::replay_dir_name(n), text);
    }
});
