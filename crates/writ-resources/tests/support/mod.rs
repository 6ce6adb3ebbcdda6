//! What the tests of resource types share: a temporary app directory, an engine over a
//! set of types on in-memory storage, and submitting commands to it.

#![allow(dead_code)] // Each test file uses its own part.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use uuid::Uuid;
use writ_engine::{
    CommandState, CommandStatus, Engine, EngineOptions, Registry, Submission, SubmitError,
    Submitted,
};
use writ_log::storage::SimStorage;
use writ_resources::{LoadError, ResourceSet, load};

/// A directory of its own under the system's temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "writ-resources-{name}-{}-{}",
            std::process::id(),
            Uuid::new_v4()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub fn write(&self, file: &str, text: &str) -> PathBuf {
        let path = self.0.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An engine over the types of `set` (with their machines' timers) on `storage`.
pub fn engine(set: &ResourceSet, storage: &SimStorage) -> Arc<Engine> {
    engine_with(set, storage, EngineOptions::default())
}

/// [`engine`] with `options` (a clock of the test's, say).
pub fn engine_with(set: &ResourceSet, storage: &SimStorage, options: EngineOptions) -> Arc<Engine> {
    let mut registry = Registry::builder();
    for domain in set.domains() {
        registry = registry.domain(domain);
    }
    for process in set.processes() {
        registry = registry.process(process);
    }
    let (engine, _) = Engine::open(
        Arc::new(storage.clone()),
        registry.build().unwrap(),
        options,
    )
    .unwrap();
    Arc::new(engine)
}

pub fn submit(
    engine: &Engine,
    id: u128,
    command: &str,
    payload: Value,
    expected_version: Option<u64>,
) -> Result<CommandStatus, SubmitError> {
    let payload = payload.to_string();
    let submitted = engine.submit_command(&Submission {
        id: Uuid::from_u128(id),
        command,
        version: None,
        payload: payload.as_bytes(),
        expected_version,
    })?;
    let Submitted::New(pending) = submitted else {
        panic!("a fresh id")
    };
    Ok(pending.blocking_outcome().unwrap())
}

pub fn run(engine: &Engine, id: u128, command: &str, payload: Value) -> CommandStatus {
    submit(engine, id, command, payload, None).unwrap()
}

#[track_caller]
pub fn rejected(status: &CommandStatus) -> &str {
    match &status.state {
        CommandState::Rejected { code, .. } => code,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

pub fn user(name: &str, email: &str) -> Value {
    json!({"name": name, "email": email})
}

pub fn stream(engine: &Engine, stream: &str) -> Vec<(String, Value)> {
    engine
        .read_stream(stream, 1, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|e| (e.event_type, serde_json::from_slice(&e.data).unwrap()))
        .collect()
}

/// Loads `files` as an app directory; the error's text.
pub fn refusal(files: &[(&str, &str)]) -> (TempDir, String) {
    let dir = TempDir::new("bad");
    for (file, text) in files {
        dir.write(file, text);
    }
    let error: LoadError = load(dir.path()).unwrap_err();
    (dir, error.to_string())
}
