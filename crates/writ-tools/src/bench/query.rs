//! `writ bench query`: the read side of a running server, printing a machine-readable last
//! line `named_p99_ms=X code_p99_ms=Y replay_events_per_s=Z`.
//!
//! 1. **Data.** When the read model holds fewer than `--tickets` tickets, it loads the
//!    tickets workload with `writ bench http --mode ws` (one `OpenTicket` per ticket, then
//!    `--comments` `AddComment`s round-robin), then waits until the read model has applied
//!    the log's last position. Against a server that already holds the data (a second run),
//!    it loads nothing.
//! 2. **Named queries.** `--queries` requests on `--connections` keep-alive connections,
//!    each waiting for its answer before sending the next: `getTicket` of a random ticket
//!    (half), `searchTickets` by a ticket's number as text (v1) and by status with a page
//!    total (v2), and `ticketStats`. Latency runs from the send to the last byte of the
//!    answer.
//! 3. **Query code.** A quarter as many `POST /query/v2` requests: a small program (one
//!    ticket's title and comment count) and a medium one (a search mapped and filtered in
//!    JavaScript).
//! 4. **Replay.** `POST /projections/tickets/rebuild`: the projection is rebuilt from
//!    position 1 beside the live one; events per second is the switch position over the
//!    time from the request until `GET /projections` (polled every 10 ms) shows the switch.
//!
//! The queries are checked (status `200`, the ticket asked for), so a fast wrong answer
//! does not count.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::Args;
use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::client::{Client, Target};

/// `writ bench query`'s arguments.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The server, as http://HOST:PORT.
    #[arg(long)]
    target: String,
    /// The bearer token to send, for a server that runs with `--tokens`.
    #[arg(long, env = "WRIT_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Tickets the read model must hold; missing ones are loaded first.
    #[arg(long, default_value_t = 100_000)]
    tickets: u64,
    /// Comments loaded with the tickets (round-robin over them).
    #[arg(long, default_value_t = 900_000)]
    comments: u64,
    /// Named queries measured (code queries: a quarter as many).
    #[arg(long, default_value_t = 20_000)]
    queries: u64,
    /// Connections sending queries at once, one query in flight each.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Skip the replay measurement (it rebuilds the server's read model).
    #[arg(long)]
    no_replay: bool,
}

/// Ticket ids sampled for `getTicket` and text searches.
const SAMPLE_TICKETS: usize = 2_000;
/// Queries sent before measuring, to warm connections, caches and VMs.
const WARM_UP: u64 = 500;
/// The longest the read model may take to catch up after loading.
const CATCH_UP_MAX: Duration = Duration::from_secs(600);

pub fn run(args: QueryArgs) -> Result<(), String> {
    if args.tickets == 0 || args.queries == 0 || args.connections == 0 {
        return Err("--tickets, --queries and --connections must be at least 1".into());
    }
    let target = Target::parse(&args.target)?.with_token(args.token.clone());
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?
        .block_on(bench(args, target))
}

async fn bench(args: QueryArgs, target: Target) -> Result<(), String> {
    let mut client = Client::connect(&target).await?;
    let stats = client
        .json(Method::GET, "/query/v1/ticketStats", None, StatusCode::OK)
        .await?;
    let held = stats["total"].as_u64().unwrap_or(0);
    if held < args.tickets {
        load(&args, &target).await?;
    } else {
        eprintln!("the read model holds {held} tickets already; loading nothing");
    }
    let position = catch_up(&mut client).await?;
    let tickets = sample_tickets(&mut client).await?;
    eprintln!(
        "read model at position {position}; sampled {} tickets",
        tickets.len()
    );
    let tickets = Arc::new(tickets);

    let named = measure(&target, &args, args.queries, &tickets, named_query).await?;
    report("named", &named);
    let code = measure(&target, &args, args.queries / 4, &tickets, code_query).await?;
    report("code", &code);
    let replay = if args.no_replay {
        0.0
    } else {
        replay(&mut client).await?
    };
    println!(
        "named_p99_ms={:.3} code_p99_ms={:.3} replay_events_per_s={replay:.0}",
        named.percentile(0.99),
        code.percentile(0.99)
    );
    Ok(())
}

