//! End to end: `writ app pack examples/users`, then `writ serve --app` of the bundle gives
//! the documents the directory gave; the same directory packs to the same bytes and
//! digest, which the server logs; a tampered bundle stops the server before the store.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Http, Server, TempDir};
use serde_json::Value;

fn users_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/users")
}

fn writ() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_writ"));
    command
        .env_remove("WRIT_APP")
        .env_remove("WRIT_TOKENS")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    command
}

/// `writ app pack DIR --out OUT`: the digest it prints.
fn pack(dir: &Path, out: &Path) -> String {
    let output = writ()
        .args(["app", "pack"])
        .arg(dir)
        .arg("--out")
        .arg(out)
        .output()
        .expect("the binary runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let digest = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert_eq!(digest.len(), 64, "{digest}");
    assert!(digest.bytes().all(|b| b.is_ascii_hexdigit()));
    digest
}

/// The digest `writ serve --app APP` logs, read from its stderr; the server is stopped.
fn served_digest(app: &Path, data: &Path) -> String {
    let mut child = writ()
        .args(["serve", "--listen", "127.0.0.1:0", "--app"])
        .arg(app)
        .arg("--data-dir")
        .arg(data)
        .env("LOG_LEVEL", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stderr = child.stderr.take().unwrap();
    let mut found = None;
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.split("digest=").nth(1) {
            found = Some(rest.split_whitespace().next().unwrap().to_owned());
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    found.expect("the server logs the app's digest")
}

/// Creates two users and patches one; returns the `/users` page once all is applied, and
/// the last position.
async fn write_users(http: &mut Http) -> (Value, u64) {
    let mut position = 0;
    for (id, name, email) in [
        ("ann", "Ann", "ann@example.com"),
        ("bob", "Bob", "bob@example.com"),
    ] {
        let payload = serde_json::json!({"id": id, "document": {"name": name, "email": email}});
        let outcome = http.ok("CreateUser", payload).await;
        position = position.max(outcome["position"].as_u64().unwrap());
    }
    let patch = serde_json::json!({"id": "ann", "patch": [{"op": "replace", "path": "/name", "value": "Ann Lee"}]});
    let outcome = http.ok("PatchUser", patch).await;
    position = position.max(outcome["position"].as_u64().unwrap());
    (
        http.get_ok(&format!("/users?after={position}")).await,
        position,
    )
}

#[test]
fn the_same_directory_packs_to_the_same_bytes_and_digest() {
    let dir = TempDir::new("e2e-pack-same");
    let (a, b) = (dir.path().join("a.bundle"), dir.path().join("b.bundle"));
    assert_eq!(pack(&users_dir(), &a), pack(&users_dir(), &b));
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
}

#[tokio::test]
async fn a_bundle_serves_the_documents_its_directory_served() {
    let dir = TempDir::new("e2e-pack-serve");
    let bundle = dir.path().join("users.bundle");
    let digest = pack(&users_dir(), &bundle);
    // The server logs the digest it runs, for a directory as for its bundle.
    assert_eq!(served_digest(&users_dir(), &dir.path().join("d0")), digest);
    assert_eq!(served_digest(&bundle, &dir.path().join("d1")), digest);

    let data = dir.path().join("data");
    let (from_dir, position) = {
        let app = users_dir().display().to_string();
        let server = Server::start_with(&data, &["--app", &app]);
        let mut http = Http::connect(server.port).await;
        let page = write_users(&mut http).await;
        assert!(server.terminate().success());
        page
    };
    assert_eq!(from_dir["items"].as_array().unwrap().len(), 2, "{from_dir}");
    let server = Server::start_with(&data, &["--app", bundle.to_str().unwrap()]);
    let mut http = Http::connect(server.port).await;
    let from_bundle = http.get_ok(&format!("/users?after={position}")).await;
    assert_eq!(from_bundle, from_dir);
    // The bundle's types take commands as the directory's did: the email is still taken.
    let payload =
        serde_json::json!({"id": "eve", "document": {"name": "Eve", "email": "ann@example.com"}});
    let outcome = http.run("CreateUser", payload).await;
    assert_eq!(outcome["error"]["code"], "not_unique", "{outcome}");
    assert!(server.terminate().success());
}

#[test]
fn a_tampered_bundle_stops_the_server_before_it_opens_the_store() {
    let dir = TempDir::new("e2e-pack-tampered");
    let bundle = dir.path().join("users.bundle");
    pack(&users_dir(), &bundle);
    let mut bytes = std::fs::read(&bundle).unwrap();
    let at = bytes.windows(7).position(|w| w == b"pending").unwrap();
    bytes[at..at + 7].copy_from_slice(b"PENDING");
    std::fs::write(&bundle, &bytes).unwrap();
    let data = dir.path().join("data");
    let output = writ()
        .args(["serve", "--listen", "127.0.0.1:0", "--app"])
        .arg(&bundle)
        .arg("--data-dir")
        .arg(&data)
        .env("LOG_LEVEL", "warn")
        .output()
        .expect("the binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("users.bundle: at byte"), "{stderr}");
    assert!(stderr.contains("changed or damaged"), "{stderr}");
    assert!(!data.exists(), "the store was not created");

    // A bad directory is refused by the pack itself, with the loader's message.
    let app = dir.path().join("app");
    std::fs::create_dir_all(app.join("resources")).unwrap();
    std::fs::write(
        app.join("resources/users.json"),
        "{\"title\": \"User\",\n \"type\": }",
    )
    .unwrap();
    let output = writ()
        .args(["app", "pack"])
        .arg(&app)
        .output()
        .expect("the binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("resources/users.json: line 2, column"),
        "{stderr}"
    );
    assert!(!dir.path().join("app.bundle").exists());
}
