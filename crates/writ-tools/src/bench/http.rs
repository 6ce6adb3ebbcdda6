//! `writ bench http`: the tickets workload against a running server, over HTTP/1.1 or
//! WebSockets, printing a machine-readable last line.
//!
//! The workload is the engine bench's: one `OpenTicket` (version 2) per ticket, then
//! `AddComment` round-robin over the tickets. Comments are sent only once every ticket is
//! opened, so each comment finds its ticket whatever the interleaving of connections.
//!
//! A command counts when the server acknowledges it (`202`, or the `accepted` frame): it
//! is then durable. Latency runs from the send to the acknowledgement, or with `--until
//! outcome` to the final status (`POST /update?wait=10`, one round trip, or the final
//! status frame), the way a client that waits for its result sees it; with `--rate`, a
//! command that could not be sent when it was due (all connections busy) counts from when
//! it was due, so that queueing in the client is not hidden. Then every outcome is
//! checked: over HTTP by a long poll on each id, over WebSockets by the final status
//! frames; and the event counts of a few tickets are read back.
//!
//! The tool runs on one thread (a current-thread runtime) with the lean client of
//! `client.rs`: it usually shares the machine with the server it measures, and what it
//! spends per request is taken from the server.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use clap::{Args, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;
use writ_server::wire::{CommandStatusBody, ErrorBody, StatusName, StreamPage};
use writ_tickets::workload;

use crate::client::{Client, Target};

/// How the commands travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// `POST /update`, one request in flight per keep-alive connection.
    Http,
    /// Text frames on `GET /ws`, up to `--window` commands in flight per socket.
    Ws,
}

/// What a command's latency runs to, and what counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Until {
    /// Its acknowledgement: `202` (or the `accepted` frame), durable.
    Accepted,
    /// Its final status, as a client that waits for its result sees it: `POST
    /// /update?wait=10` answers it in one round trip (or the final status frame).
    Outcome,
}

/// `writ bench http`'s arguments.
#[derive(Debug, Args)]
pub struct HttpArgs {
    /// The server, as http://HOST:PORT.
    #[arg(long)]
    target: String,
    /// The bearer token to send, for a server that runs with `--tokens`.
    #[arg(long, env = "WRIT_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// HTTP/1.1 keep-alive connections (one request in flight each), or WebSockets.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Total number of commands, opens included.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) commands: u64,
    /// Number of tickets (the first commands open them).
    #[arg(long, default_value_t = 10_000)]
    tickets: u64,
    /// Transport.
    #[arg(long, value_enum, default_value_t = Mode::Http)]
    mode: Mode,
    /// Commands per second, paced open-loop (command i is due at start + i / rate).
    /// Without it, each connection sends as fast as answers come.
    #[arg(long)]
    rate: Option<f64>,
    /// WebSockets only: commands in flight per socket (sent, no final status yet).
    #[arg(long, default_value_t = 256)]
    window: usize,
    /// What a command's latency runs to, and when it counts: its acknowledgement
    /// (`accepted`) or its final status (`outcome`).
    #[arg(long, value_enum, default_value_t = Until::Accepted)]
    until: Until,
    /// The resources workload instead of the tickets one: the app directory the server
    /// runs with (`serve --app DIR`), whose type `--type` it drives (see `--mix`).
    #[arg(long, value_name = "DIR")]
    pub(crate) app: Option<std::path::PathBuf>,
    /// With `--app`: which commands (see the README's "Measuring"): `mixed` (after
    /// `--users` creates, 50% creates, 40% patches of a name, 10% custom commands), or one
    /// kind alone, to compare kinds: `create`, `create-rule` (creates on a type with a rule
    /// on Create), `patch`, `custom`.
    #[arg(long, value_enum, default_value_t = super::app::Mix::Mixed, requires = "app")]
    pub(crate) mix: super::app::Mix,
    /// With `--app`: the resource type to drive; its schema has string properties `name`
    /// and `email`.
    #[arg(long = "type", default_value = "users", requires = "app")]
    pub(crate) type_name: String,
    /// With `--app`: the custom command (a verb: a machine transition or a handler's) that
    /// `custom` and `mixed` send, once per document, from the state a create leaves it in.
    #[arg(long, default_value = "Activate", requires = "app")]
    pub(crate) custom: String,
    /// With `--app` and a mix of patches or custom commands: documents created first, which
    /// the patches and custom commands then address.
    #[arg(long, default_value_t = 10_000, requires = "app")]
    pub(crate) users: u64,
}