/// Loads the workload through `writ bench http --mode ws`, run by the current executable
/// (a `writ` binary).
async fn load(args: &QueryArgs, target: &Target) -> Result<(), String> {
    let commands = args.tickets + args.comments;
    eprintln!(
        "loading {} tickets and {} comments over WebSockets",
        args.tickets, args.comments
    );
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let mut command = tokio::process::Command::new(exe);
    // In the environment rather than the arguments, which any user of the machine may see.
    if let Some(token) = &target.token {
        command.env("WRIT_TOKEN", token);
    }
    let status = command
        .args(["bench", "http", "--mode", "ws", "--connections", "4"])
        .args(["--target", &target.url])
        .args(["--tickets", &args.tickets.to_string()])
        .args(["--commands", &commands.to_string()])
        .status()
        .await
        .map_err(|e| format!("cannot run writ bench http: {e}"))?;
    if !status.success() {
        return Err(format!("loading the workload failed: {status}"));
    }
    Ok(())
}

/// Waits until the read model has applied the log's last position; returns it.
async fn catch_up(client: &mut Client) -> Result<u64, String> {
    let projections = client
        .json(Method::GET, "/projections", None, StatusCode::OK)
        .await?;
    let last = projections["projections"][0]["lastPosition"]
        .as_u64()
        .ok_or_else(|| format!("GET /projections has no lastPosition: {projections}"))?;
    let deadline = Instant::now() + CATCH_UP_MAX;
    let path = format!("/query/v1/ticketStats?after={last}");
    loop {
        let (status, body) = client.send(Method::GET, &path, None).await?;
        match status {
            StatusCode::OK => return Ok(last),
            StatusCode::GATEWAY_TIMEOUT if Instant::now() < deadline => continue,
            _ => {
                return Err(format!(
                    "GET {path} answered {status}: {}",
                    String::from_utf8_lossy(&body)
                ));
            }
        }
    }
}

/// Up to [`SAMPLE_TICKETS`] ticket ids, from `searchTickets` pages.
async fn sample_tickets(client: &mut Client) -> Result<Vec<String>, String> {
    let mut tickets = Vec::with_capacity(SAMPLE_TICKETS);
    let mut cursor: Option<String> = None;
    while tickets.len() < SAMPLE_TICKETS {
        let path = match &cursor {
            None => "/query/v2/searchTickets?limit=1000".to_owned(),
            Some(cursor) => format!("/query/v2/searchTickets?limit=1000&cursor={cursor}"),
        };
        let page = client
            .json(Method::GET, &path, None, StatusCode::OK)
            .await?;
        for item in page["items"].as_array().into_iter().flatten() {
            if let Some(id) = item["id"].as_str() {
                tickets.push(id.to_owned());
            }
        }
        match page["cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    if tickets.is_empty() {
        return Err("the read model holds no tickets".into());
    }
    Ok(tickets)
}

/// A request to send and how to check its answer.
struct Probe {
    method: Method,
    path: String,
    body: Option<Bytes>,
    /// The ticket id the answer must mention, if any.
    expect: Option<String>,
}

/// Query `i` of the named mix.
fn named_query(i: u64, tickets: &[String]) -> Probe {
    let ticket = &tickets[pick(i, tickets.len())];
    let number = ticket.trim_start_matches("t-");
    let (path, expect) = match i % 10 {
        0..=4 => (format!("/query/v1/getTicket?id={ticket}"), Some(ticket)),
        5 | 6 => (
            format!("/query/v1/searchTickets?text={number}&limit=20"),
            Some(ticket),
        ),
        7 | 8 => (
            "/query/v2/searchTickets?status=open&limit=20".to_owned(),
            None,
        ),
        _ => ("/query/v1/ticketStats".to_owned(), None),
    };
    Probe {
        method: Method::GET,
        path,
        body: None,
        expect: expect.cloned(),
    }
}

/// Query `i` of the code mix.
fn code_query(i: u64, tickets: &[String]) -> Probe {
    let ticket = &tickets[pick(i, tickets.len())];
    let number = ticket.trim_start_matches("t-");
    let (body, expect) = if i.is_multiple_of(2) {
        (
            json!({
                "code": "const t = getTicket(args.id); return {id: t.id, title: t.title, comments: t.commentCount}",
                "args": {"id": ticket},
            }),
            Some(ticket.clone()),
        )
    } else {
        (
            json!({
                "code": "const page = searchTickets({text: args.word, limit: 100}); \
                         return page.items.filter(t => t.commentCount > 0).map(t => ({id: t.id, n: t.commentCount}))",
                "args": {"word": number},
            }),
            None,
        )
    };
    Probe {
        method: Method::POST,
        path: "/query/v2".to_owned(),
        body: Some(Bytes::from(body.to_string())),
        expect,
    }
}

/// A deterministic spread of `i` over `0..len`.
fn pick(i: u64, len: usize) -> usize {
    let mixed = i
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .rotate_left(29)
        .wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (mixed % len as u64) as usize
}

/// Latencies in microseconds, sorted.
struct Latencies {
    us: Vec<u32>,
    elapsed: Duration,
}

impl Latencies {
    fn percentile(&self, p: f64) -> f64 {
        if self.us.is_empty() {
            return 0.0;
        }
        let i = ((self.us.len() as f64 - 1.0) * p).round() as usize;
        f64::from(self.us[i]) / 1000.0
    }
}

fn report(name: &str, latencies: &Latencies) {
    println!(
        "{name}: queries={} per_s={:.0} p50_ms={:.3} p90_ms={:.3} p99_ms={:.3} p999_ms={:.3} max_ms={:.3}",
        latencies.us.len(),
        latencies.us.len() as f64 / latencies.elapsed.as_secs_f64().max(f64::EPSILON),
        latencies.percentile(0.5),
        latencies.percentile(0.9),
        latencies.percentile(0.99),
        latencies.percentile(0.999),
        latencies.percentile(1.0),
    );
}

/// Sends `count` probes (after a warm-up) over the connections and times each.
async fn measure(
    target: &Target,
    args: &QueryArgs,
    count: u64,
    tickets: &Arc<Vec<String>>,
    probe: fn(u64, &[String]) -> Probe,
) -> Result<Latencies, String> {
    let mut warm = Client::connect(target).await?;
    for i in 0..WARM_UP.min(count) {
        send(&mut warm, probe(u64::MAX - i, tickets)).await?;
    }
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.connections {
        let mut client = Client::connect(target).await?;
        let (next, tickets) = (Arc::clone(&next), Arc::clone(tickets));
        tasks.spawn(async move {
            let mut us = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, String>(us);
                }
                let sent = Instant::now();
                send(&mut client, probe(i, &tickets)).await?;
                us.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
            }
        });
    }
    let mut us = Vec::with_capacity(count as usize);
    while let Some(joined) = tasks.join_next().await {
        us.extend(joined.map_err(|e| format!("a query task failed: {e}"))??);
    }
    let elapsed = started.elapsed();
    us.sort_unstable();
    Ok(Latencies { us, elapsed })
}

