//! `writ proof` against the real binary, small: ten SIGKILL rounds under load, a short
//! overload, a short soak, and a few slow clients under short deadlines. The proofs do the
//! checking; these tests hold them to their last line.

use std::collections::HashMap;
use std::process::{Command, Output};

/// Runs `writ proof ARGS` with this very binary as the server.
fn proof(args: &[&str]) -> Output {
    let binary = env!("CARGO_BIN_EXE_writ");
    Command::new(binary)
        .arg("proof")
        .args(args)
        .args(["--binary", binary])
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs")
}

/// The `key=value` fields of the last line of stdout; panics with the whole output when
/// the proof failed.
fn last_line(output: &Output) -> HashMap<String, String> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the proof failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    fields(stdout.lines().last().expect("the proof prints its figures"))
}

/// The `key=value` fields of every line of stdout; a later line wins.
fn all_lines(output: &Output) -> HashMap<String, String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .flat_map(fields)
        .collect()
}

fn fields(line: &str) -> HashMap<String, String> {
    line.split_whitespace()
        .filter_map(|field| field.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

fn number(fields: &HashMap<String, String>, key: &str) -> f64 {
    fields
        .get(key)
        .unwrap_or_else(|| panic!("the last line has no {key}: {fields:?}"))
        .parse()
        .unwrap_or_else(|e| panic!("{key}: {e}"))
}

#[test]
fn ten_kills_under_load_lose_nothing_and_run_nothing_twice() {
    let output = proof(&[
        "crash",
        "--rounds",
        "10",
        "--clients",
        "4",
        "--kill-min-ms",
        "20",
        "--kill-max-ms",
        "400",
        "--sample",
        "50",
        "--full-check-every",
        "5",
    ]);
    let fields = last_line(&output);
    assert_eq!(fields["rounds"], "10");
    assert_eq!(fields["lost"], "0");
    assert_eq!(fields["executed_twice"], "0");
    assert!(number(&fields, "acknowledged") > 0.0, "{fields:?}");
}

/// The server must be offered more than it takes, refuse the excess with `503`, and lose
/// nothing it acknowledged.
#[test]
fn overload_loses_nothing_acknowledged() {
    // A small bound on requests in progress, below the connections the overload opens,
    // so that the excess reaches the gate and is refused even in a slow debug build.
    let output = proof(&[
        "overload",
        "--seconds",
        "3",
        "--probe-seconds",
        "2",
        "--connections-max",
        "512",
        "--server-requests-max",
        "64",
    ]);
    let last = last_line(&output);
    assert_eq!(last["lost"], "0");
    assert!(number(&last, "accepted_per_s") > 0.0, "{last:?}");
    let all = all_lines(&output);
    assert_eq!(all["refused_found"], "0");
    assert!(
        number(&all, "rejected_503") > 0.0,
        "the server took everything offered: no overload\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

/// `--rate` offers that many commands a second whatever the server absorbs (so that two
/// servers can be offered the same load), and is refused beside `--factor` or when it is
/// not a positive number.
#[test]
fn overload_offers_the_rate_asked() {
    let output = proof(&[
        "overload",
        "--seconds",
        "1",
        "--probe-seconds",
        "1",
        "--rate",
        "500",
    ]);
    let last = last_line(&output);
    assert_eq!(last["lost"], "0");
    let all = all_lines(&output);
    assert_eq!(all["target_per_s"], "500", "{all:?}");
    assert_eq!(all["scheduled"], "500", "{all:?}");
    for (args, says) in [
        (&["--rate", "0"][..], "--rate must be a positive number"),
        (&["--rate", "fast"][..], "invalid value 'fast'"),
        (
            &["--rate", "500", "--factor", "2"][..],
            "cannot be used with",
        ),
    ] {
        let mut argv = vec!["overload", "--seconds", "1"];
        argv.extend(args);
        let output = proof(&argv);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} was taken");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

/// Reports further apart than the server keeps an idle connection: each report reads
/// `/metrics` all the same (a kept-alive connection for it would have been closed by the
/// server between two reports, and the soak failed on its first report).
#[test]
fn a_soak_reports_further_apart_than_the_idle_timeout() {
    let output = proof(&[
        "soak",
        "--minutes",
        "0.1",
        "--interval-seconds",
        "3",
        "--idle-timeout",
        "1s",
        "--rate",
        "100",
        "--tickets",
        "20",
        "--sample",
        "100",
    ]);
    let last = last_line(&output);
    assert_eq!(last["passed"], "true", "{last:?}");
    assert_eq!(last["lost"], "0");
    assert!(number(&last, "accepted") >= 300.0, "{last:?}");
}

/// A steady rate below what the server absorbs: nothing refused, nothing lost, and with a
/// short dedupe window the index turns over instead of growing with every command.
#[test]
fn a_short_soak_refuses_nothing_and_the_dedupe_index_turns_over() {
    let output = proof(&[
        "soak",
        "--minutes",
        "0.25",
        "--interval-seconds",
        "5",
        "--rate",
        "200",
        "--tickets",
        "50",
        "--sample",
        "500",
        "--dedupe-window",
        "3s",
    ]);
    let last = last_line(&output);
    assert_eq!(last["passed"], "true", "{last:?}");
    assert_eq!(last["lost"], "0");
    assert_eq!(last["rejected_503"], "0");
    let accepted = number(&last, "accepted");
    assert!(accepted >= 2_000.0, "{last:?}");
    // At 200/s a 3 s window holds about 600 ids (plus up to a second until the evictor
    // runs, and the interval's tail): far fewer than the 3,000 sent.
    let entries = number(&last, "dedupe_entries_end");
    assert!(
        entries > 0.0 && entries < 1_500.0,
        "dedupe_entries_end={entries} of {accepted} accepted"
    );
}

#[test]
fn slow_clients_are_cut_within_their_deadlines_while_the_benchmark_runs() {
    let output = proof(&[
        "slow-clients",
        "--slow",
        "50",
        "--connections",
        "8",
        "--commands",
        "2000",
        "--tickets",
        "100",
        "--cut-within",
        "10",
        "--serve-flags",
        "--head-timeout 1s --body-timeout 1s",
    ]);
    let last = last_line(&output);
    assert_eq!(number(&last, "open_after_10s"), 0.0, "{last:?}");
    assert!(number(&last, "under_slow_per_s") > 0.0, "{last:?}");
    let all = all_lines(&output);
    assert!(number(&all, "half_open_cut") >= 50.0, "{all:?}");
    assert!(number(&all, "trickled_answered_408") > 0.0, "{all:?}");
}

#[test]
fn bench_start_times_starts_until_a_query_sees_the_last_position_and_keeps_its_log() {
    let dir = std::env::temp_dir().join(format!("writ-bench-start-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let binary = env!("CARGO_BIN_EXE_writ");
    let bench = |events: &str| {
        Command::new(binary)
            .args(["bench", "start", "--events", events, "--tickets", "100"])
            .args(["--rounds", "2", "--no-drop-caches", "--data-dir"])
            .arg(&dir)
            .env_remove("RUST_LOG")
            .output()
            .expect("the binary runs")
    };

    let first = bench("3000");
    let figures = last_line(&first);
    assert_eq!(figures["events"], "3000");
    assert!(number(&figures, "open_ms") > 0.0);
    assert!(number(&figures, "open_full_replay_ms") > 0.0);
    // `open_ms` starts from the read model's snapshot at the log's end, written once.
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(
        stderr.contains("writing the read model's snapshot"),
        "{stderr}"
    );
    let snapshot = dir
        .join("data/snapshots/tickets")
        .join(format!("{:020}.snap", 3000));
    assert!(snapshot.exists(), "{}", snapshot.display());
    let rounds = String::from_utf8_lossy(&first.stdout)
        .lines()
        .filter(|line| line.starts_with("round="))
        .count();
    assert_eq!(rounds, 2, "one line per round");

    // The log is kept: a second run times starts only.
    let second = bench("3000");
    assert_eq!(last_line(&second)["events"], "3000");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("holds the log already"), "{stderr}");
    assert!(stderr.contains("exists: starts load it"), "{stderr}");

    // Another size on the same directory is refused, with the reason.
    let other = bench("4000");
    assert!(!other.status.success());
    let stderr = String::from_utf8_lossy(&other.stderr);
    assert!(stderr.contains("holds another log"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A data directory made by SIGKILL rounds under load (torn tails, units a kill cut short
/// and completed at the next start, resent commands) replays through this same build with
/// no command whose outcome differs: the handlers are deterministic, and nothing a crash
/// left behind reads differently the second time.
#[test]
fn a_data_directory_made_by_kills_under_load_replays_with_no_difference() {
    let dir = std::env::temp_dir().join(format!(
        "writ-proof-replay-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    struct Cleanup(std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = Cleanup(dir.clone());
    let data = dir.join("data");
    let data_arg = data.to_str().expect("a UTF-8 path");
    let fields = last_line(&proof(&[
        "crash",
        "--rounds",
        "5",
        "--clients",
        "4",
        "--kill-min-ms",
        "20",
        "--kill-max-ms",
        "300",
        "--sample",
        "20",
        "--data-dir",
        data_arg,
    ]));
    assert_eq!(fields["lost"], "0");
    let acknowledged = number(&fields, "acknowledged");
    assert!(acknowledged > 0.0, "{fields:?}");

    let report = dir.join("report.json");
    let output = Command::new(env!("CARGO_BIN_EXE_writ"))
        .args(["replay", "--data-dir", data_arg, "--report"])
        .arg(&report)
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "replay failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).expect("the report is written"))
            .expect("the report is JSON");
    assert_eq!(json["differing"], 0, "{stdout}");
    assert_eq!(json["differences"], serde_json::json!([]), "{stdout}");
    let commands = json["commands"].as_u64().expect("a count of commands");
    assert!(
        commands as f64 >= acknowledged,
        "the replay ran {commands} commands, fewer than the {acknowledged} acknowledged: {stdout}"
    );
    assert_eq!(json["same"].as_u64(), Some(commands), "{stdout}");
}
