//! `writ proof overload`: offer the server more than it absorbs, open-loop, and check that
//! it sheds the excess with a quick `503` and loses nothing it acknowledged.
//!
//! On a fresh server: first the tickets are opened, then `writ bench http`'s workload
//! (`AddComment` round-robin over the tickets, built by its `Workload`) runs closed-loop
//! for `--probe-seconds` on `--probe-connections` keep-alive connections: what the
//! server absorbs. Then the same workload is offered at `--factor` times that rate (or at
//! `--rate` commands per second) for `--seconds`, open-loop: command `k` is due at
//! `start + k / rate` and goes out on an idle connection, or a new one (up to
//! `--connections-max`), whatever the answers to earlier ones; when every connection is
//! busy it is skipped and counted. With `--backoff-ms`, a connection answered `503` rests
//! that long before it carries another command (clients that honour `Retry-After`); by
//! default it goes again at once. `503`s are also timed apart for the first request on a
//! newly opened connection, which waits for the server to accept it, and every new
//! connection's first answer is timed from its connect (what a new client waits for).
//! Meanwhile the server's peak RSS (`VmHWM`) is sampled. Afterwards every acknowledged id
//! must reach `succeeded`, and a sample of the refused ids must be unknown to the server.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use tokio::time::Instant;
use uuid::Uuid;

use super::{DataDir, check, micros, percentile_ms};
use crate::bench::http::Workload;
use crate::client::{Client, Target};
use crate::server::{ServerProcess, peak_rss_kib};

/// `writ proof overload`'s arguments.
#[derive(Debug, Args)]
pub struct OverloadArgs {
    /// The `writ` binary to run as the server (default: this one).
    #[arg(long)]
    binary: Option<PathBuf>,
    /// How long the overload lasts.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    seconds: u64,
    /// The offered rate as a multiple of what the server absorbs closed-loop.
    #[arg(long, default_value_t = 10.0)]
    factor: f64,
    /// Commands offered per second, instead of `--factor` times the absorbed rate: to
    /// offer two servers the same load (the `null_server` example's floor beside `writ
    /// serve`).
    #[arg(long, conflicts_with = "factor")]
    rate: Option<f64>,
    /// How long the closed-loop measurement lasts.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600))]
    probe_seconds: u64,
    /// Keep-alive connections of the closed-loop measurement (as `writ bench http`'s
    /// default), one request in flight each.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    probe_connections: u64,
    /// Most connections open at once during the overload. Above the server's bound on
    /// requests in progress (4,096 by default), or requests queue in the client instead
    /// of reaching the server's gate; below its bound on connections (8,192).
    #[arg(long, default_value_t = 8_000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    connections_max: u64,
    /// Tickets the comments go to.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    tickets: u64,
    /// After a `503`, how long its connection waits before it carries another command:
    /// 0 (the default) for clients that ignore `Retry-After` and send again at once;
    /// 1000 for clients that honour the server's `Retry-After: 1`.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    backoff_ms: u64,
    /// The server's bound on requests in progress (`writ serve --requests-max`); default
    /// the server's own.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    server_requests_max: Option<u64>,
}

/// The bound on one request.
const REQUEST_MAX: Duration = Duration::from_secs(60);
/// Most commands offered over the whole overload.
const OFFERED_MAX: f64 = 10_000_000.0;
/// Refused ids read back to check that none was executed.
const REFUSED_CHECKED_MAX: usize = 1_000;
/// Connections reading back the statuses.
const CHECK_CONNECTIONS: usize = 64;
/// How often the server's peak RSS is read while it runs.
const RSS_INTERVAL: Duration = Duration::from_millis(100);

pub fn run(args: OverloadArgs) -> Result<(), String> {
    if !(args.factor.is_finite() && args.factor > 0.0) {
        return Err("--factor must be a positive number".into());
    }
    if let Some(rate) = args.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        return Err("--rate must be a positive number".into());
    }
    let binary = super::server_binary(args.binary.clone())?;
    let dir = DataDir::new(None, "overload")?;
    let extra: Vec<String> = args
        .server_requests_max
        .map(|n| vec!["--requests-max".to_owned(), n.to_string()])
        .unwrap_or_default();
    let server = ServerProcess::start(&binary, dir.path(), &extra)
        .map_err(|e| format!("cannot start the server: {e}"))?;
    println!(
        "binary={} server_pid={} start_ms={}",
        binary.display(),
        server.pid(),
        server.recovery.as_millis()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let result = runtime.block_on(overload(&args, &server));
    let kill = server.kill();
    let passed = result?;
    kill?;
    if !passed {
        return Err(
            "the overload proof failed: acknowledged commands were lost or refused ones executed"
                .into(),
        );
    }
    dir.remove();
    Ok(())
}

