//! The resource types of `--app`, as the server sees them ([`writ_server::Resources`]).

use std::time::Duration;

use serde_json::{Map, Value};
use writ_engine::Engine;
use writ_query::{QueryError, ReadModels, Snapshots, WaitError};
use writ_resources::{Action, ResourceSet};
use writ_server::{ResourceCommands, Resources};

use crate::app::StartError;

/// The start's check of the stored documents of `--app`'s types: once the read models
/// include the end of the log, every live document, read in its current shape (events of
/// older schema versions through `migrations/T.js`), must fit its type's current schema,
/// and no event of a type may have failed to read or fold (a migration that throws, or
/// gives what does not apply). Otherwise the start is refused with a report.
pub(crate) fn check_stored(
    engine: &Engine,
    models: &ReadModels,
    resources: &ResourceSet,
) -> Result<(), StartError> {
    let end = engine.last_position();
    let names: Vec<&str> = resources.types().iter().map(|t| t.name()).collect();
    // The wait may need a runtime of its own: off this thread, which may be a runtime's.
    std::thread::scope(|scope| {
        scope
            .spawn(|| wait_caught_up(models, end, &names))
            .join()
            .unwrap_or_else(|_| Err(StartError::Stored("the start's check panicked".into())))
    })?;
    let mut problems: Vec<String> = Vec::new();
    for name in &names {
        let Some(status) = models.status(name) else {
            continue;
        };
        if let Some(failure) = &status.stats.last_error {
            problems.push(format!(
                "{} event(s) of type {name}'s streams could not be applied to its documents; the last, at position {} (stream {}, {}): {}",
                status.stats.errors,
                failure.position,
                failure.stream,
                failure.event_type,
                failure.error
            ));
        }
        if let Some(parked) = status.stats.last_parked() {
            problems.push(format!(
                "{} event(s) of type {name}'s streams were parked; the last: {parked:?}",
                status.stats.parked
            ));
        }
    }
    let misfits = resources
        .misfits(&models.snapshots())
        .map_err(|e| StartError::Stored(e.to_string()))?;
    if !misfits.is_empty() {
        problems.push(misfits.to_string());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(StartError::Stored(format!(
            "the stored documents do not read under the app's current schemas and migrations (migrations/T.js); nothing is served:\n{}",
            problems.join("\n")
        )))
    }
}

/// Waits until the read models include position `end`, refusing as soon as one of the
/// types' read models stops (an event its migrations cannot read, say).
fn wait_caught_up(models: &ReadModels, end: u64, names: &[&str]) -> Result<(), StartError> {
    loop {
        let stopped = match models.blocking_wait_for(end, Duration::from_millis(200)) {
            Ok(_) => return Ok(()),
            Err(WaitError::Timeout { .. }) => names
                .iter()
                .filter_map(|name| models.status(name))
                .find(|status| status.stopped),
            Err(error) => {
                let failure = names
                    .iter()
                    .filter_map(|name| models.status(name))
                    .find_map(|status| status.failure);
                return Err(StartError::Stored(format!(
                    "the read models stopped before reading the whole log ({error}){}",
                    failure.map_or(String::new(), |f| format!(": {f}"))
                )));
            }
        };
        if let Some(status) = stopped {
            return Err(StartError::Stored(format!(
                "read model {} stopped at position {}: {}",
                status.name,
                status.position,
                status.failure.as_deref().unwrap_or("no reason given")
            )));
        }
    }
}

/// The loaded types, served.
#[derive(Debug)]
pub(crate) struct Served(pub(crate) ResourceSet);

impl Resources for Served {
    fn names(&self) -> Vec<String> {
        self.0.types().iter().map(|t| t.name().to_owned()).collect()
    }

    fn commands(&self, name: &str) -> Option<ResourceCommands> {
        let ty = self.0.resource_type(name)?;
        Some(ResourceCommands {
            create: ty.command(Action::Create),
            replace: ty.command(Action::Replace),
            patch: ty.command(Action::Patch),
            delete: ty.command(Action::Delete),
            custom: ty
                .custom_commands()
                .into_iter()
                .map(|verb| {
                    let name = format!("{verb}{}", ty.title());
                    (verb, name)
                })
                .collect(),
        })
    }

    fn get(
        &self,
        snapshots: &Snapshots,
        name: &str,
        id: &str,
    ) -> Result<Option<(Value, u64)>, QueryError> {
        Ok(self
            .0
            .get(snapshots, name, id)?
            .map(|found| (found.document, found.version)))
    }

    fn list(
        &self,
        snapshots: &Snapshots,
        name: &str,
        args: &Map<String, Value>,
    ) -> Result<Value, QueryError> {
        self.0.list(snapshots, name, args)
    }
}
