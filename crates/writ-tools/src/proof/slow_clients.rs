//! `writ proof slow-clients`: slow and silent clients cost the server sockets for seconds,
//! never the throughput of the others.
//!
//! On a fresh server: first `writ bench http` (the current executable, as a child process,
//! `--connections`, `--commands`, `--tickets`) runs alone, the baseline. Then `--slow`
//! half-open connections (a partial request head, then silence) and `--slow` trickled
//! bodies (a whole head with `Content-Length`, then one byte a second) are opened and kept
//! open: each one the server cuts is opened again at once, as an attacker would. Once all
//! are open the same benchmark runs again among them. Then the slow clients stop being
//! renewed and the proof waits for the server to cut the last ones. `--rounds` repeats the
//! pair on the same server and reports the medians.
//!
//! Each slow client's life runs from its connect to the server's close (end of stream or
//! reset), as the client sees it. The proof fails when any lived past `--cut-within` (or
//! was still open when the proof gave up waiting); it reports the benchmark's rate with
//! and without the slow clients, and how long the server took to cut them. The client
//! tasks share the machine with the server and the benchmark, so the rate under slow
//! clients also pays for the proof's own work.
//!
//! Every slow client takes a descriptor in this process and one in the server: the proof
//! raises its soft limit on open files to the hard limit before it starts the server (which
//! inherits it), and refuses to run when that is not enough.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use clap::Args;
use hyper::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::DataDir;
use crate::client::{Client, Target};
use crate::server::{ServerProcess, peak_rss_kib};

/// `writ proof slow-clients`'s arguments.
#[derive(Debug, Args)]
pub struct SlowClientsArgs {
    /// The `writ` binary to run as the server (default: this one).
    #[arg(long)]
    binary: Option<PathBuf>,
    /// Slow clients of each kind kept open during the benchmark: this many half-open heads
    /// and this many trickled bodies.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..=30_000))]
    slow: u64,
    /// The benchmark's keep-alive connections (`writ bench http --connections`).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    connections: u64,
    /// Commands of each benchmark run (`writ bench http --commands`).
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    commands: u64,
    /// Tickets of each benchmark run (`writ bench http --tickets`).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    tickets: u64,
    /// Seconds within which the server must cut every slow client.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    cut_within: u64,
    /// Rounds, each the benchmark alone and then among the slow clients; the figures are
    /// the medians (the machine's other load moves single runs).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100))]
    rounds: u64,
    /// More flags for `writ serve` (`--head-timeout 5s`), as one string split at spaces.
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    serve_flags: String,
}

/// What a half-open client sends: a head cut short.
const PARTIAL_HEAD: &[u8] = b"POST /update HTTP/1.1\r\nHost: writ\r\nContent-Type: applic";
/// What a trickled body's client sends first: a whole head and the body's first byte. The
/// body, one byte a second, would take 17 minutes.
const TRICKLED_HEAD: &[u8] = b"POST /update HTTP/1.1\r\nHost: writ\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{";
/// A trickled body's pace.
const TRICKLE_INTERVAL: Duration = Duration::from_secs(1);
/// Descriptors this process needs besides its slow clients and the benchmark's.
const FILES_RESERVED: u64 = 256;
/// How long the proof waits, after the benchmark, for the server to cut the last slow
/// clients, beyond `--cut-within`.
const DRAIN_SLACK: Duration = Duration::from_secs(30);
/// The most a slow client waits for the server's close before it counts as never cut.
const LIFE_MAX: Duration = Duration::from_secs(300);

