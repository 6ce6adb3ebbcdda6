//! `--over http` from the outside: a data directory in memory is refused by both modes, and
//! a tiny run over HTTP against the real `writ` binary and the PostgreSQL at
//! `WRIT_TEST_POSTGRES_URL` verifies and prints its last line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use writ_compare::http::{self, HttpOptions};
use writ_compare::{CompareError, Options, Workload};

/// A directory we may create on a tmpfs mount, from the mount table (not from the code
/// under test); `None` when no tmpfs is mounted where we may write.
fn tmpfs_dir() -> Option<PathBuf> {
    let table = std::fs::read_to_string("/proc/self/mounts").ok()?;
    table.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let (point, kind) = (*fields.get(1)?, *fields.get(2)?);
        if kind != "tmpfs" || point.contains('\\') {
            return None;
        }
        let probe = Path::new(point).join(format!("writ-compare-probe-{}", std::process::id()));
        std::fs::create_dir(&probe).ok()?;
        std::fs::remove_dir(&probe).ok()?;
        Some(Path::new(point).join(format!("writ-compare-test-{}", uuid::Uuid::new_v4())))
    })
}

fn assert_refused_as_tmpfs(result: Result<(), CompareError>, dir: &Path) {
    let err = result.unwrap_err();
    assert!(
        matches!(&err, CompareError::VolatileFilesystem { filesystem, .. } if filesystem == "tmpfs"),
        "{err}"
    );
    let message = err.to_string();
    assert!(message.contains("--data-dir on a disk"), "{message}");
    assert!(!dir.exists(), "refused before anything was created");
}

#[test]
fn a_data_dir_on_tmpfs_is_refused_in_both_modes() {
    let Some(dir) = tmpfs_dir() else {
        eprintln!("skipped: no tmpfs is mounted where this test may write (/dev/shm usually is)");
        return;
    };
    // Refused before PostgreSQL is reached, so none is needed.
    let url = "postgres://postgres@127.0.0.1:1/none".to_owned();
    assert_refused_as_tmpfs(writ_compare::disk::refuse_volatile(&dir).map(|_| ()), &dir);
    let in_process = Options {
        workload: Workload::new(2, 2, 1).unwrap(),
        data_dir: Some(dir.clone()),
        postgres_url: url.clone(),
    };
    assert_refused_as_tmpfs(writ_compare::run(&in_process).map(|_| ()), &dir);
    let over_http = HttpOptions {
        workload: Workload::new(2, 2, 1).unwrap(),
        rounds: 1,
        data_dir: Some(dir.clone()),
        postgres_url: url,
        // Any file: the binary is not started.
        writ_binary: std::env::current_exe().unwrap(),
        serve_args: Vec::new(),
        baseline: Duration::from_secs(1),
    };
    assert_refused_as_tmpfs(http::run(&over_http, &mut |_: &str| {}).map(|_| ()), &dir);
}

#[test]
fn a_missing_writ_binary_is_named() {
    let options = HttpOptions {
        workload: Workload::new(2, 2, 1).unwrap(),
        rounds: 1,
        data_dir: None,
        postgres_url: "postgres://postgres@127.0.0.1:1/none".into(),
        writ_binary: PathBuf::from("/nonexistent/writ"),
        serve_args: Vec::new(),
        baseline: Duration::from_secs(1),
    };
    let err = http::run(&options, &mut |_: &str| {}).unwrap_err();
    assert!(matches!(err, CompareError::WritBinary { .. }), "{err}");
    assert!(
        err.to_string().contains("cargo build --release -p writ"),
        "{err}"
    );
}

/// `target/{debug,release}/writ`, built by `cargo build [--release] -p writ`.
fn writ_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    // target/PROFILE/deps/http-HASH
    let target = exe.parent()?.parent()?.parent()?;
    ["debug", "release"]
        .iter()
        .map(|profile| target.join(profile).join("writ"))
        .find(|path| path.is_file())
}

#[test]
fn a_tiny_run_over_http_verifies_and_prints_both_sides_durability() {
    let Some(url) = std::env::var("WRIT_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!(
            "skipped: WRIT_TEST_POSTGRES_URL is not set (for example postgres://postgres@127.0.0.1:5432/test)"
        );
        return;
    };
    let Some(writ_binary) = writ_binary() else {
        eprintln!(
            "skipped: no writ binary in target/debug or target/release (cargo build -p writ)"
        );
        return;
    };
    let options = HttpOptions {
        workload: Workload::new(10, 50, 2).unwrap(),
        rounds: 2,
        data_dir: None,
        postgres_url: url,
        writ_binary,
        // Passed through to `writ serve`: one HTTP worker of its own.
        serve_args: vec!["--http-threads".into(), "1".into()],
        baseline: Duration::from_secs(1),
    };
    let mut progress = Vec::new();
    let comparison = http::run(&options, &mut |line: &str| progress.push(line.to_owned()))
        .expect("both sides run and verify");
    assert_eq!(comparison.rounds.len(), 2);
    assert!(comparison.rounds[0].writ_first && !comparison.rounds[1].writ_first);
    for round in &comparison.rounds {
        assert_eq!(round.writ.run.latencies_us.len(), 50);
        assert_eq!(round.peer.run.latencies_us.len(), 50);
        assert_eq!(round.writ.tally.comments, 40);
        assert_eq!(round.peer.tally.tickets, 10);
        assert!(round.plain.syncs > 0);
    }
    assert!(
        progress
            .iter()
            .any(|l| l.starts_with("round 2 (peer first)")),
        "{progress:?}"
    );
    let lines = comparison.report_lines();
    assert!(
        lines[0].contains(" writ_serve_args=--http-threads,1 "),
        "{}",
        lines[0]
    );
    let last = lines.last().unwrap();
    assert!(last.starts_with("writ_outcomes_per_s="), "{last}");
    for field in [
        " peer_outcomes_per_s=",
        " plain_fdatasync_per_s=",
        " pgbench_tps=",
        " writ_vs_plain=",
        " writ_vs_peer=",
        " writ_vs_pgbench=",
        " clients=2 rounds=2 ",
        " writ_durability=fdatasync_per_batch,fs=",
        " peer_durability=fsync=",
        ",synchronous_commit=",
        ",wal_sync_method=",
        ",full_page_writes=",
    ] {
        assert!(last.contains(field), "{field} in {last}");
    }
    assert!(
        !comparison.data_dir.exists(),
        "the temporary directory is removed"
    );
}
