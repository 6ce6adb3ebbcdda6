//! A store whose journal's old segments were archived (`writ archive`), served and replayed
//! through the App API with the archive (`--archive-dir`): `/events`, `/streams` and the
//! read models (rebuilt from position 1) see every event; a start without the archive is
//! refused, saying so; a replay from it finds no difference.

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use support::{binary_app, call, config, get};
use uuid::Uuid;
use writ_app::{ManualClock, ReplayConfig, Store};
use writ_engine::Submitted;
use writ_log::storage::SimStorage;

const TICKETS: u64 = 600;
const WINDOW: Duration = Duration::from_secs(2);

fn archive_dir() -> PathBuf {
    PathBuf::from("archive")
}

fn app_config(storage: &SimStorage, clock: &ManualClock, archive: bool) -> writ_app::Config {
    let mut config = config(storage, &[]);
    config.engine.clock = Arc::new(clock.clone());
    config.engine.dedupe_window = WINDOW;
    config.engine.checkpoint_every_records = 0;
    config.engine.log.segment_bytes = 64 << 10;
    config.engine.log.record_bytes_max = 48 << 10;
    config.engine.command_bytes_max = 16 << 10;
    config.engine.timer_ops_bytes_max = 8 << 10;
    config.engine.log.preallocate = false;
    config.engine.log.archive_dir = archive.then(archive_dir);
    config
}

async fn json(app: &axum::Router, uri: &str) -> Value {
    let answer = call(app, get(uri)).await;
    assert_eq!(
        answer.status,
        axum::http::StatusCode::OK,
        "{uri}: {}",
        answer.text()
    );
    answer.json()
}

/// What a client sees: every event, a ticket's stream, and the read model's answers.
async fn seen(app: &axum::Router) -> Vec<Value> {
    let position = json(app, "/health").await["position"].as_u64().unwrap();
    vec![
        json(app, "/events?from=1&limit=1000").await["events"].clone(),
        json(app, "/streams/ticket-t-0?limit=1000").await["events"].clone(),
        json(app, &format!("/query/v1/getTicket?id=t-0&after={position}")).await,
        json(app, &format!("/query/v1/ticketStats?after={position}")).await,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archived_journal_serves_every_event_and_read_model_and_replays_without_difference() {
    let storage = SimStorage::new();
    let clock = ManualClock::at_ms(1_700_000_000_000);
    let started = binary_app()
        .start(app_config(&storage, &clock, false))
        .expect("starts");
    for n in 0..TICKETS {
        let payload = format!(r#"{{"ticketId":"t-{n}","title":"Ticket {n}","reporter":"ann"}}"#);
        let Submitted::New(pending) = started
            .state
            .engine()
            .submit(Uuid::new_v4(), "OpenTicket", None, payload.as_bytes())
            .unwrap()
        else {
            panic!("new");
        };
        pending.outcome().await.unwrap();
        clock.advance(Duration::from_millis(100));
    }
    let app = writ_server::router(started.state);
    let before = seen(&app).await;
    assert_eq!(before[0].as_array().unwrap().len() as u64, TICKETS);
    assert_eq!(before[3]["open"], json!(TICKETS));
    drop(app);

    let archived = writ_engine::archive::archive_journal(
        Arc::new(storage.clone()),
        &archive_dir(),
        WINDOW,
        writ_log::LogOptions::default(),
    )
    .unwrap();
    assert!(archived.moved.len() >= 2, "{archived:?}");

    // Without the archive: refused, naming the missing records and the flag.
    let refused = binary_app()
        .start(app_config(&storage, &clock, false))
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains(&format!(
            "records 0..{} are missing",
            archived.archived_records
        )) && refused.contains("--archive-dir"),
        "{refused}"
    );

    // With it: the same events, stream and read model answers (rebuilt from position 1).
    let started = binary_app()
        .start(app_config(&storage, &clock, true))
        .expect("starts with the archive");
    let app = writ_server::router(started.state);
    assert_eq!(seen(&app).await, before);
    drop(app);

    // A replay reads the whole journal from there.
    let mut replay_config = ReplayConfig {
        store: Store::Storage(Arc::new(storage.clone())),
        domains: Vec::new(),
        app: None,
        engine: app_config(&storage, &clock, true).engine,
        apply: false,
        report: None,
        progress: false,
    };
    replay_config.engine.clock = Arc::new(ManualClock::at_ms(0));
    let replayed = binary_app().replay_with(replay_config).expect("replays");
    assert!(
        replayed.report.differences.is_empty(),
        "{}",
        replayed.report.summary(5)
    );
    assert_eq!(replayed.report.commands, TICKETS);
}

/// `writ archive` as the command runs it, on a data directory of the file system: it moves
/// what is out of the window, again moves nothing, refuses a directory a server holds
/// (saying to stop it) and one that holds no store.
#[test]
fn the_archive_command_moves_old_segments_once_and_refuses_a_locked_or_empty_directory() {
    let base = support::fresh_dir("archive");
    let _cleanup = support::Cleanup(base.clone());
    let dir = base.join("data");
    let to = base.join("archive");
    let clock = ManualClock::at_ms(1_700_000_000_000);
    let mut options = app_config(&SimStorage::new(), &clock, false).engine;
    options.log.archive_dir = None;
    let registry = writ_engine::Registry::builder()
        .domain(writ_domain::model::domain::<writ_tickets::Tickets>())
        .build()
        .unwrap();
    let (engine, _) = writ_engine::Engine::open_dir(&dir, registry, options).unwrap();
    for n in 0..TICKETS {
        let payload = format!(r#"{{"ticketId":"t-{n}","title":"Ticket {n}","reporter":"ann"}}"#);
        let Submitted::New(pending) = engine
            .submit(Uuid::new_v4(), "OpenTicket", None, payload.as_bytes())
            .unwrap()
        else {
            panic!("new");
        };
        pending.blocking_outcome().unwrap();
        clock.advance(Duration::from_millis(100));
    }
    let args = writ_app::archive::ArchiveArgs {
        data_dir: dir.clone(),
        to: to.clone(),
        dedupe_window: WINDOW,
    };
    let locked = writ_app::archive::run(&args).unwrap_err();
    assert!(locked.contains("stop it first"), "{locked}");
    drop(engine);

    writ_app::archive::run(&args).unwrap();
    let archived = |dir: &std::path::Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".wlog")
            })
            .count()
    };
    let moved = archived(&to);
    assert!(moved >= 2, "{moved}");
    writ_app::archive::run(&args).unwrap();
    assert_eq!(archived(&to), moved, "a second run moves nothing");
    assert!(
        archived(&dir.join("journal")) >= 1,
        "the last segment stays"
    );

    let empty = writ_app::archive::run(&writ_app::archive::ArchiveArgs {
        data_dir: base.join("nothing"),
        ..args
    })
    .unwrap_err();
    assert!(empty.contains("holds no journal"), "{empty}");
}