/// How often a command answered `503` (or `overloaded`) is sent again, same id.
const RETRIES_MAX: u32 = 100;
/// How long without any answer before the tool gives up.
const SILENCE_MAX: Duration = Duration::from_secs(60);
/// How late tokio's timer may wake a paced sender (its resolution is 1 ms).
const TIMER_SLACK: Duration = Duration::from_millis(1);
/// Failures described on stderr, at most.
const ERRORS_SHOWN: usize = 5;

pub fn run(args: HttpArgs) -> Result<(), String> {
    if args.app.is_none() && (args.tickets == 0 || args.commands < args.tickets) {
        return Err("--commands must be at least --tickets, and --tickets at least 1".into());
    }
    if args.connections == 0 || args.window == 0 {
        return Err("--connections and --window must be at least 1".into());
    }
    if args
        .rate
        .is_some_and(|rate| !(rate.is_finite() && rate > 0.0))
    {
        return Err("--rate must be a positive number of commands per second".into());
    }
    let target = Target::parse(&args.target)?.with_token(args.token.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    match args.app.clone() {
        Some(dir) => {
            let workload = super::app::AppWorkload::new(&args, &dir)?;
            runtime.block_on(super::app::bench(args, target, workload))
        }
        None => runtime.block_on(bench(args, target)),
    }
}

/// What a workload sends: command `i`'s id and JSON.
pub(crate) trait Commands: Send + Sync + 'static {
    /// Command `i`'s id.
    fn id(&self, i: u64) -> Uuid;
    /// The index of the command with id `id`, if it is one of this run's.
    fn index(&self, id: Uuid) -> Option<u64>;
    /// The JSON of command `i`, as `POST /update` and WebSocket frames carry it.
    fn write_command(&self, out: &mut Vec<u8>, i: u64);
}

impl Commands for Workload {
    fn id(&self, i: u64) -> Uuid {
        Workload::id(self, i)
    }
    fn index(&self, id: Uuid) -> Option<u64> {
        Workload::index(self, id)
    }
    fn write_command(&self, out: &mut Vec<u8>, i: u64) {
        Workload::write_command(self, out, i);
    }
}

/// The commands: ids, bodies and what the tickets should hold afterwards.
#[derive(Debug)]
pub(crate) struct Workload {
    pub(crate) base: u128,
    /// The number of this run's first ticket: runs against the same server open tickets
    /// of their own.
    pub(crate) first_ticket: u64,
    pub(crate) tickets: u64,
    pub(crate) commands: u64,
}

impl Workload {
    pub(crate) fn id(&self, i: u64) -> Uuid {
        Uuid::from_u128(self.base ^ u128::from(i))
    }

    /// The ticket number of this run's ticket `n`.
    fn ticket(&self, n: u64) -> u64 {
        self.first_ticket + n
    }

    fn index(&self, id: Uuid) -> Option<u64> {
        u64::try_from(id.as_u128() ^ self.base)
            .ok()
            .filter(|i| *i < self.commands)
    }

    /// The JSON of command `i`, as `POST /update` and WebSocket frames carry it.
    pub(crate) fn write_command(&self, out: &mut Vec<u8>, i: u64) {
        out.clear();
        let (name, version) = if i < self.tickets {
            (workload::OPEN_TICKET, workload::OPEN_TICKET_VERSION)
        } else {
            (workload::ADD_COMMENT, workload::ADD_COMMENT_VERSION)
        };
        write!(
            out,
            r#"{{"id":"{}","command":"{name}","version":{version},"payload":"#,
            self.id(i).hyphenated()
        )
        .expect("writing to a Vec never fails");
        if i < self.tickets {
            workload::write_open_ticket_payload(out, self.ticket(i));
        } else {
            workload::write_add_comment_payload(
                out,
                self.ticket(i % self.tickets),
                i / self.tickets,
            );
        }
        out.push(b'}');
    }

