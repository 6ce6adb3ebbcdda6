//! What the log's benchmarks (`append`, `overlap`) share: when to run, for how long, where,
//! and the median they report.

use std::path::PathBuf;
use std::time::Duration;

/// How long each variant runs (`WRIT_BENCH_SECS`, default 2 s), or `None` when the binary
/// was not started as a benchmark: `cargo bench` passes `--bench`, `cargo test --benches`
/// other flags, and then `name` only says how to run it.
pub fn budget(name: &str) -> Option<Duration> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("{name} benchmark: run with `cargo bench -p writ-log --bench {name}`");
        return None;
    }
    let secs: f64 = std::env::var("WRIT_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    Some(Duration::from_secs_f64(secs))
}

/// A new directory for one run of the benchmark `name`, in `WRIT_BENCH_DIR` (the disk to
/// measure) or else the system's temporary directory; the caller removes it.
pub fn run_dir(name: &str) -> PathBuf {
    let parent = std::env::var_os("WRIT_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = parent.join(format!("writ-{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the benchmark's directory");
    dir
}

/// The median of `values` (the upper one of an even count); `values` must not be empty.
pub fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.into_iter().collect();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
