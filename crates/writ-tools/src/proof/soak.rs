//! `writ proof soak`: drive the server at a steady rate for a long time and watch what
//! grows.
//!
//! On a fresh server the tickets are opened, then (without `--rate`) `writ proof
//! overload`'s closed-loop measurement finds what the server absorbs, and the soak offers
//! `--fraction` of it (80% by default), open-loop: command `k` is due at `start + k /
//! rate`, sent on an idle keep-alive connection or a new one (up to `--connections-max`),
//! whatever the answers to earlier ones. Every `--interval-seconds` it prints one line:
//! what was due, sent and answered (`202`, `503`, other, no answer), the `202` latencies,
//! and the server's RSS, open files and dedupe index size (`writ_dedupe_entries` from
//! `/metrics`). At the end the server's count of succeeded outcomes must cover every
//! acknowledged command, none may be rejected or failed, and, unless `--dedupe-window`
//! makes statuses expire during the soak, a uniform sample of the acknowledged ids
//! (reservoir sampling, so memory stays bounded however long the soak) must all read
//! `succeeded`.
//!
//! The soak passes when nothing is lost, no command was answered anything but
//! `202` and every due command found a connection. Its last line gives the RSS growth per
//! acknowledged command from the end of the first interval (once the caches are warm) to
//! the end: what the README's per-command memory cost is checked against.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use hyper::{Method, StatusCode};
use tokio::time::Instant;
use uuid::Uuid;

use super::overload::{Offer, Pool, Tally, closed_loop, open_loop};
use super::{DataDir, Rng, check, fresh_seed, percentile_ms};
use crate::bench::http::Workload;
use crate::client::{Client, Target};
use crate::server::{ServerProcess, open_files, rss_kib};

/// `writ proof soak`'s arguments.
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// The `writ` binary to run as the server (default: this one).
    #[arg(long)]
    binary: Option<PathBuf>,
    /// How long the soak lasts, in minutes (a fraction is fine: 0.5 is 30 s).
    #[arg(long, default_value_t = 30.0)]
    minutes: f64,
    /// Commands offered per second. Default: `--fraction` of what the server absorbs
    /// closed-loop, measured first.
    #[arg(long)]
    rate: Option<f64>,
    /// Without `--rate`, the share of the absorbed rate offered.
    #[arg(long, default_value_t = 0.8)]
    fraction: f64,
    /// How long the closed-loop measurement lasts (without `--rate`).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    probe_seconds: u64,
    /// Keep-alive connections of the closed-loop measurement, one request in flight each.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    probe_connections: u64,
    /// Most connections open at once during the soak.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    connections_max: u64,
    /// Tickets the comments go to.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    tickets: u64,
    /// Seconds between two report lines.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    interval_seconds: u64,
    /// Acknowledged ids whose status is read back at the end (a uniform sample; none with
    /// `--dedupe-window`, since statuses are kept only for the window).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    sample: u64,
    /// Passed to the server as `--dedupe-window` (default: the server's, 24 h). A window
    /// shorter than the soak shows the index turning over.
    #[arg(long)]
    dedupe_window: Option<String>,
    /// Passed to the server as `--dedupe-entries-max` (default: the server's).
    #[arg(long)]
    dedupe_entries_max: Option<u64>,
    /// Passed to the server as `--idle-timeout` (default: the server's, 60 s): how long a
    /// kept-alive connection may sit idle before the server closes it.
    #[arg(long)]
    idle_timeout: Option<String>,
    /// The server's data directory: must be empty or missing (default: a fresh one under
    /// the system's temporary directory, removed when the soak passes).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// The bound on one request.
const REQUEST_MAX: Duration = Duration::from_secs(60);
/// Connections reading back the statuses.
const CHECK_CONNECTIONS: usize = 64;

