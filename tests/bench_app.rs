//! End to end: `writ bench http --app examples/users` against the real binary serving
//! `--app examples/users`, briefly (small counts): its last line has the fields the
//! README names and no command failed. Speed is not asserted here.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Server, TempDir};

fn users_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/users")
}

/// Runs `writ bench http` with `flags`; returns its last line's fields, by name.
fn bench(port: u16, app: &Path, flags: &[&str]) -> Vec<(String, f64)> {
    let output = Command::new(env!("CARGO_BIN_EXE_writ"))
        .args([
            "bench",
            "http",
            "--target",
            &format!("http://127.0.0.1:{port}"),
        ])
        .arg("--app")
        .arg(app)
        .args(["--connections", "4"])
        .args(flags)
        .env_remove("WRIT_TOKEN")
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let last = stdout.lines().last().expect("a last line");
    last.split_whitespace()
        .map(|field| {
            let (name, value) = field.split_once('=').expect("name=value");
            (name.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

fn check_last_line(fields: &[(String, f64)], what: &str) {
    let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["commands_per_s", "p50_ms", "p99_ms", "failed"],
        "{what}"
    );
    assert!(fields[0].1 > 0.0, "{what}: {fields:?}");
    assert!(fields[1].1 <= fields[2].1, "{what}: {fields:?}");
    assert_eq!(fields[3].1, 0.0, "{what}: {fields:?}");
}

#[test]
fn the_resources_workload_runs_against_the_users_example() {
    let dir = TempDir::new("e2e-bench-app");
    let app = users_dir();
    let server = Server::start_with(&dir.path().join("data"), &["--app", app.to_str().unwrap()]);
    let small = ["--commands", "300", "--users", "100"];
    check_last_line(&bench(server.port, &app, &small), "mixed");
    let outcome = [
        "--commands",
        "200",
        "--users",
        "100",
        "--until",
        "outcome",
        "--mix",
        "custom",
    ];
    check_last_line(&bench(server.port, &app, &outcome), "custom until outcome");
    check_last_line(
        &bench(
            server.port,
            &app,
            &[&small[..], &["--mix", "patch"]].concat(),
        ),
        "patch",
    );
    check_last_line(
        &bench(
            server.port,
            &app,
            &["--mix", "create-rule", "--commands", "100"],
        ),
        "create-rule",
    );
    assert!(server.terminate().success());

    // Plain creates: the same type without its rules.
    let plain = dir.path().join("plain");
    for sub in ["resources", "machines"] {
        std::fs::create_dir_all(plain.join(sub)).unwrap();
        std::fs::copy(
            app.join(sub).join("users.json"),
            plain.join(sub).join("users.json"),
        )
        .unwrap();
    }
    let server = Server::start_with(
        &dir.path().join("data-plain"),
        &["--app", plain.to_str().unwrap()],
    );
    check_last_line(
        &bench(
            server.port,
            &plain,
            &["--mix", "create", "--commands", "100"],
        ),
        "create",
    );
    assert!(server.terminate().success());
}
