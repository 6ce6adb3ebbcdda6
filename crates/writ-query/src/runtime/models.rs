//! [`ReadModels`]: a server's read models, as the server holds them.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::library::{Budget, Library, QueryError};
use crate::runtime::erased::AnyProjection;
use crate::runtime::group::Group;
use crate::runtime::options::{
    ModelStatus, Rebuild, RebuildError, RuntimeOptions, StartError, WaitError,
};
use crate::runtime::reader::lock;
use crate::runtime::routes::{ModelQuery, Routes};
use crate::runtime::snapshots::Snapshots;
use crate::runtime::spec::ReadModelSpec;
use crate::source::EventSource;

/// The read models of a server, kept up to date with one [`EventSource`] and published
/// together: every [`Snapshots`] holds all of them at one position.
///
/// Each read model has its own projection version, status and rebuild; their named queries
/// are routed by name (a name is one read model's in a query API version), and query code
/// sees every read model's functions of its version over one [`Snapshots`].
///
/// A named query (`GET /query/v{N}/{name}?ARGS&after=P`):
/// 1. with `after`, [`ReadModels::wait_for`]`(P, bounded timeout)` (`504` on
///    [`WaitError::Timeout`]);
/// 2. [`ReadModels::call`]`(N, name, args)`, with the query string as an object of
///    strings (minus `after`): the answer and the position it was read at, at least `P`.
///
/// Query code (`POST /query/v{N}`) does 1, then hands [`ReadModels::library`]`(N)` to the
/// sandbox.
///
/// The [`runtime`](crate::runtime) module documents the threads, publishing, errors,
/// rebuilds and joins. Dropping it stops its threads (see [`ReadModels::shutdown`]).
pub struct ReadModels {
    group: Arc<Group>,
    routes: Arc<Routes>,
}

impl fmt::Debug for ReadModels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadModels")
            .field("snapshots", &self.group.current.load())
            .finish_non_exhaustive()
    }
}

impl ReadModels {
    /// Publishes every read model's initial state at position 0 and starts the threads
    /// that replay the source from position 1 into all of them and then follow it.
    ///
    /// Refuses two read models of one name ([`StartError::ModelTwice`]) and a query name
    /// that two read models declare in one query API version
    /// ([`StartError::QueryClash`], naming both).
    pub fn start(
        source: Arc<dyn EventSource>,
        models: impl IntoIterator<Item = ReadModelSpec>,
        options: RuntimeOptions,
    ) -> Result<Self, StartError> {
        let specs: Vec<ReadModelSpec> = models.into_iter().collect();
        let routes = Self::routes(&specs)?;
        let group = Group::start(source, specs, options).map_err(StartError::Spawn)?;
        Ok(Self {
            group,
            routes: Arc::new(routes),
        })
    }

    /// The checks [`ReadModels::start`] makes before it starts anything: two read models
    /// of one name, a query name two read models declare in one query API version. For a
    /// caller that must refuse a configuration before it opens a store.
    pub fn check(models: &[ReadModelSpec]) -> Result<(), StartError> {
        Self::routes(models).map(|_| ())
    }

    fn routes(specs: &[ReadModelSpec]) -> Result<Routes, StartError> {
        let mut names = HashSet::new();
        if let Some(twice) = specs.iter().find(|spec| !names.insert(spec.name())) {
            return Err(StartError::ModelTwice {
                name: twice.name().to_owned(),
            });
        }
        Routes::new(
            specs.iter().map(ReadModelSpec::name).collect(),
            specs.iter().map(|spec| Arc::clone(&spec.catalog)).collect(),
        )
    }