pub fn run(args: SoakArgs) -> Result<(), String> {
    if let Some(rate) = args.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        return Err("--rate must be a positive number".into());
    }
    if !(args.minutes.is_finite() && args.minutes > 0.0 && args.minutes <= 10_080.0) {
        return Err("--minutes must be above 0 and at most 10080 (a week)".into());
    }
    if !(args.fraction.is_finite() && args.fraction > 0.0) {
        return Err("--fraction must be a positive number".into());
    }
    let binary = super::server_binary(args.binary.clone())?;
    let dir = DataDir::new(args.data_dir.clone(), "soak")?;
    let mut extra = Vec::new();
    if let Some(window) = &args.dedupe_window {
        extra.extend(["--dedupe-window".to_owned(), window.clone()]);
    }
    if let Some(max) = args.dedupe_entries_max {
        extra.extend(["--dedupe-entries-max".to_owned(), max.to_string()]);
    }
    if let Some(idle) = &args.idle_timeout {
        extra.extend(["--idle-timeout".to_owned(), idle.clone()]);
    }
    let server = ServerProcess::start(&binary, dir.path(), &extra)
        .map_err(|e| format!("cannot start the server: {e}"))?;
    println!(
        "binary={} server_pid={} data_dir={}",
        binary.display(),
        server.pid(),
        dir.path().display()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let result = runtime.block_on(soak(&args, &server));
    let kill = server.kill();
    let passed = result?;
    kill?;
    if !passed {
        return Err(format!(
            "the soak failed (see the lines above); the data directory {} is kept",
            dir.path().display()
        ));
    }
    dir.remove();
    Ok(())
}

/// A uniform sample of at most `cap` of the values offered to it (Algorithm R).
#[derive(Debug)]
struct Reservoir {
    cap: usize,
    seen: u64,
    values: Vec<u64>,
    rng: Rng,
}

impl Reservoir {
    fn new(cap: usize, seed: u64) -> Self {
        Self {
            cap,
            seen: 0,
            values: Vec::with_capacity(cap.min(1 << 20)),
            rng: Rng::new(seed),
        }
    }

    fn offer(&mut self, value: u64) {
        self.seen += 1;
        if self.values.len() < self.cap {
            self.values.push(value);
        } else {
            let j = self.rng.below(self.seen);
            if let Some(slot) = self.values.get_mut(j as usize) {
                *slot = value;
            }
        }
    }
}

/// What the server looked like at one moment.
#[derive(Debug, Clone, Copy, Default)]
struct Gauges {
    rss_kib: u64,
    open_files: u64,
    dedupe_entries: u64,
}

/// Reads the server's RSS and open files from `/proc` and its dedupe index size from
/// `/metrics`.
async fn gauges(server: &ServerProcess, metrics: &Target) -> Result<Gauges, String> {
    let text = metrics_text(metrics).await?;
    Ok(Gauges {
        rss_kib: rss_kib(server.pid()).unwrap_or(0),
        open_files: open_files(server.pid()).unwrap_or(0),
        dedupe_entries: metric_value(&text, "writ_dedupe_entries").unwrap_or(0.0) as u64,
    })
}

