//! `writ bench replay`: how fast `writ replay` runs a data directory's command log again,
//! printing a machine-readable last line `commands=N commands_per_s=X`.
//!
//! The data directory must hold a log already (for one: `writ bench engine --data-dir
//! DIR`), and no server may run on it. The replay is written beside the live journal and
//! never applied; the bench removes it afterwards. `commands` counts the live journal's
//! records (clients', processes' and timers' commands), and the time covers the replay
//! and its comparison, as `writ replay` runs them.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use writ_engine::{EngineOptions, Registry};

/// `writ bench replay`'s arguments.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The data directory whose log is replayed (not applied).
    #[arg(long)]
    data_dir: PathBuf,
    /// The domain whose handlers decide: `tickets` or `orders` (with its process).
    #[arg(long, default_value = "tickets")]
    domain: String,
}

pub(crate) fn run(args: ReplayArgs) -> Result<(), String> {
    let registry = match args.domain.as_str() {
        "tickets" => {
            Registry::builder().domain(writ_domain::model::domain::<writ_tickets::Tickets>())
        }
        "orders" => Registry::builder()
            .domain(writ_domain::model::domain::<writ_orders::Orders>())
            .process(writ_domain::model::process::<writ_orders::OrderFulfilment>()),
        other => return Err(format!("unknown domain {other:?}: tickets or orders")),
    }
    .build()
    .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let replayed = writ_engine::replay::replay_data_dir(
        &args.data_dir,
        registry,
        EngineOptions::default(),
        false,
        &mut |_| {},
    )
    .map_err(|e| e.to_string())?;
    let seconds = started.elapsed().as_secs_f64();
    if let Some(dir) = replayed.journal.parent() {
        let dir = args.data_dir.join(dir);
        std::fs::remove_dir_all(&dir)
            .map_err(|e| format!("cannot remove the replay {}: {e}", dir.display()))?;
    }
    let report = &replayed.report;
    let commands = report.live_records;
    println!(
        "replayed={} seconds={seconds:.3} same={} differing={}",
        replayed.source.display(),
        report.same,
        report.differing()
    );
    println!(
        "commands={commands} commands_per_s={:.0}",
        commands as f64 / seconds.max(1e-9)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_is_measured_on_a_store_and_removed_afterwards() {
        let dir = std::env::temp_dir().join(format!(
            "writ-bench-replay-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        let registry = || {
            Registry::builder()
                .domain(writ_domain::model::domain::<writ_tickets::Tickets>())
                .build()
                .unwrap()
        };
        let (engine, _) =
            writ_engine::Engine::open_dir(&dir, registry(), EngineOptions::default()).unwrap();
        let payload = br#"{"ticketId":"t-1","title":"Printer on fire","reporter":"ann"}"#;
        let writ_engine::Submitted::New(pending) = engine
            .submit(uuid::Uuid::new_v4(), "OpenTicket", None, payload)
            .unwrap()
        else {
            panic!("a fresh id");
        };
        pending.blocking_outcome().unwrap();
        drop(engine);
        let measured = run(ReplayArgs {
            data_dir: dir.clone(),
            domain: "tickets".into(),
        });
        let left = dir.join("replay-1").exists();
        let _ = std::fs::remove_dir_all(&dir);
        measured.unwrap();
        assert!(!left, "the replay is removed");
        let unknown = run(ReplayArgs {
            data_dir: dir,
            domain: "shipping".into(),
        });
        assert!(unknown.unwrap_err().contains("tickets or orders"));
    }
}