    /// Comments on ticket `n`: commands `k * tickets + n` for `k >= 1` below `commands`.
    fn comments_on(&self, n: u64) -> u64 {
        (self.commands - 1).saturating_sub(n) / self.tickets
    }
}

/// Hands out command indexes in order to the connections, holds comments back until every
/// ticket is opened, and paces by `--rate`.
#[derive(Debug)]
struct Dispatch {
    next: AtomicU64,
    end: u64,
    /// Commands below this open tickets.
    tickets: u64,
    opens_done: AtomicU64,
    opened: watch::Sender<Option<Instant>>,
    start: Instant,
    rate: Option<f64>,
}

impl Dispatch {
    fn new(end: u64, tickets: u64, rate: Option<f64>) -> Self {
        Self {
            next: AtomicU64::new(0),
            end,
            tickets,
            opens_done: AtomicU64::new(0),
            opened: watch::channel(if tickets == 0 {
                Some(Instant::now())
            } else {
                None
            })
            .0,
            start: Instant::now(),
            rate,
        }
    }

    /// The next command to send, if any are left.
    fn claim(&self) -> Option<u64> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        (i < self.end).then_some(i)
    }

    /// When command `i` is due, if it may go now without waiting.
    fn due_now(&self, i: u64) -> Option<Instant> {
        let opened = i < self.tickets || self.opened.borrow().is_some();
        (self.rate.is_none() && opened).then(Instant::now)
    }

    /// Waits until command `i` may be sent; returns the instant its latency counts from.
    /// Cancel-safe: waiting again for the same `i` picks up where it was.
    async fn ready(&self, i: u64) -> Instant {
        let mut opened_at = None;
        if i >= self.tickets {
            let mut opened = self.opened.subscribe();
            opened_at = *opened
                .wait_for(Option::is_some)
                .await
                .expect("the sender lives in self");
        }
        match self.rate {
            None => Instant::now(),
            Some(rate) => {
                let due = self.start + Duration::from_secs_f64(i as f64 / rate);
                let due = opened_at.map_or(due, |opened: Instant| due.max(opened));
                tokio::time::sleep_until(due).await;
                // Tokio's timer wakes up to a millisecond late: that lateness is the
                // client's, not the server's. Beyond it the command really waited in the
                // client (no connection was free), and that wait counts.
                let now = Instant::now();
                if now.duration_since(due) <= TIMER_SLACK {
                    now
                } else {
                    due
                }
            }
        }
    }

    /// Command `i` is acknowledged or has failed for good.
    fn finished(&self, i: u64) {
        if i < self.tickets && self.opens_done.fetch_add(1, Ordering::AcqRel) + 1 == self.tickets {
            self.opened.send_replace(Some(Instant::now()));
        }
    }
}

/// What one connection saw.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    latencies_us: Vec<u32>,
    last_accepted: Option<Instant>,
    succeeded: u64,
    failed: u64,
    retries: u64,
    duplicates: u64,
    errors: Vec<String>,
}

impl Tally {
    fn accepted(&mut self, started: Instant) {
        let now = Instant::now();
        self.latencies_us.push(
            now.duration_since(started)
                .as_micros()
                .min(u128::from(u32::MAX)) as u32,
        );
        self.last_accepted = Some(self.last_accepted.map_or(now, |last| last.max(now)));
    }

    pub(crate) fn fail(&mut self, error: String) {
        self.failed += 1;
        if self.errors.len() < ERRORS_SHOWN {
            self.errors.push(error);
        }
    }

    fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        self.last_accepted = match (self.last_accepted, other.last_accepted) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.retries += other.retries;
        self.duplicates += other.duplicates;
        for error in other.errors {
            if self.errors.len() < ERRORS_SHOWN {
                self.errors.push(error);
            }
        }
    }
}