pub fn run(args: SlowClientsArgs) -> Result<(), String> {
    // Each slow client takes a descriptor here and one in the server (which inherits the
    // raised limit), and so does each benchmark connection.
    let needed = 2 * args.slow + args.connections + FILES_RESERVED;
    let files = writ_server::raise_open_files_limit()
        .map_err(|e| format!("cannot read or raise the limit on open files: {e}"))?;
    println!(
        "open_files_soft={} open_files_hard={} open_files_needed={needed}",
        files.soft, files.hard
    );
    if files.soft < needed {
        return Err(format!(
            "{} slow clients of each kind and {} benchmark connections need {needed} open files, and the hard limit allows {}: lower --slow, or raise the hard limit (ulimit -Hn, or LimitNOFILE)",
            args.slow, args.connections, files.hard
        ));
    }
    let binary = super::server_binary(args.binary.clone())?;
    let bench = std::env::current_exe()
        .map_err(|e| format!("cannot find this executable to run writ bench http: {e}"))?;
    let dir = DataDir::new(None, "slow-clients")?;
    let serve_flags: Vec<String> = args
        .serve_flags
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let server = ServerProcess::start(&binary, dir.path(), &serve_flags)
        .map_err(|e| format!("cannot start the server: {e}"))?;
    println!(
        "binary={} server_pid={} slow={} connections={} commands={} tickets={}",
        binary.display(),
        server.pid(),
        args.slow,
        args.connections,
        args.commands,
        args.tickets
    );
    // One thread for the slow clients: the server and the benchmark need the cores.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let result = runtime.block_on(prove(&args, &server, &bench));
    let kill = server.kill();
    let passed = result?;
    kill?;
    if !passed {
        return Err(format!(
            "the slow-clients proof failed: slow clients were still open after {} s",
            args.cut_within
        ));
    }
    dir.remove();
    Ok(())
}

/// The kinds of slow client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    HalfOpen,
    Trickled,
}

/// One slow client's life.
#[derive(Debug, Clone, Copy)]
struct Life {
    kind: Kind,
    /// From its connect to the server's close.
    length: Duration,
    /// The server answered (a `408`) before it closed.
    answered_408: bool,
    /// Still open when the proof stopped waiting.
    never_cut: bool,
}

/// The slow clients' shared state.
#[derive(Debug, Default)]
struct Slow {
    /// Once set, a client that is cut is not opened again.
    stop: AtomicBool,
    /// Clients that have sent their first bytes at least once.
    opened: AtomicU64,
    /// Connects or first writes that failed.
    failures: AtomicU64,
    first_failure: Mutex<Option<String>>,
    lives: Mutex<Vec<Life>>,
}

/// Runs the two benchmarks and the slow clients; `Ok(false)` when a slow client outlived
/// `--cut-within`.
async fn prove(
    args: &SlowClientsArgs,
    server: &ServerProcess,
    bench: &std::path::Path,
) -> Result<bool, String> {
    let target = Target::parse(&server.url())?;
    let address: std::net::SocketAddr = target
        .authority
        .parse()
        .map_err(|e| format!("{}: not an address: {e}", target.authority))?;

    let cut_within = Duration::from_secs(args.cut_within);
    let mut baselines = Vec::new();
    let mut baseline_cpu = Vec::new();
    let mut under_cpu = Vec::new();
    let mut unders = Vec::new();
    let mut lives = Vec::new();
    let mut still_open = 0;
    let mut failures = 0;
    for round in 1..=args.rounds {
        eprintln!("round {round}: writ bench http alone");
        let cpu = cpu_seconds(server.pid());
        let baseline = bench_http(bench, args, &target).await?;
        let baseline_cpu_us = (cpu_seconds(server.pid()) - cpu) * 1e6 / args.commands as f64;
        eprintln!("round {round}: writ bench http among the slow clients");
        let cpu = cpu_seconds(server.pid());
        let phase = among_slow_clients(args, address, bench, &target, server.pid()).await?;
        let under_cpu_us = (phase.server_cpu_s_at_bench_end - cpu) * 1e6 / args.commands as f64;
        let change_pct = (phase.rate / baseline - 1.0) * 100.0;
        println!(
            "round={round} baseline_per_s={baseline:.0} under_slow_per_s={:.0} change_pct={change_pct:+.1} server_cpu_us_per_command={baseline_cpu_us:.1}/{under_cpu_us:.1} slow_opened_in_s={:.2}",
            phase.rate, phase.opened_in_s
        );
        baseline_cpu.push(baseline_cpu_us);
        under_cpu.push(under_cpu_us);
        baselines.push(baseline);
        unders.push(phase.rate);
        lives.extend(phase.lives);
        still_open += phase.still_open;
        failures += phase.failures;
    }
    let baseline = median(&mut baselines);
    let under_slow = median(&mut unders);
    let change_pct = (under_slow / baseline - 1.0) * 100.0;
    let clients = 2 * args.slow;
    let (baseline_cpu, under_cpu) = (median(&mut baseline_cpu), median(&mut under_cpu));

    let summary = |kind: Kind| {
        let mut lengths: Vec<Duration> = lives
            .iter()
            .filter(|l| l.kind == kind)
            .map(|l| l.length)
            .collect();
        lengths.sort_unstable();
        let at = |p: f64| {
            lengths
                .get(((lengths.len() as f64 - 1.0) * p).round() as usize)
                .map_or(0.0, Duration::as_secs_f64)
        };
        (lengths.len(), at(0.5), at(1.0))
    };
    let (half_open_cut, half_open_p50, half_open_max) = summary(Kind::HalfOpen);
    let (trickled_cut, trickled_p50, trickled_max) = summary(Kind::Trickled);
    let answered_408 = lives.iter().filter(|l| l.answered_408).count();
    let late = lives
        .iter()
        .filter(|l| l.never_cut || l.length > cut_within)
        .count()
        + still_open;
    let cut_max = half_open_max.max(trickled_max);
    println!(
        "half_open_cut={half_open_cut} half_open_p50_s={half_open_p50:.2} half_open_max_s={half_open_max:.2} trickled_cut={trickled_cut} trickled_p50_s={trickled_p50:.2} trickled_max_s={trickled_max:.2} trickled_answered_408={answered_408} connect_failures={failures}"
    );

    let mut client = Client::connect(&target).await?;
    let (status, metrics) = client.send(Method::GET, "/metrics", None).await?;
    if status == StatusCode::OK {
        let text = String::from_utf8_lossy(&metrics);
        let reasons: Vec<String> = text
            .lines()
            .filter_map(|line| line.strip_prefix("writ_http_connections_closed_total{reason=\""))
            .map(|rest| rest.replacen("\"} ", "=", 1))
            .collect();
        println!("server_closed {}", reasons.join(" "));
    }
    let peak_rss_mib = peak_rss_kib(server.pid()).map_or(0.0, |kib| kib as f64 / 1024.0);
    println!(
        "baseline_per_s={baseline:.0} under_slow_per_s={under_slow:.0} change_pct={change_pct:+.1} server_cpu_us_per_command={baseline_cpu:.1}/{under_cpu:.1} rounds={} slow_clients={clients} cut_max_s={cut_max:.2} open_after_{}s={late} server_peak_rss_mib={peak_rss_mib:.1}",
        args.rounds, args.cut_within
    );
    Ok(late == 0)
}

