//! End to end: `writ backup` of the real `writ serve` under `writ bench http` load; the copy
//! passes `writ verify`, and `writ serve` on it answers for every command acknowledged
//! before the backup began. A damaged copy fails `writ verify`.

mod common;

use std::process::{Command, Output, Stdio};

use common::{Http, Server, TempDir, open_ticket};
use hyper::{Method, StatusCode};
use uuid::Uuid;

fn writ(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_writ"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs")
}

fn last_line(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_a_server_under_load_verifies_and_serves_what_was_acknowledged() {
    let dir = TempDir::new("backup-e2e");
    let out = TempDir::new("backup-e2e-out");
    let copy = out.path().join("copy");
    let server = Server::start(dir.path());
    let mut http = Http::connect(server.port).await;
    let mut before = Vec::new();
    for n in 0..100 {
        let id = Uuid::new_v4();
        let (status, _, body) = http
            .call(
                Method::POST,
                "/update",
                Some(&open_ticket(id, &format!("before-{n}"))),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        before.push(id);
    }

    let target = format!("http://127.0.0.1:{}", server.port);
    let mut load = Command::new(env!("CARGO_BIN_EXE_writ"))
        .args(["bench", "http", "--target", &target])
        .args([
            "--connections",
            "8",
            "--commands",
            "10000",
            "--tickets",
            "1000",
        ])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the load runs");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let data_dir = dir.path().to_str().unwrap();
    let copy_dir = copy.to_str().unwrap();
    let backup = writ(&["backup", "--data-dir", data_dir, "--to", copy_dir]);
    assert!(
        backup.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&backup.stdout),
        String::from_utf8_lossy(&backup.stderr)
    );
    let line = last_line(&backup);
    assert!(line.starts_with("backup=ok commands="), "{line}");
    assert!(
        load.wait().unwrap().success(),
        "the load checks its outcomes"
    );

    let verify = writ(&["verify", "--data-dir", copy_dir]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    assert!(
        last_line(&verify).starts_with("verified=ok "),
        "{}",
        last_line(&verify)
    );

    drop(http);
    server.terminate();
    let restored = Server::start(&copy);
    let mut http = Http::connect(restored.port).await;
    for id in before {
        let (status, _, body) = http.call(Method::GET, &format!("/update/{id}"), None).await;
        assert_eq!(status, StatusCode::OK, "{id}: {body}");
        assert_eq!(body["status"], "succeeded", "{body}");
    }
    drop(http);
    restored.terminate();

    // Damage: a byte of the copy's first record, in the first segment.
    let segment = copy.join("journal").join(format!("{:020}.wlog", 0));
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[64 + 32 + 8 + 20] ^= 1;
    std::fs::write(&segment, bytes).unwrap();
    let verify = writ(&["verify", "--data-dir", copy_dir, "--json"]);
    assert!(!verify.status.success());
    let report: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(report["verified"], "damaged", "{report}");
    let first = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["severity"] == "damage")
        .unwrap();
    assert_eq!(
        first["file"], "journal/00000000000000000000.wlog",
        "{report}"
    );
    assert_eq!(first["offset"], 64, "{report}");
}
