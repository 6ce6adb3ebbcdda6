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

    /// Rebuilds the projection beside the live one and switches readers to it once it has
    /// caught up; see [`ProjectionRuntime::rebuild_with`]. `version` names the projection
    /// version to build (a structure change when it differs from the live one); `None`
    /// rebuilds the live version.
    fn rebuild(&self, version: Option<u32>) -> Result<Rebuild, RebuildRequestError>;

    /// The projection versions [`QueryService::rebuild`] can build, oldest first.
    fn projection_versions(&self) -> Vec<u32>;

    /// Stops the projection threads; see [`ProjectionRuntime::shutdown`].
    fn shutdown(&self);
}

/// Why [`QueryService::rebuild`] did not start a rebuild.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RebuildRequestError {
    /// The read model cannot build this projection version. Ask for one of `known`.
    #[error("projection version {version} is not known; known versions: {known:?}")]
    UnknownVersion {
        /// The version asked for.
        version: u32,
        /// The versions it can build.
        known: Vec<u32>,
    },
    /// The runtime refused; see [`RebuildError`] for what to do.
    #[error(transparent)]
    Rebuild(#[from] RebuildError),
}

/// Makes the projection of a given version, or `None` for a version the domain does not
/// have.
type VersionFactory<P> = Box<dyn Fn(u32) -> Option<P> + Send + Sync>;

/// A projection kept up to date by a [`ProjectionRuntime`], and the [`QueryCatalog`] that
/// reads its snapshots.
pub struct ReadModel<P: Projection> {
    runtime: ProjectionRuntime<P>,
    catalog: Arc<QueryCatalog<P::State>>,
    versions: Vec<u32>,
    factory: Option<VersionFactory<P>>,
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
        let versions = vec![projection.version()];
        Ok(Self {
            runtime: ProjectionRuntime::start(source, projection, options)?,
            catalog: Arc::new(catalog),
            versions,
            factory: None,
        })
    }

    /// Lets [`QueryService::rebuild`] build other versions of the projection: `versions`
    /// lists them, `make` makes the projection of one. This is how a domain declares that a
    /// new read model structure replaces the old: it bumps the projection's version, lists
    /// it here, and a rebuild to it switches readers once it has caught up, while the
    /// catalog's older query API versions keep answering through their transformers.
    pub fn with_versions(
        mut self,
        versions: impl IntoIterator<Item = u32>,
        make: impl Fn(u32) -> Option<P> + Send + Sync + 'static,
    ) -> Self {
        let mut versions: Vec<u32> = versions.into_iter().collect();
        versions.push(self.runtime.root().version);
        versions.sort_unstable();
        versions.dedup();
        self.versions = versions;
        self.factory = Some(Box::new(make));
        self
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

    fn rebuild(&self, version: Option<u32>) -> Result<Rebuild, RebuildRequestError> {
        let live = self.runtime.root().version;
        let Some(version) = version.filter(|&version| version != live) else {
            return Ok(self.runtime.rebuild()?);
        };
        let unknown = || RebuildRequestError::UnknownVersion {
            version,
            known: self.versions.clone(),
        };
        if !self.versions.contains(&version) {
            return Err(unknown());
        }
        let projection = self
            .factory
            .as_ref()
            .and_then(|make| make(version))
            .ok_or_else(unknown)?;
        Ok(self.runtime.rebuild_with(projection)?)
    }

    fn projection_versions(&self) -> Vec<u32> {
        self.versions.clone()
    }

    fn shutdown(&self) {
        self.runtime.shutdown();
    }
}
