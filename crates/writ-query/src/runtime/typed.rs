//! [`ProjectionRuntime`]: one projection, typed, on [`ReadModels`] of one read model.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use crate::catalog::QueryCatalog;
use crate::projection::{Projection, Root, Snapshot};
use crate::runtime::erased::Erased;
use crate::runtime::models::{ReadModels, blocking};
use crate::runtime::options::{
    ModelStatus, Rebuild, RebuildError, RebuildStatus, RuntimeOptions, StartError, WaitError,
};
use crate::runtime::snapshots::Snapshots;
use crate::runtime::spec::ReadModelSpec;
use crate::source::EventSource;

/// Keeps one projection up to date with an [`EventSource`] and publishes its snapshots,
/// typed: what tools, tests and benchmarks use when they need the state itself rather
/// than queries. It is [`ReadModels`] of that one read model (without queries), so it
/// behaves the same way: see the [`runtime`](crate::runtime) module.
///
/// Dropping it stops its threads (see [`ProjectionRuntime::shutdown`]).
pub struct ProjectionRuntime<P: Projection> {
    models: ReadModels,
    projection: PhantomData<fn() -> P>,
}

impl<P: Projection> fmt::Debug for ProjectionRuntime<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProjectionRuntime")
            .field("root", &self.root())
            .field("position", &self.position())
            .finish_non_exhaustive()
    }
}

/// The one read model's index.
const ONLY: usize = 0;

impl<P: Projection> ProjectionRuntime<P> {
    /// Publishes the projection's initial state at position 0 and starts its threads,
    /// which replay the source from position 1 and then follow it.
    pub fn start(
        source: Arc<dyn EventSource>,
        projection: P,
        options: RuntimeOptions,
    ) -> Result<Self, StartError> {
        let spec = ReadModelSpec::new(projection, QueryCatalog::new());
        Ok(Self {
            models: ReadModels::start(source, [spec], options)?,
            projection: PhantomData,
        })
    }

    fn typed(snapshots: &Snapshots) -> Arc<Snapshot<P::State>> {
        snapshots.models[ONLY]
            .snapshot
            .clone()
            .downcast()
            .expect("the one read model's state is the projection's")
    }

    /// The newest published snapshot. Never blocks; hold the `Arc` as long as needed.
    pub fn snapshot(&self) -> Arc<Snapshot<P::State>> {
        Self::typed(&self.models.group().current.load())
    }

    /// The last position published (where it stopped, if it stopped).
    pub fn position(&self) -> u64 {
        self.models.group().current.load().models[ONLY].position
    }

    /// Events durable in the source but not yet published.
    pub fn lag(&self) -> u64 {
        self.models
            .group()
            .source
            .last_position()
            .saturating_sub(self.position())
    }

    /// The live read model's structure.
    pub fn root(&self) -> Root {
        self.models.group().current.load().models[ONLY].root
    }

    /// Returns the newest snapshot as soon as its position is at least `position` (read
    /// your writes: pass the position of a command's status). Costs no polling: it awaits
    /// the runtime's watch channel. Needs a tokio runtime with timers when it must wait.
    /// [`WaitError::Stopped`] at once when the projection stopped (the source shut down,
    /// or the projection panicked) before reaching it.
    pub async fn wait_for(
        &self,
        position: u64,
        timeout: Duration,
    ) -> Result<Arc<Snapshot<P::State>>, WaitError> {
        self.models
            .wait_until(timeout, |snapshots, stopped| {
                let published = &snapshots.models[ONLY];
                if published.position >= position {
                    Some(Ok(Self::typed(snapshots)))
                } else if stopped || published.stopped {
                    Some(Err(WaitError::Stopped {
                        wanted: position,
                        position: published.position,
                    }))
                } else {
                    None
                }
            })
            .await
            .unwrap_or_else(|snapshots| {
                Err(WaitError::Timeout {
                    wanted: position,
                    position: snapshots.models[ONLY].position,
                })
            })
    }

    /// [`ProjectionRuntime::wait_for`] for threads outside an async runtime (it builds a
    /// small one when it must wait; calling it from inside a tokio runtime panics).
    pub fn blocking_wait_for(
        &self,
        position: u64,
        timeout: Duration,
    ) -> Result<Arc<Snapshot<P::State>>, WaitError> {
        let snapshot = self.snapshot();
        if snapshot.position >= position {
            return Ok(snapshot);
        }
        blocking(self.wait_for(position, timeout))
    }

    /// Rebuilds the live projection from position 1 beside the live instance and switches
    /// to it once it has caught up. See [`ProjectionRuntime::rebuild_with`].
    pub fn rebuild(&self) -> Result<Rebuild, RebuildError> {
        self.models.rebuild_index(ONLY, None)
    }

    /// Builds `projection` (possibly a new version: a new root) from position 1 on
    /// threads of its own, beside the live instance. Readers keep the live snapshots until
    /// it has caught up; then it replaces the live instance at a batch boundary (see
    /// [`ReadModels::rebuild`]). Follow it with the returned [`Rebuild`] or
    /// [`ProjectionRuntime::rebuild_status`].
    pub fn rebuild_with(&self, projection: P) -> Result<Rebuild, RebuildError> {
        self.models.rebuild_with(ONLY, Arc::new(Erased(projection)))
    }

    /// Where the last rebuild stands.
    pub fn rebuild_status(&self) -> RebuildStatus {
        self.models.group().models[ONLY].rebuild_tx.borrow().clone()
    }

    /// Position, lag, counters and failures of the live instance, and the last rebuild.
    pub fn status(&self) -> ModelStatus {
        self.models.group().status(ONLY)
    }

    /// Stops the threads and waits for them. Readers keep the last snapshot; waits answer
    /// [`WaitError::Stopped`]; a running rebuild is cancelled. Idempotent; also run on
    /// drop.
    pub fn shutdown(&self) {
        self.models.shutdown();
    }
}