/// What the open-loop phase saw.
#[derive(Debug, Default)]
pub(super) struct Tally {
    /// Latencies of the `202` answers, microseconds.
    pub(super) accepted_us: Vec<u32>,
    /// Latencies of the `503` answers, microseconds.
    pub(super) refused_us: Vec<u32>,
    /// Latencies of the `503` answers to the first request on a new connection
    /// (connecting not included), microseconds; also in `refused_us`.
    refused_first_us: Vec<u32>,
    /// From the connect of a new connection to the first answer on it, whatever the
    /// answer (what a new client waits for), microseconds.
    first_answer_us: Vec<u32>,
    pub(super) accepted: Vec<u64>,
    pub(super) refused: Vec<u64>,
    /// Any other status code.
    pub(super) other: u64,
    /// No answer: the connection failed or the bound passed.
    pub(super) errors: u64,
    /// When the last answer came.
    last_answer: Option<Instant>,
    pub(super) first_error: Option<String>,
}

/// The connections of the open-loop phase.
pub(super) struct Pool {
    pub(super) idle: Mutex<Vec<Client>>,
    pub(super) open: AtomicUsize,
    pub(super) open_peak: AtomicUsize,
    pub(super) max: usize,
}

/// How a due command gets a connection.
enum Lane {
    Idle(Client),
    New,
}

