//! `writ bench engine`: a domain's workload through the engine in-process (no HTTP),
//! printing a machine-readable last line `commands_per_s=N p50_ms=X p99_ms=Y`.
//!
//! - `--domain tickets` (the default): one `OpenTicket` per ticket, then `AddComment`s
//!   round-robin over the tickets; every command must succeed.
//! - `--domain orders`: the mix of `writ_orders::workload` (stock, then orders with 1 to 4
//!   lines that are submitted, paid, shipped, cancelled, or left to time out), `--orders`
//!   of them with `--lanes` orders interleaved at a time, each order's commands in
//!   sequence. The orders process's own commands (`ReserveOrder`) and the timers'
//!   (`ExpireOrder`, 1 s after a submission) run too but are not counted: the rate counts
//!   clients' commands, each when its outcome is durable, and at least 95% of them must
//!   succeed (the mix rejects about 0.4%). After the clients' last outcome the bench waits
//!   for the pending timers and checks every count against the mix's.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use uuid::Uuid;
use writ_engine::{
    CommandState, CommandStatus, Engine, EngineOptions, Pending, Registry, SubmitError, Submitted,
    Unavailable,
};
use writ_tickets::{Tickets, workload};

/// `--in-flight`'s default: one full batch of the engine's default options.
const IN_FLIGHT_DEFAULT: usize = 4_096;

/// `writ bench engine`'s arguments.
#[derive(Debug, Args)]
pub struct EngineArgs {
    /// Data directory; must not hold a store yet. Default: a fresh directory under the
    /// system's temporary directory, removed afterwards.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The workload: `tickets` or `orders`.
    #[arg(long, default_value = "tickets")]
    domain: String,
    /// tickets: number of tickets (the first commands open them).
    #[arg(long, default_value_t = 10_000)]
    tickets: u64,
    /// tickets: total number of commands, opens included.
    #[arg(long, default_value_t = 100_000)]
    commands: u64,
    /// orders: number of orders (about 6.4 clients' commands each, plus 100 `AddStock`s).
    #[arg(long, default_value_t = 16_000)]
    orders: u64,
    /// orders: orders interleaved at a time (each order's commands in sequence).
    #[arg(long, default_value_t = 1_024)]
    lanes: usize,
    /// Most commands submitted whose outcome is not yet durable (a command is answered
    /// once, with its outcome, when its journal record is). Each command counts, and its
    /// latency ends, then. The default is one full batch (`batch_records_max`); bab574b's
    /// window of 1,000 counted only the commands awaiting their `202`, and so held two to
    /// four times as many in flight (see the README).
    #[arg(long, default_value_t = IN_FLIGHT_DEFAULT)]
    in_flight: usize,
}

impl EngineArgs {
    /// The tickets workload of `commands` commands over `tickets` tickets into `dir`, one
    /// event per command (for `writ bench start`'s log).
    pub(super) fn tickets_into(dir: PathBuf, tickets: u64, commands: u64) -> Self {
        Self {
            data_dir: Some(dir),
            domain: "tickets".to_owned(),
            tickets,
            commands,
            orders: 0,
            lanes: 1,
            in_flight: IN_FLIGHT_DEFAULT,
        }
    }
}

/// Removes the directory on drop when the bench made it.
struct TempDir(Option<PathBuf>);

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Where the next command of a workload comes from.
enum Workload {
    Tickets {
        tickets: u64,
        commands: u64,
    },
    Orders {
        /// Steps not yet submitted: the stock, then the orders' steps interleaved.
        stock: VecDeque<writ_orders::workload::Step>,
        lanes: VecDeque<VecDeque<writ_orders::workload::Step>>,
        next_order: u64,
        orders: u64,
        lanes_max: usize,
    },
}

impl Workload {
    /// Writes the next command's payload into `payload`; returns its name and version,
    /// or `None` when the workload is done.
    fn next(&mut self, n: u64, payload: &mut Vec<u8>) -> Option<(&'static str, u32)> {
        payload.clear();
        match self {
            Workload::Tickets { tickets, commands } => {
                if n >= *commands {
                    return None;
                }
                Some(if n < *tickets {
                    workload::write_open_ticket_payload(payload, n);
                    (workload::OPEN_TICKET, workload::OPEN_TICKET_VERSION)
                } else {
                    workload::write_add_comment_payload(payload, n % *tickets, n / *tickets);
                    (workload::ADD_COMMENT, workload::ADD_COMMENT_VERSION)
                })
            }
            Workload::Orders {
                stock,
                lanes,
                next_order,
                orders,
                lanes_max,
            } => {
                let step = match stock.pop_front() {
                    Some(step) => step,
                    None => loop {
                        while lanes.len() < *lanes_max && *next_order < *orders {
                            lanes.push_back(writ_orders::workload::order_steps(*next_order).into());
                            *next_order += 1;
                        }
                        let mut lane = lanes.pop_front()?;
                        if let Some(step) = lane.pop_front() {
                            // Round robin: each order's steps stay in sequence.
                            if !lane.is_empty() {
                                lanes.push_back(lane);
                            }
                            break step;
                        }
                    },
                };
                payload.extend_from_slice(&step.payload);
                Some((step.command, step.version))
            }
        }
    }
}

