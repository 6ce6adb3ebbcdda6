//! `writ proof crash`: SIGKILL under load, restart, and check that the contract held.
//!
//! Each round starts the clients against the running server; each client sends, one at a
//! time on its own connection, `OpenTicket` with a fresh id and ticket, `AddComment` with a
//! fresh id on a ticket it opened, an acknowledged id again with the same body (must be a
//! duplicate), or with another body (must be `409`). At a random moment (seeded) the server
//! is killed with SIGKILL; commands without an answer are unknown. The server is then
//! restarted on the same directory (the time to its `listening on` line is the recovery
//! time) and checked:
//!
//! - every command of the round, and every command not yet found, has a status: an
//!   acknowledged one must be known and reach `succeeded`; an unknown one may be absent
//!   (its client sends it again in the next round, as a client retrying would), and if
//!   it exists it must be final like any other;
//! - the global log, read from the last position checked, has no gaps, keeps what it held,
//!   and holds exactly one commit per executed command (by the `commandId` of its event);
//! - every ticket touched holds its open and exactly one `CommentAdded` per `AddComment`
//!   id that succeeded for it;
//! - a sample of older commands, positions and tickets is read again, and every
//!   `--full-check-every` rounds and after the last one, everything is.

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use clap::Args;
use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use serde::Deserialize;
use uuid::Uuid;

use super::ledger::{Answer, Breach, Kind, Ledger, Sent, Spec};
use super::{DataDir, Rng, check};
use crate::client::Client;
use crate::server::ServerProcess;

/// `writ proof crash`'s arguments.
#[derive(Debug, Args)]
pub struct CrashArgs {
    /// Kills and restarts.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    rounds: u32,
    /// Clients sending at once, each on its own connection, one command in flight each.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=1_024))]
    clients: u64,
    /// The `writ` binary to run as the server (default: this one).
    #[arg(long)]
    binary: Option<PathBuf>,
    /// The server's data directory; must be empty or absent, and is kept. Default: a
    /// fresh directory under the system's temporary directory, removed if the proof
    /// passes.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The seed of every random choice: kill moments, commands, ids (default: random;
    /// printed either way).
    #[arg(long)]
    seed: Option<u64>,
    /// The earliest kill, in milliseconds after the clients start.
    #[arg(long, default_value_t = 20)]
    kill_min_ms: u64,
    /// The latest kill, in milliseconds after the clients start.
    #[arg(long, default_value_t = 1_500)]
    kill_max_ms: u64,
    /// Most commands sent in one round; the clients stop there and wait for the kill.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    round_commands_max: u64,
    /// Older commands, positions and tickets read again after each restart.
    #[arg(long, default_value_t = 200)]
    sample: usize,
    /// Check everything every N rounds (0: only after the last round).
    #[arg(long, default_value_t = 25)]
    full_check_every: u32,
}

/// The bound on one `POST /update` to a live server.
const REQUEST_MAX: Duration = Duration::from_secs(60);
/// Most commands the proof keeps track of over the whole run.
const COMMANDS_MAX: u64 = 20_000_000;
/// Acknowledged commands one client remembers, to send again.
const HISTORY_MAX: usize = 256;
/// Tickets one client comments on (its newest).
const TICKETS_MAX: usize = 16;
/// Absent commands one client sends again in its next round, at most.
const RETRIES_MAX: usize = 256;