impl Pool {
    fn take(&self) -> Option<Lane> {
        if let Some(client) = self.idle.lock().expect("never poisoned").pop() {
            return Some(Lane::Idle(client));
        }
        let opened = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.max).then_some(open + 1)
            })
            .ok()?;
        self.open_peak.fetch_max(opened + 1, Ordering::Relaxed);
        Some(Lane::New)
    }

    fn put(&self, client: Client) {
        self.idle.lock().expect("never poisoned").push(client);
    }

    fn close(&self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Runs the three phases and prints the figures; `Ok(false)` when the server broke its
/// promise.
async fn overload(args: &OverloadArgs, server: &ServerProcess) -> Result<bool, String> {
    let target = Target::parse(&server.url())?;
    let base = Uuid::new_v4().as_u128();
    let workload = Arc::new(Workload {
        base,
        first_ticket: 0,
        tickets: args.tickets,
        // Only bounds `Workload::index`, which this proof does not use.
        commands: u64::MAX,
    });
    let peak_kib = Arc::new(AtomicU64::new(0));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (pid, peak_kib, sampling) =
            (server.pid(), Arc::clone(&peak_kib), Arc::clone(&sampling));
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                if let Some(kib) = peak_rss_kib(pid) {
                    peak_kib.fetch_max(kib, Ordering::Relaxed);
                }
                tokio::time::sleep(RSS_INTERVAL).await;
            }
        })
    };

    // Open the tickets, then measure closed-loop.
    let mut clients = check::connect(&server.url(), args.probe_connections as usize).await?;
    let next = Arc::new(AtomicU64::new(0));
    let (opened, clients_back) =
        closed_loop(clients, &workload, &next, Some(args.tickets), None).await?;
    clients = clients_back;
    if opened.accepted.len() as u64 != args.tickets {
        return Err(format!(
            "only {} of {} tickets could be opened",
            opened.accepted.len(),
            args.tickets
        ));
    }
    let probe = Duration::from_secs(args.probe_seconds);
    let probe_started = Instant::now();
    let (probed, clients_back) = closed_loop(clients, &workload, &next, None, Some(probe)).await?;
    let probe_elapsed = probe_started.elapsed();
    clients = clients_back;
    let absorbed_per_s = probed.accepted.len() as f64 / probe_elapsed.as_secs_f64();
    let mut probe_us = probed.accepted_us.clone();
    probe_us.sort_unstable();
    println!(
        "absorbed_per_s={absorbed_per_s:.0} probe_s={:.1} probe_connections={} probe_p50_ms={:.3} probe_p99_ms={:.3} probe_503={}",
        probe_elapsed.as_secs_f64(),
        args.probe_connections,
        percentile_ms(&probe_us, 0.5),
        percentile_ms(&probe_us, 0.99),
        probed.refused.len()
    );
    if probed.accepted.is_empty() {
        return Err("the server acknowledged nothing in the closed-loop measurement".into());
    }

    // The overload, open-loop.
    let rate = args.rate.unwrap_or(absorbed_per_s * args.factor);
    if rate * args.seconds as f64 > OFFERED_MAX {
        return Err(format!(
            "{rate:.0} commands per second for {} s is above {OFFERED_MAX} commands; lower --factor, --rate or --seconds",
            args.seconds
        ));
    }
    let pool = Arc::new(Pool {
        open: AtomicUsize::new(clients.len()),
        open_peak: AtomicUsize::new(clients.len()),
        idle: Mutex::new(clients),
        max: args.connections_max as usize,
    });
    let tally = Arc::new(Mutex::new(Tally::default()));
    let offer = Offer {
        rate,
        seconds: args.seconds,
        backoff: Duration::from_millis(args.backoff_ms),
    };
    let (scheduled, skipped, late_us, phase) =
        open_loop(&target, &workload, &next, &pool, &tally, &offer).await?;
    let mut tally = std::mem::take(&mut *tally.lock().expect("never poisoned"));
    let sent = scheduled - skipped;
    let phase_s = phase.as_secs_f64();
    tally.accepted_us.sort_unstable();
    tally.refused_us.sort_unstable();
    tally.refused_first_us.sort_unstable();
    tally.first_answer_us.sort_unstable();
    let mut late_us = late_us;
    late_us.sort_unstable();
    println!(
        "target_per_s={rate:.0} seconds={} backoff_ms={} drained_s={phase_s:.1} scheduled={scheduled} sent={sent} skipped_no_connection={skipped} accepted={} rejected_503={} other={} errors={} connections_peak={}",
        args.seconds,
        args.backoff_ms,
        tally.accepted.len(),
        tally.refused.len(),
        tally.other,
        tally.errors,
        pool.open_peak.load(Ordering::Relaxed)
    );
    println!(
        "p50_202_ms={:.3} p99_202_ms={:.3} max_202_ms={:.3} p50_503_ms={:.3} p99_503_ms={:.3} max_503_ms={:.3} late_p99_ms={:.3}",
        percentile_ms(&tally.accepted_us, 0.5),
        percentile_ms(&tally.accepted_us, 0.99),
        percentile_ms(&tally.accepted_us, 1.0),
        percentile_ms(&tally.refused_us, 0.5),
        percentile_ms(&tally.refused_us, 0.99),
        percentile_ms(&tally.refused_us, 1.0),
        percentile_ms(&late_us, 0.99),
    );
    println!(
        "first_on_new_connection_503={} p50_ms={:.3} p99_ms={:.3}",
        tally.refused_first_us.len(),
        percentile_ms(&tally.refused_first_us, 0.5),
        percentile_ms(&tally.refused_first_us, 0.99),
    );
    println!(
        "first_answer_on_new_connection={} p50_ms={:.3} p99_ms={:.3}",
        tally.first_answer_us.len(),
        percentile_ms(&tally.first_answer_us, 0.5),
        percentile_ms(&tally.first_answer_us, 0.99),
    );
    if let Some(error) = &tally.first_error {
        eprintln!("first request without an answer: {error}");
    }

    // Nothing acknowledged lost; nothing refused executed.
    let mut acknowledged: Vec<u64> = opened.accepted;
    acknowledged.extend(&probed.accepted);
    acknowledged.extend(&tally.accepted);
    let ids: Vec<Uuid> = acknowledged.iter().map(|&i| workload.id(i)).collect();
    let connections = check::connect(&server.url(), CHECK_CONNECTIONS).await?;
    let (answers, connections) = check::statuses(connections, ids.clone()).await?;
    let (lost, not_succeeded) = check::acknowledged_outcomes(&ids, &answers);
    let mut refused = tally.refused.clone();
    refused.extend(&probed.refused);
    refused.truncate(REFUSED_CHECKED_MAX);
    let refused_ids: Vec<Uuid> = refused.iter().map(|&i| workload.id(i)).collect();
    let (answers, _) = check::statuses(connections, refused_ids.clone()).await?;
    let refused_found = answers.iter().filter(|a| a.is_some()).count();
    if refused_found > 0 {
        eprintln!("VIOLATION: {refused_found} commands answered 503 were executed anyway");
    }

    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.await;
    if let Some(kib) = peak_rss_kib(server.pid()) {
        peak_kib.fetch_max(kib, Ordering::Relaxed);
    }
    let peak_rss_mib = peak_kib.load(Ordering::Relaxed) as f64 / 1024.0;
    println!(
        "checked={} not_succeeded={not_succeeded} refused_checked={} refused_found={refused_found}",
        ids.len(),
        refused_ids.len()
    );
    println!(
        "offered_per_s={:.0} accepted_per_s={:.0} rejected_503={} p99_503_ms={:.3} peak_rss_mib={peak_rss_mib:.1} lost={lost}",
        sent as f64 / args.seconds as f64,
        tally.accepted.len() as f64 / phase_s,
        tally.refused.len(),
        percentile_ms(&tally.refused_us, 0.99),
    );
    Ok(lost == 0 && not_succeeded == 0 && refused_found == 0)
}