pub fn run(args: EngineArgs) -> Result<(), String> {
    if args.in_flight == 0 {
        return Err("--in-flight must be at least 1".into());
    }
    let (registry, mut workload, expected_commands) = match args.domain.as_str() {
        "tickets" => {
            if args.tickets == 0 || args.commands < args.tickets {
                return Err(
                    "--commands must be at least --tickets, and --tickets at least 1".into(),
                );
            }
            let registry = Registry::builder()
                .domain(writ_domain::model::domain::<Tickets>())
                .build()
                .map_err(|e| e.to_string())?;
            (
                registry,
                Workload::Tickets {
                    tickets: args.tickets,
                    commands: args.commands,
                },
                args.commands,
            )
        }
        "orders" => {
            if args.orders == 0 || args.lanes == 0 {
                return Err("--orders and --lanes must be at least 1".into());
            }
            let registry = Registry::builder()
                .domain(writ_domain::model::domain::<writ_orders::Orders>())
                .process(writ_domain::model::process::<writ_orders::OrderFulfilment>())
                .build()
                .map_err(|e| e.to_string())?;
            let counts = writ_orders::workload::expected_counts(args.orders);
            (
                registry,
                Workload::Orders {
                    stock: writ_orders::workload::stock_steps(args.orders).into(),
                    lanes: VecDeque::new(),
                    next_order: 0,
                    orders: args.orders,
                    lanes_max: args.lanes,
                },
                counts.client_commands,
            )
        }
        other => {
            return Err(format!(
                "unknown domain {other:?}; the engine bench has tickets and orders"
            ));
        }
    };
    let (dir, _cleanup) = match args.data_dir {
        Some(dir) => {
            if dir.join("journal").exists() || dir.join("commands").exists() {
                return Err(format!(
                    "{} already holds a store; give an empty directory",
                    dir.display()
                ));
            }
            (dir, TempDir(None))
        }
        None => {
            let dir = std::env::temp_dir().join(format!(
                "writ-bench-{}-{}",
                std::process::id(),
                Uuid::new_v4()
            ));
            (dir.clone(), TempDir(Some(dir)))
        }
    };
    let options = EngineOptions {
        intake_queue_max: args.in_flight.max(16_384),
        ..EngineOptions::default()
    };
    let (engine, _) = Engine::open_dir(&dir, registry, options).map_err(|e| e.to_string())?;

    let base = Uuid::new_v4().as_u128();
    let mut payload = Vec::with_capacity(256);
    // Submitted and not yet acknowledged: the window.
    let mut unacknowledged: VecDeque<(Instant, Pending)> = VecDeque::with_capacity(args.in_flight);
    // Acknowledged, outcome not yet taken.
    let mut executing: VecDeque<(Instant, Pending)> = VecDeque::new();
    let mut latencies_us: Vec<u32> = Vec::with_capacity(expected_commands as usize);
    let (mut succeeded, mut rejected, mut failed) = (0u64, 0u64, 0u64);
    let mut finish =
        |submitted: Instant, outcome: Result<CommandStatus, Unavailable>, now: Instant| {
            latencies_us.push(
                now.duration_since(submitted)
                    .as_micros()
                    .min(u128::from(u32::MAX)) as u32,
            );
            match outcome.map(|status| status.state) {
                Ok(CommandState::Succeeded) => succeeded += 1,
                Ok(CommandState::Rejected { .. }) => rejected += 1,
                _ => failed += 1,
            }
        };
    let started = Instant::now();
    let mut next = 0;
    let mut pending_step: Option<(&'static str, u32)> = None;
    let mut done = false;
    // Commands sent and not yet answered, sampled once a round of the loop: what the
    // window really holds (a build that answers before the outcome holds more than it).
    let (mut in_flight_sum, mut in_flight_samples) = (0u64, 0u64);
    while !done || !unacknowledged.is_empty() {
        in_flight_sum += (unacknowledged.len() + executing.len()) as u64;
        in_flight_samples += 1;
        // Fill the window.
        while !done && unacknowledged.len() < args.in_flight {
            let (name, version) = match pending_step.take() {
                Some(step) => step,
                None => match workload.next(next, &mut payload) {
                    Some(step) => step,
                    None => {
                        done = true;
                        break;
                    }
                },
            };
            let id = Uuid::from_u128(base ^ u128::from(next));
            let submitted = Instant::now();
            match engine.submit(id, name, Some(version), &payload) {
                Ok(Submitted::New(pending)) => {
                    unacknowledged.push_back((submitted, pending));
                    next += 1;
                }
                Ok(Submitted::Duplicate) => {
                    return Err(format!("command {id} reported as a duplicate"));
                }
                // The engine's queues are full: let it drain, and send this one again.
                Err(SubmitError::Overloaded(_)) => {
                    pending_step = Some((name, version));
                    break;
                }
                Err(e) => return Err(format!("submit: {e}")),
            }
        }
        // Wait for the oldest acknowledgement (commands are acknowledged in order), then
        // move every acknowledged command out of the window.
        if let Some((_, pending)) = unacknowledged.front_mut() {
            pending
                .blocking_accepted()
                .map_err(|e| format!("a command was not acknowledged: {e}"))?;
        }
        while let Some((_, pending)) = unacknowledged.front_mut() {
            match pending.try_accepted() {
                None => break,
                Some(Ok(_)) => executing.push_back(unacknowledged.pop_front().expect("front")),
                Some(Err(e)) => return Err(format!("a command was not acknowledged: {e}")),
            }
        }
        // Collect the outcomes that are in (outcomes also arrive in order).
        let now = Instant::now();
        while let Some((submitted, pending)) = executing.front_mut() {
            match pending.try_outcome() {
                None => break,
                Some(outcome) => {
                    let submitted = *submitted;
                    executing.pop_front();
                    finish(submitted, outcome, now);
                }
            }
        }
    }
    while let Some((submitted, pending)) = executing.pop_front() {
        let outcome = pending.blocking_outcome();
        finish(submitted, outcome, Instant::now());
    }
    let elapsed = started.elapsed();
    // The process's and the timers' commands are not counted; wait for the timers to
    // check the totals.
    let timers_deadline = Instant::now() + std::time::Duration::from_secs(30);
    while engine.timers_pending() > 0 && Instant::now() < timers_deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let stats = engine.stats();
    engine.shutdown();

    let commands = next;
    latencies_us.sort_unstable();
    let pct = |p: f64| {
        let i = ((latencies_us.len() as f64 - 1.0) * p).round() as usize;
        f64::from(latencies_us[i]) / 1000.0
    };
    let per_s = commands as f64 / elapsed.as_secs_f64();
    println!(
        "domain={} commands={commands} in_flight={} elapsed_s={:.3} succeeded={succeeded} rejected={rejected} failed={failed}",
        args.domain,
        args.in_flight,
        elapsed.as_secs_f64()
    );
    println!(
        "syncs={} writer_syncs={} commands_per_sync={:.1} in_flight_mean={} process_commands={} timer_commands={} timers_pending={} reactions_failed={}",
        stats.batches,
        stats.writer_syncs,
        (stats.succeeded + stats.rejected + stats.failed) as f64 / stats.batches.max(1) as f64,
        in_flight_sum / in_flight_samples.max(1),
        stats.commands_issued,
        stats.timers_fired,
        stats.timers_pending,
        stats.reactions_failed,
    );
    if args.domain == "orders" {
        let counts = writ_orders::workload::expected_counts(args.orders);
        let seen = (
            commands,
            rejected,
            stats.commands_issued,
            stats.timers_fired,
        );
        let expected = (
            counts.client_commands,
            counts.client_rejected,
            counts.process_commands,
            counts.timer_commands,
        );
        if seen != expected || failed > 0 {
            return Err(format!(
                "the orders mix did not end as expected: (clients, rejected, process, timers) = {seen:?}, expected {expected:?}; {failed} failed"
            ));
        }
        if (succeeded as f64) < 0.95 * commands as f64 {
            return Err(format!(
                "only {succeeded} of {commands} clients' commands succeeded"
            ));
        }
    } else if failed + rejected > 0 {
        return Err(format!("{} commands did not succeed", failed + rejected));
    }
    println!(
        "commands_per_s={per_s:.0} p50_ms={:.3} p99_ms={:.3}",
        pct(0.50),
        pct(0.99)
    );
    Ok(())
}
