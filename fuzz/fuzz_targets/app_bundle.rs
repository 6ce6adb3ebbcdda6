//! Feeds arbitrary bytes to `writ_resources::AppFiles::decode`, the reader of the bundles
//! `writ app pack` writes (`writ serve --app FILE`). It must refuse anything but a bundle
//! written in full with its digest, never panic, and whatever it accepts must encode back
//! to exactly the same bytes (one encoding per file set) with paths that stay within the
//! app.
//!
//! Run from `fuzz/`: `RUSTC_BOOTSTRAP=1 cargo fuzz run app_bundle corpus/app_bundle seeds/app_bundle`.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use writ_resources::AppFiles;
use writ_resources::bundle::APP_DIRS;

fuzz_target!(|data: &[u8]| {
    let Ok(files) = AppFiles::decode(Path::new("fuzz.bundle"), data) else {
        return;
    };
    assert_eq!(files.encode(), data, "a bundle has one encoding");
    for path in files.paths() {
        let mut components = path.split('/');
        assert!(APP_DIRS.contains(&components.next().unwrap_or_default()));
        assert!(
            components.all(|c| !c.is_empty() && c != "." && c != ".."),
            "{path}"
        );
    }
    // The loader is not run here: it gives each type and projection a name for the
    // server's life (leaked on purpose, once per start), which the fuzzer's leak check
    // counts at every input; its checks are tested by the crate's tests.
});