    /// The read models' names, in the order they were started.
    pub fn names(&self) -> Vec<&'static str> {
        self.group.models.iter().map(|model| model.name).collect()
    }

    /// The newest published snapshots. Never blocks; hold the `Arc` as long as needed.
    pub fn snapshots(&self) -> Arc<Snapshots> {
        self.group.current.load_full()
    }

    /// The last position published.
    pub fn position(&self) -> u64 {
        self.group.current.load().position
    }

    /// The query API versions of any read model, oldest first.
    pub fn versions(&self) -> Vec<u32> {
        self.routes.versions()
    }

    /// Every query of every version, each with the read model that answers it, by
    /// version, then name (for OpenAPI).
    pub fn queries(&self) -> Vec<ModelQuery> {
        self.routes.queries()
    }

    /// Runs query `name` of query API version `version` on the newest snapshots, in the
    /// read model that has it. Answers the result and the position it was read at.
    ///
    /// Fails with [`QueryError::UnknownVersion`] or [`QueryError::UnknownQuery`] when no
    /// read model has it, [`QueryError::Stopped`] when that read model stopped,
    /// [`QueryError::Unavailable`] when its projection version is older than the query
    /// API version needs, and as the query itself fails otherwise.
    pub fn call(
        &self,
        version: u32,
        name: &str,
        args: Map<String, Value>,
    ) -> Result<(Value, u64), QueryError> {
        let snapshots = self.group.current.load();
        let value = self.routes.call(&snapshots, version, name, args, None)?;
        Ok((value, snapshots.position))
    }

    /// [`ReadModels::call`] with the answer built within `budget`: a query that builds an
    /// answer of unbounded size (every entry of a long history) fails with
    /// [`QueryError::OverBudget`] instead of building it, when it charges what it builds
    /// (see [`Args::array`](crate::Args::array)). The server gives every named query one.
    pub fn call_within(
        &self,
        version: u32,
        name: &str,
        args: Map<String, Value>,
        budget: &Budget,
    ) -> Result<(Value, u64), QueryError> {
        let snapshots = self.group.current.load();
        let value = self
            .routes
            .call(&snapshots, version, name, args, Some(budget))?;
        Ok((value, snapshots.position))
    }

    /// Every read model's functions of query API version `version`, over the newest
    /// snapshots: what the sandbox gives query code. Every call reads the same
    /// [`Snapshots`], so code sees all read models at [`Library::position`]; a function of
    /// a stopped read model, or of one too old for the version, fails as in
    /// [`ReadModels::call`] (status 503) while the others answer.
    ///
    /// [`Library::root`] names the function set (every read model's root and the
    /// version); [`Library::model`] every read model's root, so a rebuild of any of them
    /// to another projection version makes the sandbox retire VMs made for the old one.
    pub fn library(&self, version: u32) -> Result<Arc<dyn Library>, QueryError> {
        self.routes.library(self.snapshots(), version)
    }

    /// Resolves with the published position once it is at least `position` (read your
    /// writes: pass the position of a command's status). Costs no polling: it awaits the
    /// runtime's watch channel. Needs a tokio runtime with timers when it must wait.
    ///
    /// [`WaitError::Stopped`] at once when the read models stopped before reaching it;
    /// one read model stopping does not stop the others' position.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> Result<u64, WaitError> {
        self.wait_until(timeout, |snapshots, stopped| {
            if snapshots.position >= position {
                Some(Ok(snapshots.position))
            } else if stopped {
                Some(Err(WaitError::Stopped {
                    wanted: position,
                    position: snapshots.position,
                }))
            } else {
                None
            }
        })
        .await
        .unwrap_or_else(|snapshots| {
            Err(WaitError::Timeout {
                wanted: position,
                position: snapshots.position,
            })
        })
    }

    /// [`ReadModels::wait_for`] for threads outside an async runtime (it builds a small
    /// one when it must wait; calling it from inside a tokio runtime panics).
    pub fn blocking_wait_for(&self, position: u64, timeout: Duration) -> Result<u64, WaitError> {
        let now = self.position();
        if now >= position {
            return Ok(now);
        }
        blocking(self.wait_for(position, timeout))
    }

    /// Every read model's status, in the order they were started.
    pub fn statuses(&self) -> Vec<ModelStatus> {
        (0..self.group.models.len())
            .map(|index| self.group.status(index))
            .collect()
    }

    /// The status of read model `model`.
    pub fn status(&self, model: &str) -> Option<ModelStatus> {
        self.index(model).map(|index| self.group.status(index))
    }

    /// Rebuilds read model `model` from position 1 beside the live ones: `version` names
    /// the projection version to build (a structure change when it differs from the live
    /// one; [`ReadModelSpec::with_versions`] lists those it can build), `None` the live
    /// version. Once it has caught up it joins the live read models at a batch boundary,
    /// so that every published [`Snapshots`] still holds all of them at one position, and
    /// replaces the old instance (a stopped one too). One rebuild per read model at a
    /// time. Follow it with the returned [`Rebuild`] or [`ModelStatus::rebuild`].
    ///
    /// A structure change made here is not in the log: a restart starts the read model
    /// at the version it was started with. A server logs it as a command instead
    /// ([`crate::switch`]), which the read models follow by this same path.
    pub fn rebuild(&self, model: &str, version: Option<u32>) -> Result<Rebuild, RebuildError> {
        let index = self
            .index(model)
            .ok_or_else(|| RebuildError::UnknownModel {
                name: model.to_owned(),
                known: self.names().into_iter().map(str::to_owned).collect(),
            })?;
        self.rebuild_index(index, version)
    }

    /// Stops every thread and waits for them. Readers keep the last snapshots; waits
    /// answer [`WaitError::Stopped`]; running rebuilds are cancelled. Idempotent; also
    /// run on drop.
    pub fn shutdown(&self) {
        self.group.shutdown();
    }

    fn index(&self, model: &str) -> Option<usize> {
        self.group.models.iter().position(|m| m.name == model)
    }

    pub(crate) fn group(&self) -> &Group {
        &self.group
    }

    /// [`ReadModels::rebuild`] of the read model at `index`.
    pub(crate) fn rebuild_index(
        &self,
        index: usize,
        version: Option<u32>,
    ) -> Result<Rebuild, RebuildError> {
        let model = &self.group.models[index];
        let live = Arc::clone(&lock(&model.live).projection);
        let projection = match version {
            None => live,
            Some(version) if version == live.root().version => live,
            Some(version) => {
                let unknown = || RebuildError::UnknownVersion {
                    model: model.name.to_owned(),
                    version,
                    known: model.spec.versions.clone(),
                };
                if !model.spec.versions.contains(&version) {
                    return Err(unknown());
                }
                model
                    .spec
                    .factory
                    .as_ref()
                    .and_then(|make| make(version))
                    .filter(|projection| projection.root().name == model.name)
                    .ok_or_else(unknown)?
            }
        };
        self.rebuild_with(index, projection)
    }

    /// Rebuilds the read model at `index` with `projection` (of its type).
    pub(crate) fn rebuild_with(
        &self,
        index: usize,
        projection: Arc<dyn AnyProjection>,
    ) -> Result<Rebuild, RebuildError> {
        self.group.rebuild(index, projection)
    }

    /// Waits until `ready` answers for the published snapshots and whether the read
    /// models stopped; `Err` with the last snapshots when `timeout` passes first.
    pub(crate) async fn wait_until<T>(
        &self,
        timeout: Duration,
        ready: impl Fn(&Snapshots, bool) -> Option<T>,
    ) -> Result<T, Arc<Snapshots>> {
        let group = &self.group;
        let mut progress = group.progress.subscribe();
        // Marked seen before the snapshots are loaded: a publish after this wakes the
        // loop below, and `current` is stored before the watch is sent.
        let stopped = progress.borrow_and_update().stopped;
        if let Some(answer) = ready(&group.current.load(), stopped) {
            return Ok(answer);
        }
        let waited = tokio::time::timeout(timeout, async {
            loop {
                if progress.changed().await.is_err() {
                    // The sender lives as long as the group: unreachable while `self` is.
                    return None;
                }
                let stopped = progress.borrow_and_update().stopped;
                if let Some(answer) = ready(&group.current.load(), stopped) {
                    return Some(answer);
                }
            }
        })
        .await;
        match waited {
            Ok(Some(answer)) => Ok(answer),
            _ => Err(group.current.load_full()),
        }
    }
}

impl Drop for ReadModels {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Runs `future` on a small current-thread runtime with a timer.
pub(crate) fn blocking<T>(future: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime with only a timer builds")
        .block_on(future)
}
