//! Writ's side: the workload through an in-process [`Engine`] on a data directory.
//!
//! Each lane (see [`crate::workload`]) submits its next command, waits for the command's
//! final outcome (delivered only after the event log's fdatasync covers its commit), checks
//! that it succeeded, and only then submits the next one.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use uuid::Uuid;
use writ_engine::{CommandState, Engine, EngineOptions, EngineStats, Submitted};
use writ_tickets::{Tickets, workload as payloads};

use crate::workload::{Step, StepKind, Workload};
use crate::{CompareError, Side, SideRun, Tally};

/// Events read back per call when counting what Writ recorded.
const READ_PAGE_EVENTS: usize = 10_000;

/// What Writ's run measured and recorded.
#[derive(Debug, Clone)]
pub struct WritRun {
    /// Throughput and latencies.
    pub run: SideRun,
    /// What the event log holds afterwards.
    pub tally: Tally,
    /// The engine's counters: how many fdatasyncs the logs took.
    pub stats: EngineStats,
}

/// Runs the workload through a fresh engine on `data_dir`, which must be empty or new,
/// then counts the recorded events by reading the whole event log back.
pub fn run(
    workload: &Workload,
    data_dir: &Path,
    runtime: &tokio::runtime::Runtime,
) -> Result<WritRun, CompareError> {
    crate::require_empty(data_dir)?;
    let options = EngineOptions {
        // One command in flight per lane: the queue never holds more than `lanes`.
        intake_queue_max: EngineOptions::default()
            .intake_queue_max
            .max(workload.lanes()),
        ..EngineOptions::default()
    };
    let engine = Arc::new(open(data_dir, options)?);
    let base = Uuid::new_v4().as_u128();
    let plans = workload.deal();

    let started = Instant::now();
    let results = runtime.block_on(async {
        let lanes: Vec<_> = plans
            .into_iter()
            .map(|plan| tokio::spawn(lane(Arc::clone(&engine), plan, base)))
            .collect();
        let mut results = Vec::with_capacity(lanes.len());
        for lane in lanes {
            results.push(lane.await);
        }
        results
    });
    let elapsed = started.elapsed();
    let mut latencies_us = Vec::with_capacity(workload.commands() as usize);
    for result in results {
        let lane = result.map_err(|e| CompareError::Writ {
            detail: format!("a lane's task failed: {e}"),
        })?;
        latencies_us.extend(lane?);
    }

    let tally = count_events(&engine)?;
    let stats = engine.stats();
    engine.shutdown();
    Ok(WritRun {
        run: SideRun::new(elapsed, latencies_us),
        tally,
        stats,
    })
}

/// Opens an engine with the tickets domain on `data_dir`.
fn open(data_dir: &Path, options: EngineOptions) -> Result<Engine, CompareError> {
    let registry = writ_engine::Registry::builder()
        .domain(writ_domain::model::domain::<Tickets>())
        .build()
        .map_err(|source| CompareError::Writ {
            detail: source.to_string(),
        })?;
    let (engine, _) =
        Engine::open_dir(data_dir, registry, options).map_err(|source| CompareError::Writ {
            detail: format!("opening the engine on {}: {source}", data_dir.display()),
        })?;
    Ok(engine)
}

/// What the journal in `data_dir` records, read back by an engine opened on it (after the
/// server that wrote it is gone; recovery runs as at any start).
pub(crate) fn tally_dir(data_dir: &Path) -> Result<Tally, CompareError> {
    let engine = open(data_dir, EngineOptions::default())?;
    let tally = count_events(&engine);
    engine.shutdown();
    tally
}

/// One lane: its commands one at a time, each waited for until its outcome is durable.
/// Returns the latencies in microseconds.
async fn lane(engine: Arc<Engine>, plan: Vec<Step>, base: u128) -> Result<Vec<u32>, CompareError> {
    let mut latencies_us = Vec::with_capacity(plan.len());
    let mut payload = Vec::with_capacity(128);
    for step in plan {
        payload.clear();
        let (name, version) = match step.kind {
            StepKind::Open => {
                payloads::write_open_ticket_payload(&mut payload, step.ticket);
                (payloads::OPEN_TICKET, payloads::OPEN_TICKET_VERSION)
            }
            StepKind::Comment { comment } => {
                payloads::write_add_comment_payload(&mut payload, step.ticket, comment);
                (payloads::ADD_COMMENT, payloads::ADD_COMMENT_VERSION)
            }
        };
        let id = command_id(base, step.index);
        let submitted = Instant::now();
        let pending = match engine.submit(id, name, Some(version), &payload) {
            Ok(Submitted::New(pending)) => pending,
            Ok(Submitted::Duplicate) => {
                return Err(CompareError::Writ {
                    detail: format!("command {id} was answered as a duplicate"),
                });
            }
            Err(e) => {
                return Err(CompareError::Writ {
                    detail: format!("submitting {name} for ticket t-{}: {e}", step.ticket),
                });
            }
        };
        let status = pending.outcome().await.map_err(|e| CompareError::Writ {
            detail: format!("{name} for ticket t-{} has no outcome: {e}", step.ticket),
        })?;
        latencies_us.push(micros(submitted));
        if status.state != CommandState::Succeeded {
            return Err(CompareError::CommandFailed {
                side: Side::Writ,
                detail: format!(
                    "{name} for ticket t-{} ended {:?}",
                    step.ticket, status.state
                ),
            });
        }
    }
    Ok(latencies_us)
}

/// Counts `TicketOpened` (and the distinct tickets they open) and `CommentAdded` in the
/// whole event log.
fn count_events(engine: &Engine) -> Result<Tally, CompareError> {
    let mut opened_streams = HashSet::new();
    let mut tally = Tally::default();
    let mut from = 1;
    loop {
        let page = engine
            .read_all(from, READ_PAGE_EVENTS)
            .map_err(|e| CompareError::Writ {
                detail: format!("reading the event log back from position {from}: {e}"),
            })?;
        let Some(last) = page.last() else { break };
        from = last.position + 1;
        for event in &page {
            match event.event_type.as_str() {
                "TicketOpened" => {
                    tally.open_events += 1;
                    opened_streams.insert(event.stream.clone());
                }
                "CommentAdded" => tally.comments += 1,
                _ => tally.other_events += 1,
            }
        }
    }
    tally.tickets = opened_streams.len() as u64;
    Ok(tally)
}

/// The id of command `index` of a run: distinct per command, fresh per run.
pub(crate) fn command_id(base: u128, index: u64) -> Uuid {
    Uuid::from_u128(base ^ u128::from(index))
}

pub(crate) fn micros(since: Instant) -> u32 {
    since.elapsed().as_micros().min(u128::from(u32::MAX)) as u32
}