async fn bench(args: HttpArgs, target: Target) -> Result<(), String> {
    let base = Uuid::new_v4().as_u128();
    let workload = Arc::new(Workload {
        base,
        first_ticket: (base >> 96) as u64 * 1_000_000,
        tickets: args.tickets,
        commands: args.commands,
    });
    let Run {
        mut tally,
        acknowledged: acknowledged_count,
        elapsed,
        outcomes_elapsed,
        mut client,
    } = drive(&args, &target, Arc::clone(&workload), args.tickets).await?;
    let checked = check_tickets(&mut client, &workload, &mut tally).await?;
    let run = Run {
        tally,
        acknowledged: acknowledged_count,
        elapsed,
        outcomes_elapsed,
        client,
    };
    report(
        &args,
        &target,
        run,
        &format!("tickets={}", args.tickets),
        &format!("tickets_checked={checked}"),
        0,
    )
}

/// Prints a run's three lines, the last `commands_per_s=N p50_ms=X p99_ms=Y failed=K`;
/// an error when more than `failed_max` commands did not succeed.
pub(crate) fn report(
    args: &HttpArgs,
    target: &Target,
    run: Run,
    workload: &str,
    checked: &str,
    failed_max: u64,
) -> Result<(), String> {
    let Run {
        mut tally,
        acknowledged: acknowledged_count,
        elapsed,
        outcomes_elapsed,
        client: _,
    } = run;
    for error in &tally.errors {
        eprintln!("failure: {error}");
    }
    tally.latencies_us.sort_unstable();
    let pct = |p: f64| {
        if tally.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((tally.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        f64::from(tally.latencies_us[i]) / 1000.0
    };
    let rate = args
        .rate
        .map_or_else(|| "none".to_owned(), |r| format!("{r}"));
    println!(
        "target={} mode={:?} until={:?} connections={} commands={} {workload} rate={rate} acknowledged={acknowledged_count} elapsed_s={:.3}",
        target.url,
        args.mode,
        args.until,
        args.connections,
        args.commands,
        elapsed.as_secs_f64()
    );
    println!(
        "succeeded={} failed={} retries={} duplicates={} outcomes_checked_s={:.3} {checked} p90_ms={:.3} p999_ms={:.3} max_ms={:.3}",
        tally.succeeded,
        tally.failed,
        tally.retries,
        tally.duplicates,
        outcomes_elapsed.as_secs_f64(),
        pct(0.90),
        pct(0.999),
        pct(1.0)
    );
    let per_s = acknowledged_count as f64 / elapsed.as_secs_f64().max(f64::EPSILON);
    println!(
        "commands_per_s={per_s:.0} p50_ms={:.3} p99_ms={:.3} failed={}",
        pct(0.50),
        pct(0.99),
        tally.failed
    );
    if tally.failed > failed_max {
        return Err(format!(
            "{} commands did not succeed (at most {failed_max} may fail)",
            tally.failed
        ));
    }
    Ok(())
}

/// What a run of a workload saw, before its own checks.
pub(crate) struct Run {
    pub(crate) tally: Tally,
    pub(crate) acknowledged: u64,
    pub(crate) elapsed: Duration,
    pub(crate) outcomes_elapsed: Duration,
    pub(crate) client: Client,
}

/// Sends every command of `workload` (the first `setup` before any other: see
/// [`Dispatch`]), then checks every outcome.
pub(crate) async fn drive<W: Commands>(
    args: &HttpArgs,
    target: &Target,
    workload: Arc<W>,
    setup: u64,
) -> Result<Run, String> {
    // Connect everything first: an unreachable target fails here, before any command.
    let mut clients = Vec::with_capacity(args.connections);
    if args.mode == Mode::Http {
        for _ in 0..args.connections {
            clients.push(Client::connect(target).await?);
        }
    }
    let mut sockets = Vec::with_capacity(args.connections);
    if args.mode == Mode::Ws {
        for _ in 0..args.connections {
            sockets.push(connect_ws(target).await?);
        }
    }

    let dispatch = Arc::new(Dispatch::new(args.commands, setup, args.rate));
    let started = dispatch.start;
    let acknowledged: Arc<Vec<AtomicBool>> =
        Arc::new((0..args.commands).map(|_| AtomicBool::new(false)).collect());
    let mut tally = Tally::default();
    let mut tasks = tokio::task::JoinSet::new();
    let until = args.until;
    for client in clients.drain(..) {
        let (workload, dispatch, acknowledged) = (
            Arc::clone(&workload),
            Arc::clone(&dispatch),
            Arc::clone(&acknowledged),
        );
        tasks.spawn(async move {
            submit_http(client, &*workload, &dispatch, &acknowledged, until).await
        });
    }
    for socket in sockets {
        let (workload, dispatch, window) =
            (Arc::clone(&workload), Arc::clone(&dispatch), args.window);
        tasks.spawn(async move { submit_ws(socket, &*workload, &dispatch, window, until).await });
    }
    while let Some(joined) = tasks.join_next().await {
        let (part, client) = joined.map_err(|e| format!("a connection task failed: {e}"))??;
        tally.merge(part);
        clients.extend(client);
    }
    let acknowledged_count = tally.latencies_us.len() as u64;
    let elapsed = tally
        .last_accepted
        .unwrap_or_else(Instant::now)
        .duration_since(started);

    // Every outcome: over HTTP a long poll per id; the WebSockets saw theirs already.
    let outcomes_started = Instant::now();
    if args.mode == Mode::Http {
        let check = Arc::new(Dispatch::new(args.commands, 0, None));
        let mut tasks = tokio::task::JoinSet::new();
        for client in clients.drain(..) {
            let (workload, check, acknowledged) = (
                Arc::clone(&workload),
                Arc::clone(&check),
                Arc::clone(&acknowledged),
            );
            tasks.spawn(
                async move { check_outcomes(client, &*workload, &check, &acknowledged).await },
            );
        }
        while let Some(joined) = tasks.join_next().await {
            let (part, client) = joined.map_err(|e| format!("a connection task failed: {e}"))??;
            tally.merge(part);
            clients.push(client);
        }
    }
    let outcomes_elapsed = outcomes_started.elapsed();
    let lost = args.commands.saturating_sub(tally.succeeded + tally.failed);
    if lost > 0 {
        tally.fail(format!("{lost} commands have no final status"));
        tally.failed += lost - 1;
    }
    let client = match clients.pop() {
        Some(client) => client,
        None => Client::connect(target).await?,
    };
    Ok(Run {
        tally,
        acknowledged: acknowledged_count,
        elapsed,
        outcomes_elapsed,
        client,
    })
}

/// Sends commands on one connection until none are left.
async fn submit_http<W: Commands>(
    mut client: Client,
    workload: &W,
    dispatch: &Dispatch,
    acknowledged: &[AtomicBool],
    until: Until,
) -> Result<(Tally, Option<Client>), String> {
    let mut tally = Tally::default();
    let mut body = Vec::with_capacity(256);
    let path = match until {
        Until::Accepted => "/update",
        Until::Outcome => "/update?wait=10",
    };
    while let Some(i) = dispatch.claim() {
        let started = dispatch.ready(i).await;
        workload.write_command(&mut body, i);
        let body = Bytes::copy_from_slice(&body);
        let mut attempts = 0;
        loop {
            let (status, answer) = client.send(Method::POST, path, Some(body.clone())).await?;
            match status {
                StatusCode::OK if until == Until::Outcome => {
                    // The final status (a duplicate's too): settled here, not polled again.
                    let answer: CommandStatusBody = serde_json::from_slice(&answer)
                        .map_err(|e| format!("POST {path}: not a status: {e}"))?;
                    if answer.duplicate {
                        tally.duplicates += 1;
                    }
                    tally.accepted(started);
                    match answer.status {
                        StatusName::Succeeded => tally.succeeded += 1,
                        StatusName::Accepted => {
                            acknowledged[i as usize].store(true, Ordering::Relaxed);
                        }
                        _ => tally.fail(format!("command {i}: {answer:?}")),
                    }
                    break;
                }
                StatusCode::ACCEPTED | StatusCode::OK => {
                    if status == StatusCode::OK {
                        tally.duplicates += 1;
                    }
                    tally.accepted(started);
                    acknowledged[i as usize].store(true, Ordering::Relaxed);
                    break;
                }
                StatusCode::SERVICE_UNAVAILABLE if attempts < RETRIES_MAX => {
                    attempts += 1;
                    tally.retries += 1;
                    tokio::time::sleep(Duration::from_millis(u64::from(attempts.min(10)))).await;
                }
                _ => {
                    tally.fail(format!(
                        "command {i}: POST /update answered {status}: {}",
                        String::from_utf8_lossy(&answer)
                    ));
                    break;
                }
            }
        }
        dispatch.finished(i);
    }
    Ok((tally, Some(client)))
}

/// Long-polls the final status of every acknowledged command.
async fn check_outcomes<W: Commands>(
    mut client: Client,
    workload: &W,
    check: &Dispatch,
    acknowledged: &[AtomicBool],
) -> Result<(Tally, Client), String> {
    let mut tally = Tally::default();
    while let Some(i) = check.claim() {
        if !acknowledged[i as usize].load(Ordering::Relaxed) {
            continue; // counted as failed when it was refused
        }
        let path = format!("/update/{}?wait=60", workload.id(i).hyphenated());
        let mut polls = 0;
        loop {
            polls += 1;
            let (status, body) = client.send(Method::GET, &path, None).await?;
            if status != StatusCode::OK {
                tally.fail(format!(
                    "command {i}: GET {path} answered {status}: {}",
                    String::from_utf8_lossy(&body)
                ));
                break;
            }
            let answer: CommandStatusBody = serde_json::from_slice(&body)
                .map_err(|e| format!("GET {path}: not a status: {e}"))?;
            match answer.status {
                StatusName::Succeeded => {
                    tally.succeeded += 1;
                    break;
                }
                StatusName::Accepted if polls < 5 => {}
                _ => {
                    tally.fail(format!("command {i}: {}", String::from_utf8_lossy(&body)));
                    break;
                }
            }
        }
    }
    Ok((tally, client))
}

/// Reads back a few tickets' streams: one `TicketOpened`, then every comment.
async fn check_tickets(
    client: &mut Client,
    workload: &Workload,
    tally: &mut Tally,
) -> Result<usize, String> {
    let mut sample = vec![0, workload.tickets / 2, workload.tickets - 1];
    sample.dedup();
    for &n in &sample {
        let stream = workload::stream(workload.ticket(n));
        let expected = 1 + workload.comments_on(n);
        let mut events = 0u64;
        let mut types_ok = true;
        loop {
            let path = format!("/streams/{stream}?from={}&limit=1000", events + 1);
            let (status, body) = client.send(Method::GET, &path, None).await?;
            if status != StatusCode::OK {
                return Err(format!("GET {path} answered {status}"));
            }
            let page: StreamPage = serde_json::from_slice(&body)
                .map_err(|e| format!("GET {path}: not a stream page: {e}"))?;
            if page.events.is_empty() {
                break;
            }
            for event in &page.events {
                events += 1;
                let expected_type = if event.version == 1 {
                    "TicketOpened"
                } else {
                    "CommentAdded"
                };
                types_ok &= event.event_type == expected_type && event.version == events;
            }
        }
        if events != expected || !types_ok {
            tally.fail(format!(
                "{stream} holds {events} events (types in order: {types_ok}), expected 1 TicketOpened and {} CommentAdded",
                expected - 1
            ));
        }
    }
    Ok(sample.len())
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

async fn connect_ws(target: &Target) -> Result<Socket, String> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!("ws://{}/ws", target.authority);
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("cannot open a WebSocket to {url}: {e}"))?;
    if let Some(authorization) = target.authorization() {
        let value = authorization
            .parse()
            .map_err(|_| "the token is not a valid header value".to_owned())?;
        request.headers_mut().insert("authorization", value);
    }
    let (socket, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
        .await
        .map_err(|e| format!("cannot open a WebSocket to {url}: {e}"))?;
    Ok(socket)
}

/// A frame the server sends: an acknowledgement, a status, or a refusal.
#[derive(Debug, Deserialize)]
struct Answer {
    id: Option<Uuid>,
    status: String,
    #[serde(default)]
    error: Option<ErrorBody>,
}

/// A command on its way on a socket.
#[derive(Debug)]
struct Flight {
    started: Instant,
    acknowledged: bool,
}

/// Sends commands on one socket, up to `window` without a final status, until none are
/// left and every one has its final status.
async fn submit_ws<W: Commands>(
    socket: Socket,
    workload: &W,
    dispatch: &Dispatch,
    window: usize,
    until: Until,
) -> Result<(Tally, Option<Client>), String> {
    let (mut sink, mut frames) = socket.split();
    let mut tally = Tally::default();
    let mut flights: HashMap<u64, Flight> = HashMap::with_capacity(window);
    let mut retries: VecDeque<(Instant, u64)> = VecDeque::new();
    let mut claimed: Option<u64> = None;
    let mut exhausted = false;
    let mut body = Vec::with_capacity(256);
    let frame = |body: &mut Vec<u8>, i: u64| {
        workload.write_command(body, i);
        Message::Text(
            String::from_utf8(body.clone())
                .expect("commands are UTF-8")
                .into(),
        )
    };
    loop {
        if claimed.is_none() && !exhausted && flights.len() < window {
            claimed = dispatch.claim();
            exhausted = claimed.is_none();
        }
        if exhausted && claimed.is_none() && flights.is_empty() {
            break;
        }
        let retry_due = retries.front().map(|(due, _)| *due);
        tokio::select! {
            started = async { dispatch.ready(claimed.expect("guarded")).await }, if claimed.is_some() => {
                let i = claimed.take().expect("guarded");
                sink.feed(frame(&mut body, i)).await.map_err(|e| format!("WebSocket send: {e}"))?;
                flights.insert(i, Flight { started, acknowledged: false });
                // Send what else is due at once in the same write.
                while flights.len() < window {
                    let Some(next) = dispatch.claim() else {
                        exhausted = true;
                        break;
                    };
                    let Some(started) = dispatch.due_now(next) else {
                        claimed = Some(next);
                        break;
                    };
                    sink.feed(frame(&mut body, next)).await.map_err(|e| format!("WebSocket send: {e}"))?;
                    flights.insert(next, Flight { started, acknowledged: false });
                }
                sink.flush().await.map_err(|e| format!("WebSocket send: {e}"))?;
            }
            () = async { tokio::time::sleep_until(retry_due.expect("guarded")).await }, if retry_due.is_some() => {
                let (_, i) = retries.pop_front().expect("guarded");
                sink.send(frame(&mut body, i)).await.map_err(|e| format!("WebSocket send: {e}"))?;
            }
            received = tokio::time::timeout(SILENCE_MAX, frames.next()) => {
                let message = match received {
                    Err(_) => return Err(format!("no answer on a WebSocket for {SILENCE_MAX:?} with {} commands in flight", flights.len())),
                    Ok(None) => return Err(format!("the server closed a WebSocket with {} commands in flight", flights.len())),
                    Ok(Some(message)) => message.map_err(|e| format!("WebSocket receive: {e}"))?,
                };
                let Message::Text(text) = message else { continue };
                let answer: Answer = serde_json::from_str(&text).map_err(|e| format!("not an answer: {e}: {text}"))?;
                let Some(i) = answer.id.and_then(|id| workload.index(id)) else {
                    return Err(format!("an answer without a known id: {text}"));
                };
                let Some(flight) = flights.get_mut(&i) else {
                    return Err(format!("an answer for command {i}, which is not in flight: {text}"));
                };
                match answer.status.as_str() {
                    "accepted" => {
                        if !flight.acknowledged {
                            flight.acknowledged = true;
                            if until == Until::Accepted {
                                tally.accepted(flight.started);
                            }
                            dispatch.finished(i);
                        }
                    }
                    "succeeded" => {
                        let flight = flights.remove(&i).expect("looked up above");
                        if !flight.acknowledged {
                            // A duplicate answer carries the status straight away.
                            dispatch.finished(i);
                        }
                        if !flight.acknowledged || until == Until::Outcome {
                            tally.accepted(flight.started);
                        }
                        tally.succeeded += 1;
                    }
                    "invalid" if answer.error.as_ref().is_some_and(|e| e.code == "overloaded") => {
                        tally.retries += 1;
                        retries.push_back((Instant::now() + Duration::from_millis(2), i));
                    }
                    "rejected" | "failed" | "invalid" => {
                        let flight = flights.remove(&i).expect("looked up above");
                        if !flight.acknowledged {
                            dispatch.finished(i);
                        }
                        tally.fail(format!("command {i}: {text}"));
                    }
                    _ => return Err(format!("an answer of unknown status: {text}")),
                }
            }
        }
    }
    let _ = sink.close().await;
    Ok((tally, None))
}