/// Sends a probe and checks its answer.
async fn send(client: &mut Client, probe: Probe) -> Result<(), String> {
    let (status, body) = client
        .send(probe.method.clone(), &probe.path, probe.body)
        .await?;
    if status != StatusCode::OK {
        return Err(format!(
            "{} {} answered {status}: {}",
            probe.method,
            probe.path,
            String::from_utf8_lossy(&body)
        ));
    }
    if let Some(ticket) = probe.expect {
        let quoted = format!("\"{ticket}\"");
        if !body.windows(quoted.len()).any(|w| w == quoted.as_bytes()) {
            return Err(format!(
                "{} {} answered without {ticket}: {}",
                probe.method,
                probe.path,
                String::from_utf8_lossy(&body[..body.len().min(300)])
            ));
        }
    }
    Ok(())
}

/// Rebuilds the live projection and returns events per second.
async fn replay(client: &mut Client) -> Result<f64, String> {
    let started = Instant::now();
    client
        .json(
            Method::POST,
            "/projections/tickets/rebuild",
            Some(Bytes::from_static(b"{}")),
            StatusCode::ACCEPTED,
        )
        .await?;
    loop {
        let all = client
            .json(Method::GET, "/projections", None, StatusCode::OK)
            .await?;
        let rebuild: &Value = &all["projections"][0]["rebuild"];
        match rebuild["state"].as_str() {
            Some("running") => tokio::time::sleep(Duration::from_millis(10)).await,
            Some("switched") => {
                let elapsed = started.elapsed();
                let events = rebuild["position"].as_u64().unwrap_or(0);
                let per_s = events as f64 / elapsed.as_secs_f64().max(f64::EPSILON);
                println!(
                    "replay: events={events} elapsed_s={:.3} events_per_s={per_s:.0}",
                    elapsed.as_secs_f64()
                );
                return Ok(per_s);
            }
            _ => return Err(format!("the rebuild did not switch: {rebuild}")),
        }
    }
}