/// Sends commands `next..` on every connection, each as soon as the previous answer came,
/// until `count` commands are acknowledged or `duration` has passed. A `503` is counted
/// and the command sent again (as `writ bench http` does) only while opening tickets.
pub(super) async fn closed_loop(
    clients: Vec<Client>,
    workload: &Arc<Workload>,
    next: &Arc<AtomicU64>,
    count: Option<u64>,
    duration: Option<Duration>,
) -> Result<(Tally, Vec<Client>), String> {
    let end = duration.map(|d| Instant::now() + d);
    let last = count.map(|c| next.load(Ordering::Relaxed) + c);
    let mut tasks = tokio::task::JoinSet::new();
    for mut client in clients {
        let (workload, next) = (Arc::clone(workload), Arc::clone(next));
        tasks.spawn(async move {
            let mut tally = Tally::default();
            let mut body = Vec::with_capacity(256);
            'commands: loop {
                if end.is_some_and(|end| Instant::now() >= end) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if last.is_some_and(|last| i >= last) {
                    break;
                }
                workload.write_command(&mut body, i);
                let body = Bytes::copy_from_slice(&body);
                loop {
                    let started = Instant::now();
                    let (status, answer) = check::call(
                        &mut client,
                        Method::POST,
                        "/update",
                        Some(body.clone()),
                        REQUEST_MAX,
                    )
                    .await?;
                    match status {
                        StatusCode::ACCEPTED => {
                            tally.accepted_us.push(micros(started.elapsed()));
                            tally.accepted.push(i);
                            continue 'commands;
                        }
                        StatusCode::SERVICE_UNAVAILABLE if last.is_some() => {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        StatusCode::SERVICE_UNAVAILABLE => {
                            tally.refused.push(i);
                            continue 'commands;
                        }
                        _ => {
                            return Err(format!(
                                "POST /update of command {i} answered {status}: {}",
                                String::from_utf8_lossy(&answer)
                            ));
                        }
                    }
                }
            }
            Ok::<_, String>((tally, client))
        });
    }
    let mut tally = Tally::default();
    let mut clients = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (part, client) = joined.map_err(|e| format!("a connection task failed: {e}"))??;
        tally.accepted_us.extend(part.accepted_us);
        tally.accepted.extend(part.accepted);
        tally.refused.extend(part.refused);
        clients.push(client);
    }
    Ok((tally, clients))
}

/// What the open-loop phase offers.
#[derive(Debug, Clone, Copy)]
pub(super) struct Offer {
    /// Commands due per second.
    pub(super) rate: f64,
    /// For how long.
    pub(super) seconds: u64,
    /// How long a connection answered `503` rests before it carries another command.
    pub(super) backoff: Duration,
}