pub fn run(args: CrashArgs) -> Result<(), String> {
    if args.kill_min_ms > args.kill_max_ms {
        return Err("--kill-min-ms must not exceed --kill-max-ms".into());
    }
    if u64::from(args.rounds).saturating_mul(args.round_commands_max) > COMMANDS_MAX {
        return Err(format!(
            "--rounds times --round-commands-max is above {COMMANDS_MAX}, more commands than the proof keeps track of"
        ));
    }
    let binary = super::server_binary(args.binary.clone())?;
    let seed = args.seed.unwrap_or_else(super::fresh_seed);
    let dir = DataDir::new(args.data_dir.clone(), "crash")?;
    println!(
        "seed={seed} rounds={} clients={} binary={} data_dir={}",
        args.rounds,
        args.clients,
        binary.display(),
        dir.path().display()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let kept = || format!("the data directory is kept at {}", dir.path().display());

    let mut rng = Rng::new(seed);
    let mut clients: Vec<ClientState> = (0..args.clients as usize)
        .map(|index| ClientState::new(index, Rng::new(rng.next_u64())))
        .collect();
    let counters = Arc::new(Counters::default());
    let mut ledger = Ledger::default();
    let mut recoveries_ms: Vec<u32> = Vec::with_capacity(args.rounds as usize);
    let mut server = ServerProcess::start(&binary, dir.path(), &[])
        .map_err(|e| format!("cannot start the server: {e}; {}", kept()))?;
    let mut rounds_done = 0;
    for round in 1..=args.rounds {
        let kill_after = Duration::from_millis(rng.between(args.kill_min_ms, args.kill_max_ms));
        let (states, sent, load) = runtime
            .block_on(drive_round(
                server,
                std::mem::take(&mut clients),
                Arc::clone(&counters),
                args.round_commands_max,
                kill_after,
            ))
            .map_err(|e| format!("round {round}: {e}; {}", kept()))?;
        clients = states;
        ledger.record_round(round, &sent);

        server = ServerProcess::start(&binary, dir.path(), &[]).map_err(|e| {
            format!(
                "VIOLATION: round {round}: the server did not recover after SIGKILL: {e}; {}",
                kept()
            )
        })?;
        recoveries_ms.push(super::micros(server.recovery) / 1000);
        let full = round == args.rounds
            || (args.full_check_every > 0 && round % args.full_check_every == 0);
        let checked = runtime
            .block_on(check_round(
                &mut ledger,
                &server,
                &mut clients,
                &mut rng,
                &args,
                round,
                full,
            ))
            .map_err(|e| format!("round {round}: checking failed: {e}; {}", kept()))?;
        let (open_ms, resumed, tails_cut) =
            server.log(|log| (log.open_ms, log.resumed, log.tails_cut));
        let figure = |value: Option<u64>| value.map_or_else(|| "?".to_owned(), |v| v.to_string());
        println!(
            "round={round} kill_after_ms={} sent={} accepted={} duplicates={} conflicts={} refused={} unanswered={} recovery_ms={} open_ms={} resumed={} tails_cut={tails_cut} checked={} absent={} log_end={} tickets_checked={} comments_counted={} full={full} violations={}",
            kill_after.as_millis(),
            sent.len(),
            load.accepted,
            load.duplicates,
            load.conflicts,
            load.refused,
            load.unanswered,
            server.recovery.as_millis(),
            figure(open_ms),
            figure(resumed),
            checked.ids,
            checked.absent,
            ledger.log_end(),
            checked.tickets,
            checked.comments,
            ledger.violations.total()
        );
        rounds_done = round;
        if ledger.violations.total() > 0 {
            break;
        }
    }
    server.kill().map_err(|e| format!("{e}; {}", kept()))?;

    recoveries_ms.sort_unstable();
    let recovery = |p: f64| {
        if recoveries_ms.is_empty() {
            return 0;
        }
        recoveries_ms[((recoveries_ms.len() as f64 - 1.0) * p).round() as usize]
    };
    println!(
        "rounds={rounds_done} acknowledged={} lost={} executed_twice={} recovery_p50_ms={} recovery_max_ms={}",
        ledger.acknowledged(),
        ledger.violations.lost(),
        ledger.violations.executed_twice(),
        recovery(0.5),
        recovery(1.0)
    );
    if ledger.violations.total() > 0 {
        return Err(format!(
            "the crash proof failed (seed {seed}): {}\n{}",
            ledger.violations,
            kept()
        ));
    }
    dir.remove();
    Ok(())
}

/// Shared by the clients over the whole run.
#[derive(Debug, Default)]
struct Counters {
    /// The next ticket number to open.
    next_ticket: AtomicU64,
    /// The next comment number.
    next_comment: AtomicU64,
}

/// One client, kept across rounds.
#[derive(Debug)]
struct ClientState {
    index: usize,
    rng: Rng,
    /// Acknowledged commands, to send again (the newest).
    history: VecDeque<Spec>,
    /// Tickets whose open was acknowledged, to comment on (the newest).
    tickets: VecDeque<u64>,
    /// Commands found absent after a restart, to send again first thing.
    retries: Vec<Spec>,
}

impl ClientState {
    fn new(index: usize, rng: Rng) -> Self {
        Self {
            index,
            rng,
            history: VecDeque::with_capacity(HISTORY_MAX),
            tickets: VecDeque::with_capacity(TICKETS_MAX),
            retries: Vec::new(),
        }
    }

    /// The next command, and whether to send it with a conflicting body.
    fn next(&mut self, counters: &Counters) -> (Spec, bool) {
        if let Some(spec) = self.retries.pop() {
            return (spec, false);
        }
        let roll = self.rng.below(100);
        if self.tickets.is_empty() || roll < 10 {
            let ticket = counters.next_ticket.fetch_add(1, Ordering::Relaxed);
            let spec = Spec {
                id: self.rng.uuid(),
                kind: Kind::Open,
                ticket,
                number: 0,
            };
            return (spec, false);
        }
        if roll < 75 || self.history.is_empty() {
            let ticket = self.tickets[self.rng.below(self.tickets.len() as u64) as usize];
            let spec = Spec {
                id: self.rng.uuid(),
                kind: Kind::Comment,
                ticket,
                number: counters.next_comment.fetch_add(1, Ordering::Relaxed),
            };
            return (spec, false);
        }
        let old = self.history[self.rng.below(self.history.len() as u64) as usize];
        (old, roll >= 93)
    }

    /// `spec` is acknowledged (new, or known as a duplicate).
    fn acknowledged(&mut self, spec: Spec) {
        if self.history.iter().any(|s| s.id == spec.id) {
            return;
        }
        if self.history.len() == HISTORY_MAX {
            self.history.pop_front();
        }
        self.history.push_back(spec);
        if spec.kind == Kind::Open {
            if self.tickets.len() == TICKETS_MAX {
                self.tickets.pop_front();
            }
            self.tickets.push_back(spec.ticket);
        }
    }

    /// `spec` was found absent after a restart: send it again, as a client retries.
    fn retry(&mut self, spec: Spec) {
        if self.retries.len() < RETRIES_MAX {
            self.retries.push(spec);
        }
    }
}

/// The answers of one round, counted.
#[derive(Debug, Default)]
struct Load {
    accepted: u64,
    duplicates: u64,
    conflicts: u64,
    refused: u64,
    unanswered: u64,
}

/// Runs the clients against `server`, kills it with SIGKILL after `kill_after`, and
/// returns the clients and what they sent.
async fn drive_round(
    mut server: ServerProcess,
    states: Vec<ClientState>,
    counters: Arc<Counters>,
    commands_max: u64,
    kill_after: Duration,
) -> Result<(Vec<ClientState>, Vec<Sent>, Load), String> {
    let connections = check::connect(&server.url(), states.len()).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let budget = Arc::new(AtomicU64::new(commands_max));
    let mut tasks = tokio::task::JoinSet::new();
    for (state, client) in states.into_iter().zip(connections) {
        let (counters, stop, budget) = (
            Arc::clone(&counters),
            Arc::clone(&stop),
            Arc::clone(&budget),
        );
        tasks.spawn(drive(state, client, counters, stop, budget));
    }
    tokio::time::sleep(kill_after).await;
    server.alive()?;
    server.kill()?;
    stop.store(true, Ordering::Relaxed);

    let mut states = Vec::new();
    let mut sent = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (state, part) = joined.map_err(|e| format!("a client failed: {e}"))??;
        states.push(state);
        sent.extend(part);
    }
    states.sort_by_key(|s| s.index);
    let mut load = Load::default();
    for s in &sent {
        match s.answer {
            Answer::Accepted => load.accepted += 1,
            Answer::Duplicate => load.duplicates += 1,
            Answer::Conflict => load.conflicts += 1,
            Answer::Refused => load.refused += 1,
            Answer::Unanswered | Answer::Unexpected(_) => load.unanswered += 1,
        }
    }
    Ok((states, sent, load))
}

