//! A read model as the server sees it: a projection kept up to date plus its query catalog,
//! with the projection's types erased behind [`QueryService`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::catalog::{QueryCatalog, QueryInfo};
use crate::library::{Library, QueryError};
use crate::projection::Projection;
use crate::runtime::{
    ProjectionRuntime, Rebuild, RebuildError, RuntimeOptions, RuntimeStatus, StartError, WaitError,
};
use crate::source::EventSource;

/// A boxed, sendable future borrowing the service.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the server needs of a read model, whatever its projection.
///
/// A named query (`GET /query/v{N}/{name}?ARGS&after=P`):
/// 1. with `after`, [`QueryService::wait_for`]`(P, bounded timeout)` (`504` on
///    [`WaitError::Timeout`]);
/// 2. [`QueryService::library`]`(N)`: the version's library bound to the newest snapshot,
///    which is at least at `P`;
/// 3. [`Library::call`]`(name, args)` with the query string as an object of strings
///    (minus `after`), answering the result and [`Library::position`].
///
/// Query code (`POST /query/v{N}`) does 1 and 2 and hands the library to the sandbox.
pub trait QueryService: Send + Sync + 'static {
    /// The query API versions, oldest first.
    fn versions(&self) -> Vec<u32>;

    /// Every query of every version (for OpenAPI).
    fn queries(&self) -> Vec<QueryInfo>;

    /// Version `version`'s library, bound to the newest snapshot.
    fn library(&self, version: u32) -> Result<Arc<dyn Library>, QueryError>;

    /// Resolves with the published position once it is at least `position`; see
    /// [`ProjectionRuntime::wait_for`].
    fn wait_for(&self, position: u64, timeout: Duration) -> BoxFuture<'_, Result<u64, WaitError>>;

    /// Position, lag, counters, failures and the last rebuild.
    fn status(&self) -> RuntimeStatus;

    /// Rebuilds the projection beside the live one; see [`ProjectionRuntime::rebuild`].
    fn rebuild(&self) -> Result<Rebuild, RebuildError>;

    /// Stops the projection threads; see [`ProjectionRuntime::shutdown`].
    fn shutdown(&self);
}

/// A projection kept up to date by a [`ProjectionRuntime`], and the [`QueryCatalog`] that
/// reads its snapshots.
pub struct ReadModel<P: Projection> {
    runtime: ProjectionRuntime<P>,
    catalog: Arc<QueryCatalog<P::State>>,
}

impl<P: Projection> std::fmt::Debug for ReadModel<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadModel")
            .field("runtime", &self.runtime)
            .field("catalog", &self.catalog)
            .finish()
    }
}

impl<P: Projection> ReadModel<P> {
    /// Starts the projection on `source` (see [`ProjectionRuntime::start`]).
    pub fn start(
        source: Arc<dyn EventSource>,
        projection: P,
        catalog: QueryCatalog<P::State>,
        options: RuntimeOptions,
    ) -> Result<Self, StartError> {
        Ok(Self {
            runtime: ProjectionRuntime::start(source, projection, options)?,
            catalog: Arc::new(catalog),
        })
    }

    /// The projection runtime.
    pub fn runtime(&self) -> &ProjectionRuntime<P> {
        &self.runtime
    }

    /// The query catalog.
    pub fn catalog(&self) -> &Arc<QueryCatalog<P::State>> {
        &self.catalog
    }
}

impl<P: Projection> QueryService for ReadModel<P> {
    fn versions(&self) -> Vec<u32> {
        self.catalog.versions()
    }

    fn queries(&self) -> Vec<QueryInfo> {
        self.catalog.queries()
    }

    fn library(&self, version: u32) -> Result<Arc<dyn Library>, QueryError> {
        self.catalog.bind(version, self.runtime.snapshot())
    }

    fn wait_for(&self, position: u64, timeout: Duration) -> BoxFuture<'_, Result<u64, WaitError>> {
        Box::pin(async move {
            self.runtime
                .wait_for(position, timeout)
                .await
                .map(|snapshot| snapshot.position)
        })
    }

    fn status(&self) -> RuntimeStatus {
        self.runtime.status()
    }

    fn rebuild(&self) -> Result<Rebuild, RebuildError> {
        self.runtime.rebuild()
    }

    fn shutdown(&self) {
        self.runtime.shutdown();
    }
}
