//! Sync before answer: nothing is acknowledged that a power cut right after could lose.
//!
//! The check ([`load_and_check`]): many clients send commands at once through the router
//! (some twice, so that duplicates are answered too). Each time a `202` or a duplicate's
//! `200` arrives, the test takes the storage a power cut at that instant would leave
//! (`SimStorage::crash`: an independent copy of the durable bytes, while the live storage
//! keeps running); after the load it opens an engine on each copy, where the command must
//! be known. Each time `GET /update/{id}` reports a final status, the same is done, and the
//! command's record must be among the journal's durable records there (recovered, not run
//! again) with the status the client was told.
//!
//! The copy is taken just after the answer arrives, so a check can only miss a violation
//! (a later sync may have covered the command by then), never invent one: over an honest
//! storage it must find nothing. [`the_check_catches_answers_sent_before_the_sync`] shows
//! it is not blind: over a storage whose `sync_data` reports success at once and persists
//! only before the next write to the file (a lying disk, or the same as an engine that
//! answers before it syncs), it finds the last batch of the journal not durable.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::http::StatusCode;
use serde_json::json;
use uuid::Uuid;
use writ_engine::EngineOptions;
use writ_fixtures::Counters;
use writ_log::LogOptions;
use writ_log::storage::{SimStorage, Storage, StorageFile};
use writ_server::wire::CommandStatusBody;
use writ_server::{AppState, ServerOptions, router};

mod support;
use support::{call_at_head, get, post_json};

/// Clients sending at once, and commands each sends (after creating its counter).
const CLIENTS: usize = 8;
const COMMANDS_PER_CLIENT: usize = 12;

/// Tiny segments, preallocated in the background: the load rolls the journal to new
/// segments a few times, so answers right after a roll are checked too. (Small segments
/// also keep each check's recovery, which reads the last segment to its end, cheap.)
fn options() -> EngineOptions {
    EngineOptions {
        command_bytes_max: 4 << 10,
        timer_ops_bytes_max: 1 << 10,
        log: LogOptions {
            segment_bytes: 16 << 10,
            record_bytes_max: 8 << 10,
            preallocate: true,
            ..LogOptions::default()
        },
        ..EngineOptions::default()
    }
}

/// What a client was told, and what a power cut at that instant would have left.
struct Observation {
    id: Uuid,
    told: Told,
    crashed: SimStorage,
}

#[derive(Debug, Clone, PartialEq)]
enum Told {
    /// `202`: durable in the command log.
    Accepted,
    /// `200` with `duplicate: true`: the first command is durable.
    Duplicate,
    /// `GET /update/{id}` with a final status: its outcome is durable.
    Final(CommandStatusBody),
}

/// A promise a power cut would have broken.
#[derive(Debug)]
struct Violation {
    id: Uuid,
    told: Told,
    found: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} was answered {:?}, but after a power cut then: {}",
            self.id, self.told, self.found
        )
    }
}

/// Sends `body` to `POST /update`; returns the status, and the storage a power cut right
/// when the answer arrived would leave.
async fn post(app: &Router, sim: &SimStorage, body: String) -> (StatusCode, SimStorage, Vec<u8>) {
    let (answer, crashed) = call_at_head(app, post_json("/update", body), || sim.crash()).await;
    (answer.status, crashed, answer.body.to_vec())
}

/// Long-polls the command's status; returns it, and the storage a power cut right when
/// the answer arrived would leave.
async fn wait_final(app: &Router, sim: &SimStorage, id: Uuid) -> (CommandStatusBody, SimStorage) {
    let request = get(&format!("/update/{id}?wait=30"));
    let (answer, crashed) = call_at_head(app, request, || sim.crash()).await;
    (answer.status_body(), crashed)
}

/// One client: creates its counter, then adds to it, sending every third command twice
/// at once. Records every acknowledgement and final status with its power-cut copy.
async fn client(app: Router, sim: SimStorage, client: usize) -> Vec<Observation> {
    let counter = format!("c-{client}");
    let mut seen = Vec::new();
    for n in 0..=COMMANDS_PER_CLIENT {
        let id = Uuid::new_v4();
        let body = if n == 0 {
            json!({"id": id, "command": "CreateCounter",
                "payload": {"counterId": counter, "title": "Visitors", "owner": "ann"}})
        } else {
            json!({"id": id, "command": "Add",
                "payload": {"counterId": counter, "amount": 1, "note": format!("addition {n}: {}", "words ".repeat(20))}})
        }
        .to_string();
        let answers = if n % 3 == 1 {
            let (a, b) = tokio::join!(
                post(&app, &sim, body.clone()),
                post(&app, &sim, body.clone())
            );
            vec![a, b]
        } else {
            vec![post(&app, &sim, body).await]
        };
        let mut accepted = 0;
        for (status, crashed, body) in answers {
            let told = match status {
                StatusCode::ACCEPTED => {
                    accepted += 1;
                    Told::Accepted
                }
                StatusCode::OK => {
                    let answer: CommandStatusBody = serde_json::from_slice(&body).unwrap();
                    assert!(answer.duplicate);
                    Told::Duplicate
                }
                other => panic!("{id}: {other} {}", String::from_utf8_lossy(&body)),
            };
            seen.push(Observation { id, told, crashed });
        }
        assert_eq!(accepted, 1, "{id}: exactly one submission is new");
        let (status, crashed) = wait_final(&app, &sim, id).await;
        assert!(status.status.is_final(), "{status:?}");
        seen.push(Observation {
            id,
            told: Told::Final(status),
            crashed,
        });
    }
    seen
}