/// The part of an answer to `POST /update` the proof reads.
#[derive(Debug, Deserialize)]
struct PostAnswer {
    #[serde(default)]
    duplicate: bool,
}

/// One client's part of a round: sends until the server is gone or the budget is spent.
async fn drive(
    mut state: ClientState,
    mut client: Client,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    budget: Arc<AtomicU64>,
) -> Result<(ClientState, Vec<Sent>), String> {
    let mut sent = Vec::new();
    while !stop.load(Ordering::Relaxed)
        && budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(1)
            })
            .is_ok()
    {
        let (spec, conflicting) = state.next(&counters);
        let body = if conflicting {
            spec.conflicting_body()
        } else {
            spec.body()
        };
        let answer = match tokio::time::timeout(
            REQUEST_MAX,
            client.send(Method::POST, "/update", Some(Bytes::from(body))),
        )
        .await
        {
            Err(_) => {
                return Err(format!(
                    "POST /update: no answer within {REQUEST_MAX:?} from a live server"
                ));
            }
            Ok(Err(_)) => Answer::Unanswered,
            Ok(Ok((status, body))) => match status {
                StatusCode::OK | StatusCode::ACCEPTED => {
                    let answer: PostAnswer = serde_json::from_slice(&body).map_err(|e| {
                        format!(
                            "POST /update answered {status} with {}: {e}",
                            String::from_utf8_lossy(&body)
                        )
                    })?;
                    if answer.duplicate {
                        Answer::Duplicate
                    } else {
                        Answer::Accepted
                    }
                }
                StatusCode::CONFLICT => Answer::Conflict,
                StatusCode::SERVICE_UNAVAILABLE => Answer::Refused,
                other => Answer::Unexpected(other.as_u16()),
            },
        };
        if !conflicting && matches!(answer, Answer::Accepted | Answer::Duplicate) {
            state.acknowledged(spec);
        }
        sent.push(Sent {
            spec,
            client: state.index,
            conflicting,
            answer,
        });
        if answer == Answer::Unanswered {
            // The connection is gone with the server.
            break;
        }
    }
    Ok((state, sent))
}