/// Offers commands `next..` as `offer` says, open-loop. Returns the commands due, those
/// skipped for want of a connection, how late the client was for each (microseconds),
/// and how long the phase lasted until the last answer came (a backoff after the last
/// answer does not count).
pub(super) async fn open_loop(
    target: &Target,
    workload: &Arc<Workload>,
    next: &Arc<AtomicU64>,
    pool: &Arc<Pool>,
    tally: &Arc<Mutex<Tally>>,
    offer: &Offer,
) -> Result<(u64, u64, Vec<u32>, Duration), String> {
    let Offer {
        rate,
        seconds,
        backoff,
    } = *offer;
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    let mut late_us = Vec::new();
    let mut scheduled = 0u64;
    let mut skipped = 0u64;
    let mut body = Vec::with_capacity(256);
    loop {
        let due = start + Duration::from_secs_f64(scheduled as f64 / rate);
        if due >= end {
            break;
        }
        if due > Instant::now() {
            tokio::time::sleep_until(due).await;
        }
        late_us.push(micros(Instant::now().saturating_duration_since(due)));
        scheduled += 1;
        while tasks.try_join_next().is_some() {}
        let Some(lane) = pool.take() else {
            skipped += 1;
            continue;
        };
        let i = next.fetch_add(1, Ordering::Relaxed);
        workload.write_command(&mut body, i);
        let body = Bytes::copy_from_slice(&body);
        let (pool, tally, target) = (Arc::clone(pool), Arc::clone(tally), target.clone());
        tasks.spawn(async move {
            let first = matches!(lane, Lane::New);
            let connecting = Instant::now();
            let mut client = match lane {
                Lane::Idle(client) => client,
                Lane::New => {
                    match tokio::time::timeout(REQUEST_MAX, Client::connect(&target)).await {
                        Ok(Ok(client)) => client,
                        Ok(Err(e)) => return fail(&pool, &tally, e),
                        Err(_) => return fail(&pool, &tally, "connecting timed out".to_owned()),
                    }
                }
            };
            let started = Instant::now();
            let mut answer = check::call(
                &mut client,
                Method::POST,
                "/update",
                Some(body.clone()),
                REQUEST_MAX,
            )
            .await;
            if answer.is_err() && !first {
                // A kept-alive connection the server closed while it sat in the pool (its
                // head or idle deadline passed): as HTTP clients do, send again once on a
                // new connection. Safe: the command's id makes a second copy a duplicate.
                answer = match tokio::time::timeout(REQUEST_MAX, Client::connect(&target)).await {
                    Ok(Ok(fresh)) => {
                        client = fresh;
                        check::call(
                            &mut client,
                            Method::POST,
                            "/update",
                            Some(body),
                            REQUEST_MAX,
                        )
                        .await
                    }
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err("connecting timed out".to_owned()),
                };
            }
            match answer {
                Ok((status, _)) => {
                    let us = micros(started.elapsed());
                    let first_answer_us = micros(connecting.elapsed());
                    let refused = status == StatusCode::SERVICE_UNAVAILABLE;
                    {
                        let mut tally = tally.lock().expect("never poisoned");
                        tally.last_answer = Some(Instant::now());
                        if first {
                            tally.first_answer_us.push(first_answer_us);
                        }
                        match status {
                            StatusCode::ACCEPTED => {
                                tally.accepted_us.push(us);
                                tally.accepted.push(i);
                            }
                            StatusCode::SERVICE_UNAVAILABLE => {
                                tally.refused_us.push(us);
                                if first {
                                    tally.refused_first_us.push(us);
                                }
                                tally.refused.push(i);
                            }
                            _ => tally.other += 1,
                        }
                    }
                    if refused && !backoff.is_zero() {
                        tokio::time::sleep(backoff).await;
                    }
                    pool.put(client);
                }
                Err(e) => fail(&pool, &tally, e),
            }
        });
    }
    while let Some(joined) = tokio::time::timeout(REQUEST_MAX * 2, tasks.join_next())
        .await
        .map_err(|_| "requests still without an answer two minutes after the overload".to_owned())?
    {
        joined.map_err(|e| format!("a request task failed: {e}"))?;
    }
    let last_answer = tally.lock().expect("never poisoned").last_answer;
    let phase = last_answer.map_or_else(|| start.elapsed(), |at| at.duration_since(start));
    Ok((scheduled, skipped, late_us, phase))
}

/// A request without an answer: its connection is dropped.
fn fail(pool: &Pool, tally: &Mutex<Tally>, error: String) {
    pool.close();
    let mut tally = tally.lock().expect("never poisoned");
    tally.errors += 1;
    tally.first_error.get_or_insert(error);
}