/// The CPU time process `pid` has used (user and system, every thread), in seconds; 0
/// where `/proc` does not tell. In clock ticks of 10 ms (Linux's `USER_HZ`).
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The fields after the command name, which is in parentheses and may hold spaces.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime, fields 14 and 15 of the line; what follows the name starts at 3.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// The median; `values` must not be empty.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// What one round among the slow clients saw.
struct Phase {
    /// The benchmark's `commands_per_s`.
    rate: f64,
    /// How long opening every slow client took.
    opened_in_s: f64,
    lives: Vec<Life>,
    /// Slow clients still open when the proof stopped waiting for them.
    still_open: usize,
    /// The server's CPU time when the benchmark ended, in seconds.
    server_cpu_s_at_bench_end: f64,
    /// Connects or first writes that failed.
    failures: u64,
}

/// Opens the slow clients, runs the benchmark among them (each slow client the server cuts
/// is opened again), then stops renewing them and waits for the server to cut the last.
async fn among_slow_clients(
    args: &SlowClientsArgs,
    address: std::net::SocketAddr,
    bench: &std::path::Path,
    target: &Target,
    server_pid: u32,
) -> Result<Phase, String> {
    let slow = Arc::new(Slow::default());
    let clients = 2 * args.slow;
    let mut tasks = tokio::task::JoinSet::new();
    let opening = Instant::now();
    for i in 0..clients {
        let kind = if i % 2 == 0 {
            Kind::HalfOpen
        } else {
            Kind::Trickled
        };
        let slow = Arc::clone(&slow);
        tasks.spawn(async move { keep_open(kind, address, &slow).await });
    }
    while slow.opened.load(Ordering::Relaxed) < clients {
        if opening.elapsed() > Duration::from_secs(60) {
            return Err(format!(
                "only {} of {clients} slow clients could connect in 60 s ({} failures; first: {})",
                slow.opened.load(Ordering::Relaxed),
                slow.failures.load(Ordering::Relaxed),
                slow.first_failure
                    .lock()
                    .expect("never poisoned")
                    .as_deref()
                    .unwrap_or("none")
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let opened_in_s = opening.elapsed().as_secs_f64();
    let rate = bench_http(bench, args, target).await;
    let bench_ended = Instant::now();
    let server_cpu_s_at_bench_end = cpu_seconds(server_pid);
    slow.stop.store(true, Ordering::Relaxed);
    let rate = rate?;
    // The last slow clients: the server must cut them too.
    let drained = tokio::time::timeout(Duration::from_secs(args.cut_within) + DRAIN_SLACK, async {
        while tasks.join_next().await.is_some() {}
    })
    .await
    .is_ok();
    let still_open = if drained { 0 } else { tasks.len() };
    tasks.abort_all();
    eprintln!(
        "slow clients drained {:.1} s after the benchmark",
        bench_ended.elapsed().as_secs_f64()
    );
    if let Some(failure) = slow
        .first_failure
        .lock()
        .expect("never poisoned")
        .as_deref()
    {
        eprintln!("first slow client that could not connect: {failure}");
    }
    let lives = std::mem::take(&mut *slow.lives.lock().expect("never poisoned"));
    Ok(Phase {
        rate,
        opened_in_s,
        lives,
        still_open,
        server_cpu_s_at_bench_end,
        failures: slow.failures.load(Ordering::Relaxed),
    })
}

/// Runs `writ bench http` against `target`; its `commands_per_s`.
async fn bench_http(
    bench: &std::path::Path,
    args: &SlowClientsArgs,
    target: &Target,
) -> Result<f64, String> {
    let output = tokio::process::Command::new(bench)
        .args(["bench", "http", "--target", &target.url])
        .args(["--connections", &args.connections.to_string()])
        .args(["--commands", &args.commands.to_string()])
        .args(["--tickets", &args.tickets.to_string()])
        .stderr(std::process::Stdio::inherit())
        .output()
        .await
        .map_err(|e| format!("cannot run writ bench http: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "writ bench http failed ({}): {stdout}",
            output.status
        ));
    }
    stdout
        .lines()
        .rev()
        .filter_map(|line| {
            line.split_whitespace()
                .find_map(|f| f.strip_prefix("commands_per_s="))
        })
        .next()
        .and_then(|rate| rate.parse().ok())
        .ok_or_else(|| format!("writ bench http printed no commands_per_s: {stdout}"))
}

/// One slow client of `kind`, opened again each time the server cuts it, until `stop`.
async fn keep_open(kind: Kind, address: std::net::SocketAddr, slow: &Slow) {
    let mut first = true;
    while !slow.stop.load(Ordering::Relaxed) {
        match live(kind, address, slow, &mut first).await {
            Ok(life) => slow.lives.lock().expect("never poisoned").push(life),
            Err(error) => {
                slow.failures.fetch_add(1, Ordering::Relaxed);
                slow.first_failure
                    .lock()
                    .expect("never poisoned")
                    .get_or_insert(error);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Connects, sends what `kind` sends, and waits for the server to close the connection.
async fn live(
    kind: Kind,
    address: std::net::SocketAddr,
    slow: &Slow,
    first: &mut bool,
) -> Result<Life, String> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(address)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let opening = match kind {
        Kind::HalfOpen => PARTIAL_HEAD,
        Kind::Trickled => TRICKLED_HEAD,
    };
    stream
        .write_all(opening)
        .await
        .map_err(|e| format!("first write: {e}"))?;
    if std::mem::take(first) {
        slow.opened.fetch_add(1, Ordering::Relaxed);
    }
    let (mut reader, mut writer) = stream.split();
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    let mut trickle = tokio::time::interval_at(started + TRICKLE_INTERVAL, TRICKLE_INTERVAL);
    let mut writing = kind == Kind::Trickled;
    let never_cut = tokio::time::timeout(LIFE_MAX, async {
        loop {
            tokio::select! {
                read = reader.read(&mut buf) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => received.extend_from_slice(&buf[..n]),
                },
                _ = trickle.tick(), if writing => {
                    // A failed write is the server's close, seen from this side; the
                    // read says so next.
                    writing = writer.write_all(b" ").await.is_ok();
                }
            }
        }
    })
    .await
    .is_err();
    Ok(Life {
        kind,
        length: started.elapsed(),
        answered_408: received.starts_with(b"HTTP/1.1 408"),
        never_cut,
    })
}