/// What one check read.
#[derive(Debug, Default)]
struct Checked {
    ids: usize,
    absent: usize,
    tickets: usize,
    comments: u64,
}

/// Reads back, after a restart, what the server must hold; see the module's overview.
async fn check_round(
    ledger: &mut Ledger,
    server: &ServerProcess,
    clients: &mut [ClientState],
    rng: &mut Rng,
    args: &CrashArgs,
    round: u32,
    full: bool,
) -> Result<Checked, String> {
    let mut checked = Checked::default();
    let connections = check::connect(&server.url(), args.clients as usize).await?;

    // Statuses: the round's commands, those not found yet, and a sample of older ones.
    let mut ids = ledger.ids_to_check(round, full);
    if !full {
        let except: HashSet<Uuid> = ids.iter().copied().collect();
        ids.extend(ledger.sample_acknowledged(rng, args.sample, &except));
    }
    let (answers, mut connections) = check::statuses(connections, ids.clone()).await?;
    for (id, answer) in ids.iter().zip(&answers) {
        if let Some((client, spec)) = ledger.record_status(*id, answer.as_ref()) {
            checked.absent += 1;
            clients[client].retry(spec);
        }
    }
    checked.ids = ids.len();

    // The log: from the last position checked (read again: it must still be there), or
    // all of it; then a sample of older positions.
    let end_before = ledger.log_end();
    let first = if full { 1 } else { end_before.max(1) };
    let client = &mut connections[0];
    let events = check::events_from(client, first).await?;
    let executed = ledger.record_events(first, &events);
    drop(events);
    let mut executions: Vec<Uuid> = ids.clone();
    executions.extend(executed);
    ledger.check_executions(&executions);
    if !full && end_before > 1 {
        for _ in 0..args.sample.min(end_before as usize - 1) {
            let position = rng.between(1, end_before - 1);
            let page = check::events_page(client, position, 1).await?;
            let known = ledger.position(position);
            let found = page
                .events
                .first()
                .map(|e| (e.position, e.metadata.command_id));
            if found != known.map(|id| (position, id)) {
                ledger.violations.record(
                    Breach::Lost,
                    known,
                    format!("position {position} held command {known:?}; after a restart the log answers {found:?}"),
                );
            }
        }
    }

    // Streams: the tickets of the commands checked, a sample of the others, or all.
    let mut tickets = if full {
        ledger.sample_tickets(rng, usize::MAX)
    } else {
        ledger.tickets_of(&ids)
    };
    if !full {
        tickets.extend(ledger.sample_tickets(rng, args.sample));
        tickets.sort_unstable();
        tickets.dedup();
    }
    let streams = check::streams(connections, &tickets).await?;
    for (ticket, events) in tickets.iter().zip(&streams) {
        checked.comments += ledger.record_stream(*ticket, events);
    }
    checked.tickets = tickets.len();
    Ok(checked)
}