/// The server's `/metrics`, as text, on a connection of its own: a kept-alive one would
/// sit idle between two reports, and a report interval as long as the server's
/// `--idle-timeout` (60 s, the default interval) lets the server close it first.
async fn metrics_text(target: &Target) -> Result<String, String> {
    let mut client = Client::connect(target).await?;
    let (status, body) =
        check::call(&mut client, Method::GET, "/metrics", None, REQUEST_MAX).await?;
    if status != StatusCode::OK {
        return Err(format!("GET /metrics answered {status}"));
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The value of the unlabelled sample `name` in a Prometheus text exposition.
fn metric_value(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(' ')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Runs the soak and prints its figures; `Ok(false)` when it failed.
async fn soak(args: &SoakArgs, server: &ServerProcess) -> Result<bool, String> {
    let target = Target::parse(&server.url())?;
    let workload = Arc::new(Workload {
        base: Uuid::new_v4().as_u128(),
        first_ticket: 0,
        tickets: args.tickets,
        // Only bounds `Workload::index`, which the soak does not use.
        commands: u64::MAX,
    });
    let next = Arc::new(AtomicU64::new(0));
    let metrics = target.clone();

    let clients = check::connect(&server.url(), args.probe_connections as usize).await?;
    let (opened, mut clients) =
        closed_loop(clients, &workload, &next, Some(args.tickets), None).await?;
    if opened.accepted.len() as u64 != args.tickets {
        return Err(format!(
            "only {} of {} tickets could be opened",
            opened.accepted.len(),
            args.tickets
        ));
    }
    let rate = match args.rate {
        Some(rate) => rate,
        None => {
            let probe = Duration::from_secs(args.probe_seconds);
            let started = Instant::now();
            let (probed, back) = closed_loop(clients, &workload, &next, None, Some(probe)).await?;
            clients = back;
            let absorbed = probed.accepted.len() as f64 / started.elapsed().as_secs_f64();
            println!(
                "absorbed_per_s={absorbed:.0} probe_s={} probe_connections={} probe_503={}",
                args.probe_seconds,
                args.probe_connections,
                probed.refused.len()
            );
            absorbed * args.fraction
        }
    };
    if rate < 1.0 {
        return Err(format!(
            "a rate of {rate:.2} commands per second is too low"
        ));
    }
    let pool = Arc::new(Pool {
        open: clients.len().into(),
        open_peak: clients.len().into(),
        idle: Mutex::new(clients),
        max: args.connections_max as usize,
    });
    let offer = Offer {
        rate,
        seconds: args.interval_seconds,
        backoff: Duration::ZERO,
    };
    let intervals = ((args.minutes * 60.0) / args.interval_seconds as f64).ceil() as u64;
    println!(
        "rate_per_s={rate:.0} minutes={} intervals={intervals} interval_s={}",
        args.minutes, args.interval_seconds
    );

    let seed = fresh_seed();
    let sample_cap = if args.dedupe_window.is_some() {
        0
    } else {
        args.sample as usize
    };
    let mut sample = Reservoir::new(sample_cap, seed);
    let (mut accepted, mut refused, mut other, mut errors, mut skipped) = (0u64, 0u64, 0, 0, 0);
    let mut first_error = None;
    let mut warm: Option<(Gauges, u64)> = None;
    let mut last = Gauges::default();
    let (mut rss_max_kib, mut open_files_max) = (0u64, 0u64);
    let started = Instant::now();
    for interval in 1..=intervals {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let (scheduled, missed, _late_us, phase) =
            open_loop(&target, &workload, &next, &pool, &tally, &offer).await?;
        let mut tally = std::mem::take(&mut *tally.lock().expect("never poisoned"));
        tally.accepted_us.sort_unstable();
        for &i in &tally.accepted {
            sample.offer(i);
        }
        accepted += tally.accepted.len() as u64;
        refused += tally.refused.len() as u64;
        other += tally.other;
        errors += tally.errors;
        skipped += missed;
        if first_error.is_none() {
            first_error = tally.first_error.take();
        }
        last = gauges(server, &metrics).await?;
        rss_max_kib = rss_max_kib.max(last.rss_kib);
        open_files_max = open_files_max.max(last.open_files);
        if warm.is_none() {
            warm = Some((last, accepted));
        }
        println!(
            "interval={interval} elapsed_s={:.0} scheduled={scheduled} sent={} skipped_no_connection={missed} accepted={} rejected_503={} other={} errors={} accepted_per_s={:.0} p50_202_ms={:.3} p99_202_ms={:.3} rss_mib={:.1} open_files={} dedupe_entries={}",
            started.elapsed().as_secs_f64(),
            scheduled - missed,
            tally.accepted.len(),
            tally.refused.len(),
            tally.other,
            tally.errors,
            tally.accepted.len() as f64 / phase.as_secs_f64(),
            percentile_ms(&tally.accepted_us, 0.5),
            percentile_ms(&tally.accepted_us, 0.99),
            last.rss_kib as f64 / 1024.0,
            last.open_files,
            last.dedupe_entries,
        );
    }
    if let Some(error) = &first_error {
        eprintln!("first request without an answer: {error}");
    }

    // The server's outcome counts cover every acknowledged command (the soak is its only
    // client, and the tickets domain issues no commands of its own)...
    let acknowledged = accepted + args.tickets;
    let text = metrics_text(&metrics).await?;
    let outcome = |status: &str| {
        metric_value(
            &text,
            &format!("writ_command_outcomes_total{{status=\"{status}\"}}"),
        )
        .unwrap_or(0.0) as u64
    };
    let succeeded = outcome("succeeded");
    let mut lost = acknowledged.saturating_sub(succeeded);
    let mut not_succeeded = outcome("rejected") + outcome("failed");
    if lost > 0 || not_succeeded > 0 {
        eprintln!(
            "VIOLATION: {acknowledged} commands acknowledged, the server counts {succeeded} succeeded and {not_succeeded} rejected or failed"
        );
    }
    // ... and every sampled acknowledged command reads `succeeded`.
    let ids: Vec<Uuid> = sample.values.iter().map(|&i| workload.id(i)).collect();
    let connections = check::connect(&server.url(), CHECK_CONNECTIONS).await?;
    let (answers, _) = check::statuses(connections, ids.clone()).await?;
    let (sampled_lost, sampled_not_succeeded) = check::acknowledged_outcomes(&ids, &answers);
    lost += sampled_lost;
    not_succeeded += sampled_not_succeeded;
    let (warm_gauges, warm_accepted) = warm.unwrap_or_default();
    let grown = accepted.saturating_sub(warm_accepted);
    let growth_per_command = if grown == 0 {
        0.0
    } else {
        (last.rss_kib as f64 - warm_gauges.rss_kib as f64) * 1024.0 / grown as f64
    };
    let passed = lost == 0
        && not_succeeded == 0
        && refused == 0
        && other == 0
        && errors == 0
        && skipped == 0;
    println!(
        "minutes={} rate_per_s={rate:.0} accepted={accepted} succeeded_total={succeeded} rejected_503={refused} other={other} errors={errors} skipped_no_connection={skipped} sampled={} lost={lost} not_succeeded={not_succeeded} rss_warm_mib={:.1} rss_end_mib={:.1} rss_max_mib={:.1} rss_growth_bytes_per_command={growth_per_command:.1} open_files_max={open_files_max} dedupe_entries_end={} passed={passed}",
        args.minutes,
        ids.len(),
        warm_gauges.rss_kib as f64 / 1024.0,
        last.rss_kib as f64 / 1024.0,
        rss_max_kib as f64 / 1024.0,
        last.dedupe_entries,
    );
    Ok(passed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reservoir_keeps_a_bounded_uniform_sample() {
        let mut reservoir = Reservoir::new(1_000, 7);
        for i in 0..100_000 {
            reservoir.offer(i);
        }
        assert_eq!(reservoir.values.len(), 1_000);
        assert_eq!(reservoir.seen, 100_000);
        // Uniform: about half the sample from each half of what was offered.
        let low = reservoir.values.iter().filter(|&&v| v < 50_000).count();
        assert!(
            (400..=600).contains(&low),
            "{low} of 1000 from the first half"
        );
        let mut sorted = reservoir.values.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 1_000, "each value is sampled at most once");
    }

    #[test]
    fn metric_values_are_read_from_the_exposition() {
        let text = "# TYPE writ_dedupe_entries gauge\nwrit_dedupe_entries_max 10000000\nwrit_dedupe_entries 1234\nwrit_command_outcomes_total{status=\"succeeded\"} 17\n";
        assert_eq!(metric_value(text, "writ_dedupe_entries"), Some(1234.0));
        assert_eq!(
            metric_value(text, "writ_dedupe_entries_max"),
            Some(10_000_000.0)
        );
        assert_eq!(
            metric_value(text, r#"writ_command_outcomes_total{status="succeeded"}"#),
            Some(17.0)
        );
        assert_eq!(metric_value(text, "writ_missing"), None);
    }
}