/// Runs the load against an engine on `storage` (whose durable bytes live in `sim`) and
/// checks every answer against its power-cut copy. Returns the broken promises and how
/// many answers were checked.
async fn load_and_check(storage: Arc<dyn Storage>, sim: &SimStorage) -> (Vec<Violation>, usize) {
    let (engine, _) =
        support::open_domain::<Counters>(storage, options()).expect("the engine opens");
    let engine = Arc::new(engine);
    let app = router(AppState::new(Arc::clone(&engine), ServerOptions::default()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| tokio::spawn(client(app.clone(), sim.clone(), n)))
        .collect();
    let mut observations = Vec::new();
    for client in clients {
        observations.extend(client.await.unwrap());
    }
    drop(app);
    tokio::task::spawn_blocking(move || engine.shutdown())
        .await
        .unwrap();
    let checked = observations.len();
    let violations =
        tokio::task::spawn_blocking(move || observations.into_iter().filter_map(check).collect())
            .await
            .unwrap();
    (violations, checked)
}

/// Opens an engine on the power-cut copy and checks what the client was told.
fn check(observation: Observation) -> Option<Violation> {
    let Observation { id, told, crashed } = observation;
    let found = broken_promise(id, &told, crashed).err()?;
    Some(Violation { id, told, found })
}

/// `Err` with what was found when the copy does not keep the promise `told`.
fn broken_promise(id: Uuid, told: &Told, crashed: SimStorage) -> Result<(), String> {
    let (engine, report) = support::open_domain::<Counters>(Arc::new(crashed), options())
        .map_err(|e| format!("the store does not open: {e}"))?;
    let status = engine
        .status(id)
        .map_err(|e| format!("reading the status failed: {e}"))?
        .ok_or_else(|| "the command is unknown".to_owned())?;
    if let Told::Final(told) = told {
        if report.commands <= status.sequence {
            return Err(format!(
                "its record (journal record {}) is not durable: {} records are",
                status.sequence, report.commands
            ));
        }
        let recovered = CommandStatusBody::from(status);
        if &recovered != told {
            return Err(format!("the recovered status is {recovered:?}"));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_is_durable_before_it_is_sent() {
    let sim = SimStorage::new();
    let (violations, checked) = load_and_check(Arc::new(sim.clone()), &sim).await;
    let answers = CLIENTS * (COMMANDS_PER_CLIENT + 1);
    assert!(checked > 2 * answers, "{checked} answers checked");
    let segments = sim.file_names(Path::new("journal"));
    let segments = segments.iter().filter(|n| n.ends_with(".wlog")).count();
    assert!(segments >= 2, "the journal rolled: {segments} segments");
    assert!(
        violations.is_empty(),
        "{} of {checked} answers would not survive a power cut:\n{}",
        violations.len(),
        violations
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Shown once: the check fails a build that answers before its data is durable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_catches_answers_sent_before_the_sync() {
    // The journal's last batch is never synced (no later write settles it), so at least
    // its answers are caught, whatever the interleaving. What the power-cut copy shows
    // varies with the interleaving: the command missing, or a journal that does not open
    // at all (a lying disk can leave a segment header unwritten); any of them is a
    // violation of the answer that was sent: a `202`, and the final status read after it.
    let sim = SimStorage::new();
    let lying = LyingStorage {
        inner: sim.clone(),
        dir: "journal",
    };
    let (violations, _) = load_and_check(Arc::new(lying), &sim).await;
    assert!(
        violations.iter().any(|v| v.told == Told::Accepted),
        "a 202 sent before the journal's sync was not caught: {violations:?}"
    );
    assert!(
        violations.iter().any(|v| matches!(v.told, Told::Final(_))),
        "a final status sent before the journal's sync was not caught: {violations:?}"
    );
}

/// A storage whose files in `dir` answer `sync_data` at once and sync only later: just
/// before the next write to (or resize of) the same file. Everything else goes straight
/// to the `SimStorage` underneath. To the engine it looks like an honest disk; to a power
/// cut that log is one batch behind, exactly like an engine that answers before it syncs.
#[derive(Debug)]
struct LyingStorage {
    inner: SimStorage,
    /// The directory (a log) whose syncs are deferred.
    dir: &'static str,
}

impl LyingStorage {
    fn wrap(&self, path: &Path, file: Arc<dyn StorageFile>) -> Arc<dyn StorageFile> {
        if path.starts_with(self.dir) {
            Arc::new(LyingFile::new(file))
        } else {
            file
        }
    }
}

impl Storage for LyingStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        Ok(self.wrap(path, self.inner.open(path)?))
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        Ok(self.wrap(path, self.inner.create(path)?))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }
}

#[derive(Debug)]
struct LyingFile {
    inner: Arc<dyn StorageFile>,
    /// A sync was reported done and not yet made.
    owed: Mutex<bool>,
}

impl LyingFile {
    fn new(inner: Arc<dyn StorageFile>) -> Self {
        Self {
            inner,
            owed: Mutex::new(false),
        }
    }

    /// Makes the sync reported earlier, if any.
    fn settle(&self) -> io::Result<()> {
        let mut owed = self.owed.lock().unwrap_or_else(PoisonError::into_inner);
        if *owed {
            self.inner.sync_data()?;
            *owed = false;
        }
        Ok(())
    }
}

impl StorageFile for LyingFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.settle()?;
        self.inner.write_at(buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        *self.owed.lock().unwrap_or_else(PoisonError::into_inner) = true;
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.settle()?;
        self.inner.set_len(len)
    }
}
