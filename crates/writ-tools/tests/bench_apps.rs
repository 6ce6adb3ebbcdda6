//! The apps of `writ bench http --app`'s two comparisons (README, "Measuring") are
//! `examples/users` with one thing changed each, and must stay so: `users-without-rules`
//! (plain creates, against `--mix create-rule` on `examples/users`) lacks `rules/` and
//! nothing else; `users-with-handler` (`--mix custom` with a handler, against `--mix patch`
//! on the same app) adds `handlers/users.js` and the one member its handler writes.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn users() -> PathBuf {
    root().join("../../examples/users")
}

/// Every file of an app directory but its README, by relative path.
fn files(dir: &Path) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    for sub in fs::read_dir(dir).expect("an app directory") {
        let sub = sub.expect("an entry").path();
        if !sub.is_dir() {
            continue;
        }
        for file in fs::read_dir(&sub).expect("a subdirectory") {
            let file = file.expect("an entry").path();
            let name = format!(
                "{}/{}",
                sub.file_name().unwrap().to_string_lossy(),
                file.file_name().unwrap().to_string_lossy()
            );
            found.insert(name, fs::read_to_string(&file).expect("a text file"));
        }
    }
    found
}

#[test]
fn users_without_rules_is_examples_users_without_its_rules() {
    let mut expected = files(&users());
    assert!(expected.remove("rules/users.json").is_some());
    let app = root().join("bench-apps/users-without-rules");
    assert_eq!(files(&app), expected);
    let set = writ_resources::load(&app).expect("it loads");
    assert_eq!(set.types().len(), 1);
}

#[test]
fn users_with_handler_adds_a_handler_and_the_member_it_writes() {
    let mut expected = files(&users());
    let app = root().join("bench-apps/users-with-handler");
    let mut found = files(&app);
    let handler = found
        .remove("handlers/users.js")
        .expect("a handlers/users.js");
    assert!(handler.contains("function Activate(state, payload, ctx)"));

    let schema = |text: &str| serde_json::from_str::<Value>(text).expect("a JSON schema");
    let mut with = schema(&found.remove("resources/users.json").unwrap());
    let without = schema(&expected.remove("resources/users.json").unwrap());
    let added = with["properties"]
        .as_object_mut()
        .unwrap()
        .remove("activatedAt");
    assert_eq!(added, Some(serde_json::json!({"type": "string"})));
    assert_eq!(with, without);
    assert_eq!(found, expected);
    writ_resources::load(&app).expect("it loads");
}
